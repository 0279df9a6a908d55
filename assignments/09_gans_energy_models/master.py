# %% [raw]
# # ASSIGNMENT CONFIG
# name: 09_gans_energy_models
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
# # Chapter 09 — GANs and energy-based models
#
# Both models in this chapter learn to *generate* digits without ever being told what a digit
# looks like pixel by pixel, and both learn by **contrast**: real images against images the
# model itself produced.
#
# * A **generative adversarial network** (GAN, Goodfellow et al., 2014) trains two networks
#   against each other. A *generator* `G` maps random noise `z` to an image `G(z)`; a
#   *discriminator* `D` looks at an image and says how likely it is to be real. `D` learns to
#   tell real from generated; `G` learns, **through** `D`'s gradient, to fool it.
# * An **energy-based model** (EBM) is a single network that gives every image a **score**
#   `s(x)`, high for images that look like the data and low elsewhere. It defines a density
#   `p(x) ∝ exp(s(x))` that we never normalise. To *sample* from it we start from noise and
#   climb the score with **Langevin dynamics** (small gradient steps plus noise); to *train*
#   it we raise the score of real images and lower the score of the model's own samples
#   (**contrastive divergence**), keeping old samples in a **replay buffer** so that the
#   chains do not have to start from scratch at every step.
#
# You write the two GAN losses (stably, from logits), one GAN training step, the Langevin
# sampler, the contrastive-divergence loss and the replay buffer. Autograd computes every
# gradient. The experiments then train a GAN and an EBM on the 8x8 digits and ask a digit
# classifier whether their samples look like digits.
#
# **How this notebook is graded.** Hidden checks call every function and the class below on
# many seeded inputs (mostly float64) and compare with a reference: the value of a loss and its
# gradients with respect to each input are separate items (logits of +-100, +-1000 and exactly
# 0 included, and a float32 check at +-100), and each function is called at least twice in a
# row (the second call is graded). `gan_training_step` is graded with the grader's own
# generator, discriminator, SGD optimizers and noise, and with the **grader's own**
# `discriminator_loss` and `generator_loss` in place of yours (so a loss bug, or a forbidden
# call in a loss, costs only the loss items): call them by these names inside the step. `langevin_sample` is graded exactly
# (the noise comes from the generator you are given) on the grader's score network, and on
# what it leaves behind. The replay buffer is random: it is graded statistically (each test
# misses a correct buffer with probability below 1e-9). Cells marked `# EXPERIMENT` are not
# run by the grader.
#
# {{FORBIDDEN_RULES}}
#
# **Other rules the grader enforces.** Never change an input tensor in place (`x += ...`,
# `x[...] = ...`, `x.clamp_()` on a tensor you were given): every output recorded after an
# input changed fails. Each function and method is called at least twice in a row on different
# inputs, so nothing may carry over from one call to the next. Where a function is graded with
# the grader's own parts in place of yours (the training step, with the grader's losses and
# networks), build and call those parts by their names and never test `isinstance` against
# your own classes or functions.
#
# In short: write `log(1 + exp(z))` yourself, stably (`torch.logaddexp(0, z)` is allowed and
# is the simplest stable form). `torch.nn.Module`, `nn.Linear`, `nn.Conv2d`, `torch.optim`,
# `torch.sigmoid` and autograd are all allowed.
#
# ## Conventions
# * A discriminator returns **logits** of shape `(N,)`: `D(x) = sigmoid(logit)` is its
#   probability that `x` is real.
# * An energy model returns a **score** `s(x) = -E(x)` of shape `(N,)`, **high for real data**
#   (the energy `E` is low there). Everything in this notebook uses scores.
# * Images are `(N, 1, 8, 8)` with pixels in `[-1, 1]` (the digits are rescaled: `2x - 1`), the
#   range of a `tanh` output and of Langevin's clamp.

# %%
import math

import torch
import torch.nn.functional as F
from torch import nn

# %% [markdown]
# ## 1. The GAN losses, from logits
#
# The discriminator is a binary classifier: label 1 for real images, 0 for generated ones.
# With `p = sigmoid(l)` its probability of "real" for a logit `l`, the binary cross-entropy of
# one example is `-log p` when the label is 1 and `-log(1 - p)` when it is 0. Both are the same
# function, **softplus** `sp(z) = log(1 + exp(z))`, at opposite signs of the logit:
#
# ```
# -log sigmoid(l)       = log(1 + exp(-l)) = sp(-l)        (label 1)
# -log(1 - sigmoid(l))  = log(1 + exp(l))  = sp(l)         (label 0)
# ```
#
# For a batch of real logits `r` (N,) and fake logits `f` (M,), the **discriminator loss** is
# the mean over each batch, summed over the two terms (`N` and `M` may differ):
#
# ```
# discriminator_loss(r, f) = mean_i sp(-r_i) + mean_j sp(f_j)
# ```
#
# The generator wants `D` to say "real" on its samples. Goodfellow's original minimax game
# gives it the **saturating** loss `mean_j log(1 - sigmoid(f_j)) = -mean_j sp(f_j)` to
# minimise; we use the **non-saturating** one, which labels the fakes as real:
#
# ```
# generator_loss(f) = mean_j sp(-f_j) = -mean_j log sigmoid(f_j)
# ```
#
# **Why not the saturating loss.** Early in training the discriminator easily rejects the
# generator's samples: `f` is very negative. The derivative of `log(1 - sigmoid(f))` is
# `-sigmoid(f)`, close to 0 there: the generator gets almost no gradient exactly when it is
# worst. The derivative of `sp(-f)` is `-(1 - sigmoid(f))`, close to `-1` there: a strong
# signal. Both losses push `f` up; only one of them does so when it matters. The first
# experiment below plots both.
#
# **Stability.** `sigmoid(100)` is `1` in floating point, so `log(1 - sigmoid(100))` is
# `log(0) = -inf`; in float32 `exp(89)` already overflows, and `log(1 + exp(100))` is `inf`.
# Never compute these literally. The identity `sp(z) = max(z, 0) + log(1 + exp(-|z|))` is
# finite everywhere, but under autograd its gradient at exactly `z = 0` is wrong (`max` and
# `|z|` pass a gradient of 0 or 1 at the kink, instead of `sigmoid(0) = 0.5`); the grader
# tests logits of exactly 0. `torch.logaddexp(a, b) = log(exp(a) + exp(b))` is computed
# stably with the right gradient everywhere: `sp(z) = torch.logaddexp(0, z)` (pass a zero
# tensor as the first argument, e.g. `torch.zeros_like(z)`).
#
# **Worked example.** `r = [0]`, `f = [0]`: `D` says 0.5 to both, and the loss is
# `sp(0) + sp(0) = 2 log 2 = 1.3863`. The gradient with respect to `r_0` is
# `-(1 - sigmoid(0)) / N = -0.5`, with respect to `f_0` it is `sigmoid(0) / M = 0.5`.
# `generator_loss([0]) = log 2`, with gradient `-0.5`. With `r = [4, -2]` and `f = [1, -3, 0]`:
# `(sp(-4) + sp(2)) / 2 + (sp(1) + sp(-3) + sp(0)) / 3 = 1.0725 + 0.6850 = 1.7575`.
#
# Both functions return 0-dim tensors in the dtype of their inputs.

