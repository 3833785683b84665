"""Syncing a vCenter: requesting, cancelling and skipping runs, collecting, and ``sync_vcenter`` under its lock."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import NoReturn

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import DataError, close_old_connections, connection, transaction
from django.db import Error as DatabaseError
from django.db.models import F
from django.utils import timezone

from inventory.locks import HeldLock, LockBusy, run_owner, vcenter_sync_lock
from inventory.models import PENDING_SYNC_STATUSES, SyncRun, SyncStatus, VCenter
from inventory.services.apply import apply_snapshot
from inventory.services.columns import _fitted
from inventory.services.identity import _check_one_registration, _check_same_vcenter
from inventory.services.reaping import _when, reap_lost_syncs
from inventory.services.vcenters import endpoint_for
from inventory.signals import inventory_applied
from inventory.vsphere.connection import VCenterError, VCenterTimeoutError
from inventory.vsphere.snapshot import InventorySnapshot

logger = logging.getLogger("inventory.services")  # the name its log lines carried before the split


class UnstorableInventory(VCenterError):
    """The database refused a value of the collected inventory (a DataError): retrying the same answer cannot help."""

    retryable = False


class SyncFailed(Exception):
    """A sync did not complete; ``run`` is the failed SyncRun and ``error`` the VCenterError behind it."""

    def __init__(self, run: SyncRun, error: VCenterError) -> None:
        super().__init__(error.message)
        self.run = run
        self.error = error


def start_sync_run(*, vcenter: VCenter, trigger: str, attempt: int = 1) -> SyncRun:
    return SyncRun.objects.create(vcenter=vcenter, trigger=trigger, status=SyncStatus.QUEUED, attempt=attempt)


def _pending_text(pending: SyncRun) -> str:
    if pending.status == SyncStatus.RUNNING:
        return f"sync #{pending.pk} of this vCenter is running"
    if pending.not_before and pending.not_before > timezone.now():
        return f"retry #{pending.pk} of this vCenter is queued for {_when(pending.not_before)}"
    return f"sync #{pending.pk} of this vCenter is queued"


def request_sync(
    *,
    vcenter: VCenter,
    trigger: str,
    attempt: int = 1,
    not_before: datetime | None = None,
) -> SyncRun:
    """The SyncRun for a sync request from any trigger: ``queued``, or ``skipped`` (saying by which run) when a
    queued or running sync of the vCenter already covers it, so a vCenter has at most one pending sync (and
    one retry chain). Lost runs are reaped first, so a dead worker never blocks the request."""
    reap_lost_syncs(vcenter_id=vcenter.pk)
    with transaction.atomic():
        # The row lock serializes concurrent requests for one vCenter: exactly one of them is queued.
        VCenter.objects.select_for_update().filter(pk=vcenter.pk).first()
        pending = (
            SyncRun.objects.filter(vcenter_id=vcenter.pk, status__in=PENDING_SYNC_STATUSES).order_by("created").first()
        )
        if pending is not None:
            return SyncRun.objects.create(
                vcenter=vcenter,
                trigger=trigger,
                attempt=attempt,
                status=SyncStatus.SKIPPED,
                finished_at=timezone.now(),
                blocked_by=pending,
                error=f"skipped: {_pending_text(pending)}",
            )
        return SyncRun.objects.create(
            vcenter=vcenter, trigger=trigger, status=SyncStatus.QUEUED, attempt=attempt, not_before=not_before
        )


class SyncSkipped(Exception):
    """The sync did not run because another one of the vCenter is pending; ``run`` is the skipped SyncRun."""

    def __init__(self, run: SyncRun) -> None:
        super().__init__(run.error)
        self.run = run


CANCELLED_PREFIX = "skipped: cancelled by "


class NotCancellable(Exception):
    """Only a queued run can be cancelled; the message says why this one cannot."""


def cancel_sync(*, run: SyncRun, by: str) -> SyncRun:
    """Cancel a queued run: it becomes ``skipped`` ("cancelled by NAME at HH:MM:SS") and its task message, when a
    worker takes it, is dropped (``tasks.sync_vcenter_task``), so the vCenter's next sync can be requested at once. A
    running sync is never stopped halfway: it ends by itself, or the watchdog marks it lost."""
    reason = f"cancelled by {by} at {_when(timezone.now())}"
    if not SyncRun.objects.filter(pk=run.pk, status=SyncStatus.QUEUED).update(
        status=SyncStatus.SKIPPED, finished_at=timezone.now(), error=f"skipped: {reason}"
    ):
        run.refresh_from_db()
        raise NotCancellable(
            f"sync #{run.pk} is {run.status}, not queued: only a queued sync can be cancelled"
            + (
                " (a running one ends by itself, or the watchdog marks it lost)"
                if run.status == SyncStatus.RUNNING
                else ""
            )
        )
    run.refresh_from_db()
    logger.info("sync #%s of vCenter %s %s", run.pk, run.vcenter.name, reason)
    return run


def skip_run(run: SyncRun, reason: str, blocked_by: int | None = None) -> SyncRun:
    if blocked_by is not None and not SyncRun.objects.filter(pk=blocked_by).exists():
        blocked_by = None
    SyncRun.objects.filter(pk=run.pk).update(
        status=SyncStatus.SKIPPED, finished_at=timezone.now(), error=f"skipped: {reason}", blocked_by_id=blocked_by
    )
    run.refresh_from_db()
    return run


def collect_from_vcenter(vcenter: VCenter, *, progress: Callable[[int], None] | None = None) -> InventorySnapshot:
    from inventory.vsphere.collector import collect
    from inventory.vsphere.connection import connect, count_round_trips, translate_error

    endpoint = endpoint_for(vcenter)
    with connect(endpoint) as si:
        counter = count_round_trips(si)
        try:
            snapshot = collect(si, progress=progress)
        except (VCenterError, DatabaseError):
            raise  # a database error comes from the progress writes: the sync's handler names the database
        except Exception as exc:
            raise translate_error(exc, endpoint) from None
        snapshot.round_trips = counter[0]
    return snapshot


@contextmanager
def _heartbeat(run: SyncRun, lock: HeldLock) -> Iterator[None]:
    """While the body runs, write the run's heartbeat and refresh its lock every ``SYNC_HEARTBEAT_SECONDS``.

    A thread, because collection can sit in one long SOAP call. If the process dies both stop, and the
    watchdog (``reap_lost_syncs``) marks the run lost and frees the lock.
    """
    stop = threading.Event()

    def beat() -> None:
        try:
            while not stop.wait(settings.SYNC_HEARTBEAT_SECONDS):
                try:
                    SyncRun.objects.filter(pk=run.pk, status=SyncStatus.RUNNING).update(heartbeat_at=timezone.now())
                except Exception:
                    logger.warning("sync #%s: heartbeat not written", run.pk, exc_info=True)
                    close_old_connections()
                try:
                    if not lock.refresh():
                        logger.error("sync #%s: its lock is held by another sync", run.pk)
                except Exception:
                    logger.warning("sync #%s: lock not refreshed", run.pk, exc_info=True)
        finally:
            connection.close()  # this thread's own connection

    thread = threading.Thread(target=beat, name=f"sync-heartbeat-{run.pk}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)


def sync_vcenter(
    *,
    vcenter: VCenter,
    trigger: str = SyncRun.Trigger.MANUAL,
    run: SyncRun | None = None,
    collector: Callable[..., InventorySnapshot] = collect_from_vcenter,
) -> SyncRun:
    """Collect a vCenter and apply the result under its sync lock; every trigger (beat, page, API, CLI, watcher)
    comes through here. On failure keep the stored inventory and mark it stale (SyncFailed); when another
    sync of the vCenter is pending or holds the lock, the run is ``skipped`` saying which (SyncSkipped)."""
    run = run or request_sync(vcenter=vcenter, trigger=trigger)
    if run.status == SyncStatus.SKIPPED:
        raise SyncSkipped(run)
    try:
        with vcenter_sync_lock(vcenter.pk, owner=run_owner(run.pk)) as lock, _heartbeat(run, lock):
            return _sync_locked(vcenter=vcenter, run=run, collector=collector)
    except LockBusy as exc:
        holder = exc.holder_run_id
        reason = f"sync #{holder} of this vCenter holds its lock" if holder else str(exc)
        raise SyncSkipped(skip_run(run, reason, holder)) from None


def _sync_locked(*, vcenter: VCenter, run: SyncRun, collector: Callable[..., InventorySnapshot]) -> SyncRun:
    started = timezone.now()
    SyncRun.objects.filter(pk=run.pk).update(status=SyncStatus.RUNNING, started_at=started, heartbeat_at=started)
    VCenter.objects.filter(pk=vcenter.pk).update(last_sync_status=SyncStatus.RUNNING, last_sync_at=started)

    def progress(received: int) -> None:
        SyncRun.objects.filter(pk=run.pk).update(progress_current=received, heartbeat_at=timezone.now())

    try:
        snapshot = _fitted(vcenter, collector(vcenter, progress=progress))  # its instance UUID is stored below
        with transaction.atomic():
            _check_same_vcenter(vcenter, snapshot.instance_uuid)
            _check_one_registration(vcenter, snapshot.instance_uuid)
            counts = apply_snapshot(vcenter=vcenter, snapshot=snapshot)
            finished = timezone.now()
            SyncRun.objects.filter(pk=run.pk).update(
                status=SyncStatus.SUCCESS,
                finished_at=finished,
                counts=counts,
                round_trips=snapshot.round_trips,
                progress_current=counts.get("objects", 0),
                progress_total=counts.get("objects", 0),
            )
            VCenter.objects.filter(pk=vcenter.pk).update(
                last_sync_status=SyncStatus.SUCCESS,
                last_success_at=finished,
                last_error="",
                inventory_stale=False,
                instance_uuid=snapshot.instance_uuid or F("instance_uuid"),
            )
    except VCenterError as exc:
        if isinstance(exc.__context__, SoftTimeLimitExceeded):  # the limit fired inside a vCenter call
            return _time_limit(vcenter, run)
        _record_failure(vcenter, run, exc.message)
        run.refresh_from_db()
        raise SyncFailed(run, exc) from None
    except SoftTimeLimitExceeded:
        return _time_limit(vcenter, run)
    except DataError as exc:
        # A value the database cannot store (fit_to_columns should have fitted it): the same answer fails the same
        # way on every retry, so it is a bad answer, not a passing fault.
        logger.exception("sync of vCenter %s: the database refused a value", vcenter.name)
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        message = f"the database refused a value of the inventory ({detail}); nothing was changed"
        _record_failure(vcenter, run, message)
        run.refresh_from_db()
        raise SyncFailed(run, UnstorableInventory(message)) from exc
    except DatabaseError as exc:
        # The connection died or the database refused a write: the transaction rolled back; nothing is half-written.
        logger.exception("sync of vCenter %s failed on the database", vcenter.name)
        detail = (str(exc).strip().splitlines() or [""])[0][:200]
        message = (
            f"the database failed during the sync ({type(exc).__name__}{': ' + detail if detail else ''}); "
            "nothing was changed"
        )
        _record_failure(vcenter, run, message)
        run.refresh_from_db()
        raise SyncFailed(run, VCenterError(message)) from exc
    except Exception as exc:
        # A bug or an answer we could not apply: the transaction rolled back; say what kind, keep the trace.
        logger.exception("sync of vCenter %s failed while applying the inventory", vcenter.name)
        message = f"applying the inventory failed: {type(exc).__name__}"
        _record_failure(vcenter, run, message)
        run.refresh_from_db()
        raise SyncFailed(run, VCenterError(message)) from exc
    run.refresh_from_db()
    logger.info("synced vCenter %s: %s", vcenter.name, run.counts)
    inventory_applied.send(sender=VCenter, vcenter=vcenter, counts=run.counts)
    return run


def _time_limit(vcenter: VCenter, run: SyncRun) -> NoReturn:
    """The worker's soft time limit fired: whatever was collected or applied is rolled back; a retry may be faster."""
    message = f"the sync exceeded its time limit ({settings.CELERY_TASK_SOFT_TIME_LIMIT} s)"
    _record_failure(vcenter, run, message)
    run.refresh_from_db()
    raise SyncFailed(run, VCenterTimeoutError(message))


def _record_failure(vcenter: VCenter, run: SyncRun, message: str) -> None:
    def record() -> None:
        now = timezone.now()
        SyncRun.objects.filter(pk=run.pk).update(status=SyncStatus.FAILED, finished_at=now, error=message)
        VCenter.objects.filter(pk=vcenter.pk).update(
            last_sync_status=SyncStatus.FAILED, last_error=message, inventory_stale=True
        )

    try:
        record()
    except DatabaseError:
        # A killed database connection: drop it and record the failure on a fresh one.
        connection.close()
        record()
    logger.warning("sync of vCenter %s failed: %s", vcenter.name, message)
