"""The layout of a run directory: the names its writer (the trainer) and its readers share.

    <data_dir>/<run>/config.json     the resolved RunConfig
                     metrics.jsonl   one flat JSON record per logged epoch, keyed by STEP_KEY (SPEC §4)
                     tb/             TensorBoard events
                     log.txt         a line per record, plus start/stop/resume messages
                     checkpoints/    heartgrid.checkpoint (SPEC §5)
                     stats.duckdb    suite evaluations while training (evaluation.suite)
                     restarts/<time>/  metrics of attempts stopped before their first checkpoint
                     .lock           held by the one process writing the directory (lock.py)

Policy loading, evaluation and the run comparisons read run directories without any training
code, so this module imports nothing at load time: not the trainer, not torch, and not the
pydantic config models (`read_run_config` imports those when it is called).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from heartgrid.config.run import RunConfig

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
TENSORBOARD_DIR = "tb"
LOG_FILE = "log.txt"
CHECKPOINTS_DIR = "checkpoints"
STATS_DB = "stats.duckdb"
"""Evaluations while training (heartgrid.evaluation's stats database; its shards and lock beside it)."""
RESTARTS_DIR = "restarts"
"""What a run stopped before its first checkpoint had logged, kept aside when it starts again."""

STEP_KEY = "metric/agent_step"
"""The key every metrics record is logged against (its x-axis, SPEC §4)."""


class RunConfigError(ValueError):
    """A run directory's config.json is missing or is not a valid RunConfig; names the path."""


def read_run_config(run_dir: str | Path) -> RunConfig:
    """The resolved config a run was trained with, from `<run_dir>/config.json`."""
    from pydantic import ValidationError

    from heartgrid.config.overrides import validation_message
    from heartgrid.config.run import RunConfig

    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise RunConfigError(f"{run_dir}: no {CONFIG_FILE} (not a run directory written by `heartgrid train`)")
    try:
        return RunConfig.from_json(path.read_text())
    except OSError as e:
        raise RunConfigError(f"{path}: unreadable: {e}") from None
    except ValidationError as e:  # invalid JSON is a ValidationError too (json_invalid)
        raise RunConfigError(f"{path}: {validation_message(e)}") from None
