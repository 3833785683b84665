"""The what-if's catalog when none is given (``simulate_model.default_catalog``): it suits the board and mode."""

from __future__ import annotations

import pytest

from gpucatalog.catalog import load_catalog
from placement.engine.simulate_model import MODES, SimulationError, default_catalog, parse_offers


@pytest.mark.parametrize(
    ("board", "mode", "gpus", "catalog"),
    [
        ("A100-80GB", "mixed", 1, ["8C", "10C", "20C"]),  # what hypothetical hosts always ran
        ("H100-80GB", "same", 1, ["8C", "10C", "20C"]),
        ("A100-40GB", "mixed", 1, ["4C", "5C", "10C"]),  # a tenth, an eighth, a quarter of 40 GB
        ("H200-141GB", "same", 1, ["14C", "17C", "35C"]),  # the nearest sizes it has
        ("L40S-48GB", "mixed", 1, ["4C", "6C", "12C"]),
        ("A30-24GB", "same", 1, ["4C", "6C"]),  # two fractions fall on one size: listed once
        ("H100-80GB", "mig", 1, ["3g.40gb", "2g.20gb", "1g.10gb"]),
        ("A30-24GB", "mig", 1, ["2g.12gb", "1g.6gb"]),  # no 3g on an A30
        ("H100-80GB", "passthrough", 1, ["1"]),
        ("H100-80GB", "passthrough", 2, ["1", "2"]),
        ("H100-80GB", "passthrough", 6, ["1", "2", "4"]),
        ("H100-80GB", "passthrough", 16, ["1", "2", "4", "8"]),
    ],
)
def test_the_default_catalog_suits_the_board_and_mode(board, mode, gpus, catalog):
    assert default_catalog(board, mode, gpus) == catalog


def test_every_default_catalog_parses_on_its_board():
    for key in load_catalog().boards:
        for mode in MODES:
            try:
                tokens = default_catalog(key, mode, 8)
            except SimulationError as exc:  # the board cannot run the mode: said on board or mode
                assert exc.field in ("board", "mode"), (key, mode, exc)
                continue
            offers = parse_offers(key, mode, tokens, None, 8)
            assert len(offers) == len(tokens) >= 1, (key, mode)


@pytest.mark.parametrize(
    ("board", "mode", "field", "text"),
    [
        ("L40S-48GB", "mig", "board", "L40S-48GB does not support MIG"),
        ("B200-180GB", "same", "board", "B200-180GB has no time-sliced vGPU profiles in the catalog"),
        ("H200-141GB", "mixed", "mode", "H200-141GB has no published mixed-size placement IDs"),
    ],
)
def test_a_board_that_cannot_run_the_mode_is_refused_on_that_field(board, mode, field, text):
    with pytest.raises(SimulationError) as exc:
        default_catalog(board, mode, 1)
    assert (exc.value.field, exc.value.message) == (field, text)


@pytest.mark.parametrize(
    ("board", "mode", "gpus", "weights", "listed"),
    [
        ("A100-80GB", "mixed", 1, [1, 2], "mixed-size mode on A100-80GB has 3 entries (8C,10C,20C), got 2 weights"),
        ("H100-80GB", "mig", 1, [1], "MIG mode on H100-80GB has 3 entries (3g.40gb,2g.20gb,1g.10gb), got 1 weight"),
        ("A100-80GB", "passthrough", 4, [1, 1], "passthrough mode on A100-80GB has 3 entries (1,2,4), got 2 weights"),
    ],
)
def test_weights_without_a_catalog_are_counted_against_the_default_catalog_by_name(board, mode, gpus, weights,
                                                                                   listed):  # fmt: skip
    """Trial finding: "give one weight per catalog entry (3), got 2" when no catalog was given: the user never
    saw the catalog the weights had to match."""
    with pytest.raises(SimulationError) as exc:
        parse_offers(board, mode, default_catalog(board, mode, gpus), weights, gpus, catalog_given=False)
    assert exc.value.field == "weights"
    assert exc.value.message.startswith("give one weight per catalog entry: no catalog was given, and the default ")
    assert listed in exc.value.message
    assert exc.value.message.endswith("weights in that order, or give the catalog")
    # a given catalog keeps the short message
    with pytest.raises(SimulationError) as exc:
        parse_offers(board, mode, default_catalog(board, mode, gpus), weights, gpus)
    assert exc.value.message.startswith("give one weight per catalog entry (3), got ")
