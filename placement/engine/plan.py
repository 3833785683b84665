"""The planner: filters -> per-host GPU choice -> scorers -> ranking -> optional joint replica placement.

Per host the GPUs come from the exact GPU-set search for whole GPUs and multi-GPU VMs; for a
single fractional vGPU or MIG instance the host, not the advisor, picks the GPU, so the planner predicts
that pick with the host's own rules (assignment policy, mixed-size start, MIG slot) and scores what it
leaves behind.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial

from placement.engine import gpuset, mig, vgpu
from placement.engine.explain import (
    KEY_TERMS,
    LOCAL_LABEL,
    UNUSED_LABEL,
    compare,
    hosts_phrase,
)
from placement.engine.filters import (
    GpuFacts,
    RequestContext,
    aggregate,
    caveat_lines,
    check_gpus,
    check_host,
    host_warnings,
)
from placement.engine.lru import ByIdentity, Lru
from placement.engine.model import CAPTURE_MODEL, PLANNED_VM_PREFIX, Consumer, Fabric, HostState, evolve, with_consumers
from placement.engine.request import PlacementRequest
from placement.engine.result import SEPARATE_LABEL, Candidate, GpuChoice, Plan, Rejection
from placement.engine.scorers import (
    FILL_WHY,
    Proposal,
    balance_ratios,
    crowded_nodes,
    group_texts,
    no_p2p_words,
    numa_crowding,
    pair_paths,
    score_all,
)


def plan(fabric: Fabric, request: PlacementRequest, *, limit: int | None = None) -> Plan:
    """Rank every host for ``request`` (validated first; raises RequestError) and explain each outcome."""
    request.validate()
    ctx = RequestContext.of(request)
    shown, rejected = rank_hosts(fabric.hosts, ctx, vm_index=0, limit=limit)
    if request.vms == 1:
        return Plan(tuple(shown), tuple(rejected))
    assignment, unplaced = place_replicas(fabric, ctx)
    return Plan(tuple(shown), tuple(rejected), tuple(assignment), tuple(unplaced))


def rank_hosts(
    hosts: Sequence[HostState], ctx: RequestContext, *, vm_index: int = 0, limit: int | None = None
) -> tuple[list[Candidate], list[Rejection]]:
    """Ranked candidates (the first ``limit`` of them, explained) and every rejection."""
    proposals: list[tuple[tuple, Callable[[], tuple[str, ...]], Proposal]] = []
    rejected: list[Rejection] = []
    ctx_hash = hash(ctx)
    seen = _seen_hosts(ctx)
    accepted = []
    for host in hosts:
        entry = seen.get(host)
        if entry is None:
            memo_key, outcome = _evaluate(host, ctx, ctx_hash)
            entry = (memo_key, outcome, {})
            seen.put(host, entry)
        if isinstance(entry[1], Rejection):
            rejected.append(entry[1])
        else:
            accepted.append((host, entry))
    # A host is "the last wholly free one of its type" only against another host that could take the request:
    # with nothing to rank it against (a single captured host) the remark would only read as a penalty.
    last_whole = _last_whole_hosts(hosts) if len(accepted) > 1 else set()
    for host, (memo_key, outcome, ranked) in accepted:
        whole = bool(last_whole) and host.ident in last_whole and len(outcome.choices) < len(host.gpus)
        found = ranked.get(whole)
        if found is None:
            if whole:
                outcome = evolve(outcome, last_whole=True)
            # The ranking key depends on the GPU-level outcome (memo_key) and on the host's CPU/memory headroom;
            # the explanation is built from the proposal of this very host (its name) only when it is shown.
            score_key = (
                memo_key, host.cpu_free, host.memory_free_mb, host.capacity_known, whole, host.memory_configured_mb,
                host.memory_mb, host.numa_load,
            )  # fmt: skip
            scored = _SCORE_MEMO.get(score_key)
            if scored is None:
                scored = score_all(outcome)
                _SCORE_MEMO.put(score_key, scored)
            found = ranked[whole] = (scored[0], outcome, [])
        key, outcome, lines = found
        proposals.append((key, partial(_lines_once, outcome, lines), outcome))
    # equal keys: fresh inventory before stale, then by host name (stable sorts)
    proposals.sort(key=lambda t: (bool(t[2].warnings), t[2].host.name, t[2].host.vcenter))
    proposals.sort(key=lambda t: t[0], reverse=True)
    rejected.sort(key=lambda r: (r.host, r.vcenter))
    return _candidates(proposals, vm_index, limit), rejected


WHOLE_HOST_GPUS = 8  # hosts of at least this many GPUs count as "whole" hosts worth keeping free


def _type_of(host: HostState) -> tuple:
    return (gpuset.signature_of(host)[0], tuple(g.board or g.model for g in host.gpus))


def _last_whole_hosts(hosts: Sequence[HostState]) -> set[tuple]:
    """Idents of hosts of 8+ GPUs with every GPU free that are the only such host of their type (topology and
    boards): a request smaller than the host avoids breaking the last of them while another host fits."""
    out: dict[tuple, list] = {}
    for h in hosts:
        kind = _whole_type(h)
        if kind is not None:
            out.setdefault(kind, []).append(h.ident)
    return {v[0] for v in out.values() if len(v) == 1}


def _whole_type(host: HostState) -> tuple | None:
    """The host's type when it has 8+ GPUs and every one is free, else None."""
    kind = _WHOLE.get(host)
    if kind is None:
        whole = len(host.gpus) >= WHOLE_HOST_GPUS and all(not g.consumers and not g.reserved for g in host.gpus)
        kind = _type_of(host) if whole else ()  # () rather than None: "not whole" is cached too
        _WHOLE.put(host, kind)
    return kind or None


