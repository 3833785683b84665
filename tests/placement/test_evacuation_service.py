"""`plan_host_evacuation` and `plan --evacuate`: the stored VMs' vCPUs and memory are admitted on the targets."""

from __future__ import annotations

import copy
import io
import json

import pytest
from django.core.management import CommandError, call_command

from inventory import services as inventory_services
from inventory.models import Host, VirtualMachine
from placement import services
from placement.api.evacuation import evacuation_document
from tests.vcsim import LABS

pytestmark = pytest.mark.django_db

SOURCE = "esx-a100-01.lab.local"
TWIN = "esx-a100-02.lab.local"


@pytest.fixture
def a100_pair():
    """The demo lab plus an empty twin of the A100 host (2 x A100 80 GB, 64 threads, 768 GB) in its cluster."""
    document = json.loads((LABS / "demo.json").read_text())
    twin = copy.deepcopy(next(h for h in document["hosts"] if h["name"] == SOURCE))
    twin["name"] = TWIN
    for gpu in twin["gpus"]:
        gpu["consumers"] = []
    document["hosts"].append(twin)
    inventory_services.import_inventory(document=document, vcenter_name="lab")


def evacuate() -> dict:
    return services.plan_host_evacuation(host_name=SOURCE, vcenter="lab").to_dict()


def moved(doc: dict) -> dict[str, str | None]:
    return {m["vm"]: (m["target"]["host"] if m["target"] else None) for m in doc["moves"]}


def test_vgpu_vms_move_to_the_twin_with_their_vcpus_and_memory(a100_pair):
    result = services.plan_host_evacuation(host_name=SOURCE, vcenter="lab")
    assert result.host_id == Host.objects.get(name=SOURCE).pk and result.vcenter == "lab"
    by_vm = {m.vm: m for m in result.moves}
    assert {vm for vm, m in by_vm.items() if m.target} == {"chat-a", "chat-b"}
    assert all(m.target.host == TWIN and m.target.host_id == Host.objects.get(name=TWIN).pk for m in result.moves)
    assert (by_vm["chat-a"].request.vcpus, by_vm["chat-a"].request.memory_mb) == (8, 65536)
    assert result.complete and result.search.method == "exact" and result.search.optimal


def test_admission_refuses_a_target_without_the_vcpus(a100_pair):
    VirtualMachine.objects.filter(name="chat-a").update(vcpus=100)
    doc = evacuate()
    assert moved(doc) == {"chat-a": None, "chat-b": TWIN}
    stuck = doc["cannot_move"][0]
    assert stuck["vm"] == "chat-a"
    # 100 vCPUs on a 64-thread host: vSphere powers on no such VM, wherever the others went
    assert any(f"{TWIN}: the VM's 100 vCPUs exceed the host's 64 logical CPUs" in r for r in stuck["reasons"])
    assert not any("would fit if moved alone" in r for r in stuck["reasons"])


def test_admission_refuses_a_target_without_the_memory_reservation(a100_pair):
    VirtualMachine.objects.filter(name="chat-b").update(memory_mb=1024 * 1024, memory_reservation_mb=1024 * 1024)
    doc = evacuate()
    assert moved(doc) == {"chat-a": TWIN, "chat-b": None}
    assert any("needs a full 1024 GiB reservation" in r for r in doc["cannot_move"][0]["reasons"])


def test_vms_already_running_on_the_target_count_against_admission(a100_pair):
    twin = Host.objects.get(name=TWIN)
    VirtualMachine.objects.create(
        vcenter=twin.vcenter, moref="vm-busy", name="cpu-hog", host=twin, power_state="poweredOn", vcpus=52
    )
    doc = evacuate()  # 12 vCPUs left on the twin: one 8-vCPU VM fits, not two
    assert sorted(v or "-" for v in moved(doc).values()) == ["-", TWIN]
    left = doc["cannot_move"][0]
    assert any("12 free vCPUs" not in r and "free vCPUs" in r for r in left["reasons"])  # what is left after the move
    assert any("would fit if moved alone" in r for r in left["reasons"])


