"""Side-by-side what-ifs in one report: each comparison runs the same seeds on two scenarios that differ in one
choice, gives the difference, and says in one plain sentence which choice to make.

1. same-size vs mixed-size mode (same catalog);
2. spread (``performance``) vs pack (``consolidation``) in same-size mode;
3. catalog A vs catalog B (B defaults to A with every profile that does not tile the GPU, such as 8C or 16C on an
   80 GB board, replaced by the next size that does);
4. MIG layouts: vSphere's slot choice (3g at slot 4 first) vs the naive lowest free slot;
5. whole-GPU passthrough sets: the engine's topology-aware set search vs the lowest-indexed free GPUs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from gpucatalog.catalog import Board
from placement.engine.model import Fabric
from placement.engine.simulate import monte_carlo
from placement.engine.simulate_model import Offer, Scenario, SimulationError, board_or_error, parse_offers
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
) -> list[dict]:
    """Run the comparisons that apply to ``base`` (and its board); one dict per comparison."""
    board = board_or_error(base.board)
    plans: list[tuple[str, str, Scenario, str, Scenario]] = []
    swapped: list[tuple[str, str]] = []
    vgpu_ok = bool(board.timesliced) and base.mode in ("same", "mixed")
    if "mode" in which and vgpu_ok and board.supports_mixed_size:
        plans.append(
            (
                "mode",
                "same-size",
                replace(base, mode="same", rules="vsphere", host_choice="drs"),
                "mixed-size",
                replace(base, mode="mixed", rules="vsphere", host_choice="drs"),
            )
        )
    if "policy" in which and vgpu_ok:
        same = replace(base, mode="same", rules="vsphere", host_choice="drs")
        plans.append(
            (
                "policy",
                "spread (performance)",
                replace(same, policy="performance"),
                "pack (consolidation)",
                replace(same, policy="consolidation"),
            )
        )
    if "catalog" in which and vgpu_ok:
        names_b, swaps = tiling_catalog(board, base.offers)
        if catalog_b:
            names_b, swaps = catalog_b, []
        weights = [o.weight for o in base.offers] if len(names_b) == len(base.offers) else None
        offers_b = parse_offers(base.board, base.mode, names_b, weights, base.gpus_per_host)
        if [o.name for o in offers_b] != [o.name for o in base.offers]:
            mixed = (
                replace(base, mode="mixed", rules="vsphere", host_choice="drs") if board.supports_mixed_size else base
            )
            plans.append(
                (
                    "catalog",
                    ",".join(o.name for o in base.offers),
                    mixed,
                    ",".join(o.name for o in offers_b),
                    replace(mixed, offers=offers_b),
                )
            )
            swapped = swaps
    if "mig-layout" in which and board.mig is not None:
        mig_base = (
            base
            if base.mode == "mig"
            else replace(
                base,
                mode="mig",
                rules="vsphere",
                host_choice="drs",
                until="budget",
                sequence=(),
                offers=parse_offers(base.board, "mig", _default_mig(board)),
            )
        )
        plans.append(
            (
                "mig-layout",
                "vSphere slot choice",
                replace(mig_base, mig_slot="vsphere"),
                "naive first free slot",
                replace(mig_base, mig_slot="first-fit"),
            )
        )
    if "multi-gpu" in which:
        gpus = max(base.gpus_per_host, 2)
        sizes = [str(n) for n in (1, 2, 4) if n <= gpus]
        pt = replace(
            base,
            mode="passthrough",
            rules="vsphere",
            host_choice="drs",
            until="budget",
            sequence=(),
            gpus_per_host=gpus if not base.cluster else base.gpus_per_host,
            topology="pairs" if gpus % 2 == 0 else "pcie",
            offers=parse_offers(base.board, "passthrough", sizes, None, gpus),
        )
        plans.append(
            (
                "multi-gpu",
                "topology-aware sets",
                replace(pt, set_choice="topology"),
                "first free GPUs",
                replace(pt, set_choice="first-fit"),
            )
        )
    out = []
    total = 2 * len(plans)
    for i, (key, label_a, a, label_b, b) in enumerate(plans):
        try:
            ra = monte_carlo(a, fabric, runs=runs, seed=seed, workers=workers)
            rb = monte_carlo(b, fabric, runs=runs, seed=seed, workers=workers)
        except SimulationError as exc:
            out.append({"key": key, "a": {"label": label_a}, "b": {"label": label_b}, "skipped": exc.message})
            continue
        finally:
            if progress:
                progress(2 * (i + 1), total)
        out.append(
            {
                "key": key,
                "a": {"label": label_a, **_brief(ra)},
                "b": {"label": label_b, **_brief(rb)},
                "difference": _difference(ra, rb),
                "recommendation": _recommend(key, board, label_a, label_b, ra, rb, swapped),
            }
        )
    return out


def _default_mig(board: Board) -> list[str]:
    wanted = []
    for slices in (3, 2, 1):
        p = next((p for p in board.mig.profiles if p.compute_slices == slices and not p.media_extensions), None)
        if p is not None:
            wanted.append(p.name)
    return wanted


def _difference(a: dict, b: dict) -> dict:
    """B minus A for the means that decide: siloed GB, rejections, placed GB, utilization, stranded slices."""
    return {
        m: round(b[m]["mean"] - a[m]["mean"], 3)
        for m in ("siloed_gb", "rejected", "placed_gb", "utilization_pct", "stranded_compute")
    }


def _nvlink_share(summary: dict) -> float:
    links = summary["multi_gpu_by_link"]
    total = sum(links.values())
    return 100.0 * sum(v for k, v in links.items() if k in ("NVLINK", "NVSWITCH")) / total if total else 0.0


def _recommend(key: str, board: Board, la: str, lb: str, a: dict, b: dict, swaps: list) -> str:
    ua, ub = a["utilization_pct"]["mean"], b["utilization_pct"]["mean"]
    ra, rb = a["rejected"]["mean"], b["rejected"]["mean"]
    sa, sb = a["siloed_gb"]["mean"], b["siloed_gb"]["mean"]
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
        w, lo = (
            ((la, ua, ra, ca), (lb, ub, rb, cb))
            if (ua, -ra, -ca) > (ub, -rb, -cb)
            else ((lb, ub, rb, cb), (la, ua, ra, ca))
        )
        return (
            f"For this MIG catalog the {w[0]} uses the GPUs better than the {lo[0]}: utilization {w[1]:.1f}% vs "
            f"{lo[1]:.1f}%, {w[2]:.2f} vs {lo[2]:.2f} rejections per run, {w[3]:.2f} vs {lo[3]:.2f} stranded "
            "compute slices."
        )
    if (ua, ra, sa) == (ub, rb, sb):
        return f"{la} and {lb} give the same utilization, rejections and siloed memory here: either will do."
    b_better = (ub, -rb, -sb) > (ua, -ra, -sa)
    w, lo = ((lb, ub, rb, sb), (la, ua, ra, sa)) if b_better else ((la, ua, ra, sa), (lb, ub, rb, sb))
    numbers = (
        f"utilization {w[1]:.1f}% vs {lo[1]:.1f}%, {w[2]:.2f} vs {lo[2]:.2f} rejections per run, "
        f"mean siloed {w[3]:.1f} vs {lo[3]:.1f} GB"
    )
    if key == "catalog":
        if b_better and swaps and b["siloed_gb"]["max"] == 0 and a["siloed_gb"]["max"] > 0:
            swapped = ", ".join(f"{x} with {y}" for x, y in swaps)
            return f"Replacing {swapped} removes all siloed capacity on {board.key} in mixed-size mode ({numbers})."
        return f"Offer {w[0]} rather than {lo[0]} on {board.key} ({numbers})."
    if key == "mode":
        return f"Use {w[0]} mode for this catalog on {board.key} ({numbers})."
    return f"Prefer {w[0]} in same-size mode ({numbers})."
