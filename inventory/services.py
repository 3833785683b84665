"""Writes to the inventory: registering vCenters, syncing them, applying snapshots, importing documents.

``apply_snapshot`` is the one place a collected or imported inventory becomes rows. It runs in one
transaction, diffs against what is stored (so a re-sync with no change writes nothing), uses bulk
operations, and marks vanished hosts, GPUs and VMs stale instead of deleting them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, NoReturn

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import DataError, close_old_connections, connection, models, transaction
from django.db import Error as DatabaseError
from django.db.models import F, Max, Q
from django.utils import timezone

from gpucatalog.catalog import Board, load_catalog
from gpucatalog.profiles import ProfileNameError, VgpuProfileName, parse_profile_name
from inventory import locks
from inventory.bulk import BATCH, update_field, upsert
from inventory.crypto import SecretDecryptionError
from inventory.fabric import rebuild_fabrics
from inventory.locks import HeldLock, LockBusy, run_owner, vcenter_sync_lock
from inventory.models import (
    FINISHED_SYNC_STATUSES,
    PENDING_SYNC_STATUSES,
    Cluster,
    Datacenter,
    Gpu,
    GpuConsumer,
    GraphicsType,
    Host,
    NumaNode,
    PciDevice,
    SyncRun,
    SyncStatus,
    VCenter,
    VgpuMode,
    VgpuProfile,
    VirtualMachine,
)
from inventory.occupancy import MIXED_SIZE_INFERRED_NOTE
from inventory.signals import inventory_applied
from inventory.validators import password_needed
from inventory.vsphere.connection import Endpoint, VCenterConfigError, VCenterError, VCenterTimeoutError
from inventory.vsphere.snapshot import (
    ClusterSnap,
    DatacenterSnap,
    HostSnap,
    InventorySnapshot,
    VmSnap,
    is_gpu,
)

logger = logging.getLogger(__name__)


class UnstorableInventory(VCenterError):
    """The database refused a value of the collected inventory (a DataError): retrying the same answer cannot help."""

    retryable = False


class SyncFailed(Exception):
    """A sync did not complete; ``run`` is the failed SyncRun and ``error`` the VCenterError behind it."""

    def __init__(self, run: SyncRun, error: VCenterError) -> None:
        super().__init__(error.message)
        self.run = run
        self.error = error


# ---------------------------------------------------------------------------------------------- vCenters


class PasswordUnreadable(VCenterConfigError):
    """The stored password cannot be decrypted with the configured keys (FIELD_ENCRYPTION_KEY changed)."""


def endpoint_for(vcenter: VCenter) -> Endpoint:
    """How to connect to ``vcenter``; PasswordUnreadable (a VCenterError) when its stored password is unreadable."""
    try:
        password = vcenter.get_password()
    except SecretDecryptionError as exc:
        raise PasswordUnreadable(f"{vcenter.url}: {exc}") from None
    return Endpoint(
        url=vcenter.url,
        username=vcenter.username,
        password=password,
        verify_tls=vcenter.verify_tls,
        ca_file=vcenter.ca_file,
        timeout=float(settings.VCENTER_CONNECT_TIMEOUT),
    )


# Any constant: the PostgreSQL advisory lock that serialises the "one vCenter per server" check with its write.
_VCENTER_SERVER_LOCK = 0x76635352


def lock_vcenter_servers() -> None:
    """Hold, until the transaction ends, the lock under which a vCenter's URL is checked against the others' and
    saved: without it two concurrent adds of one server could both pass ``VCenter.validate_unique``. SQLite write
    transactions are IMMEDIATE, which serialises them already."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_VCENTER_SERVER_LOCK])


@transaction.atomic
def register_vcenter(
    *,
    name: str,
    url: str,
    username: str,
    password: str,
    verify_tls: bool = True,
    ca_file: str = "",
    sync_interval_minutes: int | None = None,
    enabled: bool = True,
) -> VCenter:
    vcenter = VCenter(
        name=name,
        url=url,
        username=username,
        verify_tls=verify_tls,
        ca_file=ca_file,
        enabled=enabled,
        sync_interval_minutes=(
            settings.VCENTER_DEFAULT_SYNC_MINUTES if sync_interval_minutes is None else sync_interval_minutes
        ),
    )
    vcenter.set_password(password)
    lock_vcenter_servers()
    # the field validators check the URL and the CA file as the connection will use them; validate_unique that no
    # other vCenter has the same server
    vcenter.full_clean()
    vcenter.save()  # the receiver creates its beat schedule
    return vcenter


SYNC_TASK = "inventory.tasks.sync_vcenter_task"
VCENTER_FIELDS = ("name", "url", "username", "verify_tls", "ca_file", "enabled", "sync_interval_minutes")


def _schedule_kwargs(vcenter_id: int) -> str:
    return f'{{"vcenter_id": {vcenter_id}, "trigger": "schedule"}}'


def schedule_vcenter_sync(*, vcenter: VCenter) -> None:
    """Create or update the django-celery-beat periodic task that syncs this vCenter.

    Called on every save of a VCenter (``inventory.receivers``), so the page, the API, the admin and the
    command all keep the schedule in step; a renamed vCenter keeps one task, under its new name.
    """
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    interval, _ = IntervalSchedule.objects.get_or_create(
        every=vcenter.sync_interval_minutes, period=IntervalSchedule.MINUTES
    )
    name = f"sync vCenter {vcenter.name}"
    kwargs = _schedule_kwargs(vcenter.pk)
    PeriodicTask.objects.filter(task=SYNC_TASK, kwargs=kwargs).exclude(name=name).delete()
    task = PeriodicTask.objects.filter(name=name).first()
    wanted = {"task": SYNC_TASK, "interval_id": interval.pk, "kwargs": kwargs, "enabled": vcenter.enabled}
    if task is None:
        PeriodicTask.objects.create(name=name, **wanted)
    elif any(getattr(task, k) != v for k, v in wanted.items()):
        for k, v in wanted.items():
            setattr(task, k, v)
        task.save()  # PeriodicTask.save also tells beat that the schedule changed


def unschedule_vcenter_sync(*, vcenter_id: int) -> None:
    from django_celery_beat.models import PeriodicTask

    PeriodicTask.objects.filter(task=SYNC_TASK, kwargs=_schedule_kwargs(vcenter_id)).delete()


