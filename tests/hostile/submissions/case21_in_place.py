# ReLU clamps the caller's input in place; Linear.backward scribbles on dupstream after use.
class ReLU(ReLU):
    def forward(self, x):
        self.cache = x.clone()
        return x.clamp_(min=0)


class Linear(Linear):
    def backward(self, dupstream):
        dx = super().backward(dupstream)
        dupstream.mul_(2)
        return dx
