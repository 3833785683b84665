"""Beat notes its own liveness for ``/healthz`` (throttled), and logs one line per task it cannot send."""

from __future__ import annotations

import logging
from datetime import datetime
from types import SimpleNamespace

import pytest
from celery.beat import SchedulingError
from django.utils import timezone
from django_celery_beat.schedulers import DatabaseScheduler

from inventory import beat


def scheduler() -> beat.Scheduler:
    # Only the notes and apply_entry are under test: no database schedule is loaded.
    return beat.Scheduler.__new__(beat.Scheduler)


def test_the_beat_tick_is_noted_by_beat_itself_at_most_every_note_every_seconds(monkeypatch):
    notes = []
    monkeypatch.setattr(beat, "note_beat_tick", lambda: notes.append(1))
    s = scheduler()
    s.note_alive(now=100.0)
    s.note_alive(now=100.0 + beat.NOTE_EVERY - 1)  # a tick soon after: no Redis write
    assert len(notes) == 1
    s.note_alive(now=100.0 + beat.NOTE_EVERY)
    assert len(notes) == 2


def test_the_scheduler_configured_is_the_one_that_notes_its_tick(settings):
    from config.celery import app

    assert settings.CELERY_BEAT_SCHEDULER == "inventory.beat:Scheduler"
    assert app.conf.beat_scheduler == "inventory.beat:Scheduler"
    assert issubclass(beat.Scheduler, DatabaseScheduler)  # the per-vCenter syncs stay PeriodicTask rows


def test_note_beat_tick_writes_the_time_health_reads(redis_url, settings):
    from inventory.locks import redis_client

    settings.REDIS_URL = redis_url
    before = timezone.now()
    beat.note_beat_tick()
    noted = datetime.fromisoformat(redis_client().get(beat.BEAT_TICK_KEY).decode())
    assert before <= noted <= timezone.now()


def test_redis_down_while_noting_is_one_warning_until_it_works_again(monkeypatch, caplog):
    def down() -> None:
        raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(beat, "note_beat_tick", down)
    s = scheduler()
    with caplog.at_level(logging.INFO, logger="inventory.beat"):
        for n in range(5):
            s.note_alive(now=n * beat.NOTE_EVERY)
        monkeypatch.setattr(beat, "note_beat_tick", lambda: None)
        s.note_alive(now=5 * beat.NOTE_EVERY)
    lines = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert lines == [
        (
            "WARNING",
            "beat: its tick not noted for /healthz: Redis unreachable "
            "(Error 111 connecting to 127.0.0.1:6379. Connection refused.)",
        ),
        ("INFO", "beat: its tick is noted for /healthz again"),
    ]


@pytest.mark.parametrize(("name", "level"), [("sync-watchdog", "DEBUG"), ("sync vCenter prod", "INFO")])
def test_a_task_beat_cannot_send_is_one_error_line_without_a_traceback(name, level, monkeypatch, caplog):
    """While Redis is down beat fails every due entry: one line each, not Celery's stack and traceback."""

    def refused(entry, producer=None, advance=True):
        try:
            raise OSError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
        except OSError as exc:
            raise SchedulingError(f"Couldn't apply scheduled task {entry.name}: {exc}") from exc

    s = scheduler()
    monkeypatch.setattr(s, "apply_async", refused)
    entry = SimpleNamespace(name=name, task="inventory.tasks.sync_watchdog_task")
    with caplog.at_level(logging.DEBUG, logger="inventory.beat"):
        s.apply_entry(entry)
    sending, failed = caplog.records
    assert sending.levelname == level and sending.getMessage().startswith(f"Scheduler: Sending due task {name}")
    assert failed.levelname == "ERROR" and failed.exc_info is None and "\n" not in failed.getMessage()
    assert failed.getMessage() == (
        f"beat: Couldn't apply scheduled task {name}: Error 111 connecting to 127.0.0.1:6379. Connection refused."
    )
