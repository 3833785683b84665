"""Exact search for the best set of k GPUs inside one host.

Sets are bitmasks over the host's GPUs in pci-id order (``pci_order``). A set is scored lexicographically by
(a) the bottleneck of its best ring: the largest ``t`` such that a Hamiltonian cycle through the set
    uses only links of at least ``t`` GB/s (what a ring all-reduce actually gets);
(b) fewer NUMA nodes spanned; (c) PCIe proximity: smaller sum of link-class ranks over all pairs;
(d) what it leaves behind among the remaining eligible GPUs, as capacity: per size (8, 4, 2) how many
    disjoint NVLink-class sets remain (on NVSwitch boards: whole free Fabric Manager partitions), then how
    many disjoint sets of the best class the host type reaches for that size (NVLink counted apart from
    slower classes, so a PCIe pair never stands in for an NVLink pair).
Remaining ties go to the lowest pci ids.

Interchangeable GPUs (``gpucatalog.limits.twin_classes``: the same links to every other GPU, NUMA node, PCIe
switch and partitions) are searched once per count: every set is enumerated up to swaps of free interchangeable
GPUs, as its lowest-pci representative (the one the tie-break picks), and memo tables are keyed by the canonical
mask (the lowest members of each class). Classes that swap as wholes (``gpucatalog.limits.swappable_classes``: the
bridged pairs on one socket) and hold as many free GPUs are searched once per multiset of counts, the set with the
lowest pci ids of each tie found afterwards (``lexmin``). Results are the same as enumerating every set; hosts of 20
or 32 GPUs behind shared PCIe switches plan like an 8-GPU box, and 24 GPUs in 12 bridged pairs plan every size.

The criteria are applied in stages (all sets by (a), the survivors by (b), ...), so (d), the expensive
one, runs only on full ties. Ring bottlenecks use a degree-2 upper bound to skip hopeless sets, Dirac's
theorem as a shortcut, and a bitmask DP otherwise. Everything is cached per topology signature (links,
NUMA, switches, partitions; not names), so a cluster of identical hosts costs one search.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from itertools import combinations

from gpucatalog.limits import (
    MAX_DISTINCT_SETS,
    MAX_SEARCH_STATES,
    orbit_sets,
    search_states,
    swappable_classes,
    too_complex,
    transitive_groups,
    tree_like,
    twin_classes,
)
from placement.engine.lru import Lru
from placement.engine.model import NVLINK_CLASS, HostState, link_rank

RESULTS_PER_TOPOLOGY = 4096  # GPU-set searches kept per topology (free mask x k x interconnect)
CAPACITY_PER_TOPOLOGY = 8192  # leave-behind capacity vectors kept per topology (free mask)

LEAVE_SIZES = (8, 4, 2)
# leave vector layout: NVLink-class sets per LEAVE_SIZES, then best-class sets per LEAVE_SIZES
LEAVE_PARTS = ("nvlink", "best")


@dataclass(frozen=True)
class SetScore:
    mask: int
    bottleneck_gbps: float  # 0.0 for a single GPU
    bottleneck_label: str  # NV18, NVSWITCH, PIX, SYS ...; LOCAL for one GPU
    numa_count: int
    pcie_cost: int
    leave: tuple[float, ...]  # capacity left: NVLink-class then best-class disjoint sets, each per LEAVE_SIZES
    leave_before: tuple[float, ...] = ()  # the same vector before the choice (all eligible GPUs free)
    ring_class: int = -1  # link class (model.link_rank) a ring through the set keeps to; -1 for one GPU
    best_class: int = -1  # the best class any k GPUs of this host reach when all are free; -1 for k < 2
    groups_broken: int = 0  # intact NVLink groups / Fabric Manager partitions the set takes GPUs from

    @property
    def key(self) -> tuple:
        return (self.bottleneck_gbps, -self.numa_count, -self.pcie_cost, self.leave)

    @cached_property
    def leave_loss(self) -> tuple[float, ...]:
        """What the choice costs future requests, per LEAVE_SIZES (<= 0; closer to 0 is better).

        Within one host this orders sets exactly like ``leave``; across hosts only the difference is
        comparable: the absolute vector would favour breaking up the emptiest host.
        """
        before = self.leave_before or self.leave
        return tuple(round(a - b, 1) for a, b in zip(self.leave, before, strict=True))


@dataclass(frozen=True)
class SearchResult:
    best: SetScore | None
    feasible: int  # sets that met the interconnect/partition constraint (one per swap of interchangeable GPUs)
    reason: str = ""  # why nothing was found


class Topology:
    """One host's GPU fabric in canonical (pci-id sorted) order, with per-mask memo tables."""

    def __init__(self, signature: tuple, *, reductions: bool = True, swaps: bool = True) -> None:
        n, links, numa, switches, partitions = signature
        self.signature = signature
        self.n = n
        self.weight = [[0.0] * n for _ in range(n)]
        self.rank = [[0] * n for _ in range(n)]
        self.label = [[""] * n for _ in range(n)]
        self.nv = [[False] * n for _ in range(n)]
        pairs = iter(links)
        for i in range(n):
            for j in range(i + 1, n):
                kind, gbps, nvlinks = next(pairs)
                label = f"NV{nvlinks}" if kind in NVLINK_CLASS and nvlinks else kind
                for a, b in ((i, j), (j, i)):
                    self.weight[a][b] = float(gbps)
                    self.rank[a][b] = link_rank(kind)
                    self.label[a][b] = label
                    self.nv[a][b] = kind in NVLINK_CLASS
        self.numa = numa
        self.switches = switches
        self.partitions = partitions  # masks
        self.thresholds = sorted({self.weight[i][j] for i in range(n) for j in range(i + 1, n)}, reverse=True)
        # adjacency bitmasks per threshold, for all links and NVLink-class links only
        self._adj: dict[tuple[float, bool], list[int]] = {}
        self._ring: dict[tuple[int, bool], float] = {}
        self._class: dict[int, int] = {}
        self._best_class: dict[int, int] = {}
        self._cliques: dict[int, tuple[int, ...] | None] = {}
        self._tgroups: dict[tuple[float, bool], tuple[int, ...] | None] = {}
        self.results: Lru[SearchResult] = Lru(RESULTS_PER_TOPOLOGY)
        self.groups = tuple(p for p in partitions if p & (p - 1)) if partitions else nvlink_components(self)
        self.capacity: Lru[tuple[float, ...]] = Lru(CAPACITY_PER_TOPOLOGY)
        self._pack: Lru[int] = Lru(CAPACITY_PER_TOPOLOGY * 4)
        # ``reductions=False``: every set enumerated, every ring searched (the reference the shortcuts are tested on);
        # ``swaps=False``: interchangeable GPUs searched once per count, classes that swap as wholes one by one
        self.reductions = reductions
        self.twins = twin_classes(
            n,
            self._twin_relation,
            lambda i: (numa[i], switches[i], tuple(p >> i & 1 for p in partitions)) if reductions else i,
        )
        self._class_masks = tuple(_mask(c) for c in self.twins)
        # per class of two or more GPUs: its mask and the masks of its lowest 0, 1, 2 ... members
        self._prefixes = tuple(
            (_mask(c), tuple(_mask(c[:m]) for m in range(len(c) + 1))) for c in self.twins if len(c) > 1
        )
        self._singles = _mask(c[0] for c in self.twins if len(c) == 1)
        # classes that swap as wholes, as tuples of indices into ``twins`` (every class in one block); not with
        # Fabric Manager partitions, which a swap would not map onto partitions
        self.swap_blocks = (
            swappable_classes(
                self.twins,
                lambda i, j: (
                    *self._twin_relation(i, j),
                    switches[i] is not None and switches[i] == switches[j],
                ),
                lambda i: (numa[i], switches[i] is None),
            )
            if reductions and swaps and not partitions
            else tuple((c,) for c in range(len(self.twins)))
        )
        self._swaps = any(len(b) > 1 for b in self.swap_blocks)

    def _twin_relation(self, i: int, j: int) -> tuple:
        return (self.weight[i][j], self.rank[i][j], self.label[i][j], self.nv[i][j])

    @cached_property
    def block_sizes(self) -> tuple[tuple[int, int], ...]:
        """``(classes, size)`` per block of classes that swap as wholes (``gpucatalog.limits.orbit_sets``)."""
        return tuple((len(b), len(self.twins[b[0]])) for b in self.swap_blocks)

    @cached_property
    def tree(self) -> bool:
        """Whether every ring and leave-behind question has a closed form here (``gpucatalog.limits.tree_like``)."""
        return self.reductions and tree_like(
            self.n, lambda i, j: self.weight[i][j], lambda i, j: self.rank[i][j], lambda i, j: self.nv[i][j]
        )

    def canon(self, mask: int) -> int:
        """The representative of ``mask`` up to swaps of interchangeable GPUs: the lowest members of each class."""
        if not self._prefixes:
            return mask
        out = mask & self._singles
        for whole, prefix in self._prefixes:
            out |= prefix[(mask & whole).bit_count()]
        return out

    def combos(self, free: int, r: int, *, whole_classes: bool = True) -> list[int]:
        """Masks of the ``r``-subsets of ``free`` up to swaps of free interchangeable GPUs, each as its lowest-pci
        member (every subset when no two GPUs are interchangeable), and with ``whole_classes`` up to swaps of
        classes that swap as wholes and hold as many free GPUs (the lowest-pci member of such an orbit: ``lexmin``).
        Pass ``whole_classes=False`` when GPUs outside ``free`` still matter to the caller."""
        if not self._prefixes:
            return [_mask(c) for c in combinations(bits(free), r)]
        if whole_classes and self._swaps:
            return self._orbit_combos(free, r)
        groups = []
        for whole in self._class_masks:
            members = bits(free & whole)
            if members:
                groups.append(tuple(_mask(members[:m]) for m in range(len(members) + 1)))
        room = [0] * (len(groups) + 1)  # free GPUs in groups[g:]
        for g in range(len(groups) - 1, -1, -1):
            room[g] = room[g + 1] + len(groups[g]) - 1
        out: list[int] = []

        def walk(g: int, left: int, acc: int) -> None:
            if left == 0:
                out.append(acc)
                return
            if room[g] < left:
                return
            prefix = groups[g]
            for m in range(min(left, len(prefix) - 1), -1, -1):
                walk(g + 1, left - m, acc | prefix[m])

        walk(0, r, 0)
        return out

    def swap_groups(self, free: int) -> list[list[list[int]]]:
        """The free GPUs of each class (ascending), grouped: classes in one group swap as wholes and hold as many free
        GPUs, so any of them can give what another gives. Classes without free GPUs are left out."""
        groups: list[list[list[int]]] = []
        for block in self.swap_blocks:
            by_count: dict[int, list[list[int]]] = {}
            for c in block:
                members = bits(free & self._class_masks[c])
                if members:
                    by_count.setdefault(len(members), []).append(members)
            groups.extend(by_count.values())
        return groups

    def _orbit_combos(self, free: int, r: int) -> list[int]:
        # one slot per class: (masks of its lowest 0, 1, 2 ... free members, whether it follows a class of its group);
        # within a group the counts do not increase, which takes each multiset of counts once
        slots = [
            (tuple(_mask(members[:m]) for m in range(len(members) + 1)), pos > 0)
            for group in self.swap_groups(free)
            for pos, members in enumerate(group)
        ]
        room = [0] * (len(slots) + 1)
        for g in range(len(slots) - 1, -1, -1):
            room[g] = room[g + 1] + len(slots[g][0]) - 1
        out: list[int] = []

        def walk(g: int, left: int, acc: int, cap: int) -> None:
            if left == 0:
                out.append(acc)
                return
            if room[g] < left:
                return
            prefix, follows = slots[g]
            top = min(left, len(prefix) - 1, cap if follows else left)
            for m in range(top, -1, -1):
                walk(g + 1, left - m, acc | prefix[m], m)

        walk(0, r, 0, 0)
        return out

    def candidate_count(self, free: int, k: int) -> int:
        """How many sets ``combos(free, k)`` gives, without listing them (``gpucatalog.limits.orbit_sets``)."""
        return orbit_sets(((len(g), len(g[0])) for g in self.swap_groups(free)), k)

    def lexmin(self, free: int, mask: int) -> int:
        """The set with the lowest pci ids among those ``mask`` equals up to swaps of free interchangeable GPUs and
        of whole classes in one ``swap_groups`` group (all of which score alike)."""
        if not self._swaps:
            return mask
        out = mask
        for group in self.swap_groups(free):
            whole = [_mask(members) for members in group]
            counts = sorted((mask & w).bit_count() for w in whole)
            if len(group) > 1:
                # sets of one size compare by the lowest GPU in one and not the other: take each GPU, lowest
                # first, when the counts can still be dealt to the classes
                lo, hi = [0] * len(group), [len(group[0])] * len(group)
                for _gpu, c, pos in sorted((gpu, c, pos) for c, ms in enumerate(group) for pos, gpu in enumerate(ms)):
                    if hi[c] <= pos:
                        continue
                    lo[c] = pos + 1
                    if not _dealable(counts, lo, hi):
                        lo[c], hi[c] = pos, pos
                counts = lo
            else:
                counts = [(mask & whole[0]).bit_count()]
            for members, w, m in zip(group, whole, counts, strict=True):
                out = out & ~w | _mask(members[:m])
        return out

    def disjoint_sets(self, free: int, size: int, max_class: int) -> int:
        """Most disjoint ``size``-subsets of ``free`` whose ring keeps to link class ``max_class`` or better
        (exact: branch on the lowest free GPU, memoised per free mask)."""
        if size < 2 or max_class < 0 or bin(free).count("1") < size:
            return 0
        cliques = self.cliques(max_class)
        if cliques is not None:
            return sum((free & q).bit_count() // size for q in cliques)
        free = self.canon(free)
        key = (free, size, max_class)
        hit = self._pack.get(key)
        if hit is not None:
            return hit
        low = free & -free
        rest = free ^ low
        best = self.disjoint_sets(rest, size, max_class)  # the lowest GPU in no set
        for combo in self.combos(rest, size - 1, whole_classes=False):  # ``low`` is outside ``rest``
            m = combo | low
            if self.ring_class(m) <= max_class:
                best = max(best, 1 + self.disjoint_sets(free & ~m, size, max_class))
                if best == bin(free).count("1") // size:
                    break  # every free GPU is in a set: no packing does better
        self._pack.put(key, best)
        return best

    def cliques(self, max_class: int) -> tuple[int, ...] | None:
        """When "linked at ``max_class`` or better" is transitive (a PCIe tree: the GPUs behind a switch, on a
        socket; bridged pairs), the masks of its groups, else None. Then a ring keeps to ``max_class`` exactly
        when its GPUs are in one group (any ring leaving a group crosses a slower link), so the most disjoint sets
        of a size are counted per group."""
        if not self.reductions:
            return None
        if max_class not in self._cliques:
            adj = [sum(1 << j for j in range(self.n) if j != i and self.rank[i][j] <= max_class) for i in range(self.n)]
            self._cliques[max_class] = transitive_groups(adj)
        return self._cliques[max_class]

    def groups_broken(self, free: int, mask: int) -> int:
        """How many intact (wholly free) NVLink groups or Fabric Manager partitions ``mask`` takes GPUs from."""
        return sum(1 for g in self.groups if g & free == g and g & mask)

    def adjacency(self, t: float, nv_only: bool) -> list[int]:
        key = (t, nv_only)
        adj = self._adj.get(key)
        if adj is None:
            adj = [
                sum(
                    1 << j
                    for j in range(self.n)
                    if j != i and self.weight[i][j] >= t and (self.nv[i][j] or not nv_only)
                )
                for i in range(self.n)
            ]
            self._adj[key] = adj
        return adj

    def ring(self, mask: int, nv_only: bool = False) -> float:
        """Best ring bottleneck (GB/s) through ``mask``; 0.0 when no ring exists (or one GPU)."""
        mask = self.canon(mask)
        key = (mask, nv_only)
        value = self._ring.get(key)
        if value is None:
            value = self._ring_uncached(mask, nv_only)
            self._ring[key] = value
        return value

    def _w(self, i: int, j: int, nv_only: bool) -> float:
        return self.weight[i][j] if (self.nv[i][j] or not nv_only) else 0.0

    def _ring_uncached(self, mask: int, nv_only: bool) -> float:
        members = bits(mask)
        k = len(members)
        if k < 2:
            return 0.0
        if k == 2:
            return self._w(members[0], members[1], nv_only)
        if k == 3:
            a, b, c = members
            return min(self._w(a, b, nv_only), self._w(b, c, nv_only), self._w(a, c, nv_only))
        upper = ring_upper_bound(self, members, nv_only)
        for t in self.thresholds:
            if t > upper:
                continue
            if t <= 0:
                break
            adj = self.adjacency(t, nv_only)
            groups = self._threshold_groups(t, nv_only, adj)
            if groups is not None:
                if any(mask & g == mask for g in groups):
                    return t
            elif hamiltonian_cycle(adj, mask, members):
                return t
        return 0.0

    def _threshold_groups(self, t: float, nv_only: bool, adj: list[int]) -> tuple[int, ...] | None:
        key = (t, nv_only)
        if not self.reductions:
            return None
        if key not in self._tgroups:
            self._tgroups[key] = transitive_groups(adj)
        return self._tgroups[key]

    def label_of_bottleneck(self, mask: int, gbps: float) -> str:
        members = bits(mask)
        if len(members) < 2:
            return "LOCAL"
        if gbps <= 0:
            return "NONE"
        # the worst link class among links at exactly the bottleneck value names it
        found = [self.label[i][j] for i, j in combinations(members, 2) if self.weight[i][j] == gbps]
        return max(found, key=lambda lab: (link_rank_of_label(lab), lab)) if found else "?"

    def ring_class(self, mask: int) -> int:
        """Best link class (``model.link_rank``: 0 = NVLink/NVSwitch ... 6 = SYS) a ring through ``mask``
        can keep to (k=2: the pair's class); -1 for fewer than two GPUs."""
        mask = self.canon(mask)
        cached = self._class.get(mask)
        if cached is not None:
            return cached
        members = bits(mask)
        value = -1
        if len(members) == 2:
            value = self.rank[members[0]][members[1]]
        elif len(members) > 2:
            ranks = sorted({self.rank[i][j] for i, j in combinations(members, 2)})
            value = ranks[-1]
            for r in ranks:
                groups = self.cliques(r)
                if groups is not None:
                    if any(mask & g == mask for g in groups):
                        value = r
                        break
                    continue
                adj = [
                    sum(1 << j for j in members if j != i and self.rank[i][j] <= r) if mask >> i & 1 else 0
                    for i in range(self.n)
                ]
                if hamiltonian_cycle(adj, mask, members):
                    value = r
                    break
        self._class[mask] = value
        return value

    def best_class(self, k: int) -> int:
        """The best ``ring_class`` any ``k`` GPUs of the host reach with every GPU free (the host type's
        capability for that size; on NVSwitch boards only Fabric Manager partitions count)."""
        cached = self._best_class.get(k)
        if cached is None:
            ranks = sorted({self.rank[i][j] for i in range(self.n) for j in range(i + 1, self.n)})
            groups = [self.cliques(r) for r in ranks]
            if k < 2 or k > self.n:
                cached = -1
            elif all(g is not None for g in groups):
                # a tree of transitive classes: the best class is the first whose largest group holds k GPUs
                cached = next(r for r, g in zip(ranks, groups, strict=True) if max(x.bit_count() for x in g) >= k)
            else:
                pool = [p for p in self.partitions if bin(p).count("1") == k] if self.partitions else None
                masks = pool if pool else self.combos((1 << self.n) - 1, k)
                cached = min((self.ring_class(m) for m in masks), default=-1)
            self._best_class[k] = cached
        return cached

    def numa_count(self, mask: int) -> int:
        return len({self.numa[i] for i in bits(mask)})

    def pcie_cost(self, mask: int) -> int:
        m = bits(mask)
        rank = self.rank
        return sum(rank[i][j] for i, j in combinations(m, 2))


def nvlink_components(topo: Topology) -> tuple[int, ...]:
    """Masks of the host's NVLink-connected groups of two or more GPUs (a bridged pair, a hybrid cube mesh)."""
    seen = 0
    out = []
    for start in range(topo.n):
        if seen >> start & 1:
            continue
        comp, stack = 0, [start]
        while stack:
            i = stack.pop()
            if comp >> i & 1:
                continue
            comp |= 1 << i
            stack.extend(j for j in range(topo.n) if topo.nv[i][j] and not comp >> j & 1)
        seen |= comp
        if comp & (comp - 1):
            out.append(comp)
    return tuple(out)


def link_rank_of_label(label: str) -> int:
    return 0 if label.startswith("NV") else link_rank(label)


def bits(mask: int) -> list[int]:
    out = []
    i = 0
    while mask:
        if mask & 1:
            out.append(i)
        mask >>= 1
        i += 1
    return out


def _mask(indices) -> int:
    m = 0
    for i in indices:
        m |= 1 << i
    return m


def ring_upper_bound(topo: Topology, members, nv_only: bool) -> float:
    """In a ring every GPU uses two of its links, so the bottleneck is at most each GPU's 2nd-best link."""
    bound = float("inf")
    for i in members:
        first = second = 0.0
        for j in members:
            if j == i:
                continue
            w = topo._w(i, j, nv_only)
            if w > first:
                first, second = w, first
            elif w > second:
                second = w
        bound = min(bound, second)
    return bound


def hamiltonian_cycle(adj: list[int], mask: int, members: list[int]) -> bool:
    k = len(members)
    degrees = [bin(adj[v] & mask).count("1") for v in members]
    if min(degrees) < 2:
        return False
    if 2 * min(degrees) >= k:  # Dirac
        return True
    start = members[0]
    start_bit = 1 << start
    # reach[sub] = bitmask of vertices v such that a path start..v covers exactly sub
    reach = {start_bit: start_bit}
    for _ in range(k - 1):
        nxt: dict[int, int] = {}
        for sub, ends in reach.items():
            e = ends
            while e:
                low = e & -e
                v = low.bit_length() - 1
                e ^= low
                step = adj[v] & mask & ~sub
                while step:
                    lb = step & -step
                    step ^= lb
                    ns = sub | lb
                    nxt[ns] = nxt.get(ns, 0) | lb
        reach = nxt
        if not reach:
            return False
    ends = reach.get(mask, 0)
    return bool(ends & adj[start])


# ---------------------------------------------------------------- host -> topology

TOPOLOGIES_MAX = 1024
_TOPOLOGIES: Lru[Topology] = Lru(TOPOLOGIES_MAX)
_STATS = {"hits": 0, "misses": 0, "sets_scored": 0}


class Signature(tuple):
    """A topology signature whose hash is computed once. Cache lookups by a plain tuple would rehash every
    link each time; hosts of one type share one interned object, so a lookup is a hash read and an identity
    check."""

    _hash: int

    def __new__(cls, items: tuple) -> Signature:
        self = super().__new__(cls, items)
        self._hash = tuple.__hash__(self)
        return self

    def __hash__(self) -> int:
        return self._hash

    def __reduce__(self) -> tuple:
        return (Signature, (tuple(self),))


_INTERNED: Lru[Signature] = Lru(TOPOLOGIES_MAX)


def intern_signature(sig: tuple) -> Signature:
    if type(sig) is Signature:
        return sig
    interned = _INTERNED.get(sig)
    if interned is None:
        interned = Signature(sig)
        _INTERNED.put(interned, interned)
    return interned


def pci_order(pci_id: str) -> tuple[int, str]:
    """Shorter ids first, then by text: PCI addresses are all one width, and GPUs of a capture named by their
    nvidia-smi index (``gpu2``, ``gpu10``) then come in index order."""
    return (len(pci_id), pci_id)


def signature_of(host: HostState) -> tuple[Signature, tuple[str, ...]]:
    """(signature, pci ids in canonical order). Names and pci ids are not part of the signature."""
    if host.topology is not None:
        sig, order = host.topology
        return intern_signature(sig), order
    order = tuple(sorted((g.pci_id for g in host.gpus), key=pci_order))
    gpus = {g.pci_id: g for g in host.gpus}
    links = host.links
    link_sig = tuple(
        (lk.kind, lk.gbps, lk.nvlinks)
        for lk in (links[min(a, b), max(a, b)] for i, a in enumerate(order) for b in order[i + 1 :])
    )
    switch_ids: dict[str, int] = {}
    switches = tuple(
        None if gpus[p].pcie_switch is None else switch_ids.setdefault(gpus[p].pcie_switch, len(switch_ids))
        for p in order
    )
    index = {p: i for i, p in enumerate(order)}
    partitions = tuple(sorted(_mask(index[p] for p in part if p in index) for part in host.partitions))
    numa = tuple(gpus[p].numa_node for p in order)
    return intern_signature((len(order), link_sig, numa, switches, partitions)), order


def with_topology(host: HostState) -> HostState:
    """The host with its signature precomputed (for builders of many hosts: each later lookup is free)."""
    return host if host.topology is not None else replace(host, topology=signature_of(host))


def topology_for(host: HostState) -> tuple[Topology, tuple[str, ...]]:
    sig, order = signature_of(host)
    topo = _TOPOLOGIES.get(sig)
    if topo is None:
        topo = Topology(sig)
        _TOPOLOGIES.put(sig, topo)
    return topo, order


def search_stats() -> dict[str, int]:
    return {**_STATS, "topologies": len(_TOPOLOGIES)}


def reset_search_cache() -> None:
    _TOPOLOGIES.clear()
    _INTERNED.clear()
    for k in _STATS:
        _STATS[k] = 0


# ---------------------------------------------------------------- the search


def search(
    topo: Topology,
    free: int,
    k: int,
    interconnect: str = "any",
    *,
    use_partitions: bool = True,
    fractional: bool = False,
    crowded: int = 0,
) -> SearchResult:
    """Best k-subset of ``free`` under ``interconnect``; cached per (topology, free, k, interconnect).

    ``fractional``: the set is for fractional vGPUs, which cannot use NVLink P2P: instead of the ring
    bottleneck the first criterion is how few intact NVLink groups / Fabric Manager partitions it breaks.
    ``crowded``: the GPUs on NUMA nodes without room for the VM's vCPUs and memory; a set on one such node ranks
    after a set on one node with room (right after the NUMA span).
    """
    key = (free, k, interconnect, use_partitions, fractional, crowded)
    hit = topo.results.get(key)
    if hit is not None:
        _STATS["hits"] += 1
        return hit
    _STATS["misses"] += 1
    result = _search(topo, free, k, interconnect, use_partitions, fractional, crowded)
    topo.results.put(key, result)
    return result


def search_uncached(
    host: HostState, free_pci: set[str] | frozenset[str], k: int, interconnect: str = "any"
) -> SearchResult:
    """The plain exhaustive search on a fresh topology object: no memo shared with other calls, no shortcuts
    (every set enumerated, every ring searched)."""
    sig, order = signature_of(host)
    topo = Topology(sig, reductions=False)
    free = _mask(i for i, p in enumerate(order) if p in free_pci)
    return _search(topo, free, k, interconnect, True)


def _candidates(topo: Topology, free: int, k: int, use_partitions: bool):
    if topo.partitions and use_partitions and k > 1:
        return [p for p in topo.partitions if p & free == p and bin(p).count("1") == k]
    return topo.combos(free, k)


def _meets(topo: Topology, mask: int, interconnect: str) -> bool:
    if interconnect == "same-numa":
        nodes = {topo.numa[i] for i in bits(mask)}
        return len(nodes) == 1 and None not in nodes
    if interconnect == "same-pcie-switch":
        sw = {topo.switches[i] for i in bits(mask)}
        return len(sw) == 1 and None not in sw
    return True


def no_nvlink_set(topo: Topology, free: int, k: int) -> str:
    """Why no ``k`` eligible GPUs are all joined by NVLink, in what the host has: no NVLink, or groups too small."""
    most = max((bin(c & free).count("1") for c in nvlink_components(topo)), default=0)
    if most < 2:
        return f"no {k} eligible GPUs joined by NVLink: the eligible GPUs have no NVLink between them (PCIe only)"
    if most >= k:  # enough GPUs are NVLinked to each other, but no k of them close a ring (a mesh, not all-to-all)
        return (
            f"no {k} eligible GPUs form an NVLink ring: {most} of them are joined by NVLink, but no {k} of those "
            "close a ring"
        )
    return f"no {k} eligible GPUs joined by NVLink: NVLink joins at most {most} of the eligible GPUs on this host"


def partition_refusal(partitions: Sequence[int], k: int) -> str:
    """Why no Fabric Manager partition takes a ``k``-GPU VM: none is free, or none of that size exists at all."""
    sizes = sorted({bin(p).count("1") for p in partitions})
    if k not in sizes:
        listed = ", ".join(map(str, sizes[:-1])) + f" or {sizes[-1]}" if len(sizes) > 1 else str(sizes[0])
        return f"this NVSwitch board's Fabric Manager partitions hold {listed} GPUs: a {k}-GPU VM cannot get one"
    return f"no free Fabric Manager partition of {k} GPUs among the eligible ones"


def _search(
    topo: Topology,
    free: int,
    k: int,
    interconnect: str,
    use_partitions: bool,
    fractional: bool = False,
    crowded: int = 0,
) -> SearchResult:
    n_free = bin(free).count("1")
    if n_free < k:
        return SearchResult(None, 0, f"needs {k} GPUs, {n_free} eligible")
    if topo.n > 16 and not (topo.partitions and use_partitions):
        if not topo.tree and search_states(len(c) for c in topo.twins) > MAX_SEARCH_STATES:
            # the leave-behind of a mesh meets too many free states (the HostSize filter refuses such hosts first)
            return SearchResult(None, 0, too_complex([len(c) for c in topo.twins], k, False) or "")
        sets = topo.candidate_count(free, k)
        if sets > MAX_DISTINCT_SETS:
            return SearchResult(
                None,
                0,
                f"with these {n_free} GPUs eligible, a VM of {k} GPUs has {sets:,} distinct GPU sets on this host: "
                f"the advisor ranks up to {MAX_DISTINCT_SETS:,} (all sets of 8 of 16 GPUs)",
            )
    candidates = [m for m in _candidates(topo, free, k, use_partitions) if _meets(topo, m, interconnect)]
    if not candidates:
        if topo.partitions and use_partitions and k > 1:
            return SearchResult(None, 0, partition_refusal(topo.partitions, k))
        what = {"same-numa": "on one NUMA node", "same-pcie-switch": "behind one PCIe switch"}.get(interconnect, "")
        return SearchResult(None, 0, f"no {k} eligible GPUs {what}".strip())
    nv_only = interconnect == "nvlink" and k > 1
    _STATS["sets_scored"] += len(candidates)
    # (a) ring bottleneck, with the upper bound pruning sets that cannot reach the current best
    best_a = float("-inf") if fractional else -1.0
    tier: list[tuple[int, float]] = []
    for m in candidates:
        if fractional:
            a = float(-topo.groups_broken(free, m))
            if a > best_a:
                best_a, tier = a, [(m, a)]
            elif a == best_a:
                tier.append((m, a))
            continue
        if k > 3 and ring_upper_bound(topo, bits(m), nv_only) < best_a:
            continue
        a = topo.ring(m, nv_only) if k > 1 else 0.0
        if nv_only and a <= 0:
            continue
        a = round(a, 1)
        if a > best_a:
            best_a, tier = a, [(m, a)]
        elif a == best_a:
            tier.append((m, a))
    if not tier:
        return SearchResult(None, 0, no_nvlink_set(topo, free, k))
    # (b) NUMA span, (c) PCIe proximity
    tier_b = _keep_min(tier, lambda t: (topo.numa_count(t[0]), topo.numa_count(t[0]) == 1 and bool(t[0] & crowded)))
    tier_c = _keep_min(tier_b, lambda t: topo.pcie_cost(t[0]))
    # (d) leave-behind, only on full ties
    if len(tier_c) > 1:
        scored = [(leave_vector(topo, free & ~m, use_partitions), m, a) for m, a in tier_c]
        top = max(s[0] for s in scored)
        tier_d = [(m, a, lv) for lv, m, a in scored if lv == top]
    else:
        m, a = tier_c[0]
        tier_d = [(m, a, leave_vector(topo, free & ~m, use_partitions))]
    m, a, lv = min(((topo.lexmin(free, m), a, lv) for m, a, lv in tier_d), key=lambda t: bits(t[0]))
    if fractional:
        a = round(topo.ring(m), 1) if k > 1 else 0.0  # reported, not ranked
    best = SetScore(
        mask=m,
        bottleneck_gbps=a,
        bottleneck_label=topo.label_of_bottleneck(m, a) if k > 1 else "LOCAL",
        numa_count=topo.numa_count(m),
        pcie_cost=topo.pcie_cost(m),
        leave=lv,
        leave_before=leave_vector(topo, free, use_partitions),
        ring_class=topo.ring_class(m) if k > 1 else -1,
        best_class=topo.best_class(k) if k > 1 else -1,
        groups_broken=topo.groups_broken(free, m),
    )
    return SearchResult(best, len(candidates))


def _dealable(counts: Sequence[int], lo: Sequence[int], hi: Sequence[int]) -> bool:
    """Whether the ``counts`` (ascending) can be dealt one to each class ``c`` within ``lo[c]..hi[c]``: each count,
    smallest first, to the class that can take it whose upper bound is lowest."""
    waiting = sorted(range(len(lo)), key=lambda c: lo[c])
    open_: list[int] = []
    j = 0
    for v in counts:
        while j < len(waiting) and lo[waiting[j]] <= v:
            heapq.heappush(open_, hi[waiting[j]])
            j += 1
        if not open_ or heapq.heappop(open_) < v:
            return False
    return True


def _keep_min(items, key):
    values = [key(x) for x in items]
    low = min(values)
    return [x for x, v in zip(items, values, strict=True) if v == low]


def leave_vector(topo: Topology, remaining: int, use_partitions: bool = True) -> tuple[float, ...]:
    """Capacity left in ``remaining``: (NVLink-class sets of 8, 4, 2; best-class sets of 8, 4, 2).

    NVSwitch boards count whole free Fabric Manager partitions in both halves; other hosts count the
    most disjoint sets whose ring stays on NVLink, then the most disjoint sets reaching the best class
    the host type reaches for that size (on a host without NVLink: its best PCIe class). Cached per
    topology and free mask (LRU-bounded).
    """
    key = (topo.canon(remaining), use_partitions)
    hit = topo.capacity.get(key)
    if hit is not None:
        return hit
    if topo.partitions and use_partitions:
        whole = tuple(
            float(sum(1 for p in topo.partitions if p & remaining == p and bin(p).count("1") == s)) for s in LEAVE_SIZES
        )
        value = whole + whole
    else:
        nv = tuple(float(topo.disjoint_sets(remaining, s, 1)) for s in LEAVE_SIZES)
        best = tuple(float(topo.disjoint_sets(remaining, s, topo.best_class(s))) for s in LEAVE_SIZES)
        value = nv + best
    topo.capacity.put(key, value)
    return value


def mask_of(order: tuple[str, ...], pci_ids) -> int:
    wanted = set(pci_ids)
    return _mask(i for i, p in enumerate(order) if p in wanted)


def pci_of(order: tuple[str, ...], mask: int) -> tuple[str, ...]:
    return tuple(order[i] for i in bits(mask))
