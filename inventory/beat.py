"""Celery beat's own liveness, noted by beat itself, and its log lines.

``Scheduler`` is django-celery-beat's DatabaseScheduler (the per-vCenter syncs are its PeriodicTask rows) that
also notes "beat is alive" in Redis as it ticks (at most every ``NOTE_EVERY`` seconds). ``/healthz`` reads that
note: before, a worker noted the tick when it ran the watchdog, so workers busy with long tasks made a healthy
beat look dead. It also logs a task it could not send in one line, not a full traceback on every tick while
Redis is down, and sends the every-30-second watchdog at DEBUG.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.conf import settings
from django.utils import timezone
from django_celery_beat.schedulers import DatabaseScheduler

logger = logging.getLogger(__name__)

BEAT_TICK_KEY = "gpu-advisor:beat:last-tick"
NOTE_EVERY = 10.0  # seconds between two notes: far below HEALTH_BEAT_MAX_AGE (90 s by default)
# After Redis comes back without its data (the tick included), beat notes a tick again within one note period plus
# its longest sleep between two ticks (django-celery-beat's 5 s), or a little later when sending the tasks that fell
# due meanwhile takes a while: until then a missing tick says nothing about beat (/healthz says "unknown").
TICK_AGAIN_WITHIN = NOTE_EVERY + 5.0 + 10.0
QUIET_ENTRIES = {"sync-watchdog"}  # sent every SYNC_WATCHDOG_SECONDS: their "Sending due task" line is DEBUG


def note_beat_tick() -> None:
    """Note in Redis that beat is alive now (nothing to note without a broker: beat is not used then)."""
    from inventory.locks import redis_client

    if settings.REDIS_URL:
        redis_client().set(BEAT_TICK_KEY, timezone.now().isoformat(), ex=24 * 3600)


class Scheduler(DatabaseScheduler):
    """django-celery-beat's scheduler, noting its tick for ``/healthz`` (``CELERY_BEAT_SCHEDULER``)."""

    _noted_at: float | None = None
    _note_failing = False

    def tick(self, *args: Any, **kwargs: Any) -> float:
        delay = super().tick(*args, **kwargs)
        self.note_alive()
        return delay

    def note_alive(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        if self._noted_at is not None and now - self._noted_at < NOTE_EVERY:
            return
        self._noted_at = now  # a failed note is retried NOTE_EVERY later too, not on every tick
        try:
            note_beat_tick()
        except Exception as exc:
            if not self._note_failing:
                logger.warning("beat: its tick not noted for /healthz: Redis unreachable (%s)", _one_line(exc))
            self._note_failing = True
        else:
            if self._note_failing:
                logger.info("beat: its tick is noted for /healthz again")
            self._note_failing = False

    def apply_entry(self, entry: Any, producer: Any = None) -> None:
        level = logging.DEBUG if entry.name in QUIET_ENTRIES else logging.INFO
        logger.log(level, "Scheduler: Sending due task %s (%s)", entry.name, entry.task)
        try:
            self.apply_async(entry, producer=producer, advance=False)
        except Exception as exc:
            # One line per failure: while Redis is down this happens on every due entry.
            logger.error("beat: %s", _one_line(exc))


def _one_line(exc: BaseException) -> str:
    cause = exc.__cause__ or exc.__context__
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if cause is not None and str(cause) and str(cause) not in text:
        text += f" ({type(cause).__name__}: {str(cause).splitlines()[0]})"
    return text
