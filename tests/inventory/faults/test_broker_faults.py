"""The broker dead while syncs are requested and plans made, and Redis restarted during a sync."""

from __future__ import annotations

import json

import pytest
from django.db import transaction
from rest_framework.test import APIClient

from inventory import services, tasks
from inventory.models import SyncRun, SyncStatus
from tests.factories import UserFactory
from tests.inventory.faults.conftest import Workers, free_port, inventory_rows, register_lab, wait_lock_freed
from tests.vcsim import LABS, start_lab
from tests.waits import wait_for

pytestmark = pytest.mark.faults


@pytest.fixture
def dead_broker(settings, transactional_db):
    """REDIS_URL pointing at a port nothing listens on, in this process (the web app's view of the world)."""
    from config.celery import app

    url = f"redis://127.0.0.1:{free_port()}/0"
    settings.REDIS_URL = url
    app.conf.broker_url = url
    app._pool = None
    app.amqp._producer_pool = None
    app.conf.task_always_eager = False
    yield url
    app.conf.task_always_eager = True
    app._pool = None
    app.amqp._producer_pool = None


def demo_inventory():
    return services.import_inventory(document=json.loads((LABS / "demo.json").read_text()), vcenter_name="demo")[0]


def api_as(role: str) -> APIClient:
    from django.contrib.auth.models import Group

    Group.objects.get_or_create(name=role)  # a transactional test flushes the groups the migration made
    api = APIClient()
    api.force_authenticate(UserFactory(username=f"broker-{role}", role=role))
    return api


@pytest.mark.reliability("broker", "dead broker during enqueue")
def test_with_the_broker_dead_a_requested_sync_fails_at_once_saying_why(dead_broker, client):
    vcenter = services.register_vcenter(name="vc", url="https://vc.example.com/sdk", username="u", password="p")

    response = api_as("admin").post("/api/sync-runs/", {"vcenter": vcenter.pk}, format="json")
    assert response.status_code == 503, response.content
    body = response.json()
    assert body["status"] == "failed" and body["finished"] is True
    assert body["error"] == "not queued: the task broker is unreachable (OperationalError)"

    client.force_login(UserFactory(username="broker-page-admin", role="admin"))  # the group exists (api_as)
    page = client.post("/syncs/start/", {"vcenter": vcenter.pk}, follow=True)
    assert page.status_code == 200
    assert "task broker is unreachable" in page.content.decode()

    # Nothing is left queued forever, and the vCenter's own state is untouched: no sync ran.
    assert not SyncRun.objects.filter(status__in=("queued", "running")).exists()
    assert SyncRun.objects.filter(vcenter=vcenter, status="failed").count() == 2
    vcenter.refresh_from_db()
    assert vcenter.last_sync_status == SyncStatus.NEVER and not vcenter.inventory_stale


@pytest.mark.reliability("broker", "dead broker during enqueue")
def test_with_the_broker_dead_the_queue_command_says_the_sync_failed_not_that_a_worker_is_missing(dead_broker):
    """Trial I-1: "sync #14 of lab: queued" and "no Celery worker answered a ping" for a run already failed."""
    from django.core.management import CommandError, call_command

    services.register_vcenter(name="vc", url="https://vc.example.com/sdk", username="u", password="p")
    with pytest.raises(CommandError) as caught:
        call_command("vcenter", "sync", "vc", "--queue")
    message = str(caught.value)
    assert "failed: not queued: the task broker is unreachable" in message and "worker" not in message


@pytest.mark.reliability("broker", "dead broker: health")
def test_with_the_broker_dead_health_answers_503_naming_it_without_its_address(dead_broker, client):
    response = client.get("/healthz")
    assert response.status_code == 503
    report = response.json()
    assert report["status"] == "fail"
    assert report["checks"]["database"]["status"] == "ok"
    broker = report["checks"]["broker"]
    assert broker["status"] == "fail" and "Redis unreachable" in broker["detail"]
    assert report["checks"]["worker"]["status"] == "fail"
    assert dead_broker.split("//")[1].split("/")[0] not in response.content.decode()  # no address, no secret


