"""Importing an inventory document (an export or a lab file) as the inventory of an offline vCenter."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from inventory.models import SyncRun, SyncStatus, VCenter
from inventory.services.apply import apply_snapshot
from inventory.services.vcenters import lock_vcenter_servers
from inventory.signals import inventory_applied


class ImportTargetError(Exception):
    """The vCenter named for an import is a live one: its inventory comes from vCenter itself."""


def _live_because(vcenter: VCenter) -> list[str]:
    """Why ``vcenter`` is a live vCenter (nothing for an offline one, which only imports fill)."""
    reasons = []
    if vcenter.enabled:
        reasons.append("its scheduled syncs are enabled")
    if vcenter.has_password:
        reasons.append("it has a password to log in with")
    if vcenter.sync_runs.exclude(trigger=SyncRun.Trigger.IMPORT).filter(status=SyncStatus.SUCCESS).exists():
        reasons.append(f"it was synced from {vcenter.url}")
    return reasons


def import_inventory(*, document: dict, vcenter_name: str, url: str = "") -> tuple[VCenter, dict[str, int]]:
    """Load an inventory document (export or lab file) as the inventory of a (created) offline vCenter.

    Raises ImportTargetError for a live vCenter: imported hosts would mix with the ones its syncs collect.
    """
    from inventory.exchange import snapshot_from_document

    snapshot = snapshot_from_document(document)
    with transaction.atomic():
        vcenter = VCenter.objects.filter(name__iexact=vcenter_name).first()
        if vcenter is not None and (reasons := _live_because(vcenter)):
            raise ImportTargetError(
                f"vCenter {vcenter.name!r} is a live vCenter ({'; '.join(reasons)}): an import would mix its hosts "
                "into that inventory. Imports go into offline vCenters only: name a new one"
            )
        if vcenter is None:
            vcenter = VCenter(
                name=vcenter_name,
                url=url or f"https://{vcenter_name}.import.invalid/sdk",
                username="import",
                enabled=False,
            )
            lock_vcenter_servers()
            vcenter.full_clean()
            vcenter.save()
        # in the sync history, so "last sync: success" on the vCenter has a run behind it; created before the
        # snapshot is applied so that it is not shown as queued after it started
        run = SyncRun.objects.create(vcenter=vcenter, trigger=SyncRun.Trigger.IMPORT, status=SyncStatus.RUNNING)
        SyncRun.objects.filter(pk=run.pk).update(started_at=run.created)
        counts = apply_snapshot(vcenter=vcenter, snapshot=snapshot)
        now = timezone.now()
        objects = counts.get("objects", 0)
        SyncRun.objects.filter(pk=run.pk).update(
            status=SyncStatus.SUCCESS, finished_at=now, counts=counts, progress_current=objects, progress_total=objects
        )
        VCenter.objects.filter(pk=vcenter.pk).update(
            last_sync_status=SyncStatus.SUCCESS,
            last_sync_at=now,
            last_success_at=now,
            last_error="",
            inventory_stale=False,
        )
    inventory_applied.send(sender=VCenter, vcenter=vcenter, counts=counts)
    return vcenter, counts
