"""The sizing helper's suggestions per board."""

from __future__ import annotations

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
