"""Roles: groups created by a migration, each role includes the weaker ones, superusers hold all."""

import importlib
import logging

import pytest
from django.contrib.auth.models import Group
from django.db.migrations import RunPython
from django.http import HttpResponse
from django.test import Client, RequestFactory
from rest_framework.test import APIRequestFactory

from inventory.api.permissions import AdminWrites, PlannerWrites
from inventory.roles import ADMIN, PLANNER, ROLE_HELP, ROLES, VIEWER, has_role, role_required, user_roles
from tests import factories
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_the_migration_creates_the_three_groups():
    """Run on an empty group table: a transactional test that ran before in this process flushed the migrated
    groups (which test runs first depends on the test worker)."""
    from django.apps import apps

    migration = importlib.import_module("inventory.migrations.0005_role_groups")
    Group.objects.all().delete()
    migration.create_groups(apps, None)
    migration.create_groups(apps, None)  # a second run adds nothing
    assert sorted(Group.objects.values_list("name", flat=True)) == sorted(ROLES)
    (operation,) = migration.Migration.operations
    assert isinstance(operation, RunPython) and operation.code is migration.create_groups


@pytest.mark.parametrize(
    ("role", "expected"),
    [(None, {VIEWER}), (VIEWER, {VIEWER}), (PLANNER, {VIEWER, PLANNER}), (ADMIN, {VIEWER, PLANNER, ADMIN})],
)
def test_each_role_includes_the_weaker_ones(role, expected):
    assert user_roles(UserFactory(role=role)) == expected


def test_superusers_and_inactive_users():
    root = UserFactory(is_superuser=True)
    assert has_role(root, ADMIN)
    assert user_roles(UserFactory(is_active=False, role=ADMIN)) == set()
    with pytest.raises(ValueError, match="unknown role 'owner'"):
        has_role(root, "owner")


def test_role_required_refuses_a_weaker_role():
    view = role_required(PLANNER)(lambda request: HttpResponse("ok"))
    request = RequestFactory().post("/x")
    request.user = UserFactory(role=VIEWER)
    assert view(request).status_code == 403
    request.user = UserFactory(role=PLANNER)
    assert view(request).status_code == 200


def _page_client(role: str | None) -> Client:
    client = Client()
    client.force_login(UserFactory(role=role))
    return client


@pytest.mark.parametrize(
    ("role", "method", "path", "reason"),
    [
        (VIEWER, "get", "/vcenters/add/", "this needs the admin role"),
        (PLANNER, "get", "/vcenters/add/", "this needs the admin role"),
        (VIEWER, "post", "/placement/reserve/", "this needs the planner role"),
    ],
)
def test_a_refused_page_is_one_warning_line_without_a_traceback(role, method, path, reason, caplog):
    client = _page_client(role)
    with caplog.at_level(logging.DEBUG, logger="django.request"):
        response = getattr(client, method)(path)
    assert response.status_code == 403
    records = [r for r in caplog.records if r.name == "django.request"]
    assert [(r.levelname, r.getMessage()) for r in records] == [("WARNING", f"Forbidden ({reason}): {path}")]
    assert records[0].exc_info is None


def test_releasing_another_planners_reservation_on_the_page_is_one_line_too(caplog):
    reservation = factories.ReservationFactory(created_by=UserFactory(role=PLANNER))
    path = f"/reservations/{reservation.pk}/release/"
    with caplog.at_level(logging.DEBUG, logger="django.request"):
        response = _page_client(PLANNER).post(path)
    assert response.status_code == 403
    records = [r for r in caplog.records if r.name == "django.request"]
    assert [r.levelname for r in records] == ["WARNING"] and records[0].exc_info is None
    assert "only the planner who made this reservation" in records[0].getMessage()


@pytest.mark.parametrize(("permission", "role"), [(PlannerWrites, PLANNER), (AdminWrites, ADMIN)])
def test_api_permissions_read_for_all_write_for_the_role(permission, role):
    factory = APIRequestFactory()
    viewer, holder = UserFactory(role=VIEWER), UserFactory(role=role)
    for method, user, allowed in [("get", viewer, True), ("post", viewer, False), ("delete", holder, True)]:
        request = getattr(factory, method)("/api/x/")
        request.user = user
        assert permission().has_permission(request, None) is allowed


def test_the_role_help_says_who_plans():
    """``manage.py role --help`` reads it: plans need no role (they store nothing), reservations do."""
    assert "request plans" in ROLE_HELP[VIEWER]
    assert "plan" not in ROLE_HELP[PLANNER] and "reserve" in ROLE_HELP[PLANNER]
