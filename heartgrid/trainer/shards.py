"""What one process trains on of each minibatch: all of it (`WholeBatch`), or, when several
ranks train together, the segments of it that this rank holds (`WorldShare`).

The sampler draws the world's minibatches (the same on every rank). The update cuts each one
into parts of `micro_batch_size x world_size` steps (the whole minibatch without
micro-batching) and a rank computes the loss of its own samples of each part. For the sum of
the ranks' gradients to be the gradient of the part's mean loss, a rank scales its mean loss
by its share of the part's samples; DistributedDataParallel averages gradients over the W
ranks, so the scale carries a factor W too:

    scale = W · n_rank / n_minibatch   (grad_accumulation=accumulate: a part's loss weighs
                                       its share of the minibatch)
    scale = W · n_rank / n_part        (legacy: each part's own mean, unscaled)

A rank may hold none of a part. Only the minibatch's last part all-reduces gradients (the
others run under DDP's no_sync), so a rank with nothing in it still joins that all-reduce with
a gradient of 0; the world's sums (advantage normalisation) are joined with nothing, too.

The diagnostics (`losses/*`, `experience/ratio`) are the world's means per part: each rank
adds its samples' sums, one all-reduce at the end of the update, and rank 0 logs them.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from heartgrid.devices import to_device
from heartgrid.trainer.distributed import DistributedPolicy, RowLayout, World
from heartgrid.trainer.losses import PPOLoss
from heartgrid.trainer.sampling import Minibatch


@dataclass
class Part:
    """One backward pass of an optimizer step: this process's samples of it."""

    segments: Tensor
    """Indices of this process's segments (or single steps), on the buffer's device."""
    weights: Tensor | None
    share: float
    """The share of the minibatch's samples that these are (weighs their approx_kl)."""
    scale: float
    """What the mean loss of these samples is multiplied by before backward()."""
    count: int
    last: bool
    """The minibatch's last part: its backward all-reduces the gradients (several ranks)."""


class WholeBatch:
    """One process: the update's parts are the minibatch's, all its own."""

    main = True
    """Whether this process logs the update's diagnostics (with several ranks: rank 0)."""
    world: World | None = None

    def __init__(self, policy: nn.Module):
        self.model = policy
        self.diagnostics: dict[str, list[Tensor]] = {}

    def mean_std(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return x.mean(), x.std()

    def mean(self, x: Tensor) -> Tensor:
        return x.mean()

    def total(self, value: Tensor) -> Tensor:
        return value

    def parts(self, minibatch: Minibatch, micro: int, legacy: bool, device: torch.device) -> list[Part]:
        segments = to_device(minibatch.segments, device)
        weights = None if minibatch.weights is None else to_device(minibatch.weights, device)
        parts = []
        for start in range(0, len(segments), micro):
            part = slice(start, start + micro)
            share = len(segments[part]) / len(segments)
            parts.append(Part(segments[part], None if weights is None else weights[part], share,
                              1.0 if legacy else share, len(segments[part]), start + micro >= len(segments)))
        return parts

    def syncing(self, part: Part) -> Any:
        return nullcontext()

    def idle(self, part: Part, normalises: bool) -> None:  # pragma: no cover - never empty
        raise AssertionError("one process holds every sample of its minibatches")

    def record(self, loss: PPOLoss, part: Part) -> None:
        for name, value in loss.diagnostics().items():
            self.diagnostics.setdefault(f"losses/{name}", []).append(value)
        self.diagnostics.setdefault("experience/ratio", []).append(loss.importance)

    def record_replicated(self, name: str, value: Tensor) -> None:
        """A value every rank computes alike (the clipped gradient's norm)."""
        self.diagnostics.setdefault(name, []).append(value)

    def finish(self) -> dict[str, Tensor]:
        return {name: torch.stack(values) for name, values in self.diagnostics.items()}


class WorldShare(WholeBatch):
    """Rank r of W: the samples it holds of the world's minibatches (module docstring)."""

    def __init__(self, world: World, layout: RowLayout, model: DistributedPolicy):
        self.world, self.layout, self.model = world, layout, model
        self.main = world.is_main
        self.part_index = -1
        self.sums: dict[str, dict[int, Tensor]] = {}
        """name -> part number -> the sum of the name's value over this rank's samples."""
        self.counts: dict[int, int] = {}
        self.replicated: dict[str, list[Tensor]] = {}

    def mean_std(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self.world.mean_std(x)

    def mean(self, x: Tensor) -> Tensor:
        return self.world.mean(x)

    def total(self, value: Tensor) -> Tensor:
        return self.world.total(value, "testing the target KL")

    def parts(self, minibatch: Minibatch, micro: int, legacy: bool, device: torch.device) -> list[Part]:
        size, everything = self.world.size, len(minibatch.segments)
        step = micro * size  # the world's part: micro_batch_size is per rank
        parts = []
        for start in range(0, everything, step):
            chunk = minibatch.segments[start:start + step]
            mine, local = self.layout.local(chunk, minibatch.transitions)
            weights = None if minibatch.weights is None else minibatch.weights[start:start + step][mine]
            count = len(local)
            scale = size * count / (len(chunk) if legacy else everything)
            parts.append(Part(to_device(local, device), None if weights is None else to_device(weights, device),
                              count / everything, scale, count, start + step >= everything))
        return parts

    def syncing(self, part: Part) -> Any:
        self.part_index += 1
        self.counts[self.part_index] = part.count
        return nullcontext() if part.last else self.model.no_sync()

    def idle(self, part: Part, normalises: bool) -> None:
        """Join the part's collectives without samples (module docstring)."""
        self.part_index += 1
        self.counts[self.part_index] = 0
        if normalises:
            self.world.mean_std(torch.zeros(0, device=self.world.device))
        if part.last:
            self.model.idle().backward()

    def record(self, loss: PPOLoss, part: Part) -> None:
        values = {f"losses/{name}": value for name, value in loss.diagnostics().items()}
        values["experience/ratio"] = loss.importance.detach()
        for name, value in values.items():
            self.sums.setdefault(name, {})[self.part_index] = value * part.count

    def record_replicated(self, name: str, value: Tensor) -> None:
        self.replicated.setdefault(name, []).append(value)

    def finish(self) -> dict[str, Tensor]:
        """The world's mean of each diagnostic per part, on rank 0 ({} elsewhere)."""
        parts = self.part_index + 1
        names = list(dict.fromkeys(n for ranks in self.world.all_gather_object(list(self.sums), "merging the losses")
                                   for n in ranks))
        device = self.world.device
        zero = torch.zeros((), device=device)
        rows = [torch.stack([self.sums.get(name, {}).get(part, zero).float() for part in range(parts)])
                for name in names]
        rows.append(torch.tensor([float(self.counts.get(part, 0)) for part in range(parts)], device=device))
        table = self.world.total(torch.stack(rows), "merging the losses")
        if not self.main:
            return {}
        means = {name: table[row] / table[-1] for row, name in enumerate(names)}
        means.update({name: torch.stack(values) for name, values in self.replicated.items()})
        return means
