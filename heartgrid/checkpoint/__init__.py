"""Checkpoints (SPEC §5): policy files, atomic trainer checkpoints, and policy URIs."""

from heartgrid.checkpoint.errors import CheckpointError, CheckpointWarning
from heartgrid.checkpoint.manager import CheckpointManager, LoadedCheckpoint
from heartgrid.checkpoint.policy_io import load_policy, save_policy
from heartgrid.checkpoint.uri import resolve_policy_uri

__all__ = [
    "CheckpointError",
    "CheckpointManager",
    "CheckpointWarning",
    "LoadedCheckpoint",
    "load_policy",
    "resolve_policy_uri",
    "save_policy",
]
