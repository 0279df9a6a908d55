# y differs from the reference by one ulp (float rounding only); dx by a relative 1e-3.
class Linear(Linear):
    def forward(self, x):
        y = super().forward(x)
        return torch.nextafter(y, torch.full_like(y, float("inf")))

    def backward(self, dupstream):
        return super().backward(dupstream) * (1 + 1e-3)
