"""`vcenter` and `inventory` commands: the DESIGN.md contract and bad input naming the option."""

import io
import json

import pytest
from django.core.management import CommandError, call_command

from inventory.models import VCenter
from tests import factories
from tests.inventory.cafiles import BAD_CA_FILES
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
        (["bad name", "--url", "https://x/sdk"], "vcenter name: "),
        (["ok", "--url", "not a url"], "--url: "),
        (["ok", "--url", "https://x:port/sdk"], "--url: "),
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


def add(*args: str) -> str:
    return run("vcenter", "add", *args, "--user", "svc", "--password-env", "VC_PW")


@pytest.mark.parametrize(
    "url", ["https://vcsa01/sdk", "https://vcsa01:8443/sdk", "https://10.0.0.5/sdk", "https://[fd00::10]:8443/sdk"]
)
def test_add_accepts_short_host_names_and_addresses(monkeypatch, url):
    monkeypatch.setenv("VC_PW", "x")
    assert f"Added vCenter prod ({url}," in add("prod", "--url", url)
    assert VCenter.objects.get(name="prod").url == url


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://vc.example.com/sdk", "--url: vCenter's API is HTTPS only: use https://vc.example.com/sdk"),
        ("ftp://vc.example.com/sdk", "--url: Enter a valid URL: vCenter's API is HTTPS only, not ftp://"),
        ("vcsa01/sdk", "--url: Enter a valid URL: it must start with https:// (did you mean https://vcsa01/sdk?)"),
        ("https://vc example/sdk", "--url: Enter a valid URL: it must not contain spaces"),
        ("https:///sdk", "--url: Enter a valid URL: the host is missing"),
    ],
)
def test_add_refuses_urls_other_than_https_to_a_host_with_the_reason(monkeypatch, url, message):
    monkeypatch.setenv("VC_PW", "x")
    with pytest.raises(CommandError) as info:
        add("prod", "--url", url)
    assert str(info.value).startswith(message)
    assert not VCenter.objects.exists()


def test_add_accepts_a_pem_ca_file(monkeypatch, ca_files):
    monkeypatch.setenv("VC_PW", "x")
    add("prod", "--url", "https://vcsa01/sdk", "--ca-file", ca_files["pem"])
    assert VCenter.objects.get(name="prod").ca_file == ca_files["pem"]


@pytest.mark.parametrize(("kind", "message"), BAD_CA_FILES.items())
def test_add_refuses_a_ca_file_that_does_not_load_with_the_reason(monkeypatch, ca_files, kind, message):
    monkeypatch.setenv("VC_PW", "x")
    with pytest.raises(CommandError) as info:
        add("prod", "--url", "https://vcsa01/sdk", "--ca-file", ca_files[kind])
    assert str(info.value).startswith(f"--ca-file: {ca_files[kind]!r} {message}")
    assert not VCenter.objects.exists()


def test_add_names_every_bad_field(monkeypatch, ca_files):
    monkeypatch.setenv("VC_PW", "x")
    with pytest.raises(CommandError, match=r"^--url: vCenter's API is HTTPS only.*; --ca-file: .* does not exist"):
        add("prod", "--url", "http://vcsa01/sdk", "--ca-file", ca_files["missing"])


def test_a_stored_http_vcenter_is_listed_and_its_test_names_the_problem():
    factories.VCenterFactory(name="old", url="http://vc-old.example.com/sdk")  # stored before the checks
    assert "old\thttp://vc-old.example.com/sdk\t" in run("vcenter", "list")
    with pytest.raises(CommandError) as info:
        call_command("vcenter", "test", "old")
    assert str(info.value) == "url: vCenter's API is HTTPS only: use https://vc-old.example.com/sdk"


def test_unknown_vcenter_is_named():
    for action in ("sync", "test", "remove"):
        with pytest.raises(CommandError, match=r"^vcenter name: no vCenter named 'ghost'"):
            call_command("vcenter", action, "ghost")


