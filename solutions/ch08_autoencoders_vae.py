"""Reference implementation of chapter 08 (autoencoders, transposed convolution, the VAE): the
grading oracle.

Never shipped to students. ``conv_transpose2d`` is written from scratch (one batched product
per kernel offset, scattered into a strided view of the output); everything else uses autograd
and ordinary ``torch.nn`` layers. Conventions (those of PyTorch and of the notebook):

* images (N, C, H, W); a transposed-convolution weight is (C_in, C_out, k, k), as in
  ``torch.nn.functional.conv_transpose2d``; output size (H - 1) * stride - 2 * padding + k +
  output_padding;
* losses are per example, (N,), summed over every non-batch dimension;
* the VAE's encoder is ``Encoder(2 * latent_dims)``: the first half of its output is mu, the
  second half log sigma^2.

Two copies of the reference, by rule: this module (the grading oracle that writes the expected
data) and the master's solution blocks (what the released solution notebook runs) are kept as
independent oracles, neither generated from the other; ``tests/test_check_coverage.py`` runs
every check's exercise on both and compares them with the kit's comparison rule.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

IMAGE_SIZE = 8
HIDDEN_CHANNELS = (8, 16)  # channels after conv1 and conv2 (the decoder mirrors them)


# ------------------------------------------------------------------ q1: concepts and shapes
def conv_transpose_output_size(
    size: int, kernel_size: int, stride: int = 1, padding: int = 0, output_padding: int = 0
) -> int:
    """Length of a transposed convolution's output along one axis."""
    return (size - 1) * stride - 2 * padding + kernel_size + output_padding


def kl_by_hand() -> float:
    """KL(N(mu, diag(sigma^2)) || N(0, I)) for mu = (1, 0), sigma = (0.5, 2)."""
    return 0.5 * (0.25 + 1 - 1) - math.log(0.5) + 0.5 * (4 + 0 - 1) - math.log(2.0)


def conv_transpose2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: int = 1,
    padding: int = 0,
    output_padding: int = 0,
) -> torch.Tensor:
    """Transposed 2-D convolution, from scratch (einsum, then fold).

    x (N, C_in, H, W), weight (C_in, C_out, k, k), bias (C_out,) or None
    -> (N, C_out, H_out, W_out), H_out = (H - 1) * stride - 2 * padding + k + output_padding.

    Every input pixel x[n, c, i, j] adds x[n, c, i, j] * weight[c, :, u, v] to the output at
    (i * stride + u - padding, j * stride + v - padding); positions outside are cropped.
    """
    n, _, h, w = x.shape
    k, c_out = weight.shape[2], weight.shape[1]
    h_out = conv_transpose_output_size(h, k, stride, padding, output_padding)
    w_out = conv_transpose_output_size(w, k, stride, padding, output_padding)
    # each input pixel's contribution, a k x k patch per output channel (the columns of im2col)
    columns = torch.einsum("nchw,cdkl->ndklhw", x, weight).reshape(n, c_out * k * k, h * w)
    # fold (col2im) adds every patch into place at stride `stride`: the uncropped output
    full = F.fold(columns, ((h - 1) * stride + k, (w - 1) * stride + k), k, stride=stride)
    # output_padding extends the bottom and right edges; padding is cropped from every edge
    full = F.pad(full, (0, output_padding, 0, output_padding))
    out = full[:, :, padding : padding + h_out, padding : padding + w_out]
    if bias is not None:
        out = out + bias.reshape(1, -1, 1, 1)
    return out


class UpConv2d(nn.Module):
    """Given layer: a transposed convolution holding weight (C_in, C_out, k, k) and bias
    (C_out,), initialised as ``nn.ConvTranspose2d`` does, calling ``conv_transpose2d``."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        output_padding: int = 0,
    ):
        super().__init__()
        self.stride, self.padding, self.output_padding = stride, padding, output_padding
        self.weight = nn.Parameter(torch.empty(in_channels, out_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.empty(out_channels))
        bound = 1.0 / math.sqrt(out_channels * kernel_size * kernel_size)
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return conv_transpose2d(
            x, self.weight, self.bias, self.stride, self.padding, self.output_padding
        )


# ----------------------------------------------------------- q2: the reparameterization trick
def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """z = mu + exp(0.5 * logvar) * eps; all three of the same shape."""
    return mu + torch.exp(0.5 * logvar) * eps


def sample_latent(
    mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """z ~ N(mu, exp(logvar)) elementwise, the noise drawn from ``generator``."""
    eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)
    return reparameterize(mu, logvar, eps)


# ------------------------------------------------------------------------- q3: the KL term
def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per example: (N, ...) -> (N,)."""
    per_dim = 0.5 * (torch.exp(logvar) + mu * mu - 1.0 - logvar)
    return per_dim.reshape(per_dim.shape[0], -1).sum(dim=1)


