# %% [raw]
# # ASSIGNMENT CONFIG
# name: 11_adversarial_attacks
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
# # Chapter 11 — Adversarial attacks: FGSM, PGD, a patch, and adversarial training
#
# A classifier that is right on 98% of the test digits can be wrong on almost all of them after
# every pixel has moved by a fifth of its range, in a direction chosen with the model's own
# gradient. To a person the attacked digit looks the same; to the network it is another class.
# In this chapter you write the classic attacks against a trained network: the **fast gradient
# sign method** (FGSM), its iterated version **projected gradient descent** (PGD), targeted
# variants of both, and an **adversarial patch** that fools the model wherever it is pasted.
# Then you turn the attack into a defence: **adversarial training** fits the model on attacked
# examples.
#
# Here the gradient is not the student's to derive: **autograd** computes the gradient of the
# loss with respect to the *input image*, and that is the tool. What you write is everything
# around it: the sign step, the projection onto the allowed perturbations, the clamping to
# valid pixels, and the care not to disturb the model you attack.
#
# **How this notebook is graded.** Each function is called by a hidden check on small seeded
# models (an MLP with dropout, a CNN with batch norm and dropout, in float64), sometimes handed
# over in train mode and with gradients already stored in their parameters, on inputs that sit
# exactly on the edges of the pixel range. Every function is called twice in a row. The check
# compares the adversarial images with a reference and grades separately: whether they lie in
# the allowed ball and range, whether the model (parameters, buffers, `.grad`, train/eval mode)
# and the input are exactly as they were. Cells marked `# EXPERIMENT` are not run by the
# grader.
#
# {{FORBIDDEN_RULES}}
#
# Everything else is allowed: tensor operations, `torch.nn`, `torch.nn.functional`
# (`F.cross_entropy`), autograd (`torch.autograd.grad`, `loss.backward()`) and `torch.optim`.
#
# ## Conventions
# * Images `x` have shape `(N, C, H, W)` (any `(N, ...)` works for the attacks), pixels in a
#   valid range `clamp = (low, high)`, `(0, 1)` by default; labels `y` are `(N,)` int64.
# * A model maps `x` to logits `(N, num_classes)`. The attack loss is the **mean**
#   cross-entropy over the batch, `F.cross_entropy(model(x), y)`.
# * **An attack does not change the model.** It evaluates the model in **eval mode** (dropout
#   off, batch norm with its running statistics: an attack in train mode would see a random,
#   batch-dependent model and would update the running statistics), and restores the mode it
#   found. It must not touch the parameters' `.grad`: compute the input gradient with
#   `torch.autograd.grad(loss, x_adv)`, which returns it without storing anything, rather than
#   `loss.backward()`, which adds to every parameter's `.grad`.
# * **An attack does not change its input.** Work on a copy,
#   `x.detach().clone().requires_grad_(True)`; never call `x.requires_grad_()` on the tensor you
#   were given, never modify it in place.
# * The result is a new tensor **without a graph** (`requires_grad` False), in `x`'s dtype.

# %%
import math

import torch
import torch.nn.functional as F
from torch import nn

# %% [markdown]
# ## 1. Why a tiny perturbation is enough: the linear view
#
# Goodfellow et al. (2015) explain adversarial examples with a linear model `f(x) = w . x`.
# Perturb the input by `delta` with every entry at most `eps` in absolute value (an
# **L-infinity ball** of radius `eps`: `||delta||_inf <= eps`). The output changes by
# `w . delta`, and that is largest for `delta = eps * sign(w)`:
#
# `max over ||delta||_inf <= eps of |w . delta| = eps * sum_i |w_i| = eps * ||w||_1`.
#
# Worked example: `w = (2, -1, 0.5)`, `eps = 0.1`: `delta = (0.1, -0.1, 0.1)` changes the
# output by `0.2 + 0.1 + 0.05 = 0.35 = 0.1 * 3.5`.
#
# No single pixel moves by more than `eps`, yet the change adds up over all `D` inputs. If the
# weights are random with standard deviation `s`, each `|w_i|` is on average `s * sqrt(2/pi)`
# (the mean of a half-normal), so the expected largest change is
# `eps * D * s * sqrt(2/pi)`: it grows **linearly** with the input dimension `D`, while the
# size of the perturbation per pixel stays `eps`. A random perturbation of the same size
# instead changes the output by about `eps * s * sqrt(D)` (a sum of `D` terms of random sign):
# the attacker's advantage is the factor `sqrt(D)`. High-dimensional inputs such as images give
# the attacker many small levers that all pull the same way.
#
# Write both quantities. `linear_max_change(w, eps)` takes `w` of shape `(D,)` and returns a
# 0-dim tensor (or a float); `expected_max_change(dim, eps, weight_std)` returns a float.

# %% [raw]
# # BEGIN QUESTION
# name: q1
# points: 2

# %% [raw]
# # BEGIN SOLUTION

# %%
def linear_max_change(w, eps):
    """Largest |w . delta| over ||delta||_inf <= eps. w: (D,) -> 0-dim tensor."""
    assert w.ndim == 1, f"w must be a vector (D,), got shape {tuple(w.shape)}"
    # BEGIN SOLUTION NO PROMPT
    return eps * w.abs().sum()
    # END SOLUTION
    """ # BEGIN PROMPT
    raise NotImplementedError("linear_max_change")
    """ # END PROMPT


def expected_max_change(dim, eps, weight_std):
    """Expected linear_max_change for w with dim i.i.d. N(0, weight_std**2) entries (a float)."""
    # BEGIN SOLUTION NO PROMPT
    return eps * dim * weight_std * math.sqrt(2.0 / math.pi)
    # END SOLUTION
    """ # BEGIN PROMPT
    raise NotImplementedError("expected_max_change")
    """ # END PROMPT

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
change = linear_max_change(torch.tensor([2.0, -1.0, 0.5], dtype=torch.float64), 0.1)
assert abs(float(change) - 0.35) < 1e-12, f"the worked example: eps * (|2| + |-1| + |0.5|) = 0.35, got {float(change)}"
assert float(linear_max_change(torch.zeros(4, dtype=torch.float64), 0.3)) == 0.0, "zero weights: the output cannot change"

