# %% [raw]
# # ASSIGNMENT CONFIG
# name: 08_autoencoders_vae
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
# # Chapter 08 — Autoencoders and variational autoencoders
#
# An **autoencoder** squeezes an image through a narrow *latent* vector and rebuilds it: an
# encoder `h` maps the image `x` to a code `z = h(x)` with a few numbers, a decoder `g` maps the
# code back to an image `g(z)`, and training makes `g(h(x))` close to `x`. Nothing tells the
# network what to keep: the bottleneck forces it to find the few directions along which the
# digits really vary. A **variational autoencoder** (VAE) makes the code a probability
# distribution and adds a regulariser that keeps those distributions close to a standard
# normal, so that decoding random draws from `N(0, I)` produces new, plausible digits.
#
# You write, in this order:
# 1. `conv_transpose2d`, the **transposed convolution** that lets a decoder grow a 4x4 feature
#    map back into an 8x8 image, **from scratch**;
# 2. the **reparameterization trick** (`reparameterize`, `sample_latent`);
# 3. the **KL divergence** between the encoder's Gaussian and the standard normal;
# 4. two **likelihoods** for the reconstruction term (`bernoulli_nll`, `gaussian_nll`);
# 5. the `Encoder`, `Decoder` and `Autoencoder` modules, then the `VAE`;
# 6. experiments (latent size, samples, latent space, the weight `beta` of the KL) and two
#    concept questions read from them.
#
# **Allowed:** tensor operations, `nn.Module`, `nn.Parameter`, ordinary `torch.nn` layers and
# functions (`nn.Conv2d`, `nn.Linear`, `F.conv2d`, `F.fold`, `F.pad`, ...), and autograd. Only
# the transposed convolution must be your own (section 1 lists exactly what the grader
# forbids). In particular the `Decoder` may **not** use `nn.ConvTranspose2d`: it uses the layer
# `UpConv2d` given below, which calls your `conv_transpose2d`.
#
# **How this notebook is graded.** Every function and class is compared with a hidden
# reference on many random inputs in float64: odd image sizes, strides 2 and 3 with padding and
# `output_padding`, a batch of one, extreme values (log-variances from -30 to 30, means up to
# 1000, logits of +-100 and exactly 0). Outputs and gradients (with respect to the inputs and
# to every parameter) are separate items. For the modules, the grader builds your class and
# **sets its parameters by name** (`encoder.conv1.weight`, `decoder.up1.bias`, ...), so the
# submodule names and sizes below are part of the specification. While it grades `Decoder`,
# `Autoencoder` and `VAE`, the grader runs them with its own copies of `conv_transpose2d`,
# `Encoder`, `Decoder`, `reparameterize`, `kl_divergence` and `bernoulli_nll` in place of
# yours, so that a mistake costs points only where it is made. Random functions are graded
# statistically: their sample means and variances must fall inside bounds that a correct
# implementation misses with probability below 1e-10. Cells starting with `# EXPERIMENT` are not
# run by the grader.
#
# **Conventions.** Images are `(N, C, H, W)` as in PyTorch; the digits are `(N, 1, 8, 8)` with
# pixel intensities in `[0, 1]`. Latent codes are `(N, latent_dims)`. A Gaussian code is given
# by its mean `mu` and its **log-variance** `logvar = log(sigma**2)` (an unconstrained number,
# unlike `sigma`, which must stay positive). Losses per example have shape `(N,)`: they are
# **summed over every dimension but the batch**.

# %%
import math

import torch
import torch.nn.functional as F
from torch import nn

# %% [markdown]
# ## 1. The transposed convolution
#
# A convolution with stride 2 turns an 8x8 map into a 4x4 one. A decoder needs the opposite:
# a layer that *grows* a map, with learned weights. The transposed convolution (also called
# up-convolution, or "fractionally strided" convolution) does it by reversing the direction in
# which a convolution moves information:
#
# * a convolution computes each **output** pixel from a `k x k` window of **input** pixels;
# * a transposed convolution lets each **input** pixel **paint** a `k x k` patch of the
#   **output**, the patch being the kernel scaled by the pixel's value. Neighbouring input
#   pixels paint patches `stride` apart; where patches overlap, they add up.
#
# With `x` of shape `(N, C_in, H, W)` and `weight` of shape `(C_in, C_out, k, k)` (this is
# PyTorch's layout for a transposed convolution: **input channels first**),
#
# `y[n, d, i*stride + u - padding, j*stride + v - padding] += x[n, c, i, j] * weight[c, d, u, v]`
#
# for every `n, c, d, i, j, u, v`; positions that fall outside the output are dropped, and
# `bias[d]` is added to every output pixel of channel `d`.
#
# **Output size.** Without padding, the patches of `H` input rows start at `0, stride, ...,
# (H - 1) * stride` and each covers `k` rows: `(H - 1) * stride + k` rows in all. `padding`
# **crops** `padding` rows from each end (it is the padding of the convolution this layer
# undoes, so here it removes rows instead of adding them). `output_padding` adds rows at the
# bottom (and columns at the right):
#
# `H_out = (H - 1) * stride - 2 * padding + k + output_padding`.
#
# Why `output_padding`? A convolution with stride 2 maps both 7 and 8 rows to 4 (it rounds
# down), so the inverse direction cannot know which size you want; `output_padding` (less than
# `stride`) picks the larger one. Our decoder uses `k = 3, stride = 2, padding = 1,
# output_padding = 1` to go from 4x4 to exactly 8x8.
#
# **A worked example (one row).** `x = [1, 2]`, kernel `[1, 10, 100]`, stride 2:
# `x[0]` paints `[1, 10, 100, ., .]` at position 0, `x[1]` paints `[., ., 2, 20, 200]` at
# position 2; the sum is `[1, 10, 102, 20, 200]` (length `(2 - 1) * 2 + 3 = 5`). With
# `padding = 1` the first and last entries are cropped: `[10, 102, 20]`.
#
# **The link to chapter 02.** There you computed the gradient of a convolution with respect to
# its input: every output position sends `dupstream * weight` back to the window it read, the
# windows overlap and add up, and the padding is cropped at the end. That is *exactly* the
# painting above: `conv_transpose2d(g, w, stride=s, padding=p)` is the backward pass of
# `conv2d(x, w, stride=s, padding=p)` with respect to `x` (with the same `w` of shape
# `(C_out_conv, C_in_conv, k, k)`, read here as `(C_in, C_out, k, k)`). In matrix terms, if a
# convolution is `y = A x`, the transposed convolution is `A^T`, hence the name. You may build
# it from that idea in three equivalent ways:
# 1. **scatter**: for each kernel offset `(u, v)`, add `x` times `weight[:, :, u, v]` into a
#    strided slice of an output buffer (`k * k` batched products, then crop the padding);
# 2. **fold**: compute every pixel's patch at once, `(N, C_out * k * k, H * W)`, and let
#    `F.fold` (col2im, the adjoint of the `unfold` you used in chapter 02) add them into place;
# 3. **dilate, pad, convolve**: insert `stride - 1` zeros between the input pixels, pad by
#    `k - 1`, and run an ordinary convolution (`F.conv2d`) with the kernel **flipped** in both
#    spatial axes and its two channel axes swapped; crop `padding` at the end. This is what the
#    course notes mean by "dilate the input and run a regular convolution".
#
# The classic mistakes are: forgetting the flip in 3; *subsampling* the input with the stride
# (that is the strided convolution) instead of spreading it out; and **adding** padding instead
# of cropping it.
#
# {{FORBIDDEN_RULES}}
#
# **Other rules the grader enforces.** Never change an input tensor in place (`x += ...`,
# `x[...] = ...` or an in-place method such as `x.clamp_()` on a tensor you were given): every
# output recorded after an input changed fails. Each function and method is called at least
# twice in a row on different inputs, so nothing may carry over from one call to the next.
# Where a class or function is graded with the grader's own parts in place of yours (each such
# place says so), build and call those parts by their names and never test `isinstance`
# against your own classes.
#
# Since the `Decoder`, the `Autoencoder` and the `VAE` use the decoder's layers, a forbidden
# transposed convolution anywhere in them costs their items too.
#
# Write `conv_transpose_output_size` (a Python `int`) and `conv_transpose2d` with square kernels,
# integer `stride >= 1`, `padding >= 0` and `0 <= output_padding < stride`. Autograd
# differentiates your function, so write it with differentiable tensor operations (in-place
# writes into slices of a new buffer are fine).

# %% [raw]
# # BEGIN QUESTION
# name: q1
# points: 6

# %% [raw]
# # BEGIN SOLUTION

