"""Placement speed: the engine over a large in-memory inventory, against the exhaustive uncached search.

1. One ``--gpus``-GPU passthrough request over ``--hosts`` hosts of 8 GPUs (``synthetic.uniform_cluster`` of
   ``--kind`` hosts with ``--busy-fraction`` of the GPUs taken at random, or ``mixed_cluster`` with
   ``--kind mixed``): median wall time of ``plan`` over ``--runs`` runs with the caches cold
   (``reset_caches()`` before every run) and warm (the same request again).
2. ``--requests`` sequential passthrough requests (seeded 1/2/4/8-GPU mix) on the same inventory, each
   best candidate applied with ``apply_candidate`` before the next request (the reservation step): total
   time, per-request median and p95, and the engine's cache counters.
3. The same work done by the exhaustive uncached search: per host the engine's hard-rule filters then
   ``gpuset.search_uncached`` (a fresh topology, no memo). For the single request this runs over all hosts
   (median of ``--uncached-runs``); for the sequence it runs on ``--uncached-sample`` requests spread evenly
   through it (at the state the cached run had there), and the total is extrapolated. Ratios are
   uncached time / engine time.
Times are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from placement.engine import synthetic  # noqa: E402
from placement.engine.filters import RequestContext, check_gpus, check_host  # noqa: E402
from placement.engine.gpuset import search_uncached  # noqa: E402
from placement.engine.model import Fabric  # noqa: E402
from placement.engine.plan import apply_candidate, cache_stats, plan, reset_caches  # noqa: E402
from placement.engine.request import PlacementRequest  # noqa: E402

NAME = "placement_speed"
RESULTS = REPO / "bench" / "results"
MIX = ((1, 0.35), (2, 0.30), (4, 0.20), (8, 0.15))


def inventory(kind: str, hosts: int, busy_fraction: float, seed: int) -> Fabric:
    if kind == "mixed":
        return synthetic.mixed_cluster(hosts, busy_fraction=busy_fraction, seed=seed)
    return synthetic.uniform_cluster(hosts, kind, busy_fraction=busy_fraction, seed=seed)


def uncached_pass(fabric: Fabric, request: PlacementRequest) -> int:
    """Filters + exhaustive uncached set search on every host; returns how many hosts found a set."""
    ctx = RequestContext.of(request.validate())
    found = 0
    for host in fabric.hosts:
        if check_host(host, ctx):
            continue
        eligible = {f.gpu.pci_id for f in check_gpus(host, ctx).eligible}
        if len(eligible) < request.gpus_per_vm:
            continue
        if search_uncached(host, eligible, request.gpus_per_vm, request.effective_interconnect).best is not None:
            found += 1
    return found


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def timed(fn) -> tuple[float, object]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def single_request(fabric: Fabric, gpus: int, runs: int, uncached_runs: int) -> dict:
    request = PlacementRequest(gpus_per_vm=gpus, consumption="passthrough")
    cold, warm = [], []
    candidates = 0
    for _ in range(runs):
        reset_caches()
        dt, p = timed(lambda: plan(fabric, request))
        cold.append(dt)
        candidates = len(p.candidates)  # type: ignore[attr-defined]
    plan(fabric, request)
    for _ in range(runs):
        dt, _p = timed(lambda: plan(fabric, request))
        warm.append(dt)
    unc = [timed(lambda: uncached_pass(fabric, request))[0] for _ in range(uncached_runs)]
    cold_ms, warm_ms, unc_ms = (_ms(statistics.median(x)) for x in (cold, warm, unc))
    return {
        "gpus": gpus,
        "hosts": len(fabric.hosts),
        "candidates": candidates,
        "cold_median_ms": cold_ms,
        "warm_median_ms": warm_ms,
        "uncached_median_ms": unc_ms,
        "ratio_uncached_to_cold": round(unc_ms / cold_ms, 2) if cold_ms else None,
        "ratio_uncached_to_warm": round(unc_ms / warm_ms, 2) if warm_ms else None,
        "target_ms": 100,
    }


def make_requests(n: int, seed: int) -> list[PlacementRequest]:
    rng = random.Random(seed)
    sizes = [k for k, _ in MIX]
    weights = [w for _, w in MIX]
    return [
        PlacementRequest(gpus_per_vm=k, consumption="passthrough", vcpus=4 * k, memory_mb=32 * 1024 * k)
        for k in rng.choices(sizes, weights, k=n)
    ]


def sequential(fabric: Fabric, requests: Sequence[PlacementRequest], uncached_sample: int) -> dict:
    reset_caches()
    n = len(requests)
    step = max(n // uncached_sample, 1) if uncached_sample else 0
    sample_at = set(range(0, n, step)) if step else set()
    times: list[float] = []
    cached_at_sample: list[float] = []
    uncached: list[float] = []
    placed = 0
    state = fabric
    for i, req in enumerate(requests):
        before = state
        t = time.perf_counter()
        best = plan(before, req, limit=1).best
        if best is not None:
            state = apply_candidate(before, best, req, f"seq-{i:05d}")
            placed += 1
        dt = time.perf_counter() - t
        times.append(dt)
        if i in sample_at:  # on the state the engine saw; not part of the engine's total
            uncached.append(timed(lambda req=req, before=before: uncached_pass(before, req))[0])
            cached_at_sample.append(dt)
    total = sum(times)
    times_sorted = sorted(times)
    unc_total_est = statistics.fmean(uncached) * n if uncached else None
    return {
        "requests": n,
        "placed": placed,
        "total_s": round(total, 3),
        "median_ms": _ms(statistics.median(times)),
        "p95_ms": _ms(times_sorted[int(0.95 * (n - 1))]),
        "uncached_sampled_requests": len(uncached),
        "uncached_mean_ms": _ms(statistics.fmean(uncached)) if uncached else None,
        "cached_mean_ms_same_requests": _ms(statistics.fmean(cached_at_sample)) if cached_at_sample else None,
        "uncached_total_s_extrapolated": round(unc_total_est, 3) if unc_total_est is not None else None,
        "ratio_uncached_to_engine": (
            round(statistics.fmean(uncached) / statistics.fmean(cached_at_sample), 2) if uncached else None
        ),
        "cache_stats": cache_stats(),
        "target_s": 30,
    }


def print_results(res: dict) -> None:
    s = res["single"]
    print(f"\n== Speed: {s['hosts']} hosts x 8 GPUs ({res['kind']}, busy fraction {res['busy_fraction']}) ==")
    print(f"one {s['gpus']}-GPU request ({s['candidates']} candidate hosts), median of {res['runs']} runs:")
    print(f"  {'engine, cold caches':<40}{s['cold_median_ms']:>10.1f} ms   (target < {s['target_ms']} ms)")
    print(f"  {'engine, warm caches':<40}{s['warm_median_ms']:>10.1f} ms")
    print(f"  {'exhaustive uncached search':<40}{s['uncached_median_ms']:>10.1f} ms")
    print(f"  ratio uncached / cold: {s['ratio_uncached_to_cold']}x   uncached / warm: {s['ratio_uncached_to_warm']}x")
    q = res["sequential"]
    print(f"{q['requests']} sequential requests with reservations (apply_candidate between requests):")
    print(f"  {'engine total':<40}{q['total_s']:>10.2f} s    (target < {q['target_s']} s), {q['placed']} placed")
    print(f"  {'engine per request median / p95':<40}{q['median_ms']:>10.1f} / {q['p95_ms']:.1f} ms")
    if q["uncached_sampled_requests"]:
        print(
            f"  {'exhaustive uncached, per request':<40}{q['uncached_mean_ms']:>10.1f} ms   "
            f"(mean of {q['uncached_sampled_requests']} sampled requests; engine on the same: "
            f"{q['cached_mean_ms_same_requests']:.1f} ms)"
        )
        print(f"  {'exhaustive uncached, total (extrap.)':<40}{q['uncached_total_s_extrapolated']:>10.2f} s")
        print(f"  ratio uncached / engine: {q['ratio_uncached_to_engine']}x")
    print(f"  cache: {q['cache_stats']}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--hosts", type=int, default=1000)
    p.add_argument("--kind", default="dgx1", choices=["dgx1", "nvl", "pcie", "l40s", "mixed"])
    p.add_argument("--busy-fraction", type=float, default=0.25)
    p.add_argument("--gpus", type=int, default=8, help="GPUs of the single request")
    p.add_argument("--runs", type=int, default=15)
    p.add_argument("--uncached-runs", type=int, default=3)
    p.add_argument("--requests", type=int, default=1000)
    p.add_argument("--uncached-sample", type=int, default=20)
    p.add_argument("--out", type=Path, default=RESULTS / f"{NAME}.json")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict:
    args = parse_args(argv)
    fabric = inventory(args.kind, args.hosts, args.busy_fraction, args.seed)
    out = {
        "benchmark": NAME,
        "seed": args.seed,
        "kind": args.kind,
        "busy_fraction": args.busy_fraction,
        "runs": args.runs,
        "single": single_request(fabric, args.gpus, args.runs, args.uncached_runs),
        "sequential": sequential(fabric, make_requests(args.requests, args.seed), args.uncached_sample),
    }
    print_results(out)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2))
    print(f"\nwrote {args.out}")
    return out


if __name__ == "__main__":
    main()
