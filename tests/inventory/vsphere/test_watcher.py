"""The WaitForUpdatesEx watcher against the real vSphere API served by vcsim (the demo GPU lab)."""

from __future__ import annotations

import http.client
import time
from types import SimpleNamespace

import pytest
from pyVmomi import vim, vmodl

from inventory.vsphere.connection import Endpoint, connect
from inventory.vsphere.watcher import (
    WATCH_HOST_PROPERTIES,
    WATCH_VM_PROPERTIES,
    ResyncRequired,
    Watcher,
    as_resync,
    parse_update_set,
    watch,
)


def endpoint(lab) -> Endpoint:
    return Endpoint(url=lab.url, username=lab.username, password=lab.password, ca_file=lab.cert_path)


def find_vm(si, name: str) -> vim.VirtualMachine:
    view = si.content.viewManager.CreateContainerView(si.content.rootFolder, [vim.VirtualMachine], True)
    try:
        return next(vm for vm in view.view if vm.name == name)
    finally:
        view.DestroyView()


def wait_for_task(task, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while task.info.state not in ("success", "error"):
        assert time.monotonic() < deadline, "vCenter task did not finish"
        time.sleep(0.05)
    assert task.info.state == "success", task.info.error


def next_batch(watcher: Watcher, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        batch = watcher.wait(max_wait=2)
        if batch is not None:
            return batch
    pytest.fail("no change batch within the timeout")


def test_initial_result_covers_every_host_and_vm_then_a_power_off_is_reported(demo_lab):
    with connect(endpoint(demo_lab)) as si, connect(endpoint(demo_lab)) as admin, Watcher(si) as watcher:
        initial = watcher.start()
        assert initial.initial
        kinds = {(c.type, c.kind) for c in initial.changes}
        assert kinds == {("HostSystem", "enter"), ("VirtualMachine", "enter")}
        assert sum(c.type == "HostSystem" for c in initial.changes) == 5
        assert sum(c.type == "VirtualMachine" for c in initial.changes) == 8
        # Only the change-relevant paths are watched.
        for change in initial.changes:
            allowed = WATCH_HOST_PROPERTIES if change.type == "HostSystem" else WATCH_VM_PROPERTIES
            assert set(change.paths) <= set(allowed)

        vm = find_vm(admin, "chat-a")
        wait_for_task(vm.PowerOffVM_Task())

        batch = next_batch(watcher)
        assert not batch.initial
        assert [(c.moref, c.type, c.kind, c.paths) for c in batch.changes] == [
            (vm._moId, "VirtualMachine", "modify", ("runtime.powerState",))
        ]
        assert batch.describe() == f"{vm._moId} runtime.powerState"
        assert watcher.version == batch.version  # opaque ("-" on vcsim 0.24.2), passed back as is


def test_a_quiet_wait_returns_none_and_the_generator_yields_changes(demo_lab):
    with connect(endpoint(demo_lab)) as si, connect(endpoint(demo_lab)) as admin:
        with Watcher(si) as watcher:
            watcher.start()
            assert watcher.wait(max_wait=1) is None

        gen = watch(si, max_wait=2)
        assert next(gen).initial
        vm = find_vm(admin, "batch-x")  # powered off in the lab
        wait_for_task(vm.PowerOnVM_Task())
        batch = next(gen)
        assert (vm._moId, "runtime.powerState") in {(c.moref, p) for c in batch.changes for p in c.paths}
        gen.close()  # destroys filter, view and collector


def test_a_lost_session_surfaces_as_resync_required(demo_lab):
    with connect(endpoint(demo_lab)) as si:
        watcher = Watcher(si)
        watcher.start()
        si.content.sessionManager.Logout()
        with pytest.raises(ResyncRequired) as exc:
            watcher.wait(max_wait=1)
        assert exc.value.reason == "session"
        watcher.close()


def test_a_dead_vcenter_surfaces_as_resync_required(demo_lab):
    with connect(endpoint(demo_lab)) as si:
        watcher = Watcher(si)
        watcher.start()
        demo_lab.kill()
        with pytest.raises(ResyncRequired) as exc:
            watcher.wait(max_wait=1)
        assert exc.value.reason == "connection"
        assert demo_lab.password not in str(exc.value)
        watcher.close()


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (vim.fault.NotAuthenticated(), "session"),
        (vmodl.query.InvalidCollectorVersion(), "version"),
        (ConnectionResetError(104, "reset"), "connection"),
        (http.client.RemoteDisconnected("gone"), "connection"),
        (TimeoutError(), "connection"),
        (vmodl.fault.RequestCanceled(), "fault"),
    ],
)
def test_reconnect_situations_are_classified(error, reason):
    resync = as_resync(error, "https://vc.example/sdk")
    assert isinstance(resync, ResyncRequired) and resync.reason == reason and resync.retryable


def test_bugs_are_not_mistaken_for_reconnects():
    assert as_resync(KeyError("x")) is None


def test_parse_update_set_keeps_the_version_opaque():
    obj = vim.VirtualMachine("vm-9")
    update_set = SimpleNamespace(
        version="opaque/42",
        filterSet=[
            SimpleNamespace(
                objectSet=[
                    SimpleNamespace(
                        obj=obj,
                        kind="modify",
                        changeSet=[SimpleNamespace(name="runtime.host"), SimpleNamespace(name="runtime.host")],
                    ),
                    SimpleNamespace(obj=vim.HostSystem("host-3"), kind="leave", changeSet=None),
                ]
            )
        ],
    )
    batch = parse_update_set(update_set)
    assert batch.version == "opaque/42"
    assert batch.describe() == "vm-9 runtime.host; host-3 leave"
