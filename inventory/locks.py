"""A per-vCenter lock so two syncs of one vCenter never overlap.

With Redis configured (the full stack) it is a Redis lock with a timeout; the embedded default without a
broker uses a compare-and-set on a database row, which works on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone


class LockBusy(Exception):
    pass


def _redis_client():
    import redis

    return redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=5)


@contextmanager
def vcenter_sync_lock(vcenter_id: int, *, ttl_seconds: int | None = None) -> Iterator[None]:
    ttl = ttl_seconds or settings.CELERY_TASK_TIME_LIMIT + 60
    name = f"gpu-advisor:sync-lock:vcenter:{vcenter_id}"
    if settings.REDIS_URL:
        lock = _redis_client().lock(name, timeout=ttl, blocking=False)
        if not lock.acquire(blocking=False):
            raise LockBusy(f"another sync of vCenter {vcenter_id} is running")
        try:
            yield
        finally:
            try:
                lock.release()
            except Exception:  # noqa: S110 - expired locks release themselves
                pass
        return
    with _db_lock(name, ttl):
        yield


@contextmanager
def _db_lock(name: str, ttl: int) -> Iterator[None]:
    from inventory.models import SyncLock

    now = timezone.now()
    SyncLock.objects.filter(name=name, expires_at__lt=now).delete()
    try:
        with transaction.atomic():
            SyncLock.objects.create(name=name, expires_at=now + timedelta(seconds=ttl))
    except IntegrityError:
        raise LockBusy(f"another sync holds {name}") from None
    try:
        yield
    finally:
        SyncLock.objects.filter(name=name).delete()