@transaction.atomic
def update_vcenter(*, vcenter: VCenter, password: str | None = None, **fields: Any) -> VCenter:
    """Change a vCenter's settings; an empty or missing ``password`` keeps the stored one, but only for the same
    server verified the same way: a URL to another scheme, host or port, TLS verification turned off or another CA
    file needs the password again (``inventory.validators.password_needed``).

    Raises ValidationError naming the field; nothing is saved then.
    """
    unknown = sorted(set(fields) - set(VCENTER_FIELDS))
    if unknown:
        raise ValidationError({unknown[0]: "is not a vCenter setting"})
    needs_password = None
    if not password and {"url", "verify_tls", "ca_file"} & set(fields):
        # The stored row, not the instance: a caller may have changed the instance's fields already.
        stored = (
            VCenter.objects.filter(pk=vcenter.pk)
            .values_list("url", "verify_tls", "ca_file", "password_encrypted")
            .first()
        )
        if stored and stored[3]:
            needs_password = password_needed(url=stored[0], verify_tls=stored[1], ca_file=stored[2], changes=fields)
    for key, value in fields.items():
        setattr(vcenter, key, value)
    if password:
        vcenter.set_password(password)
    if "url" in fields:
        lock_vcenter_servers()
    errors: dict[str, list[str]] = {}
    try:
        # A stored URL or CA file left out of the change is not checked again: a row saved before these checks
        # existed (an http:// URL), or whose CA file has since gone, can still be disabled or renamed; connecting
        # names the problem until it is fixed.
        vcenter.full_clean(exclude=[f for f in ("url", "ca_file") if f not in fields])
    except ValidationError as exc:
        errors = exc.message_dict
    if needs_password and "url" not in errors:  # a URL that is not valid is reported first, alone
        errors["password"] = [needs_password]
    if errors:
        raise ValidationError(errors)
    vcenter.save()
    return vcenter


def test_vcenter_connection(*, vcenter: VCenter) -> dict[str, str]:
    """Log in and return what the vCenter says about itself; raises VCenterError with a safe message
    (PasswordUnreadable when the stored password cannot be decrypted)."""
    from inventory.vsphere.connection import connect

    with connect(endpoint_for(vcenter)) as si:
        about = si.content.about
        return {
            "full_name": str(about.fullName),
            "version": str(about.version),
            "api_version": str(about.apiVersion),
            "api_type": str(about.apiType),
        }


@transaction.atomic
def remove_vcenter(*, vcenter: VCenter) -> None:
    vcenter.delete()  # the receiver removes its beat schedule


# ---------------------------------------------------------------------------------------------- syncing


def start_sync_run(*, vcenter: VCenter, trigger: str, attempt: int = 1) -> SyncRun:
    return SyncRun.objects.create(vcenter=vcenter, trigger=trigger, status=SyncStatus.QUEUED, attempt=attempt)


def _when(moment) -> str:
    return timezone.localtime(moment).strftime("%H:%M:%S")


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


def identity_changed_message(vcenter: VCenter, old: str, new: str) -> str:
    """Why a sync of ``vcenter`` refused a vCenter whose instance UUID is ``new`` where its syncs recorded ``old``,
    and what the admin does about it."""
    return (
        f"the vCenter at {vcenter.url} is not the one this registration synced: its instance UUID is {new}, not "
        f"{old} (a redeployed or replaced vCenter, or another one at this address; its object ids (morefs) do not "
        "carry over, so its inventory is not applied over the stored one, which is kept as of the last good sync). "
        f"If this is the vCenter {vcenter.name!r} should sync from now on, confirm it on the vCenter's edit page, "
        f'with POST /api/vcenters/{vcenter.pk}/accept-new-identity/ {{"expect": "{new}"}} or with `manage.py '
        f"vcenter accept-new-identity {vcenter.name} --expect {new}` (the next sync applies its inventory; hosts "
        "and VMs of the old one become stale); otherwise point the registration back at the old vCenter, or "
        "register the new one under a name of its own"
    )


def _check_same_vcenter(vcenter: VCenter, instance_uuid: str) -> None:
    """Refuse the inventory of another vCenter than the one this registration synced before (its instance UUID
    changed): applying it would re-key the estate silently. An admin confirms a new vCenter with
    ``accept_new_identity``; a registration that never recorded a UUID (imported, or not synced yet) records it."""
    stored = VCenter.objects.filter(pk=vcenter.pk).values_list("instance_uuid", flat=True).first() or ""
    if stored and instance_uuid and stored.lower() != instance_uuid.lower():
        raise VCenterConfigError(identity_changed_message(vcenter, stored, instance_uuid))


class IdentityUnchanged(Exception):
    """``accept_new_identity`` found the vCenter still answering with the instance UUID its syncs recorded."""


def accept_new_identity(*, vcenter: VCenter, expected: str = "") -> tuple[str, str]:
    """Confirm that the vCenter now answering at ``vcenter``'s URL is the one it syncs from now on: record its
    instance UUID, so that the next sync applies its inventory. Returns (old, new) UUIDs. Raises VCenterError when
    the vCenter cannot be reached, VCenterConfigError when another registration already holds the new UUID or it
    is not ``expected`` (the UUID the admin read in the failed sync), IdentityUnchanged when nothing changed."""
    from inventory.vsphere.connection import connect

    with connect(endpoint_for(vcenter)) as si:
        new = str(si.content.about.instanceUuid or "")
    if not new:
        raise VCenterConfigError(f"the vCenter at {vcenter.url} reports no instance UUID: nothing to accept")
    if expected and expected.strip().lower() != new.lower():
        raise VCenterConfigError(
            f"the vCenter at {vcenter.url} answers with instance UUID {new}, not the {expected.strip()} given "
            "(--expect): nothing was changed"
        )
    with transaction.atomic():
        _check_one_registration(vcenter, new)  # takes the registration lock
        old = VCenter.objects.select_for_update().filter(pk=vcenter.pk).values_list("instance_uuid", flat=True)[0]
        if old.lower() == new.lower():
            raise IdentityUnchanged(
                f"vCenter {vcenter.name} still has instance UUID {new}, the one its syncs recorded: nothing to accept"
            )
        VCenter.objects.filter(pk=vcenter.pk).update(instance_uuid=new)
    logger.warning("vCenter %s: new instance UUID %s accepted (was %s)", vcenter.name, new, old or "none")
    return old, new


def _check_one_registration(vcenter: VCenter, instance_uuid: str) -> None:
    """Refuse the inventory of a vCenter another registration already syncs: the URL check compares server names,
    which an IP address, an IPv6 literal or a short host name get past, and both would count every GPU. Under the
    lock that registrations take, so two first syncs of one vCenter cannot both pass."""
    if not instance_uuid:
        return
    lock_vcenter_servers()
    other = VCenter.objects.filter(instance_uuid=instance_uuid).exclude(pk=vcenter.pk).values_list("name", "url")
    if found := other.first():
        raise VCenterConfigError(
            f"{vcenter.url} is the same vCenter as {found[0]!r} ({found[1]}, instance {instance_uuid}): syncing both "
            "would count its GPUs twice; remove one of the two"
        )


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


