"""Object permissions on reservations: a planner releases only their own; an admin releases any.

Found in the field: a non-staff planner's token deleted an admin's reservation.
"""

from __future__ import annotations

import pytest
from django.test import Client

from placement.models import Reservation
from tests import factories
from tests.api.support import token_client
from tests.factories import UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.reliability("security", "another user's object")]


ROLES = {"admin": "admin", "planner": "planner", "other": "planner", "viewer": "viewer"}


class _People(dict):
    """Users made when first named (each costs a password hash)."""

    def __missing__(self, key):
        self[key] = UserFactory(username=f"u-{key}", role=ROLES[key])
        return self[key]


@pytest.fixture
def people():
    return _People()


def _reservation(owner) -> Reservation:
    return factories.ReservationFactory(created_by=owner)


def _status(reservation: Reservation) -> str:
    reservation.refresh_from_db()
    return reservation.status


def test_api_planner_cannot_release_an_admins_reservation(people):
    theirs = _reservation(people["admin"])
    response = token_client(people["planner"]).delete(f"/api/reservations/{theirs.pk}/")
    assert response.status_code == 403, response.content
    assert response.json() == {"detail": "only the planner who made this reservation or an admin can release it"}
    assert _status(theirs) == Reservation.Status.ACTIVE


@pytest.mark.parametrize(
    ("owner", "actor", "allowed"),
    [
        ("planner", "planner", True),  # their own
        ("other", "planner", False),  # another planner's
        ("admin", "planner", False),
        (None, "planner", False),  # made on the CLI: nobody's, so the admins'
        ("planner", "admin", True),  # admins release any
        (None, "admin", True),
        ("planner", "viewer", False),
    ],
)
def test_api_release_by_owner_and_role(people, owner, actor, allowed):
    reservation = _reservation(people[owner] if owner else None)
    response = token_client(people[actor]).delete(f"/api/reservations/{reservation.pk}/")
    assert response.status_code == (204 if allowed else 403), response.content
    assert _status(reservation) == (Reservation.Status.RELEASED if allowed else Reservation.Status.ACTIVE)


def _page_client(user) -> Client:
    client = Client(enforce_csrf_checks=False)
    client.force_login(user)
    return client


@pytest.mark.parametrize(
    ("owner", "actor", "allowed"),
    [
        ("planner", "planner", True),
        ("admin", "planner", False),
        ("other", "planner", False),
        (None, "planner", False),
        ("planner", "admin", True),
        ("planner", "viewer", False),
    ],
)
def test_page_release_by_owner_and_role(people, owner, actor, allowed):
    reservation = _reservation(people[owner] if owner else None)
    client = _page_client(people[actor])
    detail = client.get(f"/reservations/{reservation.pk}/")
    assert detail.status_code == 200
    assert ('id="release-button"' in detail.content.decode()) is allowed  # the button only where it works
    response = client.post(f"/reservations/{reservation.pk}/release/")
    assert response.status_code == (302 if allowed else 403)
    assert _status(reservation) == (Reservation.Status.RELEASED if allowed else Reservation.Status.ACTIVE)
