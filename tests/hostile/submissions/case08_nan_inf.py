# Sigmoid's output holds a NaN; MSELoss returns inf.
class Sigmoid(Sigmoid):
    def forward(self, x):
        out = super().forward(x).clone()
        out.view(-1)[0] = float("nan")
        return out


class MSELoss(MSELoss):
    def forward(self, pred, target):
        super().forward(pred, target)
        return torch.tensor(float("inf"), dtype=pred.dtype)
