from __future__ import annotations

from pathlib import Path

import pytest

from inventory.topology.smi import (
    SmiGpuIdentity,
    SmiParseError,
    normalize_bus_id,
    parse_gpu_query_csv,
    parse_smi_topology,
)

# Real captures copied into tests/data/topo (first line of each: its source); a missing folder must fail.
SAMPLES = Path(__file__).resolve().parents[2] / "data" / "topo"

EXPECTED = {
    "consumer-4gpu-phb-workstation.txt": {
        "gpus": 4,
        "numa": [0, 0, 0, 0],
        "affinity": ["0-15"] * 4,
        "pairs": {(0, 1): "PHB", (0, 3): "PHB", (2, 3): "PHB"},
        "links": 6,
        "nics": (),
    },
    "dgx-a100-PARTIAL.txt": {
        "gpus": 8,
        "numa": [3, 3, 1, 1, None, None, None, None],
        "affinity": ["48-63,176-191", "48-63,176-191", "16-31,144-159", "16-31,144-159", None, None, None, None],
        "pairs": {(0, 1): "NV12", (0, 7): "NV12", (3, 4): "NV12", (2, 3): "NV12"},
        "links": 6 + 4 * 4,  # pairs within GPU0-3, plus GPU0-3 x GPU4-7 from the upper triangle
        "nics": tuple(f"NIC{i}" for i in range(12)),
    },
    "hgx-a100-nps4-epyc7763.txt": {
        "gpus": 8,
        "numa": [3, 3, 1, 1, 7, 7, 5, 5],
        "affinity": ["48-63", "48-63", "16-31", "16-31", "112-127", "112-127", "80-95", "80-95"],
        "pairs": {(0, 1): "NV12", (0, 7): "NV12", (5, 6): "NV12"},
        "links": 28,
        "nics": ("mlx5_0",),
    },
    "l40s-4x-aws-g6e12xlarge-vm.txt": {
        "gpus": 4,
        "numa": [0, 0, 0, 0],
        "affinity": ["0-47"] * 4,
        "pairs": {(0, 1): "NODE", (1, 3): "NODE"},
        "links": 6,
        "nics": (),
    },
    "rtx3090-2x-phb-workstation.txt": {
        "gpus": 2,
        "numa": [0, 0],
        "affinity": ["0-31", "0-31"],
        "pairs": {(0, 1): "PHB"},
        "links": 1,
        "nics": (),
    },
}


def sample_files() -> list[Path]:
    assert SAMPLES.is_dir(), f"sample captures missing: {SAMPLES} (tests/data/topo)"
    files = sorted(SAMPLES.glob("*.txt"))
    assert files, f"no captures in {SAMPLES}"
    return files


def test_every_sample_has_expectations():
    assert {f.name for f in sample_files()} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample_captures(name):
    path = SAMPLES / name
    assert path.is_file(), f"missing sample {path}"
    expected = EXPECTED[name]
    topo = parse_smi_topology(path.read_text())
    assert len(topo.gpus) == expected["gpus"]
    assert [g.index for g in topo.gpus] == list(range(expected["gpus"]))
    assert [g.numa_node for g in topo.gpus] == expected["numa"]
    assert [g.cpu_affinity for g in topo.gpus] == expected["affinity"]
    assert all(g.gpu_numa_id is None for g in topo.gpus)
    assert len(topo.links) == expected["links"]
    assert topo.nics == expected["nics"]
    for (a, b), label in expected["pairs"].items():
        link = topo.link(a, b)
        assert link is not None and link.label == label, (a, b, link)
    assert all(link.a < link.b for link in topo.links)
    if "PARTIAL" not in name:
        assert topo.warnings == ()


@pytest.mark.reliability("parsers", "topo -m: missing, reordered or truncated rows")
def test_partial_dgx_capture_warns_about_missing_rows_and_pairs():
    topo = parse_smi_topology((SAMPLES / "dgx-a100-PARTIAL.txt").read_text())
    assert len(topo.warnings) == 3
    missing_rows, missing_pairs, unknown_numa = topo.warnings
    assert unknown_numa.startswith("NUMA node unknown for GPU4, GPU5, GPU6, GPU7")
    assert "GPU4, GPU5, GPU6, GPU7" in missing_rows and "missing" in missing_rows
    assert "6 GPU pair(s)" in missing_pairs and "GPU6-GPU7" in missing_pairs
    assert topo.link(4, 5) is None
    assert topo.link(3, 4).kind == "NVLINK" and topo.link(3, 4).nvlinks == 12


