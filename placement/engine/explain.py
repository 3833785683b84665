"""Wording shared by scorers and the planner: bandwidths, leave-behind, and runner-up comparisons."""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache
from typing import NamedTuple

from placement.engine.gpuset import LEAVE_SIZES

KEY_TERMS = (
    "class", "whole", "interconnect", "numa", "numaroom", "pcie", "leave", "fragmentation", "balance", "pickcost",
    "policy", "fill", "headroom",
)  # fmt: skip
CLASS_LABELS = {-1: "LOCAL", 0: "NVLINK", 1: "NVLINK", 2: "PIX", 3: "PXB", 4: "PHB", 5: "NODE", 6: "SYS"}


def fmt_gbps(gbps: float) -> str:
    return f"{gbps:.0f}" if float(gbps).is_integer() else f"{gbps:.1f}"


def class_text(rank: int) -> str:
    """Label of a link class rank (``model.link_rank``)."""
    return CLASS_LABELS.get(rank, "SYS")


# What a link class rank means to a vSphere admin: "GPUs joined by ..."
CLASS_WORDS = {
    0: "NVLink",
    1: "NVLink",
    2: "one PCIe switch",
    3: "several PCIe switches",
    4: "the CPU's PCIe host bridge",
    5: "PCIe host bridges of one CPU socket",
    6: "the link between CPU sockets",
}


def class_words(rank: int) -> str:
    return CLASS_WORDS.get(rank, CLASS_WORDS[6])


# Candidate.bottleneck labels that name no link: one GPU, or fractional vGPUs (no GPU-to-GPU traffic)
LOCAL_LABEL = "LOCAL"
UNUSED_LABEL = "UNUSED"
UNUSED_TEXT = "interconnect not used (fractional vGPUs)"


# A pair a truncated nvidia-smi capture has no label for (``smi_host.UNKNOWN_KIND``): ranked as the slowest path
UNKNOWN_LABEL = "UNKNOWN"


def link_text(label: str, gbps: float) -> str:
    if label == LOCAL_LABEL:
        return "single GPU"
    if label == UNUSED_LABEL:
        return UNUSED_TEXT
    if label == UNKNOWN_LABEL:
        return f"unknown path (not in the capture; ranked as {fmt_gbps(gbps)} GB/s)"
    return f"{label} {fmt_gbps(gbps)} GB/s"


# A host-level reason's subject and verb ("host has 2 GPUs ..."), so a count of hosts can take its place
_PLURAL_VERBS = {"has": "have", "is": "are", "does": "do", "was": "were"}


def hosts_heading(count: int, reason: str) -> tuple[str, str]:
    """A group of ``count`` hosts sharing ``reason``, as (count, rest): a reason whose subject is "host" gets the count
    as its subject, never the noun twice ("1 host" "has 2 GPUs, the VM needs 4", "3 hosts" "have fewer than 4
    GPUs", "2 hosts'" "inventory is stale"); any other reason follows the count ("2 hosts" "no H100-80GB GPUs")."""
    return _heading(count, reason)[:2]


def hosts_phrase(count: int, reason: str) -> str:
    """``hosts_heading`` as one line: "1 host has 2 GPUs, the VM needs 4"; "2 hosts: no H100-80GB GPUs"."""
    head, rest, subject = _heading(count, reason)
    return f"{head} {rest}" if subject else f"{head}: {rest}"


def _heading(count: int, reason: str) -> tuple[str, str, bool]:
    noun = "host" if count == 1 else "hosts"
    first, _, rest = reason.partition(" ")
    verb, _, tail = rest.partition(" ")
    if first == "host" and verb in _PLURAL_VERBS:
        return f"{count} {noun}", f"{verb if count == 1 else _PLURAL_VERBS[verb]} {tail}".rstrip(), True
    if first == "host" and verb == "inventory":
        possessive = "'s" if count == 1 else "'"
        return f"{count} {noun}{possessive}", rest, True
    return f"{count} {noun}", reason, False


NUMBER_WORDS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight")

