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


@pytest.fixture
def run_with_a_corrupt_newest_checkpoint(tmp_path: Path) -> Path:
    """A small run with checkpoints of epochs 1 and 2 (policy weights fit its game); epoch 2's
    weights are damaged."""
    import torch

    from heartgrid.checkpoint import CheckpointManager
    from heartgrid.config.run import PolicyConfig
    from heartgrid.engine.batched import BatchedEngine
    from heartgrid.policies import make_policy

    config = build_config("small_easy_shaped", ["system.device=cpu", "game.max_steps=10",
                                                f"data_dir={tmp_path}", "run=r"])
    config.run_dir.mkdir()
    (config.run_dir / CONFIG_FILE).write_text(config.to_json())
    engine = BatchedEngine(config.game, 1)
    torch.manual_seed(0)
    policy = make_policy(PolicyConfig(hidden_size=16, lstm_layers=1), engine.features, engine.action_names,
                         engine.obs_shape)
    manager = CheckpointManager(config.run_dir)
    for epoch in (1, 2):
        manager.save(epoch, 128 * epoch, policy, {"epoch": epoch})
    (config.run_dir / "checkpoints" / "epoch_000002" / "policy.safetensors").write_bytes(b"\0" * 64)
    return config.run_dir


def test_a_checkpoint_fallback_warns_in_one_line(run_with_a_corrupt_newest_checkpoint: Path, capsys) -> None:
    """Not Python's `path.py:129: CheckpointWarning: ...` plus the `warnings.warn(...)` line."""
    from heartgrid.tools.cli import main

    run_dir = run_with_a_corrupt_newest_checkpoint
    argv = ["eval", str(run_dir), "--episodes", "1", "--num-envs", "1", "--device", "cpu"]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    newest = run_dir / "checkpoints" / "epoch_000002"
    (line,) = err.splitlines()  # one line, and no source line (`  warnings.warn(...)`) after it
    assert line.startswith(f"heartgrid eval: warning: refusing checkpoint {newest}: policy.safetensors is "
                           "64 bytes but the manifest says ")
    assert line.endswith("; trying an older one")
    assert out.startswith(f"policy   {run_dir}/checkpoints/epoch_000001 ")


def test_eval_on_a_misspelled_recipe_suggests_the_closest(run_with_a_corrupt_newest_checkpoint: Path, capsys) -> None:
    from heartgrid.tools.cli import main

    checkpoint = run_with_a_corrupt_newest_checkpoint / "checkpoints" / "epoch_000001"
    assert main(["eval", str(checkpoint), "small_easy_shapd", "--device", "cpu"]) == 2
    assert "error: unknown recipe 'small_easy_shapd'; did you mean 'small_easy_shaped'?" in capsys.readouterr().err
