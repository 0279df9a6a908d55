"""Hidden checks of chapter 08: transposed convolution, the reparameterization trick, the KL
term, the Bernoulli and Gaussian likelihoods, the encoder, decoder, autoencoder and VAE.

Never shipped to students. Everything runs in float64 on inputs drawn from the check's own
seeded generator. Students write ``nn.Module``s and autograd computes the gradients, so the
module checks install seeded parameters by name (``assign_parameters``: the architecture and
the submodule names are fixed in the notebook), back-propagate a seeded loss and grade outputs
and gradients as separate items. Every method is called twice in a row on different inputs and
the second call is graded, so state leaking from one call into the next is caught.

Isolation. A module naturally calls the student's own functions: ``UpConv2d`` (given) calls
``conv_transpose2d``, ``VAE.forward`` calls ``reparameterize``, ``VAE.loss`` calls
``bernoulli_nll`` and ``kl_divergence``, ``VAE`` and ``Autoencoder`` build ``Encoder`` and
``Decoder``. While a module check runs, :func:`trusted_names` puts trusted versions of those
names (defined below) into the student's namespace and restores the student's own afterwards,
so a broken ``conv_transpose2d`` or ``Encoder`` costs only its own items. In the same way
``conv_transpose2d`` is graded with the trusted ``conv_transpose_output_size``, and
``sample_latent`` with the trusted ``reparameterize``. A student who calls other names of their
own is graded with them. The one check that tests consistency between two functions on purpose
("KL vs Monte Carlo": the student's KL against the student's sampling) says so in its hint.
These checks declare the names they replace (``Check.replaces``), so the forbidden-API scan
does not charge a module for a forbidden call inside a replaced helper either (the decoder's
``nn.ConvTranspose2d`` costs the decoder's items, not the autoencoder's or the VAE's). The
``conv_transpose2d`` check replaces nothing: its first (warm-up) call runs outside the
substitution, with the student's own ``conv_transpose_output_size``.

Statistical items (``sample_latent``, ``VAE.sample``, "KL vs Monte Carlo") draw n = 50,000
samples per tested coordinate from the student's code and bound the sample mean and the mean of
squares of the standardised draws w (w ~ N(0, 1) when the code is right):

* P(|mean(w)| > 7 / sqrt(n)) = erfc(7 / sqrt(2)) = 2.56e-12 (the mean of n standard normals is
  N(0, 1/n));
* n * mean(w^2) is chi-square with n degrees of freedom; by the Chernoff bound,
  P(mean(w^2) > 1.05) <= exp(-n/2 (0.05 - ln 1.05)) = 7.3e-14 and
  P(mean(w^2) < 0.95) <= exp(-n/2 (-0.05 - ln 0.95)) = 9.1e-15.

So one coordinate fails a correct implementation with probability below 2.7e-12. The checks
test 28 coordinates (``sample_latent``: 4 + 12 + 12 over its cases), 8 (``VAE.sample``: 2 + 6)
and 12 ("KL vs Monte Carlo": 9 + 3): a correct implementation fails any of them with
probability below 48 * 2.7e-12 < 1.3e-10, far below 1e-9. The Monte-Carlo KL estimate is a
deterministic function of those two statistics (see :func:`exercise_kl_monte_carlo`), so its
bound holds with the same probability.
"""

import contextlib
import math

import torch
import torch.nn.functional as F
from torch import nn

from autograder.checks import Check, Output
from autograder.kit import (
    as_ints,
    assign_parameters,
    noncontiguous,
    randint,
    randn,
    run_independently,
    substituted,
    uniform,
)

_TRANSPOSED = (
    "ConvTranspose1d",
    "ConvTranspose2d",
    "ConvTranspose3d",
    "LazyConvTranspose1d",
    "LazyConvTranspose2d",
    "LazyConvTranspose3d",
)

# conv_transpose2d is written from scratch: every library transposed convolution is forbidden,
# and so are the routes around it (torch.convolution's transposed flag, the input gradient of
# a convolution in torch.nn.grad, torch.ops). Ordinary layers (nn.Conv2d, nn.Linear,
# F.conv2d, F.fold, F.pad) and autograd stay allowed.
FORBIDDEN = (
    "torch.nn.functional.conv_transpose1d",
    "torch.nn.functional.conv_transpose2d",
    "torch.nn.functional.conv_transpose3d",
    *(f"torch.nn.{name}" for name in _TRANSPOSED),
    *(f"torch.nn.modules.{name}" for name in _TRANSPOSED),
    *(f"torch.nn.modules.conv.{name}" for name in _TRANSPOSED),
    "torch.conv_transpose1d",
    "torch.conv_transpose2d",
    "torch.conv_transpose3d",
    "torch.cudnn_convolution_transpose",
    "torch.miopen_convolution_transpose",
    "torch.convolution",
    "torch.nn.grad",
    "torch.ao.nn",
    "torch.ops",
)

IMAGE = 8
CHANNELS = (8, 16)
MEAN_BOUND = 7.0  # in units of 1/sqrt(n); erfc(7/sqrt(2)) = 2.56e-12
SQUARE_BOUND = 0.05  # |mean(w^2) - 1|; Chernoff bounds 7.3e-14 and 9.1e-15 at n = 50,000
DRAWS = 50_000


# ---------------------------------------------------------------- trusted stand-ins
def trusted_conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0):
    """Zeros inserted between the input pixels, then an ordinary convolution with the kernel
    flipped and its channel axes swapped, then the padding cropped."""
    n, c_in, h, w = x.shape
    k = weight.shape[2]
    dilated = x.new_zeros(n, c_in, (h - 1) * stride + 1, (w - 1) * stride + 1)
    dilated[:, :, ::stride, ::stride] = x
    widened = F.pad(dilated, (k - 1, k - 1 + output_padding, k - 1, k - 1 + output_padding))
    full = F.conv2d(widened, weight.flip(2, 3).transpose(0, 1))
    h_out = (h - 1) * stride - 2 * padding + k + output_padding
    w_out = (w - 1) * stride - 2 * padding + k + output_padding
    out = full[:, :, padding : padding + h_out, padding : padding + w_out]
    return out if bias is None else out + bias.reshape(1, -1, 1, 1)


def trusted_output_size(size, kernel_size, stride=1, padding=0, output_padding=0):
    return (size - 1) * stride - 2 * padding + kernel_size + output_padding


def trusted_reparameterize(mu, logvar, eps):
    return mu + torch.exp(0.5 * logvar) * eps


