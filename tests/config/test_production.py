"""Production mode as the README's native route runs it: gunicorn on config.wsgi, whitenoise serving the
collectstatic output, no debug pages, and a refusal to start on the development key or without collectstatic.

Found in the field: the native route ran with DEBUG on and the development SECRET_KEY (anonymous users got the
debug 404 listing every URL); in production without collectstatic every page was a 500; under gunicorn in
development /static/ was a 404.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

import pytest
from cryptography.fernet import Fernet

from tests.conftest import REPO, _database_url_for_subprocess
from tests.ports import free_port

pytestmark = pytest.mark.reliability("security", "production configuration")
GUNICORN = Path(sys.executable).with_name("gunicorn")
PORTS = range(8600, 8700)  # this suite's share of the machine's ports


def _free_port() -> int:
    return free_port(PORTS)


def production_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DJANGO_ENV", "DJANGO_DEBUG", "REDIS_URL", "SECRET_KEY"}}
    env.update(
        DJANGO_ENV="production",
        SECRET_KEY=Fernet.generate_key().decode() + Fernet.generate_key().decode(),
        FIELD_ENCRYPTION_KEY=Fernet.generate_key().decode(),
        ALLOWED_HOSTS="127.0.0.1,advisor.example.com",
        STATIC_ROOT=str(tmp_path / "static"),
    )
    env.update(overrides)
    return env


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )


class Server:
    """gunicorn on config.wsgi (as the README runs it, with --preload: a configuration error stops the master once,
    where two workers failing at once could make gunicorn's arbiter print a traceback of its own while it halts),
    on a port of this suite's range, stopped after the test."""

    def __init__(self, env: dict[str, str]) -> None:
        self.port = _free_port()
        self.proc = subprocess.Popen(
            [str(GUNICORN), "config.wsgi", "--bind", f"127.0.0.1:{self.port}", "--workers", "2", "--timeout", "60",
             "--preload"],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"gunicorn exited with {self.proc.returncode}:\n{self.output()}")
            try:
                self.get("/healthz")
                return
            except OSError:
                time.sleep(0.3)
        pytest.fail("gunicorn did not answer within 90 s")

    def get(self, path: str, headers: dict | None = None) -> tuple[int, dict[str, str], str]:
        status, headers, _, body = self.request("GET", path, headers=headers)
        return status, headers, body

    def request(
        self, method: str, path: str, body: str | None = None, headers: dict | None = None
    ) -> tuple[int, dict[str, str], list[str], str]:
        """Status, headers (the last of each name), every Set-Cookie header, and the body."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers={"Host": "127.0.0.1", **(headers or {})})
            response = conn.getresponse()
            headers = {k.lower(): v for k, v in response.getheaders()}
            cookies = response.msg.get_all("Set-Cookie") or []
            content = response.read()
            return response.status, headers, cookies, content.decode() if "content-encoding" not in headers else ""
        finally:
            conn.close()

    def exit_code(self, timeout: float = 120) -> int:
        return self.proc.wait(timeout=timeout)

    def output(self) -> str:
        return self.proc.stdout.read() if self.proc.stdout else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def servers():
    started: list[Server] = []

    def start(env: dict[str, str]) -> Server:
        server = Server(env)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def test_check_deploy_is_clean_in_production(tmp_path):
    result = manage(production_env(tmp_path), "check", "--deploy", "--fail-level", "DEBUG")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_behind_a_tls_proxy_only_the_redirect_is_left_to_the_proxy(tmp_path):
    env = production_env(tmp_path, SECURE_SSL_REDIRECT="false", BEHIND_TLS_PROXY="true")
    result = manage(env, "check", "--deploy")
    assert result.returncode == 0
    assert re.findall(r"security\.W\d+", result.stdout + result.stderr) == ["security.W008"]


def test_gunicorn_without_production_settings_refuses_to_start(servers, tmp_path):
    """The README's old native route: `gunicorn config.wsgi` with only DATABASE_URL/REDIS_URL set."""
    env = {k: v for k, v in os.environ.items() if k not in {"DJANGO_ENV", "SECRET_KEY", "DJANGO_DEBUG"}}
    server = servers(env)
    assert server.exit_code() != 0
    out = server.output()
    assert "configuration error: SECRET_KEY: required when DJANGO_ENV=production" in out
    assert "Traceback" not in out


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"SECRET_KEY": "django-insecure-development-only-key-not-for-production-use"}, "SECRET_KEY"),
        ({"SECRET_KEY": "short"}, "SECRET_KEY"),
        ({"DJANGO_DEBUG": "true"}, "DJANGO_DEBUG"),
    ],
)
def test_production_refuses_the_development_key_and_debug(tmp_path, overrides, variable):
    result = manage(production_env(tmp_path, **overrides), "check")
    assert result.returncode == 2
    assert result.stderr.strip().startswith(f"configuration error: {variable}:"), result.stderr