def _name_beside(other: HostState, host: HostState) -> str:
    """The other host's name, with its vCenter when it differs (names repeat across vCenters)."""
    if other.vcenter and other.vcenter != host.vcenter:
        return f"{other.name} ({other.vcenter})"
    return other.name


def _candidates(
    proposals: list[tuple[tuple, Callable[[], tuple[str, ...]], Proposal]], vm_index: int, limit: int | None
) -> list[Candidate]:
    distinct = sorted({p[0] for p in proposals}, reverse=True)
    rank_of = {k: i for i, k in enumerate(distinct)}
    out = []
    for i, (key, explain, p) in enumerate(proposals[:limit] if limit is not None else proposals):
        link = _link(p)
        # score = bottleneck GB/s plus a tail below 0.1 that orders the remaining terms by dense rank
        tail = 0.099 * (len(distinct) - rank_of[key]) / len(distinct)
        score = round(link[1] + tail, 9)
        caveats = caveat_lines(p.host, (c.pci_id for c in p.choices))
        # a warning first: automation reads explanation[0]
        unpublished = vgpu.unpublished_table_caution(p.request.vgpu_profile)
        lines = (*p.warnings, *p.set_warnings, *explain(), *caveats, *p.notes, *([unpublished] if unpublished else ()))
        if len(proposals) == 1:  # no other host to be filled before: only how many GPUs stay free
            lines = tuple(line.removesuffix(FILL_WHY) for line in lines)
        else:
            j = 1 if i == 0 else i - 1
            other = proposals[j]
            verb = "beats" if i == 0 else "ranks below"
            mine, theirs = (key, other[0])
            other_link = _link(other[2])
            # equal keys sort by host name, then vCenter name (above): name the one that differed
            tie_order = "vCenter name" if other[2].host.name == p.host.name else "host name"
            versus = compare(
                verb,
                _name_beside(other[2].host, p.host),
                mine,
                theirs,
                link,
                other_link,
                len(p.numa_nodes),
                len(other[2].numa_nodes),
                *_words_if_needed(mine, theirs, p, other[2]),
                tie_order=tie_order,
            )
            if mine == theirs and bool(p.warnings) != bool(other[2].warnings):
                versus = versus.replace(
                    f"; ordered by {tie_order}",
                    "; ranked after it: this host's inventory is stale" if p.warnings else
                    "; ranked first: its inventory is fresh, the other's is stale",
                )  # fmt: skip
            lines = (*lines, versus)
        out.append(
            Candidate(
                host=p.host.name,
                vm_index=vm_index,
                gpus=p.choices,
                score=score,
                bottleneck=link,
                numa_nodes=p.numa_nodes,
                explanation=lines,
                key=key,
                host_id=p.host.host_id,
                vcenter=p.host.vcenter,
            )
        )
    return out


WORD_TERMS = frozenset({"class", "numa", "numaroom", "pcie", "leave", "fragmentation", "pickcost", "balance"})


def _words_if_needed(mine: tuple, theirs: tuple, p: Proposal, q: Proposal) -> tuple[dict | None, dict | None]:
    """Each side's sentences, built only when the first differing ranking term is said in them."""
    term = next((t for t, a, b in zip(KEY_TERMS, mine, theirs, strict=False) if a != b), None)
    return (_words(p), _words(q)) if term in WORD_TERMS else (None, None)


def _words(p: Proposal) -> dict[str, str]:
    """The proposal's own sentences for the comparison with its neighbour in the ranking."""
    words = {"numa": "NUMA node unknown" if p.numa_unknown or not p.numa_nodes else (
        f"NUMA node {p.numa_nodes[0]}" if len(p.numa_nodes) == 1 else
        f"spans NUMA nodes {', '.join(map(str, p.numa_nodes))}")}  # fmt: skip
    if len(p.numa_nodes) == 1 and not p.numa_unknown:
        crowded = numa_crowding(p.host, p.request, p.numa_nodes[0])
        words["numaroom"] = (
            f"NUMA node {p.numa_nodes[0]} is crowded ({crowded.split(':', 1)[0]})"
            if crowded
            else f"NUMA node {p.numa_nodes[0]} has room for the VM"
        )
    s = p.set_score
    if s is not None and len(p.choices) > 1:
        words["pcie"] = pair_paths(p)
    if s is not None:
        leave, cost = group_texts(p, s)
        extra = ", breaks the last wholly free host of its type" if p.last_whole else ""
        if p.host.partitions_unknown:
            words["leave"] = f"{leave}{extra}"
        else:
            words["leave"] = f"{cost or 'uses up no whole free group'}{extra} ({leave})"
    if p.frag_text:
        words["fragmentation"] = p.frag_text
    ratios = balance_ratios(p)
    if ratios is not None:
        words["balance"] = f"{ratios[0]:.1f} GB"
        words["balance-vm"] = f"{ratios[1]:.1f}"
    if s is not None and p.request.no_p2p and len(p.choices) > 1:
        n = s.groups_broken
        what = "Fabric Manager partition" if p.host.nvswitch else "NVLink group"
        words["class"] = (
            f"takes GPUs from {n} whole {what}{'s' if n != 1 else ''} ({no_p2p_words(p.request)} cannot use them)"
        )
    return words


