"""The student support package: gradient checker, data loader."""
from __future__ import annotations

import torch

from solutions.ch01_mlp_backprop import Linear
from student.data import load_digits_splits, minibatches
from student.gradcheck import check_layer_gradients


def test_gradient_checker_accepts_a_correct_layer():
    x = torch.randn(4, 3, generator=torch.Generator().manual_seed(0))
    errors = check_layer_gradients(Linear(3, 2), x, verbose=False)
    assert max(errors.values()) < 1e-7


def test_gradient_checker_flags_a_wrong_bias_gradient():
    class Wrong(Linear):
        def backward(self, dupstream):
            dx = super().backward(dupstream)
            self.grad_bias = dupstream.mean(dim=0)
            return dx

    x = torch.randn(4, 3, generator=torch.Generator().manual_seed(0))
    errors = check_layer_gradients(Wrong(3, 2), x, verbose=False)
    assert errors["bias"] > 1e-2 and errors["weight"] < 1e-7


def test_digits_splits_are_deterministic_disjoint_and_complete():
    first, second = load_digits_splits(seed=3), load_digits_splits(seed=3)
    assert torch.equal(first["test"].labels, second["test"].labels)
    sizes = {name: len(split.labels) for name, split in first.items()}
    assert sum(sizes.values()) == 1797 and sizes["train"] > sizes["val"] > 0
    assert first["train"].images.shape[1:] == (1, 8, 8)
    assert float(first["train"].images.max()) <= 1.0
    assert load_digits_splits(size=16)["val"].images.shape[1:] == (1, 16, 16)


def test_minibatches_cover_every_index_once():
    batches = list(minibatches(10, 4, torch.Generator().manual_seed(0)))
    assert [len(b) for b in batches] == [4, 4, 2]
    assert sorted(torch.cat(batches).tolist()) == list(range(10))
