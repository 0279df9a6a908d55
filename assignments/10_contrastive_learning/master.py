# %% [raw]
# # ASSIGNMENT CONFIG
# name: 10_contrastive_learning
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
# # Chapter 10 — Contrastive learning: SimCLR, the InfoNCE loss, and a linear probe
#
# Labels are expensive; images are not. **Self-supervised** learning trains an encoder on
# unlabeled images with a task whose answer is known without labels. SimCLR (Chen et al.,
# 2020) uses the simplest such task: take an image, make two random *views* of it (crop,
# rotate, shift, add noise), and train the network so that the two views of the same image
# get similar representations while views of different images get dissimilar ones. If the
# network can recognise "the same digit, moved and blurred" among hundreds of others, it has
# had to learn what the digit looks like. We then freeze the encoder and train only a
# **linear classifier** (a *linear probe*) on its features, with very few labels.
#
# You write the pieces: the InfoNCE loss (NT-Xent), a contrastive accuracy, Wang and
# Isola's alignment and uniformity, the augmentations, the projection head, the SimCLR module
# and a feature extractor. Autograd computes every gradient. The experiments then pre-train a
# small CNN on the 8x8 digits without labels and compare linear probes on its features with
# probes on a random encoder's features and on raw pixels.
#
# **How this notebook is graded.** Hidden checks call every function and class below on many
# seeded inputs (mostly float64) and compare with a reference: the value of a loss and its
# gradients with respect to each input are separate items, and each method is called at least
# twice in a row (the second call is graded). Modules are graded with the grader's own
# encoders and heads, so one broken class costs only its own items. `augment` is random, so it
# is graded on its structure (shape, range, determinism, identity at zero strength, ...), not
# on exact pixels. Cells marked `# EXPERIMENT` are not run by the grader.
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
# In short: inside your losses write the softmax cross-entropy yourself, with a **stable
# log-sum-exp** (chapter 01). `torch.nn.Module`, `nn.Linear`, `torch.nn.functional` (other
# than the losses listed), `F.affine_grid`, `F.grid_sample`, `torch.optim` and autograd are
# all allowed.
#
# ## Conventions
# * A batch of `N` images gives two batches of views, and the projection head turns them into
#   `z1` and `z2`, each `(N, D)`. Row `i` of `z1` and row `i` of `z2` come from the same image:
#   a **positive pair**. Every other pair is a **negative**.
# * Stacked, `z = torch.cat([z1, z2])` is `(2N, D)`: the positive of row `i` is row `i + N`
#   for `i < N`, and row `i - N` otherwise, i.e. `(i + N) % (2N)`.
# * Similarity is the **cosine** `sim(u, v) = u . v / (||u|| ||v||)`: normalise every row to
#   unit length first (`z / z.norm(dim=1, keepdim=True)`); the grader gives embeddings of very
#   different norms.
# * Images are `(N, 1, 8, 8)` tensors with pixels in `[0, 1]`.

# %%
import math

import torch
import torch.nn.functional as F
from torch import nn

# %% [markdown]
# ## 1. The InfoNCE loss (NT-Xent)
#
# For an anchor `i`, the loss asks: *among the other `2N - 1` embeddings, which one is my
# positive?* It is a softmax classification over the candidates, with logits the cosine
# similarities divided by a **temperature** `tau`:
#
# ```
# s_ij   = sim(z_i, z_j) / tau                          for j != i
# l_i    = -log( exp(s_i,p(i)) / sum_{j != i} exp(s_ij) )
#        = logsumexp_{j != i}(s_ij) - s_i,p(i)
# loss   = (1 / 2N) * sum_i l_i                         (every one of the 2N rows is an anchor)
# ```
#
# Shapes: `z` is `(2N, D)`, the similarity matrix `z_hat @ z_hat.T` is `(2N, 2N)`. Excluding
# `j = i` matters: a row's similarity with itself is always the largest (1), so leaving the
# diagonal in would put a fake candidate that always wins. Set it to `-inf` (`masked_fill`
# with `torch.eye(2N, dtype=torch.bool)`): `exp(-inf) = 0`.
#
# **Worked example.** `N = 2`, `D = 2`, `tau = 1`, `z1 = [[1, 0], [0, 1]]`, `z2 = [[1, 0],
# [-1, 0]]`. The stacked rows are `a = (1, 0)`, `b = (0, 1)`, `c = (1, 0)`, `d = (-1, 0)`.
# Anchor `a` has candidates `b, c, d` with cosines `0, 1, -1` and its positive is `c`:
# `l_a = log(e^0 + e^1 + e^-1) - 1 = 0.4076`. Anchor `b`: cosines with `a, c, d` are `0, 0, 0`,
# positive `d`: `l_b = log 3 = 1.0986`. Anchor `c`: positive `a` (cosine 1), others `0, -1`:
# `l_c = 0.4076`. Anchor `d`: positive `b` (cosine 0), others `-1, -1`:
# `l_d = log(e^-1 + e^0 + e^-1) - 0 = 0.5514`. The loss is the mean, `0.6163`.
#
# **The temperature.** Dividing by a small `tau` sharpens the softmax: the loss then mostly
# pushes away the *hardest* negatives (the ones most similar to the anchor), and it can be
# driven close to 0 only if every positive clearly beats every negative. A large `tau`
# treats all negatives alike and the loss stays near `log(2N - 1)`. SimCLR uses `0.1`-`0.5`.
#
# **Stability.** With `tau = 0.01` the logits reach `1 / 0.01 = 100`, and `exp(100)` overflows
# float32 (its largest value is about `e^88.7`): `log(sum(exp(s)))` becomes `inf`. Subtract
# each row's maximum `m` first: `logsumexp(s) = m + log(sum(exp(s - m)))`, where every
# exponent is at most 0. The grader runs your loss in float32 at `tau = 0.01` too.
#
# **`N = 1`.** With a single image, each anchor has exactly one candidate, its positive: the
# softmax is `1`, the loss is exactly `0` and so is its gradient. A batch of one gives no
# learning signal at all; contrastive learning needs negatives, and in practice many of them
# (SimCLR's batches hold hundreds to thousands of images).

# %% [raw]
# # BEGIN QUESTION
# name: q1
# points: 3

# %% [raw]
# # BEGIN SOLUTION

