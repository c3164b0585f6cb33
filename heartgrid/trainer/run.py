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
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from heartgrid.checkpoint import CheckpointError, CheckpointManager
from heartgrid.checkpoint.durable import remove_temporary_files, replace_file_atomically
from heartgrid.checkpoint.manager import SPACE_MARGIN
from heartgrid.config.diff import diff_configs, format_diff
from heartgrid.config.run import RunConfig
from heartgrid.config.trainer import TrainerConfig
from heartgrid.errors import FileFault
from heartgrid.rundir import (
    CHECKPOINTS_DIR, CONFIG_FILE, LOG_FILE, METRICS_FILE, RESTARTS_DIR, STATS_DB, TENSORBOARD_DIR,
    read_run_config,
)
from heartgrid.interrupts import StopRequest
from heartgrid.rundir.faults import check_free_space, file_fault, format_bytes, free_bytes, is_file_error
from heartgrid.rundir.lock import LOCK_FILE, RunLock
from heartgrid.trainer.display import make_display
from heartgrid.trainer.health import LearningHealth
from heartgrid.trainer.logger import RunLogger
from heartgrid.trainer.trainer import Trainer


# Settings a resumed run may change: its name and place (a copied run directory resumes as a
# branch), how long to train (only where nothing follows training progress: see
# `progress_dependents`), and where the numbers are shown. A trailing "." covers a section.
RESUMABLE_CHANGES = (
    "run", "data_dir", "trainer.total_timesteps", "system.torch_threads", "system.stop_signals",
    "system.stop_grace_s", "system.compile", "logging.", "wandb.",
)


def resumable_change(path: str) -> bool:
    return any(path == allowed or (allowed.endswith(".") and path.startswith(allowed))
               for allowed in RESUMABLE_CHANGES)


class RunDirectoryError(ValueError):
    """The run directory cannot be used as asked (the CLI reports it as a usage error)."""


@dataclass(frozen=True)
class RunOutcome:
    run_dir: Path
    epoch: int
    agent_step: int
    stopped_by: str | None
    """None when training finished; else what stopped it ("SIGTERM", "SIGINT"), after saving."""


def train(config: RunConfig, *, resume: bool | None = None, overwrite: bool = False) -> Path:
    """Train `config` in `config.run_dir` and return that directory (see `train_run`)."""
    return train_run(config, resume=resume, overwrite=overwrite).run_dir


def train_run(
    config: RunConfig, *, resume: bool | None = None, overwrite: bool = False, stop: StopRequest | None = None,
) -> RunOutcome:
    """Train `config` in `config.run_dir`, holding the directory's lock throughout.

    resume: None = resume when the directory has a checkpoint, else start (or restart) fresh;
    True = must resume; False = must not resume. overwrite: delete the directory's contents
    first. Ctrl-C or a stop signal finishes (or cuts) the current epoch, writes a checkpoint and
    returns normally with `stopped_by` set; a second one aborts: KeyboardInterrupt propagates
    once the log and display are closed. When every checkpoint is corrupt, CheckpointError
    propagates and the directory is left as it was. Another live writer: RunLockedError. A
    file-system fault (disk full, read-only): FileFault, one line naming the file, in log.txt
    too where it still fits. `stop`: a StopRequest already listening to the stop signals (the
    CLI's, from before the run directory is touched).
    """
    run_dir = config.run_dir
    try:
        lock = RunLock(run_dir, f"heartgrid train {config.recipe} run={config.run}").acquire()
    except OSError as e:
        raise file_fault(e) from None
    try:  # the fault is noted in log.txt while the lock is still ours
        return _train_locked(config, resume=resume, overwrite=overwrite, stop=stop)
    except OSError as e:
        if not is_file_error(e):  # a network error of W&B online, say: not the disk's
            raise
        fault = file_fault(e)
        note_in_log(run_dir, f"error: {fault}")
        raise fault from None
    except FileFault as fault:
        note_in_log(run_dir, f"error: {fault}")
        raise
    finally:
        lock.release()


