"""End to end against the real vSphere API served by govmomi's simulator (the demo GPU lab)."""

from __future__ import annotations

import json
import logging
import threading
import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from inventory import selectors, services
from inventory.models import Gpu, GpuConsumer, Host, PciDevice, SyncRun, SyncStatus, VCenter
from tests.vcsim import LABS, free_port_url, start_lab

pytestmark = pytest.mark.django_db(transaction=True)

WRITE_VERBS = ("INSERT", "UPDATE", "DELETE")


def lab_document() -> dict:
    return json.loads((LABS / "demo.json").read_text())


def gpu_view(gpu: dict) -> dict:
    return {
        "pci_id": gpu["pci_id"],
        "device_id": gpu["device_id"].lower(),
        "model": gpu["model"],
        "memory_mb": gpu["memory_mb"],
        "numa_node": gpu["numa_node"],
        "pcie_path": gpu["pcie_path"],
        "graphics_type": gpu["graphics_type"],
        "profiles": sorted(gpu["profiles"]),
        "consumers": sorted((c["vm"], c["kind"], c.get("profile")) for c in gpu["consumers"]),
    }


def host_view(host: dict) -> dict:
    return {
        "name": host["name"],
        "cluster": host["cluster"],
        "vendor": host["vendor"],
        "model": host["model"],
        "cpu": host["cpu"],
        "memory_mb": host["memory_mb"],
        "assignment_policy": host["assignment_policy"],
        "numa_nodes": sorted((n["id"], tuple(sorted(n["pci_ids"])), tuple(n["cpus"])) for n in host["numa_nodes"]),
        "bridges": sorted((b["pci_id"], b["parent"]) for b in host["bridges"]),
        "gpus": sorted((gpu_view(g) for g in host["gpus"]), key=lambda g: g["pci_id"]),
    }


def test_sync_stores_exactly_what_the_lab_describes(lab_vcenter):
    run = services.sync_vcenter(vcenter=lab_vcenter)
    assert run.status == SyncStatus.SUCCESS
    assert run.round_trips <= 6, "collection must not depend on the number of objects"

    stored = selectors.inventory_document(vcenter=lab_vcenter)
    lab = lab_document()
    assert [host_view(h) for h in stored["hosts"]] == sorted(
        (host_view(h) for h in lab["hosts"]), key=lambda h: h["name"]
    )
    assert sorted(
        (v["name"], v["host"], v["power_state"], v["cpus"], v["memory_mb"], v["memory_reservation_mb"])
        for v in stored["vms"]
    ) == sorted(
        (v["name"], v["host"], v["power_state"], v["cpus"], v["memory_mb"], v["memory_reservation_mb"])
        for v in lab["vms"]
    )
    assert sorted(c["name"] for c in stored["clusters"]) == sorted(c["name"] for c in lab["clusters"])
    assert all(not h["warnings"] for h in stored["hosts"]), [h["warnings"] for h in stored["hosts"]]
    # MIG is inferred from the vGPU types a GPU offers when vCenter (API < 8.0.3) does not report vgpuMode:
    # only the A30 host's GPUs offer nothing but MIG-backed types (the A100s and H100s offer time-sliced ones too).
    assert {g.host.name for g in Gpu.objects.filter(mig_enabled=True)} == {"esx-a30-01.lab.local"}

    lab_vcenter.refresh_from_db()
    assert lab_vcenter.last_sync_status == SyncStatus.SUCCESS and not lab_vcenter.inventory_stale
    # a host's runtime.bootTime too: GPU instances no VM holds (imported from nvidia-smi) last one host boot
    assert Host.objects.filter(vcenter=lab_vcenter).exists()
    assert not Host.objects.filter(vcenter=lab_vcenter, boot_time__isnull=True).exists()
    # runtime.bootTime: set for powered-on VMs only (imported vGPU offsets hold for one boot)
    booted = {v.name: v.boot_time is not None for v in lab_vcenter.vms.all()}
    assert booted == {v["name"]: v.get("power_state", "poweredOn") == "poweredOn" for v in lab["vms"]}


def test_resync_without_changes_writes_no_inventory_rows(lab_vcenter):
    services.sync_vcenter(vcenter=lab_vcenter)
    with CaptureQueriesContext(connection) as queries:
        run = services.sync_vcenter(vcenter=lab_vcenter)
    writes = [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].lstrip().upper().startswith(WRITE_VERBS)
        and "inventory_syncrun" not in q["sql"]
        and "inventory_vcenter" not in q["sql"]
        and "inventory_synclock" not in q["sql"]  # the lock of the embedded mode (no Redis)
    ]
    assert writes == []
    assert sum(v for k, v in run.counts.items() if k.endswith(("_created", "_updated", "_stale", "_deleted"))) == 0


def test_tls_verification_is_on_by_default(demo_lab):
    vcenter = services.register_vcenter(
        name="untrusted", url=demo_lab.url, username=demo_lab.username, password=demo_lab.password
    )
    with pytest.raises(services.SyncFailed) as exc:
        services.sync_vcenter(vcenter=vcenter)
    assert "TLS certificate verification failed" in exc.value.run.error
    assert exc.value.error.retryable is False


