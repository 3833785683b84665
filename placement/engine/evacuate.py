"""Where every GPU VM of a host goes if the host leaves (maintenance, failure): one joint assignment.

Each VM on the host becomes the request it would be if it were placed today: as many GPUs as it holds, its
consumption kind and profile, its board for whole GPUs, its vCPUs and memory reservation (``sizes``; the
inventory's VM sizes) and its interconnect class. A passthrough or full-framebuffer multi-GPU VM that runs
on an NVLink ring asks for NVLink again; fractional vGPUs never ask for NVLink (P2P needs full-framebuffer
vGPUs: their GPUs being NVLinked is an accident of where the host put them).

Every verdict comes from the engine: ``plan.rank_hosts`` runs the host filters (state, admission: vCPUs and
memory), the GPU filters (mode, same-size locks, maxima, framebuffer, placement IDs, MIG slots), the GPU-set
search and the scorers for one VM on the state left by the VMs placed before it; ``plan.apply_candidate``
then adds its consumers (with their placement IDs or MIG slots) and admits its vCPUs and memory.

The assignment is searched jointly, by branch and bound over the VMs in ``order`` (largest first: GPUs,
framebuffer per GPU, memory, vCPUs, name). At each VM the branches are the hosts that can take it, best
ranked first (hosts whose state is identical, as the hosts of one rack type often are, are tried once),
then "leave it behind". An assignment is better when it moves (1) more VMs, (2) more GPUs, (3) more VMs at
their current link class or better; remaining ties go to the engine's ranking, earlier VMs first, so when
greedy (every VM on its best remaining host) moves everything the answer is greedy's. The bound: the VMs
placed so far plus the remaining VMs that still have a host on the current state (placing VMs never makes
room, so a VM with no host now has none further down). The first leaf is the greedy assignment, so the
answer is never worse than greedy. Each host offers one GPU set, the engine's on the state at that point, so
where vSphere picks the GPU a VM's pick depends on what arrived before it: a VM the search leaves behind may
still fit once the others are placed (on a performance-policy host a second 20C opens the empty GPU two 10C
VMs need, yet shares the first GPU once they hold the other), even when the search ran to the end. Such VMs
are added at the end, and the plan is then not called optimal.

Exact for up to ``EXACT_VMS`` VMs, within ``NODE_BUDGET`` host rankings and ``EVALUATION_BUDGET`` host
evaluations (rankings times hosts in the cluster; a safety net counted, not timed, so answers are
reproducible); a search cut short by the budget says so and keeps the best assignment found. Beyond that the
search is bounded: each VM branches over its ``BOUNDED_BRANCHES`` best distinct hosts plus "leave
behind", within the same node budget. The plan says which (``search``), how many rankings it took and the
upper bound on movable VMs, so a bounded answer shows how far from optimal it can be.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from gpucatalog.profiles import ProfileNameError, parse_profile_name
from placement.engine import gpuset
from placement.engine.explain import class_words, link_text
from placement.engine.filters import RequestContext
from placement.engine.mig import is_unheld
from placement.engine.model import RESERVATION_PREFIX, Consumer, Fabric, HostState, reservation_label
from placement.engine.plan import apply_candidate, evaluate_host, rank_hosts
from placement.engine.request import PlacementRequest, RequestError
from placement.engine.result import Candidate, Rejection, candidate_link_text

EXACT_VMS = 12  # VMs searched exactly
NODE_BUDGET = 4000  # host rankings (one VM over every host) per evacuation
EVALUATION_BUDGET = 100_000  # host evaluations (rankings x hosts): large clusters get fewer rankings
BOUNDED_BRANCHES = 2  # hosts tried per VM beyond EXACT_VMS
_LEFT = 10**6  # rank of "left behind" in the tie-break


@dataclass(frozen=True)
class VmSize:
    """What a VM must be admitted with: vCPUs and the memory it reserves (GPU VMs reserve all of it)."""

    vcpus: int = 0
    memory_mb: int = 0
    power_state: str = ""  # vSphere's: poweredOn, poweredOff, suspended; "" when unknown


@dataclass(frozen=True)
class Move:
    vm: str
    from_gpus: tuple[str, ...]
    request: PlacementRequest | None
    target: Candidate | None
    reasons: tuple[str, ...] = ()  # why it cannot move, or notes on the move

    def to_dict(self) -> dict:
        return {
            "vm": self.vm,
            "from_gpus": list(self.from_gpus),
            "target": self.target.to_dict() if self.target else None,
            "reasons": list(self.reasons),
        }


@dataclass(frozen=True)
class Search:
    method: str  # "exact" | "bounded"
    nodes: int  # host rankings made
    optimal: bool  # the answer is proven best by the objective in the module docstring
    upper_bound: int  # no assignment moves more VMs than this
    note: str = ""

    def to_dict(self) -> dict:
        return {
            "method": self.method,
            "nodes": self.nodes,
            "optimal": self.optimal,
            "upper_bound": self.upper_bound,
            "note": self.note,
        }


@dataclass(frozen=True)
class EvacuationPlan:
    host: str
    moves: tuple[Move, ...]
    host_id: int | None = None
    vcenter: str = ""
    search: Search | None = None

    @property
    def complete(self) -> bool:
        return all(m.target is not None for m in self.moves)

    @property
    def cannot_move(self) -> tuple[Move, ...]:
        return tuple(m for m in self.moves if m.target is None)

    def to_dict(self) -> dict:
        return {
            "host": self.host,
            "host_id": self.host_id,
            "vcenter": self.vcenter,
            "complete": self.complete,
            "search": self.search.to_dict() if self.search else None,
            "moves": [m.to_dict() for m in self.moves],
            "cannot_move": [{"vm": m.vm, "reasons": list(m.reasons)} for m in self.cannot_move],
        }


# ---------------------------------------------------------------- the VMs as requests


@dataclass
class _Job:
    vm: str
    from_gpus: tuple[str, ...]
    request: PlacementRequest | None
    ctx: RequestContext | None
    order: tuple
    source_class: int = -1  # ring class of the GPUs it holds now (-1: one GPU)
    notes: tuple[str, ...] = ()
    error: str = ""
    source_numa: tuple[int, ...] = ()  # NUMA nodes of the GPUs it holds now (known ones)

    @property
    def label(self) -> str:
        return _label(self.vm)


def _label(vm: str) -> str:
    """The VM's name, or "the reservation for NAME" (never the engine's consumer key)."""
    return reservation_label(vm) or vm


def _vms(host: HostState) -> dict[str, list[tuple[str, Consumer]]]:
    """The host's VMs with the GPUs they hold; a GPU instance no VM holds is no VM and stays with the host."""
    vms: dict[str, list[tuple[str, Consumer]]] = {}
    for g in sorted(host.gpus, key=lambda g: g.pci_id):
        for c in g.consumers:
            if not is_unheld(c.vm):
                vms.setdefault(c.vm, []).append((g.pci_id, c))
    return vms


