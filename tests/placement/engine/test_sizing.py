"""The sizing helper's suggestions per board."""

from __future__ import annotations

import math
import re
from dataclasses import replace

import pytest

from gpucatalog.catalog import load_catalog
from placement.engine.sizing import InventoryBoard, size_inference


def _by_board() -> dict:
    s = size_inference(70, 2, layers=80, kv_heads=8, head_dim=128, context_len=8192, concurrent_seqs=4)
    return {p.board: p for p in s.proposals}


def test_a_full_profile_keeps_nvlink_only_on_boards_that_have_it():
    by_board = _by_board()
    # 4 H100 (187.4 GiB): on the HGX baseboard one Fabric Manager partition; the PCIe card's bridge joins pairs only
    h100 = _long_context_70b()["H100-80GB"].explain
    assert "On the HGX H100 (SXM5): 4 x grid_h100xm-80c (full profile, NVLink as a device group" in h100
    assert (
        "on the H100 PCIe: passthrough or 4 x grid_h100-80c (full profile); NVLink on the H100 PCIe joins pairs" in h100
    )
    for board in ("L40S-48GB", "L4-24GB"):  # PCIe-only cards: nothing to keep
        assert "NVLink" not in by_board[board].explain, by_board[board].explain
        assert "(full profile)" in by_board[board].explain
        assert not by_board[board].device_group


def test_gpus_beyond_one_nvlink_domain_are_no_device_group():
    """Trial E finding 4: "8 x grid_a30-24c (full profile, NVLink as a device group)" on cards bridged in pairs."""
    a30 = _by_board()["A30-24GB"]
    assert a30.gpus == 8 and not a30.device_group and a30.passthrough
    assert a30.explain.endswith(
        "passthrough or 8 x grid_a30-24c (full profile); NVLink on the A30 joins pairs only, "
        "so the 8 GPUs talk over PCIe between pairs"
    ), a30.explain
    assert "device group" not in a30.explain
    two = {p.board: p for p in size_inference(30, 1, 80, 8, 128, 8192, 1).proposals}["A30-24GB"]  # a bridged pair
    assert two.gpus == 2 and two.device_group and "(full profile, NVLink as a device group)" in two.explain


def test_h200_nvl_keeps_nvlink_for_four_only_with_the_four_way_bridge():
    s = size_inference(70.6, 1, 80, 8, 128, 131072, 8)  # 424.3 GiB: 4 H200
    h200 = {p.board: p for p in s.proposals}["H200-141GB"]
    assert h200.gpus == 4
    assert "4 x grid_h200-141c (full profile, NVLink as a device group where a 4-way bridge joins them)" in h200.explain


HGX = InventoryBoard(
    usable_gib=81559 / 1024,
    nvswitch=True,
    profiles={80: "nvidia_h100xm-80c", 40: "nvidia_h100xm-40c", 20: "nvidia_h100xm-20c"},
    nvlinked=8,
)


def test_inventory_nvswitch_gpus_get_time_sliced_vgpu_spelled_as_their_hosts_offer_it():
    """Trial E finding 4: "passthrough or 2 x grid_h100-80c" for the inventory's HGX H100s, both refused by plan."""
    s = size_inference(70.6, 2, 80, 8, 128, 8192, 1, inventory={"H100-80GB": HGX})
    h100 = {p.board: p for p in s.proposals}["H100-80GB"]
    assert (h100.gpus, h100.profile, h100.passthrough, h100.device_group) == (2, "nvidia_h100xm-80c", False, True)
    assert h100.explain == (
        "H100-80GB: 2 GPUs (2 x 79.6 GiB usable = 159.3 GiB >= 147.4 GiB): 2 x nvidia_h100xm-80c (full profile, NVLink "
        "as a device group: one Fabric Manager partition); no passthrough: an NVSwitch (HGX) board, where vSphere "
        "allows time-sliced vGPU only"
    )
    one = {p.board: p for p in size_inference(30, 1, 80, 8, 128, 8192, 1, inventory={"H100-80GB": HGX}).proposals}
    assert one["H100-80GB"].profile == "nvidia_h100xm-40c" and not one["H100-80GB"].passthrough
    assert "no passthrough" in one["H100-80GB"].explain


