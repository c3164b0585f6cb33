"""Where the metric records of a run go: `metrics.jsonl`, TensorBoard, W&B, and `log.txt`.

`metrics.jsonl` holds one flat JSON object per logged epoch with `metric/agent_step` in each
(the contract read by `heartgrid compare`/`ab`/`plot`). Values must be finite numbers: a
non-finite one (an explained variance of constant returns) is left out of the record rather
than written as non-standard JSON.

No record of a checkpointed epoch is ever lost: `sync()` puts the records on disk before each
checkpoint, and the checkpoint holds the last record too. On resume, records after the
checkpoint's epoch (logged by the interrupted run but not covered by its last checkpoint) are
removed, so each epoch appears once; a half-written last line (the run was killed while
writing it) is dropped, and if it was the checkpointed epoch's record it is written again from
the checkpoint. What was repaired is in `repairs`, for the console and `log.txt`.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

from heartgrid.checkpoint.durable import replace_file_atomically
from heartgrid.config.run import RunConfig
from heartgrid.rundir import LOG_FILE, METRICS_FILE, STEP_KEY, TENSORBOARD_DIR
from heartgrid.rundir.faults import naming
from heartgrid.trainer.metric_contract import EPOCH_KEY

# Shown in each log.txt line, when present in the record.
_SUMMARY = (
    ("reward", "overview/reward"),
    ("hearts", "env_agent/heart.get"),
    ("sps", "overview/sps"),
    ("policy_loss", "losses/policy_loss"),
    ("value_loss", "losses/value_loss"),
    ("entropy", "losses/entropy"),
)


class RunLogger:
    def __init__(
        self, run_dir: Path, config: RunConfig, *, resume_epoch: int | None = None,
        last_record: dict[str, float] | None = None,
    ):
        """`resume_epoch`: the checkpoint's epoch (None: a fresh run); `last_record`: the last
        record the checkpoint holds, written again if metrics.jsonl lost it."""
        self.run_dir = run_dir
        run_dir.mkdir(parents=True, exist_ok=True)
        self.metrics_path = run_dir / METRICS_FILE
        self.repairs: list[str] = []
        resume_step, dropped, restored = 0, None, None
        if resume_epoch is None:
            replace_file_atomically(self.metrics_path, b"")
        else:
            resume_step, dropped, restored = truncate_metrics(self.metrics_path, resume_epoch, last_record)
        self.metrics_file = open(self.metrics_path, "a")
        self.text_log = open(run_dir / LOG_FILE, "a")
        if dropped is not None:
            self.repairs.append(f"warning: {self.metrics_path} ended in a half-written line (the run "
                                f"was stopped while writing it); dropped it: {dropped[:60]!r}")
        if restored is not None:
            self.repairs.append(f"warning: {self.metrics_path} had lost the record of epoch {restored}; "
                                f"restored it from the checkpoint")
        for repair in self.repairs:
            self.info(repair)
        self.tensorboard = None
        if config.logging.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            # purge_step hides events at steps >= purge_step: those the interrupted run wrote
            # after its last checkpoint. The checkpointed record itself (resume_step) stays.
            self.tensorboard = SummaryWriter(
                str(run_dir / TENSORBOARD_DIR), purge_step=resume_step + 1 if resume_epoch else None
            )
        self.wandb = start_wandb(run_dir, config) if config.wandb.enabled else None

    def log_metrics(self, record: dict[str, float]) -> None:
        record = finite(record)
        with naming(self.metrics_path):
            self.metrics_file.write(json.dumps(record, sort_keys=True) + "\n")
            self.metrics_file.flush()
        step = int(record[STEP_KEY])
        if self.tensorboard is not None:
            for name, value in record.items():
                if not name.startswith("metric/"):
                    self.tensorboard.add_scalar(name, value, global_step=step)
            self.tensorboard.flush()
        if self.wandb is not None:
            self.wandb.log(record, step=step)
        summary = "  ".join(f"{label} {record[key]:.4g}" for label, key in _SUMMARY if key in record)
        self.info(f"epoch {int(record[EPOCH_KEY])}  agent_step {step}  {summary}")

    def sync(self) -> None:
        """Put every record written so far on disk (before a checkpoint that covers them)."""
        with naming(self.metrics_path):
            self.metrics_file.flush()
            os.fsync(self.metrics_file.fileno())

    def info(self, message: str) -> None:
        with naming(self.run_dir / LOG_FILE):
            self.text_log.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')}  {message}\n")
            self.text_log.flush()

    def close(self) -> None:
        if self.tensorboard is not None:
            self.tensorboard.close()
        if self.wandb is not None:
            self.wandb.finish()
        # Closing flushes what is buffered: a full disk fails here too, and must name the file.
        try:
            with naming(self.metrics_path):
                self.metrics_file.close()
        finally:
            with naming(self.run_dir / LOG_FILE):
                self.text_log.close()


def finite(record: dict[str, float]) -> dict[str, float]:
    """The record as metrics.jsonl holds it: float values, non-finite ones left out."""
    return {k: float(v) for k, v in record.items() if math.isfinite(float(v))}


def read_metrics(run_dir: Path | str) -> list[dict[str, float]]:
    """The records of a run's metrics.jsonl (a half-written last line is left out)."""
    return read_metrics_file(Path(run_dir) / METRICS_FILE)[0]


