"""Soft preferences. Each scorer is a small class with a ``name`` returning a ``Score`` (value + explain).

The ranking key of a proposal is the tuple of its scorers' values in ``SCORERS`` order, compared
lexicographically (higher is better): link-class fit (does a multi-GPU set use the best link class its
host offers for that size), interconnect bottleneck, NUMA span, PCIe proximity, what the GPU-set leaves
behind, vGPU/MIG fragmentation, CPU/GPU-memory balance (time-sliced vGPU), what the host's own pick of a
single vGPU's GPU costs in whole groups, for whole GPUs how many stay free on the host (fullest first), then
CPU/memory headroom (DRS-like) last.

Within one host every proposal has the same link-class fit, so the set chosen on a host is still decided
by bandwidth first; the fit term only orders hosts: a multi-GPU VM goes to a host where it gets the best
class that host type offers (NVLink on an NVLink host) before one where it would sit on slower links and
break up the host's fast groups for the VMs that can use them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from placement.engine.explain import (
    PARTITIONS_UNKNOWN,
    UNKNOWN_LABEL,
    Naming,
    apart_text,
    class_words,
    cost_text,
    fmt_gbps,
    leave_text,
    paths_text,
)
from placement.engine.gpuset import LEAVE_SIZES, SetScore, topology_for
from placement.engine.model import HostState
from placement.engine.request import PlacementRequest
from placement.engine.result import GpuChoice
from placement.engine.vgpu import TIMESLICED_KINDS, timesliced_view


@dataclass(frozen=True)
class Proposal:
    """One host's best answer to the request, before ranking."""

    host: HostState
    request: PlacementRequest
    choices: tuple[GpuChoice, ...]
    set_score: SetScore | None
    numa_nodes: tuple[int, ...]
    frag: tuple[float, ...] = ()  # higher is better
    frag_text: str = ""
    policy_text: str = ""
    notes: tuple[str, ...] = ()
    numa_unknown: bool = False  # some GPU of the set has no known NUMA node
    last_whole: bool = False  # the set breaks the last wholly free host of its type (set by the planner)
    warnings: tuple[str, ...] = ()  # the host's own (stale inventory): first in its explanation, never in the memo
    # what the host's own GPU choice costs or lacks (a vGPU breaking the last free partition, separately assigned
    # vGPUs without NVLink): after the host's warnings, before the rest of the explanation
    set_warnings: tuple[str, ...] = ()

    @property
    def groups_broken(self) -> int:
        return self.set_score.groups_broken if self.set_score is not None else 0


@dataclass(frozen=True)
class Score:
    """``explain`` may be a thunk: ranking reads every host's values, but only shown candidates are explained."""

    name: str
    value: object
    explain: str | Callable[[], str]

    @property
    def text(self) -> str:
        return self.explain() if callable(self.explain) else self.explain


class LinkClassFitScorer:
    """0 when a multi-GPU whole-GPU (or full-profile vGPU) set reaches the best ring class its host reaches
    for that many GPUs, -1 when it falls below (e.g. two L40S on different sockets where a same-switch pair
    exists), -2 when it falls below NVLink (e.g. two H100 NVL cards from different bridge pairs)."""

    name = "LinkClassFit"

    def score(self, p: Proposal) -> Score:
        s = p.set_score
        if s is not None and len(p.choices) > 1 and p.request.no_p2p:
            return _fractional_groups(self.name, p, s)
        if s is None or len(p.choices) < 2 or s.best_class < 0:
            return Score(self.name, 0, "")
        k = len(p.choices)
        if s.ring_class <= s.best_class:
            return Score(self.name, 0, lambda: f"GPUs joined by {_joined_by(s)}: the fastest link this "
                         f"host type offers for {k} GPUs")  # fmt: skip
        # Below its host's best class, a set on an NVLink host also breaks NVLink groups it cannot use: it ranks
        # after a below-best set on a host without NVLink.
        return Score(
            self.name,
            -2 if s.best_class == 0 else -1,
            lambda: (
                f"GPUs joined by {_joined_by(s)}: no set of {k} GPUs joined by {class_words(s.best_class)}, the "
                "fastest this host type offers, is free here; ranked after hosts where one is"
                + (
                    ", and after hosts without NVLink (it would take GPUs from NVLink groups it cannot use)"
                    if s.best_class == 0
                    else ""
                )
            ),
        )


