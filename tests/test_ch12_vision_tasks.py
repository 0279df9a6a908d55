"""Chapter 12: the reference agrees with PyTorch where PyTorch has the operation (convolution
shapes, ``F.kl_div`` and ``F.cross_entropy``, ``F.unfold``, dilated ``F.conv2d``) and with
independent second oracles where it has none (IoU by exact fractions, NMS by repeated arg-max,
anchors by a closed-form index, receptive fields measured with autograd, mIoU from a confusion
matrix); and the hidden checks accept a correct implementation written in another style.

torchvision is not a dependency: where it happens to be installed, NMS and IoU are also compared
with ``torchvision.ops``.
"""

from __future__ import annotations

import itertools
import math
import zlib
from fractions import Fraction
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from solutions import ch12_vision_tasks as reference
from tests.conftest import assert_checks_accept, failed_items, notebook_with_extra_cell
from tools.timing import one_thread

CHAPTER = "12_vision_tasks"
CHECKS_PATH = Path(__file__).resolve().parent.parent / "assignments" / CHAPTER / "checks.py"
F64 = torch.float64


@pytest.fixture(autouse=True)
def single_thread():
    """Tiny tensors: one thread, as in the sandboxed child."""
    with one_thread():
        yield


def seeded(*parts: object) -> torch.Generator:
    return torch.Generator().manual_seed(zlib.crc32(repr(parts).encode()))


def half_grid_boxes(rng: torch.Generator, n: int, extent: int) -> torch.Tensor:
    """Boxes with corners on a grid of halves; about a fifth of zero width or height."""
    x1, y1 = (torch.randint(0, 2 * extent, (n,), generator=rng) for _ in range(2))
    w, h = (torch.randint(0, extent, (n,), generator=rng) for _ in range(2))
    return torch.stack([x1, y1, x1 + w, y1 + h], dim=1).to(F64) / 2


def exact_iou(a: list[float], b: list[float]) -> Fraction:
    """IoU of two boxes in exact rational arithmetic (0 for a zero union)."""
    fa, fb = [Fraction(v) for v in a], [Fraction(v) for v in b]
    w = max(Fraction(0), min(fa[2], fb[2]) - max(fa[0], fb[0]))
    h = max(Fraction(0), min(fa[3], fb[3]) - max(fa[1], fb[1]))
    inter = w * h
    union = (fa[2] - fa[0]) * (fa[3] - fa[1]) + (fb[2] - fb[0]) * (fb[3] - fb[1]) - inter
    return inter / union if union > 0 else Fraction(0)


@pytest.mark.parametrize("n,m,extent", [(1, 1, 2), (5, 7, 4), (12, 9, 10), (0, 3, 3), (20, 20, 6)])
def test_box_iou_equals_exact_fractions(n, m, extent):
    rng = seeded("iou", n, m, extent)
    a, b = half_grid_boxes(rng, n, extent), half_grid_boxes(rng, m, extent)
    iou = reference.box_iou(a, b)
    assert iou.shape == (n, m) and torch.isfinite(iou).all()
    expected = torch.tensor(
        [[float(exact_iou(p, q)) for q in b.tolist()] for p in a.tolist()], dtype=F64
    ).reshape(n, m)
    torch.testing.assert_close(iou, expected, rtol=1e-15, atol=0.0)
    torch.testing.assert_close(
        reference.box_area(a), (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]), rtol=0, atol=0
    )


def argmax_nms(boxes: torch.Tensor, scores: torch.Tensor, threshold: float) -> list[int]:
    """Second oracle: repeatedly take the best remaining box (lowest index among equal scores)
    and drop the remaining boxes whose exact IoU with it exceeds the threshold."""
    remaining = list(range(len(boxes)))
    keep = []
    rows = boxes.tolist()
    while remaining:
        best = max(remaining, key=lambda i: (scores[i].item(), -i))
        keep.append(best)
        remaining = [
            i
            for i in remaining
            if i != best and exact_iou(rows[best], rows[i]) <= Fraction(threshold)
        ]
    return keep


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("threshold", [0.0, 0.25, 0.5, 0.75])  # exact doubles
def test_nms_equals_the_argmax_oracle(seed, threshold):
    rng = seeded("nms", seed, threshold)
    n = int(torch.randint(0, 30, (1,), generator=rng))
    boxes = half_grid_boxes(rng, n, 5)
    scores = torch.randint(0, 4, (n,), generator=rng).to(F64) / 4  # many ties
    keep = reference.nms(boxes, scores, threshold)
    assert keep.dtype == torch.int64 and keep.tolist() == argmax_nms(boxes, scores, threshold)


