# %% [raw]
# # ASSIGNMENT CONFIG
# name: 02_cnn_from_scratch
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
# # Chapter 02 — Convolutional networks from scratch
#
# A fully connected layer looks at an image as one long vector: it forgets which pixels are
# neighbours and needs a separate weight for every (pixel, unit) pair. A convolutional layer
# slides one small filter over the whole image instead. In this assignment you write the two
# layers that CNNs are built from, **convolution** and **max pooling**, with their backward
# passes, first with plain loops and then vectorised, and train a small CNN on handwritten
# digits.
#
# As in chapter 01: **no autograd** (`.backward()`, `torch.autograd`) and **nothing from
# `torch.nn`** inside your classes, nor torch's own convolution and pooling. Tensor methods such
# as `Tensor.unfold`, `reshape`, `permute` and matrix products are yours to use.
#
# {{FORBIDDEN_RULES}}
#
# **Other rules the grader enforces.** Never change an input tensor in place: work on a copy.
# Each method is graded on its own and called twice in a row on different inputs, so `backward`
# must *set* the gradients of the last forward pass, never add to the previous ones. `CNN` is
# graded with layers of the grader's own after its list is checked, so `reset_params` and
# `optimizer_step` test for a method or attribute with `hasattr`, never for your classes with
# `isinstance`.
#
# **How this notebook is graded.** Each function and class is tested against a hidden reference
# on many random inputs in float64: odd and non-square images, strides 1 to 3, paddings 0 to 2,
# kernels from 1 to 5, a batch of one, non-contiguous inputs. Every forward output and every
# gradient is a separate item. Cells marked `# EXPERIMENT` are not run by the grader.
#
# Conventions (the same as PyTorch's):
# * images come in batches of shape `(N, C, H, W)`: batch, channels, height, width;
# * a convolution with `C` input channels and `F` filters of size `k x k` has a weight of shape
#   `(F, C, k, k)` and a bias of shape `(F,)`;
# * every layer has `forward(x)`, which caches what backward needs, and `backward(dupstream)`,
#   which receives dL/d(output) and returns dL/d(input), setting `grad_weight` and `grad_bias`
#   when the layer has parameters.

# %%
import torch

# %% [markdown]
# ## 1. Sizes, parameters and receptive fields
#
# **Output size.** Along one axis, an input of length `size` is padded with `padding` zeros on
# *both* ends, giving `size + 2 * padding` positions. A window of `kernel_size` fits at offsets
# `0, stride, 2 * stride, ...` as long as it stays inside, so the number of windows is
#
# `size_out = 1 + (size + 2 * padding - kernel_size) // stride`
#
# When `size + 2 * padding - kernel_size` is not a multiple of the stride, the floor drops the
# last partial window: the last few rows of the input are then never read at all.
#
# **Parameters.** A convolution from `C` to `F` channels with `k x k` filters has `F * C * k * k`
# weights and `F` biases — independently of the image size, since the same filter is reused at
# every position. A fully connected layer from `in` to `out` features has `in * out + out`.
#
# **Receptive field.** The receptive field of a unit is the square of input pixels it depends
# on. One `k x k` layer with stride 1 sees `k` pixels across. Each further layer adds
# `kernel_size - 1` of *its own input* positions, and one step of its input is worth the product
# of the strides of all the layers below it (the "jump"). So convolutions with stride 1 grow the
# field linearly, while strided layers (pooling, in particular) multiply the growth of every
# layer above them. Padding changes the output size but not the receptive field.
#
# Write the four functions; each returns a Python `int`.

# %% [raw]
# # BEGIN QUESTION
# name: q1
# points: 3

# %% [raw]
# # BEGIN SOLUTION

# %%
def conv_output_size(size, kernel_size, stride=1, padding=0):
    """Number of output positions along one axis of a convolution or pooling layer."""
    # BEGIN SOLUTION NO PROMPT
    return (size + 2 * padding - kernel_size) // stride + 1
    # END SOLUTION
    """ # BEGIN PROMPT
    raise NotImplementedError("conv_output_size")
    """ # END PROMPT


def conv_param_count(in_channels, out_channels, kernel_size):
    """Number of parameters (weights and biases) of Conv2d(in_channels, out_channels, kernel_size)."""
    # BEGIN SOLUTION NO PROMPT
    return out_channels * in_channels * kernel_size ** 2 + out_channels
    # END SOLUTION
    """ # BEGIN PROMPT
    raise NotImplementedError("conv_param_count")
    """ # END PROMPT


def linear_param_count(in_features, out_features):
    """Number of parameters (weights and biases) of Linear(in_features, out_features)."""
    # BEGIN SOLUTION NO PROMPT
    return in_features * out_features + out_features
    # END SOLUTION
    """ # BEGIN PROMPT
    raise NotImplementedError("linear_param_count")
    """ # END PROMPT


def receptive_field(layers):
    """Receptive field (in input pixels, along one axis) of one unit of the last layer.

    layers: a list of (kernel_size, stride) pairs, first layer first; convolutions and poolings
    alike.
    """
    # BEGIN SOLUTION NO PROMPT
    field, jump = 1, 1
    for kernel_size, stride in layers:
        field += (kernel_size - 1) * jump  # kernel_size - 1 more input steps of the current jump
        jump *= stride  # one step of the next layer's input is `jump` input pixels
    return field
    # END SOLUTION
    """ # BEGIN PROMPT
    raise NotImplementedError("receptive_field")
    """ # END PROMPT

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
assert conv_output_size(5, 3) == 3, "a 3x3 window fits at 3 positions of a length-5 row"
assert conv_output_size(28, 5, 1, 2) == 28, "padding (k - 1) / 2 with stride 1 keeps the size"
assert isinstance(conv_output_size(7, 3, 2, 0), int), "return an int: use // for integer division"
assert conv_output_size(8, 3, 2, 0) == 3, "size 8, kernel 3, stride 2: a last window that does not fit is dropped (floor), not counted (round up)"

# %%
assert conv_param_count(1, 1, 3) == 10, "one 3x3 filter: 9 weights and 1 bias"
assert conv_param_count(2, 1, 3) == 19, "one 3x3 filter on 2 input channels has 2 * 3 * 3 weights (a weight per input channel) and 1 bias"
assert linear_param_count(4, 2) == 10, "4 * 2 weights and 2 biases"

# %%
assert receptive_field([(3, 1)]) == 3, "one 3x3 convolution sees 3 pixels across"
assert receptive_field([(3, 1), (3, 1)]) == 5, "two stacked 3x3 convolutions see 5 pixels across"
assert receptive_field([(2, 2), (3, 1)]) == 6, "a 2x2 pool with stride 2, then a 3x3 convolution: one step of the convolution's window moves 2 input pixels, the product of the strides of the layers BELOW it (not its own)"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# A few numbers to think about, once your functions work: a 32x32 RGB image, mapped to 16
# channels of the same size, by a 3x3 convolution or by a fully connected layer; and how fast
# the receptive field grows with and without pooling.

