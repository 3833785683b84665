"""`manage.py plan`: the DESIGN.md JSON contract, both modes, evacuation, and bad input naming the option."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from inventory import services as inventory_services
from placement.models import Reservation
from tests.conftest import TEST_DATA
from tests.vcsim import LABS

SAMPLES = TEST_DATA / "topo"
CANDIDATE_KEYS = {"host", "host_id", "vcenter", "gpus", "score", "bottleneck", "numa_nodes", "explanation"}


def run(*args: str) -> dict:
    out = io.StringIO()
    call_command("plan", *args, "--json", stdout=out)
    return json.loads(out.getvalue())


def samples() -> list[Path]:
    files = sorted(SAMPLES.glob("*.txt"))
    assert files, f"no nvidia-smi captures in {SAMPLES}"
    return files


# NVSwitch boards take time-sliced vGPU only under vSphere, and a multi-GPU VM one Fabric Manager partition, which
# needs the module ids (nvidia-smi --query-gpu): these captures are planned as an NVLink device group of 2 vGPUs.
NVSWITCH_PROFILES = {"dgx-a100-PARTIAL": "grid_a100-40c", "hgx-a100-nps4-epyc7763": "grid_a100d-80c"}


def module_csv(tmp_path: Path, modules: list[int]) -> str:
    lines = ["index, pci.bus_id, module_id"]
    lines += [f"{i}, 00000000:{0x10 + i:02X}:00.0, {m}" for i, m in enumerate(modules)]
    path = tmp_path / "query-gpu.csv"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


@pytest.mark.parametrize("capture", samples(), ids=lambda p: p.stem)
def test_smi_mode_prints_the_contract_for_every_capture(capture, tmp_path):
    extra: list[str] = []
    if capture.stem in NVSWITCH_PROFILES:
        extra = ["--consumption", "device-group", "--profile", NVSWITCH_PROFILES[capture.stem]]
        extra += ["--csv", module_csv(tmp_path, list(range(1, 9)))]
    doc = run("--smi", str(capture), "--gpus", "2", *extra)
    assert set(doc) >= {"candidates", "rejected"}
    assert doc["candidates"], doc["rejected"]
    best = doc["candidates"][0]
    assert set(best) >= CANDIDATE_KEYS
    assert len(best["gpus"]) == 2 and all({"index", "pci_id"} <= set(g) for g in best["gpus"])
    assert set(best["bottleneck"]) == {"label", "gbps"}


def test_smi_mode_prefers_the_nvlink_pair_on_the_same_numa_node_and_honours_busy(tmp_path):
    # modules chosen so that each Fabric Manager pair (1,3 / 2,4 / 5,7 / 6,8) sits on one NUMA node
    csv = module_csv(tmp_path, [1, 3, 2, 4, 5, 7, 6, 8])
    group = ["--consumption", "device-group", "--profile", "grid_a100d-80c", "--csv", csv]
    doc = run("--smi", str(SAMPLES / "hgx-a100-nps4-epyc7763.txt"), "--gpus", "2", "--busy", "0", *group)
    best = doc["candidates"][0]
    indices = sorted(g["index"] for g in best["gpus"])
    assert 0 not in indices
    assert best["bottleneck"]["label"].startswith("NV")
    assert len(best["numa_nodes"]) == 1


def test_smi_mode_rejects_a_busy_index_outside_the_capture():
    with pytest.raises(CommandError, match=r"--busy: GPU 9 is not in the capture"):
        run("--smi", str(SAMPLES / "rtx3090-2x-phb-workstation.txt"), "--gpus", "1", "--busy", "9")


def test_smi_mode_refuses_nvlink_on_a_board_without_it(tmp_path):
    """Trial G #5: an L40S capture with NV12 was planned at 300 GB/s."""
    capture = tmp_path / "l40s-nv.txt"
    capture.write_text(
        "\tGPU0\tGPU1\tCPU Affinity\tNUMA Affinity\nGPU0\t X \tNV12\t0-31\t0\nGPU1\tNV12\t X \t0-31\t0\n"
    )
    with pytest.raises(
        CommandError, match=r"--board: L40S-48GB has no NVLink \(catalog\), but the capture reports NV12"
    ):
        run("--smi", str(capture), "--gpus", "2", "--board", "L40S-48GB")
    assert run("--smi", str(capture), "--gpus", "2", "--board", "H100-94GB")["candidates"]


