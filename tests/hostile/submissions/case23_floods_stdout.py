# Prints megabytes: 8 MB of text and 1 MB of binary garbage at import, 1 MB per ReLU call.
import sys

print("flood-start")
sys.stdout.write("x" * (8 * 2**20) + "\n")
sys.stdout.flush()
sys.stdout.buffer.write(bytes(range(256)) * 4096)
sys.stdout.buffer.flush()


class ReLU(ReLU):
    def forward(self, x):
        print("y" * 2**20)
        return super().forward(x)


print("flood-import-done")
