"""A stored password that the configured FIELD_ENCRYPTION_KEY cannot decrypt (the key was changed): the connection
test says so in the words a sync uses, on the API (409), the page and the command, never with a traceback."""

from __future__ import annotations

import html

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from django.urls import reverse

from inventory import services
from inventory.models import VCenter
from tests.api.support import SECRET, api_as  # noqa: F401
from tests.inventory.test_views import HTMX, admin  # noqa: F401

pytestmark = pytest.mark.django_db

UNREADABLE = "the stored vCenter password cannot be decrypted with the configured FIELD_ENCRYPTION_KEY"


@pytest.fixture
def vcenter(settings) -> VCenter:
    vc = services.register_vcenter(name="lab", url="https://127.0.0.1:9/sdk", username="u", password=SECRET)
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]  # the key it was stored with is gone
    return vc


def test_a_sync_says_the_password_cannot_be_decrypted(vcenter):
    with pytest.raises(services.SyncFailed, match=UNREADABLE):
        services.sync_vcenter(vcenter=vcenter)


def test_the_api_test_answers_409_naming_the_problem(vcenter, api_as):  # noqa: F811
    response = api_as("admin").post(f"/api/vcenters/{vcenter.pk}/test/")
    assert response.status_code == 409, response.content
    assert response.json() == {"ok": False, "error": f"{vcenter.url}: {UNREADABLE}"}
    assert SECRET not in response.content.decode()


@pytest.mark.parametrize("htmx", [True, False])
def test_the_page_button_names_the_problem(vcenter, admin, htmx):  # noqa: F811
    headers = HTMX if htmx else {}
    response = admin.post(reverse("inventory:vcenter_test", args=[vcenter.pk]), follow=not htmx, **headers)
    body = html.unescape(response.content.decode())
    assert UNREADABLE in body
    assert "SecretDecryptionError" not in body and "could not be set up" not in body


def test_the_command_says_it_in_one_line(vcenter):
    with pytest.raises(CommandError) as caught:
        call_command("vcenter", "test", "lab")
    assert str(caught.value) == f"{vcenter.url}: {UNREADABLE}"