def test_nvlink_bandwidth_uses_generation_guess_and_override():
    text = (SAMPLES / "hgx-a100-nps4-epyc7763.txt").read_text()
    assert parse_smi_topology(text).link(0, 1).gbps == 300.0  # NV12 -> gen 3, 25 GB/s per link
    assert parse_smi_topology(text, nvlink_generation=4).link(0, 1).gbps == 300.0


def test_to_dict_contract():
    topo = parse_smi_topology((SAMPLES / "rtx3090-2x-phb-workstation.txt").read_text())
    data = topo.to_dict()
    assert set(data) >= {"gpus", "links", "warnings"}
    assert set(data["gpus"][0]) >= {"index", "numa_node", "cpu_affinity"}
    assert data["links"] == [{"a": 0, "b": 1, "label": "PHB", "kind": "PHB", "gbps": 25.2, "nvlinks": 0}]
    assert data["warnings"] == []


GOOD = """\
\tGPU0\tGPU1\tGPU2\tCPU Affinity\tNUMA Affinity\tGPU NUMA ID
GPU0\t X \tNV4\tSYS\t0-15\t0\t\tN/A
GPU1\tNV4\t X \tSYS\t0-15\t0\t\tN/A
GPU2\tSYS\tSYS\t X \t16-31\t1\t\tN/A
"""


@pytest.mark.reliability("parsers", "topo -m: layout variants (tabs, prompts, CRLF, legends)")
def test_tabs_and_spaces_give_the_same_result():
    spaced = GOOD.replace("\t", "    ")
    single = "\n".join(" ".join(line.split()) for line in GOOD.splitlines())
    results = [parse_smi_topology(t) for t in (GOOD, spaced, single)]
    assert results[0] == results[1] == results[2]
    assert results[0].link(0, 1).label == "NV4" and results[0].link(0, 1).nvlinks == 4
    assert [g.numa_node for g in results[0].gpus] == [0, 0, 1]


@pytest.mark.reliability("parsers", "topo -m: layout variants (tabs, prompts, CRLF, legends)")
@pytest.mark.parametrize(
    "prefix",
    ["$ nvidia-smi topo -m\n", "# nvidia-smi topo -m\n", "GPU Topology:\n", "```\n# comment\n\n"],
)
def test_preambles_are_skipped(prefix):
    assert parse_smi_topology(prefix + GOOD) == parse_smi_topology(GOOD)


def test_soc_is_the_old_name_of_sys():
    topo = parse_smi_topology(GOOD.replace("SYS", "SOC"))
    link = topo.link(0, 2)
    assert link.label == "SOC" and link.kind == "SYS"
    assert topo.warnings == ()


@pytest.mark.reliability("parsers", "topo -m: layout variants (tabs, prompts, CRLF, legends)")
def test_windows_line_endings_and_trailing_blanks():
    assert parse_smi_topology(GOOD.replace("\n", "\r\n") + "\r\n\r\n") == parse_smi_topology(GOOD)


def test_nic_legend_names_the_nics():
    text = """\
        GPU0    GPU1    NIC0    NIC1    CPU Affinity    NUMA Affinity   GPU NUMA ID
GPU0     X      PIX     PIX     SYS     0-31    0               N/A
GPU1    PIX      X      PIX     SYS     0-31    0               N/A
NIC0    PIX     PIX      X      SYS
NIC1    SYS     SYS     SYS      X

Legend:

  X    = Self
  PIX  = Connection traversing at most a single PCIe bridge

NIC Legend:

  NIC0: mlx5_0
  NIC1: mlx5_1
"""
    topo = parse_smi_topology(text)
    assert topo.nics == ("mlx5_0", "mlx5_1")
    assert topo.link(0, 1).kind == "PIX"
    assert topo.warnings == ()


