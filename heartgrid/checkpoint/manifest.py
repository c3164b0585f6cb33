"""The on-disk layout of checkpoints and the manifest that proves one is complete and intact.

    <run_dir>/checkpoints/epoch_000123/
        policy.safetensors   weights (heartgrid.checkpoint.policy_io)
        policy.json          architecture spec + format version
        trainer_state.pt     optimizer, schedules, counters, generator states (plain containers)
        manifest.json        epoch, agent_step, and the size and sha256 of every file above

The manifest is written last, inside a hidden `.tmp-…` directory that is renamed into place,
so a visible `epoch_*` directory with a manifest that matches its files is a whole checkpoint.
Anything else (a file truncated or altered later, a file deleted) is refused with the reason.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from heartgrid.checkpoint.durable import sha256_bytes, sha256_file
from heartgrid.checkpoint.errors import CheckpointError, CheckpointWarning

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
POLICY_WEIGHTS = "policy.safetensors"
POLICY_SPEC = "policy.json"
TRAINER_STATE = "trainer_state.pt"
POLICY_FILES = (POLICY_WEIGHTS, POLICY_SPEC)
REQUIRED_FILES = (*POLICY_FILES, TRAINER_STATE)

_NAME = re.compile(r"epoch_(\d+)")


def checkpoint_name(epoch: int) -> str:
    return f"epoch_{epoch:06d}"


@dataclass(frozen=True)
class Manifest:
    epoch: int
    agent_step: int
    files: dict[str, dict]  # file name -> {"size": int, "sha256": str}
    scores: dict[str, float] = field(default_factory=dict)
    """The latest suite scores while training (`overview/<category>_score`, ...; evaluation.suite),
    by which a policy URI can choose the best checkpoint; empty without evaluation."""

    def to_json(self) -> str:
        body = {
            "format_version": FORMAT_VERSION,
            "epoch": self.epoch,
            "agent_step": self.agent_step,
            "files": self.files,
        }
        if self.scores:
            body["scores"] = self.scores
        return json.dumps(body, indent=2, sort_keys=True)

    @classmethod
    def describe(cls, epoch: int, agent_step: int, files: dict[str, bytes],
                 scores: dict[str, float] | None = None) -> Manifest:
        entries = {name: {"size": len(b), "sha256": sha256_bytes(b)} for name, b in files.items()}
        return cls(epoch, agent_step, entries, dict(scores or {}))


def list_checkpoints(checkpoints_dir: Path) -> list[Path]:
    """Visible checkpoint directories, oldest first (by epoch). Hidden `.tmp-…` ones never count."""
    if not checkpoints_dir.is_dir():
        return []
    found = []
    for path in checkpoints_dir.iterdir():
        match = _NAME.fullmatch(path.name)
        if match and path.is_dir():
            found.append((int(match.group(1)), path))
    return [path for _, path in sorted(found)]


def read_manifest(path: Path) -> Manifest:
    """The manifest of checkpoint directory `path`, refusing one that cannot be read."""
    manifest_path = path / MANIFEST
    if not path.is_dir():
        raise CheckpointError(path, "not a directory")
    if not manifest_path.is_file():
        raise CheckpointError(path, f"missing file {MANIFEST} (the checkpoint was not fully written)")
    try:  # an OSError is a file fault, not damage (see verify_checkpoint)
        body = json.loads(manifest_path.read_text())
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError
        raise CheckpointError(path, f"unreadable {MANIFEST}: not JSON ({e})") from None
    try:
        version = body["format_version"]
        files = {str(name): {"size": int(entry["size"]), "sha256": str(entry["sha256"])}
                 for name, entry in body["files"].items()}
        manifest = Manifest(int(body["epoch"]), int(body["agent_step"]), files,
                            {str(k): float(v) for k, v in body.get("scores", {}).items()})
    except (KeyError, TypeError, AttributeError, ValueError):
        raise CheckpointError(path, f"unreadable {MANIFEST}: not a checkpoint manifest (it needs "
                                    "format_version, epoch, agent_step and files with a size and sha256 each)") from None
    if version != FORMAT_VERSION:
        raise CheckpointError(
            path, f"checkpoint format version {version}; this HeartGrid reads version {FORMAT_VERSION}"
        )
    return manifest


def verify_checkpoint(path: Path, files: tuple[str, ...] | None = None) -> Manifest:
    """Check files against the manifest (presence, size, sha256); returns the manifest.

    files: None checks every file the manifest lists, which must include REQUIRED_FILES (what
    a resume reads); a tuple checks only those, e.g. POLICY_FILES for loading a policy, which
    then does not hash the (larger) trainer state it never reads."""
    manifest = read_manifest(path)
    for name in REQUIRED_FILES if files is None else files:
        if name not in manifest.files:
            raise CheckpointError(path, f"{MANIFEST} does not list {name}")
    for name in manifest.files if files is None else files:
        entry = manifest.files[name]
        file = path / name
        if not file.is_file():
            raise CheckpointError(path, f"missing file {name}")
        size = file.stat().st_size
        if size != entry["size"]:
            raise CheckpointError(
                path,
                f"{name} is {size} bytes but the manifest says {entry['size']} "
                "(truncated or overwritten)",
            )
        # An OSError (no permission, an I/O error) is not damage: it ends the command as a file
        # fault, and the same command resumes from this checkpoint once the cause is fixed,
        # rather than training over it from an older one.
        digest = sha256_file(file)
        if digest != entry["sha256"]:
            raise CheckpointError(
                path,
                f"checksum mismatch in {name}: sha256 {digest[:12]}…, "
                f"manifest {entry['sha256'][:12]}…",
            )
    return manifest


def refuse(error: CheckpointError) -> None:
    """Report a refused checkpoint; the caller goes on with an older one."""
    # One line: the CLI prints a warning as `heartgrid VERB: warning: ...`, and a reason taken
    # from another library (torch.load) may span several lines.
    reason = " ".join(line.strip() for line in error.reason.splitlines() if line.strip())
    message = f"refusing checkpoint {error.path}: {reason}; trying an older one"
    warnings.warn(message, CheckpointWarning, stacklevel=3)


def valid_checkpoints(
    checkpoints_dir: Path, refused: list[CheckpointError], files: tuple[str, ...] | None = None
) -> Iterator[tuple[Path, Manifest]]:
    """Checkpoints whose `files` (see verify_checkpoint) verify, newest first; each refused one
    is warned about and appended to `refused`."""
    for path in reversed(list_checkpoints(checkpoints_dir)):
        try:
            manifest = verify_checkpoint(path, files)
        except CheckpointError as e:
            refuse(e)
            refused.append(e)
            continue
        yield path, manifest


def no_valid_checkpoint(checkpoints_dir: Path, refused: list[CheckpointError]) -> CheckpointError:
    reasons = "; ".join(f"{e.path.name}: {e.reason}" for e in refused)
    return CheckpointError(checkpoints_dir, f"no valid checkpoint ({reasons})")
