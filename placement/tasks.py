"""Celery tasks: thin wrappers around placement services."""

from celery import shared_task

from placement import services


@shared_task
def expire_reservations_task() -> dict:
    return services.reconcile_reservations()
