"""Joining torchrun's process group, and starting a run on several ranks together
(docs/distributed.md).

`start_world(config)` reads torchrun's environment (WORLD_SIZE, RANK, LOCAL_RANK, MASTER_ADDR)
and returns this process's `World`, or None for a one-process run (no process group, no cost).
`StartUp` makes one rank's failure to start (the run directory in use on rank 0, a missing GPU
elsewhere) end every rank's start-up at once instead of leaving the others waiting.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from heartgrid.config.run import RunConfig
from heartgrid.devices import DeviceError, require_device
from heartgrid.errors import FileFault, UsageError
from heartgrid.trainer.distributed import World


class RankFailed(Exception):
    """Another rank failed to start (it printed why); this rank ends with its exit status."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


def launched_world_size() -> int:
    """The number of ranks torchrun started (its WORLD_SIZE); 1 without torchrun."""
    value = os.environ.get("WORLD_SIZE", "1")
    try:
        return int(value)
    except ValueError:
        raise UsageError(f"WORLD_SIZE={value!r} is not a number (torchrun sets it)") from None


def with_world_size(config: RunConfig) -> RunConfig:
    """`config` with distributed.world_size filled in from the launch; a value set on the
    command line that disagrees with the launch is a usage error."""
    launched = launched_world_size()
    asked = config.distributed.world_size
    if asked not in (1, launched):
        how = ("this process was not started by torchrun" if launched == 1
               else f"torchrun started {launched} ranks")
        raise UsageError(
            f"distributed.world_size={asked}, but {how}; leave distributed.world_size out (it is "
            f"filled in at launch) and start {asked} ranks with `torchrun --nproc_per_node {asked} "
            f"-m heartgrid train ...` or `heartgrid train ... --nproc {asked}`")
    config.distributed.world_size = launched
    return config


def rank_device(device: str, local_rank: int, size: int) -> torch.device:
    """The device of the rank with this LOCAL_RANK: the CPU, or GPU number LOCAL_RANK."""
    if device == "cpu":
        return torch.device("cpu")
    if device.startswith("cuda:"):
        raise UsageError(
            f"system.device={device} names one GPU, but each of the {size} ranks takes its own, "
            "cuda:LOCAL_RANK; set system.device=cuda (CUDA_VISIBLE_DEVICES chooses which GPUs)")
    require_device("cuda")
    if local_rank >= torch.cuda.device_count():
        raise DeviceError(
            f"rank with LOCAL_RANK={local_rank} has no GPU: only {torch.cuda.device_count()} are visible; "
            "start at most that many ranks per machine (--nproc_per_node)")
    return torch.device("cuda", local_rank)


def start_world(config: RunConfig) -> World | None:
    """Join the process group torchrun prepared (its RANK, LOCAL_RANK, MASTER_ADDR, ...), or
    None when this process is the only rank."""
    size = launched_world_size()
    if size == 1:
        return None
    missing = [name for name in ("RANK", "MASTER_ADDR", "MASTER_PORT") if name not in os.environ]
    if missing:
        raise UsageError(f"WORLD_SIZE={size} but {', '.join(missing)} not set: start the ranks with torchrun "
                         "(torchrun --nproc_per_node N -m heartgrid train ...) or heartgrid train ... --nproc N")
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    device = rank_device(config.system.device, local_rank, size)
    backend = config.distributed.backend
    if backend == "auto":
        backend = "nccl" if device.type == "cuda" else "gloo"
    if backend == "nccl" and device.type != "cuda":
        raise UsageError("distributed.backend=nccl needs GPUs (system.device=cuda); on CPUs use gloo (or auto)")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    timeout = config.distributed.timeout_s
    world = World(rank, size, local_rank, device, backend, timeout)
    with world.talking("joining the process group"):
        dist.init_process_group(backend, timeout=timedelta(seconds=timeout), rank=rank, world_size=size)
    return world


