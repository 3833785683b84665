"""Starting a sync through the API (admin role) and polling its run."""

from __future__ import annotations

import pytest

from inventory.models import Host, SyncRun
from tests import factories
from tests.api.support import token_client

pytestmark = pytest.mark.django_db


def test_start_answers_202_with_the_queued_run_to_poll(api_as, django_capture_on_commit_callbacks):
    vcenter = factories.VCenterFactory()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = api_as("admin").post("/api/sync-runs/", {"vcenter": vcenter.pk}, format="json")
    assert response.status_code == 202, response.content
    doc = response.json()
    run = SyncRun.objects.get()
    assert doc["id"] == run.pk and doc["vcenter"] == vcenter.pk and doc["vcenter_name"] == vcenter.name
    assert doc["status"] == "queued" and doc["trigger"] == "manual" and doc["finished"] is False
    assert response["Location"].endswith(f"/api/sync-runs/{run.pk}/")
    assert len(callbacks) == 1  # the task is sent once the transaction commits


@pytest.mark.reliability("api input", "bad sync-run requests")
@pytest.mark.parametrize(("body", "message"), [({}, "required"), ({"vcenter": 999999}, "does not exist"),
                                               ({"vcenter": "x"}, "not a valid id")])  # fmt: skip
def test_start_names_the_bad_field(api_as, body, message):
    response = api_as("admin").post("/api/sync-runs/", body, format="json")
    assert response.status_code == 400
    assert message in " ".join(response.json()["vcenter"]).lower()
    assert not SyncRun.objects.exists()


@pytest.mark.vcsim
def test_a_sync_started_through_the_api_finishes_and_is_polled(api_as, lab_vcenter, django_capture_on_commit_callbacks):
    admin = api_as("admin")
    with django_capture_on_commit_callbacks(execute=True):  # no broker: the task runs eagerly on commit
        started = admin.post("/api/sync-runs/", {"vcenter": lab_vcenter.pk}, format="json")
    assert started.status_code == 202
    polled = admin.get(started["Location"]).json()
    assert polled["status"] == "success" and polled["finished"] is True, polled
    assert polled["counts"] and polled["duration_s"] is not None and polled["error"] == ""
    assert Host.objects.filter(vcenter=lab_vcenter).count() == 5
    assert admin.get(f"/api/vcenters/{lab_vcenter.pk}/").json()["last_sync_status"] == "success"


@pytest.mark.django_db(transaction=True)
def test_a_failing_sync_is_a_failed_run_with_its_error(settings):
    """Without a broker the sync runs in-process when the request commits; its failure is the run's, not a 500."""
    settings.VCENTER_CONNECT_TIMEOUT = 2
    settings.SYNC_RETRY_BASE_SECONDS = 0
    vcenter = factories.VCenterFactory(url="https://127.0.0.1:9/sdk")
    admin = token_client(factories.UserFactory(is_superuser=True))  # (a flushed database has no role groups)
    started = admin.post("/api/sync-runs/", {"vcenter": vcenter.pk}, format="json")
    assert started.status_code == 202, started.content
    run = admin.get(f"/api/sync-runs/{started.json()['id']}/").json()
    assert run["status"] == "failed" and run["finished"] is True and "127.0.0.1" in run["error"]


def test_an_admin_cancels_a_queued_sync_and_its_task_is_dropped(api_as):
    """A queued sync whose worker never came blocked its vCenter with no way out but waiting (operator trial B)."""
    from inventory import tasks

    vcenter = factories.VCenterFactory()
    run = factories.SyncRunFactory(vcenter=vcenter, status="queued", started_at=None, finished_at=None)
    admin = api_as("admin")
    doc = admin.post(f"/api/sync-runs/{run.pk}/cancel/").json()
    assert doc["status"] == "skipped" and doc["error"].startswith("skipped: cancelled by ")
    assert doc["finished"] is True
    # its message, when a worker takes it, runs nothing (no new run, nothing collected)
    assert tasks.sync_vcenter_task.apply(kwargs={"vcenter_id": vcenter.pk, "run_id": run.pk}).get() == {
        "status": "skipped",
        "run": run.pk,
        "reason": doc["error"],
    }
    assert SyncRun.objects.filter(vcenter=vcenter).count() == 1
    again = admin.post(f"/api/sync-runs/{run.pk}/cancel/")
    assert again.status_code == 409 and "is skipped, not queued" in again.json()["detail"]


def test_a_running_sync_is_not_cancelled(api_as):
    run = factories.SyncRunFactory(status="running", finished_at=None)
    response = api_as("admin").post(f"/api/sync-runs/{run.pk}/cancel/")
    assert response.status_code == 409 and "ends by itself" in response.json()["detail"]
    run.refresh_from_db()
    assert run.status == "running"
