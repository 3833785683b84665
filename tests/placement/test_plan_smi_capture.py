"""``plan --smi`` on NVSwitch (HGX/DGX) captures and truncated captures (report-C HIGH 3 and MEDIUM 5)."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command

from tests.placement.test_plan_command import SAMPLES, module_csv

HGX = str(SAMPLES / "hgx-a100-nps4-epyc7763.txt")
DGX_PARTIAL = str(SAMPLES / "dgx-a100-PARTIAL.txt")
MODULE_QUERY = "nvidia-smi --query-gpu=index,pci.bus_id,module_id --format=csv"


def plan(*args: str, fits: bool = True, as_json: bool = True) -> dict | str:
    out = io.StringIO()
    options = ("--json",) if as_json else ()
    if fits:
        call_command("plan", *args, *options, stdout=out)
    else:
        with pytest.raises(CommandError, match="no host can take this request"):
            call_command("plan", *args, *options, stdout=out)
    return json.loads(out.getvalue()) if as_json else out.getvalue()


def reasons(doc: dict) -> str:
    (rejected,) = doc["rejected"]
    return "; ".join(rejected["reasons"])


# ------------------------------------------------------------------ HIGH 3: the NVSwitch board


@pytest.mark.parametrize("consumption", ["passthrough", "dynamic-passthrough"])
def test_whole_gpus_on_an_hgx_capture_are_refused_as_vsphere_does(consumption):
    """The report's repro planned passthrough of GPUs 2, 3, 6, 7 across both sockets."""
    doc = plan("--smi", HGX, "--gpus", "4", "--busy", "0,4", "--consumption", consumption, fits=False)
    assert doc["candidates"] == []
    assert "8 of 8 GPUs are on an NVSwitch board (vSphere: time-sliced vGPU only, no passthrough)" in reasons(doc)
    assert any("NVLinked through NVSwitch (an HGX/DGX board)" in w for w in doc["warnings"])


def test_mig_backed_vgpu_on_an_hgx_capture_is_refused():
    doc = plan("--smi", HGX, "--gpus", "1", "--consumption", "mig", "--profile", "grid_a100d-3-40c", fits=False)
    assert "are on an NVSwitch board (vSphere: no MIG-backed vGPU)" in reasons(doc)


@pytest.mark.parametrize("consumption", ["vgpu", "device-group"])
def test_a_multi_gpu_vgpu_vm_without_module_ids_says_how_to_get_them(consumption):
    doc = plan("--smi", HGX, "--gpus", "4", "--consumption", consumption, "--profile", "grid_a100d-80c", fits=False)
    why = reasons(doc)
    assert "needs one whole Fabric Manager partition" in why and "module id" in why and MODULE_QUERY in why
    assert any(w.startswith("module ids unknown") and MODULE_QUERY in w for w in doc["warnings"])


def test_a_one_gpu_vgpu_vm_without_module_ids_is_planned_with_a_caution():
    doc = plan("--smi", HGX, "--gpus", "1", "--profile", "grid_a100d-80c", "--busy", "0")
    best = doc["candidates"][0]
    assert best["gpus"][0]["index"] != 0
    assert any(line.startswith("caution: module ids unknown") for line in best["explanation"])


def test_with_module_ids_four_gpus_get_a_half_of_the_board_or_none(tmp_path):
    csv = module_csv(tmp_path, list(range(1, 9)))  # GPU i is module i + 1
    group = ["--consumption", "device-group", "--profile", "grid_a100d-80c", "--csv", csv]
    doc = plan("--smi", HGX, "--gpus", "4", "--busy", "0,4", *group, fits=False)  # one GPU busy in each half
    assert "no free Fabric Manager partition of 4 GPUs" in reasons(doc)
    doc = plan("--smi", HGX, "--gpus", "4", "--busy", "0,1", *group)
    assert sorted(g["index"] for g in doc["candidates"][0]["gpus"]) == [4, 5, 6, 7]  # modules 5-8


