"""Chapter 10: the reference agrees with PyTorch-built implementations (InfoNCE through
``F.cross_entropy``, Wang and Isola's alignment and uniformity through ``torch.pdist``), the
hidden checks accept other reasonable styles and cover the cases the issue names, and the
grader rejects library cross-entropy inside the loss.
"""
from __future__ import annotations

import math
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from autograder.checks import load_checks_namespace, run_check
from solutions import ch10_contrastive_learning as reference
from solutions.ch10_contrastive_learning import (
    SimCLR,
    alignment,
    augment,
    contrastive_accuracy,
    extract_features,
    info_nce_loss,
    uniformity,
)
from tests.conftest import failed_items, notebook_with_extra_cell

CHAPTER = "10_contrastive_learning"
CHECKS_PATH = Path(__file__).resolve().parent.parent / "assignments" / CHAPTER / "checks.py"
F64 = torch.float64


def seeded(*parts: Any) -> torch.Generator:
    """A generator whose seed depends only on the case."""
    return torch.Generator().manual_seed(zlib.crc32(repr(parts).encode()))


def info_nce_cross_entropy(z1: torch.Tensor, z2: torch.Tensor,
                           temperature: float = 0.5) -> torch.Tensor:
    """NT-Xent as usually written with PyTorch: F.cross_entropy over the 2N x (2N - 1)
    matrix of cosine logits with the diagonal removed."""
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    logits = z @ z.T / temperature
    off_diagonal = ~torch.eye(2 * n, dtype=torch.bool)
    logits = logits[off_diagonal].reshape(2 * n, 2 * n - 1)
    positive = (torch.arange(2 * n) + n) % (2 * n)
    target = positive - (positive > torch.arange(2 * n)).long()  # a column left of i shifts
    return F.cross_entropy(logits, target)


