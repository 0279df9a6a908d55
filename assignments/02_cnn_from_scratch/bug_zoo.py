"""Bug zoo of chapter 02: mistakes students really make; each must lose exactly its items.

Mutants that differ from the solution in one line of a long backward method are generated
from a template of that method (``LOOP_BACKWARD``, ``POOL_BACKWARD``).
"""

from tools.zoo import Bug

LOOP_BACKWARD = """
class Conv2dLoop(Conv2dLoop):
    def backward(self, dupstream):
        xp = self.cache
        n, _, h_out, w_out = dupstream.shape
        k, s, p = self.kernel_size, self.stride, self.padding
        filters = self.weight.reshape(self.out_channels, -1)
        grad_filters = torch.zeros_like(filters)
        dxp = torch.zeros_like(xp)
        for i in range(h_out):
            for j in range(w_out):
                window = xp[:, :, i * s:i * s + k, j * s:j * s + k].reshape(n, -1)
                dy = dupstream[:, :, i, j]
                grad_filters += dy.T @ window
                {scatter}
        self.grad_weight = grad_filters.reshape(self.weight.shape)
        self.grad_bias = dupstream.sum(dim=(0, 2, 3))
        return {result}
"""
LOOP_SCATTER = "dxp[:, :, i * s:i * s + k, j * s:j * s + k] {op} (dy @ filters).reshape(n, self.in_channels, k, k)"
LOOP_RESULT = "dxp[:, :, p:xp.shape[2] - p, p:xp.shape[3] - p]"


POOL_BACKWARD = """
class MaxPool2d(MaxPool2d):
    def backward(self, dupstream):
        best_offset, padded_shape = self.cache
        k, s, p = self.kernel_size, self.stride, self.padding
        h_out, w_out = best_offset.shape[2], best_offset.shape[3]
        dxp = dupstream.new_zeros(padded_shape)
        for u in range(k):
            for v in range(k):
                window = (slice(None), slice(None), slice(u, u + s * (h_out - 1) + 1, s),
                          slice(v, v + s * (w_out - 1) + 1, s))
                {scatter}
        return dxp[:, :, p:padded_shape[2] - p, p:padded_shape[3] - p]
"""


def pool_backward(scatter: str) -> str:
    return POOL_BACKWARD.format(scatter=scatter)


def loop_backward(op: str = "+=", result: str = LOOP_RESULT) -> str:
    return LOOP_BACKWARD.format(scatter=LOOP_SCATTER.format(op=op), result=result)


def conv_items(check: str, outputs: set[str]) -> set[str]:
    return {f"{check}: {output}" for output in outputs}


