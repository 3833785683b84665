"""django-tables2 tables of the inventory pages. Every table sorts and pages through htmx (``_table.html``)."""

from __future__ import annotations

from collections import Counter

import django_tables2 as tables
from django.core.paginator import EmptyPage, PageNotAnInteger
from django.db.models import QuerySet
from django.middleware.csrf import get_token
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from inventory.forms import EMBEDDED_SCHEDULE, syncs_run_on_schedule
from inventory.freshness import Freshness, vcenter_freshness
from inventory.models import Gpu, Host, SyncRun, SyncStatus, VCenter
from inventory.occupancy import (
    FREE,
    PARTIAL,
    STATE_LABELS,
    UNAVAILABLE,
    USED,
    VGPU_MODES,
    GpuOccupancy,
    host_warning_count,
)

TEMPLATE = "inventory/_table.html"
STATUS_BADGE = {
    SyncStatus.SUCCESS: "ok",
    SyncStatus.FAILED: "bad",
    SyncStatus.RUNNING: "running",
    SyncStatus.QUEUED: "queued",
    SyncStatus.NEVER: "never",
    SyncStatus.SKIPPED: "off",
    SyncStatus.LOST: "bad",
}


def status_badge(status: str, label: str | None = None) -> str:
    return format_html('<span class="badge {}">{}</span>', STATUS_BADGE.get(status, ""), label or status)


def when(value) -> str:
    if value is None:
        return mark_safe('<span class="faint">never</span>')
    # The date and the time each stay whole; a narrow column puts the time under the date.
    return format_html(
        '<span class="when" title="{}"><span class="nowrap">{}</span> <span class="nowrap">{}</span></span>',
        value.isoformat(),
        value.strftime("%Y-%m-%d"),
        value.strftime("%H:%M:%S"),
    )


MAX_PER_PAGE = 100


class BoundedRequestConfig(tables.RequestConfig):
    """django-tables2's RequestConfig with ``?per_page=`` between 1 and ``MAX_PER_PAGE``: unbounded, one request
    rendered every host of a 1,000-host cluster (or the whole sync history) into one page."""

    def configure(self, table: tables.Table) -> tables.Table:
        table.request = self.request
        order_by = self.request.GET.getlist(table.prefixed_order_by_field)
        if order_by:
            table.order_by = order_by
        _end_in_primary_key(table)
        kwargs = dict(self.paginate) if hasattr(self.paginate, "items") else {}
        for arg in ("page", "per_page"):
            try:
                kwargs[arg] = int(self.request.GET[getattr(table, f"prefixed_{arg}_field")])
            except (ValueError, KeyError):
                pass
        if "per_page" in kwargs:
            kwargs["per_page"] = max(1, min(kwargs["per_page"], MAX_PER_PAGE))
        try:
            table.paginate(**kwargs)
        except PageNotAnInteger:
            table.page = table.paginator.page(1)
        except EmptyPage:
            table.page = table.paginator.page(table.paginator.num_pages)
        return table


def _end_in_primary_key(table: tables.Table) -> None:
    """Rows that tie on the sorted column keep one order from page to page (as the API's lists do): without it a
    page could repeat a row of the previous one and never show another."""
    rows = getattr(table.data, "data", None)
    if not isinstance(rows, QuerySet):
        return
    current = list(rows.query.order_by) or list(rows.model._meta.ordering)
    if any(isinstance(term, str) and term.lstrip("-") in ("pk", "id") for term in current):
        return
    table.data.data = rows.order_by(*current, "pk")


def ordered_rows(table: tables.Table, request) -> QuerySet:
    """The table's rows in the order the request sorts them (ending in the primary key), every page: what an
    export of the table writes."""
    order_by = request.GET.getlist(table.prefixed_order_by_field)
    if order_by:
        table.order_by = order_by
    _end_in_primary_key(table)
    return table.data.data


