"""Planning against the stored inventory or an nvidia-smi capture, and reservations of accepted plans.

The engine (``placement.engine``) is pure; this module feeds it from the database, keeps accepted plans
as reservations (so concurrent requests do not double-book) and reconciles them with what vCenter reports.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections import Counter
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Subquery
from django.utils import timezone

from gpucatalog.profiles import ProfileNameError, parse_profile_name
from inventory.models import Gpu, GpuConsumer, Host, VCenter, VirtualMachine
from placement.engine.evacuate import EvacuationPlan, VmSize, plan_evacuation
from placement.engine.explain import hosts_phrase
from placement.engine.model import Fabric
from placement.engine.plan import plan
from placement.engine.request import VSPHERE_PICKS_GPU, PlacementRequest, RequestError
from placement.engine.result import Candidate, Plan
from placement.models import Reservation, ReservationItem, ReservationRequest
from placement.selectors import (  # noqa: F401
    RESERVATION_PREFIX,
    fabric_snapshot,
    reservation_sizes,
    resolve_clusters,
    resolve_host,
    vm_sizes,
)
from placement.validators import ttl_problem, vm_name_problem

RESERVE_ATTEMPTS = 6  # whole re-plans of one reserve() call when its hosts filled up meanwhile
IDEMPOTENCY_KEY_HOURS = 24  # how long a reserve's Idempotency-Key answers its retries (as Stripe's keys)


class ReservationConflict(Exception):
    """The accepted candidate is no longer free: another plan or VM took (part of) it. Plan again.

    ``code`` is what the API's 409 carries so a client can branch without reading the sentence: raised as such
    (``contention``) it means concurrent reservations kept taking the chosen GPUs: retrying later may work."""

    code = "contention"


class NoCapacity(ReservationConflict):
    """No host in scope can take the request (the message says why): retrying the same request will not help."""

    code = "no_capacity"


class CandidateChanged(ReservationConflict):
    """The candidate the caller chose (its host and GPUs) is no longer what that host offers for the request."""

    code = "changed"


class ReservationNotActive(Exception):
    """A release or renewal of a reservation whose hold already ended: it expired, was consumed or (renewal only)
    was released.

    ``code`` is the reservation's status (``expired``, ``consumed`` or ``released``)."""

    REASONS = {
        Reservation.Status.CONSUMED: "was consumed: a sync found its VM holding GPUs on its host",
        Reservation.Status.RELEASED: "was released: its GPUs are free for other plans",
    }

    def __init__(self, reservation: Reservation, status: str, *, action: str = "released") -> None:
        self.reservation = reservation
        self.status = self.code = status
        reason = self.REASONS.get(
            status,
            f"expired at {timezone.localtime(reservation.expires_at):%Y-%m-%d %H:%M %Z}: its GPUs were free for "
            "other plans since then",
        )
        super().__init__(f"reservation #{reservation.pk} for {reservation.vm_name} {reason}; nothing {action}")


class NameTaken(RequestError):
    """``vm_name`` already holds the active reservation ``reservation`` in the host's vCenter. A RequestError naming
    ``vm_name`` for the pages and the command; the API answers it with 409 ``name_taken`` and the reservation's id,
    so that a pipeline can tell it from bad input (a retry whose first request got through finds it there)."""

    code = "name_taken"

    def __init__(self, message: str, *, reservation: Reservation) -> None:
        super().__init__("vm_name", message)
        self.reservation = reservation


class VmNameInUse(RequestError):
    """``vm_name`` is a live VM in the host's vCenter that already uses GPUs. A RequestError naming ``vm_name`` for
    the pages and the command; the API answers it with 409 ``name_in_use`` and the VM's id (``/api/vms/{id}/``), so a
    pipeline can tell a name clash with a running VM from bad input."""

    code = "name_in_use"

    def __init__(self, message: str, *, vm) -> None:
        super().__init__("vm_name", message)
        self.vm = vm


class IdempotencyKeyReused(Exception):
    """An ``Idempotency-Key`` the user already sent with another body: nothing reserved."""

    code = "idempotency_key_reused"

    def __init__(self, record: ReservationRequest) -> None:
        self.record = record
        ids = ", ".join(f"#{pk}" for pk in record.reservations.order_by("pk").values_list("pk", flat=True))
        super().__init__(
            f"Idempotency-Key {record.key!r} was sent at {timezone.localtime(record.created):%Y-%m-%d %H:%M %Z} "
            f"with another body (it made reservation {ids or '(none left)'}): send a new key for a new request, "
            "or the same body to get that answer again"
        )


