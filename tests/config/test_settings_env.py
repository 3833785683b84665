"""Start-up refuses malformed configuration with one line naming the variable."""

import os
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet

from tests.conftest import REPO

GOOD_KEY = Fernet.generate_key().decode()


def run_check(**env_overrides: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "DJANGO_ENV"}}
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"DATABASE_URL": "mysql2://nope"}, "DATABASE_URL"),
        ({"DATABASE_URL": "postgres://user@host:5432/"}, "DATABASE_URL"),
        ({"REDIS_URL": "http://localhost:6379"}, "REDIS_URL"),
        ({"REDIS_URL": "redis://localhost:notaport/0"}, "REDIS_URL"),
        ({"FIELD_ENCRYPTION_KEY": "not-a-key"}, "FIELD_ENCRYPTION_KEY"),
        ({"DJANGO_ENV": "production", "SECRET_KEY": "x" * 60}, "FIELD_ENCRYPTION_KEY"),
        ({"DJANGO_ENV": "production", "FIELD_ENCRYPTION_KEY": GOOD_KEY}, "SECRET_KEY"),
        ({"DJANGO_ENV": "staging"}, "DJANGO_ENV"),
        # numbers and flags that do not parse (django-environ raised a ValueError traceback for these)
        ({"STALE_WARN_AFTER": "abc"}, "STALE_WARN_AFTER"),
        ({"REDIS_TIMEOUT": "abc"}, "REDIS_TIMEOUT"),
        ({"DJANGO_DEBUG": "maybe"}, "DJANGO_DEBUG"),
        ({"VCPUS_PER_LOGICAL_CPU": "nan"}, "VCPUS_PER_LOGICAL_CPU"),
        ({"VCPUS_PER_LOGICAL_CPU": "0.5"}, "VCPUS_PER_LOGICAL_CPU"),
        ({"VCPUS_PER_LOGICAL_CPU": "33"}, "VCPUS_PER_LOGICAL_CPU"),
    ],
)
def test_bad_configuration_stops_startup_with_one_line(overrides, variable):
    result = run_check(**overrides)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"configuration error: {variable}:")


def test_good_production_configuration_passes_deploy_check():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO,
        env={
            **{k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}},
            "DJANGO_ENV": "production",
            "SECRET_KEY": Fernet.generate_key().decode() + Fernet.generate_key().decode(),
            "FIELD_ENCRYPTION_KEY": GOOD_KEY,
            "ALLOWED_HOSTS": "advisor.example.com",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
