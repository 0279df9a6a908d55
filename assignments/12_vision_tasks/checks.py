"""Hidden checks of chapter 12: boxes and IoU, non-maximum suppression, anchors and box
offsets, dilated convolutions, a small FCN and its metrics, freezing and head replacement,
knowledge distillation, the losses of style transfer, the patch embedding and a ViT.

Never shipped to students. Students write functions and ``nn.Module`` classes; autograd
computes gradients. Every function is called twice in a row (on other inputs first, or the
same ones), the second result is graded, and every input is watched for in-place changes.

Design facts:

* Box coordinates are drawn on a grid of halves, so that edges touch exactly, IoUs of
  hand-built pairs are exact binary fractions (1/2, 1/3 ...), and an IoU equal to the NMS
  threshold is the same number in every implementation: the ``>`` against ``>=`` bug is
  exposed, and a correct implementation never fails by a rounding.
* NMS thresholds are binary fractions (0.25, 0.5, 0.625, 0.75): an IoU of grid boxes is a
  ratio of exact numbers, so it equals such a threshold only when it is exactly that number,
  and every implementation's division then gives exactly the threshold. (A threshold of 0.3
  is not a double: an IoU of exactly 3/10 rounds to the double 0.3 or not depending on how
  it is computed.)
* NMS ties: scores drawn from a few values so that equal scores are common; the rule (lower
  index first) is stated in the notebook. The NMS check runs with the grader's own
  ``box_iou`` in place of the student's, so an IoU bug costs only the IoU items.
* The FCN check substitutes the grader's ``DilatedConvBlock`` and ``Upsample2x``, the ViT
  check probes of its own for ``PatchEmbedding`` (unfold and a linear map) and
  ``EncoderBlock`` (a hand-written attention and a tanh MLP, so that the class token's output
  depends on every patch), the style check the grader's
  ``gram_matrix``; the notebook says so where those classes are written.
* Distillation at T = 1 hides a missing T^2; alpha 0 and 1 isolate each term; float32
  logits of +-100 make ``log(softmax(...))`` give -inf and the loss NaN.
"""

from __future__ import annotations

import math
from typing import Any

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
    record_grads,
    substituted,
    uniform,
)

# torchvision's box operations and the library losses: the students write their own.
FORBIDDEN = (
    "torchvision",
    "torch.nn.functional.kl_div",
    "torch.nn.functional.log_softmax",
    "torch.nn.functional.cross_entropy",
    "torch.nn.functional.nll_loss",
    "torch.log_softmax",
    "torch.special.log_softmax",
    "Tensor.log_softmax",
    "torch.nn.KLDivLoss",
    "torch.nn.CrossEntropyLoss",
    "torch.nn.NLLLoss",
    "torch.nn.modules.loss",
    "torch.ops",
)


# ------------------------------------------------------------------------------ helpers
def as_number(value: Any, name: str) -> torch.Tensor:
    """A float64 0-dim tensor from a Python number or a one-element tensor."""
    if isinstance(value, bool):
        raise TypeError(f"{name} returned a bool; return a float")
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise TypeError(f"{name} returned a tensor of shape {tuple(value.shape)}")
        return value.detach().reshape(()).to(torch.float64)
    if isinstance(value, (int, float)):
        return torch.tensor(float(value), dtype=torch.float64)
    raise TypeError(f"{name} returned {type(value).__name__}; return a float")


def flags(*values: Any) -> torch.Tensor:
    return torch.tensor([1.0 if v else 0.0 for v in values], dtype=torch.float64)