def test_smi_mode_replicas_name_no_empty_vcenter():
    """Trial G 7e: a captured host has no vCenter; the replica lines read 'smi-host ():'."""
    out = io.StringIO()
    call_command(
        "plan", "--smi", str(SAMPLES / "rtx3090-2x-phb-workstation.txt"), "--gpus", "1", "--vms", "2", stdout=out
    )
    text = out.getvalue()
    assert "  VM 1: smi-host: GPUs" in text and "()" not in text


def test_smi_mode_reports_a_malformed_capture_with_its_line(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("\tGPU0\tGPU1\nGPU0\t X \tPHB\tPHB\tPHB\tPHB\nGPU1\tPHB\t X \n")
    with pytest.raises(CommandError, match=r"--smi: .*line 2"):
        run("--smi", str(bad), "--gpus", "2")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--gpus", "0"], "--gpus: must be between 1 and 16"),
        (["--gpus", "17"], "--gpus: must be between 1 and 16"),
        (["--gpus", "1", "--profile", "grid_a100d-30c"], "--profile: "),
        (["--gpus", "1", "--interconnect", "infiniband"], "--interconnect: "),
        (["--gpus", "1", "--busy", "a,b"], "--busy: "),
        (["--gpus", "1", "--memory-mb", "99999999999"], "--memory-mb: must be between 0 and 25,165,824 MB"),
        (["--gpus", "1", "--vcpus", "1000"], "--vcpus: must be between 0 and 768"),
    ],
)
def test_bad_arguments_name_the_option(args, message):
    with pytest.raises(CommandError, match=message):
        run("--smi", str(SAMPLES / "l40s-4x-aws-g6e12xlarge-vm.txt"), *args)


@pytest.fixture
def demo_inventory(db):
    document = json.loads((LABS / "demo.json").read_text())
    inventory_services.import_inventory(document=document, vcenter_name="demo")
    return document


def test_cluster_mode_ranks_hosts_and_explains_rejections(demo_inventory):
    doc = run("--cluster", "pcie-cluster", "--gpus", "2")
    assert {c["host"] for c in doc["candidates"]} == {"esx-l40s-01.lab.local", "esx-h100nvl-01.lab.local"}
    assert all(len(c["numa_nodes"]) == 1 for c in doc["candidates"])  # a same-socket pair exists on both
    assert all(set(c) >= CANDIDATE_KEYS for c in doc["candidates"])
    rejected = {r["host"]: r["reasons"] for r in doc["rejected"]}
    assert "esx-a100-01.lab.local" in rejected
    assert any("passthrough" in reason for reason in rejected["esx-a100-01.lab.local"])


def test_unknown_cluster_is_named(demo_inventory):
    with pytest.raises(CommandError, match="--cluster: no cluster with id or name 'nope'"):
        run("--cluster", "nope", "--gpus", "1")


def test_feasible_nowhere_prints_every_hosts_reasons_and_exits_non_zero(demo_inventory):
    out = io.StringIO()
    with pytest.raises(CommandError, match="no host can take this request"):
        call_command(
            "plan", "--all-clusters", "--gpus", "1", "--memory-mb", str(16 * 1024 * 1024), "--json", stdout=out
        )
    doc = json.loads(out.getvalue())
    assert doc["candidates"] == []
    assert len(doc["rejected"]) == 5
    assert all(r["reasons"] for r in doc["rejected"])


def test_mig_profile_on_gpus_without_mig_is_rejected_per_host(demo_inventory):
    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command("plan", "--all-clusters", "--gpus", "1", "--profile", "grid_a100d-3-40c", "--json", stdout=out)
    doc = json.loads(out.getvalue())
    assert doc["candidates"] == []
    a100 = next(r for r in doc["rejected"] if r["host"] == "esx-a100-01.lab.local")
    assert any("MIG" in reason for reason in a100["reasons"])


