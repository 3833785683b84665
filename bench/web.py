#!/usr/bin/env python
"""Server-side render time of the web pages with the 1,000-host scale lab loaded (a benchmark, not a test).

Loads the scale lab (``tools/vcsim/make_scale_lab.py``: 10 clusters x 100 HGX hosts x 8 GPUs, 4,000 VMs, plus
``--reservations`` active reservations) into a dedicated database through ``services.import_inventory``, then
renders each page with Django's test Client, warm (``--warmup`` untimed requests first), ``--repeat`` times,
and prints the median, the spread and the number of SQL queries of one request. Targets: overview and
cluster < 300 ms, host < 150 ms.

    .venv/bin/python bench/web.py                     # full scale (the first run imports the lab: a few minutes)
    .venv/bin/python bench/web.py --clusters 2 --hosts 50 --vms 400   # quick
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/x .venv/bin/python bench/web.py   # on PostgreSQL

The database is bench/results/<--db-name>.sqlite3, or a database of that name on the PostgreSQL server of
DATABASE_URL; it is reused while it holds the same lab (``--fresh`` re-imports). Results: a table on stdout
and bench/results/web.json.

Adding a timing (e.g. a plan request): write a function returning ``[(name, callable)]`` and add it to
``CASE_BUILDERS``; each callable performs one request and returns its response (``time_cases`` times it the
same way as the pages), and ``TARGETS_MS`` may give its target.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from sync_scale import generate_lab, setup_django  # noqa: E402 - same lab cache and database setup

TARGETS_MS = {"overview": 300.0, "cluster": 300.0, "host": 150.0, "plan": 500.0}
VCENTER = "scale"
Case = tuple[str, Callable[[], Any]]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------ data


def load_lab(lab_path: Path, *, fresh: bool, reservations: int) -> dict[str, Any]:
    """Import the lab unless the database already holds it; add active reservations on free GPUs."""
    from django.db import transaction

    from inventory import services
    from inventory.models import Gpu, GpuConsumer, Host, VCenter

    marker = f"{lab_path.name}:{reservations}"
    vcenter = VCenter.objects.filter(name=VCENTER).first()
    if vcenter is not None and not fresh and vcenter.last_error == f"bench lab {marker}":
        log(f"reusing the loaded lab ({Host.objects.filter(vcenter=vcenter).count()} hosts)")
        return {"import_seconds": None}
    if vcenter is not None:
        log("removing the previously loaded lab")
        services.remove_vcenter(vcenter=vcenter)
    log(f"importing {lab_path.name} ...")
    started = time.perf_counter()
    vcenter, counts = services.import_inventory(document=json.loads(lab_path.read_text()), vcenter_name=VCENTER)
    seconds = time.perf_counter() - started
    log(f"imported in {seconds:.0f} s: {counts.get('seen_hosts', '?')} hosts, {counts.get('seen_gpus', '?')} GPUs")
    if reservations:
        from django.utils import timezone

        from placement.models import Reservation, ReservationItem

        busy = GpuConsumer.objects.values("gpu_id")
        free = list(Gpu.objects.filter(host__vcenter=vcenter, stale=False).exclude(pk__in=busy).select_related("host"))
        step = max(len(free) // reservations, 1)
        with transaction.atomic():
            for n, gpu in enumerate(free[::step][:reservations]):
                r = Reservation.objects.create(
                    vm_name=f"bench-planned-{n}",
                    host=gpu.host,
                    request={"gpus_per_vm": 1, "consumption": "passthrough"},
                    candidate={},
                    expires_at=timezone.now() + timezone.timedelta(days=30),
                )
                ReservationItem.objects.create(reservation=r, gpu=gpu, kind="passthrough")
        log(f"added {min(reservations, len(free))} active reservations")
    VCenter.objects.filter(pk=vcenter.pk).update(last_error=f"bench lab {marker}")
    return {"import_seconds": seconds}


def bench_client() -> Any:
    from django.contrib.auth import get_user_model
    from django.test import Client

    user = get_user_model().objects.filter(username="bench").first()
    if user is None:
        user = get_user_model().objects.create_superuser("bench", password="bench-Passw0rd-1")
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    return client


# ------------------------------------------------------------------------------------------ cases


def page_cases(client: Any) -> list[Case]:
    """The inventory pages: overview, the biggest cluster, an 8-GPU host with VMs on it."""
    from django.db.models import Count

    from inventory.models import Cluster, GpuConsumer, Host

    cluster = Cluster.objects.annotate(n=Count("hosts")).order_by("-n", "pk").first()
    busy_host = GpuConsumer.objects.values_list("gpu__host_id", flat=True).order_by("gpu__host_id").first()
    host = Host.objects.get(pk=busy_host) if busy_host else Host.objects.order_by("pk").first()

    def get(url: str) -> Callable[[], Any]:
        def request() -> Any:
            response = client.get(url)
            if response.status_code != 200:
                raise SystemExit(f"GET {url}: HTTP {response.status_code}")
            return response

        return request

    return [
        ("overview", get("/")),
        ("cluster", get(f"/clusters/{cluster.pk}/")),
        ("host", get(f"/inventory/hosts/{host.pk}/")),
    ]


def plan_cases(client: Any) -> list[Case]:
    """The placement page's htmx plan request for the biggest cluster (2 full-profile vGPUs per VM)."""
    from django.db.models import Count

    from inventory.models import Cluster

    cluster = Cluster.objects.annotate(n=Count("hosts")).order_by("-n", "pk").first()
    # the form keys its cluster choices by id (names repeat across vCenters)
    data = {"gpus_per_vm": "2", "profile": "nvidia_h100xm-80c", "clusters": [str(cluster.pk)]}

    def request() -> Any:
        response = client.post("/placement/", data, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="results")
        if response.status_code != 200:
            raise SystemExit(f"POST /placement/: HTTP {response.status_code}: {response.content.decode()[:300]}")
        return response

    return [("plan", request)]


