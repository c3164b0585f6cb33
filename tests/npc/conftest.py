from __future__ import annotations

from pathlib import Path

import pytest
from npc_testing import tiny_config

from heartgrid.trainer.run import train


@pytest.fixture(scope="session")
def tiny_teacher(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A teacher of another architecture than the students' (`fast`, 24 hidden units), trained
    for 2 tiny epochs: enough to have logits and values of its own, for the mechanics tests."""
    data_dir = tmp_path_factory.mktemp("teacher")
    return train(tiny_config(data_dir, "teacher", 2, "policy.name=fast", "policy.hidden_size=24"))
