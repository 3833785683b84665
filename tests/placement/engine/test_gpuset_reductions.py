"""The search's shortcuts (interchangeable GPUs searched once per count, closed forms on tree-like wiring) give
exactly the answers of the plain search: every set enumerated, every ring searched (``reductions=False``)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from inventory.topology.smi import parse_smi_topology
from placement.engine import gpuset, synthetic
from placement.engine.gpuset import Topology
from placement.engine.smi_host import host_from_smi
from tests.placement.engine.test_host_size import mesh_host

TOPO = Path(__file__).resolve().parents[2] / "data" / "topo"


def capture_host(path: Path):
    topo = parse_smi_topology(path.read_text())
    links = [(x.a, x.b, x.kind, x.gbps, x.nvlinks) for x in topo.links]
    return host_from_smi(links, {g.index: g.numa_node for g in topo.gpus}, name=path.stem)


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
