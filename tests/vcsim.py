"""Start the vcsim GPU lab (tools/vcsim/gpulab) for tests and benchmarks."""

from __future__ import annotations

import signal
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GPULAB = REPO / "tools" / "vcsim" / "gpulab"
LABS = REPO / "tools" / "vcsim" / "labs"
USER = "administrator@vsphere.local"
PASSWORD = "lab-Passw0rd!"


@dataclass
class Lab:
    url: str
    username: str
    password: str
    cert_path: str
    lab_path: Path
    process: subprocess.Popen = field(repr=False)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def kill(self) -> None:
        """Die like a crashed vCenter: no clean shutdown."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def start_lab(lab_path: Path | str, *, delay_ms: int = 0, listen: str = "127.0.0.1:0") -> Lab:
    if not GPULAB.exists():
        raise FileNotFoundError(f"{GPULAB} is not built: run `make vcsim` (bash tools/vcsim/build.sh)")
    with tempfile.NamedTemporaryFile(prefix="gpulab-", suffix=".pem", delete=False) as cert:
        pass
    args = [
        str(GPULAB),
        "-lab",
        str(lab_path),
        "-listen",
        listen,
        "-username",
        USER,
        "-password",
        PASSWORD,
        "-cert-out",
        cert.name,
    ]
    if delay_ms:
        args += ["-delay-ms", str(delay_ms)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline().strip() if proc.stdout else ""
    if not line.startswith("READY "):
        proc.kill()
        err = proc.stderr.read() if proc.stderr else ""
        raise RuntimeError(f"gpulab did not start: {line!r} {err[-2000:]}")
    return Lab(
        url=line.split(" ", 1)[1],
        username=USER,
        password=PASSWORD,
        cert_path=cert.name,
        lab_path=Path(lab_path),
        process=proc,
    )


def free_port_url(url: str) -> str:
    """A URL on a port nothing listens on (for unreachable-vCenter tests)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"https://127.0.0.1:{port}/sdk"
