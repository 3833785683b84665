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
from inventory.models import GpuConsumer, Host
from placement import reseat, services
from placement.models import Reservation, ReservationItem
from placement.reseat import reseat_reservations
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
        f"On {HGX} (vCenter demo), the reserved GPU {crowded} can no longer take it and the host has no other room "
        f"for it (5 of 8 GPUs are full with this profile (same-size maximum), e.g. GPU {crowded} holds 2 x "
        f"{PROFILE} (VM intruder, the reservation for {reservations[0].vm_name}), its maximum 2; 3 of 8 GPUs are full "
        "with another profile, e.g. GPU 0000:9a:00.0 holds 1 x nvidia_h100xm-80c (VM llama-70b-tp2-a), its maximum "
        "1): its VM may not power on there"
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


L40S = "esx-l40s-01.lab.local"  # 4 L40S in passthrough: 0000:38:00.0 held by embed-svc; 0000:98:00.0 alone on node 1
A30 = "esx-a30-01.lab.local"


def add_vm(document: dict, host_name: str, vm: str, pci: str | None, kind: str, profile: str | None, cpus: int = 8):
    host = next(h for h in document["hosts"] if h["name"] == host_name)
    if pci is not None:
        gpu = next(g for g in host["gpus"] if g["pci_id"] == pci)
        gpu["consumers"].append({"vm": vm, "kind": kind, "profile": profile})
    document["vms"].append(
        {"name": vm, "host": host_name, "power_state": "poweredOn", "cpus": cpus, "memory_mb": 8192,
         "memory_reservation_mb": 8192}
    )  # fmt: skip


def reserve_dynamic(vm_name: str, **fields) -> tuple[Reservation, object]:
    """A 1-GPU Dynamic DirectPath reservation on the L40S host, with the candidate it took."""
    request = services.build_request(gpus_per_vm=1, consumption="dynamic-passthrough", board="L40S-48GB", **fields)
    best = services.plan_cluster(request=request).best
    return services.accept_candidate(request=request, candidate=best, vm_name=vm_name), best


def test_a_dynamic_directpath_reservation_moves_when_vsphere_gave_its_gpu_to_another_vm(inventory):
    """A Dynamic DirectPath VM gets any free device matching its label at power-on: vSphere, not the admin, picks."""
    held, best = reserve_dynamic("dyn-1")
    predicted = gpu_of(held)
    document = demo()
    add_vm(document, best.host, "dyn-other", predicted, "dynamic-passthrough", None)
    inventory_services.import_inventory(document=document, vcenter_name="demo")
    held.refresh_from_db()
    assert held.status == Reservation.Status.ACTIVE
    assert gpu_of(held) != predicted and held.candidate["reseated_from"] == [predicted]
    assert problems_by_reservation(scope=Reservation.objects.all()) == {}  # it no longer sits under dyn-other


def test_a_move_to_another_numa_node_says_the_affinity_changed(inventory, admin_client):
    held, _ = reserve_dynamic("dyn-numa")
    before = held.candidate["numa_nodes"]
    document = demo()
    # vSphere gave every free GPU of the reservation's NUMA node to other VMs: only the other node has room
    host = next(h for h in document["hosts"] if h["name"] == L40S)
    node_of = {g["pci_id"]: g["numa_node"] for g in host["gpus"]}
    for i, g in enumerate(host["gpus"]):
        if node_of[g["pci_id"]] == before[0] and not g["consumers"]:
            add_vm(document, L40S, f"dyn-taker-{i}", g["pci_id"], "dynamic-passthrough", None)
    inventory_services.import_inventory(document=document, vcenter_name="demo")
    held.refresh_from_db()
    assert held.status == Reservation.Status.ACTIVE and held.candidate["reseated_numa_from"] == before
    after = held.candidate["numa_nodes"]
    assert after and after != before
    settings = admin_client.get(f"/api/reservations/{held.pk}/settings/").json()
    assert settings["reseated"]["numa_nodes_before"] == before
    assert settings["vm_settings"]["numa.nodeAffinity"] == ",".join(map(str, after))
    body = admin_client.get(f"/reservations/{held.pk}/").content.decode()
    assert 'id="reseated-numa"' in body and f"set numa.nodeAffinity to {','.join(map(str, after))}" in body