# How two GPUs reach each other, in nvidia-smi's terms, best first (``model.LINK_KINDS``).
PATH_WORDS = {
    "NVSWITCH": "through NVSwitch",
    "NVLINK": "over NVLink",
    "PIX": "under one PCIe switch (PIX)",
    "PXB": "across PCIe switches (PXB)",
    "PHB": "through the CPU's PCIe host bridge (PHB)",
    "NODE": "across host bridges of one NUMA node (NODE)",
    "SYS": "across CPU sockets (SYS)",
    UNKNOWN_LABEL: "of unknown path (not in the capture)",
}


def paths_text(kinds: Sequence[str]) -> str:
    """'one pair under one PCIe switch (PIX)' / 'two pairs over NVLink, four across CPU sockets (SYS)': how the
    pairs of a GPU set reach each other (nvidia-smi's NV# counts as NVLink), best path first."""
    counts: dict[str, int] = {}
    for kind in kinds:
        key = "NVLINK" if kind.startswith("NV") and kind != "NVSWITCH" else kind
        key = key if key in PATH_WORDS else "SYS"
        counts[key] = counts.get(key, 0) + 1
    order = list(PATH_WORDS)
    parts = [f"{_count(n, 'pair') if i == 0 else _count(n, 'pair').rsplit(' ', 1)[0]} {PATH_WORDS[k]}"
             for i, (k, n) in enumerate(sorted(counts.items(), key=lambda kv: order.index(kv[0])))]  # fmt: skip
    return ", ".join(parts)


def _count(n: float, what: tuple[str, str] | str) -> str:
    k = round(abs(n))
    word = NUMBER_WORDS[k] if k < len(NUMBER_WORDS) else str(k)
    one, many = (what, what + "s") if isinstance(what, str) else what
    return f"{word} {one if k == 1 else many}"


class Naming(NamedTuple):
    """What the leave-behind sentences need to name a host's groups truthfully: the best link class
    (``model.link_rank``) each of LEAVE_SIZES reaches on the host with every GPU free, whether its NVLink groups are
    bridged pairs (H100 NVL cards) rather than a mesh (DGX-1), and whether it has NVLink at all."""

    best: tuple[int, ...] = ()
    bridged: bool = True
    nvlink: bool = True


DEFAULT_NAMING = Naming()
# Where a set of the host's best PCIe class sits: "a 4-GPU set on one PCIe switch"; SYS sets are any free GPUs
_SET_PLACE = {
    2: "on one PCIe switch",
    3: "across PCIe switches",
    4: "behind one CPU host bridge",
    5: "on one NUMA node",
}


def _group_name(size: int, nvlink: bool, nvswitch: bool, naming: Naming = DEFAULT_NAMING) -> tuple[str, str]:
    if nvswitch:
        return (f"whole {size}-GPU Fabric Manager partition", f"whole {size}-GPU Fabric Manager partitions")
    if nvlink:
        if size == 2:
            # a bridged card pair is an "NVLink pair"; in a mesh (DGX-1) a pair is just two GPUs an NVLink joins
            return ("whole NVLink pair", "whole NVLink pairs") if naming.bridged else (
                "pair joined by NVLink", "pairs joined by NVLink")  # fmt: skip
        return (f"whole {size}-GPU NVLink set", f"whole {size}-GPU NVLink sets")
    rank = naming.best[LEAVE_SIZES.index(size)] if len(naming.best) == len(LEAVE_SIZES) else None
    place = _SET_PLACE.get(rank) if rank is not None else None
    if place is None:  # the best any set of this size gets is the link between sockets: any free GPUs
        return ("pair of free GPUs", "pairs of free GPUs") if size == 2 else (
            f"set of {size} free GPUs", f"sets of {size} free GPUs")  # fmt: skip
    return (f"pair {place}", f"pairs {place}") if size == 2 else (f"{size}-GPU set {place}", f"{size}-GPU sets {place}")


