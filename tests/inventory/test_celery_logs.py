"""The worker's routine per-task lines are DEBUG (the watchdog every 30 s, a what-if waiting for its slot); a
sync's counts are logged once, by the service, not again in Celery's "succeeded" line."""

from __future__ import annotations

import logging

import pytest
from celery.app import trace

from config.celery import WATCHDOG_TASK, WHATIF_TASK, RoutineTaskLogs
from inventory import services, tasks
from inventory.models import SyncRun
from inventory.vsphere.snapshot import InventorySnapshot


def emitted(logger_name: str, msg: str, context: dict, level: int = logging.INFO) -> list[logging.LogRecord]:
    """What a handler on the root logger receives when ``logger_name`` logs ``msg % context`` at INFO."""
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    root, handler = logging.getLogger(), Keep()
    logger = logging.getLogger(logger_name)
    old = logger.level
    root.addHandler(handler)
    logger.setLevel(level)
    try:
        logger.info(msg, context)
    finally:
        root.removeHandler(handler)
        logger.setLevel(old)
    return seen


def test_the_filter_is_on_the_loggers_celery_writes_task_lines_to():
    for name in ("celery.app.trace", "celery.worker.strategy"):
        assert any(isinstance(f, RoutineTaskLogs) for f in logging.getLogger(name).filters)


@pytest.mark.parametrize("msg", [trace.LOG_RECEIVED, trace.LOG_SUCCESS])
def test_the_watchdogs_received_and_succeeded_lines_are_debug(msg):
    context = {"name": WATCHDOG_TASK, "id": "x", "return_value": "{'lost': []}", "runtime": 0.01, "eta": None}
    assert emitted("celery.app.trace", msg, context) == []
    (record,) = emitted("celery.app.trace", msg, context, level=logging.DEBUG)  # LOG_LEVEL=DEBUG shows them
    assert record.levelname == "DEBUG"


def test_other_tasks_keep_their_info_lines():
    context = {"name": "inventory.tasks.sync_vcenter_task", "id": "x", "return_value": "{}", "runtime": 1.0}
    (record,) = emitted("celery.app.trace", trace.LOG_SUCCESS, context)
    assert record.levelname == "INFO"
    failure = {"name": WATCHDOG_TASK, "id": "x", "description": "raised unexpected", "exc": "boom"}
    assert emitted("celery.app.trace", trace.LOG_FAILURE, failure)  # a failing watchdog is never hidden


def test_a_waiting_whatifs_retries_and_their_deliveries_are_debug_its_first_delivery_info():
    first = {"name": WHATIF_TASK, "id": "x", "eta": None, "args": "(3,)", "kwargs": "{}"}
    again = {**first, "eta": "2026-12-01T00:00:10+00:00"}
    assert [r.levelname for r in emitted("celery.worker.strategy", trace.LOG_RECEIVED, first)] == ["INFO"]
    assert emitted("celery.worker.strategy", trace.LOG_RECEIVED, again) == []
    assert emitted("celery.app.trace", trace.LOG_RETRY, {"name": WHATIF_TASK, "id": "x", "exc": "Retry in 9s"}) == []


@pytest.mark.django_db
def test_the_sync_task_returns_a_short_summary_not_the_counts(monkeypatch):
    vcenter = services.register_vcenter(name="quiet", url="https://vc.example.com/sdk", username="u", password="p")

    def collect(vc, progress=None) -> InventorySnapshot:
        return InventorySnapshot()

    real = services.sync_vcenter
    monkeypatch.setattr(services, "sync_vcenter", lambda **kwargs: real(**kwargs, collector=collect))
    result = tasks.sync_vcenter_task.apply(kwargs={"vcenter_id": vcenter.pk, "trigger": "manual"}).get()
    run = SyncRun.objects.get(vcenter=vcenter)
    assert result == {"status": "success", "run": run.pk}
    assert run.counts  # the counts are on the run (and in the service's "synced vCenter" line)
