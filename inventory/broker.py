"""Which sync runs still have a task message in the broker (Redis), for the watchdog.

A queued SyncRun is worked on only through its Celery message (``run_id`` in its keyword arguments). With the
Redis transport that message is in one of two places until a worker finishes the task: the queue's list (waiting),
or kombu's ``unacked`` hash (taken by a worker: started, prefetched, or held until its retry time; the sync task
acknowledges late). A message in neither is gone for good, e.g. Redis restarted without its data.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from django.conf import settings

SYNC_TASK = "inventory.tasks.sync_vcenter_task"
UNACKED_KEY = "unacked"  # kombu's default (transport option ``unacked_key``)
PRIORITY_SEP = "\x06\x16"  # kombu's key for a queue's priority levels: name, separator, level
PRIORITY_STEPS = (0, 3, 6, 9)
MAX_MESSAGES = 20_000  # a longer backlog is not read every watchdog period: the answer is "cannot tell"


def _client(broker_url: str):
    import redis

    timeout = settings.REDIS_TIMEOUT
    return redis.Redis.from_url(broker_url, socket_connect_timeout=timeout, socket_timeout=timeout)


def _run_id(payload: Any) -> int | None:
    """The ``run_id`` a sync task message carries, if it is one (Celery's message protocol 2)."""
    if not isinstance(payload, dict) or payload.get("headers", {}).get("task") != SYNC_TASK:
        return None
    body = payload.get("body")
    try:
        if payload.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        _args, kwargs, _embed = json.loads(body)
    except (TypeError, ValueError, UnicodeDecodeError):
        return None
    run_id = kwargs.get("run_id") if isinstance(kwargs, dict) else None
    return run_id if isinstance(run_id, int) else None


def sync_runs_with_a_message() -> set[int] | None:
    """The run ids of every sync task message waiting in the sync queue or held by a worker; None when it cannot
    be told (no Redis broker, Redis unreachable, or a backlog longer than ``MAX_MESSAGES``)."""
    from config.celery import app

    broker_url = app.conf.broker_url or ""
    if app.conf.task_always_eager or not broker_url.startswith(("redis://", "rediss://")):
        return None
    queue = app.conf.task_default_queue  # syncs are not routed elsewhere
    keys = [queue] + [f"{queue}{PRIORITY_SEP}{step}" for step in PRIORITY_STEPS if step]
    try:
        client = _client(broker_url)
        if sum(client.llen(key) for key in keys) + client.hlen(UNACKED_KEY) > MAX_MESSAGES:
            return None
        # The list first, then the hash: a worker moves a message from the list into the hash, never back
        # (except when it restores one it never finished, after the visibility timeout, into the list again).
        raw = [item for key in keys for item in client.lrange(key, 0, -1)]
        raw += [item for item in client.hvals(UNACKED_KEY)]
    except Exception:
        return None
    ids = set()
    for item in raw:
        try:
            payload = json.loads(item)
        except ValueError:
            continue
        if isinstance(payload, list) and payload:  # unacked: [message, exchange, routing key]
            payload = payload[0]
        if (run_id := _run_id(payload)) is not None:
            ids.add(run_id)
    return ids