def test_nms_equals_torchvision_where_it_is_installed():
    ops = pytest.importorskip("torchvision.ops")
    for seed in range(20):
        rng = seeded("torchvision", seed)
        boxes = torch.rand(40, 2, generator=rng, dtype=F64) * 20
        boxes = torch.cat([boxes, boxes + 1 + 5 * torch.rand(40, 2, generator=rng, dtype=F64)], 1)
        scores = torch.rand(40, generator=rng, dtype=F64)  # distinct: torchvision's order
        assert torch.equal(reference.nms(boxes, scores, 0.4), ops.nms(boxes, scores, 0.4))
        torch.testing.assert_close(reference.box_iou(boxes, boxes), ops.box_iou(boxes, boxes))


@pytest.mark.parametrize(
    "h,w,stride,sizes,ratios",
    [
        (1, 1, 8, [8.0], [1.0]),
        (3, 4, 4, [2.0, 5.0], [0.5, 1.0, 2.0]),
        (2, 5, 2.5, [3.0], [0.3, 3.0]),
    ],
)
def test_anchor_order_and_shapes_follow_the_documented_index(h, w, stride, sizes, ratios):
    anchors = reference.anchor_boxes(h, w, stride, sizes, ratios)
    assert anchors.shape == (h * w * len(sizes) * len(ratios), 4) and anchors.dtype == F64
    for i, j, k, r in itertools.product(range(h), range(w), range(len(sizes)), range(len(ratios))):
        row = anchors[((i * w + j) * len(sizes) + k) * len(ratios) + r]
        width, height = row[2] - row[0], row[3] - row[1]
        assert math.isclose((row[0] + row[2]).item() / 2, (j + 0.5) * stride)
        assert math.isclose((row[1] + row[3]).item() / 2, (i + 0.5) * stride)
        assert math.isclose((width * height).item(), sizes[k] ** 2)
        assert math.isclose((width / height).item(), ratios[r])


@pytest.mark.parametrize("n", [1, 9, 64])
def test_encode_and_decode_are_inverse(n):
    rng = seeded("codec", n)
    corner = torch.rand(n, 2, generator=rng, dtype=F64) * 30 - 5
    boxes = torch.cat([corner, corner + torch.exp(torch.randn(n, 2, generator=rng, dtype=F64))], 1)
    corner = torch.rand(n, 2, generator=rng, dtype=F64) * 30 - 5
    anchors = torch.cat(
        [corner, corner + torch.exp(torch.randn(n, 2, generator=rng, dtype=F64))], 1
    )
    offsets = reference.encode_boxes(boxes, anchors)
    torch.testing.assert_close(reference.decode_boxes(offsets, anchors), boxes)
    torch.testing.assert_close(
        reference.encode_boxes(anchors, anchors), torch.zeros(n, 4, dtype=F64)
    )
    back = reference.encode_boxes(reference.decode_boxes(offsets, anchors), anchors)
    torch.testing.assert_close(back, offsets)


@pytest.mark.parametrize(
    "size,k,stride,padding,dilation",
    list(itertools.product([5, 8, 13], [1, 2, 3, 5], [1, 2, 3], [0, 1, 2], [1, 2, 3])),
)
def test_output_size_matches_conv2d(size, k, stride, padding, dilation):
    if dilation * (k - 1) + 1 > size + 2 * padding:
        return
    out = F.conv2d(
        torch.zeros(1, 1, size, size),
        torch.zeros(1, 1, k, k),
        stride=stride,
        padding=padding,
        dilation=dilation,
    )
    assert reference.dilated_conv_output_size(size, k, stride, padding, dilation) == out.shape[-1]


