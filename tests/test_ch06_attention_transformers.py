"""Chapter 06: the reference agrees with PyTorch's own attention and transformer modules (weights
copied, many random shapes, float64), and the grader isolates its checks and rejects PyTorch's
attention modules.

Mask conventions differ: ours is True where a query MAY attend (as in
``F.scaled_dot_product_attention``); the boolean ``attn_mask``/``src_mask`` of
``nn.MultiheadAttention``/``nn.TransformerEncoderLayer`` is True where it may NOT.
"""
from __future__ import annotations

import math
import zlib
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from autograder.checks import load_checks_namespace
from solutions.ch06_attention_transformers import (
    MultiHeadAttention,
    PositionalEncoding,
    TransformerEncoderBlock,
    attention_matrix_bytes,
    causal_mask,
    mha_param_count,
    padding_mask,
    permutation_error,
    scaled_dot_product_attention,
    sinusoidal_positional_encoding,
    warmup_cosine_lr,
    wide_mha_param_count,
)
from tests.conftest import failed_items, notebook_with_extra_cell

CHAPTER = "06_attention_transformers"
CHECKS_PATH = Path(__file__).resolve().parent.parent / "assignments" / CHAPTER / "checks.py"
F64 = torch.float64


def seeded(*parts) -> torch.Generator:
    return torch.Generator().manual_seed(zlib.crc32(repr(parts).encode()))


def assert_close(actual: torch.Tensor, expected: torch.Tensor, what: str) -> None:
    torch.testing.assert_close(actual, expected, rtol=1e-9, atol=1e-11, msg=what)


def random_mask(rng: torch.Generator, shape: tuple[int, ...], lk: int) -> torch.Tensor:
    """A random boolean mask of ``shape`` whose every row keeps at least one key."""
    mask = torch.rand(*shape, generator=rng) < 0.6
    keep = torch.randint(0, lk, shape[:-1], generator=rng)
    return mask | F.one_hot(keep, lk).bool()


# leading batch dims, Lq, Lk, d, dv, mask kind
SDPA_CASES = [
    (batch, lq, lk, d, dv, mask)
    for batch in ((), (3,), (2, 4), (2, 1, 3))
    for lq, lk, d, dv in ((1, 1, 1, 1), (4, 6, 8, 3), (5, 5, 3, 7), (7, 2, 16, 16))
    for mask in (None, "full", "rows")
]


@pytest.mark.parametrize("batch,lq,lk,d,dv,mask_kind", SDPA_CASES)
def test_attention_matches_torch_sdpa(batch, lq, lk, d, dv, mask_kind):
    rng = seeded(batch, lq, lk, d, dv, mask_kind)
    q = torch.randn(*batch, lq, d, generator=rng, dtype=F64, requires_grad=True)
    k = torch.randn(*batch, lk, d, generator=rng, dtype=F64, requires_grad=True)
    v = torch.randn(*batch, lk, dv, generator=rng, dtype=F64, requires_grad=True)
    mask = None
    if mask_kind == "full":
        mask = random_mask(rng, (*batch, lq, lk), lk)
    elif mask_kind == "rows":  # broadcast over the queries, like a padding mask
        mask = random_mask(rng, (*batch, 1, lk), lk)
    out, weights = scaled_dot_product_attention(q, k, v, mask)
    twins = [t.detach().clone().requires_grad_() for t in (q, k, v)]
    expected = F.scaled_dot_product_attention(*twins, attn_mask=mask)
    assert_close(out, expected, "out")
    scores = twins[0] @ twins[1].transpose(-2, -1) / math.sqrt(d)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    assert_close(weights, torch.softmax(scores.detach(), dim=-1), "weights")
    if mask is not None:
        assert (weights.detach()[~mask.expand_as(weights)] == 0).all()
    grad = torch.randn(out.shape, generator=rng, dtype=F64)
    (out * grad).sum().backward()
    (expected * grad).sum().backward()
    for ours, theirs, name in zip((q, k, v), twins, "qkv"):
        assert_close(ours.grad, theirs.grad, f"grad {name}")


