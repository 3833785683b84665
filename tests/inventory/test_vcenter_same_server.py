"""One vCenter per server: a second vCenter whose URL reaches the same scheme, host (any case) and port, whatever the
path, is refused on ``url`` naming the one already registered, on every path (service, API, page, command, admin).

Two rows for one server would both be synced: the overview would count its GPUs twice and each copy could be
reserved once.
"""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.urls import reverse

from inventory import services
from inventory.models import VCenter
from tests.api.support import SECRET, api_as  # noqa: F401
from tests.inventory.test_views import admin, field_errors, vcenter_post  # noqa: F401
from tests.vcsim import LABS

pytestmark = pytest.mark.django_db

TAKEN = "already registered as vCenter 'lab'"
SAME_SERVER = [
    "https://vcsa01.example.com/sdk",
    "https://VCSA01.Example.COM/sdk",
    "https://vcsa01.example.com:443/sdk",
    "https://vcsa01.example.com/other-path",
]


@pytest.fixture
def lab() -> VCenter:
    return services.register_vcenter(name="lab", url="https://vcsa01.example.com/sdk", username="u", password=SECRET)


@pytest.mark.parametrize("url", SAME_SERVER)
def test_the_service_refuses_a_second_vcenter_for_the_same_server(lab, url):
    with pytest.raises(ValidationError) as caught:
        services.register_vcenter(name="lab-again", url=url, username="u", password=SECRET)
    assert TAKEN in " ".join(caught.value.message_dict["url"])
    assert list(VCenter.objects.values_list("name", flat=True)) == ["lab"]


@pytest.mark.parametrize("url", ["https://vcsa01.example.com:8443/sdk", "https://vcsa02.example.com/sdk"])
def test_another_port_or_host_is_another_server(lab, url):
    services.register_vcenter(name="other", url=url, username="u", password=SECRET)
    assert VCenter.objects.count() == 2


def test_an_edit_moving_a_vcenter_onto_another_ones_server_is_refused(lab):
    other = services.register_vcenter(name="other", url="https://vcsa02.example.com/sdk", username="u", password="p")
    with pytest.raises(ValidationError) as caught:
        services.update_vcenter(vcenter=other, url="https://VCSA01.example.com/sdk", password="p")
    assert TAKEN in " ".join(caught.value.message_dict["url"])
    assert VCenter.objects.get(pk=other.pk).url == "https://vcsa02.example.com/sdk"
    # its own URL, or another path on its own server, is no clash
    services.update_vcenter(vcenter=lab, url="https://vcsa01.example.com/sdk2", enabled=False)


def test_the_api_refuses_it_on_url(lab, api_as):  # noqa: F811
    body = {"name": "lab-again", "url": "https://VCSA01.example.com/sdk", "username": "u", "password": SECRET}
    response = api_as("admin").post("/api/vcenters/", body, format="json")
    assert response.status_code == 400, response.content
    assert TAKEN in " ".join(response.json()["url"])
    assert SECRET not in response.content.decode()
    assert VCenter.objects.count() == 1


def test_the_page_form_refuses_it_on_url(lab, admin):  # noqa: F811
    response = admin.post(reverse("inventory:vcenter_add"), vcenter_post(name="lab-again", url=SAME_SERVER[3]))
    assert response.status_code == 400
    assert TAKEN.replace("'", "&#x27;") in field_errors(response.content.decode(), "url")
    assert VCenter.objects.count() == 1


def test_the_command_refuses_it_naming_the_url_option(lab, monkeypatch):
    monkeypatch.setenv("VC_PW", SECRET)
    with pytest.raises(CommandError, match=f"--url: {TAKEN}"):
        call_command("vcenter", "add", "lab-again", "--url", SAME_SERVER[1], "--user", "u", "--password-env", "VC_PW")
    assert VCenter.objects.count() == 1


def test_the_admin_refuses_it_on_url(lab, client):
    client.force_login(get_user_model().objects.create_superuser("root", password="x-Long-Passw0rd"))
    form = {"name": "lab-again", "url": SAME_SERVER[2], "username": "svc", "password": SECRET, "verify_tls": "on",
            "ca_file": "", "enabled": "on", "sync_interval_minutes": "5"}  # fmt: skip
    response = client.post("/admin/inventory/vcenter/add/", form)
    assert response.status_code == 200
    assert TAKEN.replace("'", "&#x27;") in response.content.decode()
    assert VCenter.objects.count() == 1


def test_imports_into_several_offline_vcenters_do_not_clash():
    document = json.loads((LABS / "demo.json").read_text())
    for name in ("import-a", "import-b", "import-c"):
        services.import_inventory(document=document, vcenter_name=name)
    assert VCenter.objects.count() == 3
