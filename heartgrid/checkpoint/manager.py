"""Writing, finding and pruning a run's checkpoints (layout: manifest.py).

    manager = CheckpointManager(run_dir, keep_last_n=5)
    manager.save(epoch, agent_step, policy, trainer_state)   # -> checkpoints/epoch_000123/
    checkpoint = manager.load_latest()                       # newest valid one, or None
    checkpoint.restore_policy(policy); trainer.load_state_dict(checkpoint.trainer_state)

Atomicity: every file goes into a hidden `checkpoints/.tmp-epoch_…` directory, is fsynced, the
manifest (sizes and sha256 of the others) is written last, and only then is the directory
renamed to `epoch_…`. A crash at any point leaves either no new visible checkpoint or a
complete one; leftovers of a crashed save are removed by the next save.

Trainer state is stored with `torch.save` and read back with `weights_only=True`, which
unpickles only tensors and plain containers, never arbitrary objects. `save` therefore refuses,
up front, a state holding anything else (and says where), rather than writing a checkpoint
that would fail to load at resume time.
"""

from __future__ import annotations

import io
import shutil
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from heartgrid.checkpoint.durable import OLD_PREFIX, TMP_PREFIX, fsync_dir, replace_directory, write_synced
from heartgrid.checkpoint.errors import CheckpointError
from heartgrid.checkpoint.manifest import (
    MANIFEST,
    TRAINER_STATE,
    Manifest,
    checkpoint_name,
    list_checkpoints,
    no_valid_checkpoint,
    refuse,
    valid_checkpoints,
)
from heartgrid.checkpoint.policy_io import encode_policy, load_weights, read_policy_files
from heartgrid.rundir import CHECKPOINTS_DIR
from heartgrid.rundir.faults import check_free_space, file_fault, format_bytes, is_space_error

SPACE_MARGIN = 1_000_000
"""Bytes kept free beyond a checkpoint being written: the metrics and log lines that follow it."""

_PLAIN_SCALARS = (str, int, float, bool, bytes, type(None))


@dataclass
class LoadedCheckpoint:
    path: Path
    epoch: int
    agent_step: int
    policy_spec: dict[str, Any]
    policy_weights: dict[str, Tensor]  # CPU tensors
    trainer_state: dict[str, Any]  # CPU tensors and plain containers
    refused: list[CheckpointError] = field(default_factory=list)
    """Newer checkpoints that were skipped as corrupt, newest first."""

    def restore_policy(self, policy: nn.Module) -> None:
        """Load the saved weights into `policy`; a different architecture is refused by name."""
        load_weights(policy, self.policy_spec, self.policy_weights, self.path)


@dataclass(frozen=True)
class EncodedCheckpoint:
    epoch: int
    agent_step: int
    files: dict[str, bytes]
    scores: dict[str, float] = field(default_factory=dict)  # for the manifest

    @property
    def nbytes(self) -> int:
        return sum(len(data) for data in self.files.values())


