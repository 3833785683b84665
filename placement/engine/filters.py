"""Hard rules (DOMAIN.md section 3): host filters, then per-GPU filters for the request's shape.

Each filter is a small class with a ``name`` whose ``filter`` returns a ``Status``; a failing status
carries a ``code`` (to aggregate "6 of 8 GPUs are passthrough-assigned") and a human ``reason``.
Per GPU, the first failing filter in ``GPU_FILTERS`` order is the one reported: the chain runs from
coarse (reserved, board, mode) to specific (same-size lock, placement IDs, MIG slots).
Set-level rules (NVLink ring, Fabric Manager partitions, same NUMA / switch) live in the GPU-set search;
``set_rules`` names them and ``gpuset`` supplies the reason.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from gpucatalog.catalog import NVSWITCH_REFUSES_MIG, NVSWITCH_REFUSES_PASSTHROUGH, Board, nvswitch_refusal
from gpucatalog.limits import MAX_SEARCH_STATES, too_complex
from gpucatalog.profiles import ProfileNameError, VgpuProfileName, parse_profile_name
from placement.engine import gpuset
from placement.engine.mig import MigGpu, mig_view
from placement.engine.mig import refusal as mig_refusal
from placement.engine.model import Consumer, GpuState, HostState
from placement.engine.request import PlacementRequest
from placement.engine.vgpu import (
    TIMESLICED_KINDS,
    TimeslicedGpu,
    board_of,
    capacity_gb,
    consumer_problem,
    equal_size_max,
    mixed_refusal,
    timesliced_view,
)

MAX_REASONS_PER_HOST = 5


@dataclass(frozen=True)
class Status:
    ok: bool
    reason: str = ""
    code: str = ""
    plugin: str = ""


SUCCESS = Status(True)


def fail(plugin: str, code: str, reason: str) -> Status:
    return Status(False, reason, code, plugin)


@dataclass(frozen=True)
class RequestContext:
    request: PlacementRequest
    profile: VgpuProfileName | None
    board: Board | None

    @classmethod
    def of(cls, request: PlacementRequest) -> RequestContext:
        return cls(request, request.vgpu_profile, request.target_board)


@dataclass
class GpuFacts:
    """One GPU with its catalog board and lazily derived vGPU/MIG views (computed once per plan)."""

    gpu: GpuState
    host: HostState
    board: Board | None = None
    _ts: TimeslicedGpu | None = field(default=None, repr=False)
    _mig: MigGpu | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.board = board_of(self.gpu)

    @property
    def timesliced(self) -> TimeslicedGpu:
        if self._ts is None:
            self._ts = timesliced_view(self.gpu)
        return self._ts

    @property
    def mig(self) -> MigGpu | None:
        if self._mig is None:
            self._mig = mig_view(self.gpu)
        return self._mig


# ---------------------------------------------------------------- host filters


class HostUsable:
    name = "HostUsable"

    def filter(self, host: HostState, ctx: RequestContext) -> Status:
        # A host the last sync did not see is gone; its connection state and maintenance flag are only the last
        # ones known, so they would name the wrong reason.
        if host.stale:
            return fail(self.name, "host-state", "host inventory is stale (last sync did not see it)")
        if host.problem:
            return fail(self.name, "host-inventory", f"host inventory cannot be used: {host.problem}")
        if host.connection_state != "connected":
            return fail(self.name, "host-state", connection_words(host.connection_state))
        if host.maintenance:
            return fail(self.name, "host-state", "host is in maintenance mode")
        if host.outdated is not None and host.outdated.exclude:
            return fail(self.name, "stale-inventory", f"inventory too old to plan on: {host.outdated.reason}")
        return SUCCESS


# vSphere's HostSystemConnectionState values other than connected, as an admin reads them
CONNECTION_WORDS = {
    "disconnected": "host is disconnected from vCenter",
    "notResponding": "host is not responding to vCenter",
}


def connection_words(state: str) -> str:
    """Why a host that is not connected cannot take a VM, in words ("host is not responding to vCenter")."""
    return CONNECTION_WORDS.get(state, f"host is not connected to vCenter (connection state {state})")


def host_warnings(host: HostState) -> tuple[str, ...]:
    """Warnings every candidate on the host carries (the engine still proposes it)."""
    if host.outdated is not None and not host.outdated.exclude:
        return (f"warning: stale inventory, {host.outdated.reason}",)
    return ()


def caveat_lines(host: HostState, pci_ids: Iterable[str]) -> tuple[str, ...]:
    """What the inventory could not tell about the chosen GPUs, one line per fabric finding naming any of them."""
    if not host.caveats:
        return ()
    chosen = set(pci_ids)
    return tuple(f"caution: {c.text}" for c in host.caveats if c.gpus & chosen)


class ClusterScope:
    name = "ClusterScope"

    def filter(self, host: HostState, ctx: RequestContext) -> Status:
        clusters = ctx.request.clusters
        if clusters and host.cluster not in clusters:
            return fail(self.name, "cluster", f"host is in cluster {host.cluster}, outside {', '.join(clusters)}")
        return SUCCESS


def gib(mb: int) -> str:
    """MB as GiB, to a tenth where it is not whole ("0.5", not "0")."""
    return f"{mb // 1024}" if mb % 1024 == 0 else f"{mb / 1024:.1f}"


class Admission:
    """GPU VMs need a full memory reservation, so free memory must cover all of it; the host must have the vCPUs
    too. Every shortfall is reported (``failures``), so the admin does not fix one and then meet the next. A host
    whose capacity is unknown (known only from a topology capture) is never rejected on it."""

    name = "Admission"

    def failures(self, host: HostState, ctx: RequestContext) -> list[Status]:
        r = ctx.request
        out = []
        if r.vcpus and host.cpu_known and 0 < host.cpu_threads < r.vcpus:
            out.append(
                fail(
                    self.name,
                    "cpu",
                    f"the VM's {r.vcpus} vCPUs exceed the host's {host.cpu_threads} logical CPUs (vSphere powers on "
                    "no VM with more vCPUs than its host has logical CPUs)",
                )
            )
        elif r.vcpus and host.cpu_known and host.cpu_free < r.vcpus:
            held = f" after the {host.reserved_vcpus} active reservations hold" if host.reserved_vcpus else ""
            policy = f" at {host.vcpus_per_cpu:g} vCPUs per logical CPU" if host.vcpus_per_cpu != 1 else ""
            out.append(
                fail(self.name, "cpu", f"host has {host.cpu_free} free vCPUs{policy}{held}, the VM needs {r.vcpus}")
            )
        if r.memory_mb and host.capacity_known and host.memory_free_mb < r.memory_mb:
            held = (
                f" after the {gib(host.reserved_memory_mb)} GiB active reservations hold"
                if host.reserved_memory_mb
                else ""
            )
            out.append(
                fail(
                    self.name,
                    "memory",
                    f"host has {gib(host.memory_free_mb)} GiB unreserved memory{held}, the VM needs a full "
                    f"{gib(r.memory_mb)} GiB reservation",
                )
            )
        return out

    def filter(self, host: HostState, ctx: RequestContext) -> Status:
        """The first shortfall (``check_host`` reports them all)."""
        found = self.failures(host, ctx)
        return found[0] if found else SUCCESS


class BoardModel:
    name = "BoardModel"

    def filter(self, host: HostState, ctx: RequestContext) -> Status:
        if ctx.board is None:
            return SUCCESS
        boards = Counter(g.board or g.model for g in host.gpus)
        if ctx.board.key in boards:
            return SUCCESS
        have = ", ".join(f"{n} x {b}" for b, n in sorted(boards.items())) or "no GPUs"
        return fail(self.name, "board", f"no {ctx.board.key} GPUs (host has {have})")


class ProfileOffered:
    """vSphere runs only the vGPU types it lists for the host (``config.sharedPassthruGpuTypes``): when the list is
    known, the profile must be on it (a GPU of its board is not eligible otherwise)."""

    name = "ProfileOffered"

    def filter(self, host: HostState, ctx: RequestContext) -> Status:
        profile = ctx.profile
        offered = host.offered_profiles
        if profile is None or not offered or profile.name in offered:
            return SUCCESS
        board = profile.board.key if profile.board is not None else None
        if not any(g.board == board for g in host.gpus):  # no GPU of its board: BoardModel says so
            return SUCCESS
        return fail(
            self.name, "profile-offered", f"host does not offer {profile.name} ({offered_text(offered, profile)})"
        )


def offered_text(offered: frozenset[str], profile: VgpuProfileName) -> str:
    """What the host offers of the profile's board, e.g. "vCenter lists nvidia_h100xm-4c ... -80c and MIG-backed
    nvidia_h100xm-1-10c ... -7-80c for H100-80GB"."""
    board = profile.board.key if profile.board is not None else profile.board_code
    return _offered_text(offered, board)


