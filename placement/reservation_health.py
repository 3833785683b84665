"""What is wrong with active reservations now that the estate changed under them: their "problems".

A reservation is planned against the inventory of one moment; a later sync may show its host gone from vCenter,
one of its GPUs gone, switched to another mode, locked to another vGPU profile by a running VM (same-size mode)
or taken by another VM, or a VM with the reservation's name holding GPUs on another host (its PowerCLI script
would move that VM). Each is a plain sentence naming the GPU, host, VM and vCenter. Nothing is released or
re-planned here: the admin decides (release, plan again); only Dynamic DirectPath, vGPU, MIG and device-group
reservations, whose GPUs vSphere picks, are re-seated on their host by the sync (``placement.reseat``), which
records here why one found no room.

The rules live only here. ``problems_by_reservation`` reads any number of reservations with four queries (the
reservations, their items with their GPUs, the VMs on those GPUs, and the VMs named like them elsewhere),
scoped by subqueries rather than lists of keys; the pages, the API and the ``needs_attention`` filters use it.
Only reservations active now have problems (closed ones hold nothing).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

from django.db.models import QuerySet
from django.utils import timezone

from inventory.models import ConnectionState, GpuConsumer
from placement.engine.model import Consumer
from placement.engine.vgpu import TIMESLICED_KINDS
from placement.models import Reservation, ReservationItem

# Reservation.candidate's key for why a vGPU, MIG or device-group reservation found no room when the sync re-seated
# it (placement.reseat, which writes it)
RESEAT_PROBLEM = "reseat_problem"

WHOLE_GPU_KINDS = frozenset({"passthrough", "dynamic-passthrough"})
MODE_WORDS = {
    "direct": "passthrough (direct)",
    "sharedDirect": "vGPU (sharedDirect)",
    "shared": "vSGA (shared)",
    "basic": "basic graphics",
}
SCRIPT_OUT_OF_DATE = (
    "The vSphere settings and the PowerCLI script below were made for the inventory as it was when the GPUs were "
    "reserved and are out of date: release this reservation and plan again."
)


def _when(moment: datetime | None) -> str:
    if moment is None:
        return "an earlier sync"
    return f"the sync of {timezone.localtime(moment):%Y-%m-%d %H:%M}"


def active_now(scope: QuerySet[Reservation]) -> QuerySet[Reservation]:
    return scope.filter(status=Reservation.Status.ACTIVE, expires_at__gt=timezone.now())


def problems_by_reservation(*, scope: QuerySet[Reservation]) -> dict[int, list[str]]:
    """Problems of the reservations in ``scope`` that are active now, by primary key (only those with any)."""
    active = active_now(scope).order_by()
    rows = list(
        active.values_list(
            "pk", "vm_name", "host_id", "host_name", "host__name", "host__stale", "host__last_seen", "vcenter_id",
            "vcenter_name", "vcenter__name", f"candidate__{RESEAT_PROBLEM}", "host__connection_state",
            "host__maintenance_mode",
        )
    )  # fmt: skip
    if not rows:
        return {}
    items: dict[int, list[tuple]] = defaultdict(list)
    for reservation_id, *item in (
        ReservationItem.objects.filter(reservation__in=active.values("pk"))
        .order_by("pci_id")
        .values_list(
            "reservation_id", "pci_id", "kind", "profile", "gpu_id", "gpu__pci_device__pci_id", "gpu__stale",
            "gpu__last_seen", "gpu__graphics_type", "gpu__vgpu_mode", "gpu__mig_enabled",
        )
    ):  # fmt: skip
        items[reservation_id].append(tuple(item))
    on_gpu: dict[int, list[tuple[str, str, str]]] = defaultdict(list)
    for gpu_id, vm, kind, profile, power in (
        GpuConsumer.objects.filter(
            gpu__reservation_items__reservation__in=active.values("pk"), vm__stale=False, gpu__stale=False
        )
        .order_by("vm__name")
        .values_list("gpu_id", "vm__name", "kind", "profile", "vm__power_state")
        .distinct()
    ):
        if Consumer(vm, kind, profile, powered_on=power == "poweredOn").holds_device:
            on_gpu[gpu_id].append((vm, kind, profile or ""))
    named: dict[tuple[str, int], list[tuple[int, str, str]]] = defaultdict(list)
    for vm, vcenter_id, host_id, host, pci in (
        GpuConsumer.objects.filter(
            vm__stale=False,
            vm__name__in=active.values("vm_name"),
            vm__vcenter_id__in=active.values("vcenter_id"),
        )
        .order_by("gpu__pci_device__pci_id")
        .values_list("vm__name", "vm__vcenter_id", "gpu__host_id", "gpu__host__name", "gpu__pci_device__pci_id")
    ):
        named[(vm, vcenter_id)].append((host_id, host, pci))
    out: dict[int, list[str]] = {}
    for (
        pk,
        vm_name,
        host_id,
        host_name,
        live_host,
        host_stale,
        host_seen,
        vcenter_id,
        vc_name,
        live_vc,
        unseated,
        connection,
        maintenance,
    ) in rows:
        host = live_host or host_name
        vcenter = live_vc or vc_name
        where = f"{host} (vCenter {vcenter})"
        found: list[str] = []
        if host_id is None:
            found.append(f"Host {host_name} of vCenter {vcenter} was removed from the inventory")
        elif host_stale:
            found.append(f"Host {host} is gone from vCenter {vcenter}: last seen by {_when(host_seen)}")
        else:
            if connection != ConnectionState.CONNECTED or maintenance:
                state = "in maintenance mode" if connection == ConnectionState.CONNECTED else (
                    ConnectionState(connection).label.lower() if connection in ConnectionState.values else connection
                )  # fmt: skip
                found.append(
                    f"Host {where} is {state}: the VM cannot be powered on there until it is back, and plans do not "
                    "use the host meanwhile"
                )
            for item in items.get(pk, ()):
                found.extend(_item_problems(item, vm_name, where, on_gpu))
            if isinstance(unseated, str) and unseated:
                found.append(f"On {where}, {unseated}")
        elsewhere = [(h, name, pci) for h, name, pci in named.get((vm_name, vcenter_id), ()) if h != host_id]
        if elsewhere:
            hosts = sorted({name for _, name, _ in elsewhere})
            gpus = ", ".join(pci for _, _, pci in elsewhere[:4]) + (" ..." if len(elsewhere) > 4 else "")
            found.append(
                f"VM {vm_name} now exists on {', '.join(hosts)} (vCenter {vcenter}) holding GPU"
                f"{'s' if len(elsewhere) > 1 else ''} {gpus}: its PowerCLI script would move it"
            )
        if found:
            out[pk] = found
    return out


def _item_problems(item: tuple, vm_name: str, where: str, on_gpu: dict[int, list[tuple[str, str, str]]]) -> list[str]:
    pci_copy, kind, profile, gpu_id, pci, stale, seen, graphics, vgpu_mode, mig_enabled = item
    pci = pci or pci_copy
    if gpu_id is None:
        return [f"GPU {pci} of {where} was removed from the inventory"]
    if stale:
        return [f"GPU {pci} is gone from {where}: last seen by {_when(seen)}"]
    gpu = f"GPU {pci} on {where}"
    mode = MODE_WORDS.get(graphics, f"{graphics or 'an unknown'}")
    others = [(vm, k, p) for vm, k, p in on_gpu.get(gpu_id, ()) if vm != vm_name]
    if kind in WHOLE_GPU_KINDS:
        if graphics != "direct":
            return [f"{gpu} is now in {mode} mode: it cannot be passed through whole to {vm_name}"]
        if others:
            return [f"{gpu} is now held by VM {', '.join(sorted({vm for vm, _, _ in others}))}"]
        return []
    what = f"{'MIG-backed vGPU' if kind == 'mig' else 'vGPU'} {profile}".rstrip()
    if graphics != "sharedDirect":
        return [f"{gpu} is now in {mode} mode: it cannot take the {what} reserved for {vm_name}"]
    mig_mode = mig_enabled or vgpu_mode == "multiInstanceGpu"
    if kind == "mig":
        if mig_mode:
            return []
        return [f"{gpu} no longer has MIG enabled: it cannot take the {what} reserved for {vm_name}"]
    if mig_mode:
        return [f"{gpu} now has MIG enabled: it cannot take the time-sliced {what} reserved for {vm_name}"]
    if vgpu_mode != "mixedSize" and profile:
        locks = [(vm, p) for vm, k, p in others if k in TIMESLICED_KINDS and p and p.lower() != profile.lower()]
        if locks:
            vm, lock = locks[0]
            return [
                f"{gpu} is locked to {lock} by VM {vm} (same-size mode): the {what} reserved for {vm_name} cannot "
                "share it"
            ]
    return []


def attach_problems(reservations: Iterable[Reservation]) -> list[Reservation]:
    """Set ``problems`` (a list, [] when fine) on each reservation; four queries however many."""
    reservations = list(reservations)
    found = problems_by_reservation(scope=Reservation.objects.filter(pk__in=[r.pk for r in reservations]))
    for r in reservations:
        r.problems = found.get(r.pk, [])
    return reservations


def problems_of(reservation: Reservation) -> list[str]:
    """One reservation's problems ([] when fine, or when it is not active now)."""
    found = getattr(reservation, "problems", None)
    if found is None:
        found = attach_problems([reservation])[0].problems
    return found


def needing_attention(scope: QuerySet[Reservation]) -> QuerySet[Reservation]:
    """The reservations of ``scope`` active now that have a problem (the ``needs_attention`` filters)."""
    return scope.filter(pk__in=list(problems_by_reservation(scope=scope)))


def not_needing_attention(scope: QuerySet[Reservation]) -> QuerySet[Reservation]:
    return scope.exclude(pk__in=list(problems_by_reservation(scope=scope)))
