"""A pipeline with a token gets what the reservation page hands an admin: the vSphere settings and the PowerCLI
script (the page's downloads answered a token with a redirect to the login page: trial A, M3)."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def reserve(planner) -> dict:
    response = planner.post("/api/reservations/", {"gpus_per_vm": 2, "vm_name": "pipeline-llm"}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_a_token_gets_the_settings_and_script_the_page_gives(api_as, demo):
    reservation = reserve(api_as("planner"))
    viewer = api_as("viewer")
    settings = viewer.get(f"/api/reservations/{reservation['id']}/settings/")
    assert settings.status_code == 200
    doc = settings.json()
    assert doc["reservation"]["vm_name"] == "pipeline-llm" and doc["held"] is True and doc["not_runnable"] == []
    assert [d["pci_id"] for d in doc["devices"]] == sorted(g["pci_id"] for g in reservation["candidate"]["gpus"])
    assert "numa.nodeAffinity" in doc["vm_settings"] and doc["powercli"].startswith("#")
    script = viewer.get(f"/api/reservations/{reservation['id']}/powercli/")
    assert script.status_code == 200 and script["Content-Type"] == "text/plain; charset=utf-8"
    assert script.content.decode() == doc["powercli"]
    page = Client()
    page.force_login(UserFactory(role="viewer"))
    download = page.get(f"/reservations/{reservation['id']}/", {"format": "json"}).json()
    assert download == doc  # one builder for the page's download and the API


def test_a_released_reservation_script_starts_with_a_throw(api_as, demo):
    planner = api_as("planner")
    reservation = reserve(planner)
    assert planner.delete(f"/api/reservations/{reservation['id']}/").status_code == 204
    doc = planner.get(f"/api/reservations/{reservation['id']}/settings/").json()
    assert doc["held"] is False and doc["not_runnable"]
    assert planner.get(f"/api/reservations/{reservation['id']}/powercli/").content.decode().startswith("throw ")


def test_the_handout_needs_a_token_and_an_existing_reservation(api_as, demo):
    from rest_framework.test import APIClient

    reservation = reserve(api_as("planner"))
    assert APIClient().get(f"/api/reservations/{reservation['id']}/settings/").status_code == 401
    assert APIClient().get(f"/api/reservations/{reservation['id']}/powercli/").status_code == 401
    missing = api_as("viewer").get("/api/reservations/999999/powercli/")
    assert missing.status_code == 404 and missing["Content-Type"].startswith("application/json")
