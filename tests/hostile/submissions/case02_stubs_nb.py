# A student notebook handed in untouched: every graded method still raises NotImplementedError.
# %%
import torch
import otter

grader = otter.Notebook("01_mlp_backprop.ipynb")

# %%
class Linear:
    def __init__(self, in_features, out_features):
        self.in_features, self.out_features = in_features, out_features
        self.init_params()

    def init_params(self, std=1.0, generator=None):
        raise NotImplementedError("Linear.init_params")

    def forward(self, x):
        raise NotImplementedError("Linear.forward")

    def backward(self, dupstream):
        raise NotImplementedError("Linear.backward")

# %%
grader.check("q1")

# %%
class ReLU:
    def forward(self, x):
        raise NotImplementedError("ReLU.forward")

    def backward(self, dupstream):
        raise NotImplementedError("ReLU.backward")


class LeakyReLU:
    def __init__(self, negative_slope=0.01):
        self.negative_slope = negative_slope

    def forward(self, x):
        raise NotImplementedError("LeakyReLU.forward")

    def backward(self, dupstream):
        raise NotImplementedError("LeakyReLU.backward")


class Sigmoid:
    def forward(self, x):
        raise NotImplementedError("Sigmoid.forward")

    def backward(self, dupstream):
        raise NotImplementedError("Sigmoid.backward")


class Tanh:
    def forward(self, x):
        raise NotImplementedError("Tanh.forward")

    def backward(self, dupstream):
        raise NotImplementedError("Tanh.backward")

# %%
class MSELoss:
    def forward(self, pred, target):
        raise NotImplementedError("MSELoss.forward")

    def backward(self):
        raise NotImplementedError("MSELoss.backward")


class CrossEntropyLoss:
    def forward(self, logits, target):
        raise NotImplementedError("CrossEntropyLoss.forward")

    def backward(self):
        raise NotImplementedError("CrossEntropyLoss.backward")

# %%
class Net:
    def __init__(self, layers):
        raise NotImplementedError("Net.__init__")

# %%
grader.export(pdf=False)
