"""Bug zoo of chapter 08: mistakes students really make; each must lose exactly its items.

Each bug is a cell appended to the solution notebook that redefines one function, or subclasses
one class with one method broken. The module checks run with trusted stand-ins for the other
functions and classes (see ``checks.py``), so a bug costs only the items of what it breaks,
plus the "KL vs Monte Carlo" item when it breaks the KL or the sampling on purpose compared
there.
"""

from __future__ import annotations

from tools.zoo import Bug


def items(check: str, *outputs: str) -> set[str]:
    return {f"{check}: {output}" for output in outputs}


MONTE_CARLO = items("KL vs Monte Carlo", "agrees")
ENCODER_GRADS = tuple(
    f"grad_{layer}.{kind}" for layer in ("conv1", "conv2", "fc") for kind in ("weight", "bias")
)
DECODER_GRADS = tuple(
    f"grad_{layer}.{kind}" for layer in ("fc", "up1", "up2") for kind in ("weight", "bias")
)
ENCODER_ALL = items("Encoder", "features", "grad_x", *ENCODER_GRADS)
DECODER_ALL = items("Decoder", "logits", "grad_z", *DECODER_GRADS)
MODEL_GRADS = ("grad_encoder", "grad_decoder")
CONV_ALL = items("conv_transpose2d", "y", "dx", "grad_weight", "grad_bias", "no_bias")


def conv_transpose(body: str) -> str:
    """A conv_transpose2d whose body (after the shapes are read) is ``body``."""
    lines = "\n".join("    " + line for line in body.strip().splitlines())
    return f"""
def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0):
    n, c_in, h, w = x.shape
    k, c_out = weight.shape[2], weight.shape[1]
{lines}
"""


DILATE_PAD_CONVOLVE = """
dilated = x.new_zeros(n, c_in, (h - 1) * stride + 1, (w - 1) * stride + 1)
dilated[:, :, ::stride, ::stride] = x
widened = F.pad(dilated, (k - 1, k - 1 + output_padding, k - 1, k - 1 + output_padding))
full = F.conv2d(widened, {kernel})
h_out = (h - 1) * stride - 2 * padding + k + output_padding
w_out = (w - 1) * stride - 2 * padding + k + output_padding
{crop}
return y if bias is None else y + bias.reshape(1, -1, 1, 1)
"""
CROP = "y = full[:, :, padding:padding + h_out, padding:padding + w_out]"


def kl(expression: str) -> str:
    return f"""
def kl_divergence(mu, logvar):
    per_dimension = {expression}
    return per_dimension.reshape(per_dimension.shape[0], -1).sum(dim=1)
"""


def bernoulli(expression: str, reduce: str = "sum") -> str:
    return f"""
def bernoulli_nll(logits, x):
    per_pixel = {expression}
    return per_pixel.reshape(per_pixel.shape[0], -1).{reduce}(dim=1)
"""


def gaussian(expression: str, reduce: str = "sum") -> str:
    return f"""
def gaussian_nll(mean, x, sigma=1.0):
    sigma = torch.as_tensor(sigma, dtype=mean.dtype)
    per_pixel = {expression}
    return per_pixel.reshape(per_pixel.shape[0], -1).{reduce}(dim=1)
"""


def sample_latent(body: str) -> str:
    return f"""
def sample_latent(mu, logvar, generator):
    {body}
"""


def vae_loss(*body: str) -> str:
    lines = "\n".join("        " + line for line in body)
    return f"""
class VAE(VAE):
    def loss(self, x, eps, beta=1.0):
        logits, mu, logvar = self(x, eps)
{lines}
"""


def vae_sample(z: str, result: str = "torch.sigmoid(self.decoder(z))") -> str:
    return f"""
class VAE(VAE):
    def sample(self, num, generator):
        z = {z}
        return {result}
"""


RANDN_Z = (
    "torch.randn(num, self.latent_dims, generator=generator, dtype=self.decoder.fc.weight.dtype)"
)

