"""Policy URIs: where a policy comes from, resolved to one checkpoint directory.

Accepted forms (SPEC §5):
- a checkpoint directory (`runs/x/checkpoints/epoch_000100`, or any directory holding
  `policy.safetensors` and `policy.json`, such as one written by `save_policy`);
- a run directory (`runs/x`) or its `checkpoints/` directory: the newest *valid* checkpoint;
- a `policy.safetensors` (or `policy.json`) file: the directory that holds it;
- any of the above behind `file://` (`file:///abs/path`, `file://relative/path`);
- a run directory followed by `?best=<score>` (`runs/x?best=overview/navigation_score`): of its
  intact checkpoints, the one whose manifest holds the highest such score (recorded by
  evaluation while training: evaluation.suite and evaluation.interval); the newest on a tie.

Resolving checks the policy files of a trainer checkpoint against its manifest (its trainer
state is not read, so not hashed either): the directory returned holds an intact policy.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from heartgrid.checkpoint.errors import CheckpointError
from heartgrid.checkpoint.manifest import (
    MANIFEST,
    POLICY_FILES,
    POLICY_SPEC,
    POLICY_WEIGHTS,
    TRAINER_STATE,
    list_checkpoints,
    no_valid_checkpoint,
    valid_checkpoints,
    verify_checkpoint,
)
from heartgrid.rundir import CHECKPOINTS_DIR

SUPPORTED = ("a checkpoint directory, a run directory (optionally ?best=<score>), a policy.safetensors "
             "file, or file://<path>")
BEST = "?best="


def uri_to_path(uri: str | Path) -> Path:
    """The local path a URI names (no existence check)."""
    if isinstance(uri, Path):
        return uri
    uri = uri.split(BEST, 1)[0]  # the run directory of `runs/x?best=<score>`
    if "://" not in uri:
        return Path(uri).expanduser()
    parts = urlsplit(uri)
    if parts.scheme != "file":
        raise CheckpointError(uri, f"unsupported URI scheme {parts.scheme!r}; use {SUPPORTED}")
    # file:///abs/path has an empty netloc; file://rel/path puts `rel` in the netloc.
    return Path(unquote(parts.netloc + parts.path)).expanduser()


def resolve_policy_uri(uri: str | Path) -> Path:
    """The directory of the policy a URI names; a run directory gives its newest checkpoint
    whose policy files are intact (or, with `?best=<score>`, its best-scoring one). A named
    trainer checkpoint that is not intact is refused."""
    if isinstance(uri, str) and BEST in uri:
        location, score = uri.split(BEST, 1)
        return best_checkpoint(uri_to_path(location), score)
    path = uri_to_path(uri)
    if not path.exists():
        raise CheckpointError(
            path, f"no such file or directory (policy URI {str(uri)!r}; expected {SUPPORTED})"
        )
    if path.is_file():
        if path.name not in (POLICY_WEIGHTS, POLICY_SPEC):
            raise CheckpointError(path, f"not a policy file; expected {POLICY_WEIGHTS} or {SUPPORTED}")
        path = path.parent
    if (path / POLICY_WEIGHTS).exists() or (path / POLICY_SPEC).exists():
        # A trainer checkpoint is verified against its manifest, which it must have (one
        # without was not fully written); save_policy writes a policy alone, without one.
        if (path / MANIFEST).exists() or (path / TRAINER_STATE).exists():
            verify_checkpoint(path, POLICY_FILES)
        return path
    checkpoints_dir = path if path.name == CHECKPOINTS_DIR else path / CHECKPOINTS_DIR
    if checkpoints_dir.is_dir():
        return latest_valid_checkpoint(checkpoints_dir)
    raise CheckpointError(
        path, f"holds neither a policy nor a {CHECKPOINTS_DIR}/ directory; expected {SUPPORTED}"
    )


def latest_valid_checkpoint(checkpoints_dir: Path) -> Path:
    """The newest checkpoint whose policy files match its manifest (corrupt ones are warned
    about)."""
    if not list_checkpoints(checkpoints_dir):
        raise CheckpointError(checkpoints_dir, "contains no checkpoint yet")
    refused: list[CheckpointError] = []
    for path, _ in valid_checkpoints(checkpoints_dir, refused, POLICY_FILES):
        return path
    raise no_valid_checkpoint(checkpoints_dir, refused)


def best_checkpoint(run_dir: Path, score: str) -> Path:
    """The intact checkpoint of `run_dir` whose manifest holds the highest `score`."""
    checkpoints_dir = run_dir if run_dir.name == CHECKPOINTS_DIR else run_dir / CHECKPOINTS_DIR
    if not list_checkpoints(checkpoints_dir):
        raise CheckpointError(run_dir, f"holds no checkpoint to choose the best by {score!r} from")
    refused: list[CheckpointError] = []
    scored = [(manifest.scores[score], manifest.epoch, path)
              for path, manifest in valid_checkpoints(checkpoints_dir, refused, POLICY_FILES)
              if score in manifest.scores]
    if not scored:
        held = sorted({name for _, m in valid_checkpoints(checkpoints_dir, [], POLICY_FILES) for name in m.scores})
        raise CheckpointError(run_dir, (
            f"no checkpoint holds the score {score!r} (scores are recorded when the run evaluates "
            f"while training: evaluation.suite and evaluation.interval); "
            + (f"they hold: {', '.join(held)}" if held else "they hold none")))
    return max(scored)[2]


def run_dir_of(checkpoint_dir: Path) -> Path | None:
    """The run directory a checkpoint belongs to (`<run>/checkpoints/epoch_N`), if it is in one."""
    parent = checkpoint_dir.resolve().parent
    return parent.parent if parent.name == CHECKPOINTS_DIR else None
