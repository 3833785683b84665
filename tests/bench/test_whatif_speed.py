"""bench/whatif_speed.py with tiny run counts: every scenario runs and reports (no timings asserted)."""

from __future__ import annotations

import json
import sys

from bench import whatif_speed


def test_every_scenario_runs_and_is_written(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(whatif_speed, "RESULTS", tmp_path)
    monkeypatch.setattr(sys, "argv", ["whatif_speed.py", "--single", "60", "--cluster", "20", "--workers", "1"])
    assert whatif_speed.main() == 0
    doc = json.loads((tmp_path / "whatif_speed.json").read_text())
    assert [r["runs"] for r in doc["rows"]] == [60, 60, 20, 20, 20]
    assert all(r["runs_per_second"] > 0 and r["siloed_gb"]["max"] >= r["siloed_gb"]["p50"] for r in doc["rows"])
    assert "runs/s" in capsys.readouterr().out
