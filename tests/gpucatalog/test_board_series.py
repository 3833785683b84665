"""Which vGPU series each board runs (NVIDIA's tables): compute boards have C-series types only."""

import pytest

from gpucatalog.catalog import load_catalog
from gpucatalog.profiles import parse_profile_name, series_problem


def test_every_board_names_its_vgpu_series():
    boards = load_catalog().boards
    assert all(b.vgpu_series and set(b.vgpu_series) <= {"A", "B", "C", "Q"} for b in boards.values())
    assert boards["H100-80GB"].vgpu_series == ("C",)
    assert boards["A100-80GB"].vgpu_series == ("C",)
    assert set(boards["L40S-48GB"].vgpu_series) == {"A", "B", "C", "Q"}


@pytest.mark.parametrize("name", ["nvidia_h100xm-80q", "grid_a100d-40q", "grid_a30-24b", "nvidia_h200x-141a"])
def test_a_series_the_board_has_not_is_named_with_what_the_board_offers(name):
    problem = series_problem(parse_profile_name(name))
    assert problem is not None and "C-series (compute) only" in problem and name in problem


@pytest.mark.parametrize("name", ["nvidia_h100xm-80c", "nvidia_h100xm-1-10c", "nvidia_l40s-24q", "nvidia_l4-12b"])
def test_a_series_the_board_runs_is_fine(name):
    assert series_problem(parse_profile_name(name)) is None
