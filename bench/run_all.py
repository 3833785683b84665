"""Run every benchmark in turn (``make bench``); each prints its own table and writes bench/results/*.json."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
SCRIPTS = (
    "placement_quality.py",
    "placement_speed.py",
    "sync_scale.py",
    "web.py",
    "plan_e2e.py",
    "load.py",
    "load_cpu.py",  # on the database load.py filled
    "whatif_speed.py",
)


def main() -> int:
    failed = []
    for script in SCRIPTS:
        print(f"\n######## {script}", flush=True)
        started = time.perf_counter()
        result = subprocess.run([sys.executable, str(BENCH / script)], check=False)
        print(f"######## {script}: exit {result.returncode} after {time.perf_counter() - started:.0f} s", flush=True)
        if result.returncode != 0:
            failed.append(script)
    print(f"\nresults in {BENCH / 'results'}; failed: {', '.join(failed) or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