@lru_cache(maxsize=1024)
def _offered_text(offered: frozenset[str], board: str) -> str:
    timesliced, mig = [], []
    for name in offered:
        try:
            p = parse_profile_name(name)
        except ProfileNameError:
            continue
        key = p.board.key if p.board is not None else p.board_code
        if key == board:
            (mig if p.is_mig else timesliced).append((p.mig_compute_slices or 0, p.framebuffer_gb, p.name))
    if not timesliced and not mig:
        return f"vCenter lists no {board} profiles for it"
    parts = [_span([n for *_, n in sorted(timesliced)])] if timesliced else []
    if mig:
        parts.append(f"MIG-backed {_span([n for *_, n in sorted(mig)])}")
    return f"vCenter lists {' and '.join(parts)} for {board}"


def _span(names: list[str]) -> str:
    """A few names in full; more as "nvidia_h100xm-4c ... -80c" (first and last, the board prefix said once)."""
    if len(names) <= 3:
        return ", ".join(names)
    first, last = names[0], names[-1]
    prefix = first.split("-", 1)[0]
    tail = last[len(prefix) :] if last.startswith(prefix + "-") else last
    return f"{first} ... {tail}"


class FramebufferMinimum:
    name = "FramebufferMinimum"

    def filter(self, host: HostState, ctx: RequestContext) -> Status:
        need = ctx.request.min_framebuffer_gb
        if need is None or not ctx.request.whole_gpu:
            return SUCCESS
        if any(capacity_gb(g, board_of(g)) >= need for g in host.gpus):
            return SUCCESS
        return fail(self.name, "framebuffer-min", f"no GPU with at least {need} GB framebuffer")