# ------------------------------------------------------------------ q4: likelihoods
def bernoulli_nll(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """-log Bernoulli(x | sigmoid(logits)) per example, summed: (N, ...) -> (N,).

    log(1 + exp(l)) - x * l, with log(1 + exp(l)) = logaddexp(0, l): stable for any l and with
    the right gradient, sigmoid(l) - x, everywhere (also at l = 0).
    """
    per_pixel = torch.logaddexp(torch.zeros_like(logits), logits) - x * logits
    return per_pixel.reshape(per_pixel.shape[0], -1).sum(dim=1)


def gaussian_nll(
    mean: torch.Tensor, x: torch.Tensor, sigma: float | torch.Tensor = 1.0
) -> torch.Tensor:
    """-log N(x | mean, sigma^2) per example, summed: (N, ...) -> (N,); sigma a standard
    deviation (a float or a tensor broadcastable to x)."""
    sigma_t = torch.as_tensor(sigma, dtype=mean.dtype, device=mean.device)
    per_pixel = 0.5 * ((x - mean) / sigma_t) ** 2 + torch.log(sigma_t) + 0.5 * math.log(2 * math.pi)
    per_pixel = per_pixel.expand(torch.broadcast_shapes(per_pixel.shape, x.shape))
    return per_pixel.reshape(per_pixel.shape[0], -1).sum(dim=1)


# -------------------------------------------------------------- q5: encoder, decoder, AE
class Encoder(nn.Module):
    """(N, 1, 8, 8) -> (N, out_features):
    conv1 = Conv2d(1, 8, 3, padding=1), ReLU, conv2 = Conv2d(8, 16, 3, stride=2, padding=1),
    ReLU, flatten (C, H, W order: 256), fc = Linear(256, out_features)."""

    def __init__(self, out_features: int):
        super().__init__()
        c1, c2 = HIDDEN_CHANNELS
        self.conv1 = nn.Conv2d(1, c1, 3, padding=1)
        self.conv2 = nn.Conv2d(c1, c2, 3, stride=2, padding=1)
        self.fc = nn.Linear(c2 * 4 * 4, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.conv1(x))
        h = torch.relu(self.conv2(h))
        return self.fc(h.flatten(1))


class Decoder(nn.Module):
    """(N, latent_dims) -> logits (N, 1, 8, 8):
    fc = Linear(latent_dims, 256), ReLU, reshape (N, 16, 4, 4),
    up1 = UpConv2d(16, 8, 3, stride=2, padding=1, output_padding=1) (4x4 -> 8x8), ReLU,
    up2 = UpConv2d(8, 1, 3, padding=1) (8x8 -> 8x8)."""

    def __init__(self, latent_dims: int):
        super().__init__()
        c1, c2 = HIDDEN_CHANNELS
        self.fc = nn.Linear(latent_dims, c2 * 4 * 4)
        self.up1 = UpConv2d(c2, c1, 3, stride=2, padding=1, output_padding=1)
        self.up2 = UpConv2d(c1, 1, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.fc(z)).reshape(z.shape[0], HIDDEN_CHANNELS[1], 4, 4)
        h = torch.relu(self.up1(h))
        return self.up2(h)


class Autoencoder(nn.Module):
    """encoder = Encoder(latent_dims), decoder = Decoder(latent_dims)."""

    def __init__(self, latent_dims: int):
        super().__init__()
        self.encoder = Encoder(latent_dims)
        self.decoder = Decoder(latent_dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (N, 1, 8, 8) -> reconstruction (N, 1, 8, 8), pixel values in (0, 1)."""
        return torch.sigmoid(self.decoder(self.encoder(x)))

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        """Mean squared error over every pixel of the batch (a scalar)."""
        return ((self(x) - x) ** 2).mean()


# ----------------------------------------------------------------------------- q6: the VAE
class VAE(nn.Module):
    """encoder = Encoder(2 * latent_dims) (mu, then logvar), decoder = Decoder(latent_dims)."""

    def __init__(self, latent_dims: int):
        super().__init__()
        self.latent_dims = latent_dims
        self.encoder = Encoder(2 * latent_dims)
        self.decoder = Decoder(latent_dims)

    def forward(
        self, x: torch.Tensor, eps: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (N, 1, 8, 8), eps (N, latent_dims) -> (logits (N, 1, 8, 8), mu, logvar)."""
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return self.decoder(reparameterize(mu, logvar, eps)), mu, logvar

    def loss(
        self, x: torch.Tensor, eps: torch.Tensor, beta: float = 1.0
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(reconstruction + beta * kl, reconstruction, kl), each the mean over the batch."""
        logits, mu, logvar = self(x, eps)
        reconstruction = bernoulli_nll(logits, x).mean()
        kl = kl_divergence(mu, logvar).mean()
        return reconstruction + beta * kl, reconstruction, kl

    def sample(self, num: int, generator: torch.Generator) -> torch.Tensor:
        """num images (num, 1, 8, 8) of pixel probabilities, z ~ N(0, I) from generator."""
        weight = self.decoder.fc.weight
        z = torch.randn(
            num, self.latent_dims, generator=generator, dtype=weight.dtype, device=weight.device
        )
        return torch.sigmoid(self.decoder(z))


# ------------------------------------------------------------- q7: read from the experiment
def latent_dims_needed() -> int:
    """The smallest latent size of {2, 8, 32} whose autoencoder reached a test MSE below
    0.01 in the experiment."""
    return 8
