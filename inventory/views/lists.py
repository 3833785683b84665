"""Estate-wide lists: every host (``/inventory/hosts/``) and every GPU (``/inventory/gpus/``) of every vCenter,
filtered, sorted and paged like the cluster page's hosts, and their CSV export (``?export=csv``, same filters and
sort, every page)."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice

from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_safe

from inventory import occupancy
from inventory.csv_export import csv_response
from inventory.filtersets import GpuListFilterSet, HostListFilterSet
from inventory.models import Gpu, Host
from inventory.tables import (
    GPU_CSV_FIELDS,
    GPU_CSV_HEADER,
    HOST_CSV_HEADER,
    BoundedRequestConfig,
    EstateHostTable,
    GpuTable,
    gpu_csv_row,
    host_csv_row,
    ordered_rows,
    sort_problem,
    stale_reasons,
)
from inventory.views.common import filter_problems, htmx_target, page_filterset, page_or_partial

PER_PAGE = 25
EXPORT_FORMATS = ("csv",)
EXPORT_CHUNK = 500  # hosts read (with their GPUs' occupancy) per step of an export: memory stays bounded


def _filter(request: HttpRequest, filterset_class, queryset: QuerySet, table) -> tuple:
    """(filterset, rows, problems): the rows the request's filters leave, or none with the reasons when a filter,
    the sort or the export format is not valid."""
    filterset = page_filterset(filterset_class(request.GET or None, queryset=queryset, request=request))
    valid = not filterset.is_bound or filterset.is_valid()
    problems = filter_problems(filterset) if not valid else []
    if sorting := sort_problem(table, request):
        problems.append(sorting)
    export = request.GET.get("export")
    if export is not None and export not in EXPORT_FORMATS:
        problems.append(f"export: {export!r} is not a format to export (one of {', '.join(EXPORT_FORMATS)})")
    if problems:
        return filterset, queryset.none(), problems
    return filterset, filterset.qs if filterset.is_bound else queryset, []


def _export_url(request: HttpRequest) -> str:
    """The CSV export of the rows shown: the request's filters and sort, every page."""
    query = request.GET.copy()
    query.pop("page", None)
    query["export"] = "csv"
    return f"{request.path}?{query.urlencode()}"


@require_safe
def host_list(request: HttpRequest) -> HttpResponse:
    """Every host of every vCenter with its GPU counts and occupancy strip, as the cluster page shows its own."""
    hosts = occupancy.annotate_gpu_counts(Host.objects.select_related("vcenter", "cluster"))
    filterset, rows, problems = _filter(request, HostListFilterSet, hosts, EstateHostTable(hosts.none()))
    table = EstateHostTable(rows, order_by="name")
    if request.GET.get("export") == "csv" and not problems:
        return csv_response("hosts.csv", HOST_CSV_HEADER, _host_rows(ordered_rows(table, request)))
    if problems:
        table.empty_text = f"The filter is not valid ({'; '.join(problems)})."
    BoundedRequestConfig(request, paginate={"per_page": PER_PAGE}).configure(table)
    _attach_strips([row.record for row in table.page.object_list] if table.page else [])
    context = {
        "filter": filterset,
        "table": table,
        "export_url": _export_url(request),
        "oob": htmx_target(request) == table.htmx_id,  # the partial also updates the form's and export's query
    }
    return page_or_partial(
        request,
        "inventory/host_list.html",
        context,
        partials={table.htmx_id: "hosts"},
        status=400 if problems else 200,
    )


def _attach_strips(hosts: list[Host]) -> None:
    """Each host's GPU occupancy strip and GPU models, as the cluster page shows them (four queries)."""
    strips = occupancy.gpus_by_host(host_ids=[h.pk for h in hosts])
    for host in hosts:
        host.gpu_strip = strips.get(host.pk, [])
        host.gpu_model_names = sorted({g.model for g in host.gpu_strip})


