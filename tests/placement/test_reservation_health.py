"""Reservations the estate changed under are visibly broken (trial-churn D1, D2): their problems on the page, the
list, the API and its filter; nothing is released or re-planned by itself; evacuation does not move a reservation
of a host that left vCenter."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from rest_framework.test import APIClient

from inventory import services as inventory_services
from inventory.models import Host
from placement import selectors, services
from placement.engine.request import RequestError
from placement.models import Reservation
from tests.factories import UserFactory
from tests.vcsim import LABS

L40S = "esx-l40s-01.lab.local"
HGX = "esx-hgx-01.lab.local"
A100 = "esx-a100-01.lab.local"
A30 = "esx-a30-01.lab.local"


def lab() -> dict:
    return json.loads((LABS / "demo.json").read_text())


@pytest.fixture
def doc(db) -> dict:
    document = lab()
    inventory_services.import_inventory(document=document, vcenter_name="demo")
    return document


@pytest.fixture(autouse=True)
def fresh_cache():
    selectors.reset_snapshot_cache()
    yield
    selectors.reset_snapshot_cache()


def resync(document: dict) -> None:
    """What a sync of the changed lab does (the same apply path, then the reservations' reconcile)."""
    inventory_services.import_inventory(document=document, vcenter_name="demo")


def host_of(document: dict, name: str) -> dict:
    return next(h for h in document["hosts"] if h["name"] == name)


def gpu_of(document: dict, host: str, pci: str) -> dict:
    return next(g for g in host_of(document, host)["gpus"] if g["pci_id"] == pci)


def reserve(vm_name: str, **fields) -> Reservation:
    fields.setdefault("consumption", services.default_consumption(fields.get("profile")))
    (reservation,) = services.reserve(request=services.build_request(**fields), vm_name=vm_name)
    return reservation


def pcis(reservation: Reservation) -> list[str]:
    return sorted(reservation.items.values_list("pci_id", flat=True))


def api() -> APIClient:
    client = APIClient()
    client.force_authenticate(UserFactory(role="viewer"))
    return client


def viewer() -> Client:
    client = Client()
    client.force_login(UserFactory(role="viewer"))
    return client


def problems(reservation: Reservation) -> list[str]:
    body = api().get(f"/api/reservations/{reservation.pk}/").json()
    return body["problems"]


def test_a_reservation_on_a_gpu_gone_from_vcenter_is_flagged_everywhere_and_stays_active(doc):
    r = reserve("res-l40s2", gpus_per_vm=2, board="L40S-48GB")
    assert r.host.name == L40S
    gone = pcis(r)[1]
    host = host_of(doc, L40S)
    host["gpus"] = [g for g in host["gpus"] if g["pci_id"] != gone]
    for node in host["numa_nodes"]:
        node["pci_ids"] = [p for p in node["pci_ids"] if p != gone]
    fine = reserve("fine-1", gpus_per_vm=1, profile="grid_a30-2-12c")
    resync(doc)

    (problem,) = problems(r)
    assert problem.startswith(f"GPU {gone} is gone from {L40S} (vCenter demo): last seen by the sync of ")
    r.refresh_from_db()
    assert r.status == Reservation.Status.ACTIVE  # flagged, not released

    listed = api().get("/api/reservations/").json()["results"]
    assert {x["vm_name"]: x["problems"] for x in listed} == {"res-l40s2": [problem], "fine-1": []}
    flagged = api().get("/api/reservations/?needs_attention=true").json()["results"]
    assert [x["vm_name"] for x in flagged] == ["res-l40s2"]
    others = api().get("/api/reservations/?needs_attention=false").json()["results"]
    assert [x["vm_name"] for x in others] == ["fine-1"]
    assert api().get("/api/reservations/?needs_attention=banana").status_code == 400

    page = viewer().get(f"/reservations/{r.pk}/").content.decode()
    box = page.index('id="reservation-problems"')
    assert box < page.index("<h2>PowerCLI</h2>") and problem in page
    assert 'id="script-out-of-date"' in page and "release this reservation and plan again" in page
    script = viewer().get(f"/reservations/{r.pk}/?format=powercli").content.decode()
    # the first line stops the script (trial-ui D10); the warning comments follow it
    assert script.startswith("throw '") and "\n# WARNING: this reservation needs attention.\n" in script
    assert problem in script
    assert viewer().get(f"/reservations/{r.pk}/?format=json").json()["problems"] == [problem]
    assert 'id="reservation-problems"' not in viewer().get(f"/reservations/{fine.pk}/").content.decode()

    listing = viewer().get("/reservations/").content.decode()
    assert listing.count("needs attention</span>") == 1
    only = viewer().get("/reservations/?needs_attention=true").content.decode()
    assert "res-l40s2" in only and "fine-1" not in only


def test_a_vgpu_reservation_on_a_gpu_switched_to_passthrough_is_flagged(doc):
    r = reserve("res-hgx", gpus_per_vm=1, profile="nvidia_h100xm-80c")
    assert r.host.name == HGX
    (pci,) = pcis(r)
    for gpu in host_of(doc, HGX)["gpus"]:  # every GPU of the host: the reservation has nowhere to move
        gpu.update(graphics_type="direct", profiles=[], vgpu_mode=None)
    resync(doc)
    assert problems(r) == [
        f"GPU {pci} on {HGX} (vCenter demo) is now in passthrough (direct) mode: it cannot take the vGPU "
        "nvidia_h100xm-80c reserved for res-hgx",
        f"On {HGX} (vCenter demo), the reserved GPU {pci} can no longer take it and the host has no other room for "
        "it (8 of 8 GPUs are not in vGPU (sharedDirect) mode): its VM may not power on there",
    ]


def test_a_vgpu_reservation_moves_off_a_gpu_switched_to_passthrough_when_the_host_has_room(doc):
    # vSphere picks a vGPU's physical GPU at power-on: the host's room is what a vGPU reservation holds
    r = reserve("res-hgx", gpus_per_vm=1, profile="nvidia_h100xm-80c")
    (pci,) = pcis(r)
    gpu_of(doc, HGX, pci).update(graphics_type="direct", profiles=[], vgpu_mode=None)
    resync(doc)
    assert problems(r) == []
    (now,) = pcis(r)
    assert now != pci
    r.refresh_from_db()
    assert r.candidate["reseated_from"] == [pci]


def test_a_passthrough_reservation_on_a_gpu_switched_to_vgpu_is_flagged(doc):
    r = reserve("res-pt", gpus_per_vm=1, board="L40S-48GB")
    (pci,) = pcis(r)
    gpu_of(doc, L40S, pci).update(graphics_type="sharedDirect", vgpu_mode="sameSize")
    resync(doc)
    assert problems(r) == [
        f"GPU {pci} on {L40S} (vCenter demo) is now in vGPU (sharedDirect) mode: it cannot be passed through whole "
        "to res-pt"
    ]


@pytest.mark.parametrize(
    ("change", "words"),
    [({"connection_state": "disconnected"}, "disconnected"), ({"maintenance": True}, "in maintenance mode"),
     ({"connection_state": "notResponding"}, "not responding")],
)  # fmt: skip
def test_a_reservation_on_a_host_that_became_unavailable_is_flagged(doc, change, words):
    """Trial J-5: two holds on a disconnected host had no problem; the page still said to apply their settings."""
    r = reserve("res-off", gpus_per_vm=1, board="L40S-48GB")
    host_of(doc, L40S).update(change)
    resync(doc)
    assert problems(r) == [
        f"Host {L40S} (vCenter demo) is {words}: the VM cannot be powered on there until it is back, and plans do "
        "not use the host meanwhile"
    ]


def test_a_passthrough_hold_on_a_gpu_switched_to_vgpu_leaves_no_room_in_the_gpu_list(doc):
    """Trial J-11: the GPUs CSV read "vGPU same-size, reserved, vGPU GB reserved 0, Free GB 48"."""
    from inventory.models import Gpu
    from inventory.occupancy import gpu_occupancy

    r = reserve("res-pt2", gpus_per_vm=1, board="L40S-48GB")
    (pci,) = pcis(r)
    gpu_of(doc, L40S, pci).update(graphics_type="sharedDirect", vgpu_mode="sameSize")
    resync(doc)
    (occ,) = gpu_occupancy(gpus=Gpu.objects.filter(host__name=L40S, pci_device__pci_id=pci))
    assert (occ.state, occ.reserved_gb, occ.free_gb) == ("reserved", 48, 0)


def test_a_vgpu_reservation_locked_out_by_a_running_vm_with_another_profile_is_flagged(doc):
    r = reserve("res-a100", gpus_per_vm=1, profile="grid_a100d-10c")
    assert r.host.name == A100
    (pci,) = pcis(r)
    locked = {}
    for gpu in host_of(doc, A100)["gpus"]:  # both A100s: the reservation has nowhere to move
        (resident,) = [c for c in gpu["consumers"] if c["profile"] == "grid_a100d-10c"]
        resident["profile"] = "grid_a100d-20c"
        locked[gpu["pci_id"]] = resident["vm"]
    resync(doc)
    assert problems(r) == [
        f"GPU {pci} on {A100} (vCenter demo) is locked to grid_a100d-20c by VM {locked[pci]} (same-size mode): "
        "the vGPU grid_a100d-10c reserved for res-a100 cannot share it",
        f"On {A100} (vCenter demo), the reserved GPU {pci} can no longer take it and the host has no other room for "
        f"it (2 of 2 GPUs are locked to another profile, e.g. GPU {pci} is locked to grid_a100d-20c by "
        f"{locked[pci]} (same-size mode)): its VM may not power on there",
    ]


def test_a_passthrough_reservation_whose_gpu_another_vm_now_holds_is_flagged(doc):
    r = reserve("res-pt", gpus_per_vm=1, board="L40S-48GB")
    (pci,) = pcis(r)
    doc["vms"].append({"name": "batch-new", "host": L40S, "power_state": "poweredOff", "cpus": 4, "memory_mb": 8192,
                       "memory_reservation_mb": 8192})  # fmt: skip
    gpu_of(doc, L40S, pci)["consumers"].append({"vm": "batch-new", "kind": "passthrough", "profile": None})
    resync(doc)
    assert problems(r) == [f"GPU {pci} on {L40S} (vCenter demo) is now held by VM batch-new"]


def test_a_reservation_whose_host_left_vcenter_is_flagged_and_not_moved_by_an_evacuation(doc):
    r = reserve("res-a30", gpus_per_vm=1, profile="grid_a30-2-12c")
    assert r.host.name == A30
    before = services.plan_host_evacuation(host=r.host).to_dict()
    assert any(m["vm"] == "reservation:res-a30" for m in before["moves"])  # a live host's holds move with it
    doc["hosts"] = [h for h in doc["hosts"] if h["name"] != A30]
    doc["vms"] = [v for v in doc["vms"] if v["host"] != A30]
    resync(doc)
    (problem,) = problems(r)
    assert problem.startswith(f"Host {A30} is gone from vCenter demo: last seen by the sync of ")
    host = Host.objects.get(pk=r.host_id)
    assert host.stale
    # a host gone from vCenter runs nothing: its evacuation says so (page and API 409, CLI exit 1) instead of an
    # empty plan ("0 of 0 GPU VMs can move"), and never moves its reservations
    with pytest.raises(RequestError) as exc:
        services.plan_host_evacuation(host=host)
    assert exc.value.field == "evacuate" and f"host {A30} is stale since " in exc.value.message
    assert exc.value.message.endswith("(last seen by the sync of that time), so it runs no VMs to move")
    answer = api().get(f"/api/hosts/{host.pk}/evacuation/")
    assert answer.status_code == 409 and answer.json() == {"evacuate": [exc.value.message]}
    page = viewer().get(f"/inventory/hosts/{host.pk}/evacuation/")
    assert page.status_code == 409 and "so it runs no VMs to move" in page.content.decode()


def test_a_vm_of_the_reserved_name_holding_gpus_on_another_host_is_flagged_not_consumed(doc):
    r = reserve("res-a30", gpus_per_vm=1, profile="grid_a30-2-12c")
    doc["vms"].append({"name": "res-a30", "host": L40S, "power_state": "poweredOn", "cpus": 4, "memory_mb": 8192,
                       "memory_reservation_mb": 8192})  # fmt: skip
    gpu_of(doc, L40S, "0000:19:00.0")["consumers"].append({"vm": "res-a30", "kind": "passthrough", "profile": None})
    resync(doc)
    r.refresh_from_db()
    assert r.status == Reservation.Status.ACTIVE
    assert problems(r) == [
        f"VM res-a30 now exists on {L40S} (vCenter demo) holding GPU 0000:19:00.0: its PowerCLI script would move it"
    ]


def test_closed_reservations_have_no_problems_and_every_answer_carries_the_list(doc):
    r = reserve("res-pt", gpus_per_vm=1, board="L40S-48GB")
    body = api().get(f"/api/reservations/{r.pk}/").json()
    assert body["problems"] == [] and body["close_reason"] == ""
    (pci,) = pcis(r)
    gpu_of(doc, L40S, pci).update(graphics_type="sharedDirect", vgpu_mode="sameSize")
    resync(doc)
    services.release_reservation(reservation=r)
    assert problems(r) == []


def test_problems_of_a_list_are_read_in_a_fixed_number_of_queries(doc, django_assert_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert api().get("/api/reservations/").status_code == 200
        return len(ctx)

    for i in range(2):
        reserve(f"pt-{i}", gpus_per_vm=1, board="L40S-48GB")
    count()  # what the process caches on a first request (whichever tests ran before in it) is not counted
    few = count()
    for i in range(3):
        reserve(f"a100-{i}", gpus_per_vm=1, profile="grid_a100d-10c")
    for gpu in host_of(doc, L40S)["gpus"]:
        gpu.update(graphics_type="sharedDirect", vgpu_mode="sameSize")
    resync(doc)
    assert count() == few


def vm_appears(document: dict, vm: str, pci: str) -> None:
    """A sync finds VM ``vm`` (sized as embed-svc) on the L40S host holding GPU ``pci`` in passthrough."""
    gpu_of(document, L40S, pci)["consumers"].append({"vm": vm, "kind": "passthrough"})
    document["vms"].append({**next(v for v in document["vms"] if v["name"] == "embed-svc"), "name": vm})
    resync(document)


def test_a_vm_that_appears_on_other_gpus_or_fewer_consumes_its_reservation_and_says_how_it_differs(doc):
    """Trial J-4: reserved on one L40S, the VM appeared on another; reserved two, it held one: both were consumed
    with no word, and the page said the VM "already holds its GPUs"."""
    r = reserve("res-moved", gpus_per_vm=2, board="L40S-48GB")
    reserved = pcis(r)
    host = host_of(doc, L40S)
    free = [g["pci_id"] for g in host["gpus"] if not g["consumers"] and g["pci_id"] not in reserved]
    assert free, "a free L40S the VM can take instead"
    vm_appears(doc, "res-moved", reserved[0])
    r.refresh_from_db()
    assert r.status == Reservation.Status.CONSUMED
    assert r.close_reason == (
        f"VM res-moved appeared on {L40S} but holds 1 GPU of the 2 reserved: the reserved GPUs it does not hold are "
        "free again"
    )
    page = viewer().get(f"/reservations/{r.pk}/").content.decode()
    assert "already holds its GPUs" not in page and "holds 1 GPU of the 2 reserved" in page

    other = reserve("res-other", gpus_per_vm=1, board="L40S-48GB")
    (held,) = pcis(other)
    elsewhere = next(p for p in free if p != held)
    vm_appears(doc, "res-other", elsewhere)
    other.refresh_from_db()
    assert other.status == Reservation.Status.CONSUMED
    assert other.close_reason == (
        f"VM res-other appeared on {L40S} but holds GPU {elsewhere} instead of the reserved {held}: the reserved GPUs "
        "it does not hold are free again"
    )


def test_a_vm_that_appears_on_exactly_its_reserved_gpus_consumes_it_without_a_note(doc):
    r = reserve("res-exact", gpus_per_vm=1, board="L40S-48GB")
    (pci,) = pcis(r)
    vm_appears(doc, "res-exact", pci)
    r.refresh_from_db()
    assert r.status == Reservation.Status.CONSUMED and r.close_reason == ""
