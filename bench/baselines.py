"""What other placers would pick, for the benchmarks only (the product never imports this module).

Three baselines, each ``(fabric, request) -> Pick | None``:

``first_fit``
    vSphere Dynamic DirectPath I/O ("any N free"): hosts in name order, the first host with enough
    eligible GPUs, its lowest-indexed eligible GPUs. Topology is ignored.

``sum_of_pairs``
    NVIDIA go-gpuallocator's ``besteffort`` policy (the Kubernetes device plugin's allocator). Pair
    points: SYS 10, NODE 20, PHB 30, PXB 40, PIX 50, NVLink 100 per link (NV12 = 1200; NVSwitch pairs are
    scored by their NVLink count, which is more than the real allocator sees: NVML reports NVSwitch links
    as going to the switch, not to the peer GPU). A set scores the sum over its pairs.
    Search: the real algorithm by default (``search="partition"``): every partition of the free GPUs
    (in index order, padded with empty slots to a multiple of k exactly as upstream) into sets of k; the
    partition with the highest total wins (first found on ties), then its highest-scoring set (first on
    ties). One deliberate deviation: a set holding padding is never returned (upstream can return one when
    a padded set out-scores the real ones; the device plugin would then fail the allocation). Above
    ``PARTITION_LIMIT`` free GPUs, or with ``search="subsets"``, the exhaustive search over k-subsets
    (maximum set score, first in lexicographic index order on ties) is used instead; it is at least as good
    by its own measure. go-gpuallocator has no cluster view, so the host is the first in name order
    where a set exists (``host_choice="first"``, what the benchmarks use); ``host_choice="best"`` takes the
    best-scoring host instead (ties: name order).

``vsphere_vgpu``
    vSphere's own time-sliced vGPU placement, written from its description (DOMAIN 2 and 3.3/3.4, FD parts
    4 and 6), not from the engine. DRS-like host choice: the most free memory, then the most free vCPUs,
    then name, among the hosts where the request fits (GPU fit quality is not looked at). Then the host
    picks the GPU. Same-size mode, by the host's ``sharedPassthruAssignmentPolicy``: ``performance`` = the
    compatible GPU with the fewest vGPUs, lowest PCI id on ties (spread); ``consolidation`` = the compatible
    GPU with the most vGPUs, lowest PCI id on ties (fill a GPU before opening a neutral one). Mixed-size
    mode (the policy is ignored): the least-used GPU (used GB, then PCI id) that has a free placement ID
    for the size, at the placement ID that keeps the largest contiguous free range largest ("minimizes
    fragmentation", FD part 6), lowest ID on ties. Placement IDs come from the catalog (size-aligned when
    unpublished); residents without a reported offset sit where this rule would have put them. A
    multi-vGPU VM repeats the choice per vGPU on distinct GPUs.

Fairness: the baselines share only the engine's hard-rule filters (``filters.check_host`` /
``filters.check_gpus``: host state, admission, busy/reserved GPUs, per-GPU mode, same-size lock,
equal-size and mixed-size maxima, framebuffer, placement IDs, HGX rules), so they fail or succeed on the
same feasibility as the engine and differ only in which host, GPUs and placement IDs they choose; every
choice is made by this module's own code. Set-level constraints (``interconnect``, Fabric Manager
partitions) are not understood by any of them; the benchmarks ask for ``interconnect="any"`` and count
partition violations separately. MIG requests are out of scope (no MIG slot is chosen).

The module also holds the one ring-bottleneck function every benchmark uses to measure a chosen set
(independent of the engine's search, so it doubles as a check of it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import combinations

from gpucatalog.catalog import Board, load_catalog
from gpucatalog.profiles import ProfileNameError, parse_profile_name
from placement.engine.filters import RequestContext, check_gpus, check_host
from placement.engine.model import LINK_KINDS, NVLINK_CLASS, Fabric, GpuState, HostState, PairLink, link_rank
from placement.engine.request import PlacementRequest
from placement.engine.result import Candidate, GpuChoice

PCIE_POINTS = {"SYS": 10, "NODE": 20, "PHB": 30, "PXB": 40, "PIX": 50}
NVLINK_POINTS_PER_LINK = 100
PARTITION_LIMIT = 12  # free GPUs above which sum_of_pairs falls back to the k-subset search

# link classes by rank (model.link_rank): 0 = NVLink/NVSwitch, 2 = PIX ... 6 = SYS
CLASS_LABELS = {0: "NVLINK", **{i: k for i, k in enumerate(LINK_KINDS) if i >= 2}}


@dataclass(frozen=True)
class Pick:
    """Where a placer puts one VM: a host and its GPUs (with vGPU placement where it applies)."""

    host: str
    gpus: tuple[GpuChoice, ...]
    placer: str

    @property
    def pci_ids(self) -> tuple[str, ...]:
        return tuple(g.pci_id for g in self.gpus)

    @property
    def indices(self) -> tuple[int, ...]:
        return tuple(g.index for g in self.gpus)

    def candidate(self) -> Candidate:
        """An engine ``Candidate`` so ``plan.apply_candidate`` can advance the state for any placer."""
        return Candidate(
            host=self.host, vm_index=0, gpus=self.gpus, score=0.0, bottleneck=("?", 0.0), numa_nodes=(), explanation=()
        )

    @classmethod
    def from_candidate(cls, candidate: Candidate, placer: str = "ours") -> Pick:
        return cls(candidate.host, candidate.gpus, placer)


Placer = Callable[[Fabric, PlacementRequest], "Pick | None"]


# ---------------------------------------------------------------- shared measurement


def _weights(host: HostState, pci_ids: Sequence[str]) -> list[list[PairLink | None]]:
    k = len(pci_ids)
    return [[None if i == j else host.link(pci_ids[i], pci_ids[j]) for j in range(k)] for i in range(k)]


def _has_cycle(k: int, ok: Callable[[int, int], bool]) -> bool:
    """Whether the complete graph on 0..k-1 restricted to ``ok`` edges has a Hamiltonian cycle (k >= 3)."""
    adj = [sum(1 << j for j in range(k) if j != i and ok(i, j)) for i in range(k)]
    if any(bin(a).count("1") < 2 for a in adj):
        return False
    full = (1 << k) - 1
    # paths from vertex 0: reach[mask] = set of end vertices (bitmask)
    reach = [0] * (1 << k)
    reach[1] = 1
    for mask in range(1, 1 << k):
        ends = reach[mask]
        if not ends or not mask & 1:
            continue
        e = ends
        while e:
            low = e & -e
            v = low.bit_length() - 1
            e ^= low
            nxt = adj[v] & ~mask
            while nxt:
                lb = nxt & -nxt
                nxt ^= lb
                reach[mask | lb] |= lb
    return bool(reach[full] & adj[0])


def ring_bottleneck(host: HostState, pci_ids: Sequence[str]) -> float:
    """Max over Hamiltonian cycles through the set of the min link GB/s (k=2: the pair link; k<2: 0.0)."""
    ids = list(pci_ids)
    k = len(ids)
    if k < 2:
        return 0.0
    w = _weights(host, ids)
    if k == 2:
        return float(w[0][1].gbps)  # type: ignore[union-attr]
    values = sorted({w[i][j].gbps for i in range(k) for j in range(i + 1, k)}, reverse=True)  # type: ignore[union-attr]
    for t in values:
        if _has_cycle(k, lambda i, j, t=t: w[i][j].gbps >= t):  # type: ignore[union-attr]
            return float(t)
    return 0.0


def ring_class(host: HostState, pci_ids: Sequence[str]) -> int:
    """Best link class (``model.link_rank``: 0 = NVLink/NVSwitch ... 6 = SYS) a ring through the set can
    keep to; k=2 is the pair's class; -1 for fewer than two GPUs."""
    ids = list(pci_ids)
    k = len(ids)
    if k < 2:
        return -1
    w = _weights(host, ids)
    if k == 2:
        return link_rank(w[0][1].kind)  # type: ignore[union-attr]
    ranks = sorted({link_rank(w[i][j].kind) for i in range(k) for j in range(i + 1, k)})  # type: ignore[union-attr]
    for r in ranks:
        if _has_cycle(k, lambda i, j, r=r: link_rank(w[i][j].kind) <= r):  # type: ignore[union-attr]
            return r
    return ranks[-1]