def test_plan_command_evacuate_json_carries_the_search_and_what_cannot_move(a100_pair):
    VirtualMachine.objects.filter(name="chat-a").update(vcpus=100)
    out = io.StringIO()
    with pytest.raises(CommandError, match=r"^--evacuate: 1 of 2 GPU VMs cannot move$"):
        call_command("plan", "--evacuate", SOURCE, "--vcenter", "lab", "--json", stdout=out)
    doc = json.loads(out.getvalue())
    assert doc["host"] == SOURCE and doc["vcenter"] == "lab" and doc["host_id"] == Host.objects.get(name=SOURCE).pk
    assert doc["search"]["method"] == "exact" and doc["complete"] is False
    assert [c["vm"] for c in doc["cannot_move"]] == ["chat-a"]
    text = io.StringIO()
    with pytest.raises(CommandError, match=r"^--evacuate: 1 of 2 GPU VMs cannot move$"):
        call_command("plan", "--evacuate", SOURCE, stdout=text)
    lines = text.getvalue().splitlines()
    assert lines[0] == f"Evacuating {SOURCE} (lab): 1 of 2 GPU VMs can move"
    assert f"-> chat-b: {TWIN} GPUs" in text.getvalue() and "x  chat-a: cannot move" in lines


@pytest.fixture
def viewer(client):
    """Any signed-in user reads an evacuation plan: it reserves and changes nothing."""
    from django.contrib.auth import get_user_model

    client.force_login(get_user_model().objects.create_user("viewer", password="a long enough password"))
    return client


def test_the_api_gives_the_evacuation_by_host_id(a100_pair, viewer):
    VirtualMachine.objects.filter(name="chat-a").update(vcpus=100)
    source = Host.objects.get(name=SOURCE)
    response = viewer.get(f"/api/hosts/{source.pk}/evacuation/")
    assert response.status_code == 200
    doc = response.json()
    # the service's answer with each entry's kind, as the CLI prints it
    expected = evacuation_document(services.plan_host_evacuation(host=source), source)
    assert doc == json.loads(json.dumps(expected))
    assert all(m["kind"] == "vm" and m["vm_name"] == m["vm"] for m in doc["moves"])
    assert moved(doc) == {"chat-a": None, "chat-b": TWIN} and doc["complete"] is False
    assert viewer.get("/api/hosts/999999/evacuation/").status_code == 404
    assert viewer.post(f"/api/hosts/{source.pk}/evacuation/").status_code == 405


def test_the_evacuation_is_in_the_schema():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    operation = schema["paths"]["/api/hosts/{id}/evacuation/"]["get"]
    assert operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/Evacuation")


def test_the_evacuation_page_says_what_moves_where_and_what_cannot(a100_pair, viewer):
    VirtualMachine.objects.filter(name="chat-a").update(vcpus=100)
    source, twin = Host.objects.get(name=SOURCE), Host.objects.get(name=TWIN)
    response = viewer.get(f"/inventory/hosts/{source.pk}/evacuation/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "1 of 2 GPU VMs can move; 1 cannot" in body
    assert f'href="/inventory/hosts/{twin.pk}/"' in body and "cannot move" in body
    assert "the VM&#x27;s 100 vCPUs exceed the host&#x27;s 64 logical CPUs" in body
    assert viewer.get(f"/inventory/hosts/{twin.pk}/evacuation/").content.decode().count("nothing to move") == 1
    assert viewer.get("/inventory/hosts/999999/evacuation/").status_code == 404


def test_the_host_page_links_to_its_evacuation(a100_pair, viewer):
    source = Host.objects.get(name=SOURCE)
    assert (
        f'href="/inventory/hosts/{source.pk}/evacuation/"'
        in viewer.get(f"/inventory/hosts/{source.pk}/").content.decode()
    )
