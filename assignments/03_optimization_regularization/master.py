# %% [raw]
# # ASSIGNMENT CONFIG
# name: 03_optimization_regularization
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
# # Chapter 03 — Optimization and regularization
#
# Chapter 01 trained its network with the plainest update there is, `w -= lr * grad`. This
# chapter writes the rest of the training toolbox from plain tensor operations: the optimizers
# everyone uses (SGD with momentum, RMSprop, Adam, AdamW), the initializations that keep a deep
# network's signals at a sensible scale (Xavier, Kaiming), the layers that regularize and
# stabilize training (dropout, batch normalization, layer normalization) with their backward
# passes written by hand, penalties on the weights, early stopping and learning-rate schedules.
# Then you use all of it on the digits.
#
# **How this notebook is graded.** Every class and function below is compared with a hidden
# reference on many seeded inputs in float64. Each output is a separate item: an optimizer's
# trajectory and its `zero_grad`, a layer's forward, `dx`, `grad_weight` and `grad_bias`, the
# running statistics... so a correct part earns its points even when a neighbour is wrong.
# Every method is called several times in a row (state that leaks between calls is caught).
# Random initializers and dropout are graded **statistically**: on tensors of 40,000 entries
# or more, with limits that a correct implementation misses with probability below 1e-12.
# Cells starting with `# EXPERIMENT` are not run by the grader.
#
# {{FORBIDDEN_RULES}}
#
# In short: write everything from tensor operations (`torch.rand`, `torch.randn`, `sqrt`,
# `sum`, `mean`, indexing...). Inside the graded code, `torch.optim`, `torch.nn` (so
# `torch.nn.init` and `torch.nn.functional` too) and autograd are off limits; the experiments
# at the end use them freely.
#
# ## Conventions
# * A layer has `forward(x)` (which caches what backward needs) and `backward(dupstream)`, which
#   receives dL/d(output) and returns dL/dx, exactly as in chapter 01. A layer with parameters
#   `weight` and `bias` *sets* (does not accumulate) `grad_weight` and `grad_bias` in backward.
#   The grader assigns `layer.weight` and `layer.bias` directly before calling forward.
# * **dtype policy.** Compute in the dtype of the input: the grader's inputs are float64 and so
#   must be every graded output. Use `torch.zeros_like(p)`, `x.new_zeros(...)`, or
#   `dtype=x.dtype`. The one exception is batch-norm's running statistics: like PyTorch you may
#   create them as float32 (`torch.zeros(C)`, `torch.ones(C)`) or as float64. The grader
#   converts them to float64 and compares them with a relative tolerance of 1e-6, which float32
#   rounding (about 6e-8 relative) always meets.
# * Optimizers take a list of tensors that carry `.grad`, and **update them in place**
#   (`p.sub_(...)`, `p -= ...`, `p.copy_(...)`): the caller keeps its own references to the
#   same tensors. The grader's tensors do not require grad; in the experiments they do, and
#   the experiments call `step()` inside `torch.no_grad()`.

# %%
import math

import torch

# %% [markdown]
# ## 1. Optimizers
#
# All four optimizers below share one idea from the course notes: an **exponentially weighted
# moving average** (EWMA) `S_t = rho * S_{t-1} + (1 - rho) * y_t`, which remembers the recent
# past with a weight that fades geometrically and costs one tensor of memory per parameter.
#
# **SGD with momentum.** Plain SGD steps along the current, noisy gradient. Momentum keeps a
# velocity `buf` and steps along it, so that directions where successive gradients agree add up
# and directions where they flip sign cancel out. PyTorch's version, for a gradient `g`:
#
# ```
# g   = g + weight_decay * p                       (L2 weight decay, optional)
# buf = g                                          on the first step for this parameter
# buf = momentum * buf + (1 - dampening) * g       afterwards
# g   = g + momentum * buf   if nesterov   else   buf
# p   = p - lr * g
# ```
#
# Two choices differ from textbook forms. The first step copies `g` into the buffer without
# dampening (a buffer started at zeros would make the first step `(1 - dampening) * g`). And
# the buffer is a sum, not an average: `momentum * buf + g` with `dampening = 0` makes the
# steady-state step `lr * g / (1 - momentum)`, ten times `lr * g` for momentum 0.9. The EWMA
# form `momentum * buf + (1 - momentum) * g` is the same direction with a smaller step:
# it is PyTorch's rule with `dampening = momentum` (apart from the undamped first step).
# Nesterov momentum looks one step ahead:
# it adds `momentum * buf` to the fresh gradient instead of using `buf` alone (PyTorch requires
# `momentum > 0` and `dampening = 0` with it; so do we, and the grader never asks otherwise).
#
# **RMSprop** scales each coordinate by the root of a moving average of its squared gradients:
# `v = alpha * v + (1 - alpha) * g**2` and `p = p - lr * g / (sqrt(v) + eps)`, with `v` starting
# at zeros. Coordinates with consistently large gradients take smaller steps. Note where `eps`
# sits: **outside** the square root, as PyTorch does (`sqrt(v + eps)` is another method).
#
# **Adam** combines both: a moving average of gradients `m` (momentum) and of squared gradients
# `v` (RMSprop), both started at zeros, with `t` the number of updates this parameter has had:
#
# ```
# g = g + weight_decay * p                         (L2, through the gradient)
# m = beta1 * m + (1 - beta1) * g
# v = beta2 * v + (1 - beta2) * g**2
# m_hat = m / (1 - beta1**t);   v_hat = v / (1 - beta2**t)
# p = p - lr * m_hat / (sqrt(v_hat) + eps)
# ```
#
# The **bias correction** undoes the zeros the averages started from: after one step
# `m = (1 - beta1) g`, a tenth of the gradient with `beta1 = 0.9`, and `m_hat = g`. The
# original paper writes an equivalent "efficient" form, `lr_t = lr * sqrt(1 - beta2**t) /
# (1 - beta1**t)` and `p -= lr_t * m / (sqrt(v) + eps)`, in which eps is added to the
# *uncorrected* `sqrt(v)`: that is a slightly different optimizer, not PyTorch's.
#
# **AdamW** decouples weight decay: before the Adam step it shrinks the parameter,
# `p = p * (1 - lr * weight_decay)`, and the decay never enters `g`, `m` or `v`. With Adam's L2
# form the decay term is divided by `sqrt(v_hat)` like the rest of the gradient, so weights with
# large gradients are barely decayed; AdamW decays every weight at the same rate. (Section 7 puts
# numbers on this.) AdamW's default `weight_decay` is 0.01, as in PyTorch.
#
# **State per parameter.** Every parameter keeps its own buffers and its own step count `t`. A
# parameter whose `.grad` is `None` (it took no part in this loss) is skipped entirely: it does
# not move, and its buffers and its step count do not change. The grader checks this with a
# parameter that has no gradient on some steps; a single step count shared by all parameters
# gets its bias correction wrong there.
#
# `zero_grad()` sets every parameter's `.grad` to `None`, as PyTorch does by default (setting
# them to zeros is accepted too).
#
# The base class `Optimizer` below stores the parameters and a dictionary for per-parameter
# state; use it or not, as you like.

# %% [raw]
# # BEGIN QUESTION
# name: q1
# points: 8

# %% [raw]
# # BEGIN SOLUTION

# %%
class Optimizer:
    """Keeps the parameters (a list of tensors that carry .grad) and per-parameter state."""

    def __init__(self, params):
        self.params = list(params)
        self.state = {}  # index of the parameter in self.params -> dict of its buffers

    def zero_grad(self):
        """Sets every parameter's .grad to None."""
        # BEGIN SOLUTION NO PROMPT
        for p in self.params:
            p.grad = None
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("Optimizer.zero_grad")
        """ # END PROMPT


class SGD(Optimizer):
    """SGD with momentum, dampening, L2 weight decay and Nesterov momentum (torch.optim.SGD)."""

    def __init__(self, params, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
        super().__init__(params)
        assert not nesterov or (momentum > 0 and dampening == 0), "Nesterov needs momentum > 0 and dampening = 0"
        self.lr = lr
        self.momentum = momentum
        self.dampening = dampening
        self.weight_decay = weight_decay
        self.nesterov = nesterov

    def step(self):
        """One update of every parameter whose .grad is not None, in place."""
        # BEGIN SOLUTION NO PROMPT
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            g = p.grad
            if self.weight_decay != 0:
                g = g + self.weight_decay * p
            if self.momentum != 0:
                state = self.state.setdefault(i, {})
                if "momentum_buffer" not in state:
                    buf = g.clone()
                else:
                    buf = self.momentum * state["momentum_buffer"] + (1 - self.dampening) * g
                state["momentum_buffer"] = buf
                g = g + self.momentum * buf if self.nesterov else buf
            p.sub_(self.lr * g)
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("SGD.step")
        """ # END PROMPT


