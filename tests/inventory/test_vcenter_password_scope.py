"""A stored vCenter password is only ever sent to the server it was entered for: changing the URL's scheme, host
or port needs the password again, on every path that edits a vCenter (service, API, page, admin)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from inventory import services
from inventory.models import VCenter
from inventory.validators import NEW_CA_REASON, TLS_OFF_REASON, same_server
from tests import factories
from tests.api.support import api_as  # noqa: F401
from tests.inventory.test_views import admin, field_errors, text, vcenter_post  # noqa: F401

pytestmark = pytest.mark.django_db

SECRET = "Stored-Secret-77"
OLD_URL = "https://vc-a.example.com/sdk"
ELSEWHERE = "https://attacker.example.net/sdk"
REASON = "required when the URL changes: the stored password is only sent to the server it was entered for"


@pytest.fixture
def vcenter() -> VCenter:
    return services.register_vcenter(name="vc-a", url=OLD_URL, username="svc", password=SECRET)


def stored(vc: VCenter) -> tuple[str, str]:
    vc = VCenter.objects.get(pk=vc.pk)
    return vc.url, vc.get_password()


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        (OLD_URL, "https://VC-A.example.com/other-path", True),
        (OLD_URL, "https://vc-a.example.com:443/sdk", True),
        ("https://[FD00::10]/sdk", "https://[fd00::10]:443/sdk", True),
        (OLD_URL, "https://vc-a.example.com:8443/sdk", False),
        (OLD_URL, ELSEWHERE, False),
        ("http://vc-a.example.com/sdk", OLD_URL, False),  # the scheme too
        (OLD_URL, "https://vc-a.example.com:port/sdk", False),
    ],
)
def test_same_server_compares_scheme_host_and_port(a, b, same):
    assert same_server(a, b) is same


@pytest.mark.parametrize("password", [None, ""])
def test_the_service_refuses_a_new_server_without_the_password(vcenter, password):
    with pytest.raises(ValidationError) as info:
        services.update_vcenter(vcenter=vcenter, url=ELSEWHERE, password=password)
    assert info.value.message_dict == {"password": [REASON]}
    assert stored(vcenter) == (OLD_URL, SECRET)


def test_the_service_accepts_a_new_server_with_a_password_and_a_new_path_without(vcenter):
    services.update_vcenter(vcenter=vcenter, url="https://vc-a.example.com/sdk2", enabled=False)
    assert stored(vcenter) == ("https://vc-a.example.com/sdk2", SECRET)
    services.update_vcenter(vcenter=vcenter, url=ELSEWHERE, password="Other-Secret-8")
    assert stored(vcenter) == (ELSEWHERE, "Other-Secret-8")


def test_a_vcenter_without_a_stored_password_can_move(vcenter):
    VCenter.objects.filter(pk=vcenter.pk).update(password_encrypted="")
    vcenter.refresh_from_db()
    services.update_vcenter(vcenter=vcenter, url=ELSEWHERE)
    assert stored(vcenter) == (ELSEWHERE, "")


def test_api_patch_of_the_url_alone_is_400_naming_password(api_as, vcenter):  # noqa: F811
    admin_api = api_as("admin")
    path = f"/api/vcenters/{vcenter.pk}/"
    response = admin_api.patch(path, {"url": ELSEWHERE, "ca_file": ""}, format="json")
    assert response.status_code == 400 and response.json() == {"password": [REASON]}
    put = {"name": "vc-a", "url": ELSEWHERE, "username": "svc", "password": ""}
    assert admin_api.put(path, put, format="json").json() == {"password": [REASON]}
    assert stored(vcenter) == (OLD_URL, SECRET)
    assert admin_api.patch(path, {"url": ELSEWHERE, "password": "New-Secret-9"}, format="json").status_code == 200
    assert stored(vcenter) == (ELSEWHERE, "New-Secret-9")


def test_page_edit_to_another_server_needs_the_password(admin, vcenter):  # noqa: F811
    response = admin.post(f"/vcenters/{vcenter.pk}/edit/", vcenter_post(name="vc-a", url=ELSEWHERE, password=""))
    assert response.status_code == 400 and "required when the URL changes" in field_errors(text(response), "password")
    assert stored(vcenter) == (OLD_URL, SECRET)
    moved = admin.post(f"/vcenters/{vcenter.pk}/edit/", vcenter_post(name="vc-a", url=ELSEWHERE, password="Pw-New-1"))
    assert moved.status_code == 302 and stored(vcenter) == (ELSEWHERE, "Pw-New-1")


def test_admin_site_edit_to_another_server_needs_the_password(client, vcenter):
    client.force_login(get_user_model().objects.create_superuser("root", password="x-Long-Passw0rd"))
    form = {"name": "vc-a", "url": ELSEWHERE, "username": "svc", "password": "", "verify_tls": "on",
            "ca_file": "", "enabled": "on", "sync_interval_minutes": "5"}  # fmt: skip
    response = client.post(f"/admin/inventory/vcenter/{vcenter.pk}/change/", form)
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["password"] == [REASON]
    assert stored(vcenter) == (OLD_URL, SECRET)
    form["url"] = "https://vc-a.example.com/sdk"  # same server: the empty password keeps the stored one
    assert client.post(f"/admin/inventory/vcenter/{vcenter.pk}/change/", form).status_code == 302
    assert stored(vcenter) == (OLD_URL, SECRET)


def test_a_factory_vcenter_keeps_its_password_on_other_edits():
    vc = factories.VCenterFactory(password=SECRET)
    services.update_vcenter(vcenter=vc, url=vc.url, username="someone-else", password="")
    assert VCenter.objects.get(pk=vc.pk).get_password() == SECRET


# A security review: with control of DNS or the network path, turning verification off or trusting a CA of one's
# own gets the stored password as surely as moving the URL.
TLS_OFF = TLS_OFF_REASON
NEW_CA = NEW_CA_REASON


@pytest.mark.parametrize("password", [None, ""])
def test_the_service_refuses_tls_off_or_another_ca_without_the_password(vcenter, ca_files, password):
    for change, reason in (({"verify_tls": False}, TLS_OFF), ({"ca_file": ca_files["pem"]}, NEW_CA)):
        with pytest.raises(ValidationError) as info:
            services.update_vcenter(vcenter=vcenter, password=password, **change)
        assert info.value.message_dict == {"password": [reason]}
    vc = VCenter.objects.get(pk=vcenter.pk)
    assert (vc.verify_tls, vc.ca_file, vc.get_password()) == (True, "", SECRET)


def test_dropping_a_pinned_ca_for_the_system_trust_store_needs_the_password(vcenter, ca_files):
    """Trial I-3: `vcenter set NAME --ca-file ''` and PATCH {"ca_file": ""} kept the password, though every public
    CA is then trusted for the vCenter's name (README: an edit keeps the password unless the CA file changes)."""
    services.update_vcenter(vcenter=vcenter, ca_file=ca_files["pem"], password="With-It-1")
    with pytest.raises(ValidationError) as info:
        services.update_vcenter(vcenter=vcenter, ca_file="")
    assert info.value.message_dict == {"password": [NEW_CA]}
    vc = VCenter.objects.get(pk=vcenter.pk)
    assert (vc.ca_file, vc.get_password()) == (ca_files["pem"], "With-It-1")


