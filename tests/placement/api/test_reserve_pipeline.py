"""The reservations API as a pipeline drives it (trial F findings 4, 5, 9, 11 and 13): reserving the candidate
that was planned, 409 bodies with a code to branch on, plan bodies sent as they are, the Location of a new
reservation, and releasing a hold that already ended."""

from datetime import timedelta

import pytest
from django.utils import timezone

from inventory.models import Gpu, GpuConsumer, Host, VirtualMachine
from placement import services
from placement.models import Reservation

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(api_as, demo):
    """A planner (reservations need the role) over the demo lab."""
    return api_as("planner")


def _pci_ids(candidate: dict) -> list[str]:
    return [g["pci_id"] for g in candidate["gpus"]]


def _occupy(host_id: int, pci_id: str, vm_name: str = "intruder-2") -> None:
    """A VM that a sync found on the GPU: static passthrough, so the GPU is held."""
    host = Host.objects.get(pk=host_id)
    gpu = Gpu.objects.get(host=host, pci_device__pci_id=pci_id)
    vm = VirtualMachine.objects.create(
        vcenter=host.vcenter, moref=f"vm-{vm_name}", name=vm_name, host=host, power_state="poweredOn", vcpus=4,
        memory_mb=16384,
    )  # fmt: skip
    GpuConsumer.objects.create(vm=vm, gpu=gpu, kind="passthrough")


# --------------------------------------------------------------------------- finding 4: the planned candidate


def test_reserving_a_chosen_candidate_takes_exactly_that_one_not_the_best(api):
    plan = api.post("/api/plans/", {"gpus_per_vm": 2}, format="json").json()
    assert len(plan["candidates"]) >= 2
    second = plan["candidates"][1]  # not what the advisor would reserve without a choice
    body = {"gpus_per_vm": 2, "vm_name": "pin-1", "host_id": second["host_id"], "pci_ids": _pci_ids(second)[::-1]}
    response = api.post("/api/reservations/", body, format="json")
    assert response.status_code == 201, response.content
    made = response.json()
    assert made["host_id"] == second["host_id"] and made["vm_name"] == "pin-1"
    assert sorted(_pci_ids(made["candidate"])) == sorted(_pci_ids(second))
    items = Reservation.objects.get(pk=made["id"]).items.values_list("pci_id", flat=True)
    assert sorted(items) == sorted(_pci_ids(second))


def test_a_candidate_that_changed_since_the_plan_is_a_409_changed_naming_what(api):
    plan = api.post("/api/plans/", {"gpus_per_vm": 2}, format="json").json()
    best = plan["candidates"][0]
    _occupy(best["host_id"], best["gpus"][0]["pci_id"])  # a sync shows a VM on one of the planned GPUs
    body = {"gpus_per_vm": 2, "vm_name": "stale-b", "host_id": best["host_id"], "pci_ids": _pci_ids(best)}
    response = api.post("/api/reservations/", body, format="json")
    assert response.status_code == 409, response.content
    conflict = response.json()
    assert conflict["code"] == "changed"
    detail = conflict["detail"]
    assert best["host"] in detail and f"id {best['host_id']}" in detail
    assert all(pci in detail for pci in _pci_ids(best))
    assert f"GPU {best['gpus'][0]['pci_id']} is used by VM intruder-2" in detail
    assert not Reservation.objects.exists()
    # without the choice the same body reserves whatever is best now (the old behaviour, still available)
    body.pop("host_id"), body.pop("pci_ids")
    assert api.post("/api/reservations/", body, format="json").status_code == 201


def test_a_vgpu_on_another_gpu_than_vsphere_would_pick_says_vsphere_picks_it(api):
    """Trial G 7f: asking for a vGPU on the A100 host's other GPU answered 'GPU ... is used by VM chat-a', although
    that GPU had room: vSphere picks a vGPU's GPU at power-on, and would pick the offered one."""
    body = {"gpus_per_vm": 1, "profile": "grid_a100d-10c"}
    plan = api.post("/api/plans/", body, format="json").json()
    best = plan["candidates"][0]
    host = Host.objects.get(pk=best["host_id"])
    other = next(
        g.pci_device.pci_id for g in Gpu.objects.filter(host=host).select_related("pci_device")
        if g.pci_device.pci_id not in _pci_ids(best)
    )  # fmt: skip
    chosen = {**body, "vm_name": "pick", "host_id": host.pk, "pci_ids": [other]}
    response = api.post("/api/reservations/", chosen, format="json")
    assert response.status_code == 409 and response.json()["code"] == "changed"
    detail = response.json()["detail"]
    assert (
        f"for a vgpu VM vSphere picks the GPU at power-on, and on this host now it would pick {_pci_ids(best)[0]}"
        in (detail)
    )
    assert "is used by" not in detail