@pytest.mark.reliability("parsers", "topo -m: layout variants (tabs, prompts, CRLF, legends)")
def test_legend_pasted_without_its_title():
    text = GOOD + "\n  X    = Self\n  SYS  = Connection traversing PCIe as well as the SMP interconnect\n"
    assert parse_smi_topology(text) == parse_smi_topology(GOOD)


@pytest.mark.reliability("parsers", "topo -m: unknown NUMA")
def test_gpu_numa_id_and_unknown_numa():
    text = """\
        GPU0    GPU1    CPU Affinity    NUMA Affinity   GPU NUMA ID
GPU0     X      NV18    0-71    0               4
GPU1    NV18     X      72-143  N/A             12
"""
    topo = parse_smi_topology(text)
    assert [(g.numa_node, g.gpu_numa_id) for g in topo.gpus] == [(0, 4), (None, 12)]
    assert topo.link(0, 1).gbps == 450.0  # NV18 -> NVLink 4


def test_single_gpu_capture():
    topo = parse_smi_topology("        GPU0    CPU Affinity    NUMA Affinity\nGPU0     X      0-7     N/A\n")
    assert len(topo.gpus) == 1 and topo.links == ()
    assert topo.gpus[0].cpu_affinity == "0-7" and topo.gpus[0].numa_node is None


@pytest.mark.reliability("parsers", "topo -m: asymmetric or unknown labels")
def test_asymmetric_pair_keeps_the_worse_label_and_names_both_lines():
    text = GOOD.replace("GPU1\tNV4\t X ", "GPU1\tPIX\t X ")
    topo = parse_smi_topology(text)
    assert topo.link(0, 1).label == "PIX"
    (warning,) = topo.warnings
    assert "asymmetric" in warning and "line 2 says NV4" in warning and "line 3 says PIX" in warning


@pytest.mark.reliability("parsers", "topo -m: asymmetric or unknown labels")
def test_unknown_label_is_a_warning_naming_the_line():
    topo = parse_smi_topology(GOOD.replace("GPU2\tSYS\tSYS", "GPU2\tSYS\tQQQ"))
    # the upper triangle still gives GPU1-GPU2
    assert topo.link(1, 2).label == "SYS"
    assert any("line 4" in w and "'QQQ'" in w for w in topo.warnings)


@pytest.mark.reliability("parsers", "topo -m: missing, reordered or truncated rows")
def test_rows_out_of_order_warn():
    lines = GOOD.splitlines()
    text = "\n".join([lines[0], lines[2], lines[1], lines[3]])
    topo = parse_smi_topology(text)
    assert any("out of order" in w for w in topo.warnings)
    assert topo.link(0, 1).nvlinks == 4


@pytest.mark.reliability("parsers", "topo -m: missing, reordered or truncated rows")
def test_missing_rows_use_the_other_triangle():
    text = "\n".join(GOOD.splitlines()[:2])  # only GPU0's row
    topo = parse_smi_topology(text)
    assert topo.link(0, 1).label == "NV4" and topo.link(0, 2).label == "SYS"
    assert topo.link(1, 2) is None
    assert any("GPU1, GPU2 are missing" in w for w in topo.warnings)
    assert any("GPU1-GPU2" in w for w in topo.warnings)


@pytest.mark.reliability("parsers", "topo -m: missing, reordered or truncated rows")
def test_cut_off_last_row_is_dropped_with_a_warning():
    text = GOOD.rstrip("\n")[:-12]  # the last row loses its affinity cells
    topo = parse_smi_topology(text)
    assert any("line 4" in w and "cut off" in w for w in topo.warnings)
    assert topo.link(1, 2).label == "SYS"  # from GPU1's row


def error_for(text: str | bytes) -> SmiParseError:
    with pytest.raises(SmiParseError) as info:
        parse_smi_topology(text)  # type: ignore[arg-type]
    return info.value


@pytest.mark.reliability("parsers", "topo -m: empty or binary input")
@pytest.mark.parametrize("text", ["", "   \n\t\n"])
def test_empty_input(text):
    assert "empty" in str(error_for(text))