def _job(host: HostState, vm: str, held: list[tuple[str, Consumer]], size: VmSize | None) -> _Job:
    from_gpus = tuple(p for p, _ in held)
    kinds = {c.kind for _, c in held}
    profiles = {(c.profile or "").lower() for _, c in held}
    n = len(held)
    topo, order = gpuset.topology_for(host)
    source_class = topo.ring_class(gpuset.mask_of(order, from_gpus)) if n > 1 else -1
    if len(kinds) > 1 or len(profiles) > 1:
        what = ", ".join(sorted(f"{c.kind} {c.profile or ''}".strip() for _, c in held))
        return _Job(
            vm,
            from_gpus,
            None,
            None,
            (0,),
            source_class,
            error=f"holds GPUs of different kinds or profiles ({what}): cannot be re-planned as one request",
        )
    kind = held[0][1].kind
    profile = held[0][1].profile
    whole = kind in ("passthrough", "dynamic-passthrough")
    if kind == "mig" and profile:
        try:
            if parse_profile_name(profile).mig_compute_slices is None:
                kind = "vgpu"  # a time-sliced profile recorded as MIG
        except ProfileNameError:
            pass
    request = PlacementRequest(
        gpus_per_vm=n,
        consumption=kind,
        profile=None if whole else profile,
        board=host.gpu(held[0][0]).board if whole else None,
        vcpus=size.vcpus if size else 0,
        memory_mb=size.memory_mb if size else 0,
        clusters=(host.cluster,) if host.cluster else (),
        # a Dynamic DirectPath device powers on only with a GPU of its label: the one its GPUs have here
        hardware_label=(host.gpu(held[0][0]).hardware_label or None) if kind == "dynamic-passthrough" else None,
    )
    notes: list[str] = []
    try:
        no_p2p = request.no_p2p
        framebuffer = request.vgpu_profile.framebuffer_gb if request.vgpu_profile else 10**6
    except ProfileNameError as exc:
        return _Job(vm, from_gpus, None, None, (0,), source_class, error=f"cannot re-plan {_label(vm)}: {exc}")
    if no_p2p:  # fractional or separately assigned vGPUs: their GPUs never talk, there is no link class to keep
        if source_class == 0:
            why = "fractional vGPUs" if request.fractional else "separately assigned vGPUs"
            notes.append(f"{why}: NVLink P2P does not apply, any GPUs with room will do")
        source_class = -1
    elif n > 1 and source_class == 0 and request.effective_interconnect != "nvlink":
        request = replace(request, interconnect="nvlink")
    try:
        request.validate()
    except RequestError as exc:
        return _Job(vm, from_gpus, None, None, (0,), source_class, error=f"cannot re-plan {_label(vm)}: {exc}")
    if size is None:
        notes.append("vCPUs and memory unknown: admission checks GPUs only")
    if size is not None and size.power_state == "suspended":
        notes.append("suspended: planned so it can resume at the target")
    elif not any(c.powered_on for _, c in held):
        notes.append("powered off: planned so it can power on at the target")
    if vm.startswith(RESERVATION_PREFIX):
        notes.append("a reservation, no VM yet: release it and reserve the target's GPUs instead")
    elif kind == "passthrough":
        notes.append("static DirectPath VM: reconfigure its devices on the target host (no vMotion)")
    if request.hardware_label:
        notes.append(f"Dynamic DirectPath: kept to GPUs labelled {request.hardware_label!r}, as its GPUs here are")
    key = (-n, -framebuffer, -request.memory_mb, -request.vcpus, vm)
    numa = tuple(sorted({g.numa_node for p in from_gpus if (g := host.gpu(p)).numa_node is not None}))
    return _Job(vm, from_gpus, request, RequestContext.of(request), key, source_class, tuple(notes), "", numa)


