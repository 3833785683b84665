from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from inventory.topology.fabric import build_fabric
from inventory.topology.smi import parse_smi_topology
from inventory.topology.svg import render_host_svg
from tests.inventory.topology.hosts import (
    H100_NVL_SMI,
    h100_nvl_host,
    hgx_h100_host,
    l40s_host,
    many_gpu_host,
)

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # noqa: S314 - our own output, parsed to prove it is well-formed


def texts(root: ET.Element) -> list[str]:
    return ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]


HOSTS = {
    "l40s": (l40s_host, None),
    "hgx": (hgx_h100_host, None),
    "nvl": (h100_nvl_host, H100_NVL_SMI),
    "one": (lambda: many_gpu_host(1), None),
    "sixteen": (lambda: many_gpu_host(16), None),
}


@pytest.mark.parametrize("name", sorted(HOSTS))
def test_well_formed_with_every_sbdf(name):
    make, smi = HOSTS[name]
    hw = make()
    fabric = build_fabric(hw, smi=parse_smi_topology(smi) if smi else None)
    svg = render_host_svg(fabric, hw)
    root = parse(svg)
    assert root.tag == f"{SVG}svg"
    assert (
        root.find(f"{SVG}title").text
        == f"GPU fabric of {hw.name}: {len(hw.gpus)} GPU{'' if len(hw.gpus) == 1 else 's'}"
    )
    all_text = texts(root)
    for gpu in hw.gpus:
        assert gpu.pci_id in all_text
    assert "Legend" in all_text
    _, _, width, height = map(float, root.get("viewBox").split())
    assert width > 0 and height > 0
    for rect in root.iter(f"{SVG}rect"):
        assert float(rect.get("x")) + float(rect.get("width")) <= width
        assert float(rect.get("y")) + float(rect.get("height")) <= height


def test_deterministic_bytes():
    hw = hgx_h100_host()
    occupancy = {hw.gpus[0].pci_id: "vm-a", hw.gpus[5].pci_id: "vm-b"}
    first = render_host_svg(build_fabric(hw), hw, occupancy=occupancy)
    second = render_host_svg(
        build_fabric(hgx_h100_host()), hgx_h100_host(), occupancy=dict(reversed(occupancy.items()))
    )
    assert first == second


def test_occupied_gpus_are_marked_and_text_is_escaped():
    hw = l40s_host()
    fabric = build_fabric(hw)
    svg = render_host_svg(fabric, hw, occupancy={"0000:04:00.0": "<b>llm&co</b>"})
    root = parse(svg)
    assert "VM <b>llm&co</b>" in texts(root)
    assert "&lt;b&gt;llm&amp;co&lt;/b&gt;" in svg
    fills = [r.get("fill") for r in root.iter(f"{SVG}rect")]
    assert fills.count("#ffe3b3") == 1 + 1  # the occupied GPU and its legend swatch


def test_long_vm_names_are_clipped_in_the_box_but_kept_in_the_tooltip():
    hw = l40s_host()
    name = "inference-llama-3-70b-production-replica-7"
    root = parse(render_host_svg(build_fabric(hw), hw, occupancy={"0000:03:00.0": name}))
    assert not any(name in t for t in texts(root))
    assert any(name in (t.text or "") for t in root.iter(f"{SVG}title"))


def test_nvswitch_board_is_one_bar_not_28_edges():
    hw = hgx_h100_host()
    root = parse(render_host_svg(build_fabric(hw), hw))
    assert not list(root.iter(f"{SVG}path"))  # NVLink arcs are paths; an NVSwitch board has none
    bars = [t for t in texts(root) if t.startswith("NVSwitch \u00b7 8 GPUs")]
    assert bars == ["NVSwitch \u00b7 8 GPUs all-to-all \u00b7 450 GB/s per GPU, per direction"]


def test_nvlink_pairs_are_drawn_with_their_bandwidth():
    hw = h100_nvl_host()
    fabric = build_fabric(hw, smi=parse_smi_topology(H100_NVL_SMI))
    root = parse(render_host_svg(fabric, hw))
    assert len(list(root.iter(f"{SVG}path"))) == 2
    assert texts(root).count("NV12 \u00b7 300 GB/s") == 2
    dashed = [r for r in root.iter(f"{SVG}rect") if r.get("stroke-dasharray") == "4 3"]
    assert len(dashed) == 2 + 1  # two pair outlines, one legend swatch


def test_numa_bands_and_pcie_tree_labels():
    hw = l40s_host()
    all_text = texts(parse(render_host_svg(build_fabric(hw), hw)))
    assert "NUMA node 0 \u00b7 socket 0" in all_text and "NUMA node 1 \u00b7 socket 1" in all_text
    assert "root port 0000:00:01.0" in all_text and "PCIe switch 0000:01:00.0" in all_text
    assert [t for t in all_text if t.startswith(("GPU0", "GPU1", "GPU2", "GPU3"))] == [
        "GPU0 \u00b7 L40S",
        "GPU1 \u00b7 L40S",
        "GPU2 \u00b7 L40S",
        "GPU3 \u00b7 L40S",
    ]


def test_an_override_character_in_a_name_is_drawn_escaped_not_applied():
    """A security review: a host or VM name from vCenter holding U+202E reversed the rest of its label in the
    drawing (pages isolate names with <bdi>; SVG text has no such element)."""
    hw = l40s_host()
    root = parse(render_host_svg(build_fabric(hw), hw, occupancy={"0000:03:00.0": "vm\u202egnp.exe"}))
    labels = texts(root) + [t.text or "" for t in root.iter(f"{SVG}title")]
    assert not any("\u202e" in t for t in labels)
    assert "VM vm\\u202egnp.exe" in texts(root)


# ---------------------------------------------------------------- the text alternative of the drawing


def description(hw, smi=None) -> str:
    fabric = build_fabric(hw, smi=parse_smi_topology(smi) if smi else None)
    return parse(render_host_svg(fabric, hw)).find(f"{SVG}desc").text


def test_the_description_names_the_nvlinked_pairs():
    desc = description(h100_nvl_host(), H100_NVL_SMI)
    assert "NVLink: GPU0 and GPU1 (NV12, 300 GB/s), GPU2 and GPU3 (NV12, 300 GB/s)" in desc
    assert "NVSwitch" not in desc


def test_the_description_names_the_gpus_an_nvswitch_joins():
    desc = description(hgx_h100_host())
    assert "NVSwitch: GPU0, GPU1, GPU2, GPU3, GPU4, GPU5, GPU6, GPU7 all-to-all" in desc
    assert "NVLink:" not in desc


def test_the_description_says_when_no_gpu_is_nvlinked_and_where_the_gpus_sit():
    desc = description(l40s_host())
    assert "No NVLink between these GPUs" in desc
    assert "NUMA node 0: GPU0, GPU1, GPU2" in desc and "NUMA node 1: GPU3" in desc
