"""Attention blocks of the latent-attention family: learned queries reading the observation
tokens (cross-attention), then self-attention among those latents summarised by a class token.

Both are pre-norm residual stacks:

    x = x + Out(Attention(Q(LN(x)), K, V))
    x = x + MLP(LN(x))

with `Attention(q, k, v) = softmax(q kᵀ / √d_head) v` per head. `qk_dim` is the total
query/key width over all heads; values keep the latent width so the residual adds up.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from heartgrid.policies.init import RELU_GAIN, layer_init


def multi_head_attention(
    queries: Tensor, keys: Tensor, values: Tensor, heads: int, key_mask: Tensor | None
) -> Tensor:
    """queries `[N, Q, qk]`, keys `[N, K, qk]`, values `[N, K, dv]`, key_mask bool `[N, K]`
    (True = a real token) → `[N, Q, dv]`."""
    n, q_len, qk_dim = queries.shape
    k_len, v_dim = values.shape[1], values.shape[2]
    q = queries.view(n, q_len, heads, qk_dim // heads).transpose(1, 2)  # [N, h, Q, d]
    k = keys.view(n, k_len, heads, qk_dim // heads).transpose(1, 2)  # [N, h, K, d]
    v = values.view(n, k_len, heads, v_dim // heads).transpose(1, 2)  # [N, h, K, dv/h]
    scores = q @ k.transpose(-1, -2) * (qk_dim // heads) ** -0.5  # [N, h, Q, K]
    if key_mask is not None:
        # A finite fill keeps an all-padding row (never produced by the tokenizer) finite.
        scores = scores.masked_fill(~key_mask[:, None, None, :], torch.finfo(scores.dtype).min)
    weights = scores.softmax(dim=-1)
    return (weights @ v).transpose(1, 2).reshape(n, q_len, v_dim)


def _check_heads(qk_dim: int, dim: int, heads: int) -> None:
    if qk_dim % heads or dim % heads:
        raise ValueError(f"qk_dim {qk_dim} and latent dim {dim} must be divisible by heads {heads}")


class FeedForward(nn.Sequential):
    def __init__(self, dim: int, hidden: int):
        super().__init__(
            nn.LayerNorm(dim),
            layer_init(nn.Linear(dim, hidden), RELU_GAIN),
            nn.GELU(),
            layer_init(nn.Linear(hidden, dim)),
        )


class LatentQueryAttention(nn.Module):
    """`num_queries` learned latents attend to the tokens, `layers` times → `[N, Q, dim]`.

    Keys and values are projected from the tokens once and shared by every layer (the token
    tensor is the large one; each layer only re-projects the few queries)."""

    def __init__(
        self,
        token_dim: int,
        num_queries: int,
        dim: int,
        heads: int,
        layers: int,
        qk_dim: int,
        mlp_hidden: int,
    ):
        super().__init__()
        _check_heads(qk_dim, dim, heads)
        self.heads = heads
        self.queries = nn.Parameter(torch.randn(num_queries, dim) * 0.02)
        self.token_norm = nn.LayerNorm(token_dim)
        self.key = layer_init(nn.Linear(token_dim, qk_dim, bias=False))
        self.value = layer_init(nn.Linear(token_dim, dim, bias=False))
        self.query_norms = nn.ModuleList(nn.LayerNorm(dim) for _ in range(layers))
        self.query_projections = nn.ModuleList(
            layer_init(nn.Linear(dim, qk_dim, bias=False)) for _ in range(layers)
        )
        self.out_projections = nn.ModuleList(layer_init(nn.Linear(dim, dim)) for _ in range(layers))
        self.mlps = nn.ModuleList(FeedForward(dim, mlp_hidden) for _ in range(layers))
        self.final_norm = nn.LayerNorm(dim)

    def forward(self, tokens: Tensor, mask: Tensor) -> Tensor:
        normed = self.token_norm(tokens)
        keys, values = self.key(normed), self.value(normed)
        latents = self.queries.expand(tokens.shape[0], -1, -1)
        for norm, project_query, project_out, mlp in zip(
            self.query_norms, self.query_projections, self.out_projections, self.mlps
        ):
            queries = project_query(norm(latents))
            read = multi_head_attention(queries, keys, values, self.heads, mask)
            latents = latents + project_out(read)
            latents = latents + mlp(latents)
        return self.final_norm(latents)


class ClassTokenSelfAttention(nn.Module):
    """Self-attention over `[class token, latents]`, `layers` times → the class token
    `[N, dim]`."""

    def __init__(self, dim: int, heads: int, layers: int, qk_dim: int, mlp_hidden: int):
        super().__init__()
        _check_heads(qk_dim, dim, heads)
        self.heads = heads
        self.class_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.norms = nn.ModuleList(nn.LayerNorm(dim) for _ in range(layers))
        self.qkv = nn.ModuleList(
            layer_init(nn.Linear(dim, 2 * qk_dim + dim, bias=False)) for _ in range(layers)
        )
        self.out_projections = nn.ModuleList(layer_init(nn.Linear(dim, dim)) for _ in range(layers))
        self.mlps = nn.ModuleList(FeedForward(dim, mlp_hidden) for _ in range(layers))
        self.final_norm = nn.LayerNorm(dim)
        self.qk_dim = qk_dim

    def forward(self, latents: Tensor) -> Tensor:
        x = torch.cat([self.class_token.expand(latents.shape[0], -1, -1), latents], dim=1)
        layers = zip(self.norms, self.qkv, self.out_projections, self.mlps)
        for norm, qkv, project_out, mlp in layers:
            q, k, v = qkv(norm(x)).split([self.qk_dim, self.qk_dim, x.shape[-1]], dim=-1)
            x = x + project_out(multi_head_attention(q, k, v, self.heads, None))
            x = x + mlp(x)
        return self.final_norm(x[:, 0])

