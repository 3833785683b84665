"""``/healthz`` and the overview's health panel: database, broker, worker, beat and stale vCenters."""

from __future__ import annotations

import signal

import pytest
from django.db import connection
from django.test import Client

from inventory.beat import BEAT_TICK_KEY, note_beat_tick
from inventory.locks import redis_client
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