class HasGpus:
    name = "HasGpus"

    def filter(self, host: HostState, ctx: RequestContext) -> Status:
        if len(host.gpus) < ctx.request.gpus_per_vm:
            return fail(
                self.name,
                "gpu-count",
                f"host has {len(host.gpus)} GPU{'' if len(host.gpus) == 1 else 's'}, "
                f"the VM needs {ctx.request.gpus_per_vm}",
            )
        return SUCCESS


class ConsumersReadable:
    """A running time-sliced or MIG consumer the engine cannot size makes its GPU's room unknown. Only its GPU is
    left out (``ConsumersKnown``), except where vSphere picks the GPU for this request among GPUs whose room decides
    the pick: a time-sliced vGPU on a mixed-size GPU (least-used GPU) or a MIG instance on a MIG GPU. There the pick
    itself is unknown, so that host is rejected, with the reason; the plan answers for the rest."""

    name = "ConsumersReadable"

    def filter(self, host: HostState, ctx: RequestContext) -> Status:
        r = ctx.request
        if r.whole_gpu:
            return SUCCESS  # an unreadable consumer sits on a vGPU-mode GPU, which a whole-GPU request never takes
        for g in host.gpus:
            if g.graphics_type != "sharedDirect" or not _decides_pick(g, r):
                continue
            problem = consumer_problem(g)
            if problem:
                return fail(self.name, "consumer", f"cannot interpret a running consumer: {problem}")
        return SUCCESS