class DamagedMetrics(ValueError):
    """A metrics.jsonl line before the last that is not a record (names the file and line)."""


def read_metrics_file(path: Path) -> tuple[list[dict[str, float]], str | None]:
    """(records, the undecodable last line or None). Only the last line may be cut short: a
    run killed while writing it, or one still writing. A bad line before it is DamagedMetrics,
    and so is any line that is not a record with its epoch and agent step."""
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    records = []
    for number, line in enumerate(lines, start=1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            if number == len(lines):
                return records, line
            raise DamagedMetrics(f"{path}, line {number}: not a JSON record ({e}); the file is damaged") from None
        if not (isinstance(record, dict) and all(isinstance(record.get(k), (int, float)) for k in (STEP_KEY, EPOCH_KEY))):
            raise DamagedMetrics(f"{path}, line {number}: not a metrics record (no numeric {STEP_KEY} and "
                                 f"{EPOCH_KEY}); the file is damaged")
        records.append(record)
    return records, None


def truncate_metrics(
    path: Path, last_epoch: int, last_record: dict[str, float] | None = None
) -> tuple[int, str | None, int | None]:
    """Keep the records up to `last_epoch`, rewriting the file atomically (a crash now leaves
    the old file); `last_record` (the checkpoint's copy of its last record) is appended when the
    file lacks it. Returns the agent step of the last kept record, the half-written last line
    that was dropped (or None) and the epoch whose record was restored (or None)."""
    records, dropped = read_metrics_file(path) if path.exists() else ([], None)
    kept = [r for r in records if r[EPOCH_KEY] <= last_epoch]
    restored = None
    if last_record and last_record[EPOCH_KEY] <= last_epoch and (
            not kept or kept[-1][EPOCH_KEY] < last_record[EPOCH_KEY]):
        kept.append(finite(last_record))
        restored = int(last_record[EPOCH_KEY])
    replace_file_atomically(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in kept).encode())
    return (int(kept[-1][STEP_KEY]) if kept else 0), dropped, restored


def start_wandb(run_dir: Path, config: RunConfig) -> Any:
    """A W&B run (offline by default: it writes under the run directory and needs no account)."""
    try:
        import wandb
    except ImportError:
        raise RuntimeError(
            "wandb.enabled=true but the wandb package is not installed; "
            "install it (pip install 'heartgrid[wandb]') or set wandb.enabled=false"
        ) from None
    os.environ.setdefault("WANDB_SILENT", "true")
    return wandb.init(
        project=config.wandb.project,
        entity=config.wandb.entity,
        name=config.run,
        id=config.run,
        resume="allow",
        mode=config.wandb.mode,
        dir=str(run_dir),
        tags=config.wandb.tags,
        config=config.model_dump(mode="json"),
    )
