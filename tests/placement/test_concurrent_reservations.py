"""50 concurrent 1- and 2-GPU reservations from several processes (PostgreSQL; CI runs it, locally it skips
without PostgreSQL): no GPU is reserved twice, every request succeeds while capacity lasts, the rest get a 409
that says why."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from django.db import connection

from inventory import services as inventory_services
from placement import services
from placement.models import Reservation, ReservationItem
from tests.conftest import REPO, _database_url_for_subprocess, require
from tests.vcsim import LABS

WORKER = Path(__file__).with_name("reserve_worker.py")
PROCESSES = 5
THREADS = 2
SIZES = [1, 2, 1, 1, 2, 1, 2, 1, 1, 2]  # per process: 10 requests, 50 in all


@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_reservations_never_double_book():
    require(connection.vendor == "postgresql", "concurrent reservations need PostgreSQL (set DATABASE_URL)")
    inventory_services.import_inventory(document=json.loads((LABS / "demo.json").read_text()), vcenter_name="demo")
    env = {**os.environ, "DATABASE_URL": _database_url_for_subprocess(), "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKER), f"p{p}", str(THREADS), ",".join(map(str, SIZES))],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=REPO,
        )
        for p in range(PROCESSES)
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        results += [json.loads(line) for line in out.splitlines() if line.strip()]
    assert len(results) == PROCESSES * len(SIZES)

    # No GPU reserved twice, and every success holds as many GPUs as it asked for.
    items = list(ReservationItem.objects.filter(reservation__status="active").values_list("gpu_id", flat=True))
    assert len(items) == len(set(items))
    ok = [r for r in results if r["status"] == 201]
    assert sum(r["size"] for r in ok) == len(items)
    assert Reservation.objects.filter(status="active").count() == len(ok)
    assert ok and len(ok) < len(results), "the lab holds fewer GPUs than the 50 requests ask for"
    # Every refusal is "nothing fits" (with reasons), never contention, and really nothing of that size fits now.
    refused = [r for r in results if r["status"] == 409]
    assert all(r["no_capacity"] and "no host can take" in r["detail"] for r in refused), refused[:3]
    for size in {r["size"] for r in refused}:
        request = services.build_request(gpus_per_vm=size, consumption="passthrough")
        assert services.plan_cluster(request=request).best is None, f"{size}-GPU requests were refused with room left"
    assert Counter(r["status"] for r in results) == {201: len(ok), 409: len(refused)}
