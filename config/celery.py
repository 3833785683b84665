import logging
import os
from types import SimpleNamespace
from typing import Any

from celery import Celery
from kombu.transport import redis as kombu_redis

from config.env import configuration_errors_exit

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("gpu_advisor")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_configure.connect
def _check_configuration(sender: Celery, **kwargs: object) -> None:
    """The worker, beat and every `celery -A config` command read Django's settings here first: a misconfigured
    variable stops them with manage.py's one line and exit status, not a traceback from inside Celery."""
    from django.conf import settings

    with configuration_errors_exit(2):
        settings.INSTALLED_APPS  # noqa: B018 - loads (and so validates) the settings


class RedisChannel(kombu_redis.Channel):
    """kombu's Redis channel that can still open a connection pool after its broker connection was collected.

    Workaround for Celery 5.7.0 with kombu 5.7.0 (the newest releases; 5.6 did not close twice): when a worker loses
    Redis it collects the broken connection, which clears the transport's link to the broker's address, and then
    closes it again. With a task held unacknowledged (acks_late: a sync in flight) that second close restores the
    message, and kombu builds the pool from the cleared link: ``AttributeError: 'NoneType' object has no attribute
    'hostname'``, which Celery does not count as a connection error, so the worker exited instead of reconnecting.
    The task's acknowledgement, once it finishes, goes through that same channel and needs a pool too.

    Here the channel keeps the address it was opened with, so that restore and acknowledgement run normally: while
    Redis is down they fail with a connection error (ignored; the message stays in Redis' unacked hash and is
    redelivered after the visibility timeout), and once it is back they work. tests/inventory/test_broker_restart.py
    checks the outage; drop this class once a Celery release passes that test without it.
    """

    def __init__(self, connection: Any, **kwargs: Any) -> None:
        self._opened_with = SimpleNamespace(client=connection.client, default_port=connection.default_port)
        super().__init__(connection, **kwargs)

    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        transport = self.connection
        if transport is not None and transport.client is not None:
            return super()._connparams(asynchronous=asynchronous)
        self.connection = self._opened_with  # _connparams reads only .client and .default_port of it
        try:
            return super()._connparams(asynchronous=asynchronous)
        finally:
            self.connection = transport


kombu_redis.Transport.Channel = RedisChannel  # redis:// and rediss:// alike; Sentinel has a channel of its own


WATCHDOG_TASK = "inventory.tasks.sync_watchdog_task"
WHATIF_TASK = "placement.tasks.whatif_task"


class RoutineTaskLogs(logging.Filter):
    """Lower the worker's per-task INFO lines to DEBUG where they only repeat routine: the watchdog's "received"
    and "succeeded" every SYNC_WATCHDOG_SECONDS (what it reaps is logged as a warning of its own), and a queued
    what-if's re-checks while it waits for a slot (``WHATIF_MAX_PARALLEL``). Shown again with LOG_LEVEL=DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO or not self._routine(record):
            return True
        record.levelno, record.levelname = logging.DEBUG, logging.getLevelName(logging.DEBUG)
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)

    @staticmethod
    def _routine(record: logging.LogRecord) -> bool:
        from celery.app import trace

        context = record.args if isinstance(record.args, dict) else {}
        name = context.get("name")
        if name == WATCHDOG_TASK:
            return record.msg in (trace.LOG_RECEIVED, trace.LOG_SUCCESS)
        if name == WHATIF_TASK:  # a waiting what-if is sent again with an ETA, and logs a retry each time
            return record.msg == trace.LOG_RETRY or (record.msg == trace.LOG_RECEIVED and bool(context.get("eta")))
        return False


for _logger in ("celery.app.trace", "celery.worker.strategy"):
    logging.getLogger(_logger).addFilter(RoutineTaskLogs())
