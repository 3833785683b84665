"""`manage.py watch_vcenter` run in-process against the vcsim demo lab."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from pyVmomi import vim

from inventory.management.commands.watch_vcenter import Command
from inventory.models import SyncRun, SyncStatus, VirtualMachine
from inventory.vsphere.connection import Endpoint, connect

pytestmark = pytest.mark.django_db(transaction=True)

TIMEOUT = 60  # generous: nothing below depends on timing except as an upper bound


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def start_command(command: Command, *args: str) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def target() -> None:
        try:
            call_command(command, *args)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()  # the thread's own database connection

    thread = threading.Thread(target=target, name="watch_vcenter", daemon=True)
    thread.start()
    return thread, errors


def watch_runs(status: str = SyncStatus.SUCCESS) -> int:
    return SyncRun.objects.filter(trigger=SyncRun.Trigger.WATCH, status=status).count()


def power_off(lab, vm_name: str) -> str:
    ep = Endpoint(url=lab.url, username=lab.username, password=lab.password, ca_file=lab.cert_path)
    with connect(ep) as si:
        view = si.content.viewManager.CreateContainerView(si.content.rootFolder, [vim.VirtualMachine], True)
        vm = next(v for v in view.view if v.name == vm_name)
        task = vm.PowerOffVM_Task()
        wait_until(lambda: task.info.state in ("success", "error"), "the power-off task")
        assert task.info.state == "success"
        return vm._moId


def test_initial_sync_then_a_power_off_triggers_one_more_sync(lab_vcenter, demo_lab, caplog):
    caplog.set_level(logging.INFO, logger="inventory.watch")
    command = Command()
    thread, errors = start_command(command, "lab", "--max-wait", "1", "--debounce", "0.5", "--max-resyncs", "1")

    wait_until(lambda: watch_runs() >= 1, "the initial full sync")
    assert VirtualMachine.objects.get(name="chat-a").power_state == "poweredOn"
    moref = power_off(demo_lab, "chat-a")

    thread.join(TIMEOUT)
    assert not thread.is_alive(), "the watch did not resync after the power-off"
    assert errors == []
    assert watch_runs() == 2
    assert watch_runs(SyncStatus.FAILED) == 0
    assert VirtualMachine.objects.get(name="chat-a").power_state == "poweredOff"
    assert f"{moref} runtime.powerState" in caplog.text
    assert demo_lab.password not in caplog.text


def test_a_dead_vcenter_leads_to_reconnect_attempts_not_a_crash(lab_vcenter, demo_lab, caplog):
    caplog.set_level(logging.INFO, logger="inventory.watch")
    command = Command()
    thread, errors = start_command(command, "lab", "--max-wait", "1", "--retry-initial", "0.05", "--retry-max", "0.2")
    wait_until(lambda: watch_runs() >= 1, "the initial full sync")

    demo_lab.kill()
    wait_until(lambda: "reconnect attempt 3" in caplog.text, "three reconnect attempts")
    assert thread.is_alive()
    command.stop.set()
    thread.join(TIMEOUT)

    assert not thread.is_alive() and errors == []
    assert "lost (connection)" in caplog.text
    assert watch_runs() == 1
    assert demo_lab.password not in caplog.text


def test_max_cycles_bounds_the_loop_when_the_vcenter_stays_down(lab_vcenter, demo_lab, caplog):
    caplog.set_level(logging.INFO, logger="inventory.watch")
    demo_lab.kill()
    call_command("watch_vcenter", "lab", "--retry-initial", "0", "--max-cycles", "3")
    assert "reconnect attempt 2" in caplog.text
    assert "connection refused" in caplog.text
    assert SyncRun.objects.count() == 0  # nothing is synced while the watch cannot be created


def test_sigterm_leaves_a_blocking_wait_and_exits_cleanly(lab_vcenter, demo_lab):
    command = Command()

    def send_sigterm_once_waiting() -> None:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            watcher = command._watcher
            if watcher is not None and watcher.waiting:
                os.kill(os.getpid(), signal.SIGTERM)
                return
            time.sleep(0.05)

    previous = signal.getsignal(signal.SIGTERM)
    killer = threading.Thread(target=send_sigterm_once_waiting, daemon=True)
    killer.start()
    started = time.monotonic()
    call_command(command, "lab", "--max-wait", "600")  # runs in the main thread: real signal handlers
    killer.join(TIMEOUT)

    assert time.monotonic() - started < TIMEOUT  # did not sit out the 600 s wait
    assert command.stop.is_set()
    assert watch_runs() == 1
    assert signal.getsignal(signal.SIGTERM) is previous  # handlers restored
    # vcsim keeps serving the abandoned wait until its maxWaitSeconds (a real vCenter drops it with the
    # session), so a clean SIGTERM of the lab would sit it out: kill it instead.
    demo_lab.kill()


def test_unknown_vcenter_is_a_command_error(db):
    with pytest.raises(CommandError, match="no vCenter named 'nope'"):
        call_command("watch_vcenter", "nope")


def test_wrong_password_stops_instead_of_retrying(lab_vcenter, demo_lab):
    lab_vcenter.set_password("wrong")
    lab_vcenter.save()
    with pytest.raises(CommandError, match="rejected the login") as exc:
        call_command("watch_vcenter", "lab", "--max-cycles", "5")
    assert "wrong" not in str(exc.value).replace("wrong password", "")