class CheckpointManager:
    def __init__(self, run_dir: str | Path, keep_last_n: int | None = None):
        if keep_last_n is not None and keep_last_n < 1:
            raise ValueError(f"keep_last_n must be at least 1 (None keeps all), got {keep_last_n}")
        self.run_dir = Path(run_dir)
        self.directory = self.run_dir / CHECKPOINTS_DIR
        self.keep_last_n = keep_last_n

    def checkpoints(self) -> list[Path]:
        """Visible checkpoint directories, oldest first (valid or not)."""
        return list_checkpoints(self.directory)

    def encode(
        self, epoch: int, agent_step: int, policy: nn.Module, trainer_state: dict[str, Any],
        scores: dict[str, float] | None = None,
    ) -> EncodedCheckpoint:
        """The checkpoint's files as bytes, ready for `write` (a snapshot: later training
        does not change them)."""
        check_plain(trainer_state, "trainer_state")
        buffer = io.BytesIO()
        torch.save(trainer_state, buffer)
        files = {**encode_policy(policy), TRAINER_STATE: buffer.getvalue()}
        return EncodedCheckpoint(epoch, agent_step, files, dict(scores or {}))

    def save(
        self, epoch: int, agent_step: int, policy: nn.Module, trainer_state: dict[str, Any],
        scores: dict[str, float] | None = None,
    ) -> Path:
        """Write `checkpoints/epoch_<epoch>/` atomically, then prune beyond `keep_last_n`;
        `scores` (suite scores while training) go into its manifest."""
        return self.write(self.encode(epoch, agent_step, policy, trainer_state, scores))

    def write(self, checkpoint: EncodedCheckpoint) -> Path:
        """Write an encoded checkpoint atomically, then prune beyond `keep_last_n`. A full disk
        (checked first, or hit while writing) raises FileFault and leaves no partial files."""
        files = checkpoint.files
        manifest = Manifest.describe(checkpoint.epoch, checkpoint.agent_step, files, checkpoint.scores)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._remove_leftovers()
            check_free_space(self.directory, checkpoint.nbytes + SPACE_MARGIN,
                             f"checkpoint epoch {checkpoint.epoch}", self.space_remedy(checkpoint.nbytes))
            name = checkpoint_name(checkpoint.epoch)
            tmp = self.directory / f"{TMP_PREFIX}{name}"
            tmp.mkdir()
            try:
                for file_name, data in files.items():
                    write_synced(tmp / file_name, data)
                write_synced(tmp / MANIFEST, manifest.to_json().encode())
                fsync_dir(tmp)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            # Replaces a checkpoint of the same epoch; a crash mid-way leaves the older epochs.
            final = self.directory / name
            replace_directory(tmp, final)
            self._prune(final)
        except OSError as e:
            raise file_fault(e, self.space_remedy(checkpoint.nbytes) if is_space_error(e) else "",
                             doing=f"checkpoint {checkpoint_name(checkpoint.epoch)}") from None
        return final

    def space_remedy(self, checkpoint_bytes: int) -> str:
        kept = "all checkpoints are kept" if self.keep_last_n is None else (
            f"trainer.keep_last_n={self.keep_last_n} keeps that many")
        return (f"each checkpoint takes about {format_bytes(checkpoint_bytes)} and {kept}, plus one "
                f"being written; free some space, lower trainer.keep_last_n, or train on a larger "
                f"disk (data_dir=...)")

    def _remove_leftovers(self) -> None:
        for path in self.directory.iterdir():
            if path.name.startswith((TMP_PREFIX, OLD_PREFIX)):
                shutil.rmtree(path) if path.is_dir() else path.unlink()

    def _prune(self, newest: Path) -> None:
        """Delete all but the last `keep_last_n` checkpoints up to `newest` (the one just saved).

        A checkpoint of a later epoch can only be a corrupt one that the trainer refused when it
        resumed from an earlier one; it is left alone (a later save of its epoch replaces it),
        and it must not push the new, valid checkpoint out of the kept ones."""
        if self.keep_last_n is None:
            return
        checkpoints = self.checkpoints()
        for path in checkpoints[: checkpoints.index(newest) + 1][: -self.keep_last_n]:
            shutil.rmtree(path)

    def load_latest(self, map_location: str | torch.device = "cpu") -> LoadedCheckpoint | None:
        """The newest checkpoint that verifies and loads; corrupt ones are refused with a
        CheckpointWarning naming the path and reason. None when there is no checkpoint at all;
        CheckpointError when there are some but none is valid (resuming from nothing would
        silently restart training)."""
        if not self.checkpoints():
            return None
        refused: list[CheckpointError] = []
        for path, manifest in valid_checkpoints(self.directory, refused):
            try:
                return self._load(path, manifest, refused, map_location)
            except CheckpointError as e:
                refuse(e)
                refused.append(e)
        raise no_valid_checkpoint(self.directory, refused)

    @staticmethod
    def _load(
        path: Path, manifest: Manifest, refused: list[CheckpointError], map_location
    ) -> LoadedCheckpoint:
        spec, weights = read_policy_files(path)
        try:
            state = torch.load(path / TRAINER_STATE, map_location=map_location, weights_only=True)
        except Exception as e:  # torch raises many types for a bad pickle; all mean "unreadable"
            raise CheckpointError(path, f"unreadable {TRAINER_STATE}: {type(e).__name__}: {e}") from None
        if not isinstance(state, dict):
            kind = type(state).__name__
            raise CheckpointError(path, f"{TRAINER_STATE} holds a {kind}, expected a dict")
        return LoadedCheckpoint(
            path, manifest.epoch, manifest.agent_step, spec, weights, state, list(refused)
        )


def check_plain(value: Any, where: str) -> None:
    """Refuse anything `torch.load(weights_only=True)` would not read back: only tensors, str/
    int/float/bool/bytes/None, and dicts, lists and tuples of those. Types are matched exactly:
    a NumPy float is a `float` subclass, yet weights-only loading refuses it."""
    kind = type(value)
    if isinstance(value, Tensor) or kind in _PLAIN_SCALARS:
        return
    if kind in (dict, OrderedDict):
        for key, item in value.items():
            check_plain(key, f"{where} key {key!r}")
            check_plain(item, f"{where}[{key!r}]")
        return
    if kind in (list, tuple, torch.Size):
        for i, item in enumerate(value):
            check_plain(item, f"{where}[{i}]")
        return
    raise TypeError(
        f"{where} is a {kind.__module__}.{kind.__qualname__}; a checkpoint's trainer state may hold "
        "only tensors, Python numbers, strings, bytes, None, and dicts/lists/tuples of those "
        "(convert arrays with torch.as_tensor, NumPy scalars with .item(), objects with their "
        "state_dict())"
    )
