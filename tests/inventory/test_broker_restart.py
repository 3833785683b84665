"""Redis restarted for a few seconds while a prefork worker holds an unacknowledged sync (acks_late, a sync in
flight): the worker reconnects on its retry schedule and keeps working (trial B, finding 1).

Celery 5.7.0 closed the broken connection a second time after collecting it; kombu's Redis channel then tried to
restore the unacknowledged message through a transport whose connection was already cleared, and the worker died
with ``AttributeError: 'NoneType' object has no attribute 'hostname'``. A solo-pool worker never saw it (it runs
the task in its consumer, so nothing is unacknowledged when the connection error surfaces): this test uses prefork.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import transaction

from inventory import tasks
from inventory.models import SyncRun, SyncStatus
from tests.conftest import REPO, _database_url_for_subprocess
from tests.inventory.faults.conftest import FAST, Worker, Workers, register_lab
from tests.vcsim import LABS, start_lab
from tests.waits import wait_for

pytestmark = [pytest.mark.faults, pytest.mark.celery_worker, pytest.mark.vcsim]

OUTAGE_SECONDS = 3.0  # Redis down about as long as in the trial: shorter than the worker's first two retries


def start_worker(pool: Workers, log: Path) -> Worker:
    """``celery -A config worker`` as deployed (prefork, two processes, mingle and gossip on: the trial's worker
    died while its gossip and control consumers shut down), on the test's queue; answering a ping."""
    env = {
        **os.environ,
        "DATABASE_URL": _database_url_for_subprocess(),
        "REDIS_URL": pool.broker_url,
        **{key: str(value) for key, value in FAST.items()},
    }
    name = f"{pool.queue}@{os.uname().nodename}"
    args = [sys.executable, "-m", "celery", "-A", "config", "worker", "--concurrency", "2", "--loglevel", "INFO"]
    args += ["--queues", pool.queue, "--hostname", name]
    with log.open("w") as out:
        proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    worker = Worker(proc, pool.queue, log)
    pool.started.append(worker)  # stopped by pool.close()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"celery worker exited with {proc.returncode}:\n{worker.output()}")
        if pool.app.control.ping(destination=[name], timeout=0.5):
            return worker
    pytest.fail(f"celery worker did not answer a ping within 60 s:\n{worker.output()}")


def reconnected_or_exited(worker) -> bool:
    """The worker logged a new connection after losing the broker, or its process ended."""
    if worker.proc.poll() is not None:
        return True
    log = worker.log.read_text(errors="replace")
    return "Connected to redis://" in log.rpartition("Connection to broker lost")[2]


def finished(run_id: int) -> SyncRun | None:
    run = SyncRun.objects.get(pk=run_id)
    return run if run.finished else None


@pytest.mark.reliability("broker", "Redis restarted while a prefork worker holds an unacknowledged sync")
def test_a_redis_restart_with_a_sync_in_flight_leaves_the_worker_running_and_consuming(
    own_redis, transactional_db, fast_sync_settings, tmp_path, gpulab_binary
):
    fast_sync_settings.REDIS_URL = own_redis.url  # broker and locks on the test's own Redis
    pool = Workers(own_redis.url, tmp_path, {})
    lab = start_lab(LABS / "demo.json", delay_ms=800)  # a sync of several seconds: in flight during the outage
    try:
        vcenter = register_lab("redis-blip", lab)
        worker = start_worker(pool, tmp_path / "worker.log")
        with transaction.atomic():
            run = tasks.enqueue_sync(vcenter=vcenter)
        wait_for(lambda: SyncRun.objects.filter(pk=run.pk, status="running").exists(), 60, what="the sync to start")

        own_redis.kill()
        time.sleep(OUTAGE_SECONDS)
        own_redis.start()

        # The held sync is not lost: the pool process finishes it (its message is restored or redelivered after
        # the visibility timeout if it does not; the watchdog reaps it if Redis lost it and no worker holds it).
        done = wait_for(lambda: finished(run.pk), 120, what="the sync in flight to finish")
        assert done.status == SyncStatus.SUCCESS, done.error

        # The worker reconnects (2 s, 4 s, ... apart) instead of exiting on an internal error.
        wait_for(lambda: reconnected_or_exited(worker), 30, what="the worker to reconnect or exit")
        assert worker.proc.poll() is None, f"the worker exited with {worker.proc.returncode}:\n{worker.output()}"
        log = worker.log.read_text(errors="replace")
        assert "Connection to broker lost" in log, log[-4000:]
        # (Celery 5.7 may still log "Error on restarting Gossip": its own, harmless, the step restarts.)
        assert "Unrecoverable error" not in log and "no attribute 'hostname'" not in log, log[-6000:]
        assert "Couldn't ack" not in log, log[-6000:]  # the finished sync's acknowledgement went through

        # ... and consumes the next task.
        with transaction.atomic():
            again = tasks.enqueue_sync(vcenter=vcenter)
        assert again.status == SyncStatus.QUEUED, again.error
        after = wait_for(lambda: finished(again.pk), 120, what="the next sync to finish")
        assert after.status == SyncStatus.SUCCESS, after.error
        assert worker.proc.poll() is None, worker.output()
    finally:
        lab.stop()
        pool.close()
