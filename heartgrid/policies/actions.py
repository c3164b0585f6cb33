"""The bilinear actor head that scores actions by name (SPEC §2).

    logit[a] = tanh(h · W · e[a]) + b[a]

`h` is the actor's hidden vector, `W` a learned `[hidden, 16]` matrix, `e[a]` a learned
16-dim embedding of the action *name* (`move_0`, `rotate_3`, …) and `b[a]` a learned bias of
that name (ours: per action, so the head can hold a prior over actions; a single shared bias
would cancel in the softmax). Because embeddings and biases are stored per name, the head
survives a changed action set: `bind` maps the actions the engine offers now to their rows,
kept actions keep their weights whatever their new index, and an action never seen before gets
a new row (small random embedding, zero bias) that starts learning from there.

The table's row order (`names`) is the head's vocabulary and is recorded in the policy spec, so
a checkpoint reloads with the right shapes before it is bound to a new action list.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from heartgrid.policies.init import small_rows


class ActionEmbeddingHead(nn.Module):
    def __init__(self, in_dim: int, action_names: list[str], embedding_dim: int = 16):
        super().__init__()
        check_action_names(action_names)
        self.names: list[str] = list(action_names)
        self.embeddings = nn.Parameter(small_rows(len(self.names), embedding_dim))
        self.bias = nn.Parameter(torch.zeros(len(self.names)))
        self.bilinear = nn.Parameter(torch.empty(in_dim, embedding_dim))
        nn.init.orthogonal_(self.bilinear)
        self.register_buffer("active", torch.zeros(0, dtype=torch.long), persistent=False)
        self.bind(action_names)

    def bind(self, action_names: list[str]) -> list[str]:
        """Score exactly `action_names`, in that order; returns the names newly added."""
        check_action_names(action_names)
        new = [name for name in action_names if name not in set(self.names)]
        if new:
            # Growing replaces the Parameters: build the optimizer after `bind`.
            device = self.embeddings.device
            rows = small_rows(len(new), self.embeddings.shape[1]).to(device)
            self.embeddings = nn.Parameter(torch.cat([self.embeddings.detach(), rows]))
            zeros = torch.zeros(len(new), device=device)
            self.bias = nn.Parameter(torch.cat([self.bias.detach(), zeros]))
            self.names += new
        row = {name: i for i, name in enumerate(self.names)}
        rows = [row[name] for name in action_names]
        self.active = torch.tensor(rows, dtype=torch.long, device=self.bias.device)
        self.active_names = list(action_names)
        return new

    def forward(self, hidden: Tensor) -> Tensor:
        """`[N, in_dim]` → logits `[N, num_active_actions]`."""
        query = hidden @ self.bilinear  # [N, E]
        keys = self.embeddings.index_select(0, self.active)  # [A, E]
        return torch.tanh(query @ keys.T) + self.bias.index_select(0, self.active)


def check_action_names(action_names: list[str]) -> None:
    if not action_names:
        raise ValueError("a policy needs at least one action name")
    if len(set(action_names)) != len(action_names):
        dupes = sorted({n for n in action_names if action_names.count(n) > 1})
        raise ValueError(f"action names must be unique; repeated: {dupes}")