def trusted_kl_divergence(mu, logvar):
    terms = 0.5 * (torch.exp(logvar) + mu * mu - 1.0 - logvar)
    return terms.reshape(terms.shape[0], -1).sum(dim=1)


def trusted_bernoulli_nll(logits, x):
    terms = torch.logaddexp(torch.zeros_like(logits), logits) - x * logits
    return terms.reshape(terms.shape[0], -1).sum(dim=1)


class TrustedUpConv2d(nn.Module):
    def __init__(self, c_in, c_out, k, stride=1, padding=0, output_padding=0):
        super().__init__()
        self.settings = (stride, padding, output_padding)
        self.weight = nn.Parameter(torch.zeros(c_in, c_out, k, k))
        self.bias = nn.Parameter(torch.zeros(c_out))

    def forward(self, x):
        return trusted_conv_transpose2d(x, self.weight, self.bias, *self.settings)


class TrustedEncoder(nn.Module):
    def __init__(self, out_features):
        super().__init__()
        self.conv1 = nn.Conv2d(1, CHANNELS[0], 3, padding=1)
        self.conv2 = nn.Conv2d(CHANNELS[0], CHANNELS[1], 3, stride=2, padding=1)
        self.fc = nn.Linear(CHANNELS[1] * 16, out_features)

    def forward(self, x):
        h = torch.relu(self.conv2(torch.relu(self.conv1(x))))
        return self.fc(h.reshape(h.shape[0], -1))


class TrustedDecoder(nn.Module):
    def __init__(self, latent_dims):
        super().__init__()
        self.fc = nn.Linear(latent_dims, CHANNELS[1] * 16)
        self.up1 = TrustedUpConv2d(CHANNELS[1], CHANNELS[0], 3, 2, 1, 1)
        self.up2 = TrustedUpConv2d(CHANNELS[0], 1, 3, 1, 1, 0)

    def forward(self, z):
        h = torch.relu(self.fc(z)).reshape(z.shape[0], CHANNELS[1], 4, 4)
        return self.up2(torch.relu(self.up1(h)))


TRUSTED = {
    "conv_transpose_output_size": trusted_output_size,
    "conv_transpose2d": trusted_conv_transpose2d,
    "reparameterize": trusted_reparameterize,
    "kl_divergence": trusted_kl_divergence,
    "bernoulli_nll": trusted_bernoulli_nll,
    "Encoder": TrustedEncoder,
    "Decoder": TrustedDecoder,
}


def trusted_names(api, *names):
    """Puts the trusted versions of ``names`` into the implementation's namespace (the
    student's globals, or the reference module at build time) while the block runs."""
    return substituted(api, **{name: TRUSTED[name] for name in names})


# ------------------------------------------------------------------- seeded parameters
def encoder_shapes(out_features):
    c1, c2 = CHANNELS
    return {
        "conv1.weight": (c1, 1, 3, 3),
        "conv1.bias": (c1,),
        "conv2.weight": (c2, c1, 3, 3),
        "conv2.bias": (c2,),
        "fc.weight": (out_features, c2 * 16),
        "fc.bias": (out_features,),
    }


def decoder_shapes(latent_dims):
    c1, c2 = CHANNELS
    return {
        "fc.weight": (c2 * 16, latent_dims),
        "fc.bias": (c2 * 16,),
        "up1.weight": (c2, c1, 3, 3),
        "up1.bias": (c1,),
        "up2.weight": (c1, 1, 3, 3),
        "up2.bias": (1,),
    }


def seeded_values(rng, shapes):
    """Weights ~ N(0, (1.5 / fan_in)^2 * fan_in) that keep activations of order 1 (fan_in: the
    number of terms summed into one output), biases ~ N(0, 0.25)."""
    values = {}
    for name, shape in shapes.items():
        if len(shape) == 1:
            values[name] = 0.5 * randn(rng, *shape)
            continue
        if name.startswith("up"):  # (C_in, C_out, k, k); stride 2 in up1 spreads the terms
            fan_in = shape[0] * shape[2] * shape[3] / (4 if name.startswith("up1") else 1)
        else:  # Conv2d (C_out, C_in, k, k) or Linear (out, in)
            fan_in = math.prod(shape[1:])
        values[name] = randn(rng, *shape) * (1.5 / math.sqrt(fan_in))
    return values


def module_layouts(prefix, shapes):
    return {
        prefix + name: "("
        + ", ".join(str(n) for n in shape)
        + ("," if len(shape) == 1 else "")
        + ")"
        for name, shape in shapes.items()
    }


def install(module, prefix, rng, shapes):
    """Draws and installs parameters named ``prefix + name``; returns them by full name."""
    values = {prefix + name: value for name, value in seeded_values(rng, shapes).items()}
    assign_parameters(module, values, module_layouts(prefix, shapes))
    return values


def parameter(module, dotted):
    for part in dotted.split("."):
        module = getattr(module, part)
    return module


def digits_like(rng, n):
    """(n, 1, 8, 8) pixel intensities in [0, 1], some exactly 0 or 1 (as in the data)."""
    x = uniform(rng, n, 1, IMAGE, IMAGE, low=-0.3, high=1.3)
    return x.clamp(0.0, 1.0)


def concatenated_grads(module, names):
    """Every parameter's .grad flattened and concatenated (missing ones raise)."""
    grads = []
    for name in names:
        grad = parameter(module, name).grad
        if grad is None:
            raise RuntimeError(
                f"no gradient reached {name}: compute with the parameters "
                f"themselves (no .data, .detach() or torch.no_grad())"
            )
        grads.append(grad.reshape(-1))
    return torch.cat(grads)


def as_float(value, function_name):
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise TypeError(
                f"{function_name} returned a tensor of shape {tuple(value.shape)}; "
                f"return one number"
            )
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{function_name} returned {type(value).__name__}; return a float")
    return torch.tensor(float(value), dtype=torch.float64)


def standard_normal_tests(w):
    """w (n, columns): [every column's mean within 7/sqrt(n), every column's mean square within
    1 +- 0.05] as a bool tensor of 2 (see the module docstring for the failure probability)."""
    if not torch.isfinite(w).all():
        return torch.tensor([False, False])
    n = w.shape[0]
    mean_ok = bool((w.mean(dim=0).abs() <= MEAN_BOUND / math.sqrt(n)).all())
    square_ok = bool(((w * w).mean(dim=0) - 1.0).abs().le(SQUARE_BOUND).all())
    return torch.tensor([mean_ok, square_ok])


