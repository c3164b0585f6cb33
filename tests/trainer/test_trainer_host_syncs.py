"""On a GPU, an operation whose result the host must read (`.item()`, `bool(tensor)`,
`nonzero`, boolean-mask indexing) makes the CPU wait until the device has drained its queue,
so the next kernels cannot be queued ahead. The rollout is built to never do that: the engine
knows on the host which envs end (by time), and the trainer only reads the device once per
rollout (episode statistics). These tests hold that design on the GPU code path (the engine's
host-side skips off, as on a GPU), by recording every operator a CPU run dispatches: a change
that adds a synchronisation fails here instead of silently costing GPU throughput.
"""

from __future__ import annotations

import collections
import traceback

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from heartgrid.config.resolve import build_config
from heartgrid.engine.batched import BatchedEngine
from heartgrid.trainer.trainer import Trainer
from trainer_fakes import restore_torch_threads  # noqa: F401  (fixture)

# Operators whose result the host has to read before it can go on.
SYNCING = {"aten._local_scalar_dense.default", "aten.item.default", "aten.is_nonzero.default",
           "aten.nonzero.default", "aten.nonzero_static.default", "aten.masked_select.default",
           "aten.equal.default", "aten._unique2.default", "aten.unique_consecutive.default",
           "aten.unique_dim.default"}
# Advanced indexing with a boolean mask needs the mask's count on the host.
MASK_INDEXING = {"aten.index.Tensor", "aten.index_put_.default", "aten.index_put.default",
                 "aten._index_put_impl_.default"}


class HostReads(TorchDispatchMode):
    """Records where each operator that makes the host wait for the device was called."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: collections.Counter[str] = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = str(func)
        masked = name in MASK_INDEXING and any(
            isinstance(i, torch.Tensor) and i.dtype == torch.bool
            for i in (args[1] if len(args) > 1 and isinstance(args[1], (list, tuple)) else [])
        )
        if name in SYNCING or masked:
            stack = traceback.extract_stack()
            if any("/torch/optim/" in f.filename for f in stack):
                # Adam's step counters live on the CPU even when training on a GPU.
                return func(*args, **(kwargs or {}))
            frames = [f for f in stack if "/heartgrid/" in f.filename]
            where = frames[-1] if frames else None
            self.calls[f"{name} at {where.filename.split('/heartgrid/')[-1]}:{where.lineno}"
                       if where else name] += 1
        return func(*args, **(kwargs or {}))


def gpu_path_trainer(tmp_path, time_limit: str) -> Trainer:
    """A real engine and policy on the small recipe with short episodes (so envs end and are
    reset inside the rollout), the engine's host skips off as on a GPU."""
    config = build_config("small_easy_shaped", [
        "system.device=cpu", "system.seed=0", "trainer.num_envs=4", "trainer.bptt_horizon=16",
        "trainer.batch_size=256", "trainer.minibatch_size=128", "game.max_steps=10",
        f"game.time_limit={time_limit}", f"data_dir={tmp_path}", 'logging.console="none"',
    ])
    engine = BatchedEngine(config.game, config.trainer.num_envs, "cpu", seed=0, host_skips=False)
    return Trainer(config, engine=engine)


def test_a_sync_is_detected() -> None:
    """The detector itself: each kind of host read is seen, and device-only work is not."""
    x = torch.arange(4)
    for host_read in (lambda: x.sum().item(), lambda: bool(x.any()), lambda: x.nonzero(),
                      lambda: x[x > 1]):
        with HostReads() as reads:
            host_read()
        assert reads.calls
    with HostReads() as reads:
        x.index_select(0, torch.tensor([1, 3])).cumsum(0).clamp_(max=2)
    assert not reads.calls


@pytest.mark.usefixtures("restore_torch_threads")
@pytest.mark.parametrize("time_limit", ["truncate", "terminal"])
def test_rollout_never_waits_for_the_device(tmp_path, time_limit: str) -> None:
    trainer = gpu_path_trainer(tmp_path, time_limit)
    engine = trainer.engine
    steps_before = engine._episode.sum()
    with HostReads() as reads:
        trainer.rollout()
    assert engine._episode.sum() - steps_before >= trainer.config.trainer.num_envs, \
        "episodes should have ended (and envs reset) inside the rollout"
    if time_limit == "truncate":
        assert trainer.experience.truncateds.any()
    assert not reads.calls, f"the rollout read the device from the host: {dict(reads.calls)}"


@pytest.mark.usefixtures("restore_torch_threads")
def test_update_reads_the_device_once_per_minibatch(tmp_path) -> None:
    """The update's one read per minibatch sizes the LSTM's episode pieces (policies/
    recurrent.py); the others happen once per update (explained variance)."""
    trainer = gpu_path_trainer(tmp_path, "truncate")
    trainer.rollout()
    with HostReads() as reads:
        trainer.train_epoch()
    minibatches = trainer.config.trainer.batch_size // trainer.config.trainer.minibatch_size
    per_site = dict(reads.calls)
    lstm = {site: n for site, n in per_site.items() if "recurrent.py" in site}
    assert sum(lstm.values()) == minibatches * trainer.config.trainer.update_epochs, per_site
    others = {site: n for site, n in per_site.items() if site not in lstm}
    assert all(n <= 1 for n in others.values()), others