def test_inventory_pcie_cards_keep_nvlink_only_where_the_inventory_knows_a_pair():
    bridged = InventoryBoard(usable_gib=80.0, profiles={80: "grid_a100d-80c"}, nvlinked=2)
    unknown = InventoryBoard(usable_gib=80.0, profiles={80: "grid_a100d-80c"})
    args = (70.6, 2, 80, 8, 128, 8192, 1)
    known = {p.board: p for p in size_inference(*args, inventory={"A100-80GB": bridged}).proposals}["A100-80GB"]
    assert known.device_group and known.explain.endswith("passthrough or 2 x grid_a100d-80c (full profile, NVLink as "
                                                          "a device group)")  # fmt: skip
    alone = {p.board: p for p in size_inference(*args, inventory={"A100-80GB": unknown}).proposals}["A100-80GB"]
    assert not alone.device_group
    assert alone.explain.endswith("the inventory knows no NVLinked pair of these GPUs: without one they talk over PCIe")
    # the A100 PCIe's type, not the HGX one, and said when no host offers it
    offered_none = InventoryBoard(usable_gib=80.0)
    p = {p.board: p for p in size_inference(*args, inventory={"A100-80GB": offered_none}).proposals}["A100-80GB"]
    assert "2 x grid_a100d-80c (full profile; no host of the inventory offers it now)" in p.explain


def test_b200_is_never_proposed_as_passthrough():
    for args in ((65, 2, 80, 8, 128, 4096, 1), (70.6, 1, 80, 8, 128, 131072, 8)):
        b200 = {p.board: p for p in size_inference(*args).proposals}["B200-180GB"]
        assert not b200.passthrough and "no passthrough" in b200.explain
        assert "passthrough or" not in b200.explain


def test_whole_gpus_count_what_the_inventory_reports_not_the_nominal_size():
    """187.4 GiB needs 4 H100 NVL: two hold 2 x 93.6 GiB (95,830 MiB each), not 2 x 94."""
    args = (70, 2)
    kw = {"layers": 80, "kv_heads": 8, "head_dim": 128, "context_len": 8192, "concurrent_seqs": 16}
    catalog_only = {p.board: p for p in size_inference(*args, **kw).proposals}
    assert catalog_only["H100-94GB"].gpus == 4, catalog_only["H100-94GB"].explain
    assert "4 x 93.6 GiB, the 95,830 MiB nvidia-smi reports for it, not in the inventory = 374.3 GiB" in (
        catalog_only["H100-94GB"].explain
    )
    real = size_inference(*args, **kw, usable_gib={"H100-94GB": 95830 / 1024})
    assert real.total_gb == pytest.approx(187.4, abs=0.05)
    nvl = next(p for p in real.proposals if p.board == "H100-94GB")
    assert nvl.gpus == 4 and "4 GPUs (4 x 93.6 GiB usable = 374.3 GiB >= 187.4 GiB)" in nvl.explain
    inventory = size_inference(*args, **kw, inventory={"H100-94GB": InventoryBoard(usable_gib=95830 / 1024)})
    from_inventory = next(p for p in inventory.proposals if p.board == "H100-94GB")
    assert from_inventory.gpus == 4 and "4 GPUs (4 x 93.6 GiB usable = 374.3 GiB" in from_inventory.explain


def _long_context_70b() -> dict:
    s = size_inference(70, 2, layers=80, kv_heads=8, head_dim=128, context_len=8192, concurrent_seqs=16)
    assert s.total_gb == pytest.approx(187.4, abs=0.05)
    return {p.board: p for p in s.proposals}


