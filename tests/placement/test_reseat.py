"""vGPU reservations after vSphere placed VMs on other GPUs than the advisor predicted (``placement.reseat``).

vSphere picks a vGPU VM's physical GPU itself and knows nothing of the advisor's reservations: a reserved VM can
land on a GPU other reservations were predicted on. The sync then re-seats those reservations on the host, so no
GPU holds more than its maximum and the slot the VM left is not sold again (an automation engineer's trial).
"""

from __future__ import annotations

import json
from collections import Counter

import pytest

from inventory import services as inventory_services
from inventory.models import Host
from placement import services
from placement.models import Reservation, ReservationItem
from placement.reservation_health import problems_by_reservation
from tests.vcsim import LABS

HGX = "esx-hgx-01.lab.local"  # 8 H100 SXM in same-size vGPU mode, 5 of them empty; 40C: at most 2 per GPU
EMPTY = ("0000:18:00.0", "0000:1a:00.0", "0000:3a:00.0", "0000:3c:00.0", "0000:be:00.0")
PROFILE = "nvidia_h100xm-40c"


def demo() -> dict:
    return json.loads((LABS / "demo.json").read_text())


@pytest.fixture
def inventory(db):
    inventory_services.import_inventory(document=demo(), vcenter_name="demo")


def vgpu_40c():
    return services.build_request(gpus_per_vm=1, consumption="vgpu", profile=PROFILE, clusters=["hgx-cluster"])


def fill(n: int) -> list[Reservation]:
    out = []
    for i in range(n):
        best = services.plan_cluster(request=vgpu_40c()).best
        out.append(services.accept_candidate(request=vgpu_40c(), candidate=best, vm_name=f"cc-{i}"))
    return out


def gpu_of(reservation: Reservation) -> str:
    return reservation.items.get().pci_id


def sync_with(*vms: tuple[str, str]) -> None:
    """Sync the demo lab with these (VM, GPU) 40C vGPU VMs running on the HGX host, as vSphere placed them."""
    document = demo()
    host = next(h for h in document["hosts"] if h["name"] == HGX)
    for vm, pci in vms:
        gpu = next(g for g in host["gpus"] if g["pci_id"] == pci)
        gpu["consumers"].append({"vm": vm, "kind": "vgpu", "profile": PROFILE})
        document["vms"].append(
            {"name": vm, "host": HGX, "power_state": "poweredOn", "cpus": 8, "memory_mb": 65536,
             "memory_reservation_mb": 65536}
        )  # fmt: skip
    inventory_services.import_inventory(document=document, vcenter_name="demo")


def commitments() -> Counter:
    """40C VMs and active reservations per GPU of the HGX host."""
    host = Host.objects.get(name=HGX)
    per_gpu: Counter = Counter()
    for gpu in host.gpus.all():
        pci = gpu.pci_device.pci_id
        per_gpu[pci] += gpu.consumers.filter(profile=PROFILE, vm__power_state="poweredOn").count()
        per_gpu[pci] += ReservationItem.objects.filter(gpu=gpu, reservation__status=Reservation.Status.ACTIVE).count()
    return per_gpu


def test_a_reservation_moves_to_the_gpu_a_vm_left_when_vsphere_put_that_vm_elsewhere(inventory):
    reservations = fill(10)
    assert services.plan_cluster(request=vgpu_40c()).best is None  # 5 GPUs x 2
    first = reservations[0]
    predicted = gpu_of(first)
    landed = next(pci for pci in EMPTY if pci != predicted)
    sync_with((first.vm_name, landed))  # vSphere put cc-0 on another GPU, which held two reservations
    first.refresh_from_db()
    assert first.status == Reservation.Status.CONSUMED
    assert max(commitments().values()) == 2, commitments()  # no GPU over its maximum
    assert commitments()[predicted] == 2  # a reservation took the slot cc-0's prediction left
    assert services.plan_cluster(request=vgpu_40c()).best is None  # that slot is not sold again
    moved = [r for r in Reservation.objects.filter(status="active") if r.candidate.get("reseated_from")]
    assert len(moved) == 1 and moved[0].candidate["reseated_from"] == [landed]
    assert gpu_of(moved[0]) == predicted
    assert problems_by_reservation(scope=Reservation.objects.all()) == {}


