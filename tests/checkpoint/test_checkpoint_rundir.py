"""The run-directory layout module: reading a run's config with errors that name the path, and
the readers of run directories (policy loading, evaluation, comparison) free of trainer code."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from heartgrid.recipes import build_config
from heartgrid.rundir import CONFIG_FILE, RunConfigError, read_run_config

REPO = Path(__file__).resolve().parents[2]


def test_read_run_config_round_trip_and_errors_name_the_path(tmp_path: Path) -> None:
    overrides = [f"data_dir={tmp_path}", "run=r", "trainer.gamma=0.9"]
    config = build_config("small_easy_shaped", overrides, default_device="cpu")
    config.run_dir.mkdir()
    no_file = rf"^{re.escape(str(config.run_dir))}: no config.json \(not a run directory written by"
    with pytest.raises(RunConfigError, match=no_file):
        read_run_config(config.run_dir)
    path = config.run_dir / CONFIG_FILE
    path.write_text(config.to_json())
    assert read_run_config(config.run_dir) == config

    invalid = rf"^{re.escape(str(path))}: invalid config:\n  "
    path.write_text('{"trainer": {"gamma": "high"}}')
    with pytest.raises(RunConfigError, match=invalid + "trainer.gamma: Input should be a valid number"):
        read_run_config(config.run_dir)
    path.write_text("{oops")
    with pytest.raises(RunConfigError, match=invalid + "<config>: Invalid JSON"):
        read_run_config(config.run_dir)


IMPORTS = """
import sys
import heartgrid.rundir
heavy = sorted(m for m in ("torch", "pydantic", "heartgrid.config") if m in sys.modules)
import heartgrid.compare.baseline
heavy_for_a_baseline = "torch" in sys.modules
import heartgrid.checkpoint, heartgrid.evaluation, heartgrid.compare.ab, heartgrid.compare.regress
import heartgrid.tools.eval_cmd, heartgrid.tools.plot
print(heavy, heavy_for_a_baseline, sorted(m for m in sys.modules if m.startswith("heartgrid.trainer")))
"""


def test_run_directory_readers_import_no_trainer_code() -> None:
    proc = subprocess.run([sys.executable, "-c", IMPORTS], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[] False []"
