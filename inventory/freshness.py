"""How old a vCenter's stored inventory is, and whether plans may trust it (``STALE_WARN_AFTER``,
``STALE_EXCLUDE_AFTER``).

A vCenter whose last sync failed (or was lost) is stale. Age counts only for vCenters the advisor keeps
syncing (enabled): last good sync older than ``STALE_WARN_AFTER`` seconds is stale, older than
``STALE_EXCLUDE_AFTER`` its hosts are not planned on. A disabled vCenter (paused, or an offline copy loaded by
``inventory import``) is as old as it is, and a vCenter never synced has no age.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.utils import timezone

from inventory.models import SyncStatus, VCenter

FRESH, WARN, EXCLUDE = "fresh", "warn", "exclude"
ERROR_CHARS = 200  # of the sync error's first line in a plan warning, cut at a word
FAILED_STATES = (SyncStatus.FAILED, SyncStatus.LOST)


@dataclass(frozen=True)
class Freshness:
    level: str  # fresh | warn | exclude
    reason: str = ""  # why the inventory is stale, with the time of the last good sync and the sync's error
    since: datetime | None = None  # the last good sync
    age_s: float = 0.0
    public_reason: str = ""  # the reason without the sync's error, which may name the vCenter's address

    @property
    def stale(self) -> bool:
        return self.level != FRESH


def age_text(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def vcenter_freshness(vcenter: VCenter, *, now: datetime | None = None) -> Freshness:
    now = now or timezone.now()
    failed = vcenter.inventory_stale or vcenter.last_sync_status in FAILED_STATES
    last = vcenter.last_success_at
    age = (now - last).total_seconds() if last else 0.0
    if last is None and not failed:
        return Freshness(FRESH)
    synced = vcenter.enabled  # age counts only for vCenters the advisor keeps syncing
    old = synced and last is not None and age > settings.STALE_WARN_AFTER
    if not failed and not old:
        return Freshness(FRESH, since=last, age_s=age)
    as_of = (
        f"inventory as of {timezone.localtime(last):%Y-%m-%d %H:%M %Z}, {age_text(age)} old"
        if last
        else ("no good sync yet")
    )
    if vcenter.last_sync_status == SyncStatus.LOST:  # set only when the watchdog reaps a run whose worker died
        why = "last sync was lost (its worker stopped)"
    else:
        why = "last sync failed" if failed else f"no sync for {age_text(age)}"
    first_line = vcenter.last_error.strip().splitlines()[0] if failed and vcenter.last_error.strip() else ""
    error = f" ({textwrap.shorten(first_line, ERROR_CHARS, placeholder='…')})" if first_line else ""
    reason, public = f"vCenter {vcenter.name}: {why}{error}; {as_of}", f"vCenter {vcenter.name}: {why}; {as_of}"
    if synced and last is not None and age > settings.STALE_EXCLUDE_AFTER:
        limit = f", older than the {age_text(settings.STALE_EXCLUDE_AFTER)} limit"
        return Freshness(EXCLUDE, reason + limit, last, age, public + limit)
    return Freshness(WARN, reason, last, age, public)


def stale_vcenters(*, now: datetime | None = None) -> list[tuple[VCenter, Freshness]]:
    """Stale vCenters, oldest inventory first."""
    now = now or timezone.now()
    found = [(vc, vcenter_freshness(vc, now=now)) for vc in VCenter.objects.all()]
    return sorted(((vc, f) for vc, f in found if f.stale), key=lambda item: -item[1].age_s)
