from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpucatalog.catalog import load_catalog
from inventory.topology.bandwidth import (
    DEFAULT_INTER_SOCKET_GBPS,
    bridge_links,
    guess_nvlink_generation,
    inter_socket_gbps_for_cpu,
    link_gbps,
    nvswitch_links_per_gpu,
)


def test_nvlink_uses_the_catalog_per_link_figure():
    assert link_gbps("NVLINK", nvlinks=12, nvlink_generation=3) == 300.0
    assert link_gbps("NVLINK", nvlinks=18, nvlink_generation=4) == 450.0  # NVIDIA: 900 GB/s both ways
    assert link_gbps("NVLINK", nvlinks=12, nvlink_generation=4) == 300.0  # H100 NVL pair: 600 GB/s both ways
    assert link_gbps("NVSWITCH", nvlinks=18, nvlink_generation=5) == 900.0  # B200: 1.8 TB/s both ways


@pytest.mark.parametrize(("links", "generation"), [(12, 3), (18, 4), (4, None), (8, 4), (2, None)])
def test_generation_guessed_from_link_count(links, generation):
    assert guess_nvlink_generation(links) == generation


def test_unknown_generation_guesses_from_count():
    assert link_gbps("NVLINK", nvlinks=12) == 300.0  # A100
    assert link_gbps("NVLINK", nvlinks=18) == 450.0  # H100/H200
    assert link_gbps("NVLINK", nvlinks=4) == 56.2  # A40 / RTX A6000 / RTX 3090 bridge: 112.5 GB/s both ways
    assert link_gbps("NVLINK", nvlinks=4, nvlink_generation=4) == 100.0  # a known board's own links


def test_pcie_classes_follow_the_factor_table():
    gen4 = load_catalog().pcie_gbps(4)
    assert link_gbps("PIX", pcie_gen=4) == gen4 == 31.5
    assert link_gbps("PXB", pcie_gen=4) == gen4
    assert link_gbps("PHB", pcie_gen=4) == round(gen4 * 0.8, 1)
    assert link_gbps("NODE", pcie_gen=4) == round(gen4 * 0.6, 1)
    assert link_gbps("PIX", pcie_gen=5) == 63.0
    assert link_gbps("PIX") == gen4  # unknown generation: Gen4


def test_sys_uses_the_inter_socket_model_capped_below_node():
    assert link_gbps("SYS", pcie_gen=5) == DEFAULT_INTER_SOCKET_GBPS
    assert link_gbps("SYS", pcie_gen=5, inter_socket_gbps=16) == 16.0
    assert link_gbps("SYS", pcie_gen=4, inter_socket_gbps=40) == 15.8  # capped at 0.5 x Gen4


@given(
    pcie_gen=st.sampled_from([3, 4, 5, None]),
    socket=st.sampled_from([None, 6.0, 10.0, 16.0, 22.0, 40.0]),
)
def test_classes_are_ordered_best_to_worst(pcie_gen, socket):
    values = [
        link_gbps(kind, nvlinks=12, pcie_gen=pcie_gen, inter_socket_gbps=socket)
        for kind in ("NVLINK", "PIX", "PXB", "PHB", "NODE", "SYS")
    ]
    assert values == sorted(values, reverse=True)


def test_a_workstation_bridge_beats_the_pcie_of_its_cards():
    # A40 / RTX A6000 / RTX 3090 are PCIe Gen4 cards: their NV4 bridge (56 GB/s) is still their best path.
    assert link_gbps("NVLINK", nvlinks=4) > link_gbps("PIX", pcie_gen=4)


@pytest.mark.reliability("topology input", "unknown link kinds and NVLink counts")
def test_bad_kinds_and_counts():
    with pytest.raises(ValueError, match="unknown link kind 'FOO'"):
        link_gbps("FOO")
    with pytest.raises(ValueError, match="positive NVLink count"):
        link_gbps("NVLINK", nvlinks=0)


def test_lowercase_kind_is_accepted():
    assert link_gbps("pix", pcie_gen=4) == 31.5


@pytest.mark.parametrize(
    ("cpu", "key"),
    [
        ("AMD EPYC 7763 64-Core Processor", "amd_xgmi"),
        ("Intel(R) Xeon(R) Gold 6148 CPU @ 2.40GHz", "intel_skylake_upi"),
        ("Intel(R) Xeon(R) Platinum 8380 CPU @ 2.30GHz", "intel_skylake_upi"),  # Ice Lake: NCCL's SKL group
        ("Intel(R) Xeon(R) Platinum 8480+", "intel_sapphire_rapids_upi"),
        ("INTEL(R) XEON(R) GOLD 6548Y+", "intel_emerald_rapids_upi"),
        ("Intel(R) Xeon(R) 6980P", "intel_emerald_rapids_upi"),
    ],
)
def test_inter_socket_model_by_cpu(cpu, key):
    assert inter_socket_gbps_for_cpu(cpu) == load_catalog().inter_socket_gbps[key]


def test_unknown_cpu_gets_the_default():
    assert inter_socket_gbps_for_cpu("Some ARM thing") == DEFAULT_INTER_SOCKET_GBPS


def test_links_per_gpu_from_catalog():
    catalog = load_catalog()
    assert nvswitch_links_per_gpu(catalog.boards["A100-80GB"]) == 12
    assert nvswitch_links_per_gpu(catalog.boards["H100-80GB"]) == 18
    assert nvswitch_links_per_gpu(None) == 18
    assert bridge_links(catalog.boards["H200-141GB"]) == 18
    assert bridge_links(None) == 12
