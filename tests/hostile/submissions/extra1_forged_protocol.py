# Writes forged events into the judge's protocol pipe: fake protections, garbage, a check
# start announced over and over to keep Linear's deadline alive, and a perfect-looking report
# for ReLU whose real y is wrong.
import json
import os
import sys
import time

_fd = sys._getframe(1).f_locals["job"]["proto_fd"]


def emit(event):
    os.write(_fd, (json.dumps(event) + "\n").encode())


emit({"ev": "ready", "protections": {"mode": "FORGED-PROTECTIONS", "user": "uid 0"}})
emit({"ev": "stmt", "cell": "one", "stmt": [2]})
emit({"ev": "check_done", "check": {"x": 1}, "report": []})
os.write(_fd, b"{not json\n" + b"x" * 100000 + b"\n")


class Linear(Linear):
    def forward(self, x):
        until = time.monotonic() + 40
        while time.monotonic() < until:
            emit({"ev": "check_start", "check": 0})
            emit({"ev": "stmt", "cell": 10**6, "stmt": 10**6})
            time.sleep(0.2)
        return super().forward(x)


def claimed(shape):
    return {"kind": "tensor", "dtype": "float64", "shape": list(shape), "device": "cpu"}


def running_check():
    frame = sys._getframe(1)
    while "check" not in frame.f_locals:
        frame = frame.f_back
    return frame.f_locals["check"]


class ReLU(ReLU):
    def forward(self, x):
        cases = len(running_check().cases)
        report = {"cases": [{"outputs": {"y": claimed(x.shape), "dx": claimed(x.shape)},
                             "error": None, "modified": []}] * cases, "trap": []}
        emit({"ev": "check_done", "check": 1, "report": report})
        return super().forward(x) * 0
