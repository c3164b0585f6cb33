"""One torch thread per test here: on a small shared machine, intra-op threads that compete with
other processes for the cores made a 4-epoch training run 30x slower (34 s instead of 1 s)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