# %% tags=["experiment"]
# EXPERIMENT: not run by the grader
conv_params = conv_param_count(3, 16, 3)
fc_params = linear_param_count(3 * 32 * 32, 16 * 32 * 32)
print(f"3x3 conv 3 -> 16 channels: {conv_params:,} parameters")
print(f"fully connected, same input and output sizes: {fc_params:,} parameters "
      f"({fc_params / conv_params:,.0f} times more)")
print("five 3x3 convolutions:", receptive_field([(3, 1)] * 5), "pixels")
print("3x3 conv + 2x2 pool, three times:", receptive_field([(3, 1), (2, 2)] * 3), "pixels")

# %% [markdown]
# ## 2. Convolution with loops
#
# A convolution layer computes, for every example `n`, filter `f` and output position `(i, j)`,
#
# `y[n, f, i, j] = bias[f] + sum_{c, u, v} weight[f, c, u, v] * xp[n, c, i*s + u, j*s + v]`
#
# where `xp` is the input padded with `p` zeros on every side and `s` is the stride. In words:
# cut out the `C x k x k` window whose top-left corner is at `(i*s, j*s)`, multiply it
# elementwise with filter `f`, sum.
#
# {{FIGURE:conv_window}}
#
# Strictly speaking this is a *cross-correlation*: a
# convolution in the mathematical sense would flip the filter first. Deep learning libraries
# (and this course) do not flip; since the filter is learned, nothing is lost.
#
# **Backward: derive it on a tiny case first.** In one dimension, with one channel, a kernel of
# 2 and stride 1, `y0 = w0 x0 + w1 x1 + b` and `y1 = w0 x1 + w1 x2 + b`. Then `dL/dx1` has two
# terms (`x1` is in both windows), `dL/dw0 = dL/dy0 x0 + dL/dy1 x1` sums over the positions
# where `w0` was used, and `dL/db` sums all of `dupstream`. The 2-D layer is the same bookkeeping
# with more indices. Each output element is a dot product of one window with one filter, so:
# * `grad_bias[f]` sums `dupstream[n, f, i, j]` over `n`, `i` *and* `j` — the bias was added at
#   every position;
# * `grad_weight[f]` sums, over `n, i, j`, `dupstream[n, f, i, j]` times the window at `(i, j)`;
# * the window at `(i, j)` receives `sum_f dupstream[n, f, i, j] * weight[f]`. Windows overlap
#   when `stride < kernel_size`, so contributions must be **added** (`+=`), not assigned. At the
#   end, cut the padding off: `dx` has the shape of `x`. Input rows that no window reads get 0.
#
# Write `pad2d` first (you will reuse it for pooling), then `Conv2dLoop`: loop over the output
# positions `(i, j)` and let matrix products handle the batch, channels and filters at once
# (flatten each window to `(N, C * k * k)` and the weight to `(F, C * k * k)`). Use `reshape`
# rather than `view`: the grader also passes non-contiguous tensors.
#
# `init_params(std)` draws the weight from a Gaussian with standard deviation `std` and sets the
# bias to zeros. The default, 0.7071 = `sqrt(1/2)`, is only a neutral start for the public
# checks; a trained network scales each layer by its fan-in instead (section 6.2 shows how).

# %% [raw]
# # BEGIN QUESTION
# name: q2
# points: 4

# %% [raw]
# # BEGIN SOLUTION

# %%
def pad2d(x, padding, value=0.0):
    """x: (N, C, H, W) -> (N, C, H + 2 * padding, W + 2 * padding), the border set to value."""
    # BEGIN SOLUTION NO PROMPT
    n, c, h, w = x.shape
    out = x.new_full((n, c, h + 2 * padding, w + 2 * padding), value)
    out[:, :, padding:padding + h, padding:padding + w] = x
    return out
    # END SOLUTION
    """ # BEGIN PROMPT
    raise NotImplementedError("pad2d")
    """ # END PROMPT


class Conv2dLoop:
    """2-D convolution (cross-correlation) with zero padding, written with loops.

    Attributes:
        weight: (out_channels, in_channels, kernel_size, kernel_size)
        bias: (out_channels,)
        grad_weight, grad_bias: same shapes, set by backward
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0):
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = padding
        self.cache = None
        self.init_params()

    def init_params(self, std=0.7071, generator=None):
        """weight ~ N(0, std^2); bias = 0. generator: an optional seeded torch.Generator."""
        # BEGIN SOLUTION NO PROMPT
        k = self.kernel_size
        self.weight = std * torch.randn(self.out_channels, self.in_channels, k, k,
                                        generator=generator)
        self.bias = torch.zeros(self.out_channels)
        self.grad_weight = torch.zeros_like(self.weight)
        self.grad_bias = torch.zeros_like(self.bias)
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("Conv2dLoop.init_params (Conv2d inherits it)")
        """ # END PROMPT

    def forward(self, x):
        """x: (N, C, H, W) -> y: (N, F, H', W') with H' = 1 + (H + 2p - k) // s, same for W'."""
        assert x.ndim == 4 and x.shape[1] == self.in_channels, \
            f"{type(self).__name__}.forward expects (N, {self.in_channels}, H, W), got {tuple(x.shape)}"
        # BEGIN SOLUTION NO PROMPT
        n, _, h, w = x.shape
        k, s = self.kernel_size, self.stride
        h_out = (h + 2 * self.padding - k) // s + 1
        w_out = (w + 2 * self.padding - k) // s + 1
        xp = pad2d(x, self.padding)
        filters = self.weight.reshape(self.out_channels, -1)                  # (F, C*k*k)
        y = x.new_empty((n, self.out_channels, h_out, w_out))
        for i in range(h_out):
            for j in range(w_out):
                window = xp[:, :, i * s:i * s + k, j * s:j * s + k].reshape(n, -1)  # (N, C*k*k)
                y[:, :, i, j] = window @ filters.T + self.bias
        self.cache = xp
        return y
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("Conv2dLoop.forward")
        """ # END PROMPT

    def backward(self, dupstream):
        """dupstream: (N, F, H', W') -> dx: (N, C, H, W).

        Also sets self.grad_weight (F, C, k, k) and self.grad_bias (F,).
        """
        assert dupstream.ndim == 4 and dupstream.shape[1] == self.out_channels, \
            f"{type(self).__name__}.backward expects (N, {self.out_channels}, H', W'), got {tuple(dupstream.shape)}"
        # BEGIN SOLUTION NO PROMPT
        xp = self.cache
        n, _, h_out, w_out = dupstream.shape
        k, s, p = self.kernel_size, self.stride, self.padding
        filters = self.weight.reshape(self.out_channels, -1)                  # (F, C*k*k)
        grad_filters = torch.zeros_like(filters)
        dxp = torch.zeros_like(xp)
        for i in range(h_out):
            for j in range(w_out):
                window = xp[:, :, i * s:i * s + k, j * s:j * s + k].reshape(n, -1)
                dy = dupstream[:, :, i, j]                                    # (N, F)
                grad_filters += dy.T @ window
                dxp[:, :, i * s:i * s + k, j * s:j * s + k] += (dy @ filters).reshape(
                    n, self.in_channels, k, k)
        self.grad_weight = grad_filters.reshape(self.weight.shape)
        self.grad_bias = dupstream.sum(dim=(0, 2, 3))
        return dxp[:, :, p:xp.shape[2] - p, p:xp.shape[3] - p]
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("Conv2dLoop.backward")
        """ # END PROMPT

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
layer = Conv2dLoop(1, 1, 3, stride=1, padding=1)
layer.weight = torch.ones(1, 1, 3, 3, dtype=torch.float64)
layer.bias = torch.zeros(1, dtype=torch.float64)
y = layer.forward(torch.ones(1, 1, 4, 5, dtype=torch.float64))
assert y.shape == (1, 1, 4, 5), f"3x3 filter with padding 1 keeps a 4x5 image 4x5, got {tuple(y.shape)}"
expected = torch.tensor([[4, 6, 6, 6, 4], [6, 9, 9, 9, 6], [6, 9, 9, 9, 6], [4, 6, 6, 6, 4]],
                        dtype=torch.float64)
