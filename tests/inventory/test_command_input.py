"""What the inventory commands accept: options spelled out in full, `vcenter add` checked like the API with errors
naming the option, secrets never echoed, and imports only into offline vCenters."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command, get_commands, load_command_class

from inventory import services
from inventory.management.base import InventoryCommand
from inventory.models import SyncRun, SyncStatus, VCenter
from tests import factories
from tests.vcsim import LABS

pytestmark = pytest.mark.django_db

SECRET = "S3cret!"
INVENTORY_COMMANDS = sorted(name for name, app in get_commands().items() if app == "inventory")


def add(*args: str, env: str = "VC_PW") -> str:
    out = io.StringIO()
    call_command("vcenter", "add", *args, "--user", "svc", "--password-env", env, stdout=out)
    return out.getvalue()


def refused(*args: str) -> str:
    with pytest.raises(CommandError) as info:
        call_command(*args)
    return str(info.value)


# ---------------------------------------------------------------------------------------------- abbreviations


def test_every_inventory_command_refuses_abbreviated_options():
    assert set(INVENTORY_COMMANDS) >= {"vcenter", "inventory", "topology", "watch_vcenter", "demo_admin"}
    for name in INVENTORY_COMMANDS:
        assert isinstance(load_command_class("inventory", name), InventoryCommand), name
    assert "unrecognized arguments: --verb" in refused("vcenter", "list", "--verb", "2")
    assert "unrecognized arguments: --vc" in refused("inventory", "export", "--vc", "demo")
    assert "unrecognized arguments: --ho" in refused("topology", "rebuild", "--ho", "esx-01")
    assert "unrecognized arguments: --max-w" in refused("watch_vcenter", "lab", "--max-w", "3")
    assert "unrecognized arguments: --user " in refused("demo_admin", "--user", "someone")


@pytest.mark.parametrize("args", [["--password", SECRET], [f"--password={SECRET}"], ["--passw", SECRET]])
def test_a_password_on_the_command_line_is_refused_without_echoing_it(monkeypatch, args):
    monkeypatch.setenv("VC_PW", "x")
    message = refused("vcenter", "add", "v11", "--url", "https://vc.example.com/sdk", "--user", "u", *args)
    assert SECRET not in message
    assert "--password-env" in message
    assert not VCenter.objects.exists()


@pytest.mark.parametrize("value", [SECRET, "my pass", "1PASSWORD", "x-y"])
def test_a_password_env_value_that_is_no_variable_name_is_not_echoed(value):
    message = refused("vcenter", "add", "v11", "--url", "https://vc.example.com/sdk", "--user", "u",
                      "--password-env", value)  # fmt: skip
    assert message.startswith("--password-env: that is not an environment variable name") and value not in message


def test_an_unset_or_empty_password_variable_is_named(monkeypatch):
    monkeypatch.delenv("VC_PW_MISSING", raising=False)
    monkeypatch.setenv("VC_PW_EMPTY", "")
    missing = refused("vcenter", "add", "v", "--url", "https://vc.example.com/sdk", "--user", "u",
                      "--password-env", "VC_PW_MISSING")  # fmt: skip
    assert missing == "--password-env: the environment variable 'VC_PW_MISSING' is not set"
    with pytest.raises(CommandError) as info:
        add("v", "--url", "https://vc.example.com/sdk", env="VC_PW_EMPTY")
    assert str(info.value) == "--password-env: the environment variable 'VC_PW_EMPTY' is empty"
    assert not VCenter.objects.exists()


# ---------------------------------------------------------------------------------------------- vcenter add


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--interval", "0"], "--interval: Ensure this value is greater than or equal to 1."),
        (["--interval", "-5"], "--interval: Ensure this value is greater than or equal to 1."),
        (["--interval", "99999999"], "--interval: Ensure this value is less than or equal to 10080."),
        (["--url", "http://vc.example.com/sdk"], "--url: vCenter's API is HTTPS only: use https://vc.example.com/sdk"),
    ],
)
def test_add_checks_like_the_api_and_names_the_option(monkeypatch, args, message):
    monkeypatch.setenv("VC_PW", "x")
    url = [] if "--url" in args else ["--url", "https://vc.example.com/sdk"]
    with pytest.raises(CommandError) as info:
        add("prod", *url, *args)
    assert str(info.value) == message
    assert not VCenter.objects.exists()


def test_add_names_the_options_of_every_bad_value(monkeypatch, ca_files):
    monkeypatch.setenv("VC_PW", "x")
    with pytest.raises(CommandError) as info:
        add("bad name", "--url", "https://vc.example.com/sdk", "--ca-file", ca_files["missing"], "--interval", "0")
    message = str(info.value)
    assert message.startswith("vcenter name: Enter a valid")
    assert "; --ca-file: " in message and "; --interval: " in message
    assert "ca_file" not in message and "sync_interval_minutes" not in message


def test_add_keeps_the_interval_it_is_given_and_defaults_to_5(monkeypatch):
    monkeypatch.setenv("VC_PW", "x")
    assert "sync every 10080 min" in add("weekly", "--url", "https://a.example.com/sdk", "--interval", "10080")
    assert "sync every 5 min" in add("default", "--url", "https://b.example.com/sdk")


def test_add_refuses_a_name_that_differs_only_in_case(monkeypatch):
    monkeypatch.setenv("VC_PW", "x")
    add("demo-lab", "--url", "https://a.example.com/sdk")
    with pytest.raises(CommandError) as info:
        add("DEMO-LAB", "--url", "https://b.example.com/sdk")
    assert str(info.value) == "vcenter name: a vCenter with this name already exists (names are compared ignoring case)"
    assert list(VCenter.objects.values_list("name", flat=True)) == ["demo-lab"]


# ---------------------------------------------------------------------------------------------- inventory import


def test_import_into_a_live_vcenter_is_refused_naming_vcenter(tmp_path):
    live = factories.VCenterFactory(name="lab", url="https://vcsa01/sdk", enabled=True)
    factories.SyncRunFactory(vcenter=live, trigger=SyncRun.Trigger.SCHEDULE, status=SyncStatus.SUCCESS)
    message = refused("inventory", "import", str(LABS / "demo.json"), "--vcenter", "lab")
    assert message.startswith("--vcenter: vCenter 'lab' is a live vCenter (")
    assert "synced from https://vcsa01/sdk" in message and message.endswith("name a new one")
    assert not live.hosts.exists()
    assert "--vcenter: vCenter 'lab' is a live vCenter" in refused(
        "inventory", "import", str(LABS / "demo.json"), "--vcenter", "LAB"
    )


def test_import_into_a_disabled_vcenter_with_a_password_is_refused_too():
    factories.VCenterFactory(name="parked", enabled=False)
    message = refused("inventory", "import", str(LABS / "demo.json"), "--vcenter", "parked")
    assert "it has a password to log in with" in message


def test_import_again_into_an_offline_vcenter_is_accepted_and_clears_its_last_error():
    vcenter, _ = services.import_inventory(document=json.loads((LABS / "demo.json").read_text()), vcenter_name="copy")
    VCenter.objects.filter(pk=vcenter.pk).update(last_error="an old failure", last_sync_status=SyncStatus.FAILED)
    out = io.StringIO()
    call_command("inventory", "import", str(LABS / "demo.json"), "--vcenter", "copy", stdout=out)
    assert "as vCenter 'copy'" in out.getvalue()
    vcenter.refresh_from_db()
    assert vcenter.last_error == "" and vcenter.last_sync_status == SyncStatus.SUCCESS


def test_import_under_a_bad_name_names_vcenter():
    message = refused("inventory", "import", str(LABS / "demo.json"), "--vcenter", "bad name")
    assert message.startswith("--vcenter: Enter a valid")


def test_import_prints_each_warning_it_counts(tmp_path):
    """Trial G #9: 'N warnings' was printed with no text; the warning was only in /api/hosts/."""
    doc = json.loads((LABS / "demo.json").read_text())
    host = next(h for h in doc["hosts"] if h["name"] == "esx-a100-01.lab.local")
    host["gpus"][0]["consumers"] = [{"vm": "chat-a", "kind": "vgpu", "profile": "grid_a100d-7c"}]
    path = tmp_path / "odd.json"
    path.write_text(json.dumps(doc))
    out = io.StringIO()
    call_command("inventory", "import", str(path), "--vcenter", "odd", stdout=out)
    text = out.getvalue()
    assert "1 warning)" in text
    assert "warning: esx-a100-01.lab.local: GPU " in text and "grid_a100d-7c, which the catalog cannot read" in text
