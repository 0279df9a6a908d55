"""Bug zoo of chapter 05: mistakes students really make; each must lose exactly its items."""

from tools.zoo import Bug


def items(check, *outputs):
    return {f"{check}: {output}" for output in outputs}


CELL_GRADS = (
    "grad_x",
    "grad_h0",
    "grad_weight_xh",
    "grad_weight_hh",
    "grad_bias_xh",
    "grad_bias_hh",
)
RNN_ALL_BUT_INIT = items("RNNCell", "h", *CELL_GRADS, "without_state")
GRU_ALL_BUT_INIT = items("GRUCell", "h", *CELL_GRADS, "without_state")
LSTM_ALL_BUT_INIT = items("LSTMCell", "h", "c", *CELL_GRADS, "grad_c0", "without_state")
LAYER_GRADS = ("grad_x", "grad_state", "grad_cell_parameters")


def rnn_forward(pre_activation):
    """An RNNCell whose forward computes `pre_activation` (an expression in x, h, self)."""
    return f"""
class RNNCell(RNNCell):
    def forward(self, x, h=None):
        if h is None:
            h = x.new_zeros(x.shape[0], self.hidden_size)
        pre = {pre_activation}
        return torch.relu(pre) if self.nonlinearity == "relu" else torch.tanh(pre)
"""


def gru_forward(*body, first_slices="xr, xz, xn", second_slices="hr, hz, hn"):
    """A GRUCell whose forward splits both projections into slices and runs `body`."""
    lines = "\n".join("        " + line for line in body)
    return f"""
class GRUCell(GRUCell):
    def forward(self, x, h=None):
        if h is None:
            h = x.new_zeros(x.shape[0], self.hidden_size)
        H = self.hidden_size
        {first_slices} = (x @ self.weight_xh + self.bias_xh).chunk(3, dim=1)
        {second_slices} = (h @ self.weight_hh + self.bias_hh).chunk(3, dim=1)
        r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
{lines}
"""


def lstm_forward(*body, slices="i, f, g, o"):
    """An LSTMCell whose forward splits the pre-activations into `slices` and runs `body`."""
    lines = "\n".join("        " + line for line in body)
    return f"""
class LSTMCell(LSTMCell):
    def forward(self, x, state=None):
        if state is None:
            state = (x.new_zeros(x.shape[0], self.hidden_size), x.new_zeros(x.shape[0], self.hidden_size))
        h, c = state
        {slices} = (x @ self.weight_xh + self.bias_xh + h @ self.weight_hh + self.bias_hh).chunk(4, dim=1)
{lines}
"""


def layer_forward(hidden_of_state, returned_state="state"):
    """A RecurrentLayer that stacks `hidden_of_state` of each step and returns `returned_state`."""
    return f"""
class RecurrentLayer(RecurrentLayer):
    def forward(self, x, state=None):
        time_dim = 1 if self.batch_first else 0
        hidden, states = [], []
        for x_t in x.unbind(time_dim):
            state = self.cell(x_t, state)
            states.append(state)
            hidden.append({hidden_of_state})
        return torch.stack(hidden, dim=time_dim), {returned_state}
"""


def clip(norm, scaling, prepare="with_grad = [p for p in parameters if p.grad is not None]"):
    """A clip_grad_norm that runs `prepare`, computes `total_norm = norm`, then `scaling`."""
    lines = "\n".join("    " + line for line in scaling)
    return f"""
def clip_grad_norm(parameters, max_norm):
    {prepare}
    total_norm = {norm}
{lines}
    return total_norm
"""


