"""Who holds each GPU, and what is left: free, in use, reserved, partially used vGPU, siloed and stranded.

Selectors only (no writes). A GPU is *in use* when a consumer holds it now (static passthrough always; every
other kind while its VM is powered on), *reserved* when an active, unexpired reservation holds it and no VM
does yet, and *free* otherwise. Reserved GPUs are never counted as free.

*Unavailable* is idle capacity no plan can use, counted apart from free: a GPU neither held nor reserved on a host
in maintenance mode, disconnected or not responding, a GPU whose graphics type takes no compute VM (``shared``
vSGA, ``basic``, or unknown), or a passthrough or MIG GPU on an NVSwitch (HGX) board, where vSphere places only
time-sliced vGPU (``gpucatalog.catalog.nvswitch_refusal``, the rule of the engine's HgxRules). Plans reject all
of them, so none is free.

Reservations belong to the placement app; they are read here through the ORM relation ``reservation_items``
(no import of ``placement``), so the inventory shows them without depending on the planner.

Siloed and stranded capacity:
- same-size vGPU mode: a GPU that holds vGPUs is locked to their profile; of its free framebuffer, what the
  same profile can no longer fill (the per-GPU maximum is reached, or less than one profile is left) is
  *siloed*: no vGPU of any size can use it until the GPU empties.
- mixed-size mode: of the free framebuffer, what no still-placeable instance of any profile of the board can cover
  (its start a placement ID, its range free, its size below the mixed-size maximum) is *siloed*
  (``gpucatalog.mixed_layout``, as plans and what-ifs count it). Placement IDs not reported by ``nvidia-smi`` are
  inferred as the engine infers them (reservations' predicted ones first, then the VMs in name order).
- MIG: on a GPU where no instance of any MIG profile of its board can start (``gpucatalog.mig_layout``: compute
  or memory slices used up, or the free memory slices at no profile's start slot), the compute slices left are
  *stranded* and the GB left *siloed*, so it is in use, not partly used. Slots not reported by ``nvidia-smi`` are
  inferred as the engine infers them (vSphere's choice, in VM-name order).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache, reduce
from operator import or_

from django.db.models import (
    BooleanField,
    Case,
    Count,
    Exists,
    ExpressionWrapper,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    TextField,
    Value,
    When,
)
from django.db.models.functions import Cast, Coalesce
from django.db.models.lookups import Contains
from django.utils import timezone

from gpucatalog import mig_layout, mixed_layout
from gpucatalog.catalog import nvswitch_refusal
from gpucatalog.profiles import ProfileNameError, parse_device_group_name
from inventory.models import (
    Cluster,
    ConnectionState,
    Gpu,
    GpuConsumer,
    GraphicsType,
    Host,
    PowerState,
    ResourceDomain,
    UnheldGpuInstance,
    VgpuMode,
    VgpuProfile,
)
from inventory.profile_limits import board_framebuffer_gb, catalog_board, max_equal, mig_geometry, mig_profile_sizes

FREE, USED, PARTIAL, RESERVED, UNAVAILABLE = "free", "used", "partial", "reserved", "unavailable"
# Modes of GPUs no compute VM can use (their graphics type is neither direct nor sharedDirect).
SHARED_MODE, BASIC_MODE, UNKNOWN_MODE = "shared", "basic", "unknown"
NOT_COMPUTE_MODES = (SHARED_MODE, BASIC_MODE, UNKNOWN_MODE)
VGPU_MODES = (VgpuMode.SAME_SIZE, VgpuMode.MIXED_SIZE, VgpuMode.MIG)
MODE_LABELS = {
    "passthrough": "Passthrough",
    VgpuMode.SAME_SIZE: "vGPU same-size",
    VgpuMode.MIXED_SIZE: "vGPU mixed-size",
    VgpuMode.MIG: "MIG",
    SHARED_MODE: "Shared (vSGA), not for compute",
    BASIC_MODE: "Basic graphics, not for compute",
    UNKNOWN_MODE: "Graphics type unknown",
}
# Every value of ``gpu_mode`` (the API's ``mode``), with what it means.
MODE_CHOICES = (
    ("passthrough", "Passthrough (graphics type direct)"),
    (VgpuMode.SAME_SIZE, "vGPU same-size (sharedDirect; also when vCenter does not report the mode)"),
    (VgpuMode.MIXED_SIZE, "vGPU mixed-size (sharedDirect)"),
    (VgpuMode.MIG, "MIG-backed vGPU (sharedDirect with MIG enabled)"),
    (SHARED_MODE, "Shared (vSGA): no compute VM can use it"),
    (BASIC_MODE, "Basic graphics: no compute VM can use it"),
    (UNKNOWN_MODE, "Graphics type unknown: no plan uses it"),
)
COMPUTE_GRAPHICS_TYPES = (GraphicsType.DIRECT, GraphicsType.SHARED_DIRECT)
# Written on a GPU's notes for whoever reads them; the flag readers use is Gpu.vgpu_mode_inferred.
MIXED_SIZE_INFERRED_NOTE = (
    "vCenter does not report the vGPU mode; mixed-size is inferred from vGPUs of different sizes on this GPU"
)


def gpu_usable_q() -> Q:
    """GPUs an idle one of which is free rather than unavailable: on an available host, in a compute mode that
    the host's board allows."""
    return host_available_q("host__") & _mode_usable_q()


def _mode_usable_q() -> Q:
    """GPUs whose mode a plan can use (whatever their host's state): a compute graphics type, and not a mode that
    vSphere refuses on the host's NVSwitch board."""
    return Q(graphics_type__in=COMPUTE_GRAPHICS_TYPES) & ~(Q(host_id__in=nvswitch_hosts()) & _nvswitch_modes_q())