BUGS = [
    # ---------------------------------------------------------- conv_transpose_output_size
    Bug(
        "output size ignores output_padding",
        items("conv_transpose_output_size", "sizes"),
        """
def conv_transpose_output_size(size, kernel_size, stride=1, padding=0, output_padding=0):
    return (size - 1) * stride - 2 * padding + kernel_size
""",
    ),
    Bug(
        "output size adds the padding",
        items("conv_transpose_output_size", "sizes"),
        """
def conv_transpose_output_size(size, kernel_size, stride=1, padding=0, output_padding=0):
    return (size - 1) * stride + 2 * padding + kernel_size + output_padding
""",
    ),
    Bug(
        "output size of the forward convolution",
        items("conv_transpose_output_size", "sizes"),
        """
def conv_transpose_output_size(size, kernel_size, stride=1, padding=0, output_padding=0):
    return (size + 2 * padding - kernel_size) // stride + 1
""",
    ),
    # -------------------------------------------------------------------- conv_transpose2d
    Bug(
        "transposed convolution without the kernel flip",
        CONV_ALL - items("conv_transpose2d", "grad_bias"),
        conv_transpose(DILATE_PAD_CONVOLVE.format(kernel="weight.transpose(0, 1)", crop=CROP)),
        pattern=None,
    ),
    Bug(
        "transposed convolution adds the padding instead of cropping it",
        CONV_ALL,
        conv_transpose(
            DILATE_PAD_CONVOLVE.format(
                kernel="weight.flip(2, 3).transpose(0, 1)",
                crop="y = F.pad(full[:, :, :(h - 1) * stride + k + output_padding, "
                ":(w - 1) * stride + k + output_padding], (padding,) * 4)",
            )
        ),
        pattern="padding",
    ),
    Bug(
        "transposed convolution subsamples the input with the stride",
        CONV_ALL,
        conv_transpose("""
x = x[:, :, ::stride, ::stride]
h, w = x.shape[2], x.shape[3]
widened = F.pad(x, (k - 1, k - 1 + output_padding, k - 1, k - 1 + output_padding))
full = F.conv2d(widened, weight.flip(2, 3).transpose(0, 1))
h_out = (h - 1) - 2 * padding + k + output_padding
w_out = (w - 1) - 2 * padding + k + output_padding
y = full[:, :, padding:padding + h_out, padding:padding + w_out]
return y if bias is None else y + bias.reshape(1, -1, 1, 1)
"""),
        pattern="stride",
    ),
    Bug(
        "transposed convolution forgets the bias",
        items("conv_transpose2d", "y", "grad_bias"),
        """
_conv_transpose2d = conv_transpose2d
def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0):
    return _conv_transpose2d(x, weight, None, stride, padding, output_padding)
""",
    ),
    # ---------------------------------------------------------------------- reparameterize
    Bug(
        "reparameterize scales by exp(logvar)",
        items("reparameterize", "z", "grad_logvar", "grad_eps"),
        """
def reparameterize(mu, logvar, eps):
    return mu + torch.exp(logvar) * eps
""",
    ),
    Bug(
        "reparameterize detaches mu",
        items("reparameterize", "grad_mu"),
        """
def reparameterize(mu, logvar, eps):
    return mu.detach() + torch.exp(0.5 * logvar) * eps
""",
    ),
    Bug(
        "reparameterize detaches sigma",
        items("reparameterize", "grad_logvar"),
        """
def reparameterize(mu, logvar, eps):
    return mu + torch.exp(0.5 * logvar).detach() * eps
""",
    ),
    # ----------------------------------------------------------------------- sample_latent
    Bug(
        "sample_latent ignores the generator",
        items("sample_latent", "reproducible"),
        sample_latent(
            "return mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, dtype=mu.dtype)"
        ),
    ),
    Bug(
        "sample_latent draws uniform noise",
        items("sample_latent", "distribution") | MONTE_CARLO,
        sample_latent(
            "return mu + torch.exp(0.5 * logvar) * torch.rand(mu.shape, generator=generator, dtype=mu.dtype)"
        ),
    ),
    Bug(
        "sample_latent uses the variance as the scale",
        items("sample_latent", "distribution", "grad_logvar") | MONTE_CARLO,
        sample_latent(
            "return mu + torch.exp(logvar) * torch.randn(mu.shape, generator=generator, dtype=mu.dtype)"
        ),
    ),
    # ----------------------------------------------------------------------- kl_divergence
    Bug(
        "the KL formula of some course notes",
        items("kl_divergence", "kl", "grad_mu", "grad_logvar") | MONTE_CARLO,
        kl("torch.exp(logvar) + mu ** 2 - 0.5 * logvar - 0.5"),
    ),
    Bug(
        "KL with logvar read as log sigma",
        items("kl_divergence", "kl", "grad_logvar") | MONTE_CARLO,
        kl("0.5 * (torch.exp(2 * logvar) + mu ** 2 - 1 - 2 * logvar)"),
    ),
    Bug(
        "KL averaged over the latent dimensions",
        items("kl_divergence", "kl", "grad_mu", "grad_logvar") | MONTE_CARLO,
        """
def kl_divergence(mu, logvar):
    per_dimension = 0.5 * (torch.exp(logvar) + mu ** 2 - 1 - logvar)
    return per_dimension.reshape(per_dimension.shape[0], -1).mean(dim=1)
""",
    ),
    Bug(
        "KL with logvar clamped to [-10, 10]",
        items("kl_divergence", "kl", "grad_logvar"),
        kl("0.5 * (torch.exp(logvar.clamp(-10, 10)) + mu ** 2 - 1 - logvar.clamp(-10, 10))"),
    ),
    # ----------------------------------------------------------------------- bernoulli_nll
    Bug(
        "Bernoulli NLL as BCE on sigmoid(logits)",
        items("bernoulli_nll", "nll", "grad_logits"),
        bernoulli("F.binary_cross_entropy(torch.sigmoid(logits), x, reduction='none')"),
        pattern="ladder",  # right by accident at +-100 (the clamp), wrong at 30 and 200
    ),
    Bug(
        "Bernoulli NLL via sigmoid then log",
        items("bernoulli_nll", "nll", "grad_logits"),
        bernoulli(
            "-(x * torch.log(torch.sigmoid(logits)) + (1 - x) * torch.log(1 - torch.sigmoid(logits)))"
        ),
    ),
    Bug(
        "Bernoulli NLL in the max/abs form (gradient wrong at 0)",
        items("bernoulli_nll", "grad_logits"),
        bernoulli(
            "torch.clamp(logits, min=0) - x * logits + torch.log1p(torch.exp(-logits.abs()))"
        ),
    ),
    Bug(
        "Bernoulli NLL averaged over the pixels",
        items("bernoulli_nll", "nll", "grad_logits"),
        bernoulli("F.softplus(logits) - x * logits", reduce="mean"),
    ),
    # ------------------------------------------------------------------------ gaussian_nll
    Bug(
        "Gaussian NLL without the constant",
        items("gaussian_nll", "nll"),
        gaussian("0.5 * ((x - mean) / sigma) ** 2 + torch.log(sigma)"),
    ),
    Bug(
        "Gaussian NLL with sigma read as a variance",
        items("gaussian_nll", "nll", "grad_mean"),
        gaussian("0.5 * (x - mean) ** 2 / sigma + 0.5 * torch.log(2 * math.pi * sigma)"),
        pattern="sigma",
    ),
    Bug(
        "Gaussian NLL averaged over the pixels",
        items("gaussian_nll", "nll", "grad_mean"),
        gaussian(
            "0.5 * ((x - mean) / sigma) ** 2 + torch.log(sigma) + 0.5 * math.log(2 * math.pi)",
            reduce="mean",
        ),
    ),
    # ----------------------------------------------------------------------------- Encoder
    Bug(
        "encoder without the ReLU after conv2",
        ENCODER_ALL - items("Encoder", "grad_fc.bias"),
        """
class Encoder(Encoder):
    def forward(self, x):
        return self.fc(self.conv2(torch.relu(self.conv1(x))).flatten(1))
""",
    ),
    Bug(
        "encoder flattens channels last",
        ENCODER_ALL - items("Encoder", "grad_fc.bias"),
        """
class Encoder(Encoder):
    def forward(self, x):
        h = torch.relu(self.conv2(torch.relu(self.conv1(x))))
        return self.fc(h.permute(0, 2, 3, 1).flatten(1))
""",
    ),
    Bug(
        "encoder applies a ReLU to its output",
        ENCODER_ALL,
        """
class Encoder(Encoder):
    def forward(self, x):
        return torch.relu(super().forward(x))
""",
    ),
    # ----------------------------------------------------------------------------- Decoder
    Bug(
        "decoder returns probabilities",
        DECODER_ALL,
        """
class Decoder(Decoder):
    def forward(self, z):
        return torch.sigmoid(super().forward(z))
""",
    ),
    Bug(
        "decoder reshapes channels last",
        DECODER_ALL - items("Decoder", "grad_up2.bias"),
        """
class Decoder(Decoder):
    def forward(self, z):
        grid = torch.relu(self.fc(z)).reshape(z.shape[0], 4, 4, 16).permute(0, 3, 1, 2)
        return self.up2(torch.relu(self.up1(grid)))
""",
    ),
    Bug(
        "decoder without the ReLU after up1",
        DECODER_ALL - items("Decoder", "grad_up2.bias"),
        """
class Decoder(Decoder):
    def forward(self, z):
        return self.up2(self.up1(torch.relu(self.fc(z)).reshape(z.shape[0], 16, 4, 4)))
""",
    ),
    # ------------------------------------------------------------------------- Autoencoder
    Bug(
        "autoencoder returns logits",
        items("Autoencoder", "reconstruction", "loss", *MODEL_GRADS),
        """
class Autoencoder(Autoencoder):
    def forward(self, x):
        return self.decoder(self.encoder(x))
""",
    ),
    Bug(
        "autoencoder loss summed over the pixels",
        items("Autoencoder", "loss", *MODEL_GRADS),
        """
class Autoencoder(Autoencoder):
    def loss(self, x):
        return ((self(x) - x) ** 2).sum(dim=(1, 2, 3)).mean()
""",
    ),
    Bug(
        "autoencoder loss on the logits",
        items("Autoencoder", "loss", *MODEL_GRADS),
        """
class Autoencoder(Autoencoder):
    def loss(self, x):
        return ((self.decoder(self.encoder(x)) - x) ** 2).mean()
""",
    ),
    # --------------------------------------------------------------------------------- VAE
    Bug(
        "VAE takes logvar from the first half",
        items("VAE", "logits", "mu", "logvar", "loss", "reconstruction", "kl", *MODEL_GRADS),
        """
class VAE(VAE):
    def forward(self, x, eps):
        logvar, mu = self.encoder(x).chunk(2, dim=1)
        return self.decoder(reparameterize(mu, logvar, eps)), mu, logvar
""",
    ),
    Bug(
        "VAE reconstruction averaged over pixels, KL summed",
        items("VAE", "loss", "reconstruction", *MODEL_GRADS),
        vae_loss(
            "reconstruction = bernoulli_nll(logits, x).mean() / x[0].numel()",
            "kl = kl_divergence(mu, logvar).mean()",
            "return reconstruction + beta * kl, reconstruction, kl",
        ),
    ),
    Bug(
        "VAE beta weighs the reconstruction",
        items("VAE", "loss", *MODEL_GRADS),
        vae_loss(
            "reconstruction = bernoulli_nll(logits, x).mean()",
            "kl = kl_divergence(mu, logvar).mean()",
            "return beta * reconstruction + kl, reconstruction, kl",
        ),
        pattern=None,
    ),
    Bug(
        "VAE decodes mu, ignoring eps",
        items("VAE", "logits", "loss", "reconstruction", *MODEL_GRADS),
        """
class VAE(VAE):
    def forward(self, x, eps):
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return self.decoder(mu), mu, logvar
""",
    ),
    # -------------------------------------------------------------------------- VAE.sample
    Bug(
        "VAE.sample returns logits",
        items("VAE.sample", "distribution", "probabilities"),
        vae_sample(RANDN_Z, result="self.decoder(z)"),
    ),
    Bug(
        "VAE.sample ignores the generator",
        items("VAE.sample", "reproducible"),
        vae_sample("torch.randn(num, self.latent_dims, dtype=self.decoder.fc.weight.dtype)"),
    ),
    Bug(
        "VAE.sample draws uniform codes",
        items("VAE.sample", "distribution"),
        vae_sample(
            "torch.rand(num, self.latent_dims, generator=generator, dtype=self.decoder.fc.weight.dtype)"
        ),
    ),
    # ---------------------------------------------------------------------------- concepts
    Bug(
        "KL by hand with the formula of some course notes",
        items("concepts", "kl_by_hand"),
        """
def kl_by_hand():
    return (0.25 + 1.0 - math.log(0.5) - 0.5) + (4.0 + 0.0 - math.log(2.0) - 0.5)
""",
    ),
    Bug(
        "latent size too small",
        items("concepts", "latent_dims_needed"),
        """
def latent_dims_needed():
    return 2
""",
    ),
    Bug(
        "latent size as a float",
        items("concepts", "latent_dims_needed"),
        """
def latent_dims_needed():
    return 8.0
""",
    ),
]