def reap_lost_syncs(*, vcenter_id: int | None = None) -> list[int]:
    """The watchdog: mark runs whose worker died ``lost`` and free their locks; return their ids.

    A running run is lost when its heartbeat is older than ``SYNC_LOST_AFTER`` seconds; a queued run when no
    worker started it within ``SYNC_QUEUE_TIMEOUT`` seconds of its (retry) time. The vCenter's status then says
    so; its inventory is untouched (a sync applies in one transaction, which a dead worker never committed).
    """
    now = timezone.now()
    runs = SyncRun.objects.filter(status__in=PENDING_SYNC_STATUSES)
    if vcenter_id is not None:
        runs = runs.filter(vcenter_id=vcenter_id)
    silent = now - timedelta(seconds=settings.SYNC_LOST_AFTER)
    unstarted = now - timedelta(seconds=settings.SYNC_QUEUE_TIMEOUT)
    lost = runs.filter(
        Q(status=SyncStatus.RUNNING, heartbeat_at__lt=silent)
        | Q(status=SyncStatus.RUNNING, heartbeat_at__isnull=True, started_at__lt=silent)
        | Q(status=SyncStatus.QUEUED, not_before__isnull=True, created__lt=unstarted)
        | Q(status=SyncStatus.QUEUED, not_before__lt=unstarted)
    )
    reaped = []
    for run in lost.select_related("vcenter"):
        if run.status == SyncStatus.RUNNING:
            last = run.heartbeat_at or run.started_at
            message = (
                f"lost: no heartbeat from its worker since {_when(last)} (the worker died or was killed); "
                "nothing was applied"
            )
        else:
            message = f"lost: no worker started it within {settings.SYNC_QUEUE_TIMEOUT:.0f} s"
        # Conditional on the status read: a run that finished meanwhile is left alone.
        if not SyncRun.objects.filter(pk=run.pk, status=run.status).update(
            status=SyncStatus.LOST, finished_at=now, error=message
        ):
            continue
        reaped.append(run.pk)
        if run.status == SyncStatus.RUNNING:
            VCenter.objects.filter(pk=run.vcenter_id, last_sync_status=SyncStatus.RUNNING).update(
                last_sync_status=SyncStatus.LOST, last_error=f"sync #{run.pk} {message}", inventory_stale=True
            )
        try:
            locks.release(locks.lock_name(run.vcenter_id), run_owner(run.pk))
        except Exception:
            logger.warning("lock of lost sync #%s not released (it expires by itself)", run.pk, exc_info=True)
        logger.warning("sync #%s of vCenter %s %s", run.pk, run.vcenter.name, message)
    return reaped


UNSENT_RECHECK_SECONDS = 1.0  # a worker moves a message from the queue into its unacked set in a few ms


def reap_unsent_syncs() -> list[int]:
    """The watchdog's broker check: mark lost, at once, a queued run whose task message is gone from the broker
    (in no queue, held by no worker: Redis restarted without its data), instead of after ``SYNC_QUEUE_TIMEOUT``
    during which the vCenter gets no sync. Only runs that waited ``SYNC_QUEUE_GRACE`` seconds past their (retry)
    time are asked about, each missing one twice; nothing is decided when the broker cannot be read."""
    from inventory.broker import sync_runs_with_a_message

    due = timezone.now() - timedelta(seconds=settings.SYNC_QUEUE_GRACE)
    waiting = set(
        SyncRun.objects.filter(status=SyncStatus.QUEUED)
        .filter(Q(not_before__isnull=True, created__lt=due) | Q(not_before__lt=due))
        .values_list("pk", flat=True)
    )
    if not waiting:
        return []
    present = sync_runs_with_a_message()
    if present is None or not (waiting - present):
        return []
    time.sleep(UNSENT_RECHECK_SECONDS)  # a message in flight between the queue and a worker is seen now
    again = sync_runs_with_a_message()
    if again is None:
        return []
    message = (
        "lost: its task message is no longer in the broker and no worker holds it (was Redis restarted without "
        "its data?); nothing was applied: request the sync again"
    )
    reaped = []
    for run in SyncRun.objects.filter(pk__in=waiting - present - again).select_related("vcenter"):
        if SyncRun.objects.filter(pk=run.pk, status=SyncStatus.QUEUED).update(
            status=SyncStatus.LOST, finished_at=timezone.now(), error=message
        ):
            reaped.append(run.pk)
            logger.warning("sync #%s of vCenter %s %s", run.pk, run.vcenter.name, message)
    return reaped


def reap_before_reading() -> None:
    """Run the watchdog for a page or API answer about syncs: its periodic task runs on a worker, so with every
    worker dead a killed run would otherwise be shown running for good. One SELECT when nothing is due; writes
    only for runs that are lost."""
    reap_lost_syncs()


def purge_stale(*, older_than_days: int | None = None) -> dict[str, int]:
    """Delete stale objects last seen before the retention period."""
    days = settings.INVENTORY_STALE_RETENTION_DAYS if older_than_days is None else older_than_days
    cutoff = timezone.now() - timedelta(days=days)
    deleted = {}
    for model in (VirtualMachine, Gpu, Host, Cluster):
        _, per_model = model.objects.filter(stale=True, last_seen__lt=cutoff).delete()
        deleted[model._meta.model_name] = per_model.get(model._meta.label, 0)
    return deleted


PURGE_BATCH = 5000


def purge_sync_history(*, older_than_days: int | None = None) -> int:
    """Delete finished sync runs older than the retention period (``SYNC_HISTORY_RETENTION_DAYS``); return how
    many. A vCenter synced every 5 minutes adds 288 runs a day: unpruned, the sync list and the watchdog read an
    ever longer table. Each vCenter keeps its newest run and its newest success per trigger (what the vCenter's
    status and the import's "live vCenter" check read), however old."""
    days = settings.SYNC_HISTORY_RETENTION_DAYS if older_than_days is None else older_than_days
    cutoff = timezone.now() - timedelta(days=days)
    keep = set(SyncRun.objects.values("vcenter_id").annotate(newest=Max("id")).values_list("newest", flat=True))
    keep |= set(
        SyncRun.objects.filter(status=SyncStatus.SUCCESS)
        .values("vcenter_id", "trigger")
        .annotate(newest=Max("id"))
        .values_list("newest", flat=True)
    )
    old = SyncRun.objects.filter(status__in=FINISHED_SYNC_STATUSES, created__lt=cutoff).exclude(pk__in=keep)
    deleted = 0
    while ids := list(old.order_by("id").values_list("id", flat=True)[:PURGE_BATCH]):
        with transaction.atomic():
            SyncRun.objects.filter(pk__in=ids).delete()
        deleted += len(ids)
    return deleted


# ---------------------------------------------------------------------------------------------- applying


def _mark_stale(model: type[models.Model], objs: Iterable[models.Model], when, counts: Counter, label: str) -> None:
    pks = [o.pk for o in objs if not o.stale]
    if pks:
        model.objects.filter(pk__in=pks).update(stale=True, last_seen=when)
    counts[f"{label}_stale"] += len(pks)


def _profiles(
    names: Iterable[str], warnings: dict[str, list[str]], host_name: str | None
) -> dict[str, VgpuProfileName]:
    parsed = {}
    for name in names:
        try:
            parsed[name] = parse_profile_name(name)
        except ProfileNameError as exc:
            if host_name is not None:
                warnings.setdefault(host_name, []).append(f"vGPU type ignored: {exc}")
    return parsed


# ---------------------------------------------------------------------------------------------- column limits


