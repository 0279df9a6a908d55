# ReLU returns an object equal to everything; Tanh returns wrong values in a tensor subclass
# whose __torch_function__ claims equality to anything.
class AlwaysEqual:
    def __eq__(self, other):
        return True

    __hash__ = object.__hash__


class LyingTensor(torch.Tensor):
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if func in (torch.equal, torch.allclose, torch.Tensor.equal, torch.Tensor.allclose):
            return True
        if func in (torch.Tensor.__eq__, torch.eq, torch.isclose):
            return torch.ones(args[0].shape, dtype=torch.bool)
        return super().__torch_function__(func, types, args, kwargs or {})


class ReLU(ReLU):
    def forward(self, x):
        super().forward(x)
        return AlwaysEqual()


class Tanh(Tanh):
    def forward(self, x):
        super().forward(x)
        return torch.zeros_like(x).as_subclass(LyingTensor)