def test_evacuation_plan_json_is_printed_then_exits_1_when_a_vm_cannot_move(demo_inventory):
    """The demo's only A100 host: its VMs have nowhere to go. As for a plan in which nothing fits, the JSON is
    printed and the exit status says so (it was 0: a script draining hosts went on)."""
    out = io.StringIO()
    with pytest.raises(CommandError, match=r"^--evacuate: 2 of 2 GPU VMs cannot move$"):
        call_command("plan", "--evacuate", "esx-a100-01.lab.local", "--json", stdout=out)
    doc = json.loads(out.getvalue())
    assert doc["host"] == "esx-a100-01.lab.local" and doc["complete"] is False
    assert {m["vm"] for m in doc["moves"]} >= {"chat-a", "chat-b"}


def test_evacuating_an_unknown_host_names_it(demo_inventory):
    with pytest.raises(CommandError, match="--evacuate: no host named 'ghost'"):
        run("--evacuate", "ghost")


def test_reserve_takes_the_gpus_out_of_the_next_plan(demo_inventory):
    first = run("--cluster", "pcie-cluster", "--gpus", "2", "--reserve", "llm-new", "--ttl", "30")
    assert first["reservation"]["vm_name"] == "llm-new"
    taken = {(first["candidates"][0]["host"], g["pci_id"]) for g in first["candidates"][0]["gpus"]}
    second = run("--cluster", "pcie-cluster", "--gpus", "2")
    for c in second["candidates"]:
        assert not taken & {(c["host"], g["pci_id"]) for g in c["gpus"]}
    with pytest.raises(CommandError, match="--reserve: 'llm-new' already holds an active reservation"):
        run("--cluster", "pcie-cluster", "--gpus", "1", "--reserve", "llm-new")


def test_an_engine_error_outside_smi_mode_is_not_labelled_as_a_capture_problem(monkeypatch):
    from placement import services

    def broken(**kwargs):
        raise ValueError("range() arg 3 must not be zero")

    monkeypatch.setattr(services, "plan_cluster", broken)
    with pytest.raises(ValueError, match="range"):  # a bug surfaces as itself, never as "--smi: ..."
        run("--all-clusters", "--gpus", "1")


def test_smi_mode_keeps_a_pair_on_one_numa_node_when_numa_comes_from_cpu_affinity(tmp_path):
    from tests.inventory.topology.test_smi import DGX1_STYLE

    capture = tmp_path / "dgx1.txt"
    capture.write_text(DGX1_STYLE)
    best = run("--smi", str(capture), "--gpus", "2")["candidates"][0]
    assert sorted(g["index"] for g in best["gpus"]) == [0, 2] and best["numa_nodes"] == [0]


def test_one_bandwidth_figure_per_link_class_and_generation_from_smi_and_from_the_import(tmp_path):
    from inventory.topology.fabric import build_fabric
    from inventory.topology.smi import parse_smi_topology
    from tests.inventory.topology.hosts import H100_NVL_GPUS, H100_NVL_SMI, h100_nvl_host

    imported = build_fabric(h100_nvl_host(), smi=parse_smi_topology(H100_NVL_SMI)).link(*H100_NVL_GPUS[:2]).gbps
    capture = tmp_path / "h100nvl.txt"
    capture.write_text(H100_NVL_SMI)
    best = run("--smi", str(capture), "--gpus", "2", "--board", "H100-94GB")["candidates"][0]
    assert best["bottleneck"] == {"label": "NV12", "gbps": imported}  # the same pair, the same figure


def _add_consumer(host_name: str, vm_name: str, kind: str, profile: str, gpu_index: int = 0) -> None:
    from inventory.models import Gpu, GpuConsumer, Host, VirtualMachine

    host = Host.objects.get(name=host_name)
    gpu = Gpu.objects.filter(host=host).order_by("pci_device__pci_id")[gpu_index]
    vm = VirtualMachine.objects.create(
        vcenter=host.vcenter, moref=f"vm-{vm_name}", name=vm_name, host=host, power_state="poweredOn", vcpus=4,
        memory_mb=16384,
    )  # fmt: skip
    GpuConsumer.objects.create(vm=vm, gpu=gpu, kind=kind, profile=profile)


