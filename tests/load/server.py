"""gunicorn as deployed (production settings from the environment, several workers) and a small HTTP client.

Shared by the load tests (tests/load) and the load benchmark (bench/load.py). Loopback only: the server
listens on 127.0.0.1 on a port of the range given (8800-8899 by default, or ``LOAD_PORTS=8400-8499``).
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from tests.ports import free_port as ports_free_port

REPO = Path(__file__).resolve().parents[2]


def port_range(text: str) -> range:
    """``"8400-8499"`` -> range(8400, 8500); a clear error otherwise."""
    try:
        first, last = (int(part) for part in text.split("-"))
    except ValueError:
        raise ValueError(f"port range {text!r}: expected FIRST-LAST, e.g. 8400-8499") from None
    if not 0 < first <= last < 65536:
        raise ValueError(f"port range {text!r}: expected 0 < FIRST <= LAST < 65536")
    return range(first, last + 1)


PORTS = port_range(os.environ.get("LOAD_PORTS", "8800-8899"))
LOG_DIR = REPO / "var" / "load"  # git-ignored: gunicorn's log of each run


def free_port(ports: range = PORTS) -> int:
    return ports_free_port(ports)


def production_env(database_url: str, **extra: str) -> dict[str, str]:
    """The environment of a production deployment on loopback: fresh keys, DEBUG off, no TLS redirect."""
    from cryptography.fernet import Fernet

    env = {k: v for k, v in os.environ.items() if k not in {"DJANGO_ALLOW_ASYNC_UNSAFE", "DJANGO_DEBUG"}}
    env.update(
        DJANGO_ENV="production",
        DJANGO_SETTINGS_MODULE="config.settings",
        SECRET_KEY=secrets.token_urlsafe(50),
        FIELD_ENCRYPTION_KEY=Fernet.generate_key().decode(),
        ALLOWED_HOSTS="127.0.0.1",
        SECURE_SSL_REDIRECT="false",  # plain HTTP on loopback; a TLS proxy does this in a real deployment
        DATABASE_URL=database_url,
        PYTHONPATH=str(REPO),
    )
    env.update(extra)
    return env


def collectstatic(env: dict[str, str]) -> None:
    """Production serves static files through whitenoise from collectstatic's output (pages need its manifest)."""
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )


@dataclass
class Gunicorn:
    url: str
    port: int
    log_path: Path
    process: subprocess.Popen = field(repr=False)

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_gunicorn(
    env: dict[str, str], *, workers: int = 3, timeout: int = 30, name: str = "gunicorn", ports: range = PORTS
) -> Gunicorn:
    """``gunicorn config.wsgi --preload`` with ``workers`` sync workers on a free port of ``ports`` (as the README
    runs it); returns once it answers."""
    port = free_port(ports)
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log_path = LOG_DIR / f"{name}-{port}.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [
                sys.executable, "-m", "gunicorn", "config.wsgi",
                "--bind", f"127.0.0.1:{port}",
                "--workers", str(workers),
                "--preload",
                "--timeout", str(timeout),
                "--graceful-timeout", "10",
                "--error-logfile", "-",
            ],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    server = Gunicorn(f"http://127.0.0.1:{port}", port, log_path, process)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}:\n{server.log_tail()}")
        try:
            if Client(server.url).get("/accounts/login/").status == 200:
                return server
        except OSError:
            pass
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"gunicorn did not answer within 60 s:\n{server.log_tail()}")


@dataclass
class Response:
    status: int
    body: bytes
    headers: dict[str, str]
    seconds: float

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


class Client:
    """One user agent: keeps its cookies (session, CSRF) and, once given, its API token. Thread-confined."""

    def __init__(self, base_url: str, *, timeout: float = 120) -> None:
        host, port = base_url.removeprefix("http://").split(":")
        self.host, self.port, self.timeout = host, int(port), timeout
        self.cookies: dict[str, str] = {}
        self.token: str | None = None

    def request(
        self, method: str, path: str, *, json_body: Any = None, form: dict | None = None, headers: dict | None = None
    ) -> Response:
        sent = {"Host": f"{self.host}:{self.port}", **(headers or {})}
        body = None
        if json_body is not None:
            body, sent["Content-Type"] = json.dumps(json_body).encode(), "application/json"
        elif form is not None:
            body, sent["Content-Type"] = urlencode(form).encode(), "application/x-www-form-urlencoded"
        if self.token and path.startswith("/api/"):
            sent["Authorization"] = f"Token {self.token}"
        elif self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        started = time.perf_counter()
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            conn.request(method, path, body=body, headers=sent)
            raw = conn.getresponse()
            data = raw.read()
            for header in raw.headers.get_all("Set-Cookie") or []:
                for name, morsel in SimpleCookie(header).items():
                    self.cookies[name] = morsel.value
            response = Response(raw.status, data, dict(raw.headers.items()), time.perf_counter() - started)
        finally:
            conn.close()
        return response

    def get(self, path: str, **params: Any) -> Response:
        return self.request("GET", f"{path}?{urlencode(params)}" if params else path)

    def post_json(self, path: str, body: Any) -> Response:
        return self.request("POST", path, json_body=body)

    def obtain_token(self, username: str, password: str) -> str:
        """``POST /api/token/`` over HTTP; later /api/ requests send ``Authorization: Token <token>``."""
        response = self.post_json("/api/token/", {"username": username, "password": password})
        if response.status != 200:
            raise RuntimeError(f"POST /api/token/ answered {response.status}: {response.text[:300]}")
        self.token = response.json()["token"]
        return self.token

    def login(self, username: str, password: str) -> None:
        """Sign in through the login page (session and CSRF cookies), as a browser does."""
        self.get("/accounts/login/")
        response = self.request(
            "POST",
            "/accounts/login/",
            form={"username": username, "password": password, "csrfmiddlewaretoken": self.cookies.get("csrftoken", "")},
            headers={"Referer": f"http://{self.host}:{self.port}/accounts/login/"},
        )
        if response.status != 302 or "sessionid" not in self.cookies:
            raise RuntimeError(f"login as {username} answered {response.status}: {response.text[:300]}")