def sort_problem(table: tables.Table, request) -> str:
    """Why the request's sort parameter names no sortable column of ``table`` ("" when it is fine or absent):
    django-tables2 ignores such a value, and the pages answer it like a bad filter value instead."""
    field = table.prefixed_order_by_field
    value = request.GET.get(field, "")
    if not value:
        return ""
    names = [column.name for column in table.columns if column.orderable]
    wrong = [term for term in value.split(",") if term.strip().removeprefix("-") not in names]
    if not wrong:
        return ""
    return f"{field}: {', '.join(wrong)} is not a column to sort by (one of {', '.join(names)})"


class HtmxTable(tables.Table):
    """A table that knows the id its htmx links target."""

    htmx_id = "table"
    caption = ""  # what the table lists, for assistive technology (drawn visually hidden)

    class Meta:
        template_name = TEMPLATE
        attrs = {"class": "data"}


class VCenterTable(HtmxTable):
    htmx_id = "vcenters-table"
    caption = "vCenters"
    name = tables.Column(verbose_name="vCenter")
    url = tables.Column(verbose_name="SDK URL", attrs={"td": {"class": "mono"}})
    last_sync_status = tables.Column(verbose_name="Status")
    last_sync_at = tables.Column(verbose_name="Last sync")
    last_success_at = tables.Column(verbose_name="Last good sync")
    inventory_stale = tables.Column(verbose_name="Inventory")
    sync_interval_minutes = tables.Column(verbose_name="Schedule")
    host_count = tables.Column(verbose_name="Hosts", attrs={"td": {"class": "num"}, "th": {"class": "num"}})
    # Kept in view when a narrow window scrolls the table (sticky, app.css), its buttons wrap instead of widening it.
    actions = tables.Column(
        verbose_name="",
        orderable=False,
        empty_values=(),
        attrs={"td": {"class": "actions"}, "th": {"class": "actions"}},
    )

    class Meta(HtmxTable.Meta):
        model = VCenter
        fields = ("name", "url", "last_sync_status", "last_sync_at", "last_success_at", "inventory_stale")
        sequence = (
            "name",
            "url",
            "last_sync_status",
            "last_sync_at",
            "last_success_at",
            "inventory_stale",
            "sync_interval_minutes",
            "host_count",
            "actions",
        )
        empty_text = "No vCenter yet."
        template_name = "inventory/vcenters/_table.html"  # a line under each row for the connection test's answer
        row_attrs = {"data-id": lambda record: record.pk}

    def __init__(self, *args, can_admin: bool = False, **kwargs) -> None:
        self.can_admin = can_admin
        super().__init__(*args, exclude=() if can_admin else ("actions",), **kwargs)

    def render_name(self, record: VCenter) -> str:
        return format_html('<strong class="nowrap">{}</strong>', record.name)

    def render_actions(self, record: VCenter) -> str:
        # Rendered here rather than with a TemplateColumn: a template per row would re-run every context processor.
        return render_to_string("inventory/vcenters/_actions.html", {"record": record, "csrf_token": self.csrf_token})

    @property
    def csrf_token(self) -> str:
        request = getattr(self, "request", None)
        return get_token(request) if request is not None else ""

    def render_last_sync_status(self, record: VCenter) -> str:
        badge = status_badge(record.last_sync_status, record.get_last_sync_status_display())
        if record.last_error:
            return format_html('{}<div class="result bad">{}</div>', badge, record.last_error)
        return badge

    def render_last_sync_at(self, value) -> str:
        return when(value)

    def render_last_success_at(self, value) -> str:
        return when(value)

    def render_inventory_stale(self, record: VCenter) -> str:
        if record.inventory_stale:
            return mark_safe('<span class="badge stale">stale</span>')
        if record.last_success_at is None:
            return mark_safe('<span class="badge never">not synced</span>')
        return mark_safe('<span class="badge ok">current</span>')

    def render_sync_interval_minutes(self, record: VCenter) -> str:
        text = f"every {record.sync_interval_minutes} min"
        if not record.enabled:
            return format_html('<span class="badge off">paused</span> <span class="faint">{}</span>', text)
        if not syncs_run_on_schedule():
            return format_html('<span class="faint" data-schedule="none">{}</span>', EMBEDDED_SCHEDULE)
        return text