class RMSprop(Optimizer):
    """RMSprop (torch.optim.RMSprop without momentum and centering)."""

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0):
        super().__init__(params)
        self.lr = lr
        self.alpha = alpha
        self.eps = eps
        self.weight_decay = weight_decay

    def step(self):
        """One update of every parameter whose .grad is not None, in place."""
        # BEGIN SOLUTION NO PROMPT
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            g = p.grad
            if self.weight_decay != 0:
                g = g + self.weight_decay * p
            state = self.state.setdefault(i, {"square_avg": torch.zeros_like(p)})
            state["square_avg"] = self.alpha * state["square_avg"] + (1 - self.alpha) * g * g
            p.sub_(self.lr * g / (state["square_avg"].sqrt() + self.eps))
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("RMSprop.step")
        """ # END PROMPT


class Adam(Optimizer):
    """Adam with L2 weight decay through the gradient (torch.optim.Adam)."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params)
        self.lr = lr
        self.betas = betas
        self.eps = eps
        self.weight_decay = weight_decay

    def step(self):
        """One update of every parameter whose .grad is not None, in place; each parameter
        counts its own steps for the bias correction."""
        # BEGIN SOLUTION NO PROMPT
        beta1, beta2 = self.betas
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            g = p.grad
            if self.weight_decay != 0:
                g = g + self.weight_decay * p
            state = self.state.setdefault(i, {"t": 0, "m": torch.zeros_like(p), "v": torch.zeros_like(p)})
            state["t"] += 1
            state["m"] = beta1 * state["m"] + (1 - beta1) * g
            state["v"] = beta2 * state["v"] + (1 - beta2) * g * g
            m_hat = state["m"] / (1 - beta1 ** state["t"])
            v_hat = state["v"] / (1 - beta2 ** state["t"])
            p.sub_(self.lr * m_hat / (v_hat.sqrt() + self.eps))
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("Adam.step")
        """ # END PROMPT


class AdamW(Optimizer):
    """Adam with decoupled weight decay (torch.optim.AdamW)."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(params)
        self.lr = lr
        self.betas = betas
        self.eps = eps
        self.weight_decay = weight_decay

    def step(self):
        """p *= (1 - lr * weight_decay), then Adam's update on the gradient alone, for every
        parameter whose .grad is not None; each parameter counts its own steps."""
        # BEGIN SOLUTION NO PROMPT
        beta1, beta2 = self.betas
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            g = p.grad
            p.mul_(1 - self.lr * self.weight_decay)
            state = self.state.setdefault(i, {"t": 0, "m": torch.zeros_like(p), "v": torch.zeros_like(p)})
            state["t"] += 1
            state["m"] = beta1 * state["m"] + (1 - beta1) * g
            state["v"] = beta2 * state["v"] + (1 - beta2) * g * g
            m_hat = state["m"] / (1 - beta1 ** state["t"])
            v_hat = state["v"] / (1 - beta2 ** state["t"])
            p.sub_(self.lr * m_hat / (v_hat.sqrt() + self.eps))
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("AdamW.step")
        """ # END PROMPT

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
w = torch.tensor([1.0, -2.0], dtype=torch.float64)
sgd = SGD([w], lr=0.5, momentum=0.9)
w.grad = torch.tensor([1.0, 1.0], dtype=torch.float64)
sgd.step()
assert not torch.equal(w, torch.tensor([1.0, -2.0], dtype=torch.float64)), "SGD.step did not move the caller's tensor w: update each parameter in place (p.sub_(...), p -= ...), do not rebind it"
assert torch.allclose(w, torch.tensor([0.5, -2.5], dtype=torch.float64)), "SGD: the first momentum step is p - lr * g (the buffer starts as g itself)"
sgd.step()
assert torch.allclose(w, torch.tensor([-0.45, -3.45], dtype=torch.float64)), "SGD: the second step uses buf = 0.9 * g + g = 1.9 (update p in place)"
sgd.zero_grad()
assert w.grad is None or (w.grad == 0).all(), "zero_grad clears .grad"

# %%
# Hand-computable cases (lr = 0.5, momentum = 0.5: exact in binary), two steps each.
def trajectory(optimizer_class, start, grads, **options):
    """The parameter after each step of optimizer_class([p], **options) fed the given gradients."""
    p = torch.tensor(start, dtype=torch.float64)
    optimizer = optimizer_class([p], **options)
    steps = []
    for g in grads:
        p.grad = torch.tensor(g, dtype=torch.float64)
        optimizer.step()
        steps.append(p.tolist())
    return torch.tensor(steps, dtype=torch.float64)


def sgd_trajectory(start, grads, **options):
    return trajectory(SGD, start, grads, lr=0.5, momentum=0.5, **options)

# buf = g = [1, 2]; step along g + 0.5 * buf = [1.5, 3]; then buf = 0.5 * buf + g = [1.5, 3], step [1.75, 3.5]
steps = sgd_trajectory([1.0, -1.0], [[1.0, 2.0], [1.0, 2.0]], nesterov=True)
assert torch.allclose(steps, torch.tensor([[0.25, -2.5], [-0.625, -4.25]], dtype=torch.float64), atol=1e-12), "SGD nesterov: the step is g + momentum * buf (the fresh gradient plus the look-ahead), not buf alone"
# g = 1 + 0.5 * p enters the buffer: g = 2, buf = 2, p = 1; then g = 1.5, buf = 0.5 * 2 + 1.5 = 2.5, p = -0.25
steps = sgd_trajectory([2.0], [[1.0], [1.0]], weight_decay=0.5)
assert torch.allclose(steps, torch.tensor([[1.0], [-0.25]], dtype=torch.float64), atol=1e-12), "SGD weight decay: add weight_decay * p to the gradient BEFORE the momentum buffer (g = g + weight_decay * p, then buf = momentum * buf + (1 - dampening) * g)"
# first step buf = g = 1 (no dampening), p = -0.5; then buf = 0.5 * 1 + (1 - 0.5) * 1 = 1, p = -1
steps = sgd_trajectory([0.0], [[1.0], [1.0]], dampening=0.5)
assert torch.allclose(steps, torch.tensor([[-0.5], [-1.0]], dtype=torch.float64), atol=1e-12), "SGD dampening: the first step copies g into the buffer undamped (buf = g), so it is p - lr * g; dampening applies from the second step on"

# %%
w = torch.tensor([3.0], dtype=torch.float64)
adam = Adam([w], lr=0.1)
for _ in range(3):
    w.grad = torch.tensor([-4.0], dtype=torch.float64)
    adam.step()
assert abs(w.item() - 3.3) < 1e-6, "Adam: with bias correction each step on a constant gradient moves p by lr (here 0.1 up, three times)"
# m = 0.5 * [2, -2] = [1, -1], v = 0.25 * [4, 4] = [1, 1]; m_hat = [2, -2], v_hat = [4, 4]; step 0.5 * m_hat / (2 + 1)
w = torch.tensor([0.0, 1.0], dtype=torch.float64)
adam = Adam([w], lr=0.5, betas=(0.5, 0.75), eps=1.0)
w.grad = torch.tensor([2.0, -2.0], dtype=torch.float64)
adam.step()
assert torch.allclose(w, torch.tensor([-1.0 / 3.0, 4.0 / 3.0], dtype=torch.float64), atol=1e-12), "Adam: eps is added to sqrt(v_hat), the BIAS-CORRECTED average: p -= lr * m_hat / (sqrt(v_hat) + eps) (the paper's efficient form adds eps to the uncorrected sqrt(v))"

# %%
a, b = torch.tensor([1.0], dtype=torch.float64), torch.tensor([1.0], dtype=torch.float64)
adam_l2, adamw = Adam([a], lr=0.1, weight_decay=0.5), AdamW([b], lr=0.1, weight_decay=0.5)
a.grad, b.grad = torch.tensor([0.0], dtype=torch.float64), torch.tensor([0.0], dtype=torch.float64)
adam_l2.step()
adamw.step()
assert abs(a.item() - 0.9) < 1e-6, "Adam: L2 decay enters the gradient (g = 0 + 0.5 * 1), then a normalized step of about lr"
assert abs(b.item() - 0.95) < 1e-9, "AdamW: p *= (1 - lr * weight_decay) = 0.95, and a zero gradient adds no Adam step"
c = torch.tensor([1.0], dtype=torch.float64)
adamw = AdamW([c], lr=0.1, weight_decay=0.5)
c.grad = torch.tensor([2.0], dtype=torch.float64)
adamw.step()
assert abs(c.item() - 0.85) < 1e-6, "AdamW: decay first, p *= (1 - lr * weight_decay) = 0.95, then Adam's first step, about lr = 0.1 against the gradient: 0.85 (decaying after the step gives 0.855)"

# %%
first, late = torch.tensor([0.0], dtype=torch.float64), torch.tensor([0.0], dtype=torch.float64)
adam = Adam([first, late], lr=0.1)
first.grad = torch.tensor([1.0], dtype=torch.float64)
adam.step()  # late has no gradient yet: it is skipped, and its step count stays 0
late.grad = torch.tensor([1.0], dtype=torch.float64)
adam.step()
assert abs(late.item() + 0.1) < 1e-6, "Adam: each parameter counts its own steps; `late` got its first gradient at the second step, so its bias-corrected first step moves it by lr = 0.1 (one counter shared by all parameters moves it by about 0.074)"

# %%
p, q = torch.tensor([1.0, 2.0], dtype=torch.float64), torch.tensor([5.0], dtype=torch.float64)
rms = RMSprop([p, q], lr=0.01, alpha=0.5, eps=0.0)
p.grad = torch.tensor([2.0, -1.0], dtype=torch.float64)
rms.step()
assert torch.allclose(p, torch.tensor([1.0 - 0.01 * 2 / math.sqrt(2.0), 2.0 + 0.01 / math.sqrt(0.5)], dtype=torch.float64)), "RMSprop: v = 0.5 * 0 + 0.5 * g**2, p -= lr * g / (sqrt(v) + eps)"
assert q.item() == 5.0, "a parameter whose .grad is None is skipped"

# %%
# Hand-computable RMSprop cases (lr = 0.5, alpha = 0.75: v = 0.25 * g**2 on the first step).
def rms_trajectory(start, grads, **options):
    return trajectory(RMSprop, start, grads, lr=0.5, alpha=0.75, **options)

# v = 0.25 * [4, 16] = [1, 4], p -= 0.5 * [2, -4] / [1, 2]; then v = 0.75 * [1, 4] + 0.25 * [4, 16] = [1.75, 7]
expected = torch.tensor([[0.0, 2.0], [-1.0 / math.sqrt(1.75), 2.0 + 2.0 / math.sqrt(7.0)]], dtype=torch.float64)
assert torch.allclose(rms_trajectory([1.0, 1.0], [[2.0, -4.0], [2.0, -4.0]], eps=0.0), expected, atol=1e-12), "RMSprop: v = alpha * v + (1 - alpha) * g**2: alpha weights the OLD average (with alpha = 0.75 the first v is 0.25 * g**2)"
# v = 0.25 * 4 = 1, p -= 0.5 * 2 / (sqrt(1) + 1) = 0.5
assert torch.allclose(rms_trajectory([0.0], [[2.0]], eps=1.0), torch.tensor([[-0.5]], dtype=torch.float64), atol=1e-12), "RMSprop: eps is added OUTSIDE the square root, g / (sqrt(v) + eps)"
# g = 1 + 0.5 * 1 = 1.5, v = 0.25 * 2.25 = 0.5625, p -= 0.5 * 1.5 / 0.75 = 1
assert torch.allclose(rms_trajectory([1.0], [[1.0]], eps=0.0, weight_decay=0.5), torch.tensor([[0.0]], dtype=torch.float64), atol=1e-12), "RMSprop weight decay: add weight_decay * p to the gradient first (g = g + weight_decay * p); v and the scaled step both use that g"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# ## 2. Initialization: Xavier and Kaiming
#
# Take a linear unit `y_j = sum_i x_i W_ij` with `fan_in` inputs, weights drawn independently
# with mean 0 and variance `Var(W)`, independent of inputs with second moment `E[x^2]`. Then
# `Var(y_j) = fan_in * Var(W) * E[x^2]`: every layer multiplies the signal's scale by
# `fan_in * Var(W)` (and by another factor for the activation). Ten layers with a factor of 2
# multiply it by 1024; with a factor of 0.5, by 1/1024. The gradients flow back through the
# same matrices, with `fan_out` in place of `fan_in`. Initialization picks `Var(W)` so that the
# factor is 1.
#
# * **Xavier (Glorot)**, for activations that are roughly linear around 0 (tanh, sigmoid): a
#   compromise between the forward (`fan_in`) and backward (`fan_out`) conditions,
#   `Var(W) = gain^2 * 2 / (fan_in + fan_out)`.
# * **Kaiming (He)**, for ReLU: a ReLU zeroes half of a symmetric input, so it halves the second
#   moment, `E[relu(z)^2] = Var(z) / 2`; the gain `sqrt(2)` gives it back:
#   `Var(W) = gain^2 / fan_in` (the "fan_in mode", PyTorch's default).
#
# The gains are PyTorch's (`torch.nn.init.calculate_gain`): 1 for `"linear"` and `"sigmoid"`,
# 5/3 for `"tanh"`, `sqrt(2)` for `"relu"`. A uniform distribution on `[-a, a]` has variance
# `a^2 / 3`, so the uniform versions draw from `[-sqrt(3) std, sqrt(3) std]`:
#
# | function | distribution |
# |---|---|
# | `xavier_uniform_(tensor, gain=1.0, generator=None)` | `U(-a, a)`, `a = gain * sqrt(6 / (fan_in + fan_out))` |
# | `xavier_normal_(tensor, gain=1.0, generator=None)` | `N(0, std^2)`, `std = gain * sqrt(2 / (fan_in + fan_out))` |
# | `kaiming_uniform_(tensor, nonlinearity="relu", generator=None)` | `U(-b, b)`, `b = gain * sqrt(3 / fan_in)` |
# | `kaiming_normal_(tensor, nonlinearity="relu", generator=None)` | `N(0, std^2)`, `std = gain / sqrt(fan_in)` |
#
# **Fans and layouts.** These functions follow PyTorch's layout for weights: `(out, in)` for a
# linear layer and `(out, in, *kernel)` for a convolution. Each output of a convolution sums
# over `in * prod(kernel)` inputs, and each input feeds `out * prod(kernel)` outputs, so
# `fan_in = shape[1] * prod(shape[2:])` and `fan_out = shape[0] * prod(shape[2:])`.
# `calculate_fans(tensor)` returns `(fan_in, fan_out)` (tensors of at least 2 dimensions).
# Careful: chapter 01's `Linear` stores its weight as `(in, out)`, the transpose of PyTorch's
# layout: to initialize it with these functions, initialize a `(out, in)` tensor and transpose
# it, or pass `weight.T` (a view: filling it in place fills the weight).
#
# Every function fills `tensor` **in place** and returns that same tensor (the trailing
# underscore is PyTorch's naming convention for in-place operations), and draws from
# `generator` when one is given (`torch.rand(shape, generator=generator, dtype=tensor.dtype)`,
# or `tensor.uniform_(a, b, generator=generator)`, `tensor.normal_(0, std, generator=generator)`).
# How to grade a random function? The grader draws tensors of 40,000 to 51,200 entries and
# tests, for the uniform ones, that no value exceeds the bound and that both ends of
# `[-a, a]` are reached to within a fraction `57 / n` of `a`; for the normal ones, that
# `mean(x^2)` is within about 5% of `std^2` and that the mean is near 0 (a correct draw fails
# these with probability below 1e-12). It also checks that the same seed gives the same values.

# %% [raw]
# # BEGIN QUESTION
# name: q2
# points: 7

# %% [raw]
# # BEGIN SOLUTION

# %%
GAINS = {"linear": 1.0, "sigmoid": 1.0, "tanh": 5.0 / 3.0, "relu": math.sqrt(2.0)}


def calculate_fans(tensor):
    """tensor: (out, in, *kernel), at least 2 dimensions -> (fan_in, fan_out) as Python ints."""
    assert tensor.ndim >= 2, f"fans need at least 2 dimensions, got shape {tuple(tensor.shape)}"
    # BEGIN SOLUTION NO PROMPT
    receptive = math.prod(tensor.shape[2:])
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive
    # END SOLUTION
    """ # BEGIN PROMPT
    raise NotImplementedError("calculate_fans")
    """ # END PROMPT


def xavier_uniform_(tensor, gain=1.0, generator=None):
    """Fills tensor (out, in, *kernel) in place from U(-a, a), a = gain * sqrt(6 / (fan_in + fan_out)); returns it."""
    # BEGIN SOLUTION NO PROMPT
    fan_in, fan_out = calculate_fans(tensor)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return tensor.uniform_(-bound, bound, generator=generator)
    # END SOLUTION
    """ # BEGIN PROMPT
    raise NotImplementedError("xavier_uniform_")
    """ # END PROMPT


def xavier_normal_(tensor, gain=1.0, generator=None):
    """Fills tensor in place from N(0, std^2), std = gain * sqrt(2 / (fan_in + fan_out)); returns it."""
    # BEGIN SOLUTION NO PROMPT
    fan_in, fan_out = calculate_fans(tensor)
    return tensor.normal_(0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), generator=generator)
    # END SOLUTION
    """ # BEGIN PROMPT
    raise NotImplementedError("xavier_normal_")
    """ # END PROMPT


def kaiming_uniform_(tensor, nonlinearity="relu", generator=None):
    """Fills tensor in place from U(-b, b), b = gain * sqrt(3 / fan_in); returns it."""
    assert nonlinearity in GAINS, f"nonlinearity must be one of {sorted(GAINS)}, got {nonlinearity!r}"
    # BEGIN SOLUTION NO PROMPT
    fan_in, _ = calculate_fans(tensor)
    bound = GAINS[nonlinearity] * math.sqrt(3.0 / fan_in)
    return tensor.uniform_(-bound, bound, generator=generator)
    # END SOLUTION
    """ # BEGIN PROMPT
    raise NotImplementedError("kaiming_uniform_")
    """ # END PROMPT


def kaiming_normal_(tensor, nonlinearity="relu", generator=None):
    """Fills tensor in place from N(0, std^2), std = gain / sqrt(fan_in); returns it."""
    assert nonlinearity in GAINS, f"nonlinearity must be one of {sorted(GAINS)}, got {nonlinearity!r}"
    # BEGIN SOLUTION NO PROMPT
    fan_in, _ = calculate_fans(tensor)
    return tensor.normal_(0.0, GAINS[nonlinearity] / math.sqrt(fan_in), generator=generator)
    # END SOLUTION
    """ # BEGIN PROMPT
    raise NotImplementedError("kaiming_normal_")
    """ # END PROMPT

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
assert tuple(calculate_fans(torch.empty(3, 5))) == (5, 3), "a (out, in) weight has fan_in = in = 5 and fan_out = out = 3"
assert tuple(calculate_fans(torch.empty(8, 4, 3, 3))) == (36, 72), "a (out, in, kh, kw) kernel: fan_in = in * kh * kw, fan_out = out * kh * kw"

# %%
weight = torch.empty(200, 300, dtype=torch.float64)
result = xavier_uniform_(weight, generator=torch.Generator().manual_seed(0))
assert result is weight, "fill the tensor in place and return that same tensor"
bound = math.sqrt(6.0 / 500)
assert weight.abs().max() <= bound and weight.abs().max() > 0.99 * bound, "xavier_uniform_: values fill [-a, a] with a = sqrt(6 / (fan_in + fan_out))"
again = xavier_uniform_(torch.empty(200, 300, dtype=torch.float64), generator=torch.Generator().manual_seed(0))
assert torch.equal(weight, again), "the same seed must give the same values: draw from `generator`"

# %%
weight = kaiming_normal_(torch.empty(100, 50, 3, 3, dtype=torch.float64), generator=torch.Generator().manual_seed(1))
assert abs(weight.std().item() / math.sqrt(2.0 / 450) - 1) < 0.02, "kaiming_normal_ (relu): std = sqrt(2 / fan_in), fan_in = 50 * 3 * 3"
weight = xavier_normal_(torch.empty(100, 400, dtype=torch.float64), gain=2.0, generator=torch.Generator().manual_seed(2))
assert abs(weight.std().item() / (2.0 * math.sqrt(2.0 / 500)) - 1) < 0.02, "xavier_normal_: std = gain * sqrt(2 / (fan_in + fan_out))"
weight = kaiming_uniform_(torch.empty(64, 400, dtype=torch.float64), nonlinearity="tanh", generator=torch.Generator().manual_seed(3))
assert abs(weight.abs().max().item() / (5.0 / 3.0 * math.sqrt(3.0 / 400)) - 1) < 0.01, "kaiming_uniform_ (tanh): bound = 5/3 * sqrt(3 / fan_in)"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# ## 3. Dropout
#
# During training, dropout sets each activation to zero with probability `p`, independently,
# and draws a new pattern every forward pass: no unit can rely on one particular other unit
# being there, and the network behaves like an average of many thinned networks that share
# their weights. At test time nothing is dropped, so the expected activation must match:
# PyTorch (and we) use **inverted dropout**, which divides the kept activations by `1 - p`
# during training so that `E[y] = x`, and makes evaluation the identity. (The older form
# multiplies by `1 - p` at test time instead; same expectation, more work at test time.)
#
# `Dropout(p)`: `p` is the probability of **dropping** (PyTorch's meaning), `0 <= p < 1`.
# * `forward(x, generator=None)` in training mode: `mask` is 1 with probability `1 - p`, drawn
#   from `generator` when given (else from the global generator), for example
#   `torch.rand(x.shape, generator=generator, dtype=x.dtype) >= p`; returns
#   `x * mask / (1 - p)`. Any shape.
# * `backward(dupstream)`: the forward is a multiplication by the constant `mask / (1 - p)`,
#   so `dx = dupstream * mask / (1 - p)` with the **same** mask as the last forward.
# * `train()` and `eval()` switch the mode (training at creation). In eval mode forward returns
#   `x` unchanged and backward returns `dupstream`.
#
# Graded statistically: kept values must equal `x / (1 - p)` exactly, and the kept fraction must
# be within about 0.02 of `1 - p` on 40,000 or more values (Hoeffding's inequality: a correct
# draw fails with probability below 1e-12); two calls in a row must use different masks.

# %% [raw]
# # BEGIN QUESTION
# name: q3
# points: 4

# %% [raw]
# # BEGIN SOLUTION

# %%
class Dropout:
    """Inverted dropout. forward: x (any shape) -> same shape; backward likewise."""

    def __init__(self, p=0.5):
        assert 0.0 <= p < 1.0, f"p is the probability of dropping, in [0, 1); got {p}"
        self.p = p
        self.training = True
        # BEGIN SOLUTION NO PROMPT
        self.scale = None
        # END SOLUTION

    def train(self):
        self.training = True
        return self

    def eval(self):
        self.training = False
        return self

    def forward(self, x, generator=None):
        # BEGIN SOLUTION NO PROMPT
        if not self.training:
            self.scale = None
            return x.clone()
        keep = torch.rand(x.shape, generator=generator, dtype=x.dtype) >= self.p
        self.scale = keep.to(x.dtype) / (1.0 - self.p)
        return x * self.scale
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("Dropout.forward")
        """ # END PROMPT

    def backward(self, dupstream):
        # BEGIN SOLUTION NO PROMPT
        if self.scale is None:
            return dupstream.clone()
        return dupstream * self.scale
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("Dropout.backward")
        """ # END PROMPT

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
layer = Dropout(0.25)
x = torch.full((400, 500), 3.0, dtype=torch.float64)
y = layer.forward(x, generator=torch.Generator().manual_seed(0))
kept = y != 0
assert torch.allclose(y[kept], torch.tensor(4.0, dtype=torch.float64)), "kept values are divided by 1 - p: 3 / 0.75 = 4"
assert abs(kept.double().mean().item() - 0.75) < 0.01, "p is the probability of dropping: about 75% of the values are kept"
dy = torch.ones_like(x)
assert torch.equal(layer.backward(dy) != 0, kept), "backward uses the same mask as the last forward"

# %%
layer = Dropout(0.5).eval()
x = torch.randn(4, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
assert torch.equal(layer.forward(x), x), "in eval mode dropout is the identity"
assert (layer.train().forward(x) == 0).any(), "train() switches dropping back on"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# ## 4. Batch normalization
#
# A layer's input distribution shifts as the layers before it learn. Batch normalization
# standardizes every feature over the batch and then lets the network choose the scale and
# shift it wants, with learnable `weight` (gamma) and `bias` (beta), one per feature. For
# `x` of shape `(N, C)`, in training mode:
#
# ```
# mean = x.mean(0)                           (C,)
# var  = ((x - mean)**2).mean(0)             (C,)  biased: divided by N
# x_hat = (x - mean) / sqrt(var + eps)       (N, C)
# y = weight * x_hat + bias                  (N, C)
# ```
#
# **Running statistics.** At test time a prediction must not depend on the other examples in
# the batch, so the layer keeps exponential averages during training and normalizes with them
# in eval mode: `running_mean = (1 - momentum) * running_mean + momentum * mean`, and the same
# for `running_var` with the **unbiased** batch variance `var * N / (N - 1)` (PyTorch's choice:
# normalization uses the biased variance of the batch, the running estimate of the population
# variance uses the unbiased one). They start at zeros and ones. Note PyTorch's `momentum` is
# the weight of the *new* value: 0.1 keeps 90% of the old average. The layer has `2C`
# parameters and `2C` running statistics (section 7).
#
# **Backward.** Let `dy` be the upstream gradient. `grad_bias = dy.sum(0)` and
# `grad_weight = (dy * x_hat).sum(0)`. For `dx`, each `x[n, c]` reaches the loss directly and
# through the batch's mean and variance of feature `c`. Collecting the three paths gives the
# compact formula
#
# ```
# dx = weight / (N * sqrt(var + eps)) * (N * dy - dy.sum(0) - x_hat * (dy * x_hat).sum(0))
# ```
#
# The two subtracted terms come from the mean and the variance: dropping them (treating mean
# and var as constants) gives a wrong gradient. A check on numbers: with `N = 2`,
# `x_hat = [[-1], [1]]` (when eps is negligible) whatever `x` is, so `y` does not depend on `x`
# and `dx` must be about 0; the formula gives `(2 dy - (dy_1 + dy_2) - x_hat (dy_2 - dy_1))` per
# entry, which is 0.
#
# `BatchNorm1d(num_features, eps=1e-5, momentum=0.1)`: attributes `weight`, `bias` (ones and
# zeros at creation), `grad_weight`, `grad_bias`, `running_mean`, `running_var`; methods
# `train()`, `eval()`, `forward(x)` and `backward(dupstream)` (training mode). In eval mode,
# forward normalizes with the running statistics and does not change them. The grader calls
# forward and backward on three batches in a row, grades the last one, then the running
# statistics, then eval mode, with features whose scales range from 1e-3 to 1e3 and batches of
# 2. See the dtype policy at the top for the running statistics.

# %% [raw]
# # BEGIN QUESTION
# name: q4
# points: 5

# %% [raw]
# # BEGIN SOLUTION

# %%
class BatchNorm1d:
    """Batch normalization of (N, C) inputs over the batch dimension."""

    def __init__(self, num_features, eps=1e-5, momentum=0.1):
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.weight = torch.ones(num_features, dtype=torch.float64)
        self.bias = torch.zeros(num_features, dtype=torch.float64)
        self.grad_weight = torch.zeros_like(self.weight)
        self.grad_bias = torch.zeros_like(self.bias)
        self.training = True
        # BEGIN SOLUTION NO PROMPT
        self.running_mean = torch.zeros(num_features, dtype=torch.float64)
        self.running_var = torch.ones(num_features, dtype=torch.float64)
        # END SOLUTION
        """ # BEGIN PROMPT
        # create self.running_mean and self.running_var here
        """ # END PROMPT

    def train(self):
        self.training = True
        return self

    def eval(self):
        self.training = False
        return self

    def forward(self, x):
        """x: (N, C) -> y: (N, C)."""
        assert x.ndim == 2 and x.shape[1] == self.num_features, \
            f"BatchNorm1d.forward expects (N, {self.num_features}), got {tuple(x.shape)}"
        assert not self.training or x.shape[0] > 1, "training mode needs at least 2 examples per batch"
        # BEGIN SOLUTION NO PROMPT
        if self.training:
            n = x.shape[0]
            mean = x.mean(dim=0)
            var = ((x - mean) ** 2).mean(dim=0)
            m = self.momentum
            self.running_mean = (1 - m) * self.running_mean + m * mean
            self.running_var = (1 - m) * self.running_var + m * var * n / (n - 1)
        else:
            mean, var = self.running_mean, self.running_var
        inv_std = 1.0 / torch.sqrt(var + self.eps)
        x_hat = (x - mean) * inv_std
        self.cache = (x_hat, inv_std)
        return self.weight * x_hat + self.bias
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("BatchNorm1d.forward")
        """ # END PROMPT

    def backward(self, dupstream):
        """dupstream: (N, C) -> dx: (N, C); sets grad_weight and grad_bias (C,)."""
        assert dupstream.ndim == 2 and dupstream.shape[1] == self.num_features, \
            f"BatchNorm1d.backward expects (N, {self.num_features}), got {tuple(dupstream.shape)}"
        # BEGIN SOLUTION NO PROMPT
        x_hat, inv_std = self.cache
        n = dupstream.shape[0]
        self.grad_weight = (dupstream * x_hat).sum(dim=0)
        self.grad_bias = dupstream.sum(dim=0)
        return (self.weight * inv_std / n) * (n * dupstream - self.grad_bias - x_hat * self.grad_weight)
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("BatchNorm1d.backward")
        """ # END PROMPT

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
bn = BatchNorm1d(2)
x = torch.tensor([[1.0, 10.0], [3.0, 30.0], [5.0, 50.0]], dtype=torch.float64)
y = bn.forward(x)
assert torch.allclose(y.mean(0), torch.zeros(2, dtype=torch.float64), atol=1e-9), "training mode: each feature has mean 0 over the batch"
assert torch.allclose(y.pow(2).mean(0), torch.ones(2, dtype=torch.float64), atol=1e-4), "training mode: biased variance 1 (up to eps)"
assert torch.allclose(torch.as_tensor(bn.running_mean, dtype=torch.float64), torch.tensor([0.3, 3.0], dtype=torch.float64)), "running_mean = 0.9 * 0 + 0.1 * batch mean"
assert torch.allclose(torch.as_tensor(bn.running_var, dtype=torch.float64), torch.tensor([0.9 + 0.1 * 4.0, 0.9 + 0.1 * 400.0], dtype=torch.float64)), "running_var = 0.9 * 1 + 0.1 * the UNBIASED batch variance (4 and 400 here)"
bn.eval()
x_new = torch.tensor([[0.3, 3.0], [1.6, 9.0], [-1.0, 0.0]], dtype=torch.float64)
running = [torch.as_tensor(s, dtype=torch.float64).clone() for s in (bn.running_mean, bn.running_var)]
y_new = bn.forward(x_new)
assert torch.allclose(y_new, (x_new - running[0]) / torch.sqrt(running[1] + 1e-5)), "eval mode normalizes with running_mean and running_var, not with the mean and variance of the batch it is given"
assert all(torch.equal(torch.as_tensor(s, dtype=torch.float64), r) for s, r in zip((bn.running_mean, bn.running_var), running)), "eval mode does not change the running statistics"

# %%
from student.gradcheck import check_layer_gradients
bn = BatchNorm1d(3)
bn.weight = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
bn.bias = torch.tensor([0.1, 0.2, 0.3], dtype=torch.float64)
errors = check_layer_gradients(bn, torch.randn(5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 3 + 1, verbose=False)
# Batch norm's dx is a small difference of large terms (its entries sum to zero), so central
# differences reach only about 1e-6 relative error on it; a wrong formula is off by 1e-2 or more.
assert max(errors.values()) < 1e-4, f"BatchNorm1d.backward disagrees with numerical gradients, relative errors: {errors}"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# ## 5. Layer normalization
#
# Batch-norm's statistics couple the examples of a batch: it fails with batches of 1, and for
# sequences of varying length the "batch statistics" of one position are ill-defined. Layer
# normalization computes the statistics **per example**, over its features, and behaves the
# same in training and evaluation (there are no running statistics). It is the normalization
# of transformers.
#
# `LayerNorm(normalized_shape, eps=1e-5)`: `normalized_shape` is an int or a tuple naming the
# trailing dimensions to normalize over. For `x` of shape `(..., *normalized_shape)` the mean
# and the biased variance are taken over the last `len(normalized_shape)` dimensions, for each
# index of the leading dimensions; `y = weight * x_hat + bias` with `weight` and `bias` of
# shape `normalized_shape` (ones and zeros at creation), elementwise. Examples: `(N, D)` with
# `normalized_shape = D`; `(N, T, D)` with `(D,)` normalizes each time step of each sequence;
# `(N, C, H, W)` with `(C, H, W)` normalizes each image as a whole.
#
# Backward: with `M = prod(normalized_shape)` the number of entries normalized together, and
# `g = dy * weight`, the batch-norm derivation applied to one example's `M` entries gives
# `dx = inv_std / M * (M * g - sum(g) - x_hat * sum(g * x_hat))`, the sums over the
# normalized dimensions (keepdim). `grad_weight = (dy * x_hat)` and `grad_bias = dy`, each
# summed over **all leading dimensions**, so they have the shape `normalized_shape`.

# %% [raw]
# # BEGIN QUESTION
# name: q5
# points: 3

# %% [raw]
# # BEGIN SOLUTION

# %%
class LayerNorm:
    """Normalizes each example over its last len(normalized_shape) dimensions."""

    def __init__(self, normalized_shape, eps=1e-5):
        if isinstance(normalized_shape, int):
            normalized_shape = (normalized_shape,)
        self.normalized_shape = tuple(normalized_shape)
        self.eps = eps
        self.weight = torch.ones(self.normalized_shape, dtype=torch.float64)
        self.bias = torch.zeros(self.normalized_shape, dtype=torch.float64)
        self.grad_weight = torch.zeros_like(self.weight)
        self.grad_bias = torch.zeros_like(self.bias)

    def forward(self, x):
        """x: (..., *normalized_shape) -> y: same shape."""
        k = len(self.normalized_shape)
        assert tuple(x.shape[x.ndim - k:]) == self.normalized_shape and x.ndim > k, \
            f"LayerNorm.forward expects (..., {self.normalized_shape}), got {tuple(x.shape)}"
        # BEGIN SOLUTION NO PROMPT
        dims = tuple(range(x.ndim - k, x.ndim))
        mean = x.mean(dim=dims, keepdim=True)
        var = ((x - mean) ** 2).mean(dim=dims, keepdim=True)
        inv_std = 1.0 / torch.sqrt(var + self.eps)
        x_hat = (x - mean) * inv_std
        self.cache = (x_hat, inv_std)
        return self.weight * x_hat + self.bias
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("LayerNorm.forward")
        """ # END PROMPT

    def backward(self, dupstream):
        """dupstream: shape of x -> dx; sets grad_weight and grad_bias (normalized_shape)."""
        # BEGIN SOLUTION NO PROMPT
        x_hat, inv_std = self.cache
        k = len(self.normalized_shape)
        dims = tuple(range(dupstream.ndim - k, dupstream.ndim))
        leading = tuple(range(dupstream.ndim - k))
        self.grad_weight = (dupstream * x_hat).sum(dim=leading)
        self.grad_bias = dupstream.sum(dim=leading)
        g = dupstream * self.weight
        m = math.prod(self.normalized_shape)
        return (inv_std / m) * (m * g - g.sum(dim=dims, keepdim=True) - x_hat * (g * x_hat).sum(dim=dims, keepdim=True))
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("LayerNorm.backward")
        """ # END PROMPT

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
ln = LayerNorm((2, 3))
x = torch.arange(24, dtype=torch.float64).reshape(4, 2, 3) ** 1.5
y = ln.forward(x)
assert y.shape == x.shape, f"LayerNorm keeps the shape, expected {tuple(x.shape)}, got {tuple(y.shape)}"
assert torch.allclose(y.mean(dim=(1, 2)), torch.zeros(4, dtype=torch.float64), atol=1e-9), "each example has mean 0 over its last two dimensions (not over the batch)"
# one example whose rows are [0, 0, 0] and [1, 1, 1]: over its 6 entries mean 0.5 and variance 0.25
y = LayerNorm((2, 3)).forward(torch.tensor([[[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]]], dtype=torch.float64))
assert torch.allclose(y, torch.tensor([[[-1.0] * 3, [1.0] * 3]], dtype=torch.float64), atol=1e-4), "LayerNorm((2, 3)) normalizes each example over BOTH trailing dimensions together (6 entries), not each row of 3 separately"

# %%
from student.gradcheck import check_layer_gradients
ln = LayerNorm(4)
ln.weight = torch.tensor([0.5, -1.0, 2.0, 1.5], dtype=torch.float64)
ln.bias = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64)
errors = check_layer_gradients(ln, torch.randn(3, 2, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0)), verbose=False)
assert max(errors.values()) < 1e-6, f"LayerNorm.backward disagrees with numerical gradients, relative errors: {errors}"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# ## 6. Penalties, early stopping and learning-rate schedules
#
# **Parameter-norm penalties.** Generalization bounds grow with the size of the weights, so
# we prefer small ones: add `lambda * Omega(w)` to the loss.
# * L2 (ridge, "weight decay"): `l2_penalty(params)` returns `0.5 * sum(p**2)` over every entry
#   of every tensor, and its gradient, `p` itself, one tensor per parameter. It shrinks every
#   weight in proportion to its size.
# * L1 (lasso): `l1_penalty(params)` returns `sum(|p|)` and its gradient `sign(p)`, which we take
#   to be 0 at exactly 0 (`torch.sign` does). It pulls every weight towards 0 at the same rate,
#   so small weights reach exactly 0: L1 produces sparse weights.
#
# Both take a list of tensors and return `(value, grads)`: a 0-dimensional tensor and a list
# of tensors of the parameters' shapes. They must not change the parameters.
#
# **Early stopping.** Training error keeps falling while validation error eventually rises.
# Stop when the validation metric has not improved for `patience` evaluations in a row, and
# keep the model of the best evaluation. `EarlyStopping(patience, min_delta=0.0, mode="max")`,
# for a metric where higher is better (`"max"`, accuracy) or lower is better (`"min"`, loss):
# * `step(metric)` returns True when training should stop: the number of calls **in a row**
#   without improvement has reached `patience`. The first call is always an improvement.
# * An improvement means `metric > best + min_delta` (mode `"max"`) or
#   `metric < best - min_delta` (mode `"min"`): a tie, or a gain of at most `min_delta`, is no
#   improvement and does not reset the count.
# * Attributes: `best` (the best metric so far) and `best_step` (0-based index of the call that
#   produced it), updated on every improvement.
#
# The grader feeds sequences with plateaus, ties and gains of exactly `min_delta` (values like
# 0.625 that are exact in binary), and stops calling `step` after the first True.
#
# **Learning-rate schedules.** Large steps early, small steps late. Two closed forms of PyTorch's
# schedulers, for a step counter `step = 0, 1, 2, ...` (`step_lr(0, ...)` is `base_lr`):
# * `step_lr(step, base_lr, step_size, gamma=0.1)` = `base_lr * gamma ** (step // step_size)`
#   (`StepLR`: divide by 10 every `step_size` steps);
# * `cosine_lr(step, base_lr, total_steps, min_lr=0.0)` =
#   `min_lr + (base_lr - min_lr) * (1 + cos(pi * step / total_steps)) / 2` for
#   `0 <= step <= total_steps` (`CosineAnnealingLR` with `T_max = total_steps`,
#   `eta_min = min_lr`): a half cosine from `base_lr` down to `min_lr`.
#
# Both return a Python float.

# %% [raw]
# # BEGIN QUESTION
# name: q6
# points: 5

# %% [raw]
# # BEGIN SOLUTION

# %%
def l2_penalty(params):
    """params: list of tensors -> (0.5 * sum of squares as a 0-dim tensor, [p for each p])."""
    # BEGIN SOLUTION NO PROMPT
    value = sum(0.5 * (p * p).sum() for p in params)
    return value, [p.clone() for p in params]
    # END SOLUTION
    """ # BEGIN PROMPT
    raise NotImplementedError("l2_penalty")
    """ # END PROMPT


def l1_penalty(params):
    """params: list of tensors -> (sum of absolute values as a 0-dim tensor, [sign(p) for each p])."""
    # BEGIN SOLUTION NO PROMPT
    value = sum(p.abs().sum() for p in params)
    return value, [torch.sign(p) for p in params]
    # END SOLUTION
    """ # BEGIN PROMPT
    raise NotImplementedError("l1_penalty")
    """ # END PROMPT


class EarlyStopping:
    """step(metric) -> True once `patience` calls in a row brought no improvement."""

    def __init__(self, patience, min_delta=0.0, mode="max"):
        assert mode in ("max", "min"), f"mode is 'max' or 'min', got {mode!r}"
        self.patience = patience
        self.min_delta = min_delta
        self.mode = mode
        self.best = None
        self.best_step = None
        # BEGIN SOLUTION NO PROMPT
        self.calls = 0
        self.bad_calls = 0
        # END SOLUTION

    def step(self, metric):
        # BEGIN SOLUTION NO PROMPT
        metric = float(metric)
        if self.best is None:
            improved = True
        elif self.mode == "max":
            improved = metric > self.best + self.min_delta
        else:
            improved = metric < self.best - self.min_delta
        if improved:
            self.best, self.best_step, self.bad_calls = metric, self.calls, 0
        else:
            self.bad_calls += 1
        self.calls += 1
        return self.bad_calls >= self.patience
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("EarlyStopping.step")
        """ # END PROMPT