def measured_receptive_field(layers: list[tuple[int, int, int]]) -> int:
    """Width of the input region that reaches one output pixel, found with autograd through
    a stack of all-ones convolutions (no padding)."""
    size = 1
    for k, s, d in reversed(layers):
        size = (size - 1) * s + d * (k - 1) + 1
    x = torch.zeros(1, 1, size, size, dtype=F64, requires_grad=True)
    h = x
    for k, s, d in layers:
        h = F.conv2d(h, torch.ones(1, 1, k, k, dtype=F64), stride=s, dilation=d)
    h[0, 0, 0, 0].backward()
    columns = torch.nonzero(x.grad[0, 0].abs().sum(dim=0))
    return int(columns.max() - columns.min() + 1)


@pytest.mark.parametrize(
    "layers",
    [
        [(3, 1, 1)],
        [(3, 1, 1), (3, 1, 2), (3, 1, 4)],
        [(3, 2, 1), (3, 1, 2)],
        [(2, 2, 1)] * 3,
        [(5, 1, 3), (3, 2, 2), (1, 1, 1), (3, 1, 1)],
        [(7, 3, 2), (3, 2, 1)],
    ],
)
def test_receptive_field_matches_autograd(layers):
    assert reference.receptive_field(layers) == measured_receptive_field(layers)


@pytest.mark.parametrize(
    "c_in,c_out,dilation,hw", [(1, 2, 1, (5, 5)), (3, 4, 2, (7, 6)), (2, 2, 4, (9, 12))]
)
def test_dilated_block_is_relu_of_a_dilated_conv2d(c_in, c_out, dilation, hw):
    block = reference.DilatedConvBlock(c_in, c_out, dilation).double()
    x = torch.randn(2, c_in, *hw, generator=seeded("block", dilation), dtype=F64)
    expected = F.relu(
        F.conv2d(x, block.conv.weight, block.conv.bias, padding=dilation, dilation=dilation)
    )
    torch.testing.assert_close(block(x), expected)
    assert block(x).shape[-2:] == hw


def test_fcn_keeps_the_resolution_and_starts_bilinear():
    model = reference.FCN(3, 4).double()
    assert model(torch.rand(2, 1, 8, 6, dtype=F64)).shape == (2, 3, 8, 6)
    up = reference.Upsample2x(1).double()
    x = torch.rand(1, 1, 4, 4, generator=seeded("up"), dtype=F64)
    inner = up(x)[..., 1:-1, 1:-1]  # away from the border, bilinear interpolation exactly
    expected = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)[
        ..., 1:-1, 1:-1
    ]
    torch.testing.assert_close(inner, expected)


@pytest.mark.parametrize(
    "classes,present", [(2, [0, 1]), (6, [1, 4]), (10, list(range(10))), (4, [3])]
)
def test_metrics_equal_a_confusion_matrix(classes, present):
    rng = seeded("metrics", classes)
    palette = torch.tensor(present)
    target = palette[torch.randint(0, len(present), (3, 5, 7), generator=rng)]
    pred = torch.where(
        torch.rand(3, 5, 7, generator=rng) < 0.7,
        target,
        palette[torch.randint(0, len(present), (3, 5, 7), generator=rng)],
    )
    confusion = torch.zeros(classes, classes, dtype=F64)
    confusion.index_put_(
        (target.flatten(), pred.flatten()), torch.ones(pred.numel(), dtype=F64), accumulate=True
    )
    inter = confusion.diagonal()
    union = confusion.sum(0) + confusion.sum(1) - inter
    expected = (inter[union > 0] / union[union > 0]).mean().item()
    assert math.isclose(reference.mean_iou(pred, target, classes), expected, rel_tol=1e-12)
    assert math.isclose(reference.pixel_accuracy(pred, target), (inter.sum() / pred.numel()).item())


@pytest.mark.parametrize(
    "n,k,temperature,alpha",
    [
        (1, 2, 1.0, 0.5),
        (4, 5, 4.0, 0.5),
        (8, 10, 2.0, 0.0),
        (6, 3, 4.0, 1.0),
        (16, 7, 8.0, 0.3),
    ],
)
def test_distillation_equals_kl_div_and_cross_entropy(n, k, temperature, alpha):
    rng = seeded("distill", n, k, temperature)
    student = (3 * torch.randn(n, k, generator=rng, dtype=F64)).requires_grad_(True)
    teacher = 3 * torch.randn(n, k, generator=rng, dtype=F64)
    labels = torch.randint(0, k, (n,), generator=rng)
    ours = reference.distillation_loss(student, teacher, labels, temperature, alpha)
    kl = F.kl_div(
        F.log_softmax(student / temperature, dim=1),
        F.log_softmax(teacher / temperature, dim=1),
        reduction="batchmean",
        log_target=True,
    )
    theirs = alpha * temperature**2 * kl + (1 - alpha) * F.cross_entropy(student, labels)
    torch.testing.assert_close(ours, theirs)
    (grad_ours,) = torch.autograd.grad(ours, student)
    (grad_theirs,) = torch.autograd.grad(theirs, student)
    torch.testing.assert_close(grad_ours, grad_theirs)