def nvswitch_hosts() -> QuerySet:
    """Ids of the hosts the planner treats as NVSwitch boards (``HostState.nvswitch``: an active Fabric Manager
    partition of two or more GPUs). Asked as "an active NVSwitch board domain": the fabric builds one for each set
    of GPUs joined by NVSwitch (two or more), always together with the partition of all of them, so both name the
    same hosts; counting partition members instead cost a join and a grouping over every domain. An uncorrelated
    subquery: the database works it out once per query."""
    return ResourceDomain.objects.filter(kind=ResourceDomain.Kind.NVSWITCH_BOARD, active=True).values("host_id")


def nvswitch_refused(mode: str) -> bool:
    """Whether vSphere refuses a GPU in ``mode`` (a ``MODE_CHOICES`` key) on an NVSwitch board."""
    return bool(nvswitch_refusal(whole_gpu=mode == "passthrough", mig=mode == VgpuMode.MIG))


def _nvswitch_modes_q() -> Q:
    """GPUs in a mode ``nvswitch_refused`` names (as ``gpu_mode`` reads the columns)."""
    by_mode = {
        "passthrough": Q(graphics_type=GraphicsType.DIRECT),
        VgpuMode.MIG: Q(graphics_type=GraphicsType.SHARED_DIRECT) & (Q(mig_enabled=True) | Q(vgpu_mode=VgpuMode.MIG)),
    }
    return reduce(or_, (q for mode, q in by_mode.items() if nvswitch_refused(mode)))


def nvswitch_refused_gpus(*, host: Host) -> list[str]:
    """PCI ids of the live GPUs of ``host`` in a mode vSphere refuses on its NVSwitch board (none elsewhere)."""
    return nvswitch_refused_by_host(host_ids=[host.pk]).get(host.pk, [])


def nvswitch_refused_by_host(*, host_ids: Iterable[int]) -> dict[int, list[str]]:
    """``nvswitch_refused_gpus`` of several hosts in one query, by host primary key (hosts without any left out)."""
    gpus = Gpu.objects.filter(_nvswitch_modes_q(), host_id__in=list(host_ids), stale=False).filter(
        host_id__in=nvswitch_hosts()
    )
    out: dict[int, list[str]] = {}
    for host_id, pci in gpus.order_by("pci_device__pci_id").values_list("host_id", "pci_device__pci_id"):
        out.setdefault(host_id, []).append(pci)
    return out


NVSWITCH_UNAVAILABLE = "vSphere places only time-sliced vGPU on NVSwitch boards (no passthrough, no MIG)"
NOT_COMPUTE_UNAVAILABLE = "its graphics mode takes no compute VM"


def unavailable_reason(*, mode: str, host_available: bool, on_nvswitch: bool, host_off: str = "") -> str:
    """Why an idle GPU is unavailable to plans, or "" when a plan can use it; ``host_off`` is what its host is
    (``host_unavailable_reason``: "in maintenance mode", "disconnected", ...)."""
    if not host_available:
        if host_off:
            return f"the host is {host_off}"
        return "the host is not available to plans (maintenance, disconnected, not responding or not synced)"
    if mode in NOT_COMPUTE_MODES:
        return NOT_COMPUTE_UNAVAILABLE
    if on_nvswitch and nvswitch_refused(mode):
        return NVSWITCH_UNAVAILABLE
    return ""


def host_available_q(prefix: str = "") -> Q:
    """Hosts a plan may use: seen by the last sync, connected and not in maintenance mode (``prefix`` for
    related lookups)."""
    return Q(
        **{
            f"{prefix}stale": False,
            f"{prefix}connection_state": ConnectionState.CONNECTED,
            f"{prefix}maintenance_mode": False,
        }
    )


def host_unavailable_reason_expr(prefix: str = "") -> Case:
    """``host_unavailable_reason`` in the database (``prefix`` for related lookups): "" for a host plans may use."""
    return Case(
        When(**{f"{prefix}stale": True}, then=Value("not seen by the last sync")),
        *(
            When(**{f"{prefix}connection_state": state}, then=Value(str(label).lower()))
            for state, label in ConnectionState.choices
            if state != ConnectionState.CONNECTED
        ),
        When(**{f"{prefix}maintenance_mode": True}, then=Value("in maintenance mode")),
        default=Value(""),
        output_field=TextField(),
    )


def host_unavailable_reason(host: Host) -> str:
    """Why no plan uses ``host`` (its idle GPUs count as unavailable), or "" when plans may use it."""
    if host.stale:
        return "not seen by the last sync"
    if host.connection_state != ConnectionState.CONNECTED:
        return host.get_connection_state_display().lower()
    if host.maintenance_mode:
        return "in maintenance mode"
    return ""


# A fabric finding of these severities makes a host "with warnings"; "info" findings (module ids assumed, ...) are
# notes that the host page shows, not warnings.
WARNING_SEVERITIES = ("warning", "error")


def findings_of_severity_q(severities: Iterable[str]) -> Q:
    """Hosts with a fabric finding of one of ``severities``. Matched in the JSON text, as PostgreSQL (jsonb) and
    SQLite (Django's json.dumps) both write it: ``"severity": "warning"``. A message cannot fake the match, since
    its quotes are escaped; JSON containment would be exact but SQLite has none."""
    text = Cast("fabric_findings", TextField())
    return reduce(or_, (Q(Contains(text, Value(f'"severity": "{severity}"'))) for severity in severities))


def host_warned_q() -> Q:
    """Hosts listed under "Hosts with warnings" and counted in a cluster's warning count: unavailable to plans
    (maintenance, disconnected, not responding), a sync warning, a fabric finding of severity warning or error, or
    GPUs of an NVSwitch board in a mode vSphere refuses there. Info-level findings alone do not count."""
    refused = Gpu.objects.filter(_nvswitch_modes_q(), stale=False, host_id__in=nvswitch_hosts()).values("host_id")
    return ~host_available_q() | ~Q(warnings=[]) | findings_of_severity_q(WARNING_SEVERITIES) | Q(pk__in=refused)


