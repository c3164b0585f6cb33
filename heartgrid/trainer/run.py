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

Several ranks (`world`, docs/distributed.md): rank 0 alone holds the run directory (its lock,
config, metrics, log, TensorBoard, W&B and checkpoints); the others write no file. Rank 0
decides whether the run resumes, loads the checkpoint and sends each rank its own state; a
start-up failure on any rank ends every rank's start-up (StartUp); at the end every rank waits
until rank 0 has written everything.
"""

from __future__ import annotations

import io
import json
import os
import shlex
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from heartgrid.checkpoint import CheckpointError, CheckpointManager
from heartgrid.checkpoint.durable import remove_temporary_files, replace_file_atomically
from heartgrid.checkpoint.manager import SPACE_MARGIN
from heartgrid.config.diff import diff_configs, format_diff
from heartgrid.config.run import RunConfig
from heartgrid.config.trainer import TrainerConfig
from heartgrid.checkpoint.world import rank_states, split_rank_state
from heartgrid.errors import FileFault
from heartgrid.rundir import (
    CHECKPOINTS_DIR, CONFIG_FILE, LOG_FILE, METRICS_FILE, RESTARTS_DIR, STATS_DB, TENSORBOARD_DIR,
    read_run_config,
)
from heartgrid.interrupts import StopRequest
from heartgrid.rundir.faults import check_free_space, file_fault, format_bytes, free_bytes, is_file_error
from heartgrid.rundir.lock import LOCK_FILE, RunLock, RunLockedError
from heartgrid.threads import NeighbourWatch
from heartgrid.trainer.display import make_display
from heartgrid.trainer.distributed import World
from heartgrid.trainer.world_start import StartUp
from heartgrid.trainer.health import LearningHealth
from heartgrid.trainer.logger import DamagedMetrics, RunLogger, read_metrics, read_metrics_file
from heartgrid.trainer.metric_contract import missing_metrics
from heartgrid.trainer.trainer import Trainer


# Settings a resumed run may change: its name and place (a copied run directory resumes as a
# branch), how long to train (only where nothing follows training progress: see
# `progress_dependents`), where the numbers are shown, how the engine's step runs (compiled,
# native or not: the same game, bit for bit), how many checkpoints are kept (the remedy a full disk
# suggests) and the evaluation while training (it draws nothing from the trainer's
# generators). A trailing "." covers a section.
RESUMABLE_CHANGES = (
    "run", "data_dir", "trainer.total_timesteps", "trainer.keep_last_n", "system.torch_threads",
    "system.compile", "system.native_step", "system.stop_signals", "system.stop_grace_s", "logging.", "wandb.",
    "evaluation.", "distributed.backend", "distributed.timeout_s",
)


OVERWRITE_WORDS = "start it over (--overwrite deletes the run directory first)"


def resumable_words() -> str:
    """RESUMABLE_CHANGES as a person writes them: `logging.*` for a section."""
    return ", ".join(f"{allowed}*" if allowed.endswith(".") else allowed for allowed in RESUMABLE_CHANGES)


def resumable_change(path: str) -> bool:
    return any(path == allowed or (allowed.endswith(".") and path.startswith(allowed))
               for allowed in RESUMABLE_CHANGES)


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


class RunDirectoryError(ValueError):
    """The run directory cannot be used as asked (the CLI reports it as a usage error)."""


# Start-up errors that are the command line's (exit status 2), for the ranks' StartUp.
START_USAGE_ERRORS = (RunDirectoryError, RunLockedError, CheckpointError)


def train_run(
    config: RunConfig, *, resume: bool | None = None, overwrite: bool = False, stop: StopRequest | None = None,
    world: World | None = None,
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
    CLI's, from before the run directory is touched). `world`: this process's rank among
    several (None: the only one).
    """
    with StartUp(world, START_USAGE_ERRORS) as start:
        if world is not None and not world.is_main:
            return _follow(config, world, stop, start)
        return _train_run(config, resume, overwrite, stop, world, start)


