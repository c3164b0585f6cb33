"""`adam` and `muon` (Muon for 2-D weights, Adam for the rest)."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from heartgrid.config.trainer import OptimizerConfig
from heartgrid.trainer.optimizer import MuonWithAdam, build_optimizer, muon_parameters


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.embedding = nn.Embedding(5, 8)
        self.conv = nn.Conv2d(2, 4, 3)
        self.hidden = nn.Linear(8, 16)
        self.out = nn.Linear(16, 3)


def test_muon_takes_2d_weights_and_adam_the_rest():
    net = Net()
    matrices, others = muon_parameters(net)
    assert {id(p) for p in matrices} == {id(net.hidden.weight), id(net.out.weight)}
    assert {id(p) for p in others} == {id(net.embedding.weight), id(net.conv.weight), id(net.conv.bias),
                                        id(net.hidden.bias), id(net.out.bias)}


def test_muon_update_of_a_matrix_is_orthogonalised():
    """The step of a 2-D weight is the (approximately) orthogonalised gradient: its singular
    values are nearly equal even when the gradient's spread over two orders of magnitude."""
    layer = nn.Linear(32, 32, bias=False)
    opt = build_optimizer(layer, OptimizerConfig(type="muon", learning_rate=0.01))
    u, _ = torch.linalg.qr(torch.randn(32, 32, generator=torch.Generator().manual_seed(0)))
    v, _ = torch.linalg.qr(torch.randn(32, 32, generator=torch.Generator().manual_seed(1)))
    gradient = u @ torch.diag(torch.logspace(0, -2, 32)) @ v.T
    before = layer.weight.detach().clone()
    layer.weight.grad = gradient.clone()
    opt.step()
    step_singular_values = torch.linalg.svdvals(before - layer.weight.detach())
    spread = step_singular_values.max() / step_singular_values.min()
    assert torch.linalg.svdvals(gradient).max() / torch.linalg.svdvals(gradient).min() > 90
    assert spread < 2.0


def test_muon_optimizer_steps_all_parameters_and_round_trips_its_state():
    net = Net()
    config = OptimizerConfig(type="muon", learning_rate=0.01)
    opt = build_optimizer(net, config)
    assert isinstance(opt, MuonWithAdam)
    assert len(opt.param_groups) == 2
    before = [p.detach().clone() for p in net.parameters()]
    hidden = torch.relu(net.hidden(net.embedding(torch.tensor([1, 2]))))
    loss = net.out(hidden).sum() + net.conv(torch.ones(1, 2, 5, 5)).sum()
    loss.backward()
    opt.step()
    assert all(not torch.equal(b, p) for b, p in zip(before, net.parameters()) if p.grad is not None)

    copy_net = Net()
    copy_opt = build_optimizer(copy_net, config)
    copy_net.load_state_dict(net.state_dict())
    copy_opt.load_state_dict(copy.deepcopy(opt.state_dict()))  # state_dict() shares tensors
    for model, optimizer in ((net, opt), (copy_net, copy_opt)):
        optimizer.zero_grad()
        model.out(torch.relu(model.hidden(model.embedding(torch.tensor([3]))))).sum().backward()
        optimizer.step()
    for a, b in zip(net.parameters(), copy_net.parameters()):
        assert torch.equal(a, b)


def test_adam_uses_the_configured_hyperparameters():
    opt = build_optimizer(Net(), OptimizerConfig(type="adam", learning_rate=0.002, beta1=0.8, eps=1e-6))
    assert isinstance(opt, torch.optim.Adam)
    group = opt.param_groups[0]
    assert (group["lr"], group["betas"], group["eps"]) == (0.002, (0.8, 0.999), 1e-6)


def test_muon_state_of_another_layout_is_refused():
    opt = build_optimizer(Net(), OptimizerConfig(type="muon"))
    with pytest.raises(ValueError, match="optimizer state holds"):
        opt.load_state_dict({"adam": {}})
