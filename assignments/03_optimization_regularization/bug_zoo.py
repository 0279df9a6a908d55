"""Bug zoo of chapter 03: mistakes students really make; each must lose exactly its items.

Several are invisible at default hyper-parameters (Adam's eps without bias correction, AdamW's
decay after the update, a step count shared by all parameters): the checks' large eps, tiny
gradients, large lr * weight_decay and parameters without a gradient on some steps expose them.
"""

from tools.zoo import Bug

ADAM_STEP = """
    def step(self):
        beta1, beta2 = self.betas
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            g = p.grad
            state = self.state.setdefault(i, {{"t": 0, "m": torch.zeros_like(p), "v": torch.zeros_like(p)}})
            {decay}
            state["t"] += 1
            t = state["t"]
            state["m"] = beta1 * state["m"] + (1 - beta1) * g
            state["v"] = beta2 * state["v"] + (1 - beta2) * g * g
            {update}
            {after}
"""
CORRECTED = (
    "p.sub_(self.lr * (state['m'] / (1 - beta1 ** t)) / "
    "((state['v'] / (1 - beta2 ** t)).sqrt() + self.eps))"
)


def adam_variant(
    class_name: str, decay: str = "", update: str = CORRECTED, after: str = "pass"
) -> str:
    return f"class {class_name}({class_name}):\n" + ADAM_STEP.format(
        decay=decay or "pass", update=update, after=after
    )


L2 = "g = g + self.weight_decay * p"
DECOUPLED = "p.mul_(1 - self.lr * self.weight_decay)"

SGD_STEP = """
class SGD(SGD):
    def step(self):
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            g = p.grad
            {before}
            if self.momentum != 0:
                state = self.state.setdefault(i, {{}})
                {buffer}
                state["momentum_buffer"] = buf
                {direction}
            {update}
"""
SGD_PARTS = {
    "before": "if self.weight_decay != 0:\n                g = g + self.weight_decay * p",
    "buffer": (
        "buf = g.clone() if 'momentum_buffer' not in state else "
        "self.momentum * state['momentum_buffer'] + (1 - self.dampening) * g"
    ),
    "direction": "g = g + self.momentum * buf if self.nesterov else buf",
    "update": "p.sub_(self.lr * g)",
}


def sgd_variant(**parts: str) -> str:
    return SGD_STEP.format(**{**SGD_PARTS, **parts})


INIT_ITEMS = {
    f"{name}: distribution"
    for name in ("xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_")
}
KAIMING_ITEMS = {"kaiming_uniform_: distribution", "kaiming_normal_: distribution"}