def _decides_pick(g: GpuState, request: PlacementRequest) -> bool:
    mig_mode = g.mig_mode
    if request.consumption == "mig":
        return mig_mode
    return not mig_mode and g.vgpu_mode == "mixedSize"


class HostSize:
    """A request above the size the exact GPU-set search handles in reasonable time on this host
    (``gpucatalog.limits``): counted in distinct GPU sets up to swaps of interchangeable GPUs, so 24 GPUs behind
    shared PCIe switches and 24 GPUs in 12 bridged pairs plan every size, 18 GPUs wired as a mesh plan nothing."""

    name = "HostSize"

    def filter(self, host: HostState, ctx: RequestContext) -> Status:
        if 1 << len(host.gpus) <= MAX_SEARCH_STATES:
            return SUCCESS  # few enough sets and states whatever the wiring
        topo, _ = gpuset.topology_for(host)
        why = too_complex([len(c) for c in topo.twins], ctx.request.gpus_per_vm, topo.tree, topo.block_sizes)
        return fail(self.name, "host-size", why) if why else SUCCESS


HOST_FILTERS = (
    HostUsable(),
    ClusterScope(),
    HasGpus(),
    HostSize(),
    BoardModel(),
    ProfileOffered(),
    FramebufferMinimum(),
    Admission(),
    ConsumersReadable(),
)


# ---------------------------------------------------------------- GPU filters


class NotReserved:
    name = "NotReserved"

    def filter(self, f: GpuFacts, ctx: RequestContext) -> Status:
        if f.gpu.reserved:
            return fail(self.name, "reserved", f"GPU {f.gpu.pci_id} is reserved by an accepted plan")
        return SUCCESS


class GpuBoard:
    name = "GpuBoard"

    def filter(self, f: GpuFacts, ctx: RequestContext) -> Status:
        if ctx.board is None:
            return SUCCESS
        if f.board is None or f.board.key != ctx.board.key:
            have = f.board.key if f.board else f.gpu.model
            return fail(self.name, "board", f"GPU {f.gpu.pci_id} is a {have}, not a {ctx.board.key}")
        return SUCCESS


class HardwareLabel:
    """Dynamic DirectPath I/O: vSphere assigns only a GPU whose hardware label matches the device's custom label."""

    name = "HardwareLabel"

    def filter(self, f: GpuFacts, ctx: RequestContext) -> Status:
        want = ctx.request.hardware_label
        if want is None or ctx.request.consumption != "dynamic-passthrough" or f.gpu.hardware_label == want:
            return SUCCESS
        have = f"hardware label {f.gpu.hardware_label!r}" if f.gpu.hardware_label else "no hardware label"
        return fail(
            self.name,
            "hardware-label",
            f"GPU {f.gpu.pci_id} has {have}, not {want!r} (Dynamic DirectPath assigns only GPUs of the device's label)",
        )


class GpuFramebuffer:
    name = "GpuFramebuffer"

    def filter(self, f: GpuFacts, ctx: RequestContext) -> Status:
        need = ctx.request.min_framebuffer_gb
        if need is None or not ctx.request.whole_gpu:
            return SUCCESS
        have = capacity_gb(f.gpu, f.board)
        if have < need:
            return fail(self.name, "framebuffer-min", f"GPU {f.gpu.pci_id} has {have} GB, below {need} GB")
        return SUCCESS


