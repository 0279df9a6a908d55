"""Bench of chapter 06: the reference attention against PyTorch's fused modules.

``bench()`` times forward + backward of one batch through the reference ``MultiHeadAttention``
and ``TransformerEncoderBlock`` and through ``torch.nn.MultiheadAttention`` /
``torch.nn.TransformerEncoderLayer`` holding the same weights, alternately (side by side, so
that machine load affects both alike), on one CPU thread, and reports medians and their ratio.
It also reports the attention matrix's memory at a few sequence lengths (the quadratic cost
the notebook discusses) and times the hidden checks run against the reference, which bounds
the chapter's grading work.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from solutions import ch06_attention_transformers as reference
from student.seeding import seeded
from tools.timing import hidden_checks_figure, one_thread, side_by_side

BATCH, LENGTH, EMBED, HEADS, FEEDFORWARD = 32, 64, 64, 4, 256
REPEATS, WARMUP = 21, 3


def _torch_attention(ours: reference.MultiHeadAttention) -> nn.MultiheadAttention:
    twin = nn.MultiheadAttention(EMBED, HEADS, batch_first=True)
    with torch.no_grad():
        twin.in_proj_weight.copy_(
            torch.cat([ours.q_proj.weight, ours.k_proj.weight, ours.v_proj.weight])
        )
        twin.in_proj_bias.copy_(torch.cat([ours.q_proj.bias, ours.k_proj.bias, ours.v_proj.bias]))
        twin.out_proj.load_state_dict(ours.out_proj.state_dict())
    return twin


def bench() -> dict[str, str]:
    with one_thread(), seeded(0):
        x = torch.randn(BATCH, LENGTH, EMBED)
        mask = reference.causal_mask(LENGTH)
        figures = {
            "setting": f"N={BATCH}, L={LENGTH}, E={EMBED}, heads={HEADS}, "
            f"ff={FEEDFORWARD}, causal mask, float32, 1 thread, "
            f"median of {REPEATS}"
        }

        ours_mha = reference.MultiHeadAttention(EMBED, HEADS)
        twin_mha = _torch_attention(ours_mha)

        def ours_attention() -> None:
            ours_mha.zero_grad(set_to_none=True)
            ours_mha(x, x, x, mask)[0].sum().backward()

        def torch_attention() -> None:
            twin_mha.zero_grad(set_to_none=True)
            twin_mha(x, x, x, attn_mask=~mask, need_weights=False)[0].sum().backward()

        ours_s, fused_s = side_by_side(ours_attention, torch_attention, REPEATS, WARMUP)
        figures["MultiHeadAttention forward+backward, reference"] = f"{ours_s * 1e3:.2f} ms"
        figures["MultiHeadAttention forward+backward, torch.nn.MultiheadAttention"] = (
            f"{fused_s * 1e3:.2f} ms"
        )
        figures["MultiHeadAttention reference / torch"] = f"{ours_s / fused_s:.2f}x"

        ours_block = reference.TransformerEncoderBlock(EMBED, HEADS, FEEDFORWARD)
        twin_block = nn.TransformerEncoderLayer(
            EMBED, HEADS, FEEDFORWARD, dropout=0.0, batch_first=True
        )
        twin_block.self_attn = _torch_attention(ours_block.self_attn)
        for name in ("linear1", "linear2", "norm1", "norm2"):
            getattr(twin_block, name).load_state_dict(getattr(ours_block, name).state_dict())

        def ours_encoder() -> None:
            ours_block.zero_grad(set_to_none=True)
            ours_block(x, mask).sum().backward()

        def torch_encoder() -> None:
            twin_block.zero_grad(set_to_none=True)
            twin_block(x, src_mask=~mask).sum().backward()

        ours_s, fused_s = side_by_side(ours_encoder, torch_encoder, REPEATS, WARMUP)
        figures["encoder block forward+backward, reference"] = f"{ours_s * 1e3:.2f} ms"
        figures["encoder block forward+backward, torch.nn.TransformerEncoderLayer"] = (
            f"{fused_s * 1e3:.2f} ms"
        )
        figures["encoder block reference / torch"] = f"{ours_s / fused_s:.2f}x"

        for length in (512, 4096, 32768):
            size = reference.attention_matrix_bytes(length, 1, 12)
            figures[f"attention weights, L={length}, 12 heads, float32, one sequence"] = (
                f"{size / 2**20:,.0f} MiB"
            )

        figures |= hidden_checks_figure(Path(__file__).with_name("checks.py"), reference, repeats=5)
        return figures


if __name__ == "__main__":
    for key, value in bench().items():
        print(f"{key}: {value}")
