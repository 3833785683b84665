"""Overview (``/``): every vCenter's sync state and every cluster's GPUs; cluster page: its hosts, filterable."""

from __future__ import annotations

from django.conf import settings
from django.db.models import BooleanField, ExpressionWrapper, F
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_safe

from inventory import fabric, occupancy, selectors
from inventory.forms import EMBEDDED_SCHEDULE, syncs_run_on_schedule
from inventory.models import Cluster, Host
from inventory.tables import BoundedRequestConfig, HostTable, sort_problem
from inventory.views.common import filter_problems, page_filterset, page_or_partial
from inventory.views.health import health_report

WARNING_HOSTS_SHOWN = 50
SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}


@require_safe
def overview(request: HttpRequest) -> HttpResponse:
    vcenters = list(selectors.vcenter_list())
    clusters = occupancy.cluster_summaries()
    live = Host.objects.filter(stale=False)
    # Hosts no plan can use first, then those with an error, then the others: what needs attention is never cut
    # off by the limit below.
    warn_qs = (
        live.filter(occupancy.host_warned_q())
        .annotate(
            unavailable=ExpressionWrapper(~occupancy.host_available_q(), output_field=BooleanField()),
            has_error=ExpressionWrapper(occupancy.findings_of_severity_q(("error",)), output_field=BooleanField()),
        )
        .select_related("vcenter", "cluster")
        .order_by(F("unavailable").desc(), F("has_error").desc(), "name", "vcenter__name")
    )
    warn_hosts = list(warn_qs[: WARNING_HOSTS_SHOWN + 1])
    refused = occupancy.nvswitch_refused_by_host(host_ids=[h.pk for h in warn_hosts])
    for host in warn_hosts:
        host.unavailable_reason = occupancy.host_unavailable_reason(host)
        # the stored findings and the NVSwitch refused-mode warning (worked out on read), errors and warnings first
        mode_finding = fabric.nvswitch_mode_finding(host, pcis=refused.get(host.pk, []))
        findings = [*(host.fabric_findings or ()), *filter(None, [mode_finding])]
        host.findings = sorted(findings, key=lambda f: SEVERITY_ORDER.get(f.get("severity"), 3))
    totals = occupancy.overview_totals(clusters)
    context = {
        "vcenters": vcenters,
        "clusters": clusters,
        "totals": totals,
        "warn_hosts": warn_hosts[:WARNING_HOSTS_SHOWN],
        "warn_more": len(warn_hosts) > WARNING_HOSTS_SHOWN,
        "warn_total": warn_qs.count() if len(warn_hosts) > WARNING_HOSTS_SHOWN else len(warn_hosts),
        "info_only_hosts": live.filter(occupancy.host_info_only_q()).count(),
        "health": health_report(worker_max_age=settings.HEALTH_PANEL_MAX_AGE),
        "scheduled": syncs_run_on_schedule(),
        "embedded_schedule": EMBEDDED_SCHEDULE,
    }
    return page_or_partial(request, "inventory/overview.html", context)


@require_safe
def cluster_list(request: HttpRequest) -> HttpResponse:
    """Every cluster with its vCenter, live hosts and GPU counts, each linking to its page (the overview breaks
    the same GPUs down by model and mode). Hosts outside any cluster are one line per vCenter, without a page."""
    summaries = {(s.vcenter_id, s.cluster_id): s for s in occupancy.cluster_summaries()}
    rows = []
    for cluster in Cluster.objects.select_related("vcenter").order_by("vcenter__name", "name", "pk"):
        rows.append(
            _cluster_row(
                cluster.pk,
                cluster.name,
                cluster.vcenter.name,
                summaries.pop((cluster.vcenter_id, cluster.pk), None),
                stale=cluster.stale,
            )
        )
    for summary in summaries.values():  # hosts outside any cluster
        rows.append(_cluster_row(None, summary.name, summary.vcenter, summary))
    return page_or_partial(request, "inventory/cluster_list.html", {"rows": rows})


def _cluster_row(pk: int | None, name: str, vcenter: str, summary, *, stale: bool = False) -> dict:
    def total(attr: str) -> int:
        return summary.total(attr) if summary else 0

    return {
        "pk": pk,
        "name": name,
        "vcenter": vcenter,
        "stale": stale,
        "hosts": summary.hosts if summary else 0,
        "hosts_with_warnings": summary.hosts_with_warnings if summary else 0,
        "models": sorted({r.model for r in summary.rows}) if summary else [],
        **{attr: total(attr) for attr in ("gpus", "free", "used", "partial", "reserved", "unavailable")},
    }


CLUSTER_HOST_FILTERS = (
    "q", "gpu_model", "mode", "min_free_gpus", "connection_state", "maintenance_mode", "warnings"
)  # fmt: skip


@require_safe
def cluster_detail(request: HttpRequest, pk: int) -> HttpResponse:
    from inventory.filtersets import HostListFilterSet

    cluster = get_object_or_404(Cluster.objects.select_related("vcenter"), pk=pk)
    hosts = occupancy.annotate_gpu_counts(Host.objects.filter(cluster=cluster)).select_related("vcenter")
    filterset = page_filterset(HostListFilterSet(request.GET or None, queryset=hosts, request=request))
    valid = not filterset.is_bound or filterset.is_valid()
    problems = filter_problems(filterset) if not valid else []
    if sorting := sort_problem(HostTable(hosts.none()), request):
        problems.append(sorting)
        valid = False
    table = HostTable(
        filterset.qs if filterset.is_bound and valid else hosts if valid else hosts.none(), order_by="name"
    )
    if not valid:
        table.empty_text = f"The filter is not valid ({'; '.join(problems)})."
    BoundedRequestConfig(request, paginate={"per_page": 25}).configure(table)
    page_hosts = [row.record for row in table.page.object_list] if table.page else []
    strips = occupancy.gpus_by_host(host_ids=[h.pk for h in page_hosts])
    for host in page_hosts:
        host.gpu_strip = strips.get(host.pk, [])
        host.gpu_model_names = sorted({g.model for g in host.gpu_strip})
    summary = occupancy.cluster_summaries(clusters=Cluster.objects.filter(pk=cluster.pk))
    context = {
        "cluster": cluster,
        "summary": occupancy.overview_totals(summary),
        "filter": filterset,
        # the cluster is the page's own; a host in maintenance or not responding is what an admin looks for here
        "shown_filters": CLUSTER_HOST_FILTERS,
        "table": table,
    }
    status = 200 if valid else 400
    return page_or_partial(
        request, "inventory/cluster_detail.html", context, partials={"hosts-table": "hosts"}, status=status
    )
