"""Per-board form factors (PCIe card with NVLink bridges, HGX baseboard with NVSwitch) and usable memory."""

import json

import pytest

from gpucatalog.catalog import CATALOG_PATH, load_catalog


def test_every_type_code_of_a_board_names_its_card_or_baseboard():
    for board in load_catalog().boards.values():
        codes = [c for f in board.form_factors for c in f.codes]
        assert sorted(codes) == sorted(board.board_codes), board.key


@pytest.mark.parametrize(
    ("code", "nvlink", "domains"),
    [
        ("a100", "bridge", (2,)), ("a100d", "bridge", (2,)), ("h100", "bridge", (2,)), ("h100l", "bridge", (2,)),
        ("a30", "bridge", (2,)), ("h200", "bridge", (2, 4)),  # PCIe cards: bridged pairs, H200 NVL 2- or 4-way
        ("a100x", "nvswitch", (8,)), ("a100dx", "nvswitch", (8,)), ("h100xm", "nvswitch", (8,)),
        ("h200x", "nvswitch", (8,)), ("b200", "nvswitch", (8,)),  # HGX baseboards
        ("l40s", None, ()), ("l4", None, ()),
    ],
)  # fmt: skip
def test_nvlink_domain_sizes(code, nvlink, domains):
    catalog = load_catalog()
    form = catalog.board_for_code(code).form_factor(code)
    assert (form.nvlink, form.nvlink_domain_gpus) == (nvlink, domains)
    assert form.nvswitch == (nvlink == "nvswitch")


def test_b200_comes_only_on_nvswitch_boards():
    assert all(f.nvswitch for f in load_catalog().boards["B200-180GB"].form_factors)


def test_every_new_value_carries_its_source():
    raw = json.loads(CATALOG_PATH.read_text())["boards"]
    for key, board in raw.items():
        assert board["memory_type"] and board["usable_mib"] and board["_usable_mib_source"], key
        assert str(board["usable_mib"]) in board["_usable_mib_source"].replace(",", ""), key
        for form in board["form_factors"]:
            assert form["_source"], (key, form["name"])


def test_hbm_boards_expose_about_their_nominal_size_in_gib():
    """An HBM board's "GB" is GiB-sized (A100 80GB: 81,920 MiB); GDDR boards lose some to ECC (L4: 23,034 MiB)."""
    for board in load_catalog().boards.values():
        gib = board.usable_mib / 1024
        if board.hbm:
            assert abs(gib - board.framebuffer_gb) / board.framebuffer_gb < 0.02, board.key
        else:
            assert board.framebuffer_gb * 1e9 / 2**30 <= gib < board.framebuffer_gb, board.key
