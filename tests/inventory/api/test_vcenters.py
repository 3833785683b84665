"""Managing vCenters through the API (admin role): create, update, partial update, delete, connection test.

The password is write-only: no response carries it, in any form, and an empty one on update keeps it.
"""

from __future__ import annotations

import pytest
from django_celery_beat.models import PeriodicTask

from inventory.models import VCenter
from tests import factories
from tests.api.support import SECRET
from tests.inventory.cafiles import BAD_CA_FILES

pytestmark = pytest.mark.django_db

NEW = {
    "name": "vc-east",
    "url": "https://vc-east.example.com/sdk",
    "username": "administrator@vsphere.local",
    "password": SECRET,
    "verify_tls": True,
    "sync_interval_minutes": 15,
}


def assert_no_secret(response, vcenter: VCenter | None = None) -> None:
    body = response.content.decode()
    assert SECRET not in body
    assert "password_encrypted" not in body
    if response["Content-Type"].startswith("application/json"):
        assert '"password"' not in body  # (the browsable API's edit form has an empty password input)
    if vcenter is not None and vcenter.password_encrypted:
        assert vcenter.password_encrypted not in body


@pytest.fixture
def admin(api_as):
    return api_as("admin")


def test_create_stores_the_password_encrypted_and_schedules_syncs(admin):
    response = admin.post("/api/vcenters/", NEW, format="json")
    assert response.status_code == 201, response.content
    doc = response.json()
    assert doc["name"] == "vc-east" and doc["has_password"] is True and doc["sync_interval_minutes"] == 15
    vcenter = VCenter.objects.get(pk=doc["id"])
    assert vcenter.get_password() == SECRET
    assert_no_secret(response, vcenter)
    task = PeriodicTask.objects.get(name="sync vCenter vc-east")
    assert task.interval.every == 15 and task.enabled


def test_every_vcenter_response_leaves_the_password_out(admin, settings):
    settings.VCENTER_CONNECT_TIMEOUT = 2
    created = admin.post("/api/vcenters/", {**NEW, "url": "https://127.0.0.1:9/sdk"}, format="json")
    assert_no_secret(created)
    vcenter = VCenter.objects.get(pk=created.json()["id"])
    path = f"/api/vcenters/{vcenter.pk}/"
    for response in [
        admin.get("/api/vcenters/"),
        admin.get(path),
        admin.put(path, {**NEW, "url": "https://127.0.0.1:9/sdk", "password": ""}, format="json"),
        admin.patch(path, {"password": SECRET, "enabled": False}, format="json"),
        admin.post(f"{path}test/"),
        admin.patch(path, {"name": "bad name!", "password": SECRET}, format="json"),  # a 400 echoes nothing either
        admin.get("/api/", HTTP_ACCEPT="text/html"),
        admin.get(path, HTTP_ACCEPT="text/html"),  # the browsable API
    ]:
        assert response.status_code in (200, 400), response.content
        assert_no_secret(response, vcenter)


def test_empty_or_missing_password_on_update_keeps_it(admin):
    vcenter = factories.VCenterFactory(password=SECRET)
    path = f"/api/vcenters/{vcenter.pk}/"
    put = {"name": vcenter.name, "url": vcenter.url, "username": "someone-else", "password": ""}
    assert admin.put(path, put, format="json").status_code == 200
    assert admin.patch(path, {"enabled": False}, format="json").status_code == 200
    vcenter.refresh_from_db()
    assert vcenter.get_password() == SECRET and vcenter.username == "someone-else" and not vcenter.enabled
    assert not PeriodicTask.objects.get(name=f"sync vCenter {vcenter.name}").enabled

    assert admin.patch(path, {"password": "New-Secret-9"}, format="json").status_code == 200
    vcenter.refresh_from_db()
    assert vcenter.get_password() == "New-Secret-9"


def test_rename_moves_the_schedule(admin):
    vcenter = factories.VCenterFactory(name="old-name")
    assert admin.patch(f"/api/vcenters/{vcenter.pk}/", {"name": "new-name"}, format="json").status_code == 200
    assert list(PeriodicTask.objects.filter(name__startswith="sync vCenter").values_list("name", flat=True)) == [
        "sync vCenter new-name"
    ]


@pytest.mark.reliability("api input", "bad vCenter fields")
@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": "has spaces"}, "name"),
        ({"url": "not a url"}, "url"),
        ({"url": "ftp://vc.example.com/sdk"}, "url"),
        ({"sync_interval_minutes": 0}, "sync_interval_minutes"),
        ({"password": ""}, "password"),
        ({"username": ""}, "username"),
    ],
)
def test_bad_input_is_400_naming_the_field_and_stores_nothing(admin, change, field):
    response = admin.post("/api/vcenters/", {**NEW, **change}, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()
    assert not VCenter.objects.exists() and not PeriodicTask.objects.filter(name__startswith="sync vCenter").exists()


@pytest.mark.reliability("api input", "bad vCenter fields")
def test_duplicate_names_are_400(admin):
    factories.VCenterFactory(name="vc-east")
    response = admin.post("/api/vcenters/", NEW, format="json")
    assert response.status_code == 400 and "name" in response.json()
    assert VCenter.objects.count() == 1


@pytest.mark.reliability("api input", "bad vCenter fields")
def test_bad_update_changes_nothing(admin):
    vcenter = factories.VCenterFactory(password=SECRET)
    response = admin.patch(f"/api/vcenters/{vcenter.pk}/", {"url": "nope", "username": "x"}, format="json")
    assert response.status_code == 400 and set(response.json()) == {"url"}
    fresh = VCenter.objects.get(pk=vcenter.pk)
    assert (fresh.url, fresh.username) == (vcenter.url, vcenter.username)


@pytest.mark.parametrize(
    "url", ["https://vcsa01/sdk", "https://vcsa01:8443/sdk", "https://10.0.0.5/sdk", "https://[fd00::10]:8443/sdk"]
)
def test_short_host_names_and_addresses_are_accepted(admin, url):
    response = admin.post("/api/vcenters/", {**NEW, "url": url}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["url"] == url


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://vc-east.example.com/sdk", "vCenter's API is HTTPS only: use https://vc-east.example.com/sdk"),
        ("ftp://vc-east.example.com/sdk", "HTTPS only, not ftp://"),
        ("vc-east/sdk", "must start with https:// (did you mean https://vc-east/sdk?)"),
        ("https://vc east/sdk", "must not contain spaces"),
        ("https:///sdk", "the host is missing"),
    ],
)
def test_urls_other_than_https_to_a_host_are_400_with_the_reason(admin, url, message):
    response = admin.post("/api/vcenters/", {**NEW, "url": url}, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"url"} and message in response.json()["url"][0]
    assert not VCenter.objects.exists()


