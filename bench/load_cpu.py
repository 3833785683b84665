#!/usr/bin/env python
"""Server CPU and SQL queries per request kind of bench/load.py's mix, in one process (a benchmark, not a test).

The load benchmark's latency is mostly queueing: 20 clients send back to back, so what decides it is the CPU
each request costs the server. This runs every kind of that mix through Django's WSGI handler in this process,
with production settings (``DJANGO_ENV=production``, DEBUG off, sessions, axes, whitenoise, throttles) against
the benchmark's database, and prints per kind: CPU milliseconds of this process (``time.process_time``, median
of ``--repeat`` after one warm-up), wall milliseconds (the difference is mostly PostgreSQL's time), SQL queries
and the response size. ``--profile KIND`` prints cProfile's top functions.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/gpu_advisor .venv/bin/python bench/load_cpu.py --db-name gpu_loadh

The database must already hold the lab (run bench/load.py once with the same ``--db-name``). CPU time, unlike
wall time, is about the same on a busy machine; it still varies by a few percent between runs.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import secrets
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))


def production_settings() -> None:
    from cryptography.fernet import Fernet

    os.environ.update(
        DJANGO_ENV="production",
        DJANGO_DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        FIELD_ENCRYPTION_KEY=Fernet.generate_key().decode(),
        ALLOWED_HOSTS="127.0.0.1",
        SECURE_SSL_REDIRECT="false",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db-name", default="gpu_advisor_load_bench")
    parser.add_argument("--repeat", type=int, default=5, help="measured runs per request (after one warm-up)")
    parser.add_argument("--per-kind", type=int, default=3, help="distinct requests (paths/bodies) per kind")
    parser.add_argument("--profile", action="append", default=[], help="kind to profile (repeatable)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    production_settings()
    from sync_scale import setup_django

    database = setup_django(args.db_name)
    from django.conf import settings
    from django.db import connection, reset_queries
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from knox.models import AuthToken
    from load import USER, bench_user, request_mix

    import config.wsgi  # noqa: F401 - what a gunicorn worker runs at start (garbage collector settings)

    settings.ALLOWED_HOSTS = ["127.0.0.1", "testserver"]
    bench_user()
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.get(username=USER)
    _, token = AuthToken.objects.create(user)
    page_client = Client(HTTP_HOST="127.0.0.1")
    page_client.force_login(user)
    api_client = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Token {token}")

    by_kind: dict[str, list[tuple]] = defaultdict(list)
    for cls, kind, method, path, body, _ in request_mix():
        if len(by_kind[kind]) < args.per_kind:
            by_kind[kind].append((cls, method, path, body))

    def send(cls: str, method: str, path: str, body: Any) -> Any:
        client = page_client if cls == "page" else api_client
        if method == "GET":
            return client.get(path)
        return client.post(path, data=json.dumps(body), content_type="application/json")

    rows = {}
    for kind, requests in by_kind.items():
        cpu, wall, queries, sizes = [], [], [], []
        for cls, method, path, body in requests:
            with CaptureQueriesContext(connection) as captured:  # also the warm-up (process caches, templates)
                response = send(cls, method, path, body)
            if response.status_code >= 400:
                raise SystemExit(f"{method} {path}: {response.status_code} {response.content[:300]!r}")
            queries.append(len(captured))
            sizes.append(len(response.content))
            for _ in range(args.repeat):
                started, started_wall = time.process_time(), time.perf_counter()
                send(cls, method, path, body)
                cpu.append(time.process_time() - started)
                wall.append(time.perf_counter() - started_wall)
        rows[kind] = {
            "class": requests[0][0],
            "cpu_ms": statistics.median(cpu) * 1000,
            "wall_ms": statistics.median(wall) * 1000,
            "queries": max(queries),
            "bytes": int(statistics.median(sizes)),
        }
        reset_queries()
        if kind in args.profile:
            profiler = cProfile.Profile()
            profiler.enable()
            for cls, method, path, body in requests:
                send(cls, method, path, body)
            profiler.disable()
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(45)
            print(f"---- cProfile {kind} ({len(requests)} requests)\n{out.getvalue()}", file=sys.stderr)

    weights: dict[str, float] = defaultdict(float)
    for _, kind, *_rest, weight in request_mix():
        weights[kind] += weight
    mean_cpu = sum(rows[k]["cpu_ms"] * w for k, w in weights.items()) / sum(weights.values())
    print(f"server CPU per request kind, in process, production settings, {database}")
    print(
        f"| {'kind':<18} | {'class':<8} | {'share':>5} | {'CPU ms':>7} | {'wall ms':>7} | {'queries':>7} "
        f"| {'bytes':>8} |"
    )
    print(f"|{'-' * 20}|{'-' * 10}|{'-' * 7}|{'-' * 9}|{'-' * 9}|{'-' * 9}|{'-' * 10}|")
    for kind, r in rows.items():
        print(
            f"| {kind:<18} | {r['class']:<8} | {weights[kind] * 100:>4.1f}% | {r['cpu_ms']:>7.1f} | "
            f"{r['wall_ms']:>7.1f} | {r['queries']:>7} | {r['bytes']:>8} |"
        )
    print(f"mix-weighted mean: {mean_cpu:.1f} ms CPU per request (2 cores: at most ~{2000 / mean_cpu:.0f} req/s)")
    if args.json:
        args.json.write_text(json.dumps({"kinds": rows, "mix_mean_cpu_ms": mean_cpu}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
