"""Reference implementation of chapter 12 (vision tasks beyond classification): the grading
oracle.

Never shipped to students. Boxes, IoU, non-maximum suppression, anchors and box offsets;
the arithmetic of dilated convolutions; a small fully convolutional network and its metrics;
freezing, head replacement and knowledge distillation; the losses of style transfer; the patch
embedding of a vision transformer and the transformer itself.

Conventions: a box is a row ``(x1, y1, x2, y2)`` of a float tensor with ``x1 <= x2`` and
``y1 <= y2`` (x grows to the right, y downwards; a box of zero width or height is allowed).
Images are ``(N, C, H, W)``. Label maps are ``(N, H, W)`` int64.

Two copies of the reference, by rule: this module (the grading oracle that writes the expected
data) and the master's solution blocks (what the released solution notebook runs) are kept as
independent oracles, neither generated from the other; ``tests/test_check_coverage.py`` runs
every check's exercise on both and compares them with the kit's comparison rule.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

__all__ = [
    "DilatedConvBlock",
    "EncoderBlock",
    "FCN",
    "PatchEmbedding",
    "Upsample2x",
    "ViT",
    "anchor_boxes",
    "box_area",
    "box_iou",
    "content_loss",
    "decode_boxes",
    "dilated_conv_output_size",
    "distillation_loss",
    "encode_boxes",
    "freeze",
    "gram_matrix",
    "mean_iou",
    "nms",
    "pixel_accuracy",
    "receptive_field",
    "replace_head",
    "style_loss",
]


# ----------------------------------------------------------------------------------- boxes
def box_area(boxes: torch.Tensor) -> torch.Tensor:
    """(N, 4) boxes -> (N,) areas (x2 - x1) * (y2 - y1)."""
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Intersection over union of every pair: a (N, 4), b (M, 4) -> (N, M).

    A pair whose union is 0 (two zero-area boxes) has IoU 0, never NaN.
    """
    top_left = torch.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    sides = (bottom_right - top_left).clamp(min=0)
    inter = sides[..., 0] * sides[..., 1]
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    safe = torch.where(union > 0, union, torch.ones_like(union))
    return torch.where(union > 0, inter / safe, torch.zeros_like(union))


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy non-maximum suppression.

    boxes (N, 4), scores (N,) -> int64 (K,) indices of the kept boxes by decreasing score
    (equal scores: lower index first). A box is suppressed by a kept box of higher rank when
    their IoU is strictly greater than ``iou_threshold``.
    """
    order = torch.sort(scores, descending=True, stable=True).indices.tolist()
    overlapping = (box_iou(boxes, boxes) > iou_threshold).tolist()
    alive = [True] * len(order)
    keep: list[int] = []
    for index in order:
        if not alive[index]:
            continue
        keep.append(index)
        alive = [a and not o for a, o in zip(alive, overlapping[index])]
    return torch.tensor(keep, dtype=torch.int64)


def anchor_boxes(
    feature_h: int,
    feature_w: int,
    stride: float,
    sizes: Sequence[float],
    ratios: Sequence[float],
) -> torch.Tensor:
    """Anchors of a feature map, float64 (feature_h * feature_w * len(sizes) * len(ratios), 4).

    Cell (i, j) has centre ((j + 0.5) * stride, (i + 0.5) * stride); for each size s and ratio
    r (= width / height) the anchor has width s * sqrt(r) and height s / sqrt(r). Order: cells
    row-major (i, then j), then sizes, then ratios: row ((i * W + j) * S + s) * R + r.
    """
    rows = []
    for i in range(feature_h):
        for j in range(feature_w):
            cx, cy = (j + 0.5) * stride, (i + 0.5) * stride
            for size in sizes:
                for ratio in ratios:
                    w, h = size * math.sqrt(ratio), size / math.sqrt(ratio)
                    rows.append([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
    return torch.tensor(rows, dtype=torch.float64).reshape(-1, 4)


def _centre_size(boxes: torch.Tensor) -> tuple[torch.Tensor, ...]:
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    return boxes[:, 0] + w / 2, boxes[:, 1] + h / 2, w, h


def encode_boxes(boxes: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    """Offsets of boxes (N, 4) from anchors (N, 4), both of positive width and height:
    (tx, ty, tw, th) = ((cx - cxa) / wa, (cy - cya) / ha, log(w / wa), log(h / ha)) -> (N, 4)."""
    cx, cy, w, h = _centre_size(boxes)
    acx, acy, aw, ah = _centre_size(anchors)
    return torch.stack(
        [(cx - acx) / aw, (cy - acy) / ah, torch.log(w / aw), torch.log(h / ah)], dim=1
    )


def decode_boxes(offsets: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    """The inverse of encode_boxes: offsets (N, 4), anchors (N, 4) -> boxes (N, 4)."""
    acx, acy, aw, ah = _centre_size(anchors)
    cx = acx + offsets[:, 0] * aw
    cy = acy + offsets[:, 1] * ah
    w = aw * torch.exp(offsets[:, 2])
    h = ah * torch.exp(offsets[:, 3])
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=1)


# ------------------------------------------------------------------- dilated convolutions
def dilated_conv_output_size(
    in_size: int, kernel_size: int, stride: int = 1, padding: int = 0, dilation: int = 1
) -> int:
    """floor((in + 2 padding - dilation (kernel - 1) - 1) / stride) + 1."""
    return (in_size + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1


def receptive_field(layers: Sequence[tuple[int, int, int]]) -> int:
    """Receptive field (in input pixels) of a stack of (kernel_size, stride, dilation) layers."""
    field, jump = 1, 1
    for kernel_size, stride, dilation in layers:
        field += dilation * (kernel_size - 1) * jump
        jump *= stride
    return field


class DilatedConvBlock(nn.Module):
    """relu(conv(x)), conv a 3x3 nn.Conv2d with dilation d and padding d: (N, C_in, H, W) ->
    (N, C_out, H, W)."""

    def __init__(self, in_channels: int, out_channels: int, dilation: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=dilation, dilation=dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(x))


# ----------------------------------------------------------------- segmentation (given)
# Linear interpolation by 2 with a kernel of 4: the weights at distances 1.5, 0.5, 0.5, 1.5
# from the centre of the kernel are 1 - distance / 2.
_BILINEAR_4 = torch.tensor([0.25, 0.75, 0.75, 0.25], dtype=torch.float64)


class Upsample2x(nn.Module):
    """Given: doubles H and W per channel with a transposed convolution (kernel 4, stride 2,
    padding 1) initialised to bilinear interpolation: (N, C, H, W) -> (N, C, 2H, 2W)."""

    def __init__(self, channels: int):
        super().__init__()
        self.transposed = nn.ConvTranspose2d(
            channels, channels, 4, stride=2, padding=1, groups=channels, bias=False
        )
        with torch.no_grad():
            self.transposed.weight.copy_(
                torch.outer(_BILINEAR_4, _BILINEAR_4).expand(channels, 1, 4, 4)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.transposed(x)


class FCN(nn.Module):
    """block1 (dilation 1) -> down (stride 2) -> relu -> block2 (dilation 2) -> 1x1 classifier
    -> Upsample2x: (N, 1, H, W), H and W even -> (N, num_classes, H, W) logits."""

    def __init__(self, num_classes: int, width: int = 16):
        super().__init__()
        self.block1 = DilatedConvBlock(1, width, 1)
        self.down = nn.Conv2d(width, width, 3, stride=2, padding=1)
        self.block2 = DilatedConvBlock(width, width, 2)
        self.classifier = nn.Conv2d(width, num_classes, 1)
        self.up = Upsample2x(num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = self.block2(torch.relu(self.down(self.block1(x))))
        return self.up(self.classifier(hidden))


def pixel_accuracy(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Share of pixels whose predicted class equals the target: (N, H, W) int64 each."""
    return (pred == target).double().mean().item()


