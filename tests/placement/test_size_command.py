import io
import json

import pytest
from django.core.management import CommandError, call_command

ARGS = ["--params-b", "70", "--layers", "80", "--kv-heads", "8", "--head-dim", "128", "--context", "8192"]


@pytest.mark.django_db
def test_size_shows_every_term_and_a_proposal_per_board():
    out = io.StringIO()
    call_command("size", *ARGS, "--seqs", "16", "--json", stdout=out)
    doc = json.loads(out.getvalue())
    assert round(doc["weights_gb"], 1) == 130.4 and round(doc["kv_cache_gb"], 1) == 40.0
    assert doc["total_gb"] == pytest.approx(doc["weights_gb"] + doc["kv_cache_gb"] + doc["overhead_gb"])
    h100 = next(p for p in doc["proposals"] if p["board"] == "H100-80GB")
    assert h100["gpus"] == 4
    assert any(line.startswith("KV cache: 2 (K and V) x 80 layers") for line in doc["explain"])


@pytest.mark.django_db
def test_bad_sizes_name_the_option():
    with pytest.raises(CommandError, match="--seqs: must be positive"):
        call_command("size", *ARGS, "--seqs", "0")


@pytest.mark.django_db
def test_size_counts_the_framebuffer_the_inventory_reports():
    """The README's example on the demo lab: its H100 NVL GPUs report 95,830 MiB, so 2 x 93.6 GiB < 187.4 GiB."""
    from pathlib import Path

    from inventory import services as inventory_services

    lab = Path(__file__).resolve().parents[2] / "tools" / "vcsim" / "labs" / "demo.json"
    inventory_services.import_inventory(document=json.loads(lab.read_text()), vcenter_name="demo")
    out = io.StringIO()
    call_command("size", *ARGS, "--seqs", "16", stdout=out)
    line = next(x for x in out.getvalue().splitlines() if x.strip().startswith("H100-94GB"))
    assert "H100-94GB: 4 GPUs (4 x 93.6 GiB usable" in line, line


@pytest.mark.django_db
@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "NaN", "Infinity"])
@pytest.mark.parametrize("option", ["--params-b", "--bytes-per-param", "--kv-bytes", "--overhead"])
def test_non_finite_numbers_name_the_option(option, value):
    """Python reads "nan" and "inf" as floats: without a check the JSON output says NaN (not JSON) and exits 0."""
    args = [*ARGS[2:], f"--params-b={value}"] if option == "--params-b" else [*ARGS, f"{option}={value}"]
    with pytest.raises(CommandError, match=f"^{option}: must be a finite number, got "):
        call_command("size", *args, "--json", stdout=io.StringIO())


@pytest.mark.django_db
def test_boards_not_in_the_inventory_are_sized_in_gib():
    out = io.StringIO()
    call_command("size", *ARGS, "--seqs", "16", stdout=out)
    line = next(x for x in out.getvalue().splitlines() if x.strip().startswith("L4-24GB"))
    assert line.strip() == (
        "L4-24GB: 187.4 GiB exceeds 8 GPUs (each 22.5 GiB, the 23,034 MiB nvidia-smi reports for it, not in the "
        "inventory)"
    )


def _demo_lines(*args: str) -> dict[str, str]:
    from pathlib import Path

    from inventory import services as inventory_services

    lab = Path(__file__).resolve().parents[2] / "tools" / "vcsim" / "labs" / "demo.json"
    inventory_services.import_inventory(document=json.loads(lab.read_text()), vcenter_name="demo")
    out = io.StringIO()
    call_command("size", *args, stdout=out)
    return {x.strip().split(":")[0]: x.strip() for x in out.getvalue().splitlines() if x.startswith("  ")}


@pytest.mark.django_db
def test_size_proposes_what_the_inventorys_gpus_of_a_board_offer():
    """Trial E finding 4: "passthrough or 2 x grid_h100-80c" for the demo's HGX H100s (plan refuses both), and
    "8 x grid_a30-24c (full profile, NVLink as a device group)" on A30s bridged in pairs."""
    lines = _demo_lines("--params-b", "70.6", "--layers", "80", "--kv-heads", "8", "--head-dim", "128",
                        "--context", "8192", "--seqs", "1")  # fmt: skip
    assert lines["H100-80GB"] == (
        "H100-80GB: 2 GPUs (2 x 79.6 GiB usable = 159.3 GiB >= 147.4 GiB): 2 x nvidia_h100xm-80c (full profile, NVLink "
        "as a device group: one Fabric Manager partition); no passthrough: an NVSwitch (HGX) board, where vSphere "
        "allows time-sliced vGPU only"
    )
    assert lines["A30-24GB"].endswith("NVLink on the A30 joins pairs only, so the 8 GPUs talk over PCIe between pairs")
    assert "device group" not in lines["A30-24GB"]
    # the demo's H100 NVLs: no NVLink pair known, no vGPU type offered (passthrough mode)
    assert lines["H100-94GB"].endswith(
        "passthrough or 2 x grid_h100l-94c (full profile; no host of the inventory offers it now); the inventory "
        "knows no NVLinked pair of these GPUs: without one they talk over PCIe"
    )


@pytest.mark.django_db
def test_size_json_says_passthrough_and_device_group():
    _demo_lines(*ARGS)
    out = io.StringIO()
    call_command("size", *ARGS, "--seqs", "1", "--json", stdout=out)
    by_board = {p["board"]: p for p in json.loads(out.getvalue())["proposals"]}
    assert by_board["H100-80GB"]["passthrough"] is False and by_board["H100-80GB"]["device_group"] is True
    assert by_board["A30-24GB"]["device_group"] is False