assert torch.allclose(y[0, 0], expected), "an all-ones filter counts the non-padding pixels of each window: 4 in the corners, 6 on the edges, 9 inside"

# %%
generator = torch.Generator().manual_seed(7)
layer = Conv2dLoop(2, 3, 3, stride=2, padding=1)
y = layer.forward(torch.randn(4, 2, 7, 6, generator=generator))
assert y.shape == (4, 3, 4, 3), f"stride 2, padding 1 on 7x6: expected (4, 3, 4, 3), got {tuple(y.shape)}"
layer = Conv2dLoop(1, 2, 2, stride=3)
y = layer.forward(torch.randn(1, 1, 7, 7, generator=generator))
assert y.shape == (1, 2, 2, 2), "(7 - 2) // 3 + 1 = 2: the last partial window is dropped"

# %%
from student.gradcheck import TOLERANCE, check_layer_gradients
generator = torch.Generator().manual_seed(3)
points = torch.randn(2, 2, 3, 4, generator=generator, dtype=torch.float64)
for stride, padding in [(1, 0), (3, 2)]:
    layer = Conv2dLoop(2, 2, 2, stride, padding)
    layer.weight = torch.randn(2, 2, 2, 2, generator=generator, dtype=torch.float64)
    layer.bias = torch.randn(2, generator=generator, dtype=torch.float64)
    errors = check_layer_gradients(layer, points, verbose=False)
    wrong = {name: f"{error:.1e}" for name, error in errors.items() if not error < TOLERANCE}
    assert not wrong, f"stride {stride}, padding {padding}, a batch of 2: these gradients disagree with central differences (relative error): {wrong}"

# %%
from student.gradcheck import check_second_call_sets_gradients

generator = torch.Generator().manual_seed(8)
weight, bias = torch.randn(3, 2, 2, 2, generator=generator, dtype=torch.float64), torch.randn(3, generator=generator, dtype=torch.float64)


def conv_with_fixed_parameters():
    layer = Conv2dLoop(2, 3, 2, 1, 1)
    layer.weight, layer.bias = weight.clone(), bias.clone()
    return layer


inputs = tuple(torch.randn(2, 2, 3, 3, generator=generator, dtype=torch.float64) for _ in range(2))
upstreams = tuple(torch.randn(2, 3, 4, 4, generator=generator, dtype=torch.float64) for _ in range(2))
check_second_call_sets_gradients(conv_with_fixed_parameters, inputs, upstreams, "Conv2dLoop")

# %%
layer = Conv2dLoop(50, 100, 7)
layer.init_params(0.1, generator=torch.Generator().manual_seed(9))
weight, bias = layer.weight.double(), layer.bias
assert weight.shape == (100, 50, 7, 7) and bias.shape == (100,), "init_params: weight of shape (out_channels, in_channels, kernel_size, kernel_size), bias of shape (out_channels,)"
assert abs(weight.mean().item()) < 0.005 and abs(weight.std().item() / 0.1 - 1) < 0.05, "init_params(std): the weight should have mean 0 and standard deviation std (a standard Gaussian times std)"
assert 0.035 < (weight.abs() > 0.2).double().mean().item() < 0.056, "init_params: the weight should be Gaussian (about 4.6% of its values beyond 2 std), not uniform"
assert not bias.any(), "init_params: the bias should be zeros, whatever std is"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# ## 3. Vectorised convolution: im2col
#
# The loop version calls two small matrix products per output position: for a 16x16 image
# that is hundreds of Python iterations per batch. The classic fix ("im2col") gathers **all**
# windows first, into one tensor of columns, and then does a single matrix product.
#
# * `Tensor.unfold(dim, size, step)` returns a *view* of every window of length `size` taken
#   every `step` along `dim`, as a new last dimension. Applied twice to the padded input,
#   `xp.unfold(2, k, s).unfold(3, k, s)` has shape `(N, C, H', W', k, k)`: element
#   `[n, c, i, j, u, v]` is `xp[n, c, i*s + u, j*s + v]`. No data is copied yet.
# * Permuting to `(N, C, k, k, H', W')` and reshaping to `(N, C*k*k, H'*W')` gives the columns
#   (this reshape copies). Then `weight.reshape(F, C*k*k) @ cols` is a batched product of shape
#   `(N, F, H'*W')`: add the bias, reshape to `(N, F, H', W')`, done.
#
# Backward mirrors it: with `dy = dupstream.reshape(N, F, H'*W')`,
# * `grad_weight` is `dy @ cols.transpose(1, 2)` summed over the batch, reshaped to `(F, C, k, k)`;
# * the gradient of the columns is `weight.reshape(F, C*k*k).T @ dy`, of shape `(N, C*k*k, H'*W')`;
# * **col2im** sends every column back onto the window it came from, *adding* where windows
#   overlap. A short loop over the `k * k` kernel offsets `(u, v)` does it without a loop over
#   positions: offset `(u, v)` of all windows sits at rows `u, u+s, ..., u+s*(H'-1)` and columns
#   `v, v+s, ..., v+s*(W'-1)` of `xp`, that is the slice `[u : u + s*(H'-1) + 1 : s]`.
#
# {{FIGURE:im2col}}
#
# `Conv2d` inherits `__init__` and `init_params` from `Conv2dLoop`; override `forward` and
# `backward` (writing `im2col` and `col2im` as helpers is a good idea). It must give the same
# results as `Conv2dLoop`, much faster.

# %% [raw]
# # BEGIN QUESTION
# name: q3
# points: 4

# %% [raw]
# # BEGIN SOLUTION

# %%
def im2col(xp, kernel_size, stride):
    """xp: (N, C, Hp, Wp), already padded -> cols: (N, C * k * k, H' * W').

    cols[n, c * k * k + u * k + v, i * W' + j] = xp[n, c, i * stride + u, j * stride + v]:
    column i * W' + j is the window of output position (i, j), flattened in (C, k, k) order.
    """
    # BEGIN SOLUTION NO PROMPT
    n, c = xp.shape[:2]
    windows = xp.unfold(2, kernel_size, stride).unfold(3, kernel_size, stride)  # (N, C, H', W', k, k)
    h_out, w_out = windows.shape[2], windows.shape[3]
    return windows.permute(0, 1, 4, 5, 2, 3).reshape(n, c * kernel_size ** 2, h_out * w_out)
    # END SOLUTION
    """ # BEGIN PROMPT
    raise NotImplementedError("im2col")
    """ # END PROMPT