def test_a_chosen_host_that_takes_nothing_now_gives_its_reasons(api):
    plan = api.post("/api/plans/", {"gpus_per_vm": 1}, format="json").json()
    chosen = plan["candidates"][0]
    host = Host.objects.get(pk=chosen["host_id"])
    for gpu in Gpu.objects.filter(host=host).select_related("pci_device"):
        _occupy(host.pk, gpu.pci_device.pci_id, vm_name=f"full-{gpu.pk}")
    body = {"gpus_per_vm": 1, "vm_name": "late", "host_id": chosen["host_id"], "pci_ids": _pci_ids(chosen)}
    conflict = api.post("/api/reservations/", body, format="json").json()
    assert conflict["code"] == "changed"
    detail = conflict["detail"]
    assert "it takes no VM of this request now (" in detail and "assigned to VM full-" in detail  # the host's reasons
    assert f"GPU {chosen['gpus'][0]['pci_id']} is used by VM full-" in detail


def test_a_chosen_host_outside_the_requested_clusters_or_unknown_is_a_400_on_host_id(api):
    plan = api.post("/api/plans/", {"gpus_per_vm": 1}, format="json").json()
    chosen = plan["candidates"][0]
    other = Host.objects.exclude(cluster_id=Host.objects.get(pk=chosen["host_id"]).cluster_id).first()
    assert other is not None and other.cluster is not None
    body = {"gpus_per_vm": 1, "vm_name": "x", "host_id": chosen["host_id"], "pci_ids": _pci_ids(chosen),
            "clusters": [str(other.cluster_id)]}  # fmt: skip
    response = api.post("/api/reservations/", body, format="json")
    assert response.status_code == 400 and "outside the clusters of this request" in response.json()["host_id"][0]
    response = api.post("/api/reservations/", {**body, "clusters": [], "host_id": 999999}, format="json")
    assert response.status_code == 400 and "no host with id 999999" in response.json()["host_id"][0]
    assert not Reservation.objects.exists()


def test_accepting_a_candidate_that_lost_its_gpus_after_the_plan_raises_candidate_changed(api):
    """The race the API's re-plan cannot see: the GPUs go between the plan and the host's lock."""
    request = services.build_request(gpus_per_vm=2, consumption="passthrough")
    candidate = services.plan_cluster(request=request).candidates[0]
    _occupy(candidate.host_id, candidate.gpus[0].pci_id)
    with pytest.raises(services.CandidateChanged) as caught:
        services.accept_candidate(request=request, candidate=candidate, vm_name="late")
    assert caught.value.code == "changed" and "changed since the plan was made" in str(caught.value)


# --------------------------------------------------------------------------- finding 5: 409 codes