def stop_world(world: World | None) -> None:
    if world is not None and dist.is_initialized():
        # Every rank reaches the end before any tears its connections down: a rank destroying
        # the group while a peer is still in its last collective aborted at exit ("terminate
        # called without an active exception", about 1 run in 4 of bench train --nproc 2).
        dist.barrier()
        dist.destroy_process_group()


USAGE_ERRORS: tuple[type[BaseException], ...] = (UsageError, DeviceError)

_ending_agreed = False


def ending_agreed() -> bool:
    """Whether every rank knows this process is ending, and with which status (a start-up
    failure told to all): then no rank waits for it, and a launcher need not stop them."""
    return _ending_agreed


def _agree_on_ending(world: World) -> None:
    """Every rank reads what was sent before any leaves: a rank that exits with a message
    unread would make its connection's reset lose that message for the others."""
    global _ending_agreed
    world.barrier("agreeing to end")
    _ending_agreed = True
    # No collective follows: leave the group now, while the interpreter is whole. A process
    # that exits with the group alive can abort in interpreter teardown (gloo's threads).
    if dist.is_initialized():
        dist.destroy_process_group()


def exit_status(error: BaseException, usage: tuple[type[BaseException], ...] = ()) -> int:
    """The exit status a rank ends with for `error` (as `heartgrid train` maps them)."""
    if isinstance(error, SystemExit):
        return error.code if isinstance(error.code, int) else 1
    if isinstance(error, RankFailed):
        return error.status
    if isinstance(error, KeyboardInterrupt):
        return 130
    if isinstance(error, FileFault):
        return 4
    if isinstance(error, USAGE_ERRORS + usage):
        return 2
    return 1


class StartUp:
    """The start of a run on several ranks, in which any rank may fail (rank 0: the run
    directory is in use, or cannot be resumed; any rank: its GPU is missing). Each step ends in
    a collective that carries success or the failure, so that one rank's failure ends every
    rank's start-up at once, with its exit status, instead of leaving them waiting:

        decided(resuming)   rank 0 has taken the run directory and tells whether it resumes
        ready()             every rank has built its trainer (rank 0: loaded the checkpoint)

    Used as a context manager around both; an exception inside it is told to the others in the
    step it interrupts, then raised. Ranks that learn of another's failure exit quietly
    (SystemExit with that rank's status): the failing rank says why."""

    def __init__(self, world: World | None, usage: tuple[type[BaseException], ...] = ()):
        self.world, self.usage = world, usage
        self.step = "deciding"

    def __enter__(self) -> StartUp:
        return self

    def __exit__(self, kind: Any, error: BaseException | None, traceback: Any) -> bool:
        if self.world is None or error is None or self.step == "started":
            return False
        failure = ("failed", exit_status(error, self.usage))
        if self.step == "deciding" and self.world.is_main:
            self.world.broadcast_object(failure, "starting")
        elif self.step == "building":
            self.world.all_gather_object(failure, "starting")
        else:
            return False
        _agree_on_ending(self.world)
        return False  # the error goes on

    def decided(self, resuming: bool | None = None) -> bool:
        """Rank 0 passes whether it resumes; every rank returns rank 0's answer."""
        if self.world is None:
            return bool(resuming)
        answer = self.world.broadcast_object(resuming if self.world.is_main else None, "starting")
        self.step = "building"
        if isinstance(answer, tuple):  # rank 0 failed; it says why
            self.step = "started"
            _agree_on_ending(self.world)
            raise SystemExit(answer[1])
        return bool(answer)

    def ready(self) -> None:
        if self.world is None:
            self.step = "started"
            return
        outcomes = self.world.all_gather_object(None, "starting")
        self.step = "started"
        failed = [(rank, outcome[1]) for rank, outcome in enumerate(outcomes) if outcome is not None]
        if failed:
            _agree_on_ending(self.world)
            rank, status = failed[0]
            if self.world.is_main:  # rank 0 speaks for the run; the failed rank said why
                raise RankFailed(f"rank {rank} of {self.world.size} failed to start (exit status {status}; "
                                 "it printed why)", status)
            raise SystemExit(status)