def test_production_refuses_to_start_without_allowed_hosts(tmp_path):
    """Trial I-9: every page answered 400 while /healthz (any Host) answered 200 to the load balancer."""
    env = production_env(tmp_path)
    del env["ALLOWED_HOSTS"]
    result = manage(env, "check")
    assert result.returncode == 2
    assert result.stderr.strip().startswith("configuration error: ALLOWED_HOSTS: required"), result.stderr


def test_a_request_for_an_unknown_host_logs_one_line_not_a_traceback(tmp_path):
    """Trial I-5: each scanner request by IP address wrote a 15-line traceback to the server's log."""
    probe = (
        "from django.test import Client; "
        "print(Client().get('/accounts/login/', HTTP_HOST='scanner.example').status_code)"
    )
    result = manage(production_env(tmp_path, SECURE_SSL_REDIRECT="false"), "shell", "-c", probe)
    assert result.stdout.strip().splitlines()[-1] == "400", result.stderr
    assert "Traceback" not in result.stderr
    logged = [line for line in result.stderr.splitlines() if "DisallowedHost" in line]
    assert len(logged) == 1 and "Invalid HTTP_HOST header: 'scanner.example'" in logged[0], result.stderr


def test_gunicorn_in_production_without_collectstatic_refuses_to_start(servers, tmp_path, transactional_db):
    server = servers(production_env(tmp_path, DATABASE_URL=_database_url_for_subprocess()))
    assert server.exit_code() != 0
    out = server.output()
    assert "configuration error: STATIC_ROOT:" in out and "collectstatic" in out
    # the one line, without whitenoise's "UserWarning: No directory at: ..." (two lines) before it
    assert [line for line in out.splitlines() if line.strip()] == [out.strip()], out


def collected_and_served(servers, env: dict):
    """gunicorn in production after ``collectstatic``, ready for requests."""
    collected = manage(env, "collectstatic", "--noinput")
    assert collected.returncode == 0, collected.stderr
    server = servers(env)
    server.wait_ready()
    return server


def test_gunicorn_in_production_serves_pages_static_files_and_plain_errors(servers, tmp_path, transactional_db):
    env = production_env(tmp_path, DATABASE_URL=_database_url_for_subprocess(), BEHIND_TLS_PROXY="true")
    server = collected_and_served(servers, env)
    https = {"X-Forwarded-Proto": "https"}  # as the TLS proxy in front says

    status, headers, html = server.get("/accounts/login/", https)
    assert status == 200 and "Sign in" in html
    assert "strict-transport-security" in headers and "csrftoken" in headers.get("set-cookie", "")
    assert "secure" in headers["set-cookie"].lower()
    css = re.search(r'href="(/static/css/app\.[0-9a-f]{12}\.css)"', html)
    assert css, "the page links the hashed, collected stylesheet"
    status, headers, body = server.get(css.group(1), https)
    assert status == 200 and headers["content-type"].startswith("text/css") and "{" in body
    assert "max-age=315360000" in headers.get("cache-control", "")  # hashed names cache forever
    status, headers, _ = server.get(css.group(1), {**https, "Accept-Encoding": "gzip"})
    assert status == 200 and headers.get("content-encoding") == "gzip"

    status, headers, _ = server.get("/", https)
    assert status == 302 and headers["location"].startswith("/accounts/login/")
    status, headers, body = server.get("/no-such-page/", https)
    assert status == 404 and "<h1>Not found</h1>" in body  # the site's 404 page, not the debug page listing every URL
    assert "URLconf" not in body and "accounts/login/" not in body and "api/" not in body
    status, headers, body = server.get("/static/no-such-file.css", https)
    assert status == 404 and "URLconf" not in body and "DEBUG" not in body and "Traceback" not in body
    status, headers, body = server.get("/api/no-such-endpoint/", https)
    assert status == 404 and body == '{"detail": "not found"}'
    status, headers, _ = server.get("/accounts/login/")  # plain HTTP: redirected to HTTPS
    assert status == 301 and headers["location"] == "https://127.0.0.1/accounts/login/"