def step_lr(step, base_lr, step_size, gamma=0.1):
    """StepLR's closed form -> float."""
    # BEGIN SOLUTION NO PROMPT
    return base_lr * gamma ** (step // step_size)
    # END SOLUTION
    """ # BEGIN PROMPT
    raise NotImplementedError("step_lr")
    """ # END PROMPT


def cosine_lr(step, base_lr, total_steps, min_lr=0.0):
    """CosineAnnealingLR's closed form for 0 <= step <= total_steps -> float."""
    # BEGIN SOLUTION NO PROMPT
    return min_lr + (base_lr - min_lr) * (1 + math.cos(math.pi * step / total_steps)) / 2
    # END SOLUTION
    """ # BEGIN PROMPT
    raise NotImplementedError("cosine_lr")
    """ # END PROMPT

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
params = [torch.tensor([[1.0, -2.0]], dtype=torch.float64), torch.tensor([0.0, 3.0], dtype=torch.float64)]
value, grads = l2_penalty(params)
assert abs(float(value) - 7.0) < 1e-12, "l2_penalty: 0.5 * (1 + 4 + 0 + 9) = 7"
assert torch.equal(grads[0], params[0]) and len(grads) == 2, "the gradient of 0.5 * p**2 is p, one tensor per parameter"
value, grads = l1_penalty(params)
assert abs(float(value) - 6.0) < 1e-12, "l1_penalty: 1 + 2 + 0 + 3 = 6"
assert torch.equal(grads[1], torch.tensor([0.0, 1.0], dtype=torch.float64)), "the L1 gradient is sign(p): 0 at exactly 0"

# %%
stopper = EarlyStopping(patience=2, min_delta=0.25)
decisions = [stopper.step(v) for v in (0.5, 0.75, 1.0, 1.0, 1.1)]
assert decisions == [False, False, False, False, True], "0.75 gains exactly min_delta over 0.5 (no improvement), 1.0 improves, then the tie 1.0 and 1.1 (a gain of at most min_delta) do not: the second call in a row without improvement stops"
assert stopper.best == 1.0 and stopper.best_step == 2, "best and best_step (0-based) come from the last improvement"
stopper = EarlyStopping(patience=1, mode="min")
assert [stopper.step(v) for v in (3.0, 2.0, 2.5)] == [False, False, True], "mode 'min': lower is better"
stopper = EarlyStopping(patience=1)
assert [stopper.step(v) for v in (0.5, 0.5)] == [False, True], "a tie (metric == best) is no improvement: with patience 1 the second call with the same value stops"
stopper = EarlyStopping(patience=1, mode="min")
assert [stopper.step(v) for v in (0.5, 0.5)] == [False, True], "mode 'min': a tie (metric == best) is no improvement either"

# %%
assert [round(step_lr(t, 1.0, 2, 0.5), 12) for t in range(5)] == [1.0, 1.0, 0.5, 0.5, 0.25], "step_lr: base_lr * gamma ** (step // step_size)"
assert abs(cosine_lr(0, 0.1, 10) - 0.1) < 1e-15 and abs(cosine_lr(10, 0.1, 10, 0.01) - 0.01) < 1e-15, "cosine_lr starts at base_lr and ends at min_lr"
assert abs(cosine_lr(5, 0.1, 10, 0.02) - 0.06) < 1e-12, "halfway, the cosine schedule is the mean of base_lr and min_lr"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# ## 7. Concept questions (numeric answers)
#
# Compute each answer by hand (a Python expression is fine) and return them from
# `concept_answers()` in a dictionary with exactly these keys. Answers are compared with a
# tolerance of 1e-6.
#
# 1. `"var_linear"`: a linear unit `y = sum_i x_i W_i` has `fan_in = 512` inputs, independent,
#    with mean 0 and variance 4, and weights drawn independently from `N(0, 0.05^2)`. What is
#    `Var(y)`?
# 2. `"var_kaiming_relu"`: a layer with `fan_in = 256` is initialized with `kaiming_normal_`
#    (ReLU gain) and fed `x = relu(z)`, where the entries of `z` are independent, symmetric
#    around 0, with variance 3. What is `Var(y)` of one output (no bias)?
# 3. `"bn_parameters"`: how many learnable parameters does `BatchNorm1d(64)` have?
# 4. `"bn_running_statistics"`: how many running statistics (numbers averaged during training
#    and used in eval mode) does it keep, not counting PyTorch's `num_batches_tracked` counter?
# 5. L2 in the loss versus SGD's weight decay. A single weight `w = 2.0` has data-loss gradient
#    `g = 0.5`; `lr = 0.1`, `lambda = 0.1`. `"sgd_l2_in_loss"`: `w` after one plain SGD step on
#    the loss `L0 + (lambda / 2) w^2`. `"sgd_weight_decay"`: `w` after one step of
#    `SGD(lr=0.1, weight_decay=0.1)` on `L0`.
# 6. The same for Adam (default betas, eps = 1e-8), one first step: `"adam_l2"`: `w` after
#    `Adam(lr=0.1, weight_decay=0.1)`, whose weight decay is L2 in the loss;
#    `"adamw"`: `w` after `AdamW(lr=0.1, weight_decay=0.1)`.
#
# Questions 5 and 6 show why AdamW exists: for SGD the two forms of decay are the same update;
# for Adam the L2 term is normalized away with the rest of the gradient (on the first step every
# weight moves by about `lr` whatever the decay), while AdamW's decay shrinks `w` by
# `lr * lambda * w` independently of the gradient's scale.

# %% [raw]
# # BEGIN QUESTION
# name: q7
# points: 4

# %% [raw]
# # BEGIN SOLUTION

# %%
def concept_answers():
    """-> dict with the keys var_linear, var_kaiming_relu, bn_parameters, bn_running_statistics,
    sgd_l2_in_loss, sgd_weight_decay, adam_l2, adamw (numbers)."""
    # BEGIN SOLUTION NO PROMPT
    lr, wd, w, g = 0.1, 0.1, 2.0, 0.5
    return {
        "var_linear": 512 * 0.05 ** 2 * 4.0,
        "var_kaiming_relu": 256 * (2.0 / 256) * (3.0 / 2),
        "bn_parameters": 2 * 64,
        "bn_running_statistics": 2 * 64,
        "sgd_l2_in_loss": w - lr * (g + wd * w),
        "sgd_weight_decay": w - lr * (g + wd * w),
        "adam_l2": w - lr * (g + wd * w) / (abs(g + wd * w) + 1e-8),
        "adamw": w * (1 - lr * wd) - lr * g / (abs(g) + 1e-8),
    }
    # END SOLUTION
    """ # BEGIN PROMPT
    raise NotImplementedError("concept_answers")
    """ # END PROMPT

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
answers = concept_answers()
expected_keys = {"var_linear", "var_kaiming_relu", "bn_parameters", "bn_running_statistics", "sgd_l2_in_loss", "sgd_weight_decay", "adam_l2", "adamw"}
assert set(answers) == expected_keys, f"concept_answers() returns exactly the keys {sorted(expected_keys)}"
assert all(isinstance(float(v), float) for v in answers.values()), "every answer is a number"
assert abs(answers["sgd_l2_in_loss"] - answers["sgd_weight_decay"]) < 1e-12, "for SGD, L2 in the loss and weight decay give the same step"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# ## 8. Experiments (not graded by execution)
#
# The experiments use PyTorch's `nn.Linear` layers and autograd for the parts written in
# earlier chapters, and your optimizers, initializers, `Dropout`, `BatchNorm1d` and
# `EarlyStopping` for the rest. Your optimizers work on any list of tensors with `.grad`, so
# they drive an `nn.Module`'s parameters directly (`step()` inside `torch.no_grad()`, since the
# parameters require grad). Your hand-written layers join autograd through a small
# `torch.autograd.Function` that calls their `forward` and `backward`: the cell below.
#
# Everything runs on the digits (8x8 images, 10 classes), standardized pixel by pixel with
# training-set statistics, on one CPU thread, in about half a minute.

# %% tags=["experiment"]
# EXPERIMENT: not run by the grader
from student.results import record  # figures for the course's tests; prints nothing
import json

from torch import nn
from tqdm.auto import tqdm

from student.data import load_digits_splits, minibatches
from student.plots import plot_curves
from student.seeding import seeded

torch.set_num_threads(1)
splits = load_digits_splits(seed=0)
pixel_mean = splits["train"].flat().mean(dim=0)
pixel_std = splits["train"].flat().std(dim=0) + 0.1
train_x, train_y = (splits["train"].flat() - pixel_mean) / pixel_std, splits["train"].labels
val_x, val_y = (splits["val"].flat() - pixel_mean) / pixel_std, splits["val"].labels
test_x, test_y = (splits["test"].flat() - pixel_mean) / pixel_std, splits["test"].labels


class FromScratch(torch.autograd.Function):
    """Runs a hand-written layer inside autograd: forward(x) forward, backward(dy) backward."""

    @staticmethod
    def forward(ctx, x, weight, bias, layer):
        ctx.layer = layer
        if weight is not None:
            layer.weight, layer.bias = weight.detach(), bias.detach()
        return layer.forward(x).to(x.dtype)

    @staticmethod
    def backward(ctx, dy):
        layer = ctx.layer
        dx = layer.backward(dy.contiguous()).to(dy.dtype)
        if ctx.needs_input_grad[1]:
            return dx, layer.grad_weight.to(dy.dtype), layer.grad_bias.to(dy.dtype), None
        return dx, None, None, None


class Scratch(nn.Module):
    """nn.Module wrapper of a hand-written layer; its weight and bias become nn.Parameters and
    module.train()/eval() reach the layer."""

    def __init__(self, layer):
        super().__init__()
        self.layer = layer
        if hasattr(layer, "weight"):
            self.weight = nn.Parameter(torch.as_tensor(layer.weight, dtype=torch.float32).clone())
            self.bias = nn.Parameter(torch.as_tensor(layer.bias, dtype=torch.float32).clone())
        else:
            self.weight = self.bias = None

    def forward(self, x):
        self.layer.train() if self.training else self.layer.eval()
        return FromScratch.apply(x, self.weight, self.bias, self.layer)


def evaluate(model, x, y):
    """(mean cross-entropy, accuracy) in eval mode."""
    model.eval()
    with torch.no_grad():
        logits = model(x)
        loss = nn.functional.cross_entropy(logits, y).item()
        accuracy = (logits.argmax(dim=1) == y).float().mean().item()
    model.train()
    return loss, accuracy


def train_epochs(model, optimizer, epochs, batch_size):
    """Trains on the training set in mini-batches (the same shuffles for every model: the
    order comes from a generator seeded 0); returns the mean training loss of each epoch."""
    generator = torch.Generator().manual_seed(0)
    losses = []
    for epoch in range(epochs):
        total = 0.0
        for idx in minibatches(len(train_y), batch_size, generator):
            loss = nn.functional.cross_entropy(model(train_x[idx]), train_y[idx])
            optimizer.zero_grad()
            loss.backward()
            with torch.no_grad():
                optimizer.step()
            total += loss.item() * len(idx)
        losses.append(total / len(train_y))
    return losses


results = {}  # everything measured below, saved to a JSON file at the end

# %% [markdown]
# ### 8.1 Four optimizers on one problem
# The same network (64-128-10, ReLU, PyTorch's default initialization), the same mini-batches,
# 15 epochs; only the optimizer changes, each with a usual learning rate. Momentum and the
# adaptive methods reach a low training loss much sooner than plain SGD.

# %% tags=["experiment"]
# EXPERIMENT: not run by the grader
def make_mlp(seed, hidden=128):
    # nn.Linear draws its initial weights from PyTorch's global generator; `seeded` seeds it
    # only for the duration of the block (the kit never seeds it for good: whatever ran before
    # or runs after would then depend on how many numbers were drawn in between)
    with seeded(seed):
        return nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 10))


