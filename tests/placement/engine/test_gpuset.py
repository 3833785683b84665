from itertools import combinations, pairwise, permutations

from hypothesis import given, settings
from hypothesis import strategies as st

from placement.engine import gpuset
from placement.engine.model import GpuState, HostState, PairLink
from placement.engine.synthetic import dgx1_v100, hgx, nvl_pairs


def _free_all(host):
    topo, order = gpuset.topology_for(host)
    return topo, order, (1 << len(order)) - 1


def test_dgx1_ring_bottlenecks():
    topo, _, free = _free_all(dgx1_v100())
    assert gpuset.search(topo, free, 8).best.bottleneck_gbps == 50.0  # the NV2 8-cycle 0-3-2-1-5-6-7-4
    four = gpuset.search(topo, free, 4).best
    assert four.bottleneck_gbps == 25.0 and four.numa_count == 1
    two = gpuset.search(topo, free, 2).best
    assert two.bottleneck_label == "NV2" and two.numa_count == 1


def test_sum_of_pairs_trap_ring_beats_triangle_plus_dangling():
    # a 4-ring of 50 GB/s links vs a 100 GB/s triangle with a GPU hanging on one 10 GB/s link
    ids = [f"g{i}" for i in range(6)]
    w = {}
    for a, b in combinations(range(6), 2):
        w[(a, b)] = 10.0
    for a, b in ((0, 1), (1, 2), (2, 3), (0, 3)):
        w[(a, b)] = 50.0
    for a, b in ((0, 4), (4, 5), (0, 5)):
        w[(a, b)] = 100.0
    host = _host(ids, w)
    topo, order, free = _free_all(host)
    best = gpuset.search(topo, free, 4).best
    assert gpuset.pci_of(order, best.mask) == ("g0", "g1", "g2", "g3")
    assert best.bottleneck_gbps == 50.0


def _host(ids, weights, numa=None):
    gpus = tuple(
        GpuState(p, i, None, "gpu", 0, (numa or {}).get(i, 0), "direct", None, False, None, None)
        for i, p in enumerate(ids)
    )
    links = {(ids[a], ids[b]): PairLink("NVLINK" if w >= 25 else "SYS", w, 1) for (a, b), w in weights.items()}
    return HostState("h", "c", gpus, links)


def _brute_ring(weights, members):
    if len(members) < 2:
        return 0.0
    if len(members) == 2:
        return weights[tuple(sorted(members))]
    first, rest = members[0], members[1:]
    best = 0.0
    for perm in permutations(rest):
        cycle = (first, *perm, first)
        best = max(best, min(weights[tuple(sorted(e))] for e in pairwise(cycle)))
    return best


@st.composite
def topologies(draw):
    n = draw(st.integers(2, 7))
    values = st.sampled_from([10.0, 25.0, 31.5, 50.0, 100.0])
    weights = {(a, b): draw(values) for a, b in combinations(range(n), 2)}
    numa = {i: draw(st.integers(0, 1)) for i in range(n)}
    free = draw(st.integers(1, (1 << n) - 1))
    k = draw(st.integers(1, n))
    return n, weights, numa, free, k


@settings(max_examples=150, deadline=None)
@given(topologies())
def test_search_is_exact_and_respects_free_mask(case):
    n, weights, numa, free, k = case
    host = _host([f"g{i}" for i in range(n)], weights, numa)
    topo, order = gpuset.topology_for(host)
    result = gpuset.search(topo, free, k)
    free_idx = [i for i in range(n) if free >> i & 1]
    if len(free_idx) < k:
        assert result.best is None
        return
    best = result.best
    assert best.mask & ~free == 0  # never a busy GPU
    assert bin(best.mask).count("1") == k
    if k > 1:
        brute = max(_brute_ring(weights, list(c)) for c in combinations(free_idx, k))
        assert best.bottleneck_gbps == round(brute, 1)  # no feasible set has a better ring
    again = gpuset.search_uncached(host, {order[i] for i in free_idx}, k)
    assert again.best == best  # same input, same output, cached or not


def test_nvlink_interconnect_needs_an_nvlink_ring():
    host = nvl_pairs()
    topo, _, free = _free_all(host)
    assert gpuset.search(topo, free, 2, "nvlink").best.bottleneck_label == "NV12"
    missing = gpuset.search(topo, free, 4, "nvlink")
    assert missing.best is None and "NVLink" in missing.reason


def test_same_numa_constraint():
    topo, _, free = _free_all(nvl_pairs())
    best = gpuset.search(topo, free, 4, "same-numa").best
    assert best.numa_count == 1
    assert gpuset.search(topo, free, 6, "same-numa").best is None


def test_hgx_pairs_keep_a_half_free():
    host = hgx()
    topo, order, free = _free_all(host)
    by_module = {g.module_id: g.pci_id for g in host.gpus}

    def mask(*modules):
        return gpuset.mask_of(order, [by_module[m] for m in modules])

    good = gpuset.leave_vector(topo, free & ~mask(5, 7) & ~mask(6, 8))
    bad = gpuset.leave_vector(topo, free & ~mask(2, 4) & ~mask(5, 7))
    assert good[1] == 1.0  # {1,2,3,4} is still a whole 4-GPU partition
    assert bad[1] == 0.0  # {2,4} + {5,7} broke both halves
    # the search itself picks the second pair in the same half as the first
    first = gpuset.search(topo, free, 2).best
    second = gpuset.search(topo, free & ~first.mask, 2).best
    assert gpuset.leave_vector(topo, free & ~first.mask & ~second.mask)[1] == 1.0
    # a multi-GPU set on an NVSwitch board is always one Fabric Manager partition
    assert first.mask in topo.partitions and second.mask in topo.partitions


def test_cache_makes_identical_hosts_one_search():
    gpuset.reset_search_cache()
    a, b = dgx1_v100("a"), dgx1_v100("b")
    for h in (a, b):
        topo, _, free = _free_all(h)
        gpuset.search(topo, free, 4)
    stats = gpuset.search_stats()
    assert stats["misses"] == 1 and stats["hits"] == 1 and stats["topologies"] == 1
