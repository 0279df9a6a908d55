# A bounded fork bomb in Linear.forward: up to 60 processes that each sleep for 30 s.
import os
import time


class Linear(Linear):
    def forward(self, x):
        started, refused = 0, None
        for _ in range(60):
            try:
                pid = os.fork()
            except OSError as exc:
                refused = exc
                break
            if pid == 0:
                time.sleep(30)
                os._exit(0)
            started += 1
        raise RuntimeError(f"fork bomb: {started} processes started, then refused: {refused}")