def test_what_keeps_or_strengthens_verification_needs_no_password(vcenter, ca_files):
    services.update_vcenter(vcenter=vcenter, ca_file=ca_files["pem"], password="With-It-1")
    services.update_vcenter(vcenter=vcenter, ca_file=ca_files["pem"], verify_tls=True, enabled=False)  # unchanged
    services.update_vcenter(vcenter=vcenter, ca_file="", password="With-It-1")  # the system's trust store
    services.update_vcenter(vcenter=vcenter, verify_tls=False, password="With-It-2")
    services.update_vcenter(vcenter=vcenter, verify_tls=True)  # verification back on
    vc = VCenter.objects.get(pk=vcenter.pk)
    assert (vc.verify_tls, vc.ca_file, vc.get_password()) == (True, "", "With-It-2")


def test_api_page_and_admin_refuse_tls_off_without_the_password(api_as, admin, client, vcenter):  # noqa: F811
    path = f"/api/vcenters/{vcenter.pk}/"
    assert api_as("admin").patch(path, {"verify_tls": False}, format="json").json() == {"password": [TLS_OFF]}
    page = admin.post(f"/vcenters/{vcenter.pk}/edit/", vcenter_post(name="vc-a", url=OLD_URL, password="",
                                                                      verify_tls=None))  # fmt: skip
    assert page.status_code == 400 and "TLS verification is turned off" in field_errors(text(page), "password")
    client.force_login(get_user_model().objects.create_superuser("root", password="x-Long-Passw0rd"))
    form = {
        "name": "vc-a",
        "url": OLD_URL,
        "username": "svc",
        "password": "",
        "ca_file": "",
        "enabled": "on",
        "sync_interval_minutes": "5",
    }  # fmt: skip  (no verify_tls: the box unticked)
    response = client.post(f"/admin/inventory/vcenter/{vcenter.pk}/change/", form)
    assert response.context["adminform"].form.errors["password"] == [TLS_OFF]
    assert VCenter.objects.get(pk=vcenter.pk).verify_tls is True
