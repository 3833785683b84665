"""Values longer than their column: names and labels are cut with a warning, identifiers are left out with one,
and the sync succeeds; a DataError that still happens fails the sync for good (no retry), saying what it was."""

from __future__ import annotations

import json
import logging
from dataclasses import replace

import pytest
from django.db import connection

from inventory import services
from inventory.exchange import snapshot_from_document
from inventory.models import (
    Cluster,
    Datacenter,
    Gpu,
    GpuConsumer,
    Host,
    PciDevice,
    VCenter,
    VgpuProfile,
    VirtualMachine,
)
from inventory.services import columns
from inventory.vsphere.snapshot import InventorySnapshot, PciDeviceSnap
from tests.conftest import require
from tests.vcsim import LABS

pytestmark = pytest.mark.django_db

LONG_HOST = "esx-a30-" + "A" * 400  # 408 characters; Host.name is 255


def _demo() -> InventorySnapshot:
    return snapshot_from_document(json.loads((LABS / "demo.json").read_text()))


def _hostile() -> tuple[InventorySnapshot, str]:
    """The demo with every vCenter-named text too long for its column; returns it and the long host's moref."""
    snapshot = _demo()
    host = snapshot.hosts[0]
    gpu = host.graphics[0].pci_id
    snapshot.datacenters = [replace(d, name="DC-" + "d" * 300) for d in snapshot.datacenters]
    snapshot.clusters = [replace(snapshot.clusters[0], name="C-" + "c" * 300), *snapshot.clusters[1:]]
    long_pci = PciDeviceSnap(pci_id="0000:ee:00.0-and-more", class_id=0x0200, vendor_id=0x8086, device_id=1)
    fitted = replace(
        host,
        name=LONG_HOST,
        vendor="V" * 250,
        cpu_model="Cpu" + "x" * 300,
        api_version="8.0.3." + "9" * 30,
        pci_devices=(
            *(replace(d, device_name="Bridge " + "b" * 300) if d.class_id == 0x0604 else d for d in host.pci_devices),
            long_pci,
        ),
        graphics=tuple(replace(g, device_name=g.device_name + " " + "m" * 250) for g in host.graphics),
        passthru=tuple(replace(p, hardware_label="lbl" + "l" * 250) for p in host.passthru),
        shared_gpu_types=(*host.shared_gpu_types, "grid_" + "z" * 120 + "-1c", "grid_" + "q" * 30 + "-1c"),
    )
    snapshot.hosts = [fitted, *snapshot.hosts[1:]]
    vm = next(v for v in snapshot.vms if v.host_moref == host.moref)
    snapshot.vms = [replace(v, name="vm-" + "Z" * 300) if v is vm else v for v in snapshot.vms]
    snapshot.instance_uuid = "u" * 100  # VCenter.instance_uuid is 64
    assert gpu in {g.pci_id for g in fitted.graphics}
    return snapshot, host.moref


def _sync(snapshot: InventorySnapshot):
    vcenter = services.register_vcenter(name="hostile", url="https://vc.example.com/sdk", username="u", password="p")
    run = services.sync_vcenter(vcenter=vcenter, collector=lambda vc, progress=None: snapshot)
    return vcenter, run


