"""Reference implementation of chapter 05 (recurrent cells with autograd): the grading oracle.

Never shipped to students. The cells are ``torch.nn.Module`` classes whose gradients come from
autograd; none of torch's recurrent modules or fused recurrent kernels is used.

Weight layout of the course notes: gate weights are concatenated along the last dimension,

    weight_xh: (input_size, k * hidden_size)     bias_xh: (k * hidden_size,)
    weight_hh: (hidden_size, k * hidden_size)    bias_hh: (k * hidden_size,)

with k = 1 (RNN), 3 (GRU, gates r, z, n) or 4 (LSTM, gates i, f, g, o). This is the transpose
of ``torch.nn.RNNCell``'s ``weight_ih``/``weight_hh``; the gate order and the equations are
those of ``torch.nn.RNNCell``, ``GRUCell`` and ``LSTMCell``, so that setting
``weight_ih = weight_xh.T`` there reproduces these cells exactly.

Two copies of the reference, by rule: this module (the grading oracle that writes the expected
data) and the master's solution blocks (what the released solution notebook runs) are kept as
independent oracles, neither generated from the other; ``tests/test_check_coverage.py`` runs
every check's exercise on both and compares them with the kit's comparison rule.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn

LSTMState = tuple[torch.Tensor, torch.Tensor]
State = torch.Tensor | LSTMState


class _GatedCellBase(nn.Module):
    """Parameters and initialisation shared by the three cells (``gates`` = k above)."""

    gates = 1

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        width = self.gates * hidden_size
        self.weight_xh = nn.Parameter(torch.empty(input_size, width))
        self.weight_hh = nn.Parameter(torch.empty(hidden_size, width))
        self.bias_xh = nn.Parameter(torch.empty(width))
        self.bias_hh = nn.Parameter(torch.empty(width))
        self.reset_parameters()

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Every parameter ~ U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)), as in torch."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        with torch.no_grad():
            for param in (self.weight_xh, self.weight_hh, self.bias_xh, self.bias_hh):
                param.uniform_(-bound, bound, generator=generator)

    def _projections(self, x: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x: (N, input_size), h: (N, hidden_size) -> the two affine maps, each (N, k*H)."""
        return x @ self.weight_xh + self.bias_xh, h @ self.weight_hh + self.bias_hh

    def _zeros(self, x: torch.Tensor) -> torch.Tensor:
        return x.new_zeros(x.shape[0], self.hidden_size)


class RNNCell(_GatedCellBase):
    """Elman cell: h' = act(x W_xh + b_xh + h W_hh + b_hh), act = tanh or relu."""

    gates = 1

    def __init__(self, input_size: int, hidden_size: int, nonlinearity: str = "tanh"):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__(input_size, hidden_size)
        self.nonlinearity = nonlinearity

    def forward(self, x: torch.Tensor, h: torch.Tensor | None = None) -> torch.Tensor:
        """x: (N, input_size), h: (N, hidden_size) or None (zeros) -> h': (N, hidden_size)."""
        if h is None:
            h = self._zeros(x)
        from_x, from_h = self._projections(x, h)
        pre = from_x + from_h
        return torch.tanh(pre) if self.nonlinearity == "tanh" else torch.relu(pre)


class GRUCell(_GatedCellBase):
    """Gated recurrent unit, gates in the order r, z, n (as torch.nn.GRUCell):

    r = sigmoid(x W_xr + b_xr + h W_hr + b_hr)
    z = sigmoid(x W_xz + b_xz + h W_hz + b_hz)
    n = tanh(x W_xn + b_xn + r * (h W_hn + b_hn))
    h' = (1 - z) * n + z * h
    """

    gates = 3

    def forward(self, x: torch.Tensor, h: torch.Tensor | None = None) -> torch.Tensor:
        """x: (N, input_size), h: (N, hidden_size) or None (zeros) -> h': (N, hidden_size)."""
        if h is None:
            h = self._zeros(x)
        from_x, from_h = self._projections(x, h)
        x_r, x_z, x_n = from_x.chunk(3, dim=1)
        h_r, h_z, h_n = from_h.chunk(3, dim=1)
        r = torch.sigmoid(x_r + h_r)
        z = torch.sigmoid(x_z + h_z)
        n = torch.tanh(x_n + r * h_n)
        return (1 - z) * n + z * h


class LSTMCell(_GatedCellBase):
    """Long short-term memory cell, gates in the order i, f, g, o (as torch.nn.LSTMCell):

    i, f, o = sigmoid(.), g = tanh(.)   of the matching slices of x W_xh + b_xh + h W_hh + b_hh
    c' = f * c + i * g
    h' = o * tanh(c')
    """

    gates = 4

    def forward(self, x: torch.Tensor, state: LSTMState | None = None) -> LSTMState:
        """x: (N, input_size), state: (h, c) each (N, hidden_size), or None (zeros)
        -> (h', c'), each (N, hidden_size)."""
        if state is None:
            state = (self._zeros(x), self._zeros(x))
        h, c = state
        from_x, from_h = self._projections(x, h)
        i, f, g, o = (from_x + from_h).chunk(4, dim=1)
        c_next = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h_next = torch.sigmoid(o) * torch.tanh(c_next)
        return h_next, c_next


class RecurrentLayer(nn.Module):
    """Unrolls a cell over a sequence.

    forward(x, state=None):
        x: (T, N, input_size), or (N, T, input_size) when ``batch_first``.
        state: the cell's initial state (a tensor, or a tuple for an LSTM), or None.
    Returns:
        outputs: the hidden state after every step, (T, N, hidden_size) (or (N, T, hidden_size)
            when ``batch_first``); for a tuple state the first element, h.
        state: the state after the last step, as the cell returns it.
    """

    def __init__(self, cell: nn.Module, batch_first: bool = False):
        super().__init__()
        self.cell = cell
        self.batch_first = batch_first

    def forward(self, x: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        steps = x.unbind(1) if self.batch_first else x.unbind(0)
        hiddens = []
        for x_t in steps:
            state = self.cell(x_t, state)
            hiddens.append(state[0] if isinstance(state, tuple) else state)
        outputs = torch.stack(hiddens, dim=1 if self.batch_first else 0)
        assert state is not None, "a sequence has at least one time step"
        return outputs, state


def clip_grad_norm(parameters: Iterable[torch.Tensor], max_norm: float) -> torch.Tensor:
    """Scales all gradients together so that their joint L2 norm is at most ``max_norm``.

    Same semantics as ``torch.nn.utils.clip_grad_norm_``: the total norm is the L2 norm of all
    gradients concatenated; parameters whose ``.grad`` is None are skipped (and stay None);
    when ``max_norm / (total_norm + 1e-6) < 1`` every gradient is multiplied in place by that
    factor, otherwise nothing changes.

    Args:
        parameters: an iterable of tensors (may be a one-shot generator such as
            ``model.parameters()``).
        max_norm: the threshold.

    Returns:
        The total norm before clipping, a 0-dim tensor in the gradients' dtype
        (float32 0 when no parameter has a gradient).
    """
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return torch.tensor(0.0)
    total_norm = torch.sqrt(torch.stack([(g.detach() ** 2).sum() for g in grads]).sum())
    clip_coef = max_norm / (total_norm + 1e-6)
    if clip_coef < 1:
        for g in grads:
            g.detach().mul_(clip_coef)
    return total_norm
