"""How large a host the placement engine plans on, shared with the capture parser that warns about it."""

from __future__ import annotations

# The engine ranks GPU sets exactly: every set of the requested size and, for what a choice leaves behind, the
# most disjoint best-class sets per size, memoised per free mask. That grows exponentially with the GPUs of a host:
# 16 GPUs (DGX-2, HGX-2, the largest boards) plan in well under a second, 18 took 9 s and 24 two minutes for one
# 2-GPU request. Hosts with more GPUs are rejected with this reason rather than tying up a worker.
MAX_PLANNED_GPUS = 16


def too_many_gpus(count: int) -> str | None:
    """Why a host of ``count`` GPUs is not planned on, or None."""
    if count <= MAX_PLANNED_GPUS:
        return None
    return (
        f"host has {count} GPUs: the advisor ranks GPU sets on hosts of up to {MAX_PLANNED_GPUS} GPUs (the exact "
        "search grows exponentially beyond; the largest NVLink boards have 16)"
    )
