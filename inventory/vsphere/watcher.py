"""Watch a vCenter for the changes that matter to GPU placement, with ``WaitForUpdatesEx``.

A :class:`Watcher` owns a dedicated PropertyCollector (``CreatePropertyCollector``), a ContainerView of
hosts and VMs, and one PropertyFilter over the change-relevant paths only. :meth:`Watcher.start` reads the
initial full result (and discards its values: the caller syncs fully anyway); :meth:`Watcher.wait` then
returns one :class:`ChangeBatch` per ``WaitForUpdatesEx`` answer, or ``None`` when ``maxWaitSeconds``
passed without a change. The update version is kept opaque (vcsim 0.24.2 answers ``"-"``).

Anything that invalidates the watch -- the session ended (``NotAuthenticated``), the connection dropped, the
collector forgot our version (``InvalidCollectorVersion``), any other fault -- raises :class:`ResyncRequired`:
versions are bound to the session, so the caller must reconnect and sync fully.

pyVmomi only; no Django (the import contract forbids it in ``inventory.vsphere``).
"""

from __future__ import annotations

import http.client
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

from pyVmomi import vim, vmodl

from inventory.vsphere.connection import VCenterError

WATCH_HOST_PROPERTIES = [
    "runtime.connectionState",
    "runtime.inMaintenanceMode",
    "config.graphicsInfo",
    "hardware.pciDevice",
]
WATCH_VM_PROPERTIES = [
    "runtime.powerState",
    "runtime.host",
    "config.hardware.device",
]
DEFAULT_MAX_WAIT_SECONDS = 30

ChangeKind = Literal["enter", "leave", "modify"]
ResyncReason = Literal["session", "connection", "version", "fault"]


class ResyncRequired(VCenterError):
    """The watch is no longer valid: reconnect, create a new watch and sync fully.

    ``reason`` is ``session`` (logged out / session expired), ``connection`` (socket or HTTP failure),
    ``version`` (``InvalidCollectorVersion``) or ``fault`` (any other vSphere fault while waiting).
    """

    retryable = True

    def __init__(self, message: str, reason: ResyncReason) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Change:
    moref: str
    type: str  # "HostSystem" | "VirtualMachine"
    kind: ChangeKind
    paths: tuple[str, ...]

    def describe(self) -> str:
        """``vm-53 runtime.powerState`` / ``host-21 enter``."""
        if self.kind == "modify":
            return f"{self.moref} {','.join(self.paths) or '(no property)'}"
        return f"{self.moref} {self.kind}"


@dataclass(frozen=True)
class ChangeBatch:
    """One ``WaitForUpdatesEx`` answer. ``initial`` marks the full result that primes the watch."""

    version: str
    changes: tuple[Change, ...]
    initial: bool = False

    def __bool__(self) -> bool:
        return bool(self.changes)

    def describe(self, limit: int = 20) -> str:
        parts = [c.describe() for c in self.changes[:limit]]
        if len(self.changes) > limit:
            parts.append(f"... and {len(self.changes) - limit} more")
        return "; ".join(parts)


def _filter_spec(view: vim.view.ContainerView) -> vmodl.query.PropertyCollector.FilterSpec:
    PC = vmodl.query.PropertyCollector
    traversal = PC.TraversalSpec(name="traverseView", path="view", skip=False, type=vim.view.ContainerView)
    return PC.FilterSpec(
        objectSet=[PC.ObjectSpec(obj=view, skip=True, selectSet=[traversal])],
        propSet=[
            PC.PropertySpec(type=vim.HostSystem, pathSet=WATCH_HOST_PROPERTIES, all=False),
            PC.PropertySpec(type=vim.VirtualMachine, pathSet=WATCH_VM_PROPERTIES, all=False),
        ],
        reportMissingObjectsInResults=False,
    )


def parse_update_set(update_set: Any, *, initial: bool = False) -> ChangeBatch:
    """Flatten an ``UpdateSet`` into a :class:`ChangeBatch` (one Change per object update)."""
    changes: list[Change] = []
    for filter_update in update_set.filterSet or []:
        for obj_update in filter_update.objectSet or []:
            paths = sorted({pc.name for pc in obj_update.changeSet or []})
            obj = obj_update.obj
            changes.append(
                Change(
                    moref=obj._moId,
                    type=obj._wsdlName,
                    kind=str(obj_update.kind),  # type: ignore[arg-type]
                    paths=tuple(paths),
                )
            )
    return ChangeBatch(version=str(update_set.version), changes=tuple(changes), initial=initial)