def mean_iou(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> float:
    """Mean over classes of |pred = c and target = c| / |pred = c or target = c|; a class in
    neither pred nor target is skipped (not counted as 0 or 1)."""
    scores = []
    for c in range(num_classes):
        p, t = pred == c, target == c
        union = (p | t).sum().item()
        if union > 0:
            scores.append((p & t).sum().item() / union)
    return sum(scores) / len(scores)


# ------------------------------------------------------------- transfer and distillation
def freeze(module: nn.Module) -> nn.Module:
    """Stops gradients for every parameter of module (requires_grad False); returns it."""
    for param in module.parameters():
        param.requires_grad_(False)
    return module


def replace_head(model: nn.Module, num_classes: int) -> nn.Module:
    """Replaces model.head (an nn.Linear) by a new trainable nn.Linear(in_features,
    num_classes) of the old head's dtype; returns the model."""
    old = model.head
    assert isinstance(old, nn.Linear), "model.head must be an nn.Linear"
    model.head = nn.Linear(old.in_features, num_classes).to(old.weight.dtype)
    return model


def _log_softmax(logits: torch.Tensor) -> torch.Tensor:
    top = logits.max(dim=1, keepdim=True).values
    shifted = logits - top
    return shifted - torch.log(torch.exp(shifted).sum(dim=1, keepdim=True))


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor,
    temperature: float = 4.0,
    alpha: float = 0.5,
) -> torch.Tensor:
    """alpha T^2 KL(softmax(t / T) || softmax(s / T)) + (1 - alpha) CE(s, labels), the KL
    summed over classes and both terms averaged over the batch.

    student_logits, teacher_logits (N, K); labels (N,) int64 -> 0-dim tensor.
    """
    log_p_teacher = _log_softmax(teacher_logits / temperature)
    log_p_student = _log_softmax(student_logits / temperature)
    kl = (torch.exp(log_p_teacher) * (log_p_teacher - log_p_student)).sum(dim=1).mean()
    log_probs = _log_softmax(student_logits)
    cross_entropy = -log_probs[torch.arange(len(labels)), labels].mean()
    return alpha * temperature**2 * kl + (1 - alpha) * cross_entropy


