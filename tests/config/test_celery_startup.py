"""The worker and beat (`celery -A config worker|beat`, as the README runs them with the web app's environment)
refuse a bad configuration as manage.py does: one line naming the variable, exit status 2.

Found in the field: each printed an 88-line traceback from inside Celery's option parsing and exited 1.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.config.test_production import production_env
from tests.conftest import REPO

pytestmark = pytest.mark.reliability("security", "production configuration")
CELERY = Path(sys.executable).with_name("celery")
# Nothing listens there: a worker that wrongly started would give up on the broker instead of joining a real one.
DEAD_BROKER = {"REDIS_URL": "redis://127.0.0.1:9/15", "BROKER_CONNECTION_MAX_RETRIES": "0"}


@pytest.mark.parametrize("command", [["worker", "--loglevel", "INFO"], ["beat", "--loglevel", "INFO"]])
@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"FIELD_ENCRYPTION_KEY": ""}, "FIELD_ENCRYPTION_KEY"),
        ({"DJANGO_DEBUG": "true"}, "DJANGO_DEBUG"),
        ({"DATABASE_URL": "postgress://x"}, "DATABASE_URL"),
        ({"REDIS_URL": "redis://127.0.0.1:notaport/0"}, "REDIS_URL"),
    ],
)
def test_celery_refuses_a_bad_configuration_with_one_line(tmp_path, command, overrides, variable):
    env = production_env(tmp_path, **{**DEAD_BROKER, **overrides})
    result = subprocess.run(
        [str(CELERY), "-A", "config", *command], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "Traceback" not in output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"configuration error: {variable}:"), output