def _joined_by(s: SetScore) -> str:
    """The set's slowest link in words; a pair a partial capture does not show is "a path the capture does not
    show" (ranked like the slowest class, never called a CPU-socket link)."""
    return "a path the capture does not show" if s.bottleneck_label == UNKNOWN_LABEL else class_words(s.ring_class)


def no_p2p_words(request: PlacementRequest) -> str:
    """Why the request's vGPUs cannot use NVLink: "MIG-backed vGPUs", "fractional vGPUs" or "separately assigned
    vGPUs"."""
    if request.consumption == "mig":
        return "MIG-backed vGPUs"
    return "fractional vGPUs" if request.fractional else "separately assigned vGPUs"


def _fractional_groups(name: str, p: Proposal, s: SetScore) -> Score:
    """Fractional or separately assigned vGPUs cannot use NVLink: they pay for every intact NVLink group or Fabric
    Manager partition they take GPUs from, so VMs that can use those groups (device groups, passthrough) keep them."""
    what = "Fabric Manager partition" if p.host.nvswitch else "NVLink group"
    who = no_p2p_words(p.request)
    if p.host.partitions_unknown:
        return Score(
            name, 0, f"{who}: which whole Fabric Manager partitions it takes GPUs from is unknown (no module ids)"
        )
    n = s.groups_broken
    if n == 0:
        return Score(name, 0, f"{who}: takes no GPU of a whole {what}")
    plural = "s" if n > 1 else ""
    return Score(
        name,
        -n,
        f"{who}: takes GPUs from {n} whole {what}{plural}, which full-size multi-GPU VMs could use; "
        "ranked after hosts where it breaks fewer",
    )


class WholeHostScorer:
    """-1 when a multi-GPU set would break the last wholly free host of its type (8+ GPUs) while other hosts
    fit: the set still gets its host type's best class elsewhere (``LinkClassFit`` comes first), and the
    whole host stays for a VM that needs all its GPUs. Single GPUs weigh this inside ``LeaveBehind``, after
    whole NVLink groups."""

    name = "WholeHost"

    def score(self, p: Proposal) -> Score:
        if p.last_whole and len(p.choices) > 1:
            return Score(
                self.name,
                -1,
                "breaks the last wholly free host of its type: ranked after hosts that keep one whole",
            )
        return Score(self.name, 0, "")


class InterconnectScorer:
    """Ring bottleneck of the set; not scored for fractional vGPUs, which cannot use NVLink P2P."""

    name = "Interconnect"

    def score(self, p: Proposal) -> Score:
        s = p.set_score
        if s is None or len(p.choices) < 2:
            return Score(self.name, 0.0, "")
        if p.request.fractional:
            words = no_p2p_words(p.request)
            return Score(self.name, 0.0, f"{words} do not use NVLink P2P: link bandwidth is not scored")
        if p.request.no_p2p:
            return Score(self.name, 0.0, "separately assigned vGPUs get no NVLink P2P: link bandwidth is not scored")
        return Score(
            self.name,
            s.bottleneck_gbps,
            lambda: (
                f"bottleneck {s.bottleneck_label} {fmt_gbps(s.bottleneck_gbps)} GB/s (best ring through "
                f"{len(p.choices)} GPUs)"
            ),
        )


# Unknown NUMA ranks below any known placement: no host has more NUMA nodes than this.
NUMA_UNKNOWN_VALUE = -64


class NumaScorer:
    """Fewer NUMA nodes spanned is better; a set with a GPU of unknown NUMA node ranks below every known one
    (nothing says its vCPUs and memory can be kept near the GPUs)."""

    name = "Numa"

    def score(self, p: Proposal) -> Score:
        nodes = p.numa_nodes
        if p.numa_unknown or not nodes:
            return Score(
                self.name,
                NUMA_UNKNOWN_VALUE,
                "NUMA node unknown: ranked after hosts whose GPUs' NUMA node is known",
            )
        if len(nodes) == 1:
            return Score(self.name, -1, lambda: numa_advice(p.host, p.request, nodes[0]))
        return Score(self.name, -len(nodes), lambda: f"spans NUMA nodes {', '.join(map(str, nodes))}")


