"""The latent-attention family: token encoders robust to new features (SPEC §2).

    planes → tokens (tokens.py: feature embedding ⊕ Fourier(dx, dy) ⊕ value, padded + masked)
           → cross-attention: learned queries read the tokens            [N, Q, 32]
           → self-attention over [class token, queries] (small, med)     [N, 32]
           → linear → hidden_size → LSTM core and heads (recurrent.py)

| name | feature dim | freqs | queries | cross heads × layers | self heads × layers | MLP |
|---|---|---|---|---|---|---|
| latent_attn_tiny | 10 | 4 | 1 | 4 × 2 | – | 256 |
| latent_attn_small | 8 | 8 | 10 | 4 × 1 | 4 × 2 (class token) | 128 |
| latent_attn_med | 12 | 8 | 10 | 8 × 3 | 8 × 3 (class token) | 128 |

Latents are 32 wide with q/k width 32 everywhere; the encoder output is `hidden_size` (128).
The encoder does not depend on the window size. `policy.kwargs.max_tokens` (default 256)
caps the tokens per observation (see tokens.py for what is dropped beyond it).

A feature learned in training gets a new embedding row: its tokens take part in attention
from then on (unlike `fast`, the behaviour changes at once, since attention renormalises).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar

from torch import Tensor, nn

from heartgrid.config.run import PolicyConfig
from heartgrid.engine.features import Feature, FeatureRegistry
from heartgrid.policies.attention import ClassTokenSelfAttention, LatentQueryAttention
from heartgrid.policies.init import layer_init
from heartgrid.policies.recurrent import LSTMActorCritic
from heartgrid.policies.tokens import ObservationTokenizer

LATENT_DIM = 32
QK_DIM = 32
DEFAULT_MAX_TOKENS = 256


@dataclass(frozen=True)
class LatentAttnShape:
    feature_dim: int
    num_freqs: int
    num_queries: int
    cross_heads: int
    cross_layers: int
    cross_mlp: int
    self_heads: int = 0
    self_layers: int = 0
    self_mlp: int = 0


class LatentAttnPolicy(LSTMActorCritic):
    shape: ClassVar[LatentAttnShape]

    def __init__(
        self,
        config: PolicyConfig,
        features: FeatureRegistry,
        action_names: list[str],
        obs_shape: tuple[int, int, int],
        max_tokens: int = DEFAULT_MAX_TOKENS,
        **core: Any,
    ):
        super().__init__(config, features, action_names, obs_shape, **core)
        s = self.shape
        self.tokenizer = ObservationTokenizer(len(features), s.feature_dim, s.num_freqs, max_tokens)
        self.cross_attention = LatentQueryAttention(
            self.tokenizer.token_dim,
            s.num_queries,
            LATENT_DIM,
            s.cross_heads,
            s.cross_layers,
            QK_DIM,
            s.cross_mlp,
        )
        self.self_attention = (
            ClassTokenSelfAttention(LATENT_DIM, s.self_heads, s.self_layers, QK_DIM, s.self_mlp)
            if s.self_layers
            else None
        )
        self.output = layer_init(nn.Linear(LATENT_DIM, config.hidden_size))

    def encode(self, planes: Tensor) -> Tensor:
        tokens, mask = self.tokenizer(planes)
        latents = self.cross_attention(tokens, mask)  # [N, Q, 32]
        summary = latents[:, 0] if self.self_attention is None else self.self_attention(latents)
        return self.output(summary)

    def grow_feature_inputs(self, new_features: list[Feature]) -> None:
        self.tokenizer.grow(len(new_features))

    def spec(self) -> dict:
        return {**super().spec(), "architecture": asdict(self.shape)}


class LatentAttnTiny(LatentAttnPolicy):
    """Fastest attention policy: one learned query, no self-attention."""

    shape = LatentAttnShape(
        feature_dim=10, num_freqs=4, num_queries=1, cross_heads=4, cross_layers=2, cross_mlp=256,
    )


class LatentAttnSmall(LatentAttnPolicy):
    shape = LatentAttnShape(
        feature_dim=8, num_freqs=8, num_queries=10, cross_heads=4, cross_layers=1, cross_mlp=128,
        self_heads=4, self_layers=2, self_mlp=128,
    )


class LatentAttnMed(LatentAttnPolicy):
    """Most sample-efficient per the reference team (about half the speed of tiny)."""

    shape = LatentAttnShape(
        feature_dim=12, num_freqs=8, num_queries=10, cross_heads=8, cross_layers=3, cross_mlp=128,
        self_heads=8, self_layers=3, self_mlp=128,
    )
