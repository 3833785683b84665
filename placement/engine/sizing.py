"""Inference sizing: how much GPU memory a model needs and which GPU shapes of the catalog hold it.

Sizes are GiB (2**30 bytes), the unit vGPU profiles are named in. A board's whole-GPU capacity is, in this order:
what its GPUs in the inventory really report when the caller passes it (an H100 NVL sold as 94 GB has 95,830 MiB,
93.6 GiB, so two of them do not hold 187.4 GiB); else the memory total nvidia-smi reports for that board, from the
catalog (an H200 sold as 141 GB reports 143,771 MiB, 140.4 GiB); else, for an HBM board, its nominal size read as
GiB (an A100 sold as 80 GB reports 81,920 MiB, exactly 80 GiB); else, for a GDDR board, its nominal size read as
10**9 bytes, a lower bound (an L4 sold as 24 GB reports 23,034 MiB, 22.5 GiB: ECC and reserved memory take a share).
The text says which of these it used.

Several GPUs of one VM are advised by what the board's cards or baseboards allow (DOMAIN.md 3.6, 3.7, 4): NVLink
only inside one NVLink domain (a bridged pair of PCIe cards, 2 or 4 for H200 NVL, 8 on an HGX baseboard), a device
group only when the GPU count fits one domain or Fabric Manager partition, and no passthrough on NVSwitch boards.
For a board of the inventory the caller passes what its GPUs offer (``InventoryBoard``): the type names its hosts
list, whether its GPUs sit on NVSwitch boards, and the largest NVLink domain of them it knows.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from gpucatalog.catalog import Board, Catalog, FormFactor, load_catalog

GIB = 2**30
MIB_PER_GIB = 1024
POWERS_OF_TWO = (1, 2, 4, 8)

KEEPS_NVLINK = ", NVLink as a device group"
NO_PASSTHROUGH = "no passthrough: an NVSwitch (HGX) board, where vSphere allows time-sliced vGPU only"
NOT_OFFERED = "no host of the inventory offers it now"
_TYPE_CODE_RE = re.compile(r"^(?:grid|nvidia)_([a-z0-9]+)-")


@dataclass(frozen=True)
class InventoryBoard:
    """What the inventory knows of one catalog board's live GPUs (the caller reads it from the database)."""

    usable_gib: float | None = None  # the smallest framebuffer they report
    nvswitch: bool = False  # every one of them sits on an NVSwitch (HGX) board: time-sliced vGPU only
    profiles: Mapping[int, str] = field(default_factory=dict)  # time-sliced C-series types their hosts offer, by GB
    nvlinked: int = 0  # the most of them one NVLink domain or Fabric Manager partition of the inventory joins


@dataclass(frozen=True)
class Proposal:
    board: str
    gpus: int  # 0 when even 8 GPUs are too small
    profile: str | None  # one GPU: the smallest time-sliced type that fits; several: the full-size type
    explain: str
    passthrough: bool = True  # False where the board's GPUs sit on NVSwitch boards (time-sliced vGPU only)
    device_group: bool = False  # several full-size vGPUs that keep NVLink as one device group


@dataclass(frozen=True)
class Sizing:
    weights_gb: float
    kv_cache_gb: float
    overhead_gb: float
    total_gb: float
    proposals: tuple[Proposal, ...]
    explain: tuple[str, ...]


