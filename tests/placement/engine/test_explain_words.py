"""Issue 10, item 5: explanations in words a vSphere admin reads; a null bottleneck for one GPU."""

from __future__ import annotations

import re

from placement.engine.model import Fabric, HostState
from placement.engine.plan import plan
from placement.engine.request import PlacementRequest
from placement.engine.smi_host import host_from_smi
from placement.engine.synthetic import hgx, mark_busy, nvl_pairs

VECTOR = re.compile(r"-?\d+(?:\.\d+)?/-?\d+(?:\.\d+)?/-?\d+")  # "-63/0/0"


def _fabric() -> Fabric:
    return Fabric((mark_busy(nvl_pairs("esx-01"), (0,)), nvl_pairs("esx-02")))


def test_a_single_gpu_has_a_null_bottleneck_and_says_single_gpu():
    c = plan(_fabric(), PlacementRequest(gpus_per_vm=1, consumption="passthrough")).best
    doc = c.to_dict()
    assert doc["bottleneck"] is None and doc["interconnect"] == "single GPU"
    assert not any("LOCAL" in line for line in c.explanation)
    pair = plan(_fabric(), PlacementRequest(gpus_per_vm=2, consumption="passthrough")).best.to_dict()
    assert pair["bottleneck"] == {"label": "NV12", "gbps": 300.0} and pair["interconnect"] == "NV12 300 GB/s"


def test_leave_behind_is_said_in_whole_groups_not_vectors():
    fabric = Fabric((*_fabric().hosts, nvl_pairs("esx-03")))  # two whole NVL hosts: neither is the last one
    p = plan(fabric, PlacementRequest(gpus_per_vm=2, consumption="passthrough"))
    best, other = p.candidates[:2]
    lines = best.explanation + other.explanation
    assert not any(VECTOR.search(line) for line in lines), lines
    # esx-01 (one card busy) uses up one pair of three; esx-02 (empty) would also break a whole 8-GPU host
    assert any(line.startswith("leaves two whole NVLink pairs") for line in best.explanation), best.explanation
    beat = next(line for line in best.explanation if line.startswith("beats esx-02"))
    assert beat.startswith("beats esx-02: uses up one whole NVLink pair (leaves two whole NVLink pairs")
    assert "; the runner-up uses up one whole NVLink pair, one set of 8 free GPUs" in beat


def test_a_multi_gpu_vm_keeps_the_last_whole_host_of_its_type_and_says_so():
    p = plan(_fabric(), PlacementRequest(gpus_per_vm=2, consumption="passthrough"))
    best, last = p.candidates
    assert best.host == "esx-01"
    assert "beats esx-02: keeps the last wholly free host of its type whole" in best.explanation[-1]
    assert any(line.startswith("breaks the last wholly free host of its type") for line in last.explanation)


def _three_gpus(name: str, first_pair: str) -> HostState:
    """Three GPUs on one NUMA node, every pair at 25 GB/s: GPU0-GPU1 reach each other by ``first_pair``, the rest
    across PCIe switches."""
    rows = [(0, 1, first_pair, 25.0, 0), (0, 2, "PXB", 25.0, 0), (1, 2, "PXB", 25.0, 0)]
    return host_from_smi(rows, dict.fromkeys(range(3), 0), name=name)


def test_pcie_proximity_is_said_as_the_paths_between_the_gpus_not_a_cost():
    fabric = Fabric((_three_gpus("esx-a", "PIX"), _three_gpus("esx-b", "PXB")))
    best, other = plan(fabric, PlacementRequest(gpus_per_vm=3, consumption="passthrough")).candidates
    assert best.host == "esx-a"  # same bottleneck and NUMA node: the closer PCIe paths decide
    assert "GPU pairs: one pair under one PCIe switch (PIX), two across PCIe switches (PXB)" in best.explanation
    assert "GPU pairs: three pairs across PCIe switches (PXB)" in other.explanation
    beat = best.explanation[-1]
    assert beat == (
        "beats esx-b: its GPUs sit closer on PCIe: one pair under one PCIe switch (PIX), two across PCIe switches "
        "(PXB); the runner-up: three pairs across PCIe switches (PXB)"
    )
    assert not any("cost" in line and "PCIe" in line for line in best.explanation + other.explanation)


def test_a_vgpu_on_an_empty_gpu_says_it_will_hold_one_vgpu_not_1_vgpus():
    fabric = Fabric((hgx("esx-hgx"),))
    req = PlacementRequest(gpus_per_vm=1, consumption="vgpu", profile="grid_h100-10c")
    first = plan(fabric, req).best
    assert any(line.endswith("will hold 1 vGPU") for line in first.explanation), first.explanation


def test_every_ranking_term_has_its_name_in_order():
    """The comparison names the first differing term by position: a scorer added without its term shifted every
    name after it ("128 vCPUs + 896 GiB" became "policy")."""
    from placement.engine.explain import KEY_TERMS
    from placement.engine.scorers import SCORERS

    names = [s.name for s in SCORERS]
    assert len(KEY_TERMS) == len(names)
    assert names[KEY_TERMS.index("balance")] == "Balance" and names[KEY_TERMS.index("pickcost")] == "PickCost"
    assert names[KEY_TERMS.index("leave")] == "LeaveBehind" and names[-1] == "Headroom"