# --------------------------------------------------------- q1: transposed convolution
def exercise_output_size(api, case, rng, out):
    out["sizes"] = as_ints(
        [api.conv_transpose_output_size(*row) for row in case["rows"]], "conv_transpose_output_size"
    )


def exercise_conv_transpose(api, case, rng, out):
    n, c_in, c_out, h, w = case["N"], case["C_in"], case["C_out"], case["H"], case["W"]
    k, s, p, op = case["k"], case["stride"], case["padding"], case["output_padding"]
    h_out, w_out = (h - 1) * s - 2 * p + k + op, (w - 1) * s - 2 * p + k + op
    warmup_x = randn(rng, n + 1, c_in, h, w)
    warmup_w = randn(rng, c_in, c_out, k, k)
    x = randn(rng, n, c_in, h, w)
    weight = randn(rng, c_in, c_out, k, k)
    bias = randn(rng, c_out)
    dy = randn(rng, n, c_out, h_out, w_out)
    if case.get("noncontiguous"):
        x, weight = noncontiguous(x), noncontiguous(weight)
    out.watch(x=x, weight=weight, bias=bias)
    api.conv_transpose2d(warmup_x, warmup_w, None, stride=s, padding=p, output_padding=op)
    # clone() keeps the (non-contiguous) strides
    x_leaf, w_leaf, b_leaf = (t.detach().clone().requires_grad_(True) for t in (x, weight, bias))

    def with_bias():
        y = api.conv_transpose2d(x_leaf, w_leaf, b_leaf, stride=s, padding=p, output_padding=op)
        out["y"] = y
        try:
            (y * dy).sum().backward()
        finally:
            for name, leaf in (("dx", x_leaf), ("grad_weight", w_leaf), ("grad_bias", b_leaf)):
                if leaf.grad is not None:
                    out[name] = leaf.grad

    def without_bias():
        if case.get("positional"):
            out["no_bias"] = api.conv_transpose2d(x, weight, None, s, p, op)
        elif s == 1 and p == 0 and op == 0:
            out["no_bias"] = api.conv_transpose2d(x, weight)
        else:
            out["no_bias"] = api.conv_transpose2d(x, weight, stride=s, padding=p, output_padding=op)

    with trusted_names(api, "conv_transpose_output_size"):
        run_independently(with_bias, without_bias)


CONV_T_CASES = (
    {
        "N": 1,
        "C_in": 1,
        "C_out": 1,
        "H": 3,
        "W": 3,
        "k": 3,
        "stride": 1,
        "padding": 0,
        "output_padding": 0,
    },
    {
        "N": 2,
        "C_in": 3,
        "C_out": 2,
        "H": 4,
        "W": 5,
        "k": 3,
        "stride": 2,
        "padding": 1,
        "output_padding": 1,
    },
    {
        "N": 2,
        "C_in": 2,
        "C_out": 3,
        "H": 5,
        "W": 4,
        "k": 4,
        "stride": 2,
        "padding": 1,
        "output_padding": 0,
    },
    {
        "N": 1,
        "C_in": 3,
        "C_out": 2,
        "H": 3,
        "W": 4,
        "k": 3,
        "stride": 3,
        "padding": 1,
        "output_padding": 2,
    },
    {
        "N": 3,
        "C_in": 2,
        "C_out": 4,
        "H": 4,
        "W": 3,
        "k": 5,
        "stride": 3,
        "padding": 2,
        "output_padding": 1,
        "positional": True,
    },
    {
        "N": 2,
        "C_in": 4,
        "C_out": 3,
        "H": 5,
        "W": 5,
        "k": 1,
        "stride": 1,
        "padding": 0,
        "output_padding": 0,
    },
    {
        "N": 2,
        "C_in": 2,
        "C_out": 2,
        "H": 3,
        "W": 3,
        "k": 2,
        "stride": 2,
        "padding": 0,
        "output_padding": 1,
    },
    {
        "N": 1,
        "C_in": 2,
        "C_out": 3,
        "H": 6,
        "W": 5,
        "k": 3,
        "stride": 1,
        "padding": 1,
        "output_padding": 0,
        "noncontiguous": True,
    },
    {
        "N": 2,
        "C_in": 3,
        "C_out": 1,
        "H": 2,
        "W": 3,
        "k": 4,
        "stride": 3,
        "padding": 0,
        "output_padding": 2,
        "noncontiguous": True,
    },
    {
        "N": 2,
        "C_in": 1,
        "C_out": 2,
        "H": 4,
        "W": 4,
        "k": 3,
        "stride": 2,
        "padding": 2,
        "output_padding": 0,
    },
)


# ---------------------------------------------------- q2: reparameterize, sample_latent
def latent_pair(rng, shape, mu_scale=2.0, logvar_low=-4.0, logvar_high=2.0):
    return mu_scale * randn(rng, *shape), uniform(rng, *shape, low=logvar_low, high=logvar_high)


def exercise_reparameterize(api, case, rng, out):
    shape = tuple(case["shape"])
    api.reparameterize(*latent_pair(rng, shape), randn(rng, *shape))  # a first call
    mu, logvar = latent_pair(rng, shape, **case.get("range", {}))
    eps = randn(rng, *shape)
    weights = randn(rng, *shape)
    out.watch(mu=mu, logvar=logvar, eps=eps)
    leaves = {
        name: t.detach().clone().requires_grad_(True)
        for name, t in (("mu", mu), ("logvar", logvar), ("eps", eps))
    }
    z = api.reparameterize(leaves["mu"], leaves["logvar"], leaves["eps"])
    out["z"] = z
    try:
        (z * weights).sum().backward()
    finally:
        for name, leaf in leaves.items():
            if leaf.grad is not None:
                out["grad_" + name] = leaf.grad


REPARAMETERIZE_CASES = (
    {"shape": (1, 1)},
    {"shape": (4, 3)},
    {"shape": (2, 5), "range": {"mu_scale": 1000.0, "logvar_low": -30.0, "logvar_high": 30.0}},
    {"shape": (3, 2, 4)},
)


