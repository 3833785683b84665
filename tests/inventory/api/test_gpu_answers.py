"""GPUs and hosts as the API gives them: every reservation sharing a GPU (trial A, L1), ``?state=`` filtering by the
state each GPU shows (A, M1), and whether the data is stale because the vCenter's last sync failed (trial B, 6)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from inventory.models import Gpu, Host, VCenter
from inventory.occupancy import gpu_occupancy
from tests import factories

pytestmark = pytest.mark.django_db

HGX = "esx-hgx-01.lab.local"


def _all(api, path: str, **params) -> list[dict]:
    response = api.get(path, {"limit": 500, **params})
    assert response.status_code == 200, response.content
    return response.json()["results"]


def test_a_gpu_shared_by_several_reservations_lists_them_all(api, demo):
    gpu = Gpu.objects.filter(host__name=HGX, consumers__isnull=True).select_related("pci_device").first()
    made = []
    for i in range(3):
        reservation = factories.ReservationFactory(
            host=gpu.host, vm_name=f"shared-{i}", created=timezone.now() + timedelta(seconds=i)
        )
        factories.ReservationItemFactory(reservation=reservation, gpu=gpu, kind="vgpu", profile="nvidia_h100xm-10c")
        made.append(reservation.pk)
    listed = _all(api, "/api/gpus/", host=gpu.host_id, pci_id=gpu.pci_device.pci_id)
    assert [r["id"] for r in listed[0]["reservations"]] == made
    assert {r["profile"] for r in listed[0]["reservations"]} == {"nvidia_h100xm-10c"}
    detail = api.get(f"/api/gpus/{gpu.pk}/").json()
    assert [r["vm_name"] for r in detail["reservations"]] == ["shared-0", "shared-1", "shared-2"]
    assert "reservation" not in detail


@pytest.mark.parametrize("state", ["free", "used", "partial", "reserved", "unavailable"])
def test_the_state_filter_answers_the_gpus_in_that_state(api, demo, state):
    free = Gpu.objects.filter(host__name="esx-l40s-01.lab.local", consumers__isnull=True).first()
    reservation = factories.ReservationFactory(host=free.host, vm_name="held")
    factories.ReservationItemFactory(reservation=reservation, gpu=free)
    Host.objects.filter(name="esx-a30-01.lab.local").update(maintenance_mode=True)
    every = _all(api, "/api/gpus/")
    expected = {g["id"] for g in every if g["state"] == state}
    assert {g["id"] for g in _all(api, "/api/gpus/", state=state)} == expected
    truth = {o.gpu_id for o in gpu_occupancy(gpus=Gpu.objects.all()) if o.state == state}
    assert expected == truth


def test_every_state_occurs_in_the_fixture(api, demo):
    """The parametrized test above is only worth something when the states it checks are there."""
    free = Gpu.objects.filter(host__name="esx-l40s-01.lab.local", consumers__isnull=True).first()
    factories.ReservationItemFactory(reservation=factories.ReservationFactory(host=free.host), gpu=free)
    Host.objects.filter(name="esx-a30-01.lab.local").update(maintenance_mode=True)
    states = {g["state"] for g in _all(api, "/api/gpus/")}
    assert {"free", "reserved", "unavailable"} <= states and states & {"used", "partial"}


def test_the_state_filter_combines_with_the_others_and_costs_a_few_queries(api, demo):
    host = Host.objects.get(name=HGX)
    with CaptureQueriesContext(connection) as queries:
        rows = _all(api, "/api/gpus/", host=host.pk, state="free")
    assert rows and {g["host"] for g in rows} == {host.pk} and {g["state"] for g in rows} == {"free"}
    assert len(queries) < 20


def test_an_unknown_state_is_a_400_naming_the_choices(api, demo):
    response = api.get("/api/gpus/", {"state": "idle"})
    assert response.status_code == 400 and list(response.json()) == ["state"]


def test_hosts_and_gpus_say_when_the_vcenters_last_sync_failed(api, demo):
    host = Host.objects.filter(vcenter=demo).first()
    good = timezone.now() - timedelta(hours=2)
    VCenter.objects.filter(pk=demo.pk).update(inventory_stale=False, last_success_at=good)
    doc = api.get(f"/api/hosts/{host.pk}/").json()
    assert doc["inventory_stale"] is False and doc["vcenter_last_success_at"] is not None

    VCenter.objects.filter(pk=demo.pk).update(inventory_stale=True, last_sync_status="failed")
    doc = api.get(f"/api/hosts/{host.pk}/").json()
    assert doc["inventory_stale"] is True
    assert doc["vcenter_last_success_at"].startswith(good.strftime("%Y-%m-%dT%H:%M"))
    listed = _all(api, "/api/hosts/")
    assert listed and all(h["inventory_stale"] is True for h in listed)
    gpus = _all(api, "/api/gpus/", host=host.pk)
    assert gpus and all(g["inventory_stale"] is True and g["vcenter_last_success_at"] for g in gpus)