def _link(p: Proposal) -> tuple[str, float]:
    """The set's bottleneck link; ("LOCAL", 0) for one GPU, ("UNUSED", 0) for fractional vGPUs and ("SEPARATE", 0)
    for separately assigned vGPUs, which never talk over it (no NVLink P2P, and the interconnect is not scored)."""
    s = p.set_score
    if s is None or len(p.choices) < 2:
        return (LOCAL_LABEL, 0.0)
    if p.request.fractional:
        return (UNUSED_LABEL, 0.0)
    if p.request.no_p2p:
        return (SEPARATE_LABEL, 0.0)
    return (s.bottleneck_label, s.bottleneck_gbps)


# ---------------------------------------------------------------- one host


# GPU-level outcomes keyed by value: the host's GPUs (with their consumers), its topology signature, its
# assignment policy and the request. Hosts that look alike, as the hosts of one rack type do, are evaluated
# once; host-level filters and headroom always run per host. LRU-bounded, so a long-lived worker stays small.
HOST_MEMO_MAX = 20_000
_HOST_MEMO: Lru[Proposal | Rejection] = Lru(HOST_MEMO_MAX)


_SCORE_MEMO: Lru[tuple] = Lru(HOST_MEMO_MAX)

# Per request context, what each host object came to (its outcome and ranking key), by identity. Host states
# are immutable and plans over an estate see the same objects again and again (a reservation replaces one
# host of thousands; the inventory snapshot keeps unchanged hosts as the same objects), so the memos above,
# keyed by value, are consulted once per host object and context instead of once per host and request.
# An entry holds its host, so an id is not reused while it is cached. About 1.3 KB per host and request shape
# (measured: 20 MB for 16 shapes over 1,000 hosts), so only the last few shapes are kept.
SEEN_CONTEXTS = 8
_SEEN: Lru[ByIdentity[tuple]] = Lru(SEEN_CONTEXTS)
_WHOLE: ByIdentity[tuple] = ByIdentity(HOST_MEMO_MAX)  # each host's type when it is a wholly free 8+ GPU host


def _seen_hosts(ctx: RequestContext) -> ByIdentity[tuple]:
    seen = _SEEN.get(ctx)
    if seen is None:
        seen = ByIdentity(HOST_MEMO_MAX)
        _SEEN.put(ctx, seen)
    return seen


class _MemoKey(tuple):
    """(topology signature, GPUs, policy, request) hashed once: the request's hash is computed once per plan."""

    _hash: int

    def __new__(cls, items: tuple, h: int) -> _MemoKey:
        self = super().__new__(cls, items)
        self._hash = h
        return self

    def __hash__(self) -> int:
        return self._hash

    def __reduce__(self) -> tuple:
        return (tuple, (tuple(self),))


def _lines(p: Proposal) -> tuple[str, ...]:
    return score_all(p)[1]()


def _lines_once(p: Proposal, cell: list[tuple[str, ...]]) -> tuple[str, ...]:
    """A proposal's explanation, kept in ``cell`` (its host object's entry): a full plan explains every candidate."""
    if not cell:
        cell.append(_lines(p))
    return cell[0]


def evaluate_host(host: HostState, ctx: RequestContext) -> Proposal | Rejection:
    return _evaluate(host, ctx, hash(ctx))[1]


def _evaluate(host: HostState, ctx: RequestContext, ctx_hash: int) -> tuple[tuple | None, Proposal | Rejection]:
    failing = check_host(host, ctx)
    if failing:
        return None, Rejection(host.name, tuple(s.reason for s in failing), host.host_id, host.vcenter)
    sig = gpuset.signature_of(host)[0]
    crowded = crowded_nodes(host, ctx.request)
    key = _MemoKey((sig, host.gpus, host.assignment_policy, ctx, crowded),
                   hash((hash(sig), hash(host.gpus), host.assignment_policy, ctx_hash, crowded)))  # fmt: skip
    outcome = _HOST_MEMO.get(key)
    if outcome is None:
        outcome = _evaluate_gpus(host, ctx, crowded)
        _HOST_MEMO.put(key, outcome)
    if isinstance(outcome, Rejection):
        return key, Rejection(host.name, outcome.reasons, host.host_id, host.vcenter)
    warnings = host_warnings(host)  # per host, after the memo (hosts alike in GPUs may differ in freshness)
    if warnings:
        return key, evolve(outcome, host=host, warnings=warnings)
    return key, (outcome if outcome.host is host else evolve(outcome, host=host))


def _evaluate_gpus(host: HostState, ctx: RequestContext, crowded: frozenset[int] = frozenset()) -> Proposal | Rejection:
    verdicts = check_gpus(host, ctx)
    k = ctx.request.gpus_per_vm
    eligible = verdicts.eligible
    if len(eligible) < k:
        reasons = aggregate(verdicts.refused, len(host.gpus))
        if k > 1 or not reasons:
            n = len(eligible)
            reasons.insert(
                0, f"needs {k} eligible GPU{'s' if k > 1 else ''}, {n} of {len(host.gpus)} {'is' if n == 1 else 'are'}"
            )
        return Rejection(host.name, tuple(reasons))
    r = ctx.request
    if k == 1 and r.consumption in ("vgpu", "device-group") and ctx.profile is not None:
        outcome = _single_vgpu(host, ctx, eligible)
    elif r.separate_vgpus and ctx.profile is not None:
        outcome = _separate_vgpus(host, ctx, eligible)
    elif k == 1 and r.consumption == "mig" and ctx.profile is not None:
        outcome = _single_mig(host, ctx, eligible)
    else:
        outcome = _gpu_set(host, ctx, eligible, verdicts.refused, crowded)
    note = offsets_note(host) if r.consumption in ("vgpu", "device-group", "mig") else ""
    if note and isinstance(outcome, Proposal):
        outcome = evolve(outcome, notes=(*outcome.notes, note))
    return outcome