def as_resync(exc: BaseException, where: str = "vCenter") -> ResyncRequired | None:
    """Classify a failure of a watch call; ``None`` means "not a vCenter/connection problem" (a bug)."""
    if isinstance(exc, ResyncRequired):
        return exc
    if isinstance(exc, vim.fault.NotAuthenticated):
        return ResyncRequired(f"{where}: the session ended (not authenticated)", "session")
    if isinstance(exc, vmodl.query.InvalidCollectorVersion):
        return ResyncRequired(f"{where}: the property collector no longer knows our update version", "version")
    if isinstance(exc, socket.timeout | TimeoutError):
        return ResyncRequired(f"{where}: timed out waiting for updates", "connection")
    if isinstance(exc, OSError | http.client.HTTPException | EOFError):
        return ResyncRequired(f"{where}: the connection dropped ({type(exc).__name__})", "connection")
    if isinstance(exc, vmodl.MethodFault):
        return ResyncRequired(f"{where}: vCenter fault {type(exc).__name__} while waiting for updates", "fault")
    return None


class Watcher:
    """A PropertyCollector filter over hosts and VMs; use as a context manager (it cleans up in ``close``)."""

    def __init__(self, si: vim.ServiceInstance, *, where: str = "vCenter") -> None:
        self.si = si
        self.where = where
        self.version: str | None = None
        self._pc: Any = None
        self._view: Any = None
        self._filter: Any = None
        self._waiting = False

    # -- lifecycle -------------------------------------------------------------------------------------

    def __enter__(self) -> Watcher:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            resync = as_resync(exc, self.where)
            if resync is None:
                raise
            raise resync from None

    def start(self) -> ChangeBatch:
        """Create collector, view and filter, and read the initial full result (``version`` = "")."""
        content = self._call(lambda: self.si.content)
        self._pc = self._call(content.propertyCollector.CreatePropertyCollector)
        self._view = self._call(
            content.viewManager.CreateContainerView,
            container=content.rootFolder,
            type=[vim.HostSystem, vim.VirtualMachine],
            recursive=True,
        )
        self._filter = self._call(self._pc.CreateFilter, spec=_filter_spec(self._view), partialUpdates=True)
        changes: list[Change] = []
        version = ""
        while True:  # a real vCenter may truncate a large initial result; vcsim never does
            update_set = self._wait_call(version, max_wait=0)
            if update_set is None:
                break
            batch = parse_update_set(update_set, initial=True)
            changes.extend(batch.changes)
            version = batch.version
            if not getattr(update_set, "truncated", False):
                break
        self.version = version
        return ChangeBatch(version=version, changes=tuple(changes), initial=True)

    def _wait_call(self, version: str, *, max_wait: int) -> Any:
        options = vmodl.query.PropertyCollector.WaitOptions(maxWaitSeconds=max_wait)
        # Only a blocking wait may be interrupted; the initial collection (max_wait=0) answers at once and is
        # followed by the full sync, which a stop request lets finish.
        self._waiting = max_wait > 0
        try:
            return self._call(self._pc.WaitForUpdatesEx, version=version, options=options)
        finally:
            self._waiting = False

    @property
    def waiting(self) -> bool:
        """True while blocked in a waiting ``WaitForUpdatesEx`` (a signal handler may interrupt it safely then)."""
        return self._waiting

    def wait(self, max_wait: int = DEFAULT_MAX_WAIT_SECONDS) -> ChangeBatch | None:
        """Block up to ``max_wait`` seconds; return the next batch of changes, or ``None`` on timeout."""
        if self._pc is None or self.version is None:
            raise RuntimeError("Watcher.start() must run before wait()")
        while True:
            update_set = self._wait_call(self.version, max_wait=max(0, int(max_wait)))
            if update_set is None:
                return None
            batch = parse_update_set(update_set)
            self.version = batch.version
            if batch.changes or not getattr(update_set, "truncated", False):
                return batch if batch.changes else None

    def batches(self, max_wait: int = DEFAULT_MAX_WAIT_SECONDS) -> Iterator[ChangeBatch]:
        """Yield change batches forever (timeouts are skipped); raises :class:`ResyncRequired`."""
        while True:
            batch = self.wait(max_wait)
            if batch is not None:
                yield batch

    def close(self, *, abandon: bool = False) -> None:
        """Destroy filter, view and collector (best effort; the session's logout frees them too).

        ``abandon=True`` skips the server calls, for when a wait was interrupted and the connection may
        still be blocked on it.
        """
        pc, view, flt = self._pc, self._view, self._filter
        self._pc = self._view = self._filter = None
        self.version = None
        if abandon:
            return
        for obj, method in ((flt, "DestroyPropertyFilter"), (view, "DestroyView"), (pc, "DestroyPropertyCollector")):
            if obj is None:
                continue
            try:
                getattr(obj, method)()
            except Exception:  # noqa: S110 - cleanup must not mask the caller's own exception
                pass


def watch(si: vim.ServiceInstance, *, max_wait: int = DEFAULT_MAX_WAIT_SECONDS) -> Iterator[ChangeBatch]:
    """Generator form: yields the initial batch (``initial=True``), then change batches; cleans up on close."""
    with Watcher(si) as watcher:
        yield watcher.start()
        yield from watcher.batches(max_wait)
