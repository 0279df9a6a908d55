"""Reference implementation of chapter 13 (language representations): the grading oracle.

Never shipped to students. Byte-pair encoding, a vocabulary with special tokens, Mikolov's
subsampling, skip-gram pairs and the noise distribution, skip-gram with negative sampling
(the loss written from logits without ``F.logsigmoid`` or a library binary cross-entropy),
cosine similarities, nearest neighbours and analogies, BERT's masking rule, packing of text
pairs, a small encoder built from chapter 06's block, the masked-LM loss, a [CLS] classifier
and one fine-tuning step.

Conventions (the notebook states them): special tokens ``<pad> <unk> <cls> <sep> <mask>`` at
indices 0 to 4; a pair is packed as ``<cls> a <sep> b <sep>``; masks are True where a position
is a real token (chapter 06's convention: True where a query may attend).

Two copies of the reference, by rule: this module (the grading oracle that writes the expected
data) and the master's solution blocks (what the released solution notebook runs) are kept as
independent oracles, neither generated from the other; ``tests/test_check_coverage.py`` runs
every check's exercise on both and compares them with the kit's comparison rule.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

PAD, UNK, CLS, SEP, MASK = 0, 1, 2, 3, 4
SPECIALS = ("<pad>", "<unk>", "<cls>", "<sep>", "<mask>")
NUM_SPECIAL = len(SPECIALS)
IGNORE = -100


# ------------------------------------------------------------------------ byte-pair encoding
def _merge_symbols(symbols: list[str], pair: tuple[str, str]) -> list[str]:
    """Replaces every occurrence of ``pair`` in ``symbols``, scanning left to right."""
    merged: list[str] = []
    i = 0
    while i < len(symbols):
        if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == pair:
            merged.append(symbols[i] + symbols[i + 1])
            i += 2
        else:
            merged.append(symbols[i])
            i += 1
    return merged


class BytePairEncoding:
    """Sennrich et al.'s byte-pair encoding on characters (no end-of-word marker).

    ``fit(words, num_merges)`` learns up to ``num_merges`` merges from a list of words (a word
    repeated counts once per repetition): each merge joins the most frequent adjacent pair of
    symbols, ties broken by the lexicographically smallest pair ``(left, right)``; it stops
    early when no word has two symbols left. ``merges`` lists them in order.
    ``encode(word)`` starts from the characters and applies the merges in order;
    ``decode(tokens)`` concatenates.
    """

    def __init__(self) -> None:
        self.merges: list[tuple[str, str]] = []

    def fit(self, words: Sequence[str], num_merges: int) -> BytePairEncoding:
        frequencies = Counter(words)
        symbols = {word: list(word) for word in frequencies}
        self.merges = []
        for _ in range(num_merges):
            pairs: Counter[tuple[str, str]] = Counter()
            for word, count in frequencies.items():
                parts = symbols[word]
                for left, right in zip(parts, parts[1:]):
                    pairs[(left, right)] += count
            if not pairs:
                break
            best = min(pairs, key=lambda pair: (-pairs[pair], pair))
            self.merges.append(best)
            for word in symbols:
                symbols[word] = _merge_symbols(symbols[word], best)
        return self

    def encode(self, word: str) -> list[str]:
        symbols = list(word)
        for pair in self.merges:
            symbols = _merge_symbols(symbols, pair)
        return symbols

    def decode(self, tokens: Sequence[str]) -> str:
        return "".join(tokens)


# ----------------------------------------------------------------------- vocabulary
def build_vocab(tokens: Sequence[str], min_count: int = 1) -> tuple[list[str], torch.Tensor]:
    """(itos, counts): the five specials, then every token seen at least ``min_count`` times,
    most frequent first, ties in alphabetical order. counts (V,) int64: a word's count, 0 for
    the specials except ``<unk>``, which counts the tokens left out."""
    frequencies = Counter(tokens)
    kept = sorted(
        (word for word, count in frequencies.items() if count >= min_count),
        key=lambda word: (-frequencies[word], word),
    )
    dropped = sum(count for count in frequencies.values() if count < min_count)
    itos = list(SPECIALS) + kept
    counts = [0] * NUM_SPECIAL + [frequencies[word] for word in kept]
    counts[UNK] = dropped
    return itos, torch.tensor(counts, dtype=torch.int64)


def subsample_probability(counts: torch.Tensor, total: int, t: float = 1e-4) -> torch.Tensor:
    """Mikolov's probability of discarding an occurrence: max(0, 1 - sqrt(t / f)), with
    f = count / total. counts (V,) -> (V,) float64; 0 where the count is 0."""
    frequency = counts.to(torch.float64) / total
    keep = torch.sqrt(t / frequency.clamp_min(1e-300))
    discard = (1.0 - keep).clamp_min(0.0)
    return torch.where(counts > 0, discard, torch.zeros_like(discard))


# ------------------------------------------------------------------------------ skip-gram
def skipgram_pairs(sequence: torch.Tensor, window: int) -> torch.Tensor:
    """(P, 2) int64 rows (centre, context): for each position i in order, each j with
    0 < |i - j| <= window inside the sequence, in increasing j."""
    length = sequence.shape[0]
    rows = [
        (int(sequence[i]), int(sequence[j]))
        for i in range(length)
        for j in range(max(0, i - window), min(length, i + window + 1))
        if j != i
    ]
    return torch.tensor(rows, dtype=torch.int64).reshape(-1, 2)


def negative_sampling_distribution(counts: torch.Tensor, power: float = 0.75) -> torch.Tensor:
    """Noise distribution (V,) float64: counts ** power, normalised to sum 1."""
    weights = counts.to(torch.float64) ** power
    weights = torch.where(counts > 0, weights, torch.zeros_like(weights))
    return weights / weights.sum()


def _neg_log_sigmoid(x: torch.Tensor) -> torch.Tensor:
    """-log(sigmoid(x)) = log(1 + exp(-x)), exact for every finite x: logaddexp(0, -x)."""
    return torch.logaddexp(torch.zeros_like(x), -x)


class SkipGramNS(nn.Module):
    """Skip-gram with negative sampling: centre vectors v (``center``) and context vectors u
    (``context``), two separate ``nn.Embedding(vocab_size, dim)`` tables."""

    def __init__(self, vocab_size: int, dim: int):
        super().__init__()
        self.center = nn.Embedding(vocab_size, dim)
        self.context = nn.Embedding(vocab_size, dim)
        with torch.no_grad():
            self.center.weight.uniform_(-0.5 / dim, 0.5 / dim)
            self.context.weight.zero_()

    def loss(
        self, center: torch.Tensor, context: torch.Tensor, negatives: torch.Tensor
    ) -> torch.Tensor:
        """center (B,), context (B,), negatives (B, K) int64 -> 0-dim mean over the batch of
        -log sigmoid(u_o . v_c) - sum_k log sigmoid(-u_k . v_c)."""
        v = self.center.weight[center]  # (B, D)
        u_positive = self.context.weight[context]  # (B, D)
        u_negative = self.context.weight[negatives]  # (B, K, D)
        positive = (u_positive * v).sum(dim=-1)
        negative = (u_negative * v.unsqueeze(1)).sum(dim=-1)
        per_example = _neg_log_sigmoid(positive) + _neg_log_sigmoid(-negative).sum(dim=-1)
        return per_example.mean()


# -------------------------------------------------------------------- similarity, analogy
def cosine_similarity_matrix(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a (M, D), b (N, D) -> (M, N) cosines of every row of a with every row of b."""
    return (a / a.norm(dim=1, keepdim=True)) @ (b / b.norm(dim=1, keepdim=True)).T