def test_nothing_fits_is_a_409_no_capacity(api):
    response = api.post("/api/reservations/", {"gpus_per_vm": 16, "vm_name": "huge"}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "no_capacity" and "no host can take 16 GPUs" in response.json()["detail"]


def test_losing_every_race_is_a_409_contention(api, monkeypatch):
    def always_taken(request, chosen, names, ttl, user):
        raise services.ReservationConflict(f"{chosen[0].host} has no room left for replica {names[0]}")

    monkeypatch.setattr(services, "_reserve_chosen", always_taken)
    response = api.post("/api/reservations/", {"gpus_per_vm": 1, "vm_name": "racer"}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "contention"
    assert f"still contended after {services.RESERVE_ATTEMPTS} attempts" in response.json()["detail"]


# --------------------------------------------------------------------------- finding 9: interchangeable bodies


def test_the_body_of_a_plan_reserves_as_it_is(api):
    body = {"gpus_per_vm": 1, "limit": 3, "rejected_limit": 0}
    assert api.post("/api/plans/", body, format="json").status_code == 200
    response = api.post("/api/reservations/", {**body, "vm_name": "same-body"}, format="json")
    assert response.status_code == 201, response.content
    assert api.post("/api/reservations/", {**body, "vm_name": "z", "limit": 0}, format="json").status_code == 400


# --------------------------------------------------------------------------- finding 11: Location


def test_a_new_reservation_has_its_location(api):
    response = api.post("/api/reservations/", {"gpus_per_vm": 1, "vm_name": "loc"}, format="json")
    assert response.status_code == 201
    assert response["Location"] == f"http://testserver/api/reservations/{response.json()['id']}/"
    assert api.get(response["Location"]).json()["vm_name"] == "loc"


def test_replicas_give_the_location_of_the_first(api):
    response = api.post("/api/reservations/", {"gpus_per_vm": 1, "vms": 2, "vm_name": "rep"}, format="json")
    assert response.status_code == 201
    first = response.json()[0]
    assert first["vm_name"] == "rep-1" and response["Location"].endswith(f"/api/reservations/{first['id']}/")


def test_a_chosen_candidate_has_its_location_too(api):
    chosen = api.post("/api/plans/", {"gpus_per_vm": 1}, format="json").json()["candidates"][0]
    body = {"gpus_per_vm": 1, "vm_name": "loc-2", "host_id": chosen["host_id"], "pci_ids": _pci_ids(chosen)}
    response = api.post("/api/reservations/", body, format="json")
    assert response["Location"].endswith(f"/api/reservations/{response.json()['id']}/")


# --------------------------------------------------------------------------- finding 13: release


def _reserved(api, name: str) -> Reservation:
    response = api.post("/api/reservations/", {"gpus_per_vm": 1, "vm_name": name}, format="json")
    assert response.status_code == 201, response.content
    return Reservation.objects.get(pk=response.json()["id"])


def test_releasing_an_active_reservation_twice_is_204_both_times(api):
    held = _reserved(api, "twice")
    assert api.delete(f"/api/reservations/{held.pk}/").status_code == 204
    assert api.delete(f"/api/reservations/{held.pk}/").status_code == 204
    assert Reservation.objects.get(pk=held.pk).status == "released"


@pytest.mark.parametrize("stored", ["active", "expired"])
def test_releasing_an_expired_reservation_is_a_409_expired(api, stored):
    """Past its expiry it is expired whether or not housekeeping has stored that yet; it stays as it is."""
    held = _reserved(api, "lapsed")
    Reservation.objects.filter(pk=held.pk).update(status=stored, expires_at=timezone.now() - timedelta(minutes=1))
    response = api.delete(f"/api/reservations/{held.pk}/")
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "expired" and body["status"] == "expired"
    assert f"reservation #{held.pk} for lapsed expired at" in body["detail"]
    assert Reservation.objects.get(pk=held.pk).status == stored  # not turned into a release


def test_releasing_a_consumed_reservation_is_a_409_consumed(api):
    held = _reserved(api, "arrived")
    Reservation.objects.filter(pk=held.pk).update(status="consumed", closed_at=timezone.now())
    response = api.delete(f"/api/reservations/{held.pk}/")
    assert response.status_code == 409
    assert response.json()["code"] == "consumed" and response.json()["status"] == "consumed"
    assert Reservation.objects.get(pk=held.pk).status == "consumed"


def test_the_release_service_returns_the_outcome_for_the_page(api):
    """The page's release keeps working on a lapsed hold (it shows the status) and is told what happened."""
    held = _reserved(api, "page")
    Reservation.objects.filter(pk=held.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    assert services.release_reservation(reservation=held) == "expired"
    fresh = _reserved(api, "page-2")
    assert services.release_reservation(reservation=fresh) == "released"


# --------------------------------------------------------------------------- the contract


@pytest.fixture
def schema(api):
    return api.get("/api/schema/", {"format": "json"}).json()


def test_the_schema_documents_the_choice_the_codes_the_location_and_the_release_conflict(schema):
    components = schema["components"]["schemas"]
    reserve = components["ReserveRequest"]["properties"]
    assert {"host_id", "pci_ids", "limit", "rejected_limit"} <= set(reserve)
    assert "ignores it" in reserve["rejected_limit"]["description"]
    assert "vms 1 only" in reserve["host_id"]["description"]
    conflict = components["Conflict"]
    assert set(conflict["required"]) >= {"code", "detail"}
    code = conflict["properties"]["code"]
    codes = components[(code.get("$ref") or code["allOf"][0]["$ref"]).rsplit("/", 1)[1]]["enum"]
    assert set(codes) == {"no_capacity", "contention", "changed", "name_taken", "name_in_use"}
    post = schema["paths"]["/api/reservations/"]["post"]["responses"]
    assert "Location" in post["201"]["headers"] and "first replica" in post["201"]["description"]
    delete = schema["paths"]["/api/reservations/{id}/"]["delete"]["responses"]
    assert "204" in delete
    release = delete["409"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert {"code", "status", "detail"} <= set(components[release]["properties"])