CASE_BUILDERS: list[Callable[[Any], list[Case]]] = [page_cases, plan_cases]


def time_cases(cases: list[Case], *, repeat: int, warmup: int) -> list[dict[str, Any]]:
    """Median/min/max milliseconds and the SQL queries of one call, for each (name, callable)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    rows = []
    for name, call in cases:
        for _ in range(warmup):
            call()
        with CaptureQueriesContext(connection) as captured:
            response = call()
        queries = len(captured)  # now: the next request resets the log this slices
        samples = []
        for _ in range(repeat):
            started = time.perf_counter()
            call()
            samples.append((time.perf_counter() - started) * 1000)
        target = TARGETS_MS.get(name)
        median = statistics.median(samples)
        rows.append(
            {
                "name": name,
                "median_ms": median,
                "min_ms": min(samples),
                "max_ms": max(samples),
                "queries": queries,
                "bytes": len(getattr(response, "content", b"") or b""),
                "target_ms": target,
                "ok": None if target is None else median < target,
            }
        )
        log(f"{name}: median {median:.1f} ms, {queries} queries")
    return rows


def table(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [
        f"web pages, server-side render ({meta['hosts']} hosts, {meta['gpus']} GPUs, {meta['vms']} VMs, "
        f"{meta['reservations']} reservations; {meta['database']}; warm, {meta['repeat']} runs)",
        "",
        f"| {'page':<10} | {'median ms':>9} | {'min ms':>7} | {'max ms':>7} | {'queries':>7} | {'KiB':>6} "
        "| target      |",
        f"|{'-' * 12}|{'-' * 11}|{'-' * 9}|{'-' * 9}|{'-' * 9}|{'-' * 8}|-------------|",
    ]
    for r in rows:
        target = "-" if r["target_ms"] is None else f"< {r['target_ms']:.0f} ms {'ok' if r['ok'] else 'MISSED'}"
        lines.append(
            f"| {r['name']:<10} | {r['median_ms']:>9.1f} | {r['min_ms']:>7.1f} | {r['max_ms']:>7.1f} | "
            f"{r['queries']:>7} | {r['bytes'] / 1024:>6.0f} | {target:<11} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clusters", type=int, default=10)
    parser.add_argument("--hosts", type=int, default=1000, help="hosts in all (split over --clusters)")
    parser.add_argument("--gpus", type=int, default=8)
    parser.add_argument("--vms", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--reservations", type=int, default=100, help="active reservations on free GPUs")
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--db-name", default="gpu_advisor_web_bench")
    parser.add_argument("--fresh", action="store_true", help="re-import the lab even if the database holds it")
    parser.add_argument("--json", type=Path, default=RESULTS / "web.json")
    args = parser.parse_args(argv)

    RESULTS.mkdir(parents=True, exist_ok=True)
    os.environ["DJANGO_DEBUG"] = "false"  # as served: no per-query logging outside the measured request
    lab_path = generate_lab(args)
    database = setup_django(args.db_name)
    loaded = load_lab(lab_path, fresh=args.fresh, reservations=args.reservations)

    from inventory.models import Gpu, Host, VirtualMachine

    client = bench_client()
    cases = [case for build in CASE_BUILDERS for case in build(client)]
    rows = time_cases(cases, repeat=args.repeat, warmup=args.warmup)
    from placement.models import Reservation

    meta = {
        "hosts": Host.objects.count(),
        "gpus": Gpu.objects.count(),
        "vms": VirtualMachine.objects.count(),
        "reservations": Reservation.objects.filter(status="active").count(),
        "database": database,
        "repeat": args.repeat,
        "machine": f"{platform.machine()} {platform.processor() or ''} python {platform.python_version()}".strip(),
        "commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=False
        ).stdout.strip(),
        **loaded,
    }
    print(table(rows, meta))
    args.json.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    print(f"\nresults in {args.json}")
    return 0  # a missed target shows as MISSED in the table; timing is not a pass/fail test


if __name__ == "__main__":
    sys.exit(main())