class WordVectors:
    """Word vectors (V, D) and their words (V,) for nearest neighbours and analogies."""

    def __init__(self, vectors: torch.Tensor, words: Sequence[str]):
        self.vectors = vectors
        self.words = list(words)
        self.index = {word: i for i, word in enumerate(self.words)}

    def _ranked(self, query: torch.Tensor, excluded: list[int]) -> list[int]:
        sims = cosine_similarity_matrix(query.reshape(1, -1), self.vectors)[0].clone()
        sims[excluded] = -float("inf")
        order = sorted(range(len(self.words)), key=lambda i: (-float(sims[i]), i))
        return [i for i in order if i not in excluded]

    def nearest(self, word: str, k: int) -> list[str]:
        """The k words most cosine-similar to ``word``, most similar first, not the word."""
        i = self.index[word]
        return [self.words[j] for j in self._ranked(self.vectors[i], [i])[:k]]

    def analogy(self, a: str, b: str, c: str) -> str:
        """d with the largest cosine to unit(b) - unit(a) + unit(c), among the words other
        than a, b and c ("a is to b as c is to d")."""
        unit = self.vectors / self.vectors.norm(dim=1, keepdim=True)
        ia, ib, ic = self.index[a], self.index[b], self.index[c]
        target = unit[ib] - unit[ia] + unit[ic]
        return self.words[self._ranked(target, [ia, ib, ic])[0]]