optimizers = {
    "SGD": lambda params: SGD(params, lr=0.05),
    "SGD + momentum": lambda params: SGD(params, lr=0.05, momentum=0.9),
    "RMSprop": lambda params: RMSprop(params, lr=1e-3),
    "Adam": lambda params: Adam(params, lr=1e-3),
}
results["optimizers"] = {}
for name, make_optimizer in tqdm(optimizers.items(), desc="optimizers"):
    model = make_mlp(seed=0)
    optimizer = make_optimizer(list(model.parameters()))
    losses = train_epochs(model, optimizer, epochs=15, batch_size=64)
    test_accuracy = evaluate(model, test_x, test_y)[1]
    results["optimizers"][name] = {"train_loss": losses, "test_accuracy": test_accuracy}
    print(f"{name:>15}: final training loss {losses[-1]:.4f}, test accuracy {test_accuracy:.3f}")
record(sgd_test_accuracy=results['optimizers']['SGD']['test_accuracy'])
record(momentum_test_accuracy=results['optimizers']['SGD + momentum']['test_accuracy'])
record(rmsprop_test_accuracy=results['optimizers']['RMSprop']['test_accuracy'])
record(adam_test_accuracy=results['optimizers']['Adam']['test_accuracy'])
plot_curves({name: r["train_loss"] for name, r in results["optimizers"].items()},
            ylabel="training loss", title="Optimizers on the digits");