def col2im(cols, padded_shape, kernel_size, stride):
    """cols: (N, C * k * k, H' * W') -> (N, C, Hp, Wp) of padded_shape.

    Adds every column back onto the window it was taken from (the adjoint of im2col).
    """
    # BEGIN SOLUTION NO PROMPT
    n, c, hp, wp = padded_shape
    k, s = kernel_size, stride
    h_out, w_out = (hp - k) // s + 1, (wp - k) // s + 1
    blocks = cols.reshape(n, c, k, k, h_out, w_out)
    out = cols.new_zeros(padded_shape)
    for u in range(k):
        for v in range(k):
            out[:, :, u:u + s * (h_out - 1) + 1:s, v:v + s * (w_out - 1) + 1:s] += blocks[:, :, u, v]
    return out
    # END SOLUTION
    """ # BEGIN PROMPT
    raise NotImplementedError("col2im")
    """ # END PROMPT


class Conv2d(Conv2dLoop):
    """The same layer as Conv2dLoop, vectorised with im2col. Shapes as Conv2dLoop."""

    def forward(self, x):
        """x: (N, C, H, W) -> y: (N, F, H', W')."""
        assert x.ndim == 4 and x.shape[1] == self.in_channels, \
            f"Conv2d.forward expects (N, {self.in_channels}, H, W), got {tuple(x.shape)}"
        # BEGIN SOLUTION NO PROMPT
        n, _, h, w = x.shape
        h_out = (h + 2 * self.padding - self.kernel_size) // self.stride + 1
        w_out = (w + 2 * self.padding - self.kernel_size) // self.stride + 1
        xp = pad2d(x, self.padding)
        cols = im2col(xp, self.kernel_size, self.stride)                      # (N, C*k*k, H'*W')
        self.cache = (cols, xp.shape)
        filters = self.weight.reshape(self.out_channels, -1)                  # (F, C*k*k)
        y = filters @ cols + self.bias.reshape(-1, 1)                         # (N, F, H'*W')
        return y.reshape(n, self.out_channels, h_out, w_out)
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("Conv2d.forward")
        """ # END PROMPT

    def backward(self, dupstream):
        """dupstream: (N, F, H', W') -> dx: (N, C, H, W); sets grad_weight and grad_bias."""
        assert dupstream.ndim == 4 and dupstream.shape[1] == self.out_channels, \
            f"Conv2d.backward expects (N, {self.out_channels}, H', W'), got {tuple(dupstream.shape)}"
        # BEGIN SOLUTION NO PROMPT
        cols, padded_shape = self.cache
        n, f, h_out, w_out = dupstream.shape
        p = self.padding
        dy = dupstream.reshape(n, f, h_out * w_out)
        filters = self.weight.reshape(f, -1)
        self.grad_weight = (dy @ cols.transpose(1, 2)).sum(dim=0).reshape(self.weight.shape)
        self.grad_bias = dupstream.sum(dim=(0, 2, 3))
        dxp = col2im(filters.T @ dy, padded_shape, self.kernel_size, self.stride)
        return dxp[:, :, p:padded_shape[2] - p, p:padded_shape[3] - p]
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("Conv2d.backward")
        """ # END PROMPT

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
xp = torch.arange(2 * 3 * 5 * 4, dtype=torch.float64).reshape(2, 3, 5, 4)
cols = im2col(xp, 3, 1)
assert cols.shape == (2, 27, 6), f"im2col of (2, 3, 5, 4) with 3x3 windows, stride 1: expected (2, 27, 6), got {tuple(cols.shape)}"
assert torch.equal(cols[1, :, 4], xp[1, :, 2:5, 0:3].reshape(-1)), "column 4 (row 2, column 0 of the 3x2 output grid) should be that window, flattened in (C, k, k) order"

# %%
generator = torch.Generator().manual_seed(4)
for stride, padding, kernel in [(1, 1, 3), (2, 0, 3), (3, 2, 5), (2, 1, 1)]:
    slow, fast = Conv2dLoop(3, 4, kernel, stride, padding), Conv2d(3, 4, kernel, stride, padding)
    weight = torch.randn(4, 3, kernel, kernel, generator=generator, dtype=torch.float64)
    bias = torch.randn(4, generator=generator, dtype=torch.float64)
    slow.weight, slow.bias, fast.weight, fast.bias = weight, bias, weight, bias
    x = torch.randn(2, 3, 9, 7, generator=generator, dtype=torch.float64)
    y = fast.forward(x)
    assert torch.allclose(y, slow.forward(x)), f"Conv2d and Conv2dLoop disagree in forward (stride {stride}, padding {padding}, kernel {kernel}); this compares with your Conv2dLoop: if q2's check fails too, fix q2 first"
    dy = torch.randn(y.shape, generator=generator, dtype=torch.float64)
    assert torch.allclose(fast.backward(dy), slow.backward(dy)), f"Conv2d and Conv2dLoop disagree on dx (stride {stride}, padding {padding}, kernel {kernel}); this compares with your Conv2dLoop: if q2's check fails too, fix q2 first"
    assert torch.allclose(fast.grad_weight, slow.grad_weight), "Conv2d and Conv2dLoop disagree on grad_weight; this compares with your Conv2dLoop: if q2's check fails too, fix q2 first"
    assert torch.allclose(fast.grad_bias, slow.grad_bias), "Conv2d and Conv2dLoop disagree on grad_bias; this compares with your Conv2dLoop: if q2's check fails too, fix q2 first"

# %%
from student.gradcheck import TOLERANCE, check_layer_gradients
generator = torch.Generator().manual_seed(5)
layer = Conv2d(2, 2, 3, 2, 1)
layer.weight = torch.randn(2, 2, 3, 3, generator=generator, dtype=torch.float64)
layer.bias = torch.randn(2, generator=generator, dtype=torch.float64)
errors = check_layer_gradients(layer, torch.randn(1, 2, 4, 3, generator=generator, dtype=torch.float64), verbose=False)
wrong = {name: f"{error:.1e}" for name, error in errors.items() if not error < TOLERANCE}
assert not wrong, f"Conv2d: these gradients disagree with central differences (relative error): {wrong}"