def class_label(rank: int) -> str:
    return "LOCAL" if rank < 0 else CLASS_LABELS.get(rank, "SYS")


def numa_span(host: HostState, pci_ids: Sequence[str]) -> int:
    """NUMA nodes the set spans (unknown nodes count as one each)."""
    nodes = [host.gpu(p).numa_node for p in pci_ids]
    return len({n for n in nodes if n is not None}) + sum(1 for n in nodes if n is None)


def is_fm_partition(host: HostState, pci_ids: Sequence[str]) -> bool:
    """True unless the host is an NVSwitch board and a multi-GPU set is not one Fabric Manager partition."""
    if not host.partitions or len(pci_ids) < 2:
        return True
    return frozenset(pci_ids) in set(host.partitions)


# ---------------------------------------------------------------- hard rules shared with the engine


def eligible_gpus(host: HostState, request: PlacementRequest) -> list[GpuState] | None:
    """GPUs the engine's hard rules allow for ``request`` on ``host`` in index order; None if the host fails."""
    ctx = RequestContext.of(request)
    if check_host(host, ctx):
        return None
    return sorted((f.gpu for f in check_gpus(host, ctx).eligible), key=lambda g: g.index)


def _choices(host: HostState, gpus: Sequence[GpuState], request: PlacementRequest) -> tuple[GpuChoice, ...]:
    """The GPUs as choices; a vGPU on a mixed-size GPU gets the placement ID the host would pick (see
    ``vsphere_vgpu``)."""
    profile = request.vgpu_profile
    out = []
    for g in gpus:
        start = None
        if profile is not None and request.consumption != "mig" and g.vgpu_mode == "mixedSize":
            start = mixed_start(g, profile.framebuffer_gb)
        out.append(GpuChoice(g.pci_id, g.index, placement_gb=start, profile=profile.name if profile else None))
    return tuple(out)


