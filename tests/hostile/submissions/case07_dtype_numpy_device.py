# Right values, wrong container: float32 instead of float64, a numpy array, a tensor on "meta".
class Linear(Linear):
    def forward(self, x):
        return super().forward(x).float()


class ReLU(ReLU):
    def forward(self, x):
        return super().forward(x).numpy()


class Tanh(Tanh):
    def forward(self, x):
        return super().forward(x).to("meta")
