"""Fuzzing the vGPU profile-name and device-group-name parsers: a result or ProfileNameError, nothing else."""

from __future__ import annotations

import json

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from gpucatalog.catalog import CATALOG_PATH
from gpucatalog.profiles import ProfileNameError, parse_device_group_name, parse_profile_name
from tests.mutations import FUZZ_SETTINGS, TOKENS, mutated_text, no_hang

# The catalog's own examples of real names (gpucatalog/data), the starting points of the mutations.
SEEDS = [example.split(" ")[0] for example in json.loads(CATALOG_PATH.read_text())["profile_name_examples"]]
GROUPS = ["Nvidia:2@grid_a100d-80c%NVLink", "Nvidia:4@nvidia_h100xm-80c", "Nvidia:1@grid_a100d-20c%PCIe"]
NAMES = st.one_of(
    mutated_text(SEEDS),
    mutated_text(SEEDS),
    st.text(max_size=40),
    st.from_regex(r"(grid|nvidia)_[a-z0-9]{1,8}-([0-9]{1,3}-)?[0-9]{1,6}[a-z]{1,2}", fullmatch=True),
    st.lists(st.sampled_from(TOKENS), max_size=4).map("-".join),
)


@pytest.mark.reliability("parsers", "profile names: mutated and arbitrary (Hypothesis)")
@FUZZ_SETTINGS
@given(NAMES)
@example("grid_a100d-\u0663c")  # an Arabic-Indic digit: \d matches it
@example("nvidia_h100xm-\u00b2-10c")
@example("grid_a100d-" + "9" * 5000 + "c")
def test_profile_name_parser_raises_only_its_own_error(name):
    with no_hang():
        try:
            profile = parse_profile_name(name)
        except ProfileNameError as exc:
            assert str(exc)
            return
    assert profile.framebuffer_gb > 0 and profile.series in "CQBA"


@pytest.mark.reliability("parsers", "device-group names: mutated and arbitrary (Hypothesis)")
@FUZZ_SETTINGS
@given(st.one_of(mutated_text(GROUPS), st.text(max_size=40)))
@example("Nvidia:" + "9" * 5000 + "@grid_a100d-80c")
@example("Nvidia:\u0662@grid_a100d-80c")
def test_device_group_parser_raises_only_its_own_error(name):
    with no_hang():
        try:
            group = parse_device_group_name(name)
        except ProfileNameError as exc:
            assert str(exc)
            return
    assert 1 <= group.count <= 16


# Found by the fuzz tests above: digits of other scripts were read as numbers (\d), and numbers of more than
# 4,300 digits escaped as a bare ValueError from int().
@pytest.mark.reliability("parsers", "profile and device-group names: numbers int() refuses (found by fuzzing)")
@pytest.mark.parametrize(
    ("parse", "name", "message"),
    [
        (parse_profile_name, "grid_a100d-\u0662\u0660c", "does not match"),
        (parse_profile_name, "nvidia_h100xm-\u0663-40c", "does not match"),
        (parse_profile_name, "grid_a100d-" + "9" * 5000 + "c", "a framebuffer of 5000 digits is out of range"),
        (parse_device_group_name, "Nvidia:" + "9" * 5000 + "@grid_a100d-80c", "count 999999999999 is outside 1..16"),
        (parse_device_group_name, "Nvidia:\u0662@grid_a100d-80c", "does not match"),
    ],
)
def test_numbers_int_refuses_are_profile_name_errors(parse, name, message):
    with pytest.raises(ProfileNameError, match=message):
        parse(name)
