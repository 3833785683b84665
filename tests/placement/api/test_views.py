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
    # two vGPUs added one by one get no NVLink P2P (fix D); a device group of them keeps NV18
    assert best["host"] == "esx-hgx-01.lab.local" and best["bottleneck"] is None
    assert best["interconnect"] == "no NVLink P2P (separately assigned vGPUs)"
    group = {"gpus_per_vm": 2, "consumption": "device-group", "profile": "nvidia_h100xm-80c"}
    grouped = api.post("/api/plans/", group, format="json").json()["candidates"][0]
    assert grouped["host"] == "esx-hgx-01.lab.local" and grouped["bottleneck"]["label"] == "NV18"
    assert {r["host"] for r in doc["rejected"]} == {"esx-a100-01.lab.local", "esx-h100nvl-01.lab.local",
                                                     "esx-l40s-01.lab.local", "esx-a30-01.lab.local"}  # fmt: skip


@pytest.mark.reliability("api input", "bad plan and reservation requests")
@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"gpus_per_vm": 0}, "gpus_per_vm"),
        ({"gpus_per_vm": 17}, "gpus_per_vm"),
        ({"gpus_per_vm": 1, "profile": "grid_a100d-33c"}, "profile"),
        ({"gpus_per_vm": 1, "interconnect": "warp"}, "interconnect"),
        ({"gpus_per_vm": 2, "profile": "grid_a100d-20c", "interconnect": "nvlink"}, "interconnect"),
        ({}, "gpus_per_vm"),
        ({"gpus_per_vm": 1, "memory_mb": 99999999999999999999}, "memory_mb"),
        ({"gpus_per_vm": 1, "memory_mb": 24 * 1024 * 1024 + 1}, "memory_mb"),
        ({"gpus_per_vm": 1, "vcpus": 769}, "vcpus"),
        ({"gpus_per_vm": 1, "vms": 257}, "vms"),
        ({"gpus_per_vm": 1, "min_framebuffer_gb": 10**6}, "min_framebuffer_gb"),
        ({"gpus_per_vm": 1, "profle": "grid_a100d-10c"}, "profle"),
        ({"gpus_per_vm": 1, "host_id": 1}, "host_id"),
    ],
)
def test_bad_plan_requests_name_the_field(api, payload, field):
    response = api.post("/api/plans/", payload, format="json")
    assert response.status_code == 400
    assert field in response.json()


