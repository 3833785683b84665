"""The test workers' own Redis databases (pytest-xdist): locks and queues of one worker never meet another's."""

import pytest

from tests.conftest import _redis_url, _worker_database


@pytest.mark.parametrize(
    ("url", "offset", "expected"),
    [
        ("redis://127.0.0.1:6379/0", 0, "redis://127.0.0.1:6379/0"),
        ("redis://127.0.0.1:6379/0", 1, "redis://127.0.0.1:6379/1"),
        ("redis://127.0.0.1:6379/3", 2, "redis://127.0.0.1:6379/5"),
        ("redis://127.0.0.1:6379", 1, "redis://127.0.0.1:6379/1"),
        ("redis://:secret@redis.example:6380/2", 1, "redis://:secret@redis.example:6380/3"),
    ],
)
def test_a_worker_gets_the_database_its_number_above_the_configured_one(url, offset, expected):
    assert _worker_database(url, offset) == expected


def test_without_a_configured_redis_each_worker_takes_its_own_local_database(monkeypatch):
    for name in ("TEST_REDIS_URL", "REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw1")
    assert _redis_url() == "redis://127.0.0.1:6379/1"
    monkeypatch.delenv("PYTEST_XDIST_WORKER")
    assert _redis_url() == "redis://127.0.0.1:6379/0"
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/4")  # pytest_configure offset it already
    assert _redis_url() == "redis://127.0.0.1:6379/4"
