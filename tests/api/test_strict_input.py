"""Input the API cannot read is a 400 naming it, never silently ignored or coerced (trial A, M1, M2, L2, L3, L5):
unknown query parameters, unknown and read-only body fields, fractions in whole-number filters, empty values of
fixed-choice filters, an unknown ``?format=``, and numbers where text is expected."""

from __future__ import annotations

import pytest

from inventory.models import Host, VCenter
from tests import factories

pytestmark = pytest.mark.django_db

LISTS = ["/api/vcenters/", "/api/clusters/", "/api/hosts/", "/api/gpus/", "/api/vms/", "/api/vgpu-profiles/",
         "/api/domains/", "/api/sync-runs/", "/api/reservations/", "/api/whatif/"]  # fmt: skip


# ---------------------------------------------------------------------------------------------- query parameters


@pytest.mark.parametrize("path", LISTS)
def test_an_unknown_query_parameter_is_a_400_naming_it_and_what_the_list_takes(api, demo, path):
    response = api.get(path, {"clusterr": "1", "limit": "5"})
    assert response.status_code == 400, response.content
    body = response.json()
    assert list(body) == ["clusterr"]
    message = body["clusterr"][0]
    assert message.startswith("unknown query parameter; this list takes: ")
    assert {"format", "limit", "offset"} <= set(message.split(": ", 1)[1].split(", "))


def test_the_reports_typos_are_refused(api, demo):
    assert api.get("/api/hosts/", {"clusterr": 1}).status_code == 400
    response = api.get("/api/reservations/", {"hostid": 1})  # `host` and `host_id` both filter (trial F, 7)
    assert response.status_code == 400 and "host_id" in response.json()["hostid"][0]


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/gpus/", {"host": "1", "ordering": "model", "limit": "2", "offset": "1", "format": "json"}),
        ("/api/hosts/", {"min_free_gpus": "0", "mode": "passthrough", "stale": "false"}),
        ("/api/reservations/", {"status": "active", "vm_name": "x", "ordering": "-created", "needs_attention": "no"}),
        ("/api/vcenters/", {"q": "demo", "enabled": "", "format": "api"}),
    ],
)
def test_the_parameters_a_list_takes_still_work(api, demo, path, params):
    if "host" in params:
        params["host"] = str(Host.objects.order_by("pk").first().pk)
    assert api.get(path, params).status_code == 200


@pytest.mark.parametrize(
    ("path", "name", "choice"),
    [
        ("/api/domains/", "kind", "nvswitch"),
        ("/api/vcenters/", "last_sync_status", "success"),
        ("/api/gpus/", "state", "free"),
        ("/api/reservations/", "status", "active"),
        ("/api/sync-runs/", "status", "success"),
    ],
)
def test_an_empty_fixed_choice_filter_is_a_400_naming_the_choices(api, demo, path, name, choice):
    response = api.get(path, {name: ""})
    assert response.status_code == 400, response.content
    assert list(response.json()) == [name]
    assert response.json()[name][0].startswith("empty value: choose one of ") and choice in response.json()[name][0]


def test_an_empty_ordering_is_a_400_naming_the_fields(api, demo):
    response = api.get("/api/gpus/", {"ordering": ""})
    assert response.status_code == 400 and "model" in response.json()["ordering"][0]
    response = api.get("/api/reservations/", {"ordering": ""})
    assert response.status_code == 400 and "created" in response.json()["ordering"][0]


@pytest.mark.parametrize(
    ("path", "name", "value"),
    [
        ("/api/reservations/", "host_id", "1.5"),
        ("/api/reservations/", "host_id", "-1"),
        ("/api/reservations/", "host_id", "0"),
        ("/api/vgpu-profiles/", "framebuffer_gb", "0.5"),
        ("/api/vgpu-profiles/", "framebuffer_gb", "-3"),
    ],
)
def test_whole_number_filters_refuse_fractions_and_negatives(api, demo, path, name, value):
    response = api.get(path, {name: value})
    assert response.status_code == 400, response.content
    assert list(response.json()) == [name]


def test_whole_number_filters_still_filter(api, demo):
    host = Host.objects.filter(vcenter=demo).order_by("pk").first()
    factories.ReservationFactory(host=host, candidate={"host": host.name, "gpus": [], "score": 0})
    assert api.get("/api/reservations/", {"host_id": str(host.pk)}).json()["count"] == 1
    profiles = api.get("/api/vgpu-profiles/", {"framebuffer_gb": "80", "limit": 500}).json()["results"]
    assert profiles and {p["framebuffer_gb"] for p in profiles} == {80}


# ---------------------------------------------------------------------------------------------- ?format=


