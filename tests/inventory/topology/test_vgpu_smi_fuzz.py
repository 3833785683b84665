"""Fuzzing the `nvidia-smi vgpu -q` and `mig -lgi` parsers: a result or SmiParseError, nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import example, given

from inventory.topology.smi import SmiParseError
from inventory.topology.vgpu_smi import parse_mig_lgi, parse_vgpu_query
from tests.mutations import FUZZ_SETTINGS, no_hang, texts

SAMPLES = Path(__file__).resolve().parents[2] / "data" / "smi"
VGPU_Q = [(SAMPLES / "vgpu-q-rtxpro6000-bigstack-cube-cos-api.txt").read_text()]
MIG_LGI = [p.read_text() for p in sorted(SAMPLES.glob("mig-lgi-*.txt"))]


def test_the_seeds_are_the_real_captures():
    assert parse_vgpu_query(VGPU_Q[0])
    assert len(MIG_LGI) == 2 and all(parse_mig_lgi(text) for text in MIG_LGI)


@pytest.mark.reliability("parsers", "vgpu -q: mutated captures and arbitrary text (Hypothesis)")
@FUZZ_SETTINGS
@given(texts(VGPU_Q))
@example(VGPU_Q[0].replace("Active vGPUs                          : 2", "Active vGPUs : \u00b2", 1))
@example("GPU 00000000:3B:00.0\n    vGPU ID : 1\n        VM Name : a\n        Placement ID : " + "9" * 5000 + "\n")
def test_vgpu_query_parser_raises_only_its_own_error(text):
    with no_hang():
        try:
            vgpus = parse_vgpu_query(text)
        except SmiParseError as exc:
            assert str(exc)
            return
    assert all(v.vm_name and v.gpu_pci_id for v in vgpus)


@pytest.mark.reliability("parsers", "mig -lgi: mutated captures and arbitrary text (Hypothesis)")
@FUZZ_SETTINGS
@given(texts(MIG_LGI))
@example("|   0  MIG 1g.6gb          14        3          0:" + "9" * 5000 + "     |\n")
def test_mig_lgi_parser_raises_only_its_own_error(text):
    with no_hang():
        try:
            instances = parse_mig_lgi(text)
        except SmiParseError as exc:
            assert str(exc)
            return
    assert all(gi.size > 0 for gi in instances)


VGPU_HEAD = "GPU 00000000:3B:00.0\n  vGPU ID : 1\n    VM Name : a\n"


# Found by the fuzz tests above: numbers of more than 4,300 digits (int() refuses them) escaped as a bare
# ValueError instead of an SmiParseError naming the line.
@pytest.mark.reliability("parsers", "vgpu -q and mig -lgi: numbers int() refuses (found by fuzzing)")
@pytest.mark.parametrize(
    ("parser", "text", "line", "message"),
    [
        (parse_mig_lgi, "|   0  MIG 1g.6gb          14        3          0:" + "9" * 5000 + "     |\n", 1, "not a GPU"),
        (parse_vgpu_query, VGPU_HEAD + "    Placement ID : \u00b2\n", 4, "Placement ID must be a whole number"),
        (parse_vgpu_query, "GPU 00000000:3B:00.0\n  Active vGPUs : " + "9" * 5000 + "\n", 2, "Active vGPUs"),
    ],
)
def test_numbers_int_refuses_are_parse_errors(parser, text, line, message):
    with pytest.raises(SmiParseError, match=message) as info:
        parser(text)
    assert info.value.line == line
