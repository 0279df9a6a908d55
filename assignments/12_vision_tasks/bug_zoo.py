"""Bug zoo of chapter 12: mistakes students really make; each must lose exactly its items."""

from __future__ import annotations

from tools.zoo import Bug


def items(check: str, *outputs: str) -> set[str]:
    return {f"{check}: {output}" for output in outputs}


def iou_code(
    clamp: str = ".clamp(min=0)",
    union: str = "box_area(a)[:, None] + box_area(b)[None, :] - inter",
    result: str = "torch.where(union > 0, inter / torch.where(union > 0, union, 1.0), 0.0)",
) -> str:
    """A broadcast box_iou with one piece changed."""
    return f"""
def box_iou(a, b):
    right = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    left = torch.maximum(a[:, None, :2], b[None, :, :2])
    sides = (right - left){clamp}
    inter = sides[..., 0] * sides[..., 1]
    union = {union}
    return {result}
"""


DISTILL_ALL = items("distillation_loss", "loss", "grad_student") | items(
    "distillation_loss in float32", "loss", "grad_student"
)


def nms_code(
    order: str = "torch.sort(scores, descending=True, stable=True).indices.tolist()",
    test: str = "ious[index] > iou_threshold",
    skip: str = "if suppressed[index]:\n            continue",
    result: str = "torch.tensor(keep, dtype=torch.int64)",
) -> str:
    """An nms written like the reference with one piece changed."""
    return f"""
def nms(boxes, scores, iou_threshold):
    order = {order}
    ious = box_iou(boxes, boxes)
    keep = []
    suppressed = torch.zeros(len(boxes), dtype=torch.bool)
    for index in order:
        {skip}
        keep.append(index)
        suppressed = suppressed | ({test})
    return {result}
"""


NESTS = {
    "cells_then_sizes": (
        "i in range(feature_h)",
        "j in range(feature_w)",
        "size in sizes",
        "ratio in ratios",
    ),
    "ratios_then_sizes": (
        "i in range(feature_h)",
        "j in range(feature_w)",
        "ratio in ratios",
        "size in sizes",
    ),
    "columns_first": (
        "j in range(feature_w)",
        "i in range(feature_h)",
        "size in sizes",
        "ratio in ratios",
    ),
}


def anchors_code(
    loops: str = "cells_then_sizes",
    width: str = "size * math.sqrt(ratio)",
    height: str = "size / math.sqrt(ratio)",
    offset: str = "0.5",
) -> str:
    """An anchor_boxes written with four nested loops; ``loops`` picks their order."""
    first, second, third, fourth = NESTS[loops]
    return f"""
def anchor_boxes(feature_h, feature_w, stride, sizes, ratios):
    rows = []
    for {first}:
        for {second}:
            for {third}:
                for {fourth}:
                    cx, cy = (j + {offset}) * stride, (i + {offset}) * stride
                    w, h = {width}, {height}
                    rows.append([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
    return torch.tensor(rows, dtype=torch.float64)
"""


def distill_code(
    soft: str = "alpha * temperature ** 2 * kl",
    kl: str = "(teacher.exp() * (teacher - student)).sum(dim=1).mean()",
    student: str = "log_probabilities(student_logits / temperature)",
    hard: str = "log_probabilities(student_logits)",
    log_probabilities: str = "shifted - torch.log(torch.exp(shifted).sum(dim=1, keepdim=True))",
) -> str:
    """A distillation_loss written like the reference with one expression changed."""
    return f"""
def distillation_loss(student_logits, teacher_logits, labels, temperature=4.0, alpha=0.5):
    def log_probabilities(z):
        shifted = z - z.max(dim=1, keepdim=True).values
        return {log_probabilities}

    teacher = log_probabilities(teacher_logits / temperature)
    student = {student}
    kl = {kl}
    hard = -{hard}.gather(1, labels.view(-1, 1)).mean()
    return {soft} + (1 - alpha) * hard
"""


def unfold_code(permutation: str) -> str:
    """A forward_unfold whose patches are permuted by ``permutation`` before flattening (the
    correct one is 0, 2, 3, 1, 4, 5)."""
    return f"""
class PatchEmbedding(PatchEmbedding):
    def forward_unfold(self, x):
        p = self.patch_size
        n, c, h, w = x.shape
        patches = x.unfold(2, p, p).unfold(3, p, p).permute({permutation})
        patches = patches.reshape(n, -1, c * p * p)
        return patches @ self.proj.weight.reshape(self.proj.out_channels, -1).T + self.proj.bias
"""


