"""Bug zoo of chapter 09: mistakes students really make; each must lose exactly its items."""

from __future__ import annotations

from tools.zoo import Bug


def items(check: str, *outputs: str) -> set[str]:
    return {f"{check}: {output}" for output in outputs}


D_LOSS = items("discriminator_loss", "loss", "grad_real", "grad_fake")
D_LOSS_32 = items("discriminator_loss in float32", "loss", "grad_real", "grad_fake")
G_LOSS = items("generator_loss", "loss", "grad")
G_LOSS_32 = items("generator_loss in float32", "loss", "grad")
STEP = items("gan_training_step", "discriminator_params", "generator_params", "losses")
DIVERGENCE_VALUES = items("contrastive_divergence_loss", "loss", "grad_real", "grad_fake")

SP = "torch.logaddexp(torch.zeros_like({z}), {z})"


def d_loss(
    real_term: str = "-r", fake_term: str = "f", reduce: str = "{a}.mean() + {b}.mean()"
) -> str:
    """A discriminator_loss built from log(1 + exp(.)) terms, one piece changed."""
    a, b = SP.format(z=real_term), SP.format(z=fake_term)
    return f"""
def discriminator_loss(real_logits, fake_logits):
    r, f = real_logits, fake_logits
    return {reduce.format(a=a, b=b)}
"""


def g_loss(body: str) -> str:
    return f"""
def generator_loss(fake_logits):
    f = fake_logits
    return {body}
"""


def step(
    first: str = "pass",
    clear_d: str = "opt_d.zero_grad()",
    fake_for_d: str = "fake.detach()",
    after_d: str = "pass",
    clear_g: str = "opt_g.zero_grad()",
    g_logits: str = "discriminator(fake)",
    after_g: str = "pass",
) -> str:
    """A gan_training_step written like the reference with one piece changed."""
    return f"""
def gan_training_step(generator, discriminator, opt_g, opt_d, real, z):
    {first}
    fake = generator(z)
    {clear_d}
    loss_d = discriminator_loss(discriminator(real), discriminator({fake_for_d}))
    loss_d.backward()
    opt_d.step()
    {after_d}
    {clear_g}
    loss_g = generator_loss({g_logits})
    loss_g.backward()
    opt_g.step()
    {after_g}
    return loss_d.item(), loss_g.item()
"""


def langevin(
    noise: str = "x = (x + noise_std * torch.randn(x.shape, generator=generator, dtype=x.dtype))",
    first_clamp: str = ".clamp(*clamp)",
    move: str = "x + step_size * g.clamp(-grad_clip, grad_clip)",
    noise_after: bool = False,
    freeze: str = "p.requires_grad_(False)",
    restore_flag: str = "p.requires_grad_(flag)",
    restore_mode: str = "model.train(was_training)",
    enter_mode: str = "model.eval()",
    gradient: str = "torch.autograd.grad(model(x).sum(), x)[0]",
    result: str = "x.detach()",
) -> str:
    """A langevin_sample written like the reference with one piece changed."""
    before = "" if noise_after else f"{noise}{first_clamp}"
    after = f"{noise}.clamp(*clamp)" if noise_after else ""
    return f"""
def langevin_sample(model, x, steps, step_size, noise_std, generator, clamp=(-1.0, 1.0),
                    grad_clip=0.03):
    was_training = model.training
    flags = [(p, p.requires_grad) for p in model.parameters()]
    {enter_mode}
    for p, _ in flags:
        {freeze}
    x = x.detach().clone()
    for _ in range(steps):
        {before}
        x = x.detach().requires_grad_(True)
        with torch.enable_grad():
            g = {gradient}
        x = ({move}).clamp(*clamp)
        {after}
    for p, flag in flags:
        {restore_flag}
    {restore_mode}
    return {result}
"""


def divergence(
    regularization: str, value: str, real: str = "real_scores", fake: str = "fake_scores"
) -> str:
    return f"""
def contrastive_divergence_loss(real_scores, fake_scores, alpha):
    r, f = {real}, {fake}
    regularization = {regularization}
    divergence = {value}
    return regularization + divergence, regularization, divergence
"""


REG = "alpha * (r ** 2 + f ** 2).mean()"
DIV = "f.mean() - r.mean()"


def buffer_method(body: str, method: str = "push", signature: str = "self, samples") -> str:
    lines = "\n".join("        " + line for line in body.strip("\n").splitlines())
    return f"""
class ReplayBuffer(ReplayBuffer):
    def {method}({signature}):
{lines}
"""


SAMPLE = """
noise = torch.rand((n, *self.shape), generator=generator) * 2 - 1
if not self.rows:
    return noise
stored = torch.stack(self.rows)
picks = stored[torch.randint(len(self.rows), (n,), generator=generator)]
use_noise = torch.rand(n, generator=generator) < {share}
picks[use_noise] = noise[use_noise]
return picks
"""


def concepts(optimal: float, loss: float, prevents: int) -> str:
    return f"""
def concept_answers():
    return {{"optimal_discriminator": {optimal}, "equilibrium_loss": {loss},
            "regularizer_prevents": {prevents}}}
"""