# ---------------------------------------------------------------- the search


def _state_key(host: HostState) -> tuple:
    """What decides how a host answers any request, without names: hosts with equal keys are interchangeable."""
    return (
        gpuset.signature_of(host)[0],
        tuple(
            (
                g.pci_id,
                g.board,
                g.model,
                g.graphics_type,
                g.vgpu_mode,
                g.mig_enabled,
                g.reserved,
                g.hardware_label,
                tuple(
                    sorted(
                        (c.kind, c.profile or "", c.placement_gb or -1, c.mig_slot or -1) for c in g.active_consumers
                    )
                ),
            )
            for g in host.gpus
        ),
        host.assignment_policy,
        host.cpu_free,
        host.memory_free_mb,
    )


def _target_class(fabric: Fabric, c: Candidate) -> int:
    if len(c.gpus) < 2:
        return -1
    host = fabric.host(c.host, host_id=c.host_id, vcenter=c.vcenter)
    topo, order = gpuset.topology_for(host)
    return topo.ring_class(gpuset.mask_of(order, (g.pci_id for g in c.gpus)))


class _Searcher:
    def __init__(self, jobs: list[_Job], budget: int, branches: int | None) -> None:
        self.jobs = jobs
        self.budget = budget
        self.branches = branches
        self.nodes = 0
        self.truncated = False  # budget ran out or branches were cut: not proven optimal
        self.best_key: tuple | None = None
        self.best: list[Candidate | None] = []
        self.root_bound = 0

    def has_host(self, state: Fabric, job: _Job) -> bool:
        assert job.ctx is not None
        return any(not isinstance(evaluate_host(h, job.ctx), Rejection) for h in state.hosts)

    def run(self, state: Fabric) -> None:
        self.root_bound = sum(1 for j in self.jobs if self.has_host(state, j))
        self._dfs(0, state, [], (0, 0, 0), [])

    def _bound(self, i: int, state: Fabric, key: tuple) -> tuple:
        rest = [j for j in self.jobs[i:] if self.has_host(state, j)]
        gpus = sum(j.request.gpus_per_vm for j in rest if j.request is not None)
        return (key[0] + len(rest), key[1] + gpus, key[2] + len(rest))

    def _dfs(self, i: int, state: Fabric, picks: list[Candidate | None], key: tuple, ranks: list[int]) -> None:
        if i == len(self.jobs):
            full = (*key, tuple(-r for r in ranks))
            if self.best_key is None or full > self.best_key:
                self.best_key, self.best = full, list(picks)
            return
        if self.best_key is not None:
            if self._bound(i, state, key) <= self.best_key[:3]:
                return  # cannot beat the best: pruned, still exact
            if self.nodes >= self.budget:
                self.truncated = True
                return
        job = self.jobs[i]
        assert job.request is not None and job.ctx is not None
        self.nodes += 1
        candidates, _ = rank_hosts(state.hosts, job.ctx)
        seen: set[tuple] = set()
        tried = 0
        for rank, cand in enumerate(candidates):
            host = state.host(cand.host, host_id=cand.host_id, vcenter=cand.vcenter)
            sk = _state_key(host)
            if sk in seen:
                continue
            seen.add(sk)
            if self.branches is not None and tried >= self.branches:
                self.truncated = True
                break
            tried += 1
            kept = job.source_class < 0 or _target_class(state, cand) <= job.source_class
            nxt = apply_candidate(state, cand, job.request, job.vm)
            step = (key[0] + 1, key[1] + job.request.gpus_per_vm, key[2] + int(kept))
            self._dfs(i + 1, nxt, [*picks, cand], step, [*ranks, rank])
        self._dfs(i + 1, state, [*picks, None], key, [*ranks, _LEFT])