# %%
def conv_transpose_output_size(size, kernel_size, stride=1, padding=0, output_padding=0):
    """Length of a transposed convolution's output along one axis (a Python int)."""
    # BEGIN SOLUTION NO PROMPT
    return (size - 1) * stride - 2 * padding + kernel_size + output_padding
    # END SOLUTION
    """ # BEGIN PROMPT
    raise NotImplementedError("conv_transpose_output_size")
    """ # END PROMPT


def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0):
    """Transposed 2-D convolution, from scratch.

    x: (N, C_in, H, W); weight: (C_in, C_out, k, k); bias: (C_out,) or None
    Returns (N, C_out, H_out, W_out) with H_out = (H - 1) * stride - 2 * padding + k + output_padding
    (the same for W).
    """
    assert x.ndim == 4, f"x must be (N, C_in, H, W), got shape {tuple(x.shape)}"
    assert weight.ndim == 4 and weight.shape[0] == x.shape[1] and weight.shape[2] == weight.shape[3], \
        f"weight must be (C_in, C_out, k, k) with C_in = {x.shape[1]}, got {tuple(weight.shape)}"
    assert bias is None or tuple(bias.shape) == (weight.shape[1],), \
        f"bias must be (C_out,) = ({weight.shape[1]},), got {tuple(bias.shape)}"
    assert 0 <= output_padding < stride, "output_padding must satisfy 0 <= output_padding < stride"
    # BEGIN SOLUTION NO PROMPT
    n, _, h, w = x.shape
    k, c_out = weight.shape[2], weight.shape[1]
    h_out = conv_transpose_output_size(h, k, stride, padding, output_padding)
    w_out = conv_transpose_output_size(w, k, stride, padding, output_padding)
    # the patch every input pixel paints, per output channel: (N, C_out * k * k, H * W)
    patches = torch.einsum("nchw,cdkl->ndklhw", x, weight).reshape(n, c_out * k * k, h * w)
    # fold adds each patch into place, `stride` apart: the uncropped output
    painted = F.fold(patches, ((h - 1) * stride + k, (w - 1) * stride + k), k, stride=stride)
    painted = F.pad(painted, (0, output_padding, 0, output_padding))
    y = painted[:, :, padding:padding + h_out, padding:padding + w_out]
    if bias is not None:
        y = y + bias.reshape(1, -1, 1, 1)
    return y
    # END SOLUTION
    """ # BEGIN PROMPT
    raise NotImplementedError("conv_transpose2d")
    """ # END PROMPT

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
assert conv_transpose_output_size(4, 3, stride=2, padding=1, output_padding=1) == 8, "(4 - 1) * 2 - 2 * 1 + 3 + 1 = 8: the decoder's 4x4 -> 8x8 layer"
assert conv_transpose_output_size(2, 3, stride=2) == 5 and conv_transpose_output_size(5, 1) == 5, "(H - 1) * stride - 2 * padding + k + output_padding"
assert isinstance(conv_transpose_output_size(3, 3), int), "return a Python int"

# %%
row = torch.tensor([[[[1.0, 2.0]]]], dtype=torch.float64)
kernel = torch.zeros(1, 1, 3, 3, dtype=torch.float64)
kernel[0, 0, 1] = torch.tensor([1.0, 10.0, 100.0], dtype=torch.float64)
painted = conv_transpose2d(row, kernel, stride=2)
assert painted.shape == (1, 1, 3, 5), f"the worked example: output (1, 1, 3, 5), got {tuple(painted.shape)}"
assert torch.equal(painted[0, 0, 1], torch.tensor([1.0, 10.0, 102.0, 20.0, 200.0], dtype=torch.float64)), "the worked example's middle row is [1, 10, 102, 20, 200]: each pixel paints the kernel, stride apart, overlaps add up (no flip in this view)"
cropped = conv_transpose2d(row, kernel, stride=2, padding=1)
assert cropped.shape == (1, 1, 1, 3) and torch.equal(cropped[0, 0, 0], torch.tensor([10.0, 102.0, 20.0], dtype=torch.float64)), "padding=1 crops one row/column from each end: [10, 102, 20]"

# %%
generator = torch.Generator().manual_seed(0)
for stride, padding, output_padding in [(1, 0, 0), (2, 1, 1), (3, 2, 0), (2, 0, 1)]:
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64, generator=generator)
    weight = torch.randn(3, 4, 3, 3, dtype=torch.float64, generator=generator)
    y = conv_transpose2d(x, weight, stride=stride, padding=padding, output_padding=output_padding)
    assert y.shape == (2, 4, conv_transpose_output_size(4, 3, stride, padding, output_padding), conv_transpose_output_size(5, 3, stride, padding, output_padding)), f"output shape wrong for stride={stride}, padding={padding}, output_padding={output_padding}: got {tuple(y.shape)}"
    probe = torch.randn(y.shape, dtype=torch.float64, generator=generator)
    # the transposed convolution is the adjoint of the convolution: <conv2d(probe), x> = <probe, conv_transpose2d(x)>
    forward_side = (F.conv2d(probe, weight, stride=stride, padding=padding) * x).sum()
    assert torch.allclose(forward_side, (probe * y).sum()), f"conv_transpose2d is not the adjoint (transpose) of F.conv2d with stride={stride}, padding={padding}, output_padding={output_padding}: check the kernel orientation, the stride (spread, not subsample) and the cropping"

# %%
generator = torch.Generator().manual_seed(1)
x = torch.randn(1, 2, 3, 3, dtype=torch.float64, generator=generator, requires_grad=True)
weight = torch.randn(2, 3, 3, 3, dtype=torch.float64, generator=generator, requires_grad=True)
bias = torch.randn(3, dtype=torch.float64, generator=generator, requires_grad=True)
y = conv_transpose2d(x, weight, bias, stride=2, padding=1, output_padding=1)
assert torch.allclose(y - conv_transpose2d(x, weight, stride=2, padding=1, output_padding=1), bias.reshape(1, 3, 1, 1).expand_as(y)), "the bias (C_out,) is added to every pixel of its output channel"
y.sum().backward()
assert x.grad is not None and weight.grad is not None and bias.grad is not None, "gradients must reach x, weight and bias: use differentiable tensor operations"
assert torch.allclose(bias.grad, torch.full((3,), 36.0, dtype=torch.float64)), "d sum(y) / d bias[d] is the number of output pixels (6 x 6 = 36)"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# The layer the decoder uses is given: `UpConv2d` holds a weight `(C_in, C_out, k, k)` and a
# bias `(C_out,)` as `nn.Parameter`s, initialised as PyTorch initialises
# `nn.ConvTranspose2d`, and calls **your** `conv_transpose2d`. Do not change it (the grader
# sets `up1.weight`, `up1.bias`, ... by these names).

# %%
class UpConv2d(nn.Module):
    """Transposed-convolution layer: weight (C_in, C_out, k, k), bias (C_out,)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0):
        super().__init__()
        self.stride, self.padding, self.output_padding = stride, padding, output_padding
        self.weight = nn.Parameter(torch.empty(in_channels, out_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.empty(out_channels))
        bound = 1.0 / math.sqrt(out_channels * kernel_size * kernel_size)
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x):
        return conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding, self.output_padding)

# %% [markdown]
# ## 2. The reparameterization trick
#
# The VAE's encoder does not output a code but a Gaussian over codes, `q(z | x) =
# N(mu, diag(sigma**2))`, and training decodes a **random draw** `z` from it. How can a loss
# computed from a random draw be differentiated with respect to `mu` and `sigma`? Write the
# draw as a deterministic function of the parameters and of noise that does not depend on
# them:
#
# `z = mu + sigma * eps`, `eps ~ N(0, I)`, `sigma = exp(0.5 * logvar)`.
#
# `z` has exactly the distribution `N(mu, sigma**2)`, and now `dz/dmu = 1` and
# `dz/dlogvar = 0.5 * sigma * eps` are ordinary derivatives: autograd sends the gradient
# through the sample to the encoder. The randomness sits in `eps`, a constant as far as
# autograd is concerned.
#
# * `reparameterize(mu, logvar, eps)` takes the noise as an argument (so a test can give it),
#   and returns `mu + exp(0.5 * logvar) * eps`. Note the `0.5`: `logvar` is the log of the
#   **variance**, so the standard deviation is `exp(logvar / 2)`; `exp(logvar)` would be the
#   variance.
# * `sample_latent(mu, logvar, generator)` draws `eps` itself, standard normal, of `mu`'s shape
#   and dtype, **from the given `torch.Generator`** (`torch.randn(mu.shape,
#   generator=generator, dtype=mu.dtype, device=mu.device)`), then reparameterizes. The same
#   seed must give the same `z`.
#
# Neither function may cut the graph: no `.detach()`, `.data` or `torch.no_grad()` on `mu`,
# `logvar` or `sigma`, or the encoder stops learning its means or variances.

# %% [raw]
# # BEGIN QUESTION
# name: q2
# points: 5

# %% [raw]
# # BEGIN SOLUTION

# %%
def reparameterize(mu, logvar, eps):
    """z = mu + exp(0.5 * logvar) * eps. mu, logvar, eps: the same shape, e.g. (N, latent_dims)."""
    assert mu.shape == logvar.shape == eps.shape, \
        f"mu, logvar and eps must have the same shape, got {tuple(mu.shape)}, {tuple(logvar.shape)}, {tuple(eps.shape)}"
    # BEGIN SOLUTION NO PROMPT
    return mu + torch.exp(0.5 * logvar) * eps
    # END SOLUTION
    """ # BEGIN PROMPT
    raise NotImplementedError("reparameterize")
    """ # END PROMPT


def sample_latent(mu, logvar, generator):
    """z ~ N(mu, exp(logvar)) elementwise, the noise drawn from `generator`; z has mu's shape."""
    assert mu.shape == logvar.shape, f"mu and logvar must have the same shape, got {tuple(mu.shape)} and {tuple(logvar.shape)}"
    # BEGIN SOLUTION NO PROMPT
    eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)
    return reparameterize(mu, logvar, eps)
    # END SOLUTION
    """ # BEGIN PROMPT
    raise NotImplementedError("sample_latent")
    """ # END PROMPT

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
mu = torch.tensor([[1.0, -2.0]], dtype=torch.float64)
logvar = torch.tensor([[0.0, 2.0 * math.log(3.0)]], dtype=torch.float64)
eps = torch.tensor([[0.5, 1.0]], dtype=torch.float64)
assert torch.allclose(reparameterize(mu, logvar, eps), torch.tensor([[1.5, 1.0]], dtype=torch.float64)), "by hand: sigma = exp(logvar / 2) = (1, 3), so z = mu + sigma * eps = (1.5, 1.0)"