# ------------------------------------------------------------------- style transfer losses
def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, C): F F^T / (C H W), F the features as (N, C, H*W)."""
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w)
    return flat @ flat.transpose(1, 2) / (c * h * w)


def style_loss(generated: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of the Gram matrices of generated and style (N, C, H, W)."""
    return (gram_matrix(generated) - gram_matrix(style)).pow(2).mean()


def content_loss(generated: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of the features generated and content (N, C, H, W)."""
    return (generated - content).pow(2).mean()


# ----------------------------------------------------------------------- vision transformer
class PatchEmbedding(nn.Module):
    """Non-overlapping patch_size x patch_size patches, each mapped linearly to dim numbers:
    (N, C, H, W) -> (N, (H / p) * (W / p), dim), patches in row-major order."""

    def __init__(self, image_size: int, patch_size: int, in_channels: int, dim: int):
        super().__init__()
        self.patch_size = patch_size
        self.num_patches = (image_size // patch_size) ** 2
        self.proj = nn.Conv2d(in_channels, dim, patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)

    def forward_unfold(self, x: torch.Tensor) -> torch.Tensor:
        """The same map as forward, written as unfold + a linear map with proj's weights."""
        n, c, _, _ = x.shape
        p = self.patch_size
        patches = x.unfold(2, p, p).unfold(3, p, p)  # (N, C, H/p, W/p, p, p)
        patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(n, -1, c * p * p)
        weight = self.proj.weight.reshape(self.proj.out_channels, -1)
        bias = self.proj.bias
        assert bias is not None
        return patches @ weight.T + bias


class EncoderBlock(nn.Module):
    """Given (chapter 06): post-norm transformer encoder block on (N, L, dim)."""

    def __init__(self, dim: int, heads: int, mlp_dim: int):
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm1 = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, mlp_dim)
        self.fc2 = nn.Linear(mlp_dim, dim)
        self.norm2 = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        attended, _ = self.attn(x, x, x, need_weights=False)
        x = self.norm1(x + attended)
        return self.norm2(x + self.fc2(torch.relu(self.fc1(x))))


class ViT(nn.Module):
    """Patch embedding, a learned class token in front, learned position embeddings,
    ``depth`` EncoderBlocks, LayerNorm, and a linear head on the class token:
    (N, C, H, W) -> (N, num_classes)."""

    def __init__(
        self,
        image_size: int,
        patch_size: int,
        in_channels: int,
        dim: int,
        depth: int,
        heads: int,
        mlp_dim: int,
        num_classes: int,
    ):
        super().__init__()
        self.patch_embed = PatchEmbedding(image_size, patch_size, in_channels, dim)
        patches = (image_size // patch_size) ** 2
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embedding = nn.Parameter(0.02 * torch.randn(1, patches + 1, dim))
        self.blocks = nn.ModuleList([EncoderBlock(dim, heads, mlp_dim) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.patch_embed(x)
        cls = self.cls_token.expand(len(tokens), -1, -1)
        tokens = torch.cat([cls, tokens], dim=1) + self.pos_embedding
        for block in self.blocks:
            tokens = block(tokens)
        return self.head(self.norm(tokens)[:, 0])
