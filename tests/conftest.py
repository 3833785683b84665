"""Shared fixtures: database vendor header, Celery eager mode by default, a real Celery worker on Redis."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.browser.csp import csp_refusals, watch_csp

REPO = Path(__file__).resolve().parent.parent
pytest_plugins = ["tests.reliability_plugin", "pytester"]  # the reliability table; pytester tests the plugin

TEST_DATA = REPO / "tests" / "data"  # real captures copied from public sources (see its README)
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def pytest_report_header(config):
    from django.conf import settings

    db = settings.DATABASES["default"]
    vendor = "postgresql" if "postgresql" in db["ENGINE"] else "sqlite"
    broker = settings.REDIS_URL or "none (eager tasks)"
    return [f"database vendor: {vendor} ({db.get('HOST') or db['NAME']})", f"celery broker: {broker}"]


def require(condition: bool, reason: str) -> None:
    """Skip locally when a real dependency is missing; fail in CI, where every test must run."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def _celery_eager():
    """Tasks run in-process unless a test asks for the real worker."""
    from config.celery import app

    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    yield
    app.conf.task_always_eager = True


@pytest.fixture(autouse=True)
def _fresh_throttles():
    """API throttle counters live in the process's cache; each test starts with none spent."""
    from django.core.cache import cache

    cache.clear()
    yield


def pytest_configure(config):
    """A pytest-xdist worker ("gw0", "gw1", ...) uses Redis database N above the one configured: sync locks and
    queues are keyed by primary keys, which repeat across the workers' test databases, and tests flush it."""
    worker = _worker_number()
    if worker is None:
        return
    from django.conf import settings

    configured = settings.REDIS_URL  # pytest-django loaded the settings before this hook
    for name in ("REDIS_URL", "TEST_REDIS_URL"):
        if os.environ.get(name):
            os.environ[name] = _worker_database(os.environ[name], worker)
    if configured:
        settings.REDIS_URL = settings.CELERY_BROKER_URL = _worker_database(configured, worker)
        from config.celery import app

        app.conf.broker_url = settings.REDIS_URL


def _worker_number() -> int | None:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    return int(worker[2:]) if worker.startswith("gw") else None


def _worker_database(url: str, offset: int) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    base = int(parts.path.strip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{base + offset}"))


def _redis_url() -> str:
    """The Redis of the real-worker tests: the configured one (per worker since ``pytest_configure``), else the
    local default, per worker too."""
    configured = os.environ.get("TEST_REDIS_URL") or os.environ.get("REDIS_URL")
    return configured or _worker_database("redis://127.0.0.1:6379/0", _worker_number() or 0)


def _redis_available(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


def _database_url_for_subprocess() -> str:
    from django.db import connection

    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    auth = quote(s["USER"] or "")
    if s.get("PASSWORD"):
        auth += ":" + quote(s["PASSWORD"])
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


@pytest.fixture(scope="session")
def redis_url() -> str:
    url = _redis_url()
    require(_redis_available(url), f"Redis at {url} is not reachable")
    return url


@pytest.fixture
def celery_worker(redis_url, transactional_db, settings):
    """A real `celery worker` process consuming from Redis and writing to the test database."""
    from config.celery import app

    env = {
        **os.environ,
        "DATABASE_URL": _database_url_for_subprocess(),
        "REDIS_URL": redis_url,
        "SYNC_RETRY_BASE_SECONDS": "1",
    }
    # Tests and worker must agree on the broker; the worker gets a fresh queue name per test.
    queue = f"test-{os.getpid()}-{time.monotonic_ns()}"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool",
            "solo",
            "--concurrency",
            "1",
            "--loglevel",
            "INFO",
            "--queues",
            queue,
            "--hostname",
            f"{queue}@%h",
            "--without-mingle",
            "--without-gossip",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    app.conf.broker_url = redis_url
    # A broker pool opened earlier in this process (e.g. by a live-server test, on memory://) would carry the
    # pings and tasks meant for this worker: drop it so the next use connects to Redis.
    app._pool = None
    app.amqp._producer_pool = None
    app.conf.task_always_eager = False
    app.conf.task_default_queue = queue
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                out = proc.stdout.read() if proc.stdout else ""
                pytest.fail(f"celery worker exited with {proc.returncode}:\n{out[-4000:]}")
            replies = app.control.ping(destination=[f"{queue}@{os.uname().nodename}"], timeout=0.5)
            if replies:
                break
        else:
            pytest.fail("celery worker did not answer a ping within 60 s")
        yield proc
    finally:
        app.conf.task_default_queue = "celery"
        app.conf.task_always_eager = True
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="session")
def gpulab_binary() -> Path:
    from tests.vcsim import GPULAB

    require(GPULAB.exists(), f"{GPULAB} is not built (run `make vcsim`)")
    return GPULAB


@pytest.fixture
def demo_lab(gpulab_binary):
    """The demo GPU lab served by vcsim on a free port, stopped after the test."""
    from tests.vcsim import LABS, start_lab

    lab = start_lab(LABS / "demo.json")
    yield lab
    lab.stop()


@pytest.fixture
def lab_vcenter(demo_lab, db):
    """A registered vCenter pointing at the demo lab, verifying TLS against the lab's certificate."""
    from inventory import services

    return services.register_vcenter(
        name="lab",
        url=demo_lab.url,
        username=demo_lab.username,
        password=demo_lab.password,
        verify_tls=True,
        ca_file=demo_lab.cert_path,
    )


# ---------------------------------------------------------------- browser (Playwright on Debian's Chromium)

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "var" / "artifacts"  # git-ignored: screenshots of browser tests
BROWSER_PASSWORD = "Browser-Passw0rd-123"


@pytest.fixture
def browser(monkeypatch):
    """Headless Debian Chromium driven by Playwright; never a downloaded browser.

    One per test: Playwright's sync API keeps an event loop running in this thread while it lives, and
    Django refuses ORM calls under a running loop unless DJANGO_ALLOW_ASYNC_UNSAFE is set. The variable is
    set only while the browser lives, so no other test (or subprocess) inherits it.
    """
    require(CHROMIUM.exists(), f"{CHROMIUM} is missing (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require(False, "the playwright package is not installed (make venv)")
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as pw:
        instance = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        yield instance
        instance.close()


def browser_login(page, base_url: str, username: str, password: str = BROWSER_PASSWORD) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_load_state("networkidle")


@pytest.fixture
def admin_page(browser, live_server, transactional_db, request):
    """A browser tab signed in as a superuser at the live server; a screenshot is kept on failure."""
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_superuser("browser-admin", password=BROWSER_PASSWORD)
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(15_000)
    watch_csp(page)  # every browser test also checks that nothing it did ran into the Content-Security-Policy
    browser_login(page, live_server.url, "browser-admin")
    yield page
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    refused = csp_refusals(page)
    context.close()
    assert refused == [], f"the Content-Security-Policy refused: {refused}"


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """pytest-django's test database; before it is dropped, sessions other threads or servers left idle on it are
    ended (one usually is: a live-server or gunicorn request's connection), so the drop does not fail with
    "database is being accessed by other users" and leave the database behind."""
    yield
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