def numa_advice(host: HostState, request: PlacementRequest, node: int) -> str:
    """Where the VM's vCPUs and memory belong when its GPUs sit on one NUMA node: on that node when the VM fits it;
    a VM larger than the node spans nodes (vNUMA), and its first vNUMA node is the one to keep with the GPUs. Said
    conditionally when the node's size or the VM's is not known."""
    size = host.numa_size(node)
    fit = host.numa_vcpus(node)
    over = []
    if size is not None:
        if request.vcpus and fit and request.vcpus > fit:
            over.append(f"{request.vcpus} vCPUs vs {fit} {host.numa_cpu_unit}")
        if request.memory_mb and size.memory_mb and request.memory_mb > size.memory_mb:
            over.append(f"{request.memory_mb // 1024} vs {size.memory_mb // 1024} GiB memory")
    if over:
        return (
            f"NUMA node {node}: the VM is larger than the node ({'; '.join(over)}), so it spans NUMA nodes: keep its "
            f"first vNUMA node on node {node} with the GPUs, or size the VM to fit one node"
        )
    fits = (
        size is not None
        and bool(request.vcpus and fit and request.memory_mb and size.memory_mb)
        and request.vcpus <= (fit or 0)
        and request.memory_mb <= (size.memory_mb or 0)
    )
    if fits:
        crowded = numa_crowding(host, request, node)
        if crowded:
            return f"NUMA node {node}: the VM fits the node, but {crowded}"
        cpus, memory, load = host.numa_room(node)
        left = (
            f"; the GPU VMs on its GPUs leave {cpus} {host.numa_cpu_unit} and {(memory or 0) // 1024} GiB"
            if (load.vcpus or load.memory_mb) and cpus is not None and memory is not None
            else ""
        )
        return f"NUMA node {node}: place the VM's vCPUs and memory there (the VM fits the node{left})"
    return (
        f"NUMA node {node}: keep the VM's vCPUs and memory there if it fits one NUMA node (a larger VM spans nodes: "
        "keep its first vNUMA node there)"
    )


def numa_crowding(host: HostState, request: PlacementRequest, node: int) -> str:
    """Why NUMA node ``node`` has no room left for a VM that fits the node, or "": the GPU VMs and reservations on
    its GPUs (whose vCPUs and memory belong there) already take what the VM needs. An estimate: other VMs float."""
    cpus, memory, load = host.numa_room(node)
    size = host.numa_size(node)
    if size is None:
        return ""
    short = []
    if request.vcpus and cpus is not None and load.vcpus and request.vcpus > cpus:
        short.append(
            f"{load.vcpus} of its {host.numa_vcpus(node)} {host.numa_cpu_unit} ({max(cpus, 0)} left for "
            f"{request.vcpus} vCPUs)"
        )
    if request.memory_mb and memory is not None and load.memory_mb and request.memory_mb > memory:
        short.append(
            f"{load.memory_mb // 1024} of its {(size.memory_mb or 0) // 1024} GiB ({max(memory, 0) // 1024} GiB left "
            f"for {request.memory_mb // 1024} GiB)"
        )
    if not short:
        return ""
    return (
        f"the GPU VMs and reservations on its GPUs already take {' and '.join(short)}: its vCPUs would contend or its "
        "memory be remote; ranked after GPU sets on a NUMA node with room (estimated from the VMs holding its GPUs)"
    )


def larger_than_node(host: HostState, request: PlacementRequest, node: int) -> bool:
    """Whether the VM's vCPUs or memory exceed NUMA node ``node`` itself (it spans nodes wherever it goes)."""
    size = host.numa_size(node)
    fit = host.numa_vcpus(node)
    r = request
    return size is not None and bool(
        (r.vcpus and fit and r.vcpus > fit) or (r.memory_mb and size.memory_mb and r.memory_mb > size.memory_mb)
    )


def crowded_nodes(host: HostState, request: PlacementRequest) -> frozenset[int]:
    """The NUMA nodes whose GPU VMs and reservations leave too little for this VM (``numa_crowding``)."""
    if not host.numa_load or not (request.vcpus or request.memory_mb):
        return frozenset()
    return frozenset(
        n.node
        for n in host.numa_load
        if not larger_than_node(host, request, n.node) and numa_crowding(host, request, n.node)
    )