def _train_run(config: RunConfig, resume: bool | None, overwrite: bool, stop: StopRequest | None,
               world: World | None, start: StartUp) -> RunOutcome:
    run_dir = config.run_dir
    try:
        lock = RunLock(run_dir, f"heartgrid train {config.recipe} run={config.run}").acquire()
    except OSError as e:
        raise file_fault(e) from None
    try:  # the fault is noted in log.txt while the lock is still ours
        return _train_locked(config, resume=resume, overwrite=overwrite, stop=stop, world=world, start=start)
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


def _train_locked(config: RunConfig, *, resume: bool | None, overwrite: bool, stop: StopRequest | None,
                  world: World | None = None, start: StartUp | None = None) -> RunOutcome:
    run_dir = config.run_dir
    start = start if start is not None else StartUp(None)
    remove_temporary_files(run_dir)  # a killed writer's; we are the only writer now
    resuming, restarted = prepare_run_dir(config, resume=resume, overwrite=overwrite)
    start.decided(resuming)
    checkpoints = CheckpointManager(run_dir, config.trainer.keep_last_n)
    # Built before anything is written, so that a config the engine or policy refuses leaves
    # no directory behind to block the corrected command.
    trainer = Trainer(config, checkpoints=checkpoints, resuming=resuming, stop=stop, world=world)
    saved_total, saved_compile, refused, states, saved_run = None, None, [], None, config.run
    if resuming:
        checkpoint = checkpoints.load_latest()
        checkpoint.restore_policy(trainer.policy)
        states = rank_states(checkpoint.trainer_state, 1 if world is None else world.size, checkpoint.path)
        saved = read_run_config(run_dir)
        saved_total, saved_compile, saved_run = saved.trainer.total_timesteps, saved.system.compile, saved.run
        refused = checkpoint.refused
        check_metrics_file(run_dir, checkpoint.epoch)  # before the other ranks go on
    start.ready()
    if states is not None:
        load_trainer_state(trainer, states[0] if world is None else world.scatter_object(states, "resuming"),
                           checkpoint.path, run_dir)
    space_warning = check_space(config, trainer, checkpoints)
    # Only now: a resume that failed above leaves the config.json its checkpoints were trained with.
    replace_file_atomically(run_dir / CONFIG_FILE, (config.to_json() + "\n").encode())

    logger = RunLogger(run_dir, config, resume_epoch=trainer.epoch if resuming else None,
                       last_record=trainer.last_record if resuming else None)
    display = make_display(config.logging.console, config.run, config.trainer.total_timesteps, logger.info)
    health = LearningHealth(config.logging.health_epochs, start_epoch=trainer.epoch)
    # On a GPU the CPU's threads only feed it: torch's own default, and nothing to warn about.
    neighbours = NeighbourWatch(start_epoch=trainer.epoch) if trainer.device.type == "cpu" else None

    def say(message: str) -> None:  # the text log, and the console too
        logger.info(message)
        display.message(message)

    compiled = getattr(trainer.engine, "compiled", None)
    compiles_said = 0

    def on_log(record: dict[str, float]) -> None:
        nonlocal compiles_said
        if compiled is not None:  # at the first step, and again when a task changed the graph
            for compile_ in compiled.compiles[compiles_said:]:
                say(str(compile_))
            compiles_said = len(compiled.compiles)
        logger.log_metrics(record)
        display.update(record)
        for warning in health.check(record):
            say(warning)
        if neighbours is not None and (warning := neighbours.check(record)) is not None:
            say(warning)

    def on_stop(reason: str) -> None:
        say(f"{signal_words(reason)}: stopping after this epoch (once more to abort without saving)")

    trainer.on_log = on_log
    trainer.on_checkpoint = logger.sync
    trainer.on_evaluation = lambda card: record_evaluation(run_dir / STATS_DB, card, logger.info)
    if resuming or restarted:
        # Under the run's name, and under the one it had if it was copied as a branch.
        retract_evaluations(run_dir / STATS_DB, sorted({config.run, saved_run}), trainer.epoch, logger.info)
    trainer.stop.listeners.append(on_stop)
    where = f"resuming at epoch {trainer.epoch}, agent step {trainer.agent_step}" if resuming else "starting"
    if resuming and trainer.agent_step >= config.trainer.total_timesteps:
        where = (f"already finished at epoch {trainer.epoch}, agent step {trainer.agent_step} (trainer.total_timesteps="
                 f"{config.trainer.total_timesteps}; a larger one trains it on)")
    say(f"{where}: run {config.run!r} in {run_dir}, recipe {config.recipe!r}, device {trainer.device}")
    logger.info(trainer.threads_note)
    logger.info(f"engine step: {getattr(trainer.engine, 'step_kind', 'tensor')} (system.native_step="
                f"{config.system.native_step}, system.compile={str(config.system.compile).lower()})")
    if getattr(trainer.engine, "native_problem", None):
        logger.info(f"the native engine step is unavailable: {trainer.engine.native_problem}")
    for note in [*restarted, *space_warning]:
        say(note)
    for repair in logger.repairs:  # already in log.txt
        display.message(repair)
    for error in refused:  # already shown as a warning
        logger.info(f"warning: {error}")
    if saved_total is not None and saved_total != config.trainer.total_timesteps:
        say(f"total_timesteps changed from {saved_total} to {config.trainer.total_timesteps}")
    if saved_compile is not None and saved_compile != config.system.compile:
        say(f"system.compile changed from {str(saved_compile).lower()} to {str(config.system.compile).lower()}")
    try:
        trainer.train()
        if trainer.stop.requested:
            say(stop_message(trainer))
        else:
            say(f"finished at agent step {trainer.agent_step}")
            missing = missing_metrics(config, {name for record in read_metrics(run_dir) for name in record})
            if missing:  # a renamed or lost metric: what compare, regress and dashboards read
                say(f"warning: {len(missing)} metric(s) of the contract were never logged: "
                    f"{', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''} (metrics about "
                    "episodes need an episode to end; heartgrid/trainer/metric_contract.py)")
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
    if world is not None:  # the others wait until everything is written
        world.barrier("finishing")
    stopped_by = trainer.stop.reason if trainer.stop.requested else None
    step = trainer.saved_agent_step if trainer.cut_epoch is not None else trainer.agent_step
    return RunOutcome(run_dir, trainer.saved_epoch, step, stopped_by)