def test_a_mig_reservation_whose_slot_a_vm_now_holds_moves_off_that_slot(inventory):
    """vSphere started a VM at the very MIG slot a reservation was predicted on (its slot read from mig -lgi): the
    reservation takes the GPU's other free slot; keeping the stale slot made the host unreadable to every MIG plan."""
    request = services.build_request(gpus_per_vm=1, consumption="mig", profile="grid_a30-2-12c")
    held = [services.accept_candidate(request=request, candidate=services.plan_cluster(request=request).best,
                                      vm_name=f"mig-{i}") for i in range(2)]  # fmt: skip
    (alone,) = [r for r in held if gpu_of(r) == "0000:c1:00.0"]  # the empty A30: 2 slots of 2g, one reserved
    item = alone.items.get()
    document = demo()
    add_vm(document, A30, "mig-intruder", item.pci_id, "mig", "grid_a30-2-12c")
    inventory_services.import_inventory(document=document, vcenter_name="demo")
    assert alone.items.get().mig_slot == item.mig_slot  # the intruder's slot unknown: inferred beside it
    GpuConsumer.objects.filter(vm__name="mig-intruder").update(mig_slot=item.mig_slot)  # as import-vgpu records it
    assert reseat_reservations() == {"moved": 1, "no_room": 0}
    moved = alone.items.get()
    assert moved.pci_id == item.pci_id and moved.mig_slot != item.mig_slot
    alone.refresh_from_db()
    assert alone.candidate["reseated_from"] == [f"{item.pci_id} (MIG slot {item.mig_slot})"]
    assert problems_by_reservation(scope=Reservation.objects.all()) == {}
    plan = services.plan_cluster(request=request)  # the host is still read (its other GPU is full)
    (a30,) = [r for r in plan.rejected if r.host == A30]
    assert not any("cannot be" in reason or "overlapping" in reason for reason in a30.reasons), a30.reasons


def test_a_reserved_vgpu_vm_that_drs_started_on_another_host_ends_the_hold(inventory):
    """vSphere picks a vGPU VM's host at power-on: the reservation is consumed where the VM started, and the planned
    host gets its GPU, vCPUs and memory back (they stayed held until the reservation expired)."""
    request = services.build_request(gpus_per_vm=1, consumption="vgpu", profile="grid_a100d-10c")
    best = services.plan_cluster(request=request).best
    held = services.accept_candidate(request=request, candidate=best, vm_name="drs-vm")
    document = demo()
    twin = json.loads(json.dumps(next(h for h in document["hosts"] if h["name"] == best.host)))
    twin["name"] = "esx-a100-02.lab.local"
    for g in twin["gpus"]:
        g["consumers"] = []
    document["hosts"].append(twin)
    add_vm(document, twin["name"], "drs-vm", twin["gpus"][0]["pci_id"], "vgpu", "grid_a100d-10c")
    inventory_services.import_inventory(document=document, vcenter_name="demo")
    held.refresh_from_db()
    assert held.status == Reservation.Status.CONSUMED
    assert held.close_reason == (
        f"its VM drs-vm started on host {twin['name']} instead (vCenter demo: vSphere picked the host at power-on), "
        f"so the hold on {best.host} ended"
    )
    again = services.plan_cluster(request=request, clusters=[]).candidates
    assert any(c.host == best.host and c.gpus[0].pci_id == gpu_of(held) for c in again)  # its GPU is free again


def test_a_host_in_maintenance_keeps_its_reservations_as_they_are(inventory):
    reservations = fill(4)
    before = {r.pk: gpu_of(r) for r in reservations}
    document = demo()
    next(h for h in document["hosts"] if h["name"] == HGX)["maintenance"] = True
    inventory_services.import_inventory(document=document, vcenter_name="demo")
    assert {r.pk: gpu_of(r) for r in reservations} == before
    assert not any(
        r.candidate.get("reseat_problem") or r.candidate.get("reseated_from") for r in Reservation.objects.all()
    )


