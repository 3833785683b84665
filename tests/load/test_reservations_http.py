"""50 parallel reservations through HTTP against gunicorn (3 workers, PostgreSQL in CI) for the same scarce GPUs.

The demo lab has 5 free passthrough GPUs (3 L40S, 2 H100 NVL); 50 requests for 1 or 2 GPUs arrive at once
from 50 clients, ten per planner with the planner's token from ``POST /api/token/``. No GPU may be reserved
twice, requests succeed while capacity lasts, the rest get 409 saying why, and nothing answers 5xx.
"""

from __future__ import annotations

import json
import threading
from collections import Counter

import pytest
from django.db import connection

from placement import services
from placement.models import Reservation, ReservationItem
from tests.api.support import load_demo
from tests.conftest import require
from tests.factories import UserFactory
from tests.load.server import Client
from tests.vcsim import LABS

REQUESTS = 50
SIZES = [1, 2, 1, 1, 2]  # cycled: 30 one-GPU and 20 two-GPU requests
PASSWORD = "Test-Passw0rd-123"  # tests.factories.UserFactory's


def free_passthrough_gpus() -> int:
    """Passthrough (``direct``) GPUs of the demo lab that no VM holds: what the 50 requests compete for."""
    hosts = json.loads((LABS / "demo.json").read_text())["hosts"]
    return sum(1 for h in hosts for g in h["gpus"] if g.get("graphics_type") == "direct" and not g.get("consumers"))


@pytest.mark.reliability("load", "50 parallel reservations for scarce GPUs through gunicorn")
def test_fifty_parallel_reservations_never_double_book(gunicorn, reliability_cases):
    require(connection.vendor == "postgresql", "the load tests run against PostgreSQL (set DATABASE_URL)")
    load_demo()
    planners = [UserFactory(role="planner") for _ in range(5)]
    tokens = [Client(gunicorn.url).obtain_token(p.username, PASSWORD) for p in planners]
    clients = []
    for i in range(REQUESTS):  # 10 clients per planner, sharing its token as parallel automation does
        client = Client(gunicorn.url)
        client.token = tokens[i % len(tokens)]
        clients.append(client)

    barrier = threading.Barrier(REQUESTS)
    results: list[dict] = [{} for _ in range(REQUESTS)]

    def reserve(i: int) -> None:
        size = SIZES[i % len(SIZES)]
        barrier.wait()
        try:
            response = clients[i].post_json("/api/reservations/", {"gpus_per_vm": size, "vm_name": f"load-{i:02d}"})
            results[i] = {"size": size, "status": response.status, "body": response.json()}
        except Exception as exc:  # a reset connection or a timeout is a finding, reported below
            results[i] = {"size": size, "status": None, "error": repr(exc)}

    threads = [threading.Thread(target=reserve, args=(i,)) for i in range(REQUESTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    reliability_cases.add(REQUESTS)

    statuses = Counter(r["status"] for r in results)
    assert set(statuses) <= {201, 409}, (statuses, [r for r in results if r["status"] not in (201, 409)][:3])

    # The database: no GPU twice, every success holds exactly what it asked for under its VM name.
    active = ReservationItem.objects.filter(reservation__status=Reservation.Status.ACTIVE)
    gpu_ids = list(active.values_list("gpu_id", flat=True))
    assert len(gpu_ids) == len(set(gpu_ids)), "a GPU was reserved twice"
    ok = [r for r in results if r["status"] == 201]
    assert sum(r["size"] for r in ok) == len(gpu_ids)
    assert sorted(r["body"]["vm_name"] for r in ok) == sorted(
        Reservation.objects.filter(status=Reservation.Status.ACTIVE).values_list("vm_name", flat=True)
    )
    assert all(len(r["body"]["candidate"]["gpus"]) == r["size"] for r in ok)

    # Success while capacity lasts: every free GPU went, then 409s that say why, and really nothing of that size fits.
    free = free_passthrough_gpus()
    assert free == 5 and len(gpu_ids) == free, f"{len(gpu_ids)} of the lab's {free} free passthrough GPUs were reserved"
    refused = [r for r in results if r["status"] == 409]
    assert refused and all("no host can take" in r["body"]["detail"] for r in refused), refused[:3]
    for size in {r["size"] for r in refused}:
        request = services.build_request(gpus_per_vm=size, consumption="passthrough")
        assert services.plan_cluster(request=request).best is None, f"{size}-GPU requests were refused with room left"
