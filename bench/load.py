#!/usr/bin/env python
"""Concurrent users on the 1,000-host lab through gunicorn, as deployed (a benchmark, not a test).

Loads the scale lab (``tools/vcsim/make_scale_lab.py``: 10 clusters x 100 HGX hosts x 8 GPUs, 4,000 VMs; same
generator, cache and loader as ``bench/web.py``) into a dedicated database, adds ``--reservations`` vGPU
reservations through the reserve service, starts ``gunicorn config.wsgi`` with ``--workers`` sync workers in
production mode (settings from the environment, static files collected) on 127.0.0.1, and runs ``--clients``
concurrent clients for ``--seconds``.
Each client signs in through the login page (pages) and uses one token from ``POST /api/token/`` (API), then loops
over a realistic mix without think time:

- pages (30%): the overview, a cluster, a host;
- API reads (50%): host lists (paged), a host, a host's GPUs, clusters, active reservations;
- plans (20%): ``POST /api/plans/`` over the whole estate, as bench/plan_e2e.py: 1, 2, 4, 8 GPUs passthrough
  (refused on every HGX host, with the reasons), vGPU 80C and 10C.

It prints requests/s, p50/p99/max per class and per request kind, the 5xx and error counts, and compares with
the targets: p99 < 1 s for reads (pages and API reads) and < 2 s for plans.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/gpu_advisor .venv/bin/python bench/load.py
    .venv/bin/python bench/load.py --clients 5 --seconds 10 --hosts 100 --vms 400   # quick

The database is ``--db-name`` on the PostgreSQL server of DATABASE_URL (or bench/results/<db-name>.sqlite3
without it), reused while it holds the same lab (``--fresh`` re-imports). Results: bench/results/load.json;
gunicorn's log: var/load/bench-<port>.log.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from sync_scale import generate_lab, setup_django  # noqa: E402 - same lab cache and database setup
from web import load_lab  # noqa: E402 - same import and reservations as the page benchmark

from tests.load.server import PORTS, Client, collectstatic, port_range, production_env, start_gunicorn  # noqa: E402

TARGETS_S = {"page": 1.0, "api read": 1.0, "plan": 2.0}
USER, PASSWORD = "load-bench", "Load-Bench-Passw0rd-9"
PLANS = {
    "plan 1 GPU": {"gpus_per_vm": 1, "consumption": "passthrough"},
    "plan 2 GPU": {"gpus_per_vm": 2, "consumption": "passthrough"},
    "plan 4 GPU": {"gpus_per_vm": 4, "consumption": "passthrough"},
    "plan 8 GPU": {"gpus_per_vm": 8, "consumption": "passthrough"},
    "plan vGPU 80C": {"gpus_per_vm": 1, "consumption": "vgpu", "profile": "nvidia_h100xm-80c"},
    "plan vGPU 10C": {"gpus_per_vm": 1, "consumption": "vgpu", "profile": "nvidia_h100xm-10c"},
}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def real_reservations(count: int) -> int:
    """Active reservations made by the reserve service (full candidates, as the API shows them), topped up."""
    from django.utils import timezone

    from placement import services
    from placement.models import Reservation

    have = Reservation.objects.filter(status="active", vm_name__startswith="load-bench-", expires_at__gt=timezone.now())
    profiles = ["nvidia_h100xm-80c", "nvidia_h100xm-40c", "nvidia_h100xm-10c", "nvidia_h100xm-20c"]  # HGX: vGPU only
    for n in range(have.count(), count):
        request = services.build_request(gpus_per_vm=1, consumption="vgpu", profile=profiles[n % len(profiles)])
        services.reserve(request=request, vm_name=f"load-bench-{n}-{time.time_ns()}", ttl_minutes=30 * 24 * 60)
    return have.count()


def analyze() -> None:
    """Planner statistics for the freshly loaded tables, as autovacuum keeps them on a deployed PostgreSQL (a
    test server may run with autovacuum off, and a bulk import leaves the planner guessing row counts)."""
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")


def bench_user() -> None:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    user, _ = get_user_model().objects.get_or_create(username=USER)
    user.set_password(PASSWORD)
    user.save()
    user.groups.add(Group.objects.get(name="planner"))


def request_mix() -> list[tuple[str, str, str, str, dict | None, float]]:
    """(class, kind, method, path, JSON body, weight): the weights of a class add up to its share."""
    from inventory.models import Cluster, Host

    clusters = list(Cluster.objects.values_list("pk", flat=True))
    hosts = list(Host.objects.filter(gpus__isnull=False).distinct().values_list("pk", flat=True))
    rng = random.Random(1)
    mix: list[tuple[str, str, str, str, dict | None, float]] = [("page", "overview", "GET", "/", None, 0.10)]
    for pk in rng.sample(clusters, min(10, len(clusters))):
        mix.append(("page", "cluster", "GET", f"/clusters/{pk}/", None, 0.10 / min(10, len(clusters))))
    sample = rng.sample(hosts, min(50, len(hosts)))
    total_hosts = Host.objects.count()
    for pk in sample:
        w = 1 / len(sample)
        mix += [
            ("page", "host", "GET", f"/inventory/hosts/{pk}/", None, 0.10 * w),
            ("api read", "api host", "GET", f"/api/hosts/{pk}/", None, 0.10 * w),
            ("api read", "api host gpus", "GET", f"/api/gpus/?host={pk}", None, 0.10 * w),
        ]
    for offset in range(0, total_hosts, max(1, total_hosts // 10)):
        mix.append(("api read", "api hosts page", "GET", f"/api/hosts/?limit=50&offset={offset}", None, 0.01))
    mix += [
        ("api read", "api clusters", "GET", "/api/clusters/", None, 0.10),
        ("api read", "api reservations", "GET", "/api/reservations/?status=active", None, 0.10),
    ]
    for kind, body in PLANS.items():
        mix.append(("plan", kind, "POST", "/api/plans/", body, 0.20 / len(PLANS)))
    return mix


def run_clients(url: str, clients: int, seconds: float, mix: list) -> dict[str, Any]:
    agents = []
    token = ""
    for _ in range(clients):
        agent = Client(url, timeout=60)
        agent.login(USER, PASSWORD)
        # One token for all API clients, as one automation account would: POST /api/token/ is throttled per
        # address (API_THROTTLE_TOKEN, 10/minute), and every client here comes from 127.0.0.1.
        agent.token = token or agent.obtain_token(USER, PASSWORD)
        token = agent.token
        agents.append(agent)
    weights = [m[-1] for m in mix]
    samples: dict[tuple[str, str], list[float]] = defaultdict(list)
    statuses: dict[str, int] = defaultdict(int)
    errors: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(clients + 1)

    def run(i: int) -> None:
        rng = random.Random(100 + i)
        barrier.wait()
        while time.monotonic() < deadline:
            cls, kind, method, path, body, _ = rng.choices(mix, weights)[0]
            try:
                response = agents[i].request(method, path, json_body=body)
                status, seconds_taken = response.status, response.seconds
            except Exception as exc:  # timeouts and resets are counted, not raised
                status, seconds_taken = None, None
                with lock:
                    errors.append(f"{method} {path}: {exc!r}")
            with lock:
                statuses[str(status)] += 1
                if status is not None and status < 400:
                    samples[(cls, kind)].append(seconds_taken)
                elif status is not None:
                    errors.append(f"{method} {path}: {status}")

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + seconds
    started = time.perf_counter()
    barrier.wait()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    return {"samples": samples, "statuses": dict(statuses), "errors": errors, "elapsed": elapsed}


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def summarize(result: dict[str, Any]) -> dict[str, Any]:
    def row(values: list[float]) -> dict[str, float]:
        return {
            "n": len(values),
            "p50_s": statistics.median(values),
            "p99_s": percentile(values, 99),
            "max_s": max(values),
        }

    by_class: dict[str, list[float]] = defaultdict(list)
    kinds = {}
    for (cls, kind), values in sorted(result["samples"].items()):
        by_class[cls] += values
        kinds[kind] = {"class": cls, **row(values)}
    classes = {}
    for cls, values in by_class.items():
        classes[cls] = {**row(values), "target_p99_s": TARGETS_S[cls]}
        classes[cls]["ok"] = classes[cls]["p99_s"] < TARGETS_S[cls]
    total = sum(result["statuses"].values())
    server_errors = sum(n for s, n in result["statuses"].items() if s != "None" and int(s) >= 500)
    return {
        "requests": total,
        "requests_per_s": total / result["elapsed"],
        "seconds": result["elapsed"],
        "statuses": result["statuses"],
        "5xx": server_errors,
        "errors": len(result["errors"]),
        "error_examples": result["errors"][:10],
        "classes": classes,
        "kinds": kinds,
    }


def table(summary: dict[str, Any], meta: dict[str, Any]) -> str:
    lines = [
        f"load: {meta['clients']} clients for {meta['seconds']:.0f} s against gunicorn ({meta['workers']} workers, "
        f"production mode) on {meta['database']}",
        f"lab: {meta['hosts']} hosts, {meta['gpus']} GPUs, {meta['vms']} VMs, {meta['reservations']} active "
        f"reservations; machine: {meta['machine']} ({meta['cpus']} CPUs, load average before "
        f"{meta['load_before']}); commit {meta['commit']}",
        "",
        f"requests: {summary['requests']} in {summary['seconds']:.1f} s = {summary['requests_per_s']:.1f} req/s; "
        f"5xx: {summary['5xx']}; other errors: {summary['errors'] - summary['5xx']}; statuses: {summary['statuses']}",
        "",
        f"| {'class':<10} | {'n':>5} | {'p50 s':>6} | {'p99 s':>6} | {'max s':>6} | target p99       |",
        f"|{'-' * 12}|{'-' * 7}|{'-' * 8}|{'-' * 8}|{'-' * 8}|------------------|",
    ]
    for cls, r in summary["classes"].items():
        verdict = f"< {r['target_p99_s']:.0f} s {'ok' if r['ok'] else 'MISSED'}"
        lines.append(
            f"| {cls:<10} | {r['n']:>5} | {r['p50_s']:>6.3f} | {r['p99_s']:>6.3f} | {r['max_s']:>6.3f} | "
            f"{verdict:<16} |"
        )
    lines += ["", f"| {'kind':<18} | {'class':<8} | {'n':>5} | {'p50 s':>6} | {'p99 s':>6} | {'max s':>6} |"]
    lines.append(f"|{'-' * 20}|{'-' * 10}|{'-' * 7}|{'-' * 8}|{'-' * 8}|{'-' * 8}|")
    for kind, r in summary["kinds"].items():
        lines.append(
            f"| {kind:<18} | {r['class']:<8} | {r['n']:>5} | {r['p50_s']:>6.3f} | {r['p99_s']:>6.3f} | "
            f"{r['max_s']:>6.3f} |"
        )
    if summary["error_examples"]:
        lines += ["", "errors (first 10):", *summary["error_examples"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--workers", type=int, default=3, help="gunicorn sync workers")
    parser.add_argument("--clusters", type=int, default=10)
    parser.add_argument("--hosts", type=int, default=1000, help="hosts in all (split over --clusters)")
    parser.add_argument("--gpus", type=int, default=8)
    parser.add_argument("--vms", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--reservations", type=int, default=100, help="active reservations on free GPUs")
    parser.add_argument("--db-name", default="gpu_advisor_load_bench")
    parser.add_argument("--fresh", action="store_true", help="re-import the lab even if the database holds it")
    parser.add_argument("--json", type=Path, default=RESULTS / "load.json")
    parser.add_argument(
        "--ports", type=port_range, default=PORTS, help="gunicorn ports FIRST-LAST (default: LOAD_PORTS, 8800-8899)"
    )
    args = parser.parse_args(argv)

    RESULTS.mkdir(parents=True, exist_ok=True)
    os.environ["DJANGO_DEBUG"] = "false"
    lab_path = generate_lab(args)
    database = setup_django(args.db_name)
    load_lab(lab_path, fresh=args.fresh, reservations=0)
    log(f"{real_reservations(args.reservations)} active reservations made by the reserve service")
    bench_user()
    analyze()
    mix = request_mix()

    from inventory.models import Gpu, Host, VirtualMachine
    from placement.models import Reservation

    env = production_env(os.environ["DATABASE_URL"])
    log("collectstatic (production serves static files through whitenoise)")
    collectstatic(env)
    server = start_gunicorn(env, workers=args.workers, timeout=30, name="bench", ports=args.ports)
    load_before = " ".join(f"{x:.1f}" for x in os.getloadavg())
    try:
        log(f"gunicorn on {server.url}; {args.clients} clients for {args.seconds:.0f} s")
        result = run_clients(server.url, args.clients, args.seconds, mix)
    finally:
        server.stop()
    summary = summarize(result)
    meta = {
        "clients": args.clients,
        "seconds": args.seconds,
        "workers": args.workers,
        "database": database,
        "hosts": Host.objects.count(),
        "gpus": Gpu.objects.count(),
        "vms": VirtualMachine.objects.count(),
        "reservations": Reservation.objects.filter(status="active").count(),
        "machine": f"{platform.machine()} python {platform.python_version()}",
        "cpus": os.cpu_count(),
        "load_before": load_before,
        "commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=False
        ).stdout.strip(),
        "gunicorn_log": str(server.log_path.relative_to(REPO)),
    }
    print(table(summary, meta))
    args.json.write_text(json.dumps({"meta": meta, "summary": summary}, indent=2))
    print(f"\nresults in {args.json}")
    return 0  # a missed target shows as MISSED; timing is not a pass/fail test


if __name__ == "__main__":
    sys.exit(main())
