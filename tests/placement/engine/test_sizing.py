"""The sizing helper's suggestions per board."""

from __future__ import annotations

import pytest

from placement.engine.sizing import size_inference


def _by_board() -> dict:
    s = size_inference(70, 2, layers=80, kv_heads=8, head_dim=128, context_len=8192, concurrent_seqs=4)
    return {p.board: p for p in s.proposals}


def test_a_full_profile_keeps_nvlink_only_on_boards_that_have_it():
    by_board = _by_board()
    assert "(full profile, keeps NVLink)" in by_board["H100-80GB"].explain
    assert "(full profile, keeps NVLink)" in by_board["A30-24GB"].explain
    for board in ("L40S-48GB", "L4-24GB"):  # PCIe-only cards: nothing to keep
        assert "NVLink" not in by_board[board].explain, by_board[board].explain
        assert "(full profile)" in by_board[board].explain


def test_whole_gpus_count_what_the_inventory_reports_not_the_nominal_size():
    """187.4 GiB needs 4 H100 NVL: two hold 2 x 93.6 GiB (95,830 MiB each), not 2 x 94."""
    args = (70, 2)
    kw = {"layers": 80, "kv_heads": 8, "head_dim": 128, "context_len": 8192, "concurrent_seqs": 16}
    nominal = {p.board: p for p in size_inference(*args, **kw).proposals}
    assert nominal["H100-94GB"].gpus == 2 and "94 GB nominal, not in the inventory" in nominal["H100-94GB"].explain
    real = size_inference(*args, **kw, usable_gib={"H100-94GB": 95830 / 1024})
    assert real.total_gb == pytest.approx(187.4, abs=0.05)
    nvl = next(p for p in real.proposals if p.board == "H100-94GB")
    assert nvl.gpus == 4 and "4 GPUs (4 x 93.6 GiB usable = 374.3 GiB >= 187.4 GiB)" in nvl.explain
