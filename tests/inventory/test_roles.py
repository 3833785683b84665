"""Roles: groups created by a migration, each role includes the weaker ones, superusers hold all."""

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.test import RequestFactory
from rest_framework.test import APIRequestFactory

from inventory.api.permissions import AdminWrites, PlannerWrites
from inventory.roles import ADMIN, PLANNER, ROLES, VIEWER, has_role, role_required, user_roles
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_the_migration_creates_the_three_groups():
    assert set(Group.objects.filter(name__in=ROLES).values_list("name", flat=True)) == set(ROLES)


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
    with pytest.raises(PermissionDenied, match="planner role"):
        view(request)
    request.user = UserFactory(role=PLANNER)
    assert view(request).status_code == 200


@pytest.mark.parametrize(("permission", "role"), [(PlannerWrites, PLANNER), (AdminWrites, ADMIN)])
def test_api_permissions_read_for_all_write_for_the_role(permission, role):
    factory = APIRequestFactory()
    viewer, holder = UserFactory(role=VIEWER), UserFactory(role=role)
    for method, user, allowed in [("get", viewer, True), ("post", viewer, False), ("delete", holder, True)]:
        request = getattr(factory, method)("/api/x/")
        request.user = user
        assert permission().has_permission(request, None) is allowed