# %%
small, large = expected_max_change(10, 0.1, 1.0), expected_max_change(1000, 0.1, 1.0)
assert abs(large / small - 100.0) < 1e-9, "the expected change grows linearly with the dimension: 100 times the inputs, 100 times the change"
assert abs(expected_max_change(1, 1.0, 1.0) - 0.7978845608) < 1e-9, "for one weight ~ N(0, 1): E|w| = sqrt(2/pi)"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# ## 2. The fast gradient sign method (FGSM)
#
# A network is not linear, but it is linear enough around `x` that the same recipe works with
# its gradient in place of `w`. Let `L(x) = cross-entropy(model(x), y)`. The perturbation
# within the L-infinity ball that increases the linearised loss the most is `eps` times the
# *sign* of the gradient:
#
# `x_adv = clamp(x + eps * sign(grad_x L(x)), low, high)`.
#
# * **Untargeted** (default): `y` are the true labels and we step *up* the loss, away from the
#   right answer.
# * **Targeted** (`targeted=True`): `y` are the labels we *want* the model to output, and we
#   step *down* the loss towards them: `x - eps * sign(grad)`.
# * `torch.sign` returns 0 where the gradient is exactly 0: such pixels do not move. (They
#   happen: pixels a model ignores, dead ReLUs.) `grad / grad.abs()` gives NaN there, and
#   `torch.where(grad >= 0, 1, -1)` moves them; both are wrong.
# * The clamp keeps the image valid: a pixel at 1 cannot get brighter. Clamp to the `clamp`
#   argument (`None`: no clamping), not to a hard-coded `(0, 1)`.
# * With `eps = 0` the attack must return `x` itself (values, not the object).
#
# Shapes: `x` `(N, ...)`, `y` `(N,)`, the gradient has `x`'s shape, so does `x_adv`. Only the
# sign of the gradient matters, so the mean or the sum of the loss give the same attack; we use
# the mean, as everywhere in the course.
#
# Recipe (see the conventions above): remember `model.training`, call `model.eval()`, make a
# fresh leaf `x_adv = x.detach().clone().requires_grad_(True)`, compute the loss, get
# `grad = torch.autograd.grad(loss, x_adv)[0]`, restore the mode (in a `try/finally`), take the
# step, clamp, and return a tensor without a graph. If the attack runs inside someone's
# `torch.no_grad()` block, `with torch.enable_grad():` around the forward pass makes the
# gradient available again.

# %% [raw]
# # BEGIN QUESTION
# name: q2
# points: 4

# %% [raw]
# # BEGIN SOLUTION

# %%
def input_gradient(model, x, y):
    """Gradient of the mean cross-entropy of model(x) against y with respect to x, computed in
    eval mode; the model's mode is restored, its parameters' .grad untouched. x: (N, ...)."""
    # BEGIN SOLUTION NO PROMPT
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            leaf = x.detach().clone().requires_grad_(True)
            loss = F.cross_entropy(model(leaf), y)
            (grad,) = torch.autograd.grad(loss, leaf)
    finally:
        model.train(was_training)
    return grad
    # END SOLUTION
    """ # BEGIN PROMPT
    raise NotImplementedError("input_gradient (a helper for fgsm and pgd)")
    """ # END PROMPT


def fgsm(model, x, y, eps, targeted=False, clamp=(0.0, 1.0)):
    """Fast gradient sign method.

    x: (N, ...) images in the range `clamp`; y: (N,) int64 true labels (targeted=False) or
    target labels (targeted=True); eps: float >= 0; clamp: (low, high) or None.
    Returns x_adv: (N, ...) = clamp(x +- eps * sign(grad_x mean cross-entropy)), no graph.
    The model is evaluated in eval mode and its mode restored; the model, its .grad and x are
    left unchanged.
    """
    assert x.shape[0] == y.shape[0] and y.ndim == 1, f"x (N, ...) and y (N,) must agree, got {tuple(x.shape)} and {tuple(y.shape)}"
    assert eps >= 0, f"eps must be >= 0, got {eps}"
    # BEGIN SOLUTION NO PROMPT
    grad = input_gradient(model, x, y)
    direction = -1.0 if targeted else 1.0
    x_adv = x.detach() + direction * eps * grad.sign()
    return x_adv if clamp is None else x_adv.clamp(clamp[0], clamp[1])
    # END SOLUTION
    """ # BEGIN PROMPT
    raise NotImplementedError("fgsm")
    """ # END PROMPT

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
toy = nn.Linear(3, 2, bias=False).double()
toy.weight.data = torch.tensor([[1.0, -2.0, 0.0], [0.0, 0.0, 0.0]], dtype=torch.float64)
x_toy = torch.tensor([[0.5, 0.5, 0.5]], dtype=torch.float64)
label = torch.tensor([0])
away = fgsm(toy, x_toy, label, 0.1)
assert torch.equal(x_toy, torch.tensor([[0.5, 0.5, 0.5]], dtype=torch.float64)), "fgsm changed its input x: compute x_adv out of place (x.detach() + ..., then .clamp(...)), never x.add_(...) or x.data"
assert away.dtype == torch.float64 and away.shape == (1, 3), f"x_adv has x's shape and dtype, got {away.dtype} {tuple(away.shape)}"
assert torch.allclose(away, torch.tensor([[0.4, 0.6, 0.5]], dtype=torch.float64), atol=1e-12), "by hand: grad = (p0 - 1) * (1, -2, 0) with p0 < 1, so sign = (-1, +1, 0) and x_adv = (0.4, 0.6, 0.5); the third weight is 0, so that pixel must not move (torch.sign(0) = 0)"
towards = fgsm(toy, x_toy, label, 0.1, targeted=True)
assert torch.allclose(towards, torch.tensor([[0.6, 0.4, 0.5]], dtype=torch.float64), atol=1e-12), "targeted: step DOWN the loss of the target label, x - eps * sign(grad)"

