"""Suite-wide test settings.

One torch thread per test: the suite runs under pytest-xdist with one worker per core, and
intra-op threads on top of that oversubscribe a small machine badly (a 4-epoch training run
took 34 s instead of 1 s; the policy tests over a minute instead of 11 s). A Trainer sets the
process's thread count itself (system.torch_threads), so it is put back after every test.
"""

from __future__ import annotations

from collections.abc import Iterator

import os

import pytest
import torch

from heartgrid.allocator import keep_freed_memory


# At import, so that fixtures of wider scope (runs trained once per module) use one thread too:
# exact-resume tests compare runs bit for bit, and the thread count changes float reductions.
torch.set_num_threads(1)
# And for the Trainer's own default (heartgrid/threads.py honours OMP_NUM_THREADS) and the CLI
# processes tests start: without it the count would follow the machine's load.
os.environ["OMP_NUM_THREADS"] = "1"
# The allocator settings the heartgrid command gives its process (heartgrid/allocator.py): the
# tests that train in this process then allocate as a training run does, and ~5% faster.
keep_freed_memory()


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    yield
    torch.set_num_threads(1)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The `slow` tests first (a stable sort: the rest keep their order), so that pytest-xdist
    starts them at once on both workers instead of handing one out last: the arena learning test
    alone runs ~5 minutes on one core, and started near the end it made the suite 12 minutes
    instead of ~10."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