class HgxRules:
    """NVSwitch (HGX) boards under vSphere take time-sliced vGPU only."""

    name = "HgxRules"

    def filter(self, f: GpuFacts, ctx: RequestContext) -> Status:
        if not f.host.nvswitch:
            return SUCCESS
        refused = nvswitch_refusal(whole_gpu=ctx.request.whole_gpu, mig=ctx.request.consumption == "mig")
        if refused == NVSWITCH_REFUSES_PASSTHROUGH:
            return fail(
                self.name,
                "hgx-passthrough",
                f"GPU {f.gpu.pci_id} is on an NVSwitch board: vSphere allows no passthrough",
            )
        if refused == NVSWITCH_REFUSES_MIG:
            return fail(
                self.name, "hgx-mig", f"GPU {f.gpu.pci_id} is on an NVSwitch board: vSphere allows no MIG-backed vGPU"
            )
        return SUCCESS


class ModeGate:
    """graphicsType/vgpuMode decide which consumption a GPU accepts; MIG and time-sliced never mix."""

    name = "ModeGate"

    def filter(self, f: GpuFacts, ctx: RequestContext) -> Status:
        g = f.gpu
        active = g.active_consumers
        r = ctx.request
        if r.whole_gpu:
            if g.graphics_type != "direct":
                return fail(
                    self.name, "not-direct", f"GPU {g.pci_id} is in {g.graphics_type} mode, not passthrough (direct)"
                )
            if active:
                return _held(self.name, g.pci_id, active)
            return SUCCESS
        if g.graphics_type != "sharedDirect":
            return fail(
                self.name, "not-shared-direct", f"GPU {g.pci_id} is in {g.graphics_type} mode, not vGPU (sharedDirect)"
            )
        whole = [c for c in active if c.kind in ("passthrough", "dynamic-passthrough")]
        if whole:
            return _held(self.name, g.pci_id, whole)
        mig_mode = g.mig_mode
        if r.consumption == "mig":
            if not mig_mode:
                return fail(self.name, "mig-disabled", f"GPU {g.pci_id} does not have MIG enabled")
            ts = [c for c in active if c.kind in TIMESLICED_KINDS]
            if ts:
                return fail(
                    self.name, "mixed-mig", f"GPU {g.pci_id} holds time-sliced vGPUs ({ts[0].vm}); MIG cannot join"
                )
            return SUCCESS
        if mig_mode:
            return fail(self.name, "mig-enabled", f"GPU {g.pci_id} has MIG enabled; time-sliced vGPUs cannot share it")
        return SUCCESS


def _held(plugin: str, pci_id: str, holders: Sequence[Consumer]) -> Status:
    """A whole GPU taken by VMs in vCenter ("passthrough-assigned") or only by the advisor's reservations."""
    names = ", ".join(sorted({c.holder for c in holders}))
    if all(c.reservation for c in holders):
        return fail(plugin, "reservation", f"GPU {pci_id} is held by {names}, an accepted plan not yet in vCenter")
    return fail(plugin, "passthrough-assigned", f"GPU {pci_id} is assigned to {names}")


class ConsumersKnown:
    """A GPU whose running consumers the engine cannot interpret has unknown room: left out, with the reason."""

    name = "ConsumersKnown"

    def filter(self, f: GpuFacts, ctx: RequestContext) -> Status:
        if f.gpu.graphics_type != "sharedDirect":
            return SUCCESS
        problem = consumer_problem(f.gpu)
        if problem:
            return fail(self.name, "consumer", f"{problem} (the engine cannot interpret it: the GPU's room is unknown)")
        return SUCCESS