# %% [raw]
# # BEGIN QUESTION
# name: q1
# points: 6

# %% [raw]
# # BEGIN SOLUTION

# %%
def discriminator_loss(real_logits, fake_logits):
    """Binary cross-entropy from logits, real = 1 and fake = 0: mean_i sp(-r_i) + mean_j sp(f_j),
    with sp(z) = log(1 + exp(z)) computed stably.

    real_logits: (N,), fake_logits: (M,). Returns a 0-dim tensor.
    """
    assert real_logits.ndim == 1 and fake_logits.ndim == 1, f"logits are (N,) and (M,), got {tuple(real_logits.shape)} and {tuple(fake_logits.shape)}"
    # BEGIN SOLUTION NO PROMPT
    zero = torch.zeros((), dtype=real_logits.dtype)
    real_term = torch.logaddexp(zero, -real_logits).sum() / real_logits.shape[0]
    fake_term = torch.logaddexp(zero, fake_logits).sum() / fake_logits.shape[0]
    return real_term + fake_term
    # END SOLUTION
    """ # BEGIN PROMPT
    raise NotImplementedError("discriminator_loss")
    """ # END PROMPT


def generator_loss(fake_logits):
    """The non-saturating generator loss: mean_j sp(-f_j) = -mean_j log sigmoid(f_j).

    fake_logits: (M,). Returns a 0-dim tensor.
    """
    assert fake_logits.ndim == 1, f"fake_logits is (M,), got {tuple(fake_logits.shape)}"
    # BEGIN SOLUTION NO PROMPT
    return torch.logaddexp(torch.zeros_like(fake_logits), -fake_logits).mean()
    # END SOLUTION
    """ # BEGIN PROMPT
    raise NotImplementedError("generator_loss")
    """ # END PROMPT

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
real = torch.zeros(1, dtype=torch.float64, requires_grad=True)
fake = torch.zeros(1, dtype=torch.float64, requires_grad=True)
loss = discriminator_loss(real, fake)
assert torch.is_tensor(loss) and loss.shape == (), f"the loss is a 0-dim tensor, got {type(loss).__name__} of shape {tuple(getattr(loss, 'shape', ()))}"
loss.backward()
assert abs(loss.item() - 2 * math.log(2)) < 1e-12, "at logits 0 the loss is sp(0) + sp(0) = 2 log 2: real labelled 1, fake 0, each term a mean"
assert abs(real.grad.item() + 0.5) < 1e-12 and abs(fake.grad.item() - 0.5) < 1e-12, "at a logit of exactly 0 the gradients are -0.5 (real) and +0.5 (fake): max/abs forms get 0 or 1 there; use torch.logaddexp"

# %%
loss = discriminator_loss(torch.tensor([4.0, -2.0], dtype=torch.float64), torch.tensor([1.0, -3.0, 0.0], dtype=torch.float64))
sp = lambda z: math.log1p(math.exp(z))
assert abs(loss.item() - ((sp(-4) + sp(2)) / 2 + (sp(1) + sp(-3) + sp(0)) / 3)) < 1e-10, "the worked example: one mean per batch (N = 2 real, M = 3 fake), summed; label 1 for real"

# %%
fake = torch.tensor([0.0], dtype=torch.float64, requires_grad=True)
loss = generator_loss(fake)
loss.backward()
assert abs(loss.item() - math.log(2)) < 1e-12 and abs(fake.grad.item() + 0.5) < 1e-12, "generator_loss([0]) = log 2 with gradient -0.5"
assert abs(generator_loss(torch.zeros(2, dtype=torch.float64)).item() - math.log(2)) < 1e-12, "generator_loss is a MEAN over the batch, not a sum: two samples at logit 0 still cost log 2"
assert generator_loss(torch.tensor([-5.0], dtype=torch.float64)).item() > 5.0, "a rejected sample (logit -5) must cost the generator a lot: the non-saturating loss sp(-f), not log(1 - sigmoid(f))"

# %%
extreme = torch.tensor([100.0, -100.0], requires_grad=True)
loss = discriminator_loss(extreme, -extreme) + generator_loss(extreme)
loss.backward()
assert loss.dtype == torch.float32 and torch.isfinite(loss) and abs(loss.item() - 150.0) < 1e-3, "float32 logits of +-100 must give finite losses (about 100 and 50 here): compute sp(z) = log(1 + exp(z)) stably"
assert torch.isfinite(extreme.grad).all(), "the gradients at logits of +-100 must be finite"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# ### Experiment: saturating and non-saturating generator losses
# The plot shows both generator losses and their derivatives against the logit `f` the
# discriminator gives a fake sample. Where `D` confidently rejects the sample (`f` below about
# -3) the saturating loss is flat: its gradient vanishes.

# %% tags=["experiment"]
# EXPERIMENT: not run by the grader
from student.results import record  # figures for the course's tests; prints nothing
import matplotlib.pyplot as plt

logit_axis = torch.linspace(-8, 8, 401, dtype=torch.float64, requires_grad=True)
saturating = torch.log1p(-torch.sigmoid(logit_axis))  # log(1 - sigmoid(f)), minimised
non_saturating = torch.stack([generator_loss(logit_axis[i:i + 1]) for i in range(len(logit_axis))])
curves = {}
for name, values in (("saturating: log(1 - sigmoid(f))", saturating), ("non-saturating: -log sigmoid(f)", non_saturating)):
    (gradient,) = torch.autograd.grad(values.sum(), logit_axis)
    curves[name] = (values.detach(), gradient)
loss_figure, loss_axes = plt.subplots(1, 2, figsize=(10, 3.5))
for name, (values, gradient) in curves.items():
    loss_axes[0].plot(logit_axis.detach(), values, label=name)
    loss_axes[1].plot(logit_axis.detach(), gradient, label=name)
loss_axes[0].set(xlabel="discriminator logit f of a fake sample", ylabel="generator loss", title="The two generator losses")
loss_axes[1].set(xlabel="discriminator logit f of a fake sample", ylabel="d loss / d f", title="Their gradients")
for axis in loss_axes:
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
plt.show()