# %% [markdown]
# ### 8.2 Activation statistics through 10 layers
# A batch of 512 digits goes through ten `Linear(256)` + ReLU layers, without training, under
# three initializations: "naive" `N(0, 0.01^2)`, Xavier normal and Kaiming normal. We plot the
# standard deviation of each layer's output. The naive scale multiplies the signal by about
# `0.01 * sqrt(256 / 2) = 0.11` per layer, so it vanishes geometrically; Xavier's factor with a
# ReLU is `sqrt(1/2)` per layer for square layers, a slow decay; Kaiming's is 1.

# %% tags=["experiment"]
# EXPERIMENT: not run by the grader
import matplotlib.pyplot as plt

batch = train_x[:512]
layer_stds = {}
for init_name in ("naive", "xavier", "kaiming"):
    generator = torch.Generator().manual_seed(1)
    h, stds = batch, []
    for _ in range(10):
        weight = torch.empty(256, h.shape[1])  # PyTorch's (out, in) layout
        if init_name == "naive":
            weight.normal_(0.0, 0.01, generator=generator)
        elif init_name == "xavier":
            xavier_normal_(weight, generator=generator)
        else:
            kaiming_normal_(weight, generator=generator)
        h = torch.relu(h @ weight.T)
        stds.append(h.std().item())
    layer_stds[init_name] = stds
    print(f"{init_name:>8}: std per layer", " ".join(f"{s:.2g}" for s in stds))