# %%
toy = nn.Linear(3, 2, bias=False).double()
toy.weight.data = torch.tensor([[1.0, -2.0, 0.0], [0.0, 0.0, 0.0]], dtype=torch.float64)
edge = torch.tensor([[0.0, 1.0, 0.5]], dtype=torch.float64)
assert torch.equal(fgsm(toy, edge, torch.tensor([0]), 0.1), edge), "pixels at the edge of the range stay there: clamp to (0, 1) after the step"
assert torch.equal(fgsm(toy, edge, torch.tensor([0]), 0.0), edge), "eps = 0 returns x unchanged"
wide = fgsm(toy, edge, torch.tensor([0]), 0.1, clamp=(-1.0, 2.0))
assert torch.allclose(wide, torch.tensor([[-0.1, 1.1, 0.5]], dtype=torch.float64), atol=1e-12), "clamp to the range given by the clamp argument, not always (0, 1)"

# %%
net = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Dropout(0.5), nn.Linear(6, 3)).double()
net.train()
images = torch.rand(5, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
labels = torch.tensor([0, 1, 2, 0, 1])
before = {k: v.clone() for k, v in net.state_dict().items()}
first = fgsm(net, images, labels, 0.1)
second = fgsm(net, images, labels, 0.1)
assert torch.equal(first, second), "two calls in a row must agree: evaluate in eval mode (dropout off) and never set requires_grad on the input x itself"
assert net.training and all(m.training for m in net.modules()), "the model was in train mode: restore that mode after the attack"
assert all(p.grad is None for p in net.parameters()), "the attack stored gradients in the parameters: use torch.autograd.grad(loss, x_adv)"
assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items()), "the parameters or the batch-norm running statistics changed: attack in eval mode"
assert not images.requires_grad and images.grad is None, "x itself must not be changed: work on x.detach().clone()"
assert not first.requires_grad, "return x_adv without a graph (.detach())"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# ## 3. Projected gradient descent (PGD)
#
# FGSM takes one big step and trusts the linear approximation. Madry et al. (2018) take many
# small ones: **projected gradient descent** in the L-infinity ball around `x`.
#
# ```
# x_adv = x                      (or a random start, below)
# repeat steps times:
#     x_adv = x_adv + alpha * sign(grad of L at x_adv)     (minus when targeted)
#     x_adv = min(max(x_adv, x - eps), x + eps)            projection onto the ball around x
#     x_adv = clamp(x_adv, low, high)                      projection onto the valid range
# ```
#
# * The gradient is taken at the **current iterate** `x_adv`, every step.
# * The projection is onto the ball around the **original** `x`: projecting around the current
#   iterate would let the image drift `eps` further at every step.
# * The ball and the range are both boxes, and `x` lies in both, so clamping to one then the
#   other lands in their intersection; do the ball first, then the range.
# * **Random start** (`random_start=True`): before the first step,
#   `x_adv = x + (2 * torch.rand(x.shape, generator=generator, dtype=x.dtype) - 1) * eps`,
#   clamped to the range: a uniform point of the ball. It lets repeated attacks explore
#   different starting points, and it avoids starting exactly where the gradient may be
#   flattened out by the model's training (gradient masking). Write exactly this expression,
#   with exactly one draw from `generator` per call, so that your attack is reproducible and
#   matches the reference for a given generator.
# * With `alpha >= eps` and one step PGD is FGSM (from `x`, without random start); the usual
#   choice is `alpha` around `eps / 4` with 10 or more steps.
#
# Same guarantees as `fgsm`: eval mode during the attack, mode restored, no `.grad` stored,
# input unchanged, result without a graph.

# %% [raw]
# # BEGIN QUESTION
# name: q3
# points: 4

# %% [raw]
# # BEGIN SOLUTION

# %%
def pgd(model, x, y, eps, alpha, steps, random_start=True, generator=None, targeted=False, clamp=(0.0, 1.0)):
    """Projected gradient descent in the L-infinity ball of radius eps around x.

    x: (N, ...) in the range `clamp`; y: (N,) int64 (targets when targeted=True); alpha: step
    size; steps: number of steps; generator: torch.Generator for the random start (None: the
    global RNG). Returns x_adv: (N, ...), |x_adv - x| <= eps everywhere, inside the range, no
    graph; the model, its .grad, its mode and x are left unchanged.
    """
    assert x.shape[0] == y.shape[0] and y.ndim == 1, f"x (N, ...) and y (N,) must agree, got {tuple(x.shape)} and {tuple(y.shape)}"
    assert eps >= 0 and alpha >= 0 and steps >= 0, "eps, alpha and steps must be >= 0"
    # BEGIN SOLUTION NO PROMPT
    x0 = x.detach()
    direction = -1.0 if targeted else 1.0
    x_adv = x0.clone()
    if random_start:
        noise = 2 * torch.rand(x.shape, generator=generator, dtype=x.dtype) - 1
        x_adv = x0 + noise * eps
        if clamp is not None:
            x_adv = x_adv.clamp(clamp[0], clamp[1])
    for _ in range(steps):
        x_adv = x_adv + direction * alpha * input_gradient(model, x_adv, y).sign()
        x_adv = torch.min(torch.max(x_adv, x0 - eps), x0 + eps)
        if clamp is not None:
            x_adv = x_adv.clamp(clamp[0], clamp[1])
    return x_adv
    # END SOLUTION
    """ # BEGIN PROMPT
    raise NotImplementedError("pgd")
    """ # END PROMPT

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
toy = nn.Linear(3, 2, bias=False).double()
toy.weight.data = torch.tensor([[1.0, -2.0, 0.0], [0.0, 0.0, 0.0]], dtype=torch.float64)
x_toy = torch.tensor([[0.5, 0.5, 0.5]], dtype=torch.float64)
walked = pgd(toy, x_toy, torch.tensor([0]), eps=0.1, alpha=0.04, steps=5, random_start=False)
assert torch.allclose(walked, torch.tensor([[0.4, 0.6, 0.5]], dtype=torch.float64), atol=1e-12), "by hand: 5 steps of 0.04 in the direction (-1, +1, 0) would go 0.2 far; the projection stops them at eps = 0.1 from the ORIGINAL x"
one_step = pgd(toy, x_toy, torch.tensor([0]), eps=0.1, alpha=0.1, steps=1, random_start=False)
assert torch.allclose(one_step, torch.tensor([[0.4, 0.6, 0.5]], dtype=torch.float64), atol=1e-12), "one step of size eps = 0.1 without random start is FGSM: x + 0.1 * sign(gradient) = [0.4, 0.6, 0.5] by hand"

