"""Chapter 09: the reference agrees with PyTorch-built implementations (binary cross-entropy
through ``F.binary_cross_entropy_with_logits``, a training step with ``torch.optim.SGD`` and
``nn.BCEWithLogitsLoss``, Langevin written in place on ``.data`` as in the usual tutorials),
the hidden checks accept other correct styles and cover the cases the issue names, and the
grader rejects the library's BCE inside the losses.
"""
from __future__ import annotations

import copy
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
from solutions import ch09_gans_energy_models as reference
from solutions.ch09_gans_energy_models import (
    ReplayBuffer,
    contrastive_divergence_loss,
    discriminator_loss,
    gan_training_step,
    generator_loss,
    langevin_sample,
)
from student import seeding
from tests.conftest import failed_items, notebook_with_extra_cell

CHAPTER = "09_gans_energy_models"
CHECKS_PATH = Path(__file__).resolve().parent.parent / "assignments" / CHAPTER / "checks.py"
F64 = torch.float64


def seeded(*parts: Any) -> torch.Generator:
    """A generator whose seed depends only on the case."""
    return torch.Generator().manual_seed(zlib.crc32(repr(parts).encode()))


def chapter_checks() -> Any:
    return load_checks_namespace(CHECKS_PATH.read_text(), str(CHECKS_PATH))


def check_named(name: str) -> Any:
    return next(check for check in chapter_checks().checks if check.name == name)


def outputs_of(check: Any, implementation: Any) -> dict[tuple[int, str], Any]:
    saved: dict[tuple[int, str], Any] = {}
    report = run_check(check, implementation, lambda i, n, a: saved.__setitem__((i, n), a))
    assert all(case["error"] is None for case in report["cases"]), report
    return saved


def logits(generator: torch.Generator, n: int, scale: float) -> torch.Tensor:
    values = scale * torch.randn(n, dtype=F64, generator=generator)
    values[torch.rand(n, generator=generator) < 0.2] = 0.0
    return values