OFFSETS_INFERRED = (
    "placement IDs of running vGPUs inferred in VM-name order; import `nvidia-smi vgpu -q` for exact ones"
)
OFFSETS_EXACT = "placement IDs and MIG slots of running vGPUs are exact (imported)"


def offsets_note(host: HostState) -> str:
    """Where the offsets of the host's mixed-size vGPUs and MIG instances come from: imported (exact) or inferred for
    the VMs vCenter runs, the advisor's own choice for VMs this plan places and for reservations (never "imported")."""
    imported = inferred = placed = reserved = 0
    for g in host.gpus:
        for c in g.active_consumers:
            known = vgpu.offset_known(g, c)
            if known is None:
                continue
            if isinstance(c, PlacedConsumer) or c.vm.startswith(PLANNED_VM_PREFIX):
                placed += 1
            elif c.reservation and known:
                reserved += 1
            elif known:
                imported += 1
            else:
                inferred += 1
    parts = []
    if inferred:
        mig_note = " (MIG slots: `nvidia-smi mig -lgi`)" if any(g.mig_enabled for g in host.gpus) else ""
        parts.append(f"{OFFSETS_INFERRED}{mig_note} ({inferred} of {imported + inferred} running)")
    elif imported:
        parts.append(OFFSETS_EXACT)
    own = []
    if placed:
        own.append(f"{placed} vGPU{'s' if placed != 1 else ''} this plan places here")
    if reserved:
        own.append(f"{reserved} vGPU{'s' if reserved != 1 else ''} held by the advisor's reservations")
    if own:
        parts.append(
            f"the placement IDs and MIG slots of {' and of '.join(own)} are the advisor's own choice, not read from "
            "the host"
        )
    return "; ".join(parts)


def _gpu_set(
    host: HostState, ctx: RequestContext, eligible, refused, crowded: frozenset[int] = frozenset()
) -> Proposal | Rejection:
    r = ctx.request
    topo, order = gpuset.topology_for(host)
    free = gpuset.mask_of(order, (f.gpu.pci_id for f in eligible))
    fractional = r.fractional and r.gpus_per_vm > 1
    on_crowded = gpuset.mask_of(order, (g.pci_id for g in host.gpus if g.numa_node in crowded)) if crowded else 0
    result = gpuset.search(
        topo,
        free,
        r.gpus_per_vm,
        r.effective_interconnect,
        use_partitions=not fractional,
        fractional=fractional,
        crowded=on_crowded,
    )
    if result.best is None:
        reasons = [result.reason, *aggregate(refused, len(host.gpus))]
        return Rejection(host.name, tuple(reasons[:5]))
    chosen = gpuset.pci_of(order, result.best.mask)
    by_pci = {f.gpu.pci_id: f for f in eligible}
    choices = tuple(_choice(by_pci[p], ctx) for p in chosen)
    numa = tuple(sorted({by_pci[p].gpu.numa_node for p in chosen if by_pci[p].gpu.numa_node is not None}))
    numa_unknown = any(by_pci[p].gpu.numa_node is None for p in chosen)
    notes = []
    if r.consumption == "mig" and ctx.profile is not None and ctx.profile.mig_profile is not None:
        where = ", ".join(f"slot {c.mig_slot} on GPU {c.pci_id}" for c in choices)
        notes.append(f"MIG {ctx.profile.mig_profile.name} at {where}")
    pcie_bottleneck = not result.best.bottleneck_label.startswith("NV") and not r.fractional and not r.no_p2p
    if pcie_bottleneck and len(chosen) > 1:
        notes.extend(_unknown_pcie_caution({by_pci[p].gpu.model for p in chosen if by_pci[p].gpu.board is None}))
    if r.consumption == "dynamic-passthrough" and r.gpus_per_vm > 1:
        notes.append(
            "dynamic DirectPath picks any matching device at power-on: pin these GPUs (hardware label) to keep the set"
        )
    return Proposal(host, r, choices, result.best, numa, notes=tuple(notes), numa_unknown=numa_unknown)


def _unknown_pcie_caution(models: set[str]) -> list[str]:
    """The PCIe figures of GPUs whose board is not known are Gen4 x16's: said so, naming why it is not known."""
    if not models:
        return []
    if models == {CAPTURE_MODEL}:
        return [
            "caution: the capture does not say which board its GPUs are (plan --board), so the PCIe figures take "
            "Gen4 x16"
        ]
    named = ", ".join(sorted(m or "this GPU model" for m in models - {CAPTURE_MODEL}))
    return [
        f"caution: {named} is not in the catalog, so its PCIe generation is not known: the PCIe figures take Gen4 x16"
    ]


def _choice(f: GpuFacts, ctx: RequestContext) -> GpuChoice:
    g = f.gpu
    profile = ctx.profile
    if profile is None:
        return GpuChoice(g.pci_id, g.index)
    if ctx.request.consumption == "mig":
        view = f.mig
        slot = mig.choose_slot(view, profile.mig_profile) if view is not None and profile.mig_profile else None
        return GpuChoice(g.pci_id, g.index, mig_slot=slot, profile=profile.name)
    start = None
    if f.timesliced.mode == "mixedSize":
        start = vgpu.choose_mixed_start(f.timesliced, profile.framebuffer_gb)
    return GpuChoice(g.pci_id, g.index, placement_gb=start, profile=profile.name)


