import io
import json

import pytest
from django.core.management import CommandError, call_command

ARGS = ["--params-b", "70", "--layers", "80", "--kv-heads", "8", "--head-dim", "128", "--context", "8192"]


def test_size_shows_every_term_and_a_proposal_per_board():
    out = io.StringIO()
    call_command("size", *ARGS, "--seqs", "16", "--json", stdout=out)
    doc = json.loads(out.getvalue())
    assert round(doc["weights_gb"], 1) == 130.4 and round(doc["kv_cache_gb"], 1) == 40.0
    assert doc["total_gb"] == pytest.approx(doc["weights_gb"] + doc["kv_cache_gb"] + doc["overhead_gb"])
    h100 = next(p for p in doc["proposals"] if p["board"] == "H100-80GB")
    assert h100["gpus"] == 4
    assert any(line.startswith("KV cache: 2 (K and V) x 80 layers") for line in doc["explain"])


def test_bad_sizes_name_the_option():
    with pytest.raises(CommandError, match="--seqs: must be positive"):
        call_command("size", *ARGS, "--seqs", "0")