def _follow(config: RunConfig, world: World, stop: StopRequest | None, start: StartUp) -> RunOutcome:
    """A rank other than 0: trains its share, writes nothing (its checkpoint state goes to rank 0)."""
    resuming = start.decided()
    trainer = Trainer(config, checkpoints=CheckpointManager(config.run_dir, config.trainer.keep_last_n),
                      resuming=resuming, stop=stop, world=world)
    start.ready()
    if resuming:
        load_trainer_state(trainer, world.scatter_object(None, "resuming"), config.run_dir, config.run_dir)
    trainer.train()
    world.barrier("finishing")
    stopped_by = trainer.stop.reason if trainer.stop.requested else None
    return RunOutcome(config.run_dir, trainer.saved_epoch, trainer.agent_step, stopped_by)


def load_trainer_state(trainer: Trainer, state: dict[str, Any], checkpoint: Path, run_dir: Path) -> None:
    try:
        trainer.load_state_dict(state)
    except (ValueError, KeyError) as e:  # e.g. optimizer state of another parameter split
        raise CheckpointError(checkpoint, (
            f"its trainer state does not fit this trainer: {e}. To go on from its weights with a "
            f"fresh optimizer, start a new run with trainer.initial_policy={run_dir}")) from None


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


def check_metrics_file(run_dir: Path, epoch: int) -> None:
    """A metrics.jsonl that a resume cannot read back (a damaged line) is refused with what to do."""
    path = run_dir / METRICS_FILE
    try:
        if path.exists():
            read_metrics_file(path)
    except DamagedMetrics as e:
        raise RunDirectoryError(
            f"{e}. Move it aside (mv {path} {path}.damaged) and run the same command again: the "
            f"resumed run starts a new {METRICS_FILE} from the checkpoint's record of epoch {epoch}, "
            "and the damaged file keeps the earlier ones") from None


