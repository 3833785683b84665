"""Wording shared by scorers and the planner: bandwidths, leave-behind, and runner-up comparisons."""

from __future__ import annotations

from collections.abc import Sequence

from placement.engine.gpuset import LEAVE_SIZES

KEY_TERMS = ("class", "interconnect", "numa", "pcie", "leave", "balance", "fragmentation", "policy", "headroom")
CLASS_LABELS = {-1: "LOCAL", 0: "NVLINK", 1: "NVLINK", 2: "PIX", 3: "PXB", 4: "PHB", 5: "NODE", 6: "SYS"}


def fmt_gbps(gbps: float) -> str:
    return f"{gbps:.0f}" if float(gbps).is_integer() else f"{gbps:.1f}"


def class_text(rank: int) -> str:
    """Label of a link class rank (``model.link_rank``)."""
    return CLASS_LABELS.get(rank, "SYS")


def link_text(label: str, gbps: float) -> str:
    if label == "LOCAL":
        return "single GPU"
    return f"{label} {fmt_gbps(gbps)} GB/s"


def leave_text(leave: Sequence[float], *, nvswitch: bool) -> str:
    if not leave:
        return ""
    if nvswitch:
        parts = [f"{int(n)} x {size}-GPU" for size, n in zip(LEAVE_SIZES, leave, strict=True) if n]
        return "leaves whole Fabric Manager partitions free: " + (", ".join(parts) if parts else "none of 2+ GPUs")
    parts = [f"{size} GPUs at {fmt_gbps(g)} GB/s" for size, g in zip(LEAVE_SIZES, leave, strict=True) if g > 0]
    return "leaves free rings: " + (", ".join(parts) if parts else "no multi-GPU set")


def compare(
    verb: str,
    other_host: str,
    mine: tuple,
    theirs: tuple,
    my_link: tuple[str, float],
    their_link: tuple[str, float],
    my_numa: int,
    their_numa: int,
) -> str:
    """'beats esx-02: NV18 477 GB/s vs PIX 31.5 GB/s' naming the first ranking term that differs."""
    for term, a, b in zip(KEY_TERMS, mine, theirs, strict=False):
        if a == b:
            continue
        if term == "class":
            detail = (
                "its set reaches the best link class its host offers, the other's falls below it"
                if a > b
                else "its set falls below the best link class its host offers, the other's reaches it"
            )
        elif term == "interconnect":
            detail = f"{link_text(*my_link)} vs {link_text(*their_link)}"
        elif term == "numa":
            detail = f"{my_numa} NUMA node(s) vs {their_numa}"
        elif term == "pcie":
            detail = f"PCIe proximity cost {-a} vs {-b}"
        elif term == "leave":
            detail = f"leaves more behind ({_vec(a)} vs {_vec(b)} for {'/'.join(map(str, LEAVE_SIZES))} GPUs)"
        elif term == "balance":
            detail = f"CPU/GPU balance mismatch {-a:.3f} vs {-b:.3f} (free GB per free vCPU against the VM's)"
        elif term == "fragmentation":
            detail = f"fragments less ({_vec(a)} vs {_vec(b)})"
        elif term == "headroom":
            detail = f"CPU/memory headroom {b_fmt(a)} vs {b_fmt(b)}"
        else:
            detail = term
        return f"{verb} {other_host}: {detail}"
    return f"ties with {other_host}; ordered by host name"


def _vec(v) -> str:
    return "/".join(fmt_gbps(float(x)) for x in v) if isinstance(v, tuple) else str(v)


def b_fmt(v) -> str:
    mem, cpu = v
    return f"{cpu} vCPUs + {mem // 1024} GB"
