"""`fast`: the reference conv + LSTM policy (SPEC §2; about 0.57M parameters at 11×11), and
`conv_lstm`, the default: the same layers with a linear action head and zero LSTM biases.

    planes [F, H, W] → conv 64 k5 s3 → ReLU → conv 64 k3 → ReLU → flatten
           → linear 128 → ReLU → linear 128 → ReLU → LSTM core and heads (recurrent.py)

For an 11×11 window the convs give 3×3 then 1×1, as in the reference. Other odd windows
(3–15) keep the same layers with each kernel shrunk to the input it sees when that input is
smaller (ours): a kernel never exceeds its input, so every window size builds.

| window | conv1 kernel → out | conv2 kernel → out | flatten |
|---|---|---|---|
| 3×3 | 3 → 1 | 1 → 1 | 64 |
| 5×5, 7×7 | 5 → 1 | 1 → 1 | 64 |
| 9×9 | 5 → 2 | 2 → 1 | 64 |
| 11×11, 13×13 | 5 → 3 | 3 → 1 | 64 |
| 15×15 | 5 → 4 | 3 → 2 | 256 |

A new feature learned in training (`adapt(..., learn_new_features=True)`) adds conv1 input
channels with zero weights: the policy behaves exactly as before until training moves them.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from heartgrid.config.run import PolicyConfig
from heartgrid.engine.features import Feature, FeatureRegistry
from heartgrid.policies.init import RELU_GAIN, layer_init
from heartgrid.policies.recurrent import CoreOptions, LSTMActorCritic

CHANNELS = 64
CONV1_KERNEL, CONV1_STRIDE = 5, 3
CONV2_KERNEL = 3


Size = tuple[int, int]


def conv_geometry(height: int, width: int) -> tuple[Size, Size, Size]:
    """(conv1 kernel, conv2 kernel, conv2 output size) for a `height × width` window."""
    k1 = (min(CONV1_KERNEL, height), min(CONV1_KERNEL, width))
    out1 = ((height - k1[0]) // CONV1_STRIDE + 1, (width - k1[1]) // CONV1_STRIDE + 1)
    k2 = (min(CONV2_KERNEL, out1[0]), min(CONV2_KERNEL, out1[1]))
    out2 = (out1[0] - k2[0] + 1, out1[1] - k2[1] + 1)
    return k1, k2, out2


class FastPolicy(LSTMActorCritic):
    def __init__(
        self,
        config: PolicyConfig,
        features: FeatureRegistry,
        action_names: list[str],
        obs_shape: tuple[int, int, int],
        **core: Any,
    ):
        super().__init__(config, features, action_names, obs_shape, **core)
        num_features, height, width = self.obs_shape
        k1, k2, out2 = conv_geometry(height, width)
        hidden = config.hidden_size
        self.conv1 = layer_init(
            nn.Conv2d(num_features, CHANNELS, k1, stride=CONV1_STRIDE), RELU_GAIN
        )
        self.conv2 = layer_init(nn.Conv2d(CHANNELS, CHANNELS, k2), RELU_GAIN)
        self.fc1 = layer_init(nn.Linear(CHANNELS * out2[0] * out2[1], hidden), RELU_GAIN)
        self.fc2 = layer_init(nn.Linear(hidden, hidden), RELU_GAIN)

    def encode(self, planes: Tensor) -> Tensor:
        if planes.shape[-2:] != self.obs_shape[1:]:
            raise ValueError(
                f"policy {self.config.name!r} was built for {self.obs_shape[1]}x{self.obs_shape[2]} "
                "observations, "
                f"got {planes.shape[-2]}x{planes.shape[-1]}; its conv stack depends on the window "
                "size, so train a new policy (or use a latent_attn policy, which is size-agnostic)"
            )
        x = F.relu(self.conv1(planes))
        x = F.relu(self.conv2(x))
        x = F.relu(self.fc1(x.flatten(1)))
        return F.relu(self.fc2(x))

    def grow_feature_inputs(self, new_features: list[Feature]) -> None:
        weight = self.conv1.weight.detach()
        zeros = weight.new_zeros(weight.shape[0], len(new_features), *weight.shape[2:])
        self.conv1.weight = nn.Parameter(torch.cat([weight, zeros], dim=1))
        self.conv1.in_channels = self.conv1.weight.shape[1]


class ConvLSTMPolicy(FastPolicy):
    """The default: `fast`'s encoder and LSTM with a linear action head and zero LSTM biases.

    The reference choices (`fast`) learn several times less per agent step at the budgets a
    user runs before trusting a change: every LSTM bias at 1 saturates the core (its output
    barely varies across observations) and the bounded bilinear head caps how peaked the
    policy can get. docs/learning.md has the ablations."""

    core_defaults = CoreOptions(action_head="linear", lstm_bias=0.0)