def test_vcpus_given_back_are_counted_from_what_the_host_really_carries(inventory):
    """A host whose VMs already take more vCPUs than it has (cpu_free clamped at 0): the re-seat does not find room
    by adding the reservation's vCPUs back onto the clamp."""
    held, best = reserve_dynamic("dyn-cpu", vcpus=16, memory_mb=16384)
    predicted = gpu_of(held)
    document = demo()
    add_vm(document, best.host, "dyn-other", predicted, "dynamic-passthrough", None)
    for i in range(3):  # 3 x 64 vCPUs beside embed-svc's 8 on 128 logical CPUs: 72 over
        add_vm(document, best.host, f"busy-{i}", None, "", None, cpus=64)
    inventory_services.import_inventory(document=document, vcenter_name="demo")
    held.refresh_from_db()
    assert gpu_of(held) == predicted  # no room: it keeps its GPU and says why
    problems = problems_by_reservation(scope=Reservation.objects.all())[held.pk]
    assert any("host has 0 free vCPUs" in p for p in problems), problems


def test_a_reservation_released_while_it_is_re_seated_is_not_rewritten(inventory, monkeypatch):
    held, best = reserve_dynamic("dyn-released")
    predicted = gpu_of(held)
    document = demo()
    add_vm(document, best.host, "dyn-other", predicted, "dynamic-passthrough", None)
    monkeypatch.setattr("placement.receivers.reseat_reservations", lambda **kw: {})
    inventory_services.import_inventory(document=document, vcenter_name="demo")
    real = reseat.fabric_snapshot

    def released_meanwhile(**kwargs):
        services.release_reservation(reservation=held)  # a release that commits while the host is replayed
        return real(**kwargs)

    monkeypatch.setattr(reseat, "fabric_snapshot", released_meanwhile)
    assert reseat.reseat_reservations() == {"moved": 0, "no_room": 0}
    held.refresh_from_db()
    assert held.status == Reservation.Status.RELEASED
    assert gpu_of(held) == predicted and "reseated_from" not in held.candidate


A30_VGPU_Q = """GPU 00000000:41:00.0
    Active vGPUs                          : 1
    vGPU ID                               : 3251637600
        VM Name                           : rag-embed
        vGPU Name                         : GRID A30-2-12C
        GPU Instance ID                   : 1
        Placement ID                      : N/A
"""
A30_LGI = """+-------------------------------------------------------+
| GPU instances:                                        |
| GPU   Name             Profile  Instance   Placement  |
|                          ID       ID       Start:Size |
|=======================================================|
|   0  MIG 2g.12gb          5        1          0:2     |
+-------------------------------------------------------+
"""


def test_an_import_of_real_mig_slots_re_seats_the_holds_predicted_beside_inferred_ones(inventory, tmp_path, capsys):
    """Trial G #3: 1g holds were predicted beside rag-embed's inferred slot (2); the import puts rag-embed at 0-1, where
    a hold sat. Before, the host then read as unreadable to every MIG plan and the holds reported no problem."""
    from django.core.management import call_command

    request = services.build_request(
        gpus_per_vm=1, consumption="mig", profile="grid_a30-1-6c", clusters=["pcie-cluster"]
    )
    held = [
        services.accept_candidate(
            request=request, candidate=services.plan_cluster(request=request).best, vm_name=f"one-{i}"
        )
        for i in range(2)
    ]
    beside = [r.items.get() for r in held if gpu_of(r) == "0000:41:00.0"]
    assert beside and any(i.mig_slot in (0, 1) for i in beside)  # inferred: rag-embed at slot 2
    (tmp_path / "q.txt").write_text(A30_VGPU_Q)
    (tmp_path / "lgi.txt").write_text(A30_LGI)
    call_command(
        "topology", "import-vgpu", str(tmp_path / "q.txt"), "--host", A30, "--mig-lgi", str(tmp_path / "lgi.txt")
    )
    out = capsys.readouterr().out
    assert "of the advisor moved to the room the imported offsets leave" in out
    for r in held:
        item = r.items.get()
        assert not (item.pci_id == "0000:41:00.0" and item.mig_slot in (0, 1)), (item.pci_id, item.mig_slot)
    assert problems_by_reservation(scope=Reservation.objects.all()) == {}
    doc = services.plan_cluster(request=request)
    assert any(c.host == A30 for c in doc.candidates), [r.reasons for r in doc.rejected if r.host == A30]