def default_consumption(profile: str | None) -> str:
    if not profile:
        return "passthrough"
    if "@" in profile:
        return "device-group"
    try:
        return "mig" if parse_profile_name(profile).is_mig else "vgpu"
    except ProfileNameError:
        return "vgpu"  # validation names the profile problem


def build_request(**fields) -> PlacementRequest:
    """A validated request; raises RequestError naming the field."""
    allowed = {f.name for f in dataclasses.fields(PlacementRequest)}
    unknown = sorted(set(fields) - allowed)
    if unknown:
        raise RequestError(unknown[0], "is not a request field")
    if "clusters" in fields and fields["clusters"] is not None:
        fields["clusters"] = tuple(fields["clusters"])
    try:
        request = PlacementRequest(**{k: v for k, v in fields.items() if v is not None})
    except TypeError as exc:
        raise RequestError("request", str(exc)) from None
    return request.validate()


def expire_reservations() -> int:
    """Mark active reservations past their TTL expired (reads first: when none is due nothing is written)."""
    now = timezone.now()
    due = Reservation.objects.filter(status=Reservation.Status.ACTIVE, expires_at__lte=now)
    if not due.exists():
        return 0
    return due.update(status=Reservation.Status.EXPIRED, closed_at=now)


def plan_cluster(*, request: PlacementRequest, clusters: list[str] | None = None, limit: int | None = None) -> Plan:
    """Rank every host of the clusters in scope (all when none). A cluster is named by its id, "name (vCenter)"
    or a name only one vCenter uses (``selectors.resolve_clusters``: RequestError otherwise)."""
    scope = resolve_clusters(clusters or request.clusters or ())
    expire_reservations()
    if not scope:
        return plan(fabric_snapshot(), request, limit=limit)
    # the snapshot holds exactly the clusters in scope; the engine's own scope filter compares names only
    fabric = fabric_snapshot(cluster_ids=[c.pk for c in scope])
    return plan(fabric, dataclasses.replace(request, clusters=()), limit=limit)


def plan_host_evacuation(
    *, host_name: str = "", vcenter: str | None = None, host: Host | None = None
) -> EvacuationPlan:
    """Where every GPU VM of the host goes if it leaves, as one joint assignment with each VM's vCPUs and
    memory admitted (``engine.evacuate``). The host is given as an object (the page and the API, by primary key)
    or by name, resolved per vCenter (RequestError naming ``evacuate`` and the matching vCenters when
    ambiguous)."""
    if host is None:
        host = resolve_host(name=host_name, vcenter=vcenter, field="evacuate")
    if host.stale:
        raise RequestError("evacuate", gone_host_reason(host))
    expire_reservations()
    fabric = fabric_snapshot(clusters=[host.cluster.name] if host.cluster else None, vcenter=host.vcenter.name)
    if not any(h.host_id == host.pk for h in fabric.hosts):  # a host outside any cluster
        fabric = Fabric((*fabric.hosts, *fabric_snapshot(host_ids=[host.pk]).hosts))
    sizes = {vm: VmSize(vcpus, memory_mb, power) for vm, (vcpus, memory_mb, power) in vm_sizes(host_id=host.pk).items()}
    # a reservation holds the vCPUs and memory of the VM it is for, as plans count it (selectors.usage_by_host)
    sizes |= {held: VmSize(vcpus, memory_mb) for held, (vcpus, memory_mb) in reservation_sizes(host_id=host.pk).items()}
    return plan_evacuation(fabric, host.name, host_id=host.pk, sizes=sizes)


def gone_host_reason(host: Host) -> str:
    """Why a stale host (gone from vCenter at the last sync) has nothing to evacuate: it runs no VM."""
    since = f"{timezone.localtime(host.last_seen):%Y-%m-%d %H:%M}" if host.last_seen else "an earlier sync"
    return (
        f"host {host.name} is stale since {since}: gone from vCenter {host.vcenter.name} (last seen by the sync of "
        "that time), so it runs no VMs to move"
    )


def _same_choice(a: Candidate, b: Candidate) -> bool:
    def key(c: Candidate):
        return sorted((g.pci_id, g.placement_gb, g.mig_slot) for g in c.gpus)

    return a.ident == b.ident and key(a) == key(b)


