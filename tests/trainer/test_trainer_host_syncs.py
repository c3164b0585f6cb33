"""On a GPU, anything whose result the host must read (`.item()`, `bool(tensor)`, `nonzero`,
boolean-mask indexing, `.cpu()`, `.tolist()`) makes the host wait until the device has run
every queued kernel, and so does a copy to the device from ordinary host memory: the host
cannot queue the next kernels ahead. The rollout is built to do neither while it steps: the
engine knows on the host which envs end (by time), host data goes to the device through pinned
memory (`heartgrid.devices.to_device`), and the device is read only at the end of a rollout
(statistics). The update reads it once per minibatch (where the LSTM's episode pieces begin,
policies/recurrent.py).

These tests hold that design on the GPU code path (the engine's host-side skips off, as on a
GPU) by recording, on a CPU run, every operator and tensor method that would make the host
wait: a change that adds one fails here instead of silently costing GPU throughput. The
statistics' own reads are exempted by wrapping those functions, and the wrapped calls are
counted, so statistics recorded per step or per minibatch fail too. A CPU run cannot tell a
host tensor from a device tensor, so reads of host data would show up as well (the rollout and
update have none), and a `copy_` from host memory into a device buffer is not seen here. On a
CUDA machine, the last tests check the same with CUDA's own synchronisation detector.
"""

from __future__ import annotations

import collections
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

import heartgrid
from heartgrid.engine.batched import BatchedEngine
from heartgrid.recipes import build_config
from heartgrid.trainer.ppo import ppo_update
from heartgrid.trainer.trainer import Trainer

PACKAGE = str(Path(heartgrid.__file__).parent) + "/"

# Operators whose result the host has to read before it can go on.
SYNCING_OPS = {"aten._local_scalar_dense.default", "aten.item.default", "aten.is_nonzero.default",
               "aten.nonzero.default", "aten.masked_select.default", "aten.equal.default",
               "aten._unique2.default", "aten.unique_consecutive.default", "aten.unique_dim.default"}
# Advanced indexing with a boolean mask needs the mask's count on the host.
MASK_INDEXING = {"aten.index.Tensor", "aten.index_put_.default", "aten.index_put.default",
                 "aten._index_put_impl_.default"}
# Tensor methods that copy to the host.
READ_METHODS = {torch.Tensor.cpu, torch.Tensor.tolist, torch.Tensor.numpy, torch.Tensor.item}
# Building a device tensor from host data (lists, arrays) copies from ordinary memory.
CONSTRUCTORS = {torch.tensor, torch.as_tensor, torch.Tensor.new_tensor}
# The sanctioned host-to-device path: through pinned memory, no wait.
PINNED_COPY = ("devices.py", "to_device")


class HostWaits:
    """Records where each operation that would make the host wait for a GPU was called in
    the code under `package` (`calls`: "what at file:line" → count). Functions exempted with
    `exempt` record nothing inside; their outermost calls are counted (`exempted`)."""

    def __init__(self, package: str = PACKAGE) -> None:
        self.package = package
        self.calls: collections.Counter[str] = collections.Counter()
        self.exempted: collections.Counter[str] = collections.Counter()
        self._inside_exempt = 0
        self._modes = (_Operators(self), _Methods(self))

    def __enter__(self) -> HostWaits:
        for mode in self._modes:
            mode.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        for mode in reversed(self._modes):
            mode.__exit__(*exc)

    def exempt(self, monkeypatch: pytest.MonkeyPatch, owner: object, name: str) -> None:
        """`owner.name` may read the device (statistics); its outermost calls are counted."""
        function = getattr(owner, name)

        def run(*args, **kwargs):
            if not self._inside_exempt:
                self.exempted[name] += 1
            self._inside_exempt += 1
            try:
                return function(*args, **kwargs)
            finally:
                self._inside_exempt -= 1

        monkeypatch.setattr(owner, name, run)

    def note(self, what: str) -> None:
        if self._inside_exempt:
            return
        stack = traceback.extract_stack()
        if any("/torch/optim/" in f.filename for f in stack):
            return  # Adam's step counters live on the CPU even when training on a GPU
        frames = [f for f in stack if f.filename.startswith(self.package)]
        if any((f.filename[len(self.package):], f.name) == PINNED_COPY for f in frames):
            return
        where = (f"{frames[-1].filename[len(self.package):]}:{frames[-1].lineno}" if frames
                 else "outside the package")
        self.calls[f"{what} at {where}"] += 1