BUGS = [
    # ---------------------------------------------------------------- discriminator_loss
    Bug(
        "discriminator labels swapped (real = 0, fake = 1)",
        D_LOSS | D_LOSS_32,
        d_loss(real_term="r", fake_term="-f"),
    ),
    Bug(
        "discriminator loss averages over the concatenated batch",
        D_LOSS | D_LOSS_32,
        d_loss(reduce="torch.cat([{a}, {b}]).mean()"),
    ),
    Bug(
        "discriminator BCE as -log(sigmoid) and -log(1 - sigmoid)",
        D_LOSS | D_LOSS_32,
        """
def discriminator_loss(real_logits, fake_logits):
    return (-torch.log(torch.sigmoid(real_logits)).mean()
            - torch.log(1 - torch.sigmoid(fake_logits)).mean())
""",
        pattern=None,
    ),
    Bug(
        "discriminator loss computes log(1 + exp(z)) literally",
        D_LOSS | D_LOSS_32,
        """
def discriminator_loss(real_logits, fake_logits):
    return torch.log1p(torch.exp(-real_logits)).mean() + torch.log1p(torch.exp(fake_logits)).mean()
""",
    ),
    Bug(
        "discriminator loss in the max/abs 'stable' form (gradient wrong at 0)",
        items("discriminator_loss", "grad_real", "grad_fake"),
        """
def _softplus(z):
    return torch.clamp(z, min=0) + torch.log1p(torch.exp(-z.abs()))

def discriminator_loss(real_logits, fake_logits):
    return _softplus(-real_logits).mean() + _softplus(fake_logits).mean()
""",
        pattern="zeros",
    ),
    # -------------------------------------------------------------------- generator_loss
    Bug(
        "generator loss is the saturating log(1 - sigmoid(f))",
        G_LOSS | G_LOSS_32,
        g_loss("-" + SP.format(z="f") + ".mean()"),
    ),
    Bug(
        "generator loss labels its samples fake",
        G_LOSS | G_LOSS_32,
        g_loss(SP.format(z="f") + ".mean()"),
        pattern=None,
    ),
    Bug(
        "generator loss computes -log(sigmoid(f)) literally",
        G_LOSS | G_LOSS_32,
        g_loss("-torch.log(torch.sigmoid(f)).mean()"),
        pattern=None,
    ),
    Bug(
        "generator loss sums over the batch",
        G_LOSS | G_LOSS_32,
        g_loss(SP.format(z="-f") + ".sum()"),
        pattern="N",
    ),
    Bug(
        "generator loss in the relu/abs 'stable' form (gradient wrong at 0)",
        items("generator_loss", "grad"),
        g_loss("(torch.relu(-f) + torch.log1p(torch.exp(-f.abs()))).mean()"),
        pattern="zeros",
    ),
    # ----------------------------------------------------------------- gan_training_step
    Bug(
        "training step does not detach the fake batch and clears gradients once at the start",
        STEP,
        step(
            first="opt_d.zero_grad(); opt_g.zero_grad()",
            clear_d="pass",
            fake_for_d="fake",
            clear_g="pass",
        ),
    ),
    Bug(
        "training step clears gradients after each update (the generator's backward "
        "leaves gradients in the discriminator)",
        STEP,
        step(
            clear_d="pass", after_d="opt_d.zero_grad()", clear_g="pass", after_g="opt_g.zero_grad()"
        ),
    ),
    Bug("training step never clears gradients", STEP, step(clear_d="pass", clear_g="pass")),
    Bug(
        "training step updates the generator first",
        STEP,
        """
def gan_training_step(generator, discriminator, opt_g, opt_d, real, z):
    opt_g.zero_grad()
    loss_g = generator_loss(discriminator(generator(z)))
    loss_g.backward()
    opt_g.step()
    opt_d.zero_grad()
    loss_d = discriminator_loss(discriminator(real), discriminator(generator(z).detach()))
    loss_d.backward()
    opt_d.step()
    return loss_d.item(), loss_g.item()
""",
    ),
    Bug(
        "training step reuses the fake logits from before the discriminator's update",
        STEP,
        step(
            clear_d="fake_logits = discriminator(fake); opt_d.zero_grad()", g_logits="fake_logits"
        ),
    ),
    Bug(
        "training step returns the losses in the other order",
        items("gan_training_step", "losses"),
        """
_correct_step = gan_training_step

def gan_training_step(generator, discriminator, opt_g, opt_d, real, z):
    loss_d, loss_g = _correct_step(generator, discriminator, opt_g, opt_d, real, z)
    return loss_g, loss_d
""",
    ),
    # ------------------------------------------------------------------- langevin_sample
    Bug(
        "Langevin moves down the score",
        items("langevin_sample", "samples"),
        langevin(move="x - step_size * g.clamp(-grad_clip, grad_clip)"),
    ),
    Bug(
        "Langevin adds the noise after the gradient step",
        items("langevin_sample", "samples"),
        langevin(noise_after=True),
    ),
    Bug(
        "Langevin without noise",
        items("langevin_sample", "samples"),
        langevin(noise="x = x", first_clamp=".clamp(*clamp)"),
        pattern="noise_std",
    ),
    Bug(
        "Langevin without gradient clipping",
        items("langevin_sample", "samples"),
        langevin(move="x + step_size * g"),
        pattern=None,
    ),
    Bug(
        "Langevin clamps only after the gradient step",
        items("langevin_sample", "samples"),
        langevin(first_clamp=""),
    ),
    Bug(
        "Langevin samples in training mode",
        items("langevin_sample", "samples"),
        langevin(enter_mode="pass"),
    ),
    Bug(
        "Langevin back-propagates into the parameters",
        items("langevin_sample", "params"),
        langevin(
            freeze="pass",
            gradient="(model(x).sum().backward(), x.grad)[1]",
        ),
    ),
    Bug(
        "Langevin leaves the model in eval mode",
        items("langevin_sample", "mode"),
        langevin(restore_mode="pass"),
        pattern="mode",
    ),
    Bug(
        "Langevin sets every requires_grad back to True",
        items("langevin_sample", "flags"),
        langevin(restore_flag="p.requires_grad_(True)"),
    ),
    Bug(
        "Langevin returns samples that still carry a graph",
        items("langevin_sample", "no_graph"),
        langevin(result="x * 1.0 if False else x.requires_grad_(True) * 1.0"),
    ),
    # ------------------------------------------------------- contrastive_divergence_loss
    Bug(
        "contrastive divergence with the two means swapped",
        DIVERGENCE_VALUES | items("contrastive_divergence_loss", "divergence"),
        divergence(REG, "r.mean() - f.mean()"),
    ),
    Bug(
        "contrastive divergence without the regularizer",
        DIVERGENCE_VALUES | items("contrastive_divergence_loss", "regularization"),
        divergence("0.0 * r.sum()", DIV),
    ),
    Bug(
        "contrastive divergence regularizes the squared means",
        DIVERGENCE_VALUES | items("contrastive_divergence_loss", "regularization"),
        divergence("alpha * (r.mean() ** 2 + f.mean() ** 2)", DIV),
    ),
    Bug(
        "contrastive divergence detaches the fake scores",
        items("contrastive_divergence_loss", "grad_fake"),
        divergence(REG, DIV, fake="fake_scores.detach()"),
    ),
    # ---------------------------------------------------------------------- ReplayBuffer
    Bug(
        "buffer never drops old samples",
        items("ReplayBuffer", "contents"),
        buffer_method("self.rows.extend(row.clone() for row in samples.detach().float())"),
    ),
    Bug(
        "buffer drops the newest samples beyond max_size",
        items("ReplayBuffer", "contents"),
        buffer_method("""
self.rows.extend(row.clone() for row in samples.detach().float())
self.rows = self.rows[:self.max_size]
"""),
    ),
    Bug(
        "buffer keeps the first rows of a large push (new rows prepended)",
        items("ReplayBuffer", "contents"),
        buffer_method("""
self.rows = [row.clone() for row in samples.detach().float()] + self.rows
self.rows = self.rows[:self.max_size]
"""),
    ),
    Bug(
        "buffer stores the caller's tensor without copying",
        items("ReplayBuffer", "contents"),
        buffer_method("""
self.rows.extend(samples.detach())
del self.rows[:max(0, len(self.rows) - self.max_size)]
"""),
    ),
    Bug(
        "buffer never samples fresh noise once filled",
        items("ReplayBuffer", "fresh_share"),
        buffer_method(SAMPLE.format(share=0.0), "sample", "self, n, generator"),
    ),
    Bug(
        "buffer samples fresh noise 95% of the time",
        items("ReplayBuffer", "fresh_share"),
        buffer_method(SAMPLE.format(share=0.95), "sample", "self, n, generator"),
    ),
    Bug(
        "buffer's fresh noise is uniform in [0, 1)",
        items("ReplayBuffer", "fresh_uniform"),
        buffer_method(
            SAMPLE.format(share=0.05).replace(" * 2 - 1", ""), "sample", "self, n, generator"
        ),
    ),
    Bug(
        "buffer draws from the global random state",
        items("ReplayBuffer", "deterministic"),
        buffer_method(
            SAMPLE.format(share=0.05)
            .replace(", generator=generator", "")
            .replace(
                "torch.rand((n, *self.shape))", "torch.rand((n, *self.shape), generator=generator)"
            ),
            "sample",
            "self, n, generator",
        ),
    ),
    # -------------------------------------------------------------------- concept answers
    Bug(
        "concepts: the optimal discriminator inverted",
        items("concept_answers", "optimal_discriminator"),
        concepts(0.25, 1.3863, 2),
    ),
    Bug(
        "concepts: the equilibrium loss of one term only",
        items("concept_answers", "equilibrium_loss"),
        concepts(0.75, 0.6931, 2),
    ),
    Bug(
        "concepts: the regularizer keeps the chains in range",
        items("concept_answers", "regularizer_prevents"),
        concepts(0.75, 1.3863, 3),
    ),
]
