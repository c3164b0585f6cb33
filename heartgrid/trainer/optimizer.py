"""The optimizers of `trainer.optimizer.type` (SPEC §2): `adam` and `muon`.

Muon (Keller Jordan, 2024) replaces the update of a weight matrix by its orthogonalised
momentum, computed with a Newton–Schulz iteration; it is meant for hidden weight matrices only.
PyTorch ships it (`torch.optim.Muon`, 2-D parameters only), so `muon` here means: Muon for the
2-D weights of the network and Adam for everything else (biases, convolution kernels,
embeddings), all driven by the one `learning_rate`. Muon's step is scaled to the RMS of an
AdamW step (`adjust_lr_fn="match_rms_adamw"`) so that the same learning rate (and its
schedule) suits both halves.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from heartgrid.config.trainer import OptimizerConfig

MUON_MOMENTUM = 0.95  # the Muon paper's value; not exposed in the config


def build_optimizer(policy: nn.Module, config: OptimizerConfig) -> Optimizer:
    if config.type == "adam":
        return torch.optim.Adam(
            policy.parameters(),
            lr=config.learning_rate,
            betas=(config.beta1, config.beta2),
            eps=config.eps,
            weight_decay=config.weight_decay,
        )
    return MuonWithAdam(policy, config)


def muon_parameters(policy: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """(2-D weight matrices for Muon, the rest for Adam). Embedding tables are lookups, not
    linear maps, so they go to Adam with the biases and convolution kernels."""
    embeddings = {id(m.weight) for m in policy.modules() if isinstance(m, nn.Embedding)}
    matrices, others = [], []
    for param in policy.parameters():
        if not param.requires_grad:
            continue
        if param.ndim == 2 and id(param) not in embeddings:
            matrices.append(param)
        else:
            others.append(param)
    return matrices, others


class MuonWithAdam:
    """Two optimizers behind one interface: `param_groups` (for schedules), `zero_grad`,
    `step`, `state_dict`, `load_state_dict`."""

    def __init__(self, policy: nn.Module, config: OptimizerConfig):
        matrices, others = muon_parameters(policy)
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        if matrices:
            self.optimizers["muon"] = torch.optim.Muon(
                matrices,
                lr=config.learning_rate,
                weight_decay=config.weight_decay,
                momentum=MUON_MOMENTUM,
                adjust_lr_fn="match_rms_adamw",
            )
        if others:
            self.optimizers["adam"] = torch.optim.Adam(
                others,
                lr=config.learning_rate,
                betas=(config.beta1, config.beta2),
                eps=config.eps,
                weight_decay=config.weight_decay,
            )
        if not self.optimizers:
            raise ValueError("the policy has no trainable parameters to optimise")

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return [group for opt in self.optimizers.values() for group in opt.param_groups]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for opt in self.optimizers.values():
            opt.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        for opt in self.optimizers.values():
            opt.step()

    def state_dict(self) -> dict[str, Any]:
        return {name: opt.state_dict() for name, opt in self.optimizers.items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if set(state) != set(self.optimizers):
            raise ValueError(
                f"optimizer state holds {sorted(state)} but this muon optimizer has "
                f"{sorted(self.optimizers)}; was the checkpoint written with another policy?"
            )
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state[name])


Optimizer = torch.optim.Optimizer | MuonWithAdam
"""What `build_optimizer` returns: anything with param_groups, zero_grad, step and state dicts."""
