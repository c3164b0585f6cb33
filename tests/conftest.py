"""Suite-wide test settings.

One torch thread per test: the suite runs under pytest-xdist with one worker per core, and
intra-op threads on top of that oversubscribe a small machine badly (a 4-epoch training run
took 34 s instead of 1 s; the policy tests over a minute instead of 11 s). A Trainer sets the
process's thread count itself (system.torch_threads), so it is put back after every test.
"""

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