def _groups(vector: Sequence[float], *, nvswitch: bool, sign: int = 1, naming: Naming = DEFAULT_NAMING) -> list[str]:
    """Phrases for a capacity vector (``gpuset.leave_vector``/``leave_loss``): NVLink sets, then best-class
    sets that are not already counted as NVLink ones."""
    n = len(LEAVE_SIZES)
    if len(vector) != 2 * n:
        return []
    nv, best = vector[:n], vector[n:]
    parts = []
    for size, x in zip(LEAVE_SIZES, nv, strict=True):
        if sign * x > 0:
            parts.append(_count(x, _group_name(size, True, nvswitch, naming)))
    if not nvswitch:
        for size, x, y in zip(LEAVE_SIZES, best, nv, strict=True):
            if sign * (x - y) > 0 and sign * x > 0:
                parts.append(_count(x if not y else x - y, _group_name(size, False, nvswitch, naming)))
    return parts


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


@lru_cache(maxsize=4096)
def leave_text(leave: Sequence[float], *, nvswitch: bool, naming: Naming = DEFAULT_NAMING) -> str:
    """'leaves two whole NVLink pairs and one 4-GPU set on one PCIe switch'; with none left, the smallest group the
    host has: 'leaves no pair on one PCIe switch free'."""
    if not leave:
        return ""
    parts = _groups(leave, nvswitch=nvswitch, naming=naming)
    if parts:
        return f"leaves {_join(parts)}"
    if nvswitch:
        return "leaves no whole multi-GPU Fabric Manager partition free"
    smallest = _group_name(2, naming.nvlink, False, naming)[0].removeprefix("whole ")
    return "leaves no two free GPUs" if smallest == "pair of free GPUs" else f"leaves no {smallest} free"


@lru_cache(maxsize=4096)
def cost_text(loss: Sequence[float], *, nvswitch: bool, naming: Naming = DEFAULT_NAMING) -> str:
    """'uses up one whole NVLink pair'; empty when the choice costs no whole group."""
    parts = _groups(loss, nvswitch=nvswitch, sign=-1, naming=naming)
    return f"uses up {_join(parts)}" if parts else ""


# A leave-behind sentence on an NVSwitch board whose module ids (so its partitions) are unknown
PARTITIONS_UNKNOWN = (
    "Fabric Manager partitions unknown (no module ids): which partitions this keeps whole or breaks is not known, "
    "nor ranked"
)


