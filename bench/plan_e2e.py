#!/usr/bin/env python
"""Planning end to end from the database: ``services.plan_cluster`` on the 1,000- and 5,000-host scale labs.

For each database (SQLite file; PostgreSQL when DATABASE_URL points to one) and lab size, in a dedicated database
(``bench_plan_e2e_<hosts>``, loaded once through ``inventory import``'s apply service and reused):

  * warm  -- one long-lived process: median of ``--reps`` service calls per request shape, split into the time to
             build the engine's input (``placement.selectors.fabric_snapshot``) and the time in the engine;
  * cold  -- a fresh process per request shape: the first service call after ``django.setup()``;
  * old   -- the pre-snapshot read (``bench/legacy_fabric.py``, a copy of the old ``fabric_for``) once in the
             same warm process, plus the engine on it per shape: the time and the ratio old / warm (SQLite
             refuses its IN lists even at a few hundred hosts);
  * RSS   -- (``--rss``) the worker's resident memory after 1,000 and after 10,000 plan requests on a 50-host
             cluster of the same lab, with reservations made and released along the way.

Ratios and medians are printed, never asserted. Results also go to bench/results/plan_e2e.json.

    .venv/bin/python bench/plan_e2e.py --hosts 1000            # SQLite, and PostgreSQL when DATABASE_URL is set
    .venv/bin/python bench/plan_e2e.py --hosts 1000 --hosts 5000 --rss
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
sys.path.insert(0, str(REPO))

CLUSTER = "gpu-cluster-00"
RSS_CLUSTER = "rss-cluster"
SHAPES = {
    "1 GPU": {"gpus_per_vm": 1, "consumption": "passthrough"},
    "2 GPU": {"gpus_per_vm": 2, "consumption": "passthrough"},
    "4 GPU": {"gpus_per_vm": 4, "consumption": "passthrough"},
    "8 GPU": {"gpus_per_vm": 8, "consumption": "passthrough"},
    "vGPU 80C": {"gpus_per_vm": 1, "consumption": "vgpu", "profile": "nvidia_h100xm-80c"},
    "vGPU 10C": {"gpus_per_vm": 1, "consumption": "vgpu", "profile": "nvidia_h100xm-10c"},
}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# --------------------------------------------------------------------------- database


def database_url(kind: str, hosts: int) -> str:
    name = f"bench_plan_e2e_{hosts}"
    if kind == "sqlite":
        RESULTS.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{RESULTS / (name + '.sqlite3')}"
    import psycopg

    parts = urlsplit(os.environ["DATABASE_URL"])
    with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(parts._replace(path=f"/{name}"))


def setup(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


def lab(hosts: int, *, cluster: str = CLUSTER, vms: int | None = None, seed: int = 1) -> dict:
    sys.path.insert(0, str(REPO / "tools" / "vcsim"))
    from make_scale_lab import make_scale_lab

    document = make_scale_lab(1, hosts, 8, vms if vms is not None else 2 * hosts, seed)
    if cluster != CLUSTER:
        for c in document["clusters"]:
            c["name"] = cluster
        for h in document["hosts"]:
            h["name"] = f"{cluster}-{h['name']}"
            h["cluster"] = cluster
            for gpu in h.get("gpus", ()):
                for consumer in gpu.get("consumers", ()):
                    consumer["vm"] = f"{cluster}-{consumer['vm']}"
        for v in document["vms"]:
            v["name"] = f"{cluster}-{v['name']}"
            if v.get("host"):
                v["host"] = f"{cluster}-{v['host']}"
    return document


def load(hosts: int) -> dict:
    """Migrate and import the lab unless the database already holds it; returns load timings."""
    from django.core.management import call_command

    from inventory import services as inventory_services
    from inventory.models import Host

    call_command("migrate", verbosity=0, interactive=False)
    if (
        Host.objects.filter(cluster__name=CLUSTER).count() == hosts
        and Host.objects.filter(cluster__name=RSS_CLUSTER).exists()
    ):
        return {"loaded": "reused"}
    started = time.perf_counter()
    inventory_services.import_inventory(document=lab(hosts), vcenter_name="scale")
    main_s = time.perf_counter() - started
    inventory_services.import_inventory(document=lab(50, cluster=RSS_CLUSTER, vms=100, seed=2), vcenter_name="rss")
    return {"loaded": f"{main_s:.0f} s"}


# --------------------------------------------------------------------------- measurements (inside a worker)


def timed(fn, *args, **kw):
    started = time.perf_counter()
    value = fn(*args, **kw)
    return value, (time.perf_counter() - started) * 1000


def warm(hosts: int, reps: int, rss: bool) -> dict:
    from bench.legacy_fabric import legacy_fabric
    from placement import selectors, services
    from placement.engine.plan import plan

    out: dict = {"shapes": {}}
    # The old path reads the same rows whatever the request: read once, then plan each shape on it.
    try:
        old_fabric, old_build = timed(legacy_fabric, clusters=[CLUSTER])
        old_error = None
    except Exception as exc:  # SQLite: "Expression tree is too large"
        old_fabric, old_build, old_error = None, None, f"{type(exc).__name__}: {str(exc)[:60]}"
    for label, fields in SHAPES.items():
        request = services.build_request(**fields, clusters=[CLUSTER])
        services.plan_cluster(request=request)  # warm the process for this shape
        e2e, build, engine = [], [], []
        for _ in range(reps):
            _, ms = timed(services.plan_cluster, request=request)
            e2e.append(ms)
            fabric, ms_build = timed(selectors.fabric_snapshot, clusters=[CLUSTER])
            build.append(ms_build)
            _, ms_engine = timed(plan, fabric, request)
            engine.append(ms_engine)
        row = {
            "e2e_ms": statistics.median(e2e),
            "build_ms": statistics.median(build),
            "engine_ms": statistics.median(engine),
            "hosts": len(fabric.hosts),
        }
        if old_fabric is not None:
            old_plan, old_engine = timed(plan, old_fabric, request)
            row["old_ms"] = old_build + old_engine
            row["old_build_ms"] = old_build
            mine, theirs = plan(fabric, request).to_dict(), old_plan.to_dict()
            row["same_plan_as_old"] = mine == theirs
            # the old read predates the hosts' offered vGPU types: where a host does not offer the profile, the
            # new plan says so first, the old one names the next reason (the same hosts are rejected)
            row["same_candidates_as_old"] = mine["candidates"] == theirs["candidates"]
            row["same_rejected_hosts_as_old"] = {r["host"] for r in mine["rejected"]} == {
                r["host"] for r in theirs["rejected"]
            }
        else:
            row["old_error"] = old_error
        out["shapes"][label] = row
        log(f"{hosts} hosts {label}: {row}")
    if rss:
        out["rss"] = rss_loop()
    return out


def rss_loop(first: int = 1_000, total: int = 10_000) -> dict:
    """RSS after ``first`` and after ``total`` plan requests on the small cluster, GPU states changing."""
    from placement import services
    from placement.models import Reservation

    requests = [services.build_request(**f, clusters=[RSS_CLUSTER]) for f in SHAPES.values()]
    figures = {}
    held: list = []
    for i in range(1, total + 1):
        request = requests[i % len(requests)]
        services.plan_cluster(request=request)
        if i % 25 == 0:  # new GPU states: reserve one, release the oldest of four
            try:
                held += services.reserve(request=requests[0], vm_name=f"rss-{i}")
            except services.ReservationConflict:
                pass
            if len(held) > 4:
                services.release_reservation(reservation=held.pop(0))
        if i in (first, total):
            figures[i] = rss_mb()
            log(f"RSS after {i} plans: {figures[i]:.0f} MB")
    Reservation.objects.filter(vm_name__startswith="rss-").delete()
    return {"after_first_mb": figures[first], "after_total_mb": figures[total], "first": first, "total": total}


def cold(label: str) -> dict:
    """The first service call of a fresh process (after django.setup), split like the warm figures."""
    from placement import selectors, services
    from placement.engine.plan import plan

    request = services.build_request(**SHAPES[label], clusters=[CLUSTER])
    _, e2e = timed(services.plan_cluster, request=request)
    selectors.reset_snapshot_cache()
    from placement.engine.plan import reset_caches

    reset_caches()
    fabric, build = timed(selectors.fabric_snapshot, clusters=[CLUSTER])
    _, engine = timed(plan, fabric, request)
    return {"e2e_ms": e2e, "build_ms": build, "engine_ms": engine}


# --------------------------------------------------------------------------- driver


def worker(args) -> None:
    setup(args.url)
    if args.mode == "load":
        result = load(args.hosts[0])
    elif args.mode == "warm":
        result = warm(args.hosts[0], args.reps, args.rss)
    else:
        result = cold(args.shape)
    print(json.dumps(result))


def run_worker(url: str, *extra: str) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", "--url", url, *extra],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
    )
    sys.stderr.write(proc.stderr)
    if proc.returncode != 0:
        raise SystemExit(f"worker failed: {' '.join(extra)}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def fmt(ms: float | None) -> str:
    return "-" if ms is None else f"{ms:,.0f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hosts", type=int, action="append", help="lab sizes (repeatable; default 1000 and 5000)")
    ap.add_argument("--db", choices=["sqlite", "postgresql"], action="append", help="default: sqlite, and postgresql "
                    "when DATABASE_URL is set")  # fmt: skip
    ap.add_argument("--reps", type=int, default=5, help="warm service calls per request shape (median)")
    ap.add_argument("--rss", action="store_true", help="also the RSS after 1,000 and 10,000 plans (first db and size)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--mode", default="warm", help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    ap.add_argument("--shape", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args)
        return 0
    sizes = args.hosts or [1000, 5000]
    dbs = args.db or (["sqlite", "postgresql"] if os.environ.get("DATABASE_URL", "").startswith("postgres") else
                      ["sqlite"])  # fmt: skip
    results: dict = {}
    for db in dbs:
        for hosts in sizes:
            url = database_url(db, hosts)
            log(f"{db} {hosts} hosts: loading")
            loaded = run_worker(url, "--mode", "load", "--hosts", str(hosts))
            log(f"{db} {hosts} hosts: {loaded}")
            extra = ["--rss"] if args.rss and hosts == sizes[0] and db == dbs[0] else []
            w = run_worker(url, "--mode", "warm", "--hosts", str(hosts), "--reps", str(args.reps), *extra)
            c = {label: run_worker(url, "--mode", "cold", "--shape", label) for label in SHAPES}
            results[f"{db}/{hosts}"] = {"load": loaded, "warm": w, "cold": c}

    print()
    print("plan over one cluster, services.plan_cluster (ms; medians of warm calls, first call of a fresh process)")
    head = (f"{'database':<11}{'hosts':>6}  {'request':<9}{'warm':>7}{'build':>7}{'engine':>7}  "
            f"{'cold':>7}{'build':>7}{'engine':>7}  {'old':>8}{'old/new':>8}")  # fmt: skip
    print(head)
    print("-" * len(head))
    for key, r in results.items():
        db, hosts = key.split("/")
        for label, w in r["warm"]["shapes"].items():
            c = r["cold"][label]
            old = fmt(w.get("old_ms")) if "old_ms" in w else "fails"
            ratio = f"{w['old_ms'] / w['e2e_ms']:.1f}x" if "old_ms" in w else "-"
            print(f"{db:<11}{hosts:>6}  {label:<9}{fmt(w['e2e_ms']):>7}{fmt(w['build_ms']):>7}"
                  f"{fmt(w['engine_ms']):>7}  {fmt(c['e2e_ms']):>7}{fmt(c['build_ms']):>7}{fmt(c['engine_ms']):>7}  "
                  f"{old:>8}{ratio:>8}")  # fmt: skip
        shapes = [w for w in r["warm"]["shapes"].values() if "same_plan_as_old" in w]
        if shapes:
            same = sum(w["same_plan_as_old"] for w in shapes)
            cands = sum(w["same_candidates_as_old"] for w in shapes)
            hosts_ = sum(w["same_rejected_hosts_as_old"] for w in shapes)
            print(f"{'':<17}same plans as the old path: {same} of {len(shapes)} request shapes (same candidates: "
                  f"{cands}, same rejected hosts: {hosts_}; a reason can differ where the old read, which predates "
                  "offered vGPU types, names another)")  # fmt: skip
        errors = {w.get("old_error") for w in r["warm"]["shapes"].values()} - {None}
        if errors:
            print(f"{'':<17}old path on {db}: {errors.pop()}")
        if "rss" in r["warm"]:
            s = r["warm"]["rss"]
            growth = (s["after_total_mb"] / s["after_first_mb"] - 1) * 100
            print(f"{'':<17}RSS of the worker: {s['after_first_mb']:.0f} MB after {s['first']:,} plans, "
                  f"{s['after_total_mb']:.0f} MB after {s['total']:,} ({growth:+.1f}%)")  # fmt: skip
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "plan_e2e.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
