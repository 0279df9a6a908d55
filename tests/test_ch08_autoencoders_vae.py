"""Chapter 08: the reference agrees with PyTorch's own transposed convolution, distributions and
losses in float64; the grader's trusted stand-ins agree with PyTorch too (they replace the
student's helpers while modules are graded), and the forbidden list reaches the decoder.
"""
from __future__ import annotations

import itertools
import math
import zlib
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Normal
from torch.distributions import kl_divergence as torch_kl

from autograder.checks import load_checks_namespace
from autograder.kit import noncontiguous
from solutions import ch08_autoencoders_vae as ref
from student import seeding
from tests.conftest import assert_check_agrees, failed_items, notebook_with_extra_cell

CHAPTER = "08_autoencoders_vae"
CHECKS_PATH = Path(__file__).resolve().parent.parent / "assignments" / CHAPTER / "checks.py"
F64 = torch.float64


def seeded(*parts: object) -> torch.Generator:
    return torch.Generator().manual_seed(zlib.crc32(repr(parts).encode()))


def checks_namespace() -> dict:
    namespace: dict = {"__name__": "chapter_checks"}
    exec(compile(CHECKS_PATH.read_text(), str(CHECKS_PATH), "exec"), namespace)  # noqa: S102
    return namespace


def assert_close(actual: torch.Tensor, expected: torch.Tensor) -> None:
    assert type(actual) is torch.Tensor and actual.dtype == expected.dtype
    torch.testing.assert_close(actual, expected, rtol=1e-10, atol=1e-10)


# (N, C_in, C_out, H, W, k, stride, padding, output_padding): every combination PyTorch accepts
GEOMETRIES = [
    (n, c_in, c_out, h, w, k, s, p, op)
    for (n, c_in, c_out), (h, w), k, s in itertools.product(
        [(1, 1, 1), (2, 3, 2)], [(1, 1), (3, 4), (5, 2)], [1, 2, 3, 4], [1, 2, 3])
    for p in range(3) for op in range(s)
    if (h - 1) * s - 2 * p + k + op > 0 and (w - 1) * s - 2 * p + k + op > 0
]


@pytest.mark.parametrize("stand_in", [False, True], ids=["reference", "grader stand-in"])
def test_conv_transpose2d_matches_torch_on_many_geometries(stand_in):
    function = checks_namespace()["trusted_conv_transpose2d"] if stand_in else ref.conv_transpose2d
    assert len(GEOMETRIES) > 200
    for index, (n, c_in, c_out, h, w, k, s, p, op) in enumerate(GEOMETRIES):
        if stand_in and index % 2:
            continue
        rng = seeded("conv_t", index)
        x = torch.randn(n, c_in, h, w, generator=rng, dtype=F64)
        weight = torch.randn(c_in, c_out, k, k, generator=rng, dtype=F64)
        bias = torch.randn(c_out, generator=rng, dtype=F64)
        if index % 3 == 0:
            x, weight = noncontiguous(x), noncontiguous(weight)
        leaves = [t.clone().requires_grad_(True) for t in (x, weight, bias)]
        twins = [t.clone().requires_grad_(True) for t in (x, weight, bias)]
        expected = F.conv_transpose2d(*twins, stride=s, padding=p, output_padding=op)
        actual = function(*leaves, stride=s, padding=p, output_padding=op)
        assert_close(actual, expected.detach())
        assert actual.shape[2] == ref.conv_transpose_output_size(h, k, s, p, op)
        upstream = torch.randn(expected.shape, generator=rng, dtype=F64)
        expected.backward(upstream)
        actual.backward(upstream)
        for mine, theirs in zip(leaves, twins):
            assert_close(mine.grad, theirs.grad)
        assert_close(function(x, weight, None, s, p, op),
                     F.conv_transpose2d(x, weight, None, s, p, op))


def test_conv_transpose2d_is_the_input_gradient_of_conv2d():
    rng = seeded("adjoint")
    x = torch.randn(2, 3, 7, 7, generator=rng, dtype=F64, requires_grad=True)
    weight = torch.randn(4, 3, 3, 3, generator=rng, dtype=F64)
    y = F.conv2d(x, weight, stride=2, padding=1)
    upstream = torch.randn(y.shape, generator=rng, dtype=F64)
    y.backward(upstream)
    # 7 rows map to 4 with stride 2: output_padding 0 gives 7 back
    assert_close(ref.conv_transpose2d(upstream, weight, stride=2, padding=1), x.grad)


