"""`adam` and `muon` (Muon for the weights of linear, convolution and recurrent layers, Adam for
the rest)."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from heartgrid.config.run import PolicyConfig
from heartgrid.config.trainer import OptimizerConfig
from heartgrid.engine.features import FeatureRegistry
from heartgrid.policies import make_policy
from heartgrid.trainer.optimizer import MuonWithAdam, build_optimizer, muon_parameters


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.embedding = nn.Embedding(5, 8)
        self.conv = nn.Conv2d(2, 4, 3)
        self.hidden = nn.Linear(8, 16)
        self.out = nn.Linear(16, 3)
        self.queries = nn.Parameter(torch.randn(4, 8))  # 2-D, but not a layer's weight
        self.cell = nn.GRUCell(8, 8)


def test_muon_takes_weights_of_linear_maps_and_adam_the_rest():
    net = Net()
    matrices, others = muon_parameters(net)
    assert {id(p) for p in matrices} == {id(p) for p in (
        net.conv.weight, net.hidden.weight, net.out.weight, net.cell.weight_ih, net.cell.weight_hh)}
    assert {id(p) for p in others} == {id(p) for p in (
        net.embedding.weight, net.queries, net.conv.bias, net.hidden.bias, net.out.bias,
        net.cell.bias_ih, net.cell.bias_hh)}


@pytest.mark.parametrize("name", ["fast", "latent_attn_tiny"])
def test_muon_takes_hidden_matrices_only_and_leaves_embeddings_queries_norms_and_the_input_and_output_layers_to_adam(name):
    features = FeatureRegistry.default()
    policy = make_policy(PolicyConfig(name=name, hidden_size=16, lstm_layers=1), features,
                         ["noop_0", "move_0", "move_1"], (len(features), 7, 7))
    matrices, _ = muon_parameters(policy)
    muon = {n for n, p in policy.named_parameters() if any(p is m for m in matrices)}
    adam = {n for n, _ in policy.named_parameters()} - muon
    assert {"action_head.embeddings", "action_head.bias", "lstm.bias_ih_l0"} <= adam
    assert {"lstm.weight_ih_l0", "lstm.weight_hh_l0", "actor.0.weight", "critic.0.weight"} <= muon
    assert "critic.2.weight" in adam  # the value head's output layer
    if name == "fast":
        assert {"conv2.weight", "fc1.weight"} <= muon
        assert "conv1.weight" in adam  # the input layer reads the observation
    else:
        assert {"tokenizer.feature_embeddings", "cross_attention.queries",
                "cross_attention.final_norm.weight"} <= adam
        assert {"cross_attention.key.weight", "output.weight"} <= muon
    assert all(n.endswith("weight") or "weight_" in n for n in muon)


def test_muon_steps_a_convolution_kernel_as_a_matrix():
    """A [4, 2, 3, 3] kernel takes exactly the Muon step of the [4, 18] matrix it flattens to
    (the orthogonalised gradient, see above), and the network's kernel is what moves."""
    conv = nn.Conv2d(2, 4, 3, bias=False)
    linear = nn.Linear(18, 4, bias=False)
    with torch.no_grad():
        linear.weight.copy_(conv.weight.view(4, 18))
    config = OptimizerConfig(type="muon", learning_rate=0.01)
    conv_opt, linear_opt = build_optimizer(conv, config), build_optimizer(linear, config)
    gradient = torch.randn(4, 18, generator=torch.Generator().manual_seed(0))
    conv.weight.grad = gradient.view(4, 2, 3, 3).clone()
    linear.weight.grad = gradient.clone()
    before = conv.weight.detach().clone()
    conv_opt.step()
    linear_opt.step()
    assert not torch.equal(conv.weight, before)
    assert torch.equal(conv.weight.detach().view(4, 18), linear.weight.detach())
    conv_opt.zero_grad()
    assert conv.weight.grad is None


def test_muon_without_torch_muon_names_the_torch_version_needed(monkeypatch):
    monkeypatch.delattr(torch.optim, "Muon")
    with pytest.raises(RuntimeError, match=r"PyTorch 2\.9 or newer.*optimizer\.type=adam"):
        build_optimizer(Net(), OptimizerConfig(type="muon"))


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
    other = build_optimizer(nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2)), OptimizerConfig(type="muon"))
    with pytest.raises(ValueError, match="covers 2 parameters but this policy gives it 5"):
        opt.load_state_dict(other.state_dict())


@pytest.mark.parametrize("name", ["fast", "latent_attn_med"])
def test_the_muon_split_is_the_same_every_time_and_leaves_no_trace(name):
    """The split once depended on memory addresses a freed layer output could hand to the
    logits; a resume then found another split than its checkpoint's."""
    features = FeatureRegistry.default()
    policy = make_policy(PolicyConfig(name=name, hidden_size=8, lstm_layers=1), features,
                         ["noop_0", "move_0", "move_1"], (len(features), 7, 7))
    policy.train()
    rng = torch.get_rng_state()
    splits = {tuple(id(p) for p in muon_parameters(policy)[0]) for _ in range(30)}
    assert len(splits) == 1
    assert policy.training and torch.equal(torch.get_rng_state(), rng)
