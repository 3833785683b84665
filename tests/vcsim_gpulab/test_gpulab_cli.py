"""The gpulab command line: a busy -listen address is one line and exit 1, and leaves no -cert-out behind."""

from __future__ import annotations

import socket
import subprocess

import pytest

from tests.vcsim import LABS, start_lab

pytestmark = pytest.mark.vcsim


def _busy_port() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


@pytest.mark.reliability("vcsim lab", "listen address already in use")
def test_a_busy_port_is_one_line_exit_1_and_no_certificate(gpulab_binary, tmp_path):
    cert = tmp_path / "lab.pem"
    with _busy_port() as busy:
        address = f"127.0.0.1:{busy.getsockname()[1]}"
        proc = subprocess.run(
            [str(gpulab_binary), "-lab", str(LABS / "demo.json"), "-listen", address, "-cert-out", str(cert)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr == f"gpulab: listen {address}: address already in use\n"
    assert proc.stdout == ""
    assert not cert.exists()


def test_a_free_fixed_port_serves_writes_the_certificate_and_stops_cleanly(gpulab_binary):
    """SIGTERM right after READY is a clean exit 0 (the handler is installed before READY is printed)."""
    with _busy_port() as probe:
        port = probe.getsockname()[1]
    lab = start_lab(LABS / "demo.json", listen=f"127.0.0.1:{port}")
    try:
        assert lab.url == f"https://127.0.0.1:{port}/sdk"
        with open(lab.cert_path) as pem:
            assert pem.read().startswith("-----BEGIN CERTIFICATE-----")
    finally:
        lab.stop()
    assert lab.process.returncode == 0


@pytest.mark.reliability("vcsim lab", "bad lab file")
def test_vm_names_vcsim_cannot_create_are_refused_naming_the_field(gpulab_binary, tmp_path):
    """A security review's hostile lab crashed gpulab (a Go panic in vcsim's folder code) on a VM name with a slash
    or of 300 characters; such names are now lab errors like any other."""
    import json

    lab = json.loads((LABS / "demo.json").read_text())
    lab["vms"][0]["name"] = "chat</svg><script>x</script>"
    lab["vms"][1]["name"] = "v" * 81
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(lab))
    proc = subprocess.run([str(gpulab_binary), "-lab", str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and proc.stdout == ""
    assert 'lab: vms[0].name: "chat</svg><script>x</script>" contains a slash' in proc.stderr
    assert "lab: vms[1].name: 81 characters: vSphere allows at most 80" in proc.stderr
    assert "panic" not in proc.stderr


def test_a_boot_time_that_is_not_rfc3339_or_of_a_powered_off_vm_is_refused(gpulab_binary, tmp_path):
    import json

    lab = json.loads((LABS / "demo.json").read_text())
    lab["vms"][0]["boot_time"] = "2026-11-30 08:00"
    lab["vms"][1].update(boot_time="2026-11-30T08:00:00Z", power_state="poweredOff")
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(lab))
    proc = subprocess.run([str(gpulab_binary), "-lab", str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and proc.stdout == ""
    assert 'lab: vms[0].boot_time: "2026-11-30 08:00" is not an RFC 3339 time with a zone' in proc.stderr
    assert "lab: vms[1].boot_time: only a poweredOn VM has a boot time" in proc.stderr
