"""Celery tasks: thin wrappers around inventory services.

Every sync trigger goes through ``services.sync_vcenter`` (lock, heartbeat, one SyncRun per attempt): beat
calls ``sync_vcenter_task`` without a run, the page, API and ``vcenter sync --queue`` call ``enqueue_sync``.
"""

from __future__ import annotations

import logging
import random
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from inventory import services
from inventory.models import SyncRun, SyncStatus, VCenter

logger = logging.getLogger(__name__)

MAX_RETRIES = 5


def retry_delay(attempt: int) -> float:
    """Exponential backoff with jitter: base, 2x base, 4x base ... capped at 15 minutes."""
    base = settings.SYNC_RETRY_BASE_SECONDS
    return min(base * 2 ** (attempt - 1), 900) * random.uniform(0.8, 1.2)


@shared_task(bind=True, max_retries=MAX_RETRIES, acks_late=True)
def sync_vcenter_task(self, vcenter_id: int, trigger: str = "schedule", run_id: int | None = None) -> dict:
    vcenter = VCenter.objects.filter(pk=vcenter_id).first()
    run = SyncRun.objects.filter(pk=run_id, vcenter_id=vcenter_id).first() if run_id else None
    if vcenter is None:
        return {"status": "skipped", "reason": f"vCenter {vcenter_id} no longer exists"}
    if run is not None and run.status == SyncStatus.SKIPPED and run.error.startswith(services.CANCELLED_PREFIX):
        return {"status": "skipped", "run": run.pk, "reason": run.error}  # an admin cancelled it while queued
    if run is not None and run.status != SyncStatus.QUEUED:
        # Redelivered after its worker died (the watchdog marked the run lost) or already handled: a new request.
        run = None
    if run is None:
        run = services.request_sync(vcenter=vcenter, trigger=trigger)
    if not vcenter.enabled and trigger == SyncRun.Trigger.SCHEDULE and run.status == SyncStatus.QUEUED:
        run = services.skip_run(run, "the vCenter is disabled")
    try:
        run = services.sync_vcenter(vcenter=vcenter, trigger=trigger, run=run)
    except services.SyncSkipped as exc:
        return {"status": "skipped", "run": exc.run.pk, "reason": exc.run.error}
    except services.SyncFailed as exc:
        attempt = exc.run.attempt
        # In-process (no broker) there is nothing to schedule a retry on: the failed run is the answer.
        if exc.error.retryable and attempt <= MAX_RETRIES and not self.request.is_eager:
            delay = retry_delay(attempt)
            retry = services.request_sync(
                vcenter=vcenter,
                trigger=trigger,
                attempt=attempt + 1,
                not_before=timezone.now() + timedelta(seconds=delay),
            )
            if retry.status == SyncStatus.QUEUED:  # else another sync is already pending: no second chain
                SyncRun.objects.filter(pk=exc.run.pk).update(
                    error=f"{exc.error.message}; retry {attempt} in {delay:.0f} s (run #{retry.pk})"
                )
                raise self.retry(
                    countdown=delay, kwargs={"vcenter_id": vcenter_id, "trigger": trigger, "run_id": retry.pk}
                ) from None
        return {"status": "failed", "run": exc.run.pk, "error": exc.error.message}
    # The counts are on the run and in the service's log line: the worker's "succeeded" line need not repeat them.
    return {"status": "success", "run": run.pk}


def enqueue_sync(*, vcenter: VCenter, trigger: str = SyncRun.Trigger.MANUAL) -> SyncRun:
    """Request a sync: a queued SyncRun whose task is sent once the surrounding transaction commits, or a
    skipped one (saying which run covers it). A task the broker refuses fails the run at once, saying so."""
    run = services.request_sync(vcenter=vcenter, trigger=trigger)
    if run.status == SyncStatus.QUEUED:
        transaction.on_commit(lambda: send_sync(run))
    return run


def send_sync(run: SyncRun) -> None:
    try:
        sync_vcenter_task.apply_async(
            kwargs={"vcenter_id": run.vcenter_id, "trigger": run.trigger, "run_id": run.pk},
            # the limits travel in the message: the ones configured now (Celery caches a task's own at first send)
            soft_time_limit=settings.CELERY_TASK_SOFT_TIME_LIMIT,
            time_limit=settings.CELERY_TASK_TIME_LIMIT,
        )
    except Exception as exc:
        if sync_vcenter_task.app.conf.task_always_eager:
            raise
        message = f"not queued: the task broker is unreachable ({type(exc).__name__})"
        logger.error("sync #%s %s", run.pk, message)
        SyncRun.objects.filter(pk=run.pk, status=SyncStatus.QUEUED).update(
            status=SyncStatus.FAILED, finished_at=timezone.now(), error=message
        )


@shared_task
def sync_watchdog_task() -> dict:
    """Beat sends this every SYNC_WATCHDOG_SECONDS: mark lost the syncs whose worker died, that no worker started
    in time, or whose task message the broker lost. (Beat notes its own liveness for /healthz: inventory.beat.)"""
    return {"lost": services.reap_lost_syncs() + services.reap_unsent_syncs()}


@shared_task
def purge_stale_task() -> dict:
    return {**services.purge_stale(), "sync_runs": services.purge_sync_history()}
