"""Celery tasks: thin wrappers around inventory services."""

from __future__ import annotations

import logging
import random

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings

from inventory import services
from inventory.locks import LockBusy, vcenter_sync_lock
from inventory.models import SyncRun, VCenter

logger = logging.getLogger(__name__)

MAX_RETRIES = 5


def retry_delay(attempt: int) -> float:
    """Exponential backoff with jitter: base, 2x base, 4x base ... capped at 15 minutes."""
    base = settings.SYNC_RETRY_BASE_SECONDS
    return min(base * 2 ** (attempt - 1), 900) * random.uniform(0.8, 1.2)


@shared_task(bind=True, max_retries=MAX_RETRIES, acks_late=True)
def sync_vcenter_task(self, vcenter_id: int, trigger: str = "schedule", run_id: int | None = None) -> dict:
    vcenter = VCenter.objects.filter(pk=vcenter_id).first()
    if vcenter is None:
        return {"status": "skipped", "reason": f"vCenter {vcenter_id} no longer exists"}
    if not vcenter.enabled and trigger == SyncRun.Trigger.SCHEDULE:
        return {"status": "skipped", "reason": "vCenter is disabled"}
    attempt = self.request.retries + 1
    run = SyncRun.objects.filter(pk=run_id).first() if run_id and attempt == 1 else None
    try:
        with vcenter_sync_lock(vcenter_id):
            run = run or services.start_sync_run(vcenter=vcenter, trigger=trigger, attempt=attempt)
            run = services.sync_vcenter(vcenter=vcenter, trigger=trigger, run=run)
    except LockBusy as exc:
        if run is not None:
            SyncRun.objects.filter(pk=run.pk).update(status="failed", error=f"skipped: {exc}")
        return {"status": "skipped", "reason": str(exc)}
    except services.SyncFailed as exc:
        # In-process (no broker) there is nothing to schedule a retry on: the failed run is the answer.
        if exc.error.retryable and attempt <= MAX_RETRIES and not self.request.is_eager:
            delay = retry_delay(attempt)
            SyncRun.objects.filter(pk=exc.run.pk).update(error=f"{exc.error.message}; retry {attempt} in {delay:.0f} s")
            raise self.retry(countdown=delay, kwargs={"vcenter_id": vcenter_id, "trigger": trigger}) from None
        return {"status": "failed", "run": exc.run.pk, "error": exc.error.message}
    except SoftTimeLimitExceeded:
        if run is not None:
            services._record_failure(vcenter, run, "the sync exceeded its time limit")
        return {"status": "failed", "run": run.pk if run else None, "error": "time limit"}
    return {"status": "success", "run": run.pk, "counts": run.counts}


def enqueue_sync(*, vcenter: VCenter, trigger: str = SyncRun.Trigger.MANUAL) -> SyncRun:
    """Create a queued SyncRun and send the task once the surrounding transaction commits."""
    from django.db import transaction

    run = services.start_sync_run(vcenter=vcenter, trigger=trigger)
    transaction.on_commit(lambda: sync_vcenter_task.delay(vcenter_id=vcenter.pk, trigger=trigger, run_id=run.pk))
    return run


@shared_task
def purge_stale_task() -> dict:
    return services.purge_stale()