class _Operators(TorchDispatchMode):
    def __init__(self, record: HostWaits) -> None:
        super().__init__()
        self.record = record

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = str(func)
        indices = args[1] if len(args) > 1 and isinstance(args[1], (list, tuple)) else []
        masked = name in MASK_INDEXING and any(
            isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in indices)
        if name in SYNCING_OPS or masked:
            self.record.note(name)
        return func(*args, **(kwargs or {}))


class _Methods(TorchFunctionMode):
    """Copies the code under test asks for: to the host, and to a device from memory that is
    not pinned (`.to(device)` or `.cuda()` outside `to_device`, a tensor built on a device from
    host data; a CPU run cannot tell which tensors would be pinned). Library code is left out:
    its `.to(device)` calls keep tensors where they are (e.g. clip_grad_norm_), and its real
    reads are operators, seen by `_Operators`."""

    def __init__(self, record: HostWaits) -> None:
        super().__init__()
        self.record = record

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        caller = traceback.extract_stack(limit=2)[0]
        if caller.filename.startswith(self.record.package):
            if func in READ_METHODS:
                self.record.note(f"Tensor.{func.__name__}")
            elif func is torch.Tensor.cuda or (
                    func is torch.Tensor.to and _names_a_device(args[1:], kwargs)):
                self.record.note(f"Tensor.{func.__name__}(device)")
            elif func in CONSTRUCTORS and kwargs.get("device") is not None:
                data = args[1] if func is torch.Tensor.new_tensor else args[0]
                if not isinstance(data, torch.Tensor):
                    self.record.note(f"{func.__name__}(host data, device=...)")
        return func(*args, **kwargs)


def _names_a_device(args: tuple, kwargs: dict) -> bool:
    candidates = [*args[:1], kwargs.get("device")]
    return any(isinstance(a, (str, torch.device)) for a in candidates)


def end_of_rollout_reads(trainer: Trainer) -> list[tuple[object, str]]:
    """The functions a rollout reads the device in, once, after its last step."""
    return [(trainer.stats, "add_dict"), (trainer.engine, "drain_episodes"),
            (trainer, "record_episodes")]


def gpu_path_trainer(tmp_path, time_limit: str = "truncate", *overrides: str) -> Trainer:
    """A real engine and policy on the small recipe with short episodes (so envs end and are
    reset inside the rollout), the engine's host skips off as on a GPU."""
    config = build_config("small_easy_shaped", [
        "system.device=cpu", "system.seed=0", "trainer.num_envs=4", "trainer.bptt_horizon=16",
        "trainer.batch_size=256", "trainer.minibatch_size=128", "game.max_steps=10",
        f"game.time_limit={time_limit}", f"data_dir={tmp_path}", 'logging.console="none"',
        *overrides,
    ])
    engine = BatchedEngine(config.game, config.trainer.num_envs, "cpu", seed=0, host_skips=False)
    return Trainer(config, engine=engine)


def host_waits_of(run: Callable[[torch.Tensor], object], x: torch.Tensor) -> HostWaits:
    """What `run(x)` makes the host wait for, called from this test file as the code under test."""
    with HostWaits(package=str(Path(__file__).parent) + "/") as waits:
        run(x)
    return waits


@pytest.mark.parametrize("host_wait", [
    lambda x: x.sum().item(), lambda x: bool(x.any()), lambda x: x.nonzero(),
    lambda x: x[x > 1], lambda x: x.tolist(), lambda x: x.cpu(), lambda x: x.numpy(),
    lambda x: x.to("cpu"), lambda x: x.to(device=torch.device("cpu"), dtype=torch.float32),
    lambda x: torch.tensor([1, 2], device=x.device), lambda x: torch.as_tensor([3], device="cpu"),
    lambda x: x.new_tensor([1.0], device=x.device),
])
def test_each_kind_of_host_wait_is_seen(host_wait) -> None:
    assert sum(host_waits_of(host_wait, torch.arange(4)).calls.values()) >= 1


def test_device_work_is_not_a_host_wait() -> None:
    def device_work(x: torch.Tensor) -> None:
        x.index_select(0, torch.tensor([1, 3])).cumsum(0).clamp_(max=2).to(torch.float32)
        torch.as_tensor(x, device=x.device).add_(1)
        torch.nn.utils.clip_grad_norm_([torch.nn.Parameter(x.float())], 1.0)

    assert not host_waits_of(device_work, torch.arange(4)).calls


