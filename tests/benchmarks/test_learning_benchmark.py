"""The standing learning benchmark (benchmarks/learning_vs_sb3.py) runs both sides end to end
and reports what it promises: the windows table, the diagnostics and agent-steps/s per side."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_heartgrid_and_sb3_side_by_side(tmp_path: Path):
    out = tmp_path / "bench.json"
    # 3 rollouts per side; episodes of 20 steps so that both sides finish many.
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "learning_vs_sb3.py"), "--steps", "18432",
         "--seeds", "1", "--jobs", "2", "--window", "6144", "--override", "game.max_steps=20",
         "--json", str(out)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "heartgrid hearts" in result.stdout and "sb3 hearts" in result.stdout
    report = json.loads(out.read_text())
    assert [row["step"] for row in report["windows"]] == [6144, 12288, 18432]
    assert {r["side"] for r in report["runs"]} == {"heartgrid", "sb3"}
    for run in report["runs"]:
        assert run["steps"] == 18432 and len(run["episodes"]) > 20, run["side"]
        assert len(run["diagnostics"]) == 3, run["side"]  # one update per rollout
        assert all(0 <= d["clipfrac"] <= 1 and d["entropy"] > 0 for _, d in run["diagnostics"])
    for side in ("heartgrid", "sb3"):
        assert report["summary"][side]["sps"] > 0


def test_a_bad_override_is_a_usage_error(tmp_path: Path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "learning_vs_sb3.py"), "--steps", "100",
         "--override", "trainer.learnig_rate=1"], capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert result.returncode == 2 and "learnig_rate" in result.stderr
    assert "Traceback" not in result.stderr


def test_settings_sb3_cannot_mirror_are_refused(tmp_path: Path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "learning_vs_sb3.py"), "--steps", "100",
         "--override", "trainer.optimizer.type=muon"], capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert result.returncode == 2 and "cannot mirror trainer.optimizer.type" in result.stderr
