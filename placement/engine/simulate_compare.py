"""Side-by-side what-ifs in one report: each comparison runs the same seeds on two scenarios that differ in one
choice, gives the difference, and says in one plain sentence which choice to make.

1. same-size vs mixed-size mode (same catalog);
2. spread (``performance``) vs pack (``consolidation``) in same-size mode;
3. catalog A vs catalog B (B defaults to A with every profile that does not tile the GPU, such as 8C or 16C on an
   80 GB board, replaced by the next size that does);
4. MIG layouts: vSphere's slot choice (3g at slot 4 first) vs the naive lowest free slot;
5. whole-GPU passthrough sets: the engine's topology-aware set search vs the lowest-indexed free GPUs.

A comparison keeps the user's scenario wherever it can. When it has to change more than the compared choice (a
default MIG catalog for a vGPU one, passthrough VMs for a catalog without multi-GPU VMs, same-size mode for the
policy, the vSphere rules for the article's) its ``note`` says what it ran instead and why, and ``changed`` holds
those values; a comparison that cannot apply is ``skipped`` with a one-line reason. A scenario that several
comparisons (or the user's own Monte Carlo, passed as ``known``) share runs once.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from gpucatalog.catalog import Board
from placement.engine.model import Fabric
from placement.engine.simulate import monte_carlo
from placement.engine.simulate_model import (
    MODE_WORDS,
    Offer,
    Scenario,
    SimulationError,
    board_or_error,
    mig_catalog,
    parse_offers,
    plural,
)
from placement.engine.vgpu import placement_ids

COMPARISONS = ("mode", "policy", "catalog", "mig-layout", "multi-gpu")


def tiles(board: Board, size: int) -> bool:
    """Whether ``size`` GB profiles tile the GPU: their placement IDs are 0, size, 2 x size ... to the end."""
    cap = board.framebuffer_gb
    return cap % size == 0 and tuple(placement_ids(board, cap, size)) == tuple(range(0, cap, size))


def tiling_catalog(board: Board, offers: tuple[Offer, ...]) -> tuple[list[str], list[tuple[str, str]]]:
    """The catalog with each non-tiling profile replaced by the next larger size that tiles, and the swaps."""
    out: list[str] = []
    swaps: list[tuple[str, str]] = []
    for o in offers:
        size = o.size_gb
        if not tiles(board, size):
            bigger = [s for s in sorted(board.timesliced) if s > size and tiles(board, s)]
            size = bigger[0] if bigger else size
        name = f"{size}C"
        if name != o.name:
            swaps.append((o.name, name))
        if name not in out:
            out.append(name)
    return out, swaps


def _brief(summary: dict) -> dict:
    return {
        "siloed_gb": summary["siloed_gb"],
        "locked_gb": summary["locked_gb"],
        "rejected": summary["rejected"],
        "placed": summary["placed"],
        "placed_gb": summary["placed_gb"],
        "utilization_pct": summary["utilization_pct"],
        "stranded_compute": summary["stranded_compute"],
        "placeable": summary["placeable"],
        "multi_gpu_by_link": summary["multi_gpu_by_link"],
        "rejected_by_reason": summary["rejected_by_reason"],
        "worst_seed": summary["worst_seed"],
    }


def _pct(a: float, b: float) -> str:
    return f"{a:.1f}% vs {b:.1f}%"


RULE_WORDS = {"vsphere": "the vSphere rules", "article": "the article's rules"}
HOST_WORDS = {
    "drs": "DRS host choice",
    "round-robin": "round-robin host choice",
    "ranking": "the planner's ranking",
    "gpu-round-robin": "one round robin over all GPUs",
}
TOPOLOGY_WORDS = {"pcie": "PCIe-only hosts", "pairs": "hosts of NVLink pairs", "hgx": "HGX (NVSwitch) hosts"}
SUBJECT = {
    "mode": "Same-size and mixed-size modes",
    "policy": "Spread and pack",
    "catalog": "The two catalogs",
    "mig-layout": "MIG layouts",
    "multi-gpu": "Multi-GPU set choices",
}
# What a comparison may change besides its own choice, in the order a note lists them (public parameter names).
DESCRIBED = ("mode", "catalog", "policy", "gpus_per_host", "topology", "rules", "host_choice", "until")


@dataclass(frozen=True)
class Planned:
    """One comparison before it runs: scenarios A and B, or why it is skipped."""

    key: str
    label_a: str = ""
    a: Scenario | None = None
    label_b: str = ""
    b: Scenario | None = None
    note: str = ""  # what A and B change besides the compared choice, and why ("": nothing)
    changed: dict = field(default_factory=dict)  # those values, by parameter name
    skipped: str = ""
    swaps: tuple[tuple[str, str], ...] = ()


def _value(s: Scenario, name: str):
    return [o.name for o in s.offers] if name == "catalog" else getattr(s, name)


def _describe(s: Scenario, name: str, catalog: str = "") -> str:
    if name == "mode":
        return MODE_WORDS[s.mode]
    if name == "catalog":
        return catalog or "catalog " + ",".join(o.name for o in s.offers)
    if name == "gpus_per_host":
        return plural(s.gpus_per_host, "GPU") + " per host"
    if name == "topology":
        return TOPOLOGY_WORDS[s.topology]
    if name == "rules":
        return RULE_WORDS[s.rules]
    if name == "host_choice":
        return HOST_WORDS[s.host_choice]
    if name == "policy":
        return f"the {s.policy} policy"
    return f"stop rule {s.until}"


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _planned(
    key: str,
    user: Scenario,
    label_a: str,
    a: Scenario,
    label_b: str,
    b: Scenario,
    why: str = "",
    *,
    compared: str,
    catalog: str = "",
    swaps: tuple = (),
) -> Planned:
    """The comparison, with a note on every parameter A differs in from the user's scenario but ``compared``
    (``catalog``: how to name A's catalog when it is the comparison's own)."""
    names = [n for n in DESCRIBED if n != compared and not (user.cluster and n in ("gpus_per_host", "topology"))]
    differs = [n for n in names if _value(a, n) != _value(user, n)]
    if not differs:
        return Planned(key, label_a, a, label_b, b, swaps=swaps)
    reasons = []
    if why and set(differs) - {"rules", "host_choice", "until"}:
        reasons.append(why)
    if {"rules", "host_choice"} & set(differs):
        reasons.append("the comparisons run the vSphere rules")
    if "until" in differs:
        reasons.append("they draw random requests (an arrival sequence is one run)")
    ran = _and([_describe(a, n, catalog) for n in differs])
    yours = ", ".join(_describe(user, n) for n in differs)
    note = (
        f"{SUBJECT[key]} compared with {ran} (yours: {yours})" + (f", since {_and(reasons)}" if reasons else "") + "."
    )
    changed = {n: _value(a, n) for n in differs}
    return Planned(key, label_a, a, label_b, b, note, changed, swaps=swaps)


def plan(user: Scenario, *, which: tuple[str, ...] = COMPARISONS, catalog_b: list[str] | None = None) -> list[Planned]:
    """The comparisons for the user's scenario, in ``COMPARISONS`` order, without running them."""
    board = board_or_error(user.board)
    base = user
    if base.until == "sequence":
        base = replace(base, until="budget", sequence=())
    if base.rules != "vsphere":
        base = replace(base, rules="vsphere", host_choice="drs", alignment="natural")
    if not board.timesliced:
        not_vgpu = f"{board.key} has no time-sliced vGPU profiles"
    elif base.mode not in ("same", "mixed"):
        not_vgpu = f"it compares time-sliced vGPU profiles; your catalog is for {MODE_WORDS[base.mode]}"
    else:
        not_vgpu = ""
    out: list[Planned] = []
    if "mode" in which:
        if not_vgpu or not board.supports_mixed_size:
            out.append(Planned("mode", skipped=not_vgpu or f"{board.key} has no published mixed-size placement IDs"))
        else:
            out.append(
                _planned(
                    "mode", user, "same-size", replace(base, mode="same"), "mixed-size", replace(base, mode="mixed"),
                    compared="mode",
                )
            )  # fmt: skip
    if "policy" in which:
        if not_vgpu:
            out.append(Planned("policy", skipped=not_vgpu))
        else:
            same = replace(base, mode="same")
            out.append(
                _planned(
                    "policy", user, "spread (performance)", replace(same, policy="performance"),
                    "pack (consolidation)", replace(same, policy="consolidation"),
                    "the mixed-size placement does not use the assignment policy", compared="policy",
                )
            )  # fmt: skip
    if "catalog" in which:
        out.append(_plan_catalog(user, base, board, not_vgpu, catalog_b))
    if "mig-layout" in which:
        if board.mig is None:
            out.append(Planned("mig-layout", skipped=f"{board.key} does not support MIG"))
        else:
            mig_base = base
            if base.mode != "mig":
                mig_base = replace(base, mode="mig", offers=parse_offers(base.board, "mig", mig_catalog(board)))
            out.append(
                _planned(
                    "mig-layout", user, "vSphere slot choice", replace(mig_base, mig_slot="vsphere"),
                    "naive first free slot", replace(mig_base, mig_slot="first-fit"),
                    "your catalog has no MIG profiles", compared="mig_slot",
                    catalog="the default MIG catalog " + ",".join(o.name for o in mig_base.offers),
                )
            )  # fmt: skip
    if "multi-gpu" in which:
        out.append(_plan_multi_gpu(user, base))
    return out