@pytest.mark.reliability("parsers", "topo -m: empty or binary input")
def test_binary_input():
    err = error_for("GPU0 GPU1\nGPU0 X\x00\x01\x02")
    assert err.line == 2 and "line 2" in str(err) and "NUL" in str(err)
    assert "NUL" in str(error_for(b"\x89PNG\r\n\x1a\n\x00\x00"))
    assert "control character" in str(error_for("\x1b[31mGPU0\x1b[0m"))


@pytest.mark.reliability("parsers", "topo -m: malformed header or rows")
def test_garbage_has_no_header():
    err = error_for("hello world\nthis is not a topology\n")
    assert "no GPU header" in str(err)


@pytest.mark.reliability("parsers", "topo -m: malformed header or rows")
def test_wrong_cell_count_names_the_line():
    text = GOOD.replace("GPU1\tNV4\t X \tSYS", "GPU1\tNV4\t X ")
    err = error_for(text)
    assert err.line == 3 and str(err).startswith("line 3:")
    assert "GPU1 has 6 cells, expected 7" in str(err)


@pytest.mark.reliability("parsers", "topo -m: malformed header or rows")
def test_row_without_column_names_the_line():
    err = error_for(GOOD + "GPU7\tSYS\tSYS\tSYS\t0-1\t0\tN/A\n")
    assert err.line == 5 and "GPU7" in str(err)


@pytest.mark.reliability("parsers", "topo -m: malformed header or rows")
def test_duplicate_row():
    lines = GOOD.splitlines()
    err = error_for("\n".join([*lines, lines[1]]))
    assert err.line == 5 and "twice" in str(err) and "line 2" in str(err)


@pytest.mark.reliability("parsers", "topo -m: asymmetric or unknown labels")
def test_labels_unparsable_everywhere():
    text = GOOD
    for label in ("NV4", "SYS"):
        text = text.replace(label, "???")
    err = error_for(text)
    assert err.line == 1 and "link label" in str(err)


@pytest.mark.reliability("parsers", "topo -m: missing, reordered or truncated rows")
def test_header_only_is_truncated():
    err = error_for(GOOD.splitlines()[0])
    assert err.line == 1 and "no GPU rows" in str(err)


@pytest.mark.reliability("parsers", "topo -m: missing, reordered or truncated rows")
def test_truncated_with_no_determinable_pair():
    text = "\n".join(GOOD.splitlines()[:2]).replace("NV4\tSYS", "N/A\tN/A")
    err = error_for(text)
    assert "no GPU pair can be determined" in str(err)


@pytest.mark.reliability("parsers", "topo -m: malformed header or rows")
def test_unknown_header_column_after_affinity():
    err = error_for(GOOD.replace("GPU NUMA ID", "GPU NUMA ID\tFoo"))
    assert err.line == 1 and "'Foo'" in str(err)


QUERY = """\
index, pci.bus_id, module_id
0, 00000000:18:00.0, 2
1, 00000000:2A:00.0, 4
2, 00000000:9A:00.0, [N/A]
"""


def test_gpu_query_csv_with_header():
    assert parse_gpu_query_csv(QUERY) == [
        SmiGpuIdentity(0, "0000:18:00.0", 2),
        SmiGpuIdentity(1, "0000:2a:00.0", 4),
        SmiGpuIdentity(2, "0000:9a:00.0", None),
    ]


def test_gpu_query_csv_without_module_and_noheader():
    assert parse_gpu_query_csv("index, pci.bus_id\n0, 00000000:3B:00.0\n") == [SmiGpuIdentity(0, "0000:3b:00.0", None)]
    assert parse_gpu_query_csv("1, 00000000:86:00.0, 7\n0, 00000000:3B:00.0, 3\n") == [
        SmiGpuIdentity(0, "0000:3b:00.0", 3),
        SmiGpuIdentity(1, "0000:86:00.0", 7),
    ]


