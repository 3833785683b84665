"""``/healthz`` and the overview's health panel: database, broker, worker, beat and stale vCenters."""

from __future__ import annotations

import signal
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from inventory import services
from inventory.beat import BEAT_TICK_KEY, TICK_AGAIN_WITHIN, note_beat_tick
from inventory.freshness import vcenter_freshness
from inventory.locks import redis_client
from inventory.models import SyncStatus, VCenter
from inventory.views.health import no_beat_tick
from tests import factories
from tests.factories import UserFactory
from tests.waits import wait_for


@pytest.mark.django_db
def test_embedded_mode_says_so_truthfully_and_is_healthy(client, settings):
    settings.REDIS_URL = ""
    response = client.get("/healthz")
    assert response.status_code == 200
    report = response.json()
    assert report["status"] == "ok" and report["mode"].startswith("embedded")
    assert report["checks"]["database"] == {"status": "ok", "detail": connection.vendor}
    assert report["checks"]["broker"]["detail"].startswith("none: tasks run in-process")
    assert report["checks"]["worker"]["status"] == "ok" and report["checks"]["beat"]["status"] == "ok"
    assert report["checks"]["inventory"] == {"status": "ok", "detail": "no stale vCenter", "stale_vcenters": 0}

    viewer = Client()
    viewer.force_login(UserFactory(username="health-viewer", role="viewer"))
    html = viewer.get("/").content.decode()
    assert 'id="health" data-status="ok"' in html and 'data-check="broker" data-status="ok"' in html


@pytest.mark.django_db
def test_probes_may_ask_with_head_on_healthz_and_on_pages(client, settings):
    """Trial I-2: HEAD /healthz and HEAD on every page answered 405 (RFC 9110: GET and HEAD are required)."""
    settings.REDIS_URL = ""
    assert client.head("/healthz").status_code == 200
    viewer = Client()
    viewer.force_login(UserFactory(username="head-viewer", role="viewer"))
    for url in ("/", "/clusters/", "/inventory/hosts/", "/inventory/gpus/", "/syncs/", "/vcenters/", "/reservations/"):
        assert viewer.head(url).status_code == 200, url


@pytest.mark.django_db(transaction=True)
@pytest.mark.celery_worker
@pytest.mark.reliability("broker", "worker and beat down: health")
def test_full_stack_health_follows_the_worker_and_beat(celery_worker, redis_url, settings, client):
    settings.REDIS_URL = redis_url
    redis_client().delete(BEAT_TICK_KEY)

    report = client.get("/healthz")
    assert report.status_code == 503
    checks = report.json()["checks"]
    assert checks["broker"]["status"] == "ok" and checks["worker"]["status"] == "ok"
    assert checks["beat"] == {"status": "fail", "detail": "no beat tick recorded (is `celery -A config beat` running?)"}

    note_beat_tick()  # what beat itself does as it ticks (inventory.beat.Scheduler)
    ok = wait_for(lambda: (r := client.get("/healthz")).status_code == 200 and r)
    assert ok.json()["status"] == "ok" and ok.json()["checks"]["beat"]["detail"].startswith("last tick")

    settings.HEALTH_BEAT_MAX_AGE = 0.0  # beat stopped: its last tick grows old
    wait_for(lambda: client.get("/healthz").json()["checks"]["beat"]["status"] == "fail", 10)
    settings.HEALTH_BEAT_MAX_AGE = 60.0

    celery_worker.send_signal(signal.SIGKILL)
    celery_worker.wait(10)
    down = client.get("/healthz")
    assert down.status_code == 503
    assert down.json()["checks"]["worker"] == {
        "status": "fail",
        "detail": f"no Celery worker answered a ping within {settings.HEALTH_WORKER_TIMEOUT:g} s",
    }
    # beat notes its own tick: a dead (or busy) worker says nothing about beat, which stays ok
    assert down.json()["checks"]["beat"]["status"] == "ok"


