# Linear.forward asks for 50 GB at once; ReLU.forward grows its memory by 10 MB steps.
import time


class Linear(Linear):
    def forward(self, x):
        hoard = torch.ones(50 * 10**9, dtype=torch.uint8)
        return hoard[:1]


class ReLU(ReLU):
    def forward(self, x):
        hoard = []
        while True:
            hoard.append(torch.ones(10 * 2**20, dtype=torch.uint8))
            time.sleep(0.02)