# ---------------------------------------------------------------- reasons


def _why_not(job: _Job, state: Fabric, alone: bool, scope: str = "the cluster") -> tuple[str, ...]:
    """Why ``job`` has no host on ``state`` (or why the joint plan leaves it behind)."""
    assert job.request is not None and job.ctx is not None
    req = job.request
    _, rejected = rank_hosts(state.hosts, job.ctx)
    lines: list[str] = []
    if req.effective_interconnect == "nvlink":
        lines.append(f"{job.label} runs on an NVLink set of {req.gpus_per_vm} GPUs and needs one elsewhere")
        slower, _ = rank_hosts(state.hosts, RequestContext.of(replace(req, interconnect="any")))
        if slower:
            c = slower[0]
            lines.append(
                f"{c.host} has {req.gpus_per_vm} GPUs on {link_text(*c.bottleneck)}: not taken, "
                "the VM would lose NVLink"
            )
    if alone:
        lines.append(
            f"{job.label} would fit if moved alone; the plan moves more VMs (or GPUs) by giving that room to others"
        )
    lines.extend(_grouped(rejected))
    if not state.hosts:
        lines.append(f"no other usable host in {scope}")
    return tuple(lines)


def _grouped(rejected: Sequence[Rejection], groups: int = 5, names: int = 3) -> list[str]:
    """Hosts refusing for the same reasons on one line, most hosts first: "12 hosts (esx-01, esx-02, esx-03, ...):
    host is in maintenance mode" (at 1,000 hosts, one line per host repeated the same reason for the first five)."""
    by_reason: dict[str, list[str]] = {}
    for r in rejected:
        by_reason.setdefault("; ".join(r.reasons), []).append(r.host)
    lines = []
    for reason, hosts in sorted(by_reason.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:groups]:
        if len(hosts) == 1:
            lines.append(f"{hosts[0]}: {reason}")
        else:
            shown = ", ".join(hosts[:names]) + (", ..." if len(hosts) > names else "")
            lines.append(f"{len(hosts)} hosts ({shown}): {reason}")
    if len(by_reason) > groups:
        rest = sum(len(h) for _, h in sorted(by_reason.items(), key=lambda kv: (-len(kv[1]), kv[0]))[groups:])
        lines.append(f"{rest} more host{'s' if rest != 1 else ''} for other reasons")
    return lines


def _move_notes(job: _Job, target: Candidate, state: Fabric) -> tuple[str, ...]:
    notes = list(job.notes)
    if job.source_class >= 0:
        now = _target_class(state, target)
        was = class_words(job.source_class)
        if now <= job.source_class:
            notes.insert(0, f"its GPUs stay joined by {was}: {candidate_link_text(*target.bottleneck)}")
        else:
            notes.insert(
                0,
                f"its GPUs go from {was} to {class_words(now)} (slower): {candidate_link_text(*target.bottleneck)}",
            )
    there = tuple(target.numa_nodes)
    if len(there) == 1 and job.source_numa and there != job.source_numa:
        here = ", ".join(map(str, job.source_numa))
        notes.append(
            f"NUMA node {there[0]} on {target.host} (node{'s' if len(job.source_numa) > 1 else ''} {here} here): "
            f"set its vCPUs and memory to node {there[0]} (numa.nodeAffinity) if they are pinned"
        )
    return tuple(notes)


# ---------------------------------------------------------------- entry point