COUNT_LABELS = (("seen_hosts", "hosts"), ("seen_gpus", "GPUs"), ("seen_vms", "VMs"), ("objects", "objects"))
CHANGE_SUFFIXES = ("_created", "_updated", "_stale", "_changed", "_deleted")


def changed_rows(counts: dict) -> int:
    """How many rows a sync wrote: the "changes" of the pages, the "changed" of ``manage.py vcenter sync``."""
    return sum(v for k, v in counts.items() if k.endswith(CHANGE_SUFFIXES) and isinstance(v, int))


def count_summary(counts: dict) -> list[tuple[str, int]]:
    """The few numbers worth a glance: what was seen, and how many rows changed."""
    shown = [(label, counts[key]) for key, label in COUNT_LABELS if key in counts]
    if counts:
        shown.append(("changes", changed_rows(counts)))
    return shown


COUNT_KINDS = {
    "datacenters": "Datacenters",
    "clusters": "Clusters",
    "hosts": "Hosts",
    "pci": "PCI devices",
    "numa_nodes": "NUMA nodes",
    "gpus": "GPUs",
    "profiles": "vGPU profiles offered",
    "profile_links": "GPU-profile pairs",
    "vms": "VMs",
    "consumers": "GPU devices of VMs (vGPU, passthrough)",
    "fabric_links": "GPU-to-GPU links",
    "fabric_domains": "Resource domains (NVLink, NVSwitch, PCIe switch, NUMA)",
    "fabric_domain_members": "Resource domain members",
    "fabric_findings": "Fabric findings",
    "fabric_hashes": "Host fabric fingerprints",
}
COUNT_ACTIONS = ("seen", "created", "updated", "changed", "stale", "deleted")
COUNT_OTHERS = {"objects": "vCenter objects read", "warnings": "Warnings"}


def count_table(counts: dict) -> tuple[tuple[str, ...], list[tuple[str, list]]]:
    """A sync's counts as (action headers, rows of (what, one value per action)), in inventory order; counts
    outside the kinds (objects read, warnings) as rows of their own."""
    per_kind: dict[str, dict[str, int]] = {}
    others: list[tuple[str, int]] = []
    for key, value in counts.items():
        action = next((a for a in COUNT_ACTIONS if key.startswith(f"{a}_") or key.endswith(f"_{a}")), None)
        kind = key.removeprefix(f"{action}_").removesuffix(f"_{action}") if action else None
        if kind is not None and kind in COUNT_KINDS:
            per_kind.setdefault(kind, {})[action] = value
        else:
            others.append((COUNT_OTHERS.get(key, key.replace("_", " ").capitalize()), value))
    actions = tuple(a for a in COUNT_ACTIONS if any(a in v for v in per_kind.values()))
    rows = [(label, [per_kind[k].get(a, "") for a in actions]) for k, label in COUNT_KINDS.items() if k in per_kind]
    rows += [(label, [value, *[""] * (len(actions) - 1)]) for label, value in sorted(others)]
    return tuple(a.capitalize() if a != "stale" else "Marked stale" for a in actions), rows


def counts_text(counts: dict) -> str:
    return format_html_join(" ", '<span class="tag">{} {}</span>', count_summary(counts or {}))


class SyncRunTable(HtmxTable):
    htmx_id = "syncs-table"
    caption = "Sync runs"
    id = tables.Column(verbose_name="Run", linkify=lambda record: reverse("inventory:sync_run", args=[record.pk]))
    vcenter = tables.Column(verbose_name="vCenter", accessor="vcenter__name", order_by=("vcenter__name", "-created"))
    trigger = tables.Column()
    status = tables.Column()
    created = tables.Column(verbose_name="Queued")
    duration = tables.Column(
        verbose_name="Duration",
        empty_values=(),
        order_by=("finished_at",),
        attrs={"td": {"class": "num"}, "th": {"class": "num"}},
    )
    counts = tables.Column(verbose_name="Counts", orderable=False)
    round_trips = tables.Column(verbose_name="Round trips", attrs={"td": {"class": "num"}, "th": {"class": "num"}})
    error = tables.Column(orderable=False)

    class Meta(HtmxTable.Meta):
        model = SyncRun
        fields = ("id", "vcenter", "trigger", "status", "created", "duration", "counts", "round_trips", "error")
        empty_text = "No sync has run yet."

    def render_id(self, value) -> str:
        return f"#{value}"

    def render_status(self, record: SyncRun) -> str:
        return status_badge(record.status, record.get_status_display())

    def render_trigger(self, record: SyncRun) -> str:
        return record.get_trigger_display()

    def render_created(self, value) -> str:
        return when(value)

    def render_duration(self, record: SyncRun) -> str:
        seconds = record.duration_s
        return "\u2013" if seconds is None else f"{seconds:.1f} s"

    def render_counts(self, value) -> str:
        return counts_text(value or {})

    def render_error(self, record: SyncRun) -> str:
        if not record.error:
            return ""
        css = "result" if record.status == SyncStatus.SKIPPED else "result bad"
        return format_html('<span class="{}">{}</span>', css, record.error)