class NumaRoomScorer:
    """Among GPU sets on one NUMA node, a node whose GPU VMs and reservations leave room for the VM's vCPUs and
    memory ranks above one they crowd (``numa_crowding`` says why, in the NUMA line). Within a host the GPU-set
    search ranks the same way (``gpuset.search``'s ``crowded``)."""

    name = "NumaRoom"

    def score(self, p: Proposal) -> Score:
        nodes = p.numa_nodes
        if p.numa_unknown or len(nodes) != 1:
            return Score(self.name, 0, "")
        return Score(self.name, -1 if nodes[0] in crowded_nodes(p.host, p.request) else 0, "")


class PcieProximityScorer:
    name = "PcieProximity"

    def score(self, p: Proposal) -> Score:
        s = p.set_score
        if s is None or len(p.choices) < 2 or p.request.no_p2p:  # GPUs that never talk: their paths do not matter
            return Score(self.name, 0, "")
        return Score(self.name, -s.pcie_cost, lambda: f"GPU pairs: {pair_paths(p)}")


def pair_paths(p: Proposal) -> str:
    """How the set's GPU pairs reach each other, in words (``explain.paths_text``)."""
    ids = [c.pci_id for c in p.choices]
    return paths_text([p.host.link(a, b).kind for i, a in enumerate(ids) for b in ids[i + 1 :]])


class LeaveBehindScorer:
    """What the choice costs future requests, as capacity: whole NVLink groups first, then whether it breaks
    the last wholly free host of its type, then best-class sets. Multi-GPU requests weigh large sets
    first (8, 4, 2); a single GPU weighs pairs first, so it takes a GPU whose fast partner is busy (a hole)
    before it splits an intact pair or an empty host."""

    name = "LeaveBehind"
    # where a single time-sliced vGPU's cost ranks: after the CPU/GPU balance (``PickCostScorer``)
    single_vgpu = False

    def score(self, p: Proposal) -> Score:
        s = p.set_score
        if s is None or _single_vgpu(p) != self.single_vgpu:
            return Score(self.name, (), "")
        loss = s.leave_loss
        n = len(LEAVE_SIZES)
        nv, best = loss[:n], loss[n:]
        single = len(p.choices) == 1
        last = -1.0 if p.last_whole and single else 0.0
        value = (*reversed(nv), last, *reversed(best)) if single else (*nv, last, *best)
        return Score(self.name, value, lambda: _leave_words(p, s, single))


def _single_vgpu(p: Proposal) -> bool:
    return len(p.choices) == 1 and p.request.consumption in TIMESLICED_KINDS


class PickCostScorer(LeaveBehindScorer):
    """LeaveBehind for one time-sliced vGPU, ranked after the CPU/GPU balance: the host's policy picks its GPU, so
    what that pick costs in whole NVLink groups or partitions only separates hosts the balance ties on (on the
    cluster replay, ranking it first placed less vGPU memory: ``bench/placement_quality.py``); a pick that breaks
    the last free partition of a size is a warning either way."""

    name = "PickCost"
    single_vgpu = True


def naming(host: HostState) -> Naming:
    """How the host's groups are named in the leave-behind sentences (``explain.Naming``)."""
    topo, _ = topology_for(host)
    return Naming(
        tuple(topo.best_class(k) for k in LEAVE_SIZES),
        all(bin(g).count("1") == 2 for g in topo.groups),
        any(topo.nv[i][j] for i in range(topo.n) for j in range(i + 1, topo.n)),
    )


def group_texts(p: Proposal, s: SetScore) -> tuple[str, str]:
    """(what the choice leaves, what it uses up; "" when it uses up no whole group). On an NVSwitch board whose
    partitions are unknown only that is said: counting its single-GPU partitions would claim nothing is free."""
    if p.host.partitions_unknown:
        return PARTITIONS_UNKNOWN, ""
    words = naming(p.host)
    return (
        leave_text(s.leave, nvswitch=p.host.nvswitch, naming=words),
        cost_text(s.leave_loss, nvswitch=p.host.nvswitch, naming=words),
    )