def warning_findings(host: Host) -> list:
    """The host's stored fabric findings that are warnings (severity warning or error); the info-level ones (module
    ids assumed, ...) are notes the host page shows, not warnings."""
    return [f for f in host.fabric_findings or () if not isinstance(f, dict) or f.get("severity") != "info"]


def host_warning_count(host: Host, *, unavailable: bool = True) -> int:
    """What makes ``host`` one of the hosts ``host_warned_q`` lists, one each: its sync warnings, its fabric
    findings of severity warning or error, the NVSwitch refused-mode warning (worked out on read, from the
    ``gpus_nvswitch_refused`` annotation of ``annotate_gpu_counts``) and, with ``unavailable``, the host being
    unavailable to plans. Above 0 exactly for the hosts ``host_warned_q`` lists: the hosts CSV's Warnings column and
    the API's ``warning_count``; the hosts page's warning badge leaves unavailability to its own badge."""
    refused = 1 if getattr(host, "gpus_nvswitch_refused", 0) else 0
    down = 1 if unavailable and host_unavailable_reason(host) else 0
    return len(host.warnings or ()) + len(warning_findings(host)) + refused + down


def host_info_only_q() -> Q:
    """Hosts whose only notes are info-level fabric findings (not ``host_warned_q``)."""
    return ~Q(fabric_findings=[]) & ~host_warned_q()


def holding_consumers() -> Q:
    """Consumers that occupy their GPU now (static passthrough even when the VM is off)."""
    return Q(kind=GpuConsumer.Kind.PASSTHROUGH) | Q(vm__power_state="poweredOn")


def _active_reservation_items(gpu: OuterRef) -> Exists:
    """An active, unexpired reservation item holds ``gpu``. Asked of the item table directly: going through
    Gpu's reverse relation made PostgreSQL scan every active reservation once per host counted."""
    items = Gpu._meta.get_field("reservation_items").related_model.objects  # placement's, without importing it
    now = timezone.now()
    return Exists(items.filter(gpu=gpu, reservation__status="active", reservation__expires_at__gt=now))


def gpu_mode(gpu_graphics_type: str, vgpu_mode: str, mig_enabled: bool) -> str:
    """The GPU's mode key (``MODE_CHOICES``), as the placement engine reads the graphics type: only ``direct``
    takes passthrough VMs and only ``sharedDirect`` takes vGPUs; any other type is a mode of its own."""
    if gpu_graphics_type == GraphicsType.DIRECT:
        return "passthrough"
    if gpu_graphics_type == GraphicsType.SHARED_DIRECT:
        if mig_enabled or vgpu_mode == VgpuMode.MIG:
            return VgpuMode.MIG
        return vgpu_mode or VgpuMode.SAME_SIZE
    if gpu_graphics_type == GraphicsType.SHARED:
        return SHARED_MODE
    if gpu_graphics_type == GraphicsType.BASIC:
        return BASIC_MODE
    return UNKNOWN_MODE


def annotate_gpu_counts(hosts: QuerySet[Host]) -> QuerySet[Host]:
    """Hosts with ``gpus_total``, ``gpus_used``, ``gpus_reserved``, ``gpus_free`` and ``gpus_unavailable`` (stale
    GPUs left out). Total = used + reserved + free + unavailable: of the GPUs neither held nor reserved, those a
    plan can use are free, the others (host unavailable, graphics type not for compute) unavailable.

    Correlated subqueries: one query for any number of hosts, usable for ordering and filtering.
    """
    live = Gpu.objects.filter(host=OuterRef("pk"), stale=False)
    held = Exists(GpuConsumer.objects.filter(holding_consumers(), gpu=OuterRef("pk")))
    reserved = _active_reservation_items(OuterRef("pk"))

    def count(qs: QuerySet[Gpu]) -> Coalesce:
        n = qs.order_by().values("host").annotate(n=Count("pk")).values("n")[:1]
        return Coalesce(Subquery(n, output_field=IntegerField()), Value(0))

    # gpus_free is counted on its own (total - used - reserved = neither held nor reserved): as F() arithmetic
    # over the other three, Django would inline their subqueries a second time.
    idle = live.exclude(held).exclude(reserved)
    usable = _mode_usable_q()
    available = host_available_q()
    return hosts.annotate(
        gpus_total=count(live),
        # GPUs of an NVSwitch board in a mode vSphere refuses there: the host page's nvswitch-mode-unusable warning
        gpus_nvswitch_refused=count(live.filter(_nvswitch_modes_q(), host_id__in=nvswitch_hosts())),
        gpus_used=count(live.filter(held)),
        gpus_reserved=count(live.filter(reserved).exclude(held)),
        gpus_free=Case(When(available, then=count(idle.filter(usable))), default=Value(0)),
        gpus_unavailable=Case(When(available, then=count(idle.exclude(usable))), default=count(idle)),
    )


