# Seeds and consumes every global random generator, at import and inside graded methods.
import random

import numpy

torch.manual_seed(0)
random.seed(0)
numpy.random.seed(0)
torch.randn(1000)


class Linear(Linear):
    def forward(self, x):
        torch.manual_seed(1234)
        torch.randn(1000)
        return super().forward(x)


class Net(Net):
    def forward(self, x):
        torch.manual_seed(99)
        torch.rand(17)
        return super().forward(x)