def test_with_the_query_csv_gpus_are_named_by_their_bus_id_as_vsphere_shows_them(tmp_path):
    """Trial G: given the bus ids, the plan still said gpu0, gpu2: the admin picks PCI devices by bus id."""
    csv = module_csv(tmp_path, list(range(1, 9)))  # GPU i is at bus 0x10 + i
    group = ["--consumption", "device-group", "--profile", "grid_a100d-80c", "--csv", csv]
    doc = plan("--smi", HGX, "--gpus", "2", "--busy", "0", *group)
    for g in doc["candidates"][0]["gpus"]:
        assert g["pci_id"] == f"0000:{0x10 + g['index']:02x}:00.0"
    text = plan("--smi", HGX, "--gpus", "2", "--busy", "0", *group, "--limit", "1", as_json=False)
    head = text.splitlines()[1]
    assert head.startswith("1. smi-host: GPUs 0000:1") and "gpu" not in head, text
    # without the csv the capture gives indices only
    doc = plan("--smi", HGX, "--gpus", "1", "--profile", "grid_a100d-80c", "--busy", "0")
    assert doc["candidates"][0]["gpus"][0]["pci_id"].startswith("gpu")


def test_a_module_id_list_of_another_host_is_refused(tmp_path):
    csv = module_csv(tmp_path, [1, 2, 3, 4])
    with pytest.raises(CommandError, match=r"--csv: lists GPU indices 0, 1, 2, 3 but the capture has 0, 1, 2, 3, 4"):
        plan("--smi", HGX, "--gpus", "1", "--profile", "grid_a100d-80c", "--csv", csv)


def test_csv_needs_smi(tmp_path):
    with pytest.raises(CommandError, match=r"--csv: only applies to --smi"):
        plan("--cluster", "x", "--gpus", "1", "--csv", module_csv(tmp_path, [1]))


# ------------------------------------------------------------------ MEDIUM 5: a truncated capture


def test_the_parsers_warnings_come_with_the_plan(tmp_path):
    csv = module_csv(tmp_path, list(range(1, 9)))
    doc = plan("--smi", DGX_PARTIAL, "--gpus", "8", "--consumption", "device-group", "--profile", "grid_a100-40c",
               "--csv", csv)  # fmt: skip
    warnings = doc["warnings"]
    assert any("rows GPU4, GPU5, GPU6, GPU7 are missing (partial capture)" in w for w in warnings)
    assert any("no link label for 6 GPU pair(s)" in w for w in warnings)
    text = plan("--smi", DGX_PARTIAL, "--gpus", "8", "--consumption", "device-group", "--profile", "grid_a100-40c",
                "--csv", csv, as_json=False)  # fmt: skip
    assert "warning: nvidia-smi capture: rows GPU4, GPU5, GPU6, GPU7 are missing" in text
    # the heading says what the body says: NUMA unknown for the GPUs the capture lacks
    heading = next(line for line in text.splitlines() if line.startswith("1. "))
    assert heading.endswith("NUMA 1,3 + unknown for 0000:14:00.0, 0000:15:00.0, 0000:16:00.0, 0000:17:00.0")
    assert "across CPU sockets" not in text
    assert "six of unknown path (not in the capture)" in text


def test_a_set_over_pairs_the_capture_lacks_is_called_unknown_and_flagged(tmp_path):
    csv = module_csv(tmp_path, list(range(1, 9)))  # free pairs with GPUs 0-3 busy: modules 5,7 and 6,8
    doc = plan("--smi", DGX_PARTIAL, "--gpus", "2", "--busy", "0,1,2,3", "--consumption", "device-group",
               "--profile", "grid_a100-40c", "--csv", csv)  # fmt: skip
    best = doc["candidates"][0]
    pair = sorted(g["index"] for g in best["gpus"])
    assert pair in ([4, 6], [5, 7])
    assert best["bottleneck"]["label"] == "UNKNOWN"
    lines = best["explanation"]
    assert "GPU pairs: one pair of unknown path (not in the capture)" in lines
    assert any(f"the path of GPU pair GPU{pair[0]}-GPU{pair[1]} in this set is unknown" in line for line in lines)
    assert not any("across CPU sockets" in line for line in lines)
    text = plan("--smi", DGX_PARTIAL, "--gpus", "2", "--busy", "0,1,2,3", "--consumption", "device-group",
                "--profile", "grid_a100-40c", "--csv", csv, as_json=False)  # fmt: skip
    heading = next(line for line in text.splitlines() if line.startswith("1. "))
    assert "bottleneck unknown path (not in the capture" in heading and heading.endswith("NUMA unknown")