def _limit(model: type[models.Model], field: str) -> int:
    return model._meta.get_field(field).max_length


def _cut(value: str, limit: int, what: str, warnings: list[str]) -> str:
    """``value`` cut to ``limit`` characters, saying so in ``warnings`` (for names and labels: the object is keyed
    by its moref or PCI address, so a cut name still identifies it)."""
    if len(value) <= limit:
        return value
    warnings.append(f"{what} of {len(value)} characters cut to {limit}")
    return value[:limit]


def _too_long(value: str, limit: int, what: str) -> str | None:
    """Why ``value`` (an identifier: cutting it would name something else) cannot be stored, or None."""
    return f"{what} of {len(value)} characters exceeds {limit}" if len(value) > limit else None


@lru_cache(maxsize=4096)
def _profile_problem(name: str) -> str | None:
    """Why the vGPU type ``name`` cannot be stored as a profile row (cut, it would be another type), or None."""
    if reason := _too_long(name, _limit(VgpuProfile, "name"), f"vGPU type name {name[:40]!r}..."):
        return reason
    try:
        code = parse_profile_name(name).board_code
    except ProfileNameError:
        return None  # not a profile row anyway: reported where the types are parsed
    return _too_long(code, _limit(VgpuProfile, "board_code"), f"vGPU type {name!r}: board code")


def fit_to_columns(snapshot: InventorySnapshot) -> InventorySnapshot:
    """The snapshot with every text fitted to the column that stores it, so that a value longer than its column
    never fails the whole sync in the database (and is never retried as if the fault were passing).

    Names and labels are cut to the column's length; identifiers (morefs, PCI addresses, vGPU type names), which
    a cut would make name something else, are left out with the object or value they identify. Each case is a
    warning naming the object, the field, the length and the limit: on the host it concerns, else on the sync.
    """
    sync_warnings = list(snapshot.warnings)

    def keyed(objs: list, model: type[models.Model], kind: str) -> list:
        kept = []
        for obj in objs:
            if reason := _too_long(obj.moref, _limit(model, "moref"), f"{kind} {obj.name[:80]!r}: moref"):
                sync_warnings.append(f"{reason}: {kind} left out")
            else:
                kept.append(obj)
        return kept

    datacenters: list[DatacenterSnap] = []
    for dc in keyed(snapshot.datacenters, Datacenter, "datacenter"):
        name = _cut(dc.name, _limit(Datacenter, "name"), f"datacenter {dc.moref} name", sync_warnings)
        datacenters.append(replace(dc, name=name) if name != dc.name else dc)
    clusters: list[ClusterSnap] = []
    for c in keyed(snapshot.clusters, Cluster, "cluster"):
        name = _cut(c.name, _limit(Cluster, "name"), f"cluster {c.moref} name", sync_warnings)
        clusters.append(replace(c, name=name) if name != c.name else c)
    hosts = [_fit_host(h) for h in keyed(snapshot.hosts, Host, "host")]
    host_warnings = {h.moref: list(h.warnings) for h in hosts}
    vms: list[VmSnap] = []
    name_limit, profile_limit = _limit(VirtualMachine, "name"), _limit(GpuConsumer, "profile")
    for vm in keyed(snapshot.vms, VirtualMachine, "VM"):
        if len(vm.name) <= name_limit and all(len(d.profile or "") <= profile_limit for d in vm.devices):
            vms.append(vm)
            continue
        warnings = host_warnings.get(vm.host_moref or "", sync_warnings)
        name = _cut(vm.name, name_limit, f"VM {vm.moref} name", warnings)
        devices = []
        for d in vm.devices:
            if d.profile and (reason := _too_long(d.profile, profile_limit, f"VM {vm.moref}: vGPU type")):
                warnings.append(f"{reason}: its GPU is stored without a vGPU type")
                d = replace(d, profile=None)
            devices.append(d)
        vms.append(replace(vm, name=name, devices=tuple(devices)))
    hosts = [
        h if len(h.warnings) == len(host_warnings[h.moref]) else replace(h, warnings=tuple(host_warnings[h.moref]))
        for h in hosts
    ]
    instance_uuid = snapshot.instance_uuid
    if reason := _too_long(instance_uuid, _limit(VCenter, "instance_uuid"), "vCenter instance UUID"):
        sync_warnings.append(f"{reason}: not stored, so this vCenter is not checked against the others")
        instance_uuid = ""
    return replace(
        snapshot,
        datacenters=datacenters,
        clusters=clusters,
        hosts=hosts,
        vms=vms,
        instance_uuid=instance_uuid,
        warnings=sync_warnings,
    )


def _fitted(vcenter: VCenter, snapshot: InventorySnapshot) -> InventorySnapshot:
    """``fit_to_columns``, logging the warnings that no host keeps (a second call finds nothing more to fit)."""
    fitted = fit_to_columns(snapshot)
    for warning in fitted.warnings[len(snapshot.warnings) :]:
        logger.warning("inventory of vCenter %s: %s", vcenter.name, warning)
    return fitted


def _fit_host(h: HostSnap) -> HostSnap:
    """``h`` with its texts fitted (``fit_to_columns``); the same object when everything fits, as it nearly always
    does (a sync of thousands of hosts copies nothing)."""
    warnings = list(h.warnings)
    changes: dict[str, Any] = {}
    for field, label in (
        ("name", "name"),
        ("vendor", "vendor"),
        ("model", "model"),
        ("cpu_model", "CPU model"),
        ("api_version", "API version"),
    ):
        value = getattr(h, field)
        if len(value) > _limit(Host, field):
            changes[field] = _cut(value, _limit(Host, field), f"host {label}", warnings)
    pci_limit, vendor_limit = _limit(PciDevice, "pci_id"), _limit(PciDevice, "vendor_name")
    device_limit = _limit(PciDevice, "device_name")
    if any(
        len(d.pci_id) > pci_limit or len(d.vendor_name) > vendor_limit or len(d.device_name) > device_limit
        for d in h.pci_devices
    ):
        devices = []
        for d in h.pci_devices:
            if reason := _too_long(d.pci_id, pci_limit, f"PCI address {d.pci_id[:40]!r}..."):
                warnings.append(f"{reason}: its device is left out")
                continue
            vendor = _cut(d.vendor_name, vendor_limit, f"PCI device {d.pci_id} vendor name", warnings)
            device = _cut(d.device_name, device_limit, f"PCI device {d.pci_id} device name", warnings)
            devices.append(replace(d, vendor_name=vendor, device_name=device))
        changes["pci_devices"] = tuple(devices)
    model_limit = _limit(Gpu, "model")
    if any(len(g.device_name) > model_limit for g in h.graphics):
        changes["graphics"] = tuple(
            replace(g, device_name=_cut(g.device_name, model_limit, f"GPU {g.pci_id} model", warnings))
            for g in h.graphics
        )
    label_limit = _limit(Gpu, "hardware_label")
    if any(len(p.hardware_label) > label_limit for p in h.passthru):
        changes["passthru"] = tuple(
            replace(p, hardware_label=_cut(p.hardware_label, label_limit, f"GPU {p.pci_id} hardware label", warnings))
            for p in h.passthru
        )

    def storable(names: tuple[str, ...]) -> tuple[str, ...]:
        kept = []
        for name in names:
            if reason := _profile_problem(name):
                warnings.append(f"{reason}: left out")
            else:
                kept.append(name)
        return tuple(kept)

    types = storable(h.shared_gpu_types)
    if types != h.shared_gpu_types:
        changes["shared_gpu_types"] = types
    if h.gpu_profiles is not None:
        per_gpu = {k: storable(v) for k, v in h.gpu_profiles.items()}
        if per_gpu != h.gpu_profiles:
            changes["gpu_profiles"] = per_gpu
    if not changes:
        return h
    return replace(h, **changes, warnings=tuple(dict.fromkeys(warnings)))


