"""Renewing a hold (trial F finding 14): POST /api/reservations/{id}/renew/ {"ttl_minutes": N} by the planner who
made it or an admin; only an active, unexpired hold; and the reservation page's Extend form."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from placement import services
from placement.models import Reservation
from tests.api.support import token_client
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner(demo):
    return UserFactory(role="planner")


@pytest.fixture
def reservation(owner):
    request = services.build_request(gpus_per_vm=1, consumption="passthrough")
    (made,) = services.reserve(request=request, vm_name="build-1", ttl_minutes=5, user=owner)
    return made


def _renew(client, reservation, body):
    return client.post(f"/api/reservations/{reservation.pk}/renew/", body, format="json")


def test_the_owner_renews_an_active_hold_to_now_plus_ttl(owner, reservation):
    before = timezone.now()
    response = _renew(token_client(owner), reservation, {"ttl_minutes": 240})
    assert response.status_code == 200, response.content
    assert response.json()["id"] == reservation.pk and response.json()["status"] == "active"
    expires = Reservation.objects.get(pk=reservation.pk).expires_at
    assert before + timedelta(minutes=240) <= expires <= timezone.now() + timedelta(minutes=240)
    assert response.json()["expires_at"].startswith(timezone.localtime(expires).strftime("%Y-%m-%dT%H:%M"))


def test_an_admin_renews_anyones_another_planner_cannot(reservation, api_as):
    refused = _renew(api_as("planner"), reservation, {"ttl_minutes": 60})
    assert refused.status_code == 403
    assert refused.json() == {"detail": "only the planner who made this reservation or an admin can renew it"}
    assert _renew(api_as("viewer"), reservation, {"ttl_minutes": 60}).status_code == 403
    assert _renew(api_as("admin"), reservation, {"ttl_minutes": 60}).status_code == 200


@pytest.mark.parametrize(
    ("body", "message"),
    [({}, "required"), ({"ttl_minutes": 0}, "greater than or equal to 1"),
     ({"ttl_minutes": 10081}, "less than or equal to 10080"), ({"ttl_minutes": 60, "x": 1}, None)],
)  # fmt: skip
def test_ttl_minutes_has_the_bounds_of_reserving(owner, reservation, body, message):
    expires = reservation.expires_at
    response = _renew(token_client(owner), reservation, body)
    assert response.status_code == 400, response.content
    field = "ttl_minutes" if message else "x"
    assert field in response.json()
    if message:
        assert message in response.json()["ttl_minutes"][0]
    assert Reservation.objects.get(pk=reservation.pk).expires_at == expires


@pytest.mark.parametrize(
    ("change", "code"),
    [({"expires_at": timezone.now() - timedelta(minutes=1)}, "expired"),
     ({"status": "expired"}, "expired"), ({"status": "consumed"}, "consumed"), ({"status": "released"}, "released")],
)  # fmt: skip
def test_a_hold_that_ended_is_not_renewed_409_naming_its_status(owner, reservation, change, code):
    Reservation.objects.filter(pk=reservation.pk).update(**change)
    before = Reservation.objects.get(pk=reservation.pk)
    response = _renew(token_client(owner), reservation, {"ttl_minutes": 60})
    assert response.status_code == 409, response.content
    body = response.json()
    assert body["code"] == code and body["status"] == code
    assert f"reservation #{reservation.pk}" in body["detail"] and "nothing renewed" in body["detail"]
    after = Reservation.objects.get(pk=reservation.pk)
    assert (after.status, after.expires_at) == (before.status, before.expires_at)


def test_the_schema_documents_renew(owner):
    schema = token_client(owner).get("/api/schema/?format=json").json()
    renew = schema["paths"]["/api/reservations/{id}/renew/"]["post"]
    assert set(renew["responses"]) >= {"200", "400", "409"}
    conflict = renew["responses"]["409"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert {"code", "status", "detail"} <= set(schema["components"]["schemas"][conflict]["properties"])
    assert "ttl_minutes" in schema["components"]["schemas"]["RenewRequest"]["required"]


# --------------------------------------------------------------------------- the page's Extend


def _page_client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_page_offers_extend_to_the_owner_only(owner, reservation):
    page = _page_client(owner).get(f"/reservations/{reservation.pk}/").content.decode()
    assert 'id="extend-form"' in page and f'action="/reservations/{reservation.pk}/renew/"' in page
    assert 'max="10080"' in page and "csrfmiddlewaretoken" in page
    other = _page_client(UserFactory(role="planner")).get(f"/reservations/{reservation.pk}/").content.decode()
    assert 'id="extend-form"' not in other


def test_extend_on_the_page_renews_and_says_until_when(owner, reservation):
    client = _page_client(owner)
    response = client.post(f"/reservations/{reservation.pk}/renew/", {"ttl_minutes": "120"}, follow=True)
    assert response.status_code == 200
    expires = Reservation.objects.get(pk=reservation.pk).expires_at
    assert expires > timezone.now() + timedelta(minutes=119)
    assert f"now ends at {timezone.localtime(expires):%Y-%m-%d %H:%M}" in response.content.decode()


def test_extend_is_csrf_protected_and_role_guarded(owner, reservation):
    expires = reservation.expires_at
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(owner)
    assert strict.post(f"/reservations/{reservation.pk}/renew/", {"ttl_minutes": "120"}).status_code == 403
    for user in (UserFactory(role="viewer"), UserFactory(role="planner")):
        response = _page_client(user).post(f"/reservations/{reservation.pk}/renew/", {"ttl_minutes": "120"})
        assert response.status_code == 403
    assert Reservation.objects.get(pk=reservation.pk).expires_at == expires


@pytest.mark.parametrize(
    ("ttl", "message"),
    [
        ("0", "the hold time (&#x27;0&#x27;) must be between 1 and 10080"),
        ("", "the hold time is required: the minutes to hold it for, from now"),
        ("abc", "the hold time (&#x27;abc&#x27;) must be a whole number of minutes"),
        ("1.5", "the hold time (&#x27;1.5&#x27;) must be a whole number of minutes"),  # trial H #8: it said "required"
    ],
)
def test_extend_with_a_bad_ttl_changes_nothing_and_says_why(owner, reservation, ttl, message):
    expires = reservation.expires_at
    response = _page_client(owner).post(f"/reservations/{reservation.pk}/renew/", {"ttl_minutes": ttl}, follow=True)
    body = response.content.decode()
    assert f"Not extended: {message}" in body and "ttl_minutes" not in body.split('id="flash"')[1][:400]
    assert Reservation.objects.get(pk=reservation.pk).expires_at == expires


def test_extend_that_ends_the_hold_earlier_says_shortened(owner, reservation):
    """Trial H #3: 5 minutes from now on a hold ending in an hour read 'Extended'."""
    Reservation.objects.filter(pk=reservation.pk).update(expires_at=timezone.now() + timedelta(minutes=90))
    response = _page_client(owner).post(f"/reservations/{reservation.pk}/renew/", {"ttl_minutes": "5"}, follow=True)
    body = response.content.decode()
    assert "Shortened: the hold for" in body and "Extended:" not in body
    assert Reservation.objects.get(pk=reservation.pk).expires_at < timezone.now() + timedelta(minutes=6)


def test_extend_of_a_released_hold_says_so(owner, reservation):
    Reservation.objects.filter(pk=reservation.pk).update(status="released")
    response = _page_client(owner).post(f"/reservations/{reservation.pk}/renew/", {"ttl_minutes": "60"}, follow=True)
    assert "was released" in response.content.decode() and "nothing renewed" in response.content.decode()
    assert Reservation.objects.get(pk=reservation.pk).status == "released"