def test_sync_against_the_lab_prints_a_summary(demo_lab, monkeypatch):
    monkeypatch.setenv("LAB_PW", demo_lab.password)
    run("vcenter", "add", "lab", "--url", demo_lab.url, "--user", demo_lab.username, "--password-env", "LAB_PW",
        "--ca-file", demo_lab.cert_path)  # fmt: skip
    assert "VMware vCenter Server" in run("vcenter", "test", "lab")
    summary = run("vcenter", "sync", "lab")
    assert "5 hosts, 20 GPUs, 8 VMs" in summary and "round trips" in summary


def test_sync_queue_without_a_broker_runs_here_and_says_so(demo_lab, monkeypatch, settings, caplog):
    """The embedded mode (make demo) has no worker: --queue runs the sync in the process, without Celery's logs."""
    settings.REDIS_URL = ""
    monkeypatch.setenv("LAB_PW", demo_lab.password)
    run("vcenter", "add", "lab", "--url", demo_lab.url, "--user", demo_lab.username, "--password-env", "LAB_PW",
        "--ca-file", demo_lab.cert_path)  # fmt: skip
    out, err = io.StringIO(), io.StringIO()
    call_command("vcenter", "sync", "lab", "--queue", stdout=out, stderr=err)
    assert err.getvalue() == "no task queue (REDIS_URL is not set): running the sync in this process\n"
    assert "5 hosts, 20 GPUs, 8 VMs" in out.getvalue()
    assert not [r for r in caplog.records if r.name.startswith(("kombu", "celery"))]


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


def test_set_rotates_the_password_and_the_ca_file_and_names_what_it_refuses(monkeypatch, ca_files):
    """An SRE rotating a vCenter's password or its certificate had only the page or the API (a trial)."""
    monkeypatch.setenv("VC_PW", "Old-Pa55word")
    run("vcenter", "add", "prod", "--url", "https://vc.example.com/sdk", "--user", "svc", "--password-env", "VC_PW")
    monkeypatch.setenv("VC_NEW", "New-Pa55word")
    out = run("vcenter", "set", "prod", "--password-env", "VC_NEW", "--interval", "15")
    assert "Changed vCenter prod (--interval, --password-env)" in out and "New-Pa55word" not in out
    vc = VCenter.objects.get(name="prod")
    assert (vc.get_password(), vc.sync_interval_minutes) == ("New-Pa55word", 15)
    with pytest.raises(CommandError, match=r"--password-env: required when the CA file changes"):
        run("vcenter", "set", "prod", "--ca-file", ca_files["pem"])  # a new CA needs the password again
    run("vcenter", "set", "prod", "--ca-file", ca_files["pem"], "--password-env", "VC_NEW", "--disable")
    vc.refresh_from_db()
    assert (vc.ca_file, vc.enabled, vc.get_password()) == (ca_files["pem"], False, "New-Pa55word")
    with pytest.raises(CommandError, match=r"--password-env: required when TLS verification is turned off"):
        run("vcenter", "set", "prod", "--no-verify-tls")
    with pytest.raises(CommandError, match=r"--interval: "):
        run("vcenter", "set", "prod", "--interval", "0")
    with pytest.raises(CommandError, match="nothing to change"):
        run("vcenter", "set", "prod")
    with pytest.raises(CommandError, match="vcenter name: no vCenter named 'nope'"):
        run("vcenter", "set", "nope", "--enable")


def test_cancel_drops_the_queued_sync_and_says_why_when_there_is_none():
    vcenter = factories.VCenterFactory(name="lab2")
    run_ = factories.SyncRunFactory(vcenter=vcenter, status="queued", started_at=None, finished_at=None)
    out = run("vcenter", "cancel", "lab2")
    assert f"sync #{run_.pk} of lab2: skipped: cancelled by manage.py vcenter cancel at " in out
    run_.refresh_from_db()
    assert run_.status == "skipped"
    with pytest.raises(CommandError, match="lab2: no queued sync to cancel; nothing is pending"):
        run("vcenter", "cancel", "lab2")
    running = factories.SyncRunFactory(vcenter=vcenter, status="running", finished_at=None)
    with pytest.raises(CommandError, match=f"sync #{running.pk} is running \\(it ends by itself\\)"):
        run("vcenter", "cancel", "lab2")