def test_a_certificate_the_configured_ca_did_not_sign_names_the_ca_file(demo_lab, ca_files):
    """As after a vCenter's certificate is renewed: the error points at the CA file to change, not at installing
    a CA or turning verification off."""
    vcenter = services.register_vcenter(
        name="rotated", url=demo_lab.url, username=demo_lab.username, password=demo_lab.password,
        ca_file=ca_files["pem"],
    )  # fmt: skip
    with pytest.raises(services.SyncFailed) as exc:
        services.sync_vcenter(vcenter=vcenter)
    error = exc.value.run.error
    assert "TLS certificate verification failed" in error and f"not signed by the CA in {ca_files['pem']}" in error
    assert "turn TLS verification off" not in error


def test_tls_verification_can_be_turned_off_per_vcenter(demo_lab):
    vcenter = services.register_vcenter(
        name="lab-noverify",
        url=demo_lab.url,
        username=demo_lab.username,
        password=demo_lab.password,
        verify_tls=False,
    )
    assert services.sync_vcenter(vcenter=vcenter).status == SyncStatus.SUCCESS


def test_wrong_password_fails_readably_and_never_leaks_the_password(demo_lab, caplog):
    secret = "Wr0ng-But-Secret-Pa55"
    vcenter = services.register_vcenter(
        name="badpw", url=demo_lab.url, username=demo_lab.username, password=secret, verify_tls=False
    )
    caplog.set_level(logging.DEBUG)
    with pytest.raises(services.SyncFailed) as exc:
        services.sync_vcenter(vcenter=vcenter)
    run = exc.value.run
    assert run.status == SyncStatus.FAILED
    assert "rejected the login of user 'administrator@vsphere.local'" in run.error
    assert exc.value.error.retryable is False
    vcenter.refresh_from_db()
    for text in (run.error, vcenter.last_error, str(exc.value), repr(exc.value.error), caplog.text):
        assert secret not in text


def _seed_then_break(lab_vcenter) -> tuple[int, int]:
    services.sync_vcenter(vcenter=lab_vcenter)
    lab_vcenter.refresh_from_db()
    return Gpu.objects.filter(host__vcenter=lab_vcenter).count(), GpuConsumer.objects.count()


def assert_previous_inventory_intact(vcenter: VCenter, gpus: int, consumers: int, last_success) -> None:
    vcenter.refresh_from_db()
    assert vcenter.inventory_stale is True
    assert vcenter.last_sync_status == SyncStatus.FAILED
    assert vcenter.last_success_at == last_success
    assert Gpu.objects.filter(host__vcenter=vcenter, stale=False).count() == gpus
    assert GpuConsumer.objects.count() == consumers
    assert not Host.objects.filter(vcenter=vcenter, stale=True).exists()


def test_unreachable_vcenter_keeps_the_last_good_inventory(lab_vcenter):
    gpus, consumers = _seed_then_break(lab_vcenter)
    last_success = lab_vcenter.last_success_at
    lab_vcenter.url = free_port_url(lab_vcenter.url)
    lab_vcenter.save()
    with pytest.raises(services.SyncFailed) as exc:
        services.sync_vcenter(vcenter=lab_vcenter)
    assert "connection refused" in exc.value.run.error
    assert exc.value.error.retryable is True
    assert_previous_inventory_intact(lab_vcenter, gpus, consumers, last_success)


def test_vcenter_dying_mid_sync_commits_nothing(db):
    lab = start_lab(LABS / "demo.json", delay_ms=400)
    try:
        vcenter = services.register_vcenter(
            name="flaky", url=lab.url, username=lab.username, password=lab.password, verify_tls=False
        )
        services.sync_vcenter(vcenter=vcenter)
        vcenter.refresh_from_db()
        gpus, consumers, last_success = Gpu.objects.count(), GpuConsumer.objects.count(), vcenter.last_success_at
        # Kill the simulator while the second sync is inside its SOAP calls.
        killer = threading.Timer(0.9, lab.kill)
        killer.start()
        started = time.monotonic()
        with pytest.raises(services.SyncFailed) as exc:
            services.sync_vcenter(vcenter=vcenter)
        killer.join()
        assert time.monotonic() - started >= 0.9
        assert exc.value.run.status == SyncStatus.FAILED
        assert exc.value.error.retryable is True
        assert exc.value.run.error
        assert_previous_inventory_intact(vcenter, gpus, consumers, last_success)
        assert PciDevice.objects.filter(host__vcenter=vcenter).exists()
    finally:
        lab.stop()


def test_sync_run_records_progress_counts_and_round_trips(lab_vcenter):
    run = services.sync_vcenter(vcenter=lab_vcenter)
    assert run.progress_current == run.progress_total > 0
    assert run.counts["seen_gpus"] == 20 and run.counts["seen_hosts"] == 5 and run.counts["seen_vms"] == 8
    assert run.finished_at >= run.started_at
    assert SyncRun.objects.filter(vcenter=lab_vcenter).count() == 1


def test_a_vms_boot_time_is_collected_from_runtime_boot_time(gpulab_binary, tmp_path):
    """Imported vGPU offsets hold for one power-on: the sync reads runtime.bootTime to tell a new one."""
    lab = lab_document()
    lab["vms"][0]["boot_time"] = "2026-11-30T08:15:00Z"
    path = tmp_path / "lab.json"
    path.write_text(json.dumps(lab))
    served = start_lab(path)
    try:
        vcenter = services.register_vcenter(
            name="booted", url=served.url, username=served.username, password=served.password,
            ca_file=served.cert_path,
        )  # fmt: skip
        services.sync_vcenter(vcenter=vcenter)
    finally:
        served.stop()
    vm = vcenter.vms.get(name=lab["vms"][0]["name"])
    assert vm.boot_time.isoformat() == "2026-11-30T08:15:00+00:00"
