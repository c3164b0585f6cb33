"""Replays: record an env of a batch, read it back step by step, watch it in a browser (docs/replays.md).

    from heartgrid.replay import EpisodeRecorder, ReplayState, read_replay, write_replay

The names below are imported on first use rather than here: reading a replay file (format.py)
needs neither torch nor the engine, so a viewer that only serves files stays light.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from heartgrid.replay.episode import record_episode, scripted_policy
    from heartgrid.replay.format import (
        FORMAT,
        VERSION,
        ReplayError,
        find_replays,
        read_replay,
        validate_document,
        write_replay,
    )
    from heartgrid.replay.reader import ReplayState
    from heartgrid.replay.recorder import EpisodeRecorder
    from heartgrid.replay.requests import ReplayRequest

_MODULE_OF = {
    "FORMAT": "format", "VERSION": "format", "ReplayError": "format", "find_replays": "format",
    "read_replay": "format", "validate_document": "format", "write_replay": "format",
    "ReplayState": "reader",
    "EpisodeRecorder": "recorder",
    "record_episode": "episode", "scripted_policy": "episode",
    "ReplayRequest": "requests",
}
__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_MODULE_OF[name]}"), name)
