"""`manage.py plan` for pipelines (trial F-19): --rejected-limit and rejected_count as the API has them, and a
--reserve that reserves nothing with --json prints nothing on stdout (the error goes to stderr, exit 1), as every
other error of the command."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest
from django.core.management import CommandError, call_command

from inventory import services as inventory_services
from placement.models import Reservation
from tests.vcsim import LABS

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo(db):
    inventory_services.import_inventory(document=json.loads((LABS / "demo.json").read_text()), vcenter_name="demo")


def plan(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("plan", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_the_json_counts_every_rejection_and_rejected_limit_trims_the_list(demo):
    full = json.loads(plan("--all-clusters", "--gpus", "2", "--json")[0])
    assert full["rejected_count"] == len(full["rejected"]) >= 3
    trimmed = json.loads(plan("--all-clusters", "--gpus", "2", "--json", "--rejected-limit", "1")[0])
    assert trimmed["rejected_count"] == full["rejected_count"] and trimmed["rejected"] == full["rejected"][:1]
    none = json.loads(plan("--all-clusters", "--gpus", "2", "--json", "--rejected-limit", "0")[0])
    assert none["rejected"] == [] and none["rejected_count"] == full["rejected_count"]


def test_the_text_says_how_many_rejections_the_limit_left_out(demo):
    full = json.loads(plan("--all-clusters", "--gpus", "2", "--json")[0])
    text = plan("--all-clusters", "--gpus", "2", "--rejected-limit", "1")[0]
    assert sum(line.startswith("x  esx-") for line in text.splitlines()) == 1
    more = full["rejected_count"] - 1
    assert f"x  {more} more rejected host{'s' if more != 1 else ''} (--rejected-limit)" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--all-clusters", "--gpus", "1", "--rejected-limit", "-1"], "--rejected-limit: must be 0 or more"),
        (["--evacuate", "esx-a30-01.lab.local", "--rejected-limit", "1"], "--rejected-limit: does not apply"),
    ],
)
def test_a_bad_rejected_limit_names_the_option(demo, args, message):
    with pytest.raises(CommandError, match=message):
        plan(*args)


def test_a_failed_reserve_with_json_prints_nothing_on_stdout(demo):
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError, match="--reserve: no host can take this request; nothing reserved"):
        call_command("plan", "--all-clusters", "--gpus", "16", "--reserve", "big", "--json", stdout=out, stderr=err)
    assert out.getvalue() == "" and not Reservation.objects.exists()
    # without --json a reader still sees why
    text = io.StringIO()
    with pytest.raises(CommandError):
        call_command("plan", "--all-clusters", "--gpus", "16", "--reserve", "big", stdout=text)
    assert "x  esx-" in text.getvalue()


def test_the_help_says_what_json_prints_on_an_error():
    text = subprocess.run(
        [sys.executable, "manage.py", "plan", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "--rejected-limit" in text and "prints nothing on stdout" in " ".join(text.split())