class SameSizeLock:
    """A GPU locked to another profile; one that is also full says it is full first (the lock is then moot: no
    vGPU of any type fits until VMs on it power off)."""

    name = "SameSizeLock"

    def filter(self, f: GpuFacts, ctx: RequestContext) -> Status:
        if ctx.profile is None or ctx.request.consumption == "mig" or f.timesliced.mode != "sameSize":
            return SUCCESS
        view = f.timesliced
        lock = view.lock
        if lock is not None and lock.profile != ctx.profile.name:
            cap = equal_size_max(view.board, view.capacity_gb, lock.size_gb)
            n = view.count(lock.profile)
            if n >= cap or view.free_gb <= 0:
                return fail(self.name, "lock-full", _full_text(f.gpu, lock.profile, n, cap if n >= cap else None))
            return fail(
                self.name,
                "same-size-lock",
                f"GPU {f.gpu.pci_id} is locked to {lock.profile} by {lock.vm} (same-size mode)",
            )
        return SUCCESS


def _full_text(gpu: GpuState, profile: str, n: int, cap: int | None) -> str:
    """'GPU X holds 1 x grid_a100d-80c (VM t1d-b), its maximum 1'; without a maximum reached, 'no framebuffer left'."""
    holders = sorted({c.holder for c in gpu.consumers if c.holds_device})
    by = f" ({', '.join(holders[:3])}{' ...' if len(holders) > 3 else ''})" if holders else ""
    tail = f", its maximum {cap}" if cap is not None else ": no framebuffer left"
    return f"GPU {gpu.pci_id} holds {n} x {profile}{by}{tail}"


class EqualSizeMaximum:
    """NVIDIA's equal-size maximum, never above framebuffer // size (H100 16C: catalog 6, physically 5)."""

    name = "EqualSizeMaximum"

    def filter(self, f: GpuFacts, ctx: RequestContext) -> Status:
        if ctx.profile is None or ctx.request.consumption == "mig" or f.timesliced.mode != "sameSize":
            return SUCCESS
        view = f.timesliced
        cap = equal_size_max(view.board, view.capacity_gb, ctx.profile.framebuffer_gb)
        n = view.count(ctx.profile.name)
        if n >= cap:
            return fail(self.name, "equal-max", _full_text(f.gpu, ctx.profile.name, n, cap))
        return SUCCESS


class FramebufferNotOvercommitted:
    name = "FramebufferNotOvercommitted"

    def filter(self, f: GpuFacts, ctx: RequestContext) -> Status:
        if ctx.profile is None or ctx.request.consumption == "mig":
            return SUCCESS
        view = f.timesliced
        if view.free_gb < ctx.profile.framebuffer_gb:
            return fail(
                self.name,
                "framebuffer",
                f"GPU {f.gpu.pci_id} has {view.free_gb} GB free, "
                f"{ctx.profile.name} needs {ctx.profile.framebuffer_gb} GB",
            )
        return SUCCESS


class MixedSizePlacement:
    name = "MixedSizePlacement"

    def filter(self, f: GpuFacts, ctx: RequestContext) -> Status:
        if ctx.profile is None or ctx.request.consumption == "mig" or f.timesliced.mode != "mixedSize":
            return SUCCESS
        refused = mixed_refusal(f.timesliced, ctx.profile)
        return fail(self.name, *refused) if refused else SUCCESS


class MigGeometryFit:
    name = "MigGeometryFit"

    def filter(self, f: GpuFacts, ctx: RequestContext) -> Status:
        if ctx.request.consumption != "mig" or ctx.profile is None:
            return SUCCESS
        view = f.mig
        mp = ctx.profile.mig_profile
        if view is None or mp is None:
            return fail(self.name, "mig-geometry", f"GPU {f.gpu.pci_id} has no MIG geometry in the catalog")
        refused = mig_refusal(view, mp)
        return fail(self.name, *refused) if refused else SUCCESS


GPU_FILTERS = (
    NotReserved(),
    GpuBoard(),
    HardwareLabel(),
    GpuFramebuffer(),
    HgxRules(),
    ModeGate(),
    ConsumersKnown(),
    SameSizeLock(),
    EqualSizeMaximum(),
    FramebufferNotOvercommitted(),
    MixedSizePlacement(),
    MigGeometryFit(),
)