results["activation_std"] = layer_stds
fig, ax = plt.subplots(figsize=(6, 3.5))
for init_name, stds in layer_stds.items():
    ax.semilogy(range(1, 11), stds, marker="o", label=init_name)
ax.set_xlabel("layer")
ax.set_ylabel("std of activations")
ax.set_title("Activation scale through 10 ReLU layers")
ax.grid(alpha=0.3)
ax.legend()
fig.tight_layout()
record(kaiming_last_over_first_std=layer_stds['kaiming'][-1] / layer_stds['kaiming'][0])
record(xavier_last_over_first_std=layer_stds['xavier'][-1] / layer_stds['xavier'][0])
record(naive_last_std=layer_stds['naive'][-1])

# %% [markdown]
# ### 8.3 Overfitting a small training set, and three remedies
# With only 100 training images, a 64-128-128-10 network reaches 100% training accuracy within
# a few dozen full-batch Adam steps, and from then on its validation loss rises while its
# training loss keeps falling towards 0: it becomes more and more confident, also on its
# mistakes. We compare four runs of 300 steps from the same initialization:
# * the baseline;
# * dropout (p = 0.5) after each hidden layer (your `Dropout`);
# * decoupled weight decay (your `AdamW`, `weight_decay = 2`);
# * early stopping on the validation loss (your `EarlyStopping`, mode "min", patience 5
#   evaluations), keeping the weights of the best evaluation.
#
# The measure of overfitting is the generalization gap: validation loss minus training loss.