def test_kl_matches_torch_distributions_including_extremes():
    rng = seeded("kl")
    for shape, scale, low, high in [((5, 4), 2.0, -4, 3), ((3, 2, 3), 1.0, -1, 1),
                                    ((4, 6), 1000.0, -30, 30), ((1, 1), 1.0, 0, 0)]:
        mu = scale * torch.randn(*shape, generator=rng, dtype=F64)
        logvar = low + (high - low) * torch.rand(*shape, generator=rng, dtype=F64)
        expected = torch_kl(Normal(mu, torch.exp(0.5 * logvar)), Normal(torch.zeros_like(mu),
                                                                        torch.ones_like(mu)))
        torch.testing.assert_close(ref.kl_divergence(mu, logvar),
                                   expected.reshape(shape[0], -1).sum(1), rtol=1e-12, atol=1e-12)
    assert ref.kl_by_hand() == pytest.approx(1.625, abs=1e-12)


def test_bernoulli_nll_matches_binary_cross_entropy_with_logits():
    rng = seeded("bernoulli")
    logits = 3 * torch.randn(6, 1, 4, 4, generator=rng, dtype=F64)
    logits[0, 0, 0, :2] = torch.tensor([100.0, -100.0], dtype=F64)
    logits[1, 0, 1, :3] = 0.0
    x = torch.rand(6, 1, 4, 4, generator=rng, dtype=F64)
    x[2, 0, 0, 0], x[3, 0, 0, 0] = 0.0, 1.0
    mine, theirs = logits.clone().requires_grad_(True), logits.clone().requires_grad_(True)
    value = ref.bernoulli_nll(mine, x)
    expected = F.binary_cross_entropy_with_logits(theirs, x, reduction="none").sum((1, 2, 3))
    torch.testing.assert_close(value, expected.detach(), rtol=1e-12, atol=1e-12)
    value.sum().backward()
    expected.sum().backward()
    torch.testing.assert_close(mine.grad, theirs.grad, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(mine.grad, torch.sigmoid(logits) - x, rtol=1e-12, atol=1e-12)


def _bce_with_logits(logits, x):
    return F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)


def _softplus(logits, x):
    return (F.softplus(logits) - x * logits).flatten(1).sum(1)


@pytest.mark.parametrize("other", [_bce_with_logits, _softplus])
def test_bernoulli_check_accepts_other_stable_forms_on_every_case(other):
    """The ladder case (logits +-30, +-100, +-200) fails a BCE on sigmoid(l), not these."""
    check = next(c for c in checks_namespace()["CHECKS"] if c.name == "bernoulli_nll")
    assert any(case.get("ladder") for case in check.cases)
    assert_check_agrees(check, ref, {"bernoulli_nll": other})


def test_popular_stable_bce_form_has_the_wrong_gradient_at_zero():
    """The fact the notebook teaches and the hidden check relies on."""
    logits = torch.zeros(1, 3, dtype=F64, requires_grad=True)
    x = torch.tensor([[0.0, 0.3, 1.0]], dtype=F64)
    (torch.relu(logits) - x * logits + torch.log1p(torch.exp(-logits.abs()))).sum().backward()
    assert torch.equal(logits.grad, -x)
    clamped = logits.detach().clone().requires_grad_(True)
    (clamped.clamp(min=0) - x * clamped + torch.log1p(torch.exp(-clamped.abs()))).sum().backward()
    assert torch.equal(clamped.grad, 1 - x)
    right = logits.detach().clone().requires_grad_(True)
    ref.bernoulli_nll(right, x).sum().backward()
    assert torch.equal(right.grad, 0.5 - x)


