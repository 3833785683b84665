"""Upgrading an install that had DRF's plaintext tokens (rest_framework.authtoken): migrate and start-up work,
the old tokens stop working (401), new hashed ones work."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.reliability("security", "upgrade from plaintext tokens")
OLD_KEY = "0123456789abcdef0123456789abcdef01234567"
PROBE = """
from django.contrib.auth import get_user_model
from django.test import Client
get_user_model().objects.create_user("automation", password="Test-Passw0rd-123")
c = Client(SERVER_NAME="localhost")
print("old", c.get("/api/hosts/", HTTP_AUTHORIZATION="Token %s").status_code)
r = c.post("/api/token/", {"username": "automation", "password": "Test-Passw0rd-123"}, content_type="application/json")
print("new", c.get("/api/hosts/", HTTP_AUTHORIZATION="Token " + r.json()["token"]).status_code)
"""


def _manage(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )


def test_an_install_with_plaintext_tokens_upgrades_and_its_tokens_stop_working(tmp_path):
    db = tmp_path / "old.sqlite3"
    env = {k: v for k, v in os.environ.items() if k not in {"DJANGO_ENV", "REDIS_URL"}}
    env["DATABASE_URL"] = f"sqlite:///{db}"
    assert _manage(env, "migrate", "--noinput").returncode == 0
    # what rest_framework.authtoken's migrations left in an older install, with one token in it
    with sqlite3.connect(db) as conn:
        conn.execute(
            "CREATE TABLE authtoken_token (key varchar(40) NOT NULL PRIMARY KEY, created datetime NOT NULL, "
            "user_id integer NOT NULL UNIQUE REFERENCES auth_user (id))"
        )
        conn.execute(
            "INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, email, is_staff, "
            "is_active, date_joined) VALUES ('!', 0, 'old', '', '', '', 0, 1, '2024-01-01')"
        )
        conn.execute("INSERT INTO authtoken_token VALUES (?, '2024-01-01', (SELECT id FROM auth_user))", (OLD_KEY,))
        for name in ("0001_initial", "0002_auto_20160226_1747", "0003_tokenproxy", "0004_alter_tokenproxy_options"):
            conn.execute(
                "INSERT INTO django_migrations (app, name, applied) VALUES ('authtoken', ?, '2024-01-01')", (name,)
            )
    migrated = _manage(env, "migrate", "--noinput")
    assert migrated.returncode == 0, migrated.stderr
    assert _manage(env, "check").returncode == 0
    probe = _manage(env, "shell", "-c", PROBE % OLD_KEY)
    assert probe.returncode == 0, probe.stderr
    assert "old 401" in probe.stdout and "new 200" in probe.stdout
