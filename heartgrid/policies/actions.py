"""Actor heads that score actions by *name* (SPEC §2), so a policy survives a changed action set.

    bilinear (reference):  logit[a] = tanh(h · W · e[a]) + b[a]
    linear:                logit[a] = h · w[a] + b[a]

Both keep one learned row per action *name* (`move_0`, `rotate_3`, …) and a learned bias of that
name (ours: per action, so the head can hold a prior over actions; a single shared bias would
cancel in the softmax). In the bilinear head the row `e[a]` is a 16-dim embedding and `W` a
learned `[hidden, 16]` matrix; in the linear head the row `w[a]` is the action's weight vector,
the row of an ordinary `nn.Linear` kept by name.

Why two: the bilinear head's state-dependent part is bounded by tanh to [−1, 1], so whatever
the hidden vector, the most likely action in a state is at most e² ≈ 7.4 times likelier than the
least (beyond the state-independent bias). The linear head has no such cap; see
docs/learning.md for what that costs at small budgets.

Because rows and biases are stored per name, `bind` maps the actions the engine offers now to
their rows: kept actions keep their weights whatever their new index, and an action never seen
before gets a new row (small random row, zero bias) that starts learning from there. The
table's row order (`names`) is the head's vocabulary and is recorded in the policy spec, so a
checkpoint reloads with the right shapes before it is bound to a new action list.
"""

from __future__ import annotations

import abc

import torch
from torch import Tensor, nn

from heartgrid.policies.init import small_rows

ACTION_HEADS = ("bilinear", "linear")


class NamedActionHead(nn.Module, metaclass=abc.ABCMeta):
    """Per-name rows `embeddings` [names, dim] and `bias` [names]; `forward` scores the bound
    actions. Subclasses set how a new row is initialised and how rows score a hidden vector.
    (The linear head's weight rows are `embeddings` too, so both heads share the binding by
    name, and checkpoints of either name their parameters alike.)"""

    def __init__(self, action_names: list[str], row_dim: int):
        super().__init__()
        check_action_names(action_names)
        self.names: list[str] = list(action_names)
        self.embeddings = nn.Parameter(self.new_rows(len(self.names), row_dim))
        self.bias = nn.Parameter(torch.zeros(len(self.names)))
        self.register_buffer("active", torch.zeros(0, dtype=torch.long), persistent=False)
        self.bind(action_names)

    @abc.abstractmethod
    def new_rows(self, rows: int, dim: int) -> Tensor:
        """Initial rows for actions the head has never seen."""

    def bind(self, action_names: list[str]) -> list[str]:
        """Score exactly `action_names`, in that order; returns the names newly added."""
        check_action_names(action_names)
        new = [name for name in action_names if name not in set(self.names)]
        if new:
            # Growing replaces the Parameters: build the optimizer after `bind`.
            device = self.embeddings.device
            rows = self.new_rows(len(new), self.embeddings.shape[1]).to(device)
            self.embeddings = nn.Parameter(torch.cat([self.embeddings.detach(), rows]))
            zeros = torch.zeros(len(new), device=device)
            self.bias = nn.Parameter(torch.cat([self.bias.detach(), zeros]))
            self.names += new
        row = {name: i for i, name in enumerate(self.names)}
        rows = [row[name] for name in action_names]
        self.active = torch.tensor(rows, dtype=torch.long, device=self.bias.device)
        self.active_names = list(action_names)
        return new

    def active_rows(self) -> tuple[Tensor, Tensor]:
        """(rows [A, dim], biases [A]) of the bound actions, in their order."""
        return self.embeddings.index_select(0, self.active), self.bias.index_select(0, self.active)


class ActionEmbeddingHead(NamedActionHead):
    """The reference bilinear head: `tanh(h · W · e[a]) + b[a]`."""

    def __init__(self, in_dim: int, action_names: list[str], embedding_dim: int = 16):
        super().__init__(action_names, embedding_dim)
        self.bilinear = nn.Parameter(torch.empty(in_dim, embedding_dim))
        nn.init.orthogonal_(self.bilinear)

    def new_rows(self, rows: int, dim: int) -> Tensor:
        return small_rows(rows, dim)

    def forward(self, hidden: Tensor) -> Tensor:
        """`[N, in_dim]` → logits `[N, num_active_actions]`."""
        query = hidden @ self.bilinear  # [N, E]
        keys, bias = self.active_rows()
        return torch.tanh(query @ keys.T) + bias


# CleanRL's (and SB3's) scale for the last actor layer: the first policy is near uniform.
LINEAR_HEAD_GAIN = 0.01


class LinearActionHead(NamedActionHead):
    """A linear layer whose rows are kept by action name: `h · w[a] + b[a]`."""

    def __init__(self, in_dim: int, action_names: list[str]):
        super().__init__(action_names, in_dim)

    def new_rows(self, rows: int, dim: int) -> Tensor:
        table = torch.empty(rows, dim)
        nn.init.orthogonal_(table, LINEAR_HEAD_GAIN)
        return table

    def forward(self, hidden: Tensor) -> Tensor:
        weight, bias = self.active_rows()
        return torch.addmm(bias, hidden, weight.T)


def make_action_head(kind: str, in_dim: int, action_names: list[str]) -> NamedActionHead:
    """`kind` is one of ACTION_HEADS (checked with the other core options, recurrent.CoreOptions)."""
    return {"bilinear": ActionEmbeddingHead, "linear": LinearActionHead}[kind](in_dim, action_names)


def check_action_names(action_names: list[str]) -> None:
    if not action_names:
        raise ValueError("a policy needs at least one action name")
    if len(set(action_names)) != len(action_names):
        dupes = sorted({n for n in action_names if action_names.count(n) > 1})
        raise ValueError(f"action names must be unique; repeated: {dupes}")