def exercise_sample_latent(api, case, rng, out):
    shape = tuple(case["shape"])
    mu, logvar = latent_pair(rng, shape)
    big_mu = mu.repeat(DRAWS, *([1] * (len(shape) - 1)))
    big_logvar = logvar.repeat(DRAWS, *([1] * (len(shape) - 1)))
    seed = int(randint(rng, 2**31, 1))
    out.watch(mu=big_mu, logvar=big_logvar)

    def draws():
        first = api.sample_latent(big_mu, big_logvar, torch.Generator().manual_seed(seed))
        again = api.sample_latent(big_mu, big_logvar, torch.Generator().manual_seed(seed))
        other = api.sample_latent(big_mu, big_logvar, torch.Generator().manual_seed(seed + 1))
        if tuple(again.shape) != tuple(big_mu.shape):
            raise AssertionError(
                f"sample_latent returned shape {tuple(again.shape)} for mu of "
                f"shape {tuple(big_mu.shape)}: z has the shape of mu"
            )
        out["reproducible"] = torch.tensor(
            [bool(torch.equal(first, again)), not bool(torch.equal(again, other))]
        )
        w = (again.detach().to(torch.float64) - big_mu) / torch.exp(0.5 * big_logvar)
        out["distribution"] = standard_normal_tests(w.reshape(DRAWS, -1))

    def gradients():
        mu_leaf = mu.clone().requires_grad_(True)
        logvar_leaf = logvar.clone().requires_grad_(True)
        weights = randn(torch.Generator().manual_seed(seed), *shape)
        z = api.sample_latent(mu_leaf, logvar_leaf, torch.Generator().manual_seed(seed))
        try:
            (z * weights).sum().backward()
        finally:
            if mu_leaf.grad is not None:
                out["grad_mu"] = mu_leaf.grad
            if logvar_leaf.grad is not None:
                # d z / d logvar = 0.5 * sigma * eps = 0.5 * (z - mu), whatever eps was drawn
                out["grad_logvar"] = logvar_leaf.grad - 0.5 * weights * (z.detach() - mu)

    with trusted_names(api, "reparameterize"):
        run_independently(draws, gradients)


SAMPLE_CASES = ({"shape": (1, 4)}, {"shape": (3, 4)}, {"shape": (2, 2, 3)})


# ------------------------------------------------------------------- q3: the KL term
def exercise_kl(api, case, rng, out):
    shape = tuple(case["shape"])
    api.kl_divergence(*latent_pair(rng, (shape[0] + 1, *shape[1:])))  # a first call
    mu, logvar = latent_pair(rng, shape, **case.get("range", {}))
    weights = randn(rng, shape[0])
    out.watch(mu=mu, logvar=logvar)
    mu_leaf, logvar_leaf = mu.clone().requires_grad_(True), logvar.clone().requires_grad_(True)
    kl = api.kl_divergence(mu_leaf, logvar_leaf)
    out["kl"] = kl
    try:
        (kl * weights).sum().backward()
    finally:
        if mu_leaf.grad is not None:
            out["grad_mu"] = mu_leaf.grad
        if logvar_leaf.grad is not None:
            out["grad_logvar"] = logvar_leaf.grad


# mu up to 1000 and logvar in [-30, 30]: float64 holds exp(30), so clamping is never needed
EXTREME_KL_RANGE = {"mu_scale": 1000.0, "logvar_low": -30.0, "logvar_high": 30.0}
KL_CASES = (
    {"shape": (1, 1)},
    {"shape": (4, 3)},
    {"shape": (3, 6), "range": EXTREME_KL_RANGE},
    {"shape": (2, 4), "range": {"mu_scale": 1e-3, "logvar_low": -1e-3, "logvar_high": 1e-3}},
    {"shape": (3, 2, 3)},
)


def exercise_kl_monte_carlo(api, case, rng, out):
    """KL = E_q[log q(z) - log p(z)]. With z = mu + sigma * w, per coordinate
    log q - log p = a * w^2 + b * w + c, a = (sigma^2 - 1) / 2, b = mu * sigma,
    c = mu^2 / 2 - log sigma, whose expectation is a + c = KL. So the Monte-Carlo average minus
    the KL is a * (mean(w^2) - 1) + b * mean(w), at most |a| * 0.05 + |b| * 7 / sqrt(n) per
    coordinate whenever the statistics of the module docstring hold (probability above
    1 - 1e-10 for correct sampling)."""
    n_examples, dims = case["N"], case["D"]
    mu, logvar = latent_pair(
        rng, (n_examples, dims), mu_scale=1.0, logvar_low=-1.5, logvar_high=1.0
    )
    seed = int(randint(rng, 2**31, 1))
    with trusted_names(api, "reparameterize"):
        z = (
            api.sample_latent(
                mu.repeat(DRAWS, 1), logvar.repeat(DRAWS, 1), torch.Generator().manual_seed(seed)
            )
            .detach()
            .to(torch.float64)
        )
    z = z.reshape(DRAWS, n_examples, dims)
    sigma = torch.exp(0.5 * logvar)
    log_q = -0.5 * ((z - mu) / sigma) ** 2 - torch.log(sigma)
    log_p = -0.5 * z * z
    estimate = (log_q - log_p).sum(dim=2).mean(dim=0)
    a, b = 0.5 * (sigma * sigma - 1.0), mu * sigma
    bound = (a.abs() * SQUARE_BOUND + b.abs() * MEAN_BOUND / math.sqrt(DRAWS)).sum(dim=1)
    kl = api.kl_divergence(mu, logvar)
    if tuple(kl.shape) != (n_examples,):
        raise AssertionError(
            f"kl_divergence returned shape {tuple(kl.shape)}, expected ({n_examples},)"
        )
    out["agrees"] = (kl.detach().to(torch.float64) - estimate).abs() <= bound + 1e-9


# ---------------------------------------------------------------- q4: likelihoods
def logits_with_extremes(rng, shape):
    """Logits of scale 3 with about a sixth exactly 0, a sixth +-100."""
    logits = 3.0 * randn(rng, *shape)
    kind = randint(rng, 6, *shape)
    logits = torch.where(kind == 0, torch.zeros_like(logits), logits)
    signs = torch.where(randn(rng, *shape) > 0, 100.0, -100.0).to(torch.float64)
    return torch.where(kind == 1, signs, logits)


def targets(rng, shape):
    x = uniform(rng, *shape, low=-0.25, high=1.25)
    return x.clamp(0.0, 1.0)


# Each row of the "ladder" case holds every large logit: at exactly +-100 a BCE taken on
# sigmoid(l) is right by accident (its log is clamped at -100, and log(1 - sigmoid(100)) is
# -100 up to 4e-44); at 30, 1 - sigmoid(l) keeps only about 3 digits, and at 200 it is 0,
# where the clamp gives -100 instead of -200.
LADDER = (30.0, -30.0, 100.0, -100.0, 200.0, -200.0, 0.0, 3.0)