BUGS = [
    # ----------------------------------------------------------- concept questions
    Bug(
        "output size rounds the last partial window up",
        {"conv_output_size: sizes"},
        """
def conv_output_size(size, kernel_size, stride=1, padding=0):
    return -(-(size + 2 * padding - kernel_size) // stride) + 1
""",
    ),
    Bug(
        "output size pads one side only",
        {"conv_output_size: sizes"},
        """
def conv_output_size(size, kernel_size, stride=1, padding=0):
    return (size + padding - kernel_size) // stride + 1
""",
    ),
    Bug(
        "output size with true division returns a float",
        {"conv_output_size: sizes"},
        """
def conv_output_size(size, kernel_size, stride=1, padding=0):
    return (size + 2 * padding - kernel_size) / stride + 1
""",
    ),
    Bug(
        "conv parameter count forgets the bias",
        {"param_counts: conv"},
        """
def conv_param_count(in_channels, out_channels, kernel_size):
    return out_channels * in_channels * kernel_size ** 2
""",
    ),
    Bug(
        "conv parameter count forgets the input channels",
        {"param_counts: conv"},
        """
def conv_param_count(in_channels, out_channels, kernel_size):
    return out_channels * kernel_size ** 2 + out_channels
""",
    ),
    Bug(
        "linear parameter count forgets the bias",
        {"param_counts: linear"},
        """
def linear_param_count(in_features, out_features):
    return in_features * out_features
""",
    ),
    Bug(
        "receptive field ignores the strides",
        {"receptive_field: field"},
        """
def receptive_field(layers):
    return 1 + sum(kernel_size - 1 for kernel_size, _ in layers)
""",
    ),
    Bug(
        "receptive field scales by the layer's own stride",
        {"receptive_field: field"},
        """
def receptive_field(layers):
    field, jump = 1, 1
    for kernel_size, stride in layers:
        jump *= stride
        field += (kernel_size - 1) * jump
    return field
""",
    ),
    Bug(
        "receptive field multiplies kernel sizes",
        {"receptive_field: field"},
        """
def receptive_field(layers):
    field = 1
    for kernel_size, _ in layers:
        field *= kernel_size
    return field
""",
    ),
    # ------------------------------------------------------------ loop convolution
    Bug(
        "loop conv assigns overlapping window gradients instead of adding them",
        conv_items("Conv2dLoop", {"dx"}),
        loop_backward(op="="),
    ),
    Bug(
        "loop conv returns dx with the padding still on",
        conv_items("Conv2dLoop", {"dx"}),
        loop_backward(result="dxp"),
        pattern="padding",
    ),
    Bug(
        "loop conv crops the padding on one side only",
        conv_items("Conv2dLoop", {"dx"}),
        loop_backward(result="dxp[:, :, p:, p:]"),
        pattern="padding",
    ),
    Bug(
        "loop conv averages grad_weight over the batch",
        conv_items("Conv2dLoop", {"grad_weight"}),
        """
class Conv2dLoop(Conv2dLoop):
    def backward(self, dupstream):
        dx = super().backward(dupstream)
        self.grad_weight = self.grad_weight / dupstream.shape[0]
        return dx
""",
    ),
    Bug(
        "loop conv gradients accumulate across calls",
        conv_items("Conv2dLoop", {"grad_weight", "grad_bias"}),
        """
class Conv2dLoop(Conv2dLoop):
    def backward(self, dupstream):
        old_weight, old_bias = self.grad_weight, self.grad_bias
        dx = super().backward(dupstream)
        self.grad_weight = old_weight + self.grad_weight
        self.grad_bias = old_bias + self.grad_bias
        return dx
""",
    ),
    Bug(
        "conv init_params ignores std",
        {"Conv2dLoop.init_params: weight"},
        """
class Conv2dLoop(Conv2dLoop):
    def init_params(self, std=0.7071, generator=None):
        super().init_params(0.7071, generator)
""",
    ),
    Bug(
        "conv init_params draws a uniform weight",
        {"Conv2dLoop.init_params: weight"},
        """
class Conv2dLoop(Conv2dLoop):
    def init_params(self, std=0.7071, generator=None):
        super().init_params(std, generator)
        u = torch.rand(self.weight.shape, generator=generator)
        self.weight = std * 3 ** 0.5 * (2 * u - 1)
""",
    ),
    Bug(
        "conv init_params draws the bias like Linear's (uniform on [0, 1))",
        {"Conv2dLoop.init_params: bias"},
        """
class Conv2dLoop(Conv2dLoop):
    def init_params(self, std=0.7071, generator=None):
        super().init_params(std, generator)
        self.bias = torch.rand(self.out_channels, generator=generator)
""",
    ),
    Bug(
        "loop conv allocates its output in float32",
        conv_items("Conv2dLoop", {"y"}),
        """
class Conv2dLoop(Conv2dLoop):
    def forward(self, x):
        y = super().forward(x)
        out = torch.zeros(y.shape)
        out[...] = y
        return out
""",
    ),
    # --------------------------------------------------------- im2col convolution
    Bug(
        "flipped kernel: a true convolution instead of a cross-correlation",
        conv_items("Conv2d", {"y", "dx", "grad_weight"}),
        """
class Conv2d(Conv2d):
    def forward(self, x):
        weight = self.weight
        self.weight = weight.flip(2, 3)
        try:
            return super().forward(x)
        finally:
            self.weight = weight

    def backward(self, dupstream):
        weight = self.weight
        self.weight = weight.flip(2, 3)
        try:
            dx = super().backward(dupstream)
        finally:
            self.weight = weight
        self.grad_weight = self.grad_weight.flip(2, 3)
        return dx
""",
        pattern="k",
    ),
    Bug(
        "padding applied on one side only (image in the top-left corner of the canvas)",
        conv_items("Conv2d", {"y", "dx", "grad_weight"}),
        """
def pad2d_top_left(x, padding):
    n, c, h, w = x.shape
    out = x.new_zeros((n, c, h + 2 * padding, w + 2 * padding))
    out[:, :, :h, :w] = x
    return out


class Conv2d(Conv2d):
    def forward(self, x):
        n, _, h, w = x.shape
        k, s, p = self.kernel_size, self.stride, self.padding
        h_out, w_out = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
        xp = pad2d_top_left(x, p)
        cols = im2col(xp, k, s)
        self.cache = (cols, xp.shape)
        y = self.weight.reshape(self.out_channels, -1) @ cols + self.bias.reshape(-1, 1)
        self.input_size = (h, w)
        return y.reshape(n, self.out_channels, h_out, w_out)

    def backward(self, dupstream):
        cols, padded_shape = self.cache
        n, f = dupstream.shape[:2]
        h, w = self.input_size
        self.grad_weight = (dupstream.reshape(n, f, -1) @ cols.transpose(1, 2)).sum(dim=0).reshape(
            self.weight.shape)
        self.grad_bias = dupstream.sum(dim=(0, 2, 3))
        dcols = self.weight.reshape(f, -1).T @ dupstream.reshape(n, f, -1)
        return col2im(dcols, padded_shape, self.kernel_size, self.stride)[:, :, :h, :w]
""",
        pattern="padding",
    ),
    Bug(
        "im2col columns in (k, k, C) order against a (C, k, k) weight",
        conv_items("Conv2d", {"y", "dx", "grad_weight"}),
        """
def im2col(xp, kernel_size, stride):
    n, c = xp.shape[:2]
    windows = xp.unfold(2, kernel_size, stride).unfold(3, kernel_size, stride)
    h_out, w_out = windows.shape[2], windows.shape[3]
    return windows.permute(0, 4, 5, 1, 2, 3).reshape(n, c * kernel_size ** 2, h_out * w_out)


def col2im(cols, padded_shape, kernel_size, stride):
    n, c, hp, wp = padded_shape
    k, s = kernel_size, stride
    h_out, w_out = (hp - k) // s + 1, (wp - k) // s + 1
    blocks = cols.reshape(n, k, k, c, h_out, w_out)
    out = cols.new_zeros(padded_shape)
    for u in range(k):
        for v in range(k):
            out[:, :, u:u + s * (h_out - 1) + 1:s, v:v + s * (w_out - 1) + 1:s] += blocks[:, u, v]
    return out
""",
        pattern=None,
    ),
    Bug(
        "bias gradient not summed over space",
        conv_items("Conv2d", {"grad_bias"}),
        """
class Conv2d(Conv2d):
    def backward(self, dupstream):
        dx = super().backward(dupstream)
        self.grad_bias = dupstream.sum(dim=0)
        return dx
""",
    ),
    Bug(
        "stride ignored in backward (col2im with unit steps)",
        conv_items("Conv2d", {"dx"}),
        """
class Conv2d(Conv2d):
    def backward(self, dupstream):
        super().backward(dupstream)
        cols, padded_shape = self.cache
        n, f, h_out, w_out = dupstream.shape
        k, p = self.kernel_size, self.padding
        dcols = self.weight.reshape(f, -1).T @ dupstream.reshape(n, f, -1)
        blocks = dcols.reshape(n, self.in_channels, k, k, h_out, w_out)
        dxp = dcols.new_zeros(padded_shape)
        for u in range(k):
            for v in range(k):
                dxp[:, :, u:u + h_out, v:v + w_out] += blocks[:, :, u, v]
        return dxp[:, :, p:padded_shape[2] - p, p:padded_shape[3] - p]
""",
        pattern="stride",
    ),
    Bug(
        "view instead of reshape on a non-contiguous upstream gradient",
        conv_items("Conv2d", {"dx", "grad_weight", "grad_bias"}),
        """
class Conv2d(Conv2d):
    def backward(self, dupstream):
        n, f = dupstream.shape[:2]
        dupstream.view(n, f, -1)
        return super().backward(dupstream)
""",
        pattern="noncontiguous",
    ),
    # ---------------------------------------------------------------- max pooling
    Bug(
        "pooling gradient sent to every element of the window",
        {"MaxPool2d: dx"},
        pool_backward("dxp[window] += dupstream"),
        pattern="k",
    ),
    Bug(
        "pooling pads with zeros instead of minus infinity",
        {"MaxPool2d: y", "MaxPool2d: dx"},
        """
class MaxPool2d(MaxPool2d):
    def forward(self, x):
        if self.padding == 0:
            return super().forward(x)
        p = self.padding
        inner = MaxPool2d(self.kernel_size, self.stride, 0)
        y = inner.forward(pad2d(x, p, 0.0))
        self.inner = inner
        return y

    def backward(self, dupstream):
        if self.padding == 0:
            return super().backward(dupstream)
        p = self.padding
        dxp = self.inner.backward(dupstream)
        return dxp[:, :, p:dxp.shape[2] - p, p:dxp.shape[3] - p]
""",
    ),
    Bug(
        "pooling ties go to the last maximum",
        {"MaxPool2d: dx"},
        """
class MaxPool2d(MaxPool2d):
    def forward(self, x):
        k, s = self.kernel_size, self.stride
        xp = pad2d(x, self.padding, float("-inf"))
        h_out, w_out = (xp.shape[2] - k) // s + 1, (xp.shape[3] - k) // s + 1
        best = torch.full((x.shape[0], x.shape[1], h_out, w_out), float("-inf"), dtype=x.dtype)
        best_offset = torch.zeros(best.shape, dtype=torch.int64)
        for u in range(k):
            for v in range(k):
                candidate = xp[:, :, u:u + s * (h_out - 1) + 1:s, v:v + s * (w_out - 1) + 1:s]
                better = candidate >= best
                best = torch.where(better, candidate, best)
                best_offset = torch.where(better, u * k + v, best_offset)
        self.cache = (best_offset, xp.shape)
        return best
""",
        pattern="ties",
    ),
    Bug(
        "pooling gradient goes to every tied maximum",
        {"MaxPool2d: dx"},
        """
class MaxPool2d(MaxPool2d):
    def forward(self, x):
        self.x = x
        self.y = super().forward(x)
        return self.y
"""
        + pool_backward(
            'dxp[window] += dupstream * (pad2d(self.x, p, float("-inf"))[window] == self.y)'
        ),
        pattern="ties",
    ),
    Bug(
        "pooling overwrites the gradient of overlapping windows",
        {"MaxPool2d: dx"},
        pool_backward("""won = best_offset == u * k + v
                dxp[window][won] = dupstream[won]"""),
    ),
    # -------------------------------------------------------------------- Flatten
    Bug(
        "flatten backward returns the flat gradient",
        {"Flatten: dx"},
        """
class Flatten(Flatten):
    def backward(self, dupstream):
        return dupstream
""",
    ),
    Bug(
        "flatten with view fails on non-contiguous input",
        {"Flatten: y"},
        """
class Flatten(Flatten):
    def forward(self, x):
        self.input_shape = x.shape
        return x.view(x.shape[0], -1)
""",
        pattern="noncontiguous",
    ),
    Bug(
        "flatten in channels-last order",
        {"Flatten: y", "Flatten: dx"},
        """
class Flatten(Flatten):
    def forward(self, x):
        self.input_shape = x.shape
        return x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)

    def backward(self, dupstream):
        n, c, h, w = self.input_shape
        return dupstream.reshape(n, h, w, c).permute(0, 3, 1, 2)
""",
    ),
    # ---------------------------------------------------- chapter 01's layers, copied
    Bug(
        "copied linear gradients accumulate across calls",
        {"chapter 01 layers: grad_weight", "chapter 01 layers: grad_bias"},
        """
class Linear(Linear):
    def backward(self, dupstream):
        self.grad_weight = self.grad_weight + self.cache.T @ dupstream
        self.grad_bias = self.grad_bias + dupstream.sum(dim=0)
        return dupstream @ self.weight.T
""",
    ),
    Bug(
        "copied linear init_params ignores std",
        {"chapter 01 layers: Linear.init_params"},
        """
class Linear(Linear):
    def init_params(self, std=1.0, generator=None):
        super().init_params(1.0, generator)
""",
    ),
    Bug(
        "copied relu backward gates on the upstream gradient",
        {"chapter 01 layers: ReLU.dx"},
        """
class ReLU(ReLU):
    def backward(self, dupstream):
        return dupstream * (dupstream > 0).to(dupstream.dtype)
""",
    ),
    Bug(
        "copied cross-entropy without the max shift overflows",
        {"chapter 01 layers: CrossEntropyLoss.loss", "chapter 01 layers: CrossEntropyLoss.dlogits"},
        """
class CrossEntropyLoss(CrossEntropyLoss):
    def forward(self, logits, target):
        log_probs = logits - logits.exp().sum(dim=1, keepdim=True).log()
        self.cache = (log_probs, target)
        return -log_probs[torch.arange(logits.shape[0]), target].mean()
""",
    ),
    # ------------------------------------------------------------------------ CNN
    Bug(
        "cnn forgets the second ReLU",
        {"CNN: architecture", "CNN: y", "CNN: dx"},
        """
class CNN(CNN):
    def __init__(self, in_channels, hidden_channels, out_features, image_size=16):
        super().__init__(in_channels, hidden_channels, out_features, image_size)
        del self.layers[4]
""",
    ),
    Bug(
        "cnn keeps the channel count in the second convolution",
        {"CNN: architecture", "CNN: y", "CNN: dx", "CNN: params_after_step"},
        """
class CNN(CNN):
    def __init__(self, in_channels, hidden_channels, out_features, image_size=16):
        super().__init__(in_channels, hidden_channels, out_features, image_size)
        h, side = hidden_channels, image_size // 4
        self.layers[3] = Conv2d(h, h, 3, 1, 1)
        self.layers[7] = Linear(h * side * side, out_features)
""",
    ),
    Bug(
        "cnn backward visits layers in forward order",
        {"CNN: dx"},
        """
class CNN(CNN):
    def backward(self, dupstream):
        for layer in self.layers:
            dupstream = layer.backward(dupstream)
        return dupstream
""",
    ),
    Bug(
        "cnn optimizer step goes uphill",
        {"CNN: params_after_step"},
        """
class CNN(CNN):
    def optimizer_step(self, lr):
        super().optimizer_step(-lr)
""",
    ),
    Bug(
        "cnn optimizer step skips the bias",
        {"CNN: params_after_step"},
        """
class CNN(CNN):
    def optimizer_step(self, lr):
        for layer in self.layers:
            if hasattr(layer, "weight"):
                layer.weight = layer.weight - lr * layer.grad_weight
""",
    ),
    Bug(
        "cnn reset ignores std",
        {"CNN: reset_params_std"},
        """
class CNN(CNN):
    def reset_params(self, std=1.0, generator=None):
        super().reset_params(1.0, generator)
""",
    ),
]