def _numa(f: GpuFacts) -> tuple[int, ...]:
    return (f.gpu.numa_node,) if f.gpu.numa_node is not None else ()


def _policy_pick(
    views: Sequence[vgpu.TimeslicedGpu], profile, policy: str
) -> tuple[vgpu.TimeslicedGpu, int | None] | None:
    """(GPU, mixed-size start) the host gives the next ``profile`` vGPU: same-size GPUs by the assignment policy,
    else mixed-size GPUs (least used; the policy is ignored there); None when no GPU takes it."""
    same = [v for v in views if v.mode == "sameSize"]
    if same:
        view = vgpu.choose_same_size_gpu(same, profile, policy)
        if view is not None:
            return view, None
    return vgpu.choose_mixed_gpu([v for v in views if v.mode == "mixedSize"], profile)


def _policy_words(policy: str) -> str:
    how = (
        "the compatible GPU with the fewest vGPUs"
        if policy != "consolidation"
        else "a GPU already locked to this profile before a neutral one"
    )
    return f"host policy {policy} (same-size mode): vSphere picks {how}"


def _gpu_name(host: HostState, pci_id: str) -> str:
    """ "0000:18:00.0 (module 1)": the module id is how HGX partitions are named."""
    module = host.gpu(pci_id).module_id
    return f"{pci_id} (module {module})" if module is not None else pci_id


def _nvlink_capacity(topo: gpuset.Topology, free: int) -> tuple[float, ...]:
    """``gpuset.leave_vector`` counting only NVLink-class groups (whole Fabric Manager partitions on NVSwitch boards):
    vGPUs gain nothing from PCIe sets on the host's best class, only device groups and passthrough VMs from NVLink."""
    nv = gpuset.leave_vector(topo, free)[: len(gpuset.LEAVE_SIZES)]
    return nv + nv


def _vgpu_set_score(host: HostState, eligible, chosen: Sequence[str]) -> gpuset.SetScore:
    """What the host's own choice of GPUs for vGPUs costs: whole free NVLink groups / Fabric Manager partitions
    among the empty eligible GPUs before and after (a GPU already running vGPUs is in no free group)."""
    topo, order = gpuset.topology_for(host)
    empty = gpuset.mask_of(order, (f.gpu.pci_id for f in eligible if not f.timesliced.residents))
    mask = gpuset.mask_of(order, chosen)
    k = len(chosen)
    ring = round(topo.ring(mask), 1) if k > 1 else 0.0
    return gpuset.SetScore(
        mask=mask,
        bottleneck_gbps=ring,
        bottleneck_label=topo.label_of_bottleneck(mask, ring) if k > 1 else "LOCAL",
        numa_count=topo.numa_count(mask),
        pcie_cost=topo.pcie_cost(mask),
        leave=_nvlink_capacity(topo, empty & ~mask),
        leave_before=_nvlink_capacity(topo, empty),
        ring_class=topo.ring_class(mask) if k > 1 else -1,
        best_class=topo.best_class(k) if k > 1 else -1,
        groups_broken=topo.groups_broken(empty, mask),
    )


def _broken_groups(host: HostState, eligible, pci_id: str) -> list[str]:
    """What one more vGPU on empty GPU ``pci_id`` breaks that a VM needing NVLink cannot get back elsewhere on the
    host: the last wholly free Fabric Manager partition of a size (NVSwitch boards), or an intact NVLink group."""
    topo, order = gpuset.topology_for(host)
    empty = gpuset.mask_of(order, (f.gpu.pci_id for f in eligible if not f.timesliced.residents))
    bit = gpuset.mask_of(order, (pci_id,))
    if not empty & bit:
        return []
    out = []
    if host.nvswitch:
        for size in gpuset.LEAVE_SIZES:
            whole = [p for p in topo.partitions if bin(p).count("1") == size and p & empty == p]
            if len(whole) == 1 and whole[0] & bit:
                out.append(f"the last free {size}-GPU partition ({_members(host, order, whole[0])})")
        return out
    for group in topo.groups:
        if group & bit and group & empty == group:
            n = bin(group).count("1")
            what = "an intact NVLink pair" if n == 2 else f"an intact {n}-GPU NVLink group"
            out.append(f"{what} ({_members(host, order, group)})")
    return out


def _members(host: HostState, order: tuple[str, ...], mask: int) -> str:
    pcis = gpuset.pci_of(order, mask)
    modules = [host.gpu(p).module_id for p in pcis]
    if None in modules:
        return ", ".join(pcis)
    mods = sorted(m for m in modules if m is not None)
    if mods == list(range(mods[0], mods[-1] + 1)):
        return f"modules {mods[0]}-{mods[-1]}"
    return "modules " + ",".join(map(str, mods))


def _single_cost(host: HostState, eligible, pci_id: str) -> tuple:
    """Ranking value of the leave-behind cost of one vGPU on ``pci_id`` (higher is better), as LeaveBehind orders a
    single GPU: NVLink pairs first, then larger groups."""
    return tuple(reversed(_vgpu_set_score(host, eligible, (pci_id,)).leave_loss[: len(gpuset.LEAVE_SIZES)]))


