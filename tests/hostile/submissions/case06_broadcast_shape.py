# grad_bias has shape (out, 1) instead of (out,): it broadcasts, so a loose comparison passes.
class Linear(Linear):
    def backward(self, dupstream):
        dx = super().backward(dupstream)
        self.grad_bias = self.grad_bias.reshape(-1, 1)
        return dx