def _host_rows(hosts: QuerySet[Host]) -> Iterator[list]:
    # One query read in chunks, not a slice per chunk: with OFFSET the database computes the GPU-count subqueries
    # of every skipped host again (1,000 hosts exported in 1.5 s on PostgreSQL, the last slice alone 0.35 s).
    rows = hosts.iterator(chunk_size=EXPORT_CHUNK)
    while chunk := list(islice(rows, EXPORT_CHUNK)):
        _attach_strips(chunk)
        yield from (host_csv_row(host) for host in chunk)


GPU_FORM_FIELDS = ("q", "state", "model", "mode", "vcenter", "cluster")  # ?host= (an id) comes from links
STATE_CARDS = (
    (occupancy.FREE, "free"),
    (occupancy.USED, "in use"),
    (occupancy.PARTIAL, "partly used vGPU"),
    (occupancy.RESERVED, "reserved"),
    (occupancy.UNAVAILABLE, "unavailable"),
)


@require_safe
def gpu_list(request: HttpRequest) -> HttpResponse:
    """Live GPUs of live hosts (what the overview counts), each in the state ``occupancy.gpu_occupancy`` gives it.
    The occupancy of every GPU the other filters leave is read once (four queries): it counts the states for the
    cards and applies the state filter; the table's page and the export read their rows from it."""
    gpus = Gpu.objects.filter(stale=False, host__stale=False).select_related(
        "host__vcenter", "host__cluster", "pci_device"
    )
    filterset, rows, problems = _filter(request, GpuListFilterSet, gpus, GpuTable(gpus.none(), occupancy={}))
    occupancies = {o.gpu_id: o for o in occupancy.gpu_occupancy(gpus=rows)} if not problems else {}
    counts = occupancy.summarize(occupancies.values())
    state = filterset.form.cleaned_data.get("state") if filterset.is_bound and not problems else ""
    if state:
        rows = _in_state(rows, occupancies, state)
    table = GpuTable(rows, order_by="host", occupancy=occupancies)
    if request.GET.get("export") == "csv" and not problems:
        ordered = ordered_rows(table, request).values_list(*GPU_CSV_FIELDS)
        stale = stale_reasons()
        return csv_response(
            "gpus.csv",
            GPU_CSV_HEADER,
            (gpu_csv_row(row, occupancies.get(row[0]), stale) for row in ordered.iterator(chunk_size=EXPORT_CHUNK)),
        )
    if problems:
        table.empty_text = f"The filter is not valid ({'; '.join(problems)})."
    BoundedRequestConfig(request, paginate={"per_page": PER_PAGE}).configure(table)
    query = request.GET.copy()
    for name in ("page", "export", "state"):
        query.pop(name, None)
    cards = []
    for value, label in STATE_CARDS:
        query["state"] = value
        cards.append(
            {"state": value, "label": label, "count": counts[value], "url": f"{request.path}?{query.urlencode()}"}
        )
    context = {
        "filter": filterset,
        "fields": [filterset.form[name] for name in GPU_FORM_FIELDS],
        "host": filterset.form.cleaned_data.get("host") if filterset.is_bound and not problems else None,
        "filtered": any(value for name, value in request.GET.items() if name not in ("page", "per_page", "sort")),
        "table": table,
        "total": counts["total"],
        "cards": cards,
        "state": state,
        "export_url": _export_url(request),
        "oob": htmx_target(request) == table.htmx_id,
    }
    return page_or_partial(
        request, "inventory/gpu_list.html", context, partials={table.htmx_id: "gpus"}, status=400 if problems else 200
    )


def _in_state(gpus: QuerySet[Gpu], occupancies: dict, state: str) -> QuerySet[Gpu]:
    """The GPUs in ``state``, by the shorter list of ids (the GPUs in it, or the others)."""
    inside = [pk for pk, occ in occupancies.items() if occ.state == state]
    if len(inside) <= len(occupancies) - len(inside):
        return gpus.filter(pk__in=inside)
    return gpus.exclude(pk__in=[pk for pk, occ in occupancies.items() if occ.state != state])
