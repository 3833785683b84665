"""A reservation's settings carry the vSphere identifiers a pipeline (Terraform's vSphere provider, Ansible's
vmware_guest) needs to create the VM (trial F-15): the host's moref, its datacenter and cluster, and the vCenter's
server, port and instance UUID, all from the stored inventory; what it does not hold is null, never made up, and the
vCenter's credentials never appear."""

from __future__ import annotations

import pytest

from inventory.models import Cluster, Host, VCenter
from placement.models import Reservation
from tests.api.support import SECRET

pytestmark = pytest.mark.django_db


def reserve(planner) -> dict:
    response = planner.post("/api/reservations/", {"gpus_per_vm": 2, "vm_name": "tf-llm"}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def settings_of(client, reservation: dict) -> dict:
    answer = client.get(f"/api/reservations/{reservation['id']}/settings/")
    assert answer.status_code == 200
    return answer.json()


def test_the_settings_name_the_host_cluster_datacenter_and_vcenter(api_as, demo):
    reservation = reserve(api_as("planner"))
    host = Host.objects.select_related("cluster__datacenter").get(pk=reservation["host_id"])
    assert host.cluster and host.cluster.datacenter  # the demo lab's hosts are in clusters of one datacenter
    VCenter.objects.filter(pk=demo.pk).update(
        url="https://VC01.example.com:8443/sdk",
        instance_uuid="1a2b3c4d-0000-4000-8000-00000000abcd",
        username="svc-advisor-reader@vsphere.local",
    )
    demo.set_password(SECRET)
    demo.save(update_fields=["password_encrypted"])
    doc = settings_of(api_as("viewer"), reservation)
    assert doc["host"] == {
        "id": host.pk, "name": host.name, "moref": host.moref, "vcenter": demo.name,
        "datacenter": host.cluster.datacenter.name, "cluster": host.cluster.name, "cluster_id": host.cluster.pk,
        "cluster_moref": host.cluster.moref,
    }  # fmt: skip
    assert doc["vcenter"] == {
        "id": demo.pk, "name": demo.name, "url": "https://vc01.example.com:8443/sdk", "server": "vc01.example.com",
        "port": 8443, "instance_uuid": "1a2b3c4d-0000-4000-8000-00000000abcd",
    }  # fmt: skip
    text = str(doc)
    assert SECRET not in text and "svc-advisor-reader" not in text


def test_what_the_inventory_does_not_hold_is_null(api_as, demo):
    reservation = reserve(api_as("planner"))
    host = Host.objects.get(pk=reservation["host_id"])
    Cluster.objects.filter(pk=host.cluster_id).update(datacenter=None)
    doc = settings_of(api_as("viewer"), reservation)
    assert doc["host"]["datacenter"] is None and doc["host"]["cluster"] == host.cluster.name
    # an imported vCenter: registered with a placeholder address that never resolves, and no instance UUID
    assert doc["vcenter"] == {
        "id": demo.pk,
        "name": demo.name,
        "url": None,
        "server": None,
        "port": None,
        "instance_uuid": None,
    }
    Host.objects.filter(pk=host.pk).update(cluster=None)
    doc = settings_of(api_as("viewer"), reservation)
    assert [doc["host"][k] for k in ("datacenter", "cluster", "cluster_id", "cluster_moref")] == [None] * 4
    assert doc["host"]["moref"] == host.moref


def test_a_reservation_whose_vcenter_was_removed_keeps_only_the_names(api_as, demo):
    reservation = reserve(api_as("planner"))
    demo.delete()
    doc = settings_of(api_as("viewer"), reservation)
    assert doc["host"]["id"] is None and doc["host"]["moref"] is None and doc["host"]["cluster_id"] is None
    assert doc["vcenter"] == {
        "id": None,
        "name": "demo-lab",
        "url": None,
        "server": None,
        "port": None,
        "instance_uuid": None,
    }
    assert Reservation.objects.get(pk=reservation["id"]).vcenter_name == "demo-lab"
    # the history stays searchable by the removed vCenter's name
    found = api_as("viewer").get("/api/reservations/", {"vcenter": "DEMO-lab"})
    assert found.status_code == 200 and [r["id"] for r in found.json()["results"]] == [reservation["id"]]
