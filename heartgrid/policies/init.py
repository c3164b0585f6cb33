"""Weight initialisation shared by every built-in policy (SPEC §2, "Policies by name").

Linear and conv layers: orthogonal weights with gain √2 when a ReLU (or GELU) follows, gain 1
otherwise; zero biases. LSTM: orthogonal weights; every bias 1 in the reference policies `fast` and
`latent_attn_*` (meant as a positive forget-gate bias; see `lstm_init` for what it does to every
other gate), 0 in the default `conv_lstm` (policy.kwargs.lstm_bias sets it for any built-in).
"""

from __future__ import annotations

import math

import torch
from torch import nn

RELU_GAIN = math.sqrt(2.0)


def layer_init(layer: nn.Linear | nn.Conv2d, gain: float = 1.0) -> nn.Linear | nn.Conv2d:
    """Orthogonal weights scaled by `gain`, zero bias; returns the layer for inline use."""
    nn.init.orthogonal_(layer.weight, gain)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)
    return layer


def lstm_init(lstm: nn.LSTM, bias: float = 1.0) -> nn.LSTM:
    """Orthogonal weights; every bias (input and hidden, all four gates) set to `bias`.

    The reference's 1 puts 2 on every gate's pre-activation, the cell-input gate included:
    with inputs of the encoder's size (~0.2) the cell then fills to ~7 whatever the
    observation, and h = o·tanh(c) sits near 0.88 in every state (measured: the second layer's
    output varies by 8e-4 across a batch of arena observations). 0 keeps the gates in their
    linear range (CleanRL's and PufferLib's choice)."""
    for name, param in lstm.named_parameters():
        if name.startswith("weight"):
            nn.init.orthogonal_(param)
        else:
            nn.init.constant_(param, bias)
    return lstm


def small_rows(rows: int, dim: int) -> torch.Tensor:
    """Orthogonal rows scaled so the largest entry is 0.1: new embeddings start near zero,
    which makes a fresh bilinear actor head close to uniform over actions."""
    table = torch.empty(rows, dim)
    nn.init.orthogonal_(table)
    return table * (0.1 / table.abs().max().clamp_min(1e-12))