def _train_locked(config: RunConfig, *, resume: bool | None, overwrite: bool, stop: StopRequest | None) -> RunOutcome:
    run_dir = config.run_dir
    remove_temporary_files(run_dir)  # a killed writer's; we are the only writer now
    resuming, restarted = prepare_run_dir(config, resume=resume, overwrite=overwrite)
    checkpoints = CheckpointManager(run_dir, config.trainer.keep_last_n)
    # Built before anything is written, so that a config the engine or policy refuses leaves
    # no directory behind to block the corrected command.
    trainer = Trainer(config, checkpoints=checkpoints, resuming=resuming, stop=stop)
    saved_total, refused = None, []
    if resuming:
        checkpoint = checkpoints.load_latest()
        checkpoint.restore_policy(trainer.policy)
        try:
            trainer.load_state_dict(checkpoint.trainer_state)
        except (ValueError, KeyError) as e:  # e.g. optimizer state of another parameter split
            raise CheckpointError(checkpoint.path, (
                f"its trainer state does not fit this trainer: {e}. To go on from its weights with a "
                f"fresh optimizer, start a new run with trainer.initial_policy={run_dir}")) from None
        saved_total = read_run_config(run_dir).trainer.total_timesteps
        refused = checkpoint.refused
    space_warning = check_space(config, trainer, checkpoints)
    # Only now: a resume that failed above leaves the config.json its checkpoints were trained with.
    replace_file_atomically(run_dir / CONFIG_FILE, (config.to_json() + "\n").encode())

    logger = RunLogger(run_dir, config, resume_epoch=trainer.epoch if resuming else None,
                       last_record=trainer.last_record if resuming else None)
    display = make_display(config.logging.console, config.run, config.trainer.total_timesteps, logger.info)
    health = LearningHealth(config.logging.health_epochs, start_epoch=trainer.epoch)

    def say(message: str) -> None:  # the text log, and the console too
        logger.info(message)
        display.message(message)

    def on_log(record: dict[str, float]) -> None:
        logger.log_metrics(record)
        display.update(record)
        for warning in health.check(record):
            say(warning)

    def on_stop(reason: str) -> None:
        say(f"{signal_words(reason)}: stopping after this epoch (once more to abort without saving)")

    trainer.on_log = on_log
    trainer.on_checkpoint = logger.sync
    trainer.on_evaluation = lambda card: record_evaluation(run_dir / STATS_DB, card, logger.info)
    trainer.stop.listeners.append(on_stop)
    where = f"resuming at epoch {trainer.epoch}, agent step {trainer.agent_step}" if resuming else "starting"
    say(f"{where}: run {config.run!r} in {run_dir}, recipe {config.recipe!r}, device {trainer.device}")
    for note in [*restarted, *space_warning]:
        say(note)
    for repair in logger.repairs:  # already in log.txt
        display.message(repair)
    for error in refused:  # already shown as a warning
        logger.info(f"warning: {error}")
    if saved_total is not None and saved_total != config.trainer.total_timesteps:
        say(f"total_timesteps changed from {saved_total} to {config.trainer.total_timesteps}")
    try:
        trainer.train()
        if trainer.stop.requested:
            say(stop_message(trainer))
        else:
            say(f"finished at agent step {trainer.agent_step}")
    except KeyboardInterrupt:
        logger.info(
            f"aborted during epoch {trainer.epoch + 1}; " + (
                f"resume continues from the last checkpoint (epoch {trainer.saved_epoch})" if trainer.saved_epoch
                else "no checkpoint yet: the same command starts the run again from scratch")
        )
        raise
    finally:
        display.close()
        logger.close()
    stopped_by = trainer.stop.reason if trainer.stop.requested else None
    step = trainer.saved_agent_step if trainer.cut_epoch is not None else trainer.agent_step
    return RunOutcome(run_dir, trainer.saved_epoch, step, stopped_by)


