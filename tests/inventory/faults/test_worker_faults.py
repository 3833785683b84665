"""A Celery worker (or its pool process) killed mid-collect and mid-apply, and a vCenter slowed past the soft time
limit: nothing half-written, the run says what happened, the lock is freed, the next sync completes."""

from __future__ import annotations

import os
import signal

import pytest
from django.db import connection, transaction

from inventory import locks, services, tasks
from inventory.models import SyncRun, SyncStatus, VCenter
from tests.conftest import require
from tests.inventory.faults.conftest import free_port, inventory_rows, register_lab, wait_lock_freed
from tests.vcsim import LABS, start_lab
from tests.waits import wait_for

pytestmark = [pytest.mark.faults, pytest.mark.celery_worker, pytest.mark.vcsim]

DEMO_GPUS = 20


def status_of(run_id: int) -> str:
    return SyncRun.objects.values_list("status", flat=True).get(pk=run_id)


def enqueue(vcenter: VCenter) -> SyncRun:
    with transaction.atomic():  # the task is sent at commit, as from the page and the API
        return tasks.enqueue_sync(vcenter=vcenter)


def assert_next_sync_completes(vcenter: VCenter) -> SyncRun:
    run = enqueue(vcenter)
    assert run.status == SyncStatus.QUEUED, run.error
    wait_for(lambda: SyncRun.objects.get(pk=run.pk).finished, 90, what="the next sync to finish")
    run.refresh_from_db()
    assert run.status == SyncStatus.SUCCESS, run.error
    assert inventory_rows(vcenter)["gpus"] == DEMO_GPUS
    vcenter.refresh_from_db()
    assert vcenter.last_sync_status == SyncStatus.SUCCESS and not vcenter.inventory_stale
    wait_lock_freed(vcenter, run)  # a later request's sync (the killed run's redelivered message) may hold it
    return run


def assert_reaped_as_lost(run: SyncRun, vcenter: VCenter) -> None:
    """The watchdog (as beat runs it, through the worker) marks the silent run lost and frees its lock."""

    def reaped() -> bool:
        if status_of(run.pk) == SyncStatus.LOST:
            return True
        tasks.sync_watchdog_task.delay()
        return False

    wait_for(reaped, 60, interval=1.0, what="the watchdog to mark the run lost")
    run.refresh_from_db()
    assert run.status == SyncStatus.LOST and "no heartbeat from its worker" in run.error and run.finished_at
    vcenter.refresh_from_db()
    assert vcenter.last_sync_status == SyncStatus.LOST and vcenter.inventory_stale
    assert f"sync #{run.pk} lost" in vcenter.last_error
    assert locks.holder(vcenter.pk) == ""


@pytest.mark.reliability("sync", "worker SIGKILL mid-collect")
def test_worker_killed_mid_collect_is_marked_lost_and_the_next_sync_completes(workers, gpulab_binary):
    lab = start_lab(LABS / "demo.json", delay_ms=400)
    try:
        vcenter = register_lab("killed-collect", lab)
        doomed = workers.start()
        run = enqueue(vcenter)
        wait_for(lambda: status_of(run.pk) == SyncStatus.RUNNING, 60, what="the sync to start")
        assert locks.holder(vcenter.pk) == locks.run_owner(run.pk)
        doomed.kill()

        # Right after the kill the run still looks alive: a new request is recorded as skipped, naming it.
        skipped = enqueue(vcenter)
        assert skipped.status == SyncStatus.SKIPPED and skipped.blocked_by_id == run.pk
        assert f"sync #{run.pk} of this vCenter is running" in skipped.error

        workers.start()
        assert_reaped_as_lost(run, vcenter)
        assert inventory_rows(vcenter) == {"hosts": 0, "gpus": 0, "pci": 0, "vms": 0, "consumers": 0}
        assert_next_sync_completes(vcenter)
    finally:
        lab.stop()


