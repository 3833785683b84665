"""What-if speed: Monte Carlo runs per second of the capacity simulator (``placement.engine.simulate``).

1. ``--single`` runs (default 10,000) on one A100 80 GB GPU, mixed size, catalog 8C,10C,20C, stop at the first
   rejection (Denneman's part 6 experiment), with the default ``vsphere`` rules and with the ``article`` rules.
   Target: under 5 s.
2. ``--cluster`` runs (default 12,500, the article's "~p99" tier) on 4 hosts x 4 A100 80 GB, catalog
   8C,10C,20C,40C, requests until the cluster's GB are asked for (part 7): the article's experiment (GPU round
   robin) in same-size and mixed-size mode, and the default rules (DRS-like host choice, the engine's GPU choice)
   in mixed-size mode. Target: under 60 s.

Each scenario runs with ``--workers`` processes (default 2, this machine's cores) from a cold start: the memo
tables of one simulator (the rules' answers per GPU state) are filled by the first chunk in the parent and
inherited by the forked workers. Times are printed, never asserted; results go to bench/results/whatif_speed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from placement.engine.simulate import monte_carlo  # noqa: E402
from placement.engine.simulate_model import Scenario, parse_offers  # noqa: E402

NAME = "whatif_speed"
RESULTS = REPO / "bench" / "results"


def scenario(mode: str, catalog: list[str], hosts: int, gpus: int, **kw) -> Scenario:
    offers = parse_offers("A100-80GB", mode, catalog, None, gpus)
    return Scenario(
        board="A100-80GB", mode=mode, offers=offers, hosts=hosts, gpus_per_host=gpus, vcpus=0, memory_gb=0, **kw
    )


def cases(single: int, cluster: int) -> list[tuple[str, Scenario, int, float]]:
    one = ["8C", "10C", "20C"]
    four = ["8C", "10C", "20C", "40C"]
    return [
        ("1 GPU, mixed, vsphere rules", scenario("mixed", one, 1, 1, until="first-rejection"), single, 5.0),
        (
            "1 GPU, mixed, article rules (part 6)",
            scenario("mixed", one, 1, 1, until="first-rejection", rules="article", host_choice="round-robin"),
            single,
            5.0,
        ),
        (
            "4x4, same, article rules (part 7)",
            scenario("same", four, 4, 4, rules="article", host_choice="gpu-round-robin"),
            cluster,
            60.0,
        ),
        (
            "4x4, mixed, article rules (part 7)",
            scenario("mixed", four, 4, 4, rules="article", host_choice="gpu-round-robin", alignment="placement-ids"),
            cluster,
            60.0,
        ),
        ("4x4, mixed, vsphere rules (DRS)", scenario("mixed", four, 4, 4), cluster, 60.0),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--single", type=int, default=10_000, help="runs of the 1-GPU scenarios")
    parser.add_argument("--cluster", type=int, default=12_500, help="runs of the 4x4 scenarios")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print the results as JSON too")
    args = parser.parse_args()

    rows = []
    print(f"{'scenario':<40} {'runs':>7} {'seconds':>8} {'runs/s':>8} {'target s':>8} {'vs target':>9}  result")
    for label, s, runs, target in cases(args.single, args.cluster):
        started = time.perf_counter()
        r = monte_carlo(s, runs=runs, seed=args.seed, workers=args.workers)
        took = time.perf_counter() - started
        row = {
            "scenario": label,
            "runs": runs,
            "seconds": round(took, 2),
            "runs_per_second": round(runs / took, 1),
            "target_seconds": target,
            "within_target": took < target,
            "workers": args.workers,
            "siloed_gb": r["siloed_gb"],
            "rejected": r["rejected"],
            "worst_seed": r["worst_seed"],
        }
        rows.append(row)
        summary = f"siloed p50 {r['siloed_gb']['p50']} max {r['siloed_gb']['max']}, rejected max {r['rejected']['max']}"
        print(
            f"{label:<40} {runs:>7} {took:>8.2f} {runs / took:>8.0f} {target:>8.0f} {took / target:>8.2f}x  {summary}",
            flush=True,
        )
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    print(f"cores: {os.cpu_count()}, load average (1 min) at the end: {load:.1f}" if load is not None else "")
    RESULTS.mkdir(parents=True, exist_ok=True)
    doc = {"name": NAME, "rows": rows, "cores": os.cpu_count(), "load_1min": load}
    (RESULTS / f"{NAME}.json").write_text(json.dumps(doc, indent=2))
    if args.json:
        print(json.dumps(doc, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
