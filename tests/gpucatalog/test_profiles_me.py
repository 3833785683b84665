"""MIG-backed vGPU types with media extensions (NVIDIA's "ME" suffix: A100D-1-10CME, A30-1-6CME ...): vSphere spells
them grid_a100d-1-10cme; they are the catalog's "+me" MIG profiles."""

import pytest

from gpucatalog.catalog import load_catalog
from gpucatalog.profiles import ProfileNameError, parse_profile_name


@pytest.mark.parametrize(
    ("name", "board", "mig"),
    [
        ("grid_a100d-1-10cme", "A100-80GB", "1g.10gb+me"),
        ("grid_a100-1-5cme", "A100-40GB", "1g.5gb+me"),
        ("nvidia_h100xm-1-10cme", "H100-80GB", "1g.10gb+me"),
        ("grid_a30-1-6cme", "A30-24GB", "1g.6gb+me"),
        ("grid_a30-2-12cme", "A30-24GB", "2g.12gb+me"),
    ],
)
def test_me_types_are_mig_backed_with_the_plus_me_geometry(name, board, mig):
    parsed = parse_profile_name(name)
    assert parsed.board.key == board
    assert parsed.is_mig and parsed.media_extensions
    assert parsed.series == "C"
    assert parsed.mig_profile.name == mig and parsed.mig_profile.media_extensions
    assert parsed.name == name  # printed back as vSphere spells it
    assert not parsed.is_full_framebuffer


def test_the_plain_type_is_not_the_me_type():
    plain, me = parse_profile_name("grid_a30-1-6c"), parse_profile_name("grid_a30-1-6cme")
    assert plain.mig_profile.name == "1g.6gb" and not plain.media_extensions
    assert me.mig_profile.name == "1g.6gb+me"


def test_every_catalog_me_profile_round_trips():
    seen = 0
    for board in load_catalog().boards.values():
        for p in board.mig.profiles if board.mig else ():
            if p.media_extensions:
                name = f"nvidia_{board.board_codes[0]}-{p.compute_slices}-{p.memory_gb}cme"
                assert parse_profile_name(name).mig_profile == p
                seen += 1
    assert seen >= 7  # A100 40/80, H100 80/94, H200, B200 1g+me; A30 1g and 2g+me


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        (
            "grid_a100d-2-20cme",
            r"no MIG profile 2g\.20gb\+me on A100-80GB \(known with media extensions: 1g\.10gb\+me\)",
        ),
        ("grid_a100d-10cme", "media extensions .ME. exist only on MIG-backed C-series types"),
        ("grid_a30-1-6qme", "media extensions .ME. exist only on MIG-backed C-series types"),
        ("nvidia_l40s-1-12cme", "does not support MIG"),
        ("grid_a100d-1-10me", "unknown series 'me'"),
        ("grid_a100d-1-10cmex", "unknown series 'cmex'"),
    ],
)
def test_me_names_the_catalog_lacks_are_refused_with_a_reason(name, fragment):
    with pytest.raises(ProfileNameError, match=fragment):
        parse_profile_name(name)
