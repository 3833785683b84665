"""A per-vCenter lock so two syncs of one vCenter never overlap.

With Redis configured (the full stack) it is a Redis key holding its owner (``run:<id>``) with a short TTL
that the running sync refreshes with its heartbeat: a worker that dies stops refreshing, and the key expires
within ``SYNC_LOCK_TTL`` seconds even if no watchdog runs. The embedded default without a broker uses a
compare-and-set on a database row, which works on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

LOCK_PREFIX = "gpu-advisor:sync-lock:vcenter:"

# Compare-and-act scripts: only the owner refreshes or releases its lock.
_REFRESH = """
local v = redis.call('get', KEYS[1])
if v == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
if not v then return redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2]) and 2 or 0 end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


class LockBusy(Exception):
    """The lock is held; ``holder`` is the owner string (``run:42``) when known."""

    def __init__(self, message: str, holder: str = "") -> None:
        super().__init__(message)
        self.holder = holder

    @property
    def holder_run_id(self) -> int | None:
        return run_id_of(self.holder)


def run_owner(run_id: int) -> str:
    return f"run:{run_id}"


def run_id_of(owner: str) -> int | None:
    prefix, _, rest = (owner or "").partition(":")
    return int(rest) if prefix == "run" and rest.isascii() and rest.isdigit() else None


def lock_name(vcenter_id: int) -> str:
    return f"{LOCK_PREFIX}{vcenter_id}"


def redis_client():
    import redis

    timeout = settings.REDIS_TIMEOUT
    return redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=timeout, socket_timeout=timeout)


class HeldLock:
    """A held lock; ``refresh`` extends it (re-taking it if it expired meanwhile), ``release`` frees it."""

    def __init__(self, name: str, owner: str, ttl: float) -> None:
        self.name, self.owner, self.ttl = name, owner, ttl
        self.released = False

    def refresh(self) -> bool:
        if self.released:  # a heartbeat that woke up late must not take the lock back
            return False
        if settings.REDIS_URL:
            return bool(redis_client().eval(_REFRESH, 1, self.name, self.owner, int(self.ttl * 1000)))
        from inventory.models import SyncLock

        expires = timezone.now() + timedelta(seconds=self.ttl)
        return bool(SyncLock.objects.filter(name=self.name, owner=self.owner).update(expires_at=expires))

    def release(self) -> None:
        self.released = True
        release(self.name, self.owner)


def release(name: str, owner: str) -> bool:
    """Free the lock ``name`` if ``owner`` still holds it (the watchdog frees the locks of lost runs)."""
    if settings.REDIS_URL:
        return bool(redis_client().eval(_RELEASE, 1, name, owner))
    from inventory.models import SyncLock

    return bool(SyncLock.objects.filter(name=name, owner=owner).delete()[0])


def holder(vcenter_id: int) -> str:
    """Who holds the vCenter's lock now ('' when free)."""
    name = lock_name(vcenter_id)
    if settings.REDIS_URL:
        value = redis_client().get(name)
        return value.decode() if value else ""
    from inventory.models import SyncLock

    row = SyncLock.objects.filter(name=name, expires_at__gte=timezone.now()).first()
    return row.owner if row else ""


@contextmanager
def vcenter_sync_lock(vcenter_id: int, *, owner: str = "", ttl_seconds: float | None = None) -> Iterator[HeldLock]:
    ttl = ttl_seconds or settings.SYNC_LOCK_TTL
    name = lock_name(vcenter_id)
    owner = owner or f"anonymous:{timezone.now().timestamp()}"
    if settings.REDIS_URL:
        client = redis_client()
        if not client.set(name, owner, nx=True, px=int(ttl * 1000)):
            current = client.get(name)
            current = current.decode() if current else ""
            raise LockBusy(f"another sync of vCenter {vcenter_id} is running", current)
    else:
        _db_acquire(name, owner, ttl)
    lock = HeldLock(name, owner, ttl)
    try:
        yield lock
    finally:
        try:
            lock.release()
        except Exception:  # noqa: S110 - an unreachable Redis lets the key expire by itself
            pass


def _db_acquire(name: str, owner: str, ttl: float) -> None:
    from inventory.models import SyncLock

    now = timezone.now()
    SyncLock.objects.filter(name=name, expires_at__lt=now).delete()
    try:
        with transaction.atomic():
            SyncLock.objects.create(name=name, owner=owner, expires_at=now + timedelta(seconds=ttl))
    except IntegrityError:
        row = SyncLock.objects.filter(name=name).first()
        raise LockBusy(f"another sync holds {name}", row.owner if row else "") from None
