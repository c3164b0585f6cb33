"""The optimizers of `trainer.optimizer.type` (SPEC §2): `adam` and `muon`.

Muon (Keller Jordan, 2024) replaces the update of a weight matrix by its orthogonalised
momentum, computed with a Newton–Schulz iteration; it is meant for the weights of the linear
maps between hidden layers only: the input layer and the output layers belong to AdamW. PyTorch
ships it (`torch.optim.Muon`, PyTorch >= 2.9, 2-D parameters only), so `muon` here means: Muon
for the weights of the hidden linear, convolution and recurrent layers (a convolution kernel
[out, in, k, k] stepped as the matrix [out, in·k·k]), and Adam for everything else (the input
and output layers, biases, norms, embedding tables, learned queries and tokens), all driven by
the one `learning_rate`.

Which layers are hidden is found by running the policy once on a blank observation: a layer
whose input carries no gradient reads the observation (an input layer), and a layer whose
output is the returned logits or values (or a view of them) is an output layer. A module that
cannot be run that way (no `obs_shape`) has every linear map treated as hidden. Muon's step is scaled to the RMS of an AdamW step
(`adjust_lr_fn="match_rms_adamw"`) so that the same learning rate (and its schedule) suits
both halves.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from heartgrid.config.trainer import OptimizerConfig

MUON_MOMENTUM = 0.95  # the Muon paper's value; not exposed in the config

# Layers whose weights are linear maps: their `weight` (convolutions: the flattened kernel)
# goes to Muon. Recurrent layers hold several such matrices, named weight_ih*, weight_hh*, ...
_LINEAR_MAPS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
_RECURRENT = (nn.RNNBase, nn.RNNCellBase)


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
    """(weights of hidden linear maps for Muon, the rest for Adam), chosen by the layer that owns
    a parameter, not by its shape: an embedding table or a set of attention queries is 2-D too,
    but a lookup, not a map between hidden layers."""
    linear_maps = set()
    boundary = boundary_layers(policy)
    for module in policy.modules():
        if id(module) in boundary:
            continue
        if isinstance(module, _LINEAR_MAPS):
            linear_maps.add(id(module.weight))
        elif isinstance(module, _RECURRENT):
            linear_maps.update(
                id(p) for name, p in module.named_parameters(recurse=False) if name.startswith("weight_")
            )
    matrices, others = [], []
    for param in policy.parameters():
        if param.requires_grad:
            (matrices if id(param) in linear_maps else others).append(param)
    return matrices, others


def boundary_layers(policy: nn.Module) -> set[int]:
    """ids of the linear maps that read the observation or write the logits or values, found by
    one forward pass on a blank observation (empty when the module cannot be run so). The pass
    leaves no trace: the random generators are forked and the train/eval mode is put back."""
    if not hasattr(policy, "obs_shape") or not hasattr(policy, "initial_state"):
        return set()
    parameter = next(policy.parameters())
    obs = torch.zeros((2, *policy.obs_shape), dtype=torch.uint8, device=parameter.device)
    inputs: set[int] = set()
    outputs: dict[int, torch.Tensor] = {}  # kept alive: a freed output's memory may be reused

    def record(module: nn.Module, args: tuple, output: Any) -> None:
        if args and isinstance(args[0], torch.Tensor) and not args[0].requires_grad:
            inputs.add(id(module))
        outputs[id(module)] = output[0] if isinstance(output, tuple) else output

    layers = [m for m in policy.modules() if isinstance(m, _LINEAR_MAPS + _RECURRENT)]
    handles = [m.register_forward_hook(record) for m in layers]
    training = policy.training
    devices = [parameter.device] if parameter.device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices), torch.enable_grad():
            policy.eval()
            logits, values, _ = policy(obs, policy.initial_state(2, parameter.device))
    finally:
        policy.train(training)
        for handle in handles:
            handle.remove()
    returned = {t.untyped_storage().data_ptr() for t in (logits, values)}
    return inputs | {module for module, out in outputs.items() if out.untyped_storage().data_ptr() in returned}


class MuonWithAdam:
    """Two optimizers behind one interface: `param_groups` (for schedules), `zero_grad`,
    `step`, `state_dict`, `load_state_dict`."""

    def __init__(self, policy: nn.Module, config: OptimizerConfig):
        if not hasattr(torch.optim, "Muon"):
            raise RuntimeError(
                f"trainer.optimizer.type=muon needs torch.optim.Muon (PyTorch 2.9 or newer); this "
                f"is torch {torch.__version__}. Upgrade torch or set trainer.optimizer.type=adam"
            )
        weights, others = muon_parameters(policy)
        # torch's Muon takes 2-D parameters only: a convolution kernel is given as a 2-D
        # Parameter sharing its storage, whose gradient is the kernel's, viewed the same way.
        self.kernels: list[tuple[nn.Parameter, nn.Parameter]] = []
        matrices = []
        for weight in weights:
            if weight.ndim == 2:
                matrices.append(weight)
            else:
                matrix = nn.Parameter(weight.detach().view(weight.shape[0], -1))
                self.kernels.append((weight, matrix))
                matrices.append(matrix)
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

    @property
    def state(self) -> dict[Any, Any]:
        """Per-parameter state of both optimizers (empty before the first step), as torch's."""
        return {key: value for opt in self.optimizers.values() for key, value in opt.state.items()}

    def zero_grad(self, set_to_none: bool = True) -> None:
        for opt in self.optimizers.values():
            opt.zero_grad(set_to_none=set_to_none)
        for kernel, _ in self.kernels:
            if kernel.grad is not None:
                kernel.grad = None if set_to_none else kernel.grad.zero_()

    def step(self) -> None:
        for kernel, matrix in self.kernels:
            matrix.grad = None if kernel.grad is None else kernel.grad.view_as(matrix)
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
            saved = [len(group["params"]) for group in state[name]["param_groups"]]
            ours = [len(group["params"]) for group in opt.param_groups]
            if saved != ours:
                raise ValueError(
                    f"optimizer state of {name} covers {sum(saved)} parameters but this policy gives "
                    f"it {sum(ours)}; was the checkpoint written with another policy, or by a version "
                    "that split the parameters between Muon and Adam differently?"
                )
            opt.load_state_dict(state[name])


Optimizer = torch.optim.Optimizer | MuonWithAdam
"""What `build_optimizer` returns: anything with param_groups, zero_grad, step and state dicts."""