# Beyond any model or deployment a vSphere host serves (a 100-trillion-parameter model, 100 million tokens of
# context): larger numbers are typing mistakes, and products of them overflow to inf GiB.
SIZING_LIMITS = {
    "params_b": 100_000,
    "bytes_per_param": 16,
    "layers": 10_000,
    "kv_heads": 4_096,
    "head_dim": 16_384,
    "context_len": 100_000_000,
    "concurrent_seqs": 1_000_000,
    "kv_bytes": 16,
}


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
    inventory: Mapping[str, InventoryBoard] | None = None,
) -> Sizing:
    """Memory terms of an inference workload and, per catalog board, the GPU count and way to give them to one VM.

    ``usable_gib`` (per board, what its GPUs report) is kept for callers that know only that; ``inventory`` says
    what the inventory's GPUs of each board offer, and wins where both name a board.
    """
    for name, value in (("params_b", params_b), ("bytes_per_param", bytes_per_param), ("layers", layers),
                        ("kv_heads", kv_heads), ("head_dim", head_dim), ("context_len", context_len),
                        ("concurrent_seqs", concurrent_seqs), ("kv_bytes", kv_bytes)):  # fmt: skip
        if not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value}")
        if value <= 0:
            raise ValueError(f"{name} must be positive, got {value}")
        if value > SIZING_LIMITS[name]:
            raise ValueError(f"{name} must be at most {SIZING_LIMITS[name]:,}, got {value:g}")
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
        f"x {concurrent_seqs} sequence{'' if concurrent_seqs == 1 else 's'} x {kv_bytes:g} bytes = {kv:.1f} GiB",
        f"activations/runtime overhead: {overhead_frac:.0%} of {weights + kv:.1f} GiB = {overhead:.1f} GiB",
        f"total: {total:.1f} GiB",
    )
    catalog = catalog or load_catalog()
    proposals = [
        _propose(catalog.boards[key], total, (inventory or {}).get(key), (usable_gib or {}).get(key))
        for key in sorted(catalog.boards)
    ]
    return Sizing(round(weights, 3), round(kv, 3), round(overhead, 3), round(total, 3), tuple(proposals), explain)


def _capacity(board: Board, measured: float | None) -> tuple[float, str]:
    """A whole GPU's GiB and how it was found, in words."""
    if measured:
        return measured, f"{measured:.1f} GiB usable"
    fb = board.framebuffer_gb
    if board.usable_mib:
        cap = board.usable_mib / MIB_PER_GIB
        return cap, f"{cap:.1f} GiB, the {board.usable_mib:,} MiB nvidia-smi reports for it, not in the inventory"
    if board.hbm:
        return float(fb), f"{fb:.1f} GiB from {fb} GB nominal read as GiB (HBM), not in the inventory"
    cap = fb * 1e9 / GIB
    return cap, (
        f"{cap:.1f} GiB from {fb} GB nominal read as 10^9 bytes, a lower bound (GDDR loses some to ECC), "
        "not in the inventory"
    )


def _forms(board: Board, inv: InventoryBoard | None) -> tuple[FormFactor, ...]:
    """The cards or baseboards the advice is for: those the inventory's GPUs of the board are, else all of them."""
    forms = board.form_factors or (FormFactor(board.board_codes, board.key, None),)
    if inv is None:
        return forms
    codes = {m.group(1) for name in inv.profiles.values() if (m := _TYPE_CODE_RE.match(name))}
    named = tuple(f for f in forms if codes & set(f.codes))
    if named:
        return named
    return tuple(f for f in forms if f.nvswitch == inv.nvswitch) or forms


def _type_name(board: Board, form: FormFactor, gb: int, inv: InventoryBoard | None) -> str | None:
    """The time-sliced C-series type of ``gb`` on ``form``: as the inventory's hosts spell it, else the catalog's."""
    if inv is not None and gb in inv.profiles:
        return inv.profiles[gb]
    return f"grid_{form.codes[0]}-{gb}c" if gb in board.timesliced else None


