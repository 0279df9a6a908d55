"""Hidden checks of chapter 06: attention, masks, multi-head attention, positional encoding, the
encoder block, the warm-up schedule, concept questions.

Never shipped to students. Students write ``nn.Module``s and autograd computes gradients, so a
module check installs seeded float64 values into the student's parameters by name
(``assign_parameters`` with dotted names such as ``"q_proj.weight"``), runs the forward pass
twice in a row (the second call is graded, so state leaking between calls is caught),
back-propagates a seeded loss ``sum(output * weights)``, and grades the forward outputs and each
group of gradients as separate items.

Isolation. The chapter's pieces naturally call each other: ``MultiHeadAttention`` calls the
student's ``scaled_dot_product_attention``, ``TransformerEncoderBlock`` builds the student's
``MultiHeadAttention``, ``PositionalEncoding`` calls ``sinusoidal_positional_encoding``. While a
check runs, :func:`trusted` replaces those names in the student's namespace by trusted versions
defined here (exactly the documented behaviour), and puts the student's own back afterwards. A
bug in attention therefore never costs the items of the multi-head layer or the block, and an
unwritten ``MultiHeadAttention`` does not stop the block from being graded. A student who binds
the names some other way (an alias, an inlined computation) is graded on that code instead;
correct code gives the same numbers either way. The multi-head layer and the block declare the
names they replace (``Check.replaces``), so the forbidden-API scan does not charge them for a
forbidden call inside the student's attention either (a call that still reaches the student's
own version at run time is caught by the run-time trap). ``PositionalEncoding`` does not: its
encoding is substituted only while the module is built, and a ``forward`` that computes the
table on each call runs the student's own function.
"""

import math
import operator
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from autograder.checks import Check, Output
from autograder.kit import (
    assign_parameters,
    noncontiguous,
    randint,
    randn,
    record_grads,
    run_independently,
    substituted,
)

_TRANSFORMER_CLASSES = (
    "Transformer",
    "TransformerEncoder",
    "TransformerDecoder",
    "TransformerEncoderLayer",
    "TransformerDecoderLayer",
    "MultiheadAttention",
)

# The attention computations are what the students write. nn.Linear, nn.LayerNorm, nn.Dropout,
# softmax and autograd stay allowed. Entries are classes and functions, not whole modules: the
# run-time trap would otherwise also record the helpers those modules import (nn.init's
# xavier_uniform_, for one), which students may use. torch's private attention kernels (torch._C,
# torch._native_multi_head_attention, torch._transformer_encoder_layer_fwd, ...) are caught as
# "torch private internals" by the scan of every chapter with a forbidden list.
FORBIDDEN = (
    *(f"torch.nn.{name}" for name in _TRANSFORMER_CLASSES),
    *(f"torch.nn.modules.{name}" for name in _TRANSFORMER_CLASSES),
    *(f"torch.nn.modules.transformer.{name}" for name in _TRANSFORMER_CLASSES),
    "torch.nn.modules.activation.MultiheadAttention",
    "torch.nn.functional.scaled_dot_product_attention",
    "torch.nn.functional.multi_head_attention_forward",
    "torch.nn.attention.flex_attention.flex_attention",
    "torch.ao.nn.quantizable",
    "torch.ops",
)

F64 = torch.float64


# ------------------------------------------------------------- trusted building blocks
def _attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Trusted scaled dot-product attention with the chapter's conventions."""
    scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    shift = scores.detach().amax(dim=-1, keepdim=True)
    shift = torch.where(torch.isfinite(shift), shift, torch.zeros_like(shift))
    exps = (scores - shift).exp()
    denominator = exps.sum(dim=-1, keepdim=True)
    weights = exps / torch.where(denominator > 0, denominator, torch.ones_like(denominator))
    return torch.matmul(weights, v), weights


class _TrustedAttention(nn.Module):
    """Trusted MultiHeadAttention (same constructor, submodules and forward as documented)."""

    def __init__(self, embed_dim: int, num_heads: int, bias: bool = True, **_: Any):
        super().__init__()
        self.embed_dim, self.num_heads = embed_dim, num_heads
        self.q_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.k_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.v_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias)

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        heads, width = self.num_heads, self.embed_dim // self.num_heads

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(t.shape[0], t.shape[1], heads, width).permute(0, 2, 1, 3)

        out, weights = _attention(
            split(self.q_proj(query)), split(self.k_proj(key)), split(self.v_proj(value)), mask
        )
        merged = out.permute(0, 2, 1, 3).reshape(query.shape[0], query.shape[1], -1)
        return self.out_proj(merged), weights


