"""Trial D findings 2, 3, 4, 6, 7, 9 and 12: admission on unknown capacity, every admission shortfall and the
connection state in words, NUMA advice for a VM wider than the node, NVSwitch captures without module ids, group
names true to the host, no "last wholly free host" remark without another host, replicas on different GPU models."""

from __future__ import annotations

from dataclasses import replace
from itertools import combinations

from placement.engine.filters import HostUsable, RequestContext, check_host
from placement.engine.model import Fabric, NumaSize, with_consumers
from placement.engine.plan import plan
from placement.engine.request import PlacementRequest
from placement.engine.smi_host import build_smi_host, plan_smi_host
from placement.engine.synthetic import dgx1_v100, l40s_2socket, mark_busy, nvl_pairs, pcie_switch_host

PT2 = PlacementRequest(gpus_per_vm=2, consumption="passthrough")


def _nvl8_capture(**kw):
    """8 x H100 NVL like the trial's nvl8.txt: four bridged NV12 pairs, PIX within a socket's four, SYS across."""
    links = []
    for a, b in combinations(range(8), 2):
        if b == a + 1 and a % 2 == 0:
            links.append((a, b, "NV12", 300.0, 12))
        elif a // 4 == b // 4:
            links.append((a, b, "PIX", 31.5, 0))
        else:
            links.append((a, b, "SYS", 10.0, 0))
    return build_smi_host(links, {i: i // 4 for i in range(8)}, **kw)


def _explained(candidate) -> str:
    return "\n".join(candidate.explanation)


# ---------------------------------------------------------------- finding 2: unknown capacity never rejects


def test_a_captured_host_is_not_rejected_for_memory_or_vcpus_it_never_reported():
    smi = _nvl8_capture()
    huge = PlacementRequest(gpus_per_vm=2, consumption="passthrough", vcpus=96, memory_mb=1_500_000).validate()
    result = plan_smi_host(smi, huge)
    assert not result.rejected, result.rejected
    assert "CPU/memory headroom unknown (topology capture only)" in result.best.explanation


def test_a_captured_host_stays_of_unknown_capacity_after_a_replica_is_admitted():
    host = with_consumers(_nvl8_capture().host, {}, vcpus=64, memory_mb=1_400_000)
    req = PlacementRequest(gpus_per_vm=1, consumption="passthrough", vcpus=64, memory_mb=1_400_000).validate()
    assert check_host(host, RequestContext.of(req)) == []


def test_a_host_with_more_than_976_gib_free_is_still_admitted_on_its_real_memory():
    """The unknown-capacity figure (10**6 MB) is no threshold: a real host with 2 TiB free is checked on it."""
    host = replace(nvl_pairs("big"), memory_free_mb=2 * 1024 * 1024)
    fits = PlacementRequest(gpus_per_vm=1, consumption="passthrough", memory_mb=1_500_000).validate()
    too_big = PlacementRequest(gpus_per_vm=1, consumption="passthrough", memory_mb=3 * 1024 * 1024).validate()
    assert check_host(host, RequestContext.of(fits)) == []
    (status,) = check_host(host, RequestContext.of(too_big))
    assert status.reason == "host has 2048 GiB unreserved memory, the VM needs a full 3072 GiB reservation"


# ---------------------------------------------------------------- finding 9: every shortfall, state in words


def test_admission_lists_every_failing_resource():
    small = replace(nvl_pairs("small"), cpu_free=8, memory_free_mb=64 * 1024)
    req = PlacementRequest(gpus_per_vm=2, consumption="passthrough", vcpus=16, memory_mb=128 * 1024)
    (rejection,) = plan(Fabric((small,)), req).rejected
    assert rejection.reasons == (
        "host has 8 free vCPUs, the VM needs 16",
        "host has 64 GiB unreserved memory, the VM needs a full 128 GiB reservation",
    )


def test_the_connection_state_is_said_in_words():
    ctx = RequestContext.of(PT2)
    for state, words in (
        ("notResponding", "host is not responding to vCenter"),
        ("disconnected", "host is disconnected from vCenter"),
    ):
        assert HostUsable().filter(replace(nvl_pairs("h"), connection_state=state), ctx).reason == words


# ---------------------------------------------------------------- finding 3: NUMA advice for a wide VM


def _numa_line(candidate) -> str:
    return next(line for line in candidate.explanation if line.startswith("NUMA node"))


def test_a_vm_wider_than_the_numa_node_is_told_it_spans_nodes_not_to_sit_on_one():
    host = replace(pcie_switch_host("l40s"), numa_sizes=(NumaSize(0, 64, 512 * 1024), NumaSize(1, 64, 512 * 1024)))
    wide = PlacementRequest(gpus_per_vm=2, consumption="passthrough", vcpus=120, memory_mb=900_000)
    line = _numa_line(plan(Fabric((host,)), wide).best)
    assert "place the VM's vCPUs and memory there" not in line
    assert "spans NUMA nodes" in line and "120 vCPUs vs 64 logical CPUs" in line and "878 vs 512 GiB" in line
    assert "first vNUMA node on node 0" in line
    small = PlacementRequest(gpus_per_vm=2, consumption="passthrough", vcpus=16, memory_mb=128 * 1024)
    assert _numa_line(plan(Fabric((host,)), small).best) == (
        "NUMA node 0: place the VM's vCPUs and memory there (the VM fits the node)"
    )


def test_without_the_node_size_the_numa_advice_is_conditional():
    wide = PlacementRequest(gpus_per_vm=2, consumption="passthrough", vcpus=120, memory_mb=900_000)
    line = _numa_line(plan(Fabric((pcie_switch_host("l40s"),)), wide).best)
    assert "if it fits one NUMA node" in line and "first vNUMA node" in line


# ---------------------------------------------------------------- finding 7: no "last wholly free host" alone


def test_a_single_host_is_not_called_the_last_wholly_free_host_of_its_type():
    result = plan_smi_host(_nvl8_capture(), PT2)
    assert "last wholly free host" not in _explained(result.best)
    alone = plan(Fabric((dgx1_v100("dgx1"),)), PT2).best
    assert "last wholly free host" not in _explained(alone)
    # beside a host that can take the request it still is
    two = plan(Fabric((dgx1_v100("dgx1"), mark_busy(nvl_pairs("nvl"), [0]))), PT2)
    dgx = next(c for c in two.candidates if c.host == "dgx1")
    assert "breaks the last wholly free host of its type" in _explained(dgx)


# ---------------------------------------------------------------- finding 4: NVSwitch without module ids


def test_an_nvswitch_capture_without_module_ids_says_the_partitions_are_unknown():
    links = [(a, b, "NV12", 300.0, 12) for a, b in combinations(range(8), 2)]
    smi = build_smi_host(links, {i: i // 2 for i in range(8)}, board="A100-40GB", memory_mb=40 * 1024)
    req = PlacementRequest(gpus_per_vm=1, consumption="vgpu", profile="grid_a100-40c").validate()
    text = _explained(plan_smi_host(smi, req).best)
    assert "Fabric Manager partitions unknown (no module ids)" in text
    for false_claim in ("no multi-GPU set free", "partners are already in use", "last wholly free host"):
        assert false_claim not in text, text


def test_fractional_vgpus_on_an_nvswitch_capture_without_module_ids_claim_no_partition_count():
    links = [(a, b, "NV12", 300.0, 12) for a, b in combinations(range(8), 2)]
    smi = build_smi_host(links, {i: i // 2 for i in range(8)}, board="A100-40GB", memory_mb=40 * 1024)
    req = PlacementRequest(gpus_per_vm=2, consumption="vgpu", profile="grid_a100-20c").validate()
    text = _explained(plan_smi_host(smi, req).best)
    assert "takes no GPU of a whole Fabric Manager partition" not in text
    assert "which whole Fabric Manager partitions it takes GPUs from is unknown" in text


# ---------------------------------------------------------------- finding 6: group names true to the host


def test_groups_are_named_by_the_link_they_reach():
    text = _explained(plan_smi_host(_nvl8_capture(), PlacementRequest(gpus_per_vm=4, consumption="passthrough")).best)
    assert "fastest links" not in text
    assert "uses up two whole NVLink pairs, one set of 8 free GPUs and one 4-GPU set on one PCIe switch" in text


def test_a_mesh_pair_is_a_pair_joined_by_nvlink_not_an_nvlink_pair():
    text = _explained(plan(Fabric((dgx1_v100("dgx1"),)), PT2).best)
    assert "NVLink pair" not in text
    assert "one pair joined by NVLink" in text


def test_the_link_class_remark_is_grammatical_and_names_what_is_left():
    text = _explained(plan(Fabric((mark_busy(pcie_switch_host("pcie"), [0, 2, 4, 6]),)), PT2).best)
    assert "no set of 2 GPUs joined by one PCIe switch, the fastest this host type offers, is free here" in text
    assert "groups whole" not in text
    assert "leaves no pair on one PCIe switch free" in text and "no multi-GPU set" not in text


# ---------------------------------------------------------------- finding 12: replicas on different GPU models


def test_replicas_on_different_gpu_models_are_warned_about():
    req = PlacementRequest(gpus_per_vm=1, consumption="passthrough", vms=2, anti_affinity=True)
    result = plan(Fabric((pcie_switch_host("l40s"), nvl_pairs("nvl"))), req)
    assert len(result.assignment) == 2
    for c in result.assignment:
        assert c.explanation[0].startswith("warning: the replicas run on different GPU models (")
        assert "L40S-48GB: replica" in c.explanation[0] and "H100-94GB: replica" in c.explanation[0]
    same = plan(Fabric((l40s_2socket("a"), l40s_2socket("b"))), req)
    assert not any("different GPU models" in line for c in same.assignment for line in c.explanation)
