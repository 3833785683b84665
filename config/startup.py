"""Checks a server makes before it answers its first request."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


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
