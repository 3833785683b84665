"""Planning and reservations through the REST API."""

import json

import pytest
from rest_framework.test import APIClient

from inventory import services as inventory_services
from placement.models import Reservation
from tests.factories import UserFactory
from tests.vcsim import LABS

pytestmark = pytest.mark.django_db


@pytest.fixture
def api():
    inventory_services.import_inventory(document=json.loads((LABS / "demo.json").read_text()), vcenter_name="demo")
    client = APIClient()
    client.force_authenticate(UserFactory(username="ops", role="planner"))  # plans and reservations: planner role
    return client


def test_plan_endpoint_returns_the_design_contract(api):
    response = api.post("/api/plans/", {"gpus_per_vm": 2, "profile": "nvidia_h100xm-80c"}, format="json")
    assert response.status_code == 200, response.content
    doc = response.json()
    best = doc["candidates"][0]
    assert best["host"] == "esx-hgx-01.lab.local" and best["bottleneck"]["label"] == "NV18"
    assert {r["host"] for r in doc["rejected"]} == {"esx-a100-01.lab.local", "esx-h100nvl-01.lab.local",
                                                     "esx-l40s-01.lab.local"}  # fmt: skip


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"gpus_per_vm": 0}, "gpus_per_vm"),
        ({"gpus_per_vm": 17}, "gpus_per_vm"),
        ({"gpus_per_vm": 1, "profile": "grid_a100d-33c"}, "profile"),
        ({"gpus_per_vm": 1, "interconnect": "warp"}, "interconnect"),
        ({"gpus_per_vm": 2, "profile": "grid_a100d-20c", "interconnect": "nvlink"}, "interconnect"),
        ({}, "gpus_per_vm"),
    ],
)
def test_bad_plan_requests_name_the_field(api, payload, field):
    response = api.post("/api/plans/", payload, format="json")
    assert response.status_code == 400
    assert field in response.json()


def test_feasible_nowhere_is_an_empty_plan_with_reasons(api):
    response = api.post("/api/plans/", {"gpus_per_vm": 16}, format="json")
    assert response.status_code == 200
    assert response.json()["candidates"] == [] and len(response.json()["rejected"]) == 4


def test_reserve_list_and_release(api):
    created = api.post("/api/reservations/", {"gpus_per_vm": 2, "vm_name": "llm-9"}, format="json")
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["vm_name"] == "llm-9" and body["active"] and body["status"] == "active"
    again = api.post("/api/reservations/", {"gpus_per_vm": 2, "vm_name": "llm-9"}, format="json")
    assert again.status_code == 400 and "vm_name" in again.json()
    assert api.get("/api/reservations/").json()["count"] == 1
    assert api.delete(f"/api/reservations/{body['id']}/").status_code == 204
    assert Reservation.objects.get(pk=body["id"]).status == "released"


def test_nothing_fits_is_a_conflict(api):
    response = api.post("/api/reservations/", {"gpus_per_vm": 16, "vm_name": "huge"}, format="json")
    assert response.status_code == 409


def test_anonymous_is_refused():
    assert APIClient().post("/api/plans/", {"gpus_per_vm": 1}, format="json").status_code in (401, 403)
    assert APIClient().get("/api/reservations/").status_code in (401, 403)