def test_distillation_is_finite_at_saturated_float32_logits():
    rng = seeded("saturated")
    student = (100 * torch.sign(torch.randn(5, 6, generator=rng))).requires_grad_(True)
    teacher = 100 * torch.sign(torch.randn(5, 6, generator=rng))
    labels = torch.randint(0, 6, (5,), generator=rng)
    for temperature in (1.0, 4.0):
        loss = reference.distillation_loss(student, teacher, labels, temperature, 0.5)
        (grad,) = torch.autograd.grad(loss, student)
        assert torch.isfinite(loss) and torch.isfinite(grad).all()
        exact = reference.distillation_loss(
            student.double(), teacher.double(), labels, temperature, 0.5
        )
        torch.testing.assert_close(loss.double(), exact, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (2, 3, 4, 5), (3, 8, 2, 7)])
def test_gram_and_style_losses_equal_einsum_and_mse(shape):
    rng = seeded("gram", shape)
    a, b = (
        torch.randn(*shape, generator=rng, dtype=F64),
        torch.randn(*shape, generator=rng, dtype=F64),
    )
    n, c, h, w = shape
    gram = torch.einsum("nchw,ndhw->ncd", a, a) / (c * h * w)
    torch.testing.assert_close(reference.gram_matrix(a), gram)
    other = torch.einsum("nchw,ndhw->ncd", b, b) / (c * h * w)
    torch.testing.assert_close(reference.style_loss(a, b), F.mse_loss(gram, other))
    torch.testing.assert_close(reference.content_loss(a, b), F.mse_loss(a, b))


@pytest.mark.parametrize(
    "size,patch,channels,dim", [(4, 2, 1, 3), (6, 3, 3, 5), (8, 2, 2, 4), (6, 1, 1, 2)]
)
def test_patch_embedding_three_ways_agree(size, patch, channels, dim):
    rng = seeded("patch", size, patch)
    embed = reference.PatchEmbedding(size, patch, channels, dim).double()
    x = torch.randn(2, channels, size, size, generator=rng, dtype=F64)
    by_unfold = F.unfold(x, patch, stride=patch).transpose(1, 2)  # row-major, (C, p, p) rows
    expected = by_unfold @ embed.proj.weight.reshape(dim, -1).T + embed.proj.bias
    torch.testing.assert_close(embed(x), expected)
    torch.testing.assert_close(embed.forward_unfold(x), expected)


def test_vit_equals_a_hand_written_forward():
    rng = seeded("vit")
    model = reference.ViT(8, 2, 1, 8, 2, 2, 16, 10).double().eval()
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(0.3 * torch.randn(param.shape, generator=rng, dtype=F64))
    x = torch.randn(3, 1, 8, 8, generator=rng, dtype=F64)
    patches = F.unfold(x, 2, stride=2).transpose(1, 2)
    tokens = patches @ model.patch_embed.proj.weight.reshape(8, -1).T + model.patch_embed.proj.bias
    tokens = torch.cat([model.cls_token.expand(3, 1, 8), tokens], dim=1) + model.pos_embedding
    for block in model.blocks:
        attention = block.attn
        q, k, v = (tokens @ attention.in_proj_weight.T + attention.in_proj_bias).chunk(3, dim=-1)
        split = lambda t: t.reshape(3, 17, 2, 4).transpose(1, 2)  # noqa: E731
        weights = torch.softmax(split(q) @ split(k).transpose(-1, -2) / 2.0, dim=-1)
        mixed = (weights @ split(v)).transpose(1, 2).reshape(3, 17, 8)
        attended = attention.out_proj(mixed)
        tokens = block.norm1(tokens + attended)
        tokens = block.norm2(tokens + block.fc2(torch.relu(block.fc1(tokens))))
    expected = model.head(model.norm(tokens[:, 0]))
    torch.testing.assert_close(model(x), expected)


