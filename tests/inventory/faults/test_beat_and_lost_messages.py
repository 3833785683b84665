"""Redis restarted without its data (trial B 3, 10) and beat's own liveness (trial A H4), each on the test's own
Redis: a queued sync whose message is gone is marked lost within a watchdog period; /healthz does not report a
false connection error after the restart; beat notes its tick with no worker running and logs one line per task it
cannot send while Redis is down."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from inventory import broker, services, tasks
from inventory.models import SyncRun, SyncStatus
from inventory.services import reaping
from tests.conftest import REPO, _database_url_for_subprocess
from tests.inventory.faults.conftest import FAST, Workers
from tests.waits import wait_for

pytestmark = pytest.mark.faults


@pytest.fixture
def on_own_redis(own_redis, transactional_db, fast_sync_settings, tmp_path, monkeypatch):
    """This process's broker, locks and health on the test's own Redis; workers started on demand."""
    fast_sync_settings.REDIS_URL = own_redis.url
    fast_sync_settings.SYNC_QUEUE_GRACE = 1.0
    monkeypatch.setattr(reaping, "UNSENT_RECHECK_SECONDS", 0.2)
    pool = Workers(own_redis.url, tmp_path, {"SYNC_QUEUE_GRACE": "1"})
    yield pool
    pool.close()


def vcenter(name: str):
    port = 1 + sum(map(ord, name))  # nothing listens there; one URL per vCenter
    return services.register_vcenter(name=name, url=f"https://127.0.0.1:{port}/sdk", username="u", password="p")


def queued_run(name: str) -> SyncRun:
    """A sync requested while no worker runs: queued, its message waiting in the broker; past its grace."""
    with transaction.atomic():
        run = tasks.enqueue_sync(vcenter=vcenter(name))
    assert run.status == SyncStatus.QUEUED
    SyncRun.objects.filter(pk=run.pk).update(created=timezone.now() - timedelta(seconds=5))
    return run


def restart(own_redis) -> None:
    from config.celery import app

    own_redis.kill()  # no persistence: every queued message is gone
    own_redis.start()
    app._pool = None  # this process's pooled connections died with it
    app.amqp._producer_pool = None


@pytest.mark.reliability("broker", "queued sync message lost with Redis")
def test_a_queued_sync_whose_message_redis_lost_is_marked_lost_at_the_next_watchdog(on_own_redis, own_redis):
    run = queued_run("lost-message")
    assert broker.sync_runs_with_a_message() == {run.pk}
    assert services.reap_unsent_syncs() == []  # its message waits in the queue: nothing to do

    restart(own_redis)
    on_own_redis.start()  # a worker, idle: before, the run stayed queued SYNC_QUEUE_TIMEOUT (16 min)
    wait_for(lambda: tasks.sync_watchdog_task.delay() and SyncRun.objects.get(pk=run.pk).finished, 30, interval=1.0)
    run.refresh_from_db()
    assert run.status == SyncStatus.LOST
    assert run.error.startswith("lost: its task message is no longer in the broker and no worker holds it")

    with transaction.atomic():
        again = tasks.enqueue_sync(vcenter=run.vcenter)
    assert again.status == SyncStatus.QUEUED, again.error  # the vCenter is no longer blocked by it

    # The worker's log (INFO) says what the watchdog did, not that it ran every period (trial B 9).
    log = on_own_redis.started[0].output()
    assert f"WARNING/MainProcess] sync #{run.pk} of vCenter lost-message lost: its task message" in log, log
    assert "sync_watchdog_task[" not in log, log


def test_a_message_held_by_a_worker_counts_and_nothing_is_decided_without_the_broker(on_own_redis, own_redis):
    import redis

    run = queued_run("held")
    client = redis.Redis.from_url(own_redis.url)
    queue = on_own_redis.queue
    message = client.rpop(queue)  # what a worker does when it takes the message (acks late: into "unacked")
    client.hset(broker.UNACKED_KEY, "tag-1", json.dumps([json.loads(message), "", queue]))
    assert broker.sync_runs_with_a_message() == {run.pk}
    assert services.reap_unsent_syncs() == []

    own_redis.kill()
    assert broker.sync_runs_with_a_message() is None
    assert services.reap_unsent_syncs() == []
    run.refresh_from_db()
    assert run.status == SyncStatus.QUEUED


def test_a_run_within_its_grace_or_before_its_retry_time_is_not_asked_about(on_own_redis, own_redis, monkeypatch):
    import redis

    run = queued_run("grace")
    redis.Redis.from_url(own_redis.url).delete(on_own_redis.queue)
    SyncRun.objects.filter(pk=run.pk).update(created=timezone.now())  # just requested: its message may be in flight
    later = SyncRun.objects.create(
        vcenter=vcenter("retry"), status=SyncStatus.QUEUED, not_before=timezone.now() + timedelta(seconds=30)
    )
    monkeypatch.setattr(broker, "sync_runs_with_a_message", lambda: pytest.fail("the broker was read"))
    assert services.reap_unsent_syncs() == []
    assert {r.status for r in SyncRun.objects.filter(pk__in=[run.pk, later.pk])} == {SyncStatus.QUEUED}


@pytest.mark.reliability("broker", "health right after a Redis restart")
def test_health_right_after_a_redis_restart_is_not_a_false_connection_error(on_own_redis, own_redis, client):
    from inventory.views.health import ping_workers

    on_own_redis.start()
    assert ping_workers()["status"] == "ok"  # this process now holds a pooled broker connection
    own_redis.kill()
    own_redis.start()  # the worker survives a short outage; the pooled connection does not
    check = ping_workers()
    assert "not reachable" not in check["detail"], check  # before: "workers not reachable (ConnectionError)"
    wait_for(lambda: ping_workers()["status"] == "ok", 30, interval=0.5, what="the worker to answer again")


@pytest.mark.reliability("worker", "beat alive while no worker runs")
def test_beat_notes_its_own_tick_with_no_worker_and_logs_one_line_per_failure_while_redis_is_down(
    on_own_redis, own_redis, tmp_path, client
):
    import redis

    from inventory.beat import BEAT_TICK_KEY

    log = tmp_path / "beat.log"
    env = {
        **os.environ,
        "DATABASE_URL": _database_url_for_subprocess(),
        "REDIS_URL": own_redis.url,
        "SYNC_WATCHDOG_SECONDS": "1",
        **{k: str(v) for k, v in FAST.items()},
    }
    args = [sys.executable, "-m", "celery", "-A", "config", "beat", "--loglevel", "INFO"]
    args += ["--schedule", str(tmp_path / "beat-schedule")]
    with log.open("w") as out:
        proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        store = redis.Redis.from_url(own_redis.url)
        wait_for(lambda: store.get(BEAT_TICK_KEY), 60, interval=0.5, what=f"beat's tick:\n{log.read_text()}")
        beat = client.get("/healthz").json()["checks"]["beat"]
        assert beat["status"] == "ok" and beat["detail"].startswith("last tick")  # and no worker runs at all

        own_redis.kill()
        time.sleep(5)  # the watchdog is due every second: each is a failure to send
        own_redis.start()
        wait_for(lambda: store.get(BEAT_TICK_KEY), 30, interval=0.5, what="beat's tick after the restart")
    finally:
        proc.terminate()
        proc.wait(20)
    text = log.read_text()
    failures = [line for line in text.splitlines() if "Couldn't apply scheduled task" in line]
    assert failures, text
    assert "Traceback" not in text and "Message Error" not in text, text
    assert all("ERROR" in line and "] beat: Couldn't apply scheduled task " in line for line in failures), failures
    assert "Sending due task sync-watchdog" not in text  # every second (30 s by default): DEBUG
