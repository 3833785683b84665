"""Catalog facts the occupancy selectors need: per-GPU vGPU maxima and MIG geometry per board."""

from __future__ import annotations

from functools import cache

from gpucatalog.catalog import Board, MigGeometry, load_catalog


@cache
def max_equal(board: str, framebuffer_gb: int) -> int:
    """How many vGPUs of ``framebuffer_gb`` one GPU of ``board`` runs in same-size mode (0 when unknown)."""
    b = load_catalog().boards.get(board)
    p = b.timesliced.get(framebuffer_gb) if b is not None else None
    return p.max_equal if p is not None else 0


@cache
def mig_geometry(board: str) -> MigGeometry | None:
    """The MIG slice geometry of ``board`` (``gpucatalog.mig_layout`` places instances on it), None without MIG."""
    b = load_catalog().boards.get(board)
    return b.mig if b is not None else None


@cache
def mig_profile_sizes() -> dict[str, tuple[int, str, int]]:
    """Raw MIG profile name ("1g.10gb") -> (memory GB, the name, 0), over every board of the catalog."""
    return {
        p.name: (p.memory_gb, p.name, 0)
        for b in load_catalog().boards.values()
        if b.mig is not None
        for p in b.mig.profiles
    }


@cache
def board_framebuffer_gb(board: str) -> int | None:
    """The board's nominal framebuffer (80 for an H100 80GB that reports 81,559 MB), None when unknown."""
    b = load_catalog().boards.get(board)
    return b.framebuffer_gb if b is not None else None


def catalog_board(board: str) -> Board | None:
    """The catalog's board of that key (``A100-80GB``), None when unknown."""
    return load_catalog().boards.get(board)
