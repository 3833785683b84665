"""`vcenter` and `inventory` commands: the DESIGN.md contract and bad input naming the option."""

import io
import json

import pytest
from django.core.management import CommandError, call_command

from inventory.models import VCenter
from tests.vcsim import LABS

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_add_list_remove(monkeypatch):
    monkeypatch.setenv("VC_PW", "s3cret-Pa55")
    assert "TLS verified" in run("vcenter", "add", "prod", "--url", "https://vc.example.com/sdk", "--user", "svc",
                                 "--password-env", "VC_PW")  # fmt: skip
    listing = run("vcenter", "list")
    assert "prod" in listing and "s3cret" not in listing
    assert VCenter.objects.get(name="prod").get_password() == "s3cret-Pa55"
    run("vcenter", "remove", "prod")
    assert not VCenter.objects.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["bad name", "--url", "https://x/sdk"], "name: "),
        (["ok", "--url", "not a url"], "url: "),
        (["ok", "--url", "https://x:port/sdk"], "url: "),
        (["ok", "--url", "https://x/sdk", "--password-env", "MISSING_VAR"], "--password-env: the environment variable"),
    ],
)
def test_add_rejects_bad_input(monkeypatch, args, message):
    monkeypatch.setenv("VC_PW", "x")
    base = ["vcenter", "add", *args, "--user", "u"]
    if "--password-env" not in args:
        base += ["--password-env", "VC_PW"]
    with pytest.raises(CommandError, match=message):
        call_command(*base)
    assert not VCenter.objects.exists()


def test_unknown_vcenter_is_named():
    for action in ("sync", "test", "remove"):
        with pytest.raises(CommandError, match="name: no vCenter named 'ghost'"):
            call_command("vcenter", action, "ghost")


def test_sync_against_the_lab_prints_a_summary(demo_lab, monkeypatch):
    monkeypatch.setenv("LAB_PW", demo_lab.password)
    run("vcenter", "add", "lab", "--url", demo_lab.url, "--user", demo_lab.username, "--password-env", "LAB_PW",
        "--ca-file", demo_lab.cert_path)  # fmt: skip
    assert "VMware vCenter Server" in run("vcenter", "test", "lab")
    summary = run("vcenter", "sync", "lab")
    assert "4 hosts, 18 GPUs, 7 VMs" in summary and "round trips" in summary


def test_sync_failure_exits_non_zero_with_the_reason(demo_lab, monkeypatch):
    monkeypatch.setenv("LAB_PW", "wrong-password")
    run("vcenter", "add", "lab", "--url", demo_lab.url, "--user", demo_lab.username, "--password-env", "LAB_PW",
        "--no-verify-tls")  # fmt: skip
    with pytest.raises(CommandError, match="rejected the login") as exc:
        call_command("vcenter", "sync", "lab")
    assert "wrong-password" not in str(exc.value)


def test_export_then_import_round_trips(tmp_path):
    run("inventory", "import", str(LABS / "demo.json"), "--vcenter", "demo")
    exported = json.loads(run("inventory", "export", "--vcenter", "demo"))
    assert set(exported) >= {"vcenters", "clusters", "hosts"}
    host = exported["hosts"][0]
    assert set(host) >= {"name", "cluster", "model", "numa_nodes", "assignment_policy", "gpus", "links", "domains"}
    gpu = host["gpus"][0]
    assert set(gpu) >= {"pci_id", "device_id", "model", "memory_mb", "numa_node", "pcie_path", "graphics_type",
                        "vgpu_mode", "mig_enabled", "profiles", "consumers"}  # fmt: skip
    path = tmp_path / "export.json"
    path.write_text(json.dumps(exported))
    assert "(0 hosts created" in run("inventory", "import", str(path), "--vcenter", "demo")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{bad", "is not valid JSON"),
        ('{"hosts": [{"name": 5}]}', r"\$.hosts\[0\].name: must be str"),
        ("[]", r"\$: the document must be a JSON object"),
    ],
)
def test_import_reports_bad_files(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(CommandError, match=message):
        call_command("inventory", "import", str(path))


def test_export_of_an_unknown_vcenter_is_named():
    with pytest.raises(CommandError, match="--vcenter: no vCenter named 'ghost'"):
        call_command("inventory", "export", "--vcenter", "ghost")
