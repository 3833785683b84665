import secrets

from django.contrib.auth import get_user_model

from inventory.management.base import InventoryCommand


class Command(InventoryCommand):
    help = "Create or reset the demo administrator and print its one-time password."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")

    def handle(self, *args, username: str, **options):
        user, created = get_user_model().objects.get_or_create(username=username)
        password = secrets.token_urlsafe(12)
        user.is_staff = user.is_superuser = True
        user.set_password(password)
        user.save()
        verb = "created" if created else "reset"
        self.stdout.write(self.style.SUCCESS(f"Demo admin {verb}: username {username!r}, password {password!r}"))