@pytest.mark.parametrize("time_limit", ["truncate", "terminal"])
def test_rollout_never_waits_for_the_device(tmp_path, monkeypatch, time_limit: str) -> None:
    trainer = gpu_path_trainer(tmp_path, time_limit)
    engine = trainer.engine
    episodes_before = engine._episode.sum()
    with HostWaits() as waits:
        for owner, name in end_of_rollout_reads(trainer):
            waits.exempt(monkeypatch, owner, name)
        trainer.rollout()
    assert engine._episode.sum() - episodes_before >= trainer.config.trainer.num_envs, \
        "episodes should have ended (and envs reset) inside the rollout"
    if time_limit == "truncate":
        assert trainer.experience.truncateds.any()
    assert not waits.calls, f"the rollout made the host wait: {dict(waits.calls)}"
    # The statistics are read once per rollout, not per step.
    assert waits.exempted == {name: 1 for _, name in end_of_rollout_reads(trainer)}


def update_waits(tmp_path, monkeypatch, update_epochs: int) -> tuple[HostWaits, int]:
    """(what ppo_update waits for, with `stats.add` exempted; how many minibatches it ran)."""
    trainer = gpu_path_trainer(tmp_path / str(update_epochs), "truncate",
                               f"trainer.update_epochs={update_epochs}")
    trainer.rollout()
    t = trainer.config.trainer
    with HostWaits() as waits:
        waits.exempt(monkeypatch, trainer.stats, "add")
        ppo_update(trainer.policy, trainer.optimizer, trainer.experience, trainer.sampler, t,
                   trainer.hyper, 0.0, trainer.stats)
    return waits, t.batch_size // t.minibatch_size * t.update_epochs


def test_update_waits_once_per_minibatch(tmp_path, monkeypatch) -> None:
    """One wait per minibatch: where the LSTM pieces begin. Every other site waits once per
    update (explained variance), and statistics are recorded once per update."""
    one, _ = update_waits(tmp_path, monkeypatch, update_epochs=1)
    waits, minibatches = update_waits(tmp_path, monkeypatch, update_epochs=2)
    lstm = {site: n for site, n in waits.calls.items() if "policies/recurrent.py" in site}
    assert sum(lstm.values()) == minibatches, waits.calls
    others = {site: n for site, n in waits.calls.items() if site not in lstm}
    assert all(n == 1 for n in others.values()), others
    assert waits.exempted == one.exempted, "statistics recorded per minibatch"


def cuda_trainer(tmp_path, *overrides: str) -> Trainer:
    config = build_config("small_easy_shaped", [
        "system.device=cuda", "system.seed=0", "trainer.num_envs=4", "trainer.bptt_horizon=16",
        "trainer.batch_size=256", "trainer.minibatch_size=128", "game.max_steps=10",
        f"data_dir={tmp_path}", 'logging.console="none"', *overrides,
    ])
    trainer = Trainer(config)
    trainer.rollout()  # warm-up: first-use allocations and library loads
    return trainer


needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@needs_cuda
def test_cuda_rollout_never_synchronises(tmp_path, monkeypatch) -> None:
    """CUDA's own detector (`set_sync_debug_mode("error")`) over a real rollout on the GPU,
    the end-of-rollout statistics exempt."""
    trainer = cuda_trainer(tmp_path)

    def exempt(owner: object, name: str) -> None:
        function = getattr(owner, name)

        def run(*args, **kwargs):
            previous = torch.cuda.get_sync_debug_mode()
            torch.cuda.set_sync_debug_mode(0)
            try:
                return function(*args, **kwargs)
            finally:
                torch.cuda.set_sync_debug_mode(previous)

        monkeypatch.setattr(owner, name, run)

    for owner, name in end_of_rollout_reads(trainer):
        exempt(owner, name)
    torch.cuda.set_sync_debug_mode("error")
    try:
        trainer.rollout()
    finally:
        torch.cuda.set_sync_debug_mode(0)


@needs_cuda
def test_cuda_update_synchronises_once_per_minibatch(tmp_path) -> None:
    """Each further update epoch adds exactly one synchronisation per minibatch (counted by
    CUDA's detector in warn mode; the per-update statistics cancel out)."""

    def synchronisations(update_epochs: int) -> int:
        trainer = cuda_trainer(tmp_path / str(update_epochs), f"trainer.update_epochs={update_epochs}")
        t = trainer.config.trainer
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                ppo_update(trainer.policy, trainer.optimizer, trainer.experience, trainer.sampler,
                           t, trainer.hyper, 0.0, trainer.stats)
                torch.cuda.synchronize()
            finally:
                torch.cuda.set_sync_debug_mode(0)
        return sum("synchroniz" in str(w.message) for w in caught)

    per_epoch = 256 // 128
    assert synchronisations(2) - synchronisations(1) == per_epoch
