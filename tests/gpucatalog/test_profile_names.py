import json

import pytest

from gpucatalog.catalog import CATALOG_PATH, load_catalog
from gpucatalog.profiles import ProfileNameError, parse_device_group_name, parse_profile_name


def catalog_examples() -> list[str]:
    raw = json.loads(CATALOG_PATH.read_text())
    return [example.split(" ")[0] for example in raw["profile_name_examples"]]


@pytest.mark.parametrize("name", catalog_examples())
def test_every_catalog_example_parses(name):
    parsed = parse_profile_name(name)
    assert parsed.name == name
    assert parsed.framebuffer_gb > 0


@pytest.mark.parametrize(
    ("name", "board", "gb", "series", "mig"),
    [
        ("grid_a100-40c", "A100-40GB", 40, "C", None),
        ("grid_a100-4c", "A100-40GB", 4, "C", None),
        ("grid_a100d-80c", "A100-80GB", 80, "C", None),
        ("nvidia_h100xm-80c", "H100-80GB", 80, "C", None),
        ("grid_a100-3-20c", "A100-40GB", 20, "C", "3g.20gb"),
        ("nvidia_h100xm-1-10c", "H100-80GB", 10, "C", "1g.10gb"),
        ("nvidia_h100l-47c", "H100-94GB", 47, "C", None),
        ("nvidia_l40s-24c", "L40S-48GB", 24, "C", None),
        ("grid_t4-16q", None, 16, "Q", None),
    ],
)
def test_profile_fields(name, board, gb, series, mig):
    parsed = parse_profile_name(name)
    assert (parsed.board.key if parsed.board else None) == board
    assert parsed.framebuffer_gb == gb
    assert parsed.series == series
    assert (parsed.mig_profile.name if parsed.mig_profile else None) == mig
    assert parsed.is_mig == (mig is not None)


def test_full_framebuffer_is_the_only_nvlink_capable_vgpu():
    assert parse_profile_name("grid_a100d-80c").is_full_framebuffer
    assert not parse_profile_name("grid_a100d-40c").is_full_framebuffer
    assert not parse_profile_name("grid_a100d-7-80c").is_full_framebuffer


def test_every_catalog_profile_round_trips():
    catalog = load_catalog()
    for board in catalog.boards.values():
        code = board.board_codes[0]
        for gb in board.timesliced:
            assert parse_profile_name(f"nvidia_{code}-{gb}c").framebuffer_gb == gb
        if board.mig:
            for mig in board.mig.profiles:
                if mig.media_extensions:
                    continue
                parsed = parse_profile_name(f"nvidia_{code}-{mig.compute_slices}-{mig.memory_gb}c")
                assert parsed.mig_profile == mig


@pytest.mark.reliability("parsers", "profile names: malformed or contradicting the catalog")
@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("a100-20c", "does not match"),
        ("grid_a100d-20", "does not match"),
        ("grid_a100d-20x", "unknown series"),
        ("vmware_a100d-20c", "does not match"),
        ("grid_a100d-12-20c", "does not match"),
        ("grid_a100d-30c", "no 30C time-sliced profile"),
        ("grid_a100d-160c", "exceeds the A100-80GB framebuffer"),
        ("grid_a100d-3-20c", "no MIG profile 3g.20gb on A100-80GB"),
        ("nvidia_l40s-1-12c", "does not support MIG"),
        ("grid_a100d-0c", "positive"),
    ],
)
def test_malformed_names_are_rejected_with_a_reason(name, fragment):
    with pytest.raises(ProfileNameError, match=fragment):
        parse_profile_name(name)


@pytest.mark.reliability("parsers", "device-group names: malformed")
def test_device_group_name():
    group = parse_device_group_name("Nvidia:2@grid_a100d-80c%NVLink")
    assert (group.vendor, group.count, group.link) == ("Nvidia", 2, "NVLink")
    assert group.profile.board.key == "A100-80GB"
    with pytest.raises(ProfileNameError, match="count 0"):
        parse_device_group_name("Nvidia:0@grid_a100d-80c")
    with pytest.raises(ProfileNameError, match="does not match"):
        parse_device_group_name("2 x grid_a100d-80c")
