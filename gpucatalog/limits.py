"""How large a host the placement engine plans on, shared with the capture parser that warns about it."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from math import prod

# The engine ranks GPU sets exactly: every set of the requested size and, for what a choice leaves behind, the
# most disjoint best-class sets per size. Interchangeable GPUs (same links to every other GPU, same NUMA node, PCIe
# switch and partitions: the GPUs behind one PCIe switch, on one socket's root ports, the two cards of an NVLink
# bridge) are searched once per count, so a request of k GPUs scores the distinct ways to take k GPUs from the
# classes of interchangeable GPUs. On a host whose links form a tree (every "linked at this class or better" is a
# grouping: PCIe switches, sockets, bridged pairs, NVSwitch) every ring and leave-behind question then has a closed
# form; on other hosts (NVLink meshes) the leave-behind search also visits every free-GPU state up to those swaps.
# Classes that swap as wholes (the bridged pairs on one socket) are searched once per multiset of counts, so a host
# of 24 GPUs in 12 bridged pairs has a few hundred distinct sets of 8 where taking counts per pair gives 28,314.
# The largest boards (16 GPUs, all wired differently) have 12,870 sets of 8 and 2^16 states and plan in well under
# a second; 18 such GPUs took 9 s and 24 two minutes for one 2-GPU request. Beyond these limits a request is
# rejected on that host with the reason rather than tying up a worker (smaller requests on it still plan).
MAX_GPUS_PER_VM = 16  # the largest request the advisor takes (checked in placement.engine.request)
MAX_DISTINCT_SETS = 12_870  # C(16, 8)
MAX_SEARCH_STATES = 2**16


def twin_classes(
    n: int, relation: Callable[[int, int], Hashable], attribute: Callable[[int], Hashable]
) -> tuple[tuple[int, ...], ...]:
    """GPUs 0..n-1 grouped into classes of interchangeable ones: ``i`` and ``j`` are interchangeable when they have
    the same ``attribute`` and the same ``relation`` to every other GPU (swapping them changes nothing; the relation
    is transitive, so the classes are well defined). Classes in order of their lowest GPU, members ascending."""
    classes: list[list[int]] = []
    for i in range(n):
        for cls in classes:
            j = cls[0]
            if attribute(i) == attribute(j) and all(
                relation(i, k) == relation(j, k) for k in range(n) if k != i and k != j
            ):
                cls.append(i)
                break
        else:
            classes.append([i])
    return tuple(tuple(c) for c in classes)


def swappable_classes(
    classes: Sequence[Sequence[int]],
    relation: Callable[[int, int], Hashable],
    attribute: Callable[[int], Hashable],
) -> tuple[tuple[int, ...], ...]:
    """The ``twin_classes`` grouped into blocks of classes that swap as wholes (indices into ``classes``): two
    classes of the same size whose members have the same ``attribute``, link among themselves alike and link alike
    to every other class (the bridged pairs on one socket). Swapping two such classes member for member changes
    nothing, so a set is searched once per multiset of counts taken from a block's classes."""

    def outline(a: int) -> Hashable:
        c = classes[a]
        return (len(c), attribute(c[0]), relation(c[0], c[1]) if len(c) > 1 else None)

    return twin_classes(len(classes), lambda a, b: relation(classes[a][0], classes[b][0]), outline)


def transitive_groups(adj: Sequence[int]) -> tuple[int, ...] | None:
    """The groups (bitmasks) of an adjacency (a bitmask per GPU, itself excluded) that is an equivalence relation,
    else None."""
    groups: list[int] = []
    for i, near in enumerate(adj):
        near |= 1 << i
        if near in groups:
            continue
        if any(g & near for g in groups):
            return None
        groups.append(near)
    return tuple(groups)