ALTERNATIVE = """
import itertools


def box_area(boxes):
    wh = (boxes[:, 2:] - boxes[:, :2])
    return wh.prod(dim=1)


def box_iou(a, b):
    out = torch.zeros(len(a), len(b), dtype=a.dtype)
    for i, j in itertools.product(range(len(a)), range(len(b))):
        w = min(a[i, 2], b[j, 2]) - max(a[i, 0], b[j, 0])
        h = min(a[i, 3], b[j, 3]) - max(a[i, 1], b[j, 1])
        inter = max(w, 0) * max(h, 0)
        union = box_area(a[i:i + 1])[0] + box_area(b[j:j + 1])[0] - inter
        out[i, j] = inter / union if union > 0 else 0
    return out


def nms(boxes, scores, iou_threshold):
    remaining = list(range(len(boxes)))
    keep = []
    while remaining:
        best = max(remaining, key=lambda i: (float(scores[i]), -i))
        keep.append(best)
        ious = box_iou(boxes[best:best + 1], boxes)[0]
        remaining = [i for i in remaining if i != best and not ious[i] > iou_threshold]
    return torch.as_tensor(keep, dtype=torch.long)


def anchor_boxes(feature_h, feature_w, stride, sizes, ratios):
    shapes = torch.tensor([[s * math.sqrt(r), s / math.sqrt(r)] for s in sizes for r in ratios],
                          dtype=torch.float64)
    ys, xs = torch.meshgrid(torch.arange(feature_h), torch.arange(feature_w), indexing="ij")
    centres = torch.stack([xs, ys], -1).reshape(-1, 1, 2).double().add(0.5).mul(stride)
    return torch.cat([centres - shapes / 2, centres + shapes / 2], dim=-1).reshape(-1, 4)


def encode_boxes(boxes, anchors):
    def split(b):
        return (b[:, :2] + b[:, 2:]) / 2, b[:, 2:] - b[:, :2]
    c, s = split(boxes)
    ca, sa = split(anchors)
    return torch.cat([(c - ca) / sa, torch.log(s) - torch.log(sa)], dim=1)


def decode_boxes(offsets, anchors):
    ca, sa = (anchors[:, :2] + anchors[:, 2:]) / 2, anchors[:, 2:] - anchors[:, :2]
    c, s = ca + offsets[:, :2] * sa, sa * offsets[:, 2:].exp()
    return torch.cat([c - s / 2, c + s / 2], dim=1)


def dilated_conv_output_size(in_size, kernel_size, stride=1, padding=0, dilation=1):
    return math.floor((in_size + 2 * padding - dilation * (kernel_size - 1) - 1) / stride) + 1


def receptive_field(layers):
    field = 1
    for index, (k, s, d) in enumerate(layers):
        field += d * (k - 1) * math.prod(layer[1] for layer in layers[:index])
    return field


class DilatedConvBlock(nn.Module):
    def __init__(self, in_channels, out_channels, dilation=1):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, (3, 3), padding=(dilation, dilation),
                              dilation=dilation)

    def forward(self, x):
        return self.conv(x).clamp(min=0)


class FCN(nn.Module):
    def __init__(self, num_classes, width=16):
        super().__init__()
        self.block1 = DilatedConvBlock(1, width, dilation=1)
        self.down = nn.Conv2d(width, width, 3, 2, 1)
        self.block2 = DilatedConvBlock(width, width, dilation=2)
        self.classifier = nn.Conv2d(width, num_classes, (1, 1))
        self.up = Upsample2x(num_classes)

    def forward(self, x):
        x = torch.relu(self.down(self.block1(x)))
        return self.up(self.classifier(self.block2(x)))


def pixel_accuracy(pred, target):
    return float(torch.eq(pred, target).float().mean())


def mean_iou(pred, target, num_classes):
    confusion = torch.bincount(target.flatten() * num_classes + pred.flatten(),
                               minlength=num_classes ** 2).reshape(num_classes, num_classes)
    inter = confusion.diag().double()
    union = confusion.sum(0) + confusion.sum(1) - confusion.diag()
    return float((inter[union > 0] / union[union > 0]).mean())


def freeze(module):
    module.requires_grad_(False)
    return module


def replace_head(model, num_classes):
    old = model.head
    model.head = nn.Linear(old.in_features, num_classes, device=old.weight.device,
                           dtype=old.weight.dtype)
    return model


def distillation_loss(student_logits, teacher_logits, labels, temperature=4.0, alpha=0.5):
    def log_softmax(z):
        return z - torch.logsumexp(z, dim=1, keepdim=True)
    log_t = log_softmax(teacher_logits / temperature)
    log_s = log_softmax(student_logits / temperature)
    kl = torch.sum(torch.exp(log_t) * (log_t - log_s)) / len(labels)
    onehot = torch.zeros_like(student_logits).scatter(1, labels[:, None], 1.0)
    ce = -(onehot * log_softmax(student_logits)).sum() / len(labels)
    return alpha * temperature ** 2 * kl + (1 - alpha) * ce


def gram_matrix(features):
    n, c, h, w = features.shape
    return torch.einsum("nchw,ndhw->ncd", features, features) / (c * h * w)


def style_loss(generated, style):
    return F.mse_loss(gram_matrix(generated), gram_matrix(style))


def content_loss(generated, content):
    return F.mse_loss(generated, content)


class PatchEmbedding(nn.Module):
    def __init__(self, image_size, patch_size, in_channels, dim):
        super().__init__()
        self.p = patch_size
        self.proj = nn.Conv2d(in_channels, dim, patch_size, patch_size)

    def forward(self, x):
        return torch.einsum("ndhw->nhwd", self.proj(x)).flatten(1, 2)

    def forward_unfold(self, x):
        cols = F.unfold(x, self.p, stride=self.p)
        return torch.einsum("nkp,dk->npd", cols, self.proj.weight.flatten(1)) + self.proj.bias


class ViT(nn.Module):
    def __init__(self, image_size, patch_size, in_channels, dim, depth, heads, mlp_dim,
                 num_classes):
        super().__init__()
        self.patch_embed = PatchEmbedding(image_size, patch_size, in_channels, dim)
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim))
        self.pos_embedding = nn.Parameter(torch.randn(1, (image_size // patch_size) ** 2 + 1, dim))
        self.blocks = nn.ModuleList()
        for _ in range(depth):
            self.blocks.append(EncoderBlock(dim, heads, mlp_dim))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x):
        t = self.patch_embed(x)
        t = torch.cat([self.cls_token.repeat(t.shape[0], 1, 1), t], dim=1)
        t = t + self.pos_embedding
        for block in self.blocks:
            t = block(t)
        return self.head(self.norm(t)[:, 0, :])
"""


