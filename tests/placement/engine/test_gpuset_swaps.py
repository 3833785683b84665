"""Classes that swap as wholes (bridged pairs, triples, quads on a socket or behind PCIe switches) are searched once
per multiset of counts (``Topology.swap_groups``, ``_orbit_combos``) and the lowest-pci set of a tie is recovered
afterwards (``lexmin``): seeded random hosts of those families hold the search to the plain one (8 to 16 GPUs) and
to the search that takes counts class by class (``swaps=False``, 17 to 24 GPUs), and the set counts the host filter
and the capture warning use to what the search enumerates."""

from __future__ import annotations

import random
from itertools import combinations, product

import pytest

from gpucatalog.limits import MAX_DISTINCT_SETS, MAX_SEARCH_STATES, orbit_sets, search_states, too_complex
from inventory.topology.smi import parse_smi_topology
from placement.engine import gpuset, synthetic
from placement.engine.gpuset import Topology, bits
from placement.engine.model import GpuState, HostState, PairLink
from placement.engine.smi_host import host_from_smi

PCIE_GBPS = {"PIX": 25.0, "NODE": 18.0, "PHB": 20.0, "SYS": 12.0}
INTERCONNECTS = ("any", "nvlink", "same-numa", "same-pcie-switch")


def grouped_host(seed: int, n: int) -> HostState:
    """``n`` GPUs in NVLink groups (pairs, triples, quads or a mix, some single cards) drawn at random: members need
    not be next to each other in pci order; one or two sockets, some NUMA nodes unknown; each group behind its own
    PCIe switch, two groups to a switch, a mix of those and no switch, or no switches at all; sometimes two groups
    bridged to each other more slowly (NV2), or groups of two NVLink speeds."""
    rng = random.Random(seed)
    sizes = rng.choice([(2,), (3,), (4,), (2, 3), (2, 4), (1, 2), (1, 2, 3, 4)])
    sockets = rng.choice((1, 2))
    switch_mode = rng.choice(("own", "two", "mixed", "none"))
    unknown_numa = rng.choice((0.0, 0.0, 0.3))
    bridged_groups = rng.random() < 0.2
    speeds = rng.choice(((12,), (12,), (4, 12)))
    order = list(range(n))
    if rng.random() < 0.8:
        rng.shuffle(order)
    members: list[list[int]] = []
    while order:
        take = min(len(order), rng.choice(sizes))
        members.append(order[:take])
        order = order[take:]
    count = len(members)
    socket = [0 if sockets == 1 or g < (count + 1) // 2 else 1 for g in range(count)]
    if sockets == 2 and rng.random() < 0.3:
        socket = [rng.randrange(2) for _ in range(count)]
    numa: dict[int, int | None] = {}
    switch: dict[int, str | None] = {}
    group_of: dict[int, int] = {}
    shared = [rng.choice((0, 1, 2)) for _ in range(count)]  # mixed: no switch, own switch, shared with the next
    for g, ms in enumerate(members):
        unknown = rng.random() < unknown_numa
        for m in ms:
            group_of[m] = g
            numa[m] = None if unknown or rng.random() < unknown_numa / 4 else socket[g]
            if switch_mode == "own":
                switch[m] = f"sw{g}"
            elif switch_mode == "two":
                switch[m] = f"sw{g // 2}"
            elif switch_mode == "mixed":
                lead = g - 1 if g and shared[g - 1] == 2 else g
                switch[m] = None if shared[lead] == 0 else f"sw{lead}"
            else:
                switch[m] = None
    speed = [rng.choice(speeds) for _ in members]
    ids = [f"0000:{i + 16:02x}:00.0" for i in range(n)]
    gpus = tuple(
        GpuState(p, i, numa[i], "gpu", 0, 0, "direct", None, False, None, switch[i]) for i, p in enumerate(ids)
    )
    links = {}
    for a in range(n):
        for b in range(a + 1, n):
            ga, gb = group_of[a], group_of[b]
            if ga == gb:
                links[ids[a], ids[b]] = PairLink("NVLINK", 25.0 * speed[ga], speed[ga])
            elif bridged_groups and ga // 2 == gb // 2:
                links[ids[a], ids[b]] = PairLink("NVLINK", 50.0, 2)
            else:
                if switch[a] is not None and switch[a] == switch[b]:
                    kind = "PIX"
                elif numa[a] is not None and numa[a] == numa[b]:
                    kind = "NODE"
                elif numa[a] is None or numa[b] is None:
                    kind = "PHB"
                else:
                    kind = "SYS"
                links[ids[a], ids[b]] = PairLink(kind, PCIE_GBPS[kind], 0)
    return HostState(f"grouped-{seed}", "lab", gpus, links)


def crowded_masks(topo: Topology) -> list[int]:
    """No crowded node, and the GPUs of each known NUMA node (as ``plan`` passes them: whole nodes)."""
    nodes = sorted({x for x in topo.numa if x is not None})
    return [0] + [sum(1 << i for i in range(topo.n) if topo.numa[i] == node) for node in nodes]


def random_free(rng: random.Random, n: int, trial: int) -> int:
    return (1 << n) - 1 if trial == 0 else rng.getrandbits(n) | rng.getrandbits(n)


def assert_same_searches(fast: Topology, other: Topology, free: int, ks, rng: random.Random) -> None:
    crowds = crowded_masks(fast)
    for k in ks:
        for interconnect in INTERCONNECTS:
            for fractional in (False, True):
                for crowded in crowds if interconnect == "any" and not fractional else (rng.choice(crowds),):
                    a = gpuset._search(fast, free, k, interconnect, True, fractional, crowded)
                    b = gpuset._search(other, free, k, interconnect, True, fractional, crowded)
                    assert (a.best, a.reason) == (b.best, b.reason), (bin(free), k, interconnect, fractional, crowded)


def host_size(seed: int, sizes) -> int:
    rng = random.Random(seed)
    return rng.choice(sizes) if isinstance(sizes, tuple) else rng.randint(*sizes)


def swapping_seeds(seeds, sizes, count: int) -> list[int]:
    """The first ``count`` seeds whose host has classes that swap as wholes (others test nothing new here) and that
    the host filter lets plan (a mesh of too many free-GPU states is refused before the search)."""
    found = []
    for s in seeds:
        topo = Topology(gpuset.signature_of(grouped_host(s, host_size(s, sizes)))[0])
        if topo._swaps and (topo.tree or search_states(len(c) for c in topo.twins) <= MAX_SEARCH_STATES):
            found.append(s)
    return found[:count]


# 8 to 16 GPUs: against the plain search
PLAIN_SIZES = (8, 10, 11, 12, 14, 16)
PLAIN_SEEDS = swapping_seeds(range(120), PLAIN_SIZES, 25)


@pytest.mark.parametrize("seed", PLAIN_SEEDS)
def test_swapped_classes_answer_like_the_plain_search(seed):
    rng = random.Random(seed)
    n = host_size(seed, PLAIN_SIZES)
    sig, _ = gpuset.signature_of(grouped_host(seed, n))
    fast, plain = Topology(sig), Topology(sig, reductions=False)
    assert [fast.best_class(k) for k in range(1, n + 1)] == [plain.best_class(k) for k in range(1, n + 1)]
    for trial in range(4):
        free = random_free(rng, n, trial)
        assert gpuset.leave_vector(fast, free) == gpuset.leave_vector(plain, free)
        for size in (2, 3, 4):
            for max_class in (0, 1, 6):
                assert fast.disjoint_sets(free, size, max_class) == plain.disjoint_sets(free, size, max_class)
        for mask in (rng.getrandbits(n) & free for _ in range(3)):
            assert fast.ring(mask) == plain.ring(mask) and fast.ring(mask, True) == plain.ring(mask, True)
            assert fast.ring_class(mask) == plain.ring_class(mask)
        assert_same_searches(fast, plain, free, (1, 2, 3, 4) if n > 12 else (1, 2, 3, 4, 5, 6), rng)


@pytest.mark.parametrize(
    "build",
    [
        lambda: synthetic.nvl_pairs(n=12),
        lambda: synthetic.pcie_switch_host(n=12, per_switch=1),
        lambda: synthetic.pcie_switch_host(n=12, per_switch=2),
        lambda: synthetic.l40s_2socket(n=10),
    ],
    ids=["nvl-pairs-12", "switch-1x12", "switch-2x6", "two-socket-10"],
)
def test_synthetic_hosts_that_swap_answer_like_the_plain_search(build):
    sig, _ = gpuset.signature_of(build())
    fast, plain = Topology(sig), Topology(sig, reductions=False)
    rng = random.Random(sig.__hash__() & 0xFFFF)
    for trial in range(3):
        assert_same_searches(fast, plain, random_free(rng, fast.n, trial), (1, 2, 3, 5), rng)


# 17 to 24 GPUs: against the search that takes counts class by class (itself held to the plain search)
TWIN_SIZES = (17, 24)
TWIN_SEEDS = swapping_seeds(range(100, 200), TWIN_SIZES, 16)


@pytest.mark.parametrize("seed", TWIN_SEEDS)
def test_swapped_classes_answer_like_the_class_by_class_search_above_16_gpus(seed):
    rng = random.Random(seed)
    n = host_size(seed, TWIN_SIZES)
    sig, _ = gpuset.signature_of(grouped_host(seed, n))
    fast, slow = Topology(sig), Topology(sig, swaps=False)
    for trial in range(3):
        free = random_free(rng, n, trial)
        ks = [k for k in (1, 2, 3) if slow.candidate_count(free, k) <= 2000]
        assert_same_searches(fast, slow, free, ks, rng)


def test_a_24_gpu_host_of_bridged_pairs_answers_like_the_class_by_class_search_with_crowded_nodes():
    sig, _ = gpuset.signature_of(synthetic.nvl_pairs(n=24))
    fast, slow = Topology(sig), Topology(sig, swaps=False)
    assert fast._swaps
    rng = random.Random(24)
    for trial in range(3):
        assert_same_searches(fast, slow, random_free(rng, 24, trial), (1, 2, 3), rng)


# the enumeration itself, against brute force


def orbit_key(topo: Topology, free: int, mask: int) -> tuple:
    """What tells apart sets the search takes once: per ``swap_groups`` group, the multiset of counts per class."""
    return tuple(
        tuple(sorted((mask & gpuset._mask(ms)).bit_count() for ms in group)) for group in topo.swap_groups(free)
    )


@pytest.mark.parametrize("seed", range(200, 230))
def test_combos_take_each_orbit_once_and_lexmin_finds_its_lowest_pci_set(seed):
    rng = random.Random(seed)
    n = rng.randint(6, 12)
    topo = Topology(gpuset.signature_of(grouped_host(seed, n))[0])
    for trial in range(3):
        free = random_free(rng, n, trial)
        members = bits(free)
        for k in range(len(members) + 1):
            lowest: dict[tuple, int] = {}
            every = [gpuset._mask(c) for c in combinations(members, k)]
            for m in every:
                key = orbit_key(topo, free, m)
                if key not in lowest or bits(m) < bits(lowest[key]):
                    lowest[key] = m
            got = topo.combos(free, k)
            assert sorted(orbit_key(topo, free, m) for m in got) == sorted(lowest), (bin(free), k)
            assert topo.candidate_count(free, k) == len(got)
            probes = got + rng.sample(every, min(len(every), 12)) if topo._swaps else got  # else lexmin is a no-op
            for m in probes:
                assert topo.lexmin(free, m) == lowest[orbit_key(topo, free, m)], (bin(free), bin(m))


def test_orbit_sets_count_like_brute_force():
    rng = random.Random(7)
    for _ in range(60):
        blocks = [(rng.randint(1, 4), rng.randint(1, 4)) for _ in range(rng.randint(1, 3))]
        per_block = [{tuple(sorted(c)) for c in product(range(size + 1), repeat=classes)} for classes, size in blocks]
        for k in range(sum(c * s for c, s in blocks) + 2):
            by_hand = sum(1 for pick in product(*per_block) if sum(map(sum, pick)) == k)
            assert orbit_sets(blocks, k) == by_hand, (blocks, k)


# what the host filter and the capture warning count


def capture_of(host: HostState) -> str:
    ids = [g.pci_id for g in host.gpus]

    def cell(i: int, j: int) -> str:
        if i == j:
            return "X"
        link = host.links[min(ids[i], ids[j]), max(ids[i], ids[j])]
        return f"NV{link.nvlinks}" if link.kind == "NVLINK" else link.kind

    n = len(ids)
    lines = ["\t" + "\t".join(f"GPU{i}" for i in range(n)) + "\tCPU Affinity\tNUMA Affinity"]
    for i, g in enumerate(host.gpus):
        node = g.numa_node
        cpus = "N/A" if node is None else f"{node * 32}-{node * 32 + 31}"
        lines.append(
            f"GPU{i}\t" + "\t".join(cell(i, j) for j in range(n)) + f"\t{cpus}\t{'N/A' if node is None else node}"
        )
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("seed", range(300, 316))
def test_the_filter_and_the_capture_count_the_sets_the_search_enumerates(seed):
    rng = random.Random(seed)
    n = rng.randint(17, 24)
    host = grouped_host(seed, n)
    topo = Topology(gpuset.signature_of(host)[0])
    full = (1 << n) - 1
    for k in range(1, 17):
        sets = orbit_sets(topo.block_sizes, k)
        assert topo.candidate_count(full, k) == sets
        if sets <= 3000:
            assert len(topo.combos(full, k)) == sets
        why = too_complex([len(c) for c in topo.twins], k, topo.tree, topo.block_sizes)
        if sets > MAX_DISTINCT_SETS:
            assert why is not None  # the filter refuses what the search would
        elif why is not None:
            assert "distinct GPU sets" not in why  # only the state count of a mesh refuses then
    # the capture of the same host (no PCIe switch ids, PIX links instead) warns of the sizes its host refuses
    capture = parse_smi_topology(capture_of(host))
    links = [(x.a, x.b, x.kind, x.gbps, x.nvlinks) for x in capture.links]
    seen, _ = gpuset.topology_for(host_from_smi(links, {g.index: g.numa_node for g in capture.gpus}, name="cap"))
    refused = [k for k in range(1, 17) if too_complex([len(c) for c in seen.twins], k, seen.tree, seen.block_sizes)]
    warned = [w for w in capture.warnings if "plans refuse" in w]
    if refused:
        sizes = str(refused[0]) if len(refused) == 1 else f"{refused[0]} to {refused[-1]}"
        assert warned == [
            f"the capture shows {n} GPUs; plans refuse VMs of {sizes} GPUs on such a host (too many distinct GPU sets)"
        ]
    else:
        assert warned == []