def test_attention_is_stable_and_handles_fully_masked_rows():
    rng = seeded("stable")
    q = (1e3 * torch.randn(2, 4, 5, generator=rng, dtype=F64)).requires_grad_()
    k = (1e3 * torch.randn(2, 6, 5, generator=rng, dtype=F64)).requires_grad_()
    v = torch.randn(2, 6, 3, generator=rng, dtype=F64).requires_grad_()
    mask = torch.ones(2, 4, 6, dtype=torch.bool)
    mask[0, 1] = False
    mask[1, :, 2:] = False
    out, weights = scaled_dot_product_attention(q, k, v, mask)
    assert torch.isfinite(out).all() and torch.isfinite(weights).all()
    assert (weights[0, 1] == 0).all() and (out[0, 1] == 0).all()
    expected = F.scaled_dot_product_attention(q.detach(), k.detach(), v.detach(), attn_mask=mask)
    keep = mask.any(-1)
    assert_close(out.detach()[keep], expected[keep], "rows with a key")
    out.sum().backward()
    assert all(torch.isfinite(t.grad).all() for t in (q, k, v))
    assert (q.grad[0, 1] == 0).all()


def test_masks():
    assert torch.equal(causal_mask(3), torch.tensor([[1, 0, 0], [1, 1, 0], [1, 1, 1]]).bool())
    mask = padding_mask(torch.tensor([2, 0, 3]), 3)
    assert mask.shape == (3, 1, 1, 3) and mask.dtype == torch.bool
    assert mask[:, 0, 0].tolist() == [[True, True, False], [False] * 3, [True] * 3]
    assert torch.equal(padding_mask([1, 2], 2), padding_mask(torch.tensor([1, 2]), 2))


def torch_mha(ours: MultiHeadAttention, bias: bool) -> nn.MultiheadAttention:
    twin = nn.MultiheadAttention(ours.embed_dim, ours.num_heads, bias=bias, batch_first=True)
    twin = twin.to(F64)
    with torch.no_grad():
        twin.in_proj_weight.copy_(torch.cat([ours.q_proj.weight, ours.k_proj.weight,
                                             ours.v_proj.weight]))
        twin.out_proj.weight.copy_(ours.out_proj.weight)
        if bias:
            twin.in_proj_bias.copy_(torch.cat([ours.q_proj.bias, ours.k_proj.bias,
                                               ours.v_proj.bias]))
            twin.out_proj.bias.copy_(ours.out_proj.bias)
    return twin


def seeded_module(module: nn.Module, rng: torch.Generator) -> nn.Module:
    module = module.to(F64)
    with torch.no_grad():
        for param in module.parameters():
            param.copy_(0.5 * torch.randn(param.shape, generator=rng, dtype=F64))
    return module


# N, Lq, Lk, E, heads, bias, mask kind
MHA_CASES = [
    (n, lq, lk, e, heads, bias, mask)
    for n, lq, lk in ((1, 1, 1), (2, 4, 6), (3, 5, 5))
    for e, heads in ((4, 1), (8, 2), (12, 4), (6, 6))
    for bias in (True, False)
    for mask in (None, "padding", "causal", "per_query")
    if mask != "causal" or lq == lk
]