def test_all_clusters_counts_a_device_group_and_rejects_only_the_host_of_an_odd_consumer(demo_inventory):
    """From the database: a device group's 40C member locks its GPU to 40C with 40 GB left; a consumer the
    engine cannot read leaves out its own GPU (same-size: vSphere never picks a GPU locked to another type), and the
    plan answers for the rest."""
    from inventory.models import GpuConsumer

    GpuConsumer.objects.filter(gpu__host__name="esx-a100-01.lab.local").delete()
    _add_consumer("esx-a100-01.lab.local", "dg-vm", "device-group", "Nvidia:1@grid_a100d-40c")
    _add_consumer("esx-hgx-01.lab.local", "odd-vm", "vgpu", "not-a-profile")
    out = io.StringIO()
    call_command("plan", "--all-clusters", "--gpus", "1", "--profile", "grid_a100d-40c", "--json", stdout=out)
    doc = json.loads(out.getvalue())
    assert {c["host"] for c in doc["candidates"]} == {"esx-a100-01.lab.local"}
    out = io.StringIO()
    call_command("plan", "--all-clusters", "--gpus", "1", "--profile", "nvidia_h100xm-40c", "--json", stdout=out)
    (hgx,) = [c for c in json.loads(out.getvalue())["candidates"] if c["host"] == "esx-hgx-01.lab.local"]
    assert [g["pci_id"] for g in hgx["gpus"]] != [_gpu_pci("esx-hgx-01.lab.local", 0)]  # odd-vm's GPU is left out

    out = io.StringIO()
    call_command("plan", "--all-clusters", "--gpus", "1", "--profile", "grid_a100d-80c", "--json", stdout=out)
    doc = json.loads(out.getvalue())
    (a100,) = [c for c in doc["candidates"] if c["host"] == "esx-a100-01.lab.local"]
    assert [g["pci_id"] for g in a100["gpus"]] == [_gpu_pci("esx-a100-01.lab.local", 1)]  # the group's GPU is half used


def _gpu_pci(host_name: str, index: int) -> str:
    from inventory.models import Gpu

    return Gpu.objects.filter(host__name=host_name).order_by("pci_device__pci_id")[index].pci_device.pci_id


def test_text_output_shows_the_joint_placement_and_says_how_many_vms_fit(demo_inventory):
    out = io.StringIO()
    with pytest.raises(CommandError, match=r"^only 2 of 3 VMs fit$"):
        call_command("plan", "--all-clusters", "--gpus", "1", "--vms", "3", "--anti-affinity", stdout=out)
    text = out.getvalue()
    assert "Joint placement of 3 VMs" in text and "replica 3 of 3 has no host" in text
    hosts = [line.split(": ")[1].split(" (")[0] for line in text.splitlines() if line.startswith("  VM ")]
    assert sorted(hosts) == ["esx-h100nvl-01.lab.local", "esx-l40s-01.lab.local"]  # anti-affinity: two hosts


def test_text_output_says_no_host_fits_once(demo_inventory):
    out = io.StringIO()
    with pytest.raises(CommandError, match="no host can take this request"):
        call_command("plan", "--cluster", "pcie-cluster", "--gpus", "16", stdout=out)
    assert "no host can take" not in out.getvalue().lower()
    assert out.getvalue().count("x  ") == 4
    rejected = [line for line in out.getvalue().splitlines() if line.startswith("x  ")]
    assert all(line.split(":")[0].endswith(".lab.local (demo)") for line in rejected)  # names repeat across vCenters


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--reserve", "x", "--ttl", "0"], "--ttl: must be between 1 and 10080 minutes"),
        (["--reserve", "x", "--ttl", "99999999"], "--ttl: must be between 1 and 10080 minutes"),
        (["--reserve", ""], "--reserve: must not be blank"),
        (["--reserve", "   "], "--reserve: must not be blank"),
        (["--reserve", "a\nWrite-Host x"], r"--reserve: must not contain control or invisible characters \(U\+000A"),
        (["--reserve", "x" * 79, "--vms", "2"], "--reserve: must be at most 80 characters with the replica suffix -2"),
        (["--ttl", "30"], "--ttl: only applies with --reserve"),
    ],
)
def test_reservation_arguments_are_checked_as_the_api_checks_them(demo_inventory, args, message):
    with pytest.raises(CommandError, match=message):
        run("--cluster", "pcie-cluster", "--gpus", "1", *args)
    assert not Reservation.objects.exists()