def check_reservation_input(vm_name: str, ttl_minutes: int | None, *, replicas: int = 1) -> int:
    """The reservation's lifetime in minutes; raises RequestError naming ``vm_name`` or ``ttl_minutes``."""
    problem = vm_name_problem(vm_name or "", replicas=replicas)
    if problem:
        raise RequestError("vm_name", problem)
    problem = ttl_problem(ttl_minutes)
    if problem:
        raise RequestError("ttl_minutes", problem)
    return ttl_minutes if ttl_minutes is not None else settings.RESERVATION_TTL_MINUTES


def _lock_host(candidate: Candidate) -> Host:
    """The candidate's host row, locked (SELECT ... FOR UPDATE; SQLite write transactions are IMMEDIATE)."""
    hosts = Host.objects.select_for_update()
    if candidate.host_id is not None:
        host = hosts.filter(pk=candidate.host_id).first()
    else:  # a candidate made before hosts carried their key: the name must be unique
        matches = list(
            hosts.filter(name=candidate.host, **({"vcenter__name": candidate.vcenter} if candidate.vcenter else {}))
        )
        if len(matches) > 1:
            raise RequestError("host_id", f"host {candidate.host!r} exists in several vCenters: plan again")
        host = matches[0] if matches else None
    if host is None:
        raise CandidateChanged(f"host {candidate.host} is no longer in the inventory: plan again")
    return host


def _replan_host(host: Host, request: PlacementRequest) -> Plan:
    """The host alone, planned again with every active reservation (call with the host row locked)."""
    single = dataclasses.replace(request, vms=1, anti_affinity=False, clusters=())
    return plan(fabric_snapshot(host_ids=[host.pk]), single)


def _check_name_free(vm_name: str, host: Host) -> None:
    """RequestError naming ``vm_name`` when the name is taken in the host's vCenter (names repeat across vCenters:
    the same name in another vCenter is another VM): by an active reservation (NameTaken), or by a live VM that
    holds a GPU (passthrough or vGPU). The reservation's script would find that VM by name, move it and add
    devices to it, and the reservation would never be consumed. A VM created without GPUs (a shell waiting for its
    devices) is what a reservation may name: the sync that shows it on its host with the GPUs consumes the
    reservation."""
    held = (
        Reservation.objects.filter(vm_name=vm_name, vcenter_id=host.vcenter_id, status=Reservation.Status.ACTIVE)
        .select_related("host", "vcenter")
        .first()
    )
    if held is not None:
        raise NameTaken(
            f"{vm_name!r} already holds an active reservation in vCenter {held.vcenter_label} (#{held.pk} on "
            f"{held.host_label}): release it or choose another name",
            reservation=held,
        )
    uses = list(
        GpuConsumer.objects.filter(vm__name=vm_name, vm__vcenter_id=host.vcenter_id, vm__stale=False)
        .select_related("vm__host", "vm__vcenter", "gpu__host", "gpu__pci_device")
        .order_by("gpu__host__name", "gpu__pci_device__pci_id")
    )
    if uses:
        vm = uses[0].vm
        where = vm.host.name if vm.host is not None else uses[0].gpu.host.name
        gpus = ", ".join(f"{u.gpu.pci_device.pci_id}{f' ({u.profile})' if u.profile else ''}" for u in uses[:4])
        more = f" and {len(uses) - 4} more" if len(uses) > 4 else ""
        raise VmNameInUse(
            f"{vm_name!r} is a VM in vCenter {vm.vcenter.name} on {where} that already uses GPU"
            f"{'s' if len(uses) > 1 else ''} {gpus}{more}: a reservation under its name would move it and add "
            "devices to it; choose the name of a new VM (or of one created without GPUs)",
            vm=vm,
        )


def _create_reservation(
    *, host: Host, request: PlacementRequest, candidate: Candidate, vm_name: str, ttl: int, user
) -> Reservation:
    _check_name_free(vm_name, host)
    try:
        with transaction.atomic():  # a savepoint: a concurrent reservation of the name is told apart below
            reservation = Reservation.objects.create(
                vm_name=vm_name,
                host=host,
                vcenter_id=host.vcenter_id,
                host_name=host.name,
                vcenter_name=host.vcenter.name,
                request=dataclasses.asdict(request),
                candidate=candidate.to_dict(),
                expires_at=timezone.now() + timedelta(minutes=ttl),
                created_by=user if getattr(user, "is_authenticated", False) else None,
            )
    except IntegrityError:
        _check_name_free(vm_name, host)
        raise
    wanted = {g.pci_id for g in candidate.gpus}
    gpus = {
        pci: pk
        for pk, pci in Gpu.objects.filter(host=host, stale=False).values_list("pk", "pci_device__pci_id")
        if pci in wanted
    }
    ReservationItem.objects.bulk_create(
        ReservationItem(
            reservation=reservation,
            gpu_id=gpus[g.pci_id],
            pci_id=g.pci_id,
            kind=request.consumption,
            profile=g.profile or "",
            placement_gb=g.placement_gb,
            mig_slot=g.mig_slot,
        )
        for g in candidate.gpus
    )
    return reservation