def _last_partition_warning(host: HostState, ctx: RequestContext, eligible, view, mode_words: str) -> str:
    """A warning when the GPU the host's policy picks breaks the last free partition of a size or an intact NVLink
    group, naming a GPU that would not and what the admin can do (vSphere cannot pin a vGPU to a GPU)."""
    broken = _broken_groups(host, eligible, view.pci_id)
    if not broken:
        return ""
    profile = ctx.profile
    assert profile is not None
    fits = [
        f.gpu.pci_id
        for f in eligible
        if (vgpu.same_size_refusal if f.timesliced.mode == "sameSize" else vgpu.mixed_refusal)(f.timesliced, profile)
        is None
    ]
    mine = _single_cost(host, eligible, view.pci_id)
    better = max(fits, key=lambda p: _single_cost(host, eligible, p), default=None)  # fits are in PCI order
    advice = []
    if better is not None and _single_cost(host, eligible, better) > mine:
        advice.append(f"{_gpu_name(host, better)} would keep it, but vSphere cannot pin a vGPU to a GPU")
    else:
        advice.append("no GPU of this host would keep it")
    if view.mode == "sameSize" and host.assignment_policy != "consolidation":
        views = [f.timesliced for f in eligible]
        packed = vgpu.choose_same_size_gpu(views, profile, "consolidation")
        if packed is not None and not _broken_groups(host, eligible, packed.pci_id):
            advice.append(
                "with the host's shared passthrough GPU assignment policy set to consolidation (host > Configure > "
                "Hardware > Graphics > Host Graphics: 'Group VMs on GPU until full') vSphere would put it on "
                f"{_gpu_name(host, packed.pci_id)}"
            )
    what = "partition" if host.nvswitch else "NVLink group"
    advice.append(
        f"to keep the {what} free, plan this VM on a host that keeps its own (they rank first), or power it on only "
        f"after the VM that needs the {what} holds it"
    )
    return (
        f"warning: {mode_words} will put it on {_gpu_name(host, view.pci_id)}, breaking {' and '.join(broken)}: "
        + "; ".join(advice)
    )


def _single_vgpu(host: HostState, ctx: RequestContext, eligible) -> Proposal | Rejection:
    profile = ctx.profile
    assert profile is not None
    views = {f.gpu.pci_id: f.timesliced for f in eligible}
    same = [v for v in views.values() if v.mode == "sameSize"]
    start = None
    if same:
        view = vgpu.choose_same_size_gpu(same, profile, host.assignment_policy)
        if view is None:
            return Rejection(host.name, (f"no GPU is compatible with {profile.name}",))
        policy = host.assignment_policy
        policy_text = f"{_policy_words(policy)}: GPU {view.pci_id}"
        mode_words = f"vSphere's {policy} policy"
        after = view.with_resident(vgpu.Resident("?", profile.name, profile.framebuffer_gb, None))
    else:
        picked = vgpu.choose_mixed_gpu(views.values(), profile)
        if picked is None:
            return Rejection(host.name, (f"no mixed-size GPU has a free placement ID for {profile.name}",))
        view, start = picked
        policy_text = (
            f"mixed-size mode (policy ignored): least-used GPU {view.pci_id}, "
            f"{vgpu.start_text(view.board, profile.framebuffer_gb, start)}"
        )
        mode_words = "vSphere (mixed-size mode: least-used GPU)"
        after = view.with_resident(vgpu.Resident("?", profile.name, profile.framebuffer_gb, start))
    # Compare what the choice costs, not what is left: "empty GPUs left" would favour the emptiest host.
    opened = 0 if view.residents else 1
    uses = "takes an empty (neutral) GPU" if opened else f"joins GPU {view.pci_id}, already in use"
    if after.mode == "mixedSize":
        silo = vgpu.siloed_gb(after) - vgpu.siloed_gb(view)
        frag = (float(-opened), float(-silo))
        frag_text = f"{uses}; siloed memory on GPU {view.pci_id} changes by {silo:+d} GB"
    else:
        frag = (float(-opened), float(after.count() - 1))
        n = after.count()
        frag_text = f"{uses}; GPU {view.pci_id} will hold {n} vGPU{'s' if n != 1 else ''}"
    f = next(x for x in eligible if x.gpu.pci_id == view.pci_id)
    choice = GpuChoice(f.gpu.pci_id, f.gpu.index, placement_gb=start, profile=profile.name)
    warning = _last_partition_warning(host, ctx, eligible, view, mode_words)
    return Proposal(
        host, ctx.request, (choice,), _vgpu_set_score(host, eligible, (view.pci_id,)), _numa(f), frag, frag_text,
        policy_text, numa_unknown=not _numa(f), set_warnings=(warning,) if warning else (),
    )  # fmt: skip


