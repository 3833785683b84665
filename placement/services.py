"""Planning against the stored inventory or an nvidia-smi capture, and reservations of accepted plans.

The engine (``placement.engine``) is pure; this module feeds it from the database, keeps accepted plans
as reservations (so concurrent requests do not double-book) and reconciles them with what vCenter reports.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from inventory.models import Gpu, Host, VirtualMachine
from inventory.selectors import fabric_for
from placement.engine.evacuate import EvacuationPlan, plan_evacuation
from placement.engine.model import Consumer
from placement.engine.plan import plan
from placement.engine.profiles import ProfileNameError, parse_profile_name
from placement.engine.request import PlacementRequest, RequestError
from placement.engine.result import Candidate, Plan
from placement.engine.smi_host import host_from_smi
from placement.models import Reservation, ReservationItem

RESERVATION_PREFIX = "reservation:"


class ReservationConflict(Exception):
    """The accepted candidate is no longer free: another plan or VM took (part of) it. Plan again."""


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
    now = timezone.now()
    due = list(
        Reservation.objects.filter(status=Reservation.Status.ACTIVE, expires_at__lte=now).values_list("pk", flat=True)
    )
    if not due:  # read first: a sync that changes nothing must not write either
        return 0
    return Reservation.objects.filter(pk__in=due, status=Reservation.Status.ACTIVE).update(
        status=Reservation.Status.EXPIRED, closed_at=now
    )


def reservation_consumers(*, host_ids: list[int] | None = None) -> dict[int, list[Consumer]]:
    """Active reservations as engine consumers, keyed by GPU pk."""
    items = ReservationItem.objects.filter(
        reservation__status=Reservation.Status.ACTIVE, reservation__expires_at__gt=timezone.now()
    ).select_related("reservation")
    if host_ids is not None:
        items = items.filter(gpu__host_id__in=host_ids)
    out: dict[int, list[Consumer]] = {}
    for item in items:
        kind = "passthrough" if item.kind == "dynamic-passthrough" else item.kind
        out.setdefault(item.gpu_id, []).append(
            Consumer(
                vm=f"{RESERVATION_PREFIX}{item.reservation.vm_name}",
                kind=kind,
                profile=item.profile or None,
                placement_gb=item.placement_gb,
                mig_slot=item.mig_slot,
            )
        )
    return out


def plan_cluster(*, request: PlacementRequest, clusters: list[str] | None = None, limit: int | None = None) -> Plan:
    expire_reservations()
    fabric = fabric_for(clusters=clusters or list(request.clusters) or None, extra_consumers=reservation_consumers())
    return plan(fabric, request, limit=limit)


def plan_smi(*, text: str, request: PlacementRequest, busy: tuple[int, ...] = (), name: str = "smi-host") -> Plan:
    """Plan on one host described by an ``nvidia-smi topo -m`` capture (raises SmiParseError)."""
    from inventory.topology.smi import parse_smi_topology

    topology = parse_smi_topology(text)
    indices = {g.index for g in topology.gpus}
    for index in busy:
        if index not in indices:
            raise RequestError("busy", f"GPU {index} is not in the capture (GPUs {min(indices)}..{max(indices)})")
    host = host_from_smi(
        [(link.a, link.b, link.kind, link.gbps, link.nvlinks) for link in topology.links],
        {g.index: g.numa_node for g in topology.gpus},
        name=name,
        busy=busy,
    )
    from placement.engine.model import Fabric

    return plan(Fabric((host,)), request)


def plan_host_evacuation(*, host_name: str) -> EvacuationPlan:
    host = Host.objects.select_related("cluster").filter(name=host_name).first()
    if host is None:
        raise RequestError("evacuate", f"no host named {host_name!r}")
    clusters = [host.cluster.name] if host.cluster else None
    expire_reservations()
    fabric = fabric_for(clusters=clusters, extra_consumers=reservation_consumers())
    return plan_evacuation(fabric, host_name)


def _same_choice(a: Candidate, b: Candidate) -> bool:
    def key(c: Candidate):
        return sorted((g.pci_id, g.placement_gb, g.mig_slot) for g in c.gpus)

    return a.host == b.host and key(a) == key(b)


def accept_candidate(
    *,
    request: PlacementRequest,
    candidate: Candidate,
    vm_name: str,
    ttl_minutes: int | None = None,
    user=None,
) -> Reservation:
    """Reserve the candidate's GPUs for ``vm_name``; exactly one of several overlapping accepts wins.

    The host row is locked (SELECT ... FOR UPDATE on PostgreSQL; SQLite runs write transactions in
    IMMEDIATE mode), then the host is planned again with every active reservation: the candidate must
    still be what the engine would choose, or the accept fails with ReservationConflict.
    """
    if not vm_name or len(vm_name) > 255:
        raise RequestError("vm_name", "must be 1 to 255 characters")
    ttl = ttl_minutes or settings.RESERVATION_TTL_MINUTES
    if ttl <= 0:
        raise RequestError("ttl_minutes", "must be positive")
    request.validate()
    with transaction.atomic():
        host = Host.objects.select_for_update().filter(name=candidate.host).first()
        if host is None:
            raise ReservationConflict(f"host {candidate.host} is no longer in the inventory")
        expire_reservations()
        if Reservation.objects.filter(vm_name=vm_name, status=Reservation.Status.ACTIVE).exists():
            raise RequestError("vm_name", f"{vm_name!r} already holds an active reservation")
        fabric = fabric_for(hosts=[host.name], extra_consumers=reservation_consumers(host_ids=[host.pk]))
        single = dataclasses.replace(request, vms=1, anti_affinity=False, clusters=())
        again = plan(fabric, single)
        if not again.candidates or not _same_choice(again.candidates[0], candidate):
            reasons = "; ".join(r for rej in again.rejected for r in rej.reasons[:2])
            raise ReservationConflict(
                f"{candidate.host} changed since the plan was made"
                + (f" ({reasons})" if reasons else "")
                + ": plan again"
            )
        reservation = Reservation.objects.create(
            vm_name=vm_name,
            host=host,
            request=dataclasses.asdict(request),
            candidate=candidate.to_dict(),
            expires_at=timezone.now() + timedelta(minutes=ttl),
            created_by=user,
        )
        gpus = {g.pci_device.pci_id: g for g in Gpu.objects.filter(host=host).select_related("pci_device")}
        ReservationItem.objects.bulk_create(
            ReservationItem(
                reservation=reservation,
                gpu=gpus[g.pci_id],
                kind=request.consumption,
                profile=g.profile or "",
                placement_gb=g.placement_gb,
                mig_slot=g.mig_slot,
            )
            for g in candidate.gpus
        )
    return reservation


def release_reservation(*, reservation: Reservation) -> None:
    Reservation.objects.filter(pk=reservation.pk, status=Reservation.Status.ACTIVE).update(
        status=Reservation.Status.RELEASED, closed_at=timezone.now()
    )


def reconcile_reservations() -> dict[str, int]:
    """After a sync: a reservation whose VM now exists on its host is consumed; old ones expire."""
    expired = expire_reservations()
    consumed = 0
    now = timezone.now()
    for reservation in Reservation.objects.filter(status=Reservation.Status.ACTIVE).select_related("host"):
        vm = VirtualMachine.objects.filter(name=reservation.vm_name, host=reservation.host, stale=False).first()
        if vm is not None and vm.gpu_consumers.exists():
            Reservation.objects.filter(pk=reservation.pk).update(status=Reservation.Status.CONSUMED, closed_at=now)
            consumed += 1
    return {"expired": expired, "consumed": consumed}
