"""A vCenter that dies during a sync run by the worker: the run fails, one retry chain (a beat tick meanwhile is
recorded as skipped), plans warn about its hosts, health names it, and the retry completes once it is back."""

from __future__ import annotations

import pytest
from django.db import transaction

from inventory import services, tasks
from inventory.models import SyncRun, SyncStatus
from placement.engine.request import PlacementRequest
from placement.services import plan_cluster
from tests.inventory.faults.conftest import free_port, inventory_rows, register_lab, wait_lock_freed
from tests.vcsim import LABS, start_lab
from tests.waits import wait_for

pytestmark = [pytest.mark.faults, pytest.mark.celery_worker, pytest.mark.vcsim]


@pytest.mark.reliability("vcenter", "vcsim stopped during a worker sync")
def test_a_vcenter_stopped_mid_sync_keeps_one_retry_chain_warns_in_plans_and_recovers(workers, gpulab_binary, client):
    listen = f"127.0.0.1:{free_port()}"
    lab = start_lab(LABS / "demo.json", listen=listen)
    try:
        vcenter = register_lab("dies", lab)
        services.sync_vcenter(vcenter=vcenter)
        before = inventory_rows(vcenter)
        lab.stop()
        lab = start_lab(LABS / "demo.json", delay_ms=300, listen=listen)
        workers.start(env={"SYNC_RETRY_BASE_SECONDS": "6"})
        with transaction.atomic():
            run = tasks.enqueue_sync(vcenter=vcenter)
        wait_for(lambda: SyncRun.objects.filter(pk=run.pk, status="running").exists(), 60, what="the sync to start")
        lab.kill()  # the vCenter crashes mid-collect

        retry = wait_for(lambda: SyncRun.objects.filter(vcenter=vcenter, attempt=2, status="queued").first(), 60)
        run.refresh_from_db()
        assert run.status == SyncStatus.FAILED and f"(run #{retry.pk})" in run.error
        assert retry.not_before is not None
        assert inventory_rows(vcenter) == before

        # A beat tick while the retry waits: recorded as skipped by that retry, no second chain.
        tasks.sync_vcenter_task.delay(vcenter_id=vcenter.pk, trigger="schedule")
        tick = wait_for(lambda: SyncRun.objects.filter(vcenter=vcenter, trigger="schedule").first(), 30)
        assert tick.status == SyncStatus.SKIPPED and tick.blocked_by_id == retry.pk
        assert f"retry #{retry.pk} of this vCenter is queued for" in tick.error

        # Stale data is not served as fresh: every candidate on its hosts warns, health names the vCenter.
        plan = plan_cluster(request=PlacementRequest(gpus_per_vm=1, consumption="passthrough"))
        assert plan.candidates
        for candidate in plan.candidates:
            assert any(line.startswith("warning: stale inventory, vCenter dies: last sync failed") for line in
                       candidate.explanation), candidate.explanation  # fmt: skip
        inventory = client.get("/healthz").json()["checks"]["inventory"]
        assert inventory["status"] == "warn" and inventory["oldest_stale"]["vcenter"] == "dies"

        lab = start_lab(LABS / "demo.json", listen=listen)  # back
        wait_for(lambda: SyncRun.objects.get(pk=retry.pk).finished, 90, what="the retry to finish")
        retry.refresh_from_db()
        assert retry.status == SyncStatus.SUCCESS, retry.error
        assert SyncRun.objects.filter(vcenter=vcenter, attempt__gt=2).count() == 0
        assert inventory_rows(vcenter) == before
        wait_lock_freed(vcenter, retry)
        plan = plan_cluster(request=PlacementRequest(gpus_per_vm=1, consumption="passthrough"))
        assert not any("stale" in line for c in plan.candidates for line in c.explanation)
    finally:
        lab.stop()