# ---------------------------------------------------------------------------------- BERT
def mask_tokens(
    ids: torch.Tensor, generator: torch.Generator, vocab_size: int, mask_prob: float = 0.15
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's masking rule. ids (N, L) int64 -> (inputs, labels), both (N, L) int64.

    Draws, in this order, each of the full shape of ids: ``torch.rand`` (selection:
    < mask_prob, specials never), ``torch.rand`` (action: < 0.8 <mask>, < 0.9 a random
    token, else kept), ``torch.randint(NUM_SPECIAL, vocab_size)`` (the random tokens).
    labels hold the original id at selected positions, -100 elsewhere.
    """
    selection = torch.rand(ids.shape, generator=generator)
    action = torch.rand(ids.shape, generator=generator)
    random_tokens = torch.randint(NUM_SPECIAL, vocab_size, ids.shape, generator=generator)
    selected = (selection < mask_prob) & (ids >= NUM_SPECIAL)
    inputs = torch.where(selected & (action < 0.8), torch.full_like(ids, MASK), ids)
    replace = selected & (action >= 0.8) & (action < 0.9)
    inputs = torch.where(replace, random_tokens, inputs)
    labels = torch.where(selected, ids, torch.full_like(ids, IGNORE))
    return inputs, labels


def _truncate_pair(a: list[int], b: list[int], budget: int) -> tuple[list[int], list[int]]:
    a, b = list(a), list(b)
    while len(a) + len(b) > budget:
        if len(a) > len(b):
            a.pop()
        else:
            b.pop()
    return a, b


def pack_pairs(
    pairs: Sequence[tuple[Sequence[int], Sequence[int]]], max_len: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Packs each (a, b) of token ids as <cls> a <sep> b <sep>, padded to max_len.

    Truncation: while the pair is too long, drop the last token of the longer side (of b when
    they are equally long). Returns input_ids (N, max_len) int64, segment_ids (N, max_len)
    int64 (0 for <cls>, a and the first <sep>; 1 for b and the second <sep>; 0 on padding)
    and attention_mask (N, max_len) bool (True on real tokens).
    """
    n = len(pairs)
    input_ids = torch.full((n, max_len), PAD, dtype=torch.int64)
    segment_ids = torch.zeros(n, max_len, dtype=torch.int64)
    attention_mask = torch.zeros(n, max_len, dtype=torch.bool)
    for row, (a, b) in enumerate(pairs):
        a, b = _truncate_pair(list(a), list(b), max_len - 3)
        tokens = [CLS, *a, SEP, *b, SEP]
        input_ids[row, : len(tokens)] = torch.tensor(tokens, dtype=torch.int64)
        segment_ids[row, len(a) + 2 : len(tokens)] = 1
        attention_mask[row, : len(tokens)] = True
    return input_ids, segment_ids, attention_mask


class TransformerEncoderBlock(nn.Module):
    """Chapter 06's post-norm encoder block, here as PyTorch's own layer (equal in eval mode),
    with chapter 06's mask convention: mask True where a query may attend."""

    def __init__(self, d_model: int, num_heads: int, dim_feedforward: int, dropout: float = 0.0):
        super().__init__()
        self.layer = nn.TransformerEncoderLayer(
            d_model, num_heads, dim_feedforward, dropout, batch_first=True
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if mask is None:
            return self.layer(x)
        n, length, _ = x.shape
        heads = self.layer.self_attn.num_heads
        allowed = torch.broadcast_to(mask, (n, heads, length, length))
        return self.layer(x, src_mask=~allowed.reshape(n * heads, length, length))


class Encoder(nn.Module):
    """A small BERT: token + segment + position embeddings, then num_layers blocks."""

    def __init__(
        self,
        vocab_size: int,
        d_model: int,
        num_heads: int,
        dim_feedforward: int,
        num_layers: int,
        max_len: int,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.d_model = d_model
        self.token_embedding = nn.Embedding(vocab_size, d_model)
        self.segment_embedding = nn.Embedding(2, d_model)
        self.position_embedding = nn.Embedding(max_len, d_model)
        self.blocks = nn.ModuleList(
            TransformerEncoderBlock(d_model, num_heads, dim_feedforward, dropout)
            for _ in range(num_layers)
        )

    def forward(
        self, input_ids: torch.Tensor, segment_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> torch.Tensor:
        """(N, L) ids, segments, bool mask -> (N, L, d_model)."""
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        h = (
            self.token_embedding(input_ids)
            + self.segment_embedding(segment_ids)
            + self.position_embedding(positions)
        )
        mask = attention_mask[:, None, None, :]
        for block in self.blocks:
            h = block(h, mask)
        return h


def mlm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """logits (N, L, V), labels (N, L) (-100 where not predicted) -> 0-dim mean cross-entropy
    over the labelled positions."""
    return F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=IGNORE
    )


class PairClassifier(nn.Module):
    """encoder, then a linear head on the output at position 0 (<cls>)."""

    def __init__(self, encoder: nn.Module, d_model: int, num_classes: int = 2):
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(d_model, num_classes)

    def forward(
        self, input_ids: torch.Tensor, segment_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> torch.Tensor:
        """-> logits (N, num_classes)."""
        return self.head(self.encoder(input_ids, segment_ids, attention_mask)[:, 0])


def fine_tune_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    labels: torch.Tensor,
) -> float:
    """One step: train mode, cross-entropy of model(*batch) against labels (N,), backward,
    optimizer step; returns the loss before the step as a float."""
    model.train()
    optimizer.zero_grad()
    loss = F.cross_entropy(model(*batch), labels)
    loss.backward()
    optimizer.step()
    return loss.item()
