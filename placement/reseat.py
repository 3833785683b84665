"""Re-seating Dynamic DirectPath, vGPU, MIG and device-group reservations after vSphere picked other GPUs (or
slots) than the advisor predicted.

For these kinds vSphere, not the admin, picks the physical GPU (and the mixed-size placement ID or MIG slot) when
the VM powers on, by its own policy and without knowing the advisor's reservations (DOMAIN 2.3, 3.3). So a
reserved VM can land on a GPU that other reservations were predicted on: that GPU is then over-committed while the
GPU its reservation predicted stands free, and the next plan would sell that slot again. A reservation of these
kinds promises room on its host; its GPUs are a prediction. After each sync the host's reservations are replayed
in the order they were made on what vCenter now shows: one whose predicted GPUs still take it stays; one whose
GPUs no longer do moves to the GPUs the engine picks on the same host; one with no room left on the host keeps its
GPUs and says so (``RESEAT_PROBLEM`` in its candidate, reported by ``reservation_health``). Static passthrough
reservations name their GPUs in the PowerCLI script and are never moved. A host that cannot take VMs now (in
maintenance mode, disconnected, its inventory unreadable) is left as it is: that says nothing about its room.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import replace

from django.db import transaction

from inventory.models import Gpu, Host, VCenter
from placement.engine.filters import ConsumersReadable, HostUsable, RequestContext
from placement.engine.mig import mig_consumer_problem, mig_view
from placement.engine.model import (
    RESERVATION_PREFIX,
    Consumer,
    Fabric,
    GpuState,
    HostState,
    reserve_gpus,
    with_consumers,
)
from placement.engine.plan import consumers_for, plan
from placement.engine.request import VSPHERE_PICKS_GPU, PlacementRequest
from placement.engine.result import Candidate
from placement.engine.vgpu import (
    TIMESLICED_KINDS,
    board_of,
    capacity_gb,
    consumer_size_gb,
    mixed_starts,
    timesliced_view,
)
from placement.models import Reservation, ReservationItem
from placement.reservation_health import RESEAT_PROBLEM
from placement.selectors import fabric_snapshot

logger = logging.getLogger(__name__)

# The GPU (and offset) of these kinds is vSphere's choice at power-on, not the admin's.
PREDICTED_KINDS = VSPHERE_PICKS_GPU


def reseat_reservations(*, vcenter: VCenter | None = None, host: Host | None = None) -> dict[str, int]:
    """Replay the active reservations vSphere picks the GPUs of (``PREDICTED_KINDS``) on every host (of
    ``vcenter``, or only ``host``) on what vCenter shows now; returns how many moved and how many found no room."""
    now_active = Reservation.objects.filter(
        status=Reservation.Status.ACTIVE, host__isnull=False, items__kind__in=PREDICTED_KINDS
    )
    if vcenter is not None:
        now_active = now_active.filter(host__vcenter=vcenter)
    if host is not None:
        now_active = now_active.filter(host=host)
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
        # Locked, so that a release or renewal committing meanwhile waits and is not overwritten by a move.
        mine = Reservation.objects.filter(host=host, status=Reservation.Status.ACTIVE, items__kind__in=PREDICTED_KINDS)
        reservations = list(
            Reservation.objects.select_for_update()
            .filter(pk__in=mine.values("pk"))
            .order_by("created", "pk")
            .prefetch_related("items")
        )
        reservations = [r for r in reservations if r.is_active]
        if not reservations:
            return 0, 0
        (state,) = fabric_snapshot(host_ids=[host.pk], without_reservations=[r.pk for r in reservations]).hosts
        if not _judgeable(state, reservations):
            return 0, 0
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
            result = plan(Fabric((state,)), request)
            best = result.best
            if best is None:
                state = _with_items(state, reservation, items, request)
                reasons = [reason for r in result.rejected for reason in r.reasons]
                stuck += _note(reservation, _no_room(items, reasons))
                continue
            if not _move(reservation, items, best, request):  # its new candidate carries no problem
                continue  # released or ended meanwhile: it holds nothing now
            state = with_consumers(
                state,
                consumers_for(best, request, f"{RESERVATION_PREFIX}{reservation.vm_name}"),
                vcpus=request.vcpus,
                memory_mb=request.memory_mb,
            )
            moved += 1
            logger.info(
                "reservation #%s for %s on %s moved from GPU %s to %s (VMs took the predicted room)",
                reservation.pk,
                reservation.vm_name,
                host.name,
                ", ".join(_where(i.pci_id, i.placement_gb, i.mig_slot) for i in items),
                ", ".join(_where(g.pci_id, g.placement_gb, g.mig_slot) for g in best.gpus),
            )
        return moved, stuck


def _judgeable(state: HostState, reservations: list[Reservation]) -> bool:
    """Whether the host's room can be judged now: not when it cannot take VMs (maintenance mode, disconnected,
    inventory too old) or its running consumers cannot be read. Plans say why; its reservations stay as they are."""
    request = next((r for r in map(_request_of, reservations) if r is not None), None)
    if request is None:
        return False
    ctx = RequestContext.of(request)
    return all(f.filter(state, ctx).ok for f in (HostUsable(), ConsumersReadable()))


def _where(pci_id: str, placement_gb: int | None, mig_slot: int | None) -> str:
    if mig_slot is not None:
        return f"{pci_id} (MIG slot {mig_slot})"
    if placement_gb is not None:
        return f"{pci_id} (placement {placement_gb} GB)"
    return pci_id


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


def _still_fits(state: HostState, request: PlacementRequest, items: list[ReservationItem]) -> bool:
    """Whether the engine would place the request on exactly the reserved GPUs (every other GPU held aside) and
    each recorded placement ID or MIG slot is still free there (a VM vSphere started may sit on it)."""
    mine = {i.pci_id for i in items}
    if not mine or not mine <= {g.pci_id for g in state.gpus}:
        return False
    pinned = reserve_gpus(state, (g.pci_id for g in state.gpus if g.pci_id not in mine))
    best = plan(Fabric((pinned,)), request).best
    return best is not None and {g.pci_id for g in best.gpus} == mine and _offsets_free(state, items)


def _offsets_free(state: HostState, items: list[ReservationItem]) -> bool:
    gpus = {g.pci_id: g for g in state.gpus}
    for item in items:
        gpu = gpus[item.pci_id]
        if not _offset_free(gpu, item):
            return False
        gpus[item.pci_id] = replace(gpu, consumers=(*gpu.consumers, _consumer(item, "?")))
    return True


def _offset_free(gpu: GpuState, item: ReservationItem) -> bool:
    """Whether the item's recorded MIG slot or mixed-size placement ID is still free on ``gpu`` (True when it has
    none): no offset a sync or an nvidia-smi import reported covers it. Offsets the engine infers (VMs whose
    offset no capture gave) are placed around it, as they are on every plan."""
    if item.kind == "mig" and item.mig_slot is not None:
        if mig_view(gpu) is None:
            return False
        return mig_consumer_problem(replace(gpu, consumers=(*gpu.consumers, _consumer(item, "?")))) is None
    if item.kind in TIMESLICED_KINDS and item.placement_gb is not None and gpu.vgpu_mode == "mixedSize":
        board = board_of(gpu)
        try:
            size = consumer_size_gb(_consumer(item, "?"), board, capacity_gb(gpu, board))
        except ValueError:
            return False
        reported = tuple(c for c in gpu.consumers if c.kind not in TIMESLICED_KINDS or c.placement_gb is not None)
        return item.placement_gb in mixed_starts(timesliced_view(replace(gpu, consumers=reported)), size)
    return True


def _consumer(item: ReservationItem, vm: str) -> Consumer:
    kind = "passthrough" if item.kind == "dynamic-passthrough" else item.kind  # as the selectors read it
    return Consumer(vm, kind, item.profile or None, item.placement_gb, item.mig_slot)


def _with_items(
    state: HostState, reservation: Reservation, items: list[ReservationItem], request: PlacementRequest | None
) -> HostState:
    """The host with the reservation held where it is recorded (it is a commitment, fitting or not)."""
    vm = f"{RESERVATION_PREFIX}{reservation.vm_name}"
    return with_consumers(
        state,
        {i.pci_id: _consumer(i, vm) for i in items},
        vcpus=request.vcpus if request else 0,
        memory_mb=request.memory_mb if request else 0,
    )


def _move(reservation: Reservation, items: list[ReservationItem], best: Candidate, request: PlacementRequest) -> bool:
    """Hold the reservation on ``best`` instead; False (nothing written) when it is no longer active."""
    before = reservation.candidate or {}
    candidate = best.to_dict()
    candidate["reseated_from"] = [_where(i.pci_id, i.placement_gb, i.mig_slot) for i in items]
    numa_before = before.get("numa_nodes")
    if before.get("reseated_numa_from") is not None:
        numa_before = before["reseated_numa_from"]  # what the first settings said, before any move
    if numa_before is not None and list(numa_before) != list(best.numa_nodes):
        candidate["reseated_numa_from"] = list(numa_before)
    if not Reservation.objects.filter(pk=reservation.pk, status=Reservation.Status.ACTIVE).update(candidate=candidate):
        return False
    reservation.candidate = candidate
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
    return True


def _no_room(items: list[ReservationItem], reasons: list[str]) -> str:
    gpus = ", ".join(sorted(_where(i.pci_id, i.placement_gb, i.mig_slot) for i in items))
    many = len(items) > 1
    why = f" ({'; '.join(reasons[:2])})" if reasons else ""
    return (
        f"the reserved GPU{'s' if many else ''} {gpus} can no longer take it and the host has no other room for it"
        f"{why}: its VM may not power on there"
    )


def _note(reservation: Reservation, problem: str | None) -> int:
    """Record (or clear) why the reservation could not be re-seated; 1 when it could not."""
    candidate = dict(reservation.candidate or {})
    if candidate.get(RESEAT_PROBLEM) != problem:
        if problem is None:
            candidate.pop(RESEAT_PROBLEM, None)
        else:
            candidate[RESEAT_PROBLEM] = problem
        Reservation.objects.filter(pk=reservation.pk, status=Reservation.Status.ACTIVE).update(candidate=candidate)
    return 1 if problem else 0