def _leave_words(p: Proposal, s: SetScore, single: bool) -> str:
    text, cost = group_texts(p, s)
    if cost:
        text += f"; {cost}"
    elif not p.host.partitions_unknown:
        text += "; breaks up no whole free group" + _no_break_reason(p)
    if p.last_whole and single:
        text += "; breaks the last wholly free host of its type (kept for VMs that need all its GPUs)"
    return text


def _no_break_reason(p: Proposal) -> str:
    """Why the choice breaks no whole free group, when that is not plain: its GPUs' partners (the GPUs joined to them
    by the link the host's best pair uses, or their Fabric Manager partition) are in use, or they have none."""
    topo, order = topology_for(p.host)
    index = {pci: i for i, pci in enumerate(order)}
    chosen = {index[c.pci_id] for c in p.choices}
    busy = {index[g.pci_id] for g in p.host.gpus if g.reserved or g.active_consumers}
    if chosen & busy or topo.n < 2:
        return ""  # a vGPU joining a GPU already in use: what its partners hold says nothing
    if p.host.nvswitch:
        groups = [g for g in topo.groups if any(g >> i & 1 for i in chosen)]
        partners = {j for g in groups for j in range(topo.n) if g >> j & 1} - chosen
    else:
        best = topo.best_class(2)
        partners = {
            j for i in chosen for j in range(topo.n) if j not in chosen and topo.ring_class(1 << i | 1 << j) <= best
        }
    if not partners:
        one = len(chosen) == 1
        return f" ({'its GPU has' if one else 'its GPUs have'} no partner on the link this host's best pairs use)"
    return " (takes GPUs whose partners are already in use)" if partners <= busy else ""


class BalanceScorer:
    """Time-sliced vGPU VMs: how well the host's free GPU memory per free vCPU matches the VM's own ratio.

    A host that runs out of vCPUs strands its free framebuffer and one that runs out of framebuffer strands
    its vCPUs; giving GPU-heavy VMs to hosts with framebuffer to spare and CPU-heavy (small-profile) VMs to
    hosts with vCPUs to spare uses both up together. Value: ``-|ln(free GB / free vCPUs) - ln(VM GB /
    VM vCPUs)|`` (0 = the same ratio), rounded to 3 decimals; 0 when either side is unknown.
    """

    name = "Balance"

    def score(self, p: Proposal) -> Score:
        ratios = balance_ratios(p)
        if ratios is None:
            return Score(self.name, 0.0, "")
        host_ratio, vm_ratio = ratios
        value = round(-abs(math.log(host_ratio) - math.log(vm_ratio)), 3)
        return Score(self.name, value, lambda: f"CPU/GPU balance: {balance_words(p)}")


def balance_ratios(p: Proposal) -> tuple[float, float] | None:
    """(host's free GB per free vCPU, the VM's GB per vCPU), or None when the balance is not scored."""
    r = p.request
    profile = r.vgpu_profile
    if profile is None or r.consumption not in TIMESLICED_KINDS or r.vcpus <= 0:
        return None
    if not p.host.cpu_known or p.host.cpu_free <= 0:
        return None
    need_gb = profile.framebuffer_gb * r.gpus_per_vm
    free_gb = free_timesliced_gb(p.host)
    if need_gb <= 0 or free_gb <= 0:
        return None
    return free_gb / p.host.cpu_free, need_gb / r.vcpus


def balance_words(p: Proposal) -> str:
    """'host has 214 GB vGPU framebuffer free for 176 free vCPUs (1.2 GB per free vCPU), the VM needs 2.5 GB per
    vCPU: 2.1x apart': how far the host's free GPU memory per free vCPU is from the VM's, as a factor (the ranking
    value is the log of that factor); "" when the balance is not scored."""
    ratios = balance_ratios(p)
    if ratios is None:
        return ""
    host_ratio, vm_ratio = ratios
    factor = max(host_ratio, vm_ratio) / min(host_ratio, vm_ratio)
    return (
        f"host has {free_timesliced_gb(p.host)} GB vGPU framebuffer free for {p.host.cpu_free} free vCPUs "
        f"({host_ratio:.1f} GB per free vCPU), the VM needs {vm_ratio:.1f} GB per vCPU: {apart_text(factor)}"
    )


