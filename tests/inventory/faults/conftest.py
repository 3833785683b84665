"""Fault-test helpers: Celery workers started and killed by the test, a Redis of the test's own, vcsim labs.

Timeouts are short (heartbeat every 0.5 s, a silent run lost after 3 s) through the same settings the product
reads, in the test process (``settings``) and in the workers (environment).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import REPO, _database_url_for_subprocess
from tests.ports import free_port as ports_free_port
from tests.waits import wait_for

FAST = {
    "SYNC_HEARTBEAT_SECONDS": 0.5,
    "SYNC_LOST_AFTER": 3.0,
    "SYNC_LOCK_TTL": 4.0,
    "SYNC_RETRY_BASE_SECONDS": 1.0,
}
PORTS = range(8700, 8800)  # this suite's port range (Redis, labs)


def free_port() -> int:
    return ports_free_port(PORTS)


@dataclass
class Worker:
    proc: subprocess.Popen
    queue: str
    log: Path
    children: list[int] = field(default_factory=list)

    def pool_children(self) -> list[int]:
        path = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        return [int(p) for p in path.read_text().split()] if path.exists() else []

    def kill(self) -> None:
        """SIGKILL the whole worker (no clean shutdown, no ack); its pool children die with their parent."""
        children = self.pool_children()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        for pid in children:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def stop(self) -> None:
        children = self.pool_children()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for pid in children:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-6000:] if self.log.exists() else ""


class Workers:
    """Starts workers on one broker and one queue (the app in this process sends there); stops them all."""

    def __init__(self, broker_url: str, tmp_path: Path, env: dict[str, str]) -> None:
        from config.celery import app

        self.broker_url = broker_url
        self.tmp_path = tmp_path
        self.env = env
        self.queue = f"faults-{os.getpid()}-{time.monotonic_ns()}"
        self.started: list[Worker] = []
        self.app = app
        app.conf.broker_url = broker_url
        app._pool = None
        app.amqp._producer_pool = None
        app.conf.task_always_eager = False
        app.conf.task_default_queue = self.queue

    def start(self, *, pool: str = "solo", env: dict[str, str] | None = None, ready: bool = True) -> Worker:
        n = len(self.started)
        log = self.tmp_path / f"worker-{n}.log"
        full_env = {
            **os.environ,
            "DATABASE_URL": _database_url_for_subprocess(),
            "REDIS_URL": self.broker_url,
            **{k: str(v) for k, v in FAST.items()},
            **self.env,
            **(env or {}),
        }
        args = [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", pool, "--concurrency", "1"]
        args += ["--loglevel", "INFO", "--queues", self.queue, "--hostname", f"{self.queue}-{n}@%h"]
        args += ["--without-mingle", "--without-gossip"]
        with log.open("w") as out:
            proc = subprocess.Popen(args, cwd=REPO, env=full_env, stdout=out, stderr=subprocess.STDOUT)
        worker = Worker(proc, self.queue, log)
        self.started.append(worker)
        if ready:
            name = f"{self.queue}-{n}@{os.uname().nodename}"
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    pytest.fail(f"celery worker exited with {proc.returncode}:\n{worker.output()}")
                if self.app.control.ping(destination=[name], timeout=0.5):
                    break
            else:
                pytest.fail(f"celery worker did not answer a ping within 60 s:\n{worker.output()}")
        return worker

    def close(self) -> None:
        for worker in self.started:
            worker.stop()
        self.app.conf.task_default_queue = "celery"
        self.app.conf.task_always_eager = True
        self.app._pool = None
        self.app.amqp._producer_pool = None


@pytest.fixture
def workers(redis_url, transactional_db, fast_sync_settings, tmp_path):
    fast_sync_settings.REDIS_URL = redis_url
    pool = Workers(redis_url, tmp_path, {})
    yield pool
    pool.close()


@dataclass
class OwnRedis:
    port: int
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        import redis

        def up():
            try:
                return redis.Redis(port=self.port, socket_connect_timeout=0.5).ping()
            except redis.RedisError:
                return False

        wait_for(up, 20, what=f"redis-server on port {self.port}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def register_lab(name: str, lab) -> object:
    from inventory import services

    return services.register_vcenter(
        name=name, url=lab.url, username=lab.username, password=lab.password, verify_tls=False
    )


def inventory_rows(vcenter) -> dict[str, int]:
    from inventory.models import Gpu, GpuConsumer, Host, PciDevice, VirtualMachine

    return {
        "hosts": Host.objects.filter(vcenter=vcenter).count(),
        "gpus": Gpu.objects.filter(host__vcenter=vcenter).count(),
        "pci": PciDevice.objects.filter(host__vcenter=vcenter).count(),
        "vms": VirtualMachine.objects.filter(vcenter=vcenter).count(),
        "consumers": GpuConsumer.objects.filter(gpu__host__vcenter=vcenter).count(),
    }


def wait_lock_freed(vcenter, run) -> None:
    """A run is marked finished inside the vCenter's sync lock, which its worker frees right after: wait for that
    (CI under load once looked in between). A later request's sync may hold the lock by then."""
    from inventory import locks

    def freed() -> bool:
        holder = locks.run_id_of(locks.holder(vcenter.pk))
        return holder is None or holder > run.pk

    wait_for(freed, 10, what=f"run {run.pk} to free the vCenter's lock")