# %%
def info_nce_loss(z1, z2, temperature=0.5):
    """NT-Xent: the mean over the 2N anchors of -log softmax at the positive.

    z1, z2: (N, D) projections of the two views (any norms: cosine similarity is used).
    temperature: tau > 0.
    Returns a 0-dim tensor (same dtype as z1), differentiable with respect to z1 and z2.
    """
    assert z1.ndim == 2 and z1.shape == z2.shape, f"z1 and z2 must both be (N, D), got {tuple(z1.shape)} and {tuple(z2.shape)}"
    # BEGIN SOLUTION NO PROMPT
    n = z1.shape[0]
    z = torch.cat([z1, z2], dim=0)
    z = z / z.norm(dim=1, keepdim=True)
    logits = z @ z.T / temperature
    logits = logits.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), -math.inf)
    rows = torch.arange(2 * n, device=z.device)
    positives = logits[rows, (rows + n) % (2 * n)]
    top = logits.max(dim=1, keepdim=True).values
    logsumexp = top.squeeze(1) + torch.log(torch.exp(logits - top).sum(dim=1))
    return (logsumexp - positives).mean()
    # END SOLUTION
    """ # BEGIN PROMPT
    raise NotImplementedError("info_nce_loss")
    """ # END PROMPT

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
z1 = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
z2 = torch.tensor([[1.0, 0.0], [-1.0, 0.0]], dtype=torch.float64)
loss = info_nce_loss(z1, z2, temperature=1.0)
assert torch.is_tensor(loss) and loss.shape == (), f"the loss is a 0-dim tensor, got {type(loss).__name__} of shape {tuple(getattr(loss, 'shape', ()))}"
by_hand = (2 * (math.log(math.exp(0) + math.exp(1) + math.exp(-1)) - 1) + math.log(3) + math.log(2 * math.exp(-1) + 1)) / 4
assert abs(loss.item() - by_hand) < 1e-10, "the worked example of the text: check the diagonal (excluded), the positive (row i + N) and the mean over all 2N anchors"
half = (2 * (math.log(1 + math.exp(2) + math.exp(-2)) - 2) + math.log(3) + math.log(2 * math.exp(-2) + 1)) / 4
assert abs(info_nce_loss(z1, z2, temperature=0.5).item() - half) < 1e-10, "the worked example at temperature 0.5 (every cosine doubled): the logits are the cosines DIVIDED by the temperature (at tau = 1 dividing and multiplying agree)"

# %%
generator = torch.Generator().manual_seed(0)
z1 = torch.randn(6, 5, dtype=torch.float64, generator=generator)
z2 = z1 + 0.3 * torch.randn(6, 5, dtype=torch.float64, generator=generator)
scales = torch.tensor([[0.01], [1.0], [7.0], [0.5], [100.0], [3.0]], dtype=torch.float64)
assert torch.allclose(info_nce_loss(z1 * scales, z2, 0.2), info_nce_loss(z1, z2, 0.2)), "scaling an embedding must not change the loss: use cosine similarity (normalise the rows)"
assert torch.allclose(info_nce_loss(z1, z2), info_nce_loss(z1, z2, 0.5)), "the default temperature is 0.5"
assert not torch.allclose(info_nce_loss(z1, z2, 0.1), info_nce_loss(z1, z2, 1.0)), "the temperature must change the loss"

# %%
single = torch.tensor([[3.0, -1.0]], dtype=torch.float64, requires_grad=True)
other = torch.tensor([[0.5, 2.0]], dtype=torch.float64, requires_grad=True)
loss = info_nce_loss(single, other, temperature=0.1)
loss.backward()
assert loss.item() == 0.0 and not single.grad.any() and not other.grad.any(), "with N = 1 each anchor's only candidate is its positive: the loss and its gradients are exactly 0 (exclude the diagonal)"
far = info_nce_loss(torch.tensor([[1.0, 0.0]], dtype=torch.float64), torch.tensor([[0.0, 1.0]], dtype=torch.float64), temperature=0.01)
assert far.item() == 0.0, "N = 1 with the positive at cosine 0 and temperature 0.01: the loss is exactly 0. Leave each row's self term out before exp (mask the diagonal with -inf): subtracting exp(self) after summing cancels to 0 there, because exp(1 / 0.01) swamps exp(0)"

# %%
generator = torch.Generator().manual_seed(2)
z1 = torch.randn(3, 4, dtype=torch.float64, generator=generator).requires_grad_(True)
z2 = (3.0 * torch.randn(3, 4, dtype=torch.float64, generator=generator)).requires_grad_(True)
assert torch.autograd.gradcheck(lambda a, b: info_nce_loss(a, b, temperature=0.3), (z1, z2), raise_exception=False), "the gradients of the loss with respect to z1 and z2 do not match the loss itself: autograd must see every step, so normalise with the tensor's own norm (no .detach(), .data, torch.no_grad() or torch.tensor(...) on the way)"

# %%
generator = torch.Generator().manual_seed(1)
center = torch.randn(8, generator=generator)
z1 = (center + 0.05 * torch.randn(4, 8, generator=generator)).float()
z2 = (z1 + 0.02 * torch.randn(4, 8, generator=generator)).float()
loss = info_nce_loss(z1, z2, temperature=0.01)
assert loss.dtype == torch.float32 and torch.isfinite(loss), "in float32 at temperature 0.01 the loss must stay finite: subtract each row's maximum before exp"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# ## 2. Contrastive accuracy
#
# The loss is hard to read; a more intuitive number is how often the positive *wins*:
# `contrastive_accuracy(z1, z2, k=1)` is the fraction of the `2N` anchors whose positive is
# among the `k` most similar of the other `2N - 1` embeddings (cosine similarity). Chance level
# for top-1 is `1 / (2N - 1)`.
#
# **Ties.** A negative *as similar as* the positive counts against it: the positive of anchor
# `i` is in the top `k` when fewer than `k` negatives have a similarity `>=` the positive's.
# That rule matters for a *collapsed* representation, where every embedding is the same
# vector: all similarities are 1, nothing is learnt, and the accuracy must be 0, not 1.
#
# Return a Python `float` (`.item()`); no gradients are needed (`torch.no_grad()`).

# %% [raw]
# # BEGIN QUESTION
# name: q2
# points: 2

# %% [raw]
# # BEGIN SOLUTION

