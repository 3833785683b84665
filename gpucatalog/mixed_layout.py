"""Mixed-size vGPU layout on one GPU (DOMAIN 3.4): placement IDs, siloed memory, where the host starts a vGPU.

A profile starts only at its placement IDs and occupies ``[start, start + size)``; at most ``mixed_max`` instances
of one size per GPU. **Siloed GB**: free framebuffer GB that no still-placeable instance of any considered profile
can cover, an instance being still placeable when its start is a placement ID, its range is entirely free and its
size is below ``mixed_max``. Boards whose placement IDs are unpublished fall back to size-aligned starts.

Pure functions of (board, capacity GB, residents), a resident being ``(size GB, start GB or None)``: the planner
(``placement.engine.vgpu``) and the inventory's occupancy both use them, so a GPU's siloed memory and the starts
inferred for vGPUs whose placement ID no capture reported are one figure on every page, API and command.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from gpucatalog.catalog import Board

Resident = tuple[int, int | None]  # (size GB, start GB or None when not known)


def placement_ids(board: Board | None, capacity: int, size_gb: int) -> tuple[int, ...]:
    ts = board.timesliced.get(size_gb) if board is not None else None
    if ts is not None and ts.placement_ids_gb is not None:
        return ts.placement_ids_gb
    return tuple(range(0, capacity - size_gb + 1, size_gb))


def mixed_max(board: Board | None, capacity: int, size_gb: int) -> int:
    ts = board.timesliced.get(size_gb) if board is not None else None
    return ts.max_mixed if ts is not None else capacity // size_gb


def board_sizes(board: Board | None, capacity: int) -> tuple[int, ...]:
    if board is not None and board.timesliced:
        return tuple(sorted(board.timesliced))
    return tuple(s for s in (4, 8, 10, 16, 20, 40, 80) if s <= capacity)


def intervals(residents: Iterable[Resident]) -> tuple[tuple[int, int], ...]:
    return tuple(sorted((start, start + size) for size, start in residents if start is not None))


def is_free(ivs: Sequence[tuple[int, int]], start: int, end: int) -> bool:
    return all(end <= a or start >= b for a, b in ivs)


def starts(board: Board | None, capacity: int, residents: Sequence[Resident], size_gb: int) -> tuple[int, ...]:
    """Placement IDs where a ``size_gb`` profile fits now (ignoring the count cap)."""
    ivs = intervals(residents)
    return tuple(
        s for s in placement_ids(board, capacity, size_gb) if s + size_gb <= capacity and is_free(ivs, s, s + size_gb)
    )


def coverable(
    board: Board | None, capacity: int, residents: Sequence[Resident], sizes: Iterable[int] | None = None
) -> set[int]:
    """GB cells of free memory that some still-placeable instance of a considered profile could occupy."""
    ivs = intervals(residents)
    covered: set[int] = set()
    for size in sizes if sizes is not None else board_sizes(board, capacity):
        if sum(1 for held, _ in residents if held == size) >= mixed_max(board, capacity, size):
            continue
        for s in placement_ids(board, capacity, size):
            if s + size <= capacity and is_free(ivs, s, s + size):
                covered.update(range(s, s + size))
    return covered


def siloed(
    board: Board | None, capacity: int, residents: Sequence[Resident], sizes: Iterable[int] | None = None
) -> int:
    """Free GB no still-placeable profile instance can cover."""
    free = capacity - sum(size for size, _ in residents)
    return free - len(coverable(board, capacity, residents, sizes))


def largest_placeable(
    board: Board | None, capacity: int, residents: Sequence[Resident], sizes: Iterable[int] | None = None
) -> int:
    best = 0
    for size in sizes if sizes is not None else board_sizes(board, capacity):
        if size > best and starts(board, capacity, residents, size):
            best = size
    return best


def choose_start(board: Board | None, capacity: int, residents: Sequence[Resident], size_gb: int) -> int | None:
    """The start the host picks on this GPU: least siloed memory afterwards, largest shape kept, lowest ID."""
    best = None
    for s in starts(board, capacity, residents, size_gb):
        after = (*residents, (size_gb, s))
        key = (siloed(board, capacity, after), -largest_placeable(board, capacity, after), s)
        if best is None or key < best[0]:
            best = (key, s)
    return best[1] if best is not None else None


def first_gap(capacity: int, residents: Sequence[Resident], size_gb: int) -> int | None:
    pos = 0
    for a, b in intervals(residents):
        if a - pos >= size_gb:
            return pos
        pos = max(pos, b)
    return pos if capacity - pos >= size_gb else None


def infer_start(board: Board | None, capacity: int, residents: Sequence[Resident], size_gb: int) -> int | None:
    """Where a running vGPU whose placement ID was not reported is taken to sit, given the residents placed so
    far (reported ones first, the others in VM-name order): the start the host would pick, else the first gap."""
    start = choose_start(board, capacity, residents, size_gb)
    return start if start is not None else first_gap(capacity, residents, size_gb)
