"""Plans through gunicorn (3 workers, ``--preload``, warm caches in every worker) see every reservation at once.

Each worker keeps per-process caches (host templates, host states, interned rows, GPU checks). A reservation
made by one worker, and a reservation whose time ran out, must change the very next plan of every worker: the
plans here are sent in parallel bursts so that all three workers answer some of them, after a first burst has
warmed each worker's caches with the state before the change.
"""

from __future__ import annotations

import threading

from django.db import connection
from django.utils import timezone

from placement.models import Reservation
from tests.api.support import load_demo
from tests.conftest import require
from tests.factories import UserFactory
from tests.load.server import Client

PASSWORD = "Test-Passw0rd-123"  # tests.factories.UserFactory's
BURST = 12  # parallel plans: more than the workers, so each worker answers several
TWO_GPUS = {"gpus_per_vm": 2, "consumption": "passthrough", "limit": 1000}


def burst(url: str, token: str) -> list[dict]:
    """``BURST`` identical plans at once; every answer must be 200."""
    answers: list = [None] * BURST
    barrier = threading.Barrier(BURST)

    def plan(i: int) -> None:
        client = Client(url)
        client.token = token
        barrier.wait()
        answers[i] = client.post_json("/api/plans/", TWO_GPUS)

    threads = [threading.Thread(target=plan, args=(i,)) for i in range(BURST)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(a is not None and a.status == 200 for a in answers), [a and (a.status, a.text[:200]) for a in answers]
    return [a.json() for a in answers]


def candidate_hosts(plan: dict) -> set[int]:
    return {c["host_id"] for c in plan["candidates"]}


def test_a_reservation_and_its_expiry_reach_every_workers_next_plan(gunicorn):
    require(connection.vendor == "postgresql", "the load tests run against PostgreSQL (set DATABASE_URL)")
    load_demo()
    planner = UserFactory(role="planner")
    client = Client(gunicorn.url)
    token = client.obtain_token(planner.username, PASSWORD)

    before = burst(gunicorn.url, token)  # every worker reads and caches the state without the reservation
    assert all(candidate_hosts(p) == candidate_hosts(before[0]) for p in before)

    reserved = client.post_json("/api/reservations/", {**TWO_GPUS, "vm_name": "fresh-1"})
    assert reserved.status == 201, reserved.text
    host = reserved.json()["host_id"]
    assert host in candidate_hosts(before[0])
    reserved_pcis = {g["pci_id"] for g in reserved.json()["candidate"]["gpus"]}
    after = burst(gunicorn.url, token)
    for plan in after:  # no worker hands out a reserved GPU; the host (3 free GPUs at most) cannot take two more
        offered = {g["pci_id"] for c in plan["candidates"] if c["host_id"] == host for g in c["gpus"]}
        assert not offered & reserved_pcis
        assert host not in candidate_hosts(plan) and any(r["host_id"] == host for r in plan["rejected"])

    # Time runs out (an expiry in the past, as the clock would make it): every worker plans on the GPUs again.
    Reservation.objects.filter(vm_name="fresh-1").update(expires_at=timezone.now() - timezone.timedelta(seconds=1))
    again = burst(gunicorn.url, token)
    assert all(candidate_hosts(p) == candidate_hosts(before[0]) for p in again)
    assert all(
        [g["pci_id"] for c in p["candidates"] if c["host_id"] == host for g in c["gpus"]]
        == [g["pci_id"] for c in before[0]["candidates"] if c["host_id"] == host for g in c["gpus"]]
        for p in again
    )
