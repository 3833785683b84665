"""``/healthz``: can the product do its job? Anonymous, so it names components and states, never addresses or
secrets. 200 when every check passes or only warns (stale inventory), 503 when one fails.

Checks: the database; with a broker (REDIS_URL) the broker (a ping with a short timeout), the workers (a
Celery ping, tried once more on a new connection after a connection error) and beat (the last tick beat noted
itself, ``inventory.beat``: busy workers never make it look dead); and the oldest stale vCenter. In the embedded
mode (no broker, tasks in-process) broker, worker and beat say so and pass.

``/healthz`` pings the workers on every call. The overview's health panel takes a worker answer up to
``HEALTH_PANEL_MAX_AGE`` seconds old, shared by every web process through Redis, and refreshes an older one in
the background: a ping waits up to ``HEALTH_WORKER_TIMEOUT`` for an answer that never comes when the workers are
down, and a sync gunicorn worker rendering the overview would otherwise be held that long on every view of it.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from datetime import datetime

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

OK, WARN, FAIL = "ok", "warn", "fail"


def _database() -> dict:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:
        return {"status": FAIL, "detail": f"unreachable ({type(exc).__name__})"}
    return {"status": OK, "detail": connection.vendor}


def _broker() -> dict:
    from inventory.locks import redis_client

    try:
        redis_client().ping()
    except Exception as exc:
        detail = f"Redis unreachable within {settings.REDIS_TIMEOUT:g} s ({type(exc).__name__})"
        return {"status": FAIL, "detail": detail}
    return {"status": OK, "detail": "Redis answers"}


def _workers() -> dict:
    from config.celery import app

    timeout = settings.HEALTH_WORKER_TIMEOUT
    try:
        try:
            replies = app.control.ping(timeout=timeout, limit=1)
        except _connection_errors(app):
            # This process's pooled broker connection may predate a Redis restart: try once on a new one.
            with app.connection_for_write() as conn:
                replies = app.control.ping(timeout=timeout, limit=1, connection=conn)
    except Exception as exc:
        return {"status": FAIL, "detail": f"workers not reachable ({type(exc).__name__})"}
    if not replies:
        return {"status": FAIL, "detail": f"no Celery worker answered a ping within {timeout:g} s"}
    return {"status": OK, "detail": "a Celery worker answers"}


def _connection_errors(app) -> tuple[type[BaseException], ...]:
    try:
        return (OSError, *app.connection_for_write().connection_errors)
    except Exception:
        return (OSError,)


def ping_workers() -> dict:
    """The worker check now: a Celery ping waiting up to ``HEALTH_WORKER_TIMEOUT`` for an answer."""
    return _workers()


WORKER_CHECK_KEY = "gpu-advisor:health:worker"
WORKER_REFRESH_KEY = "gpu-advisor:health:worker-refresh"
STALE_FACTOR = 4  # a panel check older than max_age is shown while a fresh one is made, up to this many max_ages


def _workers_recent(max_age: float) -> dict:
    """The worker check for the overview's panel, shared by every web process through Redis.

    At most ``max_age`` seconds old: as stored. Older, up to ``STALE_FACTOR`` times that: as stored, while one
    process pings again in a background thread (the page never waits for a ping that may time out). Older still,
    or ``max_age`` 0 (``/healthz``): a ping now, stored for the others."""
    from inventory.locks import redis_client

    client = redis_client()
    if max_age > 0:
        try:
            raw = client.get(WORKER_CHECK_KEY)
            cached = json.loads(raw) if raw else None
            age = time.time() - cached["at"] if cached else None
            if age is not None and 0 <= age <= max_age:
                return cached["check"]
            if age is not None and 0 <= age <= STALE_FACTOR * max_age:
                ttl = int(settings.HEALTH_WORKER_TIMEOUT) + 5
                if client.set(WORKER_REFRESH_KEY, "1", nx=True, ex=ttl):  # one refresh at a time, estate-wide
                    threading.Thread(target=_store_worker_check, args=(client,), daemon=True).start()
                return cached["check"]
        except (ValueError, KeyError, TypeError):
            pass  # an unreadable entry is replaced below
        except Exception as exc:
            return {"status": FAIL, "detail": f"workers not reachable ({type(exc).__name__})"}
    return _store_worker_check(client)


def no_worker_answers() -> bool:
    """Whether the (cached, ``HEALTH_PANEL_MAX_AGE``) worker check says no Celery worker answered a ping; False in
    the embedded mode, which has no workers to ask, and when the check cannot be made (the broker check says why)."""
    if not settings.REDIS_URL:
        return False
    try:
        return _workers_recent(settings.HEALTH_PANEL_MAX_AGE)["status"] == FAIL
    except Exception:
        return False


def _store_worker_check(client) -> dict:
    check = _workers()
    keep = STALE_FACTOR * settings.HEALTH_PANEL_MAX_AGE
    with contextlib.suppress(Exception):  # the broker check reports Redis trouble
        client.set(WORKER_CHECK_KEY, json.dumps({"at": time.time(), "check": check}), ex=max(int(keep) + 1, 1))
        client.delete(WORKER_REFRESH_KEY)
    return check


def _beat() -> dict:
    from inventory.beat import BEAT_TICK_KEY
    from inventory.locks import redis_client

    try:
        client = redis_client()
        raw = client.get(BEAT_TICK_KEY)
    except Exception as exc:
        return {"status": FAIL, "detail": f"unknown: Redis unreachable ({type(exc).__name__})"}
    if not raw:
        return no_beat_tick(_redis_uptime(client))
    last = datetime.fromisoformat(raw.decode())
    age = (timezone.now() - last).total_seconds()
    limit = settings.HEALTH_BEAT_MAX_AGE
    state = OK if age <= limit else FAIL
    detail = f"last tick {age:.0f} s ago" + ("" if state == OK else f", more than {limit:g} s")
    return {"status": state, "detail": detail, "last_tick": last.isoformat()}


def _redis_uptime(client) -> float | None:
    """Seconds since Redis started, None when it does not say (INFO disabled, or an error)."""
    try:
        return float(client.info("server")["uptime_in_seconds"])
    except Exception:
        return None


def no_beat_tick(redis_uptime: float | None) -> dict:
    """The beat check when Redis holds no tick. The tick lives only in Redis: right after Redis (re)started without
    its data, beat has had no chance to note one yet, so that is "unknown" (warn) for ``TICK_AGAIN_WITHIN``
    seconds of Redis' uptime, and a failure after that (or when Redis' uptime cannot be read)."""
    from inventory.beat import TICK_AGAIN_WITHIN

    if redis_uptime is not None and 0 <= redis_uptime < TICK_AGAIN_WITHIN:
        return {
            "status": WARN,
            "detail": f"unknown: no beat tick seen since Redis (re)started {redis_uptime:.0f} s ago; "
            f"beat notes one within {TICK_AGAIN_WITHIN:g} s",
        }
    return {"status": FAIL, "detail": "no beat tick recorded (is `celery -A config beat` running?)"}


STALE_NAMED = 5  # stale vCenters the inventory check names one by one; the rest are counted


def _inventory() -> dict:
    from inventory.freshness import stale_vcenters

    stale = stale_vcenters()
    if not stale:
        return {"status": OK, "detail": "no stale vCenter", "stale_vcenters": 0}
    vc, fresh = stale[0]
    # Every stale vCenter is named (up to STALE_NAMED, then counted), not only the oldest; the public reasons
    # leave out the sync's error, which may name the vCenter's address.
    reasons = [f.public_reason for _, f in stale[:STALE_NAMED]]
    if len(stale) == 1:
        detail = fresh.public_reason
    else:
        names = ", ".join(v.name for v, _ in stale[:STALE_NAMED])
        more = f" and {len(stale) - STALE_NAMED} more" if len(stale) > STALE_NAMED else ""
        detail = f"{len(stale)} stale vCenters: {names}{more}"
    return {
        "status": WARN,
        "detail": detail,
        "reasons": reasons,
        "stale_vcenters": len(stale),
        "oldest_stale": {
            "vcenter": vc.name,
            "last_success_at": fresh.since.isoformat() if fresh.since else None,
            "excluded_from_plans": fresh.level == "exclude",
        },
    }


def health_report(*, worker_max_age: float = 0.0) -> dict:
    """Every check now; the worker check may be up to ``worker_max_age`` seconds old (0: ping now)."""
    checks = {"database": _database()}
    if settings.REDIS_URL:
        checks["broker"] = _broker()
        if checks["broker"]["status"] == OK:
            checks["worker"] = _workers_recent(worker_max_age)
        else:
            checks["worker"] = {"status": FAIL, "detail": "unknown: the broker is unreachable"}
        checks["beat"] = _beat()
    else:
        checks["broker"] = {"status": OK, "detail": "none: tasks run in-process (embedded mode)"}
        checks["worker"] = {"status": OK, "detail": "in-process: syncs run in the web process"}
        checks["beat"] = {"status": OK, "detail": "not used in the embedded mode: syncs run when requested"}
    if checks["database"]["status"] == OK:
        checks["inventory"] = _inventory()
    states = {c["status"] for c in checks.values()}
    overall = FAIL if FAIL in states else WARN if WARN in states else OK
    return {
        "status": overall,
        "mode": "full stack" if settings.REDIS_URL else "embedded (in-process tasks, no broker)",
        "checks": checks,
    }


@login_not_required
@never_cache
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    report = health_report()
    return JsonResponse(report, status=503 if report["status"] == FAIL else 200)
