from __future__ import annotations

import dataclasses
from itertools import combinations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inventory.topology.domains import domain_id, partition_blocks
from inventory.topology.fabric import build_fabric
from inventory.topology.model import (
    FabricInputError,
    FabricLink,
    GpuHardware,
    HostFabric,
    HostHardware,
    NumaNodeHardware,
    PciFunction,
)
from inventory.topology.pcie_tree import PciTree
from inventory.topology.smi import SmiGpuIdentity, parse_smi_topology
from tests.inventory.topology.hosts import (
    H100_NVL_GPUS,
    H100_NVL_SMI,
    HGX_GPUS,
    bridge,
    gpu_fn,
    h100_nvl_host,
    hgx_h100_host,
    hgx_h100_smi,
    l40s_host,
)
from tests.inventory.topology.test_smi import SAMPLES


def kinds(fabric: HostFabric) -> dict[tuple[int, int], str]:
    index = {g: i for i, g in enumerate(fabric.gpus)}
    return {(index[x.a], index[x.b]): x.kind for x in fabric.links}


def codes(fabric: HostFabric) -> list[str]:
    return [f.code for f in fabric.findings]


def members(fabric: HostFabric, kind: str) -> list[set[int]]:
    index = {g: i for i, g in enumerate(fabric.gpus)}
    return [{index[m] for m in d.members} for d in fabric.domains_of(kind)]


# --- PCIe tree + NUMA classification ---------------------------------------------------------------


def test_l40s_two_socket_host():
    fabric = build_fabric(l40s_host())
    assert fabric.gpus == ("0000:03:00.0", "0000:04:00.0", "0000:21:00.0", "0000:81:00.0")
    assert kinds(fabric) == {
        (0, 1): "PIX",
        (0, 2): "NODE",
        (1, 2): "NODE",
        (0, 3): "SYS",
        (1, 3): "SYS",
        (2, 3): "SYS",
    }
    assert {x.source for x in fabric.links} == {"pci-tree"}
    assert fabric.link("0000:04:00.0", "0000:03:00.0").gbps == 31.5
    assert fabric.link("0000:03:00.0", "0000:81:00.0").gbps == 15.8  # Sapphire Rapids UPI 22, capped
    assert members(fabric, "pcie-switch") == [{0, 1}]
    assert members(fabric, "numa-node") == [{0, 1, 2}, {3}]
    assert fabric.domains_of("nvlink-pair") == ()
    assert fabric.findings == ()


def _tree_host(pci: list[PciFunction], gpu_ids: list[str], numa: list[int | None]) -> HostHardware:
    gpus = tuple(GpuHardware(g, 0x26B9, "NVIDIA L40S", 46068, n) for g, n in zip(gpu_ids, numa, strict=True))
    return HostHardware("h", "Intel(R) Xeon(R) Gold 6448Y", 1, tuple(pci), gpus, ())


def test_nested_switches_give_pxb_and_same_root_port_gives_phb():
    pci = [
        bridge("0000:00:01.0", None),
        bridge("0000:01:00.0", "0000:00:01.0"),  # switch 1 upstream
        bridge("0000:02:00.0", "0000:01:00.0"),  # switch 1 downstream -> switch 2
        bridge("0000:02:01.0", "0000:01:00.0"),  # switch 1 downstream -> GPU2
        bridge("0000:03:00.0", "0000:02:00.0"),  # switch 2 upstream
        bridge("0000:04:00.0", "0000:03:00.0"),
        bridge("0000:04:01.0", "0000:03:00.0"),
        gpu_fn("0000:05:00.0", "0000:04:00.0", 0x26B9, "L40S"),
        gpu_fn("0000:06:00.0", "0000:04:01.0", 0x26B9, "L40S"),
        gpu_fn("0000:07:00.0", "0000:02:01.0", 0x26B9, "L40S"),
        bridge("0000:00:02.0", None),  # a "root port" with two GPUs straight below it
        gpu_fn("0000:10:00.0", "0000:00:02.0", 0x26B9, "L40S"),
        gpu_fn("0000:11:00.0", "0000:00:02.0", 0x26B9, "L40S"),
    ]
    ids = ["0000:05:00.0", "0000:06:00.0", "0000:07:00.0", "0000:10:00.0", "0000:11:00.0"]
    fabric = build_fabric(_tree_host(pci, ids, [0] * 5))
    k = kinds(fabric)
    assert k[(0, 1)] == "PIX"  # same leaf switch
    assert k[(0, 2)] == "PXB" and k[(1, 2)] == "PXB"  # through two switches, below the root port
    assert k[(3, 4)] == "PHB"
    assert k[(0, 3)] == "NODE"
    assert members(fabric, "pcie-switch") == [{0, 1}]
    assert fabric.domains_of("pcie-switch")[0].name == "PCIe switch 0000:03:00.0 (GPU0+GPU1)"