# ---------------------------------------------------------------- a vGPU host's own view of its GPUs

TIMESLICED = ("vgpu", "device-group")


def _board(gpu: GpuState) -> Board | None:
    catalog = load_catalog()
    if gpu.board:
        return catalog.boards.get(gpu.board)
    return catalog.board_for_device(None, gpu.model, gpu.memory_mb)


def _capacity_gb(gpu: GpuState) -> int:
    board = _board(gpu)
    return board.framebuffer_gb if board is not None else gpu.memory_mb // 1024


def _size_gb(profile: str | None, gpu: GpuState) -> int:
    if not profile:
        return _capacity_gb(gpu)
    try:
        return parse_profile_name(profile).framebuffer_gb
    except ProfileNameError:
        return 0


def vgpu_residents(gpu: GpuState) -> list[tuple[str, int, int | None]]:
    """(profile, size GB, start GB or None) of the time-sliced vGPUs holding the GPU now."""
    return [
        ((c.profile or "").lower(), _size_gb(c.profile, gpu), c.placement_gb)
        for c in gpu.consumers
        if c.holds_device and c.kind in TIMESLICED
    ]


def placement_ids(gpu: GpuState, size_gb: int) -> tuple[int, ...]:
    board = _board(gpu)
    ts = board.timesliced.get(size_gb) if board is not None else None
    if ts is not None and ts.placement_ids_gb is not None:
        return ts.placement_ids_gb
    return tuple(range(0, _capacity_gb(gpu) - size_gb + 1, size_gb))


def _largest_free(intervals: Sequence[tuple[int, int]], capacity: int) -> int:
    pos, best = 0, 0
    for a, b in sorted(intervals):
        best = max(best, a - pos)
        pos = max(pos, b)
    return max(best, capacity - pos)


def _pick_start(intervals: list[tuple[int, int]], ids: Sequence[int], size: int, capacity: int) -> int | None:
    best: tuple[int, int] | None = None
    for s in ids:
        if s + size > capacity or any(s < b and a < s + size for a, b in intervals):
            continue
        key = (-_largest_free([*intervals, (s, s + size)], capacity), s)
        if best is None or key < best:
            best = key
    return best[1] if best is not None else None