def _plan_catalog(user: Scenario, base: Scenario, board: Board, not_vgpu: str, catalog_b: list[str] | None) -> Planned:
    if not_vgpu:
        return Planned("catalog", skipped=not_vgpu)
    names_b, swaps = tiling_catalog(board, base.offers)
    if catalog_b:
        names_b, swaps = catalog_b, []
    weights = [o.weight for o in base.offers] if len(names_b) == len(base.offers) else None
    try:
        offers_b = parse_offers(base.board, base.mode, names_b, weights, base.gpus_per_host)
    except SimulationError as exc:
        return Planned("catalog", skipped=f"catalog B: {exc.message}")
    if [o.name for o in offers_b] == [o.name for o in base.offers]:
        return Planned("catalog", skipped="every profile of your catalog already tiles the GPU: nothing to replace")
    a = replace(base, mode="mixed") if board.supports_mixed_size else base
    return _planned(
        "catalog", user, ",".join(o.name for o in base.offers), a, ",".join(o.name for o in offers_b),
        replace(a, offers=offers_b), "a catalog that does not tile the GPU silos memory in mixed-size mode",
        compared="catalog", swaps=tuple(swaps),
    )  # fmt: skip


def _plan_multi_gpu(user: Scenario, base: Scenario) -> Planned:
    """The user's passthrough scenario when it has multi-GPU VMs; otherwise passthrough VMs of 1, 2 and 4 GPUs on
    hosts of at least 2 GPUs, NVLink-paired when the board has NVLink (a hypothetical cluster) so that the set
    choice has a choice."""
    catalog = ""
    if base.mode == "passthrough" and any(o.gpus > 1 for o in base.offers):
        pt = base
    else:
        gpus = max(base.gpus_per_host, 2)
        kept = base.mode == "passthrough" and base.topology != "hgx"
        nvlink = board_or_error(base.board).nvlink_generation is not None
        topology = base.topology if kept else ("pairs" if gpus % 2 == 0 and nvlink else "pcie")
        if not base.cluster:
            base = replace(base, gpus_per_host=gpus, topology=topology)
        sizes = [str(n) for n in (1, 2, 4) if n <= gpus]
        pt = replace(base, mode="passthrough", offers=parse_offers(base.board, "passthrough", sizes, None, gpus))
        catalog = f"VMs of {_and(sizes)} whole GPUs"
    return _planned(
        "multi-gpu", user, "topology-aware sets", replace(pt, set_choice="topology"), "first free GPUs",
        replace(pt, set_choice="first-fit"), "your catalog has no multi-GPU VMs", compared="set_choice",
        catalog=catalog,
    )  # fmt: skip


