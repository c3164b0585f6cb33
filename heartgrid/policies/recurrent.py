"""The LSTM core and actor/critic heads shared by `fast` and the latent-attention family.

    planes  = obs / normalisation                      (FeatureInput, by feature name)
    hidden  = encode(planes)                           [N, hidden_size]   (subclass)
    core    = LSTM(hidden, state)                      hidden_size, lstm_layers layers
              (or core = hidden with memory="none": a feed-forward policy)
    value   = Linear(1024 → 1)(tanh(Linear(core → 1024)))
    logits  = head(relu(Linear(core → 512)))           bilinear tanh(h·W·e[a]) + b[a], or linear

State is `(h, c)`, each `[batch, lstm_layers, hidden_size]` (batch-major, see base.py); a
feed-forward core keeps a one-column zero state so the trainer's bookkeeping stays the same.

`CoreOptions` are the choices the learning ablations (docs/learning.md) vary; every built-in
policy takes them as `policy.kwargs` and has its own defaults (`core_defaults`).

`forward_sequence` runs the encoder once over all segments × steps, then the LSTM in one fused
call (cuDNN on GPU) however many episodes start inside the segments, unless episodes are
shorter than about two segments: see `lstm_over_episodes`.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, fields, replace
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from heartgrid.config.run import PolicyConfig
from heartgrid.devices import to_device
from heartgrid.engine.features import FeatureRegistry
from heartgrid.policies.actions import ACTION_HEADS, make_action_head
from heartgrid.policies.base import Policy, State, check_sequence
from heartgrid.policies.init import RELU_GAIN, layer_init, lstm_init

MEMORIES = ("lstm", "none")


@dataclass(frozen=True)
class CoreOptions:
    action_head: str = "bilinear"
    """`bilinear` (reference, bounded: see actions.py) or `linear`."""
    lstm_bias: float = 1.0
    """Every LSTM bias at initialisation (reference 1; see init.lstm_init)."""
    memory: str = "lstm"
    """`lstm`, or `none` for a feed-forward policy (the core is the encoder's output)."""

    def updated(self, **given: Any) -> CoreOptions:
        """These options with the kwargs that were given (not None) in their place, checked."""
        options = replace(self, **{k: v for k, v in given.items() if v is not None})
        if options.action_head not in ACTION_HEADS:
            raise ValueError(f"policy.kwargs.action_head must be one of {list(ACTION_HEADS)}, "
                             f"got {options.action_head!r}")
        if options.memory not in MEMORIES:
            raise ValueError(f"policy.kwargs.memory must be one of {list(MEMORIES)}, "
                             f"got {options.memory!r}")
        return options

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


CRITIC_HIDDEN = 1024
ACTOR_HIDDEN = 512


class LSTMActorCritic(Policy):
    core_defaults: ClassVar[CoreOptions] = CoreOptions()
    """The policy's own choices; `policy.kwargs` may replace each one."""

    def __init__(
        self,
        config: PolicyConfig,
        features: FeatureRegistry,
        action_names: list[str],
        obs_shape: tuple[int, int, int],
        *,
        action_head: str | None = None,
        lstm_bias: float | None = None,
        memory: str | None = None,
    ):
        """The core options given as `policy.kwargs` replace the class's `core_defaults`."""
        super().__init__(config, features, action_names, obs_shape)
        options = self.core_defaults.updated(action_head=action_head, lstm_bias=lstm_bias, memory=memory)
        self.options = options
        hidden = config.hidden_size
        self.lstm = None if options.memory == "none" else lstm_init(
            nn.LSTM(hidden, hidden, num_layers=config.lstm_layers, batch_first=True),
            bias=options.lstm_bias,
        )
        self.critic = nn.Sequential(
            layer_init(nn.Linear(hidden, CRITIC_HIDDEN)),
            nn.Tanh(),
            layer_init(nn.Linear(CRITIC_HIDDEN, 1)),
        )
        self.actor = nn.Sequential(
            layer_init(nn.Linear(hidden, ACTOR_HIDDEN), RELU_GAIN), nn.ReLU()
        )
        self.action_head = make_action_head(options.action_head, ACTOR_HIDDEN, action_names)

    @abc.abstractmethod
    def encode(self, planes: Tensor) -> Tensor:
        """Normalised planes `[N, F, H, W]` (the policy's feature layout) → `[N, hidden_size]`."""

    def initial_state(self, batch: int, device: torch.device | str) -> State:
        if self.lstm is None:
            return (torch.zeros(batch, 1, device=device),)
        shape = (batch, self.config.lstm_layers, self.config.hidden_size)
        return torch.zeros(shape, device=device), torch.zeros(shape, device=device)

    def heads(self, core: Tensor) -> tuple[Tensor, Tensor]:
        """`[N, hidden]` → (logits `[N, A]`, values `[N]`)."""
        return self.action_head(self.actor(core)), self.critic(core).squeeze(-1)

    def forward(self, obs: Tensor, state: State) -> tuple[Tensor, Tensor, State]:
        hidden = self.encode(self.inputs(obs))
        if self.lstm is None:
            logits, values = self.heads(hidden)
            return logits, values, state
        h, c = (s.transpose(0, 1).contiguous() for s in state)  # nn.LSTM wants [layers, B, H]
        core, (h, c) = self.lstm(hidden.unsqueeze(1), (h, c))
        logits, values = self.heads(core.squeeze(1))
        return logits, values, (h.transpose(0, 1), c.transpose(0, 1))

    def spec(self) -> dict[str, Any]:
        return {**super().spec(), "core": self.options.to_dict()}

    def forward_sequence(
        self, obs: Tensor, state: State, episode_starts: Tensor
    ) -> tuple[Tensor, Tensor]:
        check_sequence(obs, episode_starts)
        segments, horizon = episode_starts.shape
        # The encoder has no memory: run it once over all segments × steps.
        hidden = self.encode(self.inputs(obs.flatten(0, 1))).view(segments, horizon, -1)
        core = hidden if self.lstm is None else lstm_over_episodes(
            self.lstm, hidden, state, episode_starts
        )
        logits, values = self.heads(core.flatten(0, 1))
        return logits.view(segments, horizon, -1), values.view(segments, horizon)


# The one-call path runs P rows for S segments, P/S times the arithmetic of a plain call: ~1.06
# at the GPU recipe (episodes of 1,000 steps, T = 64). Past this ratio (episodes shorter than
# about 2T) the loop over start times is used instead.
MAX_PIECE_ROWS_PER_SEGMENT = 1.5


def lstm_over_episodes(lstm: nn.LSTM, hidden: Tensor, state: State, episode_starts: Tensor) -> Tensor:
    """The LSTM's outputs `[S, T, H]` over segments `hidden` `[S, T, H]` that start from the
    batch-major `state` and forget everything where `episode_starts` `[S, T]` is True.

    A segment with episode starts inside it is a run of independent pieces: its first piece
    continues from the stored state, each later piece begins at an episode start from zeros.
    Every piece becomes a row of T steps of its own, starting at the piece's first step, and
    all rows go through the LSTM in one fused call. What follows a piece in its row is never
    seen by the piece's outputs (the LSTM is causal) and its outputs are dropped. On a GPU that
    is one call per minibatch instead of one per distinct start time (with hundreds of envs, a
    minibatch of 256 segments × 64 steps holds starts at ~16 times), for ~6% more rows; on a
    CPU both cost the same. One host read: where the pieces begin. (`pack_padded_sequence` does
    the same with less arithmetic, but its LSTM was 7x slower on a CPU; not measured on a GPU.)
    """
    if lstm.bidirectional or not lstm.batch_first:
        raise ValueError("lstm_over_episodes needs a unidirectional, batch_first nn.LSTM")
    segments, horizon, size = hidden.shape
    begins = episode_starts.clone()
    begins[:, 0] = True
    # Pieces in row-major order (by segment, then by time), found on the host: the one read.
    host_segment, host_begin = np.nonzero(begins.numpy(force=True))
    pieces = len(host_segment)
    # No start inside a segment (one call over the segments themselves), or so many that the
    # rows would cost more than a call per start time.
    if pieces == segments or pieces > MAX_PIECE_ROWS_PER_SEGMENT * segments:
        start_times = sorted(set(host_begin.tolist()))
        return _lstm_between_start_times(lstm, hidden, state, episode_starts, start_times)
    piece_segment, piece_begin = (to_device(torch.from_numpy(x), hidden.device)
                                  for x in (host_segment, host_begin))

    # Row p: the segment's steps from the piece's first on (past the end, the last repeated).
    steps = (piece_begin[:, None] + torch.arange(horizon, device=hidden.device)).clamp_(max=horizon - 1)
    rows = hidden.reshape(-1, size)[piece_segment[:, None] * horizon + steps]

    # A piece that begins at time 0 without an episode start continues the stored state; every
    # other piece begins at an episode start, from zeros.
    keep = (~episode_starts[piece_segment, piece_begin]).to(hidden.dtype).view(1, -1, 1)
    h, c = (s[piece_segment].transpose(0, 1) * keep for s in state)
    out, _ = lstm(rows, (h.contiguous(), c.contiguous()))

    # Back to [S, T]: (s, t) is step t − begin of its piece, the last piece of s begun by t
    # (pieces are numbered row-major, so that is the running count of begins, minus 1).
    piece = begins.flatten().cumsum(0) - 1
    offset = torch.arange(segments * horizon, device=hidden.device) % horizon - piece_begin[piece]
    out = out.reshape(-1, out.shape[-1]).index_select(0, piece * horizon + offset)
    return out.view(segments, horizon, -1)


def _lstm_between_start_times(lstm: nn.LSTM, hidden: Tensor, state: State, episode_starts: Tensor,
                              start_times: list[int]) -> Tensor:
    """The same outputs with one LSTM call over all segments per span between the times at
    which some segment starts an episode (`start_times`, sorted, 0 first), zeroing the
    starting segments' state at each."""
    bounds = start_times + [hidden.shape[1]]
    keep = (~episode_starts).to(hidden.dtype).t().unsqueeze(-1)  # [T, S, 1]
    h, c = (s.transpose(0, 1) for s in state)  # nn.LSTM wants [layers, B, H]
    outputs = []
    for start, end in zip(bounds[:-1], bounds[1:]):
        h, c = h * keep[start], c * keep[start]
        out, (h, c) = lstm(hidden[:, start:end], (h.contiguous(), c.contiguous()))
        outputs.append(out)
    return torch.cat(outputs, dim=1)
