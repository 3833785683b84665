"""A registered vCenter whose instance UUID changes (another vCenter answers at the same URL, or it was redeployed:
morefs do not carry over) is not re-keyed silently (trial F-18): the sync fails naming the old and the new UUID and
what the admin does, keeps the last good inventory marked stale, and ``vcenter accept-new-identity`` confirms the
new vCenter so that the next sync applies it."""

from __future__ import annotations

import json
import uuid
from io import StringIO
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.core.management import CommandError, call_command

from inventory import services
from inventory.models import Host, SyncStatus, VCenter
from tests.api.support import token_client
from tests.factories import UserFactory
from tests.vcsim import LABS, Lab, start_lab

pytestmark = [pytest.mark.django_db, pytest.mark.vcsim]


def _uuid_of(lab_name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"gpulab:{lab_name}"))


def _other_lab_file(tmp_path: Path, name: str) -> Path:
    document = json.loads((LABS / "demo.json").read_text())
    document["name"] = name
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(document))
    return path


def _replace(lab: Lab, lab_path: Path, vcenter: VCenter) -> Lab:
    """Stop ``lab`` and serve ``lab_path`` at the same address: another vCenter behind the same registration."""
    netloc = urlsplit(lab.url).netloc
    lab.stop()
    other = start_lab(lab_path, listen=netloc)
    assert other.url == lab.url
    vcenter.ca_file = other.cert_path  # its own certificate, trusted
    VCenter.objects.filter(pk=vcenter.pk).update(ca_file=other.cert_path)
    return other


@pytest.fixture
def synced(demo_lab):
    vcenter = services.register_vcenter(
        name="lab", url=demo_lab.url, username=demo_lab.username, password=demo_lab.password,
        ca_file=demo_lab.cert_path,
    )  # fmt: skip
    services.sync_vcenter(vcenter=vcenter)
    vcenter.refresh_from_db()
    assert vcenter.instance_uuid == _uuid_of("demo")
    return vcenter


def test_a_changed_instance_uuid_fails_the_sync_and_keeps_the_last_good_inventory(synced, demo_lab, tmp_path):
    hosts = {h.pk: h.moref for h in Host.objects.filter(vcenter=synced, stale=False)}
    other = _replace(demo_lab, _other_lab_file(tmp_path, "redeployed"), synced)
    try:
        with pytest.raises(services.SyncFailed) as failed:
            services.sync_vcenter(vcenter=synced)
    finally:
        other.stop()
    error = failed.value.run.error
    old, new = _uuid_of("demo"), _uuid_of("redeployed")
    assert old in error and new in error
    assert "accept-new-identity lab" in error and "register" in error
    assert failed.value.error.retryable is False
    synced.refresh_from_db()
    assert synced.instance_uuid == old  # not re-keyed
    assert synced.last_sync_status == SyncStatus.FAILED and synced.inventory_stale
    assert {h.pk: h.moref for h in Host.objects.filter(vcenter=synced, stale=False)} == hosts


def test_accept_new_identity_lets_the_next_sync_apply_the_new_vcenter(synced, demo_lab, tmp_path):
    other = _replace(demo_lab, _other_lab_file(tmp_path, "redeployed"), synced)
    try:
        with pytest.raises(services.SyncFailed):
            services.sync_vcenter(vcenter=synced)
        new = _uuid_of("redeployed")
        with pytest.raises(CommandError, match=f"answers with instance UUID {new}, not the"):
            call_command("vcenter", "accept-new-identity", "lab", "--expect", str(uuid.uuid4()))
        assert VCenter.objects.get(pk=synced.pk).instance_uuid == _uuid_of("demo")
        out = StringIO()
        call_command("vcenter", "accept-new-identity", "lab", "--expect", new, stdout=out)
        assert _uuid_of("demo") in out.getvalue() and new in out.getvalue()
        synced.refresh_from_db()
        assert synced.instance_uuid == new
        assert services.sync_vcenter(vcenter=synced).status == SyncStatus.SUCCESS
    finally:
        other.stop()
    synced.refresh_from_db()
    assert synced.instance_uuid == new and not synced.inventory_stale


