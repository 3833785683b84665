"""Screenshot of a placement result for the README: docs/placement.png.

Self-contained: a throwaway SQLite database with the demo lab, a runserver on a free loopback port, Debian's
Chromium driven by Playwright (never a downloaded browser). Run from the repository root:

    .venv/bin/python tools/screenshot_placement.py [--out docs/placement.png]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
USER, PASSWORD = "screenshot-admin", "Screenshot-Passw0rd-123"
SETUP = """
import json
from pathlib import Path
from django.contrib.auth import get_user_model
from inventory.services import import_inventory
import_inventory(document=json.loads(Path("tools/vcsim/labs/demo.json").read_text()), vcenter_name="demo-lab")
get_user_model().objects.create_superuser({user!r}, password={password!r})
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 (loopback URL built above)
                return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"{url} did not answer within {timeout:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "placement.png")
    args = parser.parse_args()
    python = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp}/screenshot.sqlite3", "DJANGO_DEBUG": "true"}
        subprocess.run([python, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=REPO, env=env, check=True)
        subprocess.run(
            [python, "manage.py", "shell", "-c", SETUP.format(user=USER, password=PASSWORD)],
            cwd=REPO, env=env, check=True,
        )  # fmt: skip
        port = free_port()
        server = subprocess.Popen(
            [python, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            base = f"http://127.0.0.1:{port}"
            wait_for(f"{base}/healthz")
            shoot(base, args.out)
        finally:
            server.terminate()
            server.wait(timeout=20)
    print(f"wrote {args.out}")


def shoot(base: str, out: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.goto(f"{base}/accounts/login/")
        page.fill("input[name=username]", USER)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_load_state("networkidle")
        page.goto(f"{base}/placement/")
        page.fill("#id_gpus_per_vm", "2")
        page.select_option("#id_interconnect", "same-pcie-switch")
        page.locator("#candidate-1").wait_for()
        page.locator(".why-not details").first.evaluate("d => d.open = true")
        out.parent.mkdir(parents=True, exist_ok=True)
        box = page.locator("#planner").bounding_box()
        pad = 12
        clip = {
            "x": box["x"] - pad,
            "y": box["y"] - pad,
            "width": box["width"] + 2 * pad,
            "height": box["height"] + 2 * pad,
        }
        page.screenshot(path=str(out), clip=clip, full_page=True)
        browser.close()


if __name__ == "__main__":
    main()
