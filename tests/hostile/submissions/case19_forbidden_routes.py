# Library versions of the layers, reached by every route: directly, through an alias, through
# getattr with a computed name, through torch.ops.aten, with the run-time trap switched off,
# through torch's private bindings and through operator.attrgetter. Net is left honest.
import operator

import torch.nn.functional as F
from torch.nn.functional import relu as rectify


class Linear(Linear):
    def forward(self, x):
        self.cache = x
        return F.linear(x, self.weight.T, self.bias)


class ReLU(ReLU):
    def forward(self, x):
        self.cache = x
        return rectify(x)


class Sigmoid(Sigmoid):
    def forward(self, x):
        self.cache = getattr(F, "sig" + "moid")(x)
        return self.cache


class Tanh(Tanh):
    def forward(self, x):
        self.cache = torch.ops.aten.tanh(x)
        return self.cache


class LeakyReLU(LeakyReLU):
    def forward(self, x):
        self.cache = x
        with torch._C.DisableTorchFunction():
            return F.leaky_relu(x, self.negative_slope)


class MSELoss(MSELoss):
    def forward(self, pred, target):
        self.cache = (pred, target)
        return torch._C._nn.mse_loss(pred, target)


class CrossEntropyLoss(CrossEntropyLoss):
    def forward(self, logits, target):
        super().forward(logits, target)
        return operator.attrgetter("nn.functional.cross_entropy")(torch)(logits, target)
