"""``make bench`` figures of chapter 13: the reference skip-gram loss (written from the logits)
against the same loss through ``F.logsigmoid``, one word2vec step and one masked-LM step of
the notebook's sizes, and the hidden checks run against the reference.

The two losses run forward + backward on a batch of 256 centre words with 5 noise words each
(vocabulary 80, 24 dimensions, the notebook's word2vec), timed alternately on one thread.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from solutions import ch13_language_representations as reference  # noqa: E402
from tools.timing import (  # noqa: E402
    hidden_checks_figure,
    median_seconds,
    one_thread,
    side_by_side,
)

VOCAB, DIM, BATCH, NOISE = 80, 24, 256, 5
REPEATS, WARMUP = 21, 3


def _logsigmoid_loss(
    model: reference.SkipGramNS,
    center: torch.Tensor,
    context: torch.Tensor,
    negatives: torch.Tensor,
) -> torch.Tensor:
    v = model.center(center)
    positive = (model.context(context) * v).sum(dim=1)
    negative = (model.context(negatives) * v[:, None, :]).sum(dim=2)
    return (-F.logsigmoid(positive) - F.logsigmoid(-negative).sum(dim=1)).mean()


def bench() -> dict[str, str]:
    with one_thread():
        generator = torch.Generator().manual_seed(0)
        model = reference.SkipGramNS(VOCAB, DIM)
        center, context = torch.randint(VOCAB, (2, BATCH), generator=generator)
        negatives = torch.randint(VOCAB, (BATCH, NOISE), generator=generator)

        def ours() -> None:
            model.zero_grad()
            model.loss(center, context, negatives).backward()

        def theirs() -> None:
            model.zero_grad()
            _logsigmoid_loss(model, center, context, negatives).backward()

        ours_s, theirs_s = side_by_side(ours, theirs, REPEATS, WARMUP)
        figures = {
            "setting": f"B={BATCH}, K={NOISE}, V={VOCAB}, D={DIM}, float32, 1 thread, "
            f"median of {REPEATS}",
            "skip-gram loss forward+backward, reference": f"{ours_s * 1e3:.2f} ms",
            "skip-gram loss forward+backward, F.logsigmoid": f"{theirs_s * 1e3:.2f} ms",
            "reference / logsigmoid": f"{ours_s / theirs_s:.2f}x",
        }

        encoder = reference.Encoder(VOCAB, 32, 2, 64, 2, 12)
        head = torch.nn.Linear(32, VOCAB)
        optimizer = torch.optim.Adam([*encoder.parameters(), *head.parameters()], lr=3e-3)
        pairs = [([5, 6, 7, 8], [9, 10, 11, 12])] * 64
        ids, segments, mask = reference.pack_pairs(pairs, 12)

        def mlm_step() -> None:
            inputs, labels = reference.mask_tokens(ids, generator, VOCAB, mask_prob=0.5)
            loss = reference.mlm_loss(head(encoder(inputs, segments, mask)), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

        step_s = median_seconds(mlm_step, REPEATS, WARMUP)
        figures["masked-LM step (64 pairs of length 12, notebook's encoder)"] = (
            f"{step_s * 1e3:.1f} ms"
        )
        figures |= hidden_checks_figure(Path(__file__).with_name("checks.py"), reference, 5)
        return figures


if __name__ == "__main__":
    for key, value in bench().items():
        print(f"{key}: {value}")
