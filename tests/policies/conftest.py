"""Policy tests use tiny tensors: one torch thread is faster than several on a shared 2-core
machine (measured: about 11 s instead of over a minute when other work competes for the cores)."""

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