def test_every_out_of_range_field_is_named_at_once_and_the_schema_shows_the_bounds(api):
    response = api.post("/api/plans/", {"gpus_per_vm": 1, "vcpus": 1000, "memory_mb": 99999999999}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert "vSphere's maximum per VM" in body["vcpus"][0] and "24 TB" in body["memory_mb"][0]
    schema = api.get("/api/schema/", {"format": "json"}).json()["components"]["schemas"]["PlanRequestRequest"][
        "properties"
    ]
    assert schema["vcpus"]["maximum"] == 768 and schema["memory_mb"]["maximum"] == 24 * 1024 * 1024
    assert schema["min_framebuffer_gb"]["maximum"] == 1024


@pytest.mark.reliability("api input", "bad plan and reservation requests")
@pytest.mark.parametrize(
    ("payload", "field", "message"),
    [
        ({"vm_name": "nl\r\nWrite-Host PWNED #"}, "vm_name", "control or invisible characters (U+000D"),
        ({"vm_name": "   "}, "vm_name", "must not be blank"),
        ({"vm_name": "x" * 81}, "vm_name", "80 characters"),
        ({"vm_name": "x" * 79, "vms": 2}, "vm_name", "at most 80 characters with the replica suffix -2"),
        ({"vm_name": "ok", "ttl_minutes": 0}, "ttl_minutes", "greater than or equal to 1"),
        ({"vm_name": "ok", "host_id": 1}, "pci_ids", "required with host_id"),
        ({"vm_name": "ok", "pci_ids": ["0000:18:00.0"]}, "host_id", "required with pci_ids"),
        ({"vm_name": "ok", "host_id": 1, "pci_ids": ["0000:18:00.0"], "vms": 2}, "host_id", "only with vms 1"),
        ({"vm_name": "ok", "host_id": 1, "pci_ids": ["18:00.0"]}, "pci_ids", "not a PCI address"),
        ({"vm_name": "ok", "host_id": 1, "pci_ids": ["0000:18:00.0", "0000:18:00.0"]}, "pci_ids", "named twice"),
        ({"vm_name": "ok", "host_id": 1, "pci_ids": ["0000:18:00.0", "0000:19:00.0"]}, "pci_ids", "gpus_per_vm 1"),
        ({"vm_name": "ok", "host_id": 0, "pci_ids": ["0000:18:00.0"]}, "host_id", "greater than or equal to 1"),
    ],
)
def test_bad_reservations_name_the_field_and_store_nothing(api, payload, field, message):
    response = api.post("/api/reservations/", {"gpus_per_vm": 1, **payload}, format="json")
    assert response.status_code == 400
    assert message in " ".join(response.json()[field])
    assert not Reservation.objects.exists()


def test_mig_replicas_share_a_gpu_as_separate_reservations_do(api):
    """The A30 host has 6 free 1g slots over two GPUs: three replicas fit, as three separate reservations do."""
    payload = {"gpus_per_vm": 1, "profile": "grid_a30-1-6c", "vms": 3, "vm_name": "mig-rep"}
    response = api.post("/api/reservations/", payload, format="json")
    assert response.status_code == 201, response.content
    slots = [(r["candidate"]["gpus"][0]["pci_id"], r["candidate"]["gpus"][0]["mig_slot"]) for r in response.json()]
    assert len(set(slots)) == 3
    assert len({pci for pci, _ in slots}) == 2  # distinct GPUs first, then a shared one


@pytest.mark.reliability("api input", "nothing fits (plan empty, reservation 409 with the reason)")
def test_feasible_nowhere_is_an_empty_plan_with_reasons(api):
    response = api.post("/api/plans/", {"gpus_per_vm": 16}, format="json")
    assert response.status_code == 200
    assert response.json()["candidates"] == [] and len(response.json()["rejected"]) == 5


def test_reserve_list_and_release(api):
    created = api.post("/api/reservations/", {"gpus_per_vm": 2, "vm_name": "llm-9"}, format="json")
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["vm_name"] == "llm-9" and body["active"] and body["status"] == "active"
    again = api.post("/api/reservations/", {"gpus_per_vm": 2, "vm_name": "llm-9"}, format="json")
    # the name is held: a conflict with what is stored (a pipeline's retry finds its reservation), not bad input
    assert again.status_code == 409, again.content
    assert again.json()["code"] == "name_taken" and again.json()["reservation_id"] == body["id"]
    assert "'llm-9' already holds an active reservation" in again.json()["detail"]
    assert api.get("/api/reservations/").json()["count"] == 1
    assert api.delete(f"/api/reservations/{body['id']}/").status_code == 204
    assert Reservation.objects.get(pk=body["id"]).status == "released"


@pytest.mark.reliability("api input", "nothing fits (plan empty, reservation 409 with the reason)")
def test_nothing_fits_is_a_conflict(api):
    response = api.post("/api/reservations/", {"gpus_per_vm": 16, "vm_name": "huge"}, format="json")
    assert response.status_code == 409


@pytest.mark.reliability("api input", "no credentials")
def test_anonymous_is_refused():
    assert APIClient().post("/api/plans/", {"gpus_per_vm": 1}, format="json").status_code in (401, 403)
    assert APIClient().get("/api/reservations/").status_code in (401, 403)


def test_plan_candidates_and_rejections_carry_host_id_and_vcenter(api):
    doc = api.post("/api/plans/", {"gpus_per_vm": 2}, format="json").json()
    for entry in doc["candidates"] + doc["rejected"]:
        assert isinstance(entry["host_id"], int) and entry["vcenter"] == "demo"


@pytest.mark.reliability("api input", "unknown names and ids")
def test_an_unknown_cluster_is_a_400_naming_it_and_the_choices(api):
    response = api.post("/api/plans/", {"gpus_per_vm": 1, "clusters": ["nowhere"]}, format="json")
    assert response.status_code == 400
    message = response.json()["clusters"][0]
    assert "'nowhere'" in message and "hgx-cluster" in message and "pcie-cluster" in message


def test_a_hardware_label_narrows_a_dynamic_directpath_plan_and_is_refused_for_other_kinds(api):
    from inventory.fabric import rebuild_fabrics
    from inventory.models import Gpu, Host

    host = Host.objects.get(name="esx-h100nvl-01.lab.local")
    Gpu.objects.filter(host=host).update(hardware_label="llm-pool")
    rebuild_fabrics(hosts=[host])  # as a sync does: the label is part of the host's fabric
    body = {"gpus_per_vm": 1, "consumption": "dynamic-passthrough", "hardware_label": "llm-pool"}
    doc = api.post("/api/plans/", body, format="json").json()
    assert {c["host"] for c in doc["candidates"]} == {"esx-h100nvl-01.lab.local"}
    response = api.post("/api/plans/", {**body, "consumption": "passthrough"}, format="json")
    assert response.status_code == 400
    assert "dynamic-passthrough" in response.json()["hardware_label"][0]


def test_joint_plan_shows_the_assignment(api):
    doc = api.post("/api/plans/", {"gpus_per_vm": 1, "vms": 2, "anti_affinity": True}, format="json").json()
    assert [a["vm_index"] for a in doc["assignment"]] == [0, 1] and doc["unplaced"] == []
    assert doc["assignment"][0]["host_id"] != doc["assignment"][1]["host_id"]


def test_reserving_several_vms_returns_one_reservation_per_replica(api):
    response = api.post("/api/reservations/", {"gpus_per_vm": 1, "vms": 3, "vm_name": "web"}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert [r["vm_name"] for r in body] == ["web-1", "web-2", "web-3"]
    assert Reservation.objects.filter(status="active").count() == 3
    assert all(r["host_id"] and r["vcenter"] == "demo" and r["candidate"]["host_id"] == r["host_id"] for r in body)


@pytest.mark.reliability("api input", "nothing fits (plan empty, reservation 409 with the reason)")
def test_a_conflict_says_why(api):
    response = api.post("/api/reservations/", {"gpus_per_vm": 16, "vm_name": "huge"}, format="json")
    assert response.status_code == 409
    assert "no host can take 16 GPUs per VM" in response.json()["detail"]


def test_reservations_filter_and_order(api):
    for name in ("alpha", "beta", "gamma"):
        assert api.post("/api/reservations/", {"gpus_per_vm": 1, "vm_name": name}, format="json").status_code == 201
    beta = Reservation.objects.get(vm_name="beta")
    api.delete(f"/api/reservations/{beta.pk}/")
    active = api.get("/api/reservations/", {"status": "active", "ordering": "vm_name"}).json()
    assert [r["vm_name"] for r in active["results"]] == ["alpha", "gamma"]
    assert [r["vm_name"] for r in api.get("/api/reservations/", {"ordering": "-vm_name"}).json()["results"]] == [
        "gamma", "beta", "alpha"
    ]  # fmt: skip
    alpha = Reservation.objects.get(vm_name="alpha")
    by_host = api.get("/api/reservations/", {"host_id": alpha.host_id}).json()["results"]
    assert "alpha" in {r["vm_name"] for r in by_host} and all(r["host_id"] == alpha.host_id for r in by_host)
    assert api.get("/api/reservations/", {"vcenter": "demo"}).json()["count"] == 3
    vcenter_id = alpha.host.vcenter_id
    assert api.get("/api/reservations/", {"vcenter": vcenter_id}).json()["count"] == 3  # the id, as other lists
    # a typo is refused as the inventory lists refuse it (trial K #8: it answered an empty list)
    unknown = api.get("/api/reservations/", {"vcenter": "other"})
    assert unknown.status_code == 400 and unknown.json() == {"vcenter": ["no vCenter with id or name 'other'"]}
    assert api.get("/api/reservations/", {"vcenter": vcenter_id + 1000}).status_code == 400
    no_host = api.get("/api/reservations/", {"host": 999999})
    assert no_host.status_code == 400 and no_host.json() == {"host": ["no host with id 999999"]}
    assert api.get("/api/reservations/", {"host_id": 999999}).status_code == 400
    assert api.get("/api/reservations/", {"vm_name": "amm"}).json()["count"] == 1
    assert api.get("/api/reservations/", {"limit": 1}).json()["next"]


def test_rejected_limit_trims_the_rejections_and_the_count_gives_them_all(api):
    body = {"gpus_per_vm": 16}
    full = api.post("/api/plans/", body, format="json").json()
    assert full["rejected_count"] == len(full["rejected"]) == 5
    trimmed = api.post("/api/plans/", {**body, "rejected_limit": 1}, format="json").json()
    assert trimmed["rejected_count"] == 5 and trimmed["rejected"] == full["rejected"][:1]
    assert api.post("/api/plans/", {**body, "rejected_limit": 0}, format="json").json()["rejected"] == []
    bad = api.post("/api/plans/", {**body, "rejected_limit": -1}, format="json")
    assert bad.status_code == 400 and "rejected_limit" in bad.json()
    # a plan's body is a reservation's body (findings F9): rejected_limit is accepted there and ignored
    taken = api.post("/api/reservations/", {"gpus_per_vm": 1, "vm_name": "x", "rejected_limit": 1}, format="json")
    assert taken.status_code == 201, taken.content
    bad = api.post("/api/reservations/", {"gpus_per_vm": 1, "vm_name": "y", "rejected_limit": -1}, format="json")
    assert bad.status_code == 400 and "rejected_limit" in bad.json()  # still checked like the plan's


def test_a_reservation_past_its_expiry_is_expired_in_the_list_before_housekeeping_runs(api):
    """The stored status turns expired only when housekeeping runs (every 5 minutes, or on the next plan): a
    script counting active reservations meanwhile counted the expired ones."""
    from datetime import timedelta

    from django.utils import timezone

    for name in ("old", "new"):
        assert api.post("/api/reservations/", {"gpus_per_vm": 1, "vm_name": name}, format="json").status_code == 201
    Reservation.objects.filter(vm_name="old").update(expires_at=timezone.now() - timedelta(seconds=1))
    active = api.get("/api/reservations/", {"status": "active"}).json()["results"]
    assert [r["vm_name"] for r in active] == ["new"]
    expired = api.get("/api/reservations/", {"status": "expired"}).json()["results"]
    assert [(r["vm_name"], r["status"], r["active"]) for r in expired] == [("old", "expired", False)]
    old = Reservation.objects.get(vm_name="old")
    assert old.status == "active"  # nothing stored by reading
    assert api.get(f"/api/reservations/{old.pk}/").json()["status"] == "expired"
    ordered = api.get("/api/reservations/", {"ordering": "status"}).json()["results"]
    assert [r["status"] for r in ordered] == ["active", "expired"]


@pytest.mark.reliability("api input", "bad filter values")
def test_bad_reservation_filters_name_the_field(api):
    response = api.get("/api/reservations/", {"status": "bogus"})
    assert response.status_code == 400 and "status" in response.json()
    response = api.get("/api/reservations/", {"ordering": "password"})
    assert response.status_code == 400 and "ordering" in response.json()


def test_the_router_offers_plans_and_reservations_for_the_api_root():
    from django.urls import reverse

    from placement.api.urls import router

    assert {prefix for prefix, *_ in router.registry} >= {"plans", "reservations"}
    assert reverse("plan-list") == reverse("api-plan") == "/api/plans/"
    assert reverse("reservation-list") == "/api/reservations/"