# %%
mu = torch.zeros(3, 2, dtype=torch.float64, requires_grad=True)
logvar = torch.zeros(3, 2, dtype=torch.float64, requires_grad=True)
eps = torch.full((3, 2), 2.0, dtype=torch.float64)
reparameterize(mu, logvar, eps).sum().backward()
assert mu.grad is not None and torch.allclose(mu.grad, torch.ones(3, 2, dtype=torch.float64)), "dz/dmu = 1: do not detach mu"
assert logvar.grad is not None and torch.allclose(logvar.grad, torch.ones(3, 2, dtype=torch.float64)), "dz/dlogvar = 0.5 * sigma * eps = 1 here: do not detach sigma"

# %%
mu = torch.tensor([2.0, -1.0], dtype=torch.float64).repeat(20000, 1)
logvar = torch.tensor([0.0, math.log(4.0)], dtype=torch.float64).repeat(20000, 1)
z = sample_latent(mu, logvar, torch.Generator().manual_seed(0))
assert z.shape == mu.shape and z.dtype == torch.float64, "z has mu's shape and dtype"
assert torch.equal(z, sample_latent(mu, logvar, torch.Generator().manual_seed(0))), "the same seed must give the same z: draw from the generator you are given"
assert (z.mean(0) - torch.tensor([2.0, -1.0], dtype=torch.float64)).abs().max() < 0.1, "the sample mean should be mu"
assert (z.std(0) - torch.tensor([1.0, 2.0], dtype=torch.float64)).abs().max() < 0.1, "the sample standard deviation should be exp(logvar / 2) = (1, 2)"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# ## 3. The KL term, derived (and a common mistake)
#
# The VAE's regulariser is the Kullback-Leibler divergence from the encoder's distribution
# `q = N(mu, sigma**2)` to the prior `p = N(0, 1)`, one latent dimension at a time:
#
# `KL(q || p) = E_q[log q(z) - log p(z)]`.
#
# With `log q(z) = -0.5 log(2 pi) - log sigma - (z - mu)**2 / (2 sigma**2)` and
# `log p(z) = -0.5 log(2 pi) - z**2 / 2`, the constants cancel, and two expectations under `q`
# finish the job: `E_q[(z - mu)**2] = sigma**2` and `E_q[z**2] = sigma**2 + mu**2`. So
#
# `KL = -log sigma - 1/2 + (sigma**2 + mu**2) / 2 = 0.5 * (sigma**2 + mu**2 - 1) - log sigma`,
#
# or, in terms of what the encoder outputs, `0.5 * (exp(logvar) + mu**2 - 1 - logvar)` per
# dimension. Independent dimensions add: the KL of the whole code is the **sum** over the
# latent dimensions.
#
# **A correction.** A form often found in notes (including this course's) is
# `sum(sigma**2 + mu**2 - log(sigma) - 1/2)`. It is wrong: it doubles the `sigma**2` and
# `mu**2` terms. A one-line test shows it: for `q = p` (`mu = 0`, `sigma = 1`) the KL must be
# 0, and that form gives 0.5. Its minimum is not even at the prior (it pulls `sigma` to
# `1/sqrt(2)`). Trust the derivation, and test a formula on a case you know.
#
# Two more traps: `logvar` is the log of the variance, not of `sigma` (`log sigma = logvar / 2`);
# and the KL is summed over the latent dimensions, not averaged, since it is the KL of the
# joint distribution of the code.
#
# `kl_divergence(mu, logvar)` returns the KL per example, shape `(N,)`, summed over every
# dimension but the first. It must stay finite and accurate for `logvar` from -30 to 30 and
# `|mu|` up to 1000 (in float64 `exp(30)` is no problem; do not clamp).
#
# The KL is an expectation, so it can also be estimated by sampling: the average of
# `log q(z) - log p(z)` over many draws `z` of your `sample_latent` (section 2) must agree with
# `kl_divergence`. The grader checks this agreement too (one item of this question), so it
# fails when either function is wrong.

# %% [raw]
# # BEGIN QUESTION
# name: q3
# points: 3

# %% [raw]
# # BEGIN SOLUTION

# %%
def kl_divergence(mu, logvar):
    """KL(N(mu, exp(logvar)) || N(0, I)) per example.

    mu, logvar: (N, ...) of the same shape. Returns (N,): summed over every non-batch dimension.
    """
    assert mu.shape == logvar.shape and mu.ndim >= 2, \
        f"mu and logvar must have the same shape (N, ...), got {tuple(mu.shape)} and {tuple(logvar.shape)}"
    # BEGIN SOLUTION NO PROMPT
    per_dimension = 0.5 * (torch.exp(logvar) + mu * mu - 1.0 - logvar)
    return per_dimension.reshape(per_dimension.shape[0], -1).sum(dim=1)
    # END SOLUTION
    """ # BEGIN PROMPT
    raise NotImplementedError("kl_divergence")
    """ # END PROMPT

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
zeros = torch.zeros(2, 3, dtype=torch.float64)
assert kl_divergence(zeros, zeros).shape == (2,), "one KL per example: shape (N,)"
assert torch.allclose(kl_divergence(zeros, zeros), torch.zeros(2, dtype=torch.float64)), "KL(N(0, 1) || N(0, 1)) = 0: the formula in some course notes gives 0.5 per dimension here"

# %%
mu = torch.tensor([[1.0, 0.0, 0.0]], dtype=torch.float64)
logvar = torch.tensor([[0.0, 2.0 * math.log(2.0), 0.0]], dtype=torch.float64)
# by hand: 0.5 * mu**2 = 0.5 for the first dimension; 0.5 * (4 - 1) - log 2 for the second; 0 for the third
assert torch.allclose(kl_divergence(mu, logvar), torch.tensor([0.5 + 1.5 - math.log(2.0)], dtype=torch.float64)), "by hand: 0.5 + (1.5 - log 2) + 0, summed (not averaged) over the latent dimensions; logvar is log sigma**2"

# %%
extreme = kl_divergence(torch.full((1, 2), 1000.0, dtype=torch.float64), torch.tensor([[-30.0, 30.0]], dtype=torch.float64))
assert torch.isfinite(extreme).all(), "the KL must stay finite for logvar in [-30, 30] and |mu| up to 1000"
by_hand = 0.5 * (math.exp(-30.0) + 1e6 - 1.0 + 30.0) + 0.5 * (math.exp(30.0) + 1e6 - 1.0 - 30.0)
assert abs(extreme.item() - by_hand) <= 1e-9 * by_hand, "the KL must stay accurate for logvar in [-30, 30] and |mu| up to 1000: do not clamp logvar or exp(logvar) (float64 holds exp(30))"