def with_grads(loss_fn: Callable[..., torch.Tensor],
               *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
    leaves = [t.detach().clone().requires_grad_() for t in inputs]
    loss = loss_fn(*leaves)
    loss.backward()
    return (loss.detach(), *[leaf.grad for leaf in leaves])


@pytest.mark.parametrize("n,m,scale", [(n, m, s) for n in (1, 3, 17) for m in (1, 8, 64)
                                       for s in (0.1, 3.0, 100.0)])
def test_discriminator_loss_matches_torch_bce(n: int, m: int, scale: float) -> None:
    generator = seeded("d", n, m, scale)
    real, fake = logits(generator, n, scale), logits(generator, m, scale)

    def torch_bce(r: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        return (F.binary_cross_entropy_with_logits(r, torch.ones_like(r))
                + F.binary_cross_entropy_with_logits(f, torch.zeros_like(f)))

    for ours, theirs in zip(with_grads(discriminator_loss, real, fake),
                            with_grads(torch_bce, real, fake)):
        torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("m,scale", [(m, s) for m in (1, 5, 40) for s in (0.5, 4.0, 100.0)])
def test_generator_loss_matches_torch_bce_with_real_labels(m: int, scale: float) -> None:
    fake = logits(seeded("g", m, scale), m, scale)

    def torch_bce(f: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(f, torch.ones_like(f))

    for ours, theirs in zip(with_grads(generator_loss, fake), with_grads(torch_bce, fake)):
        torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(generator_loss(fake), -F.logsigmoid(fake).mean())


@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_losses_are_finite_and_exact_at_extreme_logits(dtype: torch.dtype) -> None:
    extreme = torch.tensor([1000.0, -1000.0, 100.0, -100.0], dtype=dtype)
    loss = discriminator_loss(extreme, extreme)
    assert torch.isfinite(loss) and abs(loss.item() - 2 * 1100 / 4) < 1e-3
    assert abs(generator_loss(extreme).item() - 1100 / 4) < 1e-3


def _torch_step(generator: nn.Module, discriminator: nn.Module, opt_g: Any, opt_d: Any,
                real: torch.Tensor, z: torch.Tensor) -> tuple[float, float]:
    """The step as written with nn.BCEWithLogitsLoss (the usual DCGAN tutorial form)."""
    criterion = nn.BCEWithLogitsLoss()
    fake = generator(z)
    discriminator.zero_grad()
    real_logits = discriminator(real)
    fake_logits = discriminator(fake.detach())
    d_loss = (criterion(real_logits, torch.ones_like(real_logits))
              + criterion(fake_logits, torch.zeros_like(fake_logits)))
    d_loss.backward()
    opt_d.step()
    generator.zero_grad()
    logits_after = discriminator(fake)
    g_loss = criterion(logits_after, torch.ones_like(logits_after))
    g_loss.backward()
    opt_g.step()
    return d_loss.item(), g_loss.item()


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_training_step_matches_the_bce_module_form_with_torch_sgd(momentum: float) -> None:
    with seeding.seeded(0):
        nets = (nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 4)).double(),
                nn.Sequential(nn.Linear(4, 6), nn.LeakyReLU(0.2), nn.Linear(6, 1),
                              nn.Flatten(0)).double())
    copies = copy.deepcopy(nets)
    runs = []
    for (g, d), step in ((nets, gan_training_step), (copies, _torch_step)):
        opt_g = torch.optim.SGD(g.parameters(), lr=0.2, momentum=momentum)
        opt_d = torch.optim.SGD(d.parameters(), lr=0.1, momentum=momentum)
        generator = seeded("step", momentum)
        losses = [step(g, d, opt_g, opt_d, torch.randn(7, 4, generator=generator, dtype=F64),
                       torch.randn(5, 3, generator=generator, dtype=F64)) for _ in range(3)]
        runs.append((losses, [p.detach().clone() for net in (g, d) for p in net.parameters()]))
    assert [v for pair in runs[0][0] for v in pair] == pytest.approx(
        [v for pair in runs[1][0] for v in pair], rel=1e-12)
    for ours, theirs in zip(runs[0][1], runs[1][1]):
        torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-14)


def _langevin_in_place(model: nn.Module, x: torch.Tensor, steps: int, step_size: float,
                       noise_std: float, generator: torch.Generator,
                       clamp: tuple[float, float] = (-1.0, 1.0),
                       grad_clip: float = 0.03) -> torch.Tensor:
    """Langevin as the usual tutorial writes it: in place on .data, backward into x.grad."""
    was_training = model.training
    flags = [p.requires_grad for p in model.parameters()]
    model.eval()
    for p in model.parameters():
        p.requires_grad = False
    images = x.clone().requires_grad_(True)
    noise = torch.zeros_like(images)
    for _ in range(steps):
        noise.normal_(0, noise_std, generator=generator) if noise_std else noise.zero_()
        if not noise_std:
            torch.randn(images.shape, generator=generator, dtype=images.dtype)
        images.data.add_(noise.data)
        images.data.clamp_(*clamp)
        model(images).sum().backward()
        images.grad.data.clamp_(-grad_clip, grad_clip)
        images.data.add_(step_size * images.grad.data)
        images.grad.detach_()
        images.grad.zero_()
        images.data.clamp_(*clamp)
    for p, flag in zip(model.parameters(), flags):
        p.requires_grad = flag
    model.train(was_training)
    return images.detach()


@pytest.mark.parametrize("steps,step_size,noise_std,grad_clip", [
    (1, 0.1, 0.1, 0.03), (60, 10.0, 0.005, 0.03), (20, 0.5, 0.0, 1.0), (7, 0.05, 0.3, 0.2)])