def exercise_bernoulli(api, case, rng, out):
    shape = tuple(case["shape"])
    api.bernoulli_nll(logits_with_extremes(rng, shape), targets(rng, shape))  # a first call
    logits, x = logits_with_extremes(rng, shape), targets(rng, shape)
    if case.get("ladder"):
        logits = torch.tensor(LADDER, dtype=torch.float64).expand(shape[0], len(LADDER)).clone()
        x = targets(rng, logits.shape)
    weights = randn(rng, shape[0])
    out.watch(logits=logits, x=x)
    leaf = logits.clone().requires_grad_(True)
    nll = api.bernoulli_nll(leaf, x)
    out["nll"] = nll
    try:
        (nll * weights).sum().backward()
    finally:
        if leaf.grad is not None:
            out["grad_logits"] = leaf.grad


BERNOULLI_CASES = (
    {"shape": (1, 5)},
    {"shape": (4, 1, 4, 4)},
    {"shape": (3, 2, 3)},
    {"shape": (6, 8)},
    {"shape": (5, 8), "ladder": True},
)


def exercise_gaussian(api, case, rng, out):
    shape = tuple(case["shape"])
    mean, x = randn(rng, *shape), randn(rng, *shape) + 0.5
    weights = randn(rng, shape[0])
    sigma = case.get("sigma")
    if sigma == "tensor":
        sigma = uniform(rng, 1, *shape[1:], low=0.2, high=3.0)
    api.gaussian_nll(randn(rng, *shape), x)  # a first call, with the default sigma
    out.watch(mean=mean, x=x)
    leaf = mean.clone().requires_grad_(True)
    nll = api.gaussian_nll(leaf, x) if sigma is None else api.gaussian_nll(leaf, x, sigma)
    out["nll"] = nll
    try:
        (nll * weights).sum().backward()
    finally:
        if leaf.grad is not None:
            out["grad_mean"] = leaf.grad


GAUSSIAN_CASES = (
    {"shape": (1, 3)},
    {"shape": (4, 1, 3, 3), "sigma": 0.3},
    {"shape": (3, 5), "sigma": 2.5},
    {"shape": (2, 2, 4), "sigma": "tensor"},
)


# ---------------------------------------------------- q5: encoder, decoder, autoencoder
ENCODER_PARAMETERS = tuple(encoder_shapes(1))
DECODER_PARAMETERS = tuple(decoder_shapes(1))


def exercise_encoder(api, case, rng, out):
    n, features = case["N"], case["features"]
    encoder = api.Encoder(features)
    install(encoder, "", rng, encoder_shapes(features))
    encoder(digits_like(rng, n + 2))  # a first call
    x = digits_like(rng, n)
    if case.get("noncontiguous"):
        x = noncontiguous(x)
    weights = randn(rng, n, features)
    out.watch(x=x)
    leaf = x.detach().clone().requires_grad_(True)
    h = encoder(leaf)
    out["features"] = h
    try:
        (h * weights).sum().backward()
    finally:
        if leaf.grad is not None:
            out["grad_x"] = leaf.grad
        for name in ENCODER_PARAMETERS:
            grad = parameter(encoder, name).grad
            if grad is not None:
                out["grad_" + name] = grad


def exercise_decoder(api, case, rng, out):
    n, latent = case["N"], case["latent"]
    with trusted_names(api, "conv_transpose_output_size", "conv_transpose2d"):
        decoder = api.Decoder(latent)
        install(decoder, "", rng, decoder_shapes(latent))
        decoder(randn(rng, n + 1, latent))  # a first call
        z = randn(rng, n, latent)
        weights = randn(rng, n, 1, IMAGE, IMAGE)
        out.watch(z=z)
        leaf = z.clone().requires_grad_(True)
        logits = decoder(leaf)
        out["logits"] = logits
        try:
            (logits * weights).sum().backward()
        finally:
            if leaf.grad is not None:
                out["grad_z"] = leaf.grad
            for name in DECODER_PARAMETERS:
                grad = parameter(decoder, name).grad
                if grad is not None:
                    out["grad_" + name] = grad


MODULE_CASES = ({"N": 1, "latent": 2}, {"N": 3, "latent": 5}, {"N": 4, "latent": 8})
ENCODER_CASES = (
    {"N": 1, "features": 2},
    {"N": 3, "features": 6},
    {"N": 4, "features": 16, "noncontiguous": True},
)


def build_model(api, class_name, latent, rng):
    """The student's model with seeded parameters; encoder width 2 * latent for the VAE."""
    model = getattr(api, class_name)(latent)
    width = 2 * latent if class_name == "VAE" else latent
    install(model, "encoder.", rng, encoder_shapes(width))
    install(model, "decoder.", rng, decoder_shapes(latent))
    return model


MODEL_NAMES = ("conv_transpose_output_size", "conv_transpose2d", "Encoder", "Decoder")
VAE_NAMES = MODEL_NAMES + ("reparameterize", "kl_divergence", "bernoulli_nll")


def record_model_grads(out, model):
    enc = ["encoder." + name for name in ENCODER_PARAMETERS]
    dec = ["decoder." + name for name in DECODER_PARAMETERS]
    with contextlib.suppress(RuntimeError):
        out["grad_encoder"] = concatenated_grads(model, enc)
    with contextlib.suppress(RuntimeError):
        out["grad_decoder"] = concatenated_grads(model, dec)


def exercise_autoencoder(api, case, rng, out):
    n, latent = case["N"], case["latent"]
    with trusted_names(api, *MODEL_NAMES):
        model = build_model(api, "Autoencoder", latent, rng)
        first_x, x = digits_like(rng, n + 1), digits_like(rng, n)
        out.watch(x=x)

        def forward():
            model(first_x)
            out["reconstruction"] = model(x)

        def loss():
            model.loss(first_x)
            model.zero_grad()
            value = model.loss(x)
            out["loss"] = value
            try:
                value.backward()
            finally:
                record_model_grads(out, model)

        run_independently(forward, loss)


def exercise_vae(api, case, rng, out):
    n, latent, beta = case["N"], case["latent"], case.get("beta")
    with trusted_names(api, *VAE_NAMES):
        model = build_model(api, "VAE", latent, rng)
        first_x, first_eps = digits_like(rng, n + 1), randn(rng, n + 1, latent)
        x, eps = digits_like(rng, n), randn(rng, n, latent)
        out.watch(x=x, eps=eps)

        def forward():
            model(first_x, first_eps)
            result = model(x, eps)
            if not isinstance(result, (tuple, list)) or len(result) != 3:
                raise TypeError("VAE.forward(x, eps) returns the tuple (logits, mu, logvar)")
            for name, value in zip(("logits", "mu", "logvar"), result):
                out[name] = value

        def loss():
            model.loss(first_x, first_eps, 2.0)
            model.zero_grad()
            result = model.loss(x, eps) if beta is None else model.loss(x, eps, beta)
            if not isinstance(result, (tuple, list)) or len(result) != 3:
                raise TypeError(
                    "VAE.loss(x, eps, beta) returns the tuple (loss, reconstruction, kl)"
                )
            for name, value in zip(("loss", "reconstruction", "kl"), result):
                out[name] = value
            try:
                result[0].backward()
            finally:
                record_model_grads(out, model)

        run_independently(forward, loss)


