"""Bug zoo of chapter 10: mistakes students really make; each must lose exactly its items."""

from __future__ import annotations

from tools.zoo import Bug


def items(check: str, *outputs: str) -> set[str]:
    return {f"{check}: {output}" for output in outputs}


LOSS_64 = items("info_nce_loss", "loss", "grad_z1", "grad_z2")
LOSS_32 = items("info_nce_loss in float32", "loss", "grad_z1", "grad_z2")
LOSS_ALL = LOSS_64 | LOSS_32
GRADS_ALL = items("info_nce_loss", "grad_z1", "grad_z2") | items(
    "info_nce_loss in float32", "grad_z1", "grad_z2"
)
ACCURACY = items("contrastive_accuracy", "top1", "topk")
ALIGNMENT = items("alignment", "value", "grad_z1", "grad_z2")
UNIFORMITY = items("uniformity", "value", "grad")


def loss(
    normalize: str = "z / z.norm(dim=1, keepdim=True)",
    logits: str = "z @ z.T / temperature",
    mask: str = "logits.masked_fill(torch.eye(2 * n, dtype=torch.bool), -math.inf)",
    positive: str = "(rows + n) % (2 * n)",
    logsumexp: str = "top.squeeze(1) + torch.log(torch.exp(logits - top).sum(dim=1))",
    reduce: str = "(logsumexp - positives).mean()",
    signature: str = "z1, z2, temperature=0.5",
    first: str = "z1",
    second: str = "z2",
) -> str:
    """An info_nce_loss written like the reference with one expression changed."""
    return f"""
def info_nce_loss({signature}):
    n = z1.shape[0]
    z = torch.cat([{first}, {second}], dim=0)
    z = {normalize}
    logits = {logits}
    logits = {mask}
    rows = torch.arange(2 * n)
    positives = logits[rows, {positive}]
    top = logits.max(dim=1, keepdim=True).values
    logsumexp = {logsumexp}
    return {reduce}
"""


def accuracy(
    normalize: str = "z / z.norm(dim=1, keepdim=True)",
    positive: str = "(rows + n) % (2 * n)",
    compare: str = "sims >= positive",
    self_line: str = "rivals[rows, rows] = False",
    result: str = "(rivals.sum(dim=1) < k).double().mean().item()",
    signature: str = "z1, z2, k=1",
) -> str:
    """A contrastive_accuracy written like the reference with one expression changed."""
    return f"""
def contrastive_accuracy({signature}):
    n = z1.shape[0]
    with torch.no_grad():
        z = torch.cat([z1, z2], dim=0)
        z = {normalize}
        sims = z @ z.T
        rows = torch.arange(2 * n)
        positive_index = {positive}
        positive = sims[rows, positive_index].unsqueeze(1)
        rivals = {compare}
        {self_line}
        rivals[rows, positive_index] = False
        return {result}
"""


def uniformity_code(
    normalize: str = "z / z.norm(dim=1, keepdim=True)",
    pairs: str = "torch.triu_indices(len(u), len(u), offset=1)",
    exponents: str = "-t * (u[i] - u[j]).pow(2).sum(dim=1)",
    result: str = "top + torch.log(torch.exp(exponents - top).mean())",
) -> str:
    """A uniformity written like the reference with one expression changed."""
    return f"""
def uniformity(z, t=2):
    u = {normalize}
    i, j = {pairs}
    exponents = {exponents}
    top = exponents.max()
    return {result}
"""