def accept_candidate(
    *,
    request: PlacementRequest,
    candidate: Candidate,
    vm_name: str,
    ttl_minutes: int | None = None,
    user=None,
) -> Reservation:
    """Reserve the candidate's GPUs for ``vm_name``; exactly one of several overlapping accepts wins.

    The host (by ``candidate.host_id``) is locked, then planned again with every active reservation: the
    candidate must still be what the engine would choose, or the accept fails with ReservationConflict.
    """
    ttl = check_reservation_input(vm_name, ttl_minutes)
    request.validate()
    with transaction.atomic():
        host = _lock_host(candidate)
        expire_reservations()
        _check_name_free(vm_name, host)
        again = _replan_host(host, request)
        if not again.candidates or not _same_choice(again.candidates[0], candidate):
            reasons = "; ".join(r for rej in again.rejected for r in rej.reasons[:2])
            raise CandidateChanged(
                f"{candidate.host} changed since the plan was made"
                + (f" ({reasons})" if reasons else "")
                + ": plan again"
            )
        return _create_reservation(host=host, request=request, candidate=candidate, vm_name=vm_name, ttl=ttl, user=user)


def reserve_planned(
    *,
    request: PlacementRequest,
    host_id: int,
    pci_ids: list[str],
    vm_name: str,
    ttl_minutes: int | None = None,
    user=None,
) -> Reservation:
    """Reserve the candidate a plan showed (host ``host_id`` with exactly the GPUs ``pci_ids``), or nothing.

    As the plan page's reserve: the request is planned again and the host's candidate must still have those
    GPUs, then ``accept_candidate`` locks the host and checks it once more. Otherwise CandidateChanged says what
    the host offers now (or why it offers nothing) and who holds the chosen GPUs. One VM only: replicas are
    placed jointly, so one chosen candidate does not describe them (RequestError naming ``host_id``)."""
    if request.vms != 1:
        raise RequestError(
            "host_id",
            f"reserves one chosen candidate, so only with vms 1 (this request has vms {request.vms}): replicas are "
            "placed jointly; leave host_id and pci_ids out, or reserve each VM of the plan's assignment with vms 1",
        )
    request.validate()
    check_reservation_input(vm_name, ttl_minutes)
    host = Host.objects.select_related("vcenter", "cluster").filter(pk=host_id).first()
    if host is None:
        raise RequestError("host_id", f"no host with id {host_id} in the inventory")
    scope = resolve_clusters(request.clusters or ())
    if scope and host.cluster_id not in {c.pk for c in scope}:
        where = f"cluster {host.cluster.name}" if host.cluster else "no cluster"
        raise RequestError(
            "host_id",
            f"host {host.name} (id {host.pk}, vCenter {host.vcenter.name}) is in {where}, outside the clusters of "
            "this request",
        )
    wanted = sorted(pci_ids)
    fresh = plan_cluster(request=request)
    offer = next((c for c in fresh.candidates if c.host_id == host.pk), None)
    if offer is None or sorted(g.pci_id for g in offer.gpus) != wanted:
        raise CandidateChanged(_not_offered(host, wanted, offer, fresh, request))
    return accept_candidate(request=request, candidate=offer, vm_name=vm_name, ttl_minutes=ttl_minutes, user=user)