# %%
generator = torch.Generator().manual_seed(6)
layer = Conv2d(2, 3, 3, 2, 1)
layer.weight = torch.randn(3, 2, 3, 3, generator=generator, dtype=torch.float64)
layer.bias = torch.randn(3, generator=generator, dtype=torch.float64)
x = torch.randn(2, 2, 6, 7, generator=generator, dtype=torch.float64).transpose(2, 3)
dy = torch.randn(2, 3, 3, 4, generator=generator, dtype=torch.float64).transpose(2, 3)
y, dx = layer.forward(x), layer.backward(dy)
grad_weight, grad_bias = layer.grad_weight.clone(), layer.grad_bias.clone()
y_copy, dx_copy = layer.forward(x.contiguous()), layer.backward(dy.contiguous())
assert torch.allclose(y, y_copy) and torch.allclose(dx, dx_copy) and torch.allclose(grad_weight, layer.grad_weight) and torch.allclose(grad_bias, layer.grad_bias), "Conv2d gives other results on non-contiguous inputs (transposed views) than on contiguous copies of them: use reshape, not view"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# ## 4. Max pooling
#
# Max pooling keeps the largest value of each `k x k` window, channel by channel; it has no
# parameters. Output sizes follow the same formula as convolutions. PyTorch's default stride is
# the kernel size (non-overlapping windows), and padding may be at most `kernel_size // 2`.
#
# **Padding.** A padded border must never win the maximum, so pool padding is filled with
# `-inf`, not with zeros: with zeros, a window of negative values next to the border would
# output 0, a value that is not in the image.
#
# {{FIGURE:maxpool_routing}}
#
# **Backward.** `max` passes its gradient to the element that won and nothing to the others:
# `dx` is zero except at each window's maximum, which receives that window's `dupstream`. When
# windows overlap, one input can win several windows: add the contributions.
#
# **Ties.** When several elements of a window share the maximum, the gradient goes to **the
# first one in row-major order** within the window (smallest row, then smallest column), as in
# PyTorch's CPU implementation. (Continuous random inputs never tie; the grader has one case
# with ties to check this rule.)
#
# A convenient vectorisation: loop over the `k * k` offsets `(u, v)`; the strided slice of `xp`
# at offset `(u, v)` holds element `(u, v)` of *every* window at once. Keep a running maximum and
# the offset that produced it, replacing only on a strictly larger value (that keeps the first
# maximum). In backward, loop over the offsets again and add `dupstream` where the stored offset
# matches.

# %% [raw]
# # BEGIN QUESTION
# name: q4
# points: 3

# %% [raw]
# # BEGIN SOLUTION

# %%
class MaxPool2d:
    """Max pooling over k x k windows, padding counted as -inf. No parameters."""

    def __init__(self, kernel_size, stride=None, padding=0):
        assert padding <= kernel_size // 2, "padding should be at most kernel_size // 2 (as in PyTorch)"
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding
        self.cache = None

    def forward(self, x):
        """x: (N, C, H, W) -> y: (N, C, H', W')."""
        assert x.ndim == 4, f"MaxPool2d.forward expects (N, C, H, W), got {tuple(x.shape)}"
        # BEGIN SOLUTION NO PROMPT
        k, s = self.kernel_size, self.stride
        xp = pad2d(x, self.padding, float("-inf"))
        h_out = (xp.shape[2] - k) // s + 1
        w_out = (xp.shape[3] - k) // s + 1
        best, best_offset = None, None
        for u in range(k):
            for v in range(k):
                candidate = xp[:, :, u:u + s * (h_out - 1) + 1:s, v:v + s * (w_out - 1) + 1:s]
                if best is None:
                    best = candidate
                    best_offset = torch.zeros(candidate.shape, dtype=torch.int64)
                else:
                    better = candidate > best   # strict: on ties the earlier offset stays
                    best = torch.where(better, candidate, best)
                    best_offset = torch.where(better, u * k + v, best_offset)
        self.cache = (best_offset, xp.shape)
        return best.clone()
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("MaxPool2d.forward")
        """ # END PROMPT

    def backward(self, dupstream):
        """dupstream: (N, C, H', W') -> dx: (N, C, H, W)."""
        assert dupstream.ndim == 4, f"MaxPool2d.backward expects (N, C, H', W'), got {tuple(dupstream.shape)}"
        # BEGIN SOLUTION NO PROMPT
        best_offset, padded_shape = self.cache
        k, s, p = self.kernel_size, self.stride, self.padding
        h_out, w_out = best_offset.shape[2], best_offset.shape[3]
        dxp = dupstream.new_zeros(padded_shape)
        for u in range(k):
            for v in range(k):
                won = (best_offset == u * k + v).to(dupstream.dtype)
                dxp[:, :, u:u + s * (h_out - 1) + 1:s, v:v + s * (w_out - 1) + 1:s] += dupstream * won
        return dxp[:, :, p:padded_shape[2] - p, p:padded_shape[3] - p]
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("MaxPool2d.backward")
        """ # END PROMPT

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
x = torch.tensor([[[[1., 2., 5., 0.], [3., 4., 1., 1.], [0., -1., 2., 7.], [1., 1., 3., 2.]]]],
                 dtype=torch.float64)
pool = MaxPool2d(2, 2)
y = pool.forward(x)
assert torch.equal(y, torch.tensor([[[[4., 5.], [1., 7.]]]], dtype=torch.float64)), "2x2 max pooling, stride 2, by hand: [[4, 5], [1, 7]]"
dx = pool.backward(torch.ones(1, 1, 2, 2, dtype=torch.float64))
assert dx.shape == x.shape, "dx has the shape of x"
assert dx.sum() == 4 and dx[0, 0, 1, 1] == 1 and dx[0, 0, 0, 2] == 1, "each window sends its gradient to its maximum only"

# %%
pool = MaxPool2d(3, 1, 1)
y = pool.forward(-torch.ones(1, 1, 3, 3, dtype=torch.float64))
assert torch.equal(y, -torch.ones(1, 1, 3, 3, dtype=torch.float64)), "padding must be -inf: a window of -1s next to the border has maximum -1, not 0"
dx = pool.backward(torch.ones(1, 1, 3, 3, dtype=torch.float64))
assert dx.sum() == 9, "9 windows, each sends one unit of gradient somewhere in the image"
assert dx[0, 0, 0, 0] == 4, "all -1: every window picks its first element in row-major order; the top-left pixel is first in 4 windows"