def test_host_bridge_at_the_top_is_the_root_complex():
    pci = [
        PciFunction("0000:00:00.0", 0x0600, 0x8086, 0x09A2, "host bridge", None),
        bridge("0000:00:01.0", "0000:00:00.0"),
        bridge("0000:00:02.0", "0000:00:00.0"),
        gpu_fn("0000:01:00.0", "0000:00:01.0", 0x26B9, "L40S"),
        gpu_fn("0000:02:00.0", "0000:00:02.0", 0x26B9, "L40S"),
    ]
    fabric = build_fabric(_tree_host(pci, ["0000:01:00.0", "0000:02:00.0"], [0, 0]))
    assert kinds(fabric) == {(0, 1): "NODE"}


def test_numa_from_numa_info_when_the_gpu_has_none():
    hw = l40s_host()
    hw = dataclasses.replace(hw, gpus=tuple(dataclasses.replace(g, numa_node=None) for g in hw.gpus))
    fabric = build_fabric(hw)
    assert kinds(fabric)[(0, 2)] == "NODE" and kinds(fabric)[(0, 3)] == "SYS"
    assert "numa-unknown" not in codes(fabric)


@pytest.mark.reliability("topology input", "unknown NUMA nodes")
def test_unknown_numa_is_sys_with_a_finding():
    hw = l40s_host()
    hw = dataclasses.replace(
        hw,
        gpus=tuple(dataclasses.replace(g, numa_node=None) for g in hw.gpus),
        numa_nodes=(),
    )
    fabric = build_fabric(hw)
    assert kinds(fabric)[(0, 1)] == "PIX"  # the tree alone proves the shared switch
    assert kinds(fabric)[(0, 2)] == "SYS"
    unknown = [f for f in fabric.findings if f.code == "numa-unknown"]
    assert len(unknown) == 4 and unknown[0].severity == "warning"
    assert "GPU0 (0000:03:00.0)" in unknown[0].message


@pytest.mark.reliability("topology input", "broken PCI tree (loops, dangling parents, missing GPUs)")
def test_pci_parent_loop_is_a_finding_not_a_hang():
    pci = [
        bridge("0000:01:00.0", "0000:02:00.0"),
        bridge("0000:02:00.0", "0000:01:00.0"),
        gpu_fn("0000:03:00.0", "0000:01:00.0", 0x26B9, "L40S"),
        gpu_fn("0000:04:00.0", "0000:01:00.0", 0x26B9, "L40S"),
        gpu_fn("0000:05:00.0", "0000:05:00.0", 0x26B9, "L40S"),  # its own parent
    ]
    fabric = build_fabric(_tree_host(pci, ["0000:03:00.0", "0000:04:00.0", "0000:05:00.0"], [0, 0, 1]))
    assert kinds(fabric) == {(0, 1): "NODE", (0, 2): "SYS", (1, 2): "SYS"}
    broken = [f for f in fabric.findings if f.code == "pci-tree-broken"]
    assert broken and all(f.severity == "error" for f in broken)
    assert any("loop" in f.message and "0000:03:00.0" in f.message for f in broken)
    assert any("0000:05:00.0" in f.gpus for f in broken)


