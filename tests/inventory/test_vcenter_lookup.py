"""Every command that names a vCenter (``NAME`` or ``--vcenter``) finds it ignoring case, as ``vcenter add`` compares
names, and refuses an unknown or removed one in the same words, listing the names there are (trial B, finding 7)."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command

from inventory import services
from inventory.models import Host, VCenter
from tests import factories
from tests.vcsim import LABS

pytestmark = pytest.mark.django_db

L40S = "esx-l40s-01.lab.local"


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def refused(*args: str) -> str:
    with pytest.raises(CommandError) as info:
        run(*args)
    return str(info.value)


@pytest.fixture
def two_vcenters() -> None:
    document = json.loads((LABS / "demo.json").read_text())
    for name in ("vc1", "vc3"):
        services.import_inventory(document=document, vcenter_name=name)


@pytest.mark.parametrize(
    "args",
    [
        ("topology", "show", "--host", L40S),
        ("topology", "rebuild", "--host", L40S),
        ("topology", "rebuild"),
        ("topology", "import-smi", "capture.txt", "--host", L40S),
        ("topology", "import-vgpu", "vgpu.txt", "--host", L40S),
        ("topology", "override", "--host", L40S, "--gpus", "0000:38:00.0,0000:98:00.0", "--kind", "SYS"),
        ("inventory", "export"),
    ],
    ids=lambda a: " ".join(a[:2]),
)
def test_an_unknown_or_removed_vcenter_option_is_named_with_the_choices(two_vcenters, args):
    assert refused(*args, "--vcenter", "nope") == "--vcenter: no vCenter named 'nope'; choices: vc1, vc3"
    VCenter.objects.get(name="vc3").delete()  # what `vcenter remove vc3` does
    assert refused(*args, "--vcenter", "vc3") == "--vcenter: no vCenter named 'vc3'; choices: vc1"


def test_topology_finds_the_vcenter_ignoring_case(two_vcenters):
    assert run("topology", "show", "--host", L40S, "--vcenter", "VC3").startswith(f"{L40S}: 4 GPUs")
    assert "rebuilt 5 hosts" in run("topology", "rebuild", "--vcenter", "Vc1")
    message = refused("topology", "show", "--host", "ghost", "--vcenter", "VC3")
    assert message == "no host named 'ghost' in vCenter 'vc3'"


def test_export_finds_the_vcenter_ignoring_case(two_vcenters):
    document = json.loads(run("inventory", "export", "--vcenter", "VC3"))
    assert [v["name"] for v in document["vcenters"]] == ["vc3"]


@pytest.mark.parametrize(
    "args",
    [("sync",), ("test",), ("remove",), ("cancel",), ("set", "--enable")],
    ids=lambda a: a[0],
)
def test_vcenter_subcommands_refuse_an_unknown_name_with_the_choices(args):
    factories.VCenterFactory(name="vc1")
    action, *rest = args
    assert refused("vcenter", action, "nope", *rest) == "vcenter name: no vCenter named 'nope'; choices: vc1"


def test_watch_refuses_an_unknown_name_with_the_choices():
    assert refused("watch_vcenter", "nope") == "vcenter name: no vCenter named 'nope'; choices: none"


def test_vcenter_subcommands_find_the_name_ignoring_case(lab_vcenter):
    assert "VMware vCenter Server" in run("vcenter", "test", "LAB")
    summary = run("vcenter", "sync", "LAB")
    assert summary.startswith("Synced lab in ") and "5 hosts, 20 GPUs, 8 VMs" in summary
    assert refused("vcenter", "cancel", "Lab") == "lab: no queued sync to cancel; nothing is pending"
    assert run("vcenter", "set", "LAB", "--interval", "15").startswith("Changed vCenter lab (--interval)")
    assert Host.objects.filter(vcenter=lab_vcenter).exists()
    assert run("vcenter", "remove", "LaB").startswith("Removed vCenter lab\n")
    assert not VCenter.objects.exists()