def vit_forward(
    positions: str = "tokens + self.pos_embedding",
    pooled: str = "self.norm(tokens[:, 0])",
) -> str:
    """A ViT whose forward has one piece changed."""
    return f"""
class ViT(ViT):
    def forward(self, x):
        tokens = torch.cat((self.cls_token.expand(len(x), 1, -1), self.patch_embed(x)), dim=1)
        tokens = {positions}
        for block in self.blocks:
            tokens = block(tokens)
        return self.head({pooled})
"""


BUGS = [
    # ------------------------------------------------------------------------------ boxes
    Bug(
        "area with the +1 of pixel indices",
        items("box_area", "area"),
        """
def box_area(boxes):
    return (boxes[:, 2] - boxes[:, 0] + 1) * (boxes[:, 3] - boxes[:, 1] + 1)
""",
        pattern=None,
    ),
    Bug(
        "area uses the width twice",
        items("box_area", "area"),
        """
def box_area(boxes):
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 2] - boxes[:, 0])
""",
    ),
    Bug(
        "area keeps a dimension",
        items("box_area", "area"),
        """
def box_area(boxes):
    return (boxes[:, 2:] - boxes[:, :2]).prod(dim=1, keepdim=True)
""",
    ),
    Bug("IoU without the clamp on the intersection", items("box_iou", "iou"), iou_code(clamp="")),
    Bug(
        "IoU's union counts the intersection twice",
        items("box_iou", "iou"),
        iou_code(union="box_area(a)[:, None] + box_area(b)[None, :]"),
    ),
    Bug(
        "IoU of two zero-area boxes is NaN",
        items("box_iou", "iou"),
        iou_code(result="inter / union"),
    ),
    # -------------------------------------------------------------------------------- nms
    Bug(
        "NMS sorts ascending",
        items("nms", "keep"),
        nms_code(order="torch.sort(scores, stable=True).indices.tolist()"),
    ),
    Bug(
        "NMS suppresses at IoU >= threshold",
        items("nms", "keep"),
        nms_code(test="ious[index] >= iou_threshold"),
    ),
    Bug(
        "NMS breaks ties by the higher index",
        items("nms", "keep"),
        nms_code(order="sorted(range(len(scores)), key=lambda i: (-scores[i].item(), -i))"),
        pattern="kind",
    ),
    Bug(
        "NMS lets suppressed boxes suppress others",
        items("nms", "keep"),
        """
def nms(boxes, scores, iou_threshold):
    order = torch.sort(scores, descending=True, stable=True).indices.tolist()
    ious = box_iou(boxes, boxes)
    suppressed = torch.zeros(len(boxes), dtype=torch.bool)
    for position, index in enumerate(order):
        for later in order[position + 1:]:
            if ious[index, later] > iou_threshold:
                suppressed[later] = True
    return torch.tensor([i for i in order if not suppressed[i]], dtype=torch.int64)
""",
        pattern=None,
    ),
    Bug(
        "NMS returns float indices for an empty input",
        items("nms", "keep"),
        nms_code(result="torch.tensor(keep)"),
    ),
    # ------------------------------------------------------------------ anchors, offsets
    Bug(
        "anchors: ratios outside sizes",
        items("anchor_boxes", "anchors"),
        anchors_code(loops="ratios_then_sizes"),
    ),
    Bug(
        "anchors: cells column-major",
        items("anchor_boxes", "anchors"),
        anchors_code(loops="columns_first"),
    ),
    Bug(
        "anchors: ratio read as height / width",
        items("anchor_boxes", "anchors"),
        anchors_code(width="size / math.sqrt(ratio)", height="size * math.sqrt(ratio)"),
    ),
    Bug(
        "anchors: centres on the cell corner",
        items("anchor_boxes", "anchors"),
        anchors_code(offset="0"),
    ),
    Bug(
        "decode uses the anchor's width for the height",
        items("encode_decode", "decoded", "round_trip"),
        """
def decode_boxes(offsets, anchors):
    wa, ha = anchors[:, 2] - anchors[:, 0], anchors[:, 3] - anchors[:, 1]
    cx = (anchors[:, 0] + anchors[:, 2]) / 2 + offsets[:, 0] * wa
    cy = (anchors[:, 1] + anchors[:, 3]) / 2 + offsets[:, 1] * ha
    w, h = wa * torch.exp(offsets[:, 2]), wa * torch.exp(offsets[:, 3])
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=1)
""",
    ),
    Bug(
        "decode scales linearly instead of exp",
        items("encode_decode", "decoded", "round_trip"),
        """
def decode_boxes(offsets, anchors):
    wa, ha = anchors[:, 2] - anchors[:, 0], anchors[:, 3] - anchors[:, 1]
    cx = (anchors[:, 0] + anchors[:, 2]) / 2 + offsets[:, 0] * wa
    cy = (anchors[:, 1] + anchors[:, 3]) / 2 + offsets[:, 1] * ha
    w, h = wa * (1 + offsets[:, 2]), ha * (1 + offsets[:, 3])
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=1)
""",
    ),
    Bug(
        "encode divides the y offset by the anchor's width",
        items("encode_decode", "offsets", "round_trip"),
        """
def encode_boxes(boxes, anchors):
    wa, ha = anchors[:, 2] - anchors[:, 0], anchors[:, 3] - anchors[:, 1]
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    tx = ((boxes[:, 0] + boxes[:, 2]) - (anchors[:, 0] + anchors[:, 2])) / (2 * wa)
    ty = ((boxes[:, 1] + boxes[:, 3]) - (anchors[:, 1] + anchors[:, 3])) / (2 * wa)
    return torch.stack([tx, ty, torch.log(w / wa), torch.log(h / ha)], dim=1)
""",
    ),
    Bug(
        "encode offsets from the corner, not the centre",
        items("encode_decode", "offsets", "round_trip"),
        """
def encode_boxes(boxes, anchors):
    wa, ha = anchors[:, 2] - anchors[:, 0], anchors[:, 3] - anchors[:, 1]
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    tx = (boxes[:, 0] - anchors[:, 0]) / wa
    ty = (boxes[:, 1] - anchors[:, 1]) / ha
    return torch.stack([tx, ty, torch.log(w / wa), torch.log(h / ha)], dim=1)
""",
    ),
    # -------------------------------------------------------------- dilated convolutions
    Bug(
        "output size ignores the dilation",
        items("conv_arithmetic", "output_size"),
        """
def dilated_conv_output_size(in_size, kernel_size, stride=1, padding=0, dilation=1):
    return (in_size + 2 * padding - kernel_size) // stride + 1
""",
    ),
    Bug(
        "output size with / instead of //",
        items("conv_arithmetic", "output_size"),
        """
def dilated_conv_output_size(in_size, kernel_size, stride=1, padding=0, dilation=1):
    return (in_size + 2 * padding - dilation * (kernel_size - 1) - 1) / stride + 1
""",
    ),
    Bug(
        "receptive field ignores the dilation",
        items("conv_arithmetic", "receptive_field"),
        """
def receptive_field(layers):
    field, jump = 1, 1
    for kernel_size, stride, dilation in layers:
        field += (kernel_size - 1) * jump
        jump *= stride
    return field
""",
    ),
    Bug(
        "receptive field applies the stride before the layer",
        items("conv_arithmetic", "receptive_field"),
        """
def receptive_field(layers):
    field, jump = 1, 1
    for kernel_size, stride, dilation in layers:
        jump *= stride
        field += dilation * (kernel_size - 1) * jump
    return field
""",
    ),
    Bug(
        "dilated block keeps padding 1",
        items("DilatedConvBlock", "y"),
        """
class DilatedConvBlock(DilatedConvBlock):
    def __init__(self, in_channels, out_channels, dilation=1):
        nn.Module.__init__(self)
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1, dilation=dilation)
""",
    ),
    Bug(
        "dilated block forgets the dilation",
        items("DilatedConvBlock", "y"),
        """
class DilatedConvBlock(DilatedConvBlock):
    def __init__(self, in_channels, out_channels, dilation=1):
        nn.Module.__init__(self)
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=dilation)
""",
    ),
    Bug(
        "dilated block without the ReLU",
        items("DilatedConvBlock", "y"),
        """
class DilatedConvBlock(DilatedConvBlock):
    def forward(self, x):
        return self.conv(x)
""",
    ),
    # ----------------------------------------------------------------- FCN and metrics
    Bug(
        "FCN without the ReLU after down",
        items("FCN", "logits"),
        """
class FCN(FCN):
    def forward(self, x):
        return self.up(self.classifier(self.block2(self.down(self.block1(x)))))
""",
    ),
    Bug(
        "FCN upsamples before the classifier",
        items("FCN", "logits"),
        """
class FCN(FCN):
    def __init__(self, num_classes, width=16):
        super().__init__(num_classes, width)
        self.up = Upsample2x(width)

    def forward(self, x):
        return self.classifier(self.up(self.block2(F.relu(self.down(self.block1(x))))))
""",
    ),
    Bug(
        "FCN's second block without dilation",
        items("FCN", "logits"),
        """
class FCN(FCN):
    def __init__(self, num_classes, width=16):
        super().__init__(num_classes, width)
        self.block2 = DilatedConvBlock(width, width, 1)
""",
    ),
    Bug(
        "pixel accuracy divides by the number of images",
        items("segmentation_metrics", "pixel_accuracy"),
        """
def pixel_accuracy(pred, target):
    return (pred == target).sum().item() / len(pred)
""",
    ),
    Bug(
        "mean IoU counts absent classes as 0",
        items("segmentation_metrics", "mean_iou"),
        """
def mean_iou(pred, target, num_classes):
    total = 0.0
    for c in range(num_classes):
        union = ((pred == c) | (target == c)).sum().item()
        if union > 0:
            total += ((pred == c) & (target == c)).sum().item() / union
    return total / num_classes
""",
        pattern=None,
    ),
    Bug(
        "mean IoU divides by the target's pixels only",
        items("segmentation_metrics", "mean_iou"),
        """
def mean_iou(pred, target, num_classes):
    scores = []
    for c in range(num_classes):
        union = ((pred == c) | (target == c)).sum().item()
        if union > 0:
            scores.append(((pred == c) & (target == c)).sum().item() / max(1, (target == c).sum().item()))
    return sum(scores) / len(scores)
""",
    ),
    # ------------------------------------------------------------------------- transfer
    Bug(
        "freeze leaves the biases trainable",
        items("transfer", "freeze"),
        """
def freeze(module):
    for name, parameter in module.named_parameters():
        if name.endswith("weight"):
            parameter.requires_grad_(False)
    return module
""",
    ),
    Bug(
        "freeze skips the submodules",
        items("transfer", "freeze"),
        """
def freeze(module):
    for parameter in module.parameters(recurse=False):
        parameter.requires_grad_(False)
    return module
""",
    ),
    Bug(
        "freeze returns nothing",
        items("transfer", "freeze"),
        """
def freeze(module):
    for parameter in module.parameters():
        parameter.requires_grad_(False)
""",
    ),
    Bug(
        "new head in float32",
        items("transfer", "replace_head"),
        """
def replace_head(model, num_classes):
    model.head = nn.Linear(model.head.in_features, num_classes)
    return model
""",
    ),
    Bug(
        "only the head's weight replaced",
        items("transfer", "replace_head"),
        """
def replace_head(model, num_classes):
    old = model.head
    old.weight = nn.Parameter(torch.randn(num_classes, old.in_features, dtype=old.weight.dtype))
    return model
""",
    ),
    Bug(
        "replace_head returns nothing",
        items("transfer", "replace_head"),
        """
def replace_head(model, num_classes):
    model.head = nn.Linear(model.head.in_features, num_classes, dtype=model.head.weight.dtype)
""",
    ),
    # --------------------------------------------------------------------- distillation
    Bug("distillation without T^2", DISTILL_ALL, distill_code(soft="alpha * kl"), pattern="T"),
    Bug(
        "distillation with the KL reversed",
        DISTILL_ALL,
        distill_code(kl="(student.exp() * (student - teacher)).sum(dim=1).mean()"),
        pattern="alpha",
    ),
    Bug(
        "distillation with softmax(s) instead of softmax(s / T)",
        DISTILL_ALL,
        distill_code(student="log_probabilities(student_logits)"),
        pattern="T",
    ),
    Bug(
        "distillation's cross-entropy at temperature T",
        DISTILL_ALL,
        distill_code(hard="log_probabilities(student_logits / temperature)"),
        pattern=None,
    ),
    Bug(
        "distillation with log(softmax)",
        items("distillation_loss in float32", "loss", "grad_student"),
        distill_code(
            log_probabilities="torch.log(torch.exp(shifted) / torch.exp(shifted).sum(dim=1, keepdim=True))"
        ),
    ),
    # --------------------------------------------------------------------- style losses
    Bug(
        "Gram matrix not normalised",
        items("gram_matrix", "gram", "grad"),
        """
def gram_matrix(features):
    flat = features.flatten(2)
    return flat @ flat.transpose(1, 2)
""",
    ),
    Bug(
        "Gram matrix normalised by H * W only",
        items("gram_matrix", "gram", "grad"),
        """
def gram_matrix(features):
    n, c, h, w = features.shape
    flat = features.flatten(2)
    return flat @ flat.transpose(1, 2) / (h * w)
""",
    ),
    Bug(
        "Gram matrix of positions instead of channels",
        items("gram_matrix", "gram", "grad"),
        """
def gram_matrix(features):
    n, c, h, w = features.shape
    flat = features.flatten(2)
    return flat.transpose(1, 2) @ flat / (c * h * w)
""",
    ),
    Bug(
        "style loss summed",
        items("style_content", "style", "grad_style"),
        """
def style_loss(generated, style):
    return ((gram_matrix(generated) - gram_matrix(style)) ** 2).sum()
""",
    ),
    Bug(
        "style loss with absolute differences",
        items("style_content", "style", "grad_style"),
        """
def style_loss(generated, style):
    return (gram_matrix(generated) - gram_matrix(style)).abs().mean()
""",
    ),
    Bug(
        "content loss summed",
        items("style_content", "content", "grad_content"),
        """
def content_loss(generated, content):
    return ((generated - content) ** 2).sum()
""",
    ),
    Bug(
        "content loss as a root mean square",
        items("style_content", "content", "grad_content"),
        """
def content_loss(generated, content):
    return ((generated - content) ** 2).mean().sqrt()
""",
    ),
    # --------------------------------------------------------------------- patches, ViT
    Bug(
        "unfolded patches in column-major order",
        items("PatchEmbedding", "tokens_unfold"),
        unfold_code("0, 3, 2, 1, 4, 5"),
    ),
    Bug(
        "unfolded patches flattened as (p, p, C)",
        items("PatchEmbedding", "tokens_unfold"),
        unfold_code("0, 2, 3, 4, 5, 1"),
    ),
    Bug(
        "conv tokens reshaped without the transpose",
        items("PatchEmbedding", "tokens"),
        """
class PatchEmbedding(PatchEmbedding):
    def forward(self, x):
        grid = self.proj(x)
        return grid.reshape(grid.shape[0], -1, grid.shape[1])
""",
    ),
    Bug(
        "conv tokens in column-major order",
        items("PatchEmbedding", "tokens"),
        """
class PatchEmbedding(PatchEmbedding):
    def forward(self, x):
        return self.proj(x).transpose(2, 3).flatten(2).transpose(1, 2)
""",
    ),
    Bug(
        "class token added instead of concatenated",
        items("ViT", "logits"),
        """
class ViT(ViT):
    def __init__(self, image_size, patch_size, in_channels, dim, depth, heads, mlp_dim, num_classes):
        super().__init__(image_size, patch_size, in_channels, dim, depth, heads, mlp_dim, num_classes)
        self.pos_embedding = nn.Parameter(torch.zeros(1, (image_size // patch_size) ** 2, dim))

    def forward(self, x):
        tokens = self.patch_embed(x) + self.cls_token + self.pos_embedding
        for block in self.blocks:
            tokens = block(tokens)
        return self.head(self.norm(tokens[:, 0]))
""",
    ),
    Bug(
        "ViT head on the mean of the tokens",
        items("ViT", "logits"),
        vit_forward(pooled="self.norm(tokens).mean(dim=1)"),
    ),
    Bug(
        "ViT without the position embedding",
        items("ViT", "logits"),
        vit_forward(positions="tokens"),
    ),
    Bug("ViT without the final norm", items("ViT", "logits"), vit_forward(pooled="tokens[:, 0]")),
]