def info_nce_loop(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """NT-Xent anchor by anchor, with F.cosine_similarity and torch.logsumexp."""
    z = torch.cat([z1, z2])
    n = z1.shape[0]
    terms = []
    for i in range(2 * n):
        others = [j for j in range(2 * n) if j != i]
        sims = F.cosine_similarity(z[i:i + 1], z[others], dim=1) / temperature
        positive = others.index((i + n) % (2 * n))
        terms.append(torch.logsumexp(sims, dim=0) - sims[positive])
    return torch.stack(terms).mean()


def loss_and_grads(loss_fn: Callable[..., torch.Tensor], z1: torch.Tensor, z2: torch.Tensor,
                   temperature: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    a, b = z1.detach().clone().requires_grad_(), z2.detach().clone().requires_grad_()
    loss = loss_fn(a, b, temperature)
    loss.backward()
    return loss.detach(), a.grad, b.grad


LOSS_SHAPES = [(n, d, tau) for n in (1, 2, 3, 8, 17, 64) for d in (2, 5, 32)
               for tau in (0.01, 0.07, 0.5, 1.0, 10.0)]


@pytest.mark.parametrize("n,d,temperature", LOSS_SHAPES)
def test_info_nce_matches_cross_entropy_implementation(n: int, d: int,
                                                       temperature: float) -> None:
    rng = seeded("loss", n, d, temperature)
    center = torch.randn(d, generator=rng, dtype=F64)
    spread = max(0.05, math.sqrt(temperature) / 2)
    z1 = center + spread * torch.randn(n, d, generator=rng, dtype=F64)
    z2 = z1 + 0.5 * spread * torch.randn(n, d, generator=rng, dtype=F64)
    z1 = z1 * torch.exp(torch.randn(n, 1, generator=rng, dtype=F64))
    ours = loss_and_grads(info_nce_loss, z1, z2, temperature)
    theirs = loss_and_grads(info_nce_cross_entropy, z1, z2, temperature)
    for a, b, what in zip(ours, theirs, ("loss", "grad z1", "grad z2")):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12, msg=what)
    if n == 1:
        assert ours[0].item() == 0.0 and not ours[1].any() and not ours[2].any()


@pytest.mark.parametrize("n,d", [(1, 3), (4, 4), (9, 2)])
def test_info_nce_matches_anchor_by_anchor_loop(n: int, d: int) -> None:
    rng = seeded("loop", n, d)
    z1, z2 = torch.randn(2, n, d, generator=rng, dtype=F64)
    for tau in (0.05, 0.5, 3.0):
        ours = loss_and_grads(info_nce_loss, z1, z2, tau)
        theirs = loss_and_grads(info_nce_loop, z1, z2, tau)
        for a, b in zip(ours, theirs):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_info_nce_is_stable_in_float32_at_temperature_001() -> None:
    rng = seeded("float32")
    center = torch.randn(16, generator=rng)
    z1 = center + 0.03 * torch.randn(32, 16, generator=rng)
    z2 = z1 + 0.01 * torch.randn(32, 16, generator=rng)
    loss = info_nce_loss(z1, z2, 0.01)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    torch.testing.assert_close(loss.double(), info_nce_loss(z1.double(), z2.double(), 0.01),
                               rtol=1e-4, atol=1e-5)


def accuracy_by_ranking(z1: torch.Tensor, z2: torch.Tensor, k: int) -> float:
    """Top-k by sorting each anchor's candidates, ties broken against the positive."""
    z = torch.cat([z1, z2])
    n = z1.shape[0]
    hits = 0
    for i in range(2 * n):
        positive = (i + n) % (2 * n)
        sims = [(float(F.cosine_similarity(z[i], z[j], dim=0)), j != positive, j)
                for j in range(2 * n) if j != i]
        # a negative tying with the positive goes first
        ranked = sorted(sims, key=lambda s: (-s[0], not s[1]))
        hits += positive in [j for _, _, j in ranked[:k]]
    return hits / (2 * n)


@pytest.mark.parametrize("n,d,k", [(1, 2, 1), (5, 3, 1), (5, 3, 2), (12, 4, 3), (30, 8, 1)])
def test_contrastive_accuracy_matches_ranking(n: int, d: int, k: int) -> None:
    rng = seeded("accuracy", n, d, k)
    z1 = torch.randn(n, d, generator=rng, dtype=F64)
    z2 = z1 + 0.8 * torch.randn(n, d, generator=rng, dtype=F64)
    assert contrastive_accuracy(z1, z2, k) == accuracy_by_ranking(z1, z2, k)


def test_contrastive_accuracy_ties_count_against_the_positive() -> None:
    axes = torch.eye(3, dtype=F64)
    collapsed = axes[[0, 0, 0, 0]] * torch.tensor([[1.0], [2.0], [0.5], [4.0]], dtype=F64)
    assert contrastive_accuracy(collapsed, collapsed) == 0.0
    assert contrastive_accuracy(collapsed, collapsed, k=7) == 1.0
    z1, z2 = axes[[0, 1, 0]], axes[[0, 1, 2]]
    assert contrastive_accuracy(z1, z2) == accuracy_by_ranking(z1, z2, 1)


def wang_isola_alignment(x: torch.Tensor, y: torch.Tensor, alpha: float = 2) -> torch.Tensor:
    """The authors' code, on normalised inputs."""
    x, y = F.normalize(x, dim=1), F.normalize(y, dim=1)
    return (x - y).norm(p=2, dim=1).pow(alpha).mean()


def wang_isola_uniformity(x: torch.Tensor, t: float = 2) -> torch.Tensor:
    """The authors' code (naive exp, fine for moderate t), on normalised inputs."""
    x = F.normalize(x, dim=1)
    return torch.pdist(x, p=2).pow(2).mul(-t).exp().mean().log()


@pytest.mark.parametrize("n,d", [(1, 3), (2, 2), (7, 5), (40, 16)])
@pytest.mark.parametrize("alpha", [2, 1, 3, 0.5])
def test_alignment_matches_wang_isola(n: int, d: int, alpha: float) -> None:
    rng = seeded("alignment", n, d, alpha)
    z1, z2 = 3 * torch.randn(2, n, d, generator=rng, dtype=F64)
    ours = loss_and_grads(lambda a, b, p: alignment(a, b, alpha=p), z1, z2, alpha)
    theirs = loss_and_grads(wang_isola_alignment, z1, z2, alpha)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("n,d", [(2, 2), (5, 3), (16, 8), (50, 32)])
@pytest.mark.parametrize("t", [2, 0.5, 10])
def test_uniformity_matches_wang_isola(n: int, d: int, t: float) -> None:
    rng = seeded("uniformity", n, d, t)
    z = torch.randn(n, d, generator=rng, dtype=F64) * 5
    ours = loss_and_grads(lambda a, _, p: uniformity(a, t=p), z, z, t)
    theirs = loss_and_grads(lambda a, _, p: wang_isola_uniformity(a, t=p), z, z, t)
    for a, b in zip(ours[:2], theirs[:2]):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_uniformity_is_stable_where_the_naive_form_underflows() -> None:
    z = torch.eye(4, dtype=F64) + 0.01
    assert torch.isinf(wang_isola_uniformity(z, t=500))
    value = uniformity(z, t=500)
    assert torch.isfinite(value) and value.item() < -700


def test_augment_structure() -> None:
    x = torch.rand(6, 1, 8, 8, generator=seeded("augment"), dtype=F64)
    first = augment(x, torch.Generator().manual_seed(3))
    assert first.shape == x.shape and first.dtype == F64
    assert first.min() >= 0 and first.max() <= 1
    assert torch.equal(first, augment(x, torch.Generator().manual_seed(3)))
    zero = {"crop": 0.0, "rotation": 0.0, "translation": 0.0, "noise": 0.0}
    torch.testing.assert_close(augment(x, torch.Generator(), **zero), x, rtol=0, atol=1e-12)
    x32 = x.float()
    torch.testing.assert_close(augment(x32, torch.Generator(), **zero), x32, rtol=0, atol=1e-6)


def test_affine_shift_of_2_over_8_moves_by_one_pixel() -> None:
    """The notebook's conversion of pixels to affine_grid units (2 t / 8): a shift of one
    pixel reads the neighbouring column, with zeros outside the image."""
    x = torch.rand(1, 1, 8, 8, generator=seeded("shift"), dtype=F64)
    theta = torch.tensor([[[1.0, 0.0, 2.0 / 8], [0.0, 1.0, 0.0]]], dtype=F64)
    grid = F.affine_grid(theta, [1, 1, 8, 8], align_corners=False)
    moved = F.grid_sample(x, grid, align_corners=False)
    torch.testing.assert_close(moved[..., :7], x[..., 1:], rtol=0, atol=1e-12)
    assert not moved[..., 7].any()


def test_extract_features_restores_mode_and_keeps_order() -> None:
    encoder = nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.BatchNorm1d(3), nn.Dropout(0.5))
    x = torch.randn(11, 1, 2, 2, generator=seeded("features"))
    stats = encoder[2].running_mean.clone()
    features = extract_features(encoder, x, 4)
    assert encoder.training and torch.equal(encoder[2].running_mean, stats)
    assert not features.requires_grad
    encoder.eval()
    torch.testing.assert_close(features, encoder(x))
    extract_features(encoder, x, 2)
    assert not encoder.training


