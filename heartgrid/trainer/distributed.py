"""Training on several processes with torch.distributed: the world of ranks and what passes
between them (docs/distributed.md).

    torchrun --nproc_per_node 2 -m heartgrid train small_cardinal     # or: heartgrid train ... --nproc 2

A run of W ranks is the one-process run of W x trainer.num_envs envs, split by envs:

- rank r steps envs [r·n, (r+1)·n) of the world's batch (`BatchedEngine(first_env=r·n)`), so
  its envs are seeded, and play, exactly as those envs of one engine holding all W·n;
- every rank draws the Gumbel noise of the world's whole batch of actions from the same
  generator and keeps its own rows (`sample_world_actions`), so the actions are those the
  one-process run would take;
- every rank draws the same order of the world's segments (the sampler's generator is seeded
  alike) and trains, in each minibatch, on the segments of it that it holds
  (`heartgrid/trainer/shards.py`); DistributedDataParallel adds the ranks' gradients up;
  advantage normalisation, explained variance and the target-KL test use the world's sums.

So the first update of a W-rank run equals that of the one-process run with W times the envs
up to the order of float additions (tests/distributed): how many processes share a run is a
matter of speed, not of what it learns. The price: each rank draws W times the action noise it uses (a
few microseconds on a GPU), and the ranks' shares of a minibatch vary around 1/W.

What is not shared stays on its rank and is merged where it is reported: episode statistics
and the update's diagnostics (rank 0 writes the world's means), the curriculum (every rank
runs the same curriculum on the world's finished episodes, so all make the same choices).
Nothing here runs without torchrun: a one-process run has no process group and no cost.
Joining the process group and starting a run together: world_start.py.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from heartgrid.engine.stats import EpisodeBatch
from heartgrid.trainer.stats import StatsAccumulator


class WorldError(RuntimeError):
    """Talking to the other ranks failed: one died, or stopped answering for longer than
    distributed.timeout_s. Ends the rank with exit status 1 and one line."""


# Exp(1) draws of exactly 0 would pick their action surely (as in policies/distribution.py).
_TINY = torch.finfo(torch.float32).tiny


@dataclass
class World:
    """This process's place among the ranks, and the collectives the trainer uses. Every
    collective is called by every rank in the same order; each names what it was doing when
    another rank is gone (WorldError)."""

    rank: int
    size: int
    local_rank: int
    device: torch.device
    backend: str
    timeout_s: float

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that holds the run directory, logs and writes checkpoints."""
        return self.rank == 0

    @contextmanager
    def talking(self, what: str) -> Iterator[None]:
        try:
            yield
        except RuntimeError as e:  # gloo raises RuntimeError, NCCL DistBackendError (one too)
            if isinstance(e, WorldError):
                raise
            raise WorldError(lost_contact(self, what, e)) from e

    # ---- collectives ---------------------------------------------------------------------

    def any(self, flag: bool, what: str = "agreeing to stop") -> bool:
        """Whether `flag` is set on any rank (each rank learns the same answer)."""
        value = torch.tensor([int(flag)], device=self.device)
        with self.talking(what):
            dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item())

    def total(self, tensor: Tensor, what: str = "adding up") -> Tensor:
        """The sum of `tensor` over the ranks (a new tensor; the argument is left as it is)."""
        result = tensor.detach().clone()
        with self.talking(what):
            dist.all_reduce(result)
        return result

    def gather_rows(self, values: Tensor, what: str = "gathering priorities") -> Tensor:
        """[size, *values.shape]: every rank's `values` (of one shape on every rank)."""
        parts = [torch.empty_like(values) for _ in range(self.size)]
        with self.talking(what):
            dist.all_gather(parts, values.contiguous())
        return torch.stack(parts)

    def all_gather_object(self, value: Any, what: str) -> list[Any]:
        parts: list[Any] = [None] * self.size
        with self.talking(what):
            dist.all_gather_object(parts, value)
        return parts

    def gather_object(self, value: Any, what: str) -> list[Any] | None:
        """Every rank's `value` on rank 0 (in rank order); None on the others."""
        parts: list[Any] | None = [None] * self.size if self.is_main else None
        with self.talking(what):
            dist.gather_object(value, parts, dst=0)
        return parts

    def broadcast_object(self, value: Any, what: str) -> Any:
        """Rank 0's `value` on every rank."""
        box = [value]
        with self.talking(what):
            dist.broadcast_object_list(box, src=0)
        return box[0]

    def scatter_object(self, values: list[Any] | None, what: str) -> Any:
        """values[r] to rank r (`values` is read on rank 0 only)."""
        box: list[Any] = [None]
        with self.talking(what):
            dist.scatter_object_list(box, values if self.is_main else None, src=0)
        return box[0]

    def barrier(self, what: str) -> None:
        with self.talking(what):
            dist.barrier()

    # ---- the world's statistics ------------------------------------------------------------

    def mean_std(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and (unbiased) standard deviation of the values `x` holds on all ranks
        together, in two passes (the sum of squares around the world's mean, as torch.std
        does, not the cancellation-prone sum of squares). A rank may hold none."""
        sums = self.total(torch.stack([x.detach().double().sum(),
                                       torch.tensor(float(x.numel()), device=x.device, dtype=torch.float64)]),
                          "normalising advantages")
        count = sums[1]
        mean = sums[0] / count
        squares = self.total(((x.detach().double() - mean) ** 2).sum(), "normalising advantages")
        std = (squares / (count - 1)).sqrt()
        return mean.to(x.dtype), std.to(x.dtype)

    def mean(self, x: Tensor) -> Tensor:
        sums = self.total(torch.stack([x.detach().double().sum(),
                                       torch.tensor(float(x.numel()), device=x.device, dtype=torch.float64)]),
                          "averaging over the world")
        return (sums[0] / sums[1]).to(x.dtype)

    def explained_variance(self, predictions: Tensor, targets: Tensor) -> float:
        """1 − Var[targets − predictions] / Var[targets] over every rank's values (NaN when
        the targets do not vary), as heartgrid.trainer.advantages.explained_variance."""
        residuals = (targets - predictions).double()
        targets = targets.double()
        n = torch.tensor(float(targets.numel()), device=targets.device, dtype=torch.float64)
        sums = self.total(torch.stack([targets.sum(), residuals.sum(), n]), "explained variance")
        count = sums[2]
        spread = self.total(torch.stack([((targets - sums[0] / count) ** 2).sum(),
                                         ((residuals - sums[1] / count) ** 2).sum()]), "explained variance")
        if spread[0].item() == 0:
            return float("nan")
        return float(1.0 - spread[1] / spread[0])

    def merged_stats(self, stats: StatsAccumulator) -> StatsAccumulator:
        """On rank 0, every rank's values of each name in rank order (means are then the
        world's: math.fsum is exact, so the order of values does not matter); the rank's
        own elsewhere."""
        parts = self.gather_object(stats.state_dict(), "merging the metrics")
        if parts is None:
            return stats
        merged = StatsAccumulator()
        for part in parts:
            for name, values in part.items():
                merged.add(name, values)
        return merged

    def episodes(self, batch: EpisodeBatch, first_env: int, num_envs: int) -> EpisodeBatch:
        """Every rank's finished episodes, env ids in the world's numbering (rank r's env i is
        r·num_envs + i), rank after rank: what the curriculum, run alike on every rank, sees."""
        batches = self.all_gather_object(batch, "sharing finished episodes")
        return EpisodeBatch(
            env_ids=torch.cat([b.env_ids + r * num_envs for r, b in enumerate(batches)]),
            task_ids=torch.cat([b.task_ids for b in batches]),
            rewards=torch.cat([b.rewards for b in batches]),
            lengths=torch.cat([b.lengths for b in batches]),
            agent_stats={k: torch.cat([b.agent_stats[k] for b in batches]) for k in batch.agent_stats},
            game_stats={k: torch.cat([b.game_stats[k] for b in batches]) for k in batch.game_stats},
        )


def lost_contact(world: World, what: str, error: BaseException) -> str:
    detail = " ".join(str(error).split())
    if detail.startswith("[") and "] " in detail:  # gloo's source location
        detail = detail.split("] ", 1)[1]
    detail = detail.split(". ", 1)[0]
    if len(detail) > 200:
        detail = detail[:200] + "..."
    return (f"rank {world.rank} of {world.size} lost the other ranks while {what}: another rank died or "
            f"stopped answering within distributed.timeout_s={world.timeout_s:g} ({type(error).__name__}: "
            f"{detail}); the launcher's report names the rank that failed first. The checkpoints "
            f"written so far are whole: the same command resumes from the latest")


def is_collective_error(error: BaseException) -> bool:
    """Whether an error raised inside training came from talking to other ranks (DDP's
    gradient all-reduce runs inside backward(), out of reach of World.talking)."""
    if isinstance(error, WorldError):
        return True
    base = getattr(dist, "DistError", None)
    if base is not None and isinstance(error, base):
        return True
    text = str(error)
    return isinstance(error, RuntimeError) and any(
        word in text for word in ("gloo", "Gloo", "NCCL", "Connection closed by peer", "Connection reset"))


# ---- what a rank holds of the world's batch ---------------------------------------------------


@dataclass(frozen=True)
class RowLayout:
    """Where this rank's experience rows sit in the world's buffer. One process with all the
    world's envs fills row p·(W·s) + j in rollout pass p from slot j (s slots per rank, W ranks);
    rank r's slot i is that process's slot r·s + i, so its local row p·s + i is world row
    p·W·s + r·s + i. With minibatch_sampling=transitions an index is row·T + t."""

    rank: int
    size: int
    slots: int
    horizon: int

    def local(self, indices: Tensor, transitions: bool) -> tuple[Tensor, Tensor]:
        """(which of the world's `indices` this rank holds, a bool mask; their local indices)."""
        rows = indices // self.horizon if transitions else indices
        world_slots = self.slots * self.size
        passes, slot = rows // world_slots, rows % world_slots
        mine = slot // self.slots == self.rank
        local = passes[mine] * self.slots + slot[mine] % self.slots
        if transitions:
            local = local * self.horizon + indices[mine] % self.horizon
        return mine, local

    def world_rows(self, gathered: Tensor) -> Tensor:
        """[size, local rows] (every rank's values per local row) -> [world rows], in the
        world's row order."""
        size, rows = gathered.shape[:2]
        passes = rows // self.slots
        return gathered.reshape(size, passes, self.slots).transpose(0, 1).reshape(size * rows)


def sample_world_actions(logits: Tensor, generator: torch.Generator, world: World) -> tuple[Tensor, Tensor]:
    """heartgrid.policies.distribution.sample_actions for this rank's rows of the world's batch:
    the Gumbel noise of all W·B rows is drawn, exactly as one process holding them would, and
    this rank keeps rows [r·B, (r+1)·B). Every rank's generator is in the same state, so the
    ranks act as that process would, whatever the device's generator does with sizes."""
    logprobs = torch.log_softmax(logits.float(), dim=-1)
    rows = logprobs.shape[0]
    noise = torch.empty((rows * world.size, logprobs.shape[1]), dtype=logprobs.dtype, device=logprobs.device)
    noise = noise.exponential_(generator=generator)[world.rank * rows:(world.rank + 1) * rows].clamp_(min=_TINY)
    actions = (logprobs - noise.log()).argmax(dim=-1)
    return actions, logprobs.gather(-1, actions[:, None]).squeeze(-1)


class _UpdatePasses(nn.Module):
    """What DistributedDataParallel wraps: the policy's passes of the update, by name (DDP
    all-reduces the gradients of what went through its own forward)."""

    def __init__(self, policy: nn.Module):
        super().__init__()
        self.policy = policy

    def forward(self, kind: str, *args: Any) -> Any:
        if kind == "sequence":
            return self.policy.forward_sequence(*args)
        if kind == "step":
            return self.policy(*args)
        # "idle": a rank that holds none of a minibatch's last part still takes part in the
        # all-reduce, with a gradient of 0 for every parameter.
        return sum(p.sum() for p in self.policy.parameters()) * 0.0


DDP_OPTIONS = frozenset(inspect.signature(DistributedDataParallel.__init__).parameters)


class DistributedPolicy:
    """The policy as a rank's update uses it: `forward_sequence` and calls go through
    DistributedDataParallel, whose construction gives every rank rank 0's weights and whose
    backward averages the ranks' gradients (the loss scale in shards.py makes it their sum)."""

    def __init__(self, policy: nn.Module, world: World):
        self.policy = policy
        # Buffers are not trained: rank 0's at construction, not sent again before every pass
        # (the option's name changed in torch 2.13).
        buffers = ({"forward_sync_buffers": False} if "forward_sync_buffers" in DDP_OPTIONS
                   else {"broadcast_buffers": False})
        with world.talking("sharing the policy's weights"):
            self.ddp = DistributedDataParallel(
                _UpdatePasses(policy), device_ids=[world.device] if world.device.type == "cuda" else None,
                **buffers,
            )
            # DDP rebuilds its gradient buckets once, in the first pass after the first
            # all-reduced backward, with a broadcast among the ranks. In the update the ranks
            # run different numbers of passes (a rank may hold none of a part of a minibatch),
            # so that broadcast must not fall there: two passes of zero gradient here, at the
            # same point on every rank, get it done. After them a pass talks to no other rank.
            for _ in range(2):
                self.idle().backward()
        for parameter in policy.parameters():
            parameter.grad = None

    def forward_sequence(self, *args: Any) -> Any:
        return self.ddp("sequence", *args)

    def __call__(self, *args: Any) -> Any:
        return self.ddp("step", *args)

    def idle(self) -> Tensor:
        return self.ddp("idle")

    def no_sync(self) -> Any:
        return self.ddp.no_sync()

    def parameters(self) -> Iterator[nn.Parameter]:
        return self.policy.parameters()
