"""``manage.py role``: an SRE gives users their role without the admin pages."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from inventory.roles import PLANNER, has_role
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("role", *args, stdout=out)
    return out.getvalue().strip()


def test_a_role_is_given_replaced_and_shown():
    user = UserFactory(username="alice")
    assert run("alice") == "alice: viewer"
    assert run("alice", "admin") == "alice: admin"
    assert run("alice", "planner") == "alice: planner"  # replaces admin: one role at a time
    user.refresh_from_db()
    assert has_role(user, PLANNER) and list(user.groups.values_list("name", flat=True)) == ["planner"]


def test_unknown_users_and_roles_are_named():
    with pytest.raises(CommandError, match="username: no user 'nobody'"):
        run("nobody", "planner")
    UserFactory(username="bob")
    with pytest.raises(CommandError, match="invalid choice: 'root'"):
        run("bob", "root")