@dataclass
class GpuOccupancy:
    gpu_id: int
    host_id: int
    pci_id: str
    model: str
    mode: str  # a MODE_CHOICES key
    memory_gb: int
    state: str = FREE  # free | used | partial | reserved | unavailable
    used_gb: int = 0  # framebuffer held by VMs (the whole GPU for passthrough)
    reserved_gb: int = 0
    siloed_gb: int = 0
    stranded_slices: int = 0  # MIG compute slices no instance can use (no profile fits what is left)
    locked_profile: str = ""  # same-size lock
    consumers: list[str] = field(default_factory=list)  # "vm (profile)"
    reservations: list[str] = field(default_factory=list)  # reserved-for VM names
    mode_inferred: bool = False  # mixed-size inferred by the sync (vCenter did not report the mode)
    host_available: bool = True
    host_off: str = ""  # what the host is when plans may not use it ("in maintenance mode", ...)
    on_nvswitch: bool = False  # the host is an NVSwitch board (see ``nvswitch_hosts``)

    @property
    def unavailable_reason(self) -> str:
        """Why no plan can use this GPU's free capacity ("" when one can)."""
        return unavailable_reason(
            mode=self.mode, host_available=self.host_available, on_nvswitch=self.on_nvswitch, host_off=self.host_off
        )

    @property
    def free_gb(self) -> int:
        """What plans can still put on the GPU: 0 where none can (its host unavailable, its mode refused on its
        board), as the overview counts it."""
        if self.state == UNAVAILABLE or (self.state in (USED, RESERVED) and self.mode not in VGPU_MODES):
            return 0
        return 0 if self.unavailable_reason else self.room_gb

    @property
    def room_gb(self) -> int:
        """What is left on the GPU, usable by plans or not (``free_gb`` is what they can use)."""
        return max(self.memory_gb - self.used_gb - self.reserved_gb - self.siloed_gb, 0)

    @property
    def used_pct(self) -> int:
        """Share of the framebuffer held or reserved, 0-100 (for drawing a partly used GPU)."""
        if not self.memory_gb:
            return 100 if self.state != FREE else 0
        return min(round(100 * (self.memory_gb - self.free_gb) / self.memory_gb), 100)

    @property
    def mode_label(self) -> str:
        return mode_label(self.mode, inferred=self.mode_inferred)

    @property
    def title(self) -> str:
        """One line for a hover title: state, who holds it, what is left."""
        parts = [f"{self.pci_id} {self.model}", self.mode_label, self.state]
        if not self.host_available:
            parts.append("host unavailable to plans")
        elif self.on_nvswitch and nvswitch_refused(self.mode):
            parts.append(NVSWITCH_UNAVAILABLE)
        if self.consumers:
            parts.append("VMs: " + ", ".join(self.consumers))
        if self.reservations:
            parts.append("reserved for " + ", ".join(self.reservations))
        if self.mode in VGPU_MODES and self.state not in (FREE, UNAVAILABLE) and not self.unavailable_reason:
            parts.append(f"{self.free_gb} GB free of {self.memory_gb}")
        if self.locked_profile:
            parts.append(f"locked to {self.locked_profile}")
        if self.siloed_gb:
            parts.append(f"{self.siloed_gb} GB siloed")
        if self.stranded_slices:
            parts.append(f"{self.stranded_slices} compute slices stranded")
        return " · ".join(parts)


def _profiles() -> dict[str, tuple[int, str, int]]:
    """name -> (framebuffer GB, MIG instance name or "", per-GPU maximum in same-size mode or 0), for vGPU types
    and for raw MIG profile names ("1g.10gb", the profile of a GPU instance no VM holds)."""
    return mig_profile_sizes() | {
        name: (fb, mig_profile, max_equal(board, fb))
        for name, fb, mig_profile, board in VgpuProfile.objects.values_list(
            "name", "framebuffer_gb", "mig_profile", "board"
        )
    }


def mode_label(mode: str, *, inferred: bool = False) -> str:
    label = MODE_LABELS.get(mode, mode)
    return f"{label} (inferred)" if inferred else label


_GPU_FIELDS = ("pk", "host_id", "pci_device__pci_id", "model", "framebuffer_mb", "graphics_type", "vgpu_mode",
               "mig_enabled", "board", "mode_inferred", "host_available", "on_nvswitch", "host_off")  # fmt: skip


def _with_row_flags(gpus: QuerySet[Gpu]) -> QuerySet[Gpu]:
    return gpus.annotate(
        mode_inferred=F("vgpu_mode_inferred"),
        host_available=ExpressionWrapper(host_available_q("host__"), output_field=BooleanField()),
        on_nvswitch=ExpressionWrapper(Q(host_id__in=nvswitch_hosts()), output_field=BooleanField()),
        host_off=host_unavailable_reason_expr("host__"),
    )


def gpu_occupancy(*, gpus: QuerySet[Gpu]) -> list[GpuOccupancy]:
    """Occupancy of each GPU in ``gpus`` (a queryset, evaluated with four queries in all)."""
    rows, consumers, reservations, profiles = _load(gpus)
    return [_occupancy(row, consumers.get(row[0], []), reservations.get(row[0], []), profiles) for row in rows]


