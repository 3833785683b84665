from __future__ import annotations

import pytest

from gpucatalog.links import link_gbps
from inventory.topology.smi import parse_smi_topology
from placement.engine import synthetic

PCIE_HOSTS = [
    (synthetic.dgx1_v100, 3),
    (synthetic.nvl_pairs, 5),
    (synthetic.pcie_switch_host, 4),
    (synthetic.l40s_2socket, 4),
]


@pytest.mark.parametrize(("builder", "gen"), PCIE_HOSTS, ids=lambda x: getattr(x, "__name__", str(x)))
def test_synthetic_pcie_paths_get_the_products_one_figure_per_class(builder, gen):
    host = builder("h")
    pcie = [x for x in host.links.values() if x.kind in ("PIX", "NODE", "SYS")]
    assert pcie
    for x in pcie:
        socket = x.gbps if x.kind == "SYS" else None
        assert x.gbps == link_gbps(x.kind, pcie_gen=gen, inter_socket_gbps=socket), x
    by_kind = {x.kind: x.gbps for x in pcie}
    assert by_kind.get("PIX", 1e9) > by_kind.get("NODE", 0) > by_kind.get("SYS", -1) or "NODE" not in by_kind


def test_a_capture_and_the_synthetic_host_of_the_same_box_give_the_same_node_figure():
    capture = (
        "        GPU0    GPU1    GPU2    CPU Affinity    NUMA Affinity\n"
        "GPU0     X      PIX     NODE    0-31    0\n"
        "GPU1    PIX      X      NODE    0-31    0\n"
        "GPU2    NODE    NODE     X      0-31    0\n"
    )
    parsed = {x.kind: x.gbps for x in parse_smi_topology(capture, pcie_gen=4).links}
    host = synthetic.pcie_switch_host("h", n=4, sockets=1)
    built = {x.kind: x.gbps for x in host.links.values()}
    assert parsed == built == {"PIX": 31.5, "NODE": 18.9}
