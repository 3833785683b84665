"""Key rotation (trial B-11): ``vcenter rekey`` re-encrypts every stored vCenter password with the first key of
FIELD_ENCRYPTION_KEY, so the old key can be dropped; all or nothing, and it says how many."""

from __future__ import annotations

from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command

from inventory import services
from inventory.crypto import UNREADABLE
from inventory.models import VCenter

pytestmark = pytest.mark.django_db

OLD, NEW, OTHER = (Fernet.generate_key().decode() for _ in range(3))


def register(name: str, password: str) -> VCenter:
    return services.register_vcenter(name=name, url=f"https://{name}.example.com/sdk", username="u", password=password)


def rekey() -> str:
    out = StringIO()
    call_command("vcenter", "rekey", stdout=out)
    return out.getvalue()


def test_rekey_rewrites_every_password_with_the_first_key_and_the_old_key_can_go(settings):
    settings.FIELD_ENCRYPTION_KEYS = [OLD]
    register("lab", "lab-Pass-1")
    register("prod", "prod-Pass-2")
    VCenter.objects.create(name="offline", url="https://offline.example.com/sdk", username="u")  # no password
    settings.FIELD_ENCRYPTION_KEYS = [NEW, OLD]  # rotated: new passwords get NEW, both decrypt
    register("edge", "edge-Pass-3")

    out = rekey()

    assert "Re-encrypted 2 vCenter passwords with the first key of FIELD_ENCRYPTION_KEY" in out
    assert "(1 already encrypted with it, 1 vCenter without a password)" in out
    assert "Pass-" not in out
    settings.FIELD_ENCRYPTION_KEYS = [NEW]  # the old key removed
    passwords = {vc.name: vc.get_password() for vc in VCenter.objects.exclude(password_encrypted="")}
    assert passwords == {"lab": "lab-Pass-1", "prod": "prod-Pass-2", "edge": "edge-Pass-3"}
    assert "Re-encrypted 0 vCenter passwords" in rekey()  # nothing left to do, nothing rewritten


def test_a_password_no_key_reads_stops_the_rekey_before_anything_is_rewritten(settings):
    settings.FIELD_ENCRYPTION_KEYS = [OTHER]
    register("lost", "lost-Pass")
    settings.FIELD_ENCRYPTION_KEYS = [OLD]
    register("lab", "lab-Pass-1")
    before = dict(VCenter.objects.values_list("name", "password_encrypted"))
    settings.FIELD_ENCRYPTION_KEYS = [NEW, OLD]

    with pytest.raises(CommandError) as caught:
        rekey()

    message = str(caught.value)
    assert message.startswith(f"vCenter lost: {UNREADABLE}; nothing was re-encrypted.")
    assert "vcenter set NAME --password-env VAR" in message and "lost-Pass" not in message
    assert dict(VCenter.objects.values_list("name", "password_encrypted")) == before