def _not_offered(host: Host, wanted: list[str], offer: Candidate | None, fresh: Plan, request: PlacementRequest) -> str:
    """Why ``host`` no longer offers the GPUs ``wanted``: what it offers instead (or its rejection reasons), and who
    holds those GPUs now. Where vSphere picks the GPU at power-on (vGPU, MIG, Dynamic DirectPath), the GPUs are the
    prediction of that pick, which a reservation cannot choose: said so rather than blaming the VMs on them."""
    why = []
    offered = ", ".join(sorted(g.pci_id for g in offer.gpus)) if offer is not None else ""
    if offer is not None and request.consumption in VSPHERE_PICKS_GPU:
        gpus = "GPUs" if len(wanted) > 1 else "GPU"
        return (
            f"{host.name} (id {host.pk}, vCenter {host.vcenter.name}) does not give this request GPUs "
            f"{', '.join(wanted)}: for a {request.consumption} VM vSphere picks the {gpus} at power-on, and on this "
            f"host now it would pick {offered}; reserve the plan's candidate as offered"
        )
    if offer is not None:
        why.append(f"it now offers {offered}")
    else:
        rejection = next((r for r in fresh.rejected if r.host_id == host.pk), None)
        if rejection is not None:
            why.append("it takes no VM of this request now (" + "; ".join(rejection.reasons[:3]) + ")")
        else:
            why.append("it is not planned for this request now")
    states = fabric_snapshot(host_ids=[host.pk]).hosts
    for pci_id in wanted:
        if not states:
            break
        try:
            gpu = states[0].gpu(pci_id)
        except KeyError:
            why.append(f"GPU {pci_id} is not on the host (now)")
            continue
        holders = [c.holder for c in gpu.active_consumers]
        if holders:
            why.append(f"GPU {pci_id} is used by {', '.join(holders[:4])}" + (" and more" if len(holders) > 4 else ""))
    return (
        f"{host.name} (id {host.pk}, vCenter {host.vcenter.name}) no longer offers GPUs {', '.join(wanted)} for this "
        f"request: {'; '.join(why)}; plan again"
    )


def replica_names(vm_name: str, vms: int) -> list[str]:
    """VM names of ``vms`` replicas: the name itself for one VM, ``name-1`` .. ``name-N`` otherwise."""
    return [vm_name] if vms == 1 else [f"{vm_name}-{i}" for i in range(1, vms + 1)]


# A 409 names at most this many distinct rejection reasons (and how many hosts the others cover).
WHY_REASONS_SHOWN = 8


def _wrong_board_prefix(request: PlacementRequest) -> str | None:
    """How the engine's board filter begins its reason for a host without the requested board's GPUs."""
    try:
        board = request.target_board
    except Exception:  # an unreadable profile: validate() has refused it before any plan
        return None
    return f"no {board.key} GPUs (host has " if board is not None else None


def why_nothing_fits(result: Plan, request: PlacementRequest) -> str:
    """One line for a 409: the unplaced replicas, or every distinct first rejection reason with its number of hosts.

    Hosts that have the requested board come first: theirs is the reason that matters ("8 of 8 GPUs are at the
    same-size maximum"), not that the other hosts carry other boards. Past WHY_REASONS_SHOWN reasons the line
    says how many hosts were left out."""
    if result.unplaced:
        more = len(result.unplaced) - 3
        return "; ".join(result.unplaced[:3]) + (f"; and {more} more" if more > 0 else "")
    counts = Counter(r.reasons[0] for r in result.rejected if r.reasons)
    wrong_board = _wrong_board_prefix(request)
    ordered = sorted(
        counts.items(), key=lambda item: (wrong_board is not None and item[0].startswith(wrong_board), -item[1])
    )
    parts = [hosts_phrase(n, reason) for reason, n in ordered[:WHY_REASONS_SHOWN]]
    left = ordered[WHY_REASONS_SHOWN:]
    if left:
        hosts = sum(n for _, n in left)
        parts.append(f"and {hosts} more host{'' if hosts == 1 else 's'} for {len(left)} other reason"
                     f"{'' if len(left) == 1 else 's'}")  # fmt: skip
    k = request.gpus_per_vm
    return f"no host can take {k} GPU{'' if k == 1 else 's'} per VM ({'; '.join(parts) or 'no hosts in scope'})"


def reserve(*, request: PlacementRequest, vm_name: str, ttl_minutes: int | None = None, user=None) -> list[Reservation]:
    """Plan, then reserve the best placement of all ``request.vms`` replicas in one transaction (all or none).

    Replica names come from ``replica_names``. Each chosen host is locked (in primary-key order, so
    concurrent reservations cannot deadlock) and planned again with every active reservation: the host's
    current best GPUs are reserved, so a request that lost GPUs to a concurrent one takes the next free ones
    on the same host. When a chosen host has no room left the whole plan is made again, at most
    RESERVE_ATTEMPTS times. Raises NoCapacity (nothing fits, with the reasons), ReservationConflict (still
    contended after the last attempt) or RequestError (bad input, naming the field).
    """
    request.validate()
    ttl = check_reservation_input(vm_name, ttl_minutes, replicas=request.vms)
    names = replica_names(vm_name, request.vms)  # each checked in the vCenter of its host (_create_reservation)
    last = ""
    for _attempt in range(RESERVE_ATTEMPTS):
        result = plan_cluster(request=request)
        chosen = list(result.assignment) if request.vms > 1 else list(result.candidates[:1])
        if len(chosen) < request.vms:
            raise NoCapacity(why_nothing_fits(result, request))
        try:
            with transaction.atomic():
                return _reserve_chosen(request, chosen, names, ttl, user)
        except ReservationConflict as exc:
            last = str(exc)
    raise ReservationConflict(f"still contended after {RESERVE_ATTEMPTS} attempts ({last})")


