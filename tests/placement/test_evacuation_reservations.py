"""An evacuation lists a host's active reservations beside its VMs (their holds move with the host's GPUs); the
answer says which entry is which (trial F-12): ``kind`` "vm" or "reservation", the reservation's id and the name of
the VM it is for, so a pipeline never tries to migrate a VM called ``reservation:<name>``. The page and
``plan --evacuate`` say "reservation #N for <name>"."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command
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
    with pytest.raises(CommandError, match="cannot move"):  # the reservation stays on its host
        call_command("plan", "--evacuate", A30, stdout=out)
    text = out.getvalue()
    assert f"reservation #{reserved.pk} for res-a30" in text and "reservation:res-a30" not in text

    out = io.StringIO()
    with pytest.raises(CommandError, match="cannot move"):  # the reservation stays on its host
        call_command("plan", "--evacuate", A30, "--json", stdout=out)
    doc = json.loads(out.getvalue())
    (held,) = [m for m in doc["moves"] if m["kind"] == "reservation"]
    assert held["reservation_id"] == reserved.pk and held["vm_name"] == "res-a30"


def _l40s_pair_lab(threads: int) -> dict:
    """The demo lab with a second L40S host, empty, of ``threads`` logical CPUs (one NUMA node per half)."""
    import copy

    doc = json.loads((LABS / "demo.json").read_text())
    source = next(h for h in doc["hosts"] if h["name"] == "esx-l40s-01.lab.local")
    twin = copy.deepcopy(source)
    twin["name"] = "esx-l40s-02.lab.local"
    twin["cpu"] = {"sockets": 2, "cores": threads // 2, "threads": threads}
    half = threads // 2
    twin["numa_nodes"][0]["cpus"] = list(range(half))
    twin["numa_nodes"][1]["cpus"] = list(range(half, threads))
    for gpu in twin["gpus"]:
        gpu["consumers"] = []
    doc["hosts"].append(twin)
    return doc


def test_a_reservations_vcpus_and_memory_are_admitted_on_the_target(transactional_db):
    """Trial J-1: two 8-vCPU reservations and two 8-vCPU VMs all went to a 16-thread host ("4 of 4 can move")."""
    selectors.reset_snapshot_cache()
    inventory_services.import_inventory(document=_l40s_pair_lab(threads=16), vcenter_name="demo")
    source = Host.objects.get(name="esx-l40s-01.lab.local")
    for name in ("llm-03", "llm-05"):
        request = services.build_request(
            gpus_per_vm=1, consumption="passthrough", vcpus=8, memory_mb=65536, clusters=["pcie-cluster"]
        )
        offer = next(c for c in services.plan_cluster(request=request).candidates if c.host_id == source.pk)
        services.reserve_planned(
            request=request, host_id=source.pk, pci_ids=[g.pci_id for g in offer.gpus], vm_name=name
        )
        selectors.reset_snapshot_cache()
    selectors.reset_snapshot_cache()
    plan = services.plan_host_evacuation(host=source)
    doc = plan.to_dict()
    held = [m for m in doc["moves"] if m["vm"].startswith("reservation:")]
    assert len(held) == 2
    text = json.dumps(held)
    assert "vCPUs and memory unknown" not in text
    target = Host.objects.get(name="esx-l40s-02.lab.local")
    moved = [m["vm"] for m in doc["moves"] if m["target"] and m["target"]["host_id"] == target.pk]
    assert "embed-svc" in sizes_of(source) and sizes_of(source)["embed-svc"] == 8
    assert len(moved) == 2, doc  # 16 threads: two of embed-svc and the two 8-vCPU reservations
    (left,) = doc["cannot_move"]
    assert any("vCPU" in r for r in left["reasons"]), left


def sizes_of(host: Host) -> dict[str, int]:
    return {name: vcpus for name, (vcpus, _mem, _power) in selectors.vm_sizes(host_id=host.pk).items()}