@pytest.mark.reliability("topology input", "broken PCI tree (loops, dangling parents, missing GPUs)")
def test_dangling_parent_keeps_the_known_part_of_the_path():
    pci = [
        bridge("0000:01:00.0", "0000:00:09.0"),  # parent not in the list
        gpu_fn("0000:02:00.0", "0000:01:00.0", 0x26B9, "L40S"),
        gpu_fn("0000:03:00.0", "0000:01:00.0", 0x26B9, "L40S"),
    ]
    fabric = build_fabric(_tree_host(pci, ["0000:02:00.0", "0000:03:00.0"], [0, 0]))
    assert kinds(fabric) == {(0, 1): "PIX"}
    (finding,) = fabric.findings
    assert finding.code == "pci-tree-broken" and finding.severity == "warning"
    assert "0000:00:09.0" in finding.message


@pytest.mark.reliability("topology input", "broken PCI tree (loops, dangling parents, missing GPUs)")
def test_gpu_missing_from_the_pci_list():
    pci = [bridge("0000:00:01.0", None), gpu_fn("0000:01:00.0", "0000:00:01.0", 0x26B9, "L40S")]
    fabric = build_fabric(_tree_host(pci, ["0000:01:00.0", "0000:02:00.0"], [0, 0]))
    assert kinds(fabric) == {(0, 1): "NODE"}
    assert [f.code for f in fabric.findings] == ["pci-tree-broken"]


def test_pci_tree_path_order():
    tree = PciTree(l40s_host().pci)
    assert tree.path("0000:03:00.0") == ("0000:00:01.0", "0000:01:00.0", "0000:02:00.0")
    assert tree.root_port("0000:21:00.0") == "0000:00:03.0"


# --- HGX: platform catalog, partitions ---------------------------------------------------------------


def test_hgx_h100_board_is_all_to_all_nvswitch():
    fabric = build_fabric(hgx_h100_host())
    assert fabric.gpus == tuple(HGX_GPUS)
    assert len(fabric.links) == 28
    assert {x.kind for x in fabric.links} == {"NVSWITCH"}
    assert {x.source for x in fabric.links} == {"platform-catalog"}
    assert {(x.nvlinks, x.gbps) for x in fabric.links} == {(18, 450.0)}
    assert members(fabric, "nvswitch-board") == [set(range(8))]
    assert members(fabric, "pcie-switch") == [{0, 1}, {2, 3}, {4, 5}, {6, 7}]
    assert members(fabric, "numa-node") == [{0, 1, 2, 3}, {4, 5, 6, 7}]
    # no module ids: partitions follow PCI bus order, with an info finding
    parts = members(fabric, "nvswitch-partition")
    assert len(parts) == 8 // 8 + 8 // 4 + 8 // 2 + 8
    # Fabric Manager's 2-GPU partitions pair modules 1+3, 2+4, 5+7, 6+8
    assert parts[:7] == [set(range(8)), {0, 1, 2, 3}, {4, 5, 6, 7}, {0, 2}, {1, 3}, {4, 6}, {5, 7}]
    assert parts[7:] == [{i} for i in range(8)]
    assert [(f.severity, f.code) for f in fabric.findings] == [("info", "module-id-assumed")]


def test_hgx_partitions_follow_module_ids():
    fabric = build_fabric(hgx_h100_host(module_ids=True))  # modules by bus order: 2 4 1 3 7 5 8 6
    parts = members(fabric, "nvswitch-partition")
    assert parts[:7] == [set(range(8)), {0, 1, 2, 3}, {4, 5, 6, 7}, {2, 3}, {0, 1}, {4, 5}, {6, 7}]
    names = [d.name for d in fabric.domains_of("nvswitch-partition")]
    assert names[1] == "Fabric Manager partition modules 1-4"
    assert names[3] == "Fabric Manager partition modules 1,3"
    assert names[7] == "Fabric Manager partition module 1"
    assert fabric.findings == ()