def plan_evacuation(
    fabric: Fabric,
    host_name: str,
    *,
    host_id: int | None = None,
    vcenter: str | None = None,
    sizes: Mapping[str, VmSize] | None = None,
    exact_vms: int = EXACT_VMS,
    node_budget: int = NODE_BUDGET,
) -> EvacuationPlan:
    """Plan the moves of every GPU VM on the host (by primary key when given, else by name and vCenter) to
    the other hosts of its cluster, jointly; ``sizes`` gives each VM's vCPUs and memory (by VM name)."""
    source = fabric.host(host_name, host_id=host_id, vcenter=vcenter)
    others = Fabric(
        tuple(
            h
            for h in fabric.hosts
            # a host outside any cluster moves its VMs to any host of its vCenter (vMotion crosses clusters)
            if h.ident != source.ident
            and not h.stale  # the last sync did not see it: not a host to move to, nor one to explain
            and h.vcenter == source.vcenter
            and (h.cluster == source.cluster or not source.cluster)
        )
    )
    scope = "the cluster" if source.cluster else "its vCenter"
    jobs = [_job(source, vm, held, None if sizes is None else sizes.get(vm)) for vm, held in _vms(source).items()]
    jobs.sort(key=lambda j: j.order)
    movable = [j for j in jobs if j.request is not None]
    bounded = len(movable) > exact_vms
    budget = max(1, min(node_budget, EVALUATION_BUDGET // max(1, len(others.hosts))))
    searcher = _Searcher(movable, budget, BOUNDED_BRANCHES if bounded else None)
    searcher.run(others)
    picks = dict(zip((j.vm for j in movable), searcher.best, strict=True)) if movable else {}
    final = others
    for j in movable:
        pick = picks[j.vm]
        if pick is not None:
            assert j.request is not None
            final = apply_candidate(final, pick, j.request, j.vm)
    # A VM the search left behind can still fit once the others are placed: the search takes VMs in one order
    # (largest first), and where vSphere picks the GPU (vGPU, MIG) a VM placed later lands elsewhere.
    late: list[_Job] = []
    for j in movable:
        assert j.request is not None and j.ctx is not None
        if picks[j.vm] is None:
            found, _ = rank_hosts(final.hosts, j.ctx)
            if found:
                picks[j.vm] = found[0]
                final = apply_candidate(final, found[0], j.request, j.vm)
                late.append(j)
    repaired = len(late)
    moves = []
    stuck = []
    # listed in the order the picks were made: the order to migrate in
    for j in [j for j in movable if j not in late] + late:
        pick = picks[j.vm]
        if pick is None:
            alone = searcher.has_host(others, j)
            stuck.append(Move(j.vm, j.from_gpus, j.request, None, _why_not(j, final, alone, scope) + j.notes))
            continue
        moves.append(Move(j.vm, j.from_gpus, j.request, pick, _move_notes(j, pick, others)))
    stuck += [Move(j.vm, j.from_gpus, None, None, (j.error,)) for j in jobs if j.request is None]
    moves += stuck
    placed = sum(1 for p in picks.values() if p is not None) - repaired
    optimal = not searcher.truncated and not repaired
    if bounded:
        note = (
            f"{len(movable)} VMs > {exact_vms}: bounded search ({BOUNDED_BRANCHES} best distinct hosts per VM, "
            f"{budget} rankings at most), never worse than greedy largest-first"
        )
    elif searcher.truncated:
        # the first (greedy) descent always finishes, so the count can pass the budget
        ranked = f"{searcher.nodes} host ranking{'s' if searcher.nodes != 1 else ''}"
        note = f"stopped after {ranked}: best assignment found so far (never worse than greedy)"
    elif repaired:
        note = "every host choice searched with the VMs arriving largest first (another order can fit more)"
    else:
        note = "the best possible: no assignment moves more VMs, more GPUs, or keeps more link classes"
    if repaired:
        note += (
            "; 1 VM left behind by the search fits on what remained and was added last"
            if repaired == 1
            else f"; {repaired} VMs left behind by the search fit on what remained and were added last"
        )
    if any(m.target is not None and m.request is not None and not m.request.whole_gpu for m in moves):
        note += "; migrate in the order listed: vSphere picks each vGPU's GPU as it arrives, as the plan predicts"
    if placed + repaired == searcher.root_bound and not optimal:
        note += "; it moves every VM that has a host at all (the most VMs any plan can move)"
    search = Search("bounded" if bounded else "exact", searcher.nodes, optimal, searcher.root_bound, note)
    return EvacuationPlan(source.name, tuple(moves), source.host_id, source.vcenter, search)