@transaction.atomic
def apply_snapshot(*, vcenter: VCenter, snapshot: InventorySnapshot) -> dict[str, int]:
    """Make the stored inventory of ``vcenter`` equal the snapshot; return counts of what changed."""
    snapshot = _fitted(vcenter, snapshot)
    now = timezone.now()
    seen_before = vcenter.last_success_at or now
    counts: Counter = Counter()
    catalog = load_catalog()
    host_warnings: dict[str, list[str]] = {h.name: list(h.warnings) for h in snapshot.hosts}

    # Datacenters and clusters.
    dcs = upsert(
        Datacenter,
        {d.moref: d for d in Datacenter.objects.filter(vcenter=vcenter)},
        {d.moref: {"name": d.name} for d in snapshot.datacenters},
        lambda key, v: Datacenter(vcenter=vcenter, moref=key, **v),
        counts,
        "datacenters",
    )
    existing_clusters = {c.moref: c for c in Cluster.objects.filter(vcenter=vcenter)}
    clusters = upsert(
        Cluster,
        existing_clusters,
        {
            c.moref: {
                "name": c.name,
                "datacenter_id": dcs[c.datacenter_moref].pk if c.datacenter_moref in dcs else None,
                "stale": False,
            }
            for c in snapshot.clusters
        },
        lambda key, v: Cluster(vcenter=vcenter, moref=key, last_seen=now, **v),
        counts,
        "clusters",
    )
    wanted = {c.moref for c in snapshot.clusters}
    _mark_stale(Cluster, (c for k, c in existing_clusters.items() if k not in wanted), seen_before, counts, "clusters")

    # vGPU profiles are a global catalog of names seen anywhere.
    names = {t for h in snapshot.hosts for t in h.shared_gpu_types}
    names |= {p for h in snapshot.hosts for ps in (h.gpu_profiles or {}).values() for p in ps}
    names |= {d.profile for vm in snapshot.vms for d in vm.devices if d.profile}
    # A VM's vGPU type that cannot be a profile row stays on its GPU consumer only (hosts' types were fitted).
    parsed_profiles = {n: p for n, p in _profiles(sorted(names), {}, None).items() if not _profile_problem(n)}
    profiles = upsert(
        VgpuProfile,
        {p.name: p for p in VgpuProfile.objects.filter(name__in=parsed_profiles)},
        {name: _profile_fields(p) for name, p in parsed_profiles.items()},
        lambda key, v: VgpuProfile(name=key, **v),
        counts,
        "profiles",
    )

    # Hosts.
    existing_hosts = {h.moref: h for h in Host.objects.filter(vcenter=vcenter)}
    host_fields = {h.moref: _host_fields(h, clusters) for h in snapshot.hosts}
    for snap in snapshot.hosts:
        host_fields[snap.moref]["warnings"] = []  # filled after GPUs are derived
    hosts = upsert(
        Host,
        existing_hosts,
        {k: {f: v for f, v in fields.items() if f != "warnings"} for k, fields in host_fields.items()},
        lambda key, v: Host(vcenter=vcenter, moref=key, last_seen=now, **v),
        counts,
        "hosts",
    )
    wanted = {h.moref for h in snapshot.hosts}
    stale_hosts = [h for k, h in existing_hosts.items() if k not in wanted]
    _mark_stale(Host, stale_hosts, seen_before, counts, "hosts")
    _mark_stale(Gpu, Gpu.objects.filter(host__in=stale_hosts, stale=False), seen_before, counts, "gpus")

    # VMs (before consumers, which point at them).
    existing_vms = {v.moref: v for v in VirtualMachine.objects.filter(vcenter=vcenter)}
    vms = upsert(
        VirtualMachine,
        existing_vms,
        {v.moref: _vm_fields(v, hosts) for v in snapshot.vms},
        lambda key, v: VirtualMachine(vcenter=vcenter, moref=key, last_seen=now, **v),
        counts,
        "vms",
    )
    wanted = {v.moref for v in snapshot.vms}
    _mark_stale(VirtualMachine, (v for k, v in existing_vms.items() if k not in wanted), seen_before, counts, "vms")

    # Host hardware: NUMA nodes, the PCI tree, GPUs, profiles, consumers.
    live_hosts = [hosts[h.moref] for h in snapshot.hosts]
    numa = {(n.host_id, n.node_id): n for n in NumaNode.objects.filter(host__in=live_hosts)}
    pci = {(d.host_id, d.pci_id): d for d in PciDevice.objects.filter(host__in=live_hosts)}
    gpus = {g.pci_device_id: g for g in Gpu.objects.filter(host__in=live_hosts)}
    snap_vms = {v.moref: v for v in snapshot.vms}

    numa = _apply_numa(snapshot.hosts, hosts, numa, counts)
    pci = _apply_pci(snapshot.hosts, hosts, numa, pci, counts, host_warnings)
    derived = {snap.moref: _derive_gpus(snap, catalog, snap_vms, host_warnings) for snap in snapshot.hosts}
    gpus = upsert(
        Gpu,
        gpus,
        {
            pci[(hosts[moref].pk, d["pci_id"])].pk: {
                **{k: v for k, v in d.items() if k not in {"pci_id", "profiles"}},
                "host_id": hosts[moref].pk,
            }
            for moref, items in derived.items()
            for d in items
        },
        lambda key, v: Gpu(pci_device_id=key, last_seen=now, **v),
        counts,
        "gpus",
    )
    live = {pci[(hosts[moref].pk, d["pci_id"])].pk for moref, items in derived.items() for d in items}
    live_host_ids = {hosts[moref].pk for moref in derived}
    gone = [g for key, g in gpus.items() if g.host_id in live_host_ids and key not in live]
    _mark_stale(Gpu, gone, seen_before, counts, "gpus")

    _apply_profile_links(snapshot.hosts, hosts, derived, pci, gpus, profiles, counts)
    _apply_consumers(snapshot, hosts, vms, pci, gpus, derived, counts, host_warnings)
    # A VM that vanished holds no GPU any more (its host may still be live, or stale itself).
    vanished = list(
        GpuConsumer.objects.filter(vm__vcenter=vcenter)
        .exclude(vm__moref__in=[v.moref for v in snapshot.vms])
        .values_list("pk", flat=True)
    )
    if vanished:
        GpuConsumer.objects.filter(pk__in=vanished).delete()
        counts["consumers_deleted"] += len(vanished)

    # Host warnings last: they depend on everything above.
    warnings = [(hosts[s.moref], sorted(set(host_warnings.get(s.name, [])))) for s in snapshot.hosts]
    counts["hosts_updated"] += update_field(Host, warnings, "warnings")

    # Each live host's GPU fabric (links, domains, findings), diffed like everything above.
    counts.update(rebuild_fabrics(hosts=live_hosts))

    counts["objects"] = len(snapshot.hosts) + len(snapshot.vms) + len(snapshot.clusters) + len(snapshot.datacenters)
    counts.update({f"seen_{k}": v for k, v in snapshot.counts().items()})
    counts["warnings"] = sum(len(w) for w in host_warnings.values()) + len(snapshot.warnings)
    return {k: v for k, v in sorted(counts.items())}