@pytest.mark.reliability("parsers", "query-gpu CSV: malformed or empty")
@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("index, pci.bus_id\n0, 00000000:3B:00.0, 5\n", 2, "expected 2 comma-separated fields"),
        ("index, pci.bus_id\nx, 00000000:3B:00.0\n", 2, "index 'x'"),
        ("index, pci.bus_id\n0, 3B:00\n", 2, "not a PCI address"),
        ("index, pci.bus_id, module_id\n0, 00000000:3B:00.0, one\n", 2, "module_id 'one'"),
        ("0, 00000000:3B:00.0\n0, 00000000:3C:00.0\n", 2, "listed twice (first on line 1)"),
        ("index, serial\n0, 123\n", 1, "header must name"),
    ],
)
def test_gpu_query_csv_errors(text, line, fragment):
    with pytest.raises(SmiParseError) as info:
        parse_gpu_query_csv(text)
    assert info.value.line == line and f"line {line}:" in str(info.value)
    assert fragment in str(info.value)


@pytest.mark.reliability("parsers", "query-gpu CSV: malformed or empty")
def test_gpu_query_csv_empty():
    with pytest.raises(SmiParseError, match="empty"):
        parse_gpu_query_csv("")
    with pytest.raises(SmiParseError, match="no GPU lines"):
        parse_gpu_query_csv("index, pci.bus_id\n")


@pytest.mark.reliability("parsers", "PCI bus ids in nvidia-smi form")
def test_normalize_bus_id():
    assert normalize_bus_id("00000000:3B:00.0") == "0000:3b:00.0"
    assert normalize_bus_id("0000:3b:00.0") == "0000:3b:00.0"
    assert normalize_bus_id("3b:00.0") is None


# A DGX-1-era capture: "CPU Affinity" but no "NUMA Affinity" column. GPU0 and GPU2 share a socket,
# GPU1 and GPU3 the other; every pair is NV2 except the SYS pairs across sockets.
DGX1_STYLE = """\
        GPU0    GPU1    GPU2    GPU3    CPU Affinity
GPU0     X      NV2     NV2     SYS     0-19,40-59
GPU1    NV2      X      SYS     NV2     20-39,60-79
GPU2    NV2     SYS      X      NV2     0-19,40-59
GPU3    SYS     NV2     NV2      X      20-39,60-79
"""


def test_numa_is_derived_from_cpu_affinity_when_the_numa_column_is_missing():
    topo = parse_smi_topology(DGX1_STYLE)
    assert [g.numa_node for g in topo.gpus] == [0, 1, 0, 1]
    assert any("NUMA nodes derived from distinct CPU-affinity sets" in w for w in topo.warnings)


def test_numa_is_derived_from_sys_paths_without_any_affinity_column():
    text = """\
        GPU0    GPU1    GPU2    GPU3
GPU0     X      PIX     SYS     SYS
GPU1    PIX      X      SYS     SYS
GPU2    SYS     SYS      X      NODE
GPU3    SYS     SYS     NODE     X
"""
    topo = parse_smi_topology(text)
    assert [g.numa_node for g in topo.gpus] == [0, 0, 1, 1]


@pytest.mark.reliability("parsers", "topo -m: unknown NUMA")
def test_unknown_numa_is_warned_about():
    text = """\
        GPU0    GPU1
GPU0     X      NV4
GPU1    NV4      X
"""
    topo = parse_smi_topology(text)
    assert [g.numa_node for g in topo.gpus] == [None, None]
    assert any(w.startswith("NUMA node unknown for GPU0, GPU1") for w in topo.warnings)


def test_sys_between_gpus_of_one_numa_node_is_flagged():
    text = (
        "        GPU0    GPU1    GPU2    CPU Affinity    NUMA Affinity\n"
        "GPU0     X      SYS     PIX     0-31    0\n"
        "GPU1    SYS      X      SYS     0-31    0\n"
        "GPU2    PIX     SYS      X      32-63   1\n"
    )
    warnings = [w for w in parse_smi_topology(text).warnings if "SYS" in w]
    assert len(warnings) == 1
    assert warnings[0].startswith("GPU0/GPU1: SYS (across CPU sockets) between GPUs the NUMA Affinity column puts on")
    assert "GPU1/GPU2" not in warnings[0]  # nodes 0 and 1: SYS is what that says
