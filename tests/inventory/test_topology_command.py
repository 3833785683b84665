"""``manage.py topology``: parse-smi over every real capture, bad input named by line, import-smi that
stores nothing on error, show and rebuild."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from inventory import services
from inventory.models import FabricLink, Host, ResourceDomain, SmiCapture
from tests.inventory.test_fabric import NVL, NVL_CAPTURE, demo

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "tests" / "data" / "topo"
SAMPLE_FILES = sorted(SAMPLES.glob("*")) if SAMPLES.is_dir() else []

NVL_CSV = """\
index, pci.bus_id, module_id
0, 00000000:18:00.0, [N/A]
1, 00000000:19:00.0, [N/A]
2, 00000000:9A:00.0, [N/A]
3, 00000000:9B:00.0, [N/A]
"""


def run(*args: str) -> str:
    out = StringIO()
    call_command("topology", *args, stdout=out)
    return out.getvalue()


def write(tmp_path: Path, name: str, content: str | bytes) -> str:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return str(path)


def snapshot_of_fabric() -> tuple:
    return (
        sorted(FabricLink.objects.values_list("pk", "gpu_a", "gpu_b", "kind", "link_count", "gbps", "source")),
        sorted(ResourceDomain.objects.values_list("pk", "domain_id", "version", "active")),
        sorted(Host.objects.values_list("pk", "fabric_findings")),
        SmiCapture.objects.count(),
    )


# --------------------------------------------------------------------------- parse-smi


def test_the_sample_captures_are_there():
    assert SAMPLES.is_dir(), f"{SAMPLES} is missing: the parser tests need the real captures"
    assert SAMPLE_FILES, f"{SAMPLES} holds no captures"


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=[p.name for p in SAMPLE_FILES])
def test_parse_smi_json_over_every_sample(path):
    data = json.loads(run("parse-smi", str(path), "--json"))
    assert {"gpus", "links", "warnings"} <= set(data)
    assert data["gpus"], path.name
    for gpu in data["gpus"]:
        assert {"index", "numa_node", "cpu_affinity"} <= set(gpu)
    indices = {g["index"] for g in data["gpus"]}
    for link in data["links"]:
        assert {"a", "b", "label", "kind", "gbps"} <= set(link)
        assert link["a"] < link["b"] and {link["a"], link["b"]} <= indices
        assert link["kind"] in {"NVLINK", "PIX", "PXB", "PHB", "NODE", "SYS"}
        assert link["gbps"] >= 0
    assert all(isinstance(w, str) for w in data["warnings"])
    if "PARTIAL" not in path.name:
        n = len(data["gpus"])
        assert len(data["links"]) == n * (n - 1) // 2, path.name


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=[p.name for p in SAMPLE_FILES])
def test_parse_smi_table_over_every_sample(path):
    text = run("parse-smi", str(path))
    assert re.search(r"^\d+ GPUs, (1 pair|\d+ pairs)$", text, re.M), text


def test_parse_smi_of_the_nvl_capture(tmp_path):
    data = json.loads(run("parse-smi", write(tmp_path, "nvl.txt", NVL_CAPTURE), "--json"))
    assert [(g["index"], g["numa_node"], g["cpu_affinity"]) for g in data["gpus"]] == [
        (0, 0, "0-63"),
        (1, 0, "0-63"),
        (2, 1, "64-127"),
        (3, 1, "64-127"),
    ]
    labels = {(x["a"], x["b"]): x["label"] for x in data["links"]}
    assert labels == {(0, 1): "NV12", (2, 3): "NV12", (0, 2): "SYS", (0, 3): "SYS", (1, 2): "SYS", (1, 3): "SYS"}


HEADER = "        GPU0    GPU1    GPU2    CPU Affinity    NUMA Affinity\n"
SHORT_ROW = HEADER + "GPU0  X  NV12  SYS  0-7  0\nGPU1  NV12  X\nGPU2  SYS  SYS  X  0-7  0\n"  # line 3 is short


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (SHORT_ROW, "line 3"),
        (HEADER + "GPU0  X  NV12  SYS  0-7  0\nGPU0  X  NV12  SYS  0-7  0\n", "line 3"),
        ("        GPU0    GPU1    GPU2\nGPU0     X      NV1", "line 1"),
    ],
    ids=["short-row", "duplicate-row", "truncated"],
)
def test_parse_smi_malformed_names_the_line(tmp_path, content, expected):
    path = write(tmp_path, "bad.txt", content)
    with pytest.raises(CommandError) as exc:
        run("parse-smi", path, "--json")
    assert expected in str(exc.value) and path in str(exc.value)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("", "empty"),
        (b"\x00\x01\x02 binary", "binary"),
        ("hello\nworld\n", "no GPU header line"),
        (b"GPU0 \xff\xfe\n", "UTF-8"),
    ],
    ids=["empty", "binary", "garbage", "not-utf8"],
)
def test_parse_smi_garbage_is_a_command_error(tmp_path, content, expected):
    path = write(tmp_path, "bad.txt", content)
    with pytest.raises(CommandError, match=expected):
        run("parse-smi", path, "--json")


def test_parse_smi_missing_file_is_a_command_error(tmp_path):
    with pytest.raises(CommandError, match="cannot read"):
        run("parse-smi", str(tmp_path / "nope.txt"))


def test_parse_smi_error_exits_non_zero(tmp_path):
    path = write(tmp_path, "bad.txt", SHORT_ROW)
    proc = subprocess.run(
        [sys.executable, "manage.py", "topology", "parse-smi", path, "--json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    assert "line 3" in proc.stderr and not proc.stdout.strip()


# --------------------------------------------------------------------------- import-smi, show, rebuild


@pytest.fixture
def demo_inventory(db):
    services.import_inventory(document=demo(), vcenter_name="demo")


def test_import_smi_stores_the_capture_and_rebuilds(demo_inventory, tmp_path):
    out = run("import-smi", write(tmp_path, "nvl.txt", NVL_CAPTURE), "--host", NVL)
    assert "imported the capture" in out
    capture = SmiCapture.objects.get(host__name=NVL)
    assert capture.gpu_count == 4 and capture.text == NVL_CAPTURE and capture.query_csv == ""
    data = json.loads(run("show", "--host", NVL, "--json"))
    nv = {(x["a"], x["b"]) for x in data["links"] if x["kind"] == "NVLINK"}
    assert nv == {("0000:18:00.0", "0000:19:00.0"), ("0000:9a:00.0", "0000:9b:00.0")}
    assert {x["source"] for x in data["links"] if x["kind"] == "NVLINK"} == {"smi-import"}
    assert sum(1 for d in data["domains"] if d["kind"] == "nvlink-pair" and d["active"]) == 2
    assert "nvlink-missing" not in {f["code"] for f in data["findings"]}


def test_import_smi_with_a_mapping_csv(demo_inventory, tmp_path):
    run(
        "import-smi", write(tmp_path, "nvl.txt", NVL_CAPTURE), "--host", NVL, "--csv", write(tmp_path, "q.csv", NVL_CSV)
    )
    assert SmiCapture.objects.get(host__name=NVL).query_csv == NVL_CSV
    nv = FabricLink.objects.filter(host__name=NVL, kind="NVLINK").count()
    assert nv == 2


def test_import_smi_with_the_wrong_gpu_count_stores_nothing(demo_inventory, tmp_path):
    before = snapshot_of_fabric()
    two = "        GPU0    GPU1    CPU Affinity\nGPU0     X      NV12    0-63\nGPU1    NV12     X      0-63\n"
    path = write(tmp_path, "two.txt", "$ nvidia-smi topo -m\n" + two)
    with pytest.raises(CommandError) as exc:
        run("import-smi", path, "--host", NVL)
    message = str(exc.value)
    assert "line 2" in message and "2 GPU(s)" in message and "has 4" in message and "nothing was stored" in message
    assert snapshot_of_fabric() == before


def test_import_smi_of_another_machines_capture_stores_nothing(demo_inventory, tmp_path):
    """A 4-GPU L40S capture fits the H100 NVL host's GPU count but puts GPUs vCenter has on two NUMA nodes on one."""
    before = snapshot_of_fabric()
    path = str(SAMPLES / "l40s-4x-aws-g6e12xlarge-vm.txt")
    with pytest.raises(CommandError, match=r"on one NUMA node, but vCenter puts GPU\d .* NUMA node \d+; was it taken"):
        run("import-smi", path, "--host", NVL)
    assert snapshot_of_fabric() == before and not SmiCapture.objects.exists()