def augment_code(
    shape: str = "n",
    noise: str = "noise * torch.randn(views.shape, **draw)",
    draw: str = "dict(generator=generator, dtype=x.dtype)",
    clamp: str = "views.clamp(0.0, 1.0)",
    grid_corners: str = "False",
    side: str = "1.0 - crop * torch.rand({shape}, **draw)",
    radians: str = "math.radians(rotation)",
) -> str:
    """An augment written like the reference with one piece changed. ``shape`` is the
    number of parameter draws (``n`` per image, or ``1`` for the whole batch)."""
    side = side.format(shape=shape)
    return f"""
def augment(x, generator, crop=0.3, rotation=15.0, translation=1.0, noise=0.05):
    n, _, height, width = x.shape
    draw = {draw}
    side = ({side}).expand(n)
    center = ((1.0 - side).unsqueeze(1) * (2.0 * torch.rand({shape}, 2, **draw) - 1.0)).expand(n, 2)
    angle = ({radians} * (2.0 * torch.rand({shape}, **draw) - 1.0)).expand(n)
    shift = (translation * (2.0 * torch.rand({shape}, 2, **draw) - 1.0)).expand(n, 2)
    shift = shift * torch.tensor([2.0 / width, 2.0 / height], dtype=x.dtype)
    cos, sin = torch.cos(angle) * side, torch.sin(angle) * side
    theta = torch.stack([torch.stack([cos, -sin, center[:, 0] + shift[:, 0]], dim=1),
                         torch.stack([sin, cos, center[:, 1] + shift[:, 1]], dim=1)], dim=1)
    grid = F.affine_grid(theta, list(x.shape), align_corners={grid_corners})
    views = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    views = views + {noise}
    return {clamp}
"""


def features_code(body: str) -> str:
    lines = "\n".join("    " + line for line in body.strip("\n").splitlines())
    return f"""
def extract_features(encoder, x, batch_size):
{lines}
"""


