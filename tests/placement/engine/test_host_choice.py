"""Cross-host choice: link-class fit, single-GPU leave-behind order, CPU/GPU balance for vGPU."""

from __future__ import annotations

from dataclasses import replace
from itertools import combinations

import pytest

from bench.baselines import ring_class as bench_ring_class
from placement.engine import gpuset
from placement.engine.model import UNKNOWN_CAPACITY, Fabric
from placement.engine.plan import plan
from placement.engine.request import PlacementRequest
from placement.engine.scorers import BalanceScorer, LinkClassFitScorer
from placement.engine.synthetic import dgx1_v100, hgx, l40s_2socket, mark_busy, nvl_pairs, pcie_switch_host, vgpu_host


def test_ring_class_matches_the_benchmark_measure_and_best_class_per_host_type():
    expected = {"dgx1": (0, 0, 0), "nvl": (0, 5, 6), "pcie": (2, 5, 6), "l40s": (5, 5, 6), "hgx": (0, 0, 0)}
    for name, builder in (("dgx1", dgx1_v100), ("nvl", nvl_pairs), ("pcie", pcie_switch_host), ("l40s", l40s_2socket)):
        host = builder(name)
        topo, order = gpuset.topology_for(host)
        for k in (2, 3, 4):
            for combo in combinations(range(8), k):
                mask = sum(1 << i for i in combo)
                assert topo.ring_class(mask) == bench_ring_class(host, [order[i] for i in combo])
        assert tuple(topo.best_class(k) for k in (2, 4, 8)) == expected[name]
    topo, _ = gpuset.topology_for(hgx("hgx"))
    assert tuple(topo.best_class(k) for k in (2, 4, 8)) == expected["hgx"]


def test_multi_gpu_vm_prefers_its_hosts_best_class_over_faster_links_that_break_nvlink_pairs():
    # NVL host with only GPUs 1 and 2 free: one card from each bridge pair, a 63 GB/s PCIe pair (NODE);
    # an empty L40S host offers a 31.5 GB/s NODE pair, the best that host type has.
    broken = mark_busy(nvl_pairs("esx-01"), (0, 3, 4, 5, 6, 7))
    fabric = Fabric((broken, l40s_2socket("esx-02")))
    req = PlacementRequest(gpus_per_vm=2, consumption="passthrough")
    p = plan(fabric, req)
    assert [c.host for c in p.candidates] == ["esx-02", "esx-01"]
    best, other = p.candidates
    assert (
        "GPUs joined by PCIe host bridges of one CPU socket: the fastest link this host type offers for 2 GPUs"
        in best.explanation
    )
    assert any(
        "no set of 2 GPUs joined by NVLink, the fastest this host type offers, is free here; ranked after hosts where "
        "one is" in line
        for line in other.explanation
    )
    assert any(
        line.startswith("beats esx-01: its GPUs get the fastest link their host offers") for line in best.explanation
    )
    # bandwidth still decides between hosts that both give their best class, and on a single host
    fabric2 = Fabric((broken, l40s_2socket("esx-02"), nvl_pairs("esx-03")))
    assert plan(fabric2, req).best.host == "esx-03"
    alone = plan(Fabric((broken,)), req).best
    # NODE: PCIe Gen5 x16 through two host bridges of one socket (the parser's figure, gpucatalog.links)
    assert alone is not None and alone.host == "esx-01" and alone.bottleneck == ("NODE", 37.8)


def test_link_class_fit_is_neutral_for_single_gpus_and_fractional_vgpus():
    p = plan(Fabric((nvl_pairs("a"),)), PlacementRequest(gpus_per_vm=1, consumption="passthrough")).best
    assert p is not None and p.key[0] == 0
    s = LinkClassFitScorer()
    assert s.name == "LinkClassFit"


def test_single_gpu_fills_a_hole_then_takes_from_a_large_block_before_breaking_a_fast_pair():
    pair_only = mark_busy(nvl_pairs("esx-01"), (2, 3, 4, 5, 6, 7))  # one intact NVLink pair free
    empty_l40s = l40s_2socket("esx-02")
    req = PlacementRequest(gpus_per_vm=1, consumption="passthrough")
    p = plan(Fabric((pair_only, empty_l40s)), req)
    assert p.best.host == "esx-02"  # splitting an 8-GPU block leaves its pairs; the NVL pair would be lost
    assert any("uses up one set of 8 free GPUs" in line for line in p.best.explanation)
    assert any("uses up one whole NVLink pair" in line for line in p.candidates[1].explanation)
    hole = mark_busy(nvl_pairs("esx-03"), (1, 2, 3, 4, 5, 6, 7))  # GPU 0 alone: its bridge partner is taken
    p = plan(Fabric((pair_only, empty_l40s, hole)), req)
    assert p.best.host == "esx-03" and p.best.gpus[0].index == 0
    assert any(
        "breaks up no whole free group (takes GPUs whose partners are already in use)" in line
        for line in p.best.explanation
    )