def record_evaluation(db: Path, card: Any, warn: Any) -> None:
    """Add a scorecard of evaluation while training to the run's stats database: as a shard,
    which every reader (`heartgrid stats`) merges first, so that training never waits for the
    database's lock (a reader holds it while it reads). A failure is a warning in log.txt, not
    the end of the run: the scores are in the metrics and the manifest too."""
    from heartgrid.evaluation.stats_db import write_shard

    try:
        write_shard(db, card)
    except Exception as e:  # DuckDB raises its own types; none may stop training
        warn(f"warning: evaluation not written to {db}: {type(e).__name__}: {e}")


def signal_words(reason: str) -> str:
    return "Ctrl-C" if reason == "SIGINT" else reason


def stop_message(trainer: Trainer) -> str:
    words = signal_words(trainer.stop.reason or "stop")
    if trainer.cut_epoch is None and trainer.epoch == trainer.saved_epoch == 0:
        return f"{words}: stopped before the first epoch; nothing to save: the same command starts the run"
    if trainer.cut_epoch is None:
        return (f"{words}: stopped at epoch {trainer.epoch}, agent step {trainer.agent_step}; "
                f"checkpoint written; run the same command again to resume")
    grace = trainer.config.system.stop_grace_s
    cut = f"{words}: epoch {trainer.cut_epoch} was cut (it would not end within system.stop_grace_s={grace:g})"
    if trainer.saved_epoch == 0:
        return f"{cut}; no checkpoint yet: the same command starts the run again from scratch"
    return (f"{cut}; the checkpoint of epoch {trainer.saved_epoch} is the latest; run the same "
            f"command again to resume (it redoes epoch {trainer.cut_epoch})")


def note_in_log(run_dir: Path, message: str) -> None:
    """Append a line to log.txt if it still fits (a full disk may refuse even that)."""
    try:
        with open(run_dir / LOG_FILE, "a") as log:
            log.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')}  {message}\n")
    except OSError:
        pass


