"""Checkpoints (SPEC §5): policy files, atomic trainer checkpoints, and policy URIs.

The names below are imported on first use rather than here: importing any submodule runs this
file first, and `heartgrid.checkpoint.durable` (atomic file and directory replacement) serves
code that never touches torch, such as the baseline store of `heartgrid.compare`.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from heartgrid.checkpoint.errors import CheckpointError, CheckpointWarning
    from heartgrid.checkpoint.manager import CheckpointManager, LoadedCheckpoint
    from heartgrid.checkpoint.policy_io import load_policy, load_policy_with_source, save_policy
    from heartgrid.checkpoint.uri import resolve_policy_uri

_MODULE_OF = {
    "CheckpointError": "errors",
    "CheckpointWarning": "errors",
    "CheckpointManager": "manager",
    "LoadedCheckpoint": "manager",
    "load_policy": "policy_io",
    "load_policy_with_source": "policy_io",
    "save_policy": "policy_io",
    "resolve_policy_uri": "uri",
}
__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_MODULE_OF[name]}"), name)