def test_simclr_concatenated_or_separate_encoding_agree_on_the_probe() -> None:
    """The grader's encoder works row by row, so a student who encodes cat([x1, x2]) once
    gets the reference's outputs."""
    class Concatenating(SimCLR):
        def forward(self, x1, x2):  # type: ignore[no-untyped-def]
            h = self.encoder(torch.cat([x1, x2]))
            h1, h2 = h.chunk(2)
            return h1, h2, self.head(h1), self.head(h2)

    checks = {check.name: check for check in chapter_checks().checks}
    expected: dict[tuple[int, str], Any] = {}
    run_check(checks["SimCLR"], reference, lambda c, n, a: expected.__setitem__((c, n), a))
    namespace = {"SimCLR": Concatenating}
    got: dict[tuple[int, str], Any] = {}
    run_check(checks["SimCLR"], namespace, lambda c, n, a: got.__setitem__((c, n), a))
    assert expected.keys() == got.keys()
    for key, value in expected.items():
        torch.testing.assert_close(torch.from_numpy(got[key]), torch.from_numpy(value),
                                   rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------------ grading checks
def chapter_checks():  # type: ignore[no-untyped-def]
    return load_checks_namespace(CHECKS_PATH.read_text(), str(CHECKS_PATH))


def outputs_of(check_name: str, implementation: Any) -> dict[tuple[int, str], torch.Tensor]:
    check = next(c for c in chapter_checks().checks if c.name == check_name)
    found: dict[tuple[int, str], torch.Tensor] = {}
    report = run_check(check, implementation,
                       lambda c, n, a: found.__setitem__((c, n), torch.from_numpy(a.copy())))
    assert not any(case["error"] for case in report["cases"]), report
    return found


@pytest.mark.parametrize("check_name", ["info_nce_loss", "info_nce_loss in float32"])
@pytest.mark.parametrize("other", [info_nce_cross_entropy, info_nce_loop])
def test_loss_checks_accept_other_correct_styles(check_name: str, other: Callable) -> None:
    """Within every output's tolerance, in float64 and in float32 at temperature 0.01."""
    check = next(c for c in chapter_checks().checks if c.name == check_name)
    expected = outputs_of(check_name, reference)
    got = outputs_of(check_name, {"info_nce_loss": other})
    for output in check.outputs:
        for (case, name), value in expected.items():
            if name == output.name:
                torch.testing.assert_close(got[(case, name)], value, rtol=output.rtol,
                                           atol=output.atol, msg=f"{name} case {case}")


def test_hidden_cases_cover_the_edge_cases_of_the_issue() -> None:
    checks = {check.name: check for check in chapter_checks().checks}
    loss_cases = checks["info_nce_loss"].cases
    assert {case["N"] for case in loss_cases} >= {1, 64}
    temperatures = {case["temperature"] for case in loss_cases}
    assert {0.01, 10.0, None} <= temperatures
    assert any(case.get("duplicates") for case in loss_cases)
    assert any(case.get("log_norm", 1.0) >= 3 for case in loss_cases)
    # a positive as far as the spread at 0.01: log(sum - exp(self)) cancels there
    assert any(c["temperature"] == 0.01 and c["spread"] >= 0.3 for c in loss_cases)
    assert all(case["temperature"] == 0.01 for case in checks["info_nce_loss in float32"].cases)
    assert any("directions" in case for case in checks["contrastive_accuracy"].cases)
    assert {case["mode"] for case in checks["extract_features"].cases} == {"train", "eval"}
    for name in ("info_nce_loss", "alignment", "uniformity"):
        outputs = {output.name for output in checks[name].outputs}
        assert len(outputs) >= 2 and any(o.startswith("grad") for o in outputs), name


def test_informative_loss_values_in_every_case() -> None:
    """Clustered embeddings keep the loss away from 0 (a saturated softmax) and from the
    chance level log(2N - 1) (a uniform one) where N > 1."""
    values = outputs_of("info_nce_loss", reference)
    checks = {check.name: check for check in chapter_checks().checks}
    for index, case in enumerate(checks["info_nce_loss"].cases):
        loss = values[(index, "loss")].item()
        if case["N"] == 1:
            assert loss == 0.0
        else:
            assert loss > 0.05 and abs(loss - math.log(2 * case["N"] - 1)) > 0.01, (case, loss)


def test_concept_batches_give_the_documented_answers() -> None:
    """The notebook's two batches (seed 7): the aligned one has its largest loss at the
    highest temperature, the confused one at the lowest."""
    generator = torch.Generator().manual_seed(7)
    anchors = torch.randn(8, 16, dtype=F64, generator=generator)
    nearby = 0.2 * torch.randn(8, 16, dtype=F64, generator=generator)
    batches = {"aligned": (anchors, anchors + nearby),
               "confused": (anchors, anchors.roll(-1, dims=0) + nearby)}
    largest = {}
    for name, (first, second) in batches.items():
        losses = {tau: info_nce_loss(first, second, tau).item() for tau in (0.05, 0.5, 5.0)}
        largest[name] = max(losses, key=losses.__getitem__)
    assert largest == {"aligned": reference.CONCEPT_ANSWERS["largest_loss_aligned"],
                       "confused": reference.CONCEPT_ANSWERS["largest_loss_confused"]}


def test_runtime_trap_leaves_the_allowed_api_alone() -> None:
    from autograder.child import _forbidden_functions

    found = _forbidden_functions(list(chapter_checks().forbidden))
    allowed = [torch.exp, torch.log, torch.max, torch.matmul, torch.cat, F.normalize,
               F.cosine_similarity, F.affine_grid, F.grid_sample, F.linear, F.relu, F.softmax,
               torch.Tensor.backward, torch.Tensor.masked_fill, torch.triu_indices]
    assert [f for f in allowed if f in found] == []
    assert F.cross_entropy in found and torch.logsumexp in found
    assert torch.Tensor.logsumexp in found and F.log_softmax in found


def test_grader_rejects_cross_entropy_in_the_loss_only(grade_file, tmp_path) -> None:  # type: ignore[no-untyped-def]
    code = '''
def info_nce_loss(z1, z2, temperature=0.5):
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    logits = (z @ z.T / temperature).masked_fill(torch.eye(2 * n, dtype=torch.bool), -1e9)
    return F.cross_entropy(logits, (torch.arange(2 * n) + n) % (2 * n))
'''
    results = grade_file(CHAPTER, notebook_with_extra_cell(CHAPTER, code,
                                                           tmp_path / f"{CHAPTER}.ipynb"))
    failed = failed_items(results)
    assert {item.split(":")[0] for item in failed} == {"info_nce_loss",
                                                       "info_nce_loss in float32"}
    messages = [test["output"] for test in results["tests"] if test["status"] == "failed"]
    assert all("torch.nn.functional.cross_entropy" in message for message in messages)
