"""How syncs are reported: lost runs reaped when read, a queued run with no worker said at once (command and page),
the run page's details after it finished, one "changes" count everywhere, and a too-deep import file."""

from __future__ import annotations

import html
import io
import time
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from inventory import services, tasks
from inventory.models import SyncRun, SyncStatus, VCenter
from inventory.tables import count_summary
from inventory.views import health
from tests import factories
from tests.api.support import api_as  # noqa: F401
from tests.inventory.test_views import HTMX, viewer  # noqa: F401

pytestmark = pytest.mark.django_db

NO_WORKER = "no Celery worker answered a ping: the run stays queued until one starts (celery -A config worker)"


def killed_run(settings) -> SyncRun:
    """A run whose worker was killed: still "running", its last heartbeat older than SYNC_LOST_AFTER."""
    vcenter = factories.VCenterFactory(name="lab", last_sync_status=SyncStatus.RUNNING)
    silent = timezone.now() - timedelta(seconds=settings.SYNC_LOST_AFTER + 60)
    return factories.SyncRunFactory(
        vcenter=vcenter, status=SyncStatus.RUNNING, started_at=silent, heartbeat_at=silent, finished_at=None
    )


# ------------------------------------------------------------------------------------------- lost runs


@pytest.mark.parametrize("path", ["/syncs/{pk}/", "/syncs/", "/vcenters/"])
def test_reading_the_pages_marks_a_killed_run_lost(viewer, settings, path):  # noqa: F811
    run = killed_run(settings)
    body = html.unescape(viewer.get(path.format(pk=run.pk)).content.decode())
    run.refresh_from_db()
    assert run.status == SyncStatus.LOST and run.finished_at is not None
    assert VCenter.objects.get(pk=run.vcenter_id).last_sync_status == SyncStatus.LOST
    assert "Lost" in body


def test_the_polled_run_partial_shows_a_killed_run_lost(viewer, settings):  # noqa: F811
    run = killed_run(settings)
    response = viewer.get(f"/syncs/{run.pk}/", **HTMX)
    assert response.status_code == 286 and 'data-test="lost"' in response.content.decode()


def test_listing_sync_runs_on_the_api_marks_a_killed_run_lost(api_as, settings):  # noqa: F811
    run = killed_run(settings)
    client = api_as("viewer")
    listed = {r["id"]: r for r in client.get("/api/sync-runs/").json()["results"]}
    assert listed[run.pk]["status"] == SyncStatus.LOST
    assert client.get(f"/api/sync-runs/{run.pk}/").json()["status"] == SyncStatus.LOST


def test_reaping_when_nothing_is_due_is_one_read_and_no_write(settings):
    vcenter = factories.VCenterFactory()
    factories.SyncRunFactory(vcenter=vcenter, status=SyncStatus.RUNNING, heartbeat_at=timezone.now())
    factories.SyncRunFactory(vcenter=vcenter)
    with CaptureQueriesContext(connection) as queries:
        services.reap_before_reading()
    assert len(queries) == 1 and queries[0]["sql"].lstrip().upper().startswith("SELECT")


# ------------------------------------------------------------------------------------------- no worker


@pytest.fixture
def no_worker(settings, monkeypatch) -> VCenter:
    """The full stack with no worker: enqueueing leaves the run queued and a ping gets no answer."""
    settings.REDIS_URL = "redis://127.0.0.1:1/9"
    failed = {"status": health.FAIL, "detail": "no Celery worker answered a ping within 1 s"}
    monkeypatch.setattr(health, "_workers", lambda: failed)
    monkeypatch.setattr(health, "_workers_recent", lambda max_age: failed)

    def enqueue(*, vcenter, trigger, **_):
        return services.start_sync_run(vcenter=vcenter, trigger=trigger)

    monkeypatch.setattr(tasks, "enqueue_sync", enqueue)
    return factories.VCenterFactory(name="lab")


def test_a_queued_cli_sync_with_no_worker_says_so_at_once(no_worker, settings):
    settings.CELERY_TASK_TIME_LIMIT = settings.SYNC_LOST_AFTER = 5  # how long it waited silently before (bounded here)
    started = time.monotonic()
    with pytest.raises(CommandError) as caught:
        call_command("vcenter", "sync", "lab", "--queue", stderr=io.StringIO())
    assert time.monotonic() - started < 5
    run = SyncRun.objects.get(vcenter=no_worker)
    assert str(caught.value).startswith(f"sync #{run.pk} of lab: {NO_WORKER}")
    assert run.status == SyncStatus.QUEUED  # left for a worker that starts later


