"""`manage.py plan` and `whatif`: numbers out of range, options that do not apply to --evacuate, the --vcenter
lookup and a host gone from vCenter are refused in one line naming the option (trial B, findings 3 and 7)."""

from __future__ import annotations

import io
import json
import os

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from inventory import services as inventory_services
from inventory.models import Host, VCenter
from tests.vcsim import LABS

pytestmark = pytest.mark.django_db

L40S = "esx-l40s-01.lab.local"
H100 = "esx-h100nvl-01.lab.local"


def lab() -> dict:
    return json.loads((LABS / "demo.json").read_text())


@pytest.fixture
def vc3() -> dict:
    document = lab()
    inventory_services.import_inventory(document=document, vcenter_name="vc3")
    return document


def refused(*args: str) -> tuple[str, str]:
    """The error and what was printed before it."""
    out = io.StringIO()
    with pytest.raises(CommandError) as info:
        call_command("plan", *args, stdout=out)
    return str(info.value), out.getvalue()


# ---------------------------------------------------------------------------------------------- --limit


@pytest.mark.parametrize("limit", ["0", "-3"])
@pytest.mark.parametrize("as_json", [False, True])
def test_a_limit_below_1_is_refused_before_planning(vc3, limit, as_json):
    message, printed = refused("--all-clusters", "--gpus", "1", "--limit", limit, *(["--json"] if as_json else []))
    assert (message, printed) == ("--limit: must be 1 or more", "")


def test_a_limit_of_1_shows_one_candidate(vc3):
    out = io.StringIO()
    call_command("plan", "--all-clusters", "--gpus", "1", "--limit", "1", "--json", stdout=out)
    assert len(json.loads(out.getvalue())["candidates"]) == 1


# ---------------------------------------------------------------------------------------------- --evacuate


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--gpus", "2"),
        ("--consumption", "vgpu"),
        ("--profile", "grid_l40s-8q"),
        ("--vms", "1"),
        ("--anti-affinity", None),
        ("--board", "L40S-48GB"),
        ("--min-framebuffer-gb", "8"),
        ("--interconnect", "any"),
        ("--vcpus", "0"),
        ("--memory-mb", "0"),
        ("--busy", "0"),
        ("--csv", "modules.csv"),
        ("--limit", "1"),
        ("--reserve", "vm-x"),
        ("--ttl", "30"),
    ],
)
def test_a_request_option_is_refused_with_evacuate(vc3, option, value):
    args = [option] if value is None else [option, value]
    message, printed = refused("--evacuate", L40S, "--vcenter", "vc3", *args)
    assert (message, printed) == (f"{option}: does not apply to --evacuate", "")


def test_evacuate_names_an_unknown_or_removed_vcenter_with_the_choices(vc3):
    inventory_services.import_inventory(document=lab(), vcenter_name="vc1")
    message, _ = refused("--evacuate", L40S, "--vcenter", "nope")
    assert message == "--vcenter: no vCenter named 'nope'; choices: vc1, vc3"
    VCenter.objects.get(name="vc1").delete()
    assert refused("--evacuate", L40S, "--vcenter", "vc1")[0] == "--vcenter: no vCenter named 'vc1'; choices: vc3"


def test_evacuate_finds_the_vcenter_ignoring_case(vc3):
    inventory_services.import_inventory(document=lab(), vcenter_name="vc1")  # the name alone is ambiguous
    out = io.StringIO()
    with pytest.raises(CommandError, match="GPU VMs cannot move"):  # vc3 has no other L40S host
        call_command("plan", "--evacuate", L40S, "--vcenter", "VC3", "--json", stdout=out)
    document = json.loads(out.getvalue())
    assert (document["host"], document["vcenter"]) == (L40S, "vc3")


def test_evacuating_a_host_gone_from_vcenter_says_so_and_exits_non_zero(vc3):
    vc3["hosts"] = [h for h in vc3["hosts"] if h["name"] != H100]
    vc3["vms"] = [v for v in vc3["vms"] if v["host"] != H100]
    inventory_services.import_inventory(document=vc3, vcenter_name="vc3")  # what the next sync does
    host = Host.objects.get(name=H100)
    assert host.stale and host.last_seen
    since = f"{timezone.localtime(host.last_seen):%Y-%m-%d %H:%M}"
    for extra in ([], ["--json"], ["--vcenter", "vc3"]):
        message, printed = refused("--evacuate", H100, *extra)
        assert message == (
            f"--evacuate: host {H100} is stale since {since}: gone from vCenter vc3 (last seen by the sync of that "
            "time), so it runs no VMs to move"
        )
        assert printed == ""


def test_evacuating_a_live_host_still_plans(vc3):
    out = io.StringIO()
    with pytest.raises(CommandError, match="GPU VMs cannot move"):
        call_command("plan", "--evacuate", L40S, stdout=out)
    assert out.getvalue().startswith(f"Evacuating {L40S} (vc3): ")


# ---------------------------------------------------------------------------------------------- whatif --workers


@pytest.mark.parametrize("workers", ["0", "-3", "100000"])
def test_whatif_refuses_a_worker_count_out_of_range(workers):
    most = max(2, os.cpu_count() or 1)
    with pytest.raises(CommandError) as info:
        call_command("whatif", "--runs", "1", "--workers", workers, stdout=io.StringIO())
    assert str(info.value) == f"--workers: must be between 1 and {most} (this machine's CPUs), not {workers}"