def _propose(board: Board, total: float, inv: InventoryBoard | None, usable: float | None) -> Proposal:
    key = board.key
    cap, one = _capacity(board, (inv.usable_gib if inv else None) or usable)
    n = next((p for p in POWERS_OF_TWO if p * cap >= total), 0)
    forms = _forms(board, inv)
    passthrough = not all(f.nvswitch for f in forms)
    if n == 0:
        return Proposal(key, 0, None, f"{key}: {total:.1f} GiB exceeds 8 GPUs (each {one})", passthrough)
    if n == 1:
        sizes = inv.profiles if inv is not None and inv.profiles else board.timesliced
        fits = sorted(gb for gb in sizes if gb >= total)
        profile = _type_name(board, forms[0], fits[0], inv) if fits else None
        what = f"time-sliced {profile}" if profile else "a whole GPU"
        if profile and inv is not None and profile not in inv.profiles.values():
            what += f" ({NOT_OFFERED})"
        if not passthrough:
            what += f"; {NO_PASSTHROUGH}" if profile else f" as one full-size time-sliced vGPU ({NO_PASSTHROUGH})"
        return Proposal(key, 1, profile, f"{key}: 1 GPU ({one}); smallest fit: {what}", passthrough)
    advice = [_several(board, n, form, inv) for form in forms]
    if len(advice) == 1:
        how = advice[0][0]
    else:  # a board not in the inventory that comes as PCIe cards and as an HGX baseboard
        how = ". ".join(f"{'on' if i == 0 else 'On'} the {form.name}: {text}" for i, (form, (text, _)) in
                        enumerate(zip(forms, advice, strict=True)))  # fmt: skip
    return Proposal(
        key, n, _type_name(board, forms[0], board.framebuffer_gb, inv),
        f"{key}: {n} GPUs ({n} x {one} = {n * cap:.1f} GiB >= {total:.1f} GiB): {how}",
        passthrough, any(group for _, group in advice),
    )  # fmt: skip


def _several(board: Board, n: int, form: FormFactor, inv: InventoryBoard | None) -> tuple[str, bool]:
    """How ``n`` GPUs of ``form`` go to one VM, in words, and whether as a device group that keeps NVLink."""
    full = _type_name(board, form, board.framebuffer_gb, inv)
    domain = form.most_nvlinked
    fits = form.nvlink is not None and n <= domain
    # a board of the inventory keeps NVLink only where the inventory knows a domain of that many of its GPUs
    known = inv is None or inv.nvlinked >= n
    group = fits and known
    vgpus = f"{n} x {full}" if full else f"{n} time-sliced vGPUs"
    label = "full profile" if full else "full size; NVIDIA's type names for it are not in the catalog"
    if full and inv is not None and full not in inv.profiles.values():
        label += f"; {NOT_OFFERED}"
    if group and form.nvswitch:
        vgpus += f" ({label}{KEEPS_NVLINK}: one Fabric Manager partition)"
    elif group:
        bridge = f" where a {n}-way bridge joins them" if n > min(form.nvlink_domain_gpus) else ""
        vgpus += f" ({label}{KEEPS_NVLINK}{bridge})"
    elif full or form.nvswitch:
        vgpus += f" ({label})"
    if form.nvswitch:
        text = f"{vgpus}; {NO_PASSTHROUGH}"
    elif full:
        text = f"passthrough or {vgpus}"
    else:
        text = "passthrough"
    if form.nvlink is None or group:
        return text, group
    if fits:  # the card allows it, the inventory knows no such domain
        what = (
            f"Fabric Manager partition of {n}"
            if form.nvswitch
            else "NVLinked pair"
            if n == 2
            else f"NVLink domain of {n}"
        )
        return text + f"; the inventory knows no {what} of these GPUs: without one they talk over PCIe", False
    if form.nvswitch:
        return text + f"; an NVSwitch board joins at most {domain} GPUs: the {n} GPUs span boards", False
    joins = (
        "pairs only"
        if domain == 2
        else f"at most {domain} GPUs ({' or '.join(map(str, form.nvlink_domain_gpus))}-way bridge)"
    )
    groups = "pairs" if domain == 2 else "those groups"
    return text + f"; NVLink on the {form.name} joins {joins}, so the {n} GPUs talk over PCIe between {groups}", False