@pytest.mark.django_db
def test_overview_panel_reuses_a_recent_worker_check_and_healthz_always_pings(redis_url, settings):
    """No worker consumes this Redis: a ping fails. A check stored less than HEALTH_PANEL_MAX_AGE ago is what
    the panel shows (from any process); an older one is shown once more while a ping refreshes it in the
    background; one older than STALE_FACTOR times the age, or /healthz, pings at once."""
    import json
    import time

    from inventory.views.health import STALE_FACTOR, WORKER_CHECK_KEY, WORKER_REFRESH_KEY

    settings.REDIS_URL, settings.HEALTH_WORKER_TIMEOUT, settings.HEALTH_PANEL_MAX_AGE = redis_url, 0.2, 30.0
    redis_client().delete(WORKER_REFRESH_KEY)
    viewer = Client()
    viewer.force_login(UserFactory(username="panel-viewer", role="viewer"))
    ok = {"status": "ok", "detail": "a Celery worker answers"}

    def store(age: float) -> None:
        redis_client().set(WORKER_CHECK_KEY, json.dumps({"at": time.time() - age, "check": ok}), ex=600)

    def stored_status() -> str:
        return json.loads(redis_client().get(WORKER_CHECK_KEY))["check"]["status"]

    def panel_worker_status() -> str:
        html = viewer.get("/").content.decode()
        return html.split('data-check="worker" data-status="', 1)[1].split('"', 1)[0]

    store(age=5)
    assert panel_worker_status() == "ok"  # another process's answer of 5 s ago, no ping
    assert stored_status() == "ok"
    assert Client().get("/healthz").json()["checks"]["worker"]["status"] == "fail"  # live, and stored
    assert panel_worker_status() == "fail"

    store(age=31)  # older than HEALTH_PANEL_MAX_AGE: shown, and pinged again in the background
    assert panel_worker_status() == "ok"
    assert wait_for(lambda: stored_status() == "fail", 10)
    assert panel_worker_status() == "fail"

    store(age=STALE_FACTOR * 30 + 1)  # too old to show: pinged while the page waits
    assert panel_worker_status() == "fail"
    redis_client().delete(WORKER_CHECK_KEY)
    assert panel_worker_status() == "fail"


NO_TICK = {"status": "fail", "detail": "no beat tick recorded (is `celery -A config beat` running?)"}


@pytest.mark.django_db
@pytest.mark.reliability("broker", "Redis restarted: beat's tick gone")
def test_right_after_a_redis_restart_a_missing_beat_tick_is_unknown_not_a_dead_beat(own_redis, settings, client):
    """Trial B, 6: the tick lives only in Redis, so a restart without its data took it along, and /healthz said
    beat was not running (503) for the seconds until beat noted its next one."""
    settings.REDIS_URL = own_redis.url
    note_beat_tick()
    assert client.get("/healthz").json()["checks"]["beat"]["status"] == "ok"

    own_redis.kill()
    own_redis.start()
    beat = client.get("/healthz").json()["checks"]["beat"]
    assert beat["status"] == "warn", beat
    assert beat["detail"].startswith("unknown: no beat tick seen since Redis (re)started ")
    assert beat["detail"].endswith(f" s ago; beat notes one within {TICK_AGAIN_WITHIN:g} s")

    viewer = Client()
    viewer.force_login(UserFactory(username="beat-panel-viewer", role="viewer"))
    assert 'data-check="beat" data-status="warn"' in viewer.get("/").content.decode()  # the overview's panel

    note_beat_tick()  # beat's next tick (inventory.beat.Scheduler.note_alive)
    assert client.get("/healthz").json()["checks"]["beat"]["detail"].startswith("last tick ")


def test_a_beat_tick_still_missing_a_tick_period_after_redis_started_is_a_failure():
    assert no_beat_tick(0.0)["status"] == "warn"
    assert no_beat_tick(TICK_AGAIN_WITHIN - 1)["status"] == "warn"
    assert no_beat_tick(TICK_AGAIN_WITHIN) == NO_TICK
    assert no_beat_tick(86_400.0) == NO_TICK
    assert no_beat_tick(None) == NO_TICK  # Redis does not say how long it has been up (INFO disabled)


@pytest.mark.django_db
def test_a_vcenter_whose_last_sync_was_lost_says_lost_not_failed(settings, client):
    """Trial B, 7: a run reaped because its worker died is "lost" everywhere else; health and freshness said the
    sync "failed"."""
    settings.REDIS_URL = ""
    good = timezone.now() - timedelta(minutes=10)
    vcenter = factories.VCenterFactory(name="lab", last_sync_status=SyncStatus.RUNNING, last_success_at=good)
    silent = timezone.now() - timedelta(seconds=settings.SYNC_LOST_AFTER + 60)
    run = factories.SyncRunFactory(
        vcenter=vcenter, status=SyncStatus.RUNNING, started_at=silent, heartbeat_at=silent, finished_at=None
    )
    assert services.reap_lost_syncs() == [run.pk]  # the watchdog: no heartbeat since the worker was killed
    vcenter = VCenter.objects.get(pk=vcenter.pk)
    assert vcenter.last_sync_status == SyncStatus.LOST

    inventory = client.get("/healthz").json()["checks"]["inventory"]
    assert inventory["status"] == "warn"
    assert inventory["detail"].startswith("vCenter lab: last sync was lost (its worker stopped); inventory as of ")
    fresh = vcenter_freshness(vcenter)
    assert fresh.reason.startswith(f"vCenter lab: last sync was lost (its worker stopped) (sync #{run.pk} lost: ")
    assert "failed" not in fresh.reason

    VCenter.objects.filter(pk=vcenter.pk).update(last_sync_status=SyncStatus.FAILED, last_error="refused")
    assert vcenter_freshness(VCenter.objects.get(pk=vcenter.pk)).public_reason.startswith(
        "vCenter lab: last sync failed; inventory as of "
    )