# %% [markdown]
# ## 2. One GAN training step
#
# A step alternates two updates on one batch of real images `real` (N, ...) and one batch of
# noise `z` (M, latent):
#
# 1. `fake = generator(z)`.
# 2. **Discriminator update.** `opt_d.zero_grad()`; `d_loss = discriminator_loss(
#    discriminator(real), discriminator(fake.detach()))`; `d_loss.backward()`;
#    `opt_d.step()`. The **`detach`** cuts the graph between the fake batch and the generator:
#    this update must not compute (nor leave behind) gradients for the generator's parameters.
# 3. **Generator update**, through the **updated** discriminator: `opt_g.zero_grad()`;
#    `g_loss = generator_loss(discriminator(fake))`; `g_loss.backward()`; `opt_g.step()`.
#    Here `fake` is *not* detached: the gradient flows through `D` into `G`. It also reaches
#    `D`'s parameters, which is harmless only because `D`'s gradients are cleared before its
#    next backward.
#
# Call `discriminator(fake)` **again** after `opt_d.step()`: the logits computed before the
# update belong to the old discriminator (PyTorch even refuses to back-propagate through them,
# because `opt_d.step()` changed the weights they were computed from in place). Reusing `fake`
# itself is fine: the generator has not changed yet.
#
# **Clear the gradients right before each backward.** `.backward()` *adds* to `.grad`; the
# networks may arrive with gradients left over from anything done before (the grader hands
# them over with stale gradients, and calls your step twice in a row).
#
# Return `(d_loss.item(), g_loss.item())`, two Python floats. Use the functions of section 1
# by their names: the grader replaces them with its own while it grades this step. (A call
# the grader forbids inside your losses still costs this step's items too: the step calls them.)

# %% [raw]
# # BEGIN QUESTION
# name: q2
# points: 2.5

# %% [raw]
# # BEGIN SOLUTION

# %%
def gan_training_step(generator, discriminator, opt_g, opt_d, real, z):
    """One discriminator update (real vs detached fake), then one generator update through the
    updated discriminator. Returns (discriminator loss, generator loss) as Python floats.

    real: (N, ...) real images; z: (M, latent) noise; the discriminator returns logits (N,).
    """
    assert real.shape[0] >= 1 and z.shape[0] >= 1, "real and z need at least one row each"
    # BEGIN SOLUTION NO PROMPT
    samples = generator(z)
    discriminator.zero_grad()
    opt_d.zero_grad()
    loss_d = discriminator_loss(discriminator(real), discriminator(samples.detach()))
    loss_d.backward()
    opt_d.step()
    opt_g.zero_grad()
    loss_g = generator_loss(discriminator(samples))
    loss_g.backward()
    opt_g.step()
    return float(loss_d.detach()), float(loss_g.detach())
    # END SOLUTION
    """ # BEGIN PROMPT
    raise NotImplementedError("gan_training_step")
    """ # END PROMPT

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
import copy
from student.seeding import seeded
with seeded(0):
    test_generator = nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 3)).double()
    test_discriminator = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 1), nn.Flatten(0)).double()
generator_before = copy.deepcopy(test_generator)
data = torch.Generator().manual_seed(0)
losses = gan_training_step(test_generator, test_discriminator, torch.optim.SGD(test_generator.parameters(), lr=0.1), torch.optim.SGD(test_discriminator.parameters(), lr=0.1), torch.randn(6, 3, dtype=torch.float64, generator=data), torch.randn(5, 2, dtype=torch.float64, generator=data))
assert isinstance(losses, tuple) and len(losses) == 2 and all(isinstance(v, float) for v in losses), f"return (d_loss.item(), g_loss.item()), two Python floats; got {losses!r}"
assert all(not torch.equal(a, b) for a, b in zip(test_generator.parameters(), generator_before.parameters())), "every parameter of the generator must be updated (opt_g.step(), through the discriminator)"

# %%
import copy
from student.seeding import seeded
with seeded(1):
    test_generator = nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 3)).double()
    test_discriminator = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 1), nn.Flatten(0)).double()
for parameter in [*test_generator.parameters(), *test_discriminator.parameters()]:
    parameter.grad = torch.full_like(parameter, 1e6)  # stale gradients
generator_before = copy.deepcopy(test_generator)
data = torch.Generator().manual_seed(1)
z = torch.randn(5, 2, dtype=torch.float64, generator=data)
_, g_loss = gan_training_step(test_generator, test_discriminator, torch.optim.SGD(test_generator.parameters(), lr=0.1), torch.optim.SGD(test_discriminator.parameters(), lr=0.1), torch.randn(6, 3, dtype=torch.float64, generator=data), z)
moved = max((a - b).abs().max().item() for a, b in zip(test_generator.parameters(), generator_before.parameters()))
assert moved < 10, "a parameter moved by about 1e5: clear the gradients (zero_grad) right before each backward"
with torch.no_grad():
    expected = generator_loss(test_discriminator(generator_before(z))).item()
assert abs(g_loss - expected) < 1e-10, "the generator loss is computed through the discriminator after its update (call discriminator(fake) again after opt_d.step())"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# ## 3. Energy-based models and Langevin sampling
#
# An energy model is a network `s(x)` (the **score**, `s = -E`) that defines the density
#
# ```
# p(x) = exp(s(x)) / Z,        Z = integral of exp(s(x)) over all images
# ```
#
# `Z` is intractable, but we never need it: its gradient with respect to `x` is 0, so
# `grad_x log p(x) = grad_x s(x)`, and **Langevin dynamics** samples from `p` using only that
# gradient. From a starting image, repeat: move a small step *up* the score, and add a little
# Gaussian noise. With an infinitesimal step and enough steps the chain's images are
# distributed as `p`; in practice (as in Du and Mordatch, 2019) we take a few dozen larger steps
# from noise or from earlier samples, and keep the images in their valid range.
#
# `langevin_sample(model, x, steps, step_size, noise_std, generator, clamp=(-1.0, 1.0),
# grad_clip=0.03)` runs `steps` steps from `x` (N, ...). **Each step, in this order:**
#
# 1. `x = x + noise_std * torch.randn(x.shape, generator=generator, dtype=x.dtype)`
#    (draw exactly this, once per step, even when `noise_std` is 0);
# 2. clamp `x` to `[clamp[0], clamp[1]]`;
# 3. `g` = gradient of `model(x).sum()` with respect to `x` (each image's score depends only
#    on that image, so the sum gives every image its own gradient), clipped elementwise to
#    `[-grad_clip, grad_clip]`;
# 4. `x = x + step_size * g` (**up** the score: towards data);
# 5. clamp `x` again.
#
# Clipping the gradient keeps one step from jumping across the image when the score is steep,
# which early in training it often is.
#
# **Leave the model as you found it.** Sampling is not training:
# * run the model in **eval mode** (`model.eval()`: batch norm and dropout behave as at test
#   time) and restore its mode afterwards (`was_training = model.training` ...
#   `model.train(was_training)`);
# * the parameters must receive **no gradient**: freeze them with `p.requires_grad_(False)`
#   during sampling and restore **each parameter's own** flag afterwards (a parameter that was
#   frozen stays frozen), or use `torch.autograd.grad(score, x)`, which computes only the
#   gradient you ask for; their values and their existing `.grad` must stay exactly as they
#   were (no `zero_grad`);
# * work on a copy: `x.detach().clone()`; never change the caller's `x` in place;
# * return the samples **without a graph** (`.detach()`), in `x`'s shape and dtype.
#
# Use `try`/`finally` for the restoring, and `torch.enable_grad()` around the gradient, so that
# sampling also works when the caller runs it under `torch.no_grad()`.
#
# **Worked example.** `s(x) = -|x|^2` has gradient `-2x`. With `noise_std = 0`, a large
# `grad_clip` and `step_size = 0.1`, one step maps `x` to `x - 0.2 x = 0.8 x`: the chain slides
# towards the score's maximum at 0. With `grad_clip = 0.03`, `x = [0.5]` moves only to
# `0.5 - 0.1 * 0.03 = 0.497`.