def _load(gpus: QuerySet[Gpu], *, counting: bool = False) -> tuple[list, dict, dict, dict]:
    """The rows behind ``gpu_occupancy``: live GPUs, their consumers and active reservations, the profiles.

    Reservations are read from the (small) reservation item table, not by joining every GPU to it.
    ``counting`` (summaries over many GPUs) leaves out what only a listing shows: the VMs' names, the GPUs' PCI
    addresses (a join) and the order (a sort of every GPU of the estate).
    """
    live = gpus.filter(stale=False)
    if counting:
        fields = [Value("") if f == "pci_device__pci_id" else f for f in _GPU_FIELDS]
        rows = list(_with_row_flags(live).order_by().values_list(*fields))
    else:
        rows = list(_with_row_flags(live).order_by("host_id", "pci_device__pci_id").values_list(*_GPU_FIELDS))
    ids = live.values("pk")
    # each hold's reported offset: a MIG instance's start slot, a mixed-size vGPU's placement ID (None: inferred)
    consumers: dict[int, list[tuple[str, str, str, bool, int | None]]] = defaultdict(list)
    consumer_qs = GpuConsumer.objects.filter(gpu__in=ids).annotate(
        holds=ExpressionWrapper(holding_consumers(), output_field=BooleanField()), offset=_offset()
    )
    if not counting:
        consumer_qs = consumer_qs.order_by("vm__name").values_list(
            "gpu_id", "vm__name", "kind", "profile", "holds", "offset"
        )
    else:
        # the VM's name only where it orders the MIG instances and mixed-size vGPUs whose offsets are inferred
        unreported = Case(
            When(
                Q(kind="mig", mig_slot__isnull=True)
                | Q(gpu__vgpu_mode=VgpuMode.MIXED_SIZE, placement_gb__isnull=True, mig_slot__isnull=True),
                then=F("vm__name"),
            ),
            default=Value(""),
        )
        consumer_qs = consumer_qs.order_by().values_list("gpu_id", unreported, "kind", "profile", "holds", "offset")
    for gpu_id, vm, kind, profile, holds, slot in consumer_qs:
        consumers[gpu_id].append((vm, kind, profile, bool(holds), slot))
    for gpu_id, instance_id, profile, start in unheld_instances(ids).values_list(
        "gpu_id", "instance_id", "profile", "start"
    ):
        consumers[gpu_id].append((mig_layout.unheld_instance_name(instance_id), "mig", profile, True, start))
    reservations: dict[int, list[tuple[str, str, int | None]]] = defaultdict(list)
    item_model = Gpu._meta.get_field("reservation_items").related_model  # placement's, without importing it
    for gpu_id, vm, profile, slot in (
        item_model.objects.filter(gpu__in=ids, reservation__status="active", reservation__expires_at__gt=timezone.now())
        .annotate(offset=_offset())
        .order_by("reservation__vm_name")
        .values_list("gpu_id", "reservation__vm_name", "profile", "offset")
    ):
        reservations[gpu_id].append((vm, profile, slot))
    return rows, consumers, reservations, _profiles()


def _offset() -> Case:
    """A consumer's or reservation item's offset on its GPU: the MIG start slot of a MIG instance, else the
    mixed-size placement ID (GB); None when not known."""
    return Case(When(kind="mig", then=F("mig_slot")), default=F("placement_gb"), output_field=IntegerField())


def unheld_instances(gpus: QuerySet) -> QuerySet[UnheldGpuInstance]:
    """The GPU instances no VM holds that still take their slices on ``gpus`` (a queryset of GPU pks), as the
    planner counts them: recorded under the host's current boot, on a GPU not in a time-sliced mode, and not the
    instance of a VM vCenter now reports on that GPU (that VM's consumer stands for it)."""
    same_boot = (
        Q(host_boot_time__isnull=True)
        | Q(gpu__host__boot_time__isnull=True)
        | Q(host_boot_time=F("gpu__host__boot_time"))
    )
    reported = GpuConsumer.objects.filter(gpu_id=OuterRef("gpu_id"), vm__name=OuterRef("vm_name"))
    return (
        UnheldGpuInstance.objects.filter(same_boot, gpu__in=gpus)
        .exclude(gpu__vgpu_mode__in=(VgpuMode.SAME_SIZE, VgpuMode.MIXED_SIZE))
        .exclude(~Q(vm_name="") & Exists(reported))
        .order_by("gpu_id", "start")
    )