# %%
# The grader also compares kl_divergence with a Monte-Carlo estimate of E_q[log q(z) - log p(z)]
# over draws z of YOUR sample_latent (q2), so both must be right.
mu = torch.tensor([[1.0, -0.5, 0.0]], dtype=torch.float64)
logvar = torch.tensor([[0.0, 2.0 * math.log(0.5), math.log(2.0)]], dtype=torch.float64)
sigma = torch.exp(0.5 * logvar)
try:
    z = sample_latent(mu.repeat(100000, 1), logvar.repeat(100000, 1), torch.Generator().manual_seed(0))
    w = (z - mu) / sigma  # standard normal draws when sample_latent is right
    drawn_right = tuple(z.shape) == (100000, 3) and bool(w.mean(0).abs().max() < 0.02) and bool((w.std(0) - 1).abs().max() < 0.02)
except Exception:
    drawn_right = False
assert drawn_right, "q2 fails: the grader checks kl_divergence against draws of your sample_latent, which must give z ~ N(mu, exp(logvar)): standard normal noise (torch.randn) scaled by exp(logvar / 2); fix q2 first"
estimate = ((-0.5 * w ** 2 - torch.log(sigma)) - (-0.5 * z ** 2)).sum(dim=1).mean()
assert abs(kl_divergence(mu, logvar).item() - estimate.item()) < 0.07, "kl_divergence disagrees with the average of log q(z) - log p(z) over the draws of your sample_latent"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# ## 4. The reconstruction term: two likelihoods
#
# The VAE maximises the **evidence lower bound** (ELBO) on `log p(x)`:
#
# `ELBO(x) = E_q[log p(x | z)] - KL(q(z | x) || p(z))`,
#
# so it *minimises* the negative ELBO `= reconstruction + KL`, with reconstruction
# `-log p(x | z)` for one draw of `z`. The decoder's output defines `p(x | z)`; two choices:
#
# **Bernoulli** (our choice for the digits, whose pixels are mostly near 0 or 1): each pixel is
# a coin with probability `sigmoid(l)` where `l` is the decoder's **logit**, and `x` in
# `[0, 1]` is read as the target probability. Per pixel,
#
# `-log p(x | l) = -x log sigmoid(l) - (1 - x) log(1 - sigmoid(l)) = log(1 + exp(l)) - x * l`.
#
# Compute it from the logits, **never as sigmoid then log**: in float64 `sigmoid(100)` is
# exactly 1, `log(1 - 1)` is `-inf`, and the loss becomes `inf` or `nan`. `log(1 + exp(l))` is
# `torch.logaddexp(0, l)` (or `F.softplus(l)`), stable for every `l`. A popular "stable" form,
# `max(l, 0) - x * l + log1p(exp(-|l|))`, has the right values but, under autograd, the **wrong
# gradient at `l = 0` exactly**: `max(l, 0)` and `|l|` have no derivative at 0, and autograd
# picks one (`|l|` and `torch.relu` get 0, `clamp(l, min=0)` gets 1), so it returns `-x` or
# `1 - x` instead of `sigmoid(0) - x = 0.5 - x`. The grader tests logits of exactly 0.
# The gradient of the correct loss is `sigmoid(l) - x`.
#
# **Gaussian** with a fixed standard deviation `sigma` (a float, or a tensor broadcastable to
# `x`): per pixel
#
# `-log N(x | mean, sigma**2) = 0.5 * ((x - mean) / sigma)**2 + log(sigma) + 0.5 * log(2 pi)`.
#
# With `sigma = 1` this is half the squared error plus a constant: minimising the mean squared
# error of the autoencoder is maximum likelihood under a Gaussian. The constant does not change
# the gradient, but it is part of the log-likelihood (include it: an ELBO without it is not
# comparable between models).
#
# Both functions return one number per example, shape `(N,)`, **summed** over every other
# dimension. Summing matters in a VAE: the KL is summed over the latent dimensions, and a
# reconstruction term *averaged* over the 64 pixels would be 64 times too weak next to it, which
# is one of the most common reasons for blurry VAE samples.

# %% [raw]
# # BEGIN QUESTION
# name: q4
# points: 3.5

# %% [raw]
# # BEGIN SOLUTION

# %%
def bernoulli_nll(logits, x):
    """-log Bernoulli(x | sigmoid(logits)) per example.

    logits, x: (N, ...) of the same shape, x in [0, 1]. Returns (N,), summed over every non-batch dimension.
    """
    assert logits.shape == x.shape, f"logits and x must have the same shape, got {tuple(logits.shape)} and {tuple(x.shape)}"
    # BEGIN SOLUTION NO PROMPT
    per_pixel = torch.logaddexp(torch.zeros_like(logits), logits) - x * logits
    return per_pixel.reshape(per_pixel.shape[0], -1).sum(dim=1)
    # END SOLUTION
    """ # BEGIN PROMPT
    raise NotImplementedError("bernoulli_nll")
    """ # END PROMPT


def gaussian_nll(mean, x, sigma=1.0):
    """-log N(x | mean, sigma**2) per example, sigma a standard deviation (float or tensor broadcastable to x).

    mean, x: (N, ...) of the same shape. Returns (N,), summed over every non-batch dimension.
    """
    assert mean.shape == x.shape, f"mean and x must have the same shape, got {tuple(mean.shape)} and {tuple(x.shape)}"
    # BEGIN SOLUTION NO PROMPT
    sigma = torch.as_tensor(sigma, dtype=mean.dtype, device=mean.device)
    per_pixel = 0.5 * ((x - mean) / sigma) ** 2 + torch.log(sigma) + 0.5 * math.log(2 * math.pi)
    return per_pixel.reshape(per_pixel.shape[0], -1).sum(dim=1)
    # END SOLUTION
    """ # BEGIN PROMPT
    raise NotImplementedError("gaussian_nll")
    """ # END PROMPT

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
logits = torch.tensor([[0.0, 0.0], [math.log(3.0), 0.0]], dtype=torch.float64)
x = torch.tensor([[1.0, 0.0], [1.0, 0.5]], dtype=torch.float64)
# by hand: a logit of 0 is probability 1/2 (loss log 2 for x = 0 or 1, and for x = 0.5); log 3 is probability 3/4
assert torch.allclose(bernoulli_nll(logits, x), torch.tensor([2 * math.log(2.0), math.log(4.0 / 3.0) + math.log(2.0)], dtype=torch.float64)), "by hand: -x log p - (1 - x) log(1 - p), summed over the pixels of each example"

# %%
big = torch.tensor([[100.0, -100.0]], dtype=torch.float64, requires_grad=True)
loss = bernoulli_nll(big, torch.tensor([[0.0, 1.0]], dtype=torch.float64))
assert torch.isfinite(loss).all() and abs(loss.item() - 200.0) < 1e-9, "at logits +-100 compute from the logits (logaddexp/softplus), not sigmoid then log"
ladder = bernoulli_nll(torch.tensor([[30.0, 200.0]], dtype=torch.float64), torch.tensor([[0.0, 0.5]], dtype=torch.float64))
assert abs(ladder.item() - (30.0 + math.log1p(math.exp(-30.0)) + 100.0)) < 1e-9, "at logits 30 and 200 compute from the logits: 1 - sigmoid(30) keeps 3 digits, 1 - sigmoid(200) is 0, and a BCE on sigmoid(l) clamps its log at -100 (right only at exactly +-100)"
at_zero = torch.zeros(1, 3, dtype=torch.float64, requires_grad=True)
bernoulli_nll(at_zero, torch.tensor([[0.0, 0.25, 1.0]], dtype=torch.float64)).sum().backward()
assert torch.allclose(at_zero.grad, torch.tensor([[0.5, 0.25, -0.5]], dtype=torch.float64)), "the gradient at a logit of exactly 0 is sigmoid(0) - x = 0.5 - x (the max/abs 'stable' form gets -x or 1 - x)"