def test_boards_not_in_the_inventory_count_what_nvidia_smi_reports_for_them():
    """8 L4 (23,034 MiB = 22.5 GiB each) do not hold 187.4 GiB, nor 8 x 24 GB = 192 GB read as GiB."""
    by_board = _long_context_70b()
    l4 = by_board["L4-24GB"]
    assert l4.gpus == 0 and l4.explain == (
        "L4-24GB: 187.4 GiB exceeds 8 GPUs (each 22.5 GiB, the 23,034 MiB nvidia-smi reports for it, not in the "
        "inventory)"
    )
    l40s = by_board["L40S-48GB"]  # 4 x 48 GB = 192 GB but 4 x 45.0 GiB = 180.0 GiB: 8 of them
    assert l40s.gpus == 8 and "8 x 45.0 GiB, the 46,068 MiB nvidia-smi reports for it, not in the inventory = " in (
        l40s.explain
    )


def test_an_hbm_board_is_not_read_as_smaller_than_it_is():
    """Trial E finding 5: "H200-141GB: 2 GPUs (2 x 131.3 GiB from 141 GB nominal)" for 134.6 GiB: an H200 reports
    143,771 MiB (140.4 GiB), so one holds it, with no tensor parallelism."""
    s = size_inference(65, 2, layers=80, kv_heads=8, head_dim=128, context_len=4096, concurrent_seqs=1)
    assert s.total_gb == pytest.approx(134.6, abs=0.05)
    by_board = {p.board: p for p in s.proposals}
    assert by_board["H200-141GB"].gpus == 1
    assert "H200-141GB: 1 GPU (140.4 GiB, the 143,771 MiB nvidia-smi reports for it" in by_board["H200-141GB"].explain
    assert "4 x 39.6 GiB" in by_board["A100-40GB"].explain  # 40,536 MiB, not 37.3 GiB
    assert "179.1 GiB" in by_board["B200-180GB"].explain  # 183,359 MiB, not 167.6 GiB


def _without_usable_mib(key: str):
    catalog = load_catalog()
    boards = {**catalog.boards, key: replace(catalog.boards[key], usable_mib=None)}
    return replace(catalog, boards=boards)


def test_without_a_figure_an_hbm_board_reads_gb_as_gib_and_a_gddr_board_as_a_lower_bound():
    s = size_inference(65, 2, 80, 8, 128, 4096, 1, catalog=_without_usable_mib("H200-141GB"))
    h200 = {p.board: p for p in s.proposals}["H200-141GB"]
    assert h200.gpus == 1 and "141.0 GiB from 141 GB nominal read as GiB (HBM), not in the inventory" in h200.explain
    s = size_inference(65, 2, 80, 8, 128, 4096, 1, catalog=_without_usable_mib("L4-24GB"))
    l4 = {p.board: p for p in s.proposals}["L4-24GB"]
    assert "22.4 GiB from 24 GB nominal read as 10^9 bytes, a lower bound (GDDR loses some to ECC)" in l4.explain


def test_every_capacity_is_said_in_gib():
    """ "GB" only ever names a board's nominal size; every capacity, sum and total compared is GiB."""
    for p in _long_context_70b().values():
        assert not re.search(r"\d GB(?! nominal)", p.explain), p.explain
        for amount in re.findall(r"= ([\d.]+ \w+) >=", p.explain):
            assert amount.endswith("GiB"), p.explain


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("name", ["params_b", "bytes_per_param", "kv_bytes", "overhead_frac"])
def test_non_finite_numbers_are_refused_by_name(name, value):
    kw = {"params_b": 70, "bytes_per_param": 2, "layers": 80, "kv_heads": 8, "head_dim": 128, "context_len": 8192,
          "concurrent_seqs": 1, "kv_bytes": 2, "overhead_frac": 0.1}  # fmt: skip
    with pytest.raises(ValueError, match=f"^{name} must be a finite number, got {value}$"):
        size_inference(**{**kw, name: value})


def test_numbers_beyond_any_deployment_are_refused_not_sized_to_inf():
    with pytest.raises(ValueError, match=r"^params_b must be at most 100,000, got 1e\+308$"):
        size_inference(1e308, 2, 80, 8, 128, 8192, 1)
    with pytest.raises(ValueError, match=r"^layers must be at most 10,000"):
        size_inference(70, 2, 999_999_999_999, 8, 128, 8192, 1)