# %%
def contrastive_accuracy(z1, z2, k=1):
    """Fraction of the 2N anchors whose positive ranks in the top k among the other 2N - 1
    embeddings by cosine similarity (ties count against the positive).

    z1, z2: (N, D). Returns a Python float in [0, 1].
    """
    assert z1.ndim == 2 and z1.shape == z2.shape, f"z1 and z2 must both be (N, D), got {tuple(z1.shape)} and {tuple(z2.shape)}"
    # BEGIN SOLUTION NO PROMPT
    n = z1.shape[0]
    with torch.no_grad():
        z = torch.cat([z1, z2], dim=0)
        z = z / z.norm(dim=1, keepdim=True)
        sims = z @ z.T
        rows = torch.arange(2 * n)
        positive_index = (rows + n) % (2 * n)
        positive = sims[rows, positive_index].unsqueeze(1)
        rivals = sims >= positive
        rivals[rows, rows] = False
        rivals[rows, positive_index] = False
        return (rivals.sum(dim=1) < k).double().mean().item()
    # END SOLUTION
    """ # BEGIN PROMPT
    raise NotImplementedError("contrastive_accuracy")
    """ # END PROMPT

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
z1 = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]], dtype=torch.float64)
accuracy = contrastive_accuracy(z1, 2 * z1)
assert isinstance(accuracy, float), f"return a Python float, got {type(accuracy).__name__}"
assert accuracy == 1.0, "views that are the same direction are each other's best match"
assert contrastive_accuracy(z1, z1.roll(1, dims=0)) == 0.0, "when every positive is another image's view, top-1 accuracy is 0"

# %%
collapsed = torch.ones(4, 3, dtype=torch.float64)
assert contrastive_accuracy(collapsed, collapsed) == 0.0, "a collapsed representation (all embeddings equal) must score 0: a negative as similar as the positive counts against it"
assert contrastive_accuracy(collapsed, collapsed, k=7) == 1.0, "with k = 2N - 1 every positive is in the top k"
assert contrastive_accuracy(torch.tensor([[1.0, 2.0]]), torch.tensor([[-3.0, 1.0]])) == 1.0, "with N = 1 the positive is the only candidate"

# %%
long_negative = torch.tensor([[4.0, 0.0], [3.0, 4.0]], dtype=torch.float64)
unit_views = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
assert contrastive_accuracy(long_negative, unit_views) == 1.0, "rank by cosine similarity, not by dot product: here every positive has the largest cosine, and a long negative such as (3, 4) must not win because of its length (normalise the rows)"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# ## 3. Alignment and uniformity
#
# Wang and Isola (2020) showed that contrastive losses optimise two properties of the
# normalised embeddings `f(x) = z / ||z||`, which live on the unit sphere:
#
# * **alignment**: positive pairs are close,
#   `alignment = mean over the N pairs of ||f(x_i) - f(y_i)||_2 ^ alpha` (default `alpha = 2`);
#   lower is better, 0 when the two views always get the same embedding;
# * **uniformity**: the embeddings spread over the whole sphere,
#   `uniformity = log( mean over pairs i < j of exp(-t ||f(x_i) - f(x_j)||^2) )` (default
#   `t = 2`); lower (more negative) is better. There are `N(N-1)/2` pairs: each unordered pair
#   once, never `i = j`.
#
# On the unit sphere `cos(u, v) = 1 - ||u - v||^2 / 2`, so the positive's term of an anchor,
# `-cos / tau`, is `||u - v||^2 / (2 tau) - 1 / tau`: the InfoNCE loss is (for many negatives)
# close to `alignment / (2 tau) - 1 / tau + log-sum-exp of the negatives`: its numerator pulls
# positives together (alignment) and its denominator pushes everything apart (uniformity). A collapsed encoder has perfect alignment and the worst
# uniformity, 0; the two numbers together tell you whether training does what it should.
#
# Compute uniformity as a **stable log-mean-exp**: with `e_p = -t * d_p^2` the exponents,
# `log(mean(exp(e))) = m + log(mean(exp(e - m)))` with `m = max(e)`. Since `d^2` is at most 4,
# `exp(e)` only underflows for large `t`, but then every term can underflow to 0 and the
# naive log gives `-inf`; the grader uses `t` up to 500. `torch.triu_indices(N, N, offset=1)`
# lists the pairs `i < j`. Both functions return 0-dim tensors and must be differentiable.

# %% [raw]
# # BEGIN QUESTION
# name: q3
# points: 4

# %% [raw]
# # BEGIN SOLUTION

# %%
def alignment(z1, z2, alpha=2):
    """Mean over the N pairs of ||f(z1_i) - f(z2_i)|| ** alpha, f = L2 normalisation of rows.

    z1, z2: (N, D). Returns a 0-dim tensor.
    """
    assert z1.ndim == 2 and z1.shape == z2.shape, f"z1 and z2 must both be (N, D), got {tuple(z1.shape)} and {tuple(z2.shape)}"
    # BEGIN SOLUTION NO PROMPT
    u1 = z1 / z1.norm(dim=1, keepdim=True)
    u2 = z2 / z2.norm(dim=1, keepdim=True)
    return (u1 - u2).norm(dim=1).pow(alpha).mean()
    # END SOLUTION
    """ # BEGIN PROMPT
    raise NotImplementedError("alignment")
    """ # END PROMPT


def uniformity(z, t=2):
    """log of the mean over pairs i < j of exp(-t ||f(z_i) - f(z_j)||^2), f = L2 normalisation
    of rows, computed as a stable log-mean-exp.

    z: (N, D) with N >= 2. Returns a 0-dim tensor.
    """
    assert z.ndim == 2 and z.shape[0] >= 2, f"z must be (N, D) with N >= 2, got {tuple(z.shape)}"
    # BEGIN SOLUTION NO PROMPT
    u = z / z.norm(dim=1, keepdim=True)
    i, j = torch.triu_indices(len(u), len(u), offset=1)
    exponents = -t * (u[i] - u[j]).pow(2).sum(dim=1)
    top = exponents.max()
    return top + torch.log(torch.exp(exponents - top).mean())
    # END SOLUTION
    """ # BEGIN PROMPT
    raise NotImplementedError("uniformity")
    """ # END PROMPT

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
z1 = torch.tensor([[1.0, 0.0], [0.0, 2.0]], dtype=torch.float64)
value = alignment(z1, 3 * z1)
assert torch.is_tensor(value) and value.shape == () and value.item() == 0.0, "two views with the same directions are perfectly aligned (normalise the rows)"
assert abs(alignment(z1, -z1).item() - 4.0) < 1e-12, "opposite unit vectors are at distance 2, and 2 ** 2 = 4"
assert abs(alignment(z1, -z1, alpha=1).item() - 2.0) < 1e-12, "alpha is the power of the distance"