def test_hidden_checks_accept_a_correct_implementation_in_another_style():
    """Loops, einsum, bincount, logsumexp, F.unfold, F.mse_loss, module.requires_grad_:
    every output within tolerance on every case."""
    namespace: dict = {
        "math": math,
        "torch": torch,
        "nn": nn,
        "F": F,
        "Upsample2x": reference.Upsample2x,
        "EncoderBlock": reference.EncoderBlock,
    }
    exec(compile(ALTERNATIVE, "<alternative>", "exec"), namespace)  # noqa: S102 - test code
    assert_checks_accept(CHECKS_PATH, reference, namespace)


def test_library_losses_in_distillation_cost_only_its_items(grade_file, tmp_path) -> None:  # type: ignore[no-untyped-def]
    code = """
def distillation_loss(student_logits, teacher_logits, labels, temperature=4.0, alpha=0.5):
    soft = F.kl_div(F.log_softmax(student_logits / temperature, dim=1),
                    F.softmax(teacher_logits / temperature, dim=1), reduction="batchmean")
    hard = F.cross_entropy(student_logits, labels)
    return alpha * temperature ** 2 * soft + (1 - alpha) * hard
"""
    path = notebook_with_extra_cell(CHAPTER, code, tmp_path / f"{CHAPTER}.ipynb")
    results = grade_file(CHAPTER, path)
    failed = failed_items(results)
    assert {item.split(":")[0] for item in failed} == {
        "distillation_loss",
        "distillation_loss in float32",
    }
    messages = [test["output"] for test in results["tests"] if test["status"] == "failed"]
    assert all("kl_div" in message or "cross_entropy" in message for message in messages)