# How a code reads when several GPUs share it: "6 of 8 GPUs are passthrough-assigned".
PHRASES = {
    "reserved": "are reserved by accepted plans",
    "board": "are another board",
    "hardware-label": "have another hardware label",
    "framebuffer-min": "have too little framebuffer",
    "hgx-passthrough": "are on an NVSwitch board (vSphere: time-sliced vGPU only, no passthrough)",
    "hgx-mig": "are on an NVSwitch board (vSphere: no MIG-backed vGPU)",
    "not-direct": "are not in passthrough (direct) mode",
    "passthrough-assigned": "are passthrough-assigned",
    "reservation": "are held by the advisor's reservations",
    "not-shared-direct": "are not in vGPU (sharedDirect) mode",
    "mig-disabled": "do not have MIG enabled",
    "mig-enabled": "have MIG enabled",
    "mixed-mig": "hold time-sliced vGPUs",
    "same-size-lock": "are locked to another profile",
    "lock-full": "are full with another profile",
    "equal-max": "are full with this profile (same-size maximum)",
    "framebuffer": "lack free framebuffer",
    "mixed-max": "are at the mixed-size maximum",
    "placement-id": "have no free placement ID for the profile",
    "mig-max": "are at the MIG maximum for the profile",
    "mig-me": "already have a +me instance",
    "mig-compute": "lack free MIG compute slices",
    "mig-slot": "have no free MIG start slot",
    "mig-geometry": "have no MIG geometry",
    "consumer": "run consumers the engine cannot interpret",
}


@dataclass(frozen=True)
class GpuVerdicts:
    eligible: tuple[GpuFacts, ...]
    refused: tuple[tuple[GpuFacts, Status], ...]


def check_host(host: HostState, ctx: RequestContext) -> list[Status]:
    """Failing host-filter statuses (all of them, so the user sees every blocker at once)."""
    out: list[Status] = []
    for f in HOST_FILTERS:
        if isinstance(f, Admission):
            out.extend(f.failures(host, ctx))
            continue
        status = f.filter(host, ctx)
        if not status.ok:
            out.append(status)
    return out


def check_gpus(host: HostState, ctx: RequestContext) -> GpuVerdicts:
    eligible, refused = [], []
    for g in sorted(host.gpus, key=lambda g: g.pci_id):
        facts = GpuFacts(g, host)
        for flt in GPU_FILTERS:
            status = flt.filter(facts, ctx)
            if not status.ok:
                refused.append((facts, status))
                break
        else:
            eligible.append(facts)
    return GpuVerdicts(tuple(eligible), tuple(refused))


# codes whose grouped line quotes one GPU's own reason: which profile locks it, which VM holds it
EXAMPLE_CODES = frozenset(
    {
        "same-size-lock",
        "lock-full",
        "hardware-label",
        "placement-id",
        "mig-slot",
        "framebuffer",
        "passthrough-assigned",
        "reservation",
        "equal-max",
        "consumer",
    }
)


def aggregate(refused: Sequence[tuple[GpuFacts, Status]], total: int, limit: int = MAX_REASONS_PER_HOST) -> list[str]:
    """One line per failure code, most common first; a single GPU keeps its specific reason."""
    by_code: dict[str, list[Status]] = {}
    for _, s in refused:
        by_code.setdefault(s.code, []).append(s)
    lines = []
    for code, statuses in sorted(by_code.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        if len(statuses) == 1:
            lines.append(statuses[0].reason)
        else:
            phrase = PHRASES.get(code, f"fail {statuses[0].plugin}")
            line = f"{len(statuses)} of {total} GPUs {phrase}"
            if code in EXAMPLE_CODES:
                line += f", e.g. {statuses[0].reason}"  # the reason may hold parentheses of its own
            lines.append(line)
    return lines[:limit]