# %%
mean = torch.zeros(2, 1, 2, 2, dtype=torch.float64)
x = torch.ones(2, 1, 2, 2, dtype=torch.float64)
assert gaussian_nll(mean, x).shape == (2,), "one value per example: shape (N,)"
assert torch.allclose(gaussian_nll(mean, x), torch.full((2,), 4 * (0.5 + 0.5 * math.log(2 * math.pi)), dtype=torch.float64)), "sigma = 1: per pixel 0.5 * (x - mean)**2 + 0.5 * log(2 pi), summed over 4 pixels"
assert torch.allclose(gaussian_nll(mean, x, sigma=2.0), torch.full((2,), 4 * (0.125 + math.log(2.0) + 0.5 * math.log(2 * math.pi)), dtype=torch.float64)), "sigma is a standard deviation: 0.5 * ((x - mean) / sigma)**2 + log(sigma) + 0.5 * log(2 pi)"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# ## 5. Encoder, decoder, autoencoder
#
# The architecture is fixed (the grader sets the parameters by these names and shapes):
#
# **`Encoder(out_features)`**: `(N, 1, 8, 8)` -> `(N, out_features)`
#
# | submodule | layer | output |
# |---|---|---|
# | `conv1` | `nn.Conv2d(1, 8, 3, padding=1)`, then ReLU | `(N, 8, 8, 8)` |
# | `conv2` | `nn.Conv2d(8, 16, 3, stride=2, padding=1)`, then ReLU | `(N, 16, 4, 4)` |
# | | flatten in `(C, H, W)` order (`h.flatten(1)`) | `(N, 256)` |
# | `fc` | `nn.Linear(256, out_features)`, no activation | `(N, out_features)` |
#
# **`Decoder(latent_dims)`**: `(N, latent_dims)` -> **logits** `(N, 1, 8, 8)`, the mirror image
#
# | submodule | layer | output |
# |---|---|---|
# | `fc` | `nn.Linear(latent_dims, 256)`, then ReLU, reshaped in `(C, H, W)` order (`h.reshape(N, 16, 4, 4)`) | `(N, 16, 4, 4)` |
# | `up1` | `UpConv2d(16, 8, 3, stride=2, padding=1, output_padding=1)`, then ReLU | `(N, 8, 8, 8)` |
# | `up2` | `UpConv2d(8, 1, 3, padding=1)`, no activation | `(N, 1, 8, 8)` |
#
# The decoder returns logits, not probabilities: the losses take logits (section 4), and
# `torch.sigmoid` turns them into pixel values when you want an image.
#
# **`Autoencoder(latent_dims)`**: `encoder = Encoder(latent_dims)`, `decoder =
# Decoder(latent_dims)`; `forward(x)` returns the reconstruction `sigmoid(decoder(encoder(x)))`,
# pixel values in `(0, 1)`, and `loss(x)` the **mean squared error** between `forward(x)` and
# `x` over every pixel of the batch (a 0-dim tensor), as in the course notes. The plain
# autoencoder has a single loss term, so its scale (mean or sum) only rescales the learning
# rate; in the VAE it will matter.
#
# Keep the modules free of state between calls (no caching of inputs), and build every layer
# in `__init__` (so that `model.parameters()` finds it).

# %% [raw]
# # BEGIN QUESTION
# name: q5
# points: 8

# %% [raw]
# # BEGIN SOLUTION

# %%
class Encoder(nn.Module):
    """(N, 1, 8, 8) -> (N, out_features): conv1, ReLU, conv2 (stride 2), ReLU, flatten, fc."""

    def __init__(self, out_features):
        super().__init__()
        # BEGIN SOLUTION NO PROMPT
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.fc = nn.Linear(16 * 4 * 4, out_features)
        # END SOLUTION
        """ # BEGIN PROMPT
        # conv1, conv2 and fc as in the table above
        raise NotImplementedError("Encoder.__init__")
        """ # END PROMPT

    def forward(self, x):
        assert x.ndim == 4 and x.shape[1:] == (1, 8, 8), f"Encoder expects images (N, 1, 8, 8), got {tuple(x.shape)}"
        # BEGIN SOLUTION NO PROMPT
        features = torch.relu(self.conv2(torch.relu(self.conv1(x))))
        return self.fc(features.flatten(1))
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("Encoder.forward")
        """ # END PROMPT


class Decoder(nn.Module):
    """(N, latent_dims) -> logits (N, 1, 8, 8): fc, ReLU, reshape (N, 16, 4, 4), up1, ReLU, up2."""

    def __init__(self, latent_dims):
        super().__init__()
        # BEGIN SOLUTION NO PROMPT
        self.fc = nn.Linear(latent_dims, 16 * 4 * 4)
        self.up1 = UpConv2d(16, 8, 3, stride=2, padding=1, output_padding=1)
        self.up2 = UpConv2d(8, 1, 3, padding=1)
        # END SOLUTION
        """ # BEGIN PROMPT
        # fc, up1 and up2 as in the table above (UpConv2d, not nn.ConvTranspose2d)
        raise NotImplementedError("Decoder.__init__")
        """ # END PROMPT

    def forward(self, z):
        assert z.ndim == 2, f"Decoder expects codes (N, latent_dims), got {tuple(z.shape)}"
        # BEGIN SOLUTION NO PROMPT
        grid = torch.relu(self.fc(z)).reshape(z.shape[0], 16, 4, 4)
        return self.up2(torch.relu(self.up1(grid)))
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("Decoder.forward")
        """ # END PROMPT