# %% tags=["experiment"]
# EXPERIMENT: not run by the grader
subset = torch.randperm(len(train_y), generator=torch.Generator().manual_seed(0))[:100]
small_x, small_y = train_x[subset], train_y[subset]


def make_overfitting_net(dropout=0.0):
    layers = [nn.Linear(64, 128), nn.ReLU()]
    if dropout:
        layers.append(Scratch(Dropout(dropout)))
    layers += [nn.Linear(128, 128), nn.ReLU()]
    if dropout:
        layers.append(Scratch(Dropout(dropout)))
    layers.append(nn.Linear(128, 10))
    return nn.Sequential(*layers)


def train_small(model, optimizer, steps=300, stopper=None, every=5):
    history = {"train loss": [], "val loss": [], "train accuracy": [], "val accuracy": []}
    best_state = None
    for step in range(steps):
        loss = nn.functional.cross_entropy(model(small_x), small_y)
        optimizer.zero_grad()
        loss.backward()
        with torch.no_grad():
            optimizer.step()
        if step % every == every - 1:
            train_loss, train_accuracy = evaluate(model, small_x, small_y)
            val_loss, val_accuracy = evaluate(model, val_x, val_y)
            for key, value in zip(history, (train_loss, val_loss, train_accuracy, val_accuracy)):
                history[key].append(value)
            if stopper is not None:
                stop = stopper.step(val_loss)
                if stopper.best_step == len(history["val loss"]) - 1:
                    best_state = {k: v.clone() for k, v in model.state_dict().items()}
                if stop:
                    break
    if best_state is not None:
        model.load_state_dict(best_state)
    return history