def occupied(gpu: GpuState) -> list[tuple[int, int]]:
    """[start, end) GB ranges of the GPU's vGPUs; one without a reported offset where ``mixed_start`` puts it."""
    capacity = _capacity_gb(gpu)
    intervals = [(s, s + size) for _, size, s in vgpu_residents(gpu) if s is not None]
    for _, size, s in vgpu_residents(gpu):
        if s is None and size > 0:
            start = _pick_start(intervals, placement_ids(gpu, size), size, capacity)
            if start is not None:
                intervals.append((start, start + size))
    return intervals


def mixed_start(gpu: GpuState, size_gb: int) -> int | None:
    """Mixed-size: the free placement ID that keeps the largest contiguous free range largest, lowest first."""
    return _pick_start(occupied(gpu), placement_ids(gpu, size_gb), size_gb, _capacity_gb(gpu))


# ---------------------------------------------------------------- first fit


def first_fit(fabric: Fabric, request: PlacementRequest) -> Pick | None:
    """vSphere Dynamic DirectPath: the lowest-indexed eligible GPUs on the first host (by name) with enough."""
    request.validate()
    k = request.gpus_per_vm
    for host in sorted(fabric.hosts, key=lambda h: h.name):
        gpus = eligible_gpus(host, request)
        if gpus is not None and len(gpus) >= k:
            return Pick(host.name, _choices(host, gpus[:k], request), "first_fit")
    return None


# ---------------------------------------------------------------- sum of pairs (go-gpuallocator besteffort)


def pair_points(link: PairLink) -> int:
    """go-gpuallocator's pair score for one nvidia-smi link class (NVLink: 100 per link)."""
    if link.kind in NVLINK_CLASS:
        return NVLINK_POINTS_PER_LINK * max(link.nvlinks, 1)
    return PCIE_POINTS.get(link.kind, PCIE_POINTS["SYS"])


def _iterate_sets(items: Sequence[int | None], size: int) -> Iterator[tuple[int | None, ...]]:
    return combinations(items, size)


def iterate_partitions(devices: Sequence[int], size: int) -> Iterator[list[tuple[int | None, ...]]]:
    """go-gpuallocator's ``iterateGPUPartitions`` (same order, same padding rule), ``None`` = padding."""
    if size <= 0 or size > len(devices):
        return
    if size == 1:
        for d in devices:
            yield [(d,)]
        return
    padded: list[int | None] = list(devices)
    while len(padded) % size:
        padded.append(None)
    padding = len(padded) - len(devices)

    def rec(rest: list[int | None], accum: list[tuple[int | None, ...]]) -> Iterator[list[tuple[int | None, ...]]]:
        if size == len(rest):
            yield [*accum, tuple(rest)]
            return
        head = rest[0]
        for tail in _iterate_sets(rest[1:], size - 1):
            s = (head, *tail)
            p = sum(1 for x in s if x is None)
            if not (p == 0 or p == padding):
                continue
            # remove the set's members from ``rest``, keeping order; padding slots by count
            left = list(rest)
            for x in s:
                left.remove(x)
            yield from rec(left, [*accum, s])

    yield from rec(padded, [])


def _set_score(points: dict[tuple[int, int], int], s: Sequence[int | None]) -> int:
    real = [x for x in s if x is not None]
    return sum(points[(a, b) if a < b else (b, a)] for a, b in combinations(real, 2))


def best_effort_set(host: HostState, gpus: Sequence[GpuState], k: int, search: str = "partition") -> tuple[int, ...]:
    """go-gpuallocator's choice of ``k`` GPU indices among ``gpus`` (see the module docstring)."""
    idx = [g.index for g in sorted(gpus, key=lambda g: g.index)]
    if len(idx) < k:
        return ()
    by_index = {g.index: g.pci_id for g in gpus}
    points = {(a, b): pair_points(host.link(by_index[a], by_index[b])) for a, b in combinations(idx, 2)}
    if search == "partition" and len(idx) <= PARTITION_LIMIT:
        best_part: list[tuple[int | None, ...]] | None = None
        best_total = 0
        for part in iterate_partitions(idx, k):
            if not any(None not in s for s in part):
                continue
            total = sum(_set_score(points, s) for s in part)
            if best_part is None or total > best_total:
                best_part, best_total = part, total
        assert best_part is not None
        real_sets = [s for s in best_part if None not in s]
        best = real_sets[0]
        best_score = _set_score(points, best)
        for s in real_sets[1:]:
            sc = _set_score(points, s)
            if sc > best_score:
                best, best_score = s, sc
        return tuple(x for x in best if x is not None)
    best_subset: tuple[int, ...] = ()
    best_score = -1
    for s in combinations(idx, k):
        sc = _set_score(points, s)
        if sc > best_score:
            best_subset, best_score = s, sc
    return best_subset


