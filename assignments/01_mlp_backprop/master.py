# %% [raw]
# # ASSIGNMENT CONFIG
# name: 01_mlp_backprop
# init_cell: false
# run_tests: false
# strip_solutions_from_all_cells: true
# export_cell:
#   pdf: false
#   run_tests: true
#   instructions: "Upload the zip this cell writes (or the .ipynb itself) to Gradescope; in Colab, use File > Download > Download .ipynb and upload that. The grader re-runs your definitions in a sandbox and skips the experiment cells, so their outputs do not matter for your score."
# tests:
#   files: true

# %% [markdown]
# # Chapter 01 — A multilayer perceptron, with backpropagation by hand
#
# In this assignment you build a small neural-network library from plain tensor operations:
# a fully connected layer, four activation functions, two losses, and a container that chains
# them. You will write every backward pass yourself; **autograd (`.backward()`,
# `torch.autograd`) and `torch.nn` are not allowed inside your classes** — the grader checks.
#
# **How this notebook is graded.** Each class you write is tested against a hidden reference on
# many random inputs, in float64. Every forward output and every gradient is a separate item,
# so a correct forward pass earns its points even if the backward pass is wrong. The cells
# marked `# EXPERIMENT` are not run by the grader: train and plot as much as you like there.
#
# {{FORBIDDEN_RULES}}
#
# **Other rules the grader enforces.** Never change an input tensor in place (`x += ...` or
# `x[...] = ...` on a tensor you were given): work on a copy. Each method is graded on its own
# and called twice in a row on different inputs, so `backward` must *set* the gradients of the
# last forward pass (`self.grad_weight = ...`), never add to the previous ones. `Net` is graded
# with layers of the grader's own (with `init_params` or without it), so test for a method with
# `hasattr`, never for one of your classes with `isinstance`.
#
# Conventions used throughout (the same as the course notes):
# * a batch of inputs has shape `(N, features)`;
# * `Linear` computes `y = x @ W + b` with `W` of shape `(in_features, out_features)`;
# * every layer has `forward(x)` (which caches what backward needs) and `backward(dupstream)`,
#   where `dupstream` is the gradient of the loss with respect to the layer's output and the
#   return value is the gradient with respect to its input.

# %%
import torch

# %% [markdown]
# ## 1. The linear layer
#
# For one example, `y_j = sum_i x_i W_ij + b_j`. For a batch, the same in matrix form:
# `y = x @ W + b`, with the bias broadcast over the rows.
#
# Backward, given `dupstream = dL/dy` of shape `(N, out_features)`:
# * `dL/dx = dupstream @ W.T` — shape `(N, in_features)`;
# * `dL/dW = x.T @ dupstream` — shape `(in_features, out_features)`; the product already sums
#   the contributions of the `N` examples;
# * `dL/db = dupstream.sum(dim=0)` — shape `(out_features,)`: the bias was added to every row,
#   so its gradient collects every row.
#
# `init_params(std)` draws the weight from a Gaussian with standard deviation `std` and the bias
# uniformly from `[0, 1)`.

# %% [raw]
# # BEGIN QUESTION
# name: q1
# points: 4

# %% [raw]
# # BEGIN SOLUTION