# %% [raw]
# # BEGIN QUESTION
# name: q3
# points: 4

# %% [raw]
# # BEGIN SOLUTION

# %%
def langevin_sample(model, x, steps, step_size, noise_std, generator, clamp=(-1.0, 1.0), grad_clip=0.03):
    """Langevin dynamics up the score model(x): per step, add noise_std * randn (from
    generator), clamp, step by step_size * (gradient of model(x).sum() clipped to +-grad_clip),
    clamp. The model's mode, parameters, gradients and requires_grad flags are left as found.

    x: (N, ...). Returns a tensor of x's shape and dtype without a graph.
    """
    assert steps >= 0 and clamp[0] < clamp[1], f"steps >= 0 and clamp = (low, high) with low < high, got {steps} and {clamp}"
    # BEGIN SOLUTION NO PROMPT
    was_training = model.training
    parameters = list(model.parameters())
    flags = [p.requires_grad for p in parameters]
    model.eval()
    for p in parameters:
        p.requires_grad = False
    try:
        images = x.detach().clone()
        for _ in range(steps):
            images = images + noise_std * torch.randn(images.shape, generator=generator, dtype=images.dtype)
            images = torch.clamp(images, clamp[0], clamp[1]).requires_grad_(True)
            with torch.enable_grad():
                model(images).sum().backward()
            with torch.no_grad():
                images = torch.clamp(images + step_size * torch.clamp(images.grad, -grad_clip, grad_clip), clamp[0], clamp[1])
        return images.detach()
    finally:
        for p, flag in zip(parameters, flags):
            p.requires_grad = flag
        model.train(was_training)
    # END SOLUTION
    """ # BEGIN PROMPT
    raise NotImplementedError("langevin_sample")
    """ # END PROMPT

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
class Bowl(nn.Module):
    """s(x) = -scale * |x|^2 per row: the gradient is -2 * scale * x."""
    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones((), dtype=torch.float64))
    def forward(self, x):
        return -self.scale * x.flatten(1).pow(2).sum(dim=1)

bowl = Bowl()
start = torch.tensor([[0.5, -0.25], [0.0, 1.0]], dtype=torch.float64)
moved = langevin_sample(bowl, start, 1, 0.1, 0.0, torch.Generator().manual_seed(0), grad_clip=100.0)
assert moved.shape == start.shape and moved.dtype == start.dtype, "return a tensor of x's shape and dtype"
assert torch.allclose(moved, 0.8 * start), "one noiseless step up the score -|x|^2 with step 0.1 maps x to 0.8 x: move along +gradient"
assert torch.allclose(langevin_sample(bowl, start, 1, 0.1, 0.0, torch.Generator().manual_seed(0)), start - 0.003 * start.sign()), "with the default grad_clip 0.03 each coordinate moves by at most step_size * 0.03"
assert torch.equal(start, torch.tensor([[0.5, -0.25], [0.0, 1.0]], dtype=torch.float64)), "never change the caller's x in place"

# %%
class Flat(nn.Module):
    """A constant score: only the noise and the clamp move the chain."""
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(2, dtype=torch.float64))
    def forward(self, x):
        return x.flatten(1) @ self.weight

start = torch.zeros(3, 2, dtype=torch.float64)
noisy = langevin_sample(Flat(), start, 1, 1.0, 0.1, torch.Generator().manual_seed(3))
expected = (0.1 * torch.randn((3, 2), generator=torch.Generator().manual_seed(3), dtype=torch.float64)).clamp(-1, 1)
assert torch.allclose(noisy, expected), "step 1 adds noise_std * torch.randn(x.shape, generator=generator, dtype=x.dtype) before the gradient step"
far = langevin_sample(Flat(), start, 1, 1.0, 10.0, torch.Generator().manual_seed(4), clamp=(0.0, 1.0))
assert far.min() >= 0.0 and far.max() <= 1.0, "clamp the samples to [clamp[0], clamp[1]]"