def set_points(host: HostState, pci_ids: Sequence[str]) -> int:
    """Sum of go-gpuallocator pair points over the set."""
    return sum(pair_points(host.link(a, b)) for a, b in combinations(pci_ids, 2))


def sum_of_pairs(
    fabric: Fabric, request: PlacementRequest, *, host_choice: str = "first", search: str = "partition"
) -> Pick | None:
    """go-gpuallocator besteffort on each host; the first host (by name) that fits, or the best-scoring one."""
    request.validate()
    k = request.gpus_per_vm
    best: tuple[int, Pick] | None = None
    for host in sorted(fabric.hosts, key=lambda h: h.name):
        gpus = eligible_gpus(host, request)
        if gpus is None or len(gpus) < k:
            continue
        chosen = set(best_effort_set(host, gpus, k, search))
        picked = [g for g in gpus if g.index in chosen]
        pick = Pick(host.name, _choices(host, picked, request), "sum_of_pairs")
        if host_choice == "first":
            return pick
        score = set_points(host, pick.pci_ids)
        if best is None or score > best[0]:
            best = (score, pick)
    return best[1] if best is not None else None


# ---------------------------------------------------------------- vSphere vGPU (DRS + host policy)


def vsphere_gpu_choice(host: HostState, request: PlacementRequest) -> tuple[GpuChoice, ...] | None:
    """The GPUs (and mixed-size placement IDs) the host itself gives the request's vGPUs, or None."""
    profile = request.vgpu_profile
    if profile is None or request.consumption == "mig":
        raise ValueError("vsphere_vgpu places time-sliced vGPU profiles only")
    gpus = eligible_gpus(host, request)
    if gpus is None or len(gpus) < request.gpus_per_vm:
        return None
    size = profile.framebuffer_gb
    pool = sorted(gpus, key=lambda g: g.pci_id)
    out: list[GpuChoice] = []
    for _ in range(request.gpus_per_vm):
        start = None
        if pool and all(g.vgpu_mode != "mixedSize" for g in pool):
            count = {g.pci_id: len(vgpu_residents(g)) for g in pool}
            if host.assignment_policy == "consolidation":
                gpu = min(pool, key=lambda g: (-count[g.pci_id], g.pci_id))
            else:
                gpu = min(pool, key=lambda g: (count[g.pci_id], g.pci_id))
        else:
            used = {g.pci_id: sum(r[1] for r in vgpu_residents(g)) for g in pool}
            fits = [(g, mixed_start(g, size)) for g in pool]
            fits = [(g, s) for g, s in fits if s is not None]
            if not fits:
                return None
            gpu, start = min(fits, key=lambda t: (used[t[0].pci_id], t[0].pci_id))
        out.append(GpuChoice(gpu.pci_id, gpu.index, placement_gb=start, profile=profile.name))
        pool = [g for g in pool if g.pci_id != gpu.pci_id]
    return tuple(out)


def vsphere_vgpu(fabric: Fabric, request: PlacementRequest) -> Pick | None:
    """DRS picks the host with the most free memory/CPU among those that fit; the host picks the GPU."""
    request.validate()
    fits: list[tuple[tuple, HostState, tuple[GpuChoice, ...]]] = []
    for host in fabric.hosts:
        choice = vsphere_gpu_choice(host, request)
        if choice is not None:
            fits.append(((-host.memory_free_mb, -host.cpu_free, host.name), host, choice))
    if not fits:
        return None
    _, host, choice = min(fits, key=lambda t: t[0])
    return Pick(host.name, choice, "vsphere_vgpu")


BASELINES: dict[str, Placer] = {
    "first_fit": first_fit,
    "sum_of_pairs": sum_of_pairs,
    "vsphere_vgpu": vsphere_vgpu,
}