VAE_CASES = (
    {"N": 1, "latent": 2},
    {"N": 4, "latent": 3, "beta": 0.25},
    {"N": 3, "latent": 5, "beta": 4.0},
    {"N": 5, "latent": 2, "beta": 1.0},
)


class ProbeDecoder(nn.Module):
    """Stands in for the VAE's decoder: the logits of pixel j < L are z_j, of pixel L + j are
    z_j / 2 - 1, the rest 0; z can be read back from the probabilities."""

    def __init__(self, latent_dims):
        super().__init__()
        self.latent_dims = latent_dims
        self.fc = nn.Linear(latent_dims, CHANNELS[1] * 16).to(torch.float64)

    def forward(self, z):
        if z.ndim != 2 or z.shape[1] != self.latent_dims:
            raise AssertionError(
                f"the decoder received z of shape {tuple(z.shape)}; expected "
                f"(num, {self.latent_dims})"
            )
        z = z.to(torch.float64)
        logits = z.new_zeros(z.shape[0], IMAGE * IMAGE)
        logits[:, : self.latent_dims] = z
        logits[:, self.latent_dims : 2 * self.latent_dims] = 0.5 * z - 1.0
        return logits.reshape(-1, 1, IMAGE, IMAGE)


def exercise_vae_sample(api, case, rng, out):
    latent = case["latent"]
    with trusted_names(api, *VAE_NAMES):
        model = build_model(api, "VAE", latent, rng)
        model.decoder = ProbeDecoder(latent)
        seed = int(randint(rng, 2**31, 1))
        model.sample(3, torch.Generator().manual_seed(seed + 7))  # a first call
        with torch.no_grad():
            first = model.sample(DRAWS, torch.Generator().manual_seed(seed))
            again = model.sample(DRAWS, torch.Generator().manual_seed(seed))
            other = model.sample(DRAWS, torch.Generator().manual_seed(seed + 1))
        if tuple(again.shape) != (DRAWS, 1, IMAGE, IMAGE):
            raise AssertionError(
                f"VAE.sample({DRAWS}, generator) returned shape "
                f"{tuple(again.shape)}, expected ({DRAWS}, 1, 8, 8)"
            )
        out["reproducible"] = torch.tensor(
            [bool(torch.equal(first, again)), not bool(torch.equal(again, other))]
        )
        p = again.detach().to(torch.float64).reshape(DRAWS, -1)
        z = torch.log(p[:, :latent]) - torch.log1p(-p[:, :latent])
        out["distribution"] = standard_normal_tests(z)
        expected = torch.sigmoid(0.5 * z - 1.0)
        residual = (p[:, latent : 2 * latent] - expected).abs().max()
        out["probabilities"] = torch.where(
            torch.isfinite(residual), residual, torch.tensor(math.inf, dtype=torch.float64)
        )


# ------------------------------------------------------------- q7: concept questions
def exercise_concepts(api, case, rng, out):
    def kl():
        out["kl_by_hand"] = as_float(api.kl_by_hand(), "kl_by_hand")

    def latent():
        answer = api.latent_dims_needed()
        as_ints([answer], "latent_dims_needed")
        out["latent_dims_needed"] = torch.tensor(answer in (8, 32))

    run_independently(kl, latent)


GRADIENT_HINT = (
    "Autograd computes this gradient from your forward pass: if the forward "
    "items pass, look for .detach(), .data, torch.no_grad() or a tensor rebuilt "
    "with torch.tensor(...) on the way from {what} to the output."
)


def grad_outputs(names, what_prefix):
    return tuple(
        Output("grad_" + name, points=0.25, hint=GRADIENT_HINT.format(what=f"{what_prefix}{name}"))
        for name in names
    )


