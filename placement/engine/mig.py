"""MIG on a GPU the engine plans: the running instances (slots read or inferred), why a profile cannot be added,
and what a placement strands.

The slot rules themselves (start slots, contiguous memory slices, compute budget, per-GPU maxima, one ``+me``;
DOMAIN 3.5) and vSphere's slot choice ("3g at slot 4 first, keeping slot 0 for a 4g") are in
``gpucatalog.mig_layout``, which the inventory reads a GPU's state with too.

**Stranded** slices: free compute (or memory) slices that no set of further instances can use; computed
exactly by a tiny search over the geometry (at most 8 memory slices).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import cache

from gpucatalog import mig_layout as layout
from gpucatalog.catalog import MigGeometry, MigProfile
from gpucatalog.profiles import ProfileNameError, parse_profile_name
from placement.engine.model import RESERVATION_PREFIX, Consumer, GpuState
from placement.engine.vgpu import board_of

# A GPU instance `nvidia-smi mig -lgi` shows that no VM holds is a consumer of kind "mig" named so: its profile is
# the raw MIG name ("1g.6gb+me") and its slot the instance's start. The parentheses keep it apart from VM names.
_UNHELD = re.compile(r"GPU instance ([0-9]+) \(no VM\)")


def unheld_consumer_name(instance_id: int) -> str:
    """The consumer name of GPU instance ``instance_id`` when no VM holds it."""
    return layout.unheld_instance_name(instance_id)


def is_unheld(vm: str) -> bool:
    """Whether a consumer is a GPU instance no VM holds (never moved, never a VM to plan)."""
    return _UNHELD.fullmatch(vm) is not None


def _who(vm: str) -> str:
    match = _UNHELD.fullmatch(vm)
    if match:
        return f"GPU instance {match.group(1)}, which no VM holds:"
    return f"{Consumer(vm, 'mig').holder}:"


@dataclass(frozen=True)
class MigInstance:
    vm: str
    profile: MigProfile
    slot: int

    @property
    def memory_mask(self) -> int:
        return layout.memory_mask(self.profile, self.slot)


@dataclass(frozen=True)
class MigGpu:
    pci_id: str
    index: int
    geometry: MigGeometry
    instances: tuple[MigInstance, ...] = ()

    @property
    def memory_used(self) -> int:
        mask = 0
        for i in self.instances:
            mask |= i.memory_mask
        return mask

    @property
    def compute_used(self) -> int:
        return sum(i.profile.compute_slices for i in self.instances)

    @property
    def compute_free(self) -> int:
        return self.geometry.compute_slices - self.compute_used

    @property
    def memory_free(self) -> int:
        return self.geometry.memory_slices - bin(self.memory_used).count("1")

    def with_instance(self, instance: MigInstance) -> MigGpu:
        return replace(self, instances=(*self.instances, instance))

    def state(self) -> layout.Layout:
        return (self.memory_used, self.compute_used, tuple(sorted(i.profile.name for i in self.instances)))


def free_slots(gpu: MigGpu, profile: MigProfile) -> tuple[int, ...]:
    return layout.free_slots(gpu.geometry, gpu.state(), profile)


def refusal(gpu: MigGpu, profile: MigProfile) -> tuple[str, str] | None:
    """(code, reason) when ``profile`` cannot be added to this GPU, else None."""
    names = [i.profile.name for i in gpu.instances]
    unheld = [i for i in gpu.instances if is_unheld(i.vm)]
    counting = f" (counting {_held_by(unheld)})" if unheld else ""
    if names.count(profile.name) >= profile.max_per_gpu:
        return (
            "mig-max",
            f"GPU {gpu.pci_id} already holds {profile.max_per_gpu} x {profile.name} (MIG maximum){counting}",
        )
    if profile.media_extensions and any(n.endswith("+me") for n in names):
        return ("mig-me", f"GPU {gpu.pci_id} already has a +me instance (one per GPU){counting}")
    if gpu.compute_free < profile.compute_slices:
        return (
            "mig-compute",
            f"GPU {gpu.pci_id} has {_count(gpu.compute_free, 'free compute slice')}, "
            f"{profile.name} needs {profile.compute_slices}{counting}",
        )
    if not free_slots(gpu, profile):
        return (
            "mig-slot",
            f"GPU {gpu.pci_id} has no free start slot for {profile.name}: {_slot_refusal(gpu, profile)}",
        )
    return None


def _slot_refusal(gpu: MigGpu, profile: MigProfile) -> str:
    """Why every start slot of ``profile`` is taken (compute, count and +me already pass): which running instances
    cover its slots, and whether the free memory slices are merely elsewhere or not contiguous at all."""
    need, total = profile.memory_slices, gpu.geometry.memory_slices
    if gpu.memory_free < need:
        return f"{gpu.memory_free} of {total} memory slices are free, it needs {need}"
    starts = [s for s in profile.placements if s + need <= total]
    blockers = {i for s in starts for i in _overlapping(gpu, ((1 << need) - 1) << s)}
    where = f"slot {starts[0]}" if len(starts) == 1 else f"slots {_or(starts)}"
    held = f"it starts only at {where}, held by {_held_by(blockers)}"
    run = _free_run(gpu, need)
    if run is not None:
        return f"{held}; memory slices {run[0]}-{run[1]} are free, but it cannot start there"
    if gpu.memory_free == need:
        return f"{held}; the {need} free memory slices are not contiguous"
    return f"{held}; no {need} of the {gpu.memory_free} free memory slices are contiguous"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _or(values: list[int]) -> str:
    return ", ".join(map(str, values[:-1])) + f" or {values[-1]}" if len(values) > 1 else str(values[0])


def _free_run(gpu: MigGpu, length: int) -> tuple[int, int] | None:
    """The first and last slice of the first free run of at least ``length`` memory slices, or None."""
    used, start = gpu.memory_used, None
    for s in range(gpu.geometry.memory_slices + 1):
        if s < gpu.geometry.memory_slices and not used >> s & 1:
            start = s if start is None else start
            continue
        if start is not None and s - start >= length:
            return start, s - 1
        start = None
    return None


def keep_vector(geometry: MigGeometry, state: layout.Layout) -> tuple[int, ...]:
    """Instances still addable per shape, largest shape first: the 'keeps large shapes placeable' key."""
    return layout.keep_vector(geometry, state)


def choose_slot(gpu: MigGpu, profile: MigProfile) -> int | None:
    return layout.choose_slot(gpu.geometry, gpu.state(), profile)


@cache
def _max_extra(geometry: MigGeometry, state: layout.Layout) -> tuple[int, int]:
    """(most compute slices, most memory slices) further instances can use, each maximised separately."""
    best_c = best_m = 0
    for p in geometry.profiles:
        for slot in p.placements:
            if layout.fits(geometry, state, p, slot):
                c, m = _max_extra(geometry, layout.add(state, p, slot))
                best_c = max(best_c, c + p.compute_slices)
                best_m = max(best_m, m + p.memory_slices)
    return best_c, best_m


def stranded(gpu: MigGpu) -> tuple[int, int]:
    """(compute slices, memory slices) that stay idle whatever is added later."""
    c, m = _max_extra(gpu.geometry, gpu.state())
    return gpu.compute_free - c, gpu.memory_free - m


def place(gpu: MigGpu, vm: str, profile: MigProfile) -> MigGpu | None:
    if refusal(gpu, profile) is not None:
        return None
    slot = choose_slot(gpu, profile)
    return gpu.with_instance(MigInstance(vm, profile, slot)) if slot is not None else None


def mig_profile_of(name: str | None, geometry: MigGeometry) -> MigProfile | None:
    """The MIG profile a vGPU type name (``grid_a100d-3-40c``, ``grid_a30-1-6cme``) or a raw MIG name (``3g.40gb``,
    ``1g.10gb+me``) stands for on a GPU of ``geometry``; None when it names none there."""
    return _read_mig_profile(name, geometry)[0]


def _read_mig_profile(name: str | None, geometry: MigGeometry) -> tuple[MigProfile | None, str]:
    """(profile, "") or (None, why the name gives no MIG profile of this geometry)."""
    if not name:
        return None, "it names no MIG profile"
    try:
        parsed = parse_profile_name(name)
    except ProfileNameError as exc:
        raw = geometry.by_name(name.strip().lower())  # a raw MIG name such as "3g.40gb"
        return (raw, "") if raw is not None else (None, f"{name!r} cannot be read ({exc})")
    if parsed.mig_compute_slices is None:
        return None, f"{parsed.name} is a time-sliced type, not MIG-backed"
    profile = geometry.profile(parsed.mig_compute_slices, parsed.framebuffer_gb, parsed.media_extensions)
    if profile is None:
        what = f"{parsed.mig_compute_slices}g.{parsed.framebuffer_gb}gb{'+me' if parsed.media_extensions else ''}"
        return None, f"{parsed.name} is MIG {what}, which this GPU's MIG geometry does not have"
    return profile, ""


def mig_view(gpu: GpuState) -> MigGpu | None:
    """The GPU's powered-on MIG instances (slots predicted when not reported); None without MIG geometry.

    A consumer it cannot place (see ``mig_consumer_problem``) is left out: the host filter ConsumersReadable
    rejects such a host, with the reason, before it is planned."""
    return _read_mig(gpu)[0]


def mig_consumer_problem(gpu: GpuState) -> str | None:
    """Why a running MIG consumer of this GPU cannot be interpreted (unreadable or foreign profile, no MIG geometry,
    a reported slot its profile cannot hold, no slot left for it), or None. Such a GPU's free slices are unknown,
    so its host is rejected with this reason (never treated as free)."""
    return _read_mig(gpu)[1]


def _read_mig(gpu: GpuState) -> tuple[MigGpu | None, str | None]:
    mig_consumers = [c for c in gpu.active_consumers if c.kind == "mig"]
    board = board_of(gpu)
    if board is None or board.mig is None:
        if not mig_consumers:
            return None, None
        c = mig_consumers[0]
        what = board.key if board is not None else (gpu.model or "this GPU model")
        profile = c.profile or "(no profile)"
        return None, f"{_who(c.vm)} MIG-backed vGPU {profile} on a GPU ({what}) with no MIG geometry in the catalog"
    view = MigGpu(gpu.pci_id, gpu.index, board.mig)
    problem = None
    pending = []
    for c in mig_consumers:
        profile, why = _read_mig_profile(c.profile, board.mig)
        if profile is None:
            problem = problem or f"{_who(c.vm)} MIG profile {why}"
            continue
        if c.mig_slot is None:
            pending.append((c.vm, profile))
        elif layout.fits(view.geometry, view.state(), profile, c.mig_slot):
            view = view.with_instance(MigInstance(c.vm, profile, c.mig_slot))
        else:
            misfit = _misfit(view, profile, c.mig_slot)
            problem = problem or f"{_who(c.vm)} its {profile.name} is reported at slot {c.mig_slot}, {misfit}"
    pending.sort(key=lambda x: x[0])  # inferred in VM-name order
    slots = layout.arrange(view.geometry, view.state(), [profile for _, profile in pending])
    if slots is not None:
        for (vm, profile), slot in zip(pending, slots, strict=True):
            view = view.with_instance(MigInstance(vm, profile, slot))
        return view, problem
    for vm, profile in pending:  # no layout holds them all: name the first that finds no slot
        slot = choose_slot(view, profile)
        if slot is None:
            return (
                view,
                problem or f"VM {vm}: its {profile.name} fits in no free start slot beside {_held_by(view.instances)}",
            )
        view = view.with_instance(MigInstance(vm, profile, slot))
    raise AssertionError("arrange found no layout, yet every pending instance found a slot")


def _misfit(gpu: MigGpu, profile: MigProfile, slot: int) -> str:
    """Why a reported instance cannot sit at ``slot`` beside the instances already read."""
    if slot not in profile.placements or slot + profile.memory_slices > gpu.geometry.memory_slices:
        return f"where it cannot start (slots {', '.join(map(str, profile.placements))})"
    clash = _overlapping(gpu, ((1 << profile.memory_slices) - 1) << slot)
    if clash:
        return f"overlapping {_held_by(clash)}"
    if gpu.compute_free < profile.compute_slices:
        left = _count(gpu.compute_free, "compute slice")
        return f"but only {left} {'is' if gpu.compute_free == 1 else 'are'} left beside the other instances"
    if profile.media_extensions and any(i.profile.media_extensions for i in gpu.instances):
        return "a second +me instance (a GPU holds one)"
    return f"beyond the MIG maximum of {profile.max_per_gpu} x {profile.name}"


def _overlapping(gpu: MigGpu, mask: int) -> list[MigInstance]:
    return [i for i in gpu.instances if i.memory_mask & mask]


def _slots_text(i: MigInstance) -> str:
    last = i.slot + i.profile.memory_slices - 1
    return f"slot {i.slot}" if last == i.slot else f"slots {i.slot}-{last}"


def _held_by(instances: Iterable[MigInstance]) -> str:
    """Each instance as "VM a's 3g.40gb (slots 0-3)", in slot order (a reservation is named as one)."""
    return " and ".join(_instance_text(i) for i in sorted(instances, key=lambda i: i.slot))


def _instance_text(i: MigInstance) -> str:
    unheld = _UNHELD.fullmatch(i.vm)
    if unheld:
        return f"GPU instance {unheld.group(1)} ({i.profile.name}, {_slots_text(i)}), which no VM holds"
    if i.vm.startswith(RESERVATION_PREFIX):
        return f"the {i.profile.name} reserved for {i.vm.removeprefix(RESERVATION_PREFIX)} ({_slots_text(i)})"
    return f"VM {i.vm}'s {i.profile.name} ({_slots_text(i)})"


def choose_mig_gpu(gpus: Iterable[MigGpu], profile: MigProfile) -> tuple[MigGpu, int] | None:
    """Our pick among GPUs: the fullest GPU that fits (keeps whole GPUs free), then the best keep-vector."""
    best = None
    for g in gpus:
        if refusal(g, profile) is not None:
            continue
        slot = choose_slot(g, profile)
        if slot is None:
            continue
        after = layout.add(g.state(), profile, slot)
        key = (g.compute_free, tuple(-x for x in keep_vector(g.geometry, after)), g.pci_id)
        if best is None or key < best[0]:
            best = (key, g, slot)
    return (best[1], best[2]) if best is not None else None
