"""The LSTM core and actor/critic heads shared by `fast` and the latent-attention family.

    planes  = obs / normalisation                      (FeatureInput, by feature name)
    hidden  = encode(planes)                           [N, hidden_size]   (subclass)
    core    = LSTM(hidden, state)                      hidden_size, lstm_layers layers
    value   = Linear(1024 → 1)(tanh(Linear(core → 1024)))
    logits  = tanh(relu(Linear(core → 512)) · W · e[a]) + b[a]         (ActionEmbeddingHead)

State is `(h, c)`, each `[batch, lstm_layers, hidden_size]` (batch-major, see base.py).

`forward_sequence` runs the encoder once over all segments × steps, then the LSTM in one fused
call (cuDNN on GPU) however many episodes start inside the segments: see `lstm_over_episodes`.
"""

from __future__ import annotations

import abc

import torch
from torch import Tensor, nn

from heartgrid.config.run import PolicyConfig
from heartgrid.engine.features import FeatureRegistry
from heartgrid.policies.actions import ActionEmbeddingHead
from heartgrid.policies.base import Policy, State, check_sequence
from heartgrid.policies.init import RELU_GAIN, layer_init, lstm_init

CRITIC_HIDDEN = 1024
ACTOR_HIDDEN = 512
ACTION_EMBEDDING_DIM = 16


class LSTMActorCritic(Policy):
    def __init__(
        self,
        config: PolicyConfig,
        features: FeatureRegistry,
        action_names: list[str],
        obs_shape: tuple[int, int, int],
    ):
        super().__init__(config, features, action_names, obs_shape)
        hidden = config.hidden_size
        self.lstm = lstm_init(
            nn.LSTM(hidden, hidden, num_layers=config.lstm_layers, batch_first=True)
        )
        self.critic = nn.Sequential(
            layer_init(nn.Linear(hidden, CRITIC_HIDDEN)),
            nn.Tanh(),
            layer_init(nn.Linear(CRITIC_HIDDEN, 1)),
        )
        self.actor = nn.Sequential(
            layer_init(nn.Linear(hidden, ACTOR_HIDDEN), RELU_GAIN), nn.ReLU()
        )
        self.action_head = ActionEmbeddingHead(ACTOR_HIDDEN, action_names, ACTION_EMBEDDING_DIM)

    @abc.abstractmethod
    def encode(self, planes: Tensor) -> Tensor:
        """Normalised planes `[N, F, H, W]` (the policy's feature layout) → `[N, hidden_size]`."""

    def initial_state(self, batch: int, device: torch.device | str) -> State:
        shape = (batch, self.config.lstm_layers, self.config.hidden_size)
        return torch.zeros(shape, device=device), torch.zeros(shape, device=device)

    def heads(self, core: Tensor) -> tuple[Tensor, Tensor]:
        """`[N, hidden]` → (logits `[N, A]`, values `[N]`)."""
        return self.action_head(self.actor(core)), self.critic(core).squeeze(-1)

    def forward(self, obs: Tensor, state: State) -> tuple[Tensor, Tensor, State]:
        hidden = self.encode(self.inputs(obs))
        h, c = (s.transpose(0, 1).contiguous() for s in state)  # nn.LSTM wants [layers, B, H]
        core, (h, c) = self.lstm(hidden.unsqueeze(1), (h, c))
        logits, values = self.heads(core.squeeze(1))
        return logits, values, (h.transpose(0, 1), c.transpose(0, 1))

    def forward_sequence(
        self, obs: Tensor, state: State, episode_starts: Tensor
    ) -> tuple[Tensor, Tensor]:
        check_sequence(obs, episode_starts)
        segments, horizon = episode_starts.shape
        # The encoder has no memory: run it once over all segments × steps.
        hidden = self.encode(self.inputs(obs.flatten(0, 1))).view(segments, horizon, -1)
        core = lstm_over_episodes(self.lstm, hidden, state, episode_starts)
        logits, values = self.heads(core.flatten(0, 1))
        return logits.view(segments, horizon, -1), values.view(segments, horizon)


def lstm_over_episodes(lstm: nn.LSTM, hidden: Tensor, state: State, episode_starts: Tensor) -> Tensor:
    """The LSTM's outputs `[S, T, H]` over segments `hidden` `[S, T, H]` that start from the
    batch-major `state` and forget everything where `episode_starts` `[S, T]` is True.

    A segment with episode starts inside it is a run of independent pieces: its first piece
    continues from the stored state, each later piece begins at an episode start from zeros.
    Every piece becomes a row of its own, left-aligned and padded to T steps, and all rows go
    through the LSTM in one fused call: the LSTM is causal, so a row's outputs up to the
    piece's end do not see the padding after it, and the padding's outputs are dropped. One
    call per minibatch instead of one per distinct start time (with hundreds of envs, a
    minibatch of 256 segments × 64 steps holds starts at ~16 times), for ~6% more rows.
    (Not `pack_padded_sequence`: on a CPU the packed LSTM was 7x slower than this.)
    """
    segments, horizon, size = hidden.shape
    begins = episode_starts.clone()
    begins[:, 0] = True
    # Pieces in row-major order: by segment, then by time (one host sync to count them).
    piece_segment, piece_begin = begins.nonzero(as_tuple=True)
    if len(piece_segment) == segments:  # no start inside a segment: the rows are the segments
        keep = (~episode_starts[:, 0]).to(hidden.dtype).view(1, -1, 1)
        h, c = (s.transpose(0, 1) * keep for s in state)  # nn.LSTM wants [layers, B, H]
        return lstm(hidden, (h.contiguous(), c.contiguous()))[0]

    next_begin = torch.cat([piece_begin[1:], piece_begin.new_full((1,), horizon)])
    last_in_segment = torch.cat([piece_segment[1:] != piece_segment[:-1],
                                 piece_segment.new_ones(1, dtype=torch.bool)])
    piece_end = torch.where(last_in_segment, horizon, next_begin)
    steps = piece_begin[:, None] + torch.arange(horizon, device=hidden.device)  # [P, T]
    valid = steps < piece_end[:, None]
    rows = hidden.reshape(-1, size)[piece_segment[:, None] * horizon + steps.clamp(max=horizon - 1)]

    # A piece that begins at time 0 without an episode start continues the stored state; every
    # other piece begins at an episode start, from zeros.
    keep = (~episode_starts[piece_segment, piece_begin]).to(hidden.dtype).view(1, -1, 1)
    h, c = (s[piece_segment].transpose(0, 1) * keep for s in state)
    out, _ = lstm(rows, (h.contiguous(), c.contiguous()))
    # The valid entries, read row-major over (piece, step), are exactly (segment, time) in order.
    return out[valid].view(segments, horizon, -1)
