"""`train(config)`: a run directory from a resolved config, fresh or resumed (the CLI calls it).

    runs/<run>/config.json     the resolved RunConfig
               metrics.jsonl    one record per logged epoch (metric_contract.py)
               tb/              TensorBoard events
               log.txt          a line per record, plus start/stop/resume messages
               checkpoints/     heartgrid.checkpoint

A run directory belongs to one run. A fresh run needs a new name or `overwrite=True`; a
directory with a checkpoint is resumed, and only if the config is the one it was trained with
(apart from `RESUMABLE_CHANGES`): resuming with other settings would make a run whose config
file no longer says how it was trained.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from heartgrid.checkpoint import CheckpointManager
from heartgrid.checkpoint.durable import replace_file_atomically
from heartgrid.config.diff import diff_configs, format_diff
from heartgrid.config.run import RunConfig
from heartgrid.config.trainer import TrainerConfig
from heartgrid.rundir import CONFIG_FILE, read_run_config
from heartgrid.trainer.display import make_display
from heartgrid.trainer.health import LearningHealth
from heartgrid.trainer.logger import RunLogger
from heartgrid.trainer.trainer import Trainer


# Settings a resumed run may change: its name and place (a copied run directory resumes as a
# branch), how long to train (only where nothing follows training progress: see
# `progress_dependents`), and where the numbers are shown. A trailing "." covers a section.
RESUMABLE_CHANGES = ("run", "data_dir", "trainer.total_timesteps", "system.torch_threads", "logging.", "wandb.")


def resumable_change(path: str) -> bool:
    return any(path == allowed or (allowed.endswith(".") and path.startswith(allowed))
               for allowed in RESUMABLE_CHANGES)


class RunDirectoryError(ValueError):
    """The run directory cannot be used as asked (the CLI reports it as a usage error)."""


def train(config: RunConfig, *, resume: bool | None = None, overwrite: bool = False) -> Path:
    """Train `config` in `config.run_dir` and return that directory.

    resume: None = resume when the directory has a checkpoint, else start fresh; True = must
    resume; False = must start fresh. overwrite: delete the directory first (a fresh run).
    Ctrl-C finishes the current epoch, writes a checkpoint and returns normally; a second
    Ctrl-C aborts: KeyboardInterrupt propagates once the log and display are closed. When
    every checkpoint is corrupt, CheckpointError propagates and the directory is left as it was.
    """
    run_dir = config.run_dir
    resuming = prepare_run_dir(config, resume=resume, overwrite=overwrite)
    checkpoints = CheckpointManager(run_dir, config.trainer.keep_last_n)
    # Built before anything is written, so that a config the engine or policy refuses leaves
    # no directory behind to block the corrected command.
    trainer = Trainer(config, checkpoints=checkpoints, resuming=resuming)
    saved_total = None
    if resuming:
        checkpoint = checkpoints.load_latest()
        checkpoint.restore_policy(trainer.policy)
        trainer.load_state_dict(checkpoint.trainer_state)
        saved_total = read_run_config(run_dir).trainer.total_timesteps
    # Only now: a resume that failed above leaves the config.json its checkpoints were trained with.
    run_dir.mkdir(parents=True, exist_ok=True)
    replace_file_atomically(run_dir / CONFIG_FILE, (config.to_json() + "\n").encode())

    logger = RunLogger(run_dir, config, resume_epoch=trainer.epoch if resuming else None)
    display = make_display(config.logging.console, config.run, config.trainer.total_timesteps)
    health = LearningHealth(config.logging.health_epochs, start_epoch=trainer.epoch)

    def say(message: str) -> None:  # the text log, and the console too
        logger.info(message)
        display.message(message)

    def on_log(record: dict[str, float]) -> None:
        logger.log_metrics(record)
        display.update(record)
        for warning in health.check(record):
            say(warning)

    def on_stop() -> None:
        message = "Ctrl-C: stopping after this epoch (press again to abort without saving)"
        display.message(message)
        logger.info(message)

    trainer.on_log = on_log
    trainer.stop.listeners.append(on_stop)
    where = f"resuming at epoch {trainer.epoch}, agent step {trainer.agent_step}" if resuming else "starting"
    say(f"{where}: run {config.run!r} in {run_dir}, recipe {config.recipe!r}, device {trainer.device}")
    if saved_total is not None and saved_total != config.trainer.total_timesteps:
        say(f"total_timesteps changed from {saved_total} to {config.trainer.total_timesteps}")
    try:
        trainer.train()
        if trainer.stop.requested:
            say(f"stopped at epoch {trainer.epoch}, agent step {trainer.agent_step}; checkpoint "
                f"written; run the same command again to resume")
        else:
            say(f"finished at agent step {trainer.agent_step}")
    except KeyboardInterrupt:
        logger.info(
            f"aborted during epoch {trainer.epoch + 1}; resume continues from the last checkpoint "
            f"(epoch {trainer.saved_epoch})"
        )
        raise
    finally:
        display.close()
        logger.close()
    return run_dir


def prepare_run_dir(config: RunConfig, *, resume: bool | None, overwrite: bool) -> bool:
    """Check the run directory against the request; returns whether to resume."""
    run_dir = config.run_dir
    if overwrite:
        if resume:
            raise RunDirectoryError("resume and overwrite contradict each other; choose one")
        if run_dir.exists():
            shutil.rmtree(run_dir)
        return False
    if CheckpointManager(run_dir).checkpoints():
        if resume is False:
            raise RunDirectoryError(
                f"{run_dir} already holds a run with checkpoints; resume it, choose a new run "
                "name (run=NAME) or overwrite it"
            )
        check_resumable(config, run_dir)
        return True
    if resume:
        raise RunDirectoryError(f"cannot resume: {run_dir} holds no checkpoint")
    if run_dir.exists() and any(run_dir.iterdir()):
        raise RunDirectoryError(
            f"{run_dir} exists but holds no checkpoint to resume; choose a new run name "
            "(run=NAME) or overwrite it"
        )
    return False


def check_resumable(config: RunConfig, run_dir: Path) -> None:
    saved_path = run_dir / CONFIG_FILE
    if not saved_path.exists():
        raise RunDirectoryError(f"{run_dir} has checkpoints but no {CONFIG_FILE}; cannot tell how it was trained")
    saved = RunConfig.load(saved_path)
    changed = [row for row in diff_configs(saved, config) if not resumable_change(row[0])]
    if changed:
        raise RunDirectoryError(
            f"cannot resume {run_dir} with a different config (only {', '.join(RESUMABLE_CHANGES)} "
            f"may change); differences, saved -> requested:\n{format_diff(changed)}\n"
            f"Use the saved settings (add {saved_overrides(changed)}), choose a new run name "
            "(run=NAME) or overwrite the run."
        )
    old_total, new_total = saved.trainer.total_timesteps, config.trainer.total_timesteps
    dependents = progress_dependents(config.trainer)
    if old_total != new_total and dependents:
        raise RunDirectoryError(
            f"cannot resume {run_dir} with trainer.total_timesteps changed ({old_total} -> {new_total}): "
            f"training progress (agent_step / total_timesteps) drives {' and '.join(dependents)}, "
            f"which would jump to another point of their course. Keep trainer.total_timesteps={old_total}, "
            "choose a new run name (run=NAME) or overwrite the run."
        )


def saved_overrides(changed: list[tuple[str, Any, Any]]) -> str:
    """The overrides that put the saved values back, e.g. `policy.name=fast` for a run started
    before the default policy changed."""
    return " ".join(f"{path}={saved if isinstance(saved, str) else json.dumps(saved)}"
                    for path, saved, _ in changed if saved != "<absent>")


def progress_dependents(trainer: TrainerConfig) -> list[str]:
    """What follows training progress p = agent_step / total_timesteps, in words (empty: none)."""
    dependents = []
    if trainer.schedules:
        dependents.append(f"the schedules of {', '.join(sorted(trainer.schedules))}")
    if trainer.minibatch_sampling == "prioritized":
        dependents.append("the annealing of prioritized sampling's beta")
    return dependents
