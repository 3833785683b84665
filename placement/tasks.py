"""Celery tasks: thin wrappers around placement services."""

from celery import shared_task

from placement import services


@shared_task
def expire_reservations_task() -> dict:
    return services.reconcile_reservations()


@shared_task(acks_late=True)
def whatif_task(run_id: int) -> dict:
    from placement.whatif import execute_run

    run = execute_run(run_id=run_id)
    return {"run": run.pk, "status": run.status}