def test_an_update_to_an_http_url_is_400_and_changes_nothing(admin):
    vcenter = factories.VCenterFactory(url="https://vc.example.com/sdk")
    response = admin.patch(f"/api/vcenters/{vcenter.pk}/", {"url": "http://vc.example.com/sdk"}, format="json")
    assert response.status_code == 400
    assert response.json() == {"url": ["vCenter's API is HTTPS only: use https://vc.example.com/sdk"]}
    assert VCenter.objects.get(pk=vcenter.pk).url == "https://vc.example.com/sdk"


def test_a_pem_ca_file_is_accepted(admin, ca_files):
    response = admin.post("/api/vcenters/", {**NEW, "ca_file": ca_files["pem"]}, format="json")
    assert response.status_code == 201 and response.json()["ca_file"] == ca_files["pem"]


@pytest.mark.parametrize(("kind", "message"), BAD_CA_FILES.items())
def test_a_ca_file_that_does_not_load_is_400_with_the_reason(admin, ca_files, kind, message):
    response = admin.post("/api/vcenters/", {**NEW, "ca_file": ca_files[kind]}, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"ca_file"} and message in response.json()["ca_file"][0]
    assert not VCenter.objects.exists()
    vcenter = factories.VCenterFactory()
    response = admin.patch(f"/api/vcenters/{vcenter.pk}/", {"ca_file": ca_files[kind]}, format="json")
    assert response.status_code == 400 and message in response.json()["ca_file"][0]
    assert VCenter.objects.get(pk=vcenter.pk).ca_file == ""


def test_a_stored_http_vcenter_reads_updates_and_explains_its_failed_test(admin):
    vcenter = factories.VCenterFactory(url="http://vc-old.example.com/sdk")  # stored before the checks
    path = f"/api/vcenters/{vcenter.pk}/"
    assert admin.get("/api/vcenters/").json()["results"][0]["url"] == "http://vc-old.example.com/sdk"
    assert admin.get(path).json()["url"] == "http://vc-old.example.com/sdk"
    assert admin.patch(path, {"enabled": False}, format="json").status_code == 200
    tested = admin.post(f"{path}test/").json()
    assert tested == {"ok": False, "error": "url: vCenter's API is HTTPS only: use https://vc-old.example.com/sdk"}


@pytest.mark.reliability("api input", "read-only fields written")
def test_status_fields_are_read_only(admin):
    vcenter = factories.VCenterFactory()
    response = admin.patch(
        f"/api/vcenters/{vcenter.pk}/", {"last_sync_status": "success", "inventory_stale": True}, format="json"
    )
    assert response.status_code == 400 and set(response.json()) == {"last_sync_status", "inventory_stale"}
    assert "read-only field" in response.json()["last_sync_status"][0]
    doc = admin.get(f"/api/vcenters/{vcenter.pk}/").json()
    assert doc["last_sync_status"] == "never" and doc["inventory_stale"] is False


def test_delete_removes_the_vcenter_its_inventory_and_schedule(admin, demo):
    assert PeriodicTask.objects.filter(name="sync vCenter demo-lab").exists()
    response = admin.delete(f"/api/vcenters/{demo.pk}/")
    assert response.status_code == 200
    assert response.json() == {"id": demo.pk, "name": "demo-lab", "effects": []}  # no reservations here
    assert not VCenter.objects.exists()
    assert not PeriodicTask.objects.filter(name="sync vCenter demo-lab").exists()
    assert admin.get("/api/hosts/").json()["count"] == 0


@pytest.mark.reliability("vcenter", "unreachable vCenter in a connection test")
def test_connection_test_reports_the_error_safely(admin, settings):
    settings.VCENTER_CONNECT_TIMEOUT = 2
    vcenter = factories.VCenterFactory(url="https://127.0.0.1:9/sdk", password=SECRET)
    response = admin.post(f"/api/vcenters/{vcenter.pk}/test/")
    assert response.status_code == 200
    doc = response.json()
    assert doc["ok"] is False and doc["error"] and "127.0.0.1" in doc["error"]
    assert_no_secret(response, vcenter)


@pytest.mark.vcsim
def test_connection_test_reports_the_version(api_as, lab_vcenter):
    response = api_as("admin").post(f"/api/vcenters/{lab_vcenter.pk}/test/")
    assert response.status_code == 200
    doc = response.json()
    assert doc["ok"] is True and doc["version"] and doc["api_type"] == "VirtualCenter"
    assert_no_secret(response, lab_vcenter)