def spoken(text: str) -> str:
    """Text for assistive technology only: what a badge's hover title says, which keyboard and screen-reader
    users cannot reach."""
    return format_html('<span class="visually-hidden">{}</span>', text)


def occupancy_strip(gpus) -> str:
    """One square per GPU: free, in use, reserved, or partly used vGPU (filled by use; GB left in the title)."""
    if not gpus:
        return mark_safe('<span class="faint">no GPU</span>')
    cells = format_html_join(
        "",
        '<span class="g {}"{} title="{}"></span>',
        (
            (g.state, format_html(' style="--fill: {}%"', g.used_pct) if g.state == "partial" else "", g.title)
            for g in gpus
        ),
    )
    counts = Counter(g.state for g in gpus)
    summary = ", ".join(f"{counts[state]} {label}" for state, label in STATE_LABELS.items() if counts[state])
    left = [g.free_gb for g in gpus if g.state == "partial"]
    if left:  # what the squares' hover titles say of the partly used GPUs
        summary += f" ({', '.join(map(str, left))} GB left)"
    # A plain span's aria-label is ignored (and the squares are empty): an image with the counts in words.
    return format_html(
        '<span class="strip" role="img" aria-label="{} GPU{}: {}">{}</span>',
        len(gpus),
        "" if len(gpus) == 1 else "s",
        summary,
        cells,
    )