def check_space(config: RunConfig, trainer: Trainer, checkpoints: CheckpointManager) -> list[str]:
    """Refuse to start without room for the next checkpoint (FileFault); a warning when the
    checkpoints this run will keep do not fit. Returns the warnings."""
    size = checkpoints.encode(trainer.epoch, trainer.agent_step, trainer.policy, trainer.state_dict()).nbytes
    if not trainer.optimizer.state:  # the first step adds Adam's two moments per parameter
        size += 2 * sum(p.numel() * p.element_size() for p in trainer.policy.parameters())
    remedy = checkpoints.space_remedy(size)
    check_free_space(config.run_dir, size + SPACE_MARGIN, "the next checkpoint", remedy)
    t = config.trainer
    epochs_left = -(-(t.total_timesteps - trainer.agent_step) // t.batch_size)
    existing = len(checkpoints.checkpoints())
    end = trainer.epoch + epochs_left
    # The periodic checkpoints in (epoch, end], and the final one when `end` is not one of them.
    to_write = end // t.checkpoint_interval - trainer.epoch // t.checkpoint_interval + (end % t.checkpoint_interval > 0)
    keep = t.keep_last_n if t.keep_last_n is not None else existing + to_write
    # A new checkpoint is complete before the oldest is pruned: at the peak keep + 1 are on disk.
    more = max(min(existing + to_write, keep + 1) - existing, 1)
    if free_bytes(config.run_dir) < more * size + SPACE_MARGIN:
        return [f"warning: the disk will fill before training ends: {more} more checkpoints of about "
                f"{format_bytes(size)} need {format_bytes(more * size)}, "
                f"{format_bytes(free_bytes(config.run_dir))} free; {remedy}"]
    return []


# What a run directory holds besides its checkpoints; a directory with only these and no
# checkpoint is a run stopped before its first one, which the same command starts again.
RUN_ENTRIES = {CONFIG_FILE, METRICS_FILE, LOG_FILE, TENSORBOARD_DIR, CHECKPOINTS_DIR, "wandb", RESTARTS_DIR}


def prepare_run_dir(config: RunConfig, *, resume: bool | None, overwrite: bool) -> tuple[bool, list[str]]:
    """Check the run directory against the request; returns whether to resume, and notes for
    the log (a restart from scratch says where the earlier metrics went)."""
    run_dir = config.run_dir
    entries = sorted(p for p in run_dir.iterdir() if p.name != LOCK_FILE) if run_dir.exists() else []
    if overwrite:
        if resume:
            raise RunDirectoryError("resume and overwrite contradict each other; choose one")
        for path in entries:  # all but the lock we hold
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        return False, []
    if CheckpointManager(run_dir).checkpoints():
        if resume is False:
            raise RunDirectoryError(
                f"{run_dir} already holds a run with checkpoints; resume it, choose a new run "
                "name (run=NAME) or overwrite it"
            )
        check_resumable(config, run_dir)
        return True, []
    if resume:
        raise RunDirectoryError(f"cannot resume: {run_dir} holds no checkpoint")
    foreign = [p.name for p in entries if p.name not in RUN_ENTRIES and not p.name.startswith(STATS_DB)]
    if foreign:
        raise RunDirectoryError(
            f"{run_dir} exists and holds {', '.join(foreign[:5])}, which no run writes; choose a "
            "new run name (run=NAME) or overwrite it"
        )
    return False, restart(config, run_dir) if entries else []


def restart(config: RunConfig, run_dir: Path) -> list[str]:
    """A run stopped before its first checkpoint starts again from scratch, with the config it
    was started with; what it had logged moves to restarts/<time>/ so that nothing is mixed."""
    if (run_dir / CONFIG_FILE).exists():
        check_same_config(config, run_dir, "restart")
    logged = [run_dir / name for name in (METRICS_FILE, TENSORBOARD_DIR, "wandb") if (run_dir / name).exists()]
    if not logged:
        return ["restarting from scratch: the earlier attempt stopped before its first checkpoint"]
    stamp, attempt = time.strftime("%Y%m%d-%H%M%S"), 1
    aside = run_dir / RESTARTS_DIR / stamp
    while aside.exists():  # two restarts within a second keep both attempts
        attempt += 1
        aside = run_dir / RESTARTS_DIR / f"{stamp}-{attempt}"
    aside.mkdir(parents=True)
    for path in logged:
        os.replace(path, aside / path.name)
    return [f"restarting from scratch: the earlier attempt stopped before its first checkpoint; "
            f"what it logged is in {aside}"]


def check_same_config(config: RunConfig, run_dir: Path, verb: str) -> RunConfig:
    """The saved config, when `config` differs from it only in `RESUMABLE_CHANGES`."""
    saved = read_run_config(run_dir)  # names the file when it is missing or damaged
    changed = [row for row in diff_configs(saved, config) if not resumable_change(row[0])]
    if changed:
        raise RunDirectoryError(
            f"cannot {verb} {run_dir} with a different config (only {', '.join(RESUMABLE_CHANGES)} "
            f"may change); differences, saved -> requested:\n{format_diff(changed)}\n"
            f"Use the saved settings (add {saved_overrides(changed)}), choose a new run name "
            "(run=NAME) or overwrite the run."
        )
    return saved


def check_resumable(config: RunConfig, run_dir: Path) -> None:
    if not (run_dir / CONFIG_FILE).exists():
        raise RunDirectoryError(f"{run_dir} has checkpoints but no {CONFIG_FILE}; cannot tell how it was trained")
    saved = check_same_config(config, run_dir, "resume")
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
    if trainer.minibatch_sampling == "prioritized" and trainer.prioritized.alpha > 0:
        dependents.append("the annealing of prioritized sampling's beta")
    return dependents