def _profile_fields(p: VgpuProfileName) -> dict[str, Any]:
    return {
        "board": p.board.key if p.board else "",
        "board_code": p.board_code,
        "framebuffer_gb": p.framebuffer_gb,
        "series": p.series,
        "mig_profile": p.mig_profile.name if p.mig_profile else "",
        "mig_compute_slices": p.mig_compute_slices,
    }


def _host_fields(h: HostSnap, clusters: dict) -> dict[str, Any]:
    return {
        "name": h.name,
        "cluster_id": clusters[h.cluster_moref].pk if h.cluster_moref in clusters else None,
        "vendor": h.vendor,
        "model": h.model,
        "cpu_model": h.cpu_model,
        "cpu_sockets": h.cpu_sockets,
        "cpu_cores": h.cpu_cores,
        "cpu_threads": h.cpu_threads,
        "memory_mb": h.memory_mb,
        "connection_state": h.connection_state,
        "maintenance_mode": h.maintenance_mode,
        "boot_time": h.boot_time,
        "assignment_policy": h.assignment_policy if h.assignment_policy in {"performance", "consolidation"} else "",
        "default_graphics_type": h.default_graphics_type if h.default_graphics_type in GraphicsType.values else "",
        "api_version": h.api_version,
        "stale": False,
    }


def _vm_fields(v: VmSnap, hosts: dict) -> dict[str, Any]:
    return {
        "name": v.name,
        "host_id": hosts[v.host_moref].pk if v.host_moref in hosts else None,
        "power_state": v.power_state if v.power_state in {"poweredOn", "poweredOff", "suspended"} else "poweredOff",
        "vcpus": v.vcpus,
        "memory_mb": v.memory_mb,
        "memory_reservation_mb": min(v.memory_reservation_mb, v.memory_mb),
        "boot_time": v.boot_time,
        "stale": False,
    }


def _apply_numa(snaps: list[HostSnap], hosts: dict, existing: dict, counts: Counter) -> dict:
    desired = {}
    for snap in snaps:
        host = hosts[snap.moref]
        for node in snap.numa_nodes or ():
            desired[(host.pk, node.node_id)] = {"cpu_ids": list(node.cpu_ids), "memory_mb": node.memory_mb}
    result = upsert(
        NumaNode, existing, desired, lambda key, v: NumaNode(host_id=key[0], node_id=key[1], **v), counts, "numa_nodes"
    )
    gone = [n.pk for key, n in existing.items() if key not in desired]
    if gone:
        NumaNode.objects.filter(pk__in=gone).delete()
        counts["numa_nodes_deleted"] += len(gone)
    return {k: v for k, v in result.items() if k in desired}


def _apply_pci(
    snaps: list[HostSnap], hosts: dict, numa: dict, existing: dict, counts: Counter, warnings: dict[str, list[str]]
) -> dict:
    desired, links = {}, {}
    for snap in snaps:
        host = hosts[snap.moref]
        node_of = {p: n.node_id for n in (snap.numa_nodes or ()) for p in n.pci_ids}
        ids = {d.pci_id for d in snap.pci_devices}
        for d in snap.pci_devices:
            key = (host.pk, d.pci_id)
            node = node_of.get(d.pci_id)
            desired[key] = {
                "class_id": d.class_id,
                "vendor_id": d.vendor_id,
                "device_id": d.device_id,
                "subvendor_id": d.subvendor_id,
                "subdevice_id": d.subdevice_id,
                "vendor_name": d.vendor_name,
                "device_name": d.device_name,
                "numa_node_id": numa[(host.pk, node)].pk if (host.pk, node) in numa else None,
            }
            parent = d.parent
            if parent and parent not in ids:
                warnings[snap.name].append(f"PCI device {d.pci_id} names parent bridge {parent}, which is not reported")
                parent = None
            links[key] = (host.pk, parent) if parent else None
        for pci_id in _loop_breakers(snap):
            warnings[snap.name].append(f"PCI parent loop through {pci_id}: its parent bridge link was dropped")
            links[(host.pk, pci_id)] = None
    # Create and update level by level from the roots down, so every row gets its parent when it is written
    # (a second pass of bulk_update over every new row costs more than the inserts themselves).
    depth: dict = {}
    for key in links:
        chain, node = [], key
        while node is not None and node not in depth:
            chain.append(node)
            node = links.get(node)
        level = depth[node] if node is not None else -1
        for item in reversed(chain):
            level += 1
            depth[item] = level
    result = dict(existing)
    for level in sorted(set(depth.values())):
        batch = {
            key: {**desired[key], "parent_id": result[links[key]].pk if links[key] else None}
            for key in desired
            if depth[key] == level
        }
        result = upsert(
            PciDevice, result, batch, lambda key, v: PciDevice(host_id=key[0], pci_id=key[1], **v), counts, "pci"
        )
    gone = [d.pk for key, d in existing.items() if key not in desired]
    if gone:
        # GPUs keep their PCI row while stale (the GPU row points at it); other vanished functions go.
        keep = set(Gpu.objects.filter(pci_device_id__in=gone).values_list("pci_device_id", flat=True))
        drop = [pk for pk in gone if pk not in keep]
        if drop:
            PciDevice.objects.filter(parent_id__in=drop).update(parent=None)
            PciDevice.objects.filter(pk__in=drop).delete()
            counts["pci_deleted"] += len(drop)
    return result


def _loop_breakers(snap: HostSnap) -> list[str]:
    """PCI ids whose parent link closes a cycle (vSphere should never report one; we must not loop on it)."""
    parent = {d.pci_id: d.parent for d in snap.pci_devices}
    state: dict[str, int] = {}
    breakers = []
    for start in sorted(parent):
        path, node = [], start
        while node is not None and node in parent and state.get(node) is None:
            state[node] = 1
            path.append(node)
            nxt = parent[node]
            if nxt is not None and state.get(nxt) == 1:
                breakers.append(node)
                break
            node = nxt
        for n in path:
            state[n] = 2
    return breakers