BUGS = [
    # ------------------------------------------------------------------------ info_nce_loss
    Bug(
        "loss uses the dot product instead of the cosine",
        LOSS_ALL,
        loss(normalize="z"),
        pattern=None,
    ),
    Bug("loss keeps each row's similarity with itself", LOSS_ALL, loss(mask="logits")),
    Bug(
        "loss takes row i + 1 as the positive",
        LOSS_ALL,
        loss(positive="(rows + 1) % (2 * n)"),
        pattern=None,
    ),
    Bug(
        "loss averages over the N anchors of the first view only",
        LOSS_ALL,
        loss(reduce="(logsumexp - positives)[:n].mean()"),
        pattern=None,
    ),
    Bug(
        "loss multiplies by the temperature",
        LOSS_ALL,
        loss(logits="z @ z.T * temperature"),
        pattern=None,
    ),
    Bug(
        "loss computes log-sum-exp without subtracting the maximum",
        LOSS_32,
        loss(logsumexp="torch.log(torch.exp(logits).sum(dim=1))"),
    ),
    Bug(
        "loss subtracts the self term after summing, log(sum - exp(diagonal))",
        LOSS_64,
        loss(
            mask="logits",
            logsumexp="top.squeeze(1) + torch.log(torch.exp(logits - top).sum(dim=1)"
            " - torch.exp(logits.diagonal() - top.squeeze(1)))",
        ),
    ),
    Bug(
        "loss normalises with a detached norm",
        GRADS_ALL,
        loss(normalize="z / z.norm(dim=1, keepdim=True).detach()"),
        pattern=None,
    ),
    Bug(
        "loss stops the gradient of the second view",
        items("info_nce_loss", "grad_z2") | items("info_nce_loss in float32", "grad_z2"),
        loss(second="z2.detach()"),
    ),
    Bug(
        "loss defaults to MoCo's temperature 0.07",
        LOSS_64,
        loss(signature="z1, z2, temperature=0.07"),
        pattern="temperature",
    ),
    # ---------------------------------------------------------------- contrastive_accuracy
    Bug("accuracy lets ties favour the positive", ACCURACY, accuracy(compare="sims > positive")),
    Bug("accuracy counts the anchor itself as a rival", ACCURACY, accuracy(self_line="pass")),
    Bug("accuracy ranks dot products instead of cosines", ACCURACY, accuracy(normalize="z")),
    Bug(
        "accuracy ignores k",
        items("contrastive_accuracy", "topk"),
        accuracy(result="(rivals.sum(dim=1) < 1).double().mean().item()"),
    ),
    # --------------------------------------------------------------------------- alignment
    Bug(
        "alignment without normalisation",
        ALIGNMENT,
        """
def alignment(z1, z2, alpha=2):
    return (z1 - z2).norm(dim=1).pow(alpha).mean()
""",
    ),
    Bug(
        "alignment always squares the distance",
        ALIGNMENT,
        """
def alignment(z1, z2, alpha=2):
    u1, u2 = z1 / z1.norm(dim=1, keepdim=True), z2 / z2.norm(dim=1, keepdim=True)
    return (u1 - u2).pow(2).sum(dim=1).mean()
""",
    ),
    Bug(
        "alignment sums over the pairs",
        ALIGNMENT,
        """
def alignment(z1, z2, alpha=2):
    u1, u2 = z1 / z1.norm(dim=1, keepdim=True), z2 / z2.norm(dim=1, keepdim=True)
    return (u1 - u2).norm(dim=1).pow(alpha).sum()
""",
        pattern="N",
    ),
    # -------------------------------------------------------------------------- uniformity
    Bug(
        "uniformity without the log",
        UNIFORMITY,
        uniformity_code(result="torch.exp(exponents).mean()"),
    ),
    Bug("uniformity on unnormalised embeddings", UNIFORMITY, uniformity_code(normalize="z")),
    Bug(
        "uniformity averages over all ordered pairs, i = j included",
        UNIFORMITY,
        uniformity_code(pairs="torch.cartesian_prod(torch.arange(len(u)), torch.arange(len(u))).T"),
    ),
    Bug(
        "uniformity log-mean-exp without the maximum",
        UNIFORMITY,
        uniformity_code(result="torch.log(torch.exp(exponents).mean())"),
        pattern=None,
    ),
    # ----------------------------------------------------------------------------- augment
    Bug("augment does not clamp to [0, 1]", items("augment", "range"), augment_code(clamp="views")),
    Bug(
        "augment draws from the global random state",
        items("augment", "deterministic"),
        augment_code(draw="dict(dtype=x.dtype)"),
    ),
    Bug(
        "augment draws one transformation for the whole batch",
        items("augment", "each_strength"),
        augment_code(shape="1"),
    ),
    Bug(
        "augment uses the noise strength as a variance",
        items("augment", "noise_std"),
        augment_code(noise="noise ** 0.5 * torch.randn(views.shape, **draw)"),
    ),
    Bug(
        "augment reads the rotation in radians",
        items("augment", "rotation_degrees"),
        augment_code(radians="rotation"),
    ),
    Bug(
        "augment mixes align_corners between affine_grid and grid_sample",
        items("augment", "identity"),
        augment_code(grid_corners="True"),
    ),
    # ---------------------------------------------------------------------- ProjectionHead
    Bug(
        "head without the ReLU",
        items("ProjectionHead", "z", "grad_h", "grad_fc1", "grad_fc2"),
        """
class ProjectionHead(ProjectionHead):
    def forward(self, h):
        return self.fc2(self.fc1(h))
""",
    ),
    Bug(
        "head with a ReLU after the last layer",
        items("ProjectionHead", "z", "grad_h", "grad_fc1", "grad_fc2"),
        """
class ProjectionHead(ProjectionHead):
    def forward(self, h):
        return torch.relu(self.fc2(torch.relu(self.fc1(h))))
""",
    ),
    Bug(
        "head names its layers layer1 and layer2",
        items("ProjectionHead", "z", "grad_h", "grad_fc1", "grad_fc2"),
        """
class ProjectionHead(nn.Module):
    def __init__(self, in_dim, hidden_dim, out_dim):
        super().__init__()
        self.layer1 = nn.Linear(in_dim, hidden_dim)
        self.layer2 = nn.Linear(hidden_dim, out_dim)
    def forward(self, h):
        return self.layer2(torch.relu(self.layer1(h)))
""",
    ),
    # ------------------------------------------------------------------------------ SimCLR
    Bug(
        "SimCLR returns (h1, z1, h2, z2)",
        items("SimCLR", "h2", "z1", "grad_encoder", "grad_head"),
        """
class SimCLR(SimCLR):
    def forward(self, x1, x2):
        h1, h2, z1, z2 = super().forward(x1, x2)
        return h1, z1, h2, z2
""",
    ),
    Bug(
        "SimCLR keeps its modules in a plain list",
        items("SimCLR", "parameters"),
        """
class SimCLR(nn.Module):
    def __init__(self, encoder, head):
        super().__init__()
        self.parts = [encoder, head]
    def forward(self, x1, x2):
        encoder, head = self.parts
        h1, h2 = encoder(x1), encoder(x2)
        return h1, h2, head(h1), head(h2)
""",
    ),
    Bug(
        "SimCLR projects detached representations",
        items("SimCLR", "grad_encoder"),
        """
class SimCLR(SimCLR):
    def forward(self, x1, x2):
        h1, h2 = self.encoder(x1), self.encoder(x2)
        return h1, h2, self.head(h1.detach()), self.head(h2.detach())
""",
    ),
    Bug(
        "SimCLR normalises z in forward",
        items("SimCLR", "z1", "z2", "grad_encoder", "grad_head"),
        """
class SimCLR(SimCLR):
    def forward(self, x1, x2):
        h1, h2, z1, z2 = super().forward(x1, x2)
        return h1, h2, F.normalize(z1, dim=1), F.normalize(z2, dim=1)
""",
    ),
    # -------------------------------------------------------------------- extract_features
    Bug(
        "features leave the encoder in eval mode",
        items("extract_features", "mode"),
        features_code("""
encoder.eval()
with torch.no_grad():
    return torch.cat([encoder(x[s:s + batch_size]) for s in range(0, len(x), batch_size)])
"""),
        pattern="mode",
    ),
    Bug(
        "features restore only the top module's training flag",
        items("extract_features", "mode"),
        features_code("""
was_training = encoder.training
encoder.eval()
with torch.no_grad():
    features = torch.cat([encoder(x[s:s + batch_size]) for s in range(0, len(x), batch_size)])
encoder.training = was_training
return features
"""),
        pattern="mode",
    ),
    Bug(
        "features computed in training mode",
        items("extract_features", "features"),
        features_code("""
with torch.no_grad():
    return torch.cat([encoder(x[s:s + batch_size]) for s in range(0, len(x), batch_size)])
"""),
        pattern="mode",
    ),
    Bug(
        "features computed with gradients",
        items("extract_features", "no_grad"),
        features_code("""
was_training = encoder.training
encoder.eval()
features = torch.cat([encoder(x[s:s + batch_size]) for s in range(0, len(x), batch_size)])
encoder.train(was_training)
return features
"""),
    ),
    Bug(
        "features in one batch, batch_size ignored",
        items("extract_features", "batches"),
        features_code("""
was_training = encoder.training
encoder.eval()
with torch.no_grad():
    features = encoder(x)
encoder.train(was_training)
return features
"""),
        pattern=None,
    ),
    # the case with N < batch_size has no full batch: torch.cat([]) raises, and every item
    # of that case is lost
    Bug(
        "features drop the last partial batch",
        items("extract_features", "features", "batches", "mode", "no_grad"),
        features_code("""
was_training = encoder.training
encoder.eval()
with torch.no_grad():
    parts = [encoder(x[s:s + batch_size]) for s in range(0, len(x) - batch_size + 1, batch_size)]
encoder.train(was_training)
return torch.cat(parts)
"""),
        pattern=None,
    ),
    # --------------------------------------------------------------------- concept answers
    Bug(
        "concepts: temperatures swapped",
        items("concept_answers", "largest_loss_aligned", "largest_loss_confused"),
        """
def concept_answers():
    return {"largest_loss_aligned": 0.05, "largest_loss_confused": 5.0, "probe_features": 2}
""",
    ),
    Bug(
        "concepts: the middle temperature for the aligned batch",
        items("concept_answers", "largest_loss_aligned"),
        """
def concept_answers():
    return {"largest_loss_aligned": 0.5, "largest_loss_confused": 0.05, "probe_features": 2}
""",
    ),
    Bug(
        "concepts: probe on z because it is smaller",
        items("concept_answers", "probe_features"),
        """
def concept_answers():
    return {"largest_loss_aligned": 5.0, "largest_loss_confused": 0.05, "probe_features": 1}
""",
    ),
]