def test_import_smi_with_an_unknown_bus_id_stores_nothing(demo_inventory, tmp_path):
    before = snapshot_of_fabric()
    csv = NVL_CSV.replace("00000000:9B:00.0", "00000000:5E:00.0")
    csv_path = write(tmp_path, "q.csv", csv)
    with pytest.raises(CommandError) as exc:
        run("import-smi", write(tmp_path, "nvl.txt", NVL_CAPTURE), "--host", NVL, "--csv", csv_path)
    message = str(exc.value)
    assert csv_path in message and "line 5" in message and "0000:5e:00.0" in message
    assert "not a GPU of host" in message
    assert snapshot_of_fabric() == before


def test_import_smi_with_a_malformed_capture_or_csv_stores_nothing(demo_inventory, tmp_path):
    before = snapshot_of_fabric()
    with pytest.raises(CommandError, match="line 3"):
        run("import-smi", write(tmp_path, "bad.txt", SHORT_ROW), "--host", NVL)
    bad_csv = "index, pci.bus_id\n0, 00000000:18:00.0\n1, not-a-bus-id\n"
    with pytest.raises(CommandError, match="line 3"):
        run(
            "import-smi",
            write(tmp_path, "nvl.txt", NVL_CAPTURE),
            "--host",
            NVL,
            "--csv",
            write(tmp_path, "bad.csv", bad_csv),
        )
    assert snapshot_of_fabric() == before


def test_import_smi_unknown_host(demo_inventory, tmp_path):
    with pytest.raises(CommandError, match="no host named"):
        run("import-smi", write(tmp_path, "nvl.txt", NVL_CAPTURE), "--host", "nope.lab.local")


def test_show_prints_links_domains_and_findings(demo_inventory):
    text = run("show", "--host", NVL)
    assert "PIX" in text and "pcie-switch" in text and "nvlink-missing" in text
    data = json.loads(run("show", "--host", "esx-hgx-01.lab.local", "--json"))
    assert len(data["gpus"]) == 8 and len(data["links"]) == 28
    assert {x["kind"] for x in data["links"]} == {"NVSWITCH"}
    assert {"id", "kind", "name", "version", "active", "gpus"} <= set(data["domains"][0])


def test_rebuild_restores_links_and_is_idempotent(demo_inventory):
    FabricLink.objects.filter(host__name=NVL).delete()
    out = run("rebuild", "--host", NVL)
    assert "rebuilt 1 host:" in out and "fabric_links_created 6" in out
    assert FabricLink.objects.filter(host__name=NVL).count() == 6
    out = run("rebuild")
    assert "rebuilt 5 hosts:" in out and "no changes" in out