def _vgpu(name: str, cpu_free: int):
    host = vgpu_host(name, n=2, board="A100-80GB")
    return replace(host, cpu_free=cpu_free, memory_free_mb=512 * 1024)


def test_vgpu_balance_sends_gpu_heavy_vms_to_framebuffer_rich_hosts_and_small_ones_to_cpu_rich_hosts():
    cpu_poor = _vgpu("esx-01", cpu_free=8)  # 160 GB free for 8 vCPUs: 20 GB/vCPU
    cpu_rich = _vgpu("esx-02", cpu_free=128)  # 160 GB for 128 vCPUs: 1.25 GB/vCPU
    fabric = Fabric((cpu_poor, cpu_rich))
    big = PlacementRequest(gpus_per_vm=1, consumption="vgpu", profile="grid_a100d-40c", vcpus=4, memory_mb=16384)
    small = PlacementRequest(gpus_per_vm=1, consumption="vgpu", profile="grid_a100d-4c", vcpus=4, memory_mb=16384)
    b = plan(fabric, big).best
    assert b.host == "esx-01"  # 10 GB/vCPU VM: the 20 GB/vCPU host is the closer match
    assert any("CPU/GPU balance: host has 160 GB vGPU framebuffer free for 8 free vCPUs" in x for x in b.explanation)
    assert plan(fabric, small).best.host == "esx-02"  # 1 GB/vCPU VM: the CPU-rich host
    # same input, same output
    assert plan(fabric, big).to_dict() == plan(fabric, big).to_dict()


@pytest.mark.parametrize("cpu_free", [UNKNOWN_CAPACITY])
def test_vgpu_balance_is_neutral_when_cpu_is_unknown_or_request_has_no_vcpus(cpu_free: int):
    host = _vgpu("esx-01", cpu_free=cpu_free)
    req = PlacementRequest(gpus_per_vm=1, consumption="vgpu", profile="grid_a100d-40c", vcpus=4)
    cand = plan(Fabric((host,)), req).best
    assert cand is not None and not any("CPU/GPU balance" in x for x in cand.explanation)
    req0 = PlacementRequest(gpus_per_vm=1, consumption="vgpu", profile="grid_a100d-40c")
    cand0 = plan(Fabric((_vgpu("esx-02", 64),)), req0).best
    assert cand0 is not None and not any("CPU/GPU balance" in x for x in cand0.explanation)
    assert BalanceScorer.name == "Balance"


def test_below_best_class_a_set_goes_where_it_breaks_no_nvlink_pair():
    """Both hosts only offer a 2-GPU set below their best class. On the NVLink-pair host the two free cards
    belong to two different pairs whose partners are busy: taking them keeps both pairs from ever becoming whole
    again; on the PCIe-switch host the set only spans two switches. The PCIe host wins although the NVL set is
    faster (63 vs 31.5 GB/s)."""
    nvl = mark_busy(nvl_pairs("esx-01"), (0, 1, 2, 3, 4, 6))
    pcie = mark_busy(pcie_switch_host("esx-02"), (0, 1, 2, 3, 4, 6))
    p = plan(Fabric((nvl, pcie)), PlacementRequest(gpus_per_vm=2, consumption="passthrough"))
    assert [c.host for c in p.candidates] == ["esx-02", "esx-01"]
    assert p.candidates[1].bottleneck[1] > p.best.bottleneck[1]
    assert any(
        "no set of 2 GPUs joined by NVLink, the fastest this host type offers, is free here; ranked after hosts where "
        "one is, and after hosts without NVLink (it would take GPUs from NVLink groups it cannot use)" in line
        for line in p.candidates[1].explanation
    )
    assert "the other's would also take GPUs from NVLink pairs it cannot use" in p.best.explanation[-1]


def test_among_otherwise_equal_hosts_a_whole_gpu_fills_the_fuller_one():
    """Both hosts have a GPU whose NVLink partner is busy (a hole): the pick costs no whole group on either. The VM
    goes to the host left with fewer free GPUs (best fit), not the emptier one (DRS-like headroom spread them, and
    the cluster replay left more GPUs idle for the 8-GPU VMs that need a whole host)."""
    a = mark_busy(nvl_pairs("esx-a"), [0])
    b = mark_busy(nvl_pairs("esx-b"), [0, 2])
    p = plan(Fabric((a, b)), PlacementRequest(gpus_per_vm=1, consumption="passthrough"))
    assert [c.host for c in p.candidates] == ["esx-b", "esx-a"]
    assert "5 passthrough GPUs of this host stay free: a host already in use is filled before an emptier one" in (
        p.best.explanation
    )
    assert p.best.explanation[-1] == (
        "beats esx-a: fills a host already in use (5 passthrough GPUs stay free vs 6): emptier hosts stay whole for "
        "larger VMs"
    )
    hosts = Fabric((vgpu_host("esx-v1"), vgpu_host("esx-v2")))
    vgpu = plan(hosts, PlacementRequest(gpus_per_vm=1, consumption="vgpu", profile="grid_a100d-40c"))
    assert vgpu.candidates and not any("stay free" in line for c in vgpu.candidates for line in c.explanation)