def _separate_vgpus(host: HostState, ctx: RequestContext, eligible) -> Proposal | Rejection:
    """Several vGPUs added one by one: the host assigns each by its own policy (the engine's model of it applied
    k times, one vGPU per GPU), so the advisor predicts those GPUs rather than choosing a set; none gets NVLink P2P."""
    r = ctx.request
    profile = ctx.profile
    assert profile is not None
    k = r.gpus_per_vm
    group = r.nvlink_device_group()
    topo, order = gpuset.topology_for(host)
    # vGPUs added one by one talk over no NVLink (DOMAIN 3.6), so they need no free Fabric Manager partition: that
    # is the device group's rule (3.7), the one request that gets NVSwitch P2P. The warning below says when the
    # host's picks are not one partition and names the device group that would be.
    partitioned = host.nvswitch and not r.fractional
    views = [f.timesliced for f in eligible]
    picks: list[tuple[vgpu.TimeslicedGpu, int | None]] = []
    for _ in range(k):
        picked = _policy_pick(views, profile, host.assignment_policy)
        if picked is None:
            why = f"only {len(picks)} of {k} {profile.name} vGPUs find a compatible GPU (one vGPU per GPU)"
            return Rejection(host.name, (why,))
        picks.append(picked)
        views = [v for v in views if v.pci_id != picked[0].pci_id]
    chosen = [v.pci_id for v, _ in picks]
    by_pci = {f.gpu.pci_id: f for f in eligible}
    facts = [by_pci[p] for p in chosen]
    names = ", then ".join(_gpu_name(host, p) for p in chosen)
    if r.interconnect in ("same-numa", "same-pcie-switch"):
        attr = "numa_node" if r.interconnect == "same-numa" else "pcie_switch"
        values = {getattr(f.gpu, attr) for f in facts}
        if len(values) != 1 or None in values:
            where = "one NUMA node" if r.interconnect == "same-numa" else "one PCIe switch"
            return Rejection(host.name, (f"the host's policy would assign {names}: not on {where}",))
    choices = tuple(GpuChoice(p, by_pci[p].gpu.index, placement_gb=start, profile=profile.name)
                    for p, (_, start) in zip(chosen, picks, strict=True))  # fmt: skip
    numa = tuple(sorted({f.gpu.numa_node for f in facts if f.gpu.numa_node is not None}))
    same = all(v.mode == "sameSize" for v, _ in picks)
    head = _policy_words(host.assignment_policy) if same else "mixed-size mode (policy ignored): least-used GPU"
    policy_text = f"{head}, one vGPU at a time: {names}"
    warnings = []
    mask = gpuset.mask_of(order, chosen)
    # Asked for NVLink (evacuating a VM from NVLinked GPUs asks for it too), the VM is still placed: its vGPUs had no
    # NVLink P2P to lose, and the warning says what would give it
    asked = r.interconnect == "nvlink"
    if group is not None and (host.nvswitch or topo.groups or asked):
        unit = "one Fabric Manager partition" if host.nvswitch else "one NVLink domain"
        if not (host.nvswitch or topo.groups):
            unit += " (this host has none)"
        prefix = "NVLink was asked for, but " if asked else ""
        by = f"the host's {host.assignment_policy} policy" if same else "the host (mixed-size mode: least-used GPU)"
        warnings.append(
            f"warning: {prefix}vSphere assigns these {k} vGPUs one at a time by {by} ({names}): "
            f"separately assigned vGPUs get no NVLink P2P; for NVLink request consumption device-group, vendor "
            f"device group {group}, which vSphere places whole on {unit}"
            + ("" if not partitioned or mask in topo.partitions else
               f"; {' and '.join(chosen)} are not one Fabric Manager partition, so the VM gets none")
        )  # fmt: skip
    return Proposal(
        host, r, choices, _vgpu_set_score(host, eligible, chosen), numa, policy_text=policy_text,
        numa_unknown=any(f.gpu.numa_node is None for f in facts), set_warnings=tuple(warnings),
    )  # fmt: skip


def _single_mig(host: HostState, ctx: RequestContext, eligible) -> Proposal | Rejection:
    profile = ctx.profile
    assert profile is not None and profile.mig_profile is not None
    views = [f.mig for f in eligible if f.mig is not None]
    picked = mig.choose_mig_gpu(views, profile.mig_profile)
    if picked is None:
        return Rejection(host.name, (f"no GPU has a free MIG slot for {profile.mig_profile.name}",))
    view, slot = picked
    after = view.with_instance(mig.MigInstance("?", profile.mig_profile, slot))
    compute, memory = mig.stranded(after)
    compute_before, memory_before = mig.stranded(view)
    opened = 0 if view.instances else 1
    frag = (float(-opened), float(compute_before - compute), float(memory_before - memory))
    frag_text = (
        f"MIG {profile.mig_profile.name} at slot {slot} on GPU {view.pci_id}"
        f"{' (an empty GPU)' if opened else ''}; stranded after: {compute} compute, {memory} memory "
        f"slice{'' if memory == 1 else 's'}"
    )
    f = next(x for x in eligible if x.gpu.pci_id == view.pci_id)
    choice = GpuChoice(f.gpu.pci_id, f.gpu.index, mig_slot=slot, profile=profile.name)
    return Proposal(host, ctx.request, (choice,), None, _numa(f), frag, frag_text, numa_unknown=not _numa(f))


# ---------------------------------------------------------------- replicas and reservations


@dataclass(frozen=True)
class PlacedConsumer(Consumer):
    """A consumer this plan placed itself (a replica, or an evacuated VM on its target host): its placement ID or MIG
    slot is the plan's own choice, so a later step of the same plan must not call it imported (``offsets_note``)."""


def consumers_for(candidate: Candidate, request: PlacementRequest, vm: str) -> dict[str, Consumer]:
    kind = request.consumption
    return {
        g.pci_id: PlacedConsumer(vm=vm, kind=kind, profile=g.profile, placement_gb=g.placement_gb, mig_slot=g.mig_slot)
        for g in candidate.gpus
    }


def apply_candidate(fabric: Fabric, candidate: Candidate, request: PlacementRequest, vm: str) -> Fabric:
    """``fabric`` with the candidate's GPUs given to ``vm`` (consumers added, CPU/memory admitted)."""
    host = fabric.host(candidate.host, host_id=candidate.host_id, vcenter=candidate.vcenter)
    updated = with_consumers(
        host, consumers_for(candidate, request, vm), vcpus=request.vcpus, memory_mb=request.memory_mb
    )
    return fabric.replace_host(updated)