def _derive_gpus(
    snap: HostSnap, catalog, vms: dict[str, VmSnap], warnings: dict[str, list[str]]
) -> list[dict[str, Any]]:
    """GPU rows for one host from its PCI functions, graphicsInfo, passthrough info and vGPU types."""
    graphics = {g.pci_id: g for g in snap.graphics}
    passthru = {p.pci_id: p for p in snap.passthru}
    shared = _profiles(snap.shared_gpu_types, warnings, snap.name)
    consumer_profiles = _consumer_profiles_by_gpu(snap, vms)
    out = []
    for dev in (d for d in snap.pci_devices if is_gpu(d)):
        g = graphics.get(dev.pci_id)
        note = []
        if g is None:
            note.append("no graphicsInfo entry")
            warnings[snap.name].append(
                f"GPU {dev.pci_id} has no graphicsInfo entry: graphics type and framebuffer come from other sources"
            )
        name = (g.device_name if g else "") or dev.device_name or f"NVIDIA device 0x{dev.device_id:04x}"
        memory_mb = g.memory_kb // 1024 if g and g.memory_kb else 0
        board: Board | None = catalog.board_for_device(dev.device_id, name, memory_mb or None)
        if board is None:
            warnings[snap.name].append(
                f"GPU {dev.pci_id}: unknown NVIDIA device 0x{dev.device_id:04x} ({name}); no catalog board, so "
                "vGPU and MIG rules cannot be checked for it"
            )
        if not memory_mb and board is not None:
            memory_mb = board.framebuffer_gb * 1024
        graphics_type = (g.graphics_type if g else "") or snap.device_graphics_types.get(dev.pci_id, "")
        configured = snap.device_graphics_types.get(dev.pci_id)
        if g and configured and configured != g.graphics_type:
            warnings[snap.name].append(
                f"GPU {dev.pci_id} runs as {g.graphics_type} but is configured as {configured} (takes effect after "
                "the host reboots)"
            )
        if graphics_type not in GraphicsType.values:
            graphics_type = ""
        if snap.gpu_profiles is not None:
            profile_names = tuple(snap.gpu_profiles.get(dev.pci_id, ()))
        elif graphics_type == GraphicsType.DIRECT or board is None:
            profile_names = ()
        else:
            profile_names = tuple(n for n, p in shared.items() if p.board is not None and p.board.key == board.key)
        vgpu_mode = g.vgpu_mode if g and g.vgpu_mode in VgpuMode.values else ""
        if g is not None and g.mig_enabled is not None:
            mig = g.mig_enabled
        else:
            used = [parse for parse in consumer_profiles.get(dev.pci_id, ()) if parse is not None]
            listed = [shared[n] for n in profile_names if n in shared]
            mig = (
                vgpu_mode == VgpuMode.MIG
                or any(p.is_mig for p in used)
                or (bool(listed) and all(p.is_mig for p in listed))
            )
        inferred = False
        if graphics_type == GraphicsType.DIRECT:
            vgpu_mode = ""
        elif mig and not vgpu_mode:
            vgpu_mode = VgpuMode.MIG
        elif not vgpu_mode and graphics_type == GraphicsType.SHARED_DIRECT:
            # vCenter did not report the mode; same-size mode cannot run vGPUs of two sizes on one GPU, so these
            # prove mixed-size (stored, so the pages, the API and the placement engine read the same mode).
            sizes = {p.framebuffer_gb for p in consumer_profiles.get(dev.pci_id, ()) if p is not None}
            if len(sizes) > 1:
                vgpu_mode, inferred = VgpuMode.MIXED_SIZE, True
        p = passthru.get(dev.pci_id)
        out.append(
            {
                "pci_id": dev.pci_id,
                "model": name,
                "board": board.key if board else "",
                "framebuffer_mb": memory_mb,
                "graphics_type": graphics_type,
                "vgpu_mode": vgpu_mode,
                "vgpu_mode_inferred": inferred,
                "mig_enabled": mig,
                "passthrough_enabled": bool(p and p.enabled),
                "passthrough_active": bool(p and p.active),
                "hardware_label": p.hardware_label if p else "",
                "module_id": snap.module_ids.get(dev.pci_id),
                "health": Gpu.Health.WARNING if note else Gpu.Health.OK,
                "notes": "; ".join([*note, MIXED_SIZE_INFERRED_NOTE] if inferred else note),
                "stale": False,
                "profiles": profile_names,
            }
        )
    return out


def _consumer_profiles_by_gpu(snap: HostSnap, vms: dict[str, VmSnap]) -> dict[str, list[VgpuProfileName | None]]:
    result: dict[str, list] = {}
    for g in snap.graphics:
        for ref in g.vm_morefs:
            vm = vms.get(ref)
            for d in vm.devices if vm else ():
                if d.kind == "vgpu" and d.profile:
                    try:
                        result.setdefault(g.pci_id, []).append(parse_profile_name(d.profile))
                    except ProfileNameError:
                        result.setdefault(g.pci_id, []).append(None)
    return result


def _apply_profile_links(snaps, hosts, derived, pci, gpus, profiles, counts: Counter) -> None:
    """Host.supported_profiles, diffed like everything else (a GPU's profiles are its host's, of its board)."""
    through = Host.supported_profiles.through
    host_ids = [hosts[s.moref].pk for s in snaps]
    want = {
        (hosts[s.moref].pk, profiles[n].pk)
        for s in snaps
        for n in ({p for d in derived[s.moref] for p in d["profiles"]} | set(s.shared_gpu_types))
        if n in profiles
    }
    have = {(r.host_id, r.vgpuprofile_id): r.pk for r in through.objects.filter(host_id__in=host_ids)}
    add = want - set(have)
    drop = [pk for key, pk in have.items() if key not in want]
    if add:
        through.objects.bulk_create([through(host_id=a, vgpuprofile_id=b) for a, b in sorted(add)], batch_size=BATCH)
    if drop:
        through.objects.filter(pk__in=drop).delete()
    counts["profile_links_changed"] += len(add) + len(drop)


