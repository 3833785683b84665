"""A retried reserve does not hold capacity twice (trial F finding 3): the Idempotency-Key header, and a duplicate
vm_name answered as a 409 ``name_taken`` with the reservation that holds it."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from placement.models import Reservation, ReservationRequest
from tests.api.support import load_demo, token_client
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

BODY = {"gpus_per_vm": 1, "vm_name": "retry-y", "ttl_minutes": 30}


@pytest.fixture
def planner(demo):
    return UserFactory(role="planner")


@pytest.fixture
def api(planner):
    return token_client(planner)


def _post(api, body: dict, key: str | None = "job-42"):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key is not None else {}
    return api.post("/api/reservations/", body, format="json", **headers)


def test_a_retry_with_the_same_key_and_body_replays_the_reservation_and_reserves_nothing(api):
    first = _post(api, BODY)
    assert first.status_code == 201, first.content
    assert "Idempotent-Replayed" not in first
    # the retry's body in another key order with a default spelled out is the same request
    retry = _post(api, {"ttl_minutes": 30, "vms": 1, "vm_name": "retry-y", "gpus_per_vm": 1})
    assert retry.status_code == 201, retry.content
    assert retry["Idempotent-Replayed"] == "true"
    assert retry.json()["id"] == first.json()["id"] and retry["Location"] == first["Location"]
    assert Reservation.objects.count() == 1
    assert Reservation.objects.get().idempotency_request.key == "job-42"


def test_without_a_key_a_retry_that_lands_in_the_same_vcenter_is_a_409_name_taken_with_the_reservation(api):
    first = _post(api, BODY, key=None)
    again = _post(api, BODY, key=None)
    assert again.status_code == 409, again.content
    assert again.json()["code"] == "name_taken"
    assert again.json()["reservation_id"] == first.json()["id"]
    assert "retry-y" in again.json()["detail"]


def test_the_replay_of_replicas_answers_every_replica(api):
    body = {"gpus_per_vm": 1, "vm_name": "rep", "vms": 2}
    first = _post(api, body, key="replicas-1")
    assert first.status_code == 201, first.content
    retry = _post(api, body, key="replicas-1")
    assert retry.status_code == 201 and retry["Idempotent-Replayed"] == "true"
    assert [r["id"] for r in retry.json()] == [r["id"] for r in first.json()]
    assert [r["vm_name"] for r in retry.json()] == ["rep-1", "rep-2"]
    assert Reservation.objects.count() == 2
    assert ReservationRequest.objects.get().reservations.count() == 2


def test_the_same_key_with_another_body_is_a_422_naming_the_key(api):
    first = _post(api, BODY)
    other = _post(api, {**BODY, "ttl_minutes": 45})
    assert other.status_code == 422, other.content
    body = other.json()
    assert body["code"] == "idempotency_key_reused" and "'job-42'" in body["detail"]
    assert body["reservation_ids"] == [first.json()["id"]]
    assert Reservation.objects.count() == 1


def test_keys_are_per_user(api, planner):
    _post(api, BODY)
    other_user = token_client(UserFactory(role="planner"))
    response = _post(other_user, {**BODY, "vm_name": "retry-z"})
    assert response.status_code == 201 and "Idempotent-Replayed" not in response
    assert Reservation.objects.count() == 2


def test_a_failed_request_keeps_no_key_so_its_retry_reserves(api):
    refused = _post(api, {**BODY, "gpus_per_vm": 16})
    assert refused.status_code == 409 and refused.json()["code"] == "no_capacity"
    assert not ReservationRequest.objects.exists()
    taken = _post(api, BODY, key=None)
    assert _post(api, BODY, key="k2").status_code == 409  # name_taken: the key is not stored either
    Reservation.objects.filter(pk=taken.json()["id"]).update(status="released")
    assert _post(api, BODY, key="k2").status_code == 201


def test_a_key_older_than_a_day_is_new_again(api):
    first = _post(api, BODY)
    Reservation.objects.filter(pk=first.json()["id"]).update(status="released")
    ReservationRequest.objects.update(created=timezone.now() - timedelta(hours=24, minutes=1))
    again = _post(api, BODY)
    assert again.status_code == 201 and "Idempotent-Replayed" not in again
    assert again.json()["id"] != first.json()["id"]
    assert list(ReservationRequest.objects.get().reservations.values_list("pk", flat=True)) == [again.json()["id"]]


def test_a_key_whose_reservations_were_deleted_reserves_again(api):
    _post(api, BODY)
    Reservation.objects.all().delete()
    again = _post(api, BODY)
    assert again.status_code == 201 and "Idempotent-Replayed" not in again
    assert ReservationRequest.objects.get().reservations.get().pk == again.json()["id"]


def test_the_replay_shows_the_reservation_as_it_is_now(api):
    first = _post(api, BODY)
    assert api.delete(first["Location"]).status_code == 204
    retry = _post(api, BODY)
    assert retry.status_code == 201 and retry.json()["status"] == "released"
    assert Reservation.objects.count() == 1


def test_a_chosen_candidate_replays_with_pci_ids_in_any_order(api):
    plan = api.post("/api/plans/", {"gpus_per_vm": 2}, format="json").json()
    best = plan["candidates"][0]
    pci_ids = [g["pci_id"] for g in best["gpus"]]
    body = {"gpus_per_vm": 2, "vm_name": "pin", "host_id": best["host_id"], "pci_ids": pci_ids}
    first = _post(api, body, key="pin")
    assert first.status_code == 201, first.content
    retry = _post(api, {**body, "pci_ids": pci_ids[::-1]}, key="pin")
    assert retry.status_code == 201 and retry["Idempotent-Replayed"] == "true"
    assert Reservation.objects.count() == 1


@pytest.mark.parametrize(
    ("key", "why"),
    [("", "1 to 255"), ("x" * 256, "got 256 characters"), ("caf\u00e9", "outside that range"), ("   ", "1 to 255")],
)
def test_a_malformed_key_is_a_400_naming_the_header(api, key, why):
    response = _post(api, BODY, key=key)
    assert response.status_code == 400, response.content
    assert why in response.json()["Idempotency-Key"][0]
    assert not Reservation.objects.exists()


def test_a_quoted_key_is_the_same_key(api):
    _post(api, BODY, key="abc-1")
    retry = _post(api, BODY, key='"abc-1"')  # the IETF draft's sf-string form
    assert retry.status_code == 201 and retry["Idempotent-Replayed"] == "true"


def test_the_schema_documents_the_header_the_replay_and_the_422(api):
    schema = api.get("/api/schema/?format=json").json()
    post = schema["paths"]["/api/reservations/"]["post"]
    header = next(p for p in post["parameters"] if p["name"] == "Idempotency-Key")
    assert header["in"] == "header" and "24 hours" in header["description"]
    assert "Idempotent-Replayed" in post["responses"]["201"]["headers"]
    assert "idempotency_key_reused" in post["responses"]["422"]["description"]
    assert "name_taken" in post["responses"]["409"]["description"]


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_with_one_key_make_one_hold():
    """Eight identical requests at once (PostgreSQL: the key's unique constraint makes the others wait for the
    first; SQLite serialises write transactions): one reservation, every answer is it."""
    load_demo()
    user = UserFactory(role="planner")
    barrier = threading.Barrier(8)
    answers: list[tuple[int, int | None]] = []

    def send() -> None:
        try:
            client = token_client(user)
            barrier.wait()
            response = _post(client, BODY, key="race-1")
            answers.append((response.status_code, response.json().get("id")))
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert Reservation.objects.count() == 1
    (only,) = Reservation.objects.values_list("pk", flat=True)
    assert answers == [(201, only)] * 8