def free_timesliced_gb(host: HostState) -> int:
    """Free framebuffer GB over the host's time-sliced vGPU GPUs (sharedDirect, not MIG)."""
    total = 0
    for g in host.gpus:
        if g.graphics_type != "sharedDirect" or g.mig_mode or g.reserved:
            continue
        total += timesliced_view(g).free_gb
    return total


class FragmentationScorer:
    name = "Fragmentation"

    def score(self, p: Proposal) -> Score:
        return Score(self.name, p.frag, p.frag_text)


class PolicyScorer:
    """Explains the host's assignment policy; it decides the GPU, not the host ranking."""

    name = "AssignmentPolicy"

    def score(self, p: Proposal) -> Score:
        return Score(self.name, 0, p.policy_text)


class FillScorer:
    """Whole-GPU requests: among hosts equal on every term before, the one left with the fewest free passthrough
    GPUs (best fit), so emptier hosts stay whole for larger VMs; DRS-like headroom would spread them instead. On the
    cluster replay it left fewer GPUs idle once demand exceeded the cluster on 10 of 10 seeds and raised the
    passthrough acceptance with the departure luck taken out (``bench/placement_quality.py``)."""

    name = "Fill"

    def score(self, p: Proposal) -> Score:
        if not p.request.whole_gpu:
            return Score(self.name, 0, "")
        left = free_passthrough_gpus(p.host) - len(p.choices)
        return Score(
            self.name,
            -left,
            lambda: f"{_stay_free(left)}{FILL_WHY}",
        )


FILL_WHY = ": a host already in use is filled before an emptier one"  # said only where another host was ranked


def free_passthrough_gpus(host: HostState) -> int:
    return sum(1 for g in host.gpus if g.graphics_type == "direct" and not g.consumers and not g.reserved)


def _stay_free(n: int) -> str:
    if n <= 0:
        return "no passthrough GPU of this host stays free"
    return f"{n} passthrough GPU of this host stays free" if n == 1 else f"{n} passthrough GPUs of this host stay free"


class HeadroomScorer:
    name = "Headroom"

    def score(self, p: Proposal) -> Score:
        cpu = p.host.cpu_free - p.request.vcpus
        mem = p.host.memory_free_mb - p.request.memory_mb
        if not p.host.cpu_known:
            return Score(self.name, (mem, cpu), "CPU/memory headroom unknown (topology capture only)")
        return Score(self.name, (mem, cpu), lambda: headroom_text(p.host, p.request, cpu, mem))


def headroom_text(host: HostState, request: PlacementRequest, cpu: int, mem: int) -> str:
    """The headroom left, and a caution when the VMs' configured memory would exceed the host's: vSphere admits
    the VM on reservations, and then reclaims the others' unreserved memory (ballooning, compression, swapping)."""
    text = f"headroom after admission: {cpu} vCPUs, {mem // 1024} GiB memory"
    configured = host.memory_configured_mb + request.memory_mb
    if host.memory_mb and request.memory_mb and configured > host.memory_mb:
        text += (
            f"; caution: the VMs' configured memory would be {configured / host.memory_mb:.2f}x the host's "
            f"{host.memory_mb // 1024} GiB: vSphere admits this VM on reservations and reclaims the other VMs' "
            "unreserved memory (ballooning, swapping)"
        )
    return text


SCORERS = (
    LinkClassFitScorer(),
    WholeHostScorer(),
    InterconnectScorer(),
    NumaScorer(),
    NumaRoomScorer(),
    PcieProximityScorer(),
    LeaveBehindScorer(),
    FragmentationScorer(),
    BalanceScorer(),
    PickCostScorer(),
    PolicyScorer(),
    FillScorer(),
    HeadroomScorer(),
)


def score_all(p: Proposal) -> tuple[tuple, Callable[[], tuple[str, ...]]]:
    """(ranking key, explain lines built on demand) for a proposal."""
    scores = [s.score(p) for s in SCORERS]

    def lines() -> tuple[str, ...]:
        return tuple(t for t in (s.text for s in scores) if t)

    return tuple(s.value for s in scores), lines