@pytest.mark.parametrize("n,lq,lk,e,heads,bias,mask_kind", MHA_CASES)
def test_multi_head_attention_matches_torch(n, lq, lk, e, heads, bias, mask_kind):
    rng = seeded(n, lq, lk, e, heads, bias, mask_kind)
    ours = seeded_module(MultiHeadAttention(e, heads, bias=bias), rng)
    twin = torch_mha(ours, bias)
    query = torch.randn(n, lq, e, generator=rng, dtype=F64, requires_grad=True)
    key = torch.randn(n, lk, e, generator=rng, dtype=F64, requires_grad=True)
    value = torch.randn(n, lk, e, generator=rng, dtype=F64, requires_grad=True)
    mask, torch_mask = None, None
    if mask_kind == "padding":
        mask = padding_mask(torch.randint(1, lk + 1, (n,), generator=rng), lk)
    elif mask_kind == "causal":
        mask = causal_mask(lq)
    elif mask_kind == "per_query":
        mask = random_mask(rng, (n, 1, lq, lk), lk)
    if mask is not None:
        torch_mask = (~mask).expand(n, heads, lq, lk).reshape(n * heads, lq, lk)
    out, weights = ours(query, key, value, mask)
    inputs = [t.detach().clone().requires_grad_() for t in (query, key, value)]
    expected, expected_weights = twin(*inputs, attn_mask=torch_mask, need_weights=True,
                                      average_attn_weights=False)
    assert weights.shape == (n, heads, lq, lk)
    assert_close(out, expected, "out")
    assert_close(weights, expected_weights, "weights")
    grad = torch.randn(out.shape, generator=rng, dtype=F64)
    (out * grad).sum().backward()
    (expected * grad).sum().backward()
    for a, b, name in zip((query, key, value), inputs, ("query", "key", "value")):
        assert_close(a.grad, b.grad, f"grad {name}")
    in_proj = torch.cat([ours.q_proj.weight.grad, ours.k_proj.weight.grad,
                         ours.v_proj.weight.grad])
    assert_close(in_proj, twin.in_proj_weight.grad, "grad in_proj_weight")
    assert_close(ours.out_proj.weight.grad, twin.out_proj.weight.grad, "grad out_proj")
    assert sum(p.numel() for p in ours.parameters()) == mha_param_count(e, heads, bias)


def test_fully_masked_query_gives_the_out_proj_bias():
    rng = seeded("masked query")
    mha = seeded_module(MultiHeadAttention(8, 2), rng)
    x = torch.randn(2, 3, 8, generator=rng, dtype=F64)
    mask = torch.ones(2, 1, 3, 3, dtype=torch.bool)
    mask[1, 0, 2] = False
    out, weights = mha(x, x, x, mask)
    assert_close(out[1, 2], mha.out_proj.bias.detach(), "out_proj bias")
    assert (weights[1, :, 2] == 0).all()


# N, L, d_model, heads, dim_feedforward, mask kind
BLOCK_CASES = [
    (n, length, d, heads, ff, mask)
    for n, length in ((1, 1), (2, 5), (3, 8))
    for d, heads, ff in ((4, 1, 8), (8, 2, 16), (12, 3, 7))
    for mask in (None, "causal", "padding")
]


@pytest.mark.parametrize("n,length,d,heads,ff,mask_kind", BLOCK_CASES)
def test_encoder_block_matches_torch_in_eval_mode(n, length, d, heads, ff, mask_kind):
    rng = seeded(n, length, d, heads, ff, mask_kind)
    ours = seeded_module(TransformerEncoderBlock(d, heads, ff, dropout=0.2), rng).eval()
    twin = nn.TransformerEncoderLayer(d, heads, ff, dropout=0.2, batch_first=True,
                                      norm_first=False).to(F64).eval()
    with torch.no_grad():
        twin.self_attn.load_state_dict(torch_mha(ours.self_attn, True).state_dict())
        for name in ("linear1", "linear2", "norm1", "norm2"):
            getattr(twin, name).load_state_dict(getattr(ours, name).state_dict())
    x = torch.randn(n, length, d, generator=rng, dtype=F64, requires_grad=True)
    x_twin = x.detach().clone().requires_grad_()
    mask, kwargs = None, {}
    if mask_kind == "causal":
        mask = causal_mask(length)
        kwargs = {"src_mask": ~mask}
    elif mask_kind == "padding":
        lengths = torch.randint(1, length + 1, (n,), generator=rng)
        mask = padding_mask(lengths, length)
        kwargs = {"src_key_padding_mask": ~mask[:, 0, 0]}
    out = ours(x, mask)
    expected = twin(x_twin, **kwargs)
    assert_close(out, expected, "block output")
    grad = torch.randn(out.shape, generator=rng, dtype=F64)
    (out * grad).sum().backward()
    (expected * grad).sum().backward()
    assert_close(x.grad, x_twin.grad, "grad x")
    for name in ("linear1", "linear2", "norm1", "norm2"):
        for (pname, a), b in zip(getattr(ours, name).named_parameters(),
                                 getattr(twin, name).parameters()):
            assert_close(a.grad, b.grad, f"grad {name}.{pname}")


