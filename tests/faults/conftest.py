"""Fixtures of the fault-injection tests: the uninterrupted runs every faulted run must end
equal to, computed once per session, and cleanup of the subprocesses a failed test leaves."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fault_testing import STARTED, run_train, tiny_config, train_command

from heartgrid.trainer.run import train


@pytest.fixture(scope="session")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The subprocess command of every subprocess test, run once without faults."""
    data_dir = tmp_path_factory.mktemp("reference")
    code, _, stderr = run_train(train_command(data_dir, "reference"), data_dir / "logs", "reference")
    assert code == 0, stderr
    return data_dir / "reference"


@pytest.fixture(scope="session")
def tiny_reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tiny_config's 4 epochs in one go, in-process."""
    return train(tiny_config(tmp_path_factory.mktemp("tiny_reference"), "reference"))


@pytest.fixture(autouse=True)
def no_process_left() -> Iterator[None]:
    """A test that fails while its `heartgrid train` processes run kills them (none outlives it)."""
    yield
    while STARTED:
        STARTED.pop().kill()