def tree_like(
    n: int, gbps: Callable[[int, int], float], rank: Callable[[int, int], int], nv: Callable[[int, int], bool]
) -> bool:
    """Whether every "linked at ``t`` GB/s or more" (over all links and over NVLink links only) and every "linked at
    link class ``r`` or better" groups the GPUs (is transitive)."""
    pairs = [(i, j) for i in range(n) for j in range(n) if i != j]
    relations = [lambda i, j, t=t: gbps(i, j) >= t for t in {gbps(i, j) for i, j in pairs}]
    relations += [lambda i, j, t=t: nv(i, j) and gbps(i, j) >= t for t in {gbps(i, j) for i, j in pairs}]
    relations += [lambda i, j, r=r: rank(i, j) <= r for r in {rank(i, j) for i, j in pairs}]
    for related in relations:
        adj = [sum(1 << j for j in range(n) if j != i and related(i, j)) for i in range(n)]
        if transitive_groups(adj) is None:
            return False
    return True


def search_states(class_sizes: Iterable[int]) -> int:
    """Free-GPU states the exact leave-behind search can meet, up to swaps of interchangeable GPUs."""
    return prod(size + 1 for size in class_sizes)


def distinct_sets(class_sizes: Iterable[int], k: int) -> int:
    """Ways to take ``k`` GPUs from classes of interchangeable GPUs of these sizes (how many from each class)."""
    return orbit_sets(((1, size) for size in class_sizes), k)


def orbit_sets(blocks: Iterable[tuple[int, int]], k: int) -> int:
    """Ways to take ``k`` GPUs from blocks of ``(classes, size)``: that many classes of ``size`` interchangeable GPUs
    that swap as wholes, so only the multiset of counts taken from a block's classes tells sets apart."""
    ways = [1] + [0] * k
    for classes, size in blocks:
        within = _multisets(classes, size, k)
        ways = [sum(ways[t - m] * within[m] for m in range(t + 1)) for t in range(k + 1)]
    return ways[k]


def _multisets(classes: int, size: int, k: int) -> list[int]:
    """Per total t <= k: non-increasing sequences of ``classes`` counts, each at most ``size``, summing to t."""
    # by[c][t]: sequences so far whose last count is c and whose sum is t
    by = [[1 if t == c else 0 for t in range(k + 1)] for c in range(size + 1)]
    for _ in range(classes - 1):
        nxt = [[0] * (k + 1) for _ in range(size + 1)]
        for c in range(size + 1):
            for prev in range(c, size + 1):
                for t in range(k + 1 - c):
                    nxt[c][t + c] += by[prev][t]
        by = nxt
    return [sum(by[c][t] for c in range(size + 1)) for t in range(k + 1)]


def too_complex(
    class_sizes: Sequence[int], k: int, tree: bool, blocks: Sequence[tuple[int, int]] | None = None
) -> str | None:
    """Why a request of ``k`` GPUs is not planned on a host with these classes of interchangeable GPUs, or None.
    ``blocks``: the classes as ``(classes, size)`` blocks that swap as wholes (``swappable_classes``); by default
    each class alone."""
    n = sum(class_sizes)
    if k > n:
        return None  # the host is too small anyway, and the filters say so
    states = search_states(class_sizes)
    if not tree and states > MAX_SEARCH_STATES:
        return (
            f"host has {n} GPUs wired as a mesh, in {len(class_sizes)} groups of interchangeable GPUs ({states:,} "
            f"free-GPU states): the advisor ranks GPU sets exactly on such hosts up to {MAX_SEARCH_STATES:,} states "
            "(16 GPUs)"
        )
    sets = orbit_sets(blocks, k) if blocks is not None else distinct_sets(class_sizes, k)
    if sets > MAX_DISTINCT_SETS:
        return (
            f"a VM of {k} GPUs has {sets:,} distinct GPU sets on this host of {n} GPUs in {len(class_sizes)} groups of "
            f"interchangeable GPUs: the advisor ranks up to {MAX_DISTINCT_SETS:,} (all sets of 8 of 16 GPUs); "
            "smaller VMs plan here"
        )
    return None


def refused_sizes(
    class_sizes: Sequence[int], tree: bool, most: int, blocks: Sequence[tuple[int, int]] | None = None
) -> list[int]:
    """The VM sizes (GPUs per VM, up to ``most``) a host with these classes is not planned for."""
    top = min(most, sum(class_sizes))
    return [k for k in range(1, top + 1) if too_complex(class_sizes, k, tree, blocks) is not None]