BUGS = [
    # ------------------------------------------------------------------------- optimizers
    Bug(
        "SGD nesterov steps along the buffer alone",
        {"SGD: params"},
        sgd_variant(direction="g = buf"),
    ),
    Bug(
        "SGD weight decay added after the momentum",
        {"SGD: params"},
        sgd_variant(
            before="pass",
            direction="g = (g + self.momentum * buf if self.nesterov else buf) + "
            "self.weight_decay * p",
            update="p.sub_(self.lr * (g if self.momentum != 0 else g + self.weight_decay * p))",
        ),
    ),
    Bug(
        "SGD momentum buffer starts at zeros (dampening on the first step)",
        {"SGD: params"},
        sgd_variant(
            buffer="buf = self.momentum * state.get('momentum_buffer', "
            "torch.zeros_like(p)) + (1 - self.dampening) * g"
        ),
    ),
    Bug(
        "SGD rebinds the parameter instead of updating it in place",
        {"SGD: params", "SGD: zero_grad"},
        sgd_variant(update="self.params[i] = p - self.lr * g"),
    ),
    Bug(
        "zero_grad leaves the gradients in place",
        {"SGD: zero_grad", "RMSprop: zero_grad", "Adam: zero_grad", "AdamW: zero_grad"},
        """
def _keep_gradients(self):
    pass
Optimizer.zero_grad = _keep_gradients
""",
    ),
    Bug(
        "RMSprop eps inside the square root",
        {"RMSprop: params"},
        """
class RMSprop(RMSprop):
    def step(self):
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            g = p.grad + self.weight_decay * p
            state = self.state.setdefault(i, {"square_avg": torch.zeros_like(p)})
            state["square_avg"] = self.alpha * state["square_avg"] + (1 - self.alpha) * g * g
            p.sub_(self.lr * g / (state["square_avg"] + self.eps).sqrt())
""",
    ),
    Bug(
        "RMSprop with alpha and 1 - alpha swapped",
        {"RMSprop: params"},
        """
class RMSprop(RMSprop):
    def step(self):
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            g = p.grad + self.weight_decay * p
            state = self.state.setdefault(i, {"square_avg": torch.zeros_like(p)})
            state["square_avg"] = (1 - self.alpha) * state["square_avg"] + self.alpha * g * g
            p.sub_(self.lr * g / (state["square_avg"].sqrt() + self.eps))
""",
    ),
    Bug(
        "RMSprop weight decay applied after the scaled step",
        {"RMSprop: params"},
        """
class RMSprop(RMSprop):
    def step(self):
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            g = p.grad
            state = self.state.setdefault(i, {"square_avg": torch.zeros_like(p)})
            state["square_avg"] = self.alpha * state["square_avg"] + (1 - self.alpha) * g * g
            p.sub_(self.lr * (g / (state["square_avg"].sqrt() + self.eps) + self.weight_decay * p))
""",
    ),
    Bug(
        "Adam without bias correction",
        {"Adam: params"},
        adam_variant(
            "Adam", decay=L2, update="p.sub_(self.lr * state['m'] / (state['v'].sqrt() + self.eps))"
        ),
    ),
    Bug(
        "Adam bias correction with one step count shared by all parameters",
        {"Adam: params"},
        """
class Adam(Adam):
    def step(self):
        beta1, beta2 = self.betas
        self.t = getattr(self, "t", 0) + 1
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            g = p.grad + self.weight_decay * p
            state = self.state.setdefault(i, {"m": torch.zeros_like(p), "v": torch.zeros_like(p)})
            state["m"] = beta1 * state["m"] + (1 - beta1) * g
            state["v"] = beta2 * state["v"] + (1 - beta2) * g * g
            m_hat = state["m"] / (1 - beta1 ** self.t)
            v_hat = state["v"] / (1 - beta2 ** self.t)
            p.sub_(self.lr * m_hat / (v_hat.sqrt() + self.eps))
""",
    ),
    Bug(
        "Adam in the paper's efficient form (eps not bias-corrected)",
        {"Adam: params"},
        adam_variant(
            "Adam",
            decay=L2,
            update="p.sub_(self.lr * math.sqrt(1 - beta2 ** t) / (1 - beta1 ** t) * "
            "state['m'] / (state['v'].sqrt() + self.eps))",
        ),
    ),
    Bug(
        "AdamW applies the decay through the gradient (Adam's L2)",
        {"AdamW: params"},
        adam_variant("AdamW", decay=L2),
    ),
    Bug(
        "AdamW applies the decay after the update",
        {"AdamW: params"},
        adam_variant("AdamW", after=DECOUPLED),
    ),
    Bug(
        "AdamW decays without the learning rate",
        {"AdamW: params"},
        adam_variant("AdamW", decay="p.mul_(1 - self.weight_decay)"),
    ),
    # ----------------------------------------------------------------------- initializers
    Bug(
        "convolution fans ignore the kernel size",
        {"calculate_fans: fans"} | INIT_ITEMS,
        """
def calculate_fans(tensor):
    return tensor.shape[1], tensor.shape[0]
""",
    ),
    Bug(
        "fan_in and fan_out swapped",
        {"calculate_fans: fans"} | KAIMING_ITEMS,
        """
def calculate_fans(tensor):
    receptive = math.prod(tensor.shape[2:])
    return tensor.shape[0] * receptive, tensor.shape[1] * receptive
""",
    ),
    Bug(
        "receptive field from the last dimension only",
        {"calculate_fans: fans"} | INIT_ITEMS,
        """
def calculate_fans(tensor):
    receptive = tensor.shape[-1] if tensor.ndim > 2 else 1
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive
""",
    ),
    Bug(
        "Xavier with fan_in only",
        {"xavier_uniform_: distribution", "xavier_normal_: distribution"},
        """
def xavier_uniform_(tensor, gain=1.0, generator=None):
    fan_in, _ = calculate_fans(tensor)
    bound = gain * math.sqrt(3.0 / fan_in)
    return tensor.uniform_(-bound, bound, generator=generator)

def xavier_normal_(tensor, gain=1.0, generator=None):
    fan_in, _ = calculate_fans(tensor)
    return tensor.normal_(0.0, gain / math.sqrt(fan_in), generator=generator)
""",
    ),
    Bug(
        "Kaiming without the ReLU gain",
        KAIMING_ITEMS,
        """
GAINS = {"linear": 1.0, "sigmoid": 1.0, "tanh": 5.0 / 3.0, "relu": 1.0}
""",
    ),
    Bug(
        "uniform bound equal to the std (sqrt(3) missing)",
        {"xavier_uniform_: distribution", "kaiming_uniform_: distribution"},
        """
def xavier_uniform_(tensor, gain=1.0, generator=None):
    fan_in, fan_out = calculate_fans(tensor)
    bound = gain * math.sqrt(2.0 / (fan_in + fan_out))
    return tensor.uniform_(-bound, bound, generator=generator)

def kaiming_uniform_(tensor, nonlinearity="relu", generator=None):
    fan_in, _ = calculate_fans(tensor)
    bound = GAINS[nonlinearity] / math.sqrt(fan_in)
    return tensor.uniform_(-bound, bound, generator=generator)
""",
    ),
    Bug(
        "initializers ignore the generator",
        {
            f"{name}: generator"
            for name in ("xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_")
        },
        """
_initializers = (xavier_uniform_, xavier_normal_, kaiming_uniform_, kaiming_normal_)

def xavier_uniform_(tensor, gain=1.0, generator=None):
    return _initializers[0](tensor, gain)

def xavier_normal_(tensor, gain=1.0, generator=None):
    return _initializers[1](tensor, gain)

def kaiming_uniform_(tensor, nonlinearity="relu", generator=None):
    return _initializers[2](tensor, nonlinearity)

def kaiming_normal_(tensor, nonlinearity="relu", generator=None):
    return _initializers[3](tensor, nonlinearity)
""",
    ),
    # ---------------------------------------------------------------------------- dropout
    Bug(
        "dropout scales at eval time",
        {"Dropout: eval"},
        """
class Dropout(Dropout):
    def forward(self, x, generator=None):
        if not self.training:
            self.scale = None
            return x * (1 - self.p)
        return super().forward(x, generator)
""",
        pattern="p",
    ),
    Bug(
        "dropout does not scale at train time",
        {
            "Dropout: train_forward",
            "Dropout: backward",
            "Dropout: train_after_eval",
            "Dropout: generator",
        },
        """
class Dropout(Dropout):
    def forward(self, x, generator=None):
        y = super().forward(x, generator)
        if self.scale is not None:
            self.scale = self.scale * (1 - self.p)
            y = y * (1 - self.p)
        return y
""",
        pattern="p",
    ),
    Bug(
        "dropout uses p as the keep probability",
        {"Dropout: train_forward"},
        """
class Dropout(Dropout):
    def forward(self, x, generator=None):
        if not self.training:
            self.scale = None
            return x.clone()
        keep = torch.rand(x.shape, generator=generator, dtype=x.dtype) < self.p
        self.scale = keep.to(x.dtype) / (1.0 - self.p)
        return x * self.scale
""",
    ),
    Bug(
        "dropout backward draws a new mask",
        {"Dropout: backward"},
        """
class Dropout(Dropout):
    def backward(self, dupstream):
        if self.scale is None:
            return dupstream.clone()
        keep = torch.rand(dupstream.shape, dtype=dupstream.dtype) >= self.p
        return dupstream * keep / (1.0 - self.p)
""",
        pattern="p",
    ),
    # ------------------------------------------------------------------------- batch norm
    Bug(
        "batch-norm running variance biased",
        {"BatchNorm1d: running_var", "BatchNorm1d: y_eval"},
        """
class BatchNorm1d(BatchNorm1d):
    def forward(self, x):
        if self.training:
            before = self.running_var
            y = super().forward(x)
            var = ((x - x.mean(0)) ** 2).mean(0)
            self.running_var = (1 - self.momentum) * before + self.momentum * var
            return y
        return super().forward(x)
""",
    ),
    Bug(
        "batch-norm backward missing the mean terms",
        {"BatchNorm1d: dx"},
        """
class BatchNorm1d(BatchNorm1d):
    def backward(self, dupstream):
        super().backward(dupstream)
        x_hat, inv_std = self.cache
        return self.weight * inv_std * dupstream
""",
    ),
    Bug(
        "batch-norm eval mode uses the batch statistics",
        {"BatchNorm1d: y_eval"},
        """
class BatchNorm1d(BatchNorm1d):
    def forward(self, x):
        if not self.training:
            mean = x.mean(0)
            var = ((x - mean) ** 2).mean(0)
            return self.weight * (x - mean) / torch.sqrt(var + self.eps) + self.bias
        return super().forward(x)
""",
    ),
    Bug(
        "batch-norm momentum weights the old average",
        {"BatchNorm1d: running_mean", "BatchNorm1d: running_var", "BatchNorm1d: y_eval"},
        """
class BatchNorm1d(BatchNorm1d):
    def forward(self, x):
        if self.training:
            n = x.shape[0]
            mean = x.mean(0)
            var = ((x - mean) ** 2).mean(0)
            old_mean, old_var = self.running_mean, self.running_var
            y = super().forward(x)
            m = self.momentum
            self.running_mean = m * old_mean + (1 - m) * mean
            self.running_var = m * old_var + (1 - m) * var * n / (n - 1)
            return y
        return super().forward(x)
""",
        pattern=None,
    ),
    # ------------------------------------------------------------------------- layer norm
    Bug(
        "layer-norm normalizes over the batch",
        {"LayerNorm: y", "LayerNorm: dx", "LayerNorm: grad_weight"},
        """
class LayerNorm(LayerNorm):
    def forward(self, x):
        mean = x.mean(dim=0, keepdim=True)
        var = ((x - mean) ** 2).mean(dim=0, keepdim=True)
        inv_std = 1.0 / torch.sqrt(var + self.eps)
        x_hat = (x - mean) * inv_std
        self.cache = (x_hat, inv_std)
        return self.weight * x_hat + self.bias
""",
    ),
    Bug(
        "layer-norm over the last dimension only",
        {"LayerNorm: y", "LayerNorm: dx", "LayerNorm: grad_weight"},
        """
class LayerNorm(LayerNorm):
    def forward(self, x):
        mean = x.mean(dim=-1, keepdim=True)
        var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)
        inv_std = 1.0 / torch.sqrt(var + self.eps)
        x_hat = (x - mean) * inv_std
        self.cache = (x_hat, inv_std)
        return self.weight * x_hat + self.bias
""",
    ),
    Bug(
        "layer-norm parameter gradients summed over the first dimension only",
        {"LayerNorm: grad_weight", "LayerNorm: grad_bias"},
        """
class LayerNorm(LayerNorm):
    def backward(self, dupstream):
        dx = super().backward(dupstream)
        x_hat, _ = self.cache
        self.grad_weight = (dupstream * x_hat).sum(dim=0)
        self.grad_bias = dupstream.sum(dim=0)
        return dx
""",
    ),
    # ----------------------------------------------------------------------- penalties
    Bug(
        "l2 penalty without the factor 0.5",
        {"penalties: l2_value", "penalties: l2_grads"},
        """
def l2_penalty(params):
    return sum((p * p).sum() for p in params), [2 * p for p in params]
""",
    ),
    Bug(
        "l2 penalty averages instead of summing",
        {"penalties: l2_value"},
        """
_l2_penalty = l2_penalty
def l2_penalty(params):
    value, grads = _l2_penalty(params)
    return 0.5 * sum((p * p).mean() for p in params), grads
""",
    ),
    Bug(
        "l1 gradient is 1 at exactly 0",
        {"penalties: l1_grads"},
        """
_l1_penalty = l1_penalty
def l1_penalty(params):
    value, _ = _l1_penalty(params)
    return value, [torch.where(p >= 0, 1.0, -1.0).to(p.dtype) for p in params]
""",
    ),
    # -------------------------------------------------------------------- early stopping
    Bug(
        "early stopping resets patience on a tie",
        {"EarlyStopping: stop", "EarlyStopping: best", "EarlyStopping: best_step"},
        """
class EarlyStopping(EarlyStopping):
    def step(self, metric):
        metric = float(metric)
        if self.best is None:
            improved = True
        elif self.mode == "max":
            improved = metric >= self.best + self.min_delta
        else:
            improved = metric <= self.best - self.min_delta
        if improved:
            self.best, self.best_step, self.bad_calls = metric, self.calls, 0
        else:
            self.bad_calls += 1
        self.calls += 1
        return self.bad_calls >= self.patience
""",
        pattern=None,
    ),
    Bug(
        "early stopping ignores min_delta",
        {"EarlyStopping: stop", "EarlyStopping: best", "EarlyStopping: best_step"},
        """
class EarlyStopping(EarlyStopping):
    def __init__(self, patience, min_delta=0.0, mode="max"):
        super().__init__(patience, 0.0, mode)
""",
        pattern="min_delta",
    ),
    Bug(
        "early stopping always maximizes",
        {"EarlyStopping: stop", "EarlyStopping: best", "EarlyStopping: best_step"},
        """
class EarlyStopping(EarlyStopping):
    def __init__(self, patience, min_delta=0.0, mode="max"):
        super().__init__(patience, min_delta, "max")
""",
        pattern="mode",
    ),
    # ------------------------------------------------------------------------ schedules
    Bug(
        "step_lr decays one step early",
        {"schedules: step_lr"},
        """
def step_lr(step, base_lr, step_size, gamma=0.1):
    return base_lr * gamma ** ((step + 1) // step_size)
""",
        pattern=None,
    ),
    Bug(
        "cosine_lr ignores min_lr",
        {"schedules: cosine_lr"},
        """
def cosine_lr(step, base_lr, total_steps, min_lr=0.0):
    return base_lr * (1 + math.cos(math.pi * step / total_steps)) / 2
""",
    ),
    Bug(
        "cosine_lr without the (1 + cos) / 2",
        {"schedules: cosine_lr"},
        """
def cosine_lr(step, base_lr, total_steps, min_lr=0.0):
    return min_lr + (base_lr - min_lr) * math.cos(math.pi * step / total_steps)
""",
    ),
    # ------------------------------------------------------------------------- concepts
    Bug(
        "concepts: forgets that the ReLU halves the second moment",
        {"concepts: var_kaiming_relu"},
        """
_concept_answers = concept_answers
def concept_answers():
    return {**_concept_answers(), "var_kaiming_relu": 256 * (2.0 / 256) * 3.0}
""",
    ),
    Bug(
        "concepts: counts the running statistics as parameters",
        {"concepts: bn_parameters"},
        """
_concept_answers = concept_answers
def concept_answers():
    return {**_concept_answers(), "bn_parameters": 4 * 64}
""",
    ),
    Bug(
        "concepts: Adam's L2 step computed like AdamW's",
        {"concepts: adam_l2"},
        """
_concept_answers = concept_answers
def concept_answers():
    return {**_concept_answers(), "adam_l2": 2.0 * (1 - 0.01) - 0.1}
""",
    ),
]
