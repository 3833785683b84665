#!/usr/bin/env python
"""README screenshots from the demo lab, taken with Debian's Chromium through Playwright.

Loads the demo lab (what `make demo` serves) into a scratch SQLite database, runs the development server on
it, signs in as a scratch superuser and captures every shot in SHOTS into docs/ (or --out).

    .venv/bin/python tools/screenshots.py                  # every shot
    .venv/bin/python tools/screenshots.py overview         # only the named ones
    .venv/bin/python tools/screenshots.py --out var/shots  # somewhere else

To add a shot, append a Shot to SHOTS: a file name, a path (a callable gets the server's base URL and the
ids of the demo objects and returns the path) and optionally a ``prepare(page, ids)`` callable that clicks
or fills things before the capture (e.g. a placement request).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.request import urlopen

REPO = Path(__file__).resolve().parent.parent
DEMO_LAB = REPO / "tools" / "vcsim" / "labs" / "demo.json"
CHROMIUM = "/usr/bin/chromium"
USERNAME, PASSWORD = "screenshots", "Screenshots-Passw0rd-1"
HGX_HOST = "esx-hgx-01.lab.local"
VIEWPORT = {"width": 1440, "height": 900}


@dataclass(frozen=True)
class Shot:
    name: str  # file name under the output folder
    path: Callable[[dict], str] | str
    prepare: Callable | None = None  # prepare(page, ids) before the capture
    full_page: bool = True


def prepare_placement(page, ids: dict) -> None:
    """The sizing helper filled for a 70B model, then a 2-GPU request typed as a person would (the results
    follow via htmx), with one why-not group open."""
    for field, value in (("params_b", "70"), ("layers", "80"), ("seqs", "4")):
        page.fill(f"#id_{field}", "")
        page.locator(f"#id_{field}").press_sequentially(value)
    page.locator("#sizing-results", has_text="total: 154.4 GiB").wait_for()
    page.fill("#id_gpus_per_vm", "")
    page.locator("#id_gpus_per_vm").press_sequentially("2")
    page.locator("#id_gpus_per_vm").blur()  # its change event now, not when the summary is clicked
    page.select_option("#id_interconnect", "same-pcie-switch")
    page.locator("#candidate-1").wait_for()
    page.wait_for_load_state("networkidle")  # the last results are in
    page.locator(".why-not summary").first.click()


SHOTS: list[Shot] = [
    Shot("overview.png", "/"),
    Shot("host-hgx.png", lambda ids: f"/inventory/hosts/{ids['hosts'][HGX_HOST]}/"),
    Shot("placement.png", "/placement/", prepare=prepare_placement),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare_database(env: dict) -> dict:
    """Migrate a scratch database, import the demo lab, create the user; returns the ids shots need."""
    python = sys.executable
    subprocess.run([python, "manage.py", "migrate", "--noinput", "-v0"], cwd=REPO, env=env, check=True)
    subprocess.run(
        [python, "manage.py", "inventory", "import", str(DEMO_LAB), "--vcenter", "demo-lab"],
        cwd=REPO,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    script = f"""
import json
from django.contrib.auth import get_user_model
from inventory.models import Cluster, Host
get_user_model().objects.create_superuser({USERNAME!r}, password={PASSWORD!r})
print(json.dumps({{"hosts": dict(Host.objects.values_list("name", "pk")),
                  "clusters": dict(Cluster.objects.values_list("name", "pk"))}}))
"""
    out = subprocess.run(
        [python, "manage.py", "shell", "-c", script], cwd=REPO, env=env, check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def wait_for(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urlopen(url, timeout=2):  # noqa: S310 - our own local server
                return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"the server at {url} did not answer within {timeout:.0f} s")


def capture(base: str, ids: dict, shots: list[Shot], out: Path) -> list[Path]:
    from playwright.sync_api import sync_playwright

    written = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport=VIEWPORT, device_scale_factor=1)
        page.goto(f"{base}/accounts/login/")
        page.fill("input[name=username]", USERNAME)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_load_state("networkidle")
        for shot in shots:
            path = shot.path(ids) if callable(shot.path) else shot.path
            page.goto(base + path)
            page.wait_for_load_state("networkidle")
            if shot.prepare is not None:
                shot.prepare(page, ids)
                page.wait_for_load_state("networkidle")
            target = out / shot.name
            page.screenshot(path=str(target), full_page=shot.full_page)
            written.append(target)
            print(f"{target.relative_to(REPO) if target.is_relative_to(REPO) else target}  <- {path}")
        browser.close()
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="shot names (file names without .png); default: all")
    parser.add_argument("--out", type=Path, default=REPO / "docs", help="output folder (default docs/)")
    args = parser.parse_args(argv)
    wanted = {n.removesuffix(".png") for n in args.names}
    shots = [s for s in SHOTS if not wanted or s.name.removesuffix(".png") in wanted]
    if not shots:
        parser.error(f"no shot named {', '.join(sorted(wanted))}; known: {', '.join(s.name for s in SHOTS)}")
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"{CHROMIUM} is missing (apt-get install chromium)")
    args.out.mkdir(parents=True, exist_ok=True)

    scratch = Path(tempfile.mkdtemp(prefix="screenshots-"))
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{scratch / 'db.sqlite3'}", "DJANGO_DEBUG": "false"}
    env.pop("REDIS_URL", None)  # tasks eager, in-process
    port = free_port()
    server = None
    try:
        ids = prepare_database(env)
        server = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload", "--insecure"],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        wait_for(f"{base}/healthz")
        capture(base, ids, shots, args.out)
    finally:
        if server is not None:  # only the server this script started
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
