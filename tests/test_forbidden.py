"""The AST scan for forbidden API in from-scratch code."""
from __future__ import annotations

import pytest

from autograder.forbidden import ForbiddenScan

FORBIDDEN = ("torch.nn", "torch.autograd", "torch.ops", "Tensor.backward", "torch.softmax")
HEADER = "import torch\nimport torch.nn.functional as F\nfrom torch import nn\n"

CASES = [
    ("direct call", "class Linear:\n    def forward(self, x):\n        return torch.nn.functional.linear(x, self.w)\n", True),
    ("module alias", "class Linear:\n    def forward(self, x):\n        return F.linear(x, self.w)\n", True),
    ("from-import alias", "from torch.nn.functional import linear as lin\nclass Linear:\n    def forward(self, x):\n        return lin(x, self.w)\n", True),
    ("re-bound name", "fast = F.linear\nclass Linear:\n    def forward(self, x):\n        return fast(x, self.w)\n", True),
    ("getattr with a constant", "class Linear:\n    def forward(self, x):\n        return getattr(F, 'linear')(x, self.w)\n", True),
    ("getattr with a computed name", "class Linear:\n    def forward(self, x):\n        return getattr(F, 'lin' + 'ear')(x, self.w)\n", True),
    ("torch.ops.aten", "class Linear:\n    def forward(self, x):\n        return torch.ops.aten.mm(x, self.w)\n", True),
    ("autograd through a helper", "def helper(y):\n    y.sum().backward()\nclass Linear:\n    def backward(self, d):\n        return helper(d)\n", True),
    ("eval", "class Linear:\n    def forward(self, x):\n        return eval('F.linear')(x, self.w)\n", True),
    ("nn module as a base class", "class Linear(nn.Linear):\n    pass\n", True),
    ("patched method", "class Linear:\n    pass\nLinear.forward = lambda self, x: F.linear(x, self.w)\n", True),
    ("plain tensor code", "class Linear:\n    def forward(self, x):\n        return x @ self.w + self.b\n    def backward(self, d):\n        return d @ self.w.T\n", False),
    ("own backward methods", "class Net:\n    def backward(self, d):\n        for layer in self.layers:\n            d = layer.backward(d)\n        return super().backward()\n", False),
    ("getattr(torch, computed)", "class Linear:\n    def forward(self, x):\n        return getattr(torch, self.name)(x, 1)\n", True),
    ("computed getattr on the student's own object", "class Linear:\n    def forward(self, x):\n        return getattr(self, 'act_' + self.kind)(x)\n", False),
    ("computed getattr on a tensor (the run-time trap covers it)", "class Linear:\n    def forward(self, x):\n        return getattr(x, self.op)()\n", False),
    ("forbidden use elsewhere is not charged", "class Linear:\n    def forward(self, x):\n        return x @ self.w\ndef train(net):\n    F.softmax(net.forward(1), 1).sum().backward()\n", False),
]


@pytest.mark.parametrize("name,code,caught", CASES, ids=[c[0] for c in CASES])
def test_scan(name, code, caught):
    scan = ForbiddenScan([(1, HEADER), (2, code)], FORBIDDEN)
    uses = ("Net",) if "class Net" in code else ("Linear",)
    hits = scan.hits_for(uses)
    assert bool(hits) is caught, hits


def test_hits_name_the_call_and_its_cell():
    scan = ForbiddenScan([(1, HEADER), (7, CASES[1][1])], FORBIDDEN)
    assert scan.hits_for(("Linear",)) == [
        'torch.nn.functional.linear (in Linear.forward, line 3 of the code cell that begins '
        '"class Linear:")']


def test_chapters_without_a_forbidden_list_scan_nothing():
    assert ForbiddenScan([(1, HEADER + CASES[0][1])], ()).hits_for(("Linear",)) == []


def test_a_name_the_check_replaces_is_not_followed_but_its_own_check_still_sees_it():
    code = ("def loss(z):\n    return F.softmax(z, 0).sum()\n"
            "def step(z):\n    return loss(z) * 2\n"
            "def helper(z):\n    return F.softmax(z, 0)\n"
            "def step_with_helper(z):\n    return loss(z) + helper(z).sum()\n")
    scan = ForbiddenScan([(1, HEADER), (2, code)], FORBIDDEN)
    assert scan.hits_for(("step",)) and scan.hits_for(("loss",))
    assert scan.hits_for(("step",), ("loss",)) == []
    # only the replaced name is skipped: another helper of the same check is still followed
    assert scan.hits_for(("step_with_helper",), ("loss",)) == [
        'torch.nn.functional.softmax (in helper, line 6 of the code cell that begins '
        '"def loss(z):")']
