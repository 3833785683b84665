"""Issue 10, "Why": rules an expert would catch (each test failed before its fix)."""

from __future__ import annotations

from dataclasses import replace

from placement.engine.model import Consumer, Fabric, HostState
from placement.engine.plan import plan
from placement.engine.request import PlacementRequest
from placement.engine.scorers import free_timesliced_gb
from placement.engine.synthetic import mark_busy, nvl_pairs, pcie_switch_host, vgpu_host
from placement.engine.vgpu import timesliced_view


def _with(host: HostState, index: int, *consumers: Consumer) -> HostState:
    gpus = tuple(replace(g, consumers=(*g.consumers, *consumers)) if g.index == index else g for g in host.gpus)
    return replace(host, gpus=gpus)


# ---------------------------------------------------------------- fractional vGPUs and NVLink


def test_fractional_vgpus_are_ranked_without_p2p_and_keep_intact_nvlink_pairs():
    nvl = nvl_pairs("esx-01", graphics_type="sharedDirect", vgpu_mode="sameSize")
    pcie = pcie_switch_host("esx-02", board="H100-94GB", model="NVIDIA H100 NVL", graphics_type="sharedDirect",
                            vgpu_mode="sameSize")  # fmt: skip
    fabric = Fabric((nvl, pcie))
    frac = PlacementRequest(gpus_per_vm=2, consumption="vgpu", profile="grid_h100l-47c")
    best = plan(fabric, frac).best
    assert best is not None and best.host == "esx-02"  # the NVLink pairs stay whole for full-size VMs
    assert any("fractional vGPUs do not use NVLink P2P" in line for line in best.explanation)
    assert any(line.startswith("beats esx-01: takes GPUs from 0 whole NVLink groups") for line in best.explanation), (
        best.explanation
    )
    # on the NVLink host alone, the set touches as few intact NVLink pairs as it can: one pair, not two
    alone = plan(Fabric((nvl,)), frac).best
    assert alone is not None and sorted(g.index for g in alone.gpus) == [0, 1]
    # two pairs already broken: the fractional set takes their free cards, not a whole pair
    broken = mark_busy(nvl, (0, 2))
    got = plan(Fabric((broken,)), frac).best
    assert got is not None and sorted(g.index for g in got.gpus) == [1, 3]
    assert any("takes no GPU of a whole NVLink group" in line for line in got.explanation)


# ---------------------------------------------------------------- NUMA


def test_unknown_numa_ranks_below_a_known_node():
    known = pcie_switch_host("a-known", n=2, sockets=1)
    unknown = pcie_switch_host("b-unknown", n=2, sockets=1)
    unknown = replace(unknown, gpus=tuple(replace(g, numa_node=None) for g in unknown.gpus))
    req = PlacementRequest(gpus_per_vm=1, consumption="passthrough")
    for hosts in ((known, unknown), (unknown, known)):
        p = plan(Fabric(hosts), req)
        assert [c.host for c in p.candidates] == ["a-known", "b-unknown"]
    loser = plan(Fabric((unknown, known)), req).candidates[1]
    assert any("NUMA node unknown" in line for line in loser.explanation)


# ---------------------------------------------------------------- consumers the engine must read


def test_device_group_consumer_counts_the_group_profile_memory():
    host = vgpu_host("esx-01", n=2, board="A100-80GB")
    group = "Nvidia:2@grid_a100d-40c"
    host = _with(host, 0, Consumer("dg-vm", "device-group", profile=group))
    host = _with(host, 1, Consumer("dg-vm", "device-group", profile=group))
    forty = PlacementRequest(gpus_per_vm=1, consumption="vgpu", profile="grid_a100d-40c")
    p = plan(Fabric((host,)), forty)
    assert p.best is not None and p.best.host == "esx-01"  # the group's 40C locks the GPU to 40C, 40 GB left
    view = timesliced_view(host.gpus[0])
    assert (view.used_gb, view.free_gb, view.lock.profile) == (40, 40, "grid_a100d-40c")
    assert free_timesliced_gb(host) == 80  # not 160: each GPU holds one 40 GB vGPU of the group


def test_device_group_consumer_on_a_mixed_size_gpu_does_not_abort_the_plan():
    host = vgpu_host("esx-01", n=2, board="A100-80GB", vgpu_mode="mixedSize")
    host = _with(host, 0, Consumer("dg-vm", "device-group", profile="Nvidia:1@grid_a100d-20c"))
    req = PlacementRequest(gpus_per_vm=1, consumption="vgpu", profile="grid_a100d-20c")
    p = plan(Fabric((host,)), req)
    assert p.best is not None


def test_a_consumer_the_engine_cannot_read_rejects_only_its_host():
    odd = vgpu_host("esx-01", n=2, board="A100-80GB", vgpu_mode="mixedSize")
    odd = _with(odd, 0, Consumer("odd-vm", "vgpu", profile="not-a-profile"))
    fine = vgpu_host("esx-02", n=2, board="A100-80GB", vgpu_mode="mixedSize")
    req = PlacementRequest(gpus_per_vm=1, consumption="vgpu", profile="grid_a100d-20c")
    p = plan(Fabric((odd, fine)), req)
    assert [c.host for c in p.candidates] == ["esx-02"]
    (rej,) = p.rejected
    assert rej.host == "esx-01" and "odd-vm" in rej.reasons[0] and "not-a-profile" in rej.reasons[0]


def test_fractional_set_on_an_nvswitch_board_is_found_and_pays_per_whole_partition():
    from placement.engine.synthetic import hgx

    req = PlacementRequest(gpus_per_vm=2, consumption="vgpu", profile="grid_h100-40c")
    best = plan(Fabric((hgx("esx-01"),)), req).best
    assert best is not None and len(best.gpus) == 2
    assert any("whole Fabric Manager partition" in line for line in best.explanation), best.explanation