# %%
square = torch.tensor([[1.0, 0.0], [0.0, 5.0]], dtype=torch.float64)
value = uniformity(square)
assert torch.is_tensor(value) and value.shape == (), "uniformity returns a 0-dim tensor"
assert abs(value.item() + 4.0) < 1e-12, "two orthogonal unit vectors are at squared distance 2: log(exp(-2 * 2)) = -4 (normalise, one pair)"
three = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
expected = math.log((math.exp(-8) + 2 * math.exp(-4)) / 3)
assert abs(uniformity(three).item() - expected) < 1e-12, "three points, three pairs (i < j), squared distances 4, 2, 2"
far = uniformity(three, t=1000)
assert torch.isfinite(far) and abs(far.item() - (-2000 - math.log(1.5))) < 1e-9, "use a stable log-mean-exp: at t = 1000 every exp underflows to 0"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# ## 4. Augmentations
#
# The views decide what the encoder learns to ignore: whatever the augmentations change, the
# representation must not depend on. For 8x8 digits we use four transformations, each with a
# **strength**, applied to every image with its own random parameters:
#
# | strength | default | per image, drawn from `generator` |
# |---|---|---|
# | `crop` | `0.3` | a square crop of side `s * 8`, `s ~ U(1 - crop, 1)`, at a uniform position inside the image, resized back to 8x8 |
# | `rotation` | `15.0` | an angle `~ U(-rotation, rotation)` in degrees |
# | `translation` | `1.0` | a shift `~ U(-translation, translation)` pixels along each axis |
# | `noise` | `0.05` | Gaussian noise of standard deviation `noise` added to every pixel |
#
# then the result is clamped to `[0, 1]` (the pixel range is kept). With every strength 0 the
# view is the image itself.
#
# The geometric part is one affine map per image. `F.affine_grid(theta, size,
# align_corners=False)` turns `theta`, `(N, 2, 3)`, into a sampling grid: output pixel `u`
# (coordinates in `[-1, 1]`) reads the input at `theta @ [u, 1]`; `F.grid_sample(x, grid,
# align_corners=False)` reads there, bilinearly, with zeros outside the image. A crop of side
# fraction `s` centred at `c`, then rotated by `a` and shifted by `t` pixels, is
# `theta = [[s cos a, -s sin a, c_x + 2 t_x / 8], [s sin a, s cos a, c_y + 2 t_y / 8]]`, with the
# centre `c ~ U(-(1 - s), 1 - s)` per axis so that the crop stays inside the image.
#
# Draw **every** random number from `generator` (`torch.rand(n, generator=generator,
# dtype=x.dtype)`), never from the global random state: the same seed then gives the same
# views, and calling `augment` twice with the same (advancing) generator gives two different
# views. Return a tensor of the shape and dtype of `x`; do not modify `x`.
#
# The grader checks the structure: shape and dtype, the range, two calls differ, determinism,
# the identity at zero strength, that each strength alone changes the images (differently
# for each image of a batch), and the standard deviation of the noise.

# %% [raw]
# # BEGIN QUESTION
# name: q4
# points: 3.5

# %% [raw]
# # BEGIN SOLUTION