runs = {  # dropout probability, optimizer, early stopping
    "baseline": (0.0, lambda m: Adam(list(m.parameters()), lr=3e-3), None),
    "dropout 0.5": (0.5, lambda m: Adam(list(m.parameters()), lr=3e-3), None),
    "AdamW, decay 2": (0.0, lambda m: AdamW(list(m.parameters()), lr=3e-3, weight_decay=2.0), None),
    "early stopping": (0.0, lambda m: Adam(list(m.parameters()), lr=3e-3), EarlyStopping(patience=5, mode="min")),
}
results["overfitting"] = {}
for name, (dropout, make_optimizer, stopper) in tqdm(runs.items(), desc="regularization"):
    # the initial weights, then your Dropout's masks (it is called without a generator here),
    # come from PyTorch's global generator: build and train inside `seeded(0)`, which seeds it
    # for this block only, so that every run starts from the same weights
    with seeded(0):
        model = make_overfitting_net(dropout)
        history = train_small(model, make_optimizer(model), stopper=stopper)
    final_train_loss, _ = evaluate(model, small_x, small_y)
    final_val_loss, final_val_accuracy = evaluate(model, val_x, val_y)
    history["gap"] = final_val_loss - final_train_loss
    history["final val loss"] = final_val_loss
    history["final val accuracy"] = final_val_accuracy
    results["overfitting"][name] = history
    print(f"{name:>15}: {len(history['val loss']) * 5:3d} steps, train loss {final_train_loss:.3f}, "
          f"val loss {final_val_loss:.3f}, gap {history['gap']:.3f}, val accuracy {final_val_accuracy:.3f}")
over = results["overfitting"]
record(baseline_gap=over['baseline']['gap'])
record(weight_decay_gap_reduction=over['baseline']['gap'] - over['AdamW, decay 2']['gap'])
record(early_stopping_val_loss_gain=over['baseline']['final val loss'] - over['early stopping']['final val loss'])
record(dropout_best_val_loss_gain=min(over['baseline']['val loss']) - min(over['dropout 0.5']['val loss']))
fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
for name, history in over.items():
    steps_axis = [5 * (i + 1) for i in range(len(history["val loss"]))]
    line, = axes[0].plot(steps_axis, history["val loss"], label=f"{name} (val)")
    axes[0].plot(steps_axis, history["train loss"], linestyle=":", color=line.get_color())
    axes[1].plot(steps_axis, history["val accuracy"], label=name, color=line.get_color())
axes[0].set_ylabel("loss (dotted: training)")
axes[1].set_ylabel("validation accuracy")
for ax in axes:
    ax.set_xlabel("step")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
fig.tight_layout()

# %% [markdown]
# ### 8.4 Batch normalization and training speed
# A deeper plain network (six hidden `Linear(128)` + ReLU layers, PyTorch's default
# initialization, which is scaled for `fan_in` but without the ReLU gain) trained with plain SGD
# at `lr = 0.02` barely moves in four epochs: the signal shrinks layer after layer and the
# gradients of the first layers are tiny. The same network with your `BatchNorm1d` after every
# hidden linear layer re-standardizes each layer's input and trains at once.

# %% tags=["experiment"]
# EXPERIMENT: not run by the grader
def make_deep(seed, batch_norm):
    layers, width = [], 64
    with seeded(seed):
        for _ in range(6):
            layers.append(nn.Linear(width, 128))
            if batch_norm:
                layers.append(Scratch(BatchNorm1d(128)))
            layers.append(nn.ReLU())
            width = 128
        layers.append(nn.Linear(128, 10))
    return nn.Sequential(*layers)


results["batch_norm"] = {}
for name, batch_norm in tqdm((("plain", False), ("batch norm", True)), desc="batch norm"):
    model = make_deep(0, batch_norm)
    optimizer = SGD(list(model.parameters()), lr=0.02)
    losses = train_epochs(model, optimizer, epochs=4, batch_size=32)
    test_accuracy = evaluate(model, test_x, test_y)[1]
    results["batch_norm"][name] = {"train_loss": losses, "test_accuracy": test_accuracy}
    print(f"{name:>10}: training loss per epoch {[round(v, 3) for v in losses]}, test accuracy {test_accuracy:.3f}")
record(batchnorm_test_accuracy=results['batch_norm']['batch norm']['test_accuracy'])
record(batchnorm_over_plain_final_loss=results['batch_norm']['batch norm']['train_loss'][-1] / results['batch_norm']['plain']['train_loss'][-1])

# %% [markdown]
# ### 8.5 Saving the statistics and plotting them from the file
# A run's numbers are worth keeping: save them to a JSON file, and draw the plots from the file,
# so that a figure can be redrawn (or compared with another run) without training again.
# Below, the learning-rate schedules of section 6 join the file too.

# %% tags=["experiment"]
# EXPERIMENT: not run by the grader
results["schedules"] = {
    "step_lr": [step_lr(t, 0.1, 10, 0.5) for t in range(51)],
    "cosine_lr": [cosine_lr(t, 0.1, 50, 0.005) for t in range(51)],
}
with open("ch03_results.json", "w") as handle:
    json.dump(results, handle, indent=1)

with open("ch03_results.json") as handle:
    saved = json.load(handle)
fig, axes = plt.subplots(1, 3, figsize=(14, 3.5))
for name, run in saved["optimizers"].items():
    axes[0].plot(range(1, 16), run["train_loss"], label=name)
axes[0].set_title("optimizers: training loss")
for name, run in saved["batch_norm"].items():
    axes[1].plot(range(1, 5), run["train_loss"], marker="o", label=name)
axes[1].set_title("batch norm: training loss")
for name, values in saved["schedules"].items():
    axes[2].plot(values, label=name)
axes[2].set_title("learning-rate schedules")
for ax in axes:
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
fig.tight_layout()
print("saved keys:", sorted(saved))
record(json_round_trip=float(saved['optimizers']['Adam']['test_accuracy'] == results['optimizers']['Adam']['test_accuracy']))