def test_hgx_module_ids_from_smi_identities():
    hw = hgx_h100_host()
    text = hgx_h100_smi()  # the host's own capture: NV18 everywhere, GPU0-3 on NUMA node 0, GPU4-7 on 1
    modules = [2, 4, 1, 3, 7, 5, 8, 6]
    ids = [SmiGpuIdentity(i, pci, m) for i, (pci, m) in enumerate(zip(HGX_GPUS, modules, strict=True))]
    fabric = build_fabric(hw, smi=parse_smi_topology(text), smi_identities=ids)
    assert members(fabric, "nvswitch-partition")[3:5] == [{2, 3}, {0, 1}]
    # the capture agrees with the platform's all-to-all NVSwitch board
    assert {(x.kind, x.nvlinks) for x in fabric.links} == {("NVSWITCH", 18)}
    assert "module-id-assumed" not in codes(fabric)


def test_partition_blocks():
    assert partition_blocks(8)[:3] == [(0, 7), (0, 3), (4, 7)]
    assert len(partition_blocks(8)) == 15
    assert partition_blocks(4) == [(0, 3), (0, 1), (2, 3), (0, 0), (1, 1), (2, 2), (3, 3)]
    assert partition_blocks(6) == [(0, 5), *[(i, i) for i in range(6)]]


def test_sxm_board_without_nvswitch_functions():
    hw = hgx_h100_host()
    hw = dataclasses.replace(hw, pci=tuple(f for f in hw.pci if f.device_id != 0x22A3))
    fabric = build_fabric(hw)
    assert {x.kind for x in fabric.links} <= {"PIX", "NODE", "SYS"}
    (finding,) = [f for f in fabric.findings if f.code == "nvswitch-missing"]
    assert finding.severity == "warning" and len(finding.gpus) == 8


# --- H100 NVL: device groups, smi import, nvlink-missing --------------------------------------------


def test_h100_nvl_before_smi_import_reports_missing_nvlink():
    fabric = build_fabric(h100_nvl_host())
    k = kinds(fabric)
    assert k[(0, 1)] == "PIX" and k[(2, 3)] == "PIX" and k[(0, 2)] == "NODE"
    missing = [f for f in fabric.findings if f.code == "nvlink-missing"]
    assert [f.gpus for f in missing] == [tuple(H100_NVL_GPUS[:2]), tuple(H100_NVL_GPUS[2:])]
    assert missing[0].message == (
        "H100 NVL 0000:17:00.0 and 0000:18:00.0 share a PCIe switch but no NVLink is known: "
        "import an nvidia-smi topo -m capture from the host"
    )


def test_h100_nvl_after_smi_import():
    fabric = build_fabric(h100_nvl_host(), smi=parse_smi_topology(H100_NVL_SMI))
    k = kinds(fabric)
    assert k[(0, 1)] == "NVLINK" and k[(2, 3)] == "NVLINK" and k[(1, 2)] == "NODE"
    link = fabric.link(*H100_NVL_GPUS[:2])
    assert (link.nvlinks, link.gbps, link.source) == (12, 300.0, "smi-import")  # H100 NVL: 600 GB/s both ways
    assert fabric.link(H100_NVL_GPUS[0], H100_NVL_GPUS[2]).source == "pci-tree"  # smi agreed
    assert members(fabric, "nvlink-pair") == [{0, 1}, {2, 3}]
    assert fabric.findings == ()


def test_h100_nvl_capture_without_nvlink_says_so():
    smi = parse_smi_topology(H100_NVL_SMI.replace("NV12", "PIX"))
    fabric = build_fabric(h100_nvl_host(), smi=smi)
    missing = [f for f in fabric.findings if f.code == "nvlink-missing"]
    assert len(missing) == 2 and "capture shows PIX" in missing[0].message


