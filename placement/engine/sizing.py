"""Inference sizing: how much GPU memory a model needs and which GPU shapes of the catalog hold it.

Sizes are GiB (2**30 bytes), the unit vGPU profiles are named in. A board's whole-GPU capacity is what its GPUs
in the inventory really have when the caller passes it (``usable_gib``: an H100 NVL sold as 94 GB has 95,830 MiB,
93.6 GiB, so two of them do not hold 187.4 GiB), else its nominal size read as 10**9 bytes, in GiB, said as such.
That reading is a lower bound of what a board exposes (an L4 sold as 24 GB reports 23,034 MiB, 22.5 GiB, where
24 GB is 22.4 GiB; an H100 80GB reports 79.6 GiB, where 80 GB is 74.5), so a board not in the inventory is never
said to hold more than it does.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from gpucatalog.catalog import Catalog, load_catalog

GIB = 2**30
POWERS_OF_TWO = (1, 2, 4, 8)

KEEPS_NVLINK = ", NVLink as a device group"


@dataclass(frozen=True)
class Proposal:
    board: str
    gpus: int  # 0 when even 8 GPUs are too small
    profile: str | None  # smallest time-sliced profile that fits, for a single GPU
    explain: str


@dataclass(frozen=True)
class Sizing:
    weights_gb: float
    kv_cache_gb: float
    overhead_gb: float
    total_gb: float
    proposals: tuple[Proposal, ...]
    explain: tuple[str, ...]


def size_inference(
    params_b: float,
    bytes_per_param: float,
    layers: int,
    kv_heads: int,
    head_dim: int,
    context_len: int,
    concurrent_seqs: int,
    kv_bytes: float = 2,
    overhead_frac: float = 0.1,
    *,
    catalog: Catalog | None = None,
    usable_gib: Mapping[str, float] | None = None,
) -> Sizing:
    for name, value in (("params_b", params_b), ("bytes_per_param", bytes_per_param), ("layers", layers),
                        ("kv_heads", kv_heads), ("head_dim", head_dim), ("context_len", context_len),
                        ("concurrent_seqs", concurrent_seqs), ("kv_bytes", kv_bytes)):  # fmt: skip
        if not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value}")
        if value <= 0:
            raise ValueError(f"{name} must be positive, got {value}")
    if not math.isfinite(overhead_frac):
        raise ValueError(f"overhead_frac must be a finite number, got {overhead_frac}")
    if overhead_frac < 0:
        raise ValueError("overhead_frac must not be negative")
    weights = params_b * 1e9 * bytes_per_param / GIB
    kv = 2 * layers * kv_heads * head_dim * context_len * concurrent_seqs * kv_bytes / GIB
    overhead = overhead_frac * (weights + kv)
    total = weights + kv + overhead
    explain = (
        f"weights: {params_b:g}B params x {bytes_per_param:g} bytes = {weights:.1f} GiB",
        f"KV cache: 2 (K and V) x {layers} layers x {kv_heads} KV heads x {head_dim} head dim x {context_len} tokens "
        f"x {concurrent_seqs} sequences x {kv_bytes:g} bytes = {kv:.1f} GiB",
        f"activations/runtime overhead: {overhead_frac:.0%} of {weights + kv:.1f} GiB = {overhead:.1f} GiB",
        f"total: {total:.1f} GiB",
    )
    catalog = catalog or load_catalog()
    proposals = []
    for key in sorted(catalog.boards):
        board = catalog.boards[key]
        fb = board.framebuffer_gb
        measured = (usable_gib or {}).get(key)
        cap = measured if measured else fb * 1e9 / GIB
        one = f"{cap:.1f} GiB usable" if measured else f"{cap:.1f} GiB from {fb} GB nominal, not in the inventory"
        n = next((p for p in POWERS_OF_TWO if p * cap >= total), 0)
        code = board.board_codes[0]
        if n == 0:
            proposals.append(Proposal(key, 0, None, f"{key}: {total:.1f} GiB exceeds 8 GPUs (each {one})"))
        elif n == 1:
            fits = sorted(gb for gb in board.timesliced if gb >= total)
            profile = f"grid_{code}-{fits[0]}c" if fits else None
            what = f"time-sliced {profile}" if profile else "a whole GPU"
            proposals.append(Proposal(key, 1, profile, f"{key}: 1 GPU ({one}); smallest fit: {what}"))
        else:
            full = f"grid_{code}-{fb}c" if fb in board.timesliced else None
            # L40S and L4 have no NVLink to keep; vGPUs of one VM keep it only as a device group (DOMAIN 3.6)
            keeps = KEEPS_NVLINK if board.nvlink_generation else ""
            how = f"passthrough or {n} x {full} (full profile{keeps})" if full else "passthrough"
            proposals.append(
                Proposal(key, n, full, f"{key}: {n} GPUs ({n} x {one} = {n * cap:.1f} GiB >= {total:.1f} GiB): {how}")
            )
    return Sizing(round(weights, 3), round(kv, 3), round(overhead, 3), round(total, 3), tuple(proposals), explain)
