"""The sync task through a real Celery worker on Redis, its retries, and the per-vCenter lock."""

from __future__ import annotations

import time

import pytest
from django.test import override_settings

from inventory import services, tasks
from inventory.locks import LockBusy, vcenter_sync_lock
from inventory.models import Gpu, SyncRun, SyncStatus
from tests.vcsim import free_port_url
from tests.waits import wait_for


@pytest.mark.django_db(transaction=True)
def test_sync_runs_in_a_real_celery_worker(celery_worker, demo_lab):
    vcenter = services.register_vcenter(
        name="lab",
        url=demo_lab.url,
        username=demo_lab.username,
        password=demo_lab.password,
        ca_file=demo_lab.cert_path,
    )
    run = tasks.enqueue_sync(vcenter=vcenter)
    assert run.status == SyncStatus.QUEUED
    done = wait_for(lambda: SyncRun.objects.filter(pk=run.pk, status__in=["success", "failed"]).first())
    assert done.status == SyncStatus.SUCCESS, done.error
    assert done.counts["seen_gpus"] == 20
    assert Gpu.objects.filter(host__vcenter=vcenter).count() == 20


@pytest.mark.django_db(transaction=True)
def test_connection_errors_are_retried_with_backoff_by_the_worker(celery_worker, demo_lab):
    vcenter = services.register_vcenter(
        name="down", url=free_port_url(demo_lab.url), username="u", password="p", verify_tls=False
    )
    first = tasks.enqueue_sync(vcenter=vcenter)
    # the task notes the retry on the failed run just after the service recorded the failure
    failed = wait_for(lambda: SyncRun.objects.filter(pk=first.pk, status="failed", error__contains="retry").first())
    assert "connection refused" in failed.error and "retry 1 in" in failed.error
    retried = wait_for(lambda: SyncRun.objects.filter(vcenter=vcenter, attempt=2).first())
    assert retried.trigger == first.trigger
    vcenter.refresh_from_db()
    assert vcenter.inventory_stale  # the retries keep running; the stored inventory stays marked stale


@pytest.mark.django_db(transaction=True)
def test_auth_errors_are_not_retried(celery_worker, demo_lab):
    vcenter = services.register_vcenter(
        name="badpw", url=demo_lab.url, username=demo_lab.username, password="nope", verify_tls=False
    )
    run = tasks.enqueue_sync(vcenter=vcenter)
    failed = wait_for(lambda: SyncRun.objects.filter(pk=run.pk, status="failed").first())
    assert "rejected the login" in failed.error and "retry" not in failed.error
    time.sleep(2.5)  # longer than the first backoff the worker would use
    assert not SyncRun.objects.filter(vcenter=vcenter, attempt=2).exists()


def test_retry_delay_grows_exponentially_and_is_capped(settings):
    settings.SYNC_RETRY_BASE_SECONDS = 30
    delays = [tasks.retry_delay(n) for n in range(1, 8)]
    assert 24 <= delays[0] <= 36 and 48 <= delays[1] <= 72 and 96 <= delays[2] <= 144
    assert max(delays) <= 900 * 1.2


@pytest.mark.django_db
def test_lock_in_database_mode_prevents_overlap(settings):
    settings.REDIS_URL = ""
    with vcenter_sync_lock(7), pytest.raises(LockBusy), vcenter_sync_lock(7):
        pass
    with vcenter_sync_lock(7):  # released
        pass


def test_lock_in_redis_mode_prevents_overlap(redis_url):
    with override_settings(REDIS_URL=redis_url):
        with vcenter_sync_lock(8), pytest.raises(LockBusy), vcenter_sync_lock(8):
            pass
        with vcenter_sync_lock(8):
            pass


