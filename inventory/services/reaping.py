"""The watchdog: marking ``lost`` the sync runs whose worker died or whose task message is gone."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from inventory import locks
from inventory.locks import run_owner
from inventory.models import PENDING_SYNC_STATUSES, SyncRun, SyncStatus, VCenter

logger = logging.getLogger("inventory.services")  # the name its log lines carried before the split


def _when(moment) -> str:
    return timezone.localtime(moment).strftime("%H:%M:%S")


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
