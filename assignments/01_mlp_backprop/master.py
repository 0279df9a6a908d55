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
# Conventions used throughout (those of the course's lecture notes, and of this whole kit):
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
# {{FIGURE:linear_graph}}
#
# **Deriving the backward pass.** `backward` receives `dupstream = dL/dy`, one number per
# element of `y`, shape `(N, out_features)`, and must return `dL/dx`. Derive it yourself, in
# three steps; the public checks below will tell you whether you got it right.
#
# 1. *One scalar.* Take `N = 1`, `in_features = 2`, `out_features = 1`:
#    `y = x_1 W_11 + x_2 W_21 + b_1`. What are `dy/dx_1`, `dy/dW_21` and `dy/db_1`? By the
#    chain rule, `dL/dx_1 = dL/dy * dy/dx_1`.
# 2. *One example, all outputs.* Now `out_features = 3`: `x_1` feeds `y_1`, `y_2` and `y_3`, so
#    `dL/dx_1` is a sum of three chain-rule terms. Write it as a sum over `j`; which row or
#    column of `W` appears? `W_ij` feeds only `y_j`: what is `dL/dW_ij`?
# 3. *The batch.* With `N` examples every row of `x` gets its own `dL/dx` row. `W` and `b` are
#    shared by all rows, so their gradients **add up** the contributions of all `N` examples.
#    Write each result as one matrix product (or a sum) and check it by its shape: `dL/dx` must
#    be `(N, in_features)`, `dL/dW` the shape of `W`, `dL/db` the shape of `b`. Shapes leave
#    few possibilities: an `(N, out)` and an `(in, out)` matrix can only be combined one way
#    into an `(N, in)` one.
#
# **Checking a gradient numerically.** The public checks compare your `backward` with the
# definition of the derivative, element by element: nudge one input by `e` and watch the loss.
# The *central* difference `(L(x + e) - L(x - e)) / 2e` is off by about `e²` (the one-sided
# `(L(x + e) - L(x)) / e` by about `e`), and the check runs in **float64**: `L(x + e) - L(x - e)`
# cancels most digits of `L`, and float32 keeps only about 7 of them, too few for `e = 1e-6`.
# The error reported is `||analytic - numerical|| / (||analytic|| + ||numerical||)` over a whole
# gradient: about 1e-10 for a correct pass, above `1e-6` means a bug. Use it on your own layers
# at any time, including a whole network (`check_gradients(net, x)`) or a loss
# (`check_gradients(loss, logits, target=labels)`):
# `from student.gradcheck import check_gradients`.
#
# `init_params(std)` draws the weight from a Gaussian with standard deviation `std` (the default,
# 1, is just a start: section 5 uses 0.1) and the bias uniformly from `[0, 1)`, a small positive
# start that keeps ReLU units active on the first steps. Both are this course's choices, which
# the grader checks; PyTorch's `nn.Linear` draws both uniformly in
# `[-1/sqrt(in_features), 1/sqrt(in_features)]` instead.

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
from student.gradcheck import TOLERANCE, check_layer_gradients
layer = Linear(4, 3)
layer.init_params(generator=torch.Generator().manual_seed(1))
errors = check_layer_gradients(layer, torch.randn(5, 4, generator=torch.Generator().manual_seed(2)), verbose=False)
wrong = {name: f"{error:.1e}" for name, error in errors.items() if not error < TOLERANCE}
assert not wrong, f"Linear: these gradients disagree with central differences (relative error): {wrong}"

# %%
layer = Linear(10, 20000)
layer.init_params(0.1, generator=torch.Generator().manual_seed(6))
weight, bias = layer.weight.double(), layer.bias.double()
assert weight.shape == (10, 20000) and bias.shape == (20000,), "init_params: weight of shape (in_features, out_features), bias of shape (out_features,)"
assert abs(weight.mean().item()) < 0.005 and abs(weight.std().item() / 0.1 - 1) < 0.05, "init_params(std): the weight should have mean 0 and standard deviation std (a standard Gaussian times std)"
assert 0.035 < (weight.abs() > 0.2).double().mean().item() < 0.056, "init_params: the weight should be Gaussian (about 4.6% of its values beyond 2 std), not uniform"
assert bias.min().item() >= 0 and bias.max().item() < 1 and abs(bias.mean().item() - 0.5) < 0.02, "init_params: the bias should be uniform on [0, 1), whatever std is"

# %%
weight = torch.tensor([[1., 0.], [0., 1.], [1., 1.]], dtype=torch.float64)
bias = torch.tensor([0.5, -0.5], dtype=torch.float64)
x_first, x_second = torch.tensor([[1., 2., 3.]], dtype=torch.float64), torch.tensor([[0., 1., -1.], [2., 0., 1.]], dtype=torch.float64)
d_first, d_second = torch.tensor([[1., -1.]], dtype=torch.float64), torch.tensor([[2., 0.5], [-1., 1.]], dtype=torch.float64)
from student.gradcheck import check_second_call_sets_gradients


def linear_with_fixed_parameters():
    layer = Linear(3, 2)
    layer.weight, layer.bias = weight.clone(), bias.clone()
    return layer