class HostTable(HtmxTable):
    """Hosts of a cluster with their GPU counts (annotated) and a per-GPU occupancy strip."""

    htmx_id = "hosts-table"
    caption = "Hosts"
    name = tables.Column(verbose_name="Host", linkify=lambda record: reverse("inventory:host_detail", args=[record.pk]))
    vcenter = tables.Column(verbose_name="vCenter", accessor="vcenter__name", order_by=("vcenter__name", "name"))
    model = tables.Column(verbose_name="Server", order_by=("vendor", "model"))
    gpu_models = tables.Column(verbose_name="GPU", empty_values=(), orderable=False)
    gpus_total = tables.Column(verbose_name="GPUs", attrs={"td": {"class": "num"}, "th": {"class": "num"}})
    gpus_free = tables.Column(verbose_name="Free", attrs={"td": {"class": "num"}, "th": {"class": "num"}})
    # In use and Partly used are counted from the GPUs' states, like the cluster's cards; the database knows only
    # GPUs held by a VM (both), so neither sorts (a sort by a number the column does not show reads as broken).
    gpus_used = tables.Column(
        verbose_name="In use", orderable=False, attrs={"td": {"class": "num"}, "th": {"class": "num"}}
    )
    gpus_partly = tables.Column(
        verbose_name="Partly used", empty_values=(), orderable=False,
        attrs={"td": {"class": "num"}, "th": {"class": "num"}},
    )  # fmt: skip
    gpus_reserved = tables.Column(verbose_name="Reserved", attrs={"td": {"class": "num"}, "th": {"class": "num"}})
    occupancy = tables.Column(verbose_name="Occupancy", orderable=False, empty_values=())
    state = tables.Column(verbose_name="State", empty_values=(), order_by=("connection_state", "maintenance_mode"))

    class Meta(HtmxTable.Meta):
        model = Host
        fields = ("name", "vcenter", "model")
        sequence = (
            "name",
            "vcenter",
            "model",
            "gpu_models",
            "gpus_total",
            "gpus_free",
            "gpus_used",
            "gpus_partly",
            "gpus_reserved",
            "occupancy",
            "state",
        )
        empty_text = "No host matches."
        row_attrs = {"class": lambda record: "stale" if record.stale else ""}

    def render_model(self, record: Host) -> str:
        return f"{record.vendor} {record.model}".strip() or "\u2013"

    def render_gpus_free(self, record: Host, value: int) -> str:
        unavailable = getattr(record, "gpus_unavailable", 0)
        if not unavailable:
            return str(value)
        return format_html(
            '{} <span class="faint" aria-describedby="term-unavailable">({} unavailable)</span>',
            value,
            unavailable,
        )

    def render_gpus_used(self, record: Host, value: int) -> int:
        strip = getattr(record, "gpu_strip", None)
        return value if strip is None else sum(1 for g in strip if g.state == USED)

    def render_gpus_partly(self, record: Host) -> int | str:
        strip = getattr(record, "gpu_strip", None)
        return "\u2013" if strip is None else sum(1 for g in strip if g.state == PARTIAL)

    def render_occupancy(self, record: Host) -> str:
        return occupancy_strip(getattr(record, "gpu_strip", ()))

    def render_gpu_models(self, record: Host) -> str:
        return format_html_join(", ", "{}", ((m,) for m in getattr(record, "gpu_model_names", ()))) or "\u2013"

    def render_state(self, record: Host) -> str:
        parts = []
        if record.stale:
            parts.append(mark_safe('<span class="badge stale">stale</span>'))
        fresh = vcenter_freshness(record.vcenter)
        if fresh.stale and not record.stale:
            # The vCenter is down or behind: the state below is the last one known, not the present.
            parts.append(last_known_badge(fresh, record.get_connection_state_display()))
        elif record.connection_state != "connected":
            parts.append(format_html('<span class="badge bad">{}</span>', record.get_connection_state_display()))
        if record.maintenance_mode:
            parts.append(mark_safe('<span class="badge warn">maintenance</span>'))
        n = host_warning_count(record, unavailable=False)  # the maintenance or connection badge says that
        if n:
            parts.append(
                format_html(
                    '<span class="badge warn" title="warnings and fabric findings">{} ⚠{}</span>',
                    n,
                    spoken(" warnings and fabric findings"),
                )
            )
        if not parts:
            parts.append(mark_safe('<span class="badge ok">ok</span>'))
        return format_html_join(" ", "{}", ((p,) for p in parts))


def last_known_badge(fresh: Freshness, state: str) -> str:
    """ "last known: STATE, stale since ..." for a row of a vCenter whose inventory is stale (its hover title and its
    text for assistive technology say why)."""
    since = f"since {timezone.localtime(fresh.since):%Y-%m-%d %H:%M}" if fresh.since else "(never synced)"
    return format_html(
        '<span class="badge stale" title="{}">last known: {}, stale {}</span>{}',
        fresh.reason,
        state,
        since,
        spoken(f" ({fresh.reason})"),
    )


def host_state_counts(record: Host) -> tuple[int, int]:
    """(in use, partly used) of a host row, counted from its occupancy strip as the cluster cards count them."""
    strip = getattr(record, "gpu_strip", ())
    return sum(1 for g in strip if g.state == USED), sum(1 for g in strip if g.state == PARTIAL)


class EstateHostTable(HostTable):
    """Hosts of every vCenter (``/inventory/hosts/``): the cluster page's table with each host's cluster (host and
    cluster names repeat across vCenters)."""

    htmx_id = "estate-hosts-table"
    caption = "Hosts of every vCenter"
    name = tables.Column(
        verbose_name="Host",
        linkify=lambda record: reverse("inventory:host_detail", args=[record.pk]),
        order_by=("name", "vcenter__name"),
    )
    cluster = tables.Column(
        verbose_name="Cluster",
        accessor="cluster__name",
        empty_values=(),
        order_by=("cluster__name", "vcenter__name", "name"),
        linkify=lambda record: (
            reverse("inventory:cluster_detail", args=[record.cluster_id]) if record.cluster_id else None
        ),
    )

    class Meta(HostTable.Meta):
        sequence = ("name", "vcenter", "cluster", *HostTable.Meta.sequence[2:])

    def render_cluster(self, value: str | None) -> str:
        return value if value is not None else "(no cluster)"


