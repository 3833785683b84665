"""A reservation named like a live VM that already uses GPUs in that vCenter: the API answers 409 ``name_in_use`` with
the VM's id, so a pipeline can tell it from bad input (it was a 400 on vm_name); the page still shows it on vm_name."""

from __future__ import annotations

import pytest

from inventory.models import GpuConsumer
from placement.models import Reservation
from tests.api.support import token_client
from tests.factories import UserFactory
from tests.placement.test_views import HX, candidate_fields

pytestmark = pytest.mark.django_db


@pytest.fixture
def planner(demo):
    return UserFactory(role="planner")


def test_the_name_of_a_vm_using_gpus_is_a_409_name_in_use_with_the_vm(planner):
    vm = GpuConsumer.objects.filter(vm__stale=False).select_related("vm").first().vm
    response = token_client(planner).post("/api/reservations/", {"gpus_per_vm": 1, "vm_name": vm.name}, format="json")
    assert response.status_code == 409, response.content
    body = response.json()
    assert body["code"] == "name_in_use" and body["vm_id"] == vm.pk
    assert body["detail"].startswith(f"{vm.name!r} is a VM in vCenter {vm.vcenter.name} on ")
    assert token_client(planner).get(f"/api/vms/{body['vm_id']}/").json()["name"] == vm.name
    assert not Reservation.objects.exists()


def test_the_plan_page_shows_it_on_the_vm_name_field(planner, client):
    vm = GpuConsumer.objects.filter(vm__stale=False).select_related("vm").first().vm
    client.force_login(planner)
    fields = candidate_fields(client, {"gpus_per_vm": "1", "interconnect": "any", "vcpus": "0", "memory_mb": "0"})
    response = client.post("/placement/reserve/", {**fields, "vm_name": vm.name}, **HX)
    assert response.status_code == 400
    html = response.content.decode()
    assert 'id="error-vm_name"' in html and f"is a VM in vCenter {vm.vcenter.name} on " in html
    assert not Reservation.objects.exists()