def test_nvlink_device_group_makes_a_pair():
    hw = dataclasses.replace(
        h100_nvl_host(), device_groups=(("Nvidia:2@nvidia_h100l-94c%NVLink", tuple(H100_NVL_GPUS[:2])),)
    )
    fabric = build_fabric(hw)
    link = fabric.link(*H100_NVL_GPUS[:2])
    assert (link.kind, link.nvlinks, link.source) == ("NVLINK", 12, "device-group")
    assert [f.gpus for f in fabric.findings if f.code == "nvlink-missing"] == [tuple(H100_NVL_GPUS[2:])]
    assert members(fabric, "nvlink-pair") == [{0, 1}]


@pytest.mark.reliability("topology input", "device group naming an unknown GPU")
def test_device_group_naming_an_unknown_gpu():
    hw = dataclasses.replace(h100_nvl_host(), device_groups=(("Nvidia:2@x%NVLink", ("0000:17:00.0", "0000:99:00.0")),))
    with pytest.raises(FabricInputError, match=r"0000:99:00.0"):
        build_fabric(hw)


@pytest.mark.reliability("topology input", "nvidia-smi capture contradicting vSphere")
def test_smi_disagreement_within_a_numa_node_is_a_finding_and_smi_wins():
    smi = parse_smi_topology(H100_NVL_SMI.replace("NODE", "PHB"))
    fabric = build_fabric(h100_nvl_host(), smi=smi)
    assert kinds(fabric)[(0, 2)] == "PHB"
    disagree = [f for f in fabric.findings if f.code == "smi-disagrees"]
    assert len(disagree) == 4 and all(f.severity == "info" for f in disagree)
    assert "reports PHB" in disagree[0].message and "gives NODE" in disagree[0].message


@pytest.mark.reliability("topology input", "nvidia-smi capture contradicting vSphere")
def test_a_capture_that_contradicts_vcenters_numa_nodes_is_refused():
    """SYS crosses NUMA nodes; vCenter puts these GPUs on one: the capture is from another machine (or another
    GPU order), so it does not override what vCenter knows."""
    smi = parse_smi_topology(H100_NVL_SMI.replace("NODE", "SYS"))
    with pytest.raises(FabricInputError, match=r"puts GPU0 and GPU2 \(SYS\) on different NUMA nodes, but vCenter"):
        build_fabric(h100_nvl_host(), smi=smi)


@pytest.mark.reliability("topology input", "nvidia-smi capture contradicting vSphere")
def test_smi_gpu_count_mismatch():
    text = (SAMPLES / "rtx3090-2x-phb-workstation.txt").read_text()
    with pytest.raises(FabricInputError, match=r"lists 2 GPUs but host esx-nvl-01 has 4"):
        build_fabric(h100_nvl_host(), smi=parse_smi_topology(text))


def test_smi_identities_map_by_bus_id():
    reversed_ids = [SmiGpuIdentity(i, pci, None) for i, pci in enumerate(reversed(H100_NVL_GPUS))]
    smi = parse_smi_topology(H100_NVL_SMI)
    fabric = build_fabric(h100_nvl_host(), smi=smi, smi_identities=reversed_ids)
    # smi GPU0/1 are the last two by bus order
    assert fabric.link(*H100_NVL_GPUS[2:]).kind == "NVLINK"
    with pytest.raises(FabricInputError, match="not a GPU of host"):
        build_fabric(
            h100_nvl_host(), smi=smi, smi_identities=[*reversed_ids[:3], SmiGpuIdentity(3, "0000:01:00.0", None)]
        )
    with pytest.raises(FabricInputError, match="has 3 GPUs but host esx-nvl-01 has 4"):
        build_fabric(h100_nvl_host(), smi=smi, smi_identities=reversed_ids[:3])