check_second_call_sets_gradients(linear_with_fixed_parameters, (x_first, x_second), (d_first, d_second), "Linear")

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
# | Sigmoid | `s = 1 / (1 + exp(-x))` | derive it, in terms of `s` |
# | Tanh | `t = tanh(x)` | derive it, in terms of `t` |
#
# Derive the last two columns before you code them: write sigmoid as `s = 1 / (1 + e)` with
# `e = exp(-x)` and differentiate (you should find that the result can be written with `s`
# alone); for tanh, write `tanh = sinh / cosh` and use `cosh² - sinh² = 1`. Both derivatives
# can be expressed through the *outputs*: cache the output in `forward`. The public checks
# compare your result with central differences.
#
# Overflow: for `x = -1000`, `exp(-x)` is `inf` in float64, but `1 / (1 + inf)` is exactly 0, so
# `1 / (1 + exp(-x))` stays finite in torch (with an overflow that NumPy would warn about). The
# form that breaks is `exp(x) / (1 + exp(x))`: for `x = 1000` it is `inf / inf = nan`. A
# version that never overflows uses `exp(-|x|)`, which lies in (0, 1]:
# `1 / (1 + exp(-|x|))` for `x >= 0` and `exp(-|x|) / (1 + exp(-|x|))` for `x < 0`.

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
from student.gradcheck import TOLERANCE, check_layer_gradients
points = torch.randn(4, 5, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
for layer in (ReLU(), LeakyReLU(0.2), Sigmoid(), Tanh()):
    errors = check_layer_gradients(layer, points, verbose=False)
    assert errors["x"] < TOLERANCE, f"{type(layer).__name__}.backward disagrees with central differences (relative error {errors['x']:.1e})"

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
# **Mean squared error** averages over *all* elements: `L = mean((pred - target)^2)`.
# Differentiate with respect to one element `pred[k]`: only one term of the sum contains it,
# and the mean divides that term by the number of elements (`pred.numel()`, not the batch size).
#
# **Cross-entropy** takes raw scores `logits` of shape `(N, C)` and integer classes `target` of
# shape `(N,)`. With `p = softmax(logits)` along the class dimension,
# `L = -mean_n log p[n, target[n]]`. Derive the gradient for one example first: with logits
# `z`, true class `t` and `log p_t = z_t - log(sum_j exp(z_j))`, compute `d(-log p_t)/dz_j`
# separately for `j = t` and `j != t`; you will find that both cases are one expression in `p`
# and a one-hot vector. Then the batch mean divides every row by `N`. (Sanity check: each row of
# the gradient sums to zero, because adding a constant to all logits of a row changes nothing.)
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
loss = MSELoss().forward(torch.tensor([[1.0, 3.0], [0.0, 2.0]], dtype=torch.float64), torch.zeros(2, 2, dtype=torch.float64))
assert abs(loss.item() - 3.5) < 1e-12, "MSE of [[1, 3], [0, 2]] against zeros: the mean runs over all pred.numel() elements, not over the batch size pred.shape[0]"

# %%
import math
ce = CrossEntropyLoss()
loss = ce.forward(torch.zeros(2, 4, dtype=torch.float64), torch.tensor([0, 3]))
assert abs(loss.item() - math.log(4)) < 1e-12, "uniform logits over 4 classes give a loss of log(4)"
big = ce.forward(torch.tensor([[1000.0, 0.0], [0.0, 1000.0]], dtype=torch.float64), torch.tensor([0, 0]))
assert torch.isfinite(big), "cross-entropy must stay finite for logits around 1000 (subtract the row max)"
assert ce.backward().shape == (2, 2), "dlogits has the shape of logits"
assert abs(ce.backward().sum().item()) < 1e-9, "each row of (softmax - onehot) sums to zero"

# %%
from student.gradcheck import TOLERANCE, check_gradients
generator = torch.Generator().manual_seed(3)
logits = torch.randn(4, 3, generator=generator, dtype=torch.float64)
errors = check_gradients(CrossEntropyLoss(), logits, target=torch.tensor([0, 2, 1, 2]), verbose=False)
assert errors["x"] < TOLERANCE, f"CrossEntropyLoss.backward disagrees with central differences (relative error {errors['x']:.1e})"
errors = check_gradients(MSELoss(), logits, target=torch.randn(4, 3, generator=generator, dtype=torch.float64), verbose=False)
assert errors["x"] < TOLERANCE, f"MSELoss.backward disagrees with central differences (relative error {errors['x']:.1e})"

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
# seeded generator makes experiments reproducible without touching the global random state).

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
# Net is checked on stand-in layers (student/stand_ins.py, not the layers you
# write), so a bug in q1-q3 does not fail q4.
from student.stand_ins import check_layer_container

check_layer_container(Net, "Net", torch.Generator().manual_seed(4))

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
print(f"final loss {loss.item():.4f}")
print("predictions", "  ".join(f"{p:.2f}" for p in xor_net.forward(xor_x).squeeze(1).tolist()))

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
from student.results import record

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
record(test_accuracy=test_accuracy)  # read by the course's automated tests; prints nothing
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