CHECKS = [
    Check(
        name="conv_transpose_output_size",
        question="q1",
        uses=("conv_transpose_output_size",),
        exercise=exercise_output_size,
        cases=(
            {"rows": [[3, 3, 1, 0, 0], [4, 3, 2, 1, 1], [5, 4, 2, 1, 0], [7, 1, 1, 0, 0]]},
            {"rows": [[4, 5, 3, 2, 1], [2, 4, 3, 0, 2], [6, 3, 1, 1, 0], [1, 2, 2, 0, 1]]},
        ),
        outputs=(
            Output(
                "sizes",
                hint="(size - 1) * stride - 2 * padding + kernel_size + "
                "output_padding: stride spreads the input, the kernel "
                "adds k - 1, padding is cropped from both ends, "
                "output_padding adds rows at one end.",
            ),
        ),
    ),
    Check(
        name="conv_transpose2d",
        question="q1",
        uses=("conv_transpose2d",),
        exercise=exercise_conv_transpose,
        cases=CONV_T_CASES,
        timeout_s=30.0,
        outputs=(
            Output(
                "y",
                points=2.0,
                rtol=1e-9,
                atol=1e-9,
                hint="Every input pixel (i, j) adds x[n, c, i, j] * weight[c, :, u, v] at "
                "output (i*stride + u - padding, j*stride + v - padding): spread the "
                "input by the stride (zeros in between), never subsample it; crop the "
                "padding, never add it; as a convolution of the spread input the "
                "kernel is flipped and its two channel axes swapped.",
            ),
            Output("dx", points=1.0, rtol=1e-9, atol=1e-9, hint=GRADIENT_HINT.format(what="x")),
            Output(
                "grad_weight",
                points=1.0,
                rtol=1e-9,
                atol=1e-9,
                hint=GRADIENT_HINT.format(what="weight (C_in, C_out, k, k)"),
            ),
            Output(
                "grad_bias",
                points=0.5,
                rtol=1e-9,
                atol=1e-9,
                hint="The bias (C_out,) is added to every output pixel of its channel.",
            ),
            Output(
                "no_bias",
                points=0.5,
                rtol=1e-9,
                atol=1e-9,
                hint="bias=None (the default) adds nothing; stride, padding and "
                "output_padding also come as keyword or positional arguments.",
            ),
        ),
    ),
    Check(
        name="reparameterize",
        question="q2",
        uses=("reparameterize",),
        exercise=exercise_reparameterize,
        cases=REPARAMETERIZE_CASES,
        outputs=(
            Output(
                "z",
                rtol=1e-10,
                atol=1e-10,
                hint="z = mu + exp(0.5 * logvar) * eps: logvar is log sigma^2, so sigma is "
                "exp(logvar / 2), not exp(logvar).",
            ),
            Output("grad_mu", points=0.5, hint=GRADIENT_HINT.format(what="mu")),
            Output(
                "grad_logvar",
                points=0.5,
                rtol=1e-10,
                atol=1e-10,
                hint=GRADIENT_HINT.format(what="logvar"),
            ),
            Output(
                "grad_eps",
                points=0.5,
                rtol=1e-10,
                atol=1e-10,
                hint=GRADIENT_HINT.format(what="eps"),
            ),
        ),
    ),
    Check(
        name="sample_latent",
        question="q2",
        uses=("sample_latent",),
        replaces=("reparameterize",),
        exercise=exercise_sample_latent,
        cases=SAMPLE_CASES,
        timeout_s=30.0,
        outputs=(
            Output(
                "distribution",
                points=1.0,
                hint="z ~ N(mu, exp(logvar)) elementwise: standard normal noise "
                "(torch.randn, not torch.rand) of mu's shape, scaled by sigma = "
                "exp(logvar / 2), plus mu. The two flags are [means right, variances "
                "right], tested so that a correct sampler fails with probability "
                "below 1e-10.",
            ),
            Output(
                "reproducible",
                points=0.5,
                hint="Draw the noise from the generator you are given "
                "(torch.randn(shape, generator=generator, dtype=mu.dtype)), never "
                "from the global generator: the same seed must give the same z, "
                "another seed another z.",
            ),
            Output("grad_mu", points=0.5, hint=GRADIENT_HINT.format(what="mu")),
            Output(
                "grad_logvar",
                points=0.5,
                atol=1e-9,
                hint="This item is d z / d logvar - (z - mu) / 2, which is zero when the "
                "gradient flows through sigma = exp(logvar / 2). "
                + GRADIENT_HINT.format(what="logvar"),
            ),
        ),
    ),
    Check(
        name="kl_divergence",
        question="q3",
        uses=("kl_divergence",),
        exercise=exercise_kl,
        cases=KL_CASES,
        outputs=(
            Output(
                "kl",
                points=1.5,
                rtol=1e-9,
                atol=1e-9,
                hint="Per dimension 0.5 * (exp(logvar) + mu**2 - 1 - logvar), summed over "
                "every dimension but the batch: shape (N,). The form in some course "
                "notes, sigma**2 + mu**2 - log(sigma) - 1/2, doubles two terms, and "
                "logvar is log sigma^2, not log sigma.",
                case_hints=(
                    (
                        {"range": EXTREME_KL_RANGE},
                        "Only the case with logvar in [-30, 30] and |mu| up to 1000 fails: do "
                        "not clamp logvar or exp(logvar) (float64 holds exp(30)), and keep the "
                        "formula exact for large values.",
                    ),
                ),
            ),
            *(
                Output(
                    f"grad_{what}",
                    points=0.5,
                    rtol=1e-9,
                    atol=1e-9,
                    hint=GRADIENT_HINT.format(what=what),
                    needs=("kl",),
                )
                for what in ("mu", "logvar")
            ),
        ),
    ),
    Check(
        name="KL vs Monte Carlo",
        question="q3",
        uses=("kl_divergence", "sample_latent"),
        replaces=("reparameterize",),
        exercise=exercise_kl_monte_carlo,
        cases=({"N": 3, "D": 3}, {"N": 1, "D": 3}),
        timeout_s=30.0,
        outputs=(
            Output(
                "agrees",
                points=0.5,
                hint="Your kl_divergence should equal the average of log q(z) - log p(z) "
                "over 50,000 draws z of YOUR sample_latent (q = N(mu, exp(logvar)), "
                "p = N(0, I)); a flag per example. It fails when either function is "
                "wrong; the bound is loose enough that correct code fails with "
                "probability below 1e-10.",
            ),
        ),
    ),
    Check(
        name="bernoulli_nll",
        question="q4",
        uses=("bernoulli_nll",),
        exercise=exercise_bernoulli,
        cases=BERNOULLI_CASES,
        outputs=(
            Output(
                "nll",
                points=1.0,
                rtol=1e-10,
                atol=1e-10,
                hint="Per pixel log(1 + exp(l)) - x * l, computed stably (torch.logaddexp(0, "
                "l) or softplus; never sigmoid then log, nor a BCE on sigmoid(l): at "
                "l = 30, 1 - sigmoid(l) keeps 3 digits, at l = 200 it rounds to 0, and "
                "BCE's clamp of the log at -100 is right only at l = +-100), summed over "
                "every non-batch dimension: shape (N,).",
            ),
            Output(
                "grad_logits",
                points=1.0,
                rtol=1e-10,
                atol=1e-10,
                hint="The gradient is sigmoid(l) - x everywhere, also at l = 0 exactly, "
                "where autograd picks a one-sided derivative of max(l, 0) and |l|: "
                "the 'stable' form max(l, 0) - x*l + log1p(exp(-|l|)) gets -x or "
                "1 - x there. torch.logaddexp(0, l) - x*l is right everywhere.",
            ),
        ),
    ),
    Check(
        name="gaussian_nll",
        question="q4",
        uses=("gaussian_nll",),
        exercise=exercise_gaussian,
        cases=GAUSSIAN_CASES,
        outputs=(
            Output(
                "nll",
                points=1.0,
                rtol=1e-10,
                atol=1e-10,
                hint="Per pixel 0.5 * ((x - mean) / sigma)**2 + log(sigma) + "
                "0.5 * log(2 pi), sigma a standard deviation (default 1.0, a float or "
                "a tensor broadcastable to x), summed over every non-batch dimension.",
            ),
            Output(
                "grad_mean",
                points=0.5,
                rtol=1e-10,
                atol=1e-10,
                hint=GRADIENT_HINT.format(what="mean"),
            ),
        ),
    ),
    Check(
        name="Encoder",
        question="q5",
        uses=("Encoder",),
        exercise=exercise_encoder,
        cases=ENCODER_CASES,
        timeout_s=20.0,
        outputs=(
            Output(
                "features",
                points=1.0,
                rtol=1e-9,
                atol=1e-9,
                hint="conv1 (3x3, padding 1), ReLU, conv2 (3x3, stride 2, padding 1), "
                "ReLU, flatten in (C, H, W) order (x.flatten(1)), fc; no activation "
                "after fc.",
            ),
            Output(
                "grad_x", points=0.25, rtol=1e-9, atol=1e-9, hint=GRADIENT_HINT.format(what="x")
            ),
            *(
                Output(o.name, points=o.points, rtol=1e-9, atol=1e-9, hint=o.hint)
                for o in grad_outputs(ENCODER_PARAMETERS, "self.")
            ),
        ),
    ),
    Check(
        name="Decoder",
        question="q5",
        uses=("Decoder",),
        replaces=("conv_transpose_output_size", "conv_transpose2d"),
        exercise=exercise_decoder,
        cases=MODULE_CASES,
        timeout_s=20.0,
        outputs=(
            Output(
                "logits",
                points=1.0,
                rtol=1e-9,
                atol=1e-9,
                hint="fc, ReLU, reshape to (N, 16, 4, 4), up1, ReLU, up2; return logits "
                "(no sigmoid: the losses take logits).",
            ),
            Output(
                "grad_z", points=0.25, rtol=1e-9, atol=1e-9, hint=GRADIENT_HINT.format(what="z")
            ),
            *(
                Output(o.name, points=o.points, rtol=1e-9, atol=1e-9, hint=o.hint)
                for o in grad_outputs(DECODER_PARAMETERS, "self.")
            ),
        ),
    ),
    Check(
        name="Autoencoder",
        question="q5",
        uses=("Autoencoder",),
        replaces=MODEL_NAMES,
        exercise=exercise_autoencoder,
        cases=MODULE_CASES,
        timeout_s=20.0,
        outputs=(
            Output(
                "reconstruction",
                points=1.0,
                rtol=1e-9,
                atol=1e-9,
                hint="forward(x) = sigmoid(decoder(encoder(x))): pixel values in (0, 1).",
            ),
            Output(
                "loss",
                points=1.0,
                rtol=1e-9,
                atol=1e-9,
                hint="loss(x) is the mean squared error between forward(x) and x, averaged "
                "over every pixel of the batch (a 0-dim tensor).",
            ),
            Output(
                "grad_encoder",
                points=0.25,
                rtol=1e-9,
                atol=1e-9,
                hint=GRADIENT_HINT.format(what="the encoder's parameters"),
            ),
            Output(
                "grad_decoder",
                points=0.25,
                rtol=1e-9,
                atol=1e-9,
                hint=GRADIENT_HINT.format(what="the decoder's parameters"),
            ),
        ),
    ),
    Check(
        name="VAE",
        question="q6",
        uses=("VAE",),
        replaces=VAE_NAMES,
        exercise=exercise_vae,
        cases=VAE_CASES,
        pattern_axes=("N", "beta"),
        timeout_s=20.0,
        outputs=(
            Output(
                "logits",
                points=0.5,
                rtol=1e-9,
                atol=1e-9,
                hint="forward(x, eps): decode z = reparameterize(mu, logvar, eps); return "
                "the decoder's logits.",
            ),
            Output(
                "mu",
                points=0.5,
                rtol=1e-9,
                atol=1e-9,
                hint="mu is the FIRST latent_dims columns of the encoder's output, logvar "
                "the last latent_dims (encoder = Encoder(2 * latent_dims)).",
            ),
            Output(
                "logvar",
                points=0.5,
                rtol=1e-9,
                atol=1e-9,
                hint="logvar is the encoder's output columns latent_dims to "
                "2 * latent_dims, used as it is (no activation).",
            ),
            Output(
                "loss",
                points=0.5,
                rtol=1e-9,
                atol=1e-9,
                hint="loss = reconstruction + beta * kl (beta multiplies the KL, default 1.0).",
            ),
            Output(
                "reconstruction",
                points=0.5,
                rtol=1e-9,
                atol=1e-9,
                hint="reconstruction = bernoulli_nll(logits, x).mean(): summed over the "
                "pixels of an image, averaged over the batch, on the same scale as "
                "the KL (summed over latent dimensions).",
            ),
            Output(
                "kl",
                points=0.5,
                rtol=1e-9,
                atol=1e-9,
                hint="kl = kl_divergence(mu, logvar).mean(): averaged over the batch.",
            ),
            Output(
                "grad_encoder",
                points=0.5,
                rtol=1e-9,
                atol=1e-9,
                hint=GRADIENT_HINT.format(what="the encoder's parameters"),
            ),
            Output(
                "grad_decoder",
                points=0.5,
                rtol=1e-9,
                atol=1e-9,
                hint=GRADIENT_HINT.format(what="the decoder's parameters"),
            ),
        ),
    ),
    Check(
        name="VAE.sample",
        question="q6",
        uses=("VAE",),
        replaces=VAE_NAMES,
        exercise=exercise_vae_sample,
        cases=({"latent": 2}, {"latent": 6}),
        timeout_s=30.0,
        outputs=(
            Output(
                "distribution",
                points=1.0,
                hint="sample(num, generator) decodes z ~ N(0, I) of shape "
                "(num, latent_dims): standard normal (torch.randn), not uniform, not "
                "scaled. The two flags are [means right, variances right], tested so "
                "that a correct sampler fails with probability below 1e-10.",
            ),
            Output(
                "reproducible",
                points=0.5,
                hint="Draw z from the generator you are given: the same seed must give "
                "the same images, another seed other images.",
            ),
            Output(
                "probabilities",
                points=0.5,
                atol=1e-9,
                hint="Return pixel probabilities, torch.sigmoid(self.decoder(z)), not "
                "logits. This item is the largest error in the probabilities, "
                "measured through a stand-in decoder.",
            ),
        ),
    ),
    Check(
        name="concepts",
        question="q7",
        uses=("kl_by_hand", "latent_dims_needed"),
        exercise=exercise_concepts,
        cases=({},),
        public_gap="they check each answer's type and range (a positive float; an int among 2, "
        "8 and 32), not its value",
        outputs=(
            Output(
                "kl_by_hand",
                points=1.0,
                rtol=1e-6,
                atol=1e-6,
                hint="Sum over the two dimensions of 0.5 * (sigma**2 + mu**2 - 1) - log(sigma).",
            ),
            Output(
                "latent_dims_needed",
                points=0.5,
                hint="Read it from your autoencoder experiment: a latent size of 2 does "
                "not reach that error on these digits.",
            ),
        ),
    ),
]