def lock_waiters() -> list[int]:
    """Backends of this database waiting for the vCenter row: the sync's apply transaction, blocked just before it
    commits (its heartbeat, waiting for the run row that transaction updated, is not one of them)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' "
            "AND pid <> pg_backend_pid() AND query LIKE 'UPDATE \"inventory_vcenter\"%%'"
        )
        return [row[0] for row in cursor.fetchall()]


def backends_alive() -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        return [row[0] for row in cursor.fetchall()]


def hold_apply(vcenter: VCenter, run: SyncRun):
    """Once the sync is running, hold the vCenter row so that its apply transaction (which writes every host,
    GPU and VM first) waits at the end, before it commits. FOR NO KEY UPDATE lets the inserts through."""
    wait_for(lambda: status_of(run.pk) == SyncStatus.RUNNING, 60, what="the sync to start")
    wait_for(lambda: VCenter.objects.filter(pk=vcenter.pk, last_sync_status=SyncStatus.RUNNING).exists(), 30)
    VCenter.objects.select_for_update(no_key=True).get(pk=vcenter.pk)
    return wait_for(lock_waiters, 60, interval=0.2, what="the sync to wait inside its apply transaction")


@pytest.mark.reliability("sync", "worker pool process SIGKILL mid-apply")
def test_pool_process_killed_mid_apply_rolls_back_and_the_next_sync_completes(workers, gpulab_binary):
    require(connection.vendor == "postgresql", "mid-apply faults need PostgreSQL row locks (CI runs PostgreSQL)")
    lab = start_lab(LABS / "demo.json", delay_ms=150)
    try:
        vcenter = register_lab("killed-apply", lab)
        worker = workers.start(pool="prefork")
        run = enqueue(vcenter)
        with transaction.atomic():
            backends = hold_apply(vcenter, run)
            children = worker.pool_children()
            assert children, "a prefork worker has a pool process"
            for pid in children:
                os.kill(pid, signal.SIGKILL)
        # Its backend, let go, finds its client gone and rolls the apply back.
        wait_for(lambda: not set(backends) & set(backends_alive()), 30, what="the killed sync's backend to end")
        assert inventory_rows(vcenter) == {"hosts": 0, "gpus": 0, "pci": 0, "vms": 0, "consumers": 0}
        assert_reaped_as_lost(run, vcenter)
        assert_next_sync_completes(vcenter)  # the same worker, with a new pool process
    finally:
        lab.stop()


def finished_retry(vcenter: VCenter) -> SyncRun:
    """The automatic retry (attempt 2) of the vCenter's failed sync, once it has ended."""
    retry = wait_for(lambda: SyncRun.objects.filter(vcenter=vcenter, attempt=2).first(), 60)
    wait_for(lambda: status_of(retry.pk) in (SyncStatus.SUCCESS, SyncStatus.FAILED), 120)
    retry.refresh_from_db()
    return retry


@pytest.mark.reliability("database", "connection terminated mid-apply (pg_terminate_backend)")
def test_database_connection_killed_mid_apply_fails_the_run_and_the_retry_completes(workers, gpulab_binary):
    require(connection.vendor == "postgresql", "pg_terminate_backend is PostgreSQL's (CI runs PostgreSQL)")
    lab = start_lab(LABS / "demo.json", delay_ms=150)
    try:
        vcenter = register_lab("pg-killed", lab)
        workers.start()
        run = enqueue(vcenter)
        with transaction.atomic():
            (pid,) = hold_apply(vcenter, run)
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
            wait_for(lambda: status_of(run.pk) == SyncStatus.FAILED, 30, what="the run to fail")
            assert inventory_rows(vcenter)["hosts"] == 0
        run.refresh_from_db()
        assert "the database failed during the sync" in run.error and "nothing was changed" in run.error
        retry = finished_retry(vcenter)
        noted = wait_for(lambda: SyncRun.objects.filter(pk=run.pk, error__contains="retry 1 in").first(), 30)
        assert f"(run #{retry.pk})" in noted.error  # the failed run names its retry
        assert retry.status == SyncStatus.SUCCESS, retry.error
        assert inventory_rows(vcenter)["gpus"] == DEMO_GPUS
        # the run's status is committed inside the lock; the worker lets the lock go a moment later
        wait_for(lambda: locks.holder(vcenter.pk) == "", 10, what="the retry to release its lock")
    finally:
        lab.stop()