class Autoencoder(nn.Module):
    """encoder = Encoder(latent_dims), decoder = Decoder(latent_dims)."""

    def __init__(self, latent_dims):
        super().__init__()
        # BEGIN SOLUTION NO PROMPT
        self.encoder = Encoder(latent_dims)
        self.decoder = Decoder(latent_dims)
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("Autoencoder.__init__")
        """ # END PROMPT

    def forward(self, x):
        """x (N, 1, 8, 8) -> reconstruction (N, 1, 8, 8), pixel values in (0, 1)."""
        # BEGIN SOLUTION NO PROMPT
        return torch.sigmoid(self.decoder(self.encoder(x)))
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("Autoencoder.forward")
        """ # END PROMPT

    def loss(self, x):
        """Mean squared error between forward(x) and x over every pixel of the batch (0-dim)."""
        # BEGIN SOLUTION NO PROMPT
        return ((self(x) - x) ** 2).mean()
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("Autoencoder.loss")
        """ # END PROMPT

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
encoder = Encoder(5)
shapes = {name: tuple(p.shape) for name, p in encoder.named_parameters()}
assert shapes == {"conv1.weight": (8, 1, 3, 3), "conv1.bias": (8,), "conv2.weight": (16, 8, 3, 3), "conv2.bias": (16,), "fc.weight": (5, 256), "fc.bias": (5,)}, f"Encoder(5) parameters should be conv1 (8, 1, 3, 3), conv2 (16, 8, 3, 3), fc (5, 256) with biases; found {shapes}"
assert encoder(torch.rand(3, 1, 8, 8, generator=torch.Generator().manual_seed(0))).shape == (3, 5), "Encoder(5) maps (3, 1, 8, 8) to (3, 5)"

# %%
# A case by hand: with these parameters conv1 outputs 1 everywhere and conv2 outputs the constant
# maps 2, -1, 2, -1, ... (its bias), so after the ReLU its channels are 2, 0, 2, 0, ...
encoder = Encoder(3)
with torch.no_grad():
    for p in encoder.parameters():
        p.zero_()
    encoder.conv1.bias.fill_(1.0)
    encoder.conv2.bias.copy_(torch.tensor([2.0, -1.0] * 8))
    encoder.fc.weight[0, :16] = 1.0  # output 0 sums the first 16 features: 16 * 2 in (C, H, W) order
    encoder.fc.weight[1] = 1.0  # output 1 sums all 256 features: 8 channels * 16 pixels * 2
    encoder.fc.bias[2] = -1.0  # output 2 is -1
features = encoder(torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(1)))
assert torch.allclose(features[:, 2], torch.full((2,), -1.0)), "no activation after fc: the encoder's outputs (codes, or mu and logvar) may be negative"
assert torch.allclose(features[:, 1], torch.full((2,), 256.0)), "apply the ReLU after conv2 too: here conv2's odd channels are negative and must become 0 before fc"
assert torch.allclose(features[:, 0], torch.full((2,), 32.0)), "flatten in (C, H, W) order (h.flatten(1)): the first 16 features are channel 0's 4x4 map"

# %%
decoder = Decoder(4)
shapes = {name: tuple(p.shape) for name, p in decoder.named_parameters()}
assert shapes == {"fc.weight": (256, 4), "fc.bias": (256,), "up1.weight": (16, 8, 3, 3), "up1.bias": (8,), "up2.weight": (8, 1, 3, 3), "up2.bias": (1,)}, f"Decoder(4) parameters should be fc (256, 4), up1 (16, 8, 3, 3), up2 (8, 1, 3, 3) with biases; found {shapes}"
assert isinstance(decoder.up1, UpConv2d) and isinstance(decoder.up2, UpConv2d), "up1 and up2 are UpConv2d layers (they call your conv_transpose2d)"
# the decoder calls your conv_transpose2d (q1): what this test needs from it, with a kernel that
# is 1 at its centre (channel c to channel c) and 0 elsewhere
centre = torch.zeros(2, 2, 3, 3)
centre[0, 0, 1, 1] = centre[1, 1, 1, 1] = 1.0
grid = torch.arange(1.0, 33.0).reshape(1, 2, 4, 4)
shift = torch.tensor([0.5, -0.5]).reshape(1, 2, 1, 1)
spread_by_hand = shift.expand(1, 2, 8, 8).clone()
spread_by_hand[:, :, ::2, ::2] += grid  # pixel (i, j) paints the centre tap at (2i, 2j)
try:
    spread = conv_transpose2d(grid, centre, shift.flatten(), stride=2, padding=1, output_padding=1)
    kept = conv_transpose2d(grid, centre, shift.flatten(), padding=1)
    q1_right = tuple(spread.shape) == (1, 2, 8, 8) and tuple(kept.shape) == (1, 2, 4, 4) and bool(torch.allclose(spread, spread_by_hand)) and bool(torch.allclose(kept, grid + shift))
except Exception:
    q1_right = False
assert q1_right, "q1 fails: the decoder calls your conv_transpose2d, which is wrong for a kernel that is 1 at its centre (stride 2, padding 1, output_padding 1, or stride 1, padding 1, with a bias); fix q1 first"
logits = decoder(torch.randn(2, 4, generator=torch.Generator().manual_seed(0)))
assert logits.shape == (2, 1, 8, 8), f"Decoder(4) maps (2, 4) to logits (2, 1, 8, 8), got {tuple(logits.shape)}"
# A case by hand: fc outputs its bias, 1 for the first 16 features (channel 0 of the 4x4 grid in
# (C, H, W) order) and 0 for the rest; up1 copies channel 0 to the pixels (2i, 2j) of its channel
# 0, and its channel 1 is -1 everywhere (its bias); up2 adds up1's two channels after the ReLU.
# So the logits are 1 at the pixels (2i, 2j) and 0 elsewhere.
decoder = Decoder(2)
with torch.no_grad():
    for p in decoder.parameters():
        p.zero_()
    decoder.fc.bias[:16] = 1.0
    decoder.up1.weight[0, 0, 1, 1] = 1.0
    decoder.up1.bias[1] = -1.0
    decoder.up2.weight[0, 0, 1, 1] = decoder.up2.weight[1, 0, 1, 1] = 1.0
logits = decoder(torch.randn(3, 2, generator=torch.Generator().manual_seed(1)))
by_hand = torch.zeros(3, 1, 8, 8)
by_hand[:, :, ::2, ::2] = 1.0
assert (logits > -0.5).all(), "apply the ReLU after up1: here up1's second channel is negative and must become 0 before up2"
assert torch.allclose(logits[by_hand == 0], torch.zeros(())), "return up2's output as it is, logits (no sigmoid): in this case most logits are exactly 0"
assert torch.allclose(logits, by_hand), "reshape fc's 256 outputs to (N, 16, 4, 4) in (C, H, W) order (the first 16 are channel 0's 4x4 map), then up1, ReLU, up2"

# %%
model = Autoencoder(3)
images = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(0))
reconstruction = model(images)
assert reconstruction.shape == (4, 1, 8, 8) and (reconstruction > 0).all() and (reconstruction < 1).all(), "forward returns sigmoid(decoder(encoder(x))): pixel values in (0, 1)"
assert torch.allclose(reconstruction, torch.sigmoid(model.decoder(model.encoder(images)))), "forward returns sigmoid(decoder(encoder(x))): the sigmoid of the decoder's logits"
loss = model.loss(images)
assert loss.ndim == 0 and torch.allclose(loss, ((reconstruction - images) ** 2).mean()), "loss(x) is the mean squared error over every pixel, a 0-dim tensor"
loss.backward()
assert all(p.grad is not None for p in model.parameters()), "every parameter of the encoder and the decoder should receive a gradient"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# ## 6. The variational autoencoder
#
# `VAE(latent_dims)` holds `encoder = Encoder(2 * latent_dims)` and `decoder =
# Decoder(latent_dims)`. The encoder's output is read as two halves: the **first**
# `latent_dims` columns are `mu`, the **last** `latent_dims` are `logvar` (no activation: a
# log-variance may be any real number).
#
# * `forward(x, eps)` -> `(logits, mu, logvar)`: encode, `z = reparameterize(mu, logvar, eps)`,
#   decode. The noise `eps` (N, latent_dims) is an argument, so the function is deterministic
#   and testable; `eps = torch.zeros(...)` decodes the mean code.
# * `loss(x, eps, beta=1.0)` -> `(loss, reconstruction, kl)`, three 0-dim tensors, each
#   **averaged over the batch**: `reconstruction = bernoulli_nll(logits, x).mean()`,
#   `kl = kl_divergence(mu, logvar).mean()`, `loss = reconstruction + beta * kl`. With
#   `beta = 1` the loss is the negative ELBO (in nats per image); other values give the
#   beta-VAE, where `beta` weighs **the KL**, not the reconstruction.
# * `sample(num, generator)` -> `(num, 1, 8, 8)`: draw `z ~ N(0, I)` of shape
#   `(num, latent_dims)` from `generator` (in the dtype of the model's parameters) and return
#   the **pixel probabilities** `torch.sigmoid(self.decoder(z))`.
#
# Why does this generate digits? The KL term pulls every `q(z | x)` towards `N(0, I)`, so the
# codes of the training images fill the region where `N(0, I)` puts its mass, without holes;
# the decoder learns to turn every point of that region into an image. A plain autoencoder's
# codes land wherever is convenient, and a random code usually decodes to a smudge.

# %% [raw]
# # BEGIN QUESTION
# name: q6
# points: 6

# %% [raw]
# # BEGIN SOLUTION

# %%
class VAE(nn.Module):
    """Variational autoencoder: encoder = Encoder(2 * latent_dims) (mu, then logvar), decoder = Decoder(latent_dims)."""

    def __init__(self, latent_dims):
        super().__init__()
        self.latent_dims = latent_dims
        # BEGIN SOLUTION NO PROMPT
        self.encoder = Encoder(2 * latent_dims)
        self.decoder = Decoder(latent_dims)
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("VAE.__init__")
        """ # END PROMPT

    def forward(self, x, eps):
        """x (N, 1, 8, 8), eps (N, latent_dims) -> (logits (N, 1, 8, 8), mu (N, latent_dims), logvar (N, latent_dims))."""
        assert eps.shape == (x.shape[0], self.latent_dims), f"eps must be (N, latent_dims) = ({x.shape[0]}, {self.latent_dims}), got {tuple(eps.shape)}"
        # BEGIN SOLUTION NO PROMPT
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return self.decoder(reparameterize(mu, logvar, eps)), mu, logvar
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("VAE.forward")
        """ # END PROMPT

    def loss(self, x, eps, beta=1.0):
        """(reconstruction + beta * kl, reconstruction, kl): three 0-dim tensors, each the mean over the batch."""
        # BEGIN SOLUTION NO PROMPT
        logits, mu, logvar = self(x, eps)
        reconstruction = bernoulli_nll(logits, x).mean()
        kl = kl_divergence(mu, logvar).mean()
        return reconstruction + beta * kl, reconstruction, kl
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("VAE.loss")
        """ # END PROMPT

    def sample(self, num, generator):
        """num images (num, 1, 8, 8) of pixel probabilities, decoded from z ~ N(0, I) drawn from generator."""
        # BEGIN SOLUTION NO PROMPT
        dtype = self.decoder.fc.weight.dtype
        z = torch.randn(num, self.latent_dims, generator=generator, dtype=dtype)
        return torch.sigmoid(self.decoder(z))
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("VAE.sample")
        """ # END PROMPT

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
# the VAE's decoder calls your conv_transpose2d (q1): first its output size
try:
    q1_right = tuple(conv_transpose2d(torch.zeros(1, 16, 4, 4), torch.zeros(16, 8, 3, 3), stride=2, padding=1, output_padding=1).shape) == (1, 8, 8, 8) and tuple(conv_transpose2d(torch.zeros(1, 8, 8, 8), torch.zeros(8, 1, 3, 3), padding=1).shape) == (1, 1, 8, 8)
except Exception:
    q1_right = False
assert q1_right, "q1 fails: the VAE's decoder calls your conv_transpose2d, whose output size is wrong for the decoder's layers; fix q1 first"
vae = VAE(3)
assert tuple(vae.encoder.fc.weight.shape) == (6, 256) and tuple(vae.decoder.fc.weight.shape) == (256, 3), "VAE(3): encoder = Encoder(6) (mu and logvar), decoder = Decoder(3)"
images = torch.rand(5, 1, 8, 8, generator=torch.Generator().manual_seed(0))
logits, mu, logvar = vae(images, torch.zeros(5, 3))
assert logits.shape == (5, 1, 8, 8) and mu.shape == (5, 3) and logvar.shape == (5, 3), "forward returns (logits (N, 1, 8, 8), mu (N, L), logvar (N, L))"
assert torch.allclose(torch.cat([mu, logvar], dim=1), vae.encoder(images)), "mu is the first half of the encoder's output, logvar the second half"
assert torch.allclose(logits, vae.decoder(mu)), "with eps = 0 the decoder sees z = mu"

# %%
# forward calls your reparameterize (q2): first a case by hand
try:
    q2_right = bool(torch.allclose(reparameterize(torch.tensor([[1.0, -2.0]]), torch.tensor([[0.0, 2.0 * math.log(3.0)]]), torch.tensor([[0.5, 1.0]])), torch.tensor([[1.5, 1.0]])))
except Exception:
    q2_right = False
assert q2_right, "q2 fails: VAE.forward calls your reparameterize, which must return mu + exp(0.5 * logvar) * eps; fix q2 first"
vae = VAE(2).double()
images = torch.rand(3, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
eps = torch.randn(3, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
logits, mu, logvar = vae(images, eps)
assert torch.allclose(logits, vae.decoder(mu + torch.exp(0.5 * logvar) * eps)), "forward decodes z = reparameterize(mu, logvar, eps), not mu: the noise eps must reach the decoder"

# %%
vae = VAE(2)
images = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(1))
eps = torch.randn(4, 2, generator=torch.Generator().manual_seed(2))
loss, reconstruction, kl = vae.loss(images, eps)
logits, mu, logvar = vae(images, eps)
assert loss.ndim == reconstruction.ndim == kl.ndim == 0, "loss returns three 0-dim tensors"
assert torch.allclose(reconstruction, bernoulli_nll(logits, images).mean()) and torch.allclose(kl, kl_divergence(mu, logvar).mean()), "reconstruction and kl are per-example sums averaged over the batch"
assert torch.allclose(vae.loss(images, eps, beta=3.0)[0], reconstruction + 3.0 * kl), "loss = reconstruction + beta * kl"

# %%
vae = VAE(2)
samples = vae.sample(6, torch.Generator().manual_seed(0))
assert samples.shape == (6, 1, 8, 8) and (samples > 0).all() and (samples < 1).all(), "sample returns pixel probabilities (sigmoid of the logits), shape (num, 1, 8, 8)"
assert torch.equal(samples, vae.sample(6, torch.Generator().manual_seed(0))), "the same seed must give the same samples: draw z from the given generator"

# %%
class CodeAsLogits(nn.Module):
    """A stand-in decoder whose first latent_dims logits are the code z itself (its layers, of
    the decoder's sizes, only give sample a dtype to read)."""
    def __init__(self, latent_dims):
        super().__init__()
        self.fc, self.up1, self.up2 = nn.Linear(latent_dims, 256), UpConv2d(16, 8, 3), UpConv2d(8, 1, 3)
    def forward(self, z):
        return F.pad(z, (0, 64 - z.shape[1])).reshape(-1, 1, 8, 8)

vae = VAE(2)
vae.decoder = CodeAsLogits(2)
with torch.no_grad():
    samples = vae.sample(20000, torch.Generator().manual_seed(1))
assert (samples > 0).all() and (samples < 1).all(), "sample returns pixel probabilities, torch.sigmoid(self.decoder(z)), not the decoder's logits"
codes = torch.logit(samples.flatten(1)[:, :2].double())
assert codes.mean(0).abs().max() < 0.05 and (codes.std(0) - 1).abs().max() < 0.05, "sample decodes z ~ N(0, I) of shape (num, latent_dims): standard normal (torch.randn), not uniform, not scaled"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# ## 7. Experiments (not graded by execution)
#
# The data are the course's 8x8 digits (1797 images, split into train, validation and test
# sets). Every model trains with Adam on minibatches of 64 and is evaluated on the test set;
# the matrices are tiny, so one CPU thread is fastest. The cells below use your classes.

# %% tags=["experiment"]
# EXPERIMENT: not run by the grader
from student.results import record  # figures for the course's tests; prints nothing
import time

import matplotlib.pyplot as plt
from tqdm.auto import tqdm

from student.data import load_digits_splits, minibatches
from student.plots import plot_curves, show_images
from student.seeding import seeded

torch.set_num_threads(1)
digits = load_digits_splits(seed=0)
train_x, test_x = digits["train"].images, digits["test"].images
train_y, test_y = digits["train"].labels, digits["test"].labels
print("train", tuple(train_x.shape), "test", tuple(test_x.shape))


def train(model, step_loss, epochs, lr=3e-3, seed=0, data=None, label="training"):
    """Adam on `step_loss(model, batch, generator)`, batch = train_x[idx] (or, with `data`, the
    tuple of every tensor of `data` at idx); returns the per-epoch means of what step_loss
    returns (a tuple of 0-dim tensors, the first one minimised)."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    history = []
    for _ in tqdm(range(epochs), desc=label, leave=False):
        totals = None
        for idx in minibatches(len(train_x), 64, generator):
            batch = train_x[idx] if data is None else tuple(tensor[idx] for tensor in data)
            terms = step_loss(model, batch, generator)
            optimizer.zero_grad()
            terms[0].backward()
            optimizer.step()
            values = torch.stack([t.detach() for t in terms]) * len(idx)
            totals = values if totals is None else totals + values
        history.append((totals / len(train_x)).tolist())
    return history

# %% [markdown]
# ### 7.1 Autoencoders: how many latent dimensions?
#
# Three autoencoders with 2, 8 and 32 latent dimensions, the same training. The course notes
# observe that a small latent space gives blurry reconstructions that keep only the rough
# shape of the digit; the plot and the test errors below measure it. (An 8x8 digit has 64
# pixels, so 32 numbers are already half the size of the image.)

# %% tags=["experiment"]
# EXPERIMENT: not run by the grader
started = time.perf_counter()
autoencoders, ae_test_mse = {}, {}
for latent in (2, 8, 32):
    with seeded(0):  # nn.Conv2d and nn.Linear draw their initial weights from the global generator
        autoencoders[latent] = Autoencoder(latent)
    train(autoencoders[latent], lambda m, x, g: (m.loss(x),), epochs=12, lr=5e-3, label=f"AE latent {latent}")
    with torch.no_grad():
        ae_test_mse[latent] = autoencoders[latent].loss(test_x).item()
    print(f"latent {latent:>2}: test MSE per pixel {ae_test_mse[latent]:.4f}")
with torch.no_grad():
    rows = [test_x[:8]] + [autoencoders[latent](test_x[:8]) for latent in (2, 8, 32)]
show_images(torch.cat(rows), titles=[f"{name}" for name in ["input"] * 8 + ["latent 2"] * 8 + ["latent 8"] * 8 + ["latent 32"] * 8]);
figure, axis = plt.subplots(figsize=(4, 3))
axis.plot(list(ae_test_mse), list(ae_test_mse.values()), "o-")
axis.set_xscale("log", base=2)
axis.set_xlabel("latent dimensions")
axis.set_ylabel("test MSE per pixel")
axis.set_title("Reconstruction error against latent size")
figure.tight_layout()
record(ae_test_mse_latent2=ae_test_mse[2])
record(ae_test_mse_latent8=ae_test_mse[8])
record(ae_test_mse_latent32=ae_test_mse[32])
print(f"autoencoders trained in {time.perf_counter() - started:.1f} s")

# %% [markdown]
# ### 7.2 The VAE: ELBO, samples, and a judge of the samples
#
# A VAE with 8 latent dimensions, `beta = 1`, one draw of `eps` per image and step. We record
# the two terms of the loss over training. On the test set we report the negative ELBO in
# nats per image, averaged over 10 draws of `eps` (lower is better; the ELBO is a lower bound on
# `log p(x)`, so it also upper-bounds the model's code length for a test digit).
#
# Are the samples digits? A small CNN classifier trained on the real training digits judges
# them: we report the fraction of 1000 samples that it assigns to a class with probability
# above 0.9 (the classifier itself reaches about 0.98 test accuracy). In our run of the solution
# notebook the negative ELBO was 24.8 nats per image and 54% of the samples were recognised
# with that confidence (the rest are mostly blurry blends of two digits). For comparison we
# feed the plain 8-dimensional autoencoder's decoder with Gaussian codes matched to the mean
# and spread of its training codes: 47% in our run, almost as many. On these small digits the
# autoencoder's codes happen to form a fairly Gaussian blob; what the VAE adds is that its
# prior is fixed in advance (no statistics of the training codes are needed to sample) and
# that its latent space has no holes, as the 2-D map below shows. The targets the notebook
# tests are a negative ELBO below 27 and a recognised fraction above 0.4.

# %% tags=["experiment"]
# EXPERIMENT: not run by the grader
# The judge: a small CNN trained on the real training digits (torch.nn layers, not graded).
with seeded(0):
    judge = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(128, 10))
train(judge, lambda m, x, g: (F.cross_entropy(m(x[0]), x[1]),), epochs=30, data=(train_x, train_y), label="digit classifier")
with torch.no_grad():
    judge_accuracy = (judge(test_x).argmax(dim=1) == test_y).float().mean().item()
print(f"classifier test accuracy {judge_accuracy:.3f}")
record(judge_test_accuracy=judge_accuracy)


def confident_fraction(images, threshold=0.9):
    """Share of `images` the judge assigns to a class with probability above `threshold`, and the classes."""
    with torch.no_grad():
        probabilities = F.softmax(judge(images), dim=1)
    return (probabilities.max(dim=1).values > threshold).float().mean().item(), probabilities.argmax(dim=1)

# %% tags=["experiment"]
# EXPERIMENT: not run by the grader
def vae_step(beta):
    def step(model, x, generator):
        eps = torch.randn(len(x), model.latent_dims, generator=generator)
        return model.loss(x, eps, beta)
    return step


def test_negative_elbo(model, draws=10):
    generator = torch.Generator().manual_seed(123)
    with torch.no_grad():
        return sum(model.loss(test_x, torch.randn(len(test_x), model.latent_dims, generator=generator))[0].item() for _ in range(draws)) / draws


started = time.perf_counter()
with seeded(0):
    vae8 = VAE(8)
vae8_history = train(vae8, vae_step(1.0), epochs=30, label="VAE latent 8")
vae8_elbo = test_negative_elbo(vae8)
print(f"VAE, 8 latent dimensions: test negative ELBO {vae8_elbo:.2f} nats per image ({time.perf_counter() - started:.1f} s)")
plot_curves({"reconstruction": [h[1] for h in vae8_history], "KL": [h[2] for h in vae8_history]}, ylabel="nats per image", title="The two terms of the VAE loss (train)");
with torch.no_grad():
    vae_samples = vae8.sample(1000, torch.Generator().manual_seed(7))
show_images(vae_samples[:32], columns=8);
vae_fraction, vae_classes = confident_fraction(vae_samples)
print(f"VAE samples recognised with confidence > 0.9: {vae_fraction:.2f}; classes {torch.bincount(vae_classes, minlength=10).tolist()}")
with torch.no_grad():  # the plain autoencoder's decoder on random codes of its training codes' scale
    codes = autoencoders[8].encoder(train_x)
    random_codes = codes.mean(0) + codes.std(0) * torch.randn(1000, 8, generator=torch.Generator().manual_seed(7))
    ae_fraction, _ = confident_fraction(torch.sigmoid(autoencoders[8].decoder(random_codes)))
print(f"plain autoencoder decoding random codes: {ae_fraction:.2f}")
record(ae_random_code_confident_fraction=ae_fraction)
record(vae_test_neg_elbo=vae8_elbo)
record(vae_confident_sample_fraction=vae_fraction)

# %% [markdown]
# ### 7.3 A 2-D latent space, interpolation, and the weight of the KL
#
# With 2 latent dimensions we can look at the code space itself: each test digit is placed at
# its mean code `mu`, coloured by its label. Digits of the same class gather, and the cloud
# stays roughly inside the standard normal's few-sigma disc, because the KL pulls it there.
# Decoding a straight line between the codes of two test digits morphs one into the other
# through plausible images.
#
# Then `beta`: the same 8-dimensional VAE trained (20 epochs) with `beta = 4` pays four times more for
# every nat of KL. On these small digits that price is more than what any code saves in
# reconstruction, and training settles in the degenerate optimum: **posterior collapse**. The
# encoder outputs the prior `N(0, I)` for every image, the decoder learns to ignore `z` and
# outputs the same average image whatever it is given, so all 16 samples below are one blurry
# blob and the reconstruction term is that of a model without a code. In our run the test KL
# was 0.0 nats and the reconstruction 27.3 nats, against 3.1 and 19.9 with `beta = 1`; once the
# decoder ignores `z`, no single coordinate is worth switching back on. The
# trade-off that `beta` controls (less information in the code, worse reconstructions,
# smoother samples) shows at values between 1 and the point of collapse; collapse itself is a
# classic VAE failure, with strong decoders or strong KL weights, and is fought with KL
# annealing (start at `beta = 0` and raise it) or a minimum KL per dimension ("free bits").

# %% tags=["experiment"]
# EXPERIMENT: not run by the grader
with seeded(0):
    vae2 = VAE(2)
train(vae2, vae_step(1.0), epochs=15, label="VAE latent 2")
with torch.no_grad():
    _, test_mu, _ = vae2(test_x, torch.zeros(len(test_x), 2))
figure, axis = plt.subplots(figsize=(5, 4.5))
scatter = axis.scatter(test_mu[:, 0], test_mu[:, 1], c=test_y, cmap="tab10", s=12)
figure.colorbar(scatter, ax=axis, label="digit")
axis.set_xlabel("mu_1")
axis.set_ylabel("mu_2")
axis.set_title("Test digits in the 2-D latent space")
figure.tight_layout()
first, second = test_mu[(test_y == 0).nonzero()[0, 0]], test_mu[(test_y == 6).nonzero()[0, 0]]
steps = torch.linspace(0, 1, 8).unsqueeze(1)
with torch.no_grad():
    path = torch.sigmoid(vae2.decoder((1 - steps) * first + steps * second))
show_images(path, titles=[f"t={t:.2f}" for t in steps[:, 0].tolist()]);
print(f"VAE, 2 latent dimensions: test negative ELBO {test_negative_elbo(vae2):.2f}")

# %% tags=["experiment"]
# EXPERIMENT: not run by the grader
with seeded(0):
    vae8_beta4 = VAE(8)
beta4_history = train(vae8_beta4, vae_step(4.0), epochs=20, label="VAE latent 8, beta 4")
with torch.no_grad():
    beta4_terms = vae8_beta4.loss(test_x, torch.zeros(len(test_x), 8))
    beta1_terms = vae8.loss(test_x, torch.zeros(len(test_x), 8))
print(f"beta = 1: test reconstruction {beta1_terms[1].item():.1f}, KL {beta1_terms[2].item():.1f} nats")
print(f"beta = 4: test reconstruction {beta4_terms[1].item():.1f}, KL {beta4_terms[2].item():.1f} nats")
plot_curves({"KL, beta 1": [h[2] for h in vae8_history[:20]], "KL, beta 4": [h[2] for h in beta4_history]}, ylabel="KL (nats per image)", title="How beta changes the KL term");
with torch.no_grad():
    show_images(vae8_beta4.sample(16, torch.Generator().manual_seed(7)), columns=8);

# %% [markdown]
# ## 8. Concept questions
#
# 1. `kl_by_hand()`: the KL from `N(mu, diag(sigma**2))` to `N(0, I)` for `mu = (1, 0)` and
#    `sigma = (0.5, 2)`, as a float. Work it out with the formula of section 3 (the two
#    `log sigma` terms cancel), then compare with `kl_divergence` in a scratch cell.
# 2. `latent_dims_needed()`: from your experiment 7.1, the smallest latent size among 2, 8 and
#    32 whose autoencoder reached a test MSE per pixel below 0.03, as an int. (Graded for
#    plausibility: what a correctly trained autoencoder of this notebook can reach.)

# %% [raw]
# # BEGIN QUESTION
# name: q7
# points: 1.5

# %% [raw]
# # BEGIN SOLUTION

# %%
def kl_by_hand():
    """KL(N((1, 0), diag(0.5**2, 2**2)) || N(0, I)), a float."""
    # BEGIN SOLUTION NO PROMPT
    return 0.5 * (0.25 + 1.0 - 1.0) - math.log(0.5) + 0.5 * (4.0 + 0.0 - 1.0) - math.log(2.0)
    # END SOLUTION
    """ # BEGIN PROMPT
    raise NotImplementedError("kl_by_hand")
    """ # END PROMPT


def latent_dims_needed():
    """The smallest latent size of (2, 8, 32) whose autoencoder reached a test MSE below 0.03."""
    # BEGIN SOLUTION NO PROMPT
    return 8
    # END SOLUTION
    """ # BEGIN PROMPT
    raise NotImplementedError("latent_dims_needed")
    """ # END PROMPT

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
answer = kl_by_hand()
assert isinstance(answer, float), "kl_by_hand returns a Python float"
assert answer > 0, "a KL divergence between different distributions is positive"

# %%
answer = latent_dims_needed()
assert isinstance(answer, int) and answer in (2, 8, 32), "answer with one of the latent sizes of the experiment, 2, 8 or 32, as a Python int"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION
