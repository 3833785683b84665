"""Fuzzing the `nvidia-smi topo -m` and `--query-gpu` CSV parsers: a result or SmiParseError, nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import example, given

from inventory.topology.smi import SmiParseError, parse_gpu_query_csv, parse_smi_topology
from tests.captures import NVL_CAPTURE
from tests.mutations import FUZZ_SETTINGS, no_hang, texts

SAMPLES = Path(__file__).resolve().parents[2] / "data" / "topo"
TOPO = [p.read_text() for p in sorted(SAMPLES.glob("*.txt"))] + [NVL_CAPTURE]
CSV = [
    "index, pci.bus_id, module_id\n0, 00000000:18:00.0, 1\n1, 00000000:2A:00.0, 2\n",
    "0, 00000000:3B:00.0\n1, 00000000:5E:00.0\n",
]


def test_the_seeds_are_the_real_captures():
    assert len(TOPO) == 6
    for text in TOPO:
        assert parse_smi_topology(text).gpus


@pytest.mark.reliability("parsers", "topo -m: mutated captures and arbitrary text (Hypothesis)")
@FUZZ_SETTINGS
@given(texts(TOPO))
@example(NVL_CAPTURE.replace("\t0\n", "\t\u00b2\n", 1))  # a digit to str.isdigit, not to int()
@example(NVL_CAPTURE.replace("GPU3\tSYS", "GPU3\t" + "9" * 5000, 1))
def test_topology_parser_raises_only_its_own_error(text):
    with no_hang():
        try:
            topology = parse_smi_topology(text)
        except SmiParseError as exc:
            assert str(exc)
            return
    assert topology.gpus
    assert all(link.a < link.b and link.gbps > 0 for link in topology.links)


@pytest.mark.reliability("parsers", "query-gpu CSV: mutated captures and arbitrary text (Hypothesis)")
@FUZZ_SETTINGS
@given(texts(CSV))
@example("\u00b2,00000000:3B:00.0\n")
@example("0,00000000:3B:00.0,\u00b2\n")
def test_csv_parser_raises_only_its_own_error(text):
    with no_hang():
        try:
            gpus = parse_gpu_query_csv(text)
        except SmiParseError as exc:
            assert str(exc)
            return
    assert [g.index for g in gpus] == sorted({g.index for g in gpus})


# Found by the fuzz tests above: numbers that str.isdigit() accepts and int() refuses (superscripts, more than
# 4,300 digits) escaped as a bare ValueError instead of a warning or an SmiParseError naming the line.
@pytest.mark.reliability("parsers", "topo -m: numbers int() refuses (found by fuzzing)")
@pytest.mark.parametrize("numa", ["\u00b2", "9" * 5000])
def test_numa_affinity_that_is_not_a_number_is_a_warning(numa):
    topology = parse_smi_topology(NVL_CAPTURE.replace("\t0-55\t0\n", f"\t0-55\t{numa}\n", 1))
    assert topology.gpus[0].numa_node is None
    warnings = [w for w in topology.warnings if w.startswith("line 2: GPU0 NUMA Affinity")]
    assert len(warnings) == 1 and "is not a single node number; left unknown" in warnings[0]


@pytest.mark.reliability("parsers", "query-gpu CSV: numbers int() refuses (found by fuzzing)")
@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0, 00000000:3B:00.0\n\u00b20, 00000000:5E:00.0\n", "line 2: index '\u00b20' is not a number"),
        ("0, 00000000:3B:00.0, \u00b2\n", "line 1: module_id '\u00b2' is not a number or [N/A]"),
        (f"{'9' * 5000}, 00000000:3B:00.0\n", "line 1: index '999"),
    ],
)
def test_csv_numbers_int_refuses_are_parse_errors(text, message):
    with pytest.raises(SmiParseError) as info:
        parse_gpu_query_csv(text)
    assert str(info.value).startswith(message)