def grid_boxes(rng: torch.Generator, n: int, extent: int, zero_share: float = 0.0) -> torch.Tensor:
    """(n, 4) float64 boxes with corners on a grid of halves inside [0, extent]; about
    ``zero_share`` of them have zero width or zero height."""
    halves = 2 * extent
    x1 = randint(rng, halves, n)
    y1 = randint(rng, halves, n)
    w = 1 + randint(rng, max(1, halves // 2), n)
    h = 1 + randint(rng, max(1, halves // 2), n)
    flat = torch.rand(n, generator=rng) < zero_share
    w = torch.where(flat & (torch.rand(n, generator=rng) < 0.5), torch.zeros_like(w), w)
    h = torch.where(flat & (w > 0), torch.zeros_like(h), h)
    boxes = torch.stack([x1, y1, x1 + w, y1 + h], dim=1).to(torch.float64) / 2
    return boxes


# Hand-built pairs: touching at an edge, contained, identical, zero-area, diagonal-disjoint.
SPECIAL_A = torch.tensor(
    [
        [0.0, 0.0, 2.0, 2.0],
        [0.0, 0.0, 4.0, 4.0],
        [1.0, 1.0, 3.0, 2.0],
        [2.0, 2.0, 2.0, 5.0],
        [0.0, 0.0, 1.0, 1.0],
        [3.0, 3.0, 3.0, 3.0],
    ],
    dtype=torch.float64,
)
SPECIAL_B = torch.tensor(
    [
        [2.0, 0.0, 4.0, 2.0],
        [1.0, 1.0, 2.0, 3.0],
        [1.0, 1.0, 3.0, 2.0],
        [2.0, 2.0, 2.0, 5.0],
        [2.0, 2.0, 3.0, 4.0],
        [0.0, 0.0, 1.5, 0.5],
        [0.0, 0.0, 2.0, 1.0],
    ],
    dtype=torch.float64,
)


def trusted_box_area(boxes: torch.Tensor) -> torch.Tensor:
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def trusted_box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The grader's IoU (a zero union gives 0)."""
    inter_w = (
        torch.minimum(a[:, None, 2], b[None, :, 2]) - torch.maximum(a[:, None, 0], b[None, :, 0])
    ).clamp(min=0)
    inter_h = (
        torch.minimum(a[:, None, 3], b[None, :, 3]) - torch.maximum(a[:, None, 1], b[None, :, 1])
    ).clamp(min=0)
    inter = inter_w * inter_h
    union = trusted_box_area(a)[:, None] + trusted_box_area(b)[None, :] - inter
    return torch.where(union > 0, inter / union.clamp(min=1e-300), torch.zeros_like(inter))


# ------------------------------------------------------------------------ q1: area and IoU
def exercise_area(api: Any, case: dict[str, Any], rng: torch.Generator, out: Any) -> None:
    boxes = grid_boxes(rng, case["N"], case["extent"], case.get("zero", 0.0))
    if case.get("special"):
        boxes = torch.cat([SPECIAL_A, SPECIAL_B, boxes])
    if case.get("float32"):
        boxes = boxes.float()
    boxes = noncontiguous(boxes) if case.get("noncontiguous") else boxes
    out.watch(boxes=boxes)
    with out.part("area"):
        api.box_area(boxes.flip(0))
        out["area"] = api.box_area(boxes)


AREA_CASES = (
    {"N": 0, "extent": 4},
    {"N": 1, "extent": 3},
    {"N": 12, "extent": 8, "zero": 0.3, "special": True},
    {"N": 30, "extent": 20, "zero": 0.2, "noncontiguous": True},
    {"N": 9, "extent": 6, "float32": True},
)


def exercise_iou(api: Any, case: dict[str, Any], rng: torch.Generator, out: Any) -> None:
    if case.get("special"):
        a, b = SPECIAL_A.clone(), SPECIAL_B.clone()
    else:
        a = grid_boxes(rng, case["N"], case["extent"], case.get("zero", 0.0))
        b = grid_boxes(rng, case["M"], case["extent"], case.get("zero", 0.0))
    if case.get("float32"):
        a, b = a.float(), b.float()
    out.watch(a=a, b=b)
    with substituted(api, box_area=trusted_box_area), out.part("iou"):
        api.box_iou(b, a)
        out["iou"] = api.box_iou(a, b)


IOU_CASES = (
    {"special": True},
    {"N": 1, "M": 1, "extent": 3},
    {"N": 7, "M": 5, "extent": 6, "zero": 0.3},
    {"N": 20, "M": 25, "extent": 10, "zero": 0.1},
    {"N": 0, "M": 4, "extent": 4},
    {"N": 6, "M": 8, "extent": 5, "float32": True},
)


# ------------------------------------------------------------------------------ q2: NMS
def nms_inputs(rng: torch.Generator, case: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    kind = case["kind"]
    if kind == "empty":
        return torch.zeros(0, 4, dtype=torch.float64), torch.zeros(0, dtype=torch.float64)
    if kind == "identical":
        boxes = grid_boxes(rng, 1, 6).repeat(case["N"], 1)
        return boxes, uniform(rng, case["N"], low=0.0, high=1.0)
    if kind == "threshold":
        # IoU exactly 1/2 between consecutive boxes; a >= suppresses, > keeps all of them
        boxes = torch.tensor(
            [
                [0.0, 0.0, 2.0, 1.0],
                [0.0, 0.0, 1.0, 1.0],
                [5.0, 5.0, 7.0, 6.0],
                [5.0, 5.0, 6.0, 6.0],
            ],
            dtype=torch.float64,
        )
        return boxes, torch.tensor([0.9, 0.8, 0.3, 0.6], dtype=torch.float64)
    if kind == "chain":
        # boxes in a row, each overlapping its neighbours by 1/3 and touching the next but
        # one, scores falling along the row: every other box is kept (a suppressed box
        # suppresses nothing)
        starts = torch.arange(case["N"], dtype=torch.float64)
        boxes = torch.stack(
            [starts, torch.zeros_like(starts), starts + 2.0, torch.ones_like(starts)], dim=1
        )
        scores = torch.linspace(0.9, 0.1, case["N"], dtype=torch.float64)
        order = torch.randperm(case["N"], generator=rng)
        return boxes[order], scores[order]
    # clusters of jittered boxes around a few centres
    centres = grid_boxes(rng, case["clusters"], case["extent"])
    pick = randint(rng, case["clusters"], case["N"])
    jitter = randint(rng, 3, case["N"], 4).to(torch.float64) / 2 - 0.5
    boxes = centres[pick] + jitter
    boxes[:, 2:] = torch.maximum(boxes[:, 2:], boxes[:, :2] + 0.5)
    if kind == "ties":
        levels = torch.tensor([0.2, 0.5, 0.9], dtype=torch.float64)
        scores = levels[randint(rng, 3, case["N"])]
    else:
        scores = uniform(rng, case["N"], low=0.0, high=1.0)
    return boxes, scores


def exercise_nms(api: Any, case: dict[str, Any], rng: torch.Generator, out: Any) -> None:
    boxes, scores = nms_inputs(rng, case)
    out.watch(boxes=boxes, scores=scores)
    with substituted(api, box_iou=trusted_box_iou), out.part("keep"):
        api.nms(boxes.flip(0), scores.flip(0), case["threshold"])
        out["keep"] = api.nms(boxes, scores, case["threshold"])


NMS_CASES = (
    {"kind": "empty", "threshold": 0.5},
    {"kind": "identical", "N": 5, "threshold": 0.5},
    {"kind": "threshold", "threshold": 0.5},
    {"kind": "chain", "N": 7, "threshold": 0.3},
    {"kind": "clusters", "N": 12, "clusters": 3, "extent": 10, "threshold": 0.5},
    {"kind": "ties", "N": 15, "clusters": 4, "extent": 12, "threshold": 0.25},
    {"kind": "ties", "N": 20, "clusters": 3, "extent": 8, "threshold": 0.625},
    {"kind": "clusters", "N": 40, "clusters": 6, "extent": 16, "threshold": 0.75},
)


# ------------------------------------------------------------- q3: anchors and offsets
def exercise_anchors(api: Any, case: dict[str, Any], rng: torch.Generator, out: Any) -> None:
    args = (case["H"], case["W"], case["stride"], case["sizes"], case["ratios"])
    with out.part("anchors"):
        api.anchor_boxes(1, 2, 4, [3.0], [1.0])
        out["anchors"] = api.anchor_boxes(*args)


ANCHOR_CASES = (
    {"H": 1, "W": 1, "stride": 8, "sizes": [8.0], "ratios": [1.0]},
    {"H": 2, "W": 3, "stride": 4, "sizes": [4.0, 8.0], "ratios": [0.5, 1.0, 2.0]},
    {"H": 3, "W": 2, "stride": 16, "sizes": [32.0], "ratios": [0.25, 4.0]},
    {"H": 4, "W": 4, "stride": 2.5, "sizes": [3.0, 5.0, 7.0], "ratios": [1.0, 3.0]},
)


def positive_boxes(rng: torch.Generator, n: int) -> torch.Tensor:
    xy = uniform(rng, n, 2, low=-5.0, high=20.0)
    wh = torch.exp(uniform(rng, n, 2, low=-1.0, high=2.5))
    return torch.cat([xy, xy + wh], dim=1)


def exercise_offsets(api: Any, case: dict[str, Any], rng: torch.Generator, out: Any) -> None:
    n = case["N"]
    boxes, anchors = positive_boxes(rng, n), positive_boxes(rng, n)
    offsets = uniform(rng, n, 4, low=-1.5, high=1.5)
    if case.get("noncontiguous"):
        boxes, anchors, offsets = (noncontiguous(t) for t in (boxes, anchors, offsets))
    out.watch(boxes=boxes, anchors=anchors, offsets=offsets)
    with out.part("offsets"):
        api.encode_boxes(anchors, boxes)
        out["offsets"] = api.encode_boxes(boxes, anchors)
    with out.part("decoded"):
        api.decode_boxes(-offsets, anchors)
        out["decoded"] = api.decode_boxes(offsets, anchors)
    with out.part("round_trip"):
        out["round_trip"] = api.decode_boxes(api.encode_boxes(boxes, anchors), anchors)


OFFSET_CASES = ({"N": 1}, {"N": 7}, {"N": 40, "noncontiguous": True})


# ---------------------------------------------------------------- q4: dilated convolutions
def exercise_arithmetic(api: Any, case: dict[str, Any], rng: torch.Generator, out: Any) -> None:
    with out.part("output_size"):
        sizes = [api.dilated_conv_output_size(*row) for row in case["sizes"]]
        sizes = [api.dilated_conv_output_size(*row) for row in case["sizes"]]
        out["output_size"] = as_ints(sizes, "dilated_conv_output_size")
    with out.part("receptive_field"):
        fields = [api.receptive_field(list(stack)) for stack in case["stacks"]]
        fields = [api.receptive_field(list(stack)) for stack in case["stacks"]]
        out["receptive_field"] = as_ints(fields, "receptive_field")


# sizes: (in, kernel, stride, padding, dilation); stacks: [(kernel, stride, dilation), ...]
ARITHMETIC_CASES = (
    {
        "sizes": [(8, 3, 1, 1, 1), (7, 3, 2, 1, 1), (9, 3, 1, 2, 2), (13, 5, 2, 0, 3)],
        "stacks": [[(3, 1, 1)], [(3, 1, 1), (3, 1, 2), (3, 1, 4)], [(3, 2, 1), (3, 1, 2)]],
    },
    {
        "sizes": [(32, 4, 2, 1, 1), (11, 2, 3, 0, 4), (5, 3, 1, 0, 2), (64, 7, 2, 3, 1)],
        "stacks": [[(5, 1, 3)], [(2, 2, 1), (3, 2, 2), (3, 1, 3)], [(1, 1, 1), (7, 3, 2)]],
    },
)


def conv_values(
    rng: torch.Generator, prefix: str, c_in: int, c_out: int, k: int
) -> dict[str, torch.Tensor]:
    scale = 1 / math.sqrt(c_in * k * k)
    return {
        f"{prefix}weight": scale * randn(rng, c_out, c_in, k, k),
        f"{prefix}bias": 0.3 * randn(rng, c_out),
    }


def exercise_block(api: Any, case: dict[str, Any], rng: torch.Generator, out: Any) -> None:
    c_in, c_out, d = case["in"], case["out"], case["dilation"]
    x = randn(rng, case["N"], c_in, case["H"], case["W"])
    out.watch(x=x)
    with out.part("y"):
        block = api.DilatedConvBlock(c_in, c_out, d).double()
        assign_parameters(block, conv_values(rng, "conv.", c_in, c_out, 3))
        block(randn(rng, 1, c_in, case["H"], case["W"]))
        out["y"] = block(x)


BLOCK_CASES = (
    {"N": 1, "in": 1, "out": 2, "dilation": 1, "H": 5, "W": 5},
    {"N": 2, "in": 3, "out": 4, "dilation": 2, "H": 7, "W": 6},
    {"N": 3, "in": 2, "out": 3, "dilation": 3, "H": 9, "W": 8},
)


# ------------------------------------------------------------- q5: FCN and its metrics
class TrustedBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, dilation: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=dilation, dilation=dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(x))


class TrustedUpsample(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.transposed = nn.ConvTranspose2d(
            channels, channels, 4, stride=2, padding=1, groups=channels, bias=False
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.transposed(x)


def exercise_fcn(api: Any, case: dict[str, Any], rng: torch.Generator, out: Any) -> None:
    k, width = case["classes"], case["width"]
    x = uniform(rng, case["N"], 1, case["H"], case["W"], low=0.0, high=1.0)
    out.watch(x=x)
    values = {
        **conv_values(rng, "block1.conv.", 1, width, 3),
        **conv_values(rng, "down.", width, width, 3),
        **conv_values(rng, "block2.conv.", width, width, 3),
        **conv_values(rng, "classifier.", width, k, 1),
        "up.transposed.weight": uniform(rng, k, 1, 4, 4, low=0.0, high=0.5),
    }
    with substituted(api, DilatedConvBlock=TrustedBlock, Upsample2x=TrustedUpsample):
        with out.part("logits"):
            model = api.FCN(k, width).double()
            assign_parameters(model, values)
            model(x[:1])
            out["logits"] = model(x)


FCN_CASES = (
    {"N": 1, "classes": 2, "width": 3, "H": 4, "W": 4},
    {"N": 2, "classes": 3, "width": 4, "H": 8, "W": 6},
    {"N": 2, "classes": 5, "width": 2, "H": 6, "W": 10},
)


def exercise_metrics(api: Any, case: dict[str, Any], rng: torch.Generator, out: Any) -> None:
    k, present = case["classes"], case["present"]
    shape = (case["N"], case["H"], case["W"])
    palette = torch.tensor(present)
    target = palette[randint(rng, len(present), *shape)]
    pred = palette[randint(rng, len(present), *shape)]
    agree = torch.rand(shape, generator=rng) < 0.6
    pred = torch.where(agree, target, pred)
    if "only_pred" in case:
        pred[0, 0, : case["W"] // 2] = case["only_pred"]
    out.watch(pred=pred, target=target)
    with out.part("pixel_accuracy"):
        api.pixel_accuracy(target, pred)
        out["pixel_accuracy"] = as_number(api.pixel_accuracy(pred, target), "pixel_accuracy")
    with out.part("mean_iou"):
        api.mean_iou(target, pred, k)
        out["mean_iou"] = as_number(api.mean_iou(pred, target, k), "mean_iou")


METRIC_CASES = (
    {"N": 1, "H": 2, "W": 3, "classes": 2, "present": [0, 1]},
    {"N": 2, "H": 5, "W": 4, "classes": 6, "present": [0, 2, 5]},
    {"N": 3, "H": 4, "W": 6, "classes": 4, "present": [1, 3], "only_pred": 0},
    {"N": 1, "H": 8, "W": 8, "classes": 10, "present": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]},
    # absent classes with N = 1, and N > 1 with every class present: the image count does not
    # separate the cases a skipped (or counted) absent class fails
    {"N": 1, "H": 3, "W": 4, "classes": 5, "present": [1, 4]},
    {"N": 2, "H": 3, "W": 3, "classes": 3, "present": [0, 1, 2]},
)


# ------------------------------------------------------- q6: transfer and distillation
class Probe(nn.Module):
    """The grader's model: body (conv, batch norm) and head (linear), float64."""

    def __init__(self, rng: torch.Generator, features: int, classes: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten()).double()
        self.head = nn.Linear(features, classes).double()
        with torch.no_grad():
            for param in self.parameters():
                param.copy_(randn(rng, *param.shape))


def exercise_transfer(api: Any, case: dict[str, Any], rng: torch.Generator, out: Any) -> None:
    model = Probe(rng, case["features"], case["classes"])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with out.part("freeze"):
        api.freeze(model.head)
        returned = api.freeze(model)
        frozen = all(not p.requires_grad for p in model.parameters())
        same = all(torch.equal(model.state_dict()[k], v) for k, v in before.items())
        out["freeze"] = flags(frozen, same, returned is model)
    with out.part("replace_head"):
        body = {id(p) for p in model.body.parameters()}
        old_head = model.head
        for param in model.parameters():
            param.requires_grad_(False)
        returned = api.replace_head(model, case["new_classes"])
        head = model.head
        is_linear = isinstance(head, nn.Linear) and head is not old_head
        shaped = is_linear and tuple(head.weight.shape) == (case["new_classes"], case["features"])
        shaped = (
            shaped and head.bias is not None and tuple(head.bias.shape) == (case["new_classes"],)
        )
        trainable = is_linear and all(p.requires_grad for p in head.parameters())
        dtype = is_linear and all(p.dtype == torch.float64 for p in head.parameters())
        kept = {id(p) for p in model.body.parameters()} == body and all(
            not p.requires_grad for p in model.body.parameters()
        )
        kept = kept and all(
            torch.equal(model.state_dict()[k], v) for k, v in before.items() if k.startswith("body")
        )
        owned = is_linear and {id(p) for p in head.parameters()} <= {
            id(p) for p in model.parameters()
        }
        out["replace_head"] = flags(shaped, trainable, dtype, kept, owned, returned is model)


TRANSFER_CASES = (
    {"features": 18, "classes": 5, "new_classes": 3},
    {"features": 18, "classes": 2, "new_classes": 7},
)


def distill_inputs(
    rng: torch.Generator, case: dict[str, Any]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    n, k, scale = case["N"], case["K"], case.get("scale", 3.0)
    dtype = torch.float32 if case.get("float32") else torch.float64
    if case.get("saturated"):
        student = (100.0 * torch.sign(randn(rng, n, k))).to(dtype)
        teacher = (100.0 * torch.sign(randn(rng, n, k))).to(dtype)
    else:
        student = (scale * randn(rng, n, k)).to(dtype)
        teacher = (scale * randn(rng, n, k)).to(dtype)
    labels = randint(rng, k, n)
    return student, teacher, labels


def exercise_distillation(api: Any, case: dict[str, Any], rng: torch.Generator, out: Any) -> None:
    student, teacher, labels = distill_inputs(rng, case)
    if case.get("noncontiguous"):
        student, teacher = noncontiguous(student), noncontiguous(teacher)
    student.requires_grad_(True)
    out.watch(student_logits=student, teacher_logits=teacher, labels=labels)
    kwargs = {"temperature": case["T"], "alpha": case["alpha"]}
    try:
        with out.part("loss", "grad_student"):
            api.distillation_loss(student.detach() * 0.5, teacher, labels, **kwargs)
            loss = api.distillation_loss(student, teacher, labels, **kwargs)
            out["loss"] = loss
            loss.backward()
    finally:
        record_grads(out, {"grad_student": student})


DISTILL_CASES = (
    {"N": 1, "K": 2, "T": 1.0, "alpha": 0.5},
    {"N": 4, "K": 5, "T": 4.0, "alpha": 0.5},
    {"N": 6, "K": 3, "T": 4.0, "alpha": 1.0},
    {"N": 5, "K": 4, "T": 1.0, "alpha": 0.0},
    {"N": 8, "K": 10, "T": 1.0, "alpha": 1.0},
    {"N": 7, "K": 6, "T": 3.0, "alpha": 0.3, "noncontiguous": True},
    {"N": 3, "K": 4, "T": 8.0, "alpha": 0.9, "scale": 20.0},
)

DISTILL_FLOAT32_CASES = (
    {"N": 4, "K": 5, "T": 1.0, "alpha": 0.5, "float32": True, "saturated": True},
    {"N": 6, "K": 3, "T": 4.0, "alpha": 1.0, "float32": True, "saturated": True},
    {"N": 5, "K": 7, "T": 4.0, "alpha": 0.5, "float32": True, "saturated": True},
)


# -------------------------------------------------------------- q7: style transfer losses
def exercise_gram(api: Any, case: dict[str, Any], rng: torch.Generator, out: Any) -> None:
    features = randn(rng, case["N"], case["C"], case["H"], case["W"]).requires_grad_(True)
    out.watch(features=features)
    weights = randn(rng, case["N"], case["C"], case["C"])
    try:
        with out.part("gram", "grad"):
            api.gram_matrix(features.detach() + 1)
            gram = api.gram_matrix(features)
            out["gram"] = gram
            (gram * weights).sum().backward()
    finally:
        record_grads(out, {"grad": features})


GRAM_CASES = (
    {"N": 1, "C": 1, "H": 1, "W": 1},
    {"N": 2, "C": 3, "H": 4, "W": 5},
    {"N": 1, "C": 8, "H": 6, "W": 6},
    {"N": 3, "C": 4, "H": 2, "W": 7},
)


def trusted_gram(features: torch.Tensor) -> torch.Tensor:
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w)
    return torch.einsum("nik,njk->nij", flat, flat) / (c * h * w)


def exercise_style(api: Any, case: dict[str, Any], rng: torch.Generator, out: Any) -> None:
    shape = (case["N"], case["C"], case["H"], case["W"])
    generated = randn(rng, *shape).requires_grad_(True)
    style, content = randn(rng, *shape), randn(rng, *shape)
    out.watch(generated=generated, style=style, content=content)
    with substituted(api, gram_matrix=trusted_gram):
        try:
            with out.part("style", "grad_style"):
                api.style_loss(style, generated.detach())
                loss = api.style_loss(generated, style)
                out["style"] = loss
                loss.backward()
        finally:
            record_grads(out, {"grad_style": generated})
    generated.grad = None
    try:
        with out.part("content", "grad_content"):
            api.content_loss(content, generated.detach())
            loss = api.content_loss(generated, content)
            out["content"] = loss
            loss.backward()
    finally:
        record_grads(out, {"grad_content": generated})


STYLE_CASES = (
    {"N": 1, "C": 2, "H": 3, "W": 3},
    {"N": 2, "C": 4, "H": 5, "W": 2},
    {"N": 1, "C": 6, "H": 4, "W": 4},
)


# ------------------------------------------------------------------- q8: patches and a ViT
def exercise_patches(api: Any, case: dict[str, Any], rng: torch.Generator, out: Any) -> None:
    size, p, c, dim = case["size"], case["patch"], case["C"], case["dim"]
    x = randn(rng, case["N"], c, size, size)
    out.watch(x=x)
    values = conv_values(rng, "proj.", c, dim, p)
    embed = None
    with out.part("tokens", "tokens_unfold"):
        embed = api.PatchEmbedding(size, p, c, dim).double()
        assign_parameters(embed, values)
    if embed is None:
        return
    with out.part("tokens"):
        embed(x.flip(0))
        out["tokens"] = embed(x)
    with out.part("tokens_unfold"):
        embed.forward_unfold(x.flip(0))
        out["tokens_unfold"] = embed.forward_unfold(x)


PATCH_CASES = (
    {"N": 1, "C": 1, "size": 4, "patch": 2, "dim": 3},
    {"N": 2, "C": 3, "size": 6, "patch": 3, "dim": 5},
    {"N": 2, "C": 2, "size": 8, "patch": 2, "dim": 4},
    {"N": 1, "C": 1, "size": 6, "patch": 1, "dim": 2},
)


class ProbePatchEmbedding(nn.Module):
    """The grader's patch embedding for the ViT check: F.unfold and a linear map held as
    ``weight`` (dim, C p p) and ``bias`` (dim,); row-major tokens like the documented one."""

    def __init__(self, image_size: int, patch_size: int, in_channels: int, dim: int):
        super().__init__()
        self.patch_size = patch_size
        self.weight = nn.Parameter(torch.zeros(dim, in_channels * patch_size * patch_size))
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        columns = F.unfold(x, self.patch_size, stride=self.patch_size)
        return columns.transpose(1, 2) @ self.weight.T + self.bias


class ProbeEncoderBlock(nn.Module):
    """The grader's encoder block for the ViT check: one hand-written attention that mixes
    the tokens, then a tanh MLP, each with a residual connection (``heads`` is ignored)."""

    def __init__(self, dim: int, heads: int, mlp_dim: int):
        super().__init__()
        self.qkv = nn.Parameter(torch.zeros(dim, 3 * dim))
        self.expand = nn.Parameter(torch.zeros(dim, mlp_dim))
        self.reduce = nn.Parameter(torch.zeros(mlp_dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = (x @ self.qkv).chunk(3, dim=-1)
        weights = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(x.shape[-1]), dim=-1)
        x = x + weights @ v
        return x + torch.tanh(x @ self.expand) @ self.reduce


def exercise_vit(api: Any, case: dict[str, Any], rng: torch.Generator, out: Any) -> None:
    size, p, c, dim, depth = case["size"], case["patch"], case["C"], case["dim"], case["depth"]
    heads, mlp, k = case["heads"], case["mlp"], case["classes"]
    x = randn(rng, case["N"], c, size, size)
    out.watch(x=x)
    tokens = (size // p) ** 2 + 1
    values = {
        "patch_embed.weight": randn(rng, dim, c * p * p) / p,
        "patch_embed.bias": 0.3 * randn(rng, dim),
        "cls_token": randn(rng, 1, 1, dim),
        "pos_embedding": randn(rng, 1, tokens, dim),
        "norm.weight": 1 + 0.2 * randn(rng, dim),
        "norm.bias": 0.2 * randn(rng, dim),
        "head.weight": randn(rng, k, dim) / math.sqrt(dim),
        "head.bias": 0.2 * randn(rng, k),
    }
    template = ProbeEncoderBlock(dim, heads, mlp)
    for i in range(depth):
        for name, param in template.named_parameters():
            values[f"blocks.{i}.{name}"] = randn(rng, *param.shape) / math.sqrt(param.shape[0])
    replacements = {"PatchEmbedding": ProbePatchEmbedding, "EncoderBlock": ProbeEncoderBlock}
    with substituted(api, **replacements), out.part("logits"):
        model = api.ViT(size, p, c, dim, depth, heads, mlp, k).double()
        assign_parameters(model, values)
        model.eval()
        model(x.flip(0))
        out["logits"] = model(x)


VIT_CASES = (
    {
        "N": 1,
        "C": 1,
        "size": 4,
        "patch": 2,
        "dim": 4,
        "depth": 1,
        "heads": 1,
        "mlp": 6,
        "classes": 3,
    },
    {
        "N": 3,
        "C": 1,
        "size": 8,
        "patch": 2,
        "dim": 8,
        "depth": 2,
        "heads": 2,
        "mlp": 16,
        "classes": 10,
    },
    {
        "N": 2,
        "C": 2,
        "size": 6,
        "patch": 3,
        "dim": 6,
        "depth": 1,
        "heads": 3,
        "mlp": 5,
        "classes": 4,
    },
)


CHECKS = [
    Check(
        name="box_area",
        question="q1",
        uses=("box_area",),
        exercise=exercise_area,
        cases=AREA_CASES,
        # the empty input (N = 0) hides every area bug, so N > 0 would separate their
        # failing cases without being a cause
        pattern_axes=("zero", "special", "noncontiguous", "float32"),
        outputs=(
            Output(
                "area",
                rtol=1e-6,
                atol=1e-9,
                hint="(x2 - x1) * (y2 - y1) for each row, shape (N,) in the boxes' dtype; "
                "coordinates are continuous (no + 1 as for pixel indices), and an empty "
                "(0, 4) input gives an empty (0,) result.",
            ),
        ),
    ),
    Check(
        name="box_iou",
        question="q1",
        uses=("box_iou",),
        replaces=("box_area",),
        exercise=exercise_iou,
        cases=IOU_CASES,
        outputs=(
            Output(
                "iou",
                rtol=1e-6,
                atol=1e-9,
                hint="(N, M) matrix: the intersection's width and height are each "
                "min(right edges) - max(left edges) clamped at 0 BEFORE multiplying (two "
                "negative sides give a positive product); union = area_a + area_b - "
                "intersection; a zero union gives 0, not NaN.",
            ),
        ),
    ),
    Check(
        name="nms",
        question="q2",
        uses=("nms",),
        replaces=("box_iou",),
        exercise=exercise_nms,
        cases=NMS_CASES,
        outputs=(
            Output(
                "keep",
                points=2,
                rtol=0.0,
                atol=0.0,
                hint="int64 indices of the kept boxes, highest score first (a stable "
                "descending sort: equal scores keep the lower index first); a kept box "
                "suppresses the later ones whose IoU with it is strictly GREATER than "
                "the threshold; an empty input gives an empty int64 tensor.",
            ),
        ),
    ),
    Check(
        name="anchor_boxes",
        question="q3",
        uses=("anchor_boxes",),
        exercise=exercise_anchors,
        cases=ANCHOR_CASES,
        outputs=(
            Output(
                "anchors",
                rtol=1e-9,
                atol=1e-9,
                hint="float64 (H*W*S*R, 4): centre ((j + 0.5) stride, (i + 0.5) stride), "
                "width size * sqrt(ratio), height size / sqrt(ratio); order cells "
                "row-major (i, then j), then sizes, then ratios (ratios vary fastest).",
            ),
        ),
    ),
    Check(
        name="encode_decode",
        question="q3",
        uses=("encode_boxes", "decode_boxes"),
        exercise=exercise_offsets,
        cases=OFFSET_CASES,
        outputs=(
            Output(
                "offsets",
                rtol=1e-7,
                atol=1e-9,
                hint="encode_boxes: centre offsets divided by the ANCHOR's width (x) and "
                "height (y), then log(w / wa) and log(h / ha); centres are (x1 + x2) / 2.",
            ),
            Output(
                "decoded",
                rtol=1e-7,
                atol=1e-9,
                hint="decode_boxes inverts encode_boxes: cx = cxa + tx wa, cy = cya + ty ha, "
                "w = wa exp(tw), h = ha exp(th) (height from th and the anchor's HEIGHT), "
                "then corners cx -+ w / 2, cy -+ h / 2.",
            ),
            Output(
                "round_trip",
                points=0.5,
                rtol=1e-7,
                atol=1e-9,
                needs=("offsets", "decoded"),
                hint="decode_boxes(encode_boxes(boxes, anchors), anchors) must give the boxes "
                "back: the two functions are inverses, centre offsets scaled by the anchor's "
                "size and log-size ratios.",
            ),
        ),
    ),
    Check(
        name="conv_arithmetic",
        question="q4",
        uses=("dilated_conv_output_size", "receptive_field"),
        exercise=exercise_arithmetic,
        cases=ARITHMETIC_CASES,
        outputs=(
            Output(
                "output_size",
                rtol=0.0,
                atol=0.0,
                hint="floor((in + 2 padding - dilation (kernel - 1) - 1) / stride) + 1: a "
                "dilated kernel spans dilation * (kernel - 1) + 1 pixels; use // and "
                "return an int.",
            ),
            Output(
                "receptive_field",
                rtol=0.0,
                atol=0.0,
                hint="Start at 1 with a jump of 1; each layer adds dilation * (kernel - 1) "
                "* jump, then jump *= stride (the stride counts from the next layer on).",
            ),
        ),
    ),
    Check(
        name="DilatedConvBlock",
        question="q4",
        uses=("DilatedConvBlock",),
        exercise=exercise_block,
        cases=BLOCK_CASES,
        outputs=(
            Output(
                "y",
                rtol=1e-7,
                atol=1e-9,
                hint="relu(conv(x)) with self.conv = nn.Conv2d(in, out, 3, padding=dilation, "
                "dilation=dilation): the padding must grow with the dilation so that H "
                "and W are kept.",
            ),
        ),
    ),
    Check(
        name="FCN",
        question="q5",
        uses=("FCN",),
        replaces=("DilatedConvBlock", "Upsample2x"),
        exercise=exercise_fcn,
        cases=FCN_CASES,
        outputs=(
            Output(
                "logits",
                points=2,
                rtol=1e-7,
                atol=1e-9,
                hint="up(classifier(block2(relu(down(block1(x)))))) with block1 of dilation "
                "1, down = Conv2d(width, width, 3, stride=2, padding=1), block2 of dilation "
                "2, classifier a 1x1 Conv2d(width, num_classes), up = Upsample2x("
                "num_classes): the classifier runs at half resolution, before upsampling.",
            ),
        ),
    ),
    Check(
        name="segmentation_metrics",
        question="q5",
        uses=("pixel_accuracy", "mean_iou"),
        exercise=exercise_metrics,
        cases=METRIC_CASES,
        outputs=(
            Output(
                "pixel_accuracy",
                atol=1e-12,
                hint="The share of ALL pixels (every image, every position) where pred == "
                "target, as a float.",
            ),
            Output(
                "mean_iou",
                atol=1e-12,
                hint="For each class c: |pred == c and target == c| / |pred == c or "
                "target == c|; skip a class that appears in neither (do not count it as 0 "
                "or 1), and average the others.",
            ),
        ),
    ),
    Check(
        name="transfer",
        question="q6",
        uses=("freeze", "replace_head"),
        exercise=exercise_transfer,
        cases=TRANSFER_CASES,
        outputs=(
            Output(
                "freeze",
                rtol=0.0,
                atol=0.0,
                hint="Flags [every parameter, submodules included, has requires_grad False; "
                "values unchanged; the module itself is returned]: loop over "
                "module.parameters() and call requires_grad_(False).",
            ),
            Output(
                "replace_head",
                rtol=0.0,
                atol=0.0,
                hint="Flags [new head of shape (num_classes, in_features) with a bias; it is "
                "trainable; same dtype as the old head; the body is untouched and stays "
                "frozen; the head is a submodule (model.head = ...); the model is "
                "returned]: model.head = nn.Linear(old.in_features, num_classes).to("
                "old.weight.dtype).",
            ),
        ),
    ),
    Check(
        name="distillation_loss",
        question="q6",
        uses=("distillation_loss",),
        exercise=exercise_distillation,
        cases=DISTILL_CASES,
        pattern_axes=("T", "alpha", "scale", "noncontiguous"),
        outputs=(
            Output(
                "loss",
                points=1.5,
                rtol=1e-7,
                atol=1e-9,
                hint="alpha * T**2 * KL(p_t || p_s) + (1 - alpha) * CE(student_logits, "
                "labels): p_t = softmax(teacher / T) and p_s = softmax(student / T) (BOTH "
                "divided by T), KL = sum_k p_t (log p_t - log p_s) summed over classes and "
                "averaged over the batch, the cross-entropy at temperature 1, batch mean.",
            ),
            Output(
                "grad_student",
                rtol=1e-7,
                atol=1e-9,
                needs=("loss",),
                hint="Autograd computes this from your loss: look for .detach(), .item() or "
                "torch.no_grad() on the way from student_logits to the result.",
            ),
        ),
    ),
    Check(
        name="distillation_loss in float32",
        question="q6",
        uses=("distillation_loss",),
        exercise=exercise_distillation,
        cases=DISTILL_FLOAT32_CASES,
        pattern_axes=("T", "alpha"),
        outputs=(
            Output(
                "loss",
                rtol=1e-5,
                atol=1e-4,
                hint="Logits of +-100 in float32: softmax underflows to exactly 0 and "
                "log(0) = -inf makes the loss NaN. Compute log-probabilities as z - max - "
                "log(sum(exp(z - max))) and p_t = exp(log p_t). If the float64 items fail "
                "too, fix those first.",
            ),
            Output(
                "grad_student",
                rtol=1e-5,
                atol=1e-6,
                needs=("loss",),
                hint="A stable loss has a finite gradient: no log(softmax(...)) on the way.",
            ),
        ),
    ),
    Check(
        name="gram_matrix",
        question="q7",
        uses=("gram_matrix",),
        exercise=exercise_gram,
        cases=GRAM_CASES,
        outputs=(
            Output(
                "gram",
                rtol=1e-7,
                atol=1e-10,
                hint="(N, C, C): F @ F^T with F = features.reshape(N, C, H * W), divided "
                "by C * H * W (the number of entries of one image's features).",
            ),
            Output(
                "grad",
                rtol=1e-7,
                atol=1e-10,
                needs=("gram",),
                hint="Autograd computes this from your Gram matrix: keep features in the "
                "graph (no .detach() or .data).",
            ),
        ),
    ),
    Check(
        name="style_content",
        question="q7",
        uses=("style_loss", "content_loss"),
        replaces=("gram_matrix",),
        exercise=exercise_style,
        cases=STYLE_CASES,
        outputs=(
            Output(
                "style",
                rtol=1e-7,
                atol=1e-12,
                hint="The MEAN over all (N, C, C) entries of (gram_matrix(generated) - "
                "gram_matrix(style))**2, using gram_matrix (graded with the grader's).",
            ),
            Output(
                "grad_style",
                rtol=1e-7,
                atol=1e-12,
                needs=("style",),
                hint="Gradient of the style loss with respect to generated: do not detach "
                "the generated features (the style target may be detached).",
            ),
            Output(
                "content",
                rtol=1e-7,
                atol=1e-12,
                hint="The MEAN over all entries of (generated - content)**2.",
            ),
            Output(
                "grad_content",
                rtol=1e-7,
                atol=1e-12,
                needs=("content",),
                hint="Gradient of the content loss with respect to generated: do not detach "
                "the generated features.",
            ),
        ),
    ),
    Check(
        name="PatchEmbedding",
        question="q8",
        uses=("PatchEmbedding",),
        exercise=exercise_patches,
        cases=PATCH_CASES,
        outputs=(
            Output(
                "tokens",
                rtol=1e-7,
                atol=1e-9,
                hint="forward: self.proj = nn.Conv2d(in_channels, dim, patch_size, "
                "stride=patch_size); proj(x) is (N, dim, H/p, W/p): flatten(2) then "
                "transpose(1, 2) gives (N, patches, dim) in row-major patch order.",
            ),
            Output(
                "tokens_unfold",
                rtol=1e-7,
                atol=1e-9,
                hint="forward_unfold: patches in ROW-MAJOR order (patch row, then patch "
                "column), each flattened as (C, p, p) like proj.weight.reshape(dim, -1); "
                "x.unfold(2, p, p).unfold(3, p, p) is (N, C, H/p, W/p, p, p): permute to "
                "(N, H/p, W/p, C, p, p) before reshaping; add proj.bias.",
            ),
        ),
    ),
    Check(
        name="ViT",
        question="q8",
        uses=("ViT",),
        replaces=("PatchEmbedding", "EncoderBlock"),
        exercise=exercise_vit,
        cases=VIT_CASES,
        outputs=(
            Output(
                "logits",
                points=2,
                rtol=1e-7,
                atol=1e-9,
                hint="tokens = patch_embed(x); CONCATENATE the class token in front "
                "(cls_token.expand(N, -1, -1), torch.cat along dim 1: P + 1 tokens), add "
                "pos_embedding (1, P + 1, dim), run the blocks in order, apply norm, and "
                "the head to token 0 (the class token).",
            ),
        ),
    ),
]
