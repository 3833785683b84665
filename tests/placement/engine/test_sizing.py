"""The sizing helper's suggestions per board."""

from __future__ import annotations

import math
import re

import pytest

from placement.engine.sizing import size_inference


def _by_board() -> dict:
    s = size_inference(70, 2, layers=80, kv_heads=8, head_dim=128, context_len=8192, concurrent_seqs=4)
    return {p.board: p for p in s.proposals}


def test_a_full_profile_keeps_nvlink_only_on_boards_that_have_it():
    by_board = _by_board()
    assert "(full profile, NVLink as a device group)" in by_board["H100-80GB"].explain
    assert "(full profile, NVLink as a device group)" in by_board["A30-24GB"].explain
    for board in ("L40S-48GB", "L4-24GB"):  # PCIe-only cards: nothing to keep
        assert "NVLink" not in by_board[board].explain, by_board[board].explain
        assert "(full profile)" in by_board[board].explain


def test_whole_gpus_count_what_the_inventory_reports_not_the_nominal_size():
    """187.4 GiB needs 4 H100 NVL: two hold 2 x 93.6 GiB (95,830 MiB each), not 2 x 94."""
    args = (70, 2)
    kw = {"layers": 80, "kv_heads": 8, "head_dim": 128, "context_len": 8192, "concurrent_seqs": 16}
    nominal = {p.board: p for p in size_inference(*args, **kw).proposals}
    assert nominal["H100-94GB"].gpus == 4, nominal["H100-94GB"].explain  # 94 GB is 87.5 GiB: a lower bound
    assert "4 x 87.5 GiB from 94 GB nominal, not in the inventory = 350.2 GiB" in nominal["H100-94GB"].explain
    real = size_inference(*args, **kw, usable_gib={"H100-94GB": 95830 / 1024})
    assert real.total_gb == pytest.approx(187.4, abs=0.05)
    nvl = next(p for p in real.proposals if p.board == "H100-94GB")
    assert nvl.gpus == 4 and "4 GPUs (4 x 93.6 GiB usable = 374.3 GiB >= 187.4 GiB)" in nvl.explain


def _long_context_70b() -> dict:
    s = size_inference(70, 2, layers=80, kv_heads=8, head_dim=128, context_len=8192, concurrent_seqs=16)
    assert s.total_gb == pytest.approx(187.4, abs=0.05)
    return {p.board: p for p in s.proposals}


def test_boards_not_in_the_inventory_count_their_nominal_gb_as_gib():
    """8 L4 (24 GB = 22.4 GiB; a real one reports 22.5) do not hold 187.4 GiB, nor 8 x 24 GB = 192 GB read as GiB."""
    by_board = _long_context_70b()
    l4 = by_board["L4-24GB"]
    assert l4.gpus == 0 and l4.explain == (
        "L4-24GB: 187.4 GiB exceeds 8 GPUs (each 22.4 GiB from 24 GB nominal, not in the inventory)"
    )
    l40s = by_board["L40S-48GB"]  # 4 x 48 GB = 192 GB but 4 x 44.7 GiB = 178.8 GiB: 8 of them
    assert l40s.gpus == 8 and "8 x 44.7 GiB from 48 GB nominal, not in the inventory = 357.6 GiB >= 187.4 GiB" in (
        l40s.explain
    )


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