# %%
# one step with noise on the bowl (step 0.1, no clipping): x -> x + noise, clamped, then 0.8 times that
start = torch.tensor([[0.5, -0.25, 0.0], [0.25, 0.125, -0.5]], dtype=torch.float64)
noise = 0.1 * torch.randn(start.shape, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
moved = langevin_sample(Bowl(), start, 1, 0.1, 0.1, torch.Generator().manual_seed(7), grad_clip=100.0)
assert torch.allclose(moved, 0.8 * (start + noise)), "add the noise first (step 1), then take the gradient step at the noisy point (steps 3 and 4)"
start = torch.tensor([[0.9, -0.9, 0.95], [-0.95, 0.85, -0.8]], dtype=torch.float64)
noise = torch.randn(start.shape, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
moved = langevin_sample(Bowl(), start, 1, 0.1, 1.0, torch.Generator().manual_seed(8), grad_clip=100.0)
assert torch.allclose(moved, 0.8 * (start + noise).clamp(-1, 1)), "clamp after adding the noise (step 2), before the gradient step, and again after it"

# %%
class ModeBowl(nn.Module):
    """s(x) = -|x|^2, but 3 times steeper in training mode (as batch norm or dropout, the
    network behaves differently there)."""
    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones((), dtype=torch.float64))
    def forward(self, x):
        return -self.scale * (3.0 if self.training else 1.0) * x.flatten(1).pow(2).sum(dim=1)

start = torch.tensor([[0.5, -0.25], [0.0, 1.0]], dtype=torch.float64)
mode_bowl = ModeBowl()
mode_bowl.train()
moved = langevin_sample(mode_bowl, start, 1, 0.1, 0.0, torch.Generator().manual_seed(0), grad_clip=100.0)
assert torch.allclose(moved, 0.8 * start), "sample with the model in eval mode (model.eval(), then restore its mode): this score is steeper in training mode"

# %%
bowl = Bowl()
bowl.train()
bowl.scale.requires_grad_(False)
samples = langevin_sample(bowl, torch.rand(4, 2, dtype=torch.float64), 3, 0.1, 0.01, torch.Generator().manual_seed(5))
assert bowl.training, "restore the model's mode: it was in training mode"
assert not bowl.scale.requires_grad, "restore each parameter's own requires_grad flag (this one was frozen)"
assert not samples.requires_grad and samples.grad_fn is None, "return the samples without a graph (.detach())"
bowl = Bowl()
langevin_sample(bowl, torch.rand(4, 2, dtype=torch.float64), 3, 0.1, 0.01, torch.Generator().manual_seed(6))
assert bowl.scale.grad is None and bowl.scale.requires_grad, "sampling must not give the parameters gradients, and must restore requires_grad = True"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# ## 4. The contrastive-divergence loss
#
# Maximum likelihood for `p(x) = exp(s(x)) / Z` has a remarkably simple gradient with respect
# to the parameters `theta`:
#
# ```
# grad_theta log p(x_real) = grad_theta s(x_real) - E_{x ~ p}[ grad_theta s(x) ]
# ```
#
# (the second term is the gradient of `log Z`). Raise the score of the data, lower the score of
# the model's own samples. Replacing the expectation by samples from Langevin chains gives the
# **contrastive-divergence** loss, to minimise:
#
# ```
# divergence = mean(s(x_fake)) - mean(s(x_real))
# ```
#
# When the model's samples look like the data, the two means agree and the gradient vanishes.
#
# This loss alone is unbounded below: nothing stops the network from multiplying every score by
# 10 (the divergence is then 10 times more negative), and the scores, and with them the
# gradients Langevin follows, grow without bound; training diverges. A small **regularizer**
# keeps the scores near 0 (Du and Mordatch, 2019):
#
# ```
# regularization = alpha * mean(s_real^2 + s_fake^2)        (real and fake batches of equal size N)
# loss           = regularization + divergence
# ```
#
# `contrastive_divergence_loss(real_scores, fake_scores, alpha)` takes the scores (N,) and
# returns the tuple `(loss, regularization, divergence)` of 0-dim tensors (the experiment plots
# the two parts). The fake samples are constants here (Langevin returned them without a graph):
# the gradient reaches the parameters through the scores.
#
# **Worked example.** `real = [2, 0]`, `fake = [-1, 1]`, `alpha = 0.1`: `divergence = 0 - 1 =
# -1`; `regularization = 0.1 * mean([4 + 1, 0 + 1]) = 0.3`; `loss = -0.7`.

# %% [raw]
# # BEGIN QUESTION
# name: q4
# points: 3

# %% [raw]
# # BEGIN SOLUTION

# %%
def contrastive_divergence_loss(real_scores, fake_scores, alpha):
    """(loss, regularization, divergence): regularization = alpha * mean(real^2 + fake^2),
    divergence = mean(fake) - mean(real), loss = regularization + divergence.

    real_scores, fake_scores: (N,). Returns three 0-dim tensors.
    """
    assert real_scores.shape == fake_scores.shape and real_scores.ndim == 1, f"scores are (N,) and (N,), got {tuple(real_scores.shape)} and {tuple(fake_scores.shape)}"
    # BEGIN SOLUTION NO PROMPT
    n = real_scores.shape[0]
    divergence = (fake_scores - real_scores).sum() / n
    regularization = alpha * (real_scores * real_scores + fake_scores * fake_scores).sum() / n
    return divergence + regularization, regularization, divergence
    # END SOLUTION
    """ # BEGIN PROMPT
    raise NotImplementedError("contrastive_divergence_loss")
    """ # END PROMPT

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
real = torch.tensor([2.0, 0.0], dtype=torch.float64, requires_grad=True)
fake = torch.tensor([-1.0, 1.0], dtype=torch.float64, requires_grad=True)
parts = contrastive_divergence_loss(real, fake, 0.1)
assert isinstance(parts, tuple) and len(parts) == 3, "return the tuple (loss, regularization, divergence)"
loss, regularization, divergence = parts
assert abs(divergence.item() + 1.0) < 1e-12, "divergence = mean(fake) - mean(real) (here 0 - 1 = -1)"
assert abs(regularization.item() - 0.3) < 1e-12, "regularization = alpha * mean(real**2 + fake**2) (here 0.3)"
assert abs(loss.item() + 0.7) < 1e-12, "loss = regularization + divergence"
loss.backward()
assert torch.allclose(real.grad, torch.tensor([0.1 * 2 * 2 / 2 - 0.5, -0.5], dtype=torch.float64)), "the gradient must flow from the loss to real_scores"
# d loss / d fake_j = (2 * alpha * fake_j + 1) / N: (2 * 0.1 * -1 + 1) / 2 and (2 * 0.1 * 1 + 1) / 2
assert fake.grad is not None and torch.allclose(fake.grad, torch.tensor([0.4, 0.6], dtype=torch.float64)), "the gradient must flow from the loss to fake_scores too (do not detach them: the samples are constants, their scores are not)"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# ## 5. The replay buffer
#
# Chains started from pure noise need many Langevin steps before they look like anything.
# Du and Mordatch keep the samples of earlier training steps in a **replay buffer** and start
# most new chains from them: each training step then continues chains that have already run
# for many steps in total, and a few fresh chains from noise keep the samples diverse.
#
# `ReplayBuffer(max_size, sample_shape)` starts **empty**.
# * `sample(n, generator)` returns `n` starting points `(n, *sample_shape)`. Each row,
#   independently with probability **0.05**, is **fresh noise**, uniform in `[-1, 1)`
#   (`2 * torch.rand(..., generator=generator) - 1`); otherwise it is a copy of one stored
#   sample chosen **uniformly at random, with replacement** (`torch.randint(len, (n,),
#   generator=generator)`). While the buffer is empty every row is fresh noise. Draw every
#   random number from `generator` (the same seed gives the same rows); sampling does not
#   change the buffer.
# * `push(samples)` stores **copies** of the rows of `samples` `(B, *sample_shape)` (the
#   caller may reuse its tensor: `samples.detach().clone()`). Rows pushed later are newer, and
#   within one push, later rows are newer. Beyond `max_size` rows, the **oldest** are dropped:
#   the buffer always holds the `max_size` most recent rows (all of them if fewer were pushed).
#
# Store the samples as float32 (the images of the experiments are float32), e.g. in one
# tensor, newest last. The buffer's own `torch.rand`/`torch.randint` draws decide which rows are
# fresh; the grader checks the share of fresh rows, where the other rows come from and which
# rows are kept, statistically and exactly, not the order of your random draws.

# %% [raw]
# # BEGIN QUESTION
# name: q5
# points: 3.5

# %% [raw]
# # BEGIN SOLUTION

# %%
class ReplayBuffer:
    """Starting points for Langevin chains: fresh uniform noise with probability 0.05 per
    row, otherwise a stored sample; keeps the max_size most recent pushed rows."""

    def __init__(self, max_size, sample_shape):
        """max_size: the most rows kept; sample_shape: the shape of one row, e.g. (1, 8, 8)."""
        assert max_size >= 1, f"max_size must be positive, got {max_size}"
        # BEGIN SOLUTION NO PROMPT
        self.max_size = max_size
        self.shape = tuple(sample_shape)
        self.rows = []
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("ReplayBuffer.__init__")
        """ # END PROMPT

    def sample(self, n, generator):
        """n starting points (n, *sample_shape): each row fresh noise in [-1, 1) with
        probability 0.05, otherwise a uniformly chosen stored row (all fresh while empty)."""
        assert n >= 1, f"n must be positive, got {n}"
        # BEGIN SOLUTION NO PROMPT
        noise = torch.rand((n, *self.shape), generator=generator) * 2 - 1
        if not self.rows:
            return noise
        stored = torch.stack(self.rows)
        picks = stored[torch.randint(len(self.rows), (n,), generator=generator)]
        use_noise = torch.rand(n, generator=generator) < 0.05
        picks[use_noise] = noise[use_noise]
        return picks
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("ReplayBuffer.sample")
        """ # END PROMPT

    def push(self, samples):
        """Stores copies of the rows of samples (B, *sample_shape), later rows newer; keeps only
        the max_size most recent rows."""
        assert samples.ndim >= 1 and samples.shape[0] >= 1, f"samples is (B, *sample_shape) with B >= 1, got shape {tuple(samples.shape)}"
        # BEGIN SOLUTION NO PROMPT
        self.rows.extend(row.clone() for row in samples.detach().float())
        del self.rows[:max(0, len(self.rows) - self.max_size)]
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("ReplayBuffer.push")
        """ # END PROMPT

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
buffer = ReplayBuffer(2, (3,))
first = buffer.sample(4, torch.Generator().manual_seed(0))
assert tuple(first.shape) == (4, 3) and (first >= -1).all() and (first < 1).all(), "an empty buffer gives fresh noise (n, *sample_shape), uniform in [-1, 1)"
assert torch.equal(first, buffer.sample(4, torch.Generator().manual_seed(0))), "draw every random number from the generator argument"
many = buffer.sample(1000, torch.Generator().manual_seed(2))
assert (many >= -1).all() and (many < 1).all() and abs(many.mean().item()) < 0.1, "fresh noise is uniform in [-1, 1) (2 * torch.rand(..., generator=generator) - 1): its mean is near 0"

# %%
buffer = ReplayBuffer(2, (3,))
pushed = torch.tensor([[5.0] * 3, [6.0] * 3, [7.0] * 3])
buffer.push(pushed[:1])
buffer.push(pushed[1:])
pushed += 100.0  # the caller reuses its tensor
rows = buffer.sample(20000, torch.Generator().manual_seed(1))
kept = set(rows[rows[:, 0] > 2, 0].tolist())
assert kept == {6.0, 7.0}, f"with max_size 2 after pushing rows 5, 6, 7 the buffer keeps copies of the two newest, 6 and 7; sampled stored rows hold {sorted(kept)}"
fresh_share = (rows[:, 0] < 2).double().mean().item()
assert 0.03 < fresh_share < 0.07, f"about 5% of the sampled rows are fresh noise, got {fresh_share:.3f}"
assert torch.equal(buffer.sample(50, torch.Generator().manual_seed(3)), buffer.sample(50, torch.Generator().manual_seed(3))), "the same seed must give the same rows once the buffer holds samples too: draw the choice of rows and of fresh rows from the generator argument"
buffer = ReplayBuffer(2, (3,))
buffer.push(torch.tensor([[5.0] * 3, [6.0] * 3, [7.0] * 3]))  # one push larger than max_size
rows = buffer.sample(2000, torch.Generator().manual_seed(4))
kept = set(rows[rows[:, 0] > 2, 0].tolist())
assert kept == {6.0, 7.0}, f"one push of rows 5, 6, 7 into a buffer of max_size 2 keeps the two newest, its last rows 6 and 7; sampled stored rows hold {sorted(kept)}"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# ## 6. Concept questions
#
# **(a) The optimal discriminator.** For a fixed generator whose samples have density
# `p_g(x)`, the discriminator loss is, per image `x`,
# `-p_data(x) log D(x) - p_g(x) log(1 - D(x))` (integrated over `x`). Minimise it over the
# number `D(x)` (set the derivative to 0): what does the best discriminator output at a point
# where `p_data(x) = 0.3` and `p_g(x) = 0.1`? And what is the discriminator loss of section 1
# at the GAN's equilibrium, when the generator is perfect (`p_g = p_data`) and the
# discriminator optimal (give the number; at equilibrium `D` cannot do better than a coin)?
#
# **(b) The regularizer of the contrastive-divergence loss prevents** (choose one):
# 1. the real and fake scores from becoming equal;
# 2. the scores from growing without bound, since the divergence alone can be made
#    arbitrarily negative by scaling all scores up;
# 3. the Langevin chains from leaving `[-1, 1]`;
# 4. the model from overfitting to the replay buffer.
#
# Write your answers in `concept_answers()`: a dict with `"optimal_discriminator"` (a number
# in `[0, 1]`), `"equilibrium_loss"` (a number) and `"regularizer_prevents"` (1, 2, 3 or 4).

# %% [raw]
# # BEGIN QUESTION
# name: q6
# points: 1.5

# %% [raw]
# # BEGIN SOLUTION

# %%
def concept_answers():
    """Answers to the concept questions of section 6."""
    # BEGIN SOLUTION NO PROMPT
    return {"optimal_discriminator": 0.75, "equilibrium_loss": 1.3863, "regularizer_prevents": 2}
    # END SOLUTION
    """ # BEGIN PROMPT
    # return {"optimal_discriminator": ..., "equilibrium_loss": ..., "regularizer_prevents": ...}
    raise NotImplementedError("concept_answers")
    """ # END PROMPT

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
answers = concept_answers()
assert set(answers) == {"optimal_discriminator", "equilibrium_loss", "regularizer_prevents"}, f"concept_answers() returns a dict with exactly the keys optimal_discriminator, equilibrium_loss, regularizer_prevents; got {sorted(answers)}"
assert 0 <= answers["optimal_discriminator"] <= 1, "a discriminator outputs a probability, in [0, 1]"
assert answers["regularizer_prevents"] in (1, 2, 3, 4), "regularizer_prevents is the number of your choice, 1 to 4"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# ## 7. Experiments (not graded by execution)
#
# ### 7.1 A judge: a digit classifier
# To measure whether generated images look like digits we train a small classifier (an MLP,
# 30 epochs of Adam) on the training and validation digits, rescaled to `[-1, 1]`, and ask it
# how **confident** it is: the fraction of images whose most likely class gets a probability
# above 0.9. In our run of the solution notebook it reached about 97% test accuracy, was
# confident on about 87% of the real test digits and on about 1% of uniform noise images.

# %% tags=["experiment"]
# EXPERIMENT: not run by the grader
import time

from tqdm.auto import tqdm
from student.data import load_digits_splits
from student.plots import plot_curves, show_images
from student.seeding import seeded

notebook_started = time.perf_counter()
torch.set_num_threads(1)
digit_splits = load_digits_splits(seed=0)
train_images = torch.cat([digit_splits["train"].images, digit_splits["val"].images]) * 2 - 1
train_labels = torch.cat([digit_splits["train"].labels, digit_splits["val"].labels])
test_images, test_labels = digit_splits["test"].images * 2 - 1, digit_splits["test"].labels
print("training images:", tuple(train_images.shape), "| test images:", tuple(test_images.shape))

with seeded(0):  # the layers draw their initial weights from the global generator
    judge = nn.Sequential(nn.Flatten(), nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
judge_optimizer = torch.optim.Adam(judge.parameters(), lr=1e-3)
data_generator = torch.Generator().manual_seed(0)
for epoch in tqdm(range(30), desc="digit classifier"):
    order = torch.randperm(len(train_images), generator=data_generator)
    for start in range(0, len(order), 64):
        batch = order[start:start + 64]
        judge_loss = F.cross_entropy(judge(train_images[batch]), train_labels[batch])
        judge_optimizer.zero_grad()
        judge_loss.backward()
        judge_optimizer.step()
judge.eval()


def confident_fraction(images, threshold=0.9):
    """The share of images whose most likely digit has a probability above threshold."""
    with torch.no_grad():
        return (F.softmax(judge(images), dim=1).max(dim=1).values > threshold).double().mean().item()


with torch.no_grad():
    judge_accuracy = (judge(test_images).argmax(dim=1) == test_labels).double().mean().item()
noise_images = 2 * torch.rand(512, 1, 8, 8, generator=data_generator) - 1
print(f"test accuracy {judge_accuracy:.3f}; confident (> 0.9) on {confident_fraction(test_images):.2f} of the test digits "
      f"and on {confident_fraction(noise_images):.2f} of uniform noise")
record(judge_test_accuracy=judge_accuracy)
record(judge_confident_on_noise=confident_fraction(noise_images))

# %% [markdown]
# ### 7.2 A GAN on the digits
# Generator: `z` (16 numbers) -> 128 -> 256 -> 64 pixels (LeakyReLU, then `tanh` for pixels
# in `[-1, 1]`). Discriminator: 64 pixels -> 256 -> 128 -> 1 logit (LeakyReLU). Adam with
# `lr = 1e-3` and `beta1 = 0.5` (the usual GAN setting: less momentum keeps the two players
# from overshooting each other), batches of 64, 2000 steps of your `gan_training_step`. We
# keep a fixed batch of noise to watch the same `z` become digits.
#
# In our run (one thread; 8 s on the machine these figures come from, 14 s on a shared 2-core
# machine: the cell prints its own time), the discriminator loss (averaged over 50 steps) started at 1.25,
# close to `2 log 2 = 1.39` (a coin), went down to about 1.0 and ended at 1.1, while the
# generator loss rose from 0.9 to 1.6 and came back to 1.2: the two losses move against each
# other. A GAN's losses do not decrease together: they measure the two players against each
# other, not the quality of the samples. The samples of the fixed noise went from random
# pixels (step 0) to one blurry average digit for every `z` (step 100: the generator first
# learns the dark border and a bright middle) to distinct, recognisable digits (step 2000),
# and the judge was confident on 60% of 512 new samples.

# %% tags=["experiment"]
# EXPERIMENT: not run by the grader
LATENT, GAN_STEPS, GAN_BATCH = 16, 2000, 64
with seeded(1):
    gan_generator = nn.Sequential(nn.Linear(LATENT, 128), nn.LeakyReLU(0.2), nn.Linear(128, 256), nn.LeakyReLU(0.2),
                                  nn.Linear(256, 64), nn.Tanh(), nn.Unflatten(1, (1, 8, 8)))
    gan_discriminator = nn.Sequential(nn.Flatten(), nn.Linear(64, 256), nn.LeakyReLU(0.2), nn.Linear(256, 128), nn.LeakyReLU(0.2),
                                      nn.Linear(128, 1), nn.Flatten(0))
opt_generator = torch.optim.Adam(gan_generator.parameters(), lr=1e-3, betas=(0.5, 0.999))
opt_discriminator = torch.optim.Adam(gan_discriminator.parameters(), lr=1e-3, betas=(0.5, 0.999))
gan_data = torch.Generator().manual_seed(1)
fixed_z = torch.randn(8, LATENT, generator=gan_data)
snapshots, snapshot_steps, gan_history = [], (0, 100, 500, 2000), {"discriminator": [], "generator": []}
started = time.perf_counter()
for step in tqdm(range(GAN_STEPS + 1), desc="GAN training"):
    if step in snapshot_steps:
        with torch.no_grad():
            snapshots.append(gan_generator(fixed_z))
    if step == GAN_STEPS:
        break
    batch = train_images[torch.randint(len(train_images), (GAN_BATCH,), generator=gan_data)]
    d_value, g_value = gan_training_step(gan_generator, gan_discriminator, opt_generator, opt_discriminator,
                                         batch, torch.randn(GAN_BATCH, LATENT, generator=gan_data))
    gan_history["discriminator"].append(d_value)
    gan_history["generator"].append(g_value)
print(f"GAN training: {time.perf_counter() - started:.1f} s")
print("losses (mean of 50 steps) at steps 0, 500, 1000, 1950: " + "; ".join(f"{name} " + ", ".join(f"{values[k]:.2f}" for k in (0, 10, 20, 39)) for name, values in {name: [sum(v[i:i + 50]) / 50 for i in range(0, len(v), 50)] for name, v in gan_history.items()}.items()))
smoothed = {name: [sum(values[i:i + 50]) / 50 for i in range(0, len(values), 50)] for name, values in gan_history.items()}
plot_curves(smoothed, ylabel="loss (mean of 50 steps)", xlabel="step / 50", title="GAN losses");
show_images(torch.cat(snapshots), titles=[f"step {s}" for s in snapshot_steps for _ in range(8)], columns=8);
with torch.no_grad():
    gan_samples = gan_generator(torch.randn(512, LATENT, generator=gan_data))
gan_confident = confident_fraction(gan_samples)
print(f"the judge is confident on {gan_confident:.2f} of 512 GAN samples")
record(gan_confident_fraction=gan_confident)

# %% [markdown]
# **Latent interpolation.** The generator is a smooth function of `z`: walking on a straight
# line between two noise vectors `z0` and `z1` gives images that morph from one digit into the
# other, passing through in-between shapes, rather than jumping. (Interpolating the *pixels*,
# second row, only cross-fades the two images.) The end points are the two samples, among 64,
# that the judge is most sure of, for two different digits; the cell prints which (a 0 and a 5
# in our run). Look at the in-between images of the first row: they are digit-like shapes of
# their own, while the pixel cross-fade shows both digits at once half-way.

# %% tags=["experiment"]
# EXPERIMENT: not run by the grader
candidates = torch.randn(64, LATENT, generator=torch.Generator().manual_seed(5))
with torch.no_grad():  # two end points the judge is sure of, of two different digits
    confidence, digit = F.softmax(judge(gan_generator(candidates)), dim=1).max(dim=1)
first = int(confidence.argmax())
others = (digit != digit[first]).nonzero().flatten()
second = int(others[confidence[others].argmax()])
ends = candidates[[first, second]]
print(f"from a {int(digit[first])} (judge's confidence {confidence[first]:.2f}) to a {int(digit[second])} ({confidence[second]:.2f})")
weights = torch.linspace(0, 1, 11).unsqueeze(1)
with torch.no_grad():
    path = gan_generator((1 - weights) * ends[0] + weights * ends[1])
    with_pixels = (1 - weights.reshape(-1, 1, 1, 1)) * path[0] + weights.reshape(-1, 1, 1, 1) * path[-1]
show_images(torch.cat([path, with_pixels]), titles=[f"z {w:.1f}" for w in weights.flatten()] + [f"pixels {w:.1f}" for w in weights.flatten()], columns=11, shared_scale=True);

# %% [markdown]
# ### 7.3 An energy-based model on the digits
# The score network is a small CNN: three 3x3 convolutions (8, 16 and 32 channels, the last two
# with stride 2: 8x8 -> 4x4 -> 2x2) with the smooth SiLU activation (Langevin follows the
# gradient of the score with respect to the image, so a smooth network gives smooth
# gradients), then 128 -> 64 -> 1. Each of 300 training steps takes 128 real digits (with a
# little noise, 0.005), samples 128 starting points from the replay buffer (at most 4096
# rows), runs 20 Langevin steps (step 10, noise 0.005, gradients clipped to 0.03), pushes the
# results back, and takes one Adam step on the contrastive-divergence loss with `alpha = 0.1`.
#
# In our run (one thread; 20-28 s of training on the machine these figures come from, about
# 50 s on a shared 2-core machine: the cell prints its own time) both parts of the loss stayed tiny: the divergence
# (averaged over 50 steps) went from -0.0016 to about 0.0002, oscillating around 0 because the
# samples keep catching up with the model, and the regularizer kept the scores near 0 (about
# 1e-5). Then 256 chains started from **uniform noise** ran 256 Langevin steps:
# the noise turned into bright strokes on a dark background, less varied than the GAN's
# samples (many look like 1s; some like 4, 6 or 9), and the judge was confident on 32% of them.

# %% tags=["experiment"]
# EXPERIMENT: not run by the grader
with seeded(2):
    energy_model = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.SiLU(),
        nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.SiLU(),
        nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.SiLU(),
        nn.Flatten(), nn.Linear(128, 64), nn.SiLU(), nn.Linear(64, 1), nn.Flatten(0))
energy_optimizer = torch.optim.Adam(energy_model.parameters(), lr=2e-3, betas=(0.0, 0.999))
ebm_data = torch.Generator().manual_seed(2)
EBM_STEPS, EBM_BATCH, CHAIN_STEPS = 300, 128, 20
ebm_history = {"divergence": [], "regularization": []}
replay = ReplayBuffer(4096, (1, 8, 8))
started = time.perf_counter()
for step in tqdm(range(EBM_STEPS), desc="EBM training"):
    real_batch = train_images[torch.randint(len(train_images), (EBM_BATCH,), generator=ebm_data)]
    real_batch = (real_batch + 0.005 * torch.randn(real_batch.shape, generator=ebm_data)).clamp(-1, 1)
    fake_batch = langevin_sample(energy_model, replay.sample(EBM_BATCH, ebm_data), CHAIN_STEPS, 10.0, 0.005, ebm_data)
    replay.push(fake_batch)
    ebm_loss, ebm_regularization, ebm_divergence = contrastive_divergence_loss(energy_model(real_batch), energy_model(fake_batch), 0.1)
    energy_optimizer.zero_grad()
    ebm_loss.backward()
    energy_optimizer.step()
    ebm_history["divergence"].append(ebm_divergence.item())
    ebm_history["regularization"].append(ebm_regularization.item())
print(f"EBM training: {time.perf_counter() - started:.1f} s")
print("divergence (mean of 50 steps): " + ", ".join(f"{sum(ebm_history['divergence'][i:i + 50]) / 50:.4f}" for i in range(0, EBM_STEPS, 50)) + f"; last regularization {ebm_history['regularization'][-1]:.5f}")
plot_curves(ebm_history, ylabel="value", xlabel="training step", title="The two parts of the contrastive-divergence loss");

# %% tags=["experiment"]
# EXPERIMENT: not run by the grader
chains = 2 * torch.rand(256, 1, 8, 8, generator=ebm_data) - 1
progression, done = [chains[:1]], 0
for steps in (8, 8, 16, 32, 64, 128):
    chains = langevin_sample(energy_model, chains, steps, 10.0, 0.005, ebm_data)
    done += steps
    progression.append(chains[:1])
show_images(torch.cat(progression), titles=[f"step {s}" for s in (0, 8, 16, 32, 64, 128, 256)], columns=7, shared_scale=True);
show_images(chains[:24], columns=12);
ebm_confident = confident_fraction(chains)
print(f"after {done} Langevin steps from noise the judge is confident on {ebm_confident:.2f} of 256 EBM samples")
record(ebm_confident_fraction=ebm_confident)

# %% [markdown]
# ### 7.4 Scores as an out-of-distribution detector
# The score is an unnormalised log-density: real digits should score higher than images that
# do not look like digits. We compare the scores of the test digits (never seen in training)
# with those of uniform noise, of digits with their pixels shuffled (the same pixel values,
# no strokes), and of negated digits (white background). The area under the ROC curve
# (AUROC: the probability that a random test digit outscores a random other image) summarises
# each comparison. In our run the mean scores were 0.009 for the test digits, -0.07 for the
# shuffled digits, -0.12 for noise and -0.20 for the negated digits, and every test digit
# outscored every other image (AUROC 1.000 for all three).

# %% tags=["experiment"]
# EXPERIMENT: not run by the grader
shuffle = torch.randperm(64, generator=ebm_data)
others = {
    "uniform noise": 2 * torch.rand(len(test_images), 1, 8, 8, generator=ebm_data) - 1,
    "shuffled pixels": test_images.flatten(1)[:, shuffle].reshape(-1, 1, 8, 8),
    "negated digits": -test_images,
}
energy_model.eval()
with torch.no_grad():
    test_scores = energy_model(test_images)
    other_scores = {name: energy_model(images) for name, images in others.items()}
score_figure, score_axis = plt.subplots(figsize=(7, 3.5))
score_axis.hist(test_scores.numpy(), bins=40, alpha=0.6, label="test digits")
aurocs = {}
for name, scores in other_scores.items():
    score_axis.hist(scores.numpy(), bins=40, alpha=0.5, label=name)
    aurocs[name] = (test_scores.unsqueeze(1) > scores.unsqueeze(0)).double().mean().item()
score_axis.set(xlabel="score s(x)", ylabel="images", title="Scores of digits and of other images")
score_axis.legend()
plt.show()
print("mean scores: test digits " + f"{test_scores.mean().item():.3f}, " + ", ".join(f"{name} {scores.mean().item():.3f}" for name, scores in other_scores.items()))
print("AUROC (test digits vs ...): " + ", ".join(f"{name} {value:.3f}" for name, value in aurocs.items()))
record(auroc_noise=aurocs["uniform noise"])
record(auroc_shuffled=aurocs["shuffled pixels"])
record(notebook_seconds=time.perf_counter() - notebook_started)