# %%
from student.gradcheck import TOLERANCE, check_layer_gradients
points = torch.randn(1, 1, 5, 4, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
for kernel, stride, padding in [(2, 2, 0), (3, 2, 1), (3, 1, 1)]:
    errors = check_layer_gradients(MaxPool2d(kernel, stride, padding), points, verbose=False)
    assert errors["x"] < TOLERANCE, f"MaxPool2d({kernel}, {stride}, {padding}).backward disagrees with central differences (relative error {errors['x']:.1e})"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# ## 5. A small CNN
#
# The network for 16x16 digit images (any `S x S` with `S` divisible by 4):
#
# | layer | output shape |
# |---|---|
# | `Conv2d(C, h, 3, 1, 1)`, `ReLU()` | `(N, h, S, S)` |
# | `MaxPool2d(2, 2, 0)` | `(N, h, S/2, S/2)` |
# | `Conv2d(h, 2h, 3, 1, 1)`, `ReLU()` | `(N, 2h, S/2, S/2)` |
# | `MaxPool2d(2, 2, 0)` | `(N, 2h, S/4, S/4)` |
# | `Flatten()` | `(N, 2h * (S/4)^2)` |
# | `Linear(2h * (S/4)^2, out_features)` | `(N, out_features)` |
#
# Padding 1 keeps the size through each 3x3 convolution; each pooling halves it; the channel
# count doubles when the resolution halves, a common design that keeps the work per layer
# roughly balanced. `Flatten` turns `(N, C, H, W)` into `(N, C*H*W)` in `(C, H, W)` order (the
# `H*W` values of channel 0, row by row, then those of channel 1, ...), and its backward
# reshapes the gradient back.
#
# `CNN` stores its layers **in this order in the list `self.layers`** and works like chapter
# 01's `Net`: `forward` feeds each layer's output to the next, `backward` walks the list in
# reverse, `optimizer_step(lr)` does a gradient-descent step on every layer with parameters, and
# `reset_params(std)` calls `init_params(std, generator=generator)` on every layer that has it.
# (The grader checks the list you build, then swaps your layers for its own, so that a bug in a
# layer does not cost you the CNN's points twice.)
#
# The CNN needs chapter 01's `Linear` and `ReLU`, and training needs `CrossEntropyLoss`: copy
# your chapter-01 code into their methods below.

# %% [raw]
# # BEGIN QUESTION
# name: q5
# points: 5

# %% [raw]
# # BEGIN SOLUTION

# %%
class Linear:
    """Chapter 01: y = x @ weight + bias, weight (in_features, out_features), bias (out_features,)."""

    def __init__(self, in_features, out_features):
        self.in_features = in_features
        self.out_features = out_features
        self.cache = None
        self.init_params()

    def init_params(self, std=1.0, generator=None):
        """weight ~ N(0, std^2); bias ~ U[0, 1)."""
        # BEGIN SOLUTION NO PROMPT
        self.weight = std * torch.randn(self.in_features, self.out_features, generator=generator)
        self.bias = torch.rand(self.out_features, generator=generator)
        self.grad_weight = torch.zeros_like(self.weight)
        self.grad_bias = torch.zeros_like(self.bias)
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("Linear.init_params: copy it from chapter 01")
        """ # END PROMPT

    def forward(self, x):
        """x: (N, in_features) -> (N, out_features)."""
        # BEGIN SOLUTION NO PROMPT
        self.cache = x
        return x @ self.weight + self.bias
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("Linear.forward: copy it from chapter 01")
        """ # END PROMPT

    def backward(self, dupstream):
        """dupstream: (N, out_features) -> dx: (N, in_features); sets grad_weight, grad_bias."""
        # BEGIN SOLUTION NO PROMPT
        self.grad_weight = self.cache.T @ dupstream
        self.grad_bias = dupstream.sum(dim=0)
        return dupstream @ self.weight.T
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("Linear.backward: copy it from chapter 01")
        """ # END PROMPT


class ReLU:
    """Chapter 01: max(0, x) elementwise, any shape."""

    def forward(self, x):
        # BEGIN SOLUTION NO PROMPT
        self.cache = x
        return x.clamp(min=0)
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("ReLU.forward: copy it from chapter 01")
        """ # END PROMPT

    def backward(self, dupstream):
        # BEGIN SOLUTION NO PROMPT
        return dupstream * (self.cache > 0).to(dupstream.dtype)
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("ReLU.backward: copy it from chapter 01")
        """ # END PROMPT


class CrossEntropyLoss:
    """Chapter 01: softmax + negative log-likelihood, averaged over the batch."""

    def forward(self, logits, target):
        """logits: (N, C), target: (N,) int64 -> scalar tensor."""
        # BEGIN SOLUTION NO PROMPT
        shifted = logits - logits.max(dim=1, keepdim=True).values
        log_probs = shifted - torch.log(torch.exp(shifted).sum(dim=1, keepdim=True))
        self.cache = (log_probs, target)
        return -log_probs[torch.arange(logits.shape[0]), target].mean()
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("CrossEntropyLoss.forward: copy it from chapter 01")
        """ # END PROMPT

    def backward(self):
        """-> dlogits: (N, C)."""
        # BEGIN SOLUTION NO PROMPT
        log_probs, target = self.cache
        one_hot = torch.zeros_like(log_probs)
        one_hot[torch.arange(log_probs.shape[0]), target] = 1.0
        return (torch.exp(log_probs) - one_hot) / log_probs.shape[0]
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("CrossEntropyLoss.backward: copy it from chapter 01")
        """ # END PROMPT


class Flatten:
    """(N, C, H, W) -> (N, C * H * W); backward reshapes the gradient back."""

    def forward(self, x):
        # BEGIN SOLUTION NO PROMPT
        self.input_shape = x.shape
        return x.reshape(x.shape[0], -1)
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("Flatten.forward")
        """ # END PROMPT

    def backward(self, dupstream):
        # BEGIN SOLUTION NO PROMPT
        return dupstream.reshape(self.input_shape)
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("Flatten.backward")
        """ # END PROMPT


class CNN:
    """Two conv-ReLU-pool blocks and a linear classifier; see the table above.

    forward: (N, in_channels, S, S) -> logits (N, out_features); backward: the reverse.
    """

    def __init__(self, in_channels, hidden_channels, out_features, image_size=16):
        assert image_size % 4 == 0, "image_size must be divisible by 4 (two 2x2 poolings)"
        self.in_channels = in_channels
        self.hidden_channels = hidden_channels
        self.out_features = out_features
        self.image_size = image_size
        # BEGIN SOLUTION NO PROMPT
        h = hidden_channels
        side = image_size // 4
        self.layers = [
            Conv2d(in_channels, h, 3, 1, 1), ReLU(), MaxPool2d(2, 2, 0),
            Conv2d(h, 2 * h, 3, 1, 1), ReLU(), MaxPool2d(2, 2, 0),
            Flatten(), Linear(2 * h * side * side, out_features),
        ]
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("CNN.__init__: build self.layers")
        """ # END PROMPT

    def reset_params(self, std=1.0, generator=None):
        # BEGIN SOLUTION NO PROMPT
        for layer in self.layers:
            if hasattr(layer, "init_params"):
                layer.init_params(std, generator=generator)
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("CNN.reset_params")
        """ # END PROMPT

    def forward(self, x):
        # BEGIN SOLUTION NO PROMPT
        for layer in self.layers:
            x = layer.forward(x)
        return x
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("CNN.forward")
        """ # END PROMPT

    def backward(self, dupstream):
        # BEGIN SOLUTION NO PROMPT
        for layer in reversed(self.layers):
            dupstream = layer.backward(dupstream)
        return dupstream
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("CNN.backward")
        """ # END PROMPT

    def optimizer_step(self, lr):
        # BEGIN SOLUTION NO PROMPT
        for layer in self.layers:
            if hasattr(layer, "weight"):
                layer.weight = layer.weight - lr * layer.grad_weight
                layer.bias = layer.bias - lr * layer.grad_bias
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("CNN.optimizer_step")
        """ # END PROMPT

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
flatten = Flatten()
x = torch.randn(3, 2, 4, 5, generator=torch.Generator().manual_seed(8)).transpose(2, 3)
assert flatten.forward(x).shape == (3, 40), "Flatten keeps the batch dimension and flattens the rest"
assert flatten.backward(torch.ones(3, 40)).shape == (3, 2, 5, 4), "Flatten.backward restores the input's shape"
x = torch.arange(24, dtype=torch.float64).reshape(2, 3, 2, 2)
y = flatten.forward(x)
assert torch.equal(y[1, :4], x[1, 0].reshape(-1)) and torch.equal(y[1, 4:8], x[1, 1].reshape(-1)), "Flatten works in (C, H, W) order: the H*W values of channel 0 first, row by row, then those of channel 1, ..."
assert torch.equal(flatten.backward(y), x), "Flatten.backward should undo forward: backward(forward(x)) gives x back"

# %%
from student.gradcheck import TOLERANCE, check_gradients, check_layer_gradients, check_second_call_sets_gradients
generator = torch.Generator().manual_seed(10)
fresh, reused = Linear(3, 2), Linear(3, 2)
weight, bias = torch.randn(3, 2, generator=generator, dtype=torch.float64), torch.randn(2, generator=generator, dtype=torch.float64)
fresh.weight, fresh.bias, reused.weight, reused.bias = weight, bias, weight, bias
errors = check_layer_gradients(fresh, torch.randn(4, 3, generator=generator, dtype=torch.float64), verbose=False)
wrong = {name: f"{error:.1e}" for name, error in errors.items() if not error < TOLERANCE}
assert not wrong, f"Linear (copied from chapter 01): these gradients disagree with central differences (relative error): {wrong}"


def linear_like(layer):
    def make():
        copy = Linear(3, 2)
        copy.weight, copy.bias = layer.weight.clone(), layer.bias.clone()
        return copy
    return make


inputs = tuple(torch.randn(4, 3, generator=generator, dtype=torch.float64) for _ in range(2))
upstreams = tuple(torch.randn(4, 2, generator=generator, dtype=torch.float64) for _ in range(2))
check_second_call_sets_gradients(linear_like(fresh), inputs, upstreams, "Linear (copied from chapter 01)")
layer = Linear(10, 20000)
layer.init_params(0.1, generator=torch.Generator().manual_seed(11))
weight, bias = layer.weight.double(), layer.bias.double()
assert abs(weight.mean().item()) < 0.005 and abs(weight.std().item() / 0.1 - 1) < 0.05, "Linear.init_params(std) (copied from chapter 01): the weight should have mean 0 and standard deviation std"
assert 0.035 < (weight.abs() > 0.2).double().mean().item() < 0.056 and bias.min().item() >= 0 and bias.max().item() < 1 and abs(bias.mean().item() - 0.5) < 0.02, "Linear.init_params (copied from chapter 01): a Gaussian weight and a bias uniform on [0, 1), whatever std is"

# %%
relu = ReLU()
assert torch.equal(relu.forward(torch.tensor([[-2.0, -0.5, 0.5, 3.0]], dtype=torch.float64)), torch.tensor([[0.0, 0.0, 0.5, 3.0]], dtype=torch.float64)), "ReLU.forward (copied from chapter 01): max(0, x)"
assert torch.equal(relu.backward(torch.tensor([[1.0, -1.0, -1.0, 1.0]], dtype=torch.float64)), torch.tensor([[0.0, 0.0, -1.0, 1.0]], dtype=torch.float64)), "ReLU.backward (copied from chapter 01): pass dupstream, whatever its sign, where the INPUT of the last forward was positive; 0 elsewhere"
ce = CrossEntropyLoss()
assert torch.isfinite(ce.forward(torch.tensor([[1000.0, 0.0], [0.0, 1000.0]], dtype=torch.float64), torch.tensor([0, 0]))), "CrossEntropyLoss (copied from chapter 01) must stay finite for logits around 1000: subtract the row max"
generator = torch.Generator().manual_seed(12)
errors = check_gradients(CrossEntropyLoss(), torch.randn(4, 3, generator=generator, dtype=torch.float64), target=torch.tensor([0, 2, 1, 2]), verbose=False)
assert errors["x"] < TOLERANCE, f"CrossEntropyLoss.backward (copied from chapter 01) disagrees with central differences (relative error {errors['x']:.1e})"

# %%
for c, h, classes, size in [(1, 4, 10, 16), (3, 2, 5, 8)]:
    net = CNN(c, h, classes, image_size=size)
    assert len(net.layers) == 8, f"the CNN has 8 layers (see the table), found {len(net.layers)}"
    table = [(Conv2d, (c, h, 3, 1, 1), "Conv2d(C, h, 3, 1, 1)"), (ReLU, (), "ReLU()"), (MaxPool2d, (2, 2, 0), "MaxPool2d(2, 2, 0)"),
             (Conv2d, (h, 2 * h, 3, 1, 1), "Conv2d(h, 2h, 3, 1, 1)"), (ReLU, (), "ReLU()"), (MaxPool2d, (2, 2, 0), "MaxPool2d(2, 2, 0)"),
             (Flatten, (), "Flatten()"), (Linear, (2 * h * (size // 4) ** 2, classes), "Linear(2h * (S/4)^2, out_features)")]
    settings = {Conv2d: ("in_channels", "out_channels", "kernel_size", "stride", "padding"), MaxPool2d: ("kernel_size", "stride", "padding"), Linear: ("in_features", "out_features")}
    for index, (layer, (kind, expected, name)) in enumerate(zip(net.layers, table)):
        assert isinstance(layer, kind) and tuple(getattr(layer, a, None) for a in settings.get(kind, ())) == expected, f"CNN({c}, {h}, {classes}, image_size={size}): layers[{index}] should be {name} (see the table; C = in_channels, h = hidden_channels, S = image_size)"

# %%
# The CNN's methods are checked on stand-in layers (student/stand_ins.py, not the layers
# you write) put in place of its own, so a bug in q1-q4 does not fail them.
from student.stand_ins import check_layer_container


def cnn_with_layers(layers):
    net = CNN(1, 2, 3, image_size=8)
    net.layers = layers
    return net


check_layer_container(cnn_with_layers, "CNN", torch.Generator().manual_seed(13))

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# ## 6. Experiments (not graded by execution)
#
# ### 6.1 How much does vectorisation buy?
# The same layer three ways, forward and backward on a batch of 64 images of 8 channels at
# 16x16 with 16 filters of 3x3: your loop version, your im2col version, and PyTorch's
# `torch.nn.functional.conv2d` with autograd (allowed here: this cell only measures). Median of
# a few runs, on the one CPU thread the setup cell at the top chose (the tensors are small: a
# second thread gains little, and one thread gives steadier timings).

# %% tags=["experiment"]
# EXPERIMENT: not run by the grader
import statistics
import time

import torch.nn.functional as F


def median_seconds(fn, repeats=5):
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


timing_rng = torch.Generator().manual_seed(0)
x = torch.randn(64, 8, 16, 16, generator=timing_rng)
dy = torch.randn(64, 16, 16, 16, generator=timing_rng)
loop_layer, fast_layer = Conv2dLoop(8, 16, 3, 1, 1), Conv2d(8, 16, 3, 1, 1)
fast_layer.weight, fast_layer.bias = loop_layer.weight, loop_layer.bias


def torch_conv():
    x_leaf = x.clone().requires_grad_()
    weight = loop_layer.weight.clone().requires_grad_()
    bias = loop_layer.bias.clone().requires_grad_()
    F.conv2d(x_leaf, weight, bias, stride=1, padding=1).backward(dy)


def ours(layer):
    layer.forward(x)
    layer.backward(dy)


timings = {
    "loop (Conv2dLoop)": median_seconds(lambda: ours(loop_layer)),
    "im2col (Conv2d)": median_seconds(lambda: ours(fast_layer)),
    "torch.nn.functional.conv2d": median_seconds(torch_conv),
}
for name, seconds in timings.items():
    print(f"{name:>28}: {1000 * seconds:8.2f} ms forward + backward")
print(f"im2col is {timings['loop (Conv2dLoop)'] / timings['im2col (Conv2d)']:.0f}x faster than the loop; "
      f"PyTorch is {timings['im2col (Conv2d)'] / timings['torch.nn.functional.conv2d']:.1f}x faster than im2col")

# %% [markdown]
# ### 6.2 Training the CNN on digits
#
# The digits, upsampled to 16x16. Two changes from chapter 01's recipe help a CNN:
# * **initialisation** scaled by each layer's fan-in (the number of inputs of one unit:
#   `C * k * k` for a convolution, `in_features` for a linear layer): the convolutions, each
#   followed by a ReLU that zeroes about half of its outputs, get `std = sqrt(2 / fan_in)` (He
#   initialisation); the last linear layer, which feeds the loss directly, gets
#   `sqrt(1 / fan_in)` (LeCun) and a zero bias. A single `std` for all layers would be too large
#   for some and too small for others;
# * **small random shifts** of the training images by at most one pixel (data augmentation):
#   a digit moved by a pixel is the same digit, and the network should learn that.
#
# The learning rate decays along a cosine from 0.1 to 0. We save the parameters of the epoch
# with the best validation accuracy to a file, load them into a fresh network, and evaluate
# that one, once, on the test set.

# %% tags=["experiment"]
# EXPERIMENT: not run by the grader
import math

from tqdm.auto import tqdm
from student.data import load_digits_splits, minibatches
from student.plots import plot_curves, show_images
from student.results import record

splits = load_digits_splits(seed=0, size=16)
train_x, train_y = splits["train"].images, splits["train"].labels
val_x, val_y = splits["val"].images, splits["val"].labels
test_x, test_y = splits["test"].images, splits["test"].labels
print("train", tuple(train_x.shape), "validation", tuple(val_x.shape), "test", tuple(test_x.shape))


def he_init(net, generator):
    for layer in net.layers:
        if isinstance(layer, Conv2dLoop):
            layer.init_params(math.sqrt(2 / (layer.in_channels * layer.kernel_size ** 2)), generator=generator)
        elif isinstance(layer, Linear):
            layer.init_params(math.sqrt(1 / layer.in_features), generator=generator)
            layer.bias = torch.zeros(layer.out_features)


def shift_by_one_pixel(images, generator):
    """Moves each image by -1, 0 or +1 pixel in each direction (zeros come in at the border)."""
    n, _, size, _ = images.shape
    padded = pad2d(images, 1)
    offsets = torch.randint(0, 3, (n, 2), generator=generator).tolist()
    return torch.stack([padded[i, :, a:a + size, b:b + size] for i, (a, b) in enumerate(offsets)])


def accuracy(net, images, labels, batch_size=500):
    correct = 0
    for start in range(0, len(labels), batch_size):
        logits = net.forward(images[start:start + batch_size])
        correct += (logits.argmax(dim=1) == labels[start:start + batch_size]).sum().item()
    return correct / len(labels)


def snapshot(net):
    return [(layer.weight.clone(), layer.bias.clone()) for layer in net.layers if hasattr(layer, "weight")]


def restore(net, saved):
    for layer, (weight, bias) in zip([l for l in net.layers if hasattr(l, "weight")], saved):
        layer.weight, layer.bias = weight.clone(), bias.clone()


def train_cnn(net, epochs=20, lr=0.1, batch_size=32, seed=0):
    generator = torch.Generator().manual_seed(seed)
    he_init(net, generator)
    loss_fn = CrossEntropyLoss()
    curves = {"train loss": [], "validation accuracy": []}
    best = (-1.0, None)
    progress = tqdm(range(epochs), desc="CNN")
    for epoch in progress:
        epoch_lr = lr * 0.5 * (1 + math.cos(math.pi * epoch / epochs))
        total = 0.0
        for idx in minibatches(len(train_y), batch_size, generator):
            logits = net.forward(shift_by_one_pixel(train_x[idx], generator))
            loss = loss_fn.forward(logits, train_y[idx])
            net.backward(loss_fn.backward())
            net.optimizer_step(epoch_lr)
            total += loss.item() * len(idx)
        curves["train loss"].append(total / len(train_y))
        curves["validation accuracy"].append(accuracy(net, val_x, val_y))
        if curves["validation accuracy"][-1] > best[0]:
            best = (curves["validation accuracy"][-1], snapshot(net))
        progress.set_postfix(loss=f"{curves['train loss'][-1]:.3f}", val=f"{curves['validation accuracy'][-1]:.3f}")
    return curves, best


cnn = CNN(1, 16, 10, image_size=16)
started = time.perf_counter()
cnn_curves, (best_val, best_params) = train_cnn(cnn)
training_seconds = time.perf_counter() - started
torch.save(best_params, "best_cnn.pt")
reloaded = CNN(1, 16, 10, image_size=16)
restore(reloaded, torch.load("best_cnn.pt"))
test_accuracy = accuracy(reloaded, test_x, test_y)
print(f"trained in {training_seconds:.0f} s; best validation accuracy {best_val:.3f}; test accuracy {test_accuracy:.3f}")
record(test_accuracy=test_accuracy, training_seconds=training_seconds)  # for the course's automated tests; prints nothing
plot_curves({"train loss": cnn_curves["train loss"]}, ylabel="cross-entropy", title="CNN training loss");
plot_curves({"validation": cnn_curves["validation accuracy"]}, ylabel="accuracy", title="CNN validation accuracy");

# %% [markdown]
# ### 6.3 What did the first layer learn?
# The 16 filters of the first convolution (3x3 each, all on one shared grey scale: black = the
# most negative weight of any filter, white = the most positive), then the 16
# feature maps they produce for one test image, after the ReLU (bright = strong response).
# With 3x3 filters on one channel there is not much room for structure: look for maps that
# light up on the stroke itself, maps that light up on the background around it, and maps that
# only keep the edges on one side of the stroke. A map that stays black belongs to a filter
# that never fires on this image.

# %% tags=["experiment"]
# EXPERIMENT: not run by the grader
cnn = CNN(1, 16, 10, image_size=16)
restore(cnn, torch.load("best_cnn.pt"))
first_conv = cnn.layers[0]
show_images(first_conv.weight, titles=[f"filter {i}" for i in range(first_conv.out_channels)], shared_scale=True);
image = test_x[:1]
feature_maps = cnn.layers[1].forward(first_conv.forward(image))[0]
show_images(image, titles=[f"digit {test_y[0].item()}"], columns=1);
show_images(feature_maps, titles=[f"map {i}" for i in range(len(feature_maps))], shared_scale=True);
