"""The vCenter field validators, as the model (and so every path that saves a vCenter) applies them; and how a
row stored before they existed still reads, edits and explains itself."""

from pathlib import Path

import pytest
from django.core.exceptions import ValidationError

from inventory import services
from inventory.models import SyncStatus, VCenter
from inventory.validators import validate_ca_file, validate_vcenter_url
from inventory.vsphere.connection import VCenterConfigError
from tests import factories
from tests.api.support import api_as  # noqa: F401
from tests.inventory.cafiles import BAD_CA_FILES

pytestmark = pytest.mark.django_db


def test_validators_accept_short_names_addresses_and_a_pem_ca(ca_files):
    for url in ["https://vcsa01/sdk", "https://10.0.0.5:8443/sdk", "https://[fd00::10]/sdk"]:
        validate_vcenter_url(url)
    validate_ca_file(ca_files["pem"])
    validate_ca_file("")  # no CA file: the system's CAs


def test_validators_raise_a_field_message():
    with pytest.raises(ValidationError) as info:
        validate_vcenter_url("http://vc.example.com/sdk")
    assert info.value.messages == ["vCenter's API is HTTPS only: use https://vc.example.com/sdk"]


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"url": "http://vc.example.com/sdk"}, "url", "HTTPS only"),
        ({"url": "https://vc example/sdk"}, "url", "must not contain spaces"),
        ({"ca_file": "missing"}, "ca_file", "does not exist"),
        ({"ca_file": "not-pem"}, "ca_file", "is not a PEM certificate"),
    ],
)
def test_full_clean_refuses_naming_the_field(ca_files, fields, field, message):
    if "ca_file" in fields:
        fields = {"ca_file": ca_files[fields["ca_file"]]}
    vcenter = VCenter(**{"name": "vc", "url": "https://vcsa01/sdk", "username": "u", **fields})
    with pytest.raises(ValidationError) as info:
        vcenter.full_clean()
    assert set(info.value.message_dict) == {field} and message in info.value.message_dict[field][0]


def test_full_clean_accepts_a_short_name_and_a_pem_ca(ca_files):
    VCenter(name="vc", url="https://vcsa01/sdk", username="u", ca_file=ca_files["pem"]).full_clean()


@pytest.fixture
def legacy() -> VCenter:
    """A vCenter stored before the checks: an http:// URL (the factory saves without validating)."""
    return factories.VCenterFactory(name="old", url="http://vc-old.example.com/sdk")


def test_a_stored_http_vcenter_still_reads_and_can_be_changed_without_touching_its_url(legacy):
    legacy.refresh_from_db()
    assert legacy.url == "http://vc-old.example.com/sdk"
    services.update_vcenter(vcenter=legacy, enabled=False, sync_interval_minutes=30)
    legacy.refresh_from_db()
    assert not legacy.enabled and legacy.url == "http://vc-old.example.com/sdk"


def test_a_stored_http_vcenter_is_refused_when_its_url_is_set_again(legacy):
    with pytest.raises(ValidationError) as info:
        services.update_vcenter(vcenter=legacy, url=legacy.url)
    assert "HTTPS only" in info.value.message_dict["url"][0]
    # another scheme and port: the stored password does not follow on its own
    services.update_vcenter(vcenter=legacy, url="https://vc-old.example.com/sdk", password="Pw-Again-1")
    assert VCenter.objects.get(pk=legacy.pk).url == "https://vc-old.example.com/sdk"


def test_a_stored_http_vcenter_fails_its_test_and_sync_with_the_reason(legacy):
    with pytest.raises(VCenterConfigError) as info:
        services.test_vcenter_connection(vcenter=legacy)
    assert info.value.message == "url: vCenter's API is HTTPS only: use https://vc-old.example.com/sdk"
    with pytest.raises(services.SyncFailed) as failed:
        services.sync_vcenter(vcenter=legacy)
    assert "HTTPS only" in failed.value.run.error and "TLS" not in failed.value.run.error
    legacy.refresh_from_db()
    assert legacy.last_sync_status == SyncStatus.FAILED


@pytest.mark.parametrize("kind", BAD_CA_FILES)
def test_a_stored_ca_file_that_no_longer_loads_does_not_block_other_changes(ca_files, kind):
    vcenter = factories.VCenterFactory(ca_file=ca_files[kind])
    services.update_vcenter(vcenter=vcenter, enabled=False)
    with pytest.raises(ValidationError) as info:
        services.update_vcenter(vcenter=vcenter, ca_file=ca_files[kind])
    assert BAD_CA_FILES[kind] in info.value.message_dict["ca_file"][0]
    with pytest.raises(VCenterConfigError, match=f"^ca_file: .*{BAD_CA_FILES[kind]}"):
        services.test_vcenter_connection(vcenter=vcenter)


def test_with_a_ca_folder_a_ca_file_elsewhere_is_refused_without_saying_whether_it_exists(ca_files, settings, api_as):  # noqa: F811
    """A security review: the field told an admin-role user which server files exist ("does not exist" for
    /root/.ssh/id_rsa, "is not a PEM certificate" for /etc/passwd). VCENTER_CA_DIR confines it."""
    folder = str(Path(ca_files["pem"]).parent)
    settings.VCENTER_CA_DIR = folder
    validate_ca_file(ca_files["pem"])  # inside: loaded and checked as before
    with pytest.raises(ValidationError, match="is not a PEM certificate"):
        validate_ca_file(ca_files["not-pem"])
    answers = set()
    for path in ("/etc/passwd", "/root/.ssh/id_rsa", "/no/such/file", f"{folder}/../outside.pem", folder):
        with pytest.raises(ValidationError) as info:
            validate_ca_file(path)
        answers.add(info.value.messages[0])
    assert answers == {f"must be a file under {folder} (VCENTER_CA_DIR)"}
    body = {"name": "probe", "url": "https://vc.example.com/sdk", "username": "u", "password": "Pw-123456",
            "ca_file": "/etc/passwd"}  # fmt: skip
    response = api_as("admin").post("/api/vcenters/", body, format="json")
    assert response.status_code == 400 and response.json() == {
        "ca_file": [f"must be a file under {folder} (VCENTER_CA_DIR)"]
    }
