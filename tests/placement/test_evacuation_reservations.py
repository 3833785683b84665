"""An evacuation lists a host's active reservations beside its VMs (their holds move with the host's GPUs); the
answer says which entry is which (trial F-12): ``kind`` "vm" or "reservation", the reservation's id and the name of
the VM it is for, so a pipeline never tries to migrate a VM called ``reservation:<name>``. The page and
``plan --evacuate`` say "reservation #N for <name>"."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command
from django.test import Client
from rest_framework.test import APIClient

from inventory import services as inventory_services
from inventory.models import Host
from placement import selectors, services
from placement.models import Reservation
from tests.factories import UserFactory
from tests.vcsim import LABS

pytestmark = pytest.mark.django_db

A30 = "esx-a30-01.lab.local"


@pytest.fixture
def reserved() -> Reservation:
    selectors.reset_snapshot_cache()
    inventory_services.import_inventory(document=json.loads((LABS / "demo.json").read_text()), vcenter_name="demo")
    request = services.build_request(
        gpus_per_vm=1, profile="grid_a30-2-12c", consumption=services.default_consumption("grid_a30-2-12c")
    )
    (reservation,) = services.reserve(request=request, vm_name="res-a30")
    assert reservation.host.name == A30
    yield reservation
    selectors.reset_snapshot_cache()


def entries(doc: dict) -> list[dict]:
    return [*doc["moves"], *doc["cannot_move"]]


def test_the_api_says_which_entry_is_a_reservation_and_which_a_vm(reserved):
    client = APIClient()
    client.force_authenticate(UserFactory(role="viewer"))
    doc = client.get(f"/api/hosts/{reserved.host_id}/evacuation/").json()
    (held,) = [m for m in doc["moves"] if m["kind"] == "reservation"]
    assert held["vm"] == "reservation:res-a30"  # the engine's consumer name, unchanged
    assert held["vm_name"] == "res-a30" and held["reservation_id"] == reserved.pk
    vms = [m for m in doc["moves"] if m["kind"] == "vm"]
    assert vms and all(m["vm_name"] == m["vm"] and m["reservation_id"] is None for m in vms)
    assert all({"kind", "vm_name", "reservation_id"} <= set(m) for m in entries(doc))


def test_cannot_move_entries_carry_the_kind_too(reserved):
    # the only other A30 host gone: nothing can move, reservation included
    Host.objects.exclude(pk=reserved.host_id).update(maintenance_mode=True)
    selectors.reset_snapshot_cache()
    client = APIClient()
    client.force_authenticate(UserFactory(role="viewer"))
    doc = client.get(f"/api/hosts/{reserved.host_id}/evacuation/").json()
    (held,) = [m for m in doc["cannot_move"] if m["kind"] == "reservation"]
    assert held["reservation_id"] == reserved.pk and held["vm_name"] == "res-a30"
    assert all(m["kind"] == "vm" and m["reservation_id"] is None for m in doc["cannot_move"] if m is not held)


def test_the_page_and_the_command_name_the_reservation(reserved):
    client = Client()
    client.force_login(UserFactory(role="viewer"))
    page = client.get(f"/inventory/hosts/{reserved.host_id}/evacuation/").content.decode()
    assert f"reservation #{reserved.pk} for res-a30" in page and "reservation:res-a30" not in page
    assert f'href="/reservations/{reserved.pk}/"' in page

    out = io.StringIO()
    call_command("plan", "--evacuate", A30, stdout=out)
    text = out.getvalue()
    assert f"reservation #{reserved.pk} for res-a30" in text and "reservation:res-a30" not in text

    out = io.StringIO()
    call_command("plan", "--evacuate", A30, "--json", stdout=out)
    doc = json.loads(out.getvalue())
    (held,) = [m for m in doc["moves"] if m["kind"] == "reservation"]
    assert held["reservation_id"] == reserved.pk and held["vm_name"] == "res-a30"
