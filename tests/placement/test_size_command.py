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
    assert line.strip() == "L4-24GB: 187.4 GiB exceeds 8 GPUs (each 22.4 GiB from 24 GB nominal, not in the inventory)"