def _reserve_chosen(
    request: PlacementRequest, chosen: list[Candidate], names: list[str], ttl: int, user
) -> list[Reservation]:
    locked = {}
    for candidate in sorted(chosen, key=lambda c: (c.host_id is None, c.host_id or 0, c.host)):
        if candidate.ident not in locked:
            locked[candidate.ident] = _lock_host(candidate)
    expire_reservations()
    out = []
    for candidate, name in zip(chosen, names, strict=True):
        host = locked[candidate.ident]
        again = _replan_host(host, request)  # sees the replicas reserved just before, in this transaction
        if again.best is None:
            why = "; ".join(r for rej in again.rejected for r in rej.reasons[:2])
            raise ReservationConflict(f"{candidate.host} has no room left for replica {name} ({why})")
        out.append(
            _create_reservation(host=host, request=request, candidate=again.best, vm_name=name, ttl=ttl, user=user)
        )
    return out


def release_reservation(*, reservation: Reservation, strict: bool = False) -> str:
    """Release an active reservation; return its status afterwards (``released``, or why it could not be).

    Releasing a released one changes nothing (a repeated release is not an error). An expired or consumed one
    stays as it is; with ``strict`` that raises ReservationNotActive instead, so that an API client learns its
    hold lapsed before it created the VM (the page shows the status anyway)."""
    now = timezone.now()
    released = Reservation.objects.filter(
        pk=reservation.pk, status=Reservation.Status.ACTIVE, expires_at__gt=now
    ).update(status=Reservation.Status.RELEASED, closed_at=now)
    if released:
        return Reservation.Status.RELEASED
    current = Reservation.objects.filter(pk=reservation.pk).first() or reservation
    status = current.status_now
    if strict and status in (Reservation.Status.EXPIRED, Reservation.Status.CONSUMED):
        raise ReservationNotActive(current, status)
    return status


def renew_reservation(*, reservation: Reservation, ttl_minutes: int) -> Reservation:
    """Hold an active reservation until now + ``ttl_minutes`` (the bounds of reserving); return it as stored.

    Only an active, unexpired hold is renewed (one conditional UPDATE, so a renewal racing the expiry or a release
    cannot revive it): otherwise ReservationNotActive names its status (``expired``, ``consumed`` or
    ``released``). RequestError naming ``ttl_minutes`` for a lifetime outside the bounds."""
    problem = ttl_problem(ttl_minutes) if ttl_minutes is not None else "is required: the new lifetime in minutes"
    if problem:
        raise RequestError("ttl_minutes", problem)
    now = timezone.now()
    renewed = Reservation.objects.filter(
        pk=reservation.pk, status=Reservation.Status.ACTIVE, expires_at__gt=now
    ).update(expires_at=now + timedelta(minutes=ttl_minutes))
    current = Reservation.objects.select_related("host", "vcenter").get(pk=reservation.pk)
    if not renewed:
        status = current.status_now
        raise ReservationNotActive(
            current, Reservation.Status.EXPIRED if status == Reservation.Status.ACTIVE else status, action="renewed"
        )
    return current