@pytest.mark.django_db
def test_a_second_sync_of_the_same_vcenter_is_skipped_while_one_runs(demo_lab):
    vcenter = services.register_vcenter(
        name="lab", url=demo_lab.url, username=demo_lab.username, password=demo_lab.password, verify_tls=False
    )
    with vcenter_sync_lock(vcenter.pk):
        result = tasks.sync_vcenter_task.apply(kwargs={"vcenter_id": vcenter.pk, "trigger": "manual"}).get()
    assert result["status"] == "skipped"
    assert not Gpu.objects.exists()
    result = tasks.sync_vcenter_task.apply(kwargs={"vcenter_id": vcenter.pk, "trigger": "manual"}).get()
    assert result["status"] == "success"


@pytest.mark.django_db
def test_registering_a_vcenter_schedules_its_periodic_sync():
    from django_celery_beat.models import PeriodicTask

    vcenter = services.register_vcenter(
        name="prod", url="https://vc.example.com/sdk", username="u", password="p", sync_interval_minutes=7
    )
    task = PeriodicTask.objects.get(name="sync vCenter prod")
    assert task.task == "inventory.tasks.sync_vcenter_task" and task.interval.every == 7 and task.enabled
    services.remove_vcenter(vcenter=vcenter)
    assert not PeriodicTask.objects.filter(name="sync vCenter prod").exists()


@pytest.mark.django_db(transaction=True)
def test_in_process_a_failed_sync_is_one_failed_run_without_a_retry_promise(demo_lab):
    """No broker (the embedded default): nothing can schedule a retry, so none is promised or run at once."""
    vcenter = services.register_vcenter(
        name="down-eager", url=free_port_url(demo_lab.url), username="u", password="p", verify_tls=False
    )
    run = tasks.enqueue_sync(vcenter=vcenter)  # eager: runs at commit, inside this call
    run.refresh_from_db()
    assert run.status == SyncStatus.FAILED and "connection refused" in run.error and "retry" not in run.error
    assert SyncRun.objects.filter(vcenter=vcenter).count() == 1


@pytest.mark.django_db
@pytest.mark.reliability("sync", "sync requested while one waits for a worker")
def test_a_request_while_a_sync_waits_is_a_skipped_row_whose_page_names_that_run(client, settings):
    from django.contrib.auth.models import Group

    from tests.factories import UserFactory

    settings.SYNC_QUEUE_TIMEOUT = 3600
    vcenter = services.register_vcenter(name="busy", url="https://vc.example.com/sdk", username="u", password="p")
    waiting = services.request_sync(vcenter=vcenter, trigger="schedule")  # queued, no worker has taken it yet
    Group.objects.get_or_create(name="admin")
    client.force_login(UserFactory(username="busy-admin", role="admin"))
    page = client.post("/syncs/start/", {"vcenter": vcenter.pk}, follow=True).content.decode()
    skipped = SyncRun.objects.get(vcenter=vcenter, trigger="manual")
    assert skipped.status == SyncStatus.SKIPPED and skipped.blocked_by_id == waiting.pk
    assert f"skipped: sync #{waiting.pk} of this vCenter is queued" == skipped.error
    assert "Why skipped" in page and f'href="/syncs/{waiting.pk}/"' in page
    listing = client.get("/syncs/").content.decode()
    assert "Skipped" in listing and f"sync #{waiting.pk} of this vCenter is queued" in listing


@pytest.mark.django_db
@pytest.mark.reliability("sync", "queued run no worker ever started")
def test_a_queued_run_no_worker_started_is_lost_and_does_not_block_the_next_request(settings):
    vcenter = services.register_vcenter(name="orphan", url="https://vc.example.com/sdk", username="u", password="p")
    orphan = services.request_sync(vcenter=vcenter, trigger="schedule")
    settings.SYNC_QUEUE_TIMEOUT = 0
    fresh = services.request_sync(vcenter=vcenter, trigger="manual")
    orphan.refresh_from_db()
    assert orphan.status == SyncStatus.LOST and orphan.error == "lost: no worker started it within 0 s"
    assert fresh.status == SyncStatus.QUEUED
