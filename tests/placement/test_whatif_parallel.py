"""What-if runs never take every worker process: at most WHATIF_MAX_PARALLEL run at once, the others stay queued
without holding a process, so syncs and the watchdog are not held up behind simulations (trial A, H4)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from inventory import services, tasks
from inventory.models import SyncRun
from placement import whatif
from placement.models import WhatIfRun
from placement.tasks import whatif_task
from tests.waits import wait_for

SMALL = {"board": "A100-80GB", "mode": "mixed", "catalog": ["8C", "10C", "20C"], "seed": 5}


def running(**fields) -> WhatIfRun:
    return WhatIfRun.objects.create(params={}, status=WhatIfRun.Status.RUNNING, started_at=timezone.now(), **fields)


def queued() -> WhatIfRun:
    return WhatIfRun.objects.create(params={})


@pytest.mark.django_db
def test_a_run_claims_a_free_slot_and_is_marked_running(settings):
    settings.WHATIF_MAX_PARALLEL = 1
    run = queued()
    assert whatif.claim_slot(run_id=run.pk) is None
    run.refresh_from_db()
    assert run.status == WhatIfRun.Status.RUNNING and run.started_at is not None


@pytest.mark.django_db
def test_a_run_waits_queued_while_the_slots_are_taken_saying_why(settings):
    settings.WHATIF_MAX_PARALLEL = 1
    running()
    run = queued()
    reason = whatif.claim_slot(run_id=run.pk)
    assert reason == "waits for a free slot: 1 what-if run running, at most 1 at once (WHATIF_MAX_PARALLEL)"
    run.refresh_from_db()
    assert run.status == WhatIfRun.Status.QUEUED and run.started_at is None

    settings.WHATIF_MAX_PARALLEL = 2
    assert whatif.claim_slot(run_id=run.pk) is None


@pytest.mark.django_db
def test_no_limit_with_zero(settings):
    settings.WHATIF_MAX_PARALLEL = 0
    running(), running()
    run = queued()
    assert whatif.claim_slot(run_id=run.pk) is None


@pytest.mark.django_db
def test_a_run_older_than_the_hard_time_limit_no_longer_holds_a_slot(settings):
    """Its worker died (the hard limit would have killed it by now): it must not block every later run."""
    settings.WHATIF_MAX_PARALLEL = 1
    dead = running()
    WhatIfRun.objects.filter(pk=dead.pk).update(
        started_at=timezone.now() - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 1)
    )
    assert whatif.claim_slot(run_id=queued().pk) is None


@pytest.mark.django_db
def test_a_redelivered_running_run_does_not_wait_for_itself_and_a_finished_one_is_left_alone(settings):
    settings.WHATIF_MAX_PARALLEL = 1
    again = running()  # its message came back after its worker died
    assert whatif.claim_slot(run_id=again.pk) is None
    done = WhatIfRun.objects.create(params={}, status=WhatIfRun.Status.SUCCESS, finished_at=timezone.now())
    WhatIfRun.objects.filter(pk=again.pk).update(status=WhatIfRun.Status.SUCCESS)
    assert whatif.claim_slot(run_id=done.pk) is None
    done.refresh_from_db()
    assert done.status == WhatIfRun.Status.SUCCESS and done.started_at is None


@pytest.mark.django_db
def test_in_process_the_limit_does_not_apply(settings):
    """Without a broker a task runs in the caller: there is no worker process to keep free, nothing to wait on."""
    settings.WHATIF_MAX_PARALLEL = 1
    running()
    run = WhatIfRun.objects.create(params=whatif.normalize({**SMALL, "runs": 10}))
    assert whatif_task.apply(args=(run.pk,)).get()["status"] == WhatIfRun.Status.SUCCESS


@pytest.mark.celery_worker
@pytest.mark.reliability("broker", "what-if runs waiting for a slot while a sync runs")
def test_a_waiting_what_if_leaves_the_worker_to_syncs_and_runs_once_the_slot_frees(celery_worker, transactional_db):
    """One worker process, one what-if already running: a second waits queued without holding the process, a
    sync requested meanwhile is done at once, and the waiting what-if runs when the first one finishes."""
    blocker = running()
    run = whatif.start_whatif(data={**SMALL, "runs": whatif.SYNC_WORK + 1_000, "hosts": 1, "gpus_per_host": 1})
    assert run.status == WhatIfRun.Status.QUEUED

    vcenter = services.register_vcenter(name="refused", url="https://127.0.0.1:1/sdk", username="u", password="p")
    sync = tasks.enqueue_sync(vcenter=vcenter)
    wait_for(lambda: SyncRun.objects.get(pk=sync.pk).finished, 30, what="the sync behind the what-if to be done")
    run.refresh_from_db()
    assert run.status == WhatIfRun.Status.QUEUED and run.started_at is None

    WhatIfRun.objects.filter(pk=blocker.pk).update(status=WhatIfRun.Status.SUCCESS, finished_at=timezone.now())
    wait_for(lambda: WhatIfRun.objects.get(pk=run.pk).finished, 120, what="the waiting what-if to run")
    run.refresh_from_db()
    assert run.status == WhatIfRun.Status.SUCCESS, run.error


@pytest.mark.django_db
def test_a_run_whose_worker_died_is_marked_failed_once_no_delivery_can_restart_it(settings):
    """A what-if whose worker was killed said "Simulating" for ever (operator trial B): past the hard time limit
    plus the broker's visibility timeout no worker runs it and no redelivery can restart it."""
    from datetime import timedelta

    from django.utils import timezone

    from placement.models import WhatIfRun
    from placement.tasks import reap_whatif_runs_task
    from placement.whatif import LOST_RUN_ERROR

    limit = settings.CELERY_TASK_TIME_LIMIT + settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
    now = timezone.now()
    dead = WhatIfRun.objects.create(params={}, status="running", started_at=now - timedelta(seconds=limit + 5))
    alive = WhatIfRun.objects.create(params={}, status="running", started_at=now - timedelta(seconds=limit - 60))
    queued = WhatIfRun.objects.create(params={}, status="queued")
    assert reap_whatif_runs_task() == {"lost": 1}
    dead.refresh_from_db()
    assert dead.status == "failed" and dead.error == LOST_RUN_ERROR and dead.finished_at is not None
    assert WhatIfRun.objects.get(pk=alive.pk).status == "running"
    assert WhatIfRun.objects.get(pk=queued.pk).status == "queued"
    assert "placement.tasks.reap_whatif_runs_task" in {e["task"] for e in settings.CELERY_BEAT_SCHEDULE.values()}
