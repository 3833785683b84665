"""Fix D (trial C, HIGH 1 and 2): vGPUs on NVLink/NVSwitch hosts are advised as the host's own policy places them.

Several vGPUs added one by one are assigned by the host's policy and get no NVLink P2P; a 1-GPU vGPU that the policy
puts on a GPU of the last free Fabric Manager partition (or of an intact NVLink pair) is warned about, and hosts are
ranked by what the policy's pick costs in whole partitions / NVLink groups.
"""

from __future__ import annotations

from dataclasses import replace

from placement.engine.model import Consumer, Fabric, HostState
from placement.engine.plan import plan
from placement.engine.request import PlacementRequest
from placement.engine.synthetic import hgx, mark_busy, nvl_pairs
from placement.engine.vgpu import choose_same_size_gpu, timesliced_view

H100_80C = "nvidia_h100xm-80c"


def vgpu(profile: str = H100_80C, gpus: int = 1, **kw) -> PlacementRequest:
    return PlacementRequest(gpus_per_vm=gpus, consumption="vgpu", profile=profile, **kw)


def by_module(host: HostState) -> dict[int, str]:
    return {g.module_id: g.pci_id for g in host.gpus if g.module_id is not None}


def demo_hgx(name: str = "esx-hgx-01", **kw) -> HostState:
    """The demo lab's HGX: modules 5 and 7 hold a 2-GPU VM, module 6 a 1-GPU VM; modules 1-4 and 8 are free."""
    return mark_busy(hgx(name, **kw), [4, 5, 6])


def with_consumer(host: HostState, module: int, consumer: Consumer) -> HostState:
    gpus = tuple(replace(g, consumers=(*g.consumers, consumer)) if g.module_id == module else g for g in host.gpus)
    return replace(host, gpus=gpus)


# ---------------------------------------------------------------- HIGH 1: separately assigned vGPUs


def test_two_separate_vgpus_are_predicted_as_the_hosts_policy_assigns_them_and_claim_no_nvlink():
    host = demo_hgx()
    best = plan(Fabric((host,)), vgpu(gpus=2)).best
    assert best is not None
    # the engine's own model of the policy, applied twice (one vGPU per GPU)
    views = [timesliced_view(g) for g in host.gpus]
    first = choose_same_size_gpu(views, vgpu().vgpu_profile, "performance")
    second = choose_same_size_gpu([v for v in views if v is not first], vgpu().vgpu_profile, "performance")
    assert [g.pci_id for g in best.gpus] == [first.pci_id, second.pci_id] == [by_module(host)[1], by_module(host)[2]]
    doc = best.to_dict()
    assert doc["bottleneck"] is None and doc["interconnect"] == "no NVLink P2P (separately assigned vGPUs)"
    assert best.score < 1  # no GB/s in the score
    assert not any("bottleneck" in line for line in best.explanation), best.explanation
    warning = best.explanation[0]
    assert warning.startswith("warning: vSphere assigns these 2 vGPUs one at a time by the host's performance policy")
    assert "separately assigned vGPUs get no NVLink P2P" in warning
    assert "consumption device-group, vendor device group Nvidia:2@nvidia_h100xm-80c%NVLink" in warning
    assert "are not one Fabric Manager partition" in warning  # modules 1 and 2 are not a pair partition


def test_a_device_group_still_gets_one_partition_and_its_nvlink():
    host = demo_hgx()
    group = PlacementRequest(gpus_per_vm=2, consumption="device-group", profile=H100_80C)
    best = plan(Fabric((host,)), group).best
    assert best is not None and best.to_dict()["bottleneck"] is not None
    modules = {g.module_id for g in host.gpus if g.pci_id in {c.pci_id for c in best.gpus}}
    assert modules in ({1, 3}, {2, 4})
    assert not any(line.startswith("warning:") for line in best.explanation)


def test_separate_vgpus_the_policy_spreads_over_two_numa_nodes_fail_a_same_numa_request():
    host = mark_busy(hgx("esx-hgx-01"), [0, 1, 2])  # modules 1-3 busy: the policy takes module 4, then module 5
    result = plan(Fabric((host,)), vgpu(gpus=2, interconnect="same-numa"))
    assert not result.candidates
    (reason,) = result.rejected[0].reasons
    assert reason.startswith("the host's policy would assign") and "not on one NUMA node" in reason


def test_an_nvlink_request_for_separate_vgpus_is_warned_that_only_the_device_group_has_it():
    best = plan(Fabric((demo_hgx(),)), vgpu(gpus=2, interconnect="nvlink")).best
    assert best is not None and best.to_dict()["bottleneck"] is None
    assert best.explanation[0].startswith("warning: NVLink was asked for, but vSphere assigns these 2 vGPUs")
    assert "vendor device group Nvidia:2@nvidia_h100xm-80c%NVLink" in best.explanation[0]