def _occupancy(row, consumers, reservations, profiles) -> GpuOccupancy:
    pk, host_id, pci_id, model, fb_mb, graphics_type, vgpu_mode, mig_enabled, board, inferred, available, nvs, off = row
    mode = gpu_mode(graphics_type, vgpu_mode, mig_enabled)
    memory_gb = board_framebuffer_gb(board) or round(fb_mb / 1024)
    occ = GpuOccupancy(pk, host_id, pci_id, model, mode, memory_gb, mode_inferred=bool(inferred),
                       host_available=bool(available), on_nvswitch=bool(nvs), host_off=off or "")  # fmt: skip
    held = [(vm, kind, held_profile(kind, p), holds, offset) for vm, kind, p, holds, offset in consumers if holds]
    occ.consumers = [f"{vm} ({profile})" if profile else vm for vm, _, profile, _, _ in consumers]
    occ.reservations = [vm for vm, _, _ in reservations]
    if not held and not reservations and occ.unavailable_reason:
        occ.state = UNAVAILABLE
        return occ
    if mode not in VGPU_MODES or any(kind in ("passthrough", "dynamic-passthrough") for _, kind, _, _, _ in held):
        if held:
            occ.state, occ.used_gb = USED, memory_gb
        elif reservations:
            occ.state, occ.reserved_gb = RESERVED, memory_gb
        return occ
    occ.used_gb = sum(profiles.get(p, (0, "", 0))[0] for _, _, p, _, _ in held)
    # a hold without a profile is a whole-GPU one (passthrough on a GPU since switched to vGPU): all of its memory
    occ.reserved_gb = sum(profiles.get(p, (0, "", 0))[0] if p else memory_gb for _, p, _ in reservations)
    if not held and not reservations:
        return occ
    occ.state = PARTIAL if held else RESERVED
    taken = occ.used_gb + occ.reserved_gb
    if taken >= memory_gb:
        occ.state = USED if held else RESERVED
    in_use = [p for _, _, p, _, _ in held] + [p for _, p, _ in reservations if p]
    if mode == VgpuMode.MIG:
        instances = [(vm, profiles.get(p, (0, "", 0))[1], slot) for vm, _, p, _, slot in held]
        instances += [(vm, profiles.get(p, (0, "", 0))[1], slot) for vm, p, slot in reservations if p]
        occ.stranded_slices, placeable = _stranded_mig(board, instances)
        if not placeable:
            # the GB left sit in memory slices no instance can use: siloed, as the what-if engine counts them
            occ.siloed_gb = max(memory_gb - taken, 0)
    elif mode == VgpuMode.SAME_SIZE and in_use:
        occ.locked_profile = in_use[0]
        size, _, limit = profiles.get(in_use[0], (0, "", 0))
        if size:
            more = max((memory_gb - taken) // size, 0)
            if limit:
                more = min(more, max(limit - len(in_use), 0))
            occ.siloed_gb = max(memory_gb - taken - more * size, 0)
    elif mode == VgpuMode.MIXED_SIZE:
        occ.siloed_gb = _siloed_mixed(board, memory_gb, held, reservations, profiles)
    if occ.state == PARTIAL and occ.free_gb == 0:
        # nothing more fits, or what is left no plan can use (host unavailable, MIG refused on an NVSwitch board):
        # full, even if not every GB is allocated
        occ.state = USED
    return occ


@lru_cache(maxsize=1024)
def held_profile(kind: str, profile: str) -> str:
    """The vGPU type a hold runs on its GPU: each GPU of a device group runs one vGPU of the group's type (vCenter
    names the group, ``Nvidia:2@grid_a100d-40c%NVLink``, on the VM's consumer: grid_a100d-40c), any other hold its
    own profile. A group name that does not parse is kept (it sizes nothing, as the planner rejects such a host)."""
    if kind != "device-group" or not profile:
        return profile
    try:
        return parse_device_group_name(profile).profile.name
    except ProfileNameError:
        return profile


def _siloed_mixed(board: str, memory_gb: int, held, reservations, profiles) -> int:
    """Free GB of a mixed-size GPU that no still-placeable instance of a profile of its board can cover. Offsets
    not reported are inferred as the engine infers them: reported ones and reservations' predicted ones first, then
    the rest in VM-name order, each where the host would start it."""
    known: list[mixed_layout.Resident] = []
    pending: list[tuple[str, int]] = []
    for vm, size, start in [(vm, profiles.get(p, (0, "", 0))[0], start) for vm, _, p, _, start in held] + [
        (vm, profiles.get(p, (0, "", 0))[0] if p else memory_gb, start) for vm, p, start in reservations
    ]:
        if not size:
            continue  # a profile the catalog does not size: the engine rejects such a host anyway
        if start is None:
            pending.append((vm, size))
        else:
            known.append((size, start))
    b = catalog_board(board)
    layout = tuple(known)
    for _, size in sorted(pending):
        layout = (*layout, (size, mixed_layout.infer_start(b, memory_gb, layout, size)))
    return max(mixed_layout.siloed(b, memory_gb, layout), 0)


def _stranded_mig(board: str, instances: Iterable[tuple[str, str, int | None]]) -> tuple[int, bool]:
    """(compute slices stranded, whether another instance can start) on a MIG GPU holding ``instances``, each
    (VM name, MIG profile name, start slot or None when not reported).

    Reported slots are taken as they are, the others inferred as the engine infers them. When no instance of any
    profile can start, the compute slices left are stranded. A board without MIG geometry in the catalog is taken
    to have room (nothing stranded); instances the engine cannot read (an unknown profile, slots that clash) are
    counted by their slices alone, as the engine rejects such a host anyway."""
    geometry = mig_geometry(board)
    if geometry is None:
        return 0, True
    layout = mig_layout.EMPTY
    pending = []
    readable = True
    for vm, name, slot in instances:
        profile = geometry.by_name(name)
        if profile is None:
            readable = False
        elif slot is None:
            pending.append((vm, profile))
        elif mig_layout.fits(geometry, layout, profile, slot):
            layout = mig_layout.add(layout, profile, slot)
        else:
            readable = False
    pending.sort(key=lambda x: x[0])
    slots = mig_layout.arrange(geometry, layout, [p for _, p in pending]) if readable else None
    if slots is not None:
        for (_, profile), slot in zip(pending, slots, strict=True):
            layout = mig_layout.add(layout, profile, slot)
        placeable = mig_layout.can_start(geometry, layout)
        return (0 if placeable else geometry.compute_slices - layout[1]), placeable
    used_compute = used_memory = 0
    for _, name, _ in instances:
        profile = geometry.by_name(name)
        if profile is not None:
            used_compute, used_memory = used_compute + profile.compute_slices, used_memory + profile.memory_slices
    free_compute, free_memory = geometry.compute_slices - used_compute, geometry.memory_slices - used_memory
    placeable = any(p.compute_slices <= free_compute and p.memory_slices <= free_memory for p in geometry.profiles)
    return (0 if placeable else max(free_compute, 0)), placeable


@dataclass
class ModeSummary:
    model: str
    mode: str
    inferred: bool = False  # mixed-size inferred by the sync
    gpus: int = 0
    free: int = 0
    used: int = 0
    partial: int = 0
    reserved: int = 0
    unavailable: int = 0  # idle, but no plan can use them (host unavailable, graphics type not for compute, ...)
    free_gb_on_partial: int = 0  # what plans can use: on available hosts, in a mode the board allows
    unavailable_reasons: dict[str, int] = field(default_factory=dict)  # unavailable_reason -> GPUs
    siloed_gb: int = 0
    stranded_slices: int = 0

    @property
    def mode_label(self) -> str:
        return mode_label(self.mode, inferred=self.inferred)

    @property
    def unavailable_title(self) -> str:
        """The reasons of the unavailable GPUs, with counts when there are several ("3: reason; 2: reason")."""
        if len(self.unavailable_reasons) == 1:
            return next(iter(self.unavailable_reasons))
        return "; ".join(f"{n}: {why}" for why, n in sorted(self.unavailable_reasons.items()))


@dataclass
class ClusterSummary:
    cluster_id: int | None
    name: str
    vcenter: str
    vcenter_id: int
    hosts: int = 0
    hosts_with_warnings: int = 0
    rows: list[ModeSummary] = field(default_factory=list)

    def total(self, attr: str) -> int:
        return sum(getattr(r, attr) for r in self.rows)


def cluster_summaries(*, clusters: QuerySet[Cluster] | None = None) -> list[ClusterSummary]:
    """Per cluster (and per vCenter for hosts outside any cluster): GPUs by model and mode, and their state."""
    hosts = Host.objects.filter(stale=False)
    if clusters is not None:
        hosts = hosts.filter(cluster__in=clusters)
    summaries: dict[tuple[int, int | None], ClusterSummary] = {}
    host_cluster: dict[int, tuple[int, int | None]] = {}
    # Whether a host has warnings, asked of the database (decoding two JSON lists per host cost more).
    warned = ExpressionWrapper(host_warned_q(), output_field=BooleanField())
    for pk, cluster_id, cluster_name, vcenter_id, vcenter_name, has_warnings in hosts.values_list(
        "pk", "cluster_id", "cluster__name", "vcenter_id", "vcenter__name", warned
    ).order_by("vcenter__name", "cluster__name"):
        key = (vcenter_id, cluster_id)
        summary = summaries.get(key)
        if summary is None:
            summary = summaries[key] = ClusterSummary(cluster_id, cluster_name or "(no cluster)", vcenter_name,
                                                      vcenter_id)  # fmt: skip
        summary.hosts += 1
        summary.hosts_with_warnings += bool(has_warnings)
        host_cluster[pk] = key
    rows: dict[tuple, ModeSummary] = {}
    gpu_rows, consumers, reservations, profiles = _load(Gpu.objects.filter(host__in=hosts.values("pk")), counting=True)
    # GPUs alike in board, mode and what holds them (kinds, profiles, power; not names) are alike in state: an
    # estate has few such kinds, so each is worked out once.
    states: dict[tuple, GpuOccupancy] = {}
    for gpu in gpu_rows:
        pk, host_id, model, graphics_type, vgpu_mode, mig_enabled = gpu[0], gpu[1], gpu[3], gpu[5], gpu[6], gpu[7]
        inferred, available, on_nvswitch, host_off = bool(gpu[9]), bool(gpu[10]), bool(gpu[11]), gpu[12] or ""
        key = host_cluster.get(host_id)
        if key is None:
            continue
        mode = gpu_mode(graphics_type, vgpu_mode, mig_enabled)
        row = rows.get((key, model, mode, inferred))
        if row is None:
            row = rows[(key, model, mode, inferred)] = ModeSummary(model, mode, inferred)
            summaries[key].rows.append(row)
        row.gpus += 1
        why = unavailable_reason(mode=mode, host_available=available, on_nvswitch=on_nvswitch, host_off=host_off)
        if pk not in consumers and pk not in reservations:
            # nobody holds or reserves it: no need to work out partial use
            if why:
                row.unavailable += 1
                row.unavailable_reasons[why] = row.unavailable_reasons.get(why, 0) + 1
            else:
                row.free += 1
            continue
        held, reserved = consumers.get(pk, []), reservations.get(pk, [])
        alike = (gpu[3:], tuple(held), tuple((profile, slot) for _, profile, slot in reserved))
        occ = states.get(alike)
        if occ is None:
            occ = states[alike] = _occupancy(gpu, held, reserved, profiles)
        setattr(row, occ.state, getattr(row, occ.state) + 1)
        if occ.state == UNAVAILABLE:
            row.unavailable_reasons[why] = row.unavailable_reasons.get(why, 0) + 1
        if occ.state == PARTIAL and not why:
            row.free_gb_on_partial += occ.free_gb
        row.siloed_gb += occ.siloed_gb
        row.stranded_slices += occ.stranded_slices
    for s in summaries.values():
        s.rows.sort(key=lambda r: (r.model, r.mode, r.inferred))
    return sorted(summaries.values(), key=lambda s: (s.vcenter, s.name))


def partial_gpu_counts(*, host_ids: Iterable[int]) -> dict[int, int]:
    """Per host, its live GPUs that are partly used vGPU GPUs (state ``PARTIAL``: VMs hold vGPUs and a plan can use
    the room left), as ``cluster_summaries`` counts them; hosts with none are left out. Four queries for any number
    of hosts."""
    held = Q(pk__in=GpuConsumer.objects.values("gpu_id")) | Q(pk__in=UnheldGpuInstance.objects.values("gpu_id"))
    gpus = Gpu.objects.filter(held, host_id__in=list(host_ids))
    rows, consumers, reservations, profiles = _load(gpus, counting=True)
    out: dict[int, int] = defaultdict(int)
    states: dict[tuple, str] = {}
    for gpu in rows:
        held = consumers.get(gpu[0])
        if not held:  # a GPU no consumer is on is free, reserved or unavailable, never partly used
            continue
        reserved = reservations.get(gpu[0], [])
        alike = (gpu[3:], tuple(held), tuple((profile, slot) for _, profile, slot in reserved))
        state = states.get(alike)
        if state is None:
            state = states[alike] = _occupancy(gpu, held, reserved, profiles).state
        if state == PARTIAL:
            out[gpu[1]] += 1
    return dict(out)


def gpus_by_host(*, host_ids: Iterable[int]) -> dict[int, list[GpuOccupancy]]:
    """Occupancy of the live GPUs of these hosts, per host in PCI order (four queries for any number)."""
    out: dict[int, list[GpuOccupancy]] = defaultdict(list)
    for occ in gpu_occupancy(gpus=Gpu.objects.filter(host_id__in=list(host_ids))):
        out[occ.host_id].append(occ)
    return dict(out)


TOTAL_FIELDS = ("gpus", "free", "used", "partial", "reserved", "unavailable", "free_gb_on_partial", "siloed_gb",
                "stranded_slices")  # fmt: skip


def overview_totals(summaries: Iterable[ClusterSummary]) -> dict[str, int]:
    """Sums over cluster summaries: clusters, hosts, hosts with warnings and every GPU figure of their rows. The
    group of a vCenter's hosts in no cluster ("(no cluster)") counts its hosts and GPUs, but is no cluster."""
    summaries = list(summaries)
    clusters = sum(1 for s in summaries if s.cluster_id is not None)
    totals = {"clusters": clusters, "hosts": sum(s.hosts for s in summaries)}
    totals["hosts_with_warnings"] = sum(s.hosts_with_warnings for s in summaries)
    for name in TOTAL_FIELDS:
        totals[name] = sum(s.total(name) for s in summaries)
    return totals


STATE_LABELS = {FREE: "free", USED: "in use", PARTIAL: "partly used", RESERVED: "reserved", UNAVAILABLE: "unavailable"}

# What each count of the summary cards and lists means, said once and shown beside them as text (a hover title
# reaches neither keyboard, touch nor screen-reader users): (term id, the label the pages show, its definition).
UNAVAILABLE_DEFINITION = (
    "Idle GPUs no plan can use: on a host in maintenance mode, disconnected, not responding or not seen by the last "
    "sync; in a graphics mode that takes no compute VM; or in passthrough or MIG mode on an NVSwitch (HGX) board, "
    "where vSphere places only time-sliced vGPU."
)
COUNT_TERMS = (
    (FREE, "free", "Idle GPUs a plan can use: no VM, vGPU or reservation holds them."),
    (USED, "in use", "Held by a VM in passthrough, or running vGPUs with no room left for another profile."),
    (PARTIAL, "partly used vGPU", "Running vGPUs with room for more; the GB left are those a profile can still use."),
    (RESERVED, "reserved", "Held by a reservation of this advisor that no VM holds yet; never counted as free."),
    (UNAVAILABLE, "unavailable", UNAVAILABLE_DEFINITION),
    (
        "siloed",
        "siloed vGPU memory",
        "Free memory of vGPU GPUs that no profile can use: behind the same-size lock, between placement IDs in "
        "mixed-size mode, or in MIG memory slices where no GPU instance can start.",
    ),
    ("stranded", "stranded MIG slices", "Compute slices of MIG GPUs that no further GPU instance can use."),
)


@dataclass
class ConsumerRow:
    vm_name: str
    kind: str
    profile: str
    mig_slot: int | None
    placement_gb: int | None
    powered_on: bool
    power_state: str = PowerState.ON

    @property
    def power_note(self) -> str:
        """The VM's power state when it holds the GPU without running ("powered off", "suspended"), else ""."""
        if self.power_state == PowerState.ON:
            return ""
        return dict(PowerState.choices).get(self.power_state, self.power_state).lower()


@dataclass
class ReservationRow:
    reservation_id: int
    vm_name: str
    profile: str
    expires_at: object


@dataclass
class GpuDetail:
    """One GPU of a host page: hardware, mode, profile lock, consumers, reservations and occupancy."""

    occ: GpuOccupancy
    board: str
    numa_node: int | None
    module_id: int | None
    health: str
    consumers: list[ConsumerRow]
    reservations: list[ReservationRow]
    domains: list[dict] = field(default_factory=list)

    def __getattr__(self, name: str):  # pci_id, model, mode, state, free_gb ... come from the occupancy
        if name == "occ":
            raise AttributeError(name)
        return getattr(self.occ, name)

    @property
    def state_label(self) -> str:
        return STATE_LABELS.get(self.occ.state, self.occ.state)

    @property
    def profile_lock(self) -> str:
        return self.occ.locked_profile


def host_gpu_details(*, host: Host) -> list[GpuDetail]:
    """The live GPUs of ``host`` in PCI order, with who holds or reserves each (a constant number of queries)."""
    occs = {o.gpu_id: o for o in gpu_occupancy(gpus=Gpu.objects.filter(host=host))}
    gpus = Gpu.objects.filter(pk__in=occs).select_related("pci_device__numa_node").order_by("pci_device__pci_id")
    consumers: dict[int, list[ConsumerRow]] = defaultdict(list)
    for c in GpuConsumer.objects.filter(gpu__in=occs).select_related("vm").order_by("vm__name"):
        consumers[c.gpu_id].append(
            ConsumerRow(
                c.vm.name,
                c.kind,
                c.profile,
                c.mig_slot,
                c.placement_gb,
                c.vm.power_state == PowerState.ON,
                c.vm.power_state,
            )
        )
    item_model = Gpu._meta.get_field("reservation_items").related_model  # placement's, without importing it
    now = timezone.now()
    reservations: dict[int, list[ReservationRow]] = defaultdict(list)
    for gpu_id, rid, vm, profile, expires in (
        item_model.objects.filter(gpu__in=occs, reservation__status="active", reservation__expires_at__gt=now)
        .order_by("reservation__vm_name")
        .values_list("gpu_id", "reservation_id", "reservation__vm_name", "profile", "reservation__expires_at")
    ):
        reservations[gpu_id].append(ReservationRow(rid, vm, profile, expires))
    return [
        GpuDetail(
            occ=occs[g.pk],
            board=g.board,
            numa_node=g.pci_device.numa_node.node_id if g.pci_device.numa_node else None,
            module_id=g.module_id,
            health=g.health,
            consumers=consumers.get(g.pk, []),
            reservations=reservations.get(g.pk, []),
        )
        for g in gpus
    ]


def summarize(gpus: Iterable[GpuOccupancy | GpuDetail]) -> dict[str, int]:
    """Counts of a list of GPUs by state, and the GB left on the partly used ones."""
    out = {"total": 0, FREE: 0, USED: 0, PARTIAL: 0, RESERVED: 0, UNAVAILABLE: 0, "free_gb": 0}
    for g in gpus:
        out["total"] += 1
        out[g.state] += 1
        if g.state == PARTIAL:
            out["free_gb"] += g.free_gb
    return out