@pytest.mark.celery_worker
@pytest.mark.reliability("broker", "worker started with the broker dead")
def test_a_worker_started_with_the_broker_dead_exits_non_zero_naming_the_error_not_the_password(
    transactional_db, tmp_path
):
    secret = "broker-pass-s3cret"
    url = f"redis://:{secret}@127.0.0.1:{free_port()}/0"
    pool = Workers(url, tmp_path, {"BROKER_CONNECTION_MAX_RETRIES": "2"})
    try:
        worker = pool.start(ready=False)
        returncode = worker.proc.wait(timeout=60)  # 2 s + 4 s of retries; Celery's default retried for an hour
        log = worker.log.read_text(errors="replace")
    finally:
        pool.close()
    assert returncode != 0, log
    assert "Cannot connect to redis://" in log and "Connection refused" in log
    assert "Unrecoverable error" in log
    assert secret not in log


@pytest.mark.reliability("broker", "dead broker during planning")
def test_with_the_broker_dead_planning_and_reserving_still_work(dead_broker):
    demo_inventory()
    api = api_as("planner")
    plan = api.post("/api/plans/", {"gpus_per_vm": 2}, format="json")
    assert plan.status_code == 200, plan.content
    assert plan.json()["candidates"]
    reserved = api.post("/api/reservations/", {"gpus_per_vm": 2, "vm_name": "llm-broker-down"}, format="json")
    assert reserved.status_code == 201, reserved.content


@pytest.mark.celery_worker
@pytest.mark.vcsim
@pytest.mark.reliability("broker", "Redis restarted during a sync")
def test_redis_restarted_during_a_sync_the_sync_completes_and_the_next_one_too(
    own_redis, transactional_db, fast_sync_settings, tmp_path, gpulab_binary
):
    fast_sync_settings.REDIS_URL = own_redis.url  # broker and locks on the test's own Redis
    pool = Workers(own_redis.url, tmp_path, {})
    lab = start_lab(LABS / "demo.json", delay_ms=400)
    try:
        vcenter = register_lab("redis-restart", lab)
        pool.start()
        with transaction.atomic():
            run = tasks.enqueue_sync(vcenter=vcenter)
        wait_for(lambda: SyncRun.objects.filter(pk=run.pk, status="running").exists(), 60, what="the sync to start")
        own_redis.kill()  # the queue, the lock and the unacked message are gone with it (no persistence)
        own_redis.start()
        wait_for(lambda: SyncRun.objects.get(pk=run.pk).finished, 90, what="the sync to finish")
        run.refresh_from_db()
        assert run.status == SyncStatus.SUCCESS, run.error
        assert inventory_rows(vcenter)["gpus"] == 20
        wait_lock_freed(vcenter, run)

        def next_sync_done():
            with transaction.atomic():
                again = tasks.enqueue_sync(vcenter=vcenter)
            assert again.status == SyncStatus.QUEUED, again.error
            wait_for(lambda: SyncRun.objects.get(pk=again.pk).finished, 60, what="the next sync to finish")
            again.refresh_from_db()
            return again

        again = next_sync_done()
        assert again.status == SyncStatus.SUCCESS, again.error
        vcenter.refresh_from_db()
        assert vcenter.last_sync_status == SyncStatus.SUCCESS and not vcenter.inventory_stale
    finally:
        lab.stop()
        pool.close()


@pytest.mark.reliability("broker", "dead broker: admin runs a periodic task")
def test_with_the_broker_dead_the_admins_run_selected_tasks_says_so_instead_of_500(dead_broker, client):
    from django.contrib.auth import get_user_model
    from django_celery_beat.models import PeriodicTask

    vcenter = services.register_vcenter(name="vc-admin", url="https://vc.example.com/sdk", username="u", password="p")
    task = PeriodicTask.objects.get(name=f"sync vCenter {vcenter.name}")
    client.force_login(get_user_model().objects.create_superuser("broker-root", password="Root-Passw0rd-123"))
    response = client.post(
        "/admin/django_celery_beat/periodictask/",
        {"action": "run_tasks", "_selected_action": [task.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert "Not run: the task broker is unreachable" in response.content.decode()