@pytest.mark.parametrize("value", ["xml", ""])
def test_the_topology_answers_400_naming_format_for_one_it_cannot_give(api, demo, value):
    host = Host.objects.filter(vcenter=demo).first()
    response = api.get(f"/api/hosts/{host.pk}/topology/", {"format": value})
    assert response.status_code == 400, response.content
    assert response["Content-Type"].startswith("application/json")
    assert list(response.json()) == ["format"] and "json, api, svg" in response.json()["format"][0]
    assert api.get(f"/api/hosts/{host.pk}/topology/", {"format": "svg"}).status_code == 200
    assert api.get(f"/api/hosts/{host.pk}/topology/", {"format": "json"}).status_code == 200


def test_a_list_answers_400_naming_format_for_one_it_cannot_give(api, demo):
    response = api.get("/api/gpus/", {"format": "xml"})
    assert response.status_code == 400 and "format" in response.json()


# ---------------------------------------------------------------------------------------------- bodies


def test_vcenter_bodies_refuse_unknown_and_read_only_fields(api_as):
    admin = api_as("admin")
    vcenter = factories.VCenterFactory(name="vc-a")
    response = admin.patch(f"/api/vcenters/{vcenter.pk}/", {"sync_interval_minute": 60, "enable": False}, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"sync_interval_minute", "enable"}
    assert response.json()["enable"][0].startswith("unknown field; accepted: name, url, username, password")
    vcenter.refresh_from_db()
    assert vcenter.enabled is True and vcenter.sync_interval_minutes != 60

    created = admin.post(
        "/api/vcenters/",
        {"name": "x8", "url": "https://h8/sdk", "username": "u", "password": "p", "id": 77,
         "last_sync_status": "success", "instance_uuid": "abc", "has_password": False},
        format="json",
    )  # fmt: skip
    assert created.status_code == 400
    assert set(created.json()) == {"id", "last_sync_status", "instance_uuid", "has_password"}
    assert created.json()["id"][0].startswith("read-only field")
    assert not VCenter.objects.filter(name="x8").exists()

    put = admin.put(
        f"/api/vcenters/{vcenter.pk}/",
        {"name": vcenter.name, "url": vcenter.url, "username": "u", "updated": "2020-01-01T00:00:00Z"},
        format="json",
    )
    assert put.status_code == 400 and list(put.json()) == ["updated"]

    shown = admin.get(f"/api/vcenters/{vcenter.pk}/").json()  # read, change one field, send it all back: fine
    again = admin.put(f"/api/vcenters/{vcenter.pk}/", {**shown, "username": "someone"}, format="json")
    assert again.status_code == 200, again.content
    assert again.json()["username"] == "someone" and again.json()["id"] == vcenter.pk


def test_a_sync_run_request_refuses_unknown_fields(api_as):
    vcenter = factories.VCenterFactory(name="vc-b")
    response = api_as("admin").post("/api/sync-runs/", {"vcenter": vcenter.pk, "bogus": 1}, format="json")
    assert response.status_code == 400 and list(response.json()) == ["bogus"]


@pytest.mark.parametrize(
    ("field", "value"), [("password", 12345), ("username", 7), ("name", 3), ("url", 1.5), ("password", True)]
)
def test_vcenter_text_fields_refuse_json_numbers(api_as, field, value):
    body = {"name": "vc-n", "url": "https://vc-n.example/sdk", "username": "u", "password": "p", field: value}
    response = api_as("admin").post("/api/vcenters/", body, format="json")
    assert response.status_code == 400, response.content
    assert list(response.json()) == [field] and response.json()[field][0].startswith("Not a valid string")
    assert not VCenter.objects.filter(name__in=["vc-n", str(value)]).exists()


def test_an_smi_capture_refuses_a_number_for_its_text(api_as, demo):
    host = Host.objects.filter(vcenter=demo).first()
    response = api_as("planner").post(f"/api/hosts/{host.pk}/smi-capture/", {"text": 123}, format="json")
    assert response.status_code == 400 and response.json()["text"][0].startswith("Not a valid string")


def test_plan_and_reservation_text_fields_refuse_numbers(api_as, demo):
    planner = api_as("planner")
    response = planner.post("/api/plans/", {"gpus_per_vm": 1, "profile": 80, "board": 1}, format="json")
    assert response.status_code == 400 and set(response.json()) == {"profile", "board"}
    response = planner.post("/api/reservations/", {"gpus_per_vm": 1, "vm_name": 42}, format="json")
    assert response.status_code == 400 and list(response.json()) == ["vm_name"]
    response = planner.post("/api/plans/", {"gpus_per_vm": 1, "clusters": [1.5, True]}, format="json")
    assert response.status_code == 400 and "clusters" in response.json()