# %%
net = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Dropout(0.5), nn.Linear(6, 3)).double().train()
images = torch.rand(6, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
labels = torch.tensor([0, 1, 2, 0, 1, 2])
# pgd calls your input_gradient (q2): check it first
assert torch.equal(input_gradient(net, images, labels), input_gradient(net, images, labels)) and net.training and all(p.grad is None for p in net.parameters()), "q2 fails: pgd calls your input_gradient, which must compute in eval mode (two calls agree), restore the mode and leave the parameters' .grad alone; fix q2 first"
first = pgd(net, images, labels, 0.2, 0.05, 7, generator=torch.Generator().manual_seed(3))
again = pgd(net, images, labels, 0.2, 0.05, 7, generator=torch.Generator().manual_seed(3))
assert torch.equal(first, again), "the same generator seed must give the same attack: draw the random start from the generator argument, and attack in eval mode"
assert (first - images).abs().max() <= 0.2 + 1e-12 and first.min() >= 0 and first.max() <= 1, "x_adv must stay within eps of x and inside (0, 1)"
assert net.training and all(p.grad is None for p in net.parameters()) and not images.requires_grad, "leave the model's mode and .grad and the input as they were"
start_only = pgd(net, images, labels, 0.2, 0.05, 0, generator=torch.Generator().manual_seed(3))
noise = 2 * torch.rand(images.shape, generator=torch.Generator().manual_seed(3), dtype=images.dtype) - 1
assert torch.allclose(start_only, (images + noise * 0.2).clamp(0, 1), atol=1e-12), "with 0 steps PGD returns the random start x + (2 * rand - 1) * eps, clamped"

# %%
class Bowl(nn.Module):
    """Logits (0, -(x - 0.5)^2) for one feature x: raising the loss of class 0 pulls x towards 0.5."""

    def forward(self, x):
        return torch.cat([torch.zeros_like(x), -(x - 0.5) ** 2], dim=1)


bowl = Bowl()
assert torch.equal(input_gradient(bowl, torch.tensor([[0.45], [0.6]], dtype=torch.float64), torch.tensor([0, 0])).sign(), torch.tensor([[1.0], [-1.0]], dtype=torch.float64)), "q2 fails: pgd calls your input_gradient, whose signs are wrong on this small case; fix q2 first"
walk = pgd(bowl, torch.tensor([[0.3]], dtype=torch.float64), torch.tensor([0]), eps=0.5, alpha=0.15, steps=3, random_start=False)
assert abs(walk.item() - 0.45) < 1e-12, "by hand: from 0.3, steps of 0.15 towards 0.5 reach 0.45, then 0.6, and the third step comes back to 0.45: take the gradient at the current x_adv in every step, not at the original x"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# ## 4. An adversarial patch
#
# FGSM and PGD change every pixel a little, for one particular image. Brown et al. (2017)
# change a few pixels a lot, for *any* image: a small square **patch**, pasted anywhere, that
# makes the model output a chosen class. Such a patch could be printed on a sticker. Because it
# must work on every image and at every position, it is trained like a model's parameters:
# minimise the cross-entropy towards the target class over many images with the patch pasted
# at random places.
#
# **`apply_patch(images, patch, top, left)`** pastes the patch: its pixels *replace* those of
# the image (they are not added).
# * `images`: `(N, C, H, W)`; `patch`: `(C, kh, kw)`, or `(1, kh, kw)` to put the same values
#   in every channel (broadcasting over `C`);
# * `top`, `left`: the row and column of the patch's upper-left pixel; either ints (one
#   position for the whole batch) or int64 tensors of shape `(N,)` (one position per image),
#   with `0 <= top <= H - kh` and `0 <= left <= W - kw`;
# * returns a new `(N, C, H, W)` tensor, `out[i, :, top_i:top_i + kh, left_i:left_i + kw] =
#   patch`, without modifying `images`, and **differentiable with respect to `patch`** (so
#   that we can train it): build the result from `images.clone()` with slice assignment, or
#   with a mask and `torch.where`; no `torch.no_grad()`, `.detach()` or `.data` on the way.
#
# **`train_patch(model, images, target_class, patch_size, steps, lr, generator)`** returns a
# `(C, patch_size, patch_size)` patch in `[0, 1]` (C the images' channels), in the images'
# dtype, without a graph. The recipe, which the reference follows (the grader measures the
# success of your patch on held-out images, so a different reasonable recipe works too):
# * an unconstrained parameter `param` of shape `(C, patch_size, patch_size)`, zeros at the
#   start, and `patch = torch.sigmoid(param)`: always inside `[0, 1]` (a gray patch at first);
# * `torch.optim.Adam([param], lr=lr)`;
# * each of the `steps` steps: draw a new position for **every image**, `top` and `left` each
#   `torch.randint(0, H - patch_size + 1, (N,), generator=generator)` (first all tops, then all
#   lefts); paste; mean cross-entropy of the model's output against `target_class` for every
#   image; one Adam step on `param`.
# * Paste with your `apply_patch`, called by this name (the grader replaces it by its own
#   during the `train_patch` check, so that a bug in `apply_patch` costs only its own points).
# * The model is attacked, not trained: eval mode (restored afterwards), and its parameters'
#   `.grad` left alone (`torch.autograd.grad(loss, param)` gives the patch's gradient alone;
#   set `param.grad` to it before `optimizer.step()`).
#
# Drawing new positions in every step matters: a patch trained at one fixed position learns
# to exploit the weights of *that* spot and fails elsewhere.

# %% [raw]
# # BEGIN QUESTION
# name: q4
# points: 5

# %% [raw]
# # BEGIN SOLUTION

# %%
def apply_patch(images, patch, top, left):
    """images: (N, C, H, W); patch: (C, kh, kw) or (1, kh, kw); top, left: ints or int64 (N,).
    Returns a new (N, C, H, W) tensor with the patch pasted; differentiable w.r.t. patch."""
    assert images.ndim == 4, f"images must be (N, C, H, W), got shape {tuple(images.shape)}"
    assert patch.ndim == 3 and patch.shape[0] in (1, images.shape[1]), f"patch must be (C, kh, kw) or (1, kh, kw), got {tuple(patch.shape)}"
    # BEGIN SOLUTION NO PROMPT
    n, c = images.shape[:2]
    kh, kw = patch.shape[-2:]
    tops = torch.as_tensor(top, dtype=torch.int64).expand(n)
    lefts = torch.as_tensor(left, dtype=torch.int64).expand(n)
    rows = tops.view(n, 1, 1) + torch.arange(kh).view(1, kh, 1)
    cols = lefts.view(n, 1, 1) + torch.arange(kw).view(1, 1, kw)
    batch = torch.arange(n).view(n, 1, 1)
    out = images.clone()
    out[batch, :, rows, cols] = patch.to(images.dtype).expand(c, kh, kw).permute(1, 2, 0).expand(n, kh, kw, c)
    return out
    # END SOLUTION
    """ # BEGIN PROMPT
    raise NotImplementedError("apply_patch")
    """ # END PROMPT


def train_patch(model, images, target_class, patch_size, steps, lr, generator=None):
    """A (C, patch_size, patch_size) patch in [0, 1] that makes `model` predict target_class
    wherever it is pasted on `images` (N, C, H, W); positions drawn from `generator`."""
    assert images.ndim == 4, f"images must be (N, C, H, W), got shape {tuple(images.shape)}"
    assert patch_size <= min(images.shape[2], images.shape[3]), "the patch must fit in the image"
    # BEGIN SOLUTION NO PROMPT
    n, c, h, w = images.shape
    param = torch.zeros(c, patch_size, patch_size, dtype=images.dtype, requires_grad=True)
    optimizer = torch.optim.Adam([param], lr=lr)
    targets = torch.full((n,), target_class, dtype=torch.int64)
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            for _ in range(steps):
                top = torch.randint(0, h - patch_size + 1, (n,), generator=generator)
                left = torch.randint(0, w - patch_size + 1, (n,), generator=generator)
                patched = apply_patch(images, torch.sigmoid(param), top, left)
                loss = F.cross_entropy(model(patched), targets)
                (param.grad,) = torch.autograd.grad(loss, param)
                optimizer.step()
    finally:
        model.train(was_training)
    return torch.sigmoid(param).detach()
    # END SOLUTION
    """ # BEGIN PROMPT
    raise NotImplementedError("train_patch")
    """ # END PROMPT

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
blank = torch.zeros(2, 1, 4, 5, dtype=torch.float64)
square = torch.ones(1, 2, 2, dtype=torch.float64)
pasted = apply_patch(blank, square, 1, 3)
assert pasted.shape == (2, 1, 4, 5) and blank.sum() == 0, "apply_patch returns a new tensor of the images' shape and leaves images unchanged"
assert torch.equal(pasted[0, 0, 1:3, 3:5], torch.ones(2, 2, dtype=torch.float64)) and pasted.sum() == 8, "top is the row, left the column of the patch's upper-left pixel; nothing else changes"
each = apply_patch(blank, square, torch.tensor([0, 2]), torch.tensor([0, 1]))
assert each[0, 0, 0, 0] == 1 and each[1, 0, 2, 1] == 1 and each[1, 0, 0, 0] == 0, "with (N,) tensors each image gets its own position"

# %%
colour = torch.full((1, 3, 4, 4), 0.5, dtype=torch.float64)
patch = torch.zeros(1, 2, 2, dtype=torch.float64, requires_grad=True)
result = apply_patch(colour, patch, 0, 0)
assert torch.equal(result[0, :, :2, :2], torch.zeros(3, 2, 2, dtype=torch.float64)), "a (1, kh, kw) patch replaces the pixels of every channel"
result.sum().backward()
assert patch.grad is not None and torch.equal(patch.grad, torch.full((1, 2, 2), 3.0, dtype=torch.float64)), "the result must be differentiable w.r.t. the patch (each patch pixel is used in 3 channels here)"

# %%
toy = nn.Sequential(nn.Flatten(), nn.Linear(16, 3)).double()
pictures = torch.rand(8, 1, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
learned = train_patch(toy, pictures, 2, 2, steps=5, lr=0.1, generator=torch.Generator().manual_seed(0))
assert learned.shape == (1, 2, 2) and learned.dtype == torch.float64, f"the patch is (C, patch_size, patch_size) in the images' dtype, got {tuple(learned.shape)} {learned.dtype}"
assert learned.min() >= 0 and learned.max() <= 1 and not learned.requires_grad, "the patch stays in [0, 1] and is returned without a graph"
again = train_patch(toy, pictures, 2, 2, steps=5, lr=0.1, generator=torch.Generator().manual_seed(0))
assert torch.equal(learned, again), "the same generator seed must give the same patch: draw the positions from the generator argument"
assert all(p.grad is None for p in toy.parameters()), "train the patch only: the model's .grad must stay untouched"

# %%
class Recorder(nn.Module):
    """A stand-in model that keeps where the patch was on every image it saw (the images are
    black); its class 2 logit is the sum of the pixels, the other logits are 0."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(3, 16, dtype=torch.float64))
        with torch.no_grad():
            self.weight[2] = 1.0
        self.seen = []

    def forward(self, x):
        self.seen.append(x.detach().flatten(1) != 0)
        return x.flatten(1) @ self.weight.T


recorder = Recorder()
bright = train_patch(recorder, torch.zeros(8, 1, 4, 4, dtype=torch.float64), 2, 2, steps=5, lr=0.1, generator=torch.Generator().manual_seed(1))
assert len(torch.unique(torch.cat(recorder.seen), dim=0)) > 1, "the patch was pasted at the same place on every image in every step: draw new positions (top, left) for every image in every step, or the patch only works at one spot"
assert bright.mean() > 0.5, "this model's logit for the target class 2 is the sum of the pixels, so training must make the patch brighter than its gray start: minimise the cross-entropy towards target_class (do not step up the loss)"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# ## 5. Accuracy under attack
#
# The **robust accuracy** of a model against an attack is the share of test examples it still
# classifies correctly after the attack has modified each of them. An attack here is any
# function `attack(model, x, y) -> x_adv`, for instance `lambda m, x, y: fgsm(m, x, y, 0.1)`;
# `attack=None` means no attack (the clean accuracy).
#
# `accuracy_under_attack(model, x, y, attack, batch_size)` walks the data in consecutive
# batches `x[i:i + batch_size]` (the last one may be shorter), calls the attack once per batch,
# predicts the attacked batch with the model **in eval mode** and without gradients, and
# returns `(number correct) / N` as a float, counted over all examples (a mean of per-batch
# accuracies is wrong when the last batch is shorter). The attack itself needs gradients, so
# call it **outside** `torch.no_grad()`; only the prediction goes inside. Restore the model's
# mode at the end.

# %% [raw]
# # BEGIN QUESTION
# name: q5
# points: 2

# %% [raw]
# # BEGIN SOLUTION

# %%
def accuracy_under_attack(model, x, y, attack, batch_size):
    """Share of x (N, ...) still classified as y (N,) after attack(model, xb, yb) on each
    consecutive batch; attack None: clean accuracy. Returns a float."""
    assert x.shape[0] == y.shape[0] and batch_size >= 1, "x and y must have the same length and batch_size >= 1"
    # BEGIN SOLUTION NO PROMPT
    was_training = model.training
    correct = 0
    try:
        for start in range(0, len(x), batch_size):
            xb, yb = x[start:start + batch_size], y[start:start + batch_size]
            x_adv = xb if attack is None else attack(model, xb, yb)
            model.eval()
            with torch.no_grad():
                correct += int((model(x_adv).argmax(dim=1) == yb).sum())
    finally:
        model.train(was_training)
    return correct / len(x)
    # END SOLUTION
    """ # BEGIN PROMPT
    raise NotImplementedError("accuracy_under_attack")
    """ # END PROMPT

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
toy = nn.Linear(2, 2, bias=False).double()
toy.weight.data = torch.eye(2, dtype=torch.float64)
points = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.3, 0.2], [0.0, 0.5]], dtype=torch.float64)
truth = torch.tensor([0, 1, 1, 0, 0])
clean = accuracy_under_attack(toy, points, truth, None, batch_size=2)
assert abs(clean - 0.6) < 1e-12, f"the identity model is right on 3 of 5 points: 0.6 over ALL examples, not a mean of batch accuracies; got {clean}"
seen = []
swap = lambda m, xb, yb: seen.append(len(xb)) or xb.flip(1)
attacked = accuracy_under_attack(toy, points, truth, swap, batch_size=2)
assert seen == [2, 2, 1], f"the attack is called once per consecutive batch of batch_size (the last may be shorter): sizes {seen}"
assert abs(attacked - 0.4) < 1e-12, f"swapping the coordinates leaves 2 of 5 correct, got {attacked}"

# %%
net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Dropout(0.5), nn.Linear(4, 2)).double().train()
data = torch.rand(12, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
labels = torch.randint(0, 2, (12,), generator=torch.Generator().manual_seed(1))
def sign_attack(m, xb, yb):
    """The test's stand-in for an attack (q5 is checked apart from fgsm); real attacks differentiate the loss."""
    assert torch.is_grad_enabled(), "accuracy_under_attack called the attack with gradients disabled: an attack differentiates the loss, so call attack(model, xb, yb) outside torch.no_grad() (only the prediction goes inside)"
    return (xb + 0.2 * torch.sign(xb - 0.5)).clamp(0, 1)


robust = [accuracy_under_attack(net, data, labels, sign_attack, 5) for _ in range(2)]
assert robust[0] == robust[1], "predict in eval mode (dropout off): two evaluations must agree"
assert net.training, "restore the mode the model had"


class SwapsInTrainMode(nn.Module):
    """A stand-in model that, like dropout or batch norm, behaves differently in train mode:
    there it swaps its two outputs."""

    def forward(self, x):
        return x.flip(1) if self.training else x


swapper = SwapsInTrainMode().train()
assert abs(accuracy_under_attack(swapper, points, truth, None, batch_size=2) - 0.6) < 1e-12, "predict in eval mode (model.eval() before the prediction): this stand-in model answers differently in train mode"
assert swapper.training, "restore the mode the model had"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# ## 6. Adversarial training
#
# Goodfellow et al. (2015) proposed to train on the attacks themselves: at every step, replace
# the batch by its FGSM examples (made with the current model) and take the usual gradient step
# on them. The model learns to classify everything within `eps` of the training images, a
# min-max problem: minimise over the parameters the loss that the attacker maximises over the
# ball. (Madry et al. use PGD for the inner maximisation; FGSM is cheaper, and good enough for
# small `eps`.)
#
# `adversarial_training_step(model, optimizer, x, y, eps)`:
# 1. `x_adv = fgsm(model, x, y, eps)`; **call your `fgsm` by this name** (the grader
#    replaces it by its own FGSM during this check, so that a bug in your `fgsm` costs only
#    fgsm's points). `fgsm` evaluates in eval mode: the examples are crafted against the model
#    as it will be used;
# 2. `model.train()`: the update runs in train mode (dropout on, batch-norm batch statistics);
# 3. `optimizer.zero_grad()`, `loss = F.cross_entropy(model(x_adv), y)` (one forward pass),
#    `loss.backward()`, `optimizer.step()`;
# 4. return `loss.item()`, the loss on the adversarial batch before the step. The model stays
#    in train mode.

# %% [raw]
# # BEGIN QUESTION
# name: q6
# points: 2.5

# %% [raw]
# # BEGIN SOLUTION

# %%
def adversarial_training_step(model, optimizer, x, y, eps):
    """One optimizer step on fgsm(model, x, y, eps), in train mode. x: (N, ...), y: (N,).
    Returns the adversarial loss (before the step) as a float; the model stays in train mode."""
    assert x.shape[0] == y.shape[0], f"x and y must have the same length, got {x.shape[0]} and {y.shape[0]}"
    # BEGIN SOLUTION NO PROMPT
    x_adv = fgsm(model, x, y, eps)
    model.train()
    optimizer.zero_grad()
    loss = F.cross_entropy(model(x_adv), y)
    loss.backward()
    optimizer.step()
    return loss.item()
    # END SOLUTION
    """ # BEGIN PROMPT
    raise NotImplementedError("adversarial_training_step")
    """ # END PROMPT

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
toy = nn.Linear(3, 2).double()
twin = nn.Linear(3, 2).double()
twin.load_state_dict(toy.state_dict())
batch = torch.rand(4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
targets = torch.tensor([0, 1, 1, 0])
sgd = torch.optim.SGD(toy.parameters(), lr=0.5)
toy.weight.grad = torch.ones_like(toy.weight)  # stale gradient: zero_grad must clear it
toy.eval()
# adversarial_training_step calls your fgsm (q2): check it first against FGSM of a linear model by hand
with torch.no_grad():
    crafted = (batch + 0.1 * ((torch.softmax(twin(batch), 1) - F.one_hot(targets, 2)) @ twin.weight).sign()).clamp(0, 1)
kept = batch.clone()
assert torch.allclose(fgsm(twin, batch, targets, 0.1), crafted, atol=1e-12) and torch.equal(batch, kept) and all(p.grad is None for p in twin.parameters()), "q2 fails: adversarial_training_step calls your fgsm, which must give clamp(x + eps * sign(gradient of the loss), 0, 1) here and leave x and the parameters' .grad alone; fix q2 first"
loss = adversarial_training_step(toy, sgd, batch, targets, 0.1)
assert isinstance(loss, float), f"return the loss as a float (loss.item()), got {type(loss).__name__}"
assert toy.training, "the update runs in train mode, and the model stays in train mode"
manual = F.cross_entropy(twin(crafted), targets)
assert abs(loss - manual.item()) < 1e-12, "the returned loss is the cross-entropy on the FGSM batch, before the step"
manual.backward()
assert torch.allclose(toy.weight, twin.weight - 0.5 * twin.weight.grad, atol=1e-12), "one SGD step on the FGSM examples, after zero_grad (a stale .grad must not be added)"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# ## 7. Experiments (not graded by execution)
#
# Everything below runs your functions against a CNN trained on the course's digits (8x8
# pixels in `[0, 1]`, bundled with scikit-learn: nothing is downloaded). The figures quoted in
# the text come from our run of the solution notebook; training amplifies rounding
# differences, so expect the last digit to move on another machine.
#
# ### 7.1 A digits CNN
# Two 3x3 convolutions, max pooling and a linear layer, trained with Adam for a few epochs
# (one CPU thread: the tensors are tiny, and threads would cost more than they save). In our
# run it reached **0.981** test accuracy.

# %% tags=["experiment"]
# EXPERIMENT: not run by the grader
from student.results import record  # figures for the course's tests; prints nothing
import time

import matplotlib.pyplot as plt
from tqdm.auto import tqdm
from student.data import load_digits_splits, minibatches
from student.plots import show_images
from student.seeding import seeded

torch.set_num_threads(1)
notebook_started = time.perf_counter()
digits = load_digits_splits(seed=0)
train_x, train_y = digits["train"].images, digits["train"].labels
test_x, test_y = digits["test"].images, digits["test"].labels


def make_cnn():
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Dropout(0.3), nn.Linear(32 * 4 * 4, 10))


def train_model(model, step, epochs=12, lr=4e-3, seed=0, label="training"):
    """Adam with a one-cycle learning rate; step(model, optimizer, xb, yb) does one update."""
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    batches_per_epoch = math.ceil(len(train_y) / 64)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=epochs * batches_per_epoch)
    for _ in tqdm(range(epochs), desc=label, leave=False):
        for idx in minibatches(len(train_y), 64, generator):
            step(model, optimizer, train_x[idx], train_y[idx])
            schedule.step()
    return model.eval()


def clean_step(model, optimizer, xb, yb):
    model.train()
    optimizer.zero_grad()
    F.cross_entropy(model(xb), yb).backward()
    optimizer.step()


started = time.perf_counter()
# the layers' initial weights and nn.Dropout's masks come from PyTorch's global generator:
# build and train inside `seeded`, which seeds it for this block only (the kit never seeds it
# for good, so nothing outside the block depends on how many numbers were drawn in it)
with seeded(0):
    cnn = train_model(make_cnn(), clean_step, label="CNN")
clean_accuracy = accuracy_under_attack(cnn, test_x, test_y, None, batch_size=512)
print(f"clean test accuracy {clean_accuracy:.3f} ({time.perf_counter() - started:.1f} s)")
record(clean_test_accuracy=clean_accuracy)

# %% [markdown]
# ### 7.2 Accuracy against eps, FGSM and PGD
# Each point attacks every test image with a perturbation of at most `eps` per pixel (on a
# 0-1 scale: 0.1 is 10% of the range) and measures the accuracy on the attacked images. PGD
# uses 10 steps of `eps / 4` with a random start. In our run the CNN fell from 0.981 to
# **0.62 under FGSM and 0.60 under PGD at eps = 0.1**, and to almost nothing at
# eps = 0.2. PGD is never weaker than FGSM: it searches the same ball more carefully.

# %% tags=["experiment"]
# EXPERIMENT: not run by the grader
attack_generator = torch.Generator().manual_seed(0)
epsilons = [0.0, 0.05, 0.1, 0.15, 0.2, 0.3]
curves = {"FGSM": [], "PGD (10 steps)": []}
for eps in tqdm(epsilons, desc="eps"):
    curves["FGSM"].append(accuracy_under_attack(cnn, test_x, test_y, lambda m, x, y: fgsm(m, x, y, eps), 512))
    curves["PGD (10 steps)"].append(accuracy_under_attack(
        cnn, test_x, test_y, lambda m, x, y: pgd(m, x, y, eps, eps / 4, 10, generator=attack_generator), 512))
figure, axis = plt.subplots(figsize=(6, 3.5))
for name, values in curves.items():
    axis.plot(epsilons, values, marker="o", label=name)
axis.set_xlabel("eps (L-infinity radius)")
axis.set_ylabel("test accuracy under attack")
axis.set_title("Digits CNN under attack")
axis.grid(alpha=0.3)
axis.legend()
plt.show()
for eps, a, b in zip(epsilons, curves["FGSM"], curves["PGD (10 steps)"]):
    print(f"eps {eps:.2f}: FGSM {a:.3f}, PGD {b:.3f}")
record(fgsm_accuracy_eps_0_1=curves['FGSM'][2])
record(pgd_accuracy_eps_0_1=curves['PGD (10 steps)'][2])
record(pgd_minus_fgsm_eps_0_1=curves['PGD (10 steps)'][2] - curves['FGSM'][2])

# %% [markdown]
# The grid shows eight test digits (top) and their PGD versions at eps = 0.1 (bottom), with the
# model's predictions. The perturbation is visible on 8x8 pixels, but the digit is not changed
# for a reader.

# %% tags=["experiment"]
# EXPERIMENT: not run by the grader
sample_x, sample_y = test_x[:8], test_y[:8]
sample_adv = pgd(cnn, sample_x, sample_y, 0.1, 0.025, 10, generator=torch.Generator().manual_seed(1))
with torch.no_grad():
    clean_pred, adv_pred = cnn(sample_x).argmax(1), cnn(sample_adv).argmax(1)
titles = [f"{int(t)} -> {int(p)}" for t, p in zip(sample_y, clean_pred)] + [f"adv: {int(p)}" for p in adv_pred]
show_images(torch.cat([sample_x, sample_adv]), titles=titles, columns=8);

# %% [markdown]
# ### 7.3 Targeted attacks: which digit can become which?
# For every target class, a targeted PGD (eps = 0.2, 10 steps) on every test image; the cell
# `(true, target)` is the share of images of class `true` classified as `target` afterwards
# (the diagonal is trivially 1). The cell prints the mean off-diagonal success: **0.64** in our
# run; some pairs are much easier than others: read them off the grid.

# %% tags=["experiment"]
# EXPERIMENT: not run by the grader
success = torch.zeros(10, 10)
for target in tqdm(range(10), desc="targets"):
    wanted = torch.full_like(test_y, target)
    attacked = pgd(cnn, test_x, wanted, 0.2, 0.05, 10, generator=attack_generator, targeted=True)
    with torch.no_grad():
        predicted = cnn(attacked).argmax(1)
    for true_class in range(10):
        success[true_class, target] = (predicted[test_y == true_class] == target).float().mean()
figure, axis = plt.subplots(figsize=(5, 4.2))
image = axis.imshow(success, vmin=0, vmax=1, cmap="viridis")
axis.set_xlabel("target class")
axis.set_ylabel("true class")
axis.set_xticks(range(10))
axis.set_yticks(range(10))
axis.set_title("targeted PGD success, eps = 0.2")
figure.colorbar(image)
plt.show()
off_diagonal = (success.sum() - success.diagonal().sum()) / 90
print(f"mean off-diagonal success of the targeted attack: {off_diagonal:.2f}")
record(targeted_success_off_diagonal=off_diagonal)

# %% [markdown]
# ### 7.4 The patch
# A 5 x 5 patch trained for three target classes on 256 training digits,
# then pasted at random positions on the test digits of the other classes. In our run it turned
# **0.31** of them into the target on average. On 8x8 digits a patch that works
# everywhere has to be large compared with the image; on the ImageNet models of Brown et al.
# a patch covering about a tenth of the image already fooled the model most of the time.

# %% tags=["experiment"]
# EXPERIMENT: not run by the grader
patch_size = 5
patches, rates = {}, {}
for target in tqdm((0, 3, 7), desc="patches"):
    patch_generator = torch.Generator().manual_seed(target)
    patches[target] = train_patch(cnn, train_x[:256], target, patch_size, steps=300, lr=0.05, generator=patch_generator)
    top = torch.randint(0, 8 - patch_size + 1, (len(test_x),), generator=patch_generator)
    left = torch.randint(0, 8 - patch_size + 1, (len(test_x),), generator=patch_generator)
    others = test_y != target
    with torch.no_grad():
        predicted = cnn(apply_patch(test_x, patches[target], top, left)).argmax(1)
    rates[target] = (predicted[others] == target).float().mean().item()
    print(f"patch for class {target}: success {rates[target]:.3f} on held-out digits")
show_images(torch.stack(list(patches.values())), titles=[f"patch -> {t}" for t in patches], columns=3);
example = apply_patch(test_x[:6], patches[3], 1, 1)
with torch.no_grad():
    example_pred = cnn(example).argmax(1)
show_images(example, titles=[f"pred {int(p)}" for p in example_pred], columns=6);
record(patch_success_mean=sum(rates.values()) / len(rates))

# %% [markdown]
# ### 7.5 Adversarial training
# The same CNN trained from the same initialisation, but every batch replaced by its FGSM
# version at eps_train = 0.1 (your `adversarial_training_step`). We compare clean
# accuracy and robust accuracy against PGD at eps = 0.1 (10 steps, random start), before
# (the CNN of 7.1) and after. In our run: clean 0.981 -> 0.978, robust
# **0.59 -> 0.85**. Robustness costs a little clean accuracy and
# twice the training time (every step crafts its attack first). FGSM training with a small
# eps is not robust against much larger eps: try it.

# %% tags=["experiment"]
# EXPERIMENT: not run by the grader
eps_train, eps_test = 0.1, 0.1
started = time.perf_counter()
with seeded(0):  # initial weights and dropout masks, as for the standard CNN
    robust_cnn = train_model(make_cnn(), lambda m, o, xb, yb: adversarial_training_step(m, o, xb, yb, eps_train), label="adversarial training")
print(f"adversarial training took {time.perf_counter() - started:.1f} s")
pgd_attack = lambda m, x, y: pgd(m, x, y, eps_test, eps_test / 4, 10, generator=attack_generator)
table = {}
for name, model in (("standard", cnn), ("adversarially trained", robust_cnn)):
    table[name] = (accuracy_under_attack(model, test_x, test_y, None, 512), accuracy_under_attack(model, test_x, test_y, pgd_attack, 512))
    print(f"{name:>22}: clean {table[name][0]:.3f}, PGD eps={eps_test} {table[name][1]:.3f}")
record(robust_accuracy_before=table['standard'][1])
record(robust_accuracy_after=table['adversarially trained'][1])
record(clean_accuracy_after=table['adversarially trained'][0])
record(notebook_seconds=time.perf_counter() - notebook_started)
