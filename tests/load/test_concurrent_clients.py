"""10 clients for 10 s over the pages and the API of a small lab, through gunicorn (3 workers, production mode).

Each client signs in through the login page for the pages and gets its own token from ``POST /api/token/`` for
the API, then loops over a mix of page views, API reads and plans. Every answer must be a 200 and right: the
page of the host or cluster asked for, list counts that match the database, and the same best candidate as a
plan made before the run (nothing changes during it). No timing is asserted; bench/load.py measures speed.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable

import pytest
from django.db import connection

from inventory.models import Cluster, Gpu, Host, VirtualMachine
from tests.api.support import load_demo
from tests.conftest import require
from tests.factories import UserFactory
from tests.load.server import Client, Response

CLIENTS = 10
SECONDS = 10.0
PASSWORD = "Test-Passw0rd-123"  # tests.factories.UserFactory's
Check = Callable[[Response], bool]


def _best(response: Response) -> tuple | None:
    """The best candidate (host id, GPUs), or None when nothing fits (4 GPUs: every rejected host says why)."""
    plan = response.json()
    if not plan["candidates"]:
        assert plan["rejected"] and all(r["reasons"] for r in plan["rejected"])
        return None
    best = plan["candidates"][0]
    return best["host_id"], tuple(g["pci_id"] for g in best["gpus"])


def request_mix(reference: Client) -> list[tuple[str, str, dict | None, Check]]:
    """(method, path, JSON body, check of a 200 answer): every kind of page and API read, and plans."""
    hosts = list(Host.objects.order_by("pk").values_list("pk", "name"))
    clusters = list(Cluster.objects.order_by("pk").values_list("pk", "name"))
    counts = {
        "hosts": Host.objects.count(),
        "gpus": Gpu.objects.count(),
        "clusters": Cluster.objects.count(),
        "vms": VirtualMachine.objects.count(),
    }
    mix: list[tuple[str, str, dict | None, Check]] = [
        ("GET", "/", None, lambda r: all(name.encode() in r.body for _, name in clusters)),
        ("GET", "/vcenters/", None, lambda r: b"demo-lab" in r.body),
        ("GET", "/reservations/", None, lambda r: b"<html" in r.body),
        ("GET", "/syncs/", None, lambda r: b"demo-lab" in r.body),
        ("GET", "/placement/", None, lambda r: b"<form" in r.body),
    ]
    for pk, name in clusters:
        mix.append(("GET", f"/clusters/{pk}/", None, lambda r, name=name: f"<h1>{name}</h1>".encode() in r.body))
    for pk, name in hosts:
        gpus = Gpu.objects.filter(host_id=pk).count()
        mix += [
            ("GET", f"/inventory/hosts/{pk}/", None, lambda r, name=name: f"<h1>{name}</h1>".encode() in r.body),
            ("GET", f"/inventory/hosts/{pk}/topology.svg", None, lambda r: b"<svg" in r.body[:300]),
            ("GET", f"/api/gpus/?host={pk}", None, lambda r, n=gpus: r.json()["count"] == n),
            ("GET", f"/api/hosts/{pk}/", None, lambda r, name=name: r.json()["name"] == name),
        ]
    for resource, count in counts.items():
        mix.append(("GET", f"/api/{resource}/", None, lambda r, n=count: r.json()["count"] == n))
    for size in (1, 2, 4):
        body = {"gpus_per_vm": size}
        expected = _best(reference.post_json("/api/plans/", body))
        mix.append(("POST", "/api/plans/", body, lambda r, e=expected: _best(r) == e))
    return mix


@pytest.mark.reliability("load", "10 concurrent clients over pages and API through gunicorn")
def test_concurrent_clients_get_right_answers_and_no_5xx(gunicorn, reliability_cases):
    require(connection.vendor == "postgresql", "the load tests run against PostgreSQL (set DATABASE_URL)")
    load_demo()
    users = [UserFactory(role="planner") for _ in range(CLIENTS)]
    reference = Client(gunicorn.url)
    reference.obtain_token(users[0].username, PASSWORD)
    mix = request_mix(reference)
    clients = []
    for i, user in enumerate(users):
        client = Client(gunicorn.url)
        client.login(user.username, PASSWORD)
        # CLIENTS token requests in all, the reference's included: POST /api/token/ allows 10 a minute per address
        # (API_THROTTLE_TOKEN), and one gunicorn worker may accept every one of them.
        client.token = reference.token if i == 0 else client.obtain_token(user.username, PASSWORD)
        clients.append(client)

    lock = threading.Lock()
    outcomes: Counter = Counter()
    wrong: list[str] = []
    barrier = threading.Barrier(CLIENTS)

    def run(i: int) -> None:
        rng = random.Random(i)
        barrier.wait()
        deadline = time.monotonic() + SECONDS
        while time.monotonic() < deadline:
            method, path, body, check = rng.choice(mix)
            try:
                response = clients[i].request(method, path, json_body=body)
                right = response.status == 200 and check(response)
                status = response.status
            except Exception as exc:  # a reset connection or a timeout counts against the run
                right, status, response = False, repr(exc), None
            with lock:
                outcomes[status] += 1
                if not right:
                    wrong.append(f"{method} {path}: {status} {response.text[:200] if response else ''}")

    threads = [threading.Thread(target=run, args=(i,)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    total = sum(outcomes.values())
    reliability_cases.add(total)

    assert not [s for s in outcomes if not isinstance(s, int) or s >= 500], outcomes
    assert not wrong, f"{len(wrong)} wrong answers of {total}: {wrong[:5]}"
    assert total >= CLIENTS, outcomes  # every client got answers (how many is bench/load.py's business)
