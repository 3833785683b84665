"""Removing a vCenter or purging a stale host keeps its reservations as history (trial-churn D4): names copied,
active ones released with a reason, the delete page and ``vcenter remove`` say so; pages and API still render."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from inventory import services as inventory_services
from inventory.models import Gpu, Host, VCenter
from placement import selectors, services
from placement.models import Reservation
from tests.factories import UserFactory
from tests.vcsim import LABS


@pytest.fixture
def demo(db) -> VCenter:
    selectors.reset_snapshot_cache()
    vcenter, _ = inventory_services.import_inventory(
        document=json.loads((LABS / "demo.json").read_text()), vcenter_name="demo"
    )
    yield vcenter
    selectors.reset_snapshot_cache()


def reserve(vm_name: str, **fields) -> Reservation:
    fields.setdefault("consumption", "passthrough")
    (reservation,) = services.reserve(request=services.build_request(**fields), vm_name=vm_name)
    return reservation


def admin() -> Client:
    client = Client()
    client.force_login(UserFactory(role="admin"))
    return client


def admin_api() -> APIClient:
    client = APIClient()
    client.force_authenticate(UserFactory(role="admin"))
    return client


@pytest.fixture
def held(demo) -> tuple[Reservation, Reservation]:
    active = reserve("res-l40s2", gpus_per_vm=2, board="L40S-48GB")
    closed = reserve("old-one", gpus_per_vm=1, board="L40S-48GB")
    Reservation.objects.filter(pk=closed.pk).update(status=Reservation.Status.CONSUMED, closed_at=timezone.now())
    return active, closed


def assert_kept(active: Reservation, closed: Reservation, reason: str) -> None:
    host = active.host.name
    pcis = sorted(active.items.values_list("pci_id", flat=True))
    active.refresh_from_db()
    closed.refresh_from_db()
    assert active.status == Reservation.Status.RELEASED and active.closed_at is not None
    assert active.close_reason == reason
    assert closed.status == Reservation.Status.CONSUMED and closed.close_reason == ""
    assert active.host_name == host and active.vcenter_name == "demo"
    assert sorted(active.items.values_list("pci_id", flat=True)) == pcis


def test_the_delete_page_names_the_active_reservations_and_removing_keeps_them_released(held, demo):
    active, closed = held
    page = admin().get(f"/vcenters/{demo.pk}/delete/").content.decode()
    assert (
        '1 active reservation of demo (res-l40s2) is released with the reason "vCenter demo was removed from the '
        'advisor" and kept in the history; 1 closed reservation of demo stays in the history.'
    ) in page.replace("&quot;", '"')
    response = admin().post(f"/vcenters/{demo.pk}/delete/", follow=True)
    assert response.status_code == 200 and "1 active reservation of demo (res-l40s2) is released" in (
        response.content.decode().replace("&quot;", '"')
    )
    assert not VCenter.objects.filter(pk=demo.pk).exists()
    assert_kept(active, closed, "vCenter demo was removed from the advisor")
    assert active.host_id is None and active.vcenter_id is None and not active.items.filter(gpu__isnull=False)


def test_the_api_delete_keeps_the_reservations_and_every_view_of_them_renders(held, demo):
    active, closed = held
    host = active.host.name
    response = admin_api().delete(f"/api/vcenters/{demo.pk}/")
    assert response.status_code == 200
    assert response.json()["effects"] == [
        '1 active reservation of demo (res-l40s2) is released with the reason "vCenter demo was removed from the '
        'advisor" and kept in the history; 1 closed reservation of demo stays in the history.'
    ]
    assert_kept(active, closed, "vCenter demo was removed from the advisor")
    body = admin_api().get(f"/api/reservations/{active.pk}/").json()
    assert body["host"] == host and body["host_id"] is None and body["vcenter"] == "demo"
    assert body["status"] == "released" and body["problems"] == []
    assert body["close_reason"] == "vCenter demo was removed from the advisor"
    by_name = admin_api().get("/api/reservations/?vcenter=demo").json()["results"]
    assert {r["vm_name"] for r in by_name} == {"res-l40s2", "old-one"}
    page = admin().get(f"/reservations/{active.pk}/")
    assert page.status_code == 200
    text = page.content.decode()
    assert f"<bdi>{host}</bdi> (vCenter <bdi>demo</bdi>): removed from the inventory with its vCenter" in text
    assert "vCenter demo was removed" in text
    assert admin().get(f"/reservations/{active.pk}/?format=powercli").status_code == 200
    listing = admin().get("/reservations/?host=l40s").content.decode()
    assert f"{host} (removed)" in listing and "res-l40s2" in listing


def test_vcenter_remove_says_how_many_active_reservations_are_released(held):
    active, closed = held
    out = StringIO()
    call_command("vcenter", "remove", "demo", stdout=out)
    assert "Removed vCenter demo" in out.getvalue()
    assert "1 active reservation of demo (res-l40s2) is released" in out.getvalue()
    assert_kept(active, closed, "vCenter demo was removed from the advisor")


def test_purging_a_stale_host_keeps_its_reservations_and_releases_the_active_ones(held, demo):
    active, closed = held
    host = Host.objects.get(pk=active.host_id)
    old = timezone.now() - timedelta(days=30)
    Host.objects.filter(pk=host.pk).update(stale=True, last_seen=old)
    Gpu.objects.filter(host=host).update(stale=True, last_seen=old)
    inventory_services.purge_stale(older_than_days=14)
    assert not Host.objects.filter(pk=host.pk).exists()
    assert_kept(
        active, closed, f"host {host.name} (vCenter demo) was removed from the inventory after it had left vCenter"
    )
    assert admin().get(f"/reservations/{active.pk}/").status_code == 200


def test_a_gpu_purged_under_an_active_reservation_is_a_problem_not_a_crash(demo):
    r = reserve("res-pt", gpus_per_vm=1, board="L40S-48GB")
    (pci,) = r.items.values_list("pci_id", flat=True)
    Gpu.objects.filter(host=r.host, pci_device__pci_id=pci).update(
        stale=True, last_seen=timezone.now() - timedelta(days=30)
    )
    inventory_services.purge_stale(older_than_days=14)
    r.refresh_from_db()
    assert r.status == Reservation.Status.ACTIVE
    body = admin_api().get(f"/api/reservations/{r.pk}/").json()
    assert body["problems"] == [f"GPU {pci} of {r.host.name} (vCenter demo) was removed from the inventory"]
    page = admin().get(f"/reservations/{r.pk}/").content.decode()
    assert f"<code>{pci}</code> (removed)" in page
