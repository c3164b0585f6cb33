"""Taps on the training pipeline, for behaviour fingerprints (heartgrid/fingerprint).

Each stage of an epoch hands what it computed to `tap(stage, **values)`: the world at the start
of a rollout, the rollout's experience, finished episodes, curriculum state, advantages and
returns, each minibatch's segments, losses, gradients and weights, and the logged record. A
recorder installed with `recording(recorder)` sees them in pipeline order; without one, `tap`
is a global lookup and a return, so the taps stay in the code that training runs.

Values are live tensors that the trainer reuses: a recorder copies what it keeps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

Recorder = Callable[[str, dict[str, Any]], None]

_recorder: Recorder | None = None


def tap(stage: str, **values: Any) -> None:
    if _recorder is not None:
        _recorder(stage, values)


def active() -> bool:
    """Whether a recorder listens (for taps whose values cost something to gather)."""
    return _recorder is not None


@contextmanager
def recording(recorder: Recorder) -> Iterator[None]:
    global _recorder
    previous, _recorder = _recorder, recorder
    try:
        yield
    finally:
        _recorder = previous