@pytest.mark.reliability("database", "connection terminated mid-collect (pg_terminate_backend)")
def test_database_connection_killed_while_collecting_is_named_as_the_database_not_the_vcenter(workers, gpulab_binary):
    """Trial I-6: "https://…/sdk: unexpected OperationalError during the sync", the vCenter blamed for the database."""
    require(connection.vendor == "postgresql", "pg_terminate_backend is PostgreSQL's (CI runs PostgreSQL)")
    lab = start_lab(LABS / "demo.json", delay_ms=400)
    try:
        vcenter = register_lab("pg-killed-collect", lab)
        # Only the worker's connections are ended: this test process may hold others (a live server thread's,
        # left from an earlier test), which later tests on this worker would find dead.
        spared = backends_alive()
        workers.start()
        run = enqueue(vcenter)
        wait_for(lambda: status_of(run.pk) == SyncStatus.RUNNING, 60, what="the sync to start")
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() AND NOT (pid = ANY(%s))",
                [spared],
            )
        wait_for(lambda: status_of(run.pk) == SyncStatus.FAILED, 60, what="the run to fail")
        run.refresh_from_db()
        assert "the database failed during the sync" in run.error, run.error
        assert lab.url not in run.error and "unexpected" not in run.error
        retry = finished_retry(vcenter)
        assert retry.status == SyncStatus.SUCCESS, retry.error
    finally:
        lab.stop()


@pytest.mark.reliability("vcenter", "slowed past the soft time limit")
def test_a_vcenter_slower_than_the_soft_time_limit_fails_the_run_and_the_retry_completes(
    workers, gpulab_binary, settings
):
    port = free_port()
    listen = f"127.0.0.1:{port}"
    lab = start_lab(LABS / "demo.json", listen=listen)
    try:
        vcenter = register_lab("slow", lab)
        services.sync_vcenter(vcenter=vcenter)  # a good inventory first
        before = inventory_rows(vcenter)
        lab.stop()
        lab = start_lab(LABS / "demo.json", delay_ms=1000, listen=listen)  # the same vCenter, now slow
        # The sender puts the limits in the message (as the web process does from the same settings).
        settings.CELERY_TASK_SOFT_TIME_LIMIT, settings.CELERY_TASK_TIME_LIMIT = 3, 63
        workers.start(pool="prefork", env={"SYNC_SOFT_TIME_LIMIT": "3"})  # the pool enforces time limits
        run = enqueue(vcenter)
        wait_for(lambda: status_of(run.pk) == SyncStatus.FAILED, 90, what="the time limit to fail the run")
        run.refresh_from_db()
        assert "exceeded its time limit (3 s)" in run.error
        # the run is marked failed first, then its vCenter (a caller may hold the vCenter row meanwhile)
        wait_for(lambda: VCenter.objects.get(pk=vcenter.pk).inventory_stale, 10, what="the vCenter marked stale")
        assert inventory_rows(vcenter) == before
        lab.stop()
        lab = start_lab(LABS / "demo.json", listen=listen)  # the vCenter recovers: the retry chain completes
        done = wait_for(
            lambda: SyncRun.objects.filter(vcenter=vcenter, status=SyncStatus.SUCCESS, attempt__gt=1).first(), 120
        )
        assert inventory_rows(vcenter) == before
        assert not SyncRun.objects.filter(vcenter=vcenter, status__in=("queued", "running")).exists()
        vcenter.refresh_from_db()
        assert not vcenter.inventory_stale and vcenter.last_success_at >= done.finished_at
    finally:
        lab.stop()
