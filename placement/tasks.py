"""Celery tasks: thin wrappers around placement services."""

import logging
import random

from celery import shared_task

from placement import services

logger = logging.getLogger(__name__)


@shared_task
def expire_reservations_task() -> dict:
    return services.reconcile_reservations()


@shared_task
def reap_whatif_runs_task() -> dict:
    from placement.whatif import reap_lost_runs

    return {"lost": reap_lost_runs()}


@shared_task(bind=True, acks_late=True, max_retries=None)
def whatif_task(self, run_id: int) -> dict:
    from placement.whatif import WAIT_SECONDS, claim_slot, execute_run

    if not self.request.is_eager:
        waiting = claim_slot(run_id=run_id)
        if waiting is not None:
            if not self.request.retries:
                logger.info("what-if #%s %s", run_id, waiting)
            # Sent again for later: this worker process is free meanwhile for syncs and the watchdog.
            raise self.retry(countdown=WAIT_SECONDS * random.uniform(0.8, 1.2))
    run = execute_run(run_id=run_id, claimed=not self.request.is_eager)
    return {"run": run.pk, "status": run.status}
