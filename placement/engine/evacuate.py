"""Where every GPU VM of a host goes if the host leaves (maintenance, failure): one joint plan.

VMs are placed largest first (GPU count, then framebuffer), each on the best remaining candidate in the
same cluster, with earlier moves applied so two VMs never take the same GPUs. A multi-GPU VM keeps at
least its current interconnect class: a VM on an NVLink ring must land on an NVLink ring.
"""

from __future__ import annotations

from dataclasses import dataclass

from gpucatalog.profiles import ProfileNameError, parse_profile_name
from placement.engine import gpuset
from placement.engine.filters import RequestContext
from placement.engine.model import Consumer, Fabric, HostState, reserve_gpus
from placement.engine.plan import apply_candidate, rank_hosts
from placement.engine.request import PlacementRequest, RequestError
from placement.engine.result import Candidate


@dataclass(frozen=True)
class Move:
    vm: str
    from_gpus: tuple[str, ...]
    request: PlacementRequest | None
    target: Candidate | None
    reasons: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {
            "vm": self.vm,
            "from_gpus": list(self.from_gpus),
            "target": self.target.to_dict() if self.target else None,
            "reasons": list(self.reasons),
        }


@dataclass(frozen=True)
class EvacuationPlan:
    host: str
    moves: tuple[Move, ...]
    host_id: int | None = None
    vcenter: str = ""

    @property
    def complete(self) -> bool:
        return all(m.target is not None for m in self.moves)

    def to_dict(self) -> dict:
        return {
            "host": self.host,
            "host_id": self.host_id,
            "vcenter": self.vcenter,
            "complete": self.complete,
            "moves": [m.to_dict() for m in self.moves],
        }


def _vms(host: HostState) -> dict[str, list[tuple[str, Consumer]]]:
    vms: dict[str, list[tuple[str, Consumer]]] = {}
    for g in sorted(host.gpus, key=lambda g: g.pci_id):
        for c in g.consumers:
            vms.setdefault(c.vm, []).append((g.pci_id, c))
    return vms


def _request_for(host: HostState, held: list[tuple[str, Consumer]]) -> PlacementRequest:
    kind = held[0][1].kind
    profile = held[0][1].profile
    n = len(held)
    interconnect = "any"
    if n > 1:
        topo, order = gpuset.topology_for(host)
        mask = gpuset.mask_of(order, (p for p, _ in held))
        if topo.ring(mask, nv_only=True) > 0:
            interconnect = "nvlink"
    whole = kind in ("passthrough", "dynamic-passthrough")
    board = None
    if whole:
        board = host.gpu(held[0][0]).board
    if kind == "mig" and profile:
        try:
            if parse_profile_name(profile).mig_compute_slices is None:
                kind = "vgpu"
        except ProfileNameError:
            pass
    return PlacementRequest(
        gpus_per_vm=n,
        consumption=kind,
        profile=None if whole else profile,
        board=board,
        interconnect=interconnect,
        clusters=(host.cluster,),
    )


def _size(req: PlacementRequest) -> tuple[int, int]:
    try:
        fb = req.vgpu_profile.framebuffer_gb if req.vgpu_profile else 10**6
    except ProfileNameError:
        fb = 0
    return (req.gpus_per_vm, fb)


def plan_evacuation(
    fabric: Fabric, host_name: str, *, host_id: int | None = None, vcenter: str | None = None
) -> EvacuationPlan:
    """Plan the moves of every GPU VM on the host (by primary key when given, else by name and vCenter)."""
    source = fabric.host(host_name, host_id=host_id, vcenter=vcenter)
    others = Fabric(
        tuple(
            h
            for h in fabric.hosts
            if h.ident != source.ident and h.cluster == source.cluster and h.vcenter == source.vcenter
        )
    )
    pending = []
    for vm, held in sorted(_vms(source).items()):
        req = _request_for(source, held)
        pending.append((vm, held, req))
    pending.sort(key=lambda t: (-_size(t[2])[0], -_size(t[2])[1], t[0]))
    moves = []
    state = others
    for vm, held, req in pending:
        from_gpus = tuple(p for p, _ in held)
        try:
            req.validate()
        except RequestError as exc:
            moves.append(Move(vm, from_gpus, req, None, (f"cannot re-plan {vm}: {exc}",)))
            continue
        candidates, rejected = rank_hosts(state.hosts, RequestContext.of(req))
        if not candidates:
            reasons = tuple(f"{r.host}: {'; '.join(r.reasons)}" for r in rejected[:5]) or (
                "no other host in the cluster",
            )
            if req.interconnect == "nvlink":
                reasons = (f"{vm} runs on an NVLink set of {req.gpus_per_vm} GPUs and needs one elsewhere", *reasons)
            moves.append(Move(vm, from_gpus, req, None, reasons))
            continue
        best = candidates[0]
        notes = []
        if req.consumption == "passthrough":
            notes.append("static DirectPath VM: reconfigure its devices on the target host (no vMotion)")
        moves.append(Move(vm, from_gpus, req, best, tuple(notes)))
        state = apply_candidate(state, best, req, vm)
        target = state.host(best.host, host_id=best.host_id, vcenter=best.vcenter)
        state = state.replace_host(reserve_gpus(target, (g.pci_id for g in best.gpus)))
    return EvacuationPlan(source.name, tuple(moves), source.host_id, source.vcenter)
