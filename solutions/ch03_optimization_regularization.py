"""Reference implementation of chapter 03 (optimization and regularization): the grading oracle.

Never shipped to students. Plain tensor operations, no autograd, no ``torch.nn``, no
``torch.optim``. Optimizers follow ``torch.optim``'s update rules step for step; initializers
follow ``torch.nn.init`` for weights laid out (out, in, *kernel); the layers follow chapter 01's
convention (``forward`` caches, ``backward(dupstream)`` returns dx and sets ``grad_*``).

Two copies of the reference, by rule: this module (the grading oracle that writes the expected
data) and the master's solution blocks (what the released solution notebook runs) are kept as
independent oracles, neither generated from the other; ``tests/test_check_coverage.py`` runs
every check's exercise on both and compares them with the kit's comparison rule.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch


# ----------------------------------------------------------------------------- optimizers
class Optimizer:
    """Base class: keeps the list of parameter tensors and clears their gradients."""

    def __init__(self, params: Sequence[torch.Tensor]):
        self.params = list(params)
        self.state: dict[int, dict[str, torch.Tensor | int]] = {}

    def zero_grad(self) -> None:
        """Sets every parameter's ``.grad`` to None (PyTorch's default)."""
        for p in self.params:
            p.grad = None

    def _state(self, index: int) -> dict[str, torch.Tensor | int]:
        return self.state.setdefault(index, {"step": 0})


class SGD(Optimizer):
    """Stochastic gradient descent with momentum, dampening, L2 weight decay and Nesterov.

    For each parameter with a gradient g: g <- g + weight_decay * p; with momentum,
    buf <- g on the first step, else buf <- momentum * buf + (1 - dampening) * g, and
    g <- g + momentum * buf (Nesterov) or g <- buf; finally p <- p - lr * g (in place).
    """

    def __init__(
        self,
        params: Sequence[torch.Tensor],
        lr: float,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ):
        super().__init__(params)
        self.lr, self.momentum, self.dampening = lr, momentum, dampening
        self.weight_decay, self.nesterov = weight_decay, nesterov

    def step(self) -> None:
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            g = p.grad
            if self.weight_decay != 0:
                g = g + self.weight_decay * p
            if self.momentum != 0:
                state = self._state(i)
                if "momentum_buffer" not in state:
                    buf = g.clone()
                else:
                    buf = self.momentum * state["momentum_buffer"] + (1 - self.dampening) * g
                state["momentum_buffer"] = buf
                g = g + self.momentum * buf if self.nesterov else buf
            p.sub_(self.lr * g)


class RMSprop(Optimizer):
    """RMSprop: v <- alpha v + (1 - alpha) g^2; p <- p - lr g / (sqrt(v) + eps) (eps outside
    the square root, as PyTorch); L2 weight decay adds weight_decay * p to g first."""

    def __init__(
        self,
        params: Sequence[torch.Tensor],
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ):
        super().__init__(params)
        self.lr, self.alpha, self.eps, self.weight_decay = lr, alpha, eps, weight_decay

    def step(self) -> None:
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            g = p.grad
            if self.weight_decay != 0:
                g = g + self.weight_decay * p
            state = self._state(i)
            square_avg = state.get("square_avg", torch.zeros_like(p))
            square_avg = self.alpha * square_avg + (1 - self.alpha) * g * g
            state["square_avg"] = square_avg
            p.sub_(self.lr * g / (square_avg.sqrt() + self.eps))


class Adam(Optimizer):
    """Adam with L2 weight decay through the gradient (``torch.optim.Adam``).

    Per parameter, with its own step count t: m <- b1 m + (1 - b1) g,
    v <- b2 v + (1 - b2) g^2, p <- p - lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps).
    """

    decoupled = False

    def __init__(
        self,
        params: Sequence[torch.Tensor],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ):
        super().__init__(params)
        self.lr, self.betas, self.eps, self.weight_decay = lr, betas, eps, weight_decay

    def step(self) -> None:
        beta1, beta2 = self.betas
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            g = p.grad
            if self.weight_decay != 0:
                if self.decoupled:
                    p.mul_(1 - self.lr * self.weight_decay)
                else:
                    g = g + self.weight_decay * p
            state = self._state(i)
            t = int(state["step"]) + 1
            state["step"] = t
            m = beta1 * state.get("exp_avg", torch.zeros_like(p)) + (1 - beta1) * g
            v = beta2 * state.get("exp_avg_sq", torch.zeros_like(p)) + (1 - beta2) * g * g
            state["exp_avg"], state["exp_avg_sq"] = m, v
            m_hat = m / (1 - beta1**t)
            v_hat = v / (1 - beta2**t)
            p.sub_(self.lr * m_hat / (v_hat.sqrt() + self.eps))


class AdamW(Adam):
    """Adam with decoupled weight decay (``torch.optim.AdamW``): p <- p (1 - lr wd) before the
    Adam update, and the decay never enters the moments. Default weight_decay 1e-2."""

    decoupled = True

    def __init__(
        self,
        params: Sequence[torch.Tensor],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
    ):
        super().__init__(params, lr, betas, eps, weight_decay)


# --------------------------------------------------------------------------- initializers
GAINS = {"linear": 1.0, "sigmoid": 1.0, "tanh": 5.0 / 3.0, "relu": math.sqrt(2.0)}


def calculate_fans(tensor: torch.Tensor) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight laid out (out, in, *kernel), as torch.nn.init computes them:
    fan_in = in * prod(kernel), fan_out = out * prod(kernel)."""
    if tensor.ndim < 2:
        raise ValueError("fans need a tensor with at least 2 dimensions")
    receptive = math.prod(tensor.shape[2:])
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def _gain(nonlinearity: str) -> float:
    if nonlinearity not in GAINS:
        raise ValueError(f"unsupported nonlinearity {nonlinearity!r}")
    return GAINS[nonlinearity]


