import logging
import os

from celery import Celery

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
