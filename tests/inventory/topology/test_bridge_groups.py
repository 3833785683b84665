"""An NVLink device group of four bridged PCIe cards (the H200 NVL's 4-way bridge) shares each card's NVLinks among its
three peers (Trial O).

An H200 NVL has 18 NVLinks, 900 GB/s per GPU with a 2-way or a 4-way bridge (NVIDIA H200 NVL product brief); a 4-way
bridge joins each card to three peers, six links each: `nvidia-smi topo -m` on four bridged H200 NVL prints NV6 for
every pair ("Full NVLink (18 Links / GPU)", a public capture found with the search tool's find_string, id
35823911341). The fabric gave every pair of a 4-GPU %NVLink group the 18 links of a 2-way bridge (450 GB/s a pair,
three times the card's NVLinks), unlike the capture of the same host (NV6, 150 GB/s), and a capture then read as
"NVLinks may be down"."""

from __future__ import annotations

import dataclasses

from inventory.topology.fabric import build_fabric
from inventory.topology.smi import parse_smi_topology
from tests.inventory.topology.hosts import H100_NVL_GPUS, h100_nvl_host

H200_NVL = (0x233B, "NVIDIA H200 NVL", 143771)
GROUP4 = "Nvidia:4@grid_h200-141c%NVLink"
GROUP2 = "Nvidia:2@grid_h200-141c%NVLink"
NV6_MESH = """\
        GPU0    GPU1    GPU2    GPU3    CPU Affinity    NUMA Affinity
GPU0     X      NV6     NV6     NV6     0-63    0
GPU1    NV6      X      NV6     NV6     0-63    0
GPU2    NV6     NV6      X      NV6     0-63    0
GPU3    NV6     NV6     NV6      X      0-63    0
"""
A30_PAIRS = """\
        GPU0    GPU1    GPU2    GPU3    CPU Affinity    NUMA Affinity
GPU0     X      NV4     NODE    NODE    0-63    0
GPU1    NV4      X      NODE    NODE    0-63    0
GPU2    NODE    NODE     X      NV4     0-63    0
GPU3    NODE    NODE    NV4      X      0-63    0
"""


def h200_nvl_host(*groups: tuple[str, tuple[str, ...]]):
    """The four-card host of ``h100_nvl_host`` with H200 NVL cards and the given device groups."""
    hw = h100_nvl_host()
    device_id, model, memory_mb = H200_NVL
    pci = tuple(
        dataclasses.replace(f, device_id=device_id, name=model) if f.pci_id in H100_NVL_GPUS else f for f in hw.pci
    )
    gpus = tuple(dataclasses.replace(g, device_id=device_id, model=model, memory_mb=memory_mb) for g in hw.gpus)
    return dataclasses.replace(hw, pci=pci, gpus=gpus, device_groups=groups)


def test_a_four_card_nvlink_group_gives_each_pair_a_third_of_the_cards_links():
    fabric = build_fabric(h200_nvl_host((GROUP4, tuple(H100_NVL_GPUS))))
    for i, a in enumerate(H100_NVL_GPUS):
        for b in H100_NVL_GPUS[i + 1 :]:
            link = fabric.link(a, b)
            assert (link.kind, link.nvlinks, link.gbps) == ("NVLINK", 6, 150.0)


def test_the_group_and_the_capture_of_the_same_host_agree():
    grouped = build_fabric(h200_nvl_host((GROUP4, tuple(H100_NVL_GPUS))), smi=parse_smi_topology(NV6_MESH))
    assert not [f for f in grouped.findings if f.code in ("smi-disagrees", "nvlink-degraded")]


def test_pairs_of_a_four_way_bridge_listed_as_two_card_groups_too_keep_the_four_way_split():
    pairs = ((GROUP2, tuple(H100_NVL_GPUS[:2])), (GROUP2, tuple(H100_NVL_GPUS[2:])))
    fabric = build_fabric(h200_nvl_host((GROUP4, tuple(H100_NVL_GPUS)), *pairs))
    assert fabric.link(*H100_NVL_GPUS[:2]).nvlinks == 6


def test_a_two_card_group_keeps_the_whole_bridge():
    fabric = build_fabric(h200_nvl_host((GROUP2, tuple(H100_NVL_GPUS[:2]))))
    link = fabric.link(*H100_NVL_GPUS[:2])
    assert (link.nvlinks, link.gbps) == (18, 450.0)


def test_an_a30_nvlink_group_is_the_a30_bridge_not_an_a100_one():
    """The A30's NVLink bridge carries 200 GB/s both ways (four third-generation links; the catalog's A30 entry cites
    NVIDIA's A30 datasheet) and nvidia-smi prints NV4, 100 GB/s a direction: a device group gave the pair the 12 links
    of an A100 bridge (300 GB/s), three times what a capture of the same host gives."""
    hw = h100_nvl_host()
    pci = tuple(
        dataclasses.replace(f, device_id=0x20B7, name="NVIDIA A30") if f.pci_id in H100_NVL_GPUS else f for f in hw.pci
    )
    gpus = tuple(dataclasses.replace(g, device_id=0x20B7, model="NVIDIA A30", memory_mb=24258) for g in hw.gpus)
    grouped = dataclasses.replace(
        hw, pci=pci, gpus=gpus, device_groups=(("Nvidia:2@grid_a30-24c%NVLink", tuple(H100_NVL_GPUS[:2])),)
    )
    link = build_fabric(grouped).link(*H100_NVL_GPUS[:2])
    assert (link.nvlinks, link.gbps) == (4, 100.0)
    captured = build_fabric(grouped, smi=parse_smi_topology(A30_PAIRS))
    assert captured.link(*H100_NVL_GPUS[:2]).gbps == link.gbps
