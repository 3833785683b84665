"""Reservations: accepted plans hold GPUs, exactly one of concurrent overlapping accepts wins, sync reconciles."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from inventory import services as inventory_services
from placement import services
from placement.models import Reservation
from tests.vcsim import LABS


def demo() -> dict:
    return json.loads((LABS / "demo.json").read_text())


@pytest.fixture
def inventory(db):
    inventory_services.import_inventory(document=demo(), vcenter_name="demo")


def passthrough(gpus: int = 2, **kw):
    return services.build_request(gpus_per_vm=gpus, consumption="passthrough", clusters=["pcie-cluster"], **kw)


def test_accepting_a_plan_reserves_its_gpus(inventory):
    request = passthrough()
    best = services.plan_cluster(request=request).best
    reservation = services.accept_candidate(request=request, candidate=best, vm_name="llm-1")
    assert reservation.is_active and reservation.items.count() == 2
    again = services.plan_cluster(request=request)
    taken = {(best.host, g.pci_id) for g in best.gpus}
    assert all(not taken & {(c.host, g.pci_id) for g in c.gpus} for c in again.candidates)


def test_a_stale_candidate_is_refused(inventory):
    request = passthrough()
    best = services.plan_cluster(request=request).best
    services.accept_candidate(request=request, candidate=best, vm_name="first")
    with pytest.raises(services.ReservationConflict, match="plan again"):
        services.accept_candidate(request=request, candidate=best, vm_name="second")


def test_expired_and_released_reservations_free_their_gpus(inventory):
    request = passthrough()
    best = services.plan_cluster(request=request).best
    reservation = services.accept_candidate(request=request, candidate=best, vm_name="short")
    Reservation.objects.filter(pk=reservation.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert services.plan_cluster(request=request).best == best
    reservation.refresh_from_db()
    assert reservation.status == Reservation.Status.EXPIRED
    again = services.accept_candidate(request=request, candidate=best, vm_name="next")
    services.release_reservation(reservation=again)
    assert services.plan_cluster(request=request).best == best


def test_fractional_vgpu_reservation_counts_against_the_gpu(inventory):
    request = services.build_request(gpus_per_vm=1, consumption="vgpu", profile="grid_a100d-10c")
    plans = []
    for i in range(16):
        best = services.plan_cluster(request=request).best
        if best is None:
            break
        services.accept_candidate(request=request, candidate=best, vm_name=f"chat-{i}")
        plans.append(best)
    # Two A100 80GB GPUs in same-size mode, each already holding one 10C: 8 per GPU, so 14 more fit.
    assert len(plans) == 14
    assert services.plan_cluster(request=request).best is None


def test_bad_reservation_input_names_the_field(inventory):
    request = passthrough()
    best = services.plan_cluster(request=request).best
    with pytest.raises(services.RequestError, match="vm_name"):
        services.accept_candidate(request=request, candidate=best, vm_name="")
    with pytest.raises(services.RequestError, match="ttl_minutes"):
        services.accept_candidate(request=request, candidate=best, vm_name="x", ttl_minutes=-5)


def test_sync_reconciles_a_reservation_once_its_vm_appears(inventory):
    request = passthrough(gpus=1)
    best = services.plan_cluster(request=request).best
    services.accept_candidate(request=request, candidate=best, vm_name="embed-2")
    document = demo()
    host = next(h for h in document["hosts"] if h["name"] == best.host)
    gpu = next(g for g in host["gpus"] if g["pci_id"] == best.gpus[0].pci_id)
    gpu["consumers"].append({"vm": "embed-2", "kind": "passthrough", "profile": None})
    document["vms"].append(
        {
            "name": "embed-2",
            "host": best.host,
            "power_state": "poweredOn",
            "cpus": 8,
            "memory_mb": 32768,
            "memory_reservation_mb": 32768,
        }
    )
    inventory_services.import_inventory(document=document, vcenter_name="demo")  # reconciles on its own
    assert Reservation.objects.get(vm_name="embed-2").status == Reservation.Status.CONSUMED
    assert services.reconcile_reservations() == {"expired": 0, "consumed": 0}


@pytest.mark.django_db(transaction=True)
def test_concurrent_overlapping_accepts_exactly_one_wins():
    inventory_services.import_inventory(document=demo(), vcenter_name="demo")
    request = passthrough()
    best = services.plan_cluster(request=request).best
    barrier = threading.Barrier(4)
    outcomes: list[str] = []
    lock = threading.Lock()

    def accept(i: int) -> None:
        try:
            barrier.wait()
            services.accept_candidate(request=request, candidate=best, vm_name=f"racer-{i}")
            result = "won"
        except services.ReservationConflict:
            result = "conflict"
        finally:
            connection.close()
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=accept, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(outcomes) == ["conflict", "conflict", "conflict", "won"]
    assert Reservation.objects.filter(status="active").count() == 1


def test_the_periodic_task_expires_old_reservations(inventory):
    from placement.tasks import expire_reservations_task

    request = passthrough()
    best = services.plan_cluster(request=request).best
    reservation = services.accept_candidate(request=request, candidate=best, vm_name="old")
    Reservation.objects.filter(pk=reservation.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    assert expire_reservations_task.apply().get() == {"expired": 1, "consumed": 0}
