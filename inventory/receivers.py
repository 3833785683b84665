"""Keeps each vCenter's beat schedule in step with the row, whichever path saved or deleted it."""

from __future__ import annotations

from inventory import services
from inventory.models import VCenter


def vcenter_saved(sender, instance: VCenter, raw: bool = False, **kwargs) -> None:
    if raw:  # loaddata
        return
    services.schedule_vcenter_sync(vcenter=instance)


def vcenter_deleted(sender, instance: VCenter, **kwargs) -> None:
    services.unschedule_vcenter_sync(vcenter_id=instance.pk)