def test_a_reservation_with_no_room_left_keeps_its_gpu_and_says_so(inventory):
    reservations = fill(10)
    crowded = gpu_of(reservations[0])
    sync_with(("intruder", crowded))  # a VM the advisor never planned, placed by vSphere on a full GPU
    problems = problems_by_reservation(scope=Reservation.objects.all())
    stuck = [r for r in reservations if r.pk in problems]
    assert len(stuck) == 1 and gpu_of(stuck[0]) == crowded
    assert problems[stuck[0].pk] == [
        f"On {HGX} (vCenter demo), the reserved GPU {crowded} can no longer take it and no other GPU of the host has "
        "room: its VM may not power on there"
    ]
    sync_with()  # the intruder powered off and left: the reservation fits again and the problem clears
    assert problems_by_reservation(scope=Reservation.objects.all()) == {}


def test_a_sync_that_changes_nothing_moves_nothing(inventory):
    reservations = fill(4)
    before = {r.pk: gpu_of(r) for r in reservations}
    sync_with()
    assert {r.pk: gpu_of(r) for r in reservations} == before
    assert not any(r.candidate.get("reseated_from") for r in Reservation.objects.all())


def test_passthrough_reservations_are_never_moved(inventory):
    request = services.build_request(gpus_per_vm=1, consumption="passthrough", clusters=["pcie-cluster"])
    best = services.plan_cluster(request=request).best
    held = services.accept_candidate(request=request, candidate=best, vm_name="pt-1")
    document = demo()
    host = next(h for h in document["hosts"] if h["name"] == best.host)
    gpu = next(g for g in host["gpus"] if g["pci_id"] == best.gpus[0].pci_id)
    gpu["consumers"].append({"vm": "squatter", "kind": "passthrough", "profile": None})
    document["vms"].append({"name": "squatter", "host": best.host, "power_state": "poweredOn", "cpus": 4,
                            "memory_mb": 8192, "memory_reservation_mb": 8192})  # fmt: skip
    inventory_services.import_inventory(document=document, vcenter_name="demo")
    assert gpu_of(held) == best.gpus[0].pci_id  # its script names that GPU: the admin decides
    assert any("squatter" in p for p in problems_by_reservation(scope=Reservation.objects.all())[held.pk])


def test_the_reservation_page_says_where_a_hold_moved_from(inventory, admin_client):
    reservations = fill(10)
    first = reservations[0]
    landed = next(pci for pci in EMPTY if pci != gpu_of(first))
    sync_with((first.vm_name, landed))
    (moved,) = [r for r in Reservation.objects.filter(status="active") if r.candidate.get("reseated_from")]
    body = admin_client.get(f"/reservations/{moved.pk}/").content.decode()
    assert 'id="reseated">predicted on <code>' + landed + "</code> at first" in body


def test_a_mig_reservation_moves_too(inventory):
    request = services.build_request(gpus_per_vm=1, consumption="mig", profile="grid_a30-2-12c")
    held = []
    while (best := services.plan_cluster(request=request).best) is not None:
        held.append(services.accept_candidate(request=request, candidate=best, vm_name=f"mig-{len(held)}"))
    assert len(held) == 3  # two A30s of 4 slices: rag-embed holds 2 on one, so room for three 2g instances
    first = held[0]
    other = next(pci for pci in ("0000:41:00.0", "0000:c1:00.0") if pci != gpu_of(first))
    document = demo()
    host = next(h for h in document["hosts"] if h["name"] == "esx-a30-01.lab.local")
    gpu = next(g for g in host["gpus"] if g["pci_id"] == other)
    gpu["consumers"].append({"vm": first.vm_name, "kind": "mig", "profile": "grid_a30-2-12c"})
    document["vms"].append({"name": first.vm_name, "host": host["name"], "power_state": "poweredOn", "cpus": 8,
                            "memory_mb": 65536, "memory_reservation_mb": 65536})  # fmt: skip
    inventory_services.import_inventory(document=document, vcenter_name="demo")
    assert problems_by_reservation(scope=Reservation.objects.all()) == {}
    assert services.plan_cluster(request=request).best is None  # the slot the VM left is held again, not sold
    per_gpu = Counter(gpu_of(r) for r in Reservation.objects.filter(status="active"))
    assert per_gpu[gpu_of(first)] >= 1 and per_gpu[other] <= 1
