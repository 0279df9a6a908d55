"""Bug zoo of chapter 01: mistakes students really make; each must lose exactly its items."""

from tools.zoo import Bug

BUGS = [
    # ---------------------------------------------------------------- Linear
    Bug(
        "linear forward uses the transposed weight",
        {"Linear: y"},
        """
class Linear(Linear):
    def forward(self, x):
        self.cache = x
        return x @ self.weight.T + self.bias
""",
    ),
    Bug(
        "linear forward forgets the bias",
        {"Linear: y"},
        """
class Linear(Linear):
    def forward(self, x):
        self.cache = x
        return x @ self.weight
""",
    ),
    Bug(
        "linear backward forgets to sum the bias gradient over the batch",
        {"Linear: grad_bias"},
        """
class Linear(Linear):
    def backward(self, dupstream):
        dx = super().backward(dupstream)
        self.grad_bias = dupstream[0]
        return dx
""",
    ),
    Bug(
        "linear backward averages instead of summing over the batch",
        {"Linear: grad_weight", "Linear: grad_bias"},
        """
class Linear(Linear):
    def backward(self, dupstream):
        dx = super().backward(dupstream)
        self.grad_weight = self.grad_weight / dupstream.shape[0]
        self.grad_bias = self.grad_bias / dupstream.shape[0]
        return dx
""",
    ),
    Bug(
        "linear backward multiplies by the weight instead of its transpose (raises when in != out)",
        {"Linear: dx", "Linear: grad_weight", "Linear: grad_bias"},
        """
class Linear(Linear):
    def backward(self, dupstream):
        super().backward(dupstream)
        return dupstream @ self.weight
""",
    ),
    Bug(
        "linear grad_weight with the operands swapped",
        {"Linear: grad_weight"},
        """
class Linear(Linear):
    def backward(self, dupstream):
        dx = super().backward(dupstream)
        self.grad_weight = dupstream.T @ self.cache
        return dx
""",
    ),
    Bug(
        "linear changes its input in place",
        {"Linear: y", "Linear: dx", "Linear: grad_weight", "Linear: grad_bias"},
        """
class Linear(Linear):
    def forward(self, x):
        y = super().forward(x.clone())
        x[..., 0] += 1.0
        return y
""",
    ),
    Bug(
        "linear gradients accumulate across calls",
        {"Linear: grad_weight", "Linear: grad_bias"},
        """
class Linear(Linear):
    def backward(self, dupstream):
        self.grad_weight = self.grad_weight + self.cache.T @ dupstream
        self.grad_bias = self.grad_bias + dupstream.sum(dim=0)
        return dupstream @ self.weight.T
""",
    ),
    Bug(
        "linear init_params ignores std",
        {"Linear.init_params: weight"},
        """
class Linear(Linear):
    def init_params(self, std=1.0, generator=None):
        self.weight = torch.randn(self.in_features, self.out_features, generator=generator)
        self.bias = torch.rand(self.out_features, generator=generator)
""",
    ),
    Bug(
        "linear init_params draws a uniform weight",
        {"Linear.init_params: weight"},
        """
class Linear(Linear):
    def init_params(self, std=1.0, generator=None):
        u = torch.rand(self.in_features, self.out_features, generator=generator)
        self.weight = std * 3 ** 0.5 * (2 * u - 1)
        self.bias = torch.rand(self.out_features, generator=generator)
""",
    ),
    Bug(
        "linear init_params draws a Gaussian bias",
        {"Linear.init_params: bias"},
        """
class Linear(Linear):
    def init_params(self, std=1.0, generator=None):
        self.weight = std * torch.randn(self.in_features, self.out_features, generator=generator)
        self.bias = torch.randn(self.out_features, generator=generator)
""",
    ),
    Bug(
        "linear init_params scales the bias by std too",
        {"Linear.init_params: bias"},
        """
class Linear(Linear):
    def init_params(self, std=1.0, generator=None):
        self.weight = std * torch.randn(self.in_features, self.out_features, generator=generator)
        self.bias = std * torch.rand(self.out_features, generator=generator)
""",
    ),
    # ----------------------------------------------------------- activations
    Bug(
        "relu backward passes gradient where input is negative",
        {"ReLU: dx"},
        """
class ReLU(ReLU):
    def backward(self, dupstream):
        return dupstream * (self.cache >= -1).to(dupstream.dtype)
""",
    ),
    Bug(
        "relu backward gates on the upstream gradient instead of the input",
        {"ReLU: dx"},
        """
class ReLU(ReLU):
    def backward(self, dupstream):
        return dupstream.clamp(min=0)
""",
    ),
    Bug(
        "relu backward zeroes its upstream gradient in place",
        {"ReLU: dx"},
        """
class ReLU(ReLU):
    def backward(self, dupstream):
        dupstream[self.cache <= 0] = 0
        return dupstream
""",
    ),
    Bug(
        "leaky relu ignores the slope in backward",
        {"LeakyReLU(0.1): dx"},
        """
class LeakyReLU(LeakyReLU):
    def backward(self, dupstream):
        return dupstream * (self.cache > 0).to(dupstream.dtype)
""",
    ),
    Bug(
        "leaky relu uses a fixed slope",
        {"LeakyReLU(0.1): y", "LeakyReLU(0.1): dx"},
        """
class LeakyReLU(LeakyReLU):
    def forward(self, x):
        self.cache = x
        return torch.where(x > 0, x, 0.01 * x)
    def backward(self, dupstream):
        return torch.where(self.cache > 0, dupstream, 0.01 * dupstream)
""",
    ),
    Bug(
        "leaky relu multiplies positives by the slope",
        {"LeakyReLU(0.1): y", "LeakyReLU(0.1): dx"},
        """
class LeakyReLU(LeakyReLU):
    def forward(self, x):
        self.cache = x
        return torch.where(x > 0, self.negative_slope * x, x)
    def backward(self, dupstream):
        return torch.where(self.cache > 0, self.negative_slope * dupstream, dupstream)
""",
    ),
    Bug(
        "sigmoid derivative from the input instead of the output",
        {"Sigmoid: dx"},
        """
class Sigmoid(Sigmoid):
    def forward(self, x):
        out = super().forward(x)
        self.x = x
        return out
    def backward(self, dupstream):
        return dupstream * self.x * (1 - self.x)
""",
    ),
    Bug(
        "sigmoid overflows for large negative inputs",
        {"Sigmoid: y", "Sigmoid: dx"},
        """
class Sigmoid(Sigmoid):
    def forward(self, x):
        self.cache = torch.exp(x) / (torch.exp(x) + 1)
        return self.cache
""",
        pattern="scale",
    ),
    Bug(
        "sigmoid derivative missing the (1 - s) factor",
        {"Sigmoid: dx"},
        """
class Sigmoid(Sigmoid):
    def backward(self, dupstream):
        return dupstream * self.cache
""",
    ),
    Bug(
        "tanh derivative uses 1 - x**2",
        {"Tanh: dx"},
        """
class Tanh(Tanh):
    def forward(self, x):
        self.x = x
        return super().forward(x)
    def backward(self, dupstream):
        return dupstream * (1 - self.x ** 2)
""",
    ),
    Bug(
        "tanh derivative forgets the square",
        {"Tanh: dx"},
        """
class Tanh(Tanh):
    def backward(self, dupstream):
        return dupstream * (1 - self.cache)
""",
    ),
    Bug(
        "tanh computed in float32",
        {"Tanh: y", "Tanh: dx"},
        """
class Tanh(Tanh):
    def forward(self, x):
        self.cache = torch.tanh(x.float())
        return self.cache
""",
    ),
    # ---------------------------------------------------------------- losses
    Bug(
        "mse averages over the batch only",
        {"MSELoss: loss", "MSELoss: dpred"},
        """
class MSELoss(MSELoss):
    def forward(self, pred, target):
        self.cache = (pred, target)
        return ((pred - target) ** 2).sum() / pred.shape[0]
    def backward(self):
        pred, target = self.cache
        return 2 * (pred - target) / pred.shape[0]
""",
    ),
    Bug(
        "mse gradient missing the factor 2",
        {"MSELoss: dpred"},
        """
class MSELoss(MSELoss):
    def backward(self):
        return super().backward() / 2
""",
    ),
    Bug(
        "mse gradient with the wrong sign",
        {"MSELoss: dpred"},
        """
class MSELoss(MSELoss):
    def backward(self):
        return -super().backward()
""",
    ),
    Bug(
        "cross-entropy softmax over the batch axis",
        {"CrossEntropyLoss: loss", "CrossEntropyLoss: dlogits"},
        """
class CrossEntropyLoss(CrossEntropyLoss):
    def forward(self, logits, target):
        shifted = logits - logits.max(dim=0, keepdim=True).values
        log_probs = shifted - torch.log(torch.exp(shifted).sum(dim=0, keepdim=True))
        self.cache = (log_probs, target)
        return -log_probs[torch.arange(logits.shape[0]), target].mean()
""",
    ),
    Bug(
        "cross-entropy without the max shift overflows",
        {"CrossEntropyLoss: loss", "CrossEntropyLoss: dlogits"},
        """
class CrossEntropyLoss(CrossEntropyLoss):
    def forward(self, logits, target):
        log_probs = logits - torch.log(torch.exp(logits).sum(dim=1, keepdim=True))
        self.cache = (log_probs, target)
        return -log_probs[torch.arange(logits.shape[0]), target].mean()
""",
        pattern="scale",
    ),
    Bug(
        "cross-entropy sums over the batch instead of averaging",
        {"CrossEntropyLoss: loss", "CrossEntropyLoss: dlogits"},
        """
class CrossEntropyLoss(CrossEntropyLoss):
    def forward(self, logits, target):
        return super().forward(logits, target) * logits.shape[0]
    def backward(self):
        return super().backward() * self.cache[0].shape[0]
""",
    ),
    Bug(
        "cross-entropy gradient forgets the one-hot term",
        {"CrossEntropyLoss: dlogits"},
        """
class CrossEntropyLoss(CrossEntropyLoss):
    def backward(self):
        log_probs, target = self.cache
        return torch.exp(log_probs) / log_probs.shape[0]
""",
    ),
    # ------------------------------------------------------------------- Net
    Bug(
        "net backward visits layers in forward order",
        {"Net: dx"},
        """
class Net(Net):
    def backward(self, dupstream):
        for layer in self.layers:
            dupstream = layer.backward(dupstream)
        return dupstream
""",
    ),
    Bug(
        "net optimizer step goes uphill",
        {"Net: params_after_step"},
        """
class Net(Net):
    def optimizer_step(self, lr):
        super().optimizer_step(-lr)
""",
    ),
    Bug(
        "net optimizer step skips the bias",
        {"Net: params_after_step"},
        """
class Net(Net):
    def optimizer_step(self, lr):
        for layer in self.layers:
            if hasattr(layer, "weight"):
                layer.weight = layer.weight - lr * layer.grad_weight
""",
    ),
    Bug(
        "net reset ignores std",
        {"Net: reset_params_std"},
        """
class Net(Net):
    def reset_params(self, std=1.0, generator=None):
        super().reset_params(1.0, generator)
""",
    ),
    Bug(
        "net reset_params tests for the student's own Linear with isinstance",
        {"Net: reset_params_std"},
        """
class Net(Net):
    def reset_params(self, std=1.0, generator=None):
        for layer in self.layers:
            if isinstance(layer, Linear):
                layer.init_params(std, generator=generator)
""",
    ),
    Bug(
        "net forward returns the input of the last layer",
        {"Net: y"},
        """
class Net(Net):
    def forward(self, x):
        for layer in self.layers[:-1]:
            x = layer.forward(x)
        self.layers[-1].forward(x)
        return x
""",
    ),
]
