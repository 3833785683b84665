"""Checks a server makes before it answers its first request."""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

logger = logging.getLogger(__name__)


def check_static_manifest() -> None:
    """In production every page links hashed static names from collectstatic's manifest: without it every
    HTML page would be a 500, so the server refuses to start and says what to run."""
    if not getattr(settings, "PRODUCTION", False):
        return
    manifest = settings.STATIC_ROOT / "staticfiles.json"
    if not manifest.exists():
        raise ImproperlyConfigured(
            f"STATIC_ROOT: {manifest} is missing; run `python manage.py collectstatic --noinput` "
            "(with the same settings) before starting the server"
        )


def warm_caches() -> None:
    """Read the placement snapshot of every host once, so a new web worker's first plan does not pay for it
    (0.4 s on 1,000 hosts, while requests queue behind it). Under ``gunicorn --preload`` this runs once in the
    master and the workers inherit the result. Never fatal: a server without its database yet still starts."""
    from django.db import connections

    from placement.selectors import fabric_snapshot

    started = time.perf_counter()
    try:
        hosts = len(fabric_snapshot().hosts)
    except Exception as exc:  # an empty or unmigrated database, or none reachable: the first request will say
        logger.warning("placement cache not warmed: %s: %s", type(exc).__name__, exc)
    else:
        logger.info("placement cache warmed: %d hosts in %.2f s", hosts, time.perf_counter() - started)
    finally:
        connections.close_all()  # never hand a connection across gunicorn's fork (--preload)