def test_accept_new_identity_refuses_when_nothing_changed_or_another_registration_holds_it(synced, demo_lab):
    with pytest.raises(CommandError, match=r"accept-new-identity: .*lab.* still has instance UUID"):
        call_command("vcenter", "accept-new-identity", "lab")
    VCenter.objects.filter(pk=synced.pk).update(instance_uuid="")
    other = services.register_vcenter(
        name="lab-old", url="https://old-vcenter.example.com/sdk", username="u", password="p"
    )
    VCenter.objects.filter(pk=other.pk).update(instance_uuid=_uuid_of("demo"))
    with pytest.raises(CommandError, match="lab-old"):
        call_command("vcenter", "accept-new-identity", "lab")


def test_the_same_vcenter_served_again_syncs_as_before(synced, demo_lab):
    again = _replace(demo_lab, LABS / "demo.json", synced)
    try:
        assert services.sync_vcenter(vcenter=synced).status == SyncStatus.SUCCESS
    finally:
        again.stop()


def test_an_admin_accepts_the_new_vcenter_through_the_api(synced, demo_lab, tmp_path):
    admin = token_client(UserFactory(role="admin"))
    url = f"/api/vcenters/{synced.pk}/accept-new-identity/"
    unchanged = admin.post(url, {"expect": _uuid_of("demo")}, format="json")
    assert unchanged.status_code == 409 and unchanged.json()["code"] == "unchanged"
    assert admin.post(url, {}, format="json").json() == {"expect": ["This field is required."]}
    planner = token_client(UserFactory(role="planner"))
    assert planner.post(url, {"expect": _uuid_of("demo")}, format="json").status_code == 403
    other = _replace(demo_lab, _other_lab_file(tmp_path, "redeployed"), synced)
    try:
        with pytest.raises(services.SyncFailed) as failed:
            services.sync_vcenter(vcenter=synced)
        new = _uuid_of("redeployed")
        assert f'POST /api/vcenters/{synced.pk}/accept-new-identity/ {{"expect": "{new}"}}' in failed.value.run.error
        wrong = admin.post(url, {"expect": str(uuid.uuid4())}, format="json")
        assert wrong.status_code == 400 and f"answers with instance UUID {new}, not the" in wrong.json()["expect"][0]
        assert VCenter.objects.get(pk=synced.pk).instance_uuid == _uuid_of("demo")
        accepted = admin.post(url, {"expect": new}, format="json")
        assert accepted.status_code == 200 and accepted.json() == {"old": _uuid_of("demo"), "new": new}
        assert services.sync_vcenter(vcenter=synced).status == SyncStatus.SUCCESS
    finally:
        other.stop()
    down = admin.post(url, {"expect": new}, format="json")  # the lab is stopped: nothing answers there
    assert down.status_code == 409 and down.json()["code"] == "unreachable"


def test_an_admin_accepts_the_new_vcenter_on_its_edit_page(synced, demo_lab, tmp_path, client):
    client.force_login(UserFactory(role="admin"))
    page = client.get(f"/vcenters/{synced.pk}/edit/").content.decode()
    assert 'id="accept-identity"' in page and _uuid_of("demo") in page
    url = f"/vcenters/{synced.pk}/accept-identity/"
    other = _replace(demo_lab, _other_lab_file(tmp_path, "redeployed"), synced)
    try:
        new = _uuid_of("redeployed")
        wrong = client.post(url, {"expect": _uuid_of("demo")})
        assert wrong.status_code == 400 and f"answers with instance UUID {new}, not the" in wrong.content.decode()
        done = client.post(url, {"expect": new}, follow=True)
        assert done.redirect_chain[-1][0] == "/vcenters/"
        assert f"instance UUID {new} accepted" in done.content.decode()
    finally:
        other.stop()
    assert VCenter.objects.get(pk=synced.pk).instance_uuid == new
