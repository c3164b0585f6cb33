"""Weight initialisation shared by every built-in policy (SPEC §2, "Policies by name").

Linear and conv layers: orthogonal weights with gain √2 when a ReLU (or GELU) follows, gain 1
otherwise; zero biases. LSTM: orthogonal weights, every bias 1 (the reference's choice: a
positive forget-gate bias keeps memory flowing early in training).
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


def lstm_init(lstm: nn.LSTM) -> nn.LSTM:
    for name, param in lstm.named_parameters():
        if name.startswith("weight"):
            nn.init.orthogonal_(param)
        else:
            nn.init.constant_(param, 1.0)
    return lstm


def small_rows(rows: int, dim: int) -> torch.Tensor:
    """Orthogonal rows scaled so the largest entry is 0.1: new embeddings start near zero,
    which makes a fresh bilinear actor head close to uniform over actions."""
    table = torch.empty(rows, dim)
    nn.init.orthogonal_(table)
    return table * (0.1 / table.abs().max().clamp_min(1e-12))
