"""gunicorn with 3 workers in production mode on the test database (PostgreSQL in CI), for the load tests."""

from __future__ import annotations

import pytest

from tests.conftest import _database_url_for_subprocess
from tests.load.server import collectstatic, production_env, start_gunicorn


@pytest.fixture(scope="session")
def production_static(django_db_setup, django_db_blocker, tmp_path_factory):
    with django_db_blocker.unblock():
        # collected apart from the checkout's staticfiles/: parallel test workers each collect their own
        env = production_env(_database_url_for_subprocess(), STATIC_ROOT=str(tmp_path_factory.mktemp("static")))
    collectstatic(env)
    return env


@pytest.fixture
def gunicorn(production_static, transactional_db):
    """``gunicorn config.wsgi --workers 3`` on the test database: what it serves is what the test committed."""
    from django.contrib.auth.models import Group

    from inventory.roles import ROLES

    for role in ROLES:  # created by a migration; an earlier transactional test's flush removed them
        Group.objects.get_or_create(name=role)
    server = start_gunicorn(production_static, workers=3, name="load-test")
    yield server
    server.stop()
    errors = [line for line in server.log_tail(200_000).splitlines() if " ERROR " in line or "Traceback" in line]
    assert not errors, f"gunicorn logged errors:\n{server.log_tail()}"