def scenarios(plans: list[Planned]) -> list[Scenario]:
    """The distinct scenarios the comparisons run, in order (a scenario two comparisons share runs once)."""
    out: dict[Scenario, None] = {}
    for p in plans:
        if not p.skipped:
            out.setdefault(p.a)
            out.setdefault(p.b)
    return list(out)


def compare(
    base: Scenario,
    fabric: Fabric | None = None,
    *,
    runs: int,
    seed: int = 1,
    workers: int = 1,
    which: tuple[str, ...] = COMPARISONS,
    catalog_b: list[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
    known: dict[Scenario, dict] | None = None,
) -> list[dict]:
    """Run the comparisons for the user's scenario ``base``: one dict per comparison, run or skipped.

    ``known``: Monte Carlo summaries already made with these ``runs`` and ``seed`` (the user's own run), reused.
    ``progress(done, total)`` counts the scenarios run.
    """
    board = board_or_error(base.board)
    plans = plan(base, which=which, catalog_b=catalog_b)
    results: dict[Scenario, dict | SimulationError] = dict(known or {})
    todo = [s for s in scenarios(plans) if s not in results]
    for i, s in enumerate(todo, 1):
        try:
            results[s] = monte_carlo(s, fabric, runs=runs, seed=seed, workers=workers)
        except SimulationError as exc:
            results[s] = exc
        if progress:
            progress(i, len(todo))
    out = []
    for p in plans:
        entry: dict = {"key": p.key, "a": {"label": p.label_a}, "b": {"label": p.label_b}}
        if p.note:
            entry["note"] = p.note
            entry["changed"] = p.changed
        failed = [r for r in (results.get(p.a), results.get(p.b)) if isinstance(r, SimulationError)]
        if p.skipped or failed:
            entry["skipped"] = p.skipped or failed[0].message
            out.append(entry)
            continue
        ra, rb = results[p.a], results[p.b]
        entry["a"].update(_brief(ra))
        entry["b"].update(_brief(rb))
        entry["difference"] = _difference(ra, rb)
        entry["recommendation"] = _recommend(p.key, board, p.label_a, p.label_b, ra, rb, list(p.swaps))
        out.append(entry)
    return out


def _difference(a: dict, b: dict) -> dict:
    """B minus A for the means that decide (siloed GB, rejections, placed GB, utilization, stranded slices) and
    for locked GB, which is shown beside siloed GB but decides nothing."""
    return {
        m: round(b[m]["mean"] - a[m]["mean"], 3)
        for m in ("siloed_gb", "locked_gb", "rejected", "placed_gb", "utilization_pct", "stranded_compute")
    }


def _nvlink_share(summary: dict) -> float:
    links = summary["multi_gpu_by_link"]
    total = sum(links.values())
    return 100.0 * sum(v for k, v in links.items() if k in ("NVLINK", "NVSWITCH")) / total if total else 0.0


def _apart(a: dict, b: dict) -> bool:
    """Whether two means differ by more than run-to-run noise: two standard errors of their difference."""
    return abs(a["mean"] - b["mean"]) > 2 * math.hypot(a.get("sem", 0), b.get("sem", 0))


def _noise(a: dict, b: dict) -> bool:
    """No metric that decides differs beyond noise."""
    return not any(_apart(a[m], b[m]) for m in ("utilization_pct", "rejected", "siloed_gb", "stranded_compute"))


def _locked_words(first: dict, second: dict) -> str:
    """The words ", mean locked X vs Y GB" in the order the siloed figures are given, or "" when neither side locks any
    memory (mixed size, MIG, passthrough): only same-size runs have locked GB."""
    la, lb = (s.get("locked_gb", {}).get("mean", 0) for s in (first, second))
    return f", mean locked {la:.1f} vs {lb:.1f} GB" if la or lb else ""


def _recommend(key: str, board: Board, la: str, lb: str, a: dict, b: dict, swaps: list) -> str:
    ua, ub = a["utilization_pct"]["mean"], b["utilization_pct"]["mean"]
    ra, rb = a["rejected"]["mean"], b["rejected"]["mean"]
    sa, sb = a["siloed_gb"]["mean"], b["siloed_gb"]["mean"]
    locked = _locked_words(a, b)
    if key == "multi-gpu":
        na, nb = _nvlink_share(a), _nvlink_share(b)
        if na > nb:
            return (
                f"Let the advisor pick the GPUs of multi-GPU passthrough VMs: {na:.0f}% of them get an NVLink set, "
                f"against {nb:.0f}% when vSphere takes the first free GPUs."
            )
        return f"On this topology the GPU choice does not change the link class ({na:.0f}% NVLink either way)."
    if key == "mig-layout":
        ca, cb = a["stranded_compute"]["mean"], b["stranded_compute"]["mean"]
        if (ua, -ra, -ca) == (ub, -rb, -cb):
            return "The MIG slot order makes no difference for this catalog."
        numbers = (
            f"utilization {ua:.1f}% vs {ub:.1f}%, {ra:.2f} vs {rb:.2f} rejections per run, {ca:.2f} vs {cb:.2f} "
            "stranded compute slices"
        )
        if _noise(a, b):
            return (
                f"The MIG slot order makes no meaningful difference for this catalog ({la} vs {lb}: {numbers}; "
                "within the run-to-run noise)."
            )
        better = "costs" if (ub, -rb, -cb) > (ua, -ra, -ca) else "saves"
        return (
            f"vSphere's slot choice is not a setting; for this MIG catalog it {better} capacity against the "
            f"{lb} ({la} vs {lb}: {numbers}): weigh that when choosing the MIG profiles to offer."
        )
    if (ua, ra, sa) == (ub, rb, sb):
        same = f"{la} and {lb} give the same utilization, rejections and siloed memory here: either will do."
        return same[0].upper() + same[1:]
    if _noise(a, b):
        same = (
            f"{la} and {lb} differ by no more than the run-to-run noise here (utilization {ua:.1f}% vs {ub:.1f}%, "
            f"{ra:.2f} vs {rb:.2f} rejections per run, mean siloed {sa:.1f} vs {sb:.1f} GB{locked}): either will do."
        )
        return same[0].upper() + same[1:]
    b_better = (ub, -rb, -sb) > (ua, -ra, -sa)
    w, lo = ((lb, ub, rb, sb), (la, ua, ra, sa)) if b_better else ((la, ua, ra, sa), (lb, ub, rb, sb))
    if b_better:  # the numbers give the better side first
        locked = _locked_words(b, a)
    numbers = (
        f"utilization {w[1]:.1f}% vs {lo[1]:.1f}%, {w[2]:.2f} vs {lo[2]:.2f} rejections per run, "
        f"mean siloed {w[3]:.1f} vs {lo[3]:.1f} GB{locked}"
    )
    if key == "catalog":
        if b_better and swaps and b["siloed_gb"]["max"] == 0 and a["siloed_gb"]["max"] > 0:
            swapped = ", ".join(f"{x} with {y}" for x, y in swaps)
            return f"Replacing {swapped} removes all siloed capacity on {board.key} in mixed-size mode ({numbers})."
        return f"Offer {w[0]} rather than {lo[0]} on {board.key} ({numbers})."
    if key == "mode":
        return f"Use {w[0]} mode for this catalog on {board.key} ({numbers})."
    return f"Prefer {w[0]} in same-size mode ({numbers})."
