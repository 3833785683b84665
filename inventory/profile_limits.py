"""Catalog facts the occupancy selectors need: per-GPU vGPU maxima and MIG slice geometry per board."""

from __future__ import annotations

from functools import cache

from gpucatalog.catalog import load_catalog


@cache
def max_equal(board: str, framebuffer_gb: int) -> int:
    """How many vGPUs of ``framebuffer_gb`` one GPU of ``board`` runs in same-size mode (0 when unknown)."""
    b = load_catalog().boards.get(board)
    p = b.timesliced.get(framebuffer_gb) if b is not None else None
    return p.max_equal if p is not None else 0


@cache
def mig_slices(board: str) -> tuple[int, int, dict[str, tuple[int, int]]] | None:
    """(compute slices, memory slices, {MIG profile: (compute, memory slices)}) of ``board``, None without MIG."""
    b = load_catalog().boards.get(board)
    if b is None or b.mig is None:
        return None
    return (
        b.mig.compute_slices,
        b.mig.memory_slices,
        {p.name: (p.compute_slices, p.memory_slices) for p in b.mig.profiles},
    )


@cache
def board_framebuffer_gb(board: str) -> int | None:
    """The board's nominal framebuffer (80 for an H100 80GB that reports 81,559 MB), None when unknown."""
    b = load_catalog().boards.get(board)
    return b.framebuffer_gb if b is not None else None
