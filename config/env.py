"""Validation of the environment variables settings depend on; every error names its variable."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import environ
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

SUPPORTED_DB_SCHEMES = {"postgres", "postgresql", "pgsql", "sqlite"}


@contextmanager
def configuration_errors_exit(status: int) -> Iterator[None]:
    """A misconfigured variable is the operator's to fix: one line naming it on stderr, exit ``status``, no
    traceback (the same line from manage.py, gunicorn, the Celery worker and beat)."""
    try:
        yield
    except ImproperlyConfigured as exc:
        print(f"configuration error: {exc}", file=sys.stderr, flush=True)
        sys.exit(status)


class CheckedEnv(environ.Env):
    """django-environ's reader, but a number or flag that does not parse names its variable (``ImproperlyConfigured``)
    instead of a ValueError traceback: django-environ reads STALE_WARN_AFTER=abc as ``int('abc')`` and
    REDIS_TIMEOUT=abc as ``float('')``."""

    def int(self, var, default=environ.Env.NOTSET):
        raw = self._raw(var, default)
        if isinstance(raw, int) and not isinstance(raw, bool):
            return raw
        try:
            return int(str(raw).strip())
        except ValueError:
            raise ImproperlyConfigured(f"{var}: must be a whole number, got {raw!r}") from None

    def float(self, var, default=environ.Env.NOTSET):
        raw = self._raw(var, default)
        try:
            value = float(str(raw).strip())
        except ValueError:
            raise ImproperlyConfigured(f"{var}: must be a number, got {raw!r}") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise ImproperlyConfigured(f"{var}: must be a finite number, got {raw!r}")
        return value

    def bool(self, var, default=environ.Env.NOTSET):
        raw = self._raw(var, default)
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in self.BOOLEAN_TRUE_STRINGS:
            return True
        if text in ("false", "off", "no", "n", "0", ""):
            return False
        raise ImproperlyConfigured(f"{var}: must be true or false, got {raw!r}")

    def _raw(self, var: str, default):
        return self.get_value(var, cast=str, default=default)


def database_from_env(url: str, default_sqlite: Path) -> dict:
    if not url:
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": str(default_sqlite)}
    scheme = urlsplit(url).scheme
    if scheme not in SUPPORTED_DB_SCHEMES:
        raise ImproperlyConfigured(
            f"DATABASE_URL: unsupported scheme {scheme!r} (use postgres://USER@HOST:PORT/NAME or sqlite:///PATH)"
        )
    try:
        config = environ.Env.db_url_config(url)
    except Exception as exc:  # django-environ raises several types for malformed URLs
        raise ImproperlyConfigured(f"DATABASE_URL: cannot parse ({exc})") from None
    if not config.get("NAME"):
        raise ImproperlyConfigured("DATABASE_URL: no database name in the URL")
    if config["ENGINE"].endswith("postgresql"):
        config.setdefault("CONN_MAX_AGE", 60)
        config.setdefault("CONN_HEALTH_CHECKS", True)
    return config


def redis_url_from_env(url: str) -> str:
    if not url:
        return ""
    parts = urlsplit(url)
    if parts.scheme not in {"redis", "rediss", "unix"}:
        raise ImproperlyConfigured(f"REDIS_URL: unsupported scheme {parts.scheme!r} (use redis://HOST:PORT/DB)")
    if parts.scheme != "unix" and not parts.hostname:
        raise ImproperlyConfigured("REDIS_URL: no host in the URL")
    try:
        parts.port  # noqa: B018 - raises ValueError for a non-numeric port
    except ValueError:
        raise ImproperlyConfigured("REDIS_URL: the port is not a number") from None
    return url


def encryption_keys_from_env(value: str) -> list[str]:
    keys = [k.strip() for k in value.split(",") if k.strip()]
    for i, key in enumerate(keys):
        try:
            Fernet(key)
        except Exception:
            raise ImproperlyConfigured(
                f"FIELD_ENCRYPTION_KEY: key #{i + 1} is not a valid Fernet key (32 url-safe base64-encoded bytes)"
            ) from None
    return keys


def dev_encryption_key(var_dir: Path) -> str:
    """A per-checkout key for development and the demo, kept in var/ so stored passwords stay readable."""
    path = var_dir / "dev-fernet.key"
    if path.exists():
        return path.read_text().strip()
    var_dir.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key().decode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    return key
