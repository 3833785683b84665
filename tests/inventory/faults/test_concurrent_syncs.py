"""Syncs of one vCenter requested at once, from the page/API path and the CLI: exactly one runs, every other
request leaves a row saying which run covered it."""

from __future__ import annotations

import threading

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction

from inventory import tasks
from inventory.models import SyncRun, SyncStatus
from tests.inventory.faults.conftest import inventory_rows, register_lab
from tests.vcsim import LABS, start_lab
from tests.waits import wait_for

pytestmark = [pytest.mark.faults, pytest.mark.celery_worker, pytest.mark.vcsim]


@pytest.mark.reliability("sync", "two syncs requested at once")
def test_two_syncs_requested_at_once_run_once_and_the_other_row_says_so(workers, gpulab_binary):
    lab = start_lab(LABS / "demo.json", delay_ms=300)
    try:
        vcenter = register_lab("twice", lab)
        workers.start()
        barrier = threading.Barrier(2)
        runs: list[SyncRun] = []
        errors: list[BaseException] = []

        def request() -> None:
            try:
                barrier.wait(10)
                with transaction.atomic():
                    runs.append(tasks.enqueue_sync(vcenter=vcenter))
            except BaseException as exc:  # reported below
                errors.append(exc)
            finally:
                connection.close()

        threads = [threading.Thread(target=request) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors, errors
        queued = [r for r in runs if r.status == SyncStatus.QUEUED]
        skipped = [r for r in runs if r.status == SyncStatus.SKIPPED]
        assert len(queued) == 1 and len(skipped) == 1, [(r.pk, r.status, r.error) for r in runs]
        (winner,), (loser,) = queued, skipped
        assert loser.blocked_by_id == winner.pk and f"sync #{winner.pk} of this vCenter is" in loser.error

        # While it runs, the CLI (inline, the same path and lock) is refused too, naming the run, with a row.
        wait_for(lambda: SyncRun.objects.filter(pk=winner.pk, status="running").exists(), 60)
        with pytest.raises(CommandError, match=rf"skipped: sync #{winner.pk} of this vCenter is running"):
            call_command("vcenter", "sync", "twice")
        cli = SyncRun.objects.filter(vcenter=vcenter, trigger="cli").get()
        assert cli.status == SyncStatus.SKIPPED and cli.blocked_by_id == winner.pk

        wait_for(lambda: SyncRun.objects.get(pk=winner.pk).finished, 90)
        winner.refresh_from_db()
        assert winner.status == SyncStatus.SUCCESS, winner.error
        assert SyncRun.objects.filter(vcenter=vcenter, status=SyncStatus.SUCCESS).count() == 1
        assert inventory_rows(vcenter)["gpus"] == 20

        # The CLI can also queue on the worker and wait for the result.
        out = []
        call_command("vcenter", "sync", "twice", "--queue", "--timeout", "90", stdout=_Collect(out))
        assert out and out[-1].startswith("Synced twice in")
        assert SyncRun.objects.filter(vcenter=vcenter, trigger="cli", status=SyncStatus.SUCCESS).count() == 1
    finally:
        lab.stop()


class _Collect:
    def __init__(self, lines: list[str]) -> None:
        self.lines = lines

    def write(self, text: str) -> None:
        if text.strip():
            self.lines.append(text.strip())

    def flush(self) -> None:
        pass