def test_block_without_positional_encoding_is_permutation_equivariant():
    rng = seeded("equivariance")
    block = seeded_module(TransformerEncoderBlock(8, 2, 16), rng)
    x = torch.randn(2, 6, 8, generator=rng, dtype=F64)
    perm = torch.randperm(6, generator=rng)
    assert permutation_error(block, x, perm) < 1e-12
    with_positions = nn.Sequential(PositionalEncoding(8).to(F64), block)
    assert permutation_error(with_positions, x, perm) > 1e-2


@pytest.mark.parametrize("max_len,d_model", [(1, 1), (5, 2), (17, 7), (50, 16), (100, 33)])
def test_sinusoidal_encoding_matches_the_formula(max_len, d_model):
    table = sinusoidal_positional_encoding(max_len, d_model)
    assert table.shape == (max_len, d_model) and table.dtype == torch.get_default_dtype()
    for p in range(0, max_len, max(1, max_len // 7)):
        for j in range(d_model):
            angle = p / 10000 ** ((j - j % 2) / d_model)
            value = math.sin(angle) if j % 2 == 0 else math.cos(angle)
            assert abs(table[p, j].item() - value) < 1e-6, (p, j)
    module = PositionalEncoding(d_model, max_len=max_len)
    assert list(module.parameters()) == []
    x = torch.randn(3, max_len, d_model, dtype=F64)
    assert_close(module(x) - x, table.to(F64).expand(3, -1, -1), "added table")


def test_warmup_cosine_schedule():
    assert warmup_cosine_lr(0, 10, 100, 1.0) == 0.0
    assert warmup_cosine_lr(5, 10, 100, 1.0) == pytest.approx(0.5)
    assert warmup_cosine_lr(10, 10, 100, 1.0) == pytest.approx(1.0)
    assert warmup_cosine_lr(55, 10, 100, 2.0) == pytest.approx(1.0)
    assert warmup_cosine_lr(100, 10, 100, 1.0) == 0.0
    assert warmup_cosine_lr(150, 10, 100, 1.0) == 0.0
    assert warmup_cosine_lr(0, 0, 100, 0.3) == pytest.approx(0.3)
    # agrees with torch's LambdaLR-style cosine after warm-up
    values = [warmup_cosine_lr(s, 0, 20, 1.0) for s in range(20)]
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=20)
    for value in values:
        assert value == pytest.approx(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()


def test_concept_answers():
    assert mha_param_count(512, 8) == 4 * 512 * 512 + 4 * 512
    assert mha_param_count(512, 8, bias=False) == mha_param_count(512, 1, bias=False)
    assert wide_mha_param_count(64, 8) == 3 * 64 * 64 * 8 + 64 * 8 * 64 + 64
    assert attention_matrix_bytes(1024, 2, 8) == 2 * 8 * 1024 * 1024 * 4
    assert attention_matrix_bytes(10, 1, 1, bytes_per_element=8) == 800


# ------------------------------------------------------------------------ grading checks
def chapter_checks():
    return load_checks_namespace(CHECKS_PATH.read_text(), str(CHECKS_PATH))


def test_runtime_trap_leaves_the_allowed_api_alone():
    from autograder.child import _forbidden_functions

    found = _forbidden_functions(list(chapter_checks().forbidden))
    allowed = [torch.softmax, torch.matmul, torch.exp, torch.relu, torch.Tensor.softmax,
               torch.Tensor.masked_fill, torch.Tensor.backward, F.softmax, F.linear,
               F.layer_norm, F.dropout, F.relu, F.cross_entropy, F.gelu, torch.nn.init.uniform_,
               torch.nn.init.xavier_uniform_, torch.nn.init.kaiming_uniform_, torch.einsum,
               torch.tril, torch.triu, torch.baddbmm, torch.bmm, torch.autograd.backward]
    assert [f for f in allowed if f in found] == []
    assert F.scaled_dot_product_attention in found
    assert F.multi_head_attention_forward in found


def test_hidden_cases_cover_the_edge_cases_of_the_issue():
    checks = {check.name: check for check in chapter_checks().checks}
    sdpa = checks["scaled_dot_product_attention"].cases
    assert any(case["Lq"] != case["Lk"] for case in sdpa)
    assert any(case["dv"] != case["d"] for case in sdpa)
    assert any(len(case["batch"]) >= 2 for case in sdpa)
    assert {case["mask"] for case in sdpa} >= {None, "square", "padding", "per_query", "causal"}
    assert any(case.get("noncontiguous") for case in sdpa)
    mha = checks["MultiHeadAttention"].cases
    assert {case["heads"] for case in mha} >= {1, 4}
    assert any(case["heads"] == case["E"] for case in mha)
    assert any(case.get("noncontiguous") for case in mha)
    outputs = {output.name for output in checks["MultiHeadAttention"].outputs}
    assert {"out", "weights", "grad_query", "grad_key", "grad_value"} <= outputs
    outputs = {output.name for output in checks["TransformerEncoderBlock"].outputs}
    assert "permutation" in outputs


def test_grader_rejects_torch_attention_but_not_linear_layers(grade_file, tmp_path):
    code = '''
import torch.nn.functional as F
def scaled_dot_product_attention(q, k, v, mask=None):
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask), None
class TransformerEncoderBlock(TransformerEncoderBlock):
    def __init__(self, d_model, num_heads, dim_feedforward, dropout=0.0):
        super().__init__(d_model, num_heads, dim_feedforward, dropout)
        self.twin = torch.nn.TransformerEncoderLayer(d_model, num_heads)
'''
    results = grade_file(CHAPTER, notebook_with_extra_cell(CHAPTER, code,
                                                           tmp_path / f"{CHAPTER}.ipynb"))
    failed = failed_items(results)
    # MultiHeadAttention calls the attention but runs with the grader's own (its check replaces
    # it), so it keeps its items; the block loses its own for its TransformerEncoderLayer only
    assert {item.split(":")[0] for item in failed} == {"scaled_dot_product_attention",
                                                       "TransformerEncoderBlock"}
    messages = [test["output"] for test in results["tests"] if test["status"] == "failed"]
    block = [test["output"] for test in results["tests"]
             if test["status"] == "failed" and "TransformerEncoderBlock:" in test["name"]]
    assert not any("scaled_dot_product_attention" in m for m in block)
    assert all("uses API this chapter asks you to write yourself" in m for m in messages)
    assert any("torch.nn.functional.scaled_dot_product_attention" in m for m in messages)
    assert any("torch.nn.TransformerEncoderLayer" in m for m in messages)


def test_softmax_over_queries_gets_fix_weights_first_not_the_overflow_hint(grade_file, tmp_path):
    """The overflow and fully-masked hints explain one failure each; a softmax over the wrong
    axis fails those items too, and then their messages send the student to weights."""
    from tools.zoo import load_bugs

    bug = next(b for b in load_bugs(CHAPTER) if b.name == "softmax over the query axis")
    results = grade_file(CHAPTER, notebook_with_extra_cell(CHAPTER, bug.code,
                                                           tmp_path / f"{CHAPTER}.ipynb"))
    outputs = {test["name"].split(" ", 1)[1]: test["output"] for test in results["tests"]}
    for name in ("large_scores", "fully_masked"):
        message = outputs[f"scaled_dot_product_attention: {name}"]
        assert "Fix 'scaled_dot_product_attention: weights' first" in message, message
        assert "Hint:" not in message, message