def test_separate_vgpus_on_a_host_without_nvlink_get_no_device_group_warning():
    host = nvl_pairs("esx-nvl-01", graphics_type="sharedDirect", vgpu_mode="sameSize")
    links = {k: replace(v, kind="PIX", nvlinks=0) for k, v in host.links.items()}
    pcie = replace(host, links=links, topology=None)
    best = plan(Fabric((pcie,)), vgpu("grid_h100l-94c", gpus=2)).best
    assert best is not None and best.to_dict()["bottleneck"] is None
    assert not any(line.startswith("warning:") for line in best.explanation)
    assert any("separately assigned vGPUs get no NVLink P2P" in line for line in best.explanation)


# ---------------------------------------------------------------- HIGH 2: one vGPU on the last free partition


def test_one_vgpu_the_policy_puts_on_the_last_free_4_gpu_partition_is_warned_about_naming_a_gpu_that_keeps_it():
    host = demo_hgx()
    best = plan(Fabric((host,)), vgpu()).best
    assert best is not None and best.gpus[0].pci_id == by_module(host)[1]  # still the policy's pick
    m1, m8 = by_module(host)[1], by_module(host)[8]
    assert best.explanation[0].startswith(
        f"warning: vSphere's performance policy will put it on {m1} (module 1), breaking the last free 4-GPU "
        f"partition (modules 1-4): {m8} (module 8) would keep it, but vSphere cannot pin a vGPU to a GPU"
    ), best.explanation[0]
    assert any("uses up one whole 4-GPU Fabric Manager partition" in line for line in best.explanation)


def test_no_warning_when_the_policy_pick_costs_no_whole_partition():
    host = mark_busy(hgx("esx-hgx-01"), [2, 4, 5, 6])  # module 3 busy: modules 1-4 and module 1's pair are broken
    best = plan(Fabric((host,)), vgpu()).best
    assert best is not None and best.gpus[0].pci_id == by_module(host)[1]
    assert not any(line.startswith("warning:") for line in best.explanation), best.explanation


def test_hosts_are_ranked_by_what_the_policys_gpu_costs_in_whole_partitions():
    # a: the policy breaks its last free 4-GPU partition; b: modules 2-4 busy, module 1's partition is broken already
    a = demo_hgx("a-hgx", memory_free_mb=2 * 1024 * 1024)  # more headroom: a ranked first before the fix
    b = mark_busy(hgx("b-hgx"), [1, 2, 3])
    result = plan(Fabric((a, b)), vgpu())
    assert [c.host for c in result.candidates] == ["b-hgx", "a-hgx"]
    assert result.candidates[0].explanation[-1].startswith("beats a-hgx: ")
    assert "whole 4-GPU Fabric Manager partition" in result.candidates[0].explanation[-1]


def test_a_fractional_vgpu_under_performance_is_told_consolidation_would_join_the_gpu_already_running_it():
    host = with_consumer(demo_hgx(), 8, Consumer("small-1", "vgpu", "nvidia_h100xm-40c"))
    best = plan(Fabric((host,)), vgpu("nvidia_h100xm-40c")).best
    assert best is not None and best.gpus[0].pci_id == by_module(host)[1]  # performance: fewest vGPUs
    warning = best.explanation[0]
    assert "breaking the last free 4-GPU partition (modules 1-4)" in warning
    assert "assignment policy set to consolidation" in warning
    assert f"'Group VMs on GPU until full') vSphere would put it on {by_module(host)[8]} (module 8)" in warning
    # under consolidation the host joins module 8 itself: nothing to warn about
    packed = plan(Fabric((replace(host, assignment_policy="consolidation"),)), vgpu("nvidia_h100xm-40c")).best
    assert packed is not None and packed.gpus[0].pci_id == by_module(host)[8]
    assert not any(line.startswith("warning:") for line in packed.explanation)


def test_one_vgpu_breaking_an_intact_nvlink_pair_is_warned_about():
    host = nvl_pairs("esx-nvl-01", n=4, graphics_type="sharedDirect", vgpu_mode="sameSize")
    best = plan(Fabric((host,)), vgpu("grid_h100l-94c")).best
    assert best is not None and best.gpus[0].index == 0
    assert best.explanation[0].startswith(
        f"warning: vSphere's performance policy will put it on {host.gpus[0].pci_id}, breaking an intact NVLink pair"
    ), best.explanation[0]
    assert "no GPU of this host would keep it" in best.explanation[0]
    # a pair already broken (its partner busy): the policy's pick is that hole, nothing is broken
    holed = mark_busy(host, [1])
    best = plan(Fabric((holed,)), vgpu("grid_h100l-94c")).best
    assert best is not None and best.gpus[0].index == 0
    assert not any(line.startswith("warning:") for line in best.explanation)