def test_a_sync_with_names_longer_than_their_columns_succeeds_and_says_what_was_cut(caplog):
    snapshot, moref = _hostile()
    with caplog.at_level(logging.WARNING, logger="inventory.services"):
        vcenter, run = _sync(snapshot)
    assert run.status == "success", run.error
    host = Host.objects.get(vcenter=vcenter, moref=moref)
    assert host.name == LONG_HOST[:255] and host.vendor == "V" * 200 and len(host.cpu_model) == 200
    assert host.api_version == ("8.0.3." + "9" * 30)[:20]
    warnings = set(host.warnings)
    assert {
        "host name of 408 characters cut to 255",
        "host vendor of 250 characters cut to 200",
        "host CPU model of 303 characters cut to 200",
        "host API version of 36 characters cut to 20",
    } <= warnings
    assert any(w.startswith("PCI device ") and "device name of 307 characters cut to 200" in w for w in warnings)
    assert any(w.startswith("GPU ") and " model of " in w and "cut to 200" in w for w in warnings)
    assert any("hardware label of 253 characters cut to 200" in w for w in warnings)
    assert any(w.startswith("VM vm:") and "name of 303 characters cut to 255" in w for w in warnings)
    # identifiers are left out, not cut
    assert any("PCI address '0000:ee:00.0-and-more'... of 21 characters exceeds 16: its device is left out" in w
               for w in warnings)  # fmt: skip
    assert any("of 128 characters exceeds 100: left out" in w for w in warnings)
    assert any("board code of 30 characters exceeds 20: left out" in w for w in warnings)
    assert not PciDevice.objects.filter(host=host, pci_id__startswith="0000:ee").exists()
    assert not VgpuProfile.objects.filter(name__contains="zzzz").exists()
    assert not VgpuProfile.objects.filter(name__contains="qqqq").exists()
    # what was cut is stored cut, everything else as it came
    assert all(len(g.model) <= 200 and len(g.hardware_label) <= 200 for g in Gpu.objects.filter(host=host))
    assert Gpu.objects.filter(host=host).count() == len(snapshot.hosts[0].graphics)
    assert VirtualMachine.objects.get(vcenter=vcenter, name="vm-" + "Z" * 252)
    assert GpuConsumer.objects.filter(gpu__host=host).exists()
    assert Datacenter.objects.get(vcenter=vcenter).name == ("DC-" + "d" * 300)[:200]
    assert Cluster.objects.filter(vcenter=vcenter, name=("C-" + "c" * 300)[:200]).exists()
    assert Host.objects.filter(vcenter=vcenter).count() == len(snapshot.hosts)
    # what belongs to no host is said in the worker's log
    logged = [r.getMessage() for r in caplog.records]
    assert any("datacenter datacenter:GPU-DC name of 303 characters cut to 200" in m for m in logged)
    assert any("cluster cluster:hgx-cluster name of 302 characters cut to 200" in m for m in logged)
    assert any("vCenter instance UUID of 100 characters exceeds 64: not stored" in m for m in logged)
    assert VCenter.objects.get(pk=vcenter.pk).instance_uuid == ""


def test_fitting_changes_nothing_that_fits():
    snapshot = _demo()
    fitted = services.fit_to_columns(snapshot)
    assert fitted.hosts == snapshot.hosts and all(a is b for a, b in zip(fitted.hosts, snapshot.hosts, strict=True))
    assert fitted.vms == snapshot.vms and fitted.clusters == snapshot.clusters
    assert fitted.warnings == snapshot.warnings


def test_a_moref_too_long_leaves_its_object_out():
    snapshot = _demo()
    vm = snapshot.vms[0]
    snapshot.vms = [replace(vm, moref="vm-" + "9" * 120), *snapshot.vms[1:]]
    fitted = services.fit_to_columns(snapshot)
    assert len(fitted.vms) == len(snapshot.vms) - 1
    assert f"VM {vm.name!r}: moref of 123 characters exceeds 100: VM left out" in fitted.warnings


def test_a_data_error_fails_the_sync_without_a_retry_and_names_it(monkeypatch):
    """The fallback behind fit_to_columns: with the fitting skipped, PostgreSQL refuses the long host name."""
    require(connection.vendor == "postgresql", "SQLite does not enforce column lengths (CI runs PostgreSQL)")
    monkeypatch.setattr(columns, "fit_to_columns", lambda snapshot: snapshot)
    snapshot = _demo()
    snapshot.hosts = [replace(snapshot.hosts[0], name=LONG_HOST), *snapshot.hosts[1:]]
    with pytest.raises(services.SyncFailed) as failed:
        _sync(snapshot)
    assert failed.value.error.retryable is False
    message = failed.value.run.error
    assert "value too long for type character varying(255)" in message and "nothing was changed" in message
    assert failed.value.run.status == "failed" and not Host.objects.exists()