@pytest.mark.parametrize("sigma", [1.0, 0.3, 2.5, "tensor"])
def test_gaussian_nll_matches_normal_log_prob(sigma):
    rng = seeded("gaussian", sigma)
    mean = torch.randn(4, 2, 3, generator=rng, dtype=F64)
    x = torch.randn(4, 2, 3, generator=rng, dtype=F64)
    if sigma == "tensor":
        sigma = 0.2 + torch.rand(1, 2, 3, generator=rng, dtype=F64)
    expected = -Normal(mean, torch.as_tensor(sigma, dtype=F64)).log_prob(x).sum((1, 2))
    torch.testing.assert_close(ref.gaussian_nll(mean, x, sigma), expected, rtol=1e-12,
                               atol=1e-12)
    full = F.gaussian_nll_loss(mean, x, torch.as_tensor(sigma, dtype=F64).expand_as(x) ** 2,
                               full=True, reduction="sum")
    torch.testing.assert_close(ref.gaussian_nll(mean, x, sigma).sum(), full, rtol=1e-12,
                               atol=1e-12)


def test_sample_latent_is_the_reparameterized_generator_draw():
    mu = torch.randn(3, 4, generator=seeded("mu"), dtype=F64)
    logvar = torch.randn(3, 4, generator=seeded("lv"), dtype=F64)
    z = ref.sample_latent(mu, logvar, torch.Generator().manual_seed(5))
    eps = torch.randn(3, 4, generator=torch.Generator().manual_seed(5), dtype=F64)
    assert_close(z, mu + torch.exp(0.5 * logvar) * eps)
    assert_close(ref.reparameterize(mu, logvar, eps), z)