def retract_evaluations(db: Path, runs: list[str], epoch: int, say: Any) -> None:
    """A resumed run (or one restarted from scratch: epoch 0) retracts the evaluations of its
    later epochs from the stats database: they scored the interrupted attempt's policies, whose
    metrics records were dropped too (on a GPU, not the policies this run trains again)."""
    from heartgrid.evaluation.stats_db import pending_shards, write_retraction

    if not db.exists() and not pending_shards(db):
        return
    try:
        write_retraction(db, runs, epoch)
    except Exception as e:  # as record_evaluation: never the end of the run
        say(f"warning: {db}: the evaluations of epochs after {epoch} from before this resume "
            f"could not be retracted: {type(e).__name__}: {e}")
        return
    say(f"{db.name}: evaluations of epochs after {epoch} from before this start are retracted "
        "(the interrupted attempt's, as in metrics.jsonl)")


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
    state = trainer.state_dict()
    size = checkpoints.encode(trainer.epoch, trainer.agent_step, trainer.policy, state).nbytes
    if trainer.world is not None:  # rank 0's checkpoints hold every rank's own part too
        size += (trainer.world.size - 1) * encoded_size(split_rank_state(state)[1])
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


def encoded_size(state: dict[str, Any]) -> int:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.tell()


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
                f"name (run=NAME) or {OVERWRITE_WORDS}"
            )
        check_resumable(config, run_dir)
        return True, []
    if resume:
        raise RunDirectoryError(f"cannot resume: {run_dir} holds no checkpoint")
    foreign = [p.name for p in entries if p.name not in RUN_ENTRIES and not p.name.startswith(STATS_DB)]
    if foreign:
        raise RunDirectoryError(
            f"{run_dir} exists and holds {', '.join(foreign[:5])}, which no run writes; choose a "
            f"new run name (run=NAME) or {OVERWRITE_WORDS}"
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
    """The saved config, when `config` differs from it only in `RESUMABLE_CHANGES` (and, for a
    restart from scratch, which keeps no state, in the number of ranks)."""
    saved = read_run_config(run_dir)  # names the file when it is missing or damaged
    if verb == "resume" and saved.distributed.world_size != config.distributed.world_size:
        old, new = saved.distributed.world_size, config.distributed.world_size
        raise RunDirectoryError(
            f"cannot resume {run_dir} on {new} rank(s): it was trained on {old}. Its checkpoints hold each "
            f"rank's envs, recurrent state and random generators, and trainer.num_envs and batch_size are "
            f"per rank. Resume it on {old} rank(s) ({launch_words(old)}); to go on from its weights on {new}, "
            f"start a new run with trainer.initial_policy={run_dir}")
    if saved.recipe != config.recipe:  # the game differences that follow come from the recipe
        command = shlex.join(["heartgrid", "train", str(saved.recipe), f"run={config.run}"])
        raise RunDirectoryError(
            f"cannot {verb} {run_dir}: it was {'trained' if verb == 'resume' else 'started'} with recipe "
            f"{saved.recipe!r}, not {config.recipe!r}; name that recipe to go on with it ({command} ...), "
            f"choose a new run name (run=NAME) or {OVERWRITE_WORDS}.")
    changed = [row for row in diff_configs(saved, config)
               if not resumable_change(row[0]) and not (verb == "restart" and row[0] == "distributed.world_size")]
    if changed:
        raise RunDirectoryError(
            f"cannot {verb} {run_dir} with a different config (only {resumable_words()} "
            f"may change); differences, saved -> requested:\n{format_diff(changed)}\n"
            f"Use the saved settings (add {saved_overrides(changed)}), choose a new run name "
            f"(run=NAME) or {OVERWRITE_WORDS}."
        )
    return saved


def launch_words(ranks: int) -> str:
    if ranks == 1:
        return "heartgrid train without torchrun"
    return f"torchrun --nproc_per_node {ranks} -m heartgrid train ..., or heartgrid train ... --nproc {ranks}"


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
            f"choose a new run name (run=NAME) or {OVERWRITE_WORDS}."
        )
    old_keep, new_keep = saved.trainer.keep_last_n, config.trainer.keep_last_n
    if old_keep != new_keep and config.game.npc_policy_uri == "self" and config.game.npc_sampling == "uniform":
        raise RunDirectoryError(
            f"cannot resume {run_dir} with trainer.keep_last_n changed ({old_keep} -> {new_keep}): its "
            "self-play NPCs draw uniformly from the checkpoints the run keeps, so the run would not "
            f"continue as it would have. Keep trainer.keep_last_n={old_keep}, choose a new run name "
            f"(run=NAME) or {OVERWRITE_WORDS}."
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
