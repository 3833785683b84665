"""MIG geometry: start slots, memory-slice ranges, compute-slice budget, and what a placement strands.

An instance of a profile needs a start slot from the profile's placement set, a free contiguous memory
range ``[slot, slot + memory_slices)``, enough free compute slices, fewer than ``max_per_gpu`` instances of
that profile, and at most one ``+me`` instance per GPU (DOMAIN 3.5). Instances are never moved.

Slot choice keeps large shapes placeable: candidate slots are compared by how many instances of each
profile (largest first) could still be added afterwards, ties to the highest slot. That reproduces
vSphere's "3g at slot 4 first, keeping slot 0 for a 4g".

**Stranded** slices: free compute (or memory) slices that no set of further instances can use; computed
exactly by a tiny search over the geometry (at most 8 memory slices).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import cache

from gpucatalog.catalog import MigGeometry, MigProfile
from gpucatalog.profiles import ProfileNameError, parse_profile_name
from placement.engine.model import GpuState
from placement.engine.vgpu import board_of


@dataclass(frozen=True)
class MigInstance:
    vm: str
    profile: MigProfile
    slot: int

    @property
    def memory_mask(self) -> int:
        return ((1 << self.profile.memory_slices) - 1) << self.slot


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

    def state(self) -> tuple[int, int, tuple[str, ...]]:
        return (self.memory_used, self.compute_used, tuple(sorted(i.profile.name for i in self.instances)))


def _fits(geometry: MigGeometry, state: tuple[int, int, tuple[str, ...]], profile: MigProfile, slot: int) -> bool:
    memory_used, compute_used, names = state
    if slot not in profile.placements or slot + profile.memory_slices > geometry.memory_slices:
        return False
    mask = ((1 << profile.memory_slices) - 1) << slot
    if memory_used & mask:
        return False
    if compute_used + profile.compute_slices > geometry.compute_slices:
        return False
    if names.count(profile.name) >= profile.max_per_gpu:
        return False
    return not (profile.media_extensions and any(n.endswith("+me") for n in names))


def _add(state: tuple[int, int, tuple[str, ...]], profile: MigProfile, slot: int) -> tuple[int, int, tuple[str, ...]]:
    memory_used, compute_used, names = state
    mask = ((1 << profile.memory_slices) - 1) << slot
    return (memory_used | mask, compute_used + profile.compute_slices, tuple(sorted((*names, profile.name))))


def free_slots(gpu: MigGpu, profile: MigProfile) -> tuple[int, ...]:
    state = gpu.state()
    return tuple(s for s in profile.placements if _fits(gpu.geometry, state, profile, s))


def refusal(gpu: MigGpu, profile: MigProfile) -> tuple[str, str] | None:
    """(code, reason) when ``profile`` cannot be added to this GPU, else None."""
    names = [i.profile.name for i in gpu.instances]
    if names.count(profile.name) >= profile.max_per_gpu:
        return ("mig-max", f"GPU {gpu.pci_id} already holds {profile.max_per_gpu} x {profile.name} (MIG maximum)")
    if profile.media_extensions and any(n.endswith("+me") for n in names):
        return ("mig-me", f"GPU {gpu.pci_id} already has a +me instance (one per GPU)")
    if gpu.compute_free < profile.compute_slices:
        return (
            "mig-compute",
            f"GPU {gpu.pci_id} has {gpu.compute_free} free compute slices, "
            f"{profile.name} needs {profile.compute_slices}",
        )
    if not free_slots(gpu, profile):
        slots = ", ".join(str(s) for s in profile.placements)
        return (
            "mig-slot",
            f"GPU {gpu.pci_id} has no free start slot for {profile.name} (slots {slots}; "
            f"{gpu.memory_free} of {gpu.geometry.memory_slices} memory slices free, not contiguous at a slot)",
        )
    return None


def _shapes(geometry: MigGeometry) -> tuple[MigProfile, ...]:
    return tuple(
        sorted(
            (p for p in geometry.profiles if not p.media_extensions),
            key=lambda p: (-p.compute_slices, -p.memory_slices, p.name),
        )
    )


@cache
def _addable(geometry: MigGeometry, state: tuple[int, int, tuple[str, ...]], profile: MigProfile) -> int:
    """How many more ``profile`` instances fit (greedy over ascending slots; exact for one equal-sized shape)."""
    n = 0
    for slot in profile.placements:
        if _fits(geometry, state, profile, slot):
            state = _add(state, profile, slot)
            n += 1
    return n


def keep_vector(geometry: MigGeometry, state: tuple[int, int, tuple[str, ...]]) -> tuple[int, ...]:
    """Instances still addable per shape, largest shape first: the 'keeps large shapes placeable' key."""
    return tuple(_addable(geometry, state, p) for p in _shapes(geometry))


def choose_slot(gpu: MigGpu, profile: MigProfile) -> int | None:
    state = gpu.state()
    best = None
    for slot in free_slots(gpu, profile):
        key = (keep_vector(gpu.geometry, _add(state, profile, slot)), slot)
        if best is None or key > best[0]:
            best = (key, slot)
    return best[1] if best is not None else None


@cache
def _max_extra(geometry: MigGeometry, state: tuple[int, int, tuple[str, ...]]) -> tuple[int, int]:
    """(most compute slices, most memory slices) further instances can use, each maximised separately."""
    best_c = best_m = 0
    for p in geometry.profiles:
        for slot in p.placements:
            if _fits(geometry, state, p, slot):
                c, m = _max_extra(geometry, _add(state, p, slot))
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
    if not name:
        return None
    try:
        parsed = parse_profile_name(name)
    except ProfileNameError:
        return geometry.by_name(name)  # a raw MIG name such as "3g.40gb"
    if parsed.mig_compute_slices is None:
        return None
    return geometry.profile(parsed.mig_compute_slices, parsed.framebuffer_gb)


def mig_view(gpu: GpuState) -> MigGpu | None:
    """The GPU's powered-on MIG instances (slots predicted when not reported); None without MIG geometry."""
    board = board_of(gpu)
    if board is None or board.mig is None:
        return None
    view = MigGpu(gpu.pci_id, gpu.index, board.mig)
    pending = []
    for c in gpu.active_consumers:
        if c.kind != "mig":
            continue
        profile = mig_profile_of(c.profile, board.mig)
        if profile is None:
            continue
        if c.mig_slot is not None:
            view = view.with_instance(MigInstance(c.vm, profile, c.mig_slot))
        else:
            pending.append((c.vm, profile))
    for vm, profile in sorted(pending, key=lambda x: x[0]):  # inferred in VM-name order
        slot = choose_slot(view, profile)
        if slot is not None:
            view = view.with_instance(MigInstance(vm, profile, slot))
    return view


def choose_mig_gpu(gpus: Iterable[MigGpu], profile: MigProfile) -> tuple[MigGpu, int] | None:
    """Our pick among GPUs: the fullest GPU that fits (keeps whole GPUs free), then the best keep-vector."""
    best = None
    for g in gpus:
        if refusal(g, profile) is not None:
            continue
        slot = choose_slot(g, profile)
        if slot is None:
            continue
        after = _add(g.state(), profile, slot)
        key = (g.compute_free, tuple(-x for x in keep_vector(g.geometry, after)), g.pci_id)
        if best is None or key < best[0]:
            best = (key, g, slot)
    return (best[1], best[2]) if best is not None else None
