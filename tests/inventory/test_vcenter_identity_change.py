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
