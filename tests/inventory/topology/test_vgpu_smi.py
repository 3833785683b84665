"""nvidia-smi vgpu -q and mig -lgi parsers: real captures, line-numbered errors, only their own error type."""

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inventory.topology.smi import SmiParseError
from inventory.topology.vgpu_smi import parse_mig_lgi, parse_vgpu_query, sbdf

SAMPLES = Path(__file__).resolve().parents[2] / "data" / "smi"


def test_real_vgpu_query_gives_vm_placement_and_size():
    vgpus = parse_vgpu_query((SAMPLES / "vgpu-q-rtxpro6000-bigstack-cube-cos-api.txt").read_text())
    assert [(v.gpu_pci_id, v.vm_name, v.placement_id, v.gpu_instance_id, v.framebuffer_mib) for v in vgpus] == [
        ("0001:c8:00.0", "instance-00000004", 0, None, 3072),
        ("0001:c8:00.0", "instance-00000005", 3, None, 3072),
    ]
    assert vgpus[0].vgpu_name.endswith("DC-3Q")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("mig-lgi-a100-40gb-ssup2.txt", [("1g.5gb", 9, 6, 1), ("2g.10gb", 3, 4, 2), ("4g.20gb", 2, 0, 4)]),
        ("mig-lgi-a30-summer-lo.txt", [("1g.6gb", i + 3, i, 1) for i in range(4)]),
    ],
)
def test_real_mig_lgi_gives_instance_starts(name, expected):
    instances = parse_mig_lgi((SAMPLES / name).read_text())
    assert [(g.profile, g.instance_id, g.start, g.size) for g in instances] == expected
    assert {g.gpu_index for g in instances} == {0}


@pytest.mark.reliability("parsers", "PCI bus ids in nvidia-smi form")
def test_sbdf_turns_the_driver_domain_into_vsphere_form():
    assert sbdf("00000000", "3B", "00", "0") == "0000:3b:00.0"
    with pytest.raises(ValueError, match="16 bits"):
        sbdf("00010000", "3b", "00", "0")


VGPU = """GPU 00000000:41:00.0
    Active vGPUs                          : 1
    vGPU ID                               : 3251634891
        VM Name                           : chat-a
        vGPU Name                         : GRID A100D-10C
        GPU Instance ID                   : N/A
        Placement ID                      : {placement}
        FB Memory Usage
            Total                         : 10240 MiB
"""


@pytest.mark.reliability("parsers", "vgpu -q: malformed")
@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("", None, "empty"),
        ("hello world\n", 1, "expected a 'GPU 00000000:3B:00.0' line"),
        (VGPU.format(placement="twenty"), 7, "Placement ID must be a whole number"),
        (VGPU.format(placement=0).replace(" " * 8 + "VM Name" + " " * 27 + ": chat-a\n", ""), 3, "no 'VM Name'"),
        (VGPU.format(placement=0).replace("10240 MiB", "10 GB"), 9, "'N MiB'"),
        (VGPU.format(placement=0) + "garbage without a colon here!\n", 10, "not a 'Name : value' line"),
        # words at the vGPU ID's level or above are no sub-section: they hid the VM Name under them (trial G #8)
        (
            VGPU.format(placement=0).replace("        VM Name", "  garbage line here\n        VM Name"),
            4,
            "not a 'Name : value' line",
        ),
        ("GPU 00000000:41:00.0\n\x00\n", 2, "control characters"),
    ],
)
def test_vgpu_query_errors_name_the_line(text, line, message):
    with pytest.raises(SmiParseError, match=message) as info:
        parse_vgpu_query(text)
    assert info.value.line == line


@pytest.mark.reliability("parsers", "mig -lgi: malformed")
def test_mig_lgi_errors_name_the_line():
    bad = (SAMPLES / "mig-lgi-a30-summer-lo.txt").read_text().replace("3:1", "3:x")
    with pytest.raises(SmiParseError) as info:
        parse_mig_lgi(bad)
    assert info.value.line == 14
    with pytest.raises(SmiParseError, match="not `nvidia-smi mig -lgi`"):
        parse_mig_lgi("# only a comment\n")
    dup = "|   0  MIG 1g.6gb          14        3          0:1     |\n" * 2
    with pytest.raises(SmiParseError, match="instance 3 twice") as info:
        parse_mig_lgi(dup)
    assert info.value.line == 2


@pytest.mark.reliability("parsers", "vgpu -q and mig -lgi: arbitrary text (Hypothesis)")
@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_any_text_gives_a_result_or_a_parse_error(text):
    for parser in (parse_vgpu_query, parse_mig_lgi):
        try:
            parser(text)
        except SmiParseError:
            pass


GOOD_HEAD = """GPU 00000000:41:00.0
    Active vGPUs                          : 2
    vGPU ID                               : 1001
        VM Name                           : t1a-b
        vGPU Name                         : GRID A100D-8C
        GPU Instance ID                   : N/A
        Placement ID                      : 12
    vGPU ID                               : 1002
        VM Name                           : t1b-b
        vGPU Name                         : GRID A100D-8C
        GPU Instance ID                   : N/A
"""


@pytest.mark.parametrize(
    ("tail", "message"),
    [
        ("        Placement ID     ", r"line 12: 'Placement ID' has no value \(the capture looks cut off\)"),
        ("        Placement ID\n        FB Memory Usage\n", r"line 12: 'Placement ID' has no value"),
        ("        FB Memory Usage\n", r"line 12: 'FB Memory Usage' ends the text .*the capture looks cut off"),
        ("        Placem", r"line 12: 'Placem' ends the text .*the capture looks cut off"),
    ],
)
def test_a_capture_cut_inside_a_line_is_an_error_not_a_section(tail, message):
    """Trial E #7: a `Placement ID` line cut before its colon was read as a sub-section heading, so the VM looked
    like one without a placement ID (older driver) and the import blamed the driver."""
    with pytest.raises(SmiParseError, match=message):
        parse_vgpu_query(GOOD_HEAD + tail)
    assert [v.placement_id for v in parse_vgpu_query(GOOD_HEAD + "        Placement ID : 60\n")] == [12, 60]
