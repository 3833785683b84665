"""``/healthz`` and the overview's health panel: database, broker, worker, beat and stale vCenters."""

from __future__ import annotations

import signal

import pytest
from django.db import connection
from django.test import Client

from inventory import tasks
from inventory.locks import redis_client
from tests.factories import UserFactory
from tests.inventory.test_tasks import wait_for


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
    redis_client().delete(tasks.BEAT_TICK_KEY)

    report = client.get("/healthz")
    assert report.status_code == 503
    checks = report.json()["checks"]
    assert checks["broker"]["status"] == "ok" and checks["worker"]["status"] == "ok"
    assert checks["beat"] == {"status": "fail", "detail": "no beat tick recorded (is `celery beat` running?)"}

    tasks.sync_watchdog_task.delay()  # what beat sends every SYNC_WATCHDOG_SECONDS
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
