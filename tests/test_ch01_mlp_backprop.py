"""Chapter 01's reference agrees with PyTorch's own layers and autograd, in float64."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from solutions import ch01_mlp_backprop as ref

SHAPES = [(1, 1, 1), (2, 3, 4), (7, 5, 2), (16, 32, 10), (3, 8, 8)]


def rand(rng, *shape, scale=1.0):
    return scale * torch.randn(*shape, generator=rng, dtype=torch.float64)


@pytest.mark.parametrize("n,fan_in,fan_out", SHAPES)
def test_linear_matches_nn_linear_and_autograd(n, fan_in, fan_out):
    rng = torch.Generator().manual_seed(n * 100 + fan_in)
    layer = ref.Linear(fan_in, fan_out)
    layer.weight, layer.bias = rand(rng, fan_in, fan_out), rand(rng, fan_out)
    x = rand(rng, n, fan_in).requires_grad_()
    weight = layer.weight.clone().requires_grad_()
    bias = layer.bias.clone().requires_grad_()
    expected = F.linear(x, weight.T, bias)
    dy = rand(rng, n, fan_out)
    expected.backward(dy)
    torch.testing.assert_close(layer.forward(x.detach()), expected.detach())
    torch.testing.assert_close(layer.backward(dy), x.grad)
    torch.testing.assert_close(layer.grad_weight, weight.grad)
    torch.testing.assert_close(layer.grad_bias, bias.grad)


ACTIVATIONS = [
    (ref.ReLU(), torch.relu),
    (ref.LeakyReLU(0.2), lambda t: F.leaky_relu(t, 0.2)),
    (ref.Sigmoid(), torch.sigmoid),
    (ref.Tanh(), torch.tanh),
]


@pytest.mark.parametrize("layer,torch_fn", ACTIVATIONS, ids=lambda v: type(v).__name__)
@pytest.mark.parametrize("scale", [1.0, 50.0, 1000.0])
def test_activations_match_autograd(layer, torch_fn, scale):
    rng = torch.Generator().manual_seed(int(scale))
    x = rand(rng, 6, 5, scale=scale).requires_grad_()
    dy = rand(rng, 6, 5)
    expected = torch_fn(x)
    expected.backward(dy)
    torch.testing.assert_close(layer.forward(x.detach()), expected.detach())
    torch.testing.assert_close(layer.backward(dy), x.grad)


@pytest.mark.parametrize("n,classes,scale", [(1, 2, 1.0), (5, 3, 1.0), (8, 10, 30.0), (4, 6, 1000.0)])
def test_cross_entropy_matches_torch(n, classes, scale):
    rng = torch.Generator().manual_seed(classes)
    logits = rand(rng, n, classes, scale=scale).requires_grad_()
    target = torch.randint(0, classes, (n,), generator=rng)
    expected = F.cross_entropy(logits, target)
    expected.backward()
    loss = ref.CrossEntropyLoss()
    torch.testing.assert_close(loss.forward(logits.detach(), target), expected.detach())
    torch.testing.assert_close(loss.backward(), logits.grad)


@pytest.mark.parametrize("shape", [(1,), (4, 3), (2, 3, 5)])
def test_mse_matches_torch(shape):
    rng = torch.Generator().manual_seed(len(shape))
    pred, target = rand(rng, *shape).requires_grad_(), rand(rng, *shape)
    expected = F.mse_loss(pred, target)
    expected.backward()
    loss = ref.MSELoss()
    torch.testing.assert_close(loss.forward(pred.detach(), target), expected.detach())
    torch.testing.assert_close(loss.backward(), pred.grad)


def test_net_backward_matches_autograd_through_a_whole_mlp():
    rng = torch.Generator().manual_seed(7)
    net = ref.Net([ref.Linear(4, 6), ref.Tanh(), ref.Linear(6, 3)])
    net.reset_params(0.5, generator=rng)
    for layer in net.layers[::2]:
        layer.weight, layer.bias = layer.weight.double(), layer.bias.double()
    params = [p.clone().requires_grad_() for layer in net.layers[::2] for p in (layer.weight, layer.bias)]
    x = rand(rng, 5, 4).requires_grad_()
    expected = F.linear(torch.tanh(F.linear(x, params[0].T, params[1])), params[2].T, params[3])
    dy = rand(rng, 5, 3)
    expected.backward(dy)
    torch.testing.assert_close(net.forward(x.detach()), expected.detach())
    torch.testing.assert_close(net.backward(dy), x.grad)
    torch.testing.assert_close(net.layers[0].grad_weight, params[0].grad)