# ------------------------------------------------------------------ trial D findings 2, 4 and 7


def test_a_capture_says_nothing_of_memory_so_a_large_vm_is_not_rejected_for_it():
    """Trial D finding 2: 1.5 TB was rejected against an invented 976 GiB."""
    doc = plan("--smi", HGX, "--gpus", "1", "--profile", "grid_a100d-80c", "--vcpus", "96", "--memory-mb", "1500000")
    best = doc["candidates"][0]
    assert doc["rejected"] == []
    assert "CPU/memory headroom unknown (topology capture only)" in best["explanation"]


def test_one_vgpu_on_an_idle_board_without_module_ids_makes_no_claim_about_partitions():
    """Trial D findings 4 and 7: "leaves no multi-GPU set free", "partners already in use" and "the last wholly free
    host of its type" on an idle board planned alone."""
    doc = plan("--smi", HGX, "--gpus", "1", "--consumption", "vgpu", "--profile", "grid_a100d-40c")
    text = "\n".join(doc["candidates"][0]["explanation"])
    assert "Fabric Manager partitions unknown (no module ids)" in text
    for false_claim in ("no multi-GPU set free", "partners are already in use", "last wholly free host"):
        assert false_claim not in text, text


# ------------------------------------------------------------------ trial E #6: the capture says nothing of the mode

A100X4_NV = """\
\tGPU0\tGPU1\tGPU2\tGPU3\tCPU Affinity\tNUMA Affinity\tGPU NUMA ID
GPU0\t X \tNV12\tNODE\tNODE\t0-255\t0\t\tN/A
GPU1\tNV12\t X \tNODE\tNODE\t0-255\t0\t\tN/A
GPU2\tNODE\tNODE\t X \tNV12\t0-255\t0\t\tN/A
GPU3\tNODE\tNODE\tNV12\t X \t0-255\t0\t\tN/A
"""


@pytest.mark.parametrize(
    ("gpus", "consumption", "profile", "mode"),
    [
        ("2", "device-group", "Nvidia:2@grid_a100d-80c%NVLink", "vGPU (sharedDirect, same-size)"),
        ("1", "vgpu", "grid_a100d-40c", "vGPU (sharedDirect, same-size)"),
        ("1", "mig", "grid_a100d-3-40c", "MIG-backed vGPU (sharedDirect, MIG enabled)"),
    ],
)
def test_a_pcie_capture_plans_vgpu_device_groups_and_mig_in_the_mode_they_need(
    tmp_path, gpus, consumption, profile, mode
):
    capture = tmp_path / "a100x4-nv.txt"
    capture.write_text(A100X4_NV)
    args = ("--smi", str(capture), "--board", "A100-80GB", "--gpus", gpus, "--consumption", consumption)
    doc = plan(*args, "--profile", profile)
    assert doc["rejected"] == [] and doc["candidates"]
    lines = doc["candidates"][0]["explanation"]
    assert (
        f"caution: GPU mode not in the capture: planned as if its GPUs were in {mode} mode; set it in vSphere "
        "(Host > Configure > Graphics)" in lines
    )
    assert not any("exact (imported)" in line for line in lines)
    if consumption == "device-group":
        assert doc["candidates"][0]["interconnect"] == "NV12 300 GB/s"
