# Linear.forward spins forever; ReLU.forward ignores SIGALRM and swallows every exception.
import signal
import time


class Linear(Linear):
    def forward(self, x):
        while True:
            pass


class ReLU(ReLU):
    def forward(self, x):
        signal.signal(signal.SIGALRM, signal.SIG_IGN)
        signal.alarm(1)
        while True:
            try:
                time.sleep(0.5)
            except BaseException:
                continue
