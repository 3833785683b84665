"""manage.py itself: how it ends when its output cannot be written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_a_reader_that_closes_the_pipe_ends_the_command_quietly():
    """Trial G #10: `plan --all-clusters --gpus 1 | head -1` ended in a BrokenPipeError traceback."""
    capture = REPO / "tests" / "data" / "topo" / "l40s-4x-aws-g6e12xlarge-vm.txt"
    process = subprocess.Popen(
        [sys.executable, "manage.py", "plan", "--smi", str(capture), "--gpus", "1", "--json"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    process.stdout.close()  # the reader is gone before the command writes a line
    stderr = process.stderr.read().decode()
    process.stderr.close()
    assert process.wait(timeout=120) == 141
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr, stderr