@pytest.mark.reliability("topology input", "partial nvidia-smi capture")
def test_partial_smi_capture_keeps_lower_sources_for_unknown_pairs():
    partial = "\n".join(H100_NVL_SMI.splitlines()[:3])  # rows GPU0 and GPU1 only
    fabric = build_fabric(h100_nvl_host(), smi=parse_smi_topology(partial))
    assert fabric.link(*H100_NVL_GPUS[:2]).kind == "NVLINK"
    assert fabric.link(*H100_NVL_GPUS[2:]).kind == "PIX"  # GPU2-GPU3 unknown to the capture
    assert "smi-warning" in codes(fabric) and "nvlink-missing" in codes(fabric)


def test_manual_override_wins_over_smi():
    override = FabricLink(H100_NVL_GPUS[1], H100_NVL_GPUS[0], "NVLINK", 4, 0.0, "anything")
    fabric = build_fabric(h100_nvl_host(), smi=parse_smi_topology(H100_NVL_SMI), overrides=(override,))
    link = fabric.link(*H100_NVL_GPUS[:2])
    assert (link.a, link.kind, link.nvlinks, link.gbps, link.source) == (H100_NVL_GPUS[0], "NVLINK", 4, 100.0, "manual")
    with pytest.raises(FabricInputError, match=r"0000:99:00\.0 is not a GPU"):
        build_fabric(h100_nvl_host(), overrides=(dataclasses.replace(override, a="0000:99:00.0"),))
    with pytest.raises(FabricInputError, match="kind 'FAST'"):
        build_fabric(h100_nvl_host(), overrides=(dataclasses.replace(override, kind="FAST"),))


def test_nvlink_across_numa_nodes():
    hw = l40s_host()
    override = FabricLink(hw.gpus[0].pci_id, hw.gpus[3].pci_id, "NVLINK", 4, 0.0, "manual")
    fabric = build_fabric(hw, overrides=(override,))
    (finding,) = [f for f in fabric.findings if f.code == "nvlink-cross-numa"]
    assert finding.gpus == (hw.gpus[0].pci_id, hw.gpus[3].pci_id)
    assert "NUMA nodes 0 and 1" in finding.message


def test_nvlink_domain_of_three():
    hw = h100_nvl_host()
    g = H100_NVL_GPUS
    overrides = tuple(FabricLink(a, b, "NVLINK", 4, 0.0, "manual") for a, b in ((g[0], g[1]), (g[1], g[2])))
    fabric = build_fabric(hw, overrides=overrides)
    assert members(fabric, "nvlink-domain") == [{0, 1, 2}]
    assert members(fabric, "nvlink-pair") == []


@pytest.mark.reliability("topology input", "duplicate GPU")
def test_duplicate_gpu_is_rejected():
    hw = l40s_host()
    with pytest.raises(FabricInputError, match="listed twice"):
        build_fabric(dataclasses.replace(hw, gpus=(*hw.gpus, hw.gpus[0])))


def test_graph_holds_gpus_bridges_numa_and_nvswitches():
    fabric = build_fabric(hgx_h100_host())
    graph = fabric.graph
    by_kind: dict[str, int] = {}
    for _, data in graph.nodes(data=True):
        by_kind[data["kind"]] = by_kind.get(data["kind"], 0) + 1
    assert by_kind == {"gpu": 8, "nvswitch": 4, "numa": 2, "socket": 2, "root-port": 5, "bridge": 12}
    assert graph.edges[HGX_GPUS[0], HGX_GPUS[7]]["kind"] == "NVSWITCH"
    assert graph.edges["socket:0", "socket:1"]["kind"] == "SYS"
    assert graph.edges["0000:15:01.0", "0000:16:00.0"]["kind"] == "PCIE"


# --- stable domain ids -------------------------------------------------------------------------------


