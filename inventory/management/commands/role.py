"""``manage.py role USER [ROLE]``: show or set which role (viewer, planner, admin) a user holds."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import CommandError, CommandParser
from django.db import transaction

from inventory.management.base import InventoryCommand
from inventory.roles import ROLE_HELP, ROLES, user_roles


class Command(InventoryCommand):
    help = "Show a user's role, or give them one: " + "; ".join(f"{r}: {ROLE_HELP[r]}" for r in ROLES) + "."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("role", nargs="?", choices=ROLES, help="the role to hold (replaces the one held)")

    def handle(self, *args, username: str, role: str | None, **options) -> None:
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"username: no user {username!r} (create one with createsuperuser or in Admin > Users)")
        if role is not None:
            with transaction.atomic():
                user.groups.remove(*Group.objects.filter(name__in=ROLES))
                group, _ = Group.objects.get_or_create(name=role)
                user.groups.add(group)
        held = [r for r in ROLES if r in user_roles(user)]
        strongest = held[-1] if held else "none"
        note = " (a superuser holds every role)" if user.is_superuser else ""
        self.stdout.write(f"{username}: {strongest}{note}")