def test_with_a_timeout_the_cli_says_so_and_waits_that_long(no_worker):
    err = io.StringIO()
    with pytest.raises(CommandError, match="is still queued after 1 s"):
        call_command("vcenter", "sync", "lab", "--queue", "--timeout", "1", stderr=err)
    assert NO_WORKER in err.getvalue()


def test_the_run_page_says_no_worker_answered(no_worker, viewer):  # noqa: F811
    run = services.start_sync_run(vcenter=no_worker, trigger=SyncRun.Trigger.MANUAL)
    for path, headers in ((f"/syncs/{run.pk}/", {}), (f"/syncs/{run.pk}/", HTMX), ("/syncs/", {})):
        body = viewer.get(path, **headers).content.decode()
        assert "Waiting for a worker" in body and "no worker answered a ping" in body, path


def test_the_run_page_says_nothing_of_workers_when_one_answers(viewer, settings, monkeypatch):  # noqa: F811
    settings.REDIS_URL = "redis://127.0.0.1:1/9"
    monkeypatch.setattr(health, "_workers_recent", lambda max_age: {"status": health.OK, "detail": "answers"})
    run = services.start_sync_run(vcenter=factories.VCenterFactory(), trigger=SyncRun.Trigger.MANUAL)
    body = viewer.get(f"/syncs/{run.pk}/").content.decode()
    assert "Waiting for a worker" in body and "no worker answered" not in body


# ------------------------------------------------------------------------------------------- run page


def test_the_run_page_polls_its_details_and_counts_with_the_card(viewer):  # noqa: F811
    run = factories.SyncRunFactory(status=SyncStatus.RUNNING, started_at=timezone.now(), finished_at=None)
    page = viewer.get(f"/syncs/{run.pk}/").content.decode()
    assert f'hx-get="/syncs/{run.pk}/?detail=1"' in page
    assert page.count('hx-trigger="every 1s"') == 1  # the section polls, not also the card inside it
    started = run.started_at
    SyncRun.objects.filter(pk=run.pk).update(
        status=SyncStatus.SUCCESS,
        finished_at=started + timedelta(seconds=32.3),
        round_trips=4,
        counts={"seen_hosts": 4, "hosts_created": 1, "profile_links_changed": 26},
    )
    response = viewer.get(f"/syncs/{run.pk}/", {"detail": "1"}, **HTMX)
    assert response.status_code == 286
    body = response.content.decode()
    assert "Finished in 32.3 s with 4 round trips" in body
    finished = timezone.localtime(started + timedelta(seconds=32.3)).strftime("%Y-%m-%d %H:%M:%S")
    assert f"<dt>Finished</dt><dd>{finished}</dd>" in body and "<dt>Round trips</dt><dd>4</dd>" in body
    assert '<h2 id="counts">Counts</h2>' in body and "GPU-profile pairs" in body
    assert 'hx-trigger="every 1s"' not in body


# ------------------------------------------------------------------------------------------- counts


def test_the_cli_counts_changes_as_the_pages_do(monkeypatch):
    vcenter = factories.VCenterFactory(name="lab")
    counts = {"seen_hosts": 4, "hosts_updated": 2, "profile_links_changed": 26, "gpus_stale": 1, "warnings": 0}
    run = factories.SyncRunFactory(vcenter=vcenter, counts=counts, round_trips=4)
    monkeypatch.setattr(services, "sync_vcenter", lambda **_: run)
    out = io.StringIO()
    call_command("vcenter", "sync", "lab", stdout=out)
    assert dict(count_summary(counts))["changes"] == 29
    assert "changed: 29 rows" in out.getvalue()


# ------------------------------------------------------------------------------------------- import


def test_importing_a_too_deeply_nested_file_is_a_one_line_error(tmp_path):
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(CommandError) as caught:
        call_command("inventory", "import", str(path))
    assert str(caught.value) == f"file: {path} is nested too deep to be an inventory document"
    assert not VCenter.objects.exists()