def idempotency_body_hash(body: dict) -> str:
    """SHA-256 of ``body`` as canonical JSON (sorted keys, no spaces): equal for equal bodies in any key order."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def reserve_once(
    *, key: str | None, body_hash: str, user, make: Callable[[], list[Reservation]]
) -> tuple[list[Reservation], bool]:
    """Run ``make`` (a reserve) once per ``user`` and Idempotency-Key ``key``: return its reservations and whether
    they are a replay of an earlier request's.

    The key is stored first, in the transaction that makes the reservations, so a failed reserve leaves no key
    (its retry reserves again) and a concurrent request with the same key waits on the key's unique constraint
    (PostgreSQL; SQLite serialises write transactions anyway) and then answers the first one's reservations: one
    hold, never two. The same key with another ``body_hash`` raises IdempotencyKeyReused. A key older than
    IDEMPOTENCY_KEY_HOURS is forgotten (deleted) when it comes again. Without a key ``make`` just runs."""
    if key is None:
        return make(), False
    with transaction.atomic():
        cutoff = timezone.now() - timedelta(hours=IDEMPOTENCY_KEY_HOURS)
        ReservationRequest.objects.filter(created_by=user, key=key, created__lte=cutoff).delete()
        try:
            with transaction.atomic():
                record = ReservationRequest.objects.create(key=key, created_by=user, body_hash=body_hash)
        except IntegrityError:
            record = ReservationRequest.objects.get(created_by=user, key=key)
            if record.body_hash != body_hash:
                raise IdempotencyKeyReused(record) from None
            replay = list(record.reservations.select_related("host", "vcenter").order_by("pk"))
            if replay:
                return replay, True
            # its reservations were deleted (by hand): nothing to answer, so the key starts again
            record.delete()
            record = ReservationRequest.objects.create(key=key, created_by=user, body_hash=body_hash)
        reservations = make()
        Reservation.objects.filter(pk__in=[r.pk for r in reservations]).update(idempotency_request=record)
        for reservation in reservations:
            reservation.idempotency_request = record
        return reservations, False


def _keep_history(reservations, *, reason: str) -> int:
    """Copy the host names and the GPUs' PCI addresses onto ``reservations`` (their foreign keys are about to be
    set to NULL) and release the ones active now with ``reason``; return how many were released."""
    reservations.filter(host__isnull=False).update(
        host_name=Subquery(Host.objects.filter(pk=OuterRef("host_id")).values("name")[:1])
    )
    ReservationItem.objects.filter(reservation__in=reservations.values("pk"), pci_id="", gpu__isnull=False).update(
        pci_id=Subquery(Gpu.objects.filter(pk=OuterRef("gpu_id")).values("pci_device__pci_id")[:1])
    )
    return reservations.filter(status=Reservation.Status.ACTIVE, expires_at__gt=timezone.now()).update(
        status=Reservation.Status.RELEASED, closed_at=timezone.now(), close_reason=reason
    )


def removed_vcenter_reason(vcenter: VCenter) -> str:
    return f"vCenter {vcenter.name} was removed from the advisor"


def close_for_removed_vcenter(*, vcenter: VCenter) -> int:
    """Before ``vcenter`` is deleted: its reservations keep their names, its active ones are released."""
    reservations = Reservation.objects.filter(vcenter=vcenter)
    reservations.update(vcenter_name=vcenter.name)
    return _keep_history(reservations, reason=removed_vcenter_reason(vcenter))


def close_for_removed_host(*, host: Host) -> int:
    """Before ``host`` is deleted (a stale host purged after the retention period, or by hand): its reservations
    keep its name, its active ones are released."""
    vcenter = VCenter.objects.filter(pk=host.vcenter_id).values_list("name", flat=True).first() or "unknown"
    gone = " after it had left vCenter" if host.stale else ""
    reason = f"host {host.name} (vCenter {vcenter}) was removed from the inventory{gone}"
    return _keep_history(Reservation.objects.filter(host=host), reason=reason)


def vcenter_removal_effect(vcenter: VCenter) -> str:
    """What removing ``vcenter`` does to its reservations, in a sentence (``inventory.removal``); "" for none."""
    reservations = Reservation.objects.filter(vcenter=vcenter)
    active = list(
        reservations.filter(status=Reservation.Status.ACTIVE, expires_at__gt=timezone.now())
        .order_by("vm_name")
        .values_list("vm_name", flat=True)
    )
    closed = reservations.count() - len(active)
    kept = (
        f"{closed} closed reservation{'s' if closed != 1 else ''} of {vcenter.name} "
        f"{'stays' if closed == 1 else 'stay'} in the history"
    )
    if not active:
        return f"{kept}." if closed else ""
    names = ", ".join(active[:10]) + (f" and {len(active) - 10} more" if len(active) > 10 else "")
    n = len(active)
    return (
        f"{n} active reservation{'s' if n != 1 else ''} of {vcenter.name} ({names}) "
        f'{"is" if n == 1 else "are"} released with the reason "{removed_vcenter_reason(vcenter)}" and kept in '
        f"the history{f'; {kept}' if closed else ''}."
    )


def reconcile_reservations() -> dict[str, int]:
    """After a sync: a reservation whose VM now holds GPUs on its host is consumed; so is a Dynamic DirectPath, vGPU,
    MIG or device-group one whose VM holds GPUs on another host of its vCenter (vSphere or DRS picks the host of
    those VMs at power-on: the hold on the planned host would otherwise keep its GPUs, vCPUs and memory until it
    expired); old ones expire."""
    expired = expire_reservations()
    vm_holds_gpus = VirtualMachine.objects.filter(
        name=OuterRef("vm_name"), host=OuterRef("host"), stale=False, gpu_consumers__isnull=False
    )
    arrived = Reservation.objects.filter(Exists(vm_holds_gpus), status=Reservation.Status.ACTIVE)
    consumed = 0
    for reservation in arrived.prefetch_related("items"):  # read first: a sync that changes nothing writes nothing
        consumed += Reservation.objects.filter(pk=reservation.pk, status=Reservation.Status.ACTIVE).update(
            status=Reservation.Status.CONSUMED, closed_at=timezone.now(), close_reason=_arrival_note(reservation)[:500]
        )
    return {"expired": expired, "consumed": consumed + _consume_started_elsewhere()}


def _arrival_note(reservation: Reservation) -> str:
    """How the VM that consumed ``reservation`` differs from what was reserved for it (other GPUs where the admin
    names them, fewer GPUs, another profile), or "" when it holds what was reserved."""
    held = list(
        GpuConsumer.objects.filter(
            vm__name=reservation.vm_name, vm__host_id=reservation.host_id, vm__stale=False
        ).values_list("gpu__pci_device__pci_id", "profile")
    )
    items = list(reservation.items.all())
    notes = []
    if len(held) != len(items):
        notes.append(f"holds {len(held)} GPU{'s' if len(held) != 1 else ''} of the {len(items)} reserved")
    whole = [i for i in items if i.kind not in VSPHERE_PICKS_GPU]  # static passthrough: the admin named the GPUs
    reserved_pcis = {i.pci_id for i in whole}
    held_pcis = {pci for pci, _ in held}
    if whole and held_pcis - reserved_pcis:
        other = sorted(held_pcis - reserved_pcis)
        instead = sorted(reserved_pcis - held_pcis) or sorted(reserved_pcis)
        notes.append(
            f"holds GPU{'s' if len(other) > 1 else ''} {', '.join(other)} instead of the reserved {', '.join(instead)}"
        )
    wanted = {(i.profile or "").lower() for i in items if i.profile}
    got = {(p or "").lower() for _, p in held if p}
    if wanted and got and got != wanted:
        notes.append(f"runs {', '.join(sorted(got))}, not the reserved {', '.join(sorted(wanted))}")
    if not notes:
        return ""
    return (
        f"VM {reservation.vm_name} appeared on {reservation.host_name} but "
        + "; ".join(notes)
        + ": the reserved GPUs it does not hold are free again"
    )


def _consume_started_elsewhere() -> int:
    elsewhere = VirtualMachine.objects.filter(
        name=OuterRef("vm_name"), host__vcenter=OuterRef("vcenter"), stale=False, gpu_consumers__isnull=False
    ).exclude(host=OuterRef("host"))
    picked = Reservation.objects.filter(
        Exists(elsewhere),
        Exists(ReservationItem.objects.filter(reservation=OuterRef("pk"), kind__in=VSPHERE_PICKS_GPU)),
        status=Reservation.Status.ACTIVE,
        host__isnull=False,
    ).select_related("host", "vcenter")
    consumed = 0
    for reservation in picked:  # rare: a few rows at most
        kinds = set(reservation.items.values_list("kind", flat=True))
        started_on = (
            GpuConsumer.objects.filter(
                vm__name=reservation.vm_name,
                vm__host__vcenter_id=reservation.vcenter_id,
                vm__stale=False,
                kind__in=kinds,  # the VM as reserved (a VM of that name using GPUs otherwise is another story)
            )
            .exclude(vm__host_id=reservation.host_id)
            .order_by("vm__host__name")
            .values_list("vm__host__name", flat=True)
            .first()
        )
        if started_on is None:
            continue
        reason = (
            f"its VM {reservation.vm_name} started on host {started_on} instead (vCenter {reservation.vcenter_label}: "
            f"vSphere picked the host at power-on), so the hold on {reservation.host.name} ended"
        )
        consumed += Reservation.objects.filter(pk=reservation.pk, status=Reservation.Status.ACTIVE).update(
            status=Reservation.Status.CONSUMED, closed_at=timezone.now(), close_reason=reason[:500]
        )
    return consumed
