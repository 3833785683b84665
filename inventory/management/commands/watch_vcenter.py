"""``manage.py watch_vcenter NAME``: resync a vCenter fully whenever a power state, host or device changes.

Loop: connect, create the watch (``inventory.vsphere.watcher``), sync fully (trigger ``watch``), then wait
for change batches with ``WaitForUpdatesEx``. Changes arriving within ``--debounce`` seconds of the first
one cause a single full resync. Any loss of the watch (session ended, connection dropped, invalid collector
version, a retryable sync failure) leads to a reconnect with exponential backoff and a full resync,
because update versions are bound to the session. Wrong credentials / TLS problems stop the command (they
do not fix themselves, and retrying a wrong password can lock the account). SIGINT/SIGTERM exit cleanly.

The watch is created *before* the sync, so a change made while the sync runs is reported afterwards rather
than lost.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import signal
import threading
import time
from types import FrameType
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.db import close_old_connections

from inventory import services
from inventory.management.base import InventoryCommand
from inventory.management.vcenters import resolve_vcenter
from inventory.models import SyncRun
from inventory.vsphere.connection import Endpoint, VCenterError, connect
from inventory.vsphere.watcher import Change, ResyncRequired, Watcher

logger = logging.getLogger("inventory.watch")


class _Stopped(BaseException):
    """Raised by the signal handler to leave a blocking ``WaitForUpdatesEx`` (a BaseException so that
    pyVmomi's and our own ``except Exception`` blocks let it through)."""


class _LimitReached(Exception):
    pass


# The longest wait, debounce or reconnect delay taken. A longer WaitForUpdatesEx also stretches the socket timeout
# (it must outlast the wait), so a dead connection would go unnoticed for that long.
MAX_SECONDS = 3600


def _check_options(options: dict[str, Any]) -> None:
    """Refuse a number out of range (NaN included), naming the option; nothing is adjusted silently."""
    seconds = {
        "max_wait": (1, MAX_SECONDS),
        "debounce": (0, MAX_SECONDS),
        "retry_initial": (0, MAX_SECONDS),
        "retry_max": (options["retry_initial"], MAX_SECONDS),
    }
    for key, (low, high) in seconds.items():
        value = options[key]
        if not low <= value <= high:  # NaN compares false
            bound = f"--retry-initial ({low:g})" if key == "retry_max" else f"{low:g}"
            shown = value if isinstance(value, int) else f"{value:g}"
            raise CommandError(f"--{key.replace('_', '-')}: must be between {bound} and {high} seconds, not {shown}")
    for key in ("max_cycles", "max_resyncs"):
        if options[key] is not None and options[key] < 1:
            raise CommandError(f"--{key.replace('_', '-')}: must be 1 or more, not {options[key]}")


class Command(InventoryCommand):
    help = "Watch a vCenter with WaitForUpdatesEx and resync it fully when power states, hosts or devices change."

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stop = threading.Event()  # set it (or send SIGINT/SIGTERM) to end the loop
        self._watcher: Watcher | None = None

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="the vCenter's name (see `manage.py vcenter list`)")
        parser.add_argument("--max-wait", type=int, default=30, help="seconds per WaitForUpdatesEx (default 30)")
        parser.add_argument(
            "--debounce", type=float, default=2.0, help="changes within this many seconds cause one resync (default 2)"
        )
        parser.add_argument("--retry-initial", type=float, default=1.0, help="first reconnect delay in s (default 1)")
        parser.add_argument("--retry-max", type=float, default=60.0, help="longest reconnect delay in s (default 60)")
        parser.add_argument(
            "--max-cycles",
            type=int,
            default=None,
            help="exit after N cycles (a cycle is one WaitForUpdatesEx answer or one reconnect attempt); for tests",
        )
        parser.add_argument(
            "--max-resyncs", type=int, default=None, help="exit after N change-triggered resyncs; for tests"
        )

    # ------------------------------------------------------------------------------------------ entry

    def handle(self, *args: Any, name: str, **options: Any) -> None:
        vcenter = resolve_vcenter(name, option="vcenter name")
        _check_options(options)
        try:
            endpoint = services.endpoint_for(vcenter)
        except services.PasswordUnreadable as exc:
            raise CommandError(exc.message) from None

        self.vcenter = vcenter
        # WaitForUpdatesEx legitimately stays silent for --max-wait seconds: the socket timeout must outlast it.
        self.endpoint = dataclasses.replace(endpoint, timeout=max(endpoint.timeout, options["max_wait"] + 30))
        self.max_wait: int = options["max_wait"]
        self.debounce: float = options["debounce"]
        self.retry_initial: float = options["retry_initial"]
        self.retry_max: float = options["retry_max"]
        self.max_cycles: int | None = options["max_cycles"]
        self.max_resyncs: int | None = options["max_resyncs"]
        self.cycles = 0
        self.resyncs = 0  # change-triggered resyncs
        self.reconnects = 0

        previous = self._install_signal_handlers()
        try:
            self._run()
        except _LimitReached:
            pass
        finally:
            self._restore_signal_handlers(previous)
            close_old_connections()
        logger.info(
            "watch of vCenter %s ended after %d cycle(s), %d change-triggered resync(s), %d reconnect(s)",
            vcenter.name,
            self.cycles,
            self.resyncs,
            self.reconnects,
        )

    # ------------------------------------------------------------------------------------------ signals

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        logger.info("watch of vCenter %s: %s received, stopping", self.vcenter.name, signal.Signals(signum).name)
        self.stop.set()
        watcher = self._watcher
        if watcher is not None and watcher.waiting:
            raise _Stopped  # leave the blocking wait now; a running sync is allowed to finish instead

    def _install_signal_handlers(self) -> dict[int, Any]:
        if threading.current_thread() is not threading.main_thread():
            return {}  # signal handlers can only be set in the main thread; use self.stop there
        previous = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, self._on_signal)
        return previous

    @staticmethod
    def _restore_signal_handlers(previous: dict[int, Any]) -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    # ------------------------------------------------------------------------------------------ loop

    def _count_cycle(self) -> None:
        self.cycles += 1
        if self.max_cycles is not None and self.cycles >= self.max_cycles:
            raise _LimitReached

    def _run(self) -> None:
        failures = 0
        reason = "start"
        while not self.stop.is_set():
            if failures:
                delay = min(self.retry_max, self.retry_initial * 2 ** (failures - 1))
                self.reconnects += 1
                logger.warning(
                    "watch of vCenter %s: reconnect attempt %d in %.1f s", self.vcenter.name, failures, delay
                )
                if self.stop.wait(delay):
                    return
            try:
                self._session(reason)
                return  # stopped or a limit was reached inside the session
            except _Stopped:
                return
            except ResyncRequired as exc:
                logger.warning("watch of vCenter %s lost (%s): %s", self.vcenter.name, exc.reason, exc.message)
                reason = "reconnect"
            except VCenterError as exc:
                if not exc.retryable:
                    raise CommandError(exc.message) from None
                logger.warning("watch of vCenter %s: %s", self.vcenter.name, exc.message)
                reason = "reconnect"
            failures += 1
            self._count_cycle()

    def _session(self, reason: str) -> None:
        """One connection: create the watch, sync fully, then resync on changes until something breaks."""
        endpoint: Endpoint = self.endpoint
        with connect(endpoint) as si:
            watcher = Watcher(si, where=endpoint.url)
            self._watcher = watcher
            abandon = False
            try:
                initial = watcher.start()
                logger.info(
                    "watching vCenter %s (%s): %d hosts and VMs, full sync (%s)",
                    self.vcenter.name,
                    endpoint.url,
                    len(initial.changes),
                    reason,
                )
                self._resync(f"full sync after {reason}")
                self._wait_loop(watcher)
            except _Stopped:
                abandon = True  # the connection is stuck in the interrupted wait; logout frees the collector
                raise
            finally:
                self._watcher = None
                watcher.close(abandon=abandon)

    def _wait_loop(self, watcher: Watcher) -> None:
        pending: list[Change] = []
        first_at = 0.0
        while not self.stop.is_set():
            if pending:
                remaining = self.debounce - (time.monotonic() - first_at)
                if remaining <= 0:
                    self._resync(f"{len(pending)} change(s)")
                    pending = []
                    self.resyncs += 1
                    if self.max_resyncs is not None and self.resyncs >= self.max_resyncs:
                        raise _LimitReached
                    continue
                wait_s = max(1, math.ceil(remaining))
            else:
                wait_s = self.max_wait
            batch = watcher.wait(wait_s)
            if batch is not None:
                for change in batch.changes:
                    logger.info("vCenter %s changed: %s", self.vcenter.name, change.describe())
                if not pending:
                    first_at = time.monotonic()
                pending.extend(batch.changes)
                if self.debounce == 0:
                    first_at = time.monotonic() - 1  # resync right away
            self._count_cycle()

    def _resync(self, why: str) -> SyncRun:
        close_old_connections()
        try:
            run = services.sync_vcenter(vcenter=self.vcenter, trigger=SyncRun.Trigger.WATCH)
        except services.SyncSkipped as exc:  # another trigger's sync is pending: resync after it
            raise ResyncRequired(f"sync {exc.run.error}", "connection") from None
        except services.SyncFailed as exc:
            if exc.error.retryable:
                raise ResyncRequired(f"sync failed: {exc.error.message}", "connection") from None
            raise CommandError(f"sync of vCenter {self.vcenter.name} failed: {exc.error.message}") from None
        logger.info(
            "vCenter %s resynced (%s): run %s in %.1f s, %s",
            self.vcenter.name,
            why,
            run.pk,
            run.duration_s or 0.0,
            {k: v for k, v in (run.counts or {}).items() if v},
        )
        return run