def place_replicas(fabric: Fabric, ctx: RequestContext) -> tuple[list[Candidate], list[str]]:
    """Greedy joint placement, as separate reservations made one after another would be: each replica takes the best
    candidate with the GPUs, CPU and memory of the earlier ones taken (a vGPU or MIG replica goes where the host's
    own pick puts it, sharing a GPU with an earlier replica when that pick does); with anti-affinity the earlier
    replicas' hosts are excluded."""
    request = ctx.request
    state = fabric
    used_hosts: dict[tuple, tuple[HostState, int]] = {}  # ident -> (host, the first replica it holds, from 1)
    assignment: list[Candidate] = []
    unplaced: list[str] = []
    for v in range(request.vms):
        hosts = [h for h in state.hosts if not (request.anti_affinity and h.ident in used_hosts)]
        candidates, rejected = rank_hosts(hosts, ctx, vm_index=v)
        if not candidates:
            excluded = list(used_hosts.values()) if request.anti_affinity else []
            why = why_unplaced(rejected, excluded) or "no hosts left"
            unplaced.append(f"replica {v + 1} of {request.vms} has no host ({why})")
            continue
        best = candidates[0]
        note = _sharing_note(state, best)
        if note:
            best = replace(best, explanation=(*best.explanation, note))
        assignment.append(best)
        state = apply_candidate(state, best, request, f"{PLANNED_VM_PREFIX}{v + 1}")
        used_hosts.setdefault(best.ident, (state.host(best.host, host_id=best.host_id, vcenter=best.vcenter), v + 1))
    warning = _models_warning(fabric, assignment)
    if warning:
        assignment = [replace(c, explanation=(warning, *c.explanation)) for c in assignment]
    return assignment, unplaced


def _sharing_note(state: Fabric, candidate: Candidate) -> str:
    """ "shares GPU X with replica 1 of this plan" when a fractional replica lands beside an earlier one: one GPU
    failure or reset then stops both."""
    host = state.host(candidate.host, host_id=candidate.host_id, vcenter=candidate.vcenter)
    shared = []
    for g in candidate.gpus:
        holders = [c.holder for c in host.gpu(g.pci_id).consumers if c.vm.startswith(PLANNED_VM_PREFIX)]
        if holders:
            shared.append(f"GPU {g.pci_id} with {', '.join(holders)}")
    if not shared:
        return ""
    return f"shares {'; '.join(shared)} (a failure or reset of that GPU stops both)"


def _models_warning(fabric: Fabric, assignment: Sequence[Candidate]) -> str:
    """A warning when the placed replicas of one request run on different GPU models (an L40S and an H100 NVL):
    replicas of one service usually need the same board (framebuffer, model shards)."""
    models: dict[str, list[int]] = {}
    for c in assignment:
        host = fabric.host(c.host, host_id=c.host_id, vcenter=c.vcenter)
        for board in dict.fromkeys(host.gpu(g.pci_id).board or host.gpu(g.pci_id).model for g in c.gpus):
            models.setdefault(board, []).append(c.vm_index + 1)
    if len(models) < 2:
        return ""
    where = "; ".join(
        f"{board}: replica{'s' if len(v) > 1 else ''} {', '.join(map(str, v))}" for board, v in models.items()
    )
    return (
        f"warning: the replicas run on different GPU models ({where}); replicas of one service usually need the same "
        "board (framebuffer, model shards): name a board in the request to keep them on one"
    )


UNPLACED_GROUPS = 8  # reasons named in one unplaced replica's line (the rest are counted)
UNPLACED_NAMES = 4  # hosts named per reason shared by many


def why_unplaced(rejected: Sequence[Rejection], excluded: Sequence[tuple[HostState, int]] = ()) -> str:
    """Why no host takes a replica: the hosts excluded by anti-affinity ("esx-1 already holds replica 1
    (anti-affinity)"), then every reason of every rejected host, hosts sharing a reason grouped ("2 hosts have
    2 GPUs, the VM needs 4: esx-2, esx-3"), most hosts first."""
    vcenters = {r.vcenter for r in rejected} | {h.vcenter for h, _ in excluded}
    several = len(vcenters) > 1

    def named(host: str, vcenter: str) -> str:
        return f"{host} ({vcenter})" if several and vcenter else host

    parts = [f"{named(h.name, h.vcenter)} already holds replica {n} (anti-affinity)" for h, n in excluded]
    groups: dict[str, list[str]] = {}
    for r in rejected:
        for reason in dict.fromkeys(r.reasons):
            groups.setdefault(reason, []).append(named(r.host, r.vcenter))
    ordered = sorted(groups.items(), key=lambda kv: -len(kv[1]))  # stable: first seen first among equals
    for reason, names in ordered[:UNPLACED_GROUPS]:
        if len(names) == 1:
            parts.append(f"{names[0]}: {reason}")
            continue
        shown = ", ".join(names[:UNPLACED_NAMES])
        more = f" and {len(names) - UNPLACED_NAMES} more" if len(names) > UNPLACED_NAMES else ""
        parts.append(f"{hosts_phrase(len(names), reason)}: {shown}{more}")
    if len(ordered) > UNPLACED_GROUPS:
        rest = len(ordered) - UNPLACED_GROUPS
        parts.append(f"{rest} more reason{'s' if rest != 1 else ''}")
    return "; ".join(parts)


def cache_stats() -> dict[str, int]:
    """GPU-set search counters plus the per-host memo size (for benchmarks)."""
    return {**gpuset.search_stats(), "host_memo": len(_HOST_MEMO)}


def reset_caches() -> None:
    gpuset.reset_search_cache()
    _HOST_MEMO.clear()
    _SCORE_MEMO.clear()
    _SEEN.clear()
    _WHOLE.clear()