SQUARES = "torch.sqrt(sum((p.grad ** 2).sum() for p in with_grad))"
BY_NORM = (
    "coef = max_norm / (total_norm + 1e-6)",
    "if coef < 1:",
    "    for p in with_grad:",
    "        p.grad.mul_(coef)",
)
BUGS = [
    # --------------------------------------------------------------------------- RNNCell
    Bug(
        "rnn ignores the relu option",
        RNN_ALL_BUT_INIT,
        """
class RNNCell(RNNCell):
    def forward(self, x, h=None):
        self.nonlinearity = "tanh"
        return super().forward(x, h)
""",
        pattern="nonlinearity",
    ),
    Bug(
        "rnn forgets the hidden bias",
        RNN_ALL_BUT_INIT,
        rnn_forward("x @ self.weight_xh + self.bias_xh + h @ self.weight_hh"),
    ),
    Bug(
        "rnn starts a missing state from ones",
        items("RNNCell", "without_state"),
        """
class RNNCell(RNNCell):
    def forward(self, x, h=None):
        if h is None:
            h = x.new_ones(x.shape[0], self.hidden_size)
        return super().forward(x, h)
""",
    ),
    Bug(
        "rnn creates the missing state in float32",
        items("RNNCell", "without_state"),
        """
class RNNCell(RNNCell):
    def forward(self, x, h=None):
        if h is None:
            h = torch.zeros(x.shape[0], self.hidden_size)
        return super().forward(x, h)
""",
    ),
    Bug(
        "rnn reads weight_hh through .data",
        items("RNNCell", "grad_weight_hh"),
        rnn_forward("x @ self.weight_xh + self.bias_xh + h @ self.weight_hh.data + self.bias_hh"),
    ),
    Bug(
        "rnn initialises with 1/sqrt(input_size)",
        items("RNNCell", "init"),
        """
class RNNCell(RNNCell):
    def reset_parameters(self, generator=None):
        limit = 1.0 / math.sqrt(self.input_size)
        for param in self.parameters():
            nn.init.uniform_(param, -limit, limit, generator=generator)
""",
    ),
    Bug(
        "rnn biases drawn from a standard normal",
        items("RNNCell", "init"),
        """
class RNNCell(RNNCell):
    def reset_parameters(self, generator=None):
        super().reset_parameters(generator)
        with torch.no_grad():
            self.bias_xh.normal_(generator=generator)
            self.bias_hh.normal_(generator=generator)
""",
    ),
    Bug(
        "gru continues from the state of its previous call when none is given",
        items("GRUCell", "without_state"),
        """
class GRUCell(GRUCell):
    def forward(self, x, h=None):
        if h is None and getattr(self, "last_h", None) is not None \\
                and self.last_h.shape[0] == x.shape[0]:
            h = self.last_h
        h = super().forward(x, h)
        self.last_h = h.detach()
        return h
""",
    ),
    Bug(
        "rnn keeps its weights as plain tensors",
        RNN_ALL_BUT_INIT | items("RNNCell", "init"),
        """
class RNNCell(RNNCell):
    def __init__(self, input_size, hidden_size, nonlinearity="tanh"):
        super().__init__(input_size, hidden_size, nonlinearity)
        weight_hh = self.weight_hh.detach().clone()
        del self.weight_hh
        self.weight_hh = weight_hh
""",
    ),
    # --------------------------------------------------------------------------- GRUCell
    Bug(
        "gru update gate interpolation reversed",
        GRU_ALL_BUT_INIT,
        gru_forward("return z * torch.tanh(xn + r * hn) + (1 - z) * h"),
    ),
    Bug(
        "gru reset gate applied before the hidden projection",
        GRU_ALL_BUT_INIT,
        gru_forward(
            "n = torch.tanh(xn + (r * h) @ self.weight_hh[:, 2 * H:] + self.bias_hh[2 * H:])",
            "return (1 - z) * n + z * h",
            second_slices="hr, hz, _",
        ),
    ),
    Bug(
        "gru reset gate leaves out the hidden bias",
        GRU_ALL_BUT_INIT,
        gru_forward(
            "n = torch.tanh(xn + r * (h @ self.weight_hh[:, 2 * H:]) + self.bias_hh[2 * H:])",
            "return (1 - z) * n + z * h",
            second_slices="hr, hz, _",
        ),
    ),
    Bug(
        "gru gate slices in the order z, r, n",
        GRU_ALL_BUT_INIT,
        gru_forward(
            "return (1 - z) * torch.tanh(xn + r * hn) + z * h",
            first_slices="xz, xr, xn",
            second_slices="hz, hr, hn",
        ),
    ),
    Bug(
        "gru weights in PyTorch's transposed layout",
        GRU_ALL_BUT_INIT | items("GRUCell", "init"),
        """
class GRUCell(GRUCell):
    def __init__(self, input_size, hidden_size):
        super().__init__(input_size, hidden_size)
        self.weight_xh = nn.Parameter(torch.empty(3 * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(3 * hidden_size, hidden_size))
        self.reset_parameters()
    def forward(self, x, h=None):
        if h is None:
            h = x.new_zeros(x.shape[0], self.hidden_size)
        xr, xz, xn = (x @ self.weight_xh.T + self.bias_xh).chunk(3, dim=1)
        hr, hz, hn = (h @ self.weight_hh.T + self.bias_hh).chunk(3, dim=1)
        r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
        return (1 - z) * torch.tanh(xn + r * hn) + z * h
""",
    ),
    Bug(
        "gru detaches the incoming state",
        items("GRUCell", "grad_h0"),
        """
class GRUCell(GRUCell):
    def forward(self, x, h=None):
        return super().forward(x, None if h is None else h.detach())
""",
    ),
    # -------------------------------------------------------------------------- LSTMCell
    Bug(
        "lstm gates in the order i, f, o, g",
        LSTM_ALL_BUT_INIT,
        lstm_forward(
            "c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)",
            "return torch.sigmoid(o) * torch.tanh(c), c",
            slices="i, f, o, g",
        ),
    ),
    Bug(
        "lstm cell state updated with a sigmoid candidate",
        LSTM_ALL_BUT_INIT,
        lstm_forward(
            "c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.sigmoid(g)",
            "return torch.sigmoid(o) * torch.tanh(c), c",
        ),
    ),
    Bug(
        "lstm hidden state without the tanh of the cell state",
        LSTM_ALL_BUT_INIT - items("LSTMCell", "c"),
        lstm_forward(
            "c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)",
            "return torch.sigmoid(o) * c, c",
        ),
    ),
    Bug(
        "lstm hidden state from the old cell state",
        LSTM_ALL_BUT_INIT - items("LSTMCell", "c"),
        lstm_forward(
            "c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)",
            "return torch.sigmoid(o) * torch.tanh(c), c_new",
        ),
    ),
    Bug(
        "lstm returns (c, h)",
        LSTM_ALL_BUT_INIT,
        """
class LSTMCell(LSTMCell):
    def forward(self, x, state=None):
        h, c = super().forward(x, state if state is None else (state[1], state[0]))
        return c, h
""",
    ),
    Bug(
        "lstm bias_hh left out of the initialisation",
        items("LSTMCell", "init"),
        """
class LSTMCell(LSTMCell):
    def reset_parameters(self, generator=None):
        limit = 1.0 / math.sqrt(self.hidden_size)
        with torch.no_grad():
            for param in (self.weight_xh, self.weight_hh, self.bias_xh):
                param.uniform_(-limit, limit, generator=generator)
            self.bias_hh.zero_()
""",
    ),
    # ---------------------------------------------------------------------- RecurrentLayer
    Bug(
        "layer returns the first state instead of the last",
        items("RecurrentLayer", "last_state", *LAYER_GRADS, "without_state"),
        layer_forward(
            "state[0] if isinstance(state, tuple) else state", returned_state="states[0]"
        ),
        pattern="T",
    ),
    Bug(
        "layer ignores batch_first",
        items("RecurrentLayer", "outputs", "last_state", *LAYER_GRADS, "without_state"),
        """
class RecurrentLayer(RecurrentLayer):
    def forward(self, x, state=None):
        hidden = []
        for x_t in x:
            state = self.cell(x_t, state)
            hidden.append(state[0] if isinstance(state, tuple) else state)
        return torch.stack(hidden), state
""",
        pattern="batch_first",
    ),
    Bug(
        "layer detaches the state between steps",
        items("RecurrentLayer", *LAYER_GRADS),
        """
class RecurrentLayer(RecurrentLayer):
    def forward(self, x, state=None):
        time_dim = 1 if self.batch_first else 0
        hidden = []
        steps = x.unbind(time_dim)
        for t, x_t in enumerate(steps):
            state = self.cell(x_t, state)
            hidden.append(state[0] if isinstance(state, tuple) else state)
            if t < len(steps) - 1:
                state = tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()
        return torch.stack(hidden, dim=time_dim), state
""",
        pattern="T",
    ),
    Bug(
        "layer stacks the outputs time first even with batch_first",
        items("RecurrentLayer", "outputs", *LAYER_GRADS, "without_state"),
        """
class RecurrentLayer(RecurrentLayer):
    def forward(self, x, state=None):
        outputs, state = super().forward(x, state)
        return (outputs.transpose(0, 1) if self.batch_first else outputs), state
""",
        pattern="batch_first",
    ),
    Bug(
        "layer stacks the cell state instead of h",
        items("RecurrentLayer", "outputs", *LAYER_GRADS, "without_state"),
        layer_forward("state[-1] if isinstance(state, tuple) else state"),
        pattern="state",
    ),
    # ---------------------------------------------------------------------- clip_grad_norm
    Bug(
        "clip by value instead of by norm",
        items("clip_grad_norm", "grads"),
        clip(SQUARES, ("for p in with_grad:", "    p.grad.clamp_(-max_norm, max_norm)")),
        pattern="scale",
    ),
    Bug(
        "clip rescales even below the threshold",
        items("clip_grad_norm", "grads"),
        clip(SQUARES, ("for p in with_grad:", "    p.grad.mul_(max_norm / (total_norm + 1e-6))")),
        pattern="scale",
    ),
    Bug(
        "clip adds up the per-parameter norms",
        items("clip_grad_norm", "total_norm", "grads"),
        clip("sum(p.grad.norm() for p in with_grad)", BY_NORM),
    ),
    Bug(
        "clip iterates the parameters twice",
        items("clip_grad_norm", "grads"),
        clip(
            "torch.sqrt(sum((p.grad ** 2).sum() for p in parameters if p.grad is not None))",
            (
                "coef = max_norm / (total_norm + 1e-6)",
                "if coef < 1:",
                "    for p in parameters:",
                "        if p.grad is not None:",
                "            p.grad.mul_(coef)",
            ),
            prepare="pass",
        ),
    ),
    Bug(
        "clip crashes on parameters without gradient",
        items("clip_grad_norm", "total_norm", "grads", "grad_none"),
        clip(SQUARES, BY_NORM, prepare="with_grad = list(parameters)"),
    ),
    Bug(
        "clip returns the norm after clipping",
        items("clip_grad_norm", "total_norm"),
        """
_clip_grad_norm = clip_grad_norm
def clip_grad_norm(parameters, max_norm):
    parameters = [p for p in parameters if p.grad is not None]
    _clip_grad_norm(parameters, max_norm)
    return torch.sqrt(sum((p.grad ** 2).sum() for p in parameters))
""",
        pattern="scale",
    ),
    Bug(
        "clip gives missing gradients zeros",
        items("clip_grad_norm", "grad_none"),
        """
_clip_grad_norm = clip_grad_norm
def clip_grad_norm(parameters, max_norm):
    parameters = list(parameters)
    for p in parameters:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    return _clip_grad_norm(parameters, max_norm)
""",
    ),
]