NUMBER = {"td": {"class": "num"}, "th": {"class": "num"}}
GPU_STATE_BADGE = {FREE: "ok", USED: "off", PARTIAL: "info", UNAVAILABLE: "warn"}


class GpuTable(HtmxTable):
    """GPUs of every host (``/inventory/gpus/``) with the state the overview counts them in. The state, mode and
    GB come from ``occupancy.gpu_occupancy`` (passed in per GPU id), so neither sorts."""

    htmx_id = "gpus-table"
    caption = "GPUs"
    host = tables.Column(
        verbose_name="Host",
        accessor="host__name",
        order_by=("host__name", "host__vcenter__name", "pci_device__pci_id"),
        linkify=lambda record: reverse("inventory:host_detail", args=[record.host_id]),
    )
    vcenter = tables.Column(
        verbose_name="vCenter", accessor="host__vcenter__name", order_by=("host__vcenter__name", "host__name")
    )
    cluster = tables.Column(
        verbose_name="Cluster",
        accessor="host__cluster__name",
        empty_values=(),
        order_by=("host__cluster__name", "host__vcenter__name", "host__name"),
    )
    pci_id = tables.Column(verbose_name="PCI address", accessor="pci_device__pci_id", attrs={"td": {"class": "mono"}})
    model = tables.Column(verbose_name="Model", order_by=("model", "board"))
    mode = tables.Column(verbose_name="Mode", empty_values=(), orderable=False)
    state = tables.Column(verbose_name="State", empty_values=(), orderable=False)
    memory_gb = tables.Column(
        verbose_name="Memory GB",
        empty_values=(),
        orderable=False,
        attrs={"td": {"class": "num"}, "th": {"class": "num"}},
    )
    free_gb = tables.Column(
        verbose_name="Free GB", empty_values=(), orderable=False, attrs={"td": {"class": "num"}, "th": {"class": "num"}}
    )
    holders = tables.Column(verbose_name="VMs and reservations", empty_values=(), orderable=False)

    class Meta(HtmxTable.Meta):
        model = Gpu
        fields = ()
        sequence = ("host", "vcenter", "cluster", "pci_id", "model", "mode", "state", "memory_gb", "free_gb", "holders")
        empty_text = "No GPU matches."

    def __init__(self, *args, occupancy: dict[int, GpuOccupancy], **kwargs) -> None:
        self.occupancy = occupancy
        super().__init__(*args, **kwargs)

    def _occ(self, record: Gpu) -> GpuOccupancy | None:
        return self.occupancy.get(record.pk)

    def render_cluster(self, value: str | None) -> str:
        return value if value is not None else "(no cluster)"

    def render_mode(self, record: Gpu) -> str:
        occ = self._occ(record)
        return occ.mode_label if occ else "\u2013"

    def render_state(self, record: Gpu) -> str:
        occ = self._occ(record)
        if occ is None:
            return "\u2013"
        title = occ.unavailable_reason if occ.state == UNAVAILABLE else occ.title
        badge = format_html(
            '<span class="badge {} {}" title="{}">{}</span>{}',
            occ.state,
            GPU_STATE_BADGE.get(occ.state, ""),
            title,
            STATE_LABELS.get(occ.state, occ.state),
            spoken(f": {occ.unavailable_reason}") if occ.state == UNAVAILABLE else "",  # the host page shows it
        )
        fresh = vcenter_freshness(record.host.vcenter)
        if not fresh.stale:
            return badge
        # as the hosts list says of its host: the state is the last one known, not the present
        return format_html("{} {}", last_known_badge(fresh, STATE_LABELS.get(occ.state, occ.state)), badge)

    def render_memory_gb(self, record: Gpu) -> int | str:
        occ = self._occ(record)
        return occ.memory_gb if occ else "\u2013"

    def render_free_gb(self, record: Gpu) -> str:
        occ = self._occ(record)
        if occ is None:
            return "\u2013"
        if occ.siloed_gb or occ.stranded_slices:
            extra = f"{occ.siloed_gb} GB siloed" if occ.siloed_gb else f"{occ.stranded_slices} MIG slices stranded"
            return format_html('{} <span class="faint">({})</span>', occ.free_gb, extra)
        return str(occ.free_gb)

    def render_holders(self, record: Gpu) -> str:
        occ = self._occ(record)
        if occ is None or not (occ.consumers or occ.reservations):
            return ""
        parts = [format_html("{}", ", ".join(occ.consumers))] if occ.consumers else []
        if occ.reservations:
            parts.append(
                format_html('<span class="badge reserved">reserved for</span> {}', ", ".join(occ.reservations))
            )
        return format_html_join(" ", "{}", ((p,) for p in parts))