def compare(
    verb: str,
    other_host: str,
    mine: tuple,
    theirs: tuple,
    my_link: tuple[str, float],
    their_link: tuple[str, float],
    my_numa: int,
    their_numa: int,
    mine_words: dict[str, str] | None = None,
    theirs_words: dict[str, str] | None = None,
    tie_order: str = "host name",
) -> str:
    """'beats esx-02: NV18 450 GB/s vs PIX 31.5 GB/s' naming the first ranking term that differs.

    ``tie_order``: what put equal keys in their order, named when every term ties ("vCenter name" between two
    hosts of the same name).

    ``mine_words``/``theirs_words``: each side's own sentences for terms whose values are vectors
    ("leave": what the choice uses up and leaves; "fragmentation"; "numa"), so the comparison reads as
    words, never as a vector of numbers.
    """
    mw, tw = mine_words or {}, theirs_words or {}
    other = "the runner-up" if verb == "beats" else other_host
    for term, a, b in zip(KEY_TERMS, mine, theirs, strict=False):
        if a == b:
            continue
        if term == "class" and "class" in mw and "class" in tw:
            detail = f"{mw['class']}; {other}: {tw['class']}"
        elif term == "class" and min(a, b) < 0 and max(a, b) < 0:  # both below their host's best: -1 vs -2
            detail = (
                "neither set gets the fastest link its host offers; the other's would also take GPUs from NVLink "
                "pairs it cannot use"
                if a > b
                else "neither set gets the fastest link its host offers; this one would also take GPUs from NVLink "
                "pairs it cannot use"
            )
        elif term == "class":
            detail = (
                "its GPUs get the fastest link their host offers, the other's do not"
                if a > b
                else "its GPUs do not get the fastest link their host offers, the other's do"
            )
        elif term == "whole":
            detail = (
                "keeps the last wholly free host of its type whole; the other would break it"
                if a > b
                else "breaks the last wholly free host of its type; the other keeps it whole"
            )
        elif term == "interconnect":
            detail = f"{link_text(*my_link)} vs {link_text(*their_link)}"
        elif term == "numa":
            detail = f"{mw.get('numa', _nodes(my_numa))}; {other}: {tw.get('numa', _nodes(their_numa))}"
        elif term == "numaroom":
            detail = (
                f"{mw.get('numaroom', 'its NUMA node has room for the VM')}; {other}: "
                f"{tw.get('numaroom', 'its NUMA node has room for the VM')}"
            )
        elif term == "pcie":
            closer = "its GPUs sit closer on PCIe" if a > b else "its GPUs sit further apart on PCIe"
            both = "pcie" in mw and "pcie" in tw
            detail = f"{closer}: {mw['pcie']}; {other}: {tw['pcie']}" if both else closer
        elif term in ("leave", "pickcost"):
            detail = f"{mw.get('leave', 'leaves more free')}; {other} {tw.get('leave', 'leaves less')}"
        elif term == "balance":
            detail = _balance_detail(a, b, mw, tw, other)
        elif term == "fragmentation":
            if "fragmentation" in mw and "fragmentation" in tw:
                detail = f"fragments less: {mw['fragmentation']}; {other}: {tw['fragmentation']}"
            else:
                detail = "fragments less"
        elif term == "fill":
            detail = (
                f"fills a host already in use ({-a} passthrough GPUs stay free vs {-b}): emptier hosts stay whole "
                "for larger VMs"
                if a > b
                else f"its host keeps more passthrough GPUs free ({-a} vs {-b}): the fuller host is filled first"
            )
        elif term == "headroom":
            detail = f"CPU/memory headroom {b_fmt(a)} vs {b_fmt(b)}"
        else:
            detail = term
        return f"{verb} {other_host}: {detail}"
    return f"ties with {other_host}; ordered by {tie_order}"


def apart_text(factor: float, other: float | None = None) -> str:
    """'2.1x apart' ('the same proportion' below 1.05x); with ``other``, as many decimals as tell the two apart."""
    digits = 1
    if other is not None:
        while digits < 3 and f"{factor:.{digits}f}" == f"{other:.{digits}f}":
            digits += 1
    if f"{factor:.{digits}f}" == f"{1:.{digits}f}":
        return "the same proportion"
    return f"{factor:.{digits}f}x apart"


def _balance_detail(a: float, b: float, mw: dict[str, str], tw: dict[str, str], other: str) -> str:
    """The CPU/GPU balance term in words: each host's free vGPU framebuffer per free vCPU and how far it is from the
    VM's, as a factor. The ranking value is minus the log of that factor (0 when not scored: CPUs unknown)."""
    fa, fb = math.exp(-a), math.exp(-b)
    closer = "closer to" if a > b else "further from"
    vm = mw.get("balance-vm") or tw.get("balance-vm")
    target = f"the VM's {vm} GB per vCPU" if vm else "the VM's"
    worded = bool(mw or tw)  # the planner's words: a side without a balance was not scored (free vCPUs unknown)

    def side(w: dict[str, str], f: float, g: float) -> str:
        if "balance" in w:
            return f"{w['balance']} ({apart_text(f, g)})"
        return "not compared (free vCPUs unknown)" if worded else apart_text(f, g)

    sides = f"{side(mw, fa, fb)}; {other}: {side(tw, fb, fa)}"
    return f"its free vGPU framebuffer per free vCPU is {closer} {target}: {sides}"


def _nodes(n: int) -> str:
    return "NUMA node unknown" if n == 0 else f"{_count(n, 'NUMA node')}"


def b_fmt(v) -> str:
    mem, cpu = v
    return f"{cpu} vCPUs + {mem // 1024} GiB"
