"""Re-seating vGPU, MIG and device-group reservations after vSphere picked other GPUs than the advisor predicted.

For these kinds vSphere, not the admin, picks the physical GPU (and the mixed-size placement ID or MIG slot) when
the VM powers on, by its own policy and without knowing the advisor's reservations (DOMAIN 2.3, 3.3). So a
reserved VM can land on a GPU that other reservations were predicted on: that GPU is then over-committed while the
GPU its reservation predicted stands free, and the next plan would sell that slot again. A reservation of these
kinds promises room on its host; its GPUs are a prediction. After each sync the host's reservations are replayed
in the order they were made on what vCenter now shows: one whose predicted GPUs still take it stays; one whose
GPUs no longer do moves to the GPUs the engine picks on the same host; one with no room left on the host keeps its
GPUs and says so (``RESEAT_PROBLEM`` in its candidate, reported by ``reservation_health``). Passthrough reservations
name their GPUs in the PowerCLI script and are never moved.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import replace

from django.db import transaction

from inventory.models import Gpu, Host, VCenter
from placement.engine.model import RESERVATION_PREFIX, Consumer, Fabric, HostState, reserve_gpus, with_consumers
from placement.engine.plan import consumers_for, plan
from placement.engine.request import PlacementRequest
from placement.engine.result import Candidate
from placement.models import Reservation, ReservationItem
from placement.reservation_health import RESEAT_PROBLEM
from placement.selectors import fabric_snapshot

logger = logging.getLogger(__name__)

# The GPU (and offset) of these kinds is vSphere's choice at power-on, not the admin's.
PREDICTED_KINDS = ("vgpu", "mig", "device-group")


def reseat_reservations(*, vcenter: VCenter | None = None) -> dict[str, int]:
    """Replay the active vGPU, MIG and device-group reservations of every host (of ``vcenter``) on what vCenter
    shows now; returns how many moved and how many found no room."""
    now_active = Reservation.objects.filter(
        status=Reservation.Status.ACTIVE, host__isnull=False, items__kind__in=PREDICTED_KINDS
    )
    if vcenter is not None:
        now_active = now_active.filter(host__vcenter=vcenter)
    host_ids = sorted(set(now_active.values_list("host_id", flat=True)))
    moved = stuck = 0
    for host_id in host_ids:
        m, s = _reseat_host(host_id)
        moved += m
        stuck += s
    return {"moved": moved, "no_room": stuck}


def _reseat_host(host_id: int) -> tuple[int, int]:
    with transaction.atomic():
        host = Host.objects.select_for_update().filter(pk=host_id, stale=False).first()
        if host is None:
            return 0, 0  # a host gone from vCenter: reservation_health says so
        reservations = list(
            Reservation.objects.filter(host=host, status=Reservation.Status.ACTIVE, items__kind__in=PREDICTED_KINDS)
            .distinct()
            .order_by("created", "pk")
            .prefetch_related("items")
        )
        reservations = [r for r in reservations if r.is_active]
        if not reservations:
            return 0, 0
        (state,) = fabric_snapshot(host_ids=[host.pk]).hosts
        state = _without(state, reservations)
        # First every reservation its predicted GPUs still take (in the order they were made), then the others
        # where the engine picks on what is left: a VM vSphere put on a full GPU moves the fewest reservations.
        misplaced = []
        for reservation in reservations:
            request = _request_of(reservation)
            items = list(reservation.items.all())
            if request is None or _still_fits(state, request, items):
                state = _with_items(state, reservation, items, request)
                _note(reservation, None)
            else:
                misplaced.append((reservation, request, items))
        moved = stuck = 0
        for reservation, request, items in misplaced:
            best = plan(Fabric((state,)), request).best
            if best is None:
                state = _with_items(state, reservation, items, request)
                stuck += _note(reservation, _no_room(items))
                continue
            _move(reservation, items, best, request)  # its new candidate carries no problem
            state = with_consumers(
                state,
                consumers_for(best, request, f"{RESERVATION_PREFIX}{reservation.vm_name}"),
                vcpus=request.vcpus,
                memory_mb=request.memory_mb,
            )
            moved += 1
            logger.info(
                "reservation #%s for %s on %s moved from GPU %s to %s (vSphere placed VMs elsewhere)",
                reservation.pk,
                reservation.vm_name,
                host.name,
                ", ".join(i.pci_id for i in items),
                ", ".join(g.pci_id for g in best.gpus),
            )
        return moved, stuck


def _request_of(reservation: Reservation) -> PlacementRequest | None:
    """The reservation's request for its host alone (one VM, no cluster scope), or None when the stored request
    cannot be read (an older row): such a reservation keeps its GPUs."""
    fields = {f.name for f in dataclasses.fields(PlacementRequest)}
    stored = {k: v for k, v in (reservation.request or {}).items() if k in fields}
    stored.update(vms=1, anti_affinity=False, clusters=())
    try:
        return PlacementRequest(**stored).validate()
    except Exception:  # a request an older version stored, which this version refuses: leave it where it is
        return None


def _without(state: HostState, reservations: list[Reservation]) -> HostState:
    """The host without these reservations' consumers, their vCPUs and memory given back."""
    names = {f"{RESERVATION_PREFIX}{r.vm_name}" for r in reservations}
    gpus = tuple(replace(g, consumers=tuple(c for c in g.consumers if c.vm not in names)) for g in state.gpus)
    vcpus = memory_mb = 0
    for r in reservations:
        request = r.request or {}
        vcpus += request.get("vcpus") or 0
        memory_mb += request.get("memory_mb") or 0
    return replace(
        state,
        gpus=gpus,
        cpu_free=state.cpu_free + vcpus,
        memory_free_mb=state.memory_free_mb + memory_mb,
        reserved_vcpus=max(state.reserved_vcpus - vcpus, 0),
        reserved_memory_mb=max(state.reserved_memory_mb - memory_mb, 0),
    )