def test_langevin_matches_the_in_place_tutorial_form(steps: int, step_size: float,
                                                     noise_std: float, grad_clip: float) -> None:
    with seeding.seeded(1):
        model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.SiLU(), nn.Flatten(),
                              nn.Linear(64, 1), nn.Flatten(0)).double()
    start = 2 * torch.rand(5, 1, 4, 4, generator=seeded("x", steps), dtype=F64) - 1
    ours = langevin_sample(model, start, steps, step_size, noise_std,
                           seeded("noise", steps), grad_clip=grad_clip)
    theirs = _langevin_in_place(model, start, steps, step_size, noise_std,
                                seeded("noise", steps), grad_clip=grad_clip)
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-12)
    assert all(p.grad is None and p.requires_grad for p in model.parameters())


def test_langevin_climbs_a_quadratic_score_to_its_maximum() -> None:
    class Peak(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return -(x - 0.25).pow(2).flatten(1).sum(dim=1)

    start = 2 * torch.rand(16, 3, generator=seeded("peak"), dtype=F64) - 1
    end = langevin_sample(Peak(), start, 200, 0.1, 0.0, seeded("peak noise"), grad_clip=1.0)
    torch.testing.assert_close(end, torch.full_like(end, 0.25), rtol=0, atol=1e-9)


def test_contrastive_divergence_matches_its_formula() -> None:
    generator = seeded("cd")
    real, fake = torch.randn(2, 9, generator=generator, dtype=F64)
    loss, regularization, divergence = contrastive_divergence_loss(real, fake, 0.3)
    expected_reg = 0.3 * (real.pow(2).mean() + fake.pow(2).mean())
    torch.testing.assert_close(regularization, expected_reg)
    torch.testing.assert_close(divergence, fake.mean() - real.mean())
    torch.testing.assert_close(loss, expected_reg + fake.mean() - real.mean())


class _CountBuffer:
    """Another correct buffer: a binomial number of fresh rows, placed first (as in the
    usual tutorial), stored rows in a deque, newest first."""

    def __init__(self, max_size: int, sample_shape: tuple[int, ...]) -> None:
        from collections import deque

        self.rows: Any = deque(maxlen=max_size)
        self.shape = tuple(sample_shape)

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        if not self.rows:
            return 2 * torch.rand(n, *self.shape, generator=generator) - 1
        fresh = int(torch.binomial(torch.tensor(float(n)), torch.tensor(0.05),
                                   generator=generator))
        noise = 2 * torch.rand(fresh, *self.shape, generator=generator) - 1
        stored = torch.stack(list(self.rows))
        chosen = stored[torch.randint(len(stored), (n - fresh,), generator=generator)]
        return torch.cat([noise, chosen])

    def push(self, samples: torch.Tensor) -> None:
        for row in samples.detach():
            self.rows.append(row.clone())


def test_buffer_check_accepts_another_correct_buffer() -> None:
    check = check_named("ReplayBuffer")
    for values in (outputs_of(check, reference), outputs_of(check, {"ReplayBuffer": _CountBuffer})):
        flags = [bool(v.all()) for (_, name), v in values.items() if name != "contents"]
        assert all(flags), values


def test_buffer_keeps_the_newest_rows_and_samples_five_percent_fresh() -> None:
    buffer = ReplayBuffer(3, (2,))
    buffer.push(torch.tensor([[5.0, 5.0], [6.0, 6.0]]))
    buffer.push(torch.tensor([[7.0, 7.0], [8.0, 8.0]]))
    rows = buffer.sample(200_000, seeded("buffer"))
    stored = rows[rows[:, 0] > 2, 0]
    assert set(stored.tolist()) == {6.0, 7.0, 8.0}
    assert abs((rows[:, 0] < 2).double().mean().item() - 0.05) < 0.005


# Another correct style (both gradients cleared at the start, the fake batch detached) with
# broken losses: the check must grade the step with its own losses.
STEP_WITH_BROKEN_LOSSES = """
def discriminator_loss(real_logits, fake_logits):
    return real_logits.sum() * 0

def generator_loss(fake_logits):
    return fake_logits.sum() * 0

def gan_training_step(generator, discriminator, opt_g, opt_d, real, z):
    opt_d.zero_grad()
    opt_g.zero_grad()
    fake = generator(z)
    d_loss = discriminator_loss(discriminator(real), discriminator(fake.detach()))
    d_loss.backward()
    opt_d.step()
    opt_g.zero_grad()
    g_loss = generator_loss(discriminator(fake))
    g_loss.backward()
    opt_g.step()
    return d_loss.item(), g_loss.item()
"""


def test_training_step_check_grades_with_the_graders_losses() -> None:
    check = check_named("gan_training_step")
    namespace: dict[str, Any] = {}
    exec(STEP_WITH_BROKEN_LOSSES, namespace)  # noqa: S102 - the test's own code
    expected, values = outputs_of(check, reference), outputs_of(check, namespace)
    for key, value in expected.items():
        torch.testing.assert_close(torch.as_tensor(values[key]), torch.as_tensor(value),
                                   rtol=1e-7, atol=1e-9)


def test_hidden_cases_cover_the_edge_cases_of_the_issue() -> None:
    checks = chapter_checks()
    cases = {check.name: check.cases for check in checks.checks}
    magnitudes = {big for case in cases["discriminator_loss"] for big in case.get("big", ())}
    assert {100.0, 1000.0} <= magnitudes
    assert any(case.get("zeros") for case in cases["discriminator_loss"])
    assert any(case.get("zeros") for case in cases["generator_loss"])
    assert all(case.get("float32") for case in cases["discriminator_loss in float32"])
    assert {case["steps"] for case in cases["langevin_sample"]} >= {1, 60}
    assert {case["mode"] for case in cases["langevin_sample"]} == {"train", "eval"}
    assert any(case.get("frozen") for case in cases["langevin_sample"])
    assert any(max(case["pushes"]) > case["max_size"] for case in cases["ReplayBuffer"])
    assert any(sum(case["pushes"]) < case["max_size"] for case in cases["ReplayBuffer"])


def test_share_tolerance_meets_the_stated_failure_probability() -> None:
    namespace: dict[str, Any] = {}
    exec(CHECKS_PATH.read_text(), namespace)  # noqa: S102 - the course's own checks
    rows = namespace["DRAWS"] * namespace["DRAW_SIZE"]
    tolerance = namespace["SHARE_TOLERANCE"]
    assert 2 * math.exp(-2 * rows * tolerance**2) < 1e-9
    assert 0.05 - tolerance > 0.04 and (0.05 - tolerance) * rows * 6 > 20_000


def test_runtime_trap_leaves_the_allowed_api_alone() -> None:
    from autograder.child import _forbidden_functions

    found = _forbidden_functions(list(chapter_checks().forbidden))
    allowed = [torch.logaddexp, torch.sigmoid, torch.log1p, torch.exp, torch.tanh, torch.clamp,
               F.linear, F.conv2d, F.silu, F.leaky_relu, torch.autograd.grad,
               torch.Tensor.backward, torch.randn, torch.rand, torch.randint]
    assert [f for f in allowed if f in found] == []
    assert F.softplus in found and F.logsigmoid in found
    assert F.binary_cross_entropy in found and F.binary_cross_entropy_with_logits in found


def test_grader_rejects_the_library_bce_in_the_losses(grade_file, tmp_path) -> None:  # type: ignore[no-untyped-def]
    code = '''
def generator_loss(fake_logits):
    return -F.logsigmoid(fake_logits).mean()
'''
    results = grade_file(CHAPTER, notebook_with_extra_cell(CHAPTER, code,
                                                           tmp_path / f"{CHAPTER}.ipynb"))
    failed = failed_items(results)
    # the training step calls generator_loss, but it is run with the grader's own losses
    # (its check replaces them), so only the loss's own items are lost
    assert {item.split(":")[0] for item in failed} == {"generator_loss",
                                                       "generator_loss in float32"}
    messages = [test["output"] for test in results["tests"] if test["status"] == "failed"]
    assert all("logsigmoid" in message for message in messages)