def _encoding(max_len: int, d_model: int) -> torch.Tensor:
    """Trusted sinusoidal table in the default dtype."""
    table = torch.zeros(max_len, d_model, dtype=F64)
    position = torch.arange(max_len, dtype=F64).unsqueeze(1)
    frequency = torch.exp(torch.arange(0, d_model, 2, dtype=F64) * (-math.log(10000.0) / d_model))
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency)[:, : d_model // 2]
    return table.to(torch.get_default_dtype())


GRADIENT_HINT = (
    "Autograd computes this gradient from your forward pass: if the forward "
    "items pass, look for .detach(), .data, torch.no_grad() or a tensor rebuilt "
    "with torch.tensor(...) on the way from {what} to the output."
)


def as_float64(value: Any, what: str) -> torch.Tensor:
    """A returned floating tensor (any floating dtype) as float64; anything else is an error."""
    if type(value) is not torch.Tensor or not value.is_floating_point():
        raise TypeError(
            f"{what} returned a {type(value).__name__}, expected a floating torch.Tensor"
        )
    return value.to(F64)


def as_ints(values: list[Any], function_name: str) -> torch.Tensor:
    """int64 tensor of the answers; a float answer (from /) is an error, never truncated."""
    answers = []
    for value in values:
        if isinstance(value, bool):
            raise TypeError(f"{function_name} returned a bool; return an int")
        try:
            answers.append(operator.index(value))
        except TypeError:
            raise TypeError(
                f"{function_name} returned {value!r} of type "
                f"{type(value).__name__}; return a Python int (use // for integer "
                f"division)"
            ) from None
    return torch.tensor(answers, dtype=torch.int64)


def as_floats(values: list[Any], function_name: str) -> torch.Tensor:
    """float64 tensor of numeric answers (Python numbers or 0-dim tensors)."""
    answers = []
    for value in values:
        if isinstance(value, torch.Tensor) and value.numel() != 1:
            raise TypeError(
                f"{function_name} returned a tensor of shape {tuple(value.shape)}; return a number"
            )
        answers.append(float(value))
    return torch.tensor(answers, dtype=F64)


# ------------------------------------------------------------------------- masks for checks
def draw_mask(
    rng: torch.Generator, shape: tuple[int, ...], lk: int, fully_masked_rows: bool = False
) -> torch.Tensor:
    """A random bool mask of ``shape`` (last dim lk) whose rows each keep at least one key,
    unless ``fully_masked_rows``: then the first row of every leading index keeps none."""
    keep = randint(rng, lk, *shape[:-1])
    mask = (torch.rand(*shape, generator=rng, dtype=F64) < 0.5) | (
        torch.arange(lk) == keep.unsqueeze(-1)
    )
    if fully_masked_rows:
        mask[..., 0, :] = False
    return mask


def case_mask(
    rng: torch.Generator,
    kind: str | None,
    batch: tuple[int, ...],
    lq: int,
    lk: int,
    fully_masked_rows: bool = False,
) -> torch.Tensor | None:
    """The mask of a case: None; "square" (Lq, Lk); "padding" (*batch[:-1], 1, 1, Lk) from
    lengths; "per_query" (*batch[:-1], 1, Lq, Lk); "causal" (L, L)."""
    if kind is None:
        return None
    if kind == "square":
        return draw_mask(rng, (lq, lk), lk, fully_masked_rows)
    if kind == "causal":
        mask = torch.ones(lq, lk, dtype=torch.bool).tril()
        if fully_masked_rows:
            mask[0] = False
        return mask
    lead = batch[:-1]
    if kind == "padding":
        lengths = 1 + randint(rng, lk, *lead)
        mask = (torch.arange(lk) < lengths.unsqueeze(-1)).reshape(*lead, 1, 1, lk)
        if fully_masked_rows:
            mask = mask.expand(*lead, 1, lq, lk).clone()
            mask[..., 0, :] = False
        return mask
    return draw_mask(rng, (*lead, 1, lq, lk), lk, fully_masked_rows)


# --------------------------------------------------------------- q1: scaled dot-product
def exercise_attention(api, case, rng, out):
    batch, lq, lk, d, dv = tuple(case["batch"]), case["Lq"], case["Lk"], case["d"], case["dv"]

    def draw(large: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        q, k, v = (randn(rng, *batch, lq, d), randn(rng, *batch, lk, d), randn(rng, *batch, lk, dv))
        if large:
            # The last feature adds +-1e4 to every score of a query row (a shared offset of
            # random sign) while the other features keep O(1) differences between the keys:
            # the weights stay informative, and exp without the row maximum overflows (or
            # underflows to 0/0).
            signs = torch.where(randn(rng, *batch, lq) < 0, -1.0, 1.0).to(F64)
            q[..., -1] = 100.0 * math.sqrt(d) * signs
            k[..., -1] = 100.0
        if case.get("noncontiguous"):
            q, k, v = noncontiguous(q), noncontiguous(k), noncontiguous(v)
        return q, k, v

    warm_q, warm_k, warm_v = draw()
    q, k, v = draw()
    mask = case_mask(rng, case["mask"], batch, lq, lk)
    weights_out, weights_w = randn(rng, *batch, lq, dv), randn(rng, *batch, lq, lk)
    big_q, big_k, big_v = draw(large=True)
    rows_q, rows_k, rows_v = draw()
    rows_mask = case_mask(rng, case["mask"] or "square", batch, lq, lk, fully_masked_rows=True)
    for t in (q, k, v, rows_q, rows_k, rows_v):
        t.requires_grad_(True)
    out.watch(q=q, k=k, v=v)
    leaves = {"grad_q": q, "grad_k": k, "grad_v": v}

    def main():
        try:
            api.scaled_dot_product_attention(warm_q, warm_k, warm_v, mask)
            result, weights = api.scaled_dot_product_attention(q, k, v, mask)
            out["out"], out["weights"] = result, weights
            ((result * weights_out).sum() + (weights * weights_w).sum()).backward()
        finally:
            record_grads(out, leaves)

    def large_scores():
        with torch.no_grad():
            result, weights = api.scaled_dot_product_attention(big_q, big_k, big_v)
        out["large_scores"] = torch.cat([result.flatten(), weights.flatten()])

    def fully_masked():
        result, weights = api.scaled_dot_product_attention(rows_q, rows_k, rows_v, rows_mask)
        ((result * weights_out).sum() + (weights * weights_w).sum()).backward()
        grads = [
            t.grad if t.grad is not None else torch.full_like(t, math.nan)
            for t in (rows_q, rows_k, rows_v)
        ]
        out["fully_masked"] = torch.cat(
            [result.flatten(), weights.flatten(), *(g.flatten() for g in grads)]
        )

    run_independently(main, large_scores, fully_masked)


ATTENTION_CASES = (
    {"batch": (), "Lq": 1, "Lk": 1, "d": 1, "dv": 1, "mask": None},
    {"batch": (), "Lq": 4, "Lk": 6, "d": 5, "dv": 3, "mask": "square"},
    {"batch": (3,), "Lq": 5, "Lk": 4, "d": 8, "dv": 2, "mask": None},
    {"batch": (2, 3), "Lq": 3, "Lk": 7, "d": 4, "dv": 6, "mask": "padding"},
    {"batch": (2, 2), "Lq": 4, "Lk": 5, "d": 6, "dv": 6, "mask": "per_query"},
    {"batch": (2, 1, 3), "Lq": 5, "Lk": 5, "d": 3, "dv": 4, "mask": "causal"},
    {"batch": (2, 4), "Lq": 6, "Lk": 3, "d": 16, "dv": 5, "mask": "square", "noncontiguous": True},
)


# ----------------------------------------------------------------------------- q2: masks
def exercise_masks(api, case, rng, out):
    def causal():
        api.causal_mask(case["first_L"])
        out["causal"] = api.causal_mask(case["L"])

    def padding():
        api.padding_mask(torch.tensor(case["first_lengths"]), case["first_L"])
        out["padding"] = api.padding_mask(torch.tensor(case["lengths"]), case["L"])

    run_independently(causal, padding)


MASK_CASES = (
    {"L": 1, "lengths": [1], "first_L": 3, "first_lengths": [2, 3]},
    {"L": 4, "lengths": [2, 4, 1], "first_L": 2, "first_lengths": [1]},
    {"L": 7, "lengths": [7, 0, 3, 5], "first_L": 5, "first_lengths": [5, 2]},
    {"L": 5, "lengths": [3, 3], "first_L": 6, "first_lengths": [6, 1, 4]},
)


# ------------------------------------------------------------------ q3: multi-head attention
def projection_names(bias: bool) -> tuple[str, ...]:
    kinds = ("weight", "bias") if bias else ("weight",)
    return tuple(f"{proj}.{kind}" for proj in ("q_proj", "k_proj", "v_proj") for kind in kinds)


def seeded_projections(
    rng: torch.Generator, prefix: str, e: int, bias: bool
) -> dict[str, torch.Tensor]:
    values = {}
    for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
        values[f"{prefix}{proj}.weight"] = randn(rng, e, e) / math.sqrt(e)
        if bias:
            values[f"{prefix}{proj}.bias"] = 0.5 * randn(rng, e)
    return values


def module_grads(module: nn.Module, names: tuple[str, ...]) -> torch.Tensor | None:
    """The gradients of the named parameters, flattened and concatenated (None if any is
    missing)."""
    grads = []
    for name in names:
        param: Any = module
        for part in name.split("."):
            param = getattr(param, part)
        if param.grad is None:
            return None
        grads.append(param.grad.flatten())
    return torch.cat(grads)


def exercise_mha(api, case, rng, out):
    n, lq, lk, e, heads = case["N"], case["Lq"], case["Lk"], case["E"], case["heads"]
    bias = case.get("bias", True)
    with substituted(api, scaled_dot_product_attention=_attention):
        mha = (
            api.MultiHeadAttention(e, heads, bias=bias)
            if not bias
            else api.MultiHeadAttention(e, heads)
        )
        assign_parameters(mha, seeded_projections(rng, "", e, bias))
        warm = randn(rng, n, lq, e), randn(rng, n, lk, e), randn(rng, n, lk, e)
        query, key, value = randn(rng, n, lq, e), randn(rng, n, lk, e), randn(rng, n, lk, e)
        if case.get("noncontiguous"):
            query, key, value = noncontiguous(query), noncontiguous(key), noncontiguous(value)
        kind = case["mask"]
        mask = None
        if kind == "causal":
            mask = torch.ones(lq, lk, dtype=torch.bool).tril()
        elif kind == "padding":
            mask = case_mask(rng, "padding", (n, heads), lq, lk)
        elif kind == "per_query":
            mask = case_mask(
                rng,
                "per_query",
                (n, heads),
                lq,
                lk,
                fully_masked_rows=case.get("fully_masked", False),
            )
        elif kind == "per_head":
            mask = draw_mask(rng, (n, heads, lq, lk), lk)
        for t in (query, key, value):
            t.requires_grad_(True)
        weights_out = randn(rng, n, lq, e)
        out.watch(query=query, key=key, value=value)
        try:
            with torch.no_grad():
                mha(*warm, mask)
            result, weights = mha(query, key, value, mask)
            out["out"], out["weights"] = result, weights
            # the loss uses the output only: a layer that returns other weights (averaged over
            # the heads, say) loses the weights item, not the gradients
            (result * weights_out).sum().backward()
        finally:
            record_grads(out, {"grad_query": query, "grad_key": key, "grad_value": value})
            try:
                grads = module_grads(mha, projection_names(bias))
                if grads is not None:
                    out["grad_projections"] = grads
                grads = module_grads(
                    mha, ("out_proj.weight", "out_proj.bias") if bias else ("out_proj.weight",)
                )
                if grads is not None:
                    out["grad_out_proj"] = grads
            except AttributeError:
                pass


MHA_CASES = (
    {"N": 2, "Lq": 3, "Lk": 5, "E": 8, "heads": 2, "mask": None},
    {"N": 1, "Lq": 4, "Lk": 4, "E": 6, "heads": 1, "mask": "causal"},
    {"N": 3, "Lq": 5, "Lk": 6, "E": 12, "heads": 4, "mask": "padding"},
    {"N": 2, "Lq": 4, "Lk": 3, "E": 8, "heads": 8, "mask": "per_query", "fully_masked": True},
    {"N": 2, "Lq": 5, "Lk": 5, "E": 6, "heads": 3, "mask": "per_head", "bias": False},
    {"N": 3, "Lq": 2, "Lk": 6, "E": 10, "heads": 5, "mask": "per_query", "noncontiguous": True},
)

# Shape errors a head split or merge typically raises, and their usual cause.
MHA_ERROR_HINTS = (
    (
        r"is invalid for input of size",
        "splitting into heads: queries have Lq positions, keys and values Lk (they differ when "
        "query and key are different sequences): split each projection with its own length, "
        "(N, L, E) -> (N, L, heads, E // heads) -> transpose(1, 2).",
    ),
    (
        r"view size is not compatible",
        "merging the heads: after transpose(1, 2) the tensor is not contiguous, so view cannot "
        "merge (heads, head_dim): use reshape(N, Lq, E) (or .contiguous().view).",
    ),
    (
        r"must match the size of tensor b|shapes cannot be multiplied",
        "the scores are (N, heads, Lq, Lk): split q, k and v into heads the same way (each "
        "(N, heads, L, head_dim)), and pass the mask on unchanged: it is (Lq, Lk) or already "
        "4-dimensional, broadcastable to the scores.",
    ),
)


# -------------------------------------------------------------------- q4: positional encoding
def exercise_encoding(api, case, rng, out):
    api.sinusoidal_positional_encoding(case["first"][0], case["first"][1])
    out["table"] = as_float64(
        api.sinusoidal_positional_encoding(case["max_len"], case["d"]),
        "sinusoidal_positional_encoding",
    )


ENCODING_CASES = (
    {"max_len": 1, "d": 2, "first": (3, 4)},
    {"max_len": 10, "d": 6, "first": (4, 2)},
    {"max_len": 64, "d": 16, "first": (8, 8)},
    {"max_len": 100, "d": 32, "first": (5, 7)},
    {"max_len": 1, "d": 1, "first": (2, 2)},
    {"max_len": 9, "d": 5, "first": (3, 4)},
    {"max_len": 50, "d": 11, "first": (7, 3)},
)


def exercise_positional_module(api, case, rng, out):
    d, max_len = case["d"], case["max_len"]
    with substituted(api, sinusoidal_positional_encoding=_encoding):
        module = api.PositionalEncoding(d, max_len=max_len)
    first = randn(rng, case["N"], case["first_L"], d)
    x = randn(rng, case["N"], case["L"], d)
    if case.get("noncontiguous"):
        x = noncontiguous(x)
    out.watch(x=x)

    def forward():
        module(first)
        out["output"] = module(x)

    def parameters():
        out["no_parameters"] = torch.tensor(sum(p.numel() for p in module.parameters()))
        # the table as a buffer of any name and layout ((max_len, d) or (1, max_len, d))
        out["buffer"] = torch.tensor(any(b.numel() == max_len * d for b in module.buffers()))

    run_independently(forward, parameters)


POSITIONAL_CASES = (
    {"N": 2, "L": 5, "first_L": 3, "d": 4, "max_len": 16},
    {"N": 3, "L": 1, "first_L": 6, "d": 6, "max_len": 6},
    {"N": 1, "L": 8, "first_L": 8, "d": 7, "max_len": 20},
    {"N": 4, "L": 6, "first_L": 2, "d": 8, "max_len": 5000, "noncontiguous": True},
)


# ------------------------------------------------------------------- q5: the encoder block
BLOCK_PARTS = {
    "grad_attention": tuple(
        f"self_attn.{p}.{kind}"
        for p in ("q_proj", "k_proj", "v_proj", "out_proj")
        for kind in ("weight", "bias")
    ),
    "grad_feedforward": ("linear1.weight", "linear1.bias", "linear2.weight", "linear2.bias"),
    "grad_norms": ("norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias"),
}


def exercise_block(api, case, rng, out):
    n, length, d, heads, ff = case["N"], case["L"], case["d"], case["heads"], case["ff"]
    with substituted(
        api, MultiHeadAttention=_TrustedAttention, scaled_dot_product_attention=_attention
    ):
        if "dropout" in case:
            block = api.TransformerEncoderBlock(d, heads, ff, dropout=case["dropout"])
        else:
            block = api.TransformerEncoderBlock(d, heads, ff)
        values = seeded_projections(rng, "self_attn.", d, True)
        values.update(
            {
                "linear1.weight": randn(rng, ff, d) / math.sqrt(d),
                "linear1.bias": 0.5 * randn(rng, ff),
                "linear2.weight": randn(rng, d, ff) / math.sqrt(ff),
                "linear2.bias": 0.5 * randn(rng, d),
                "norm1.weight": 1 + 0.3 * randn(rng, d),
                "norm1.bias": 0.3 * randn(rng, d),
                "norm2.weight": 1 + 0.3 * randn(rng, d),
                "norm2.bias": 0.3 * randn(rng, d),
            }
        )
        assign_parameters(block, values)
        block.eval()
        warm = randn(rng, n, length, d)
        x = randn(rng, n, length, d)
        if case.get("noncontiguous"):
            x = noncontiguous(x)
        x.requires_grad_(True)
        mask = None
        if case["mask"] == "causal":
            mask = torch.ones(length, length, dtype=torch.bool).tril()
        elif case["mask"] == "padding":
            mask = case_mask(rng, "padding", (n, heads), length, length)
        weights_out = randn(rng, n, length, d)
        perm = torch.randperm(length, generator=rng)
        plain = randn(rng, n, length, d)
        out.watch(x=x)

        def forward():
            try:
                with torch.no_grad():
                    block(warm, mask)
                result = block(x, mask)
                out["out"] = result
                (result * weights_out).sum().backward()
            finally:
                record_grads(out, {"grad_x": x})
                for item, names in BLOCK_PARTS.items():
                    grads = module_grads(block, names)
                    if grads is not None:
                        out[item] = grads

        def permutation():
            with torch.no_grad():
                out["permutation"] = block(plain[:, perm]) - block(plain)[:, perm]

        run_independently(forward, permutation)


BLOCK_CASES = (
    {"N": 2, "L": 5, "d": 8, "heads": 2, "ff": 16, "mask": None},
    {"N": 1, "L": 1, "d": 4, "heads": 1, "ff": 3, "mask": None},
    {"N": 3, "L": 6, "d": 6, "heads": 3, "ff": 10, "mask": "causal"},
    {"N": 3, "L": 4, "d": 12, "heads": 4, "ff": 8, "mask": "padding", "dropout": 0.3},
    {
        "N": 2,
        "L": 7,
        "d": 8,
        "heads": 8,
        "ff": 5,
        "mask": None,
        "dropout": 0.5,
        "noncontiguous": True,
    },
)


# ------------------------------------------------------------------ q6: warm-up schedule
def exercise_schedule(api, case, rng, out):
    warmup, max_steps, base_lr = case["warmup"], case["max_steps"], case["base_lr"]

    def phase(name: str, steps: range) -> Callable[[], None]:
        def run() -> None:
            out[name] = as_floats(
                [api.warmup_cosine_lr(step, warmup, max_steps, base_lr) for step in steps],
                "warmup_cosine_lr",
            )

        return run

    run_independently(
        phase("warmup", range(warmup)),
        phase("cosine", range(warmup, max_steps)),
        phase("after_max_steps", range(max_steps, max_steps + 7)),
    )


SCHEDULE_CASES = (
    {"warmup": 10, "max_steps": 50, "base_lr": 1e-3},
    {"warmup": 0, "max_steps": 20, "base_lr": 0.5},
    {"warmup": 1, "max_steps": 9, "base_lr": 2.0},
    {"warmup": 7, "max_steps": 30, "base_lr": 3e-4},
)


# -------------------------------------------------------------------- q7: concept questions
class _MixingProbe(nn.Module):
    """Permutation-equivariant probe: parameter-free self-attention plus a token-wise map."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = torch.softmax(x @ x.transpose(1, 2) / math.sqrt(x.shape[-1]), dim=-1)
        return torch.tanh(x) + weights @ x


class _PositionProbe(_MixingProbe):
    """The same with a position-dependent term added: not permutation-equivariant."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ramp = torch.linspace(-1, 1, x.shape[1], dtype=x.dtype).unsqueeze(-1)
        return super().forward(x + ramp * x.mean(dim=-1, keepdim=True))


def exercise_concepts(api, case, rng, out):
    def params():
        out["mha_param_count"] = as_ints(
            [api.mha_param_count(e, h, bias=b) for e, h, b in case["mha"]], "mha_param_count"
        )

    def wide():
        out["wide_mha_param_count"] = as_ints(
            [api.wide_mha_param_count(e, h) for e, h in case["wide"]], "wide_mha_param_count"
        )

    def memory():
        out["attention_matrix_bytes"] = as_ints(
            [
                api.attention_matrix_bytes(length, n, h, bytes_per_element=b)
                for length, n, h, b in case["bytes"]
            ],
            "attention_matrix_bytes",
        )

    def permutation():
        n, length, d = case["x"]
        answers = []
        for probe in (_MixingProbe(), _PositionProbe()):
            x = randn(rng, n, length, d)
            perm = torch.randperm(length, generator=rng)
            answers.append(api.permutation_error(probe, x, perm))
        out["permutation_error"] = as_floats(answers, "permutation_error")

    run_independently(params, wide, memory, permutation)


CONCEPT_CASES = (
    {
        "mha": [(512, 8, True), (64, 1, True)],
        "wide": [(64, 8), (10, 1)],
        "bytes": [(1024, 2, 8, 4), (7, 3, 1, 8)],
        "x": (2, 6, 4),
    },
    {
        "mha": [(12, 3, False), (6, 6, True)],
        "wide": [(12, 3), (8, 4)],
        "bytes": [(100, 1, 4, 2), (4096, 16, 12, 4)],
        "x": (3, 5, 8),
    },
)


CHECKS = [
    Check(
        name="scaled_dot_product_attention",
        question="q1",
        uses=("scaled_dot_product_attention",),
        exercise=exercise_attention,
        cases=ATTENTION_CASES,
        outputs=(
            Output(
                "out",
                hint="out = weights @ v, with weights = softmax(q k^T / sqrt(d)) over "
                "the KEYS (the last axis), d = q.shape[-1] (not dv).",
            ),
            Output(
                "weights",
                hint="Scale by sqrt(d), d = q.shape[-1]; masked scores become "
                "-inf BEFORE the softmax (True = may attend), so masked "
                "weights are exactly 0 and each row sums to 1; transpose "
                "only the last two axes of k (k.transpose(-2, -1)).",
            ),
            Output("grad_q", points=0.5, hint=GRADIENT_HINT.format(what="q"), needs=("out",)),
            Output("grad_k", points=0.5, hint=GRADIENT_HINT.format(what="k"), needs=("out",)),
            Output("grad_v", points=0.5, hint=GRADIENT_HINT.format(what="v"), needs=("out",)),
            # the overflow and fully-masked hints hold only where ordinary rows pass: a
            # softmax over the wrong axis fails these too, and then "fix weights first"
            Output(
                "large_scores",
                hint="Scores of magnitude 1e4 overflow exp: subtract each "
                "row's maximum before exp (torch.softmax does).",
                needs=("weights",),
            ),
            Output(
                "fully_masked",
                hint="A query whose keys are ALL masked must get zero "
                "weights and a zero output, and finite gradients: "
                "softmax of a row of -inf is NaN, so treat such rows "
                "separately (e.g. torch.where on the row's mask).",
                needs=("weights",),
            ),
        ),
    ),
    Check(
        name="masks",
        question="q2",
        uses=("causal_mask", "padding_mask"),
        exercise=exercise_masks,
        cases=MASK_CASES,
        outputs=(
            Output(
                "causal",
                hint="causal_mask(L) is a bool (L, L) tensor, True on and below "
                "the diagonal: query i may attend to keys j <= i.",
            ),
            Output(
                "padding",
                hint="padding_mask(lengths, L) is a bool (N, 1, 1, L) tensor, "
                "True at the positions j < lengths[n].",
            ),
        ),
    ),
    Check(
        name="MultiHeadAttention",
        question="q3",
        uses=("MultiHeadAttention",),
        replaces=("scaled_dot_product_attention",),
        exercise=exercise_mha,
        cases=MHA_CASES,
        pattern_axes=("heads", "mask", "bias", "noncontiguous", "fully_masked"),
        error_hints=MHA_ERROR_HINTS,
        outputs=(
            Output(
                "out",
                hint="Project, split E into heads of E // num_heads features "
                "((N, L, E) -> (N, L, heads, head_dim) -> transpose to (N, heads,"
                " L, head_dim)), attend, merge the heads back in the same "
                "order, then apply out_proj.",
            ),
            Output(
                "weights",
                hint="Return the per-head weights (N, heads, Lq, Lk), not their "
                "average; queries come from q_proj(query), keys from "
                "k_proj(key); pass the mask on unchanged (it broadcasts).",
            ),
            Output("grad_query", points=0.5, hint=GRADIENT_HINT.format(what="query")),
            Output("grad_key", points=0.5, hint=GRADIENT_HINT.format(what="key")),
            Output("grad_value", points=0.5, hint=GRADIENT_HINT.format(what="value")),
            Output(
                "grad_projections",
                points=0.5,
                hint=GRADIENT_HINT.format(what="q_proj, k_proj and v_proj"),
            ),
            Output("grad_out_proj", points=0.5, hint=GRADIENT_HINT.format(what="out_proj")),
        ),
    ),
    Check(
        name="sinusoidal_positional_encoding",
        question="q4",
        uses=("sinusoidal_positional_encoding",),
        exercise=exercise_encoding,
        cases=ENCODING_CASES,
        outputs=(
            Output(
                "table",
                rtol=0.0,
                atol=1e-4,
                hint="PE[p, 2i] = sin(p / 10000^(2i/d_model)) and PE[p, 2i+1] = cos(the "
                "same angle): even columns sin, odd columns cos, one frequency per "
                "PAIR of columns, positions from 0; for odd d_model the last column "
                "is a sin.",
            ),
        ),
    ),
    Check(
        name="PositionalEncoding",
        question="q4",
        uses=("PositionalEncoding",),
        # no replaces: the encoding is substituted only while the module is built, and a
        # forward that computes the table itself calls the student's own function
        exercise=exercise_positional_module,
        cases=POSITIONAL_CASES,
        outputs=(
            Output(
                "output",
                rtol=0.0,
                atol=1e-6,
                hint="forward(x) with x (N, L, d_model) returns x + the first L rows of the "
                "table (L = x.shape[1], not the batch size), nothing else, for every "
                "call.",
            ),
            Output(
                "no_parameters",
                points=0.5,
                hint="The table is fixed: store it with self.register_buffer(...), not as "
                "an nn.Parameter (the optimizer would train it).",
            ),
            Output(
                "buffer",
                points=0.5,
                hint='Store the table with self.register_buffer("pe", table): a plain '
                "attribute (self.pe = table) is not moved by .to()/.double() and not saved "
                "in state_dict.",
            ),
        ),
    ),
    Check(
        name="TransformerEncoderBlock",
        question="q5",
        uses=("TransformerEncoderBlock",),
        replaces=("MultiHeadAttention", "scaled_dot_product_attention"),
        exercise=exercise_block,
        cases=BLOCK_CASES,
        outputs=(
            Output(
                "out",
                hint="Post-norm: x = norm1(x + self_attn(x, x, x, mask)[0]), then "
                "x = norm2(x + linear2(relu(linear1(x)))); dropout only in "
                "training mode (nn.Dropout).",
            ),
            Output("grad_x", points=0.5, hint=GRADIENT_HINT.format(what="x")),
            Output("grad_attention", points=0.5, hint=GRADIENT_HINT.format(what="self_attn")),
            Output(
                "grad_feedforward",
                points=0.5,
                hint=GRADIENT_HINT.format(what="linear1 and linear2"),
            ),
            Output("grad_norms", points=0.5, hint=GRADIENT_HINT.format(what="norm1 and norm2")),
            Output(
                "permutation",
                atol=1e-9,
                rtol=0.0,
                hint="Without a mask, the block must be permutation-equivariant: permuting "
                "the tokens permutes the output the same way. Nothing in the block may "
                "depend on positions (no positional encoding or default mask inside).",
            ),
        ),
    ),
    Check(
        name="warmup_cosine_lr",
        question="q6",
        uses=("warmup_cosine_lr",),
        exercise=exercise_schedule,
        cases=SCHEDULE_CASES,
        outputs=(
            Output(
                "warmup",
                hint="For step < warmup_steps: base_lr * step / warmup_steps "
                "(lr(0) = 0, never reaching base_lr inside the warm-up).",
            ),
            Output(
                "cosine",
                hint="For warmup_steps <= step < max_steps: base_lr * 0.5 * (1 + "
                "cos(pi * (step - warmup_steps) / (max_steps - "
                "warmup_steps))), so lr(warmup_steps) = base_lr; do not "
                "multiply by the warm-up factor.",
            ),
            Output("after_max_steps", hint="From max_steps on the learning rate is 0."),
        ),
    ),
    Check(
        name="concepts",
        question="q7",
        uses=(
            "mha_param_count",
            "wide_mha_param_count",
            "attention_matrix_bytes",
            "permutation_error",
        ),
        exercise=exercise_concepts,
        cases=CONCEPT_CASES,
        outputs=(
            Output(
                "mha_param_count",
                points=0.5,
                hint="Four E x E weight matrices (q, k, v, out) plus four biases of E when "
                "bias=True; narrow heads split E, so num_heads does not change it.",
            ),
            Output(
                "wide_mha_param_count",
                points=0.5,
                hint="Wide form: three bias-free E -> heads*E projections and one "
                "heads*E -> E layer with a bias of E.",
            ),
            Output(
                "attention_matrix_bytes",
                points=0.5,
                hint="batch_size * num_heads * seq_len * seq_len elements times bytes_per_element.",
            ),
            Output(
                "permutation_error",
                points=0.5,
                atol=1e-9,
                hint="max |module(x[:, perm]) - module(x)[:, perm]|: permute the "
                "SEQUENCE axis (dim 1), and permute the output of the original "
                "input before comparing.",
            ),
        ),
    ),
]
