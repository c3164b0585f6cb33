"""A test of runs on several ranks that fails (or times out) leaves no process behind."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from world_testing import kill_leftovers


@pytest.fixture(autouse=True)
def no_leftover_processes() -> Iterator[None]:
    yield
    kill_leftovers()