GPU_CSV_FIELDS = ("pk", "host__name", "host__vcenter__name", "host__cluster__name", "pci_device__pci_id", "model",
                  "board", "host_id", "host__vcenter_id")  # fmt: skip


def stale_reasons() -> dict[int, str]:
    """Per vCenter id, why its inventory is stale (the "Inventory stale" cell of the exports); "" when current."""
    return {vc.pk: vcenter_freshness(vc).reason for vc in VCenter.objects.all()}


def gpu_csv_row(values: tuple, occ: GpuOccupancy | None, stale: dict[int, str]) -> list:
    """One GPU (its ``GPU_CSV_FIELDS``, read as values: 8,000 model instances took seconds) as ``GPU_CSV_HEADER``
    says, with what ``GpuTable`` shows of it; ``stale`` is ``stale_reasons()``."""
    _pk, host, vcenter, cluster, pci_id, model, board, host_id, vcenter_id = values
    if occ is None:
        return [host, vcenter, cluster or "", pci_id, model, board, *[""] * 11, stale.get(vcenter_id, ""), host_id]
    in_vgpu_mode = occ.mode in VGPU_MODES
    return [
        host, vcenter, cluster or "", pci_id, model, board, occ.mode_label, STATE_LABELS.get(occ.state, occ.state),
        occ.unavailable_reason if occ.state == UNAVAILABLE else "", occ.memory_gb,
        occ.used_gb if in_vgpu_mode else "", occ.reserved_gb if in_vgpu_mode else "", occ.free_gb, occ.siloed_gb,
        occ.stranded_slices, "; ".join(occ.consumers), "; ".join(occ.reservations), stale.get(vcenter_id, ""), host_id,
    ]  # fmt: skip


GPU_CSV_HEADER = ("Host", "vCenter", "Cluster", "PCI address", "Model", "Board", "Mode", "State",
                  "Unavailable because", "Memory GB", "vGPU GB in use", "vGPU GB reserved", "Free GB", "Siloed GB",
                  "Stranded MIG slices", "VMs", "Reserved for", "Inventory stale", "Host id")  # fmt: skip


def host_csv_row(host: Host) -> list:
    """One host as ``HOST_CSV_HEADER`` says, with the counts ``EstateHostTable`` shows (``gpu_strip`` set)."""
    used, partly = host_state_counts(host)
    return [
        host.name, host.vcenter.name, host.cluster.name if host.cluster_id else "",
        f"{host.vendor} {host.model}".strip(), ", ".join(getattr(host, "gpu_model_names", ())),
        host.gpus_total, host.gpus_free, host.gpus_unavailable, used, partly, host.gpus_reserved,
        host.get_connection_state_display(), host.maintenance_mode, host.stale,
        vcenter_freshness(host.vcenter).reason, host_warning_count(host), host.pk,
    ]  # fmt: skip


HOST_CSV_HEADER = ("Host", "vCenter", "Cluster", "Server", "GPU models", "GPUs", "Free", "Unavailable", "In use",
                   "Partly used", "Reserved", "Connection", "Maintenance", "Stale", "Inventory stale", "Warnings",
                   "Host id")  # fmt: skip