def _fill_uniform(
    tensor: torch.Tensor, bound: float, generator: torch.Generator | None
) -> torch.Tensor:
    values = torch.rand(tensor.shape, generator=generator, dtype=tensor.dtype)
    tensor.copy_((2 * values - 1) * bound)
    return tensor


def _fill_normal(
    tensor: torch.Tensor, std: float, generator: torch.Generator | None
) -> torch.Tensor:
    tensor.copy_(std * torch.randn(tensor.shape, generator=generator, dtype=tensor.dtype))
    return tensor


def xavier_uniform_(
    tensor: torch.Tensor, gain: float = 1.0, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Fills ``tensor`` (out, in, *kernel) in place from U(-a, a),
    a = gain * sqrt(6 / (fan_in + fan_out)); returns it."""
    fan_in, fan_out = calculate_fans(tensor)
    return _fill_uniform(tensor, gain * math.sqrt(6.0 / (fan_in + fan_out)), generator)


def xavier_normal_(
    tensor: torch.Tensor, gain: float = 1.0, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Fills ``tensor`` in place from N(0, std^2), std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = calculate_fans(tensor)
    return _fill_normal(tensor, gain * math.sqrt(2.0 / (fan_in + fan_out)), generator)


def kaiming_uniform_(
    tensor: torch.Tensor, nonlinearity: str = "relu", generator: torch.Generator | None = None
) -> torch.Tensor:
    """Fills ``tensor`` in place from U(-b, b), b = gain * sqrt(3 / fan_in)."""
    fan_in, _ = calculate_fans(tensor)
    return _fill_uniform(tensor, _gain(nonlinearity) * math.sqrt(3.0 / fan_in), generator)


def kaiming_normal_(
    tensor: torch.Tensor, nonlinearity: str = "relu", generator: torch.Generator | None = None
) -> torch.Tensor:
    """Fills ``tensor`` in place from N(0, std^2), std = gain / sqrt(fan_in)."""
    fan_in, _ = calculate_fans(tensor)
    return _fill_normal(tensor, _gain(nonlinearity) / math.sqrt(fan_in), generator)


# ------------------------------------------------------------------------------- dropout
class Dropout:
    """Inverted dropout: in training, y = x * mask / (1 - p), mask ~ Bernoulli(1 - p);
    in eval mode, y = x. Any shape."""

    def __init__(self, p: float = 0.5):
        if not 0.0 <= p < 1.0:
            raise ValueError("p must be in [0, 1)")
        self.p = p
        self.training = True
        self.scale: torch.Tensor | None = None

    def train(self) -> Dropout:
        self.training = True
        return self

    def eval(self) -> Dropout:
        self.training = False
        return self

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """x: any shape -> same shape."""
        if not self.training:
            self.scale = None
            return x.clone()
        keep = torch.rand(x.shape, generator=generator, dtype=x.dtype) >= self.p
        self.scale = keep.to(x.dtype) / (1.0 - self.p)
        return x * self.scale

    def backward(self, dupstream: torch.Tensor) -> torch.Tensor:
        """dupstream: shape of x -> dx (the forward's mask and scale, or identity in eval)."""
        if self.scale is None:
            return dupstream.clone()
        return dupstream * self.scale


# --------------------------------------------------------------------------- batch norm
class BatchNorm1d:
    """Batch normalization over the batch dimension of (N, C) inputs.

    Attributes:
        weight, bias: (C,), gamma and beta (ones and zeros at creation).
        grad_weight, grad_bias: (C,), set by backward.
        running_mean, running_var: (C,), exponential averages with ``momentum``; the variance
            kept is the unbiased one (divided by N - 1), the one used to normalize is biased.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1):
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.weight = torch.ones(num_features, dtype=torch.float64)
        self.bias = torch.zeros(num_features, dtype=torch.float64)
        self.grad_weight = torch.zeros_like(self.weight)
        self.grad_bias = torch.zeros_like(self.bias)
        self.running_mean = torch.zeros(num_features, dtype=torch.float64)
        self.running_var = torch.ones(num_features, dtype=torch.float64)
        self.training = True

    def train(self) -> BatchNorm1d:
        self.training = True
        return self

    def eval(self) -> BatchNorm1d:
        self.training = False
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, C) -> (N, C)."""
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

    def backward(self, dupstream: torch.Tensor) -> torch.Tensor:
        """dupstream: (N, C) -> dx (N, C), training mode; sets grad_weight, grad_bias (C,)."""
        x_hat, inv_std = self.cache
        n = dupstream.shape[0]
        self.grad_weight = (dupstream * x_hat).sum(dim=0)
        self.grad_bias = dupstream.sum(dim=0)
        return (self.weight * inv_std / n) * (
            n * dupstream - self.grad_bias - x_hat * self.grad_weight
        )


# --------------------------------------------------------------------------- layer norm
class LayerNorm:
    """Normalizes over the last ``len(normalized_shape)`` dimensions of each example.

    Attributes:
        weight, bias: ``normalized_shape``; grad_weight, grad_bias likewise (summed over the
            leading dimensions).
    """

    def __init__(self, normalized_shape: int | Sequence[int], eps: float = 1e-5):
        if isinstance(normalized_shape, int):
            normalized_shape = (normalized_shape,)
        self.normalized_shape = tuple(normalized_shape)
        self.eps = eps
        self.weight = torch.ones(self.normalized_shape, dtype=torch.float64)
        self.bias = torch.zeros(self.normalized_shape, dtype=torch.float64)
        self.grad_weight = torch.zeros_like(self.weight)
        self.grad_bias = torch.zeros_like(self.bias)

    def _dims(self, x: torch.Tensor) -> tuple[int, ...]:
        return tuple(range(x.ndim - len(self.normalized_shape), x.ndim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (..., *normalized_shape) -> same shape."""
        dims = self._dims(x)
        mean = x.mean(dim=dims, keepdim=True)
        var = ((x - mean) ** 2).mean(dim=dims, keepdim=True)
        inv_std = 1.0 / torch.sqrt(var + self.eps)
        x_hat = (x - mean) * inv_std
        self.cache = (x_hat, inv_std)
        return self.weight * x_hat + self.bias

    def backward(self, dupstream: torch.Tensor) -> torch.Tensor:
        """dupstream: shape of x -> dx; sets grad_weight and grad_bias (normalized_shape)."""
        x_hat, inv_std = self.cache
        dims = self._dims(dupstream)
        leading = tuple(range(dupstream.ndim - len(self.normalized_shape)))
        self.grad_weight = (dupstream * x_hat).sum(dim=leading)
        self.grad_bias = dupstream.sum(dim=leading)
        g = dupstream * self.weight
        m = math.prod(self.normalized_shape)
        return (inv_std / m) * (
            m * g - g.sum(dim=dims, keepdim=True) - x_hat * (g * x_hat).sum(dim=dims, keepdim=True)
        )


# ----------------------------------------------------------------------- regularization
def l2_penalty(params: Sequence[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """0.5 * sum of squares of all entries, and its gradient (p itself) for each tensor."""
    value = sum((0.5 * (p * p).sum() for p in params), torch.zeros((), dtype=torch.float64))
    return value, [p.clone() for p in params]


def l1_penalty(params: Sequence[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Sum of absolute values of all entries, and its gradient sign(p) (0 at 0)."""
    value = sum((p.abs().sum() for p in params), torch.zeros((), dtype=torch.float64))
    return value, [torch.sign(p) for p in params]


class EarlyStopping:
    """Stops when ``patience`` calls in a row bring no improvement larger than ``min_delta``.

    mode "max": an improvement is metric > best + min_delta; mode "min": metric < best -
    min_delta. The first call always improves. ``step`` returns True once the count of calls
    without improvement reaches ``patience``.
    """

    def __init__(self, patience: int, min_delta: float = 0.0, mode: str = "max"):
        if mode not in ("max", "min"):
            raise ValueError("mode is 'max' or 'min'")
        self.patience, self.min_delta, self.mode = patience, min_delta, mode
        self.best: float | None = None
        self.best_step = -1
        self.calls = 0
        self.bad_calls = 0

    def _improves(self, metric: float) -> bool:
        if self.best is None:
            return True
        if self.mode == "max":
            return metric > self.best + self.min_delta
        return metric < self.best - self.min_delta

    def step(self, metric: float) -> bool:
        metric = float(metric)
        if self._improves(metric):
            self.best, self.best_step, self.bad_calls = metric, self.calls, 0
        else:
            self.bad_calls += 1
        self.calls += 1
        return self.bad_calls >= self.patience


def step_lr(step: int, base_lr: float, step_size: int, gamma: float = 0.1) -> float:
    """StepLR's closed form: base_lr * gamma ** (step // step_size)."""
    return base_lr * gamma ** (step // step_size)


def cosine_lr(step: int, base_lr: float, total_steps: int, min_lr: float = 0.0) -> float:
    """CosineAnnealingLR's closed form for 0 <= step <= total_steps:
    min_lr + (base_lr - min_lr) * (1 + cos(pi * step / total_steps)) / 2."""
    return min_lr + (base_lr - min_lr) * (1 + math.cos(math.pi * step / total_steps)) / 2


# ----------------------------------------------------------------------- concept answers
def concept_answers() -> dict[str, float]:
    """The numeric answers of the concept questions (see the notebook for the questions)."""
    lr, wd, w, g = 0.1, 0.1, 2.0, 0.5
    g_l2 = g + wd * w
    return {
        "var_linear": 512 * 0.05**2 * 4.0,
        "var_kaiming_relu": 256 * (2.0 / 256) * (3.0 / 2),
        "bn_parameters": 2 * 64,
        "bn_running_statistics": 2 * 64,
        "sgd_l2_in_loss": w - lr * (g + wd * w),
        "sgd_weight_decay": w - lr * (g + wd * w),
        "adam_l2": w - lr * g_l2 / (abs(g_l2) + 1e-8),
        "adamw": w * (1 - lr * wd) - lr * g / (abs(g) + 1e-8),
    }