def _apply_consumers(snapshot, hosts, vms, pci, gpus, derived, counts: Counter, warnings) -> None:
    snap_vms = {v.moref: v for v in snapshot.vms}
    desired: dict[tuple[int, int], dict[str, Any]] = {}
    for snap in snapshot.hosts:
        host = hosts[snap.moref]
        gpu_ids = {d["pci_id"]: gpus[pci[(host.pk, d["pci_id"])].pk].pk for d in derived[snap.moref]}
        board_of = {d["pci_id"]: d["board"] for d in derived[snap.moref]}
        for g in snap.graphics:
            if g.pci_id not in gpu_ids:
                continue
            for ref in g.vm_morefs:
                vm = snap_vms.get(ref)
                if vm is None:
                    warnings[snap.name].append(f"GPU {g.pci_id} lists VM {ref}, which vCenter did not return")
                    continue
                kind, profile = _consumer_for(vm, g.pci_id)
                if kind is None:
                    warnings[snap.name].append(f"VM {vm.name} is listed on GPU {g.pci_id} but has no GPU device")
                    continue
                desired[(vms[ref].pk, gpu_ids[g.pci_id])] = {"kind": kind, "profile": profile or ""}
                if kind == "vgpu" and profile:
                    problem = _running_profile_problem(profile, board_of.get(g.pci_id, ""))
                    if problem:
                        warnings[snap.name].append(f"GPU {g.pci_id}: VM {vm.name} runs vGPU type {profile}, {problem}")
        # Passthrough backings name their device even when graphicsInfo does not list the VM (powered off).
        for vm in snapshot.vms:
            if vm.host_moref != snap.moref:
                continue
            for d in vm.devices:
                if d.kind in {"passthrough", "dynamic-passthrough"} and d.pci_id in gpu_ids:
                    desired.setdefault((vms[vm.moref].pk, gpu_ids[d.pci_id]), {"kind": d.kind, "profile": ""})
    for fields in desired.values():
        if fields["kind"] == "vgpu" and fields["profile"]:
            try:
                if parse_profile_name(fields["profile"]).is_mig:
                    fields["kind"] = "mig"
            except ProfileNameError:
                pass
    host_pks = [hosts[s.moref].pk for s in snapshot.hosts]
    existing = {(c.vm_id, c.gpu_id): c for c in GpuConsumer.objects.filter(gpu__host_id__in=host_pks)}
    boot_of = {vms[v.moref].pk: v.boot_time for v in snapshot.vms if v.moref in vms}
    for key, fields in desired.items():
        if _offsets_outdated(existing.get(key), fields, boot_of.get(key[0])):
            fields.update(placement_gb=None, mig_slot=None, offsets_imported_at=None, offsets_boot_time=None)
            counts["consumer_offsets_cleared"] += 1
    upsert(
        GpuConsumer,
        existing,
        desired,
        lambda key, v: GpuConsumer(vm_id=key[0], gpu_id=key[1], **v),
        counts,
        "consumers",
    )
    gone = [c.pk for key, c in existing.items() if key not in desired]
    if gone:
        GpuConsumer.objects.filter(pk__in=gone).delete()
        counts["consumers_deleted"] += len(gone)


def _running_profile_problem(profile: str, gpu_board: str) -> str | None:
    """Why the vGPU type a running VM holds cannot be read against its GPU; the VM still holds the GPU (stored), but
    its size and lock are only as good as the name."""
    try:
        parsed = parse_profile_name(profile)
    except ProfileNameError as exc:
        return f"which the catalog cannot read ({exc}): its framebuffer and lock are unknown to the planner"
    if parsed.board is None:
        return (
            f"whose board code {parsed.board_code!r} is not in the catalog: its {parsed.framebuffer_gb} GB and "
            "same-size lock are taken from the name"
        )
    if gpu_board and parsed.board.key != gpu_board:
        return f"{_article(parsed.board.key)} type on {_article(gpu_board)} GPU: check the VM's vGPU type in vCenter"
    return None


def _article(word: str) -> str:
    return f"{'an' if word[:1].upper() in 'AEFHILMNORSX' else 'a'} {word}"


def _offsets_outdated(consumer: GpuConsumer | None, fields: dict[str, Any], boot_time: datetime | None) -> bool:
    """Imported offsets describe one power-on of the VM with one profile: another boot time (vSphere chose the
    placement again), kind or profile make them a guess, so the planner infers them again."""
    if consumer is None or (consumer.placement_gb is None and consumer.mig_slot is None):
        return False
    if consumer.offsets_imported_at is None:  # imported before boot times were recorded: only a profile change
        return (consumer.kind, consumer.profile) != (fields["kind"], fields["profile"])
    return (consumer.kind, consumer.profile, consumer.offsets_boot_time) != (
        fields["kind"],
        fields["profile"],
        boot_time,
    )


def _consumer_for(vm: VmSnap, pci_id: str) -> tuple[str | None, str | None]:
    for d in vm.devices:
        if d.kind in {"passthrough", "dynamic-passthrough"} and d.pci_id == pci_id:
            return d.kind, None
    for d in vm.devices:
        if d.kind == "vgpu":
            return "vgpu", d.profile
        if d.kind == "device-group":
            return "device-group", d.profile
    return None, None


# ---------------------------------------------------------------------------------------------- import


class ImportTargetError(Exception):
    """The vCenter named for an import is a live one: its inventory comes from vCenter itself."""


def _live_because(vcenter: VCenter) -> list[str]:
    """Why ``vcenter`` is a live vCenter (nothing for an offline one, which only imports fill)."""
    reasons = []
    if vcenter.enabled:
        reasons.append("its scheduled syncs are enabled")
    if vcenter.has_password:
        reasons.append("it has a password to log in with")
    if vcenter.sync_runs.exclude(trigger=SyncRun.Trigger.IMPORT).filter(status=SyncStatus.SUCCESS).exists():
        reasons.append(f"it was synced from {vcenter.url}")
    return reasons


def import_inventory(*, document: dict, vcenter_name: str, url: str = "") -> tuple[VCenter, dict[str, int]]:
    """Load an inventory document (export or lab file) as the inventory of a (created) offline vCenter.

    Raises ImportTargetError for a live vCenter: imported hosts would mix with the ones its syncs collect.
    """
    from inventory.exchange import snapshot_from_document

    snapshot = snapshot_from_document(document)
    with transaction.atomic():
        vcenter = VCenter.objects.filter(name__iexact=vcenter_name).first()
        if vcenter is not None and (reasons := _live_because(vcenter)):
            raise ImportTargetError(
                f"vCenter {vcenter.name!r} is a live vCenter ({'; '.join(reasons)}): an import would mix its hosts "
                "into that inventory. Imports go into offline vCenters only: name a new one"
            )
        if vcenter is None:
            vcenter = VCenter(
                name=vcenter_name,
                url=url or f"https://{vcenter_name}.import.invalid/sdk",
                username="import",
                enabled=False,
            )
            lock_vcenter_servers()
            vcenter.full_clean()
            vcenter.save()
        # in the sync history, so "last sync: success" on the vCenter has a run behind it; created before the
        # snapshot is applied so that it is not shown as queued after it started
        run = SyncRun.objects.create(vcenter=vcenter, trigger=SyncRun.Trigger.IMPORT, status=SyncStatus.RUNNING)
        SyncRun.objects.filter(pk=run.pk).update(started_at=run.created)
        counts = apply_snapshot(vcenter=vcenter, snapshot=snapshot)
        now = timezone.now()
        objects = counts.get("objects", 0)
        SyncRun.objects.filter(pk=run.pk).update(
            status=SyncStatus.SUCCESS, finished_at=now, counts=counts, progress_current=objects, progress_total=objects
        )
        VCenter.objects.filter(pk=vcenter.pk).update(
            last_sync_status=SyncStatus.SUCCESS,
            last_sync_at=now,
            last_success_at=now,
            last_error="",
            inventory_stale=False,
        )
    inventory_applied.send(sender=VCenter, vcenter=vcenter, counts=counts)
    return vcenter, counts
