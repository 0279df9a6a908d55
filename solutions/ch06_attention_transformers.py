"""Reference implementation of chapter 06 (attention and transformers): the grading oracle.

Never shipped to students. Everything is written with tensor operations, ``nn.Linear``,
``nn.LayerNorm`` and ``nn.Dropout``; none of PyTorch's attention or transformer modules and
kernels is used. Conventions (the notebook states them):

* masks are boolean and True where a query MAY attend to a key (the convention of
  ``torch.nn.functional.scaled_dot_product_attention``, the opposite of the boolean
  ``attn_mask`` / ``key_padding_mask`` of ``torch.nn.MultiheadAttention``);
* a query whose keys are all masked gets zero weights and a zero output (never NaN);
* multi-head attention is batch first, ``(N, L, E)``, with narrow heads of ``E // heads``
  features; with the same weights it equals ``torch.nn.MultiheadAttention(batch_first=True)``;
* the encoder block is post-norm, as ``torch.nn.TransformerEncoderLayer(norm_first=False)``.

Two copies of the reference, by rule: this module (the grading oracle that writes the expected
data) and the master's solution blocks (what the released solution notebook runs) are kept as
independent oracles, neither generated from the other; ``tests/test_check_coverage.py`` runs
every check's exercise on both and compares them with the kit's comparison rule.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn


# ------------------------------------------------------------------ attention and masks
def scaled_dot_product_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """softmax(q k^T / sqrt(d)) v over the keys.

    q: (..., Lq, d), k: (..., Lk, d), v: (..., Lk, dv); mask: bool, broadcastable to
    (..., Lq, Lk), True where the query may attend. Returns out (..., Lq, dv) and weights
    (..., Lq, Lk). A fully masked query row gets zero weights and a zero output.
    """
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    # Softmax is unchanged by a shift per row; subtracting the row maximum keeps exp <= 1.
    # The shift is a constant (detached): its exact gradient contribution is zero anyway.
    top = scores.detach().amax(dim=-1, keepdim=True)
    top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))  # all keys masked
    exps = torch.exp(scores - top)
    total = exps.sum(dim=-1, keepdim=True)
    weights = exps / torch.where(total > 0, total, torch.ones_like(total))
    return weights @ v, weights


def causal_mask(length: int) -> torch.Tensor:
    """(L, L) bool, True on and below the diagonal: query i may attend to keys j <= i."""
    return torch.ones(length, length, dtype=torch.bool).tril()


def padding_mask(lengths: torch.Tensor | Sequence[int], length: int) -> torch.Tensor:
    """(N, 1, 1, L) bool, True at the key positions j < lengths[n] (the real tokens)."""
    lengths = torch.as_tensor(lengths)
    positions = torch.arange(length, device=lengths.device)
    return (positions[None, :] < lengths[:, None])[:, None, None, :]


# ----------------------------------------------------------------- multi-head attention
class MultiHeadAttention(nn.Module):
    """Narrow multi-head attention: heads of embed_dim // num_heads features.

    forward(query (N, Lq, E), key (N, Lk, E), value (N, Lk, E), mask=None) ->
    (out (N, Lq, E), weights (N, heads, Lq, Lk)); mask bool, broadcastable to
    (N, heads, Lq, Lk), True where a query may attend.
    """

    def __init__(self, embed_dim: int, num_heads: int, bias: bool = True):
        super().__init__()
        assert embed_dim % num_heads == 0, "embed_dim must be divisible by num_heads"
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.head_dim = embed_dim // num_heads
        self.q_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.k_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.v_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias)

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        """(N, L, E) -> (N, heads, L, head_dim)."""
        n, length, _ = x.shape
        return x.reshape(n, length, self.num_heads, self.head_dim).transpose(1, 2)

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        n, lq, _ = query.shape
        q = self._split_heads(self.q_proj(query))
        k = self._split_heads(self.k_proj(key))
        v = self._split_heads(self.v_proj(value))
        heads, weights = scaled_dot_product_attention(q, k, v, mask)
        merged = heads.transpose(1, 2).reshape(n, lq, self.embed_dim)
        return self.out_proj(merged), weights


# ------------------------------------------------------------------- positional encoding
def sinusoidal_positional_encoding(max_len: int, d_model: int) -> torch.Tensor:
    """(max_len, d_model) in the default dtype: PE[p, 2i] = sin(p / 10000^(2i/d_model)),
    PE[p, 2i+1] = cos(p / 10000^(2i/d_model)); odd d_model allowed."""
    positions = torch.arange(max_len, dtype=torch.float64)[:, None]
    even = torch.arange(0, d_model, 2, dtype=torch.float64)
    angles = positions / 10000.0 ** (even / d_model)  # (max_len, ceil(d_model / 2))
    encoding = torch.zeros(max_len, d_model, dtype=torch.float64)
    encoding[:, 0::2] = torch.sin(angles)
    encoding[:, 1::2] = torch.cos(angles[:, : d_model // 2])
    return encoding.to(torch.get_default_dtype())


class PositionalEncoding(nn.Module):
    """Adds the first L rows of the sinusoidal table to x (N, L, d_model); no parameters."""

    pe: torch.Tensor

    def __init__(self, d_model: int, max_len: int = 5000):
        super().__init__()
        self.d_model = d_model
        self.max_len = max_len
        self.register_buffer(
            "pe", sinusoidal_positional_encoding(max_len, d_model), persistent=False
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.ndim == 3 and x.shape[2] == self.d_model and x.shape[1] <= self.max_len
        return x + self.pe[: x.shape[1]].to(x.dtype)


# ------------------------------------------------------------------ the encoder block
class TransformerEncoderBlock(nn.Module):
    """Post-norm encoder block: x = norm1(x + attn(x)); x = norm2(x + ff(x)), ReLU inside ff."""

    def __init__(self, d_model: int, num_heads: int, dim_feedforward: int, dropout: float = 0.0):
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, num_heads)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """x: (N, L, d_model); mask broadcastable to (N, heads, L, L) -> (N, L, d_model)."""
        attended, _ = self.self_attn(x, x, x, mask)
        x = self.norm1(x + self.dropout1(attended))
        fed = self.linear2(self.dropout(torch.relu(self.linear1(x))))
        return self.norm2(x + self.dropout2(fed))


# ------------------------------------------------------------------ learning-rate schedule
def warmup_cosine_lr(step: int, warmup_steps: int, max_steps: int, base_lr: float) -> float:
    """Linear warm-up from 0 to base_lr over warmup_steps, then a cosine decay to 0 at
    max_steps, and 0 afterwards."""
    if step < warmup_steps:
        return base_lr * step / warmup_steps
    if step >= max_steps:
        return 0.0
    progress = (step - warmup_steps) / (max_steps - warmup_steps)
    return base_lr * 0.5 * (1.0 + math.cos(math.pi * progress))


# ---------------------------------------------------------------------- concept questions
def mha_param_count(embed_dim: int, num_heads: int, bias: bool = True) -> int:
    """Parameters of MultiHeadAttention(embed_dim, num_heads, bias): four E x E projections
    (plus four biases of E); the number of heads does not matter (narrow heads)."""
    return 4 * embed_dim * embed_dim + (4 * embed_dim if bias else 0)


def wide_mha_param_count(embed_dim: int, num_heads: int) -> int:
    """Parameters of the course notes' wide form: three bias-free E -> heads*E projections and
    a unifying heads*E -> E linear layer with bias."""
    return 4 * num_heads * embed_dim * embed_dim + embed_dim


def attention_matrix_bytes(
    seq_len: int, batch_size: int, num_heads: int, bytes_per_element: int = 4
) -> int:
    """Memory of the attention weights of one layer: batch * heads * L * L elements."""
    return batch_size * num_heads * seq_len * seq_len * bytes_per_element


def permutation_error(
    module: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, perm: torch.Tensor
) -> float:
    """max |module(x[:, perm]) - module(x)[:, perm]| for x (N, L, d), perm (L,): zero for a
    permutation-equivariant module."""
    with torch.no_grad():
        return float((module(x[:, perm]) - module(x)[:, perm]).abs().max())