def torch_twin_decoder(decoder: ref.Decoder) -> nn.Module:
    """The reference decoder rebuilt from torch.nn layers (nn.ConvTranspose2d) with its weights."""

    class Twin(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(decoder.fc.in_features, 256).to(F64)
            self.up1 = nn.ConvTranspose2d(16, 8, 3, stride=2, padding=1, output_padding=1).to(F64)
            self.up2 = nn.ConvTranspose2d(8, 1, 3, padding=1).to(F64)

        def forward(self, z: torch.Tensor) -> torch.Tensor:
            h = torch.relu(self.fc(z)).reshape(-1, 16, 4, 4)
            return self.up2(torch.relu(self.up1(h)))

    twin = Twin()
    twin.load_state_dict(decoder.state_dict())
    return twin


def test_decoder_and_vae_loss_match_torch_nn():
    with seeding.seeded(0):
        vae = ref.VAE(3).to(F64)
    twin = torch_twin_decoder(vae.decoder)
    x = torch.rand(5, 1, 8, 8, generator=seeded("x"), dtype=F64)
    eps = torch.randn(5, 3, generator=seeded("eps"), dtype=F64)
    loss, reconstruction, kl = vae.loss(x, eps, beta=0.5)
    mu, logvar = vae.encoder(x).chunk(2, dim=1)
    logits = twin(mu + torch.exp(0.5 * logvar) * eps)
    expected_reconstruction = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / 5
    expected_kl = (-0.5 * (1 + logvar - mu ** 2 - logvar.exp()).sum(1)).mean()
    torch.testing.assert_close(reconstruction, expected_reconstruction, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(kl, expected_kl, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(loss, expected_reconstruction + 0.5 * expected_kl, rtol=1e-12,
                               atol=1e-12)
    loss.backward()
    (expected_reconstruction + 0.5 * expected_kl).backward()
    for name, param in twin.named_parameters():
        torch.testing.assert_close(vae.decoder.get_parameter(name).grad, param.grad, rtol=1e-10,
                                   atol=1e-12)
    assert ref.VAE(2).sample(4, torch.Generator().manual_seed(0)).shape == (4, 1, 8, 8)


def test_trusted_stand_ins_agree_with_the_reference_and_are_restored():
    namespace = checks_namespace()
    for name, trusted in (("Encoder", namespace["TrustedEncoder"]),
                          ("Decoder", namespace["TrustedDecoder"])):
        with seeding.seeded(0):
            ours, theirs = getattr(ref, name)(4).to(F64), trusted(4).to(F64)
        theirs.load_state_dict(ours.state_dict())
        inputs = torch.rand(3, 1, 8, 8, dtype=F64, generator=seeded("in")) \
            if name == "Encoder" else torch.randn(3, 4, dtype=F64, generator=seeded("in"))
        torch.testing.assert_close(theirs(inputs), ours(inputs), rtol=1e-12, atol=1e-12)

    api = SimpleNamespace(_source={"Encoder": "student's", "x": 1})
    with namespace["trusted_names"](api, "Encoder", "Decoder"):
        assert api._source["Encoder"] is namespace["TrustedEncoder"]
        assert api._source["Decoder"] is namespace["TrustedDecoder"]
    assert api._source == {"Encoder": "student's", "x": 1}


def test_statistical_bounds_stated_in_the_checks_hold():
    namespace = checks_namespace()
    n = namespace["DRAWS"]
    mean_tail = math.erfc(namespace["MEAN_BOUND"] / math.sqrt(2))
    delta = namespace["SQUARE_BOUND"]
    upper = math.exp(-n / 2 * (delta - math.log1p(delta)))
    lower = math.exp(-n / 2 * (-delta - math.log1p(-delta)))
    assert mean_tail + upper + lower < 2.7e-12
    assert 48 * (mean_tail + upper + lower) < 1.3e-10


def test_transposed_convolution_layer_in_the_decoder_is_forbidden(tmp_path, grade_file):
    code = """
class Decoder(Decoder):
    def __init__(self, latent_dims):
        super().__init__(latent_dims)
        self.up1 = nn.ConvTranspose2d(16, 8, 3, stride=2, padding=1, output_padding=1)
"""
    results = grade_file(CHAPTER, notebook_with_extra_cell(CHAPTER, code,
                                                           tmp_path / f"{CHAPTER}.ipynb"))
    failed = failed_items(results)
    # the autoencoder and the VAE are graded with the grader's own decoder (their checks replace
    # Decoder), so the forbidden layer costs only the decoder's items
    assert {item.split(":")[0] for item in failed} == {"Decoder"}
    assert "conv_transpose2d: y" not in failed
    decoder_output = next(t["output"] for t in results["tests"] if "Decoder: logits" in t["name"])
    assert "torch.nn.ConvTranspose2d" in decoder_output


def test_checks_module_loads_with_its_forbidden_list():
    chapter = load_checks_namespace(CHECKS_PATH.read_text(), str(CHECKS_PATH))
    assert "torch.nn.functional.conv_transpose2d" in chapter.forbidden
    assert "torch.nn.Conv2d" not in chapter.forbidden


def test_clamped_kl_gets_the_clamping_hint_and_its_gradient_no_gradient_hint(tmp_path, grade_file):
    """A KL that clamps logvar fails only the extreme case: the kl message names clamping,
    and grad_logvar, computed from the same wrong forward, says to fix kl first instead of
    blaming a detached graph."""
    code = """
def kl_divergence(mu, logvar):
    logvar = logvar.clamp(-10, 10)
    per_dimension = 0.5 * (torch.exp(logvar) + mu ** 2 - 1 - logvar)
    return per_dimension.reshape(per_dimension.shape[0], -1).sum(dim=1)
"""
    results = grade_file(CHAPTER, notebook_with_extra_cell(CHAPTER, code,
                                                           tmp_path / f"{CHAPTER}.ipynb"))
    outputs = {test["name"].split(" ", 1)[1]: test["output"] for test in results["tests"]}
    assert {name for name in failed_items(results)} == {"kl_divergence: kl",
                                                        "kl_divergence: grad_logvar"}
    assert "do not clamp" in outputs["kl_divergence: kl"]
    gradient = outputs["kl_divergence: grad_logvar"]
    assert "Fix 'kl_divergence: kl' first" in gradient and ".detach()" not in gradient


def test_a_wrong_kl_formula_is_not_told_about_clamping(tmp_path, grade_file):
    """The clamping hint is a case hint: shown only when the extreme case alone fails."""
    code = """
def kl_divergence(mu, logvar):
    per_dimension = 0.5 * (torch.exp(logvar) + mu ** 2 - 1 - 0.5 * logvar)
    return per_dimension.reshape(per_dimension.shape[0], -1).sum(dim=1)
"""
    results = grade_file(CHAPTER, notebook_with_extra_cell(CHAPTER, code,
                                                           tmp_path / f"{CHAPTER}.ipynb"))
    outputs = {test["name"].split(" ", 1)[1]: test["output"] for test in results["tests"]}
    assert "kl_divergence: kl" in failed_items(results)
    assert "not log sigma" in outputs["kl_divergence: kl"]
    assert "do not clamp" not in outputs["kl_divergence: kl"]
