"""Retention: deleting long-stale inventory objects and old sync runs."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from inventory.models import FINISHED_SYNC_STATUSES, Cluster, Gpu, Host, SyncRun, SyncStatus, VirtualMachine


def purge_stale(*, older_than_days: int | None = None) -> dict[str, int]:
    """Delete stale objects last seen before the retention period."""
    days = settings.INVENTORY_STALE_RETENTION_DAYS if older_than_days is None else older_than_days
    cutoff = timezone.now() - timedelta(days=days)
    deleted = {}
    for model in (VirtualMachine, Gpu, Host, Cluster):
        _, per_model = model.objects.filter(stale=True, last_seen__lt=cutoff).delete()
        deleted[model._meta.model_name] = per_model.get(model._meta.label, 0)
    return deleted


PURGE_BATCH = 5000


def purge_sync_history(*, older_than_days: int | None = None) -> int:
    """Delete finished sync runs older than the retention period (``SYNC_HISTORY_RETENTION_DAYS``); return how
    many. A vCenter synced every 5 minutes adds 288 runs a day: unpruned, the sync list and the watchdog read an
    ever longer table. Each vCenter keeps its newest run and its newest success per trigger (what the vCenter's
    status and the import's "live vCenter" check read), however old."""
    days = settings.SYNC_HISTORY_RETENTION_DAYS if older_than_days is None else older_than_days
    cutoff = timezone.now() - timedelta(days=days)
    keep = set(SyncRun.objects.values("vcenter_id").annotate(newest=Max("id")).values_list("newest", flat=True))
    keep |= set(
        SyncRun.objects.filter(status=SyncStatus.SUCCESS)
        .values("vcenter_id", "trigger")
        .annotate(newest=Max("id"))
        .values_list("newest", flat=True)
    )
    old = SyncRun.objects.filter(status__in=FINISHED_SYNC_STATUSES, created__lt=cutoff).exclude(pk__in=keep)
    deleted = 0
    while ids := list(old.order_by("id").values_list("id", flat=True)[:PURGE_BATCH]):
        with transaction.atomic():
            SyncRun.objects.filter(pk__in=ids).delete()
        deleted += len(ids)
    return deleted
