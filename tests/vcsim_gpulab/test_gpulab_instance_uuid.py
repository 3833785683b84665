"""Each gpulab lab is its own vCenter (trial B-8): stock vcsim serves one fixed instance UUID, so a second lab
registered in the advisor was refused as "the same vCenter" as the first. The UUID now comes from the lab: its
``instance_uuid`` field, else a name-based UUID of the lab's name."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest

from inventory import services
from inventory.models import SyncStatus
from inventory.vsphere.connection import Endpoint, connect
from tests.vcsim import LABS, Lab, start_lab

pytestmark = pytest.mark.vcsim


def served_uuid(lab: Lab) -> str:
    endpoint = Endpoint(url=lab.url, username=lab.username, password=lab.password, ca_file=lab.cert_path)
    with connect(endpoint) as si:
        return str(si.content.about.instanceUuid)


def lab_name(lab: Lab) -> str:
    return json.loads(lab.lab_path.read_text())["name"]


def lab_file(tmp_path: Path, **fields) -> Path:
    document = json.loads((LABS / "demo.json").read_text())
    document.update(fields)
    path = tmp_path / "lab.json"
    path.write_text(json.dumps(document))
    return path


@pytest.mark.django_db
def test_two_labs_served_at_once_register_and_sync_as_two_vcenters(gpulab_binary):
    demo, edge = start_lab(LABS / "demo.json"), start_lab(LABS / "edge.json")
    try:
        runs = []
        for name, lab in (("lab", demo), ("lab2", edge)):
            vcenter = services.register_vcenter(
                name=name, url=lab.url, username=lab.username, password=lab.password, ca_file=lab.cert_path
            )
            runs.append(services.sync_vcenter(vcenter=vcenter))
            vcenter.refresh_from_db()
            assert vcenter.instance_uuid == str(uuid.uuid5(uuid.NAMESPACE_URL, f"gpulab:{lab_name(lab)}"))
        assert [run.status for run in runs] == [SyncStatus.SUCCESS, SyncStatus.SUCCESS]
        # the same lab served again is the same vCenter, as a real one is across restarts
        again = start_lab(LABS / "demo.json")
        try:
            assert served_uuid(again) == served_uuid(demo) != served_uuid(edge)
        finally:
            again.stop()
    finally:
        demo.stop()
        edge.stop()


def test_the_lab_files_instance_uuid_is_served(gpulab_binary, tmp_path):
    given = "5F0C2F6E-1B7A-4C1E-9D2A-3E4F5A6B7C8D"
    lab = start_lab(lab_file(tmp_path, instance_uuid=given))
    try:
        assert served_uuid(lab) == given.lower()
    finally:
        lab.stop()


def test_a_lab_without_a_name_gets_a_uuid_of_its_content(gpulab_binary, tmp_path):
    first = start_lab(lab_file(tmp_path, name=""))
    (tmp_path / "other").mkdir()
    second = start_lab(lab_file(tmp_path / "other", name="", datacenter="DC-2"))
    try:
        assert served_uuid(first) != served_uuid(second)
        assert uuid.UUID(served_uuid(first)).version == 5
    finally:
        first.stop()
        second.stop()


@pytest.mark.reliability("vcsim lab", "bad lab file")
def test_an_instance_uuid_that_is_not_one_is_refused_naming_the_field(gpulab_binary, tmp_path):
    path = lab_file(tmp_path, instance_uuid="vCenter-1")
    proc = subprocess.run([str(gpulab_binary), "-lab", str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and proc.stdout == ""
    assert 'lab: instance_uuid: "vCenter-1" is not a UUID' in proc.stderr
