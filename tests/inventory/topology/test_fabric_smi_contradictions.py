"""An nvidia-smi capture that contradicts the host it is imported for (report-C MEDIUM 4): NVLink counts the
host's board cannot have, NUMA node ids the host does not have, NUMA groupings that differ either way."""

from __future__ import annotations

import pytest

from inventory.topology.fabric import build_fabric
from inventory.topology.model import FabricInputError
from inventory.topology.smi import parse_smi_topology
from tests.inventory.topology.hosts import (
    H100_NVL_SMI,
    HGX_GPUS,
    h100_nvl_host,
    hgx_h100_host,
    hgx_h100_smi,
    l40s_host,
)
from tests.inventory.topology.test_smi import SAMPLES


def build(text: str):
    return build_fabric(hgx_h100_host(), smi=parse_smi_topology(text))


def test_the_hosts_own_capture_is_accepted_without_findings():
    fabric = build(hgx_h100_smi())
    assert {(x.kind, x.nvlinks) for x in fabric.links} == {("NVSWITCH", 18)}
    assert [f.code for f in fabric.findings] == ["module-id-assumed"]


@pytest.mark.reliability("topology input", "nvidia-smi capture contradicting vSphere")
def test_an_a100_hgx_capture_is_refused_on_an_h100_hgx_host():
    """The report's repro: NV12 and NUMA nodes 3/1/7/5 (EPYC NPS4) on a Xeon host with NUMA nodes 0 and 1."""
    text = (SAMPLES / "hgx-a100-nps4-epyc7763.txt").read_text()
    with pytest.raises(FabricInputError, match=r"puts GPU0 on NUMA node 3, but host esx-hgx-01 has NUMA nodes 0, 1"):
        build(text)


@pytest.mark.reliability("topology input", "nvidia-smi capture contradicting vSphere")
def test_nv12_between_h100_sxm_modules_behind_nvswitch_is_refused():
    with pytest.raises(FabricInputError, match=r"reports NV12 between the GPUs of the NVSwitch board, .* show NV18"):
        build(hgx_h100_smi("NV12"))


@pytest.mark.reliability("topology input", "nvidia-smi capture contradicting vSphere")
def test_more_nvlinks_than_an_h100_sxm_module_has_is_refused():
    with pytest.raises(FabricInputError, match=r"reports NV24 between GPU2 and GPU5, .* with 18 NVLinks each"):
        build(hgx_h100_smi(pairs={(2, 5): "NV24"}))


def test_some_pairs_below_the_board_are_a_warning_not_info():
    fabric = build(hgx_h100_smi(pairs={(0, 1): "NV17"}))
    (finding,) = [f for f in fabric.findings if f.code == "nvlink-degraded"]
    assert finding.severity == "warning"
    assert finding.gpus == tuple(HGX_GPUS[:2])
    assert "NV17" in finding.message and "NV18" in finding.message and "may be down" in finding.message
    assert "smi-disagrees" not in [f.code for f in fabric.findings]
    link = fabric.link(*HGX_GPUS[:2])
    assert (link.nvlinks, link.source) == (17, "smi-import")


@pytest.mark.reliability("topology input", "nvidia-smi capture contradicting vSphere")
def test_numa_node_split_in_the_capture_but_one_node_in_vcenter_is_refused():
    """The reverse of the SYS check: NVLink pairs say nothing about NUMA, the NUMA Affinity column does."""
    with pytest.raises(
        FabricInputError, match=r"puts GPU0 and GPU2 on NUMA nodes 0 and 1, but vCenter puts .* both on NUMA node 0"
    ):
        build(hgx_h100_smi(numa=(0, 0, 1, 1, 1, 1, 1, 1)))


@pytest.mark.reliability("topology input", "nvidia-smi capture contradicting vSphere")
def test_one_numa_node_in_the_capture_but_two_in_vcenter_is_refused():
    with pytest.raises(
        FabricInputError, match=r"puts GPU0 and GPU4 both on NUMA node 0, but vCenter puts .* on NUMA nodes 0 and 1"
    ):
        build(hgx_h100_smi(numa=(0,) * 8))


@pytest.mark.reliability("topology input", "nvidia-smi capture contradicting vSphere")
def test_a_numa_node_the_host_does_not_have_is_refused():
    with pytest.raises(FabricInputError, match=r"puts GPU0 on NUMA node 2, but host esx-nvl-01 has NUMA node 0 only"):
        build_fabric(h100_nvl_host(), smi=parse_smi_topology(H100_NVL_SMI.replace("0-63    0", "0-63    2")))


@pytest.mark.reliability("topology input", "nvidia-smi capture contradicting vSphere")
def test_nvlink_between_gpus_of_a_board_without_nvlink_is_refused():
    """Trial G #5: NV12 between two L40S was imported, and plans then promised 300 GB/s on cards with no NVLink."""
    text = """        GPU0    GPU1    GPU2    GPU3    CPU Affinity    NUMA Affinity   GPU NUMA ID
GPU0     X      NV12    NODE    SYS     0-31    0               N/A
GPU1    NV12     X      NODE    SYS     0-31    0               N/A
GPU2    NODE    NODE     X      SYS     0-31    0               N/A
GPU3    SYS     SYS     SYS      X      32-63   1               N/A
"""
    with pytest.raises(
        FabricInputError, match=r"reports NV12 between GPU0 and GPU1, but .*L40S-48GB\), which has no NVLink"
    ):
        build_fabric(l40s_host(), smi=parse_smi_topology(text))