def _still_fits(state: HostState, request: PlacementRequest, items: list[ReservationItem]) -> bool:
    """Whether the engine would place the request on exactly the reserved GPUs: every other GPU is held aside."""
    mine = {i.pci_id for i in items}
    if not mine or not mine <= {g.pci_id for g in state.gpus}:
        return False
    pinned = reserve_gpus(state, (g.pci_id for g in state.gpus if g.pci_id not in mine))
    best = plan(Fabric((pinned,)), request).best
    return best is not None and {g.pci_id for g in best.gpus} == mine


def _with_items(
    state: HostState, reservation: Reservation, items: list[ReservationItem], request: PlacementRequest | None
) -> HostState:
    """The host with the reservation held where it is recorded (it is a commitment, fitting or not)."""
    vm = f"{RESERVATION_PREFIX}{reservation.vm_name}"
    assignments = {i.pci_id: Consumer(vm, i.kind, i.profile or None, i.placement_gb, i.mig_slot) for i in items}
    return with_consumers(
        state,
        assignments,
        vcpus=request.vcpus if request else 0,
        memory_mb=request.memory_mb if request else 0,
    )


def _move(reservation: Reservation, items: list[ReservationItem], best: Candidate, request: PlacementRequest) -> None:
    gpus = dict(Gpu.objects.filter(host_id=reservation.host_id, stale=False).values_list("pci_device__pci_id", "pk"))
    ReservationItem.objects.filter(pk__in=[i.pk for i in items]).delete()
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
        for g in best.gpus
    )
    candidate = best.to_dict()
    candidate["reseated_from"] = [i.pci_id for i in items]
    reservation.candidate = candidate
    Reservation.objects.filter(pk=reservation.pk).update(candidate=candidate)


def _no_room(items: list[ReservationItem]) -> str:
    gpus = ", ".join(sorted(i.pci_id for i in items))
    many = len(items) > 1
    return (
        f"the reserved GPU{'s' if many else ''} {gpus} can no longer take it and no other GPU of the host has room: "
        "its VM may not power on there"
    )


def _note(reservation: Reservation, problem: str | None) -> int:
    """Record (or clear) why the reservation could not be re-seated; 1 when it could not."""
    candidate = dict(reservation.candidate or {})
    if candidate.get(RESEAT_PROBLEM) != problem:
        if problem is None:
            candidate.pop(RESEAT_PROBLEM, None)
        else:
            candidate[RESEAT_PROBLEM] = problem
        Reservation.objects.filter(pk=reservation.pk).update(candidate=candidate)
    return 1 if problem else 0