def test_healthz_answers_plain_http_probes_despite_the_ssl_redirect(servers, tmp_path, transactional_db):
    """A load balancer's probe asks over plain HTTP and does not follow a redirect: /healthz answers it itself."""
    env = production_env(tmp_path, DATABASE_URL=_database_url_for_subprocess(), BEHIND_TLS_PROXY="true")
    server = collected_and_served(servers, env)
    status, headers, body = server.get("/healthz")
    assert status in {200, 503}, (status, headers)
    assert json.loads(body)["checks"]["database"]["status"] == "ok"
    status, headers, _ = server.get("/accounts/login/")  # every other page still goes to HTTPS
    assert status == 301 and headers["location"] == "https://127.0.0.1/accounts/login/"
    # probes ask by the address, which ALLOWED_HOSTS (the names users reach the app by) does not list
    for probe in ("10.20.30.40:8000", "[fd00::7]"):
        status, headers, body = server.get("/healthz", headers={"Host": probe})
        assert status in {200, 503} and json.loads(body)["checks"]["database"]["status"] == "ok", (status, body)
    status, _, _ = server.get("/accounts/login/", headers={"Host": "10.20.30.40:8000"})
    assert status == 400  # every other page still refuses a host it does not serve


def test_secure_cookies_off_lets_production_mode_sign_in_over_plain_http(servers, tmp_path, transactional_db):
    """Trying production mode on a private network without TLS, under a host name (browsers accept Secure cookies
    over plain HTTP only from localhost): SECURE_COOKIES=false, and check --deploy says what that costs."""
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_user("sre", password="a long enough password")
    env = production_env(
        tmp_path, DATABASE_URL=_database_url_for_subprocess(), SECURE_SSL_REDIRECT="false", SECURE_COOKIES="false"
    )
    deploy = manage(env, "check", "--deploy")
    assert deploy.returncode == 0, deploy.stderr
    assert re.findall(r"security\.W\d+", deploy.stdout + deploy.stderr) == [
        "security.W008",
        "security.W012",
        "security.W016",
    ]
    server = collected_and_served(servers, env)
    host = {"Host": "advisor.example.com"}

    status, _, cookies, html = server.request("GET", "/accounts/login/", headers=host)
    assert status == 200 and "Sign in" in html
    csrf = SimpleCookie("\n".join(cookies))["csrftoken"]
    assert not csrf["secure"], cookies  # a browser keeps it over http://advisor.example.com
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
    form = urlencode({"username": "sre", "password": "a long enough password", "csrfmiddlewaretoken": token})
    status, headers, cookies, _ = server.request(
        "POST", "/accounts/login/", form,
        {**host, "Cookie": f"csrftoken={csrf.value}", "Content-Type": "application/x-www-form-urlencoded"},
    )  # fmt: skip
    assert status == 302 and headers["location"] == "/", (status, headers)
    session = SimpleCookie("\n".join(cookies))["sessionid"]
    assert session.value and not session["secure"]


def test_gunicorn_in_development_serves_static_files(servers, tmp_path, transactional_db):
    env = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DJANGO_DEBUG", "REDIS_URL"}}
    env.update(DJANGO_ENV="development", DATABASE_URL=_database_url_for_subprocess())
    server = servers(env)
    server.wait_ready()
    status, headers, body = server.get("/static/css/app.css")
    assert status == 200 and headers["content-type"].startswith("text/css") and "{" in body
