"""The search's shortcuts (interchangeable GPUs searched once per count, closed forms on tree-like wiring) give
exactly the answers of the plain search: every set enumerated, every ring searched (``reductions=False``)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from gpucatalog.limits import distinct_sets
from inventory.topology.smi import parse_smi_topology
from placement.engine import gpuset, synthetic
from placement.engine.gpuset import Topology
from placement.engine.model import GpuState, HostState, PairLink
from placement.engine.smi_host import host_from_smi
from tests.placement.engine.test_host_size import mesh_host

TOPO = Path(__file__).resolve().parents[2] / "data" / "topo"


def capture_host(path: Path):
    topo = parse_smi_topology(path.read_text())
    links = [(x.a, x.b, x.kind, x.gbps, x.nvlinks) for x in topo.links]
    return host_from_smi(links, {g.index: g.numa_node for g in topo.gpus}, name=path.stem)


def bridged_pairs(n: int, seed: int) -> HostState:
    """``n`` GPUs bridged in pairs (NV12) drawn at random, so a pair's cards need not sit next to each other in pci
    order; the first half of the pairs on socket 0 (NODE within a socket, SYS across)."""
    order = list(range(n))
    random.Random(seed).shuffle(order)
    partner = {}
    for a, b in zip(order[::2], order[1::2], strict=True):
        partner[a], partner[b] = b, a
    socket = {g: 0 if order.index(g) < n // 2 else 1 for g in range(n)}
    ids = [f"0000:{i + 16:02x}:00.0" for i in range(n)]
    gpus = tuple(GpuState(p, i, socket[i], "gpu", 0, 0, "direct", None, False, None, None) for i, p in enumerate(ids))
    links = {}
    for a in range(n):
        for b in range(a + 1, n):
            if partner[a] == b:
                links[ids[a], ids[b]] = PairLink("NVLINK", 318.0, 12)
            else:
                links[ids[a], ids[b]] = (
                    PairLink("NODE", 63.0, 0) if socket[a] == socket[b] else PairLink("SYS", 40.0, 0)
                )
    return HostState(f"pairs-{seed}", "lab", gpus, links)


HOSTS = {
    **{p.stem: (lambda p=p: capture_host(p)) for p in sorted(TOPO.glob("*.txt"))},
    "dgx1": synthetic.dgx1_v100,
    "hgx": synthetic.hgx,
    "nvl-pairs-12": lambda: synthetic.nvl_pairs(n=12),
    "switch-2": lambda: synthetic.pcie_switch_host(n=8, per_switch=2),
    "switch-3x4": lambda: synthetic.pcie_switch_host(n=12, per_switch=3),
    "two-socket": lambda: synthetic.l40s_2socket(n=8),
    "vgpu": lambda: synthetic.vgpu_host(n=4),
    "mesh-9": lambda: mesh_host(9),
    "pairs-scrambled-12": lambda: bridged_pairs(12, seed=1),
    "pairs-scrambled-16": lambda: bridged_pairs(16, seed=2),
}


@pytest.mark.parametrize("name", sorted(HOSTS))
def test_the_shortcuts_answer_like_the_plain_search(name):
    sig, _ = gpuset.signature_of(HOSTS[name]())
    fast, plain = Topology(sig), Topology(sig, reductions=False)
    n = fast.n
    rng = random.Random(name)
    assert [fast.best_class(k) for k in range(1, n + 1)] == [plain.best_class(k) for k in range(1, n + 1)]
    for trial in range(25):
        free = (1 << n) - 1 if trial == 0 else rng.getrandbits(n)
        for mask in (rng.getrandbits(n) & free for _ in range(4)):
            for nv_only in (False, True):
                assert fast.ring(mask, nv_only) == plain.ring(mask, nv_only)
            assert fast.ring_class(mask) == plain.ring_class(mask)
        assert gpuset.leave_vector(fast, free) == gpuset.leave_vector(plain, free)
        for k in (1, 2, 3, 4, 8):
            for interconnect in ("any", "nvlink", "same-numa", "same-pcie-switch"):
                for fractional in (False, True):
                    a = gpuset._search(fast, free, k, interconnect, True, fractional)
                    b = gpuset._search(plain, free, k, interconnect, True, fractional)
                    assert (a.best, a.reason) == (b.best, b.reason), (bin(free), k, interconnect, fractional)


def test_interchangeable_gpus_are_searched_once_per_count():
    topo, _ = gpuset.topology_for(synthetic.pcie_switch_host(n=8, per_switch=4))
    full = (1 << 8) - 1
    assert len(topo.combos(full, 2)) == 3  # both from switch 0, both from switch 1, one of each
    assert topo.canon(0b0010_0100) == 0b0001_0001  # one GPU of each switch: the lowest of each


@pytest.mark.parametrize("n", [12, 16])
def test_whole_pairs_are_searched_once_per_multiset_of_counts(n):
    topo, _ = gpuset.topology_for(bridged_pairs(n, seed=3))
    half = n // 4
    assert topo.block_sizes == ((half, 2), (half, 2))
    full = (1 << n) - 1
    # 2 GPUs: a whole pair, or one GPU of each of two pairs on a socket or across; per socket or across
    assert len(topo.combos(full, 2)) == 2 + 2 + 1
    assert len(topo.combos(full, 2, whole_classes=False)) == distinct_sets([2] * (n // 2), 2)
    assert topo.candidate_count(full, 8) == len(topo.combos(full, 8)) < distinct_sets([2] * (n // 2), 8)


def test_a_host_of_24_gpus_in_pairs_answers_like_the_search_pair_by_pair():
    """Above 16 GPUs the plain search takes too long to compare with; the search that takes counts pair by pair
    (itself held to the plain search above) is the reference."""
    sig, _ = gpuset.signature_of(bridged_pairs(24, seed=4))
    fast, slow = Topology(sig), Topology(sig, swaps=False)
    assert fast.block_sizes == ((6, 2), (6, 2)) and slow.block_sizes == ((1, 2),) * 12
    rng = random.Random(24)
    for trial in range(12):
        free = (1 << 24) - 1 if trial == 0 else rng.getrandbits(24) | rng.getrandbits(24)
        for k in (1, 2, 3, 4) if trial else (1, 2, 3, 4, 6):
            for interconnect in ("any", "nvlink", "same-numa"):
                a = gpuset._search(fast, free, k, interconnect, True)
                b = gpuset._search(slow, free, k, interconnect, True)
                assert (a.best, a.reason) == (b.best, b.reason), (bin(free), k, interconnect)
                assert a.feasible <= b.feasible
