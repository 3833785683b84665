"""MIG slot rules on one GPU: where an instance of a profile can start beside the instances the GPU holds, and
which start slot vSphere takes for the next one (DOMAIN 3.5).

An instance needs a start slot from its profile's placement set, a free contiguous memory range
``[slot, slot + memory_slices)``, enough free compute slices, fewer than ``max_per_gpu`` instances of its profile,
and at most one ``+me`` instance per GPU. Instances are never moved.

A GPU's instances are summed up as a ``Layout``: (memory slices in use as a bit mask, compute slices in use, the
instances' profile names, sorted). The engine plans with these rules and the inventory reads a GPU's state with
them, so both call a MIG GPU full at the same point.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

from gpucatalog.catalog import MigGeometry, MigProfile

Layout = tuple[int, int, tuple[str, ...]]
EMPTY: Layout = (0, 0, ())


def unheld_instance_name(instance_id: int) -> str:
    """How a GPU instance no VM holds is named where VMs are: "GPU instance 4 (no VM)"."""
    return f"GPU instance {instance_id} (no VM)"


def memory_mask(profile: MigProfile, slot: int) -> int:
    """The memory slices an instance of ``profile`` started at ``slot`` holds, as a bit mask."""
    return ((1 << profile.memory_slices) - 1) << slot


def fits(geometry: MigGeometry, layout: Layout, profile: MigProfile, slot: int) -> bool:
    """Whether an instance of ``profile`` can start at ``slot`` beside the instances of ``layout``."""
    memory_used, compute_used, names = layout
    if slot not in profile.placements or slot + profile.memory_slices > geometry.memory_slices:
        return False
    if memory_used & memory_mask(profile, slot):
        return False
    if compute_used + profile.compute_slices > geometry.compute_slices:
        return False
    if names.count(profile.name) >= profile.max_per_gpu:
        return False
    return not (profile.media_extensions and any(n.endswith("+me") for n in names))


def add(layout: Layout, profile: MigProfile, slot: int) -> Layout:
    memory_used, compute_used, names = layout
    return (
        memory_used | memory_mask(profile, slot),
        compute_used + profile.compute_slices,
        tuple(sorted((*names, profile.name))),
    )


def free_slots(geometry: MigGeometry, layout: Layout, profile: MigProfile) -> tuple[int, ...]:
    return tuple(s for s in profile.placements if fits(geometry, layout, profile, s))


def can_start(geometry: MigGeometry, layout: Layout) -> bool:
    """Whether an instance of some profile of ``geometry`` can still start on the GPU."""
    return any(free_slots(geometry, layout, p) for p in geometry.profiles)


def shapes(geometry: MigGeometry) -> tuple[MigProfile, ...]:
    """The profiles without media extensions, largest first."""
    return tuple(
        sorted(
            (p for p in geometry.profiles if not p.media_extensions),
            key=lambda p: (-p.compute_slices, -p.memory_slices, p.name),
        )
    )


@cache
def addable(geometry: MigGeometry, layout: Layout, profile: MigProfile) -> int:
    """How many more ``profile`` instances fit (greedy over ascending slots; exact for one equal-sized shape)."""
    n = 0
    for slot in profile.placements:
        if fits(geometry, layout, profile, slot):
            layout = add(layout, profile, slot)
            n += 1
    return n


def keep_vector(geometry: MigGeometry, layout: Layout) -> tuple[int, ...]:
    """Instances still addable per shape, largest shape first: the 'keeps large shapes placeable' key."""
    return tuple(addable(geometry, layout, p) for p in shapes(geometry))


def choose_slot(geometry: MigGeometry, layout: Layout, profile: MigProfile) -> int | None:
    """vSphere's start slot for the next ``profile`` instance: the one keeping most large shapes placeable, ties
    to the highest slot ("3g at slot 4 first, keeping slot 0 for a 4g"); None when no slot is free."""
    best = None
    for slot in free_slots(geometry, layout, profile):
        key = (keep_vector(geometry, add(layout, profile, slot)), slot)
        if best is None or key > best[0]:
            best = (key, slot)
    return best[1] if best is not None else None


def arrange(geometry: MigGeometry, layout: Layout, pending: Sequence[MigProfile]) -> list[int] | None:
    """Start slots for running instances whose slot was not reported, in the order of ``pending``.

    Each takes vSphere's slot in turn; when one finds none, the instances run, so some layout holds them all: any
    is searched for (largest first, depth-first over at most 7 instances). None when none exists."""
    slots: list[int] = []
    current = layout
    for profile in pending:
        slot = choose_slot(geometry, current, profile)
        if slot is None:
            return _any_layout(geometry, layout, pending)
        slots.append(slot)
        current = add(current, profile, slot)
    return slots


def _any_layout(geometry: MigGeometry, layout: Layout, pending: Sequence[MigProfile]) -> list[int] | None:
    order = sorted(range(len(pending)), key=lambda i: (-pending[i].memory_slices, -pending[i].compute_slices, i))
    found = _search(geometry, layout, [pending[i] for i in order])
    if found is None:
        return None
    slots = [0] * len(pending)
    for i, slot in zip(order, found, strict=True):
        slots[i] = slot
    return slots


def _search(geometry: MigGeometry, layout: Layout, pending: list[MigProfile]) -> list[int] | None:
    if not pending:
        return []
    profile, rest = pending[0], pending[1:]
    for slot in free_slots(geometry, layout, profile):
        found = _search(geometry, add(layout, profile, slot), rest)
        if found is not None:
            return [slot, *found]
    return None