# %%
class Linear:
    """Fully connected layer: y = x @ weight + bias.

    Attributes:
        weight: (in_features, out_features)
        bias: (out_features,)
        grad_weight: (in_features, out_features), set by backward
        grad_bias: (out_features,), set by backward
    """

    def __init__(self, in_features, out_features):
        self.in_features = in_features
        self.out_features = out_features
        self.cache = None
        self.init_params()
        self.grad_weight = torch.zeros_like(self.weight)
        self.grad_bias = torch.zeros_like(self.bias)

    def init_params(self, std=1.0, generator=None):
        """weight ~ N(0, std^2) of shape (in_features, out_features); bias ~ U[0, 1) of shape
        (out_features,), whatever std is. Graded statistically, on a large layer.

        generator: an optional seeded torch.Generator, for reproducible experiments.
        """
        # BEGIN SOLUTION NO PROMPT
        self.weight = std * torch.randn(self.in_features, self.out_features, generator=generator)
        self.bias = torch.rand(self.out_features, generator=generator)
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("Linear.init_params")
        """ # END PROMPT

    def forward(self, x):
        """x: (N, in_features) -> y: (N, out_features). Cache what backward needs."""
        assert x.ndim == 2 and x.shape[1] == self.in_features, \
            f"Linear.forward expects (N, {self.in_features}), got {tuple(x.shape)}"
        # BEGIN SOLUTION NO PROMPT
        self.cache = x
        return x @ self.weight + self.bias
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("Linear.forward")
        """ # END PROMPT

    def backward(self, dupstream):
        """dupstream: (N, out_features) -> dx: (N, in_features).

        Also sets self.grad_weight (in_features, out_features) and self.grad_bias (out_features,).
        """
        assert dupstream.ndim == 2 and dupstream.shape[1] == self.out_features, \
            f"Linear.backward expects (N, {self.out_features}), got {tuple(dupstream.shape)}"
        # BEGIN SOLUTION NO PROMPT
        x = self.cache
        self.grad_weight = x.T @ dupstream
        self.grad_bias = dupstream.sum(dim=0)
        return dupstream @ self.weight.T
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("Linear.backward")
        """ # END PROMPT

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
layer = Linear(3, 2)
layer.weight = torch.tensor([[1., 0.], [0., 1.], [1., 1.]], dtype=torch.float64)
layer.bias = torch.tensor([0.5, -0.5], dtype=torch.float64)
y = layer.forward(torch.tensor([[1., 2., 3.]], dtype=torch.float64))
assert y.shape == (1, 2), f"y should have shape (1, 2), got {tuple(y.shape)}"
assert torch.allclose(y, torch.tensor([[4.5, 4.5]], dtype=torch.float64)), "forward: by hand, x @ W + b = [[4.5, 4.5]]"

# %%
from student.gradcheck import check_layer_gradients
errors = check_layer_gradients(Linear(4, 3), torch.randn(5, 4, generator=torch.Generator().manual_seed(1)), verbose=False)
assert max(errors.values()) < 1e-6, f"gradient check failed, relative errors: {errors}"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# ## 2. Activation functions
#
# An activation works elementwise, so its backward pass multiplies `dupstream` elementwise by
# the local derivative:
#
# | activation | forward | local derivative |
# |---|---|---|
# | ReLU | `max(0, x)` | 1 where `x > 0`, else 0 |
# | LeakyReLU | `x` if `x > 0` else `a x` | 1 where `x > 0`, else `a` |
# | Sigmoid | `s = 1 / (1 + exp(-x))` | `s (1 - s)` |
# | Tanh | `t = tanh(x)` | `1 - t^2` |
#
# Sigmoid and tanh have derivatives expressed through their *outputs*: cache the output in
# `forward`. For large negative `x`, `exp(-x)` overflows; an implementation that stays finite
# for any input is better (hint: `exp(-|x|)` never overflows).

# %% [raw]
# # BEGIN QUESTION
# name: q2
# points: 4

# %% [raw]
# # BEGIN SOLUTION

# %%
class ReLU:
    """max(0, x) elementwise. forward: x (any shape) -> same shape; backward likewise."""

    def forward(self, x):
        # BEGIN SOLUTION NO PROMPT
        self.cache = x
        return x.clamp(min=0)
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("ReLU.forward")
        """ # END PROMPT

    def backward(self, dupstream):
        # BEGIN SOLUTION NO PROMPT
        return dupstream * (self.cache > 0).to(dupstream.dtype)
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("ReLU.backward")
        """ # END PROMPT


class LeakyReLU:
    """x where x > 0, negative_slope * x elsewhere. Shapes as ReLU."""

    def __init__(self, negative_slope=0.01):
        self.negative_slope = negative_slope

    def forward(self, x):
        # BEGIN SOLUTION NO PROMPT
        self.cache = x
        return torch.where(x > 0, x, self.negative_slope * x)
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("LeakyReLU.forward")
        """ # END PROMPT

    def backward(self, dupstream):
        # BEGIN SOLUTION NO PROMPT
        positive = self.cache > 0
        return torch.where(positive, dupstream, self.negative_slope * dupstream)
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("LeakyReLU.backward")
        """ # END PROMPT


class Sigmoid:
    """1 / (1 + exp(-x)) elementwise. Shapes as ReLU."""

    def forward(self, x):
        # BEGIN SOLUTION NO PROMPT
        e = torch.exp(-x.abs())
        out = torch.where(x >= 0, 1 / (1 + e), e / (1 + e))
        self.cache = out
        return out
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("Sigmoid.forward")
        """ # END PROMPT

    def backward(self, dupstream):
        # BEGIN SOLUTION NO PROMPT
        return dupstream * self.cache * (1 - self.cache)
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("Sigmoid.backward")
        """ # END PROMPT


class Tanh:
    """tanh(x) elementwise. Shapes as ReLU."""

    def forward(self, x):
        # BEGIN SOLUTION NO PROMPT
        self.cache = torch.tanh(x)
        return self.cache
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("Tanh.forward")
        """ # END PROMPT

    def backward(self, dupstream):
        # BEGIN SOLUTION NO PROMPT
        return dupstream * (1 - self.cache ** 2)
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("Tanh.backward")
        """ # END PROMPT

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
x = torch.tensor([[-2.0, -0.5, 0.5, 3.0]], dtype=torch.float64)
assert torch.equal(ReLU().forward(x), torch.tensor([[0.0, 0.0, 0.5, 3.0]], dtype=torch.float64)), "ReLU.forward on a hand-checkable input"
assert torch.allclose(LeakyReLU(0.1).forward(x), torch.tensor([[-0.2, -0.05, 0.5, 3.0]], dtype=torch.float64)), "LeakyReLU.forward: negative inputs times the slope"
assert torch.allclose(Sigmoid().forward(torch.zeros(3, dtype=torch.float64)), torch.full((3,), 0.5, dtype=torch.float64)), "sigmoid(0) = 0.5"
assert torch.isfinite(Sigmoid().forward(torch.tensor([-1000.0, 1000.0], dtype=torch.float64))).all(), "Sigmoid must stay finite for large |x|"

# %%
from student.gradcheck import check_layer_gradients
points = torch.randn(4, 5, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
for layer in (ReLU(), LeakyReLU(0.2), Sigmoid(), Tanh()):
    errors = check_layer_gradients(layer, points, verbose=False)
    assert errors["x"] < 1e-6, f"{type(layer).__name__}.backward disagrees with a numerical gradient (relative error {errors['x']:.1e})"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# ## 3. Losses
#
# A loss's `forward(pred, target)` returns a scalar tensor; its `backward()` (no argument: the
# loss is the end of the chain) returns `dL/dpred`, with the shape of `pred`.
#
# **Mean squared error** averages over *all* elements: `L = mean((pred - target)^2)`, so
# `dL/dpred = 2 (pred - target) / pred.numel()`.
#
# **Cross-entropy** takes raw scores `logits` of shape `(N, C)` and integer classes `target` of
# shape `(N,)`. With `p = softmax(logits)` along the class dimension,
# `L = -mean_n log p[n, target[n]]`, and the gradient is `(p - onehot(target)) / N`.
# Computing `log(softmax(z))` naively overflows when a logit is around 1000. Subtract each row's
# maximum first — it does not change the softmax — and use
# `log_softmax(z) = z - log(sum(exp(z)))` on the shifted row.

# %% [raw]
# # BEGIN QUESTION
# name: q3
# points: 4

# %% [raw]
# # BEGIN SOLUTION

# %%
class MSELoss:
    """Mean of squared errors over all elements."""

    def forward(self, pred, target):
        """pred, target: same shape -> scalar tensor."""
        assert pred.shape == target.shape, f"MSELoss: pred {tuple(pred.shape)} vs target {tuple(target.shape)}"
        # BEGIN SOLUTION NO PROMPT
        self.cache = (pred, target)
        return ((pred - target) ** 2).mean()
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("MSELoss.forward")
        """ # END PROMPT

    def backward(self):
        """-> dpred, same shape as pred."""
        # BEGIN SOLUTION NO PROMPT
        pred, target = self.cache
        return 2 * (pred - target) / pred.numel()
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("MSELoss.backward")
        """ # END PROMPT


class CrossEntropyLoss:
    """Softmax + negative log-likelihood, averaged over the batch."""

    def forward(self, logits, target):
        """logits: (N, C) float, target: (N,) int64 in [0, C) -> scalar tensor."""
        assert logits.ndim == 2 and target.shape == (logits.shape[0],), \
            f"CrossEntropyLoss: logits (N, C) and target (N,), got {tuple(logits.shape)} and {tuple(target.shape)}"
        # BEGIN SOLUTION NO PROMPT
        shifted = logits - logits.max(dim=1, keepdim=True).values
        log_probs = shifted - torch.log(torch.exp(shifted).sum(dim=1, keepdim=True))
        self.cache = (log_probs, target)
        rows = torch.arange(logits.shape[0])
        return -log_probs[rows, target].mean()
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("CrossEntropyLoss.forward")
        """ # END PROMPT

    def backward(self):
        """-> dlogits: (N, C)."""
        # BEGIN SOLUTION NO PROMPT
        log_probs, target = self.cache
        n = log_probs.shape[0]
        one_hot = torch.zeros_like(log_probs)
        one_hot[torch.arange(n), target] = 1.0
        return (torch.exp(log_probs) - one_hot) / n
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("CrossEntropyLoss.backward")
        """ # END PROMPT

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
loss = MSELoss().forward(torch.tensor([1.0, 3.0], dtype=torch.float64), torch.tensor([0.0, 0.0], dtype=torch.float64))
assert loss.ndim == 0, "a loss is a scalar tensor (shape ())"
assert abs(loss.item() - 5.0) < 1e-12, "MSE of [1, 3] against [0, 0] is (1 + 9) / 2 = 5"

# %%
ce = CrossEntropyLoss()
loss = ce.forward(torch.zeros(2, 4, dtype=torch.float64), torch.tensor([0, 3]))
assert abs(loss.item() - float(torch.log(torch.tensor(4.0)))) < 1e-9, "uniform logits over 4 classes give a loss of log(4)"
big = ce.forward(torch.tensor([[1000.0, 0.0], [0.0, 1000.0]], dtype=torch.float64), torch.tensor([0, 0]))
assert torch.isfinite(big), "cross-entropy must stay finite for logits around 1000 (subtract the row max)"
assert ce.backward().shape == (2, 2), "dlogits has the shape of logits"
assert abs(ce.backward().sum().item()) < 1e-9, "each row of (softmax - onehot) sums to zero"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# ## 4. The network container
#
# `Net(layers)` keeps a list of layers. `forward` feeds the output of each layer to the next;
# `backward` walks the list **in reverse**, handing each returned gradient to the previous layer.
# `optimizer_step(lr)` performs one step of plain gradient descent on every layer that has
# parameters (`weight -= lr * grad_weight`, same for the bias), and `reset_params(std)` calls
# `init_params(std, generator=generator)` on every layer that has such a method (the optional
seeded generator makes experiments reproducible without touching the global random state).

# %% [raw]
# # BEGIN QUESTION
# name: q4
# points: 4

# %% [raw]
# # BEGIN SOLUTION

# %%
class Net:
    """Layers applied in sequence. forward: (N, in) -> (N, out); backward: (N, out) -> (N, in)."""

    def __init__(self, layers):
        self.layers = layers

    def reset_params(self, std=1.0, generator=None):
        """Calls init_params(std, generator=generator) on every layer that has it."""
        # BEGIN SOLUTION NO PROMPT
        for layer in self.layers:
            if hasattr(layer, "init_params"):
                layer.init_params(std, generator=generator)
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("Net.reset_params")
        """ # END PROMPT

    def forward(self, x):
        # BEGIN SOLUTION NO PROMPT
        for layer in self.layers:
            x = layer.forward(x)
        return x
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("Net.forward")
        """ # END PROMPT

    def backward(self, dupstream):
        # BEGIN SOLUTION NO PROMPT
        for layer in reversed(self.layers):
            dupstream = layer.backward(dupstream)
        return dupstream
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("Net.backward")
        """ # END PROMPT

    def optimizer_step(self, lr):
        # BEGIN SOLUTION NO PROMPT
        for layer in self.layers:
            if hasattr(layer, "weight"):
                layer.weight = layer.weight - lr * layer.grad_weight
                layer.bias = layer.bias - lr * layer.grad_bias
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("Net.optimizer_step")
        """ # END PROMPT

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
net = Net([Linear(2, 3), ReLU(), Linear(3, 1)])
out = net.forward(torch.randn(5, 2))
assert out.shape == (5, 1), f"Net.forward output should be (5, 1), got {tuple(out.shape)}"
dx = net.backward(torch.ones(5, 1))
assert dx.shape == (5, 2), f"Net.backward should return the gradient w.r.t. the input, (5, 2), got {tuple(dx.shape)}"
before = net.layers[0].weight.clone()
net.optimizer_step(0.1)
assert not torch.equal(before, net.layers[0].weight), "optimizer_step should change the weights"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# ## 5. Experiments (not graded by execution)
#
# ### 5.1 XOR
# XOR is the classic function a single linear layer cannot represent. A hidden layer of a few
# units is enough.

# %% tags=["experiment"]
# EXPERIMENT: not run by the grader
xor_x = torch.tensor([[0., 0.], [0., 1.], [1., 0.], [1., 1.]])
xor_y = torch.tensor([[0.], [1.], [1.], [0.]])
xor_net = Net([Linear(2, 8), Tanh(), Linear(8, 1), Sigmoid()])
xor_net.reset_params(1.0, generator=torch.Generator().manual_seed(0))
mse = MSELoss()
for step in range(2000):
    loss = mse.forward(xor_net.forward(xor_x), xor_y)
    xor_net.backward(mse.backward())
    xor_net.optimizer_step(0.5)
print("final loss", round(loss.item(), 4))
print("predictions", xor_net.forward(xor_x).squeeze(1).round(decimals=2).tolist())

# %% [markdown]
# ### 5.2 Handwritten digits
# The course's default data set is scikit-learn's bundled digits: 1797 images of 8x8 pixels,
# nothing to download. Inputs are standardised pixel by pixel. We train on 70%, pick the epoch
# with the best validation accuracy,
# save that model to a file, reload it, and only then look at the test set.

# %% tags=["experiment"]
# EXPERIMENT: not run by the grader
from tqdm.auto import tqdm
from student.data import load_digits_splits, minibatches
from student.plots import plot_curves

splits = load_digits_splits(seed=0)
# Standardise every pixel with statistics of the training set only (the +0.1 keeps the
# always-blank border pixels from being divided by zero).
pixel_mean = splits["train"].flat().mean(dim=0)
pixel_std = splits["train"].flat().std(dim=0) + 0.1
train_x, train_y = (splits["train"].flat() - pixel_mean) / pixel_std, splits["train"].labels
val_x, val_y = (splits["val"].flat() - pixel_mean) / pixel_std, splits["val"].labels
test_x, test_y = (splits["test"].flat() - pixel_mean) / pixel_std, splits["test"].labels


def accuracy(net, x, y):
    return (net.forward(x).argmax(dim=1) == y).float().mean().item()


def parameters_of(net):
    return [(layer.weight.clone(), layer.bias.clone()) for layer in net.layers if hasattr(layer, "weight")]


def load_parameters(net, saved):
    layers = [layer for layer in net.layers if hasattr(layer, "weight")]
    for layer, (weight, bias) in zip(layers, saved):
        layer.weight, layer.bias = weight.clone(), bias.clone()


def train(net, epochs=60, lr=0.05, batch_size=32, seed=0, label=""):
    """Mini-batch gradient descent; returns the curves and the best validation parameters."""
    generator = torch.Generator().manual_seed(seed)
    loss_fn = CrossEntropyLoss()
    curves = {"train loss": [], "val accuracy": []}
    best = (-1.0, None)
    for epoch in tqdm(range(epochs), desc=label or "training", leave=False):
        total = 0.0
        for idx in minibatches(len(train_y), batch_size, generator):
            loss = loss_fn.forward(net.forward(train_x[idx]), train_y[idx])
            net.backward(loss_fn.backward())
            net.optimizer_step(lr)
            total += loss.item() * len(idx)
        curves["train loss"].append(total / len(train_y))
        val_accuracy = accuracy(net, val_x, val_y)
        curves["val accuracy"].append(val_accuracy)
        if val_accuracy > best[0]:
            best = (val_accuracy, parameters_of(net))
    return curves, best


def make_net(activation, seed=0):
    net = Net([Linear(64, 256), activation, Linear(256, 10)])
    net.reset_params(0.1, generator=torch.Generator().manual_seed(seed))
    return net


digits_net = make_net(ReLU())
curves, (best_val, best_params) = train(digits_net, label="ReLU MLP")
torch.save(best_params, "best_mlp.pt")
reloaded = make_net(ReLU(), seed=1)
load_parameters(reloaded, torch.load("best_mlp.pt"))
test_accuracy = accuracy(reloaded, test_x, test_y)
print(f"best validation accuracy {best_val:.3f}; test accuracy of the reloaded model {test_accuracy:.3f}")
print(f"RESULT test_accuracy={test_accuracy:.4f}")
plot_curves({"train loss": curves["train loss"]}, ylabel="cross-entropy", title="Training loss");

# %% [markdown]
# ### 5.3 Which activation?
# Same network, same data, same number of steps; only the activation changes. Sigmoid units
# saturate and pass back small gradients, so with the same learning rate they learn slower.

# %% tags=["experiment"]
# EXPERIMENT: not run by the grader
comparison = {}
for name, activation in [("sigmoid", Sigmoid()), ("ReLU", ReLU()), ("LeakyReLU", LeakyReLU(0.05))]:
    run_curves, (run_best, _) = train(make_net(activation), epochs=20, label=name)
    comparison[name] = run_curves["val accuracy"]
    print(f"{name:>10}: best validation accuracy {run_best:.3f}")
plot_curves(comparison, ylabel="validation accuracy", title="Activation functions");