# %%
def augment(x, generator, crop=0.3, rotation=15.0, translation=1.0, noise=0.05):
    """One random view of each image: random resized crop, rotation, translation, noise.

    x: (N, 1, H, W) pixels in [0, 1]; generator: the torch.Generator every draw comes from.
    Returns (N, 1, H, W) in x's dtype, pixels in [0, 1]; x itself when every strength is 0.
    """
    assert x.ndim == 4 and x.shape[1] == 1, f"augment expects images (N, 1, H, W), got {tuple(x.shape)}"
    # BEGIN SOLUTION NO PROMPT
    n, _, height, width = x.shape
    draw = dict(generator=generator, dtype=x.dtype)
    side = 1.0 - crop * torch.rand(n, **draw)
    center = (1.0 - side).unsqueeze(1) * (2.0 * torch.rand(n, 2, **draw) - 1.0)
    angle = math.radians(rotation) * (2.0 * torch.rand(n, **draw) - 1.0)
    shift = translation * (2.0 * torch.rand(n, 2, **draw) - 1.0)
    shift = shift * torch.tensor([2.0 / width, 2.0 / height], dtype=x.dtype)
    cos, sin = torch.cos(angle) * side, torch.sin(angle) * side
    theta = torch.stack([torch.stack([cos, -sin, center[:, 0] + shift[:, 0]], dim=1),
                         torch.stack([sin, cos, center[:, 1] + shift[:, 1]], dim=1)], dim=1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    views = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    views = views + noise * torch.randn(views.shape, **draw)
    return views.clamp(0.0, 1.0)
    # END SOLUTION
    """ # BEGIN PROMPT
    raise NotImplementedError("augment")
    """ # END PROMPT

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
images = torch.rand(5, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
views = augment(images, torch.Generator().manual_seed(1))
assert views.shape == images.shape and views.dtype == images.dtype, f"augment returns the shape and dtype of x, got {tuple(views.shape)} {views.dtype}"
assert views.min() >= 0 and views.max() <= 1, "keep the pixel range: clamp to [0, 1]"
assert torch.equal(views, augment(images, torch.Generator().manual_seed(1))), "the same seed must give the same views: draw everything from `generator`"

# %%
images = torch.rand(5, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
generator = torch.Generator().manual_seed(2)
assert not torch.equal(augment(images, generator), augment(images, generator)), "two calls with the same advancing generator give different views"
same = augment(images, torch.Generator().manual_seed(3), crop=0.0, rotation=0.0, translation=0.0, noise=0.0)
assert torch.allclose(same, images, atol=1e-6), "with every strength 0 the view is the image itself (same align_corners in affine_grid and grid_sample)"
turned = augment(images, torch.Generator().manual_seed(4), crop=0.0, rotation=1.0, translation=0.0, noise=0.0)
assert (turned - images).abs().max() < 0.3, "rotation=1 is one degree: the views must stay close to the images (convert with math.radians before cos and sin)"

# %%
copies = torch.rand(1, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(5)).expand(16, 1, 8, 8).clone()
zero = dict(crop=0.0, rotation=0.0, translation=0.0, noise=0.0)
for name, strength in (("crop", 0.3), ("rotation", 15.0), ("translation", 1.0)):
    views = augment(copies, torch.Generator().manual_seed(6), **{**zero, name: strength})
    assert any(not torch.equal(views[0], view) for view in views[1:]), f"16 copies of one image with only {name}={strength}: every view came out the same. Draw each image's own {name} parameters (n draws, one per image), not one for the whole batch"

# %%
flat = torch.full((128, 1, 8, 8), 0.5, dtype=torch.float64)
views = augment(flat, torch.Generator().manual_seed(7), crop=0.0, rotation=0.0, translation=0.0, noise=0.05)
spread = (views[:, :, 1:-1, 1:-1] - 0.5).std().item()
assert 0.85 * 0.05 <= spread <= 1.15 * 0.05, f"with only noise=0.05 on constant images the pixels should deviate with a standard deviation of about 0.05, got {spread:.3g}: noise is the standard deviation (noise * torch.randn(...)), not the variance"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# ## 5. The projection head and the SimCLR module
#
# SimCLR has two parts: an **encoder** `f` (here a small CNN) maps an image to its
# representation `h = f(x)`, and a **projection head** `g`, a small MLP, maps `h` to the
# vector `z = g(h)` on which the loss is computed. After pre-training the head is thrown away
# and downstream tasks use `h`. (Question 7 asks you why.)
#
# `ProjectionHead(in_dim, hidden_dim, out_dim)` is `Linear -> ReLU -> Linear`, with the two
# linear layers stored as `self.fc1 = nn.Linear(in_dim, hidden_dim)` and `self.fc2 =
# nn.Linear(hidden_dim, out_dim)` (the grader sets their parameters by these names; their
# weights have nn.Linear's layout `(out, in)`), and nothing after `fc2`: the loss normalises.
#
# `SimCLR(encoder, head)` holds both as submodules (so that `model.parameters()` yields all
# of their parameters and one optimizer trains both), and `forward(x1, x2)` returns the tuple
# `(h1, h2, z1, z2)`, `h = encoder(x)` and `z = head(h)` for each view. You may run the two
# views through the encoder separately or as one concatenated batch.

# %% [raw]
# # BEGIN QUESTION
# name: q5
# points: 6

# %% [raw]
# # BEGIN SOLUTION

# %%
class ProjectionHead(nn.Module):
    """z = fc2(relu(fc1(h))): (N, in_dim) -> (N, out_dim)."""

    def __init__(self, in_dim, hidden_dim, out_dim):
        super().__init__()
        # BEGIN SOLUTION NO PROMPT
        self.fc1 = nn.Linear(in_dim, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, out_dim)
        # END SOLUTION
        """ # BEGIN PROMPT
        # self.fc1 and self.fc2, two nn.Linear layers
        raise NotImplementedError("ProjectionHead.__init__")
        """ # END PROMPT

    def forward(self, h):
        """h: (N, in_dim) -> z: (N, out_dim)."""
        assert h.ndim == 2, f"ProjectionHead expects (N, in_dim), got {tuple(h.shape)}"
        # BEGIN SOLUTION NO PROMPT
        return self.fc2(torch.relu(self.fc1(h)))
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("ProjectionHead.forward")
        """ # END PROMPT


class SimCLR(nn.Module):
    """The encoder f and the projection head g, shared by both views."""

    def __init__(self, encoder, head):
        super().__init__()
        # BEGIN SOLUTION NO PROMPT
        self.encoder = encoder
        self.head = head
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("SimCLR.__init__")
        """ # END PROMPT

    def forward(self, x1, x2):
        """x1, x2: the two views (N, ...) -> (h1, h2, z1, z2), h = encoder(x), z = head(h)."""
        assert x1.shape == x2.shape, f"the two views must have the same shape, got {tuple(x1.shape)} and {tuple(x2.shape)}"
        # BEGIN SOLUTION NO PROMPT
        h1, h2 = self.encoder(x1), self.encoder(x2)
        return h1, h2, self.head(h1), self.head(h2)
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("SimCLR.forward")
        """ # END PROMPT

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
head = ProjectionHead(6, 8, 3)
shapes = {name: tuple(p.shape) for name, p in head.named_parameters()}
assert shapes == {"fc1.weight": (8, 6), "fc1.bias": (8,), "fc2.weight": (3, 8), "fc2.bias": (3,)}, f"ProjectionHead(6, 8, 3) should own fc1 = nn.Linear(6, 8) and fc2 = nn.Linear(8, 3); found {shapes}"
z = head(torch.randn(4, 6, generator=torch.Generator().manual_seed(0)))
assert z.shape == (4, 3), f"ProjectionHead(6, 8, 3) maps (4, 6) to (4, 3), got {tuple(z.shape)}"
h = torch.randn(5, 6, dtype=head.fc1.weight.dtype, generator=torch.Generator().manual_seed(2))
assert torch.allclose(head(h), head.fc2(torch.relu(head.fc1(h)))), "z = fc2(relu(fc1(h))): one ReLU between the two layers, nothing after fc2"

# %%
encoder = nn.Sequential(nn.Flatten(), nn.Linear(16, 5))
head = ProjectionHead(5, 7, 3)
model = SimCLR(encoder, head)
assert {id(p) for p in model.parameters()} == {id(p) for p in [*encoder.parameters(), *head.parameters()]}, "model.parameters() must yield the encoder's and the head's parameters (store them as submodules)"
views = torch.randn(2, 4, 1, 4, 4, generator=torch.Generator().manual_seed(1))
outputs = model(views[0], views[1])
assert len(outputs) == 4 and [tuple(o.shape) for o in outputs] == [(4, 5), (4, 5), (4, 3), (4, 3)], "forward returns (h1, h2, z1, z2)"
assert torch.allclose(outputs[1], encoder(views[1])) and torch.allclose(outputs[2], head(encoder(views[0]))), "h2 = encoder(x2), z1 = head(h1)"
linear_head = nn.Linear(5, 3)
with torch.no_grad():
    linear_head.weight.fill_(1.0)
    linear_head.bias.fill_(0.0)
SimCLR(encoder, linear_head)(views[0], views[1])[2].sum().backward()
assert encoder[1].weight.grad is not None and encoder[1].weight.grad.abs().sum() > 0, "the loss on z must train the encoder too: z1 = head(h1) with h1 itself, not a detached copy"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# ## 6. Extracting frozen features
#
# The linear probe trains on the encoder's features of a whole data set, computed once.
# `extract_features(encoder, x, batch_size)` returns `encoder(x)` for all `N` rows of `x`:
#
# * in **eval mode**: batch norm then uses its running statistics and dropout is off, so the
#   features of an image do not depend on the rest of its batch (and nothing in the encoder
#   changes: in training mode every batch would update batch norm's running statistics);
# * **without gradients** (`torch.no_grad()`): nothing is trained here, and the graph of a
#   whole data set would cost memory; the features must not require gradients;
# * `batch_size` rows at a time (at most), every row exactly once, the results concatenated
#   in the order of `x`, the last smaller batch included;
# * leaving the encoder in the mode it was in: remember `encoder.training`, and restore it
#   with `encoder.train(was_training)` at the end. (Use `try`/`finally` so that an error
#   does not leave it in eval mode either.)

# %% [raw]
# # BEGIN QUESTION
# name: q6
# points: 2.5

# %% [raw]
# # BEGIN SOLUTION

# %%
def extract_features(encoder, x, batch_size):
    """encoder(x) in eval mode, without gradients, batch_size rows at a time, in x's order;
    the encoder's train/eval mode is restored.

    x: (N, ...). Returns (N, feature_dim).
    """
    assert batch_size >= 1, f"batch_size must be positive, got {batch_size}"
    # BEGIN SOLUTION NO PROMPT
    was_training = encoder.training
    encoder.eval()
    try:
        with torch.no_grad():
            parts = [encoder(x[start:start + batch_size]) for start in range(0, len(x), batch_size)]
        return torch.cat(parts, dim=0)
    finally:
        encoder.train(was_training)
    # END SOLUTION
    """ # BEGIN PROMPT
    raise NotImplementedError("extract_features")
    """ # END PROMPT

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
encoder = nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.BatchNorm1d(3), nn.Dropout(0.5))
images = torch.randn(10, 1, 2, 2, generator=torch.Generator().manual_seed(0))
features = extract_features(encoder, images, batch_size=4)
assert features.shape == (10, 3), f"one row of features per image, got {tuple(features.shape)}: keep the last, smaller batch"
assert all(m.training for m in encoder.modules()), "the encoder was in training mode: restore it with encoder.train(was_training), which sets every submodule (assigning encoder.training sets only the top module)"
assert not features.requires_grad, "compute the features under torch.no_grad()"
encoder.eval()
assert torch.allclose(features, encoder(images)), "features are encoder(x) in eval mode, in the order of x"
extract_features(encoder, images, batch_size=3)
assert not any(m.training for m in encoder.modules()), "the encoder was in eval mode: leave it (and every submodule) in eval mode"

# %%
class BatchCounter(nn.Module):
    """Records the size of every batch it encodes."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 3)
        self.sizes = []

    def forward(self, x):
        self.sizes.append(len(x))
        return self.linear(x.flatten(1))


counter = BatchCounter()
extract_features(counter, torch.randn(11, 1, 2, 2, generator=torch.Generator().manual_seed(1)), batch_size=4)
assert max(counter.sizes) <= 4 and sum(counter.sizes) == 11, f"11 images with batch_size=4: the encoder saw batches of {counter.sizes}. Feed it at most batch_size rows at a time, every row exactly once"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# ## 7. Concept questions
#
# **(a) The temperature.** The cell below builds two fixed batches of 8 pairs: in the
# *aligned* batch each `z2[i]` is a slightly perturbed `z1[i]`; in the *confused* batch
# each `z2[i]` is close to `z1[i + 1]` instead, so that the true positive is far and a
# negative is near. Run it: it prints the loss of both batches at the temperatures `0.05`,
# `0.5` and `5.0`. For each batch, which temperature gives the **largest** loss? Explain to
# yourself why the order reverses: at a low temperature the softmax is nearly a hard maximum,
# so the loss is about `(best negative - positive) / tau` when a negative wins, and about 0
# when the positive wins; at a high temperature every candidate gets about the same weight and
# the loss tends to `log(2N - 1)` for both batches.
#
# **(b) Why does the linear probe use `h` and not `z`?** Choose one:
# 1. `z` has fewer dimensions than `h`, so a linear classifier on `z` cannot separate 10
#    classes.
# 2. The head is trained only to make `z` invariant to the augmentations, so it throws away
#    information the loss does not need (position, thickness, small rotations ...) that other
#    tasks may need; `h`, one nonlinear layer earlier, keeps more of it, and probes on `h` are
#    markedly more accurate (SimCLR, section 4.2).
# 3. `z` is normalised to unit length, and logistic regression cannot be trained on unit
#    vectors.
# 4. The head's weights are random after pre-training, because the loss does not train them.
#
# Write your answers in `concept_answers()`: a dict with `"largest_loss_aligned"` and
# `"largest_loss_confused"` (each one of `0.05`, `0.5`, `5.0`) and `"probe_features"` (1, 2,
# 3 or 4).

# %% tags=["experiment"]
# EXPERIMENT: the losses of two fixed batches at three temperatures (not run by the grader)
from student.results import record  # figures for the course's tests; prints nothing
concept_generator = torch.Generator().manual_seed(7)
anchors = torch.randn(8, 16, dtype=torch.float64, generator=concept_generator)
nearby = 0.2 * torch.randn(8, 16, dtype=torch.float64, generator=concept_generator)
concept_batches = {"aligned": (anchors, anchors + nearby), "confused": (anchors, anchors.roll(-1, dims=0) + nearby)}
for batch_name, (first, second) in concept_batches.items():
    losses = {tau: info_nce_loss(first, second, temperature=tau).item() for tau in (0.05, 0.5, 5.0)}
    print(f"{batch_name:>8}: " + ", ".join(f"loss at tau={tau}: {value:.3f}" for tau, value in losses.items()))

# %% [raw]
# # BEGIN QUESTION
# name: q7
# points: 1.5

# %% [raw]
# # BEGIN SOLUTION

# %%
def concept_answers():
    """Answers to the concept questions of section 7."""
    # BEGIN SOLUTION NO PROMPT
    return {"largest_loss_aligned": 5.0, "largest_loss_confused": 0.05, "probe_features": 2}
    # END SOLUTION
    """ # BEGIN PROMPT
    # return {"largest_loss_aligned": ..., "largest_loss_confused": ..., "probe_features": ...}
    raise NotImplementedError("concept_answers")
    """ # END PROMPT

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
answers = concept_answers()
assert set(answers) == {"largest_loss_aligned", "largest_loss_confused", "probe_features"}, f"concept_answers() returns a dict with exactly the keys largest_loss_aligned, largest_loss_confused, probe_features; got {sorted(answers)}"
assert answers["largest_loss_aligned"] in (0.05, 0.5, 5.0) and answers["largest_loss_confused"] in (0.05, 0.5, 5.0), "each temperature answer is one of 0.05, 0.5, 5.0"
assert answers["probe_features"] in (1, 2, 3, 4), "probe_features is the number of your choice, 1 to 4"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# ## 8. Experiments (not graded by execution)
#
# ### 8.1 SimCLR pre-training on the digits, without labels
# The encoder is a small CNN: three 3x3 convolutions (16, 32 and 64 channels; the last two
# with stride 2, so 8x8 -> 4x4 -> 2x2), each followed by batch norm and a ReLU, then global
# average pooling: `h` has 64 dimensions. The head maps it to `z` in 32 dimensions through 128
# hidden units. We pre-train on the training and validation images together (1528 images;
# their labels are never used), batches of 256, two fresh views of every image at every step,
# temperature 0.5, Adam, 60 epochs. The test images stay out of pre-training: they are only
# used to measure.
#
# Every 5 epochs we record, on a fixed batch of 256 test images and two fixed views of each:
# the top-1 contrastive accuracy, and the alignment and uniformity of `z`. In our run of the
# solution notebook (about 11 s of CPU time for pre-training, 23 s of wall time on a busy
# 2-core machine) the training loss fell from 5.9 to 4.66 (the chance level is `log(511) =
# 6.24`) and the top-1 accuracy among 511 candidates rose to 0.29, on training batches and on
# the test views alike (from 0.03 at initialisation). The two Wang-Isola numbers tell the
# story: the randomly initialised network maps every image to almost the same direction
# (alignment 0.000, perfect; uniformity -0.001, the worst possible: nearly collapsed).
# Training spread the embeddings over the sphere (uniformity -2.80) while keeping the two views
# of an image close (alignment 0.19): the loss traded a little alignment for a lot of
# uniformity.

# %% tags=["experiment"]
# EXPERIMENT: not run by the grader
import time

from tqdm.auto import tqdm
from student.data import load_digits_splits
from student.plots import plot_curves, show_images
from student.seeding import seeded

torch.set_num_threads(1)
digit_splits = load_digits_splits(seed=0)
train_images, train_labels = digit_splits["train"].images, digit_splits["train"].labels
test_images, test_labels = digit_splits["test"].images, digit_splits["test"].labels
unlabeled = torch.cat([digit_splits["train"].images, digit_splits["val"].images])
print("unlabeled images for pre-training:", tuple(unlabeled.shape), "| labeled train:", len(train_labels), "| test:", len(test_labels))


def make_encoder(width=16):
    """A small CNN: (N, 1, 8, 8) -> h (N, 4 * width)."""
    return nn.Sequential(
        nn.Conv2d(1, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
        nn.Conv2d(width, 2 * width, 3, padding=1, stride=2), nn.BatchNorm2d(2 * width), nn.ReLU(),
        nn.Conv2d(2 * width, 4 * width, 3, padding=1, stride=2), nn.BatchNorm2d(4 * width), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten())


# nn.Conv2d draws its initial weights from PyTorch's global generator; `seeded` seeds it for
# its block only, so that nothing else depends on how many numbers were drawn here
with seeded(0):
    encoder = make_encoder()
history = {"loss": [], "top-1 accuracy": [], "epoch": [], "test top-1": [], "alignment": [], "uniformity": []}

# %% tags=["experiment"]
# EXPERIMENT: not run by the grader
view_generator = torch.Generator().manual_seed(0)
show_images(torch.cat([augment(unlabeled[:8], view_generator) for _ in range(3)]), columns=8);

# %% tags=["experiment"]
# EXPERIMENT: not run by the grader
with seeded(1):
    random_encoder = make_encoder()  # never trained: the baseline of section 8.2
    projection_head = ProjectionHead(64, 128, 32)  # its nn.Linear layers draw from the same block
model = SimCLR(encoder, projection_head)
optimizer = torch.optim.Adam(model.parameters(), lr=3e-3, weight_decay=1e-5)
generator = torch.Generator().manual_seed(0)
monitor_generator = torch.Generator().manual_seed(1)
monitor_images = test_images[:256]
monitor_views = (augment(monitor_images, monitor_generator), augment(monitor_images, monitor_generator))
EPOCHS, BATCH, TAU = 60, 256, 0.5


def monitor(epoch):
    """Contrastive accuracy, alignment and uniformity of z on the fixed test views."""
    model.eval()
    with torch.no_grad():
        _, _, z1, z2 = model(*monitor_views)
    model.train()
    history["epoch"].append(epoch)
    history["test top-1"].append(contrastive_accuracy(z1, z2))
    history["alignment"].append(alignment(z1, z2).item())
    history["uniformity"].append(uniformity(torch.cat([z1, z2])).item())


started = time.perf_counter()
cpu_started = time.process_time()
monitor(0)
for epoch in tqdm(range(1, EPOCHS + 1), desc="SimCLR pre-training"):
    order = torch.randperm(len(unlabeled), generator=generator)
    losses, accuracies = [], []
    for start in range(0, len(order) - BATCH + 1, BATCH):
        batch = unlabeled[order[start:start + BATCH]]
        _, _, z1, z2 = model(augment(batch, generator), augment(batch, generator))
        loss = info_nce_loss(z1, z2, TAU)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        accuracies.append(contrastive_accuracy(z1.detach(), z2.detach()))
    history["loss"].append(sum(losses) / len(losses))
    history["top-1 accuracy"].append(sum(accuracies) / len(accuracies))
    if epoch % 5 == 0:
        monitor(epoch)
pretrain_seconds, pretrain_cpu = time.perf_counter() - started, time.process_time() - cpu_started
print(f"pre-training: {pretrain_seconds:.1f} s ({pretrain_cpu:.1f} s CPU); final loss {history['loss'][-1]:.3f} "
      f"(chance log(2N-1) = {math.log(2 * BATCH - 1):.2f}), train top-1 {history['top-1 accuracy'][-1]:.3f}, "
      f"test top-1 {history['test top-1'][-1]:.3f}")
plot_curves({"InfoNCE loss": history["loss"]}, ylabel="loss", title="SimCLR pre-training");
plot_curves({"train batches": history["top-1 accuracy"]}, ylabel="top-1 contrastive accuracy", title=f"Which of {2 * BATCH - 1} candidates is the positive?");
figure = plot_curves({"alignment (lower: views closer)": history["alignment"], "uniformity (lower: more spread)": history["uniformity"]}, ylabel="value", xlabel="check (every 5 epochs)", title="Alignment and uniformity of z on test views")
record(final_pretrain_loss=history['loss'][-1])
record(test_contrastive_top1=history['test top-1'][-1])
print(f"alignment {history['alignment'][0]:.3f} -> {history['alignment'][-1]:.3f}, uniformity {history['uniformity'][0]:.3f} -> {history['uniformity'][-1]:.3f}, test top-1 {history['test top-1'][0]:.3f} -> {history['test top-1'][-1]:.3f}")
record(uniformity_drop=history['uniformity'][0] - history['uniformity'][-1])
record(pretrain_cpu_seconds=pretrain_cpu)

# %% [markdown]
# ### 8.2 Linear probes with 1%, 10% and 100% of the labels
# The encoder is frozen; `extract_features` computes `h` for the training and test images
# once. A **linear probe** is a logistic regression on these features (standardised with the
# training statistics), trained by L-BFGS with a small weight decay. We compare three
# representations: SimCLR's `h` (64 numbers), the same CNN with its random initial weights
# (64 numbers), and the raw pixels (64 numbers). With 1% of the labels (13 images, not even
# one per class in every draw) and 10% we average five random label subsets.
#
# In our run SimCLR's features reached **0.61 / 0.96 / 0.99** test accuracy with 1% /
# 10% / 100% of the labels, the random encoder **0.45 / 0.84 / 0.94** and the raw pixels
# **0.45 / 0.89 / 0.97**. Pre-training without labels beat the same network at random
# initialisation at every label fraction (by 16, 12 and 5 points), and with 13 labels it beat
# the pixels by about 16 points: the encoder has learnt which differences between images matter (the digit) and
# which do not (the augmentations). With all the labels, pixels are already a strong baseline
# for this tiny data set, and the gap closes.

# %% tags=["experiment"]
# EXPERIMENT: not run by the grader
simclr_train, simclr_test = extract_features(encoder, train_images, 512), extract_features(encoder, test_images, 512)
random_train, random_test = extract_features(random_encoder, train_images, 512), extract_features(random_encoder, test_images, 512)
representations = {"SimCLR encoder": (simclr_train, simclr_test), "random encoder": (random_train, random_test),
                   "raw pixels": (train_images.flatten(1), test_images.flatten(1))}


def linear_probe(train_x, train_y, test_x, test_y, weight_decay=1e-3, steps=100):
    """Logistic regression on standardised features (L-BFGS); returns the test accuracy."""
    mean, std = train_x.mean(dim=0), train_x.std(dim=0) + 1e-6
    train_x, test_x = (train_x - mean) / std, (test_x - mean) / std
    with seeded(0):
        classifier = nn.Linear(train_x.shape[1], 10)
    optimizer = torch.optim.LBFGS(classifier.parameters(), lr=1, max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = F.cross_entropy(classifier(train_x), train_y) + weight_decay * classifier.weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        return (classifier(test_x).argmax(dim=1) == test_y).double().mean().item()


fractions, repeats = (0.01, 0.1, 1.0), 5
probe_accuracy = {name: [] for name in representations}
for fraction in tqdm(fractions, desc="linear probes"):
    size = max(10, round(fraction * len(train_labels)))
    draws = repeats if fraction < 1 else 1
    subsets = [torch.randperm(len(train_labels), generator=torch.Generator().manual_seed(100 + r))[:size] for r in range(draws)]
    for name, (features_train, features_test) in representations.items():
        scores = [linear_probe(features_train[idx], train_labels[idx], features_test, test_labels) for idx in subsets]
        probe_accuracy[name].append(sum(scores) / len(scores))
for name, scores in probe_accuracy.items():
    print(f"{name:>15}: " + "  ".join(f"{int(100 * f)}% labels: {s:.3f}" for f, s in zip(fractions, scores)))
probe_figure = plot_curves(probe_accuracy, ylabel="test accuracy", xlabel="fraction of labels", title="Linear probe on frozen features")
probe_figure.axes[0].cla()
for name, scores in probe_accuracy.items():
    probe_figure.axes[0].plot(fractions, scores, marker="o", label=name)
probe_figure.axes[0].set(xscale="log", xlabel="fraction of the training labels", ylabel="test accuracy", title="Linear probe on frozen features")
probe_figure.axes[0].legend()
probe_figure.axes[0].grid(alpha=0.3)
for index, fraction in enumerate(fractions):
    label = f"{round(100 * fraction)}pct"
    record(**{f"simclr_minus_random_{label}": probe_accuracy['SimCLR encoder'][index] - probe_accuracy['random encoder'][index]})
    record(**{f"simclr_probe_{label}": probe_accuracy['SimCLR encoder'][index]})
record(simclr_minus_pixels_1pct=probe_accuracy['SimCLR encoder'][0] - probe_accuracy['raw pixels'][0])

# %% [markdown]
# ### 8.3 What the representation looks like
# A 2-D projection (PCA from scikit-learn) of the SimCLR features `h` of the test images,
# coloured by digit, next to the same projection of the random encoder's features. No label
# was used to train either encoder; in our run the SimCLR features formed visibly separate
# groups for most digits, while the random encoder's mixed them.

# %% tags=["experiment"]
# EXPERIMENT: not run by the grader
import matplotlib.pyplot as plt
from sklearn.decomposition import PCA

projection_figure, projection_axes = plt.subplots(1, 2, figsize=(10, 4.5))
for axis, (name, features) in zip(projection_axes, [("SimCLR encoder", extract_features(encoder, test_images, 512)), ("random encoder", extract_features(random_encoder, test_images, 512))]):
    points = PCA(n_components=2).fit_transform(((features - features.mean(0)) / (features.std(0) + 1e-6)).numpy())
    scatter = axis.scatter(points[:, 0], points[:, 1], c=test_labels.numpy(), cmap="tab10", s=8)
    axis.set_title(f"{name}: PCA of h, coloured by digit")
projection_figure.colorbar(scatter, ax=projection_axes, ticks=range(10))
plt.show()