def test_domain_id_shape_and_stability():
    a = domain_id("nvlink-pair", ["0000:18:00.0", "0000:17:00.0"], host="esx1")
    assert a.startswith("nvl-") and len(a) == 12
    assert a == domain_id("nvlink-pair", ["0000:17:00.0", "0000:18:00.0"], host="esx1")
    assert a == domain_id("nvlink-pair", ["0000:17:00.0", "0000:18:00.0 "], host="ESX1")
    assert a != domain_id("nvlink-pair", ["0000:17:00.0", "0000:19:00.0"], host="esx1")
    assert a != domain_id("pcie-switch", ["0000:17:00.0", "0000:18:00.0"], host="esx1")
    assert a != domain_id("nvlink-pair", ["0000:17:00.0", "0000:18:00.0"], host="esx2")
    with pytest.raises(ValueError, match="unknown domain kind"):
        domain_id("rack", ["x"])


def test_domain_ids_identical_across_builds_and_sources():
    first = build_fabric(hgx_h100_host())
    second = build_fabric(hgx_h100_host())
    assert first == second
    assert [d.id for d in first.domains] == [d.id for d in second.domains]
    nvl = build_fabric(h100_nvl_host(), smi=parse_smi_topology(H100_NVL_SMI))
    grouped = build_fabric(
        dataclasses.replace(
            h100_nvl_host(),
            device_groups=(
                ("Nvidia:2@nvidia_h100l-94c%NVLink", tuple(H100_NVL_GPUS[:2])),
                ("Nvidia:2@nvidia_h100l-94c%NVLink", tuple(H100_NVL_GPUS[2:])),
            ),
        )
    )
    assert [d.id for d in nvl.domains_of("nvlink-pair")] == [d.id for d in grouped.domains_of("nvlink-pair")]


def test_domain_id_changes_when_a_member_changes():
    hw = l40s_host()
    before = build_fabric(hw)
    moved = "0000:04:00.0"
    renamed = dataclasses.replace(
        hw,
        pci=tuple(dataclasses.replace(f, pci_id="0000:05:00.0") if f.pci_id == moved else f for f in hw.pci),
        gpus=tuple(dataclasses.replace(g, pci_id="0000:05:00.0") if g.pci_id == moved else g for g in hw.gpus),
    )
    after = build_fabric(renamed)
    assert before.domains_of("pcie-switch")[0].id != after.domains_of("pcie-switch")[0].id
    assert before.domains_of("numa-node")[1].id == after.domains_of("numa-node")[1].id  # untouched node


def _shuffled(hw: HostHardware, data) -> HostHardware:
    numa = tuple(
        NumaNodeHardware(n.id, n.cpus, tuple(data.draw(st.permutations(n.pci_ids))))
        for n in data.draw(st.permutations(hw.numa_nodes))
    )
    return dataclasses.replace(
        hw,
        pci=tuple(data.draw(st.permutations(hw.pci))),
        gpus=tuple(data.draw(st.permutations(hw.gpus))),
        numa_nodes=numa,
    )


REFERENCE = {name: build_fabric(make()) for name, make in (("hgx", hgx_h100_host), ("l40s", l40s_host))}


@settings(max_examples=40, deadline=None)
@given(data=st.data(), name=st.sampled_from(sorted(REFERENCE)))
def test_fabric_is_independent_of_input_order(data, name):
    hw = hgx_h100_host() if name == "hgx" else l40s_host()
    fabric = build_fabric(_shuffled(hw, data))
    assert fabric == REFERENCE[name]
    assert [d.id for d in fabric.domains] == [d.id for d in REFERENCE[name].domains]


def test_every_pair_has_exactly_one_link():
    for hw in (l40s_host(), hgx_h100_host(), h100_nvl_host()):
        fabric = build_fabric(hw)
        pairs = [(x.a, x.b) for x in fabric.links]
        assert sorted(pairs) == sorted(tuple(sorted(p)) for p in combinations(fabric.gpus, 2))
        assert all(x.a < x.b for x in fabric.links)
