"""Hidden checks of chapter 13: byte-pair encoding, the vocabulary and subsampling, skip-gram
pairs and the noise distribution, skip-gram with negative sampling, cosine similarity with
nearest neighbours and analogies, BERT's masking rule, pair packing, the encoder, the masked-LM
loss, the [CLS] classifier and the fine-tuning step.

Never shipped to students. Text-valued answers (merges, tokens, vocabularies, neighbours) are
recorded as int64 tensors the kit can compare: a string becomes the row of its character
codes padded with -1 (:func:`strings_tensor`), a word of a known list its index.

Isolation. ``encode`` is graded with merges the check installs in the documented attribute
``merges`` (not with the student's own ``fit``); ``WordVectors`` runs with a trusted
``cosine_similarity_matrix``; ``Encoder`` is built with the grader's probe block in place of
``TransformerEncoderBlock`` (same constructor and call); ``PairClassifier`` gets a probe
encoder and ``fine_tune_step`` a probe model whose output depends on its train/eval mode. A
mistake in one function therefore costs only that function's items.

Design facts: the float32 skip-gram check uses dot products of about +-50, where
``sigmoid(50)`` rounds to 1 in float32 (so ``log(1 - sigmoid(x))`` is -inf) but a loss written
from the logits is finite; no dot product is exactly 0, where a clamp/abs-based stable form has
a wrong autograd gradient. ``mask_tokens`` follows a documented draw order, so its outputs are
exact. Random word vectors have no ties, and with them the three query words are almost always
the best answers to an analogy, so an implementation that does not exclude them fails.
"""

from __future__ import annotations

import copy
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
    substituted,
    uniform,
)

# The skip-gram loss is written from the logits: no library log-sigmoid, softplus or binary
# cross-entropy. (F.cross_entropy stays allowed for the masked-LM loss and fine-tuning.)
FORBIDDEN = (
    "torch.nn.functional.logsigmoid",
    "torch.nn.functional.softplus",
    "torch.nn.functional.binary_cross_entropy",
    "torch.nn.functional.binary_cross_entropy_with_logits",
    "torch.nn.LogSigmoid",
    "torch.nn.Softplus",
    "torch.nn.BCELoss",
    "torch.nn.BCEWithLogitsLoss",
    "torch.nn.modules.activation.LogSigmoid",
    "torch.nn.modules.activation.Softplus",
    "torch.nn.modules.loss.BCELoss",
    "torch.nn.modules.loss.BCEWithLogitsLoss",
    # the same kernels reached through torch.ops (all of torch.ops is not forbidden: the
    # optimizers of the fine-tuning step call torch.ops.profiler)
    "torch.ops.aten.log_sigmoid",
    "torch.ops.aten.log_sigmoid_forward",
    "torch.ops.aten.softplus",
    "torch.ops.aten.binary_cross_entropy",
    "torch.ops.aten.binary_cross_entropy_with_logits",
)

F64 = torch.float64
NUM_SPECIAL = 5
SPECIALS = ("<pad>", "<unk>", "<cls>", "<sep>", "<mask>")

GRADIENT_HINT = (
    "Autograd computes this gradient from your forward computation: if the value items "
    "pass, look for .detach(), .data, torch.no_grad(), .item() or a tensor rebuilt with "
    "torch.tensor(...) on the way from {what} to the result."
)


def gradient_output(
    name: str, what: str, needs: tuple[str, ...], rtol: float = 1e-7, atol: float = 1e-7
) -> Output:
    """A half-point gradient item whose hint points at a broken path from ``what``."""
    hint = GRADIENT_HINT.format(what=what)
    return Output(name, points=0.5, rtol=rtol, atol=atol, needs=needs, hint=hint)


# ------------------------------------------------------------------- strings as tensors
def strings_tensor(strings: Any, width: int, what: str) -> torch.Tensor:
    """(n, width) int64: each string's character codes, padded with -1."""
    rows = []
    for value in strings:
        if not isinstance(value, str):
            raise TypeError(f"{what} holds a {type(value).__name__} ({value!r}); expected str")
        codes = [ord(ch) for ch in value][:width]
        rows.append(codes + [-1] * (width - len(codes)) + [len(value)])
    return torch.tensor(rows, dtype=torch.int64).reshape(len(rows), width + 1)


def token_lists_tensor(token_lists: list[Any], width: int, what: str) -> torch.Tensor:
    """The tokens of several words, one row per token, a row of -2 after each word."""
    rows = []
    for tokens in token_lists:
        if not isinstance(tokens, (list, tuple)):
            raise TypeError(f"{what} returned a {type(tokens).__name__}; expected a list of str")
        rows.append(strings_tensor(tokens, width, what))
        rows.append(torch.full((1, width + 1), -2, dtype=torch.int64))
    return torch.cat(rows)


def indices_of(answers: list[Any], words: list[str], what: str) -> torch.Tensor:
    """int64 indices of the answers in ``words`` (-1 for a word that is not there)."""
    found = []
    for answer in answers:
        if not isinstance(answer, str):
            raise TypeError(f"{what} returned a {type(answer).__name__}; expected a str")
        found.append(words.index(answer) if answer in words else -1)
    return torch.tensor(found, dtype=torch.int64)


def record_joined_grads(out: Any, name: str, params: list[torch.Tensor]) -> None:
    """Records the flattened gradients of ``params``, joined, once every one has arrived."""
    grads = [p.grad for p in params]
    if all(g is not None for g in grads):
        out[name] = torch.cat([g.flatten() for g in grads if g is not None])


def random_words(rng: torch.Generator, n: int, alphabet: str, longest: int) -> list[str]:
    lengths = randint(rng, longest, n) + 1
    letters = randint(rng, len(alphabet), n, longest)
    return [
        "".join(alphabet[int(k)] for k in row[: int(length)])
        for row, length in zip(letters, lengths)
    ]


# ---------------------------------------------------------------- q1: BytePairEncoding
def exercise_bpe(api: Any, case: dict[str, Any], rng: torch.Generator, out: Any) -> None:
    if "words" in case:
        words = list(case["words"])
    else:
        words = random_words(rng, case["n"], case["alphabet"], case["longest"])
    width = max([len(w) for w in words] + [len(w) for w in case["encode"]] + [1])
    bpe = api.BytePairEncoding()
    with out.part("merges"):
        given = list(words)
        bpe.fit(["zz", "zy", "zz", "yy"], 2)  # a first fit on other words
        bpe.fit(given, case["num_merges"])
        if given != words:
            out.fail("merges", "fit changed the list of words it was given: work on a copy")
        merges = list(bpe.merges)
        if not all(isinstance(m, (tuple, list)) and len(m) == 2 for m in merges):
            raise TypeError("merges must be a list of (left, right) pairs of strings")
        pieces = [piece for pair in merges for piece in pair]
        out["merges"] = strings_tensor(pieces, width, "merges").reshape(len(merges), 2, width + 1)
    with out.part("encode"):
        bpe.merges = [tuple(pair) for pair in case["given_merges"]]
        for word in case["encode"]:
            bpe.encode(word)
        encoded = [bpe.encode(word) for word in case["encode"]]
        out["encode"] = token_lists_tensor(encoded, width, "encode")
    with out.part("decode"):
        for tokens in reversed(case["decode"]):
            bpe.decode(list(tokens))
        decoded = [bpe.decode(list(tokens)) for tokens in case["decode"]]
        out["decode"] = strings_tensor(decoded, width + 8, "decode")


BPE_CASES = (
    {
        "words": ("low", "low", "lower", "newest", "widest", "low"),
        "num_merges": 8,
        "given_merges": (("l", "o"), ("lo", "w"), ("e", "s"), ("es", "t")),
        "encode": ("lowest", "slow", "newer", "x"),
        "decode": (("lo", "w"), ("n", "ew", "est")),
    },
    # every pair appears once: each merge is a tie, broken by the smallest pair
    {
        "words": ("dc", "ab", "ba", "cd", "ca"),
        "num_merges": 3,
        "given_merges": (("b", "c"), ("a", "b"), ("ab", "c")),
        "encode": ("abc", "bca", "cab"),
        "decode": (("a", "bc"), ("c", "a", "b")),
    },
    # one-character words only: no pair, no merge
    {
        "words": ("a", "b", "a", "c"),
        "num_merges": 4,
        "given_merges": (("a", "b"),),
        "encode": ("a", "", "ab", "zq"),
        "decode": (("a",), ()),
    },
    # overlapping pairs, replaced left to right
    {
        "words": ("aaaa", "aaa", "baaa", "aaaa"),
        "num_merges": 5,
        "given_merges": (("a", "a"), ("aa", "a"), ("b", "aa")),
        "encode": ("aaaaa", "baaaa", "aab"),
        "decode": (("aa", "aa", "a"), ("b",)),
    },
    # more merges asked than pairs exist
    {
        "words": ("xy", "xy"),
        "num_merges": 5,
        "given_merges": (("x", "y"), ("y", "x")),
        "encode": ("xyx", "yxy", "éx"),
        "decode": (("x", "y", "é"),),
    },
    {
        "n": 40,
        "alphabet": "abcde",
        "longest": 6,
        "num_merges": 12,
        "given_merges": (("a", "b"), ("c", "d"), ("ab", "cd"), ("e", "e"), ("b", "a")),
        "encode": ("abcd", "eeee", "babab", "f", "dcbaab"),
        "decode": (("ab", "cd", "e"), ("q",)),
    },
    {
        "n": 60,
        "alphabet": "etaoinshr",
        "longest": 8,
        "num_merges": 20,
        "given_merges": (("t", "h"), ("th", "e"), ("i", "n"), ("in", "g"), ("e", "r")),
        "encode": ("thethe", "singer", "tithe", "zzz"),
        "decode": (("th", "e", "r", "e"), ("in", "g")),
    },
    # a repeated word outweighs pairs that several distinct words share once each, from
    # the first merge on (few merges: the weighting does not depend on num_merges)
    {
        "words": ("xy", "ab", "xy", "ac", "ad", "xy", "ab"),
        "num_merges": 2,
        "given_merges": (("a", "d"), ("x", "y")),
        "encode": ("xyad", "dax"),
        "decode": (("xy", "a"),),
    },
)


# ------------------------------------------------- q2: build_vocab, subsample_probability
def vocab_tokens(rng: torch.Generator, case: dict[str, Any]) -> list[str]:
    """A token list with repeated counts (ties included) from a pool of short words."""
    pool = random_words(rng, case["pool"], "abcdefgh", 4)
    pool = list(dict.fromkeys(pool))  # distinct, in draw order
    counts = randint(rng, case["most"], len(pool)) + 1
    tokens = [word for word, count in zip(pool, counts.tolist()) for _ in range(count)]
    order = torch.randperm(len(tokens), generator=rng)
    return [tokens[int(i)] for i in order]


def exercise_vocabulary(api: Any, case: dict[str, Any], rng: torch.Generator, out: Any) -> None:
    tokens = vocab_tokens(rng, case)
    counts = randint(rng, case["most"] * 20, case["V"])
    counts[randint(rng, case["V"], 2)] = 0
    counts = counts.to(torch.int32 if case.get("int32") else torch.int64)
    out.watch(counts=counts)
    with out.part("itos", "counts"):
        given = list(tokens)
        api.build_vocab(["q", "r", "q"], min_count=1)
        itos, word_counts = api.build_vocab(given, min_count=case["min_count"])
        if given != tokens:
            out.fail("itos", "build_vocab changed the list of tokens it was given")
        out["itos"] = strings_tensor(list(itos), 8, "itos")
        out["counts"] = word_counts
    with out.part("discard"):
        api.subsample_probability(counts.flip(0), int(counts.sum()) + 3, t=0.3)
        out["discard"] = api.subsample_probability(
            counts, int(counts.sum()) + case["extra"], t=case["t"]
        )


VOCABULARY_CASES = (
    {"pool": 12, "most": 4, "min_count": 1, "V": 6, "t": 1e-4, "extra": 0},
    {"pool": 20, "most": 5, "min_count": 2, "V": 10, "t": 1e-2, "extra": 10},
    {"pool": 30, "most": 3, "min_count": 3, "V": 12, "t": 0.05, "extra": 0},
    {"pool": 8, "most": 2, "min_count": 5, "V": 5, "t": 0.2, "extra": 5, "int32": True},
    {"pool": 40, "most": 8, "min_count": 4, "V": 30, "t": 1e-3, "extra": 1000},
)


# --------------------------------- q3: skipgram_pairs, negative_sampling_distribution
def exercise_skipgram_data(api: Any, case: dict[str, Any], rng: torch.Generator, out: Any) -> None:
    sequence = randint(rng, case["V"], case["L"]) + NUM_SPECIAL
    counts = randint(rng, 50, case["V"]) * (uniform(rng, case["V"]) > -0.6)
    counts[0] = 0
    counts[-1] = max(int(counts[-1]), 1)
    out.watch(sequence=sequence, counts=counts)
    with out.part("pairs"):
        api.skipgram_pairs(sequence.flip(0), case["window"] + 1)
        out["pairs"] = api.skipgram_pairs(sequence, case["window"])
    with out.part("noise"):
        kwargs = {} if case["power"] is None else {"power": case["power"]}
        api.negative_sampling_distribution(counts.flip(0), **kwargs)
        out["noise"] = api.negative_sampling_distribution(counts, **kwargs)


SKIPGRAM_DATA_CASES = (
    {"L": 1, "window": 2, "V": 4, "power": None},
    {"L": 2, "window": 1, "V": 3, "power": 0.75},
    {"L": 5, "window": 2, "V": 6, "power": None},
    {"L": 4, "window": 6, "V": 5, "power": 0.5},
    {"L": 12, "window": 3, "V": 5, "power": 1.0},
    {"L": 9, "window": 1, "V": 20, "power": 0.0},
    {"L": 3, "window": 2, "V": 4, "power": 0.0},
)


# ------------------------------------------------------------------------ q4: SkipGramNS
def skipgram_tables(rng: torch.Generator, case: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The centre and context tables of a case. "saturated": dot products of about +-50
    (never exactly 0), in the dtype of the case."""
    v, d = case["V"], case["D"]
    if case.get("saturated"):
        signs = torch.where(uniform(rng, v) > 0, 1.0, -1.0).to(F64)
        center = 0.02 * randn(rng, v, d)
        context = 0.02 * randn(rng, v, d)
        center[:, 0] = 5.0
        context[:, 0] = 10.0 * signs
    else:
        center = case["scale"] * randn(rng, v, d)
        context = case["scale"] * randn(rng, v, d)
    dtype = torch.float32 if case.get("float32") else F64
    return {"center.weight": center.to(dtype), "context.weight": context.to(dtype)}


def exercise_skipgram(api: Any, case: dict[str, Any], rng: torch.Generator, out: Any) -> None:
    tables = skipgram_tables(rng, case)
    b, k, v = case["B"], case["K"], case["V"]
    center = randint(rng, v, b)
    context = randint(rng, v, b)
    negatives = randint(rng, v, b, k)
    if case.get("collide"):  # some noise words equal the true context word
        negatives[: b // 2, 0] = context[: b // 2]
        negatives[0, :] = context[0]
    out.watch(center=center, context=context, negatives=negatives)
    model = api.SkipGramNS(v, case["D"])
    assign_parameters(model, tables, {"center.weight": "(vocab_size, dim)"})
    params = [model.center.weight, model.context.weight]
    try:
        with out.part("loss", "grad_center", "grad_context"):
            model.loss(context, center, negatives.flip(0))
            loss = model.loss(center, context, negatives)
            out["loss"] = loss
            loss.backward()
    finally:
        record_grads(out, {"grad_center": params[0], "grad_context": params[1]})


SKIPGRAM_CASES = (
    {"V": 6, "D": 3, "B": 1, "K": 1, "scale": 1.0},
    {"V": 10, "D": 4, "B": 5, "K": 3, "scale": 0.8, "collide": True},
    {"V": 30, "D": 8, "B": 16, "K": 5, "scale": 0.5},
    {"V": 8, "D": 2, "B": 7, "K": 10, "scale": 2.0, "collide": True},
)
SKIPGRAM_FLOAT32_CASES = (
    {"V": 6, "D": 3, "B": 4, "K": 2, "saturated": True, "float32": True},
    {"V": 12, "D": 5, "B": 10, "K": 4, "saturated": True, "float32": True, "collide": True},
)

LOSS_HINT = (
    "Per example -log sigmoid(u_o . v_c) - sum over the K noise words of log sigmoid(-u_k . "
    "v_c), with v from self.center and u from self.context; the loss is the mean over the "
    "batch (a noise word equal to the context word is kept as a negative)."
)
STABLE_HINT = (
    "At dot products of +-50 in float32, sigmoid rounds to exactly 1 or 0: compute "
    "-log sigmoid(x) = log(1 + exp(-x)) from x (max(-x, 0) + log1p(exp(-|x|)), or "
    "torch.logaddexp(0, -x)), never log(sigmoid) or log(1 - sigmoid). If the float64 "
    "items of SkipGramNS fail too, fix those first."
)


# ----------------------------------------- q5: cosine_similarity_matrix, WordVectors
def _cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Trusted cosine similarity matrix."""
    return (a / a.norm(dim=1, keepdim=True)) @ (b / b.norm(dim=1, keepdim=True)).T


def exercise_word_vectors(api: Any, case: dict[str, Any], rng: torch.Generator, out: Any) -> None:
    v, d = case["V"], case["D"]
    vectors = randn(rng, v, d) * torch.exp(uniform(rng, v, 1, low=-1.5, high=1.5))
    a, b = randn(rng, case["M"], d) * 3, randn(rng, case["N"], d) * 0.2
    if case.get("noncontiguous"):
        a = noncontiguous(a)
    out.watch(vectors=vectors, a=a, b=b)
    words = [f"w{i}" for i in range(v)]
    queries = [words[int(i)] for i in randint(rng, v, case["queries"])]
    triples = [
        tuple(words[int(i)] for i in torch.randperm(v, generator=rng)[:3])
        for _ in range(case["queries"])
    ]
    with out.part("cosine"):
        api.cosine_similarity_matrix(b, a)
        out["cosine"] = api.cosine_similarity_matrix(a, b)
    with substituted(api, cosine_similarity_matrix=_cosine):
        table = api.WordVectors(vectors, list(words))
        with out.part("nearest"):
            for word in queries:
                table.nearest(word, 1)
            found: list[Any] = []
            for word in queries:
                answer = table.nearest(word, case["k"])
                if not isinstance(answer, (list, tuple)) or len(answer) != case["k"]:
                    raise TypeError(
                        f"nearest(word, {case['k']}) must return a list of "
                        f"{case['k']} words, got {answer!r:.80}"
                    )
                found.extend(answer)
            out["nearest"] = indices_of(found, words, "nearest")
        with out.part("analogy"):
            for first, second, third in triples:
                table.analogy(third, first, second)
            answers = [table.analogy(*triple) for triple in triples]
            out["analogy"] = indices_of(answers, words, "analogy")


WORD_VECTOR_CASES = (
    {"V": 5, "D": 3, "M": 1, "N": 1, "queries": 3, "k": 1},
    {"V": 12, "D": 4, "M": 3, "N": 5, "queries": 6, "k": 3},
    {"V": 40, "D": 8, "M": 7, "N": 4, "queries": 5, "k": 5, "noncontiguous": True},
    {"V": 25, "D": 2, "M": 2, "N": 9, "queries": 8, "k": 24},
)


# ---------------------------------------------------------------------- q6: mask_tokens
def bert_ids(rng: torch.Generator, n: int, length: int, vocab: int) -> torch.Tensor:
    """Rows <cls> a <sep> b <sep> <pad>..., with random ordinary ids and lengths."""
    ids = torch.full((n, length), 0, dtype=torch.int64)
    for row in range(n):
        used = int(randint(rng, length - 2, 1)) + 3
        tokens = randint(rng, vocab - NUM_SPECIAL, used) + NUM_SPECIAL
        tokens[0], tokens[used - 1] = 2, 3
        tokens[int(randint(rng, used - 2, 1)) + 1] = 3
        ids[row, :used] = tokens
    return ids


def exercise_mask_tokens(api: Any, case: dict[str, Any], rng: torch.Generator, out: Any) -> None:
    n, length, vocab = case["N"], case["L"], case["V"]
    if case.get("all_special"):
        ids = randint(rng, NUM_SPECIAL, n, length)
    else:
        ids = bert_ids(rng, n, length, vocab)
    seeds = randint(rng, 2**31 - 1, 2).tolist()
    out.watch(ids=ids)
    kwargs = {} if case["p"] is None else {"mask_prob": case["p"]}
    with out.part("inputs", "labels"):
        api.mask_tokens(ids.flip(1), torch.Generator().manual_seed(seeds[0]), vocab, **kwargs)
        inputs, labels = api.mask_tokens(
            ids, torch.Generator().manual_seed(seeds[1]), vocab, **kwargs
        )
        out["inputs"] = inputs
        out["labels"] = labels


MASK_CASES = (
    {"N": 2, "L": 8, "V": 12, "p": None},
    {"N": 4, "L": 10, "V": 30, "p": 0.5},
    {"N": 8, "L": 16, "V": 9, "p": 0.9},
    {"N": 6, "L": 10, "V": 20, "p": 1.0},
    {"N": 2, "L": 7, "V": 15, "p": 0.5, "all_special": True},
    {"N": 16, "L": 12, "V": 100, "p": 0.3},
)


# ----------------------------------------------------------------------- q7: pack_pairs
def exercise_pack(api: Any, case: dict[str, Any], rng: torch.Generator, out: Any) -> None:
    pairs = []
    for len_a, len_b in case["lengths"]:
        a = (randint(rng, 40, len_a) + NUM_SPECIAL).tolist()
        b = (randint(rng, 40, len_b) + NUM_SPECIAL).tolist()
        pairs.append((a, b))
    originals = copy.deepcopy(pairs)
    names = ("input_ids", "segment_ids", "attention_mask")
    with out.part(*names):
        api.pack_pairs([([7, 8], [9])], case["max_len"] + 2)
        packed = api.pack_pairs(pairs, case["max_len"])
        if [(list(a), list(b)) for a, b in pairs] != originals:
            for name in names:
                out.fail(name, "pack_pairs changed the lists it was given (truncate a copy)")
        for name, value in zip(names, packed):
            out[name] = value


PACK_CASES = (
    {"lengths": ((3, 1),), "max_len": 8},
    {"lengths": ((5, 2), (2, 5), (4, 4), (1, 1)), "max_len": 9},
    {"lengths": ((6, 6), (7, 3), (0, 2), (3, 0)), "max_len": 10},
    {"lengths": ((2, 2), (1, 4)), "max_len": 3},
    {"lengths": ((4, 3), (3, 3), (10, 1)), "max_len": 8},
    {"lengths": ((2, 3), (5, 5), (1, 9), (8, 8), (0, 0)), "max_len": 16},
)


# -------------------------------------------------------------------------- q8: Encoder
class _ProbeBlock(nn.Module):
    """The grader's block: tanh(x @ weight + mean of x over the keys the mask allows).
    Same constructor and call as TransformerEncoderBlock; mask broadcastable to (N, 1, L, L)."""

    def __init__(self, d_model: int, num_heads: int, dim_feedforward: int, dropout: float = 0.0):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(d_model, d_model))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        n, length, _ = x.shape
        if mask is None:
            allowed = torch.ones(n, length, length, dtype=x.dtype)
        else:
            allowed = torch.broadcast_to(mask, (n, 1, length, length))[:, 0].to(x.dtype)
        context = allowed @ x / allowed.sum(dim=-1, keepdim=True)
        return torch.tanh(x @ self.weight + context)


def encoder_inputs(
    rng: torch.Generator,
    n: int,
    length: int,
    vocab: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Packed-looking ids, segments and masks (N, L), with padding."""
    ids = bert_ids(rng, n, length, vocab)
    mask = ids != 0
    segments = torch.zeros_like(ids)
    for row in range(n):
        used = int(mask[row].sum())
        first_sep = int((ids[row, :used] == 3).nonzero()[0])
        segments[row, first_sep + 1 : used] = 1
    return ids, segments, mask


def exercise_encoder(api: Any, case: dict[str, Any], rng: torch.Generator, out: Any) -> None:
    vocab, d, layers, max_len = case["V"], case["d"], case["layers"], case["max_len"]
    values = {
        "token_embedding.weight": randn(rng, vocab, d),
        "segment_embedding.weight": randn(rng, 2, d),
        "position_embedding.weight": randn(rng, max_len, d),
        **{f"blocks.{i}.weight": randn(rng, d, d) / d**0.5 for i in range(layers)},
    }
    warm = encoder_inputs(rng, case["N"], case["L"], vocab)
    ids, segments, mask = encoder_inputs(rng, case["N"], case["L"], vocab)
    weights = randn(rng, case["N"], case["L"], d)
    out.watch(input_ids=ids, segment_ids=segments, attention_mask=mask)
    with substituted(api, TransformerEncoderBlock=_ProbeBlock):
        encoder = api.Encoder(vocab, d, 2, 4 * d, layers, max_len)
    assign_parameters(encoder, values, {"position_embedding.weight": "(max_len, d_model)"})
    tables = [
        encoder.token_embedding.weight,
        encoder.segment_embedding.weight,
        encoder.position_embedding.weight,
    ]
    blocks = [getattr(encoder.blocks, str(i)).weight for i in range(layers)]
    with out.part("h", "grad_embeddings", "grad_blocks"):
        with torch.no_grad():
            encoder(*warm)
        h = encoder(ids, segments, mask)
        out["h"] = h
        (h * weights).sum().backward()
    record_joined_grads(out, "grad_embeddings", tables)
    record_joined_grads(out, "grad_blocks", blocks)


ENCODER_CASES = (
    {"V": 10, "d": 4, "layers": 1, "max_len": 6, "N": 1, "L": 6},
    {"V": 15, "d": 6, "layers": 2, "max_len": 12, "N": 3, "L": 8},
    {"V": 20, "d": 8, "layers": 3, "max_len": 10, "N": 4, "L": 10},
)


# ------------------------------------------------------------------------- q8: mlm_loss
def exercise_mlm_loss(api: Any, case: dict[str, Any], rng: torch.Generator, out: Any) -> None:
    n, length, vocab = case["N"], case["L"], case["V"]
    logits = case["scale"] * randn(rng, n, length, vocab)
    labels = randint(rng, vocab, n, length)
    labels[uniform(rng, n, length, low=0.0, high=1.0) >= case["share"]] = -100
    labels.view(-1)[int(randint(rng, n * length, 1))] = int(randint(rng, vocab, 1))
    logits.requires_grad_(True)
    out.watch(logits=logits, labels=labels)
    with out.part("loss", "grad_logits"):
        api.mlm_loss(logits.detach().flip(1), labels)
        loss = api.mlm_loss(logits, labels)
        out["loss"] = loss
        loss.backward()
    record_grads(out, {"grad_logits": logits})


MLM_CASES = (
    {"N": 1, "L": 4, "V": 5, "scale": 1.0, "share": 0.0},
    {"N": 3, "L": 6, "V": 9, "scale": 2.0, "share": 0.3},
    {"N": 4, "L": 5, "V": 12, "scale": 1.0, "share": 1.0},
    {"N": 8, "L": 10, "V": 30, "scale": 20.0, "share": 0.15},
)


# ----------------------------------------------- q9: PairClassifier, fine_tune_step
class _ProbeEncoder(nn.Module):
    """The grader's encoder: h = tanh(table[ids] + position * shift + segment * step), with
    its own parameters; the mask is ignored."""

    def __init__(self, rng: torch.Generator, vocab: int, d: int):
        super().__init__()
        self.table = nn.Parameter(randn(rng, vocab, d))
        self.shift = nn.Parameter(randn(rng, d))
        self.step = nn.Parameter(randn(rng, d))

    def forward(
        self, input_ids: torch.Tensor, segment_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> torch.Tensor:
        positions = torch.arange(input_ids.shape[1], dtype=F64)[None, :, None]
        return torch.tanh(
            self.table[input_ids]
            + 0.3 * positions * self.shift
            + segment_ids[..., None].to(F64) * self.step
        )


class _ModeModel(nn.Module):
    """The grader's model for fine_tune_step: logits = features @ weight + bias, plus 1 on
    class 0 in training mode; features are one row per example of a fixed table."""

    def __init__(self, rng: torch.Generator, vocab: int, classes: int):
        super().__init__()
        self.weight = nn.Parameter(randn(rng, vocab, classes))
        self.bias = nn.Parameter(randn(rng, classes))

    def forward(
        self, input_ids: torch.Tensor, segment_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> torch.Tensor:
        counts = torch.nn.functional.one_hot(input_ids, self.weight.shape[0]).to(F64)
        features = (counts * attention_mask[..., None].to(F64)).sum(dim=1)
        logits = features @ self.weight + self.bias
        if self.training:
            logits = logits + torch.nn.functional.one_hot(
                torch.zeros(len(logits), dtype=torch.int64), logits.shape[1]
            ).to(F64)
        return logits


class _ProbeSGD:
    """The grader's optimizer: plain SGD with torch.optim's zero_grad() and step() (building a
    torch.optim optimizer costs about 3 s of lazy imports in a fresh process)."""

    def __init__(self, params: list[torch.Tensor], lr: float):
        self.params, self.lr = params, lr

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        for p in self.params:
            if p.grad is not None:
                p -= self.lr * p.grad


def exercise_fine_tuning(api: Any, case: dict[str, Any], rng: torch.Generator, out: Any) -> None:
    n, length, vocab, d, classes = case["N"], case["L"], case["V"], case["d"], case["C"]
    ids, segments, mask = encoder_inputs(rng, n, length, vocab)
    labels = randint(rng, classes, n)
    weights = randn(rng, n, classes)
    out.watch(input_ids=ids, segment_ids=segments, attention_mask=mask, labels=labels)
    encoder = _ProbeEncoder(rng, vocab, d)
    head = {"head.weight": randn(rng, classes, d), "head.bias": randn(rng, classes)}
    with out.part("logits", "grad_head", "grad_encoder"):
        model = api.PairClassifier(encoder, d, classes)
        assign_parameters(model, head, {"head.weight": "(num_classes, d_model)"})
        with torch.no_grad():
            model(ids.flip(0), segments.flip(0), mask.flip(0))
        logits = model(ids, segments, mask)
        out["logits"] = logits
        (logits * weights).sum().backward()
        record_joined_grads(out, "grad_head", [model.head.weight, model.head.bias])
        record_joined_grads(out, "grad_encoder", list(encoder.parameters()))
    probe = _ModeModel(rng, vocab, classes)
    probe.eval()
    for p in probe.parameters():  # stale gradients that a step must clear first
        p.grad = randn(rng, *p.shape)
    optimizer = _ProbeSGD(list(probe.parameters()), case["lr"])
    with out.part("step_losses", "params_after_steps"):
        losses = []
        for batch in ((ids.flip(0), segments.flip(0), mask.flip(0)), (ids, segments, mask)):
            value = api.fine_tune_step(probe, optimizer, batch, labels)
            if isinstance(value, bool) or not isinstance(value, float):
                raise TypeError(
                    f"fine_tune_step returned a {type(value).__name__}; "
                    f"return the loss as a Python float (loss.item())"
                )
            losses.append(value)
        out["step_losses"] = torch.tensor(losses, dtype=F64)
        out["params_after_steps"] = torch.cat(
            [probe.weight.detach().flatten(), probe.bias.detach().flatten()]
        )


FINE_TUNING_CASES = (
    {"N": 1, "L": 5, "V": 8, "d": 3, "C": 2, "lr": 0.5},
    {"N": 4, "L": 8, "V": 12, "d": 5, "C": 3, "lr": 0.1},
    {"N": 6, "L": 10, "V": 20, "d": 4, "C": 2, "lr": 1.0},
)


CHECKS = [
    Check(
        name="BytePairEncoding",
        question="q1",
        uses=("BytePairEncoding",),
        exercise=exercise_bpe,
        cases=BPE_CASES,
        outputs=(
            Output(
                "merges",
                points=1.5,
                hint="Count adjacent pairs over all words, each word weighted by how often it "
                "appears; merge the most frequent pair, on a tie the smallest (left, right) "
                "tuple; replace it left to right in every word before counting again; stop "
                "when no pair is left; a second fit starts from an empty merges list.",
            ),
            Output(
                "encode",
                hint="Start from the characters and apply self.merges in the order they were "
                "learned, each over the whole word left to right (the grader sets merges "
                "itself); an unseen character stays a one-character token.",
            ),
            Output(
                "decode",
                points=0.5,
                hint="decode concatenates the tokens, with nothing between them.",
            ),
        ),
    ),
    Check(
        name="vocabulary",
        question="q2",
        uses=("build_vocab", "subsample_probability"),
        exercise=exercise_vocabulary,
        cases=VOCABULARY_CASES,
        outputs=(
            Output(
                "itos",
                hint="The five specials in the order <pad> <unk> <cls> <sep> <mask>, then "
                "the tokens seen at least min_count times (>=, not >), most frequent first, "
                "ties in alphabetical order.",
            ),
            Output(
                "counts",
                points=0.5,
                hint="An int64 tensor aligned with itos: each word's count, 0 for the "
                "specials except <unk>, which counts the occurrences of the words left out.",
            ),
            Output(
                "discard",
                atol=1e-12,
                hint="max(0, 1 - sqrt(t / f)) with f = count / total (not the count itself), "
                "as float64, and exactly 0 where the count is 0: it is the probability of "
                "discarding, not of keeping.",
            ),
        ),
    ),
    Check(
        name="skip-gram data",
        question="q3",
        uses=("skipgram_pairs", "negative_sampling_distribution"),
        exercise=exercise_skipgram_data,
        cases=SKIPGRAM_DATA_CASES,
        outputs=(
            Output(
                "pairs",
                hint="For each centre position i in order, the positions j = i - window .. i "
                "+ window inside the sentence (no wrap-around), j != i, in increasing j; "
                "an int64 tensor (P, 2), (0, 2) when there is no pair.",
            ),
            Output(
                "noise",
                atol=1e-12,
                hint="counts ** power (use the power argument, default 0.75) divided by "
                "their sum, as float64; a count of 0 gets probability 0.",
            ),
        ),
    ),
    Check(
        name="SkipGramNS",
        question="q4",
        uses=("SkipGramNS",),
        exercise=exercise_skipgram,
        cases=SKIPGRAM_CASES,
        outputs=(
            Output("loss", atol=1e-10, hint=LOSS_HINT),
            gradient_output("grad_center", "self.center", ("loss",), rtol=1e-6, atol=1e-10),
            gradient_output("grad_context", "self.context", ("loss",), rtol=1e-6, atol=1e-10),
        ),
    ),
    Check(
        name="SkipGramNS in float32",
        question="q4",
        uses=("SkipGramNS",),
        exercise=exercise_skipgram,
        cases=SKIPGRAM_FLOAT32_CASES,
        outputs=(
            Output("loss", points=0.5, rtol=1e-5, atol=1e-4, hint=STABLE_HINT),
            Output("grad_center", points=0.25, rtol=1e-4, atol=1e-5, hint=STABLE_HINT),
            Output("grad_context", points=0.25, rtol=1e-4, atol=1e-5, hint=STABLE_HINT),
        ),
    ),
    Check(
        name="word vectors",
        question="q5",
        uses=("cosine_similarity_matrix", "WordVectors"),
        exercise=exercise_word_vectors,
        cases=WORD_VECTOR_CASES,
        outputs=(
            Output(
                "cosine",
                atol=1e-12,
                hint="(M, N) = a_i . b_j / (||a_i|| ||b_j||): normalise the rows of both a and b.",
            ),
            Output(
                "nearest",
                hint="The k words with the largest cosine similarity (not dot product), most "
                "similar first, never the query word itself.",
            ),
            Output(
                "analogy",
                hint="The word closest (cosine) to unit(b) - unit(a) + unit(c), normalising "
                "each of the three vectors first, among the words other than a, b and c.",
            ),
        ),
    ),
    Check(
        name="mask_tokens",
        question="q6",
        uses=("mask_tokens",),
        exercise=exercise_mask_tokens,
        cases=MASK_CASES,
        # the masking rate is what the cases vary on purpose; N, L and V only size them, and
        # the all-special case passes every bug that never selects a special token
        pattern_axes=("p",),
        outputs=(
            Output(
                "inputs",
                hint="Three draws in the documented order (rand: selection, rand: action, "
                "randint(NUM_SPECIAL, vocab_size): random tokens), all of the full shape; "
                "specials never selected; action < 0.8 gives <mask>, 0.8 <= action < 0.9 "
                "the random token, otherwise the token is kept.",
            ),
            Output(
                "labels",
                hint="The original id at the selected positions (also where the token was "
                "kept or replaced), -100 everywhere else; specials are never selected.",
            ),
        ),
    ),
    Check(
        name="pack_pairs",
        question="q7",
        uses=("pack_pairs",),
        exercise=exercise_pack,
        cases=PACK_CASES,
        outputs=(
            Output(
                "input_ids",
                hint="<cls> a <sep> b <sep> then <pad> up to max_len; while too long, drop "
                "the last token of the longer text, of b when they are equally long.",
            ),
            Output(
                "segment_ids",
                points=0.5,
                hint="0 for <cls>, a and the first <sep>; 1 for b and the second <sep>; 0 on "
                "the padding.",
            ),
            Output(
                "attention_mask",
                points=0.5,
                hint="A bool tensor, True on the real tokens (up to the second <sep>), False "
                "on the padding.",
            ),
        ),
    ),
    Check(
        name="Encoder",
        question="q8",
        uses=("Encoder",),
        replaces=("TransformerEncoderBlock",),
        exercise=exercise_encoder,
        cases=ENCODER_CASES,
        outputs=(
            Output(
                "h",
                hint="token_embedding(ids) + segment_embedding(segments) + "
                "position_embedding(0 .. L-1), then every block in order, each called as "
                "block(h, attention_mask[:, None, None, :]).",
            ),
            gradient_output("grad_embeddings", "the three embedding tables", ("h",)),
            gradient_output("grad_blocks", "the blocks", ("h",)),
        ),
    ),
    Check(
        name="mlm_loss",
        question="q8",
        uses=("mlm_loss",),
        exercise=exercise_mlm_loss,
        cases=MLM_CASES,
        outputs=(
            Output(
                "loss",
                atol=1e-10,
                hint="The mean, over the labelled positions only (label != -100), of the "
                "cross-entropy of each position's logits over the vocabulary.",
            ),
            gradient_output("grad_logits", "the logits", ("loss",), atol=1e-10),
        ),
    ),
    Check(
        name="fine-tuning",
        question="q9",
        uses=("PairClassifier", "fine_tune_step"),
        exercise=exercise_fine_tuning,
        cases=FINE_TUNING_CASES,
        timeout_s=20.0,
        outputs=(
            Output(
                "logits",
                hint="head (nn.Linear(d_model, num_classes), stored as self.head) applied to "
                "the encoder's output at position 0 only, h[:, 0].",
            ),
            gradient_output("grad_head", "the head", ("logits",)),
            gradient_output("grad_encoder", "the encoder (stored as self.encoder)", ("logits",)),
            Output(
                "step_losses",
                points=0.5,
                hint="model.train() first (the grader's model is in eval mode and answers "
                "differently in training mode), then the cross-entropy of model(*batch) "
                "against labels, returned as a float computed before optimizer.step().",
            ),
            Output(
                "params_after_steps",
                hint="Each step: model.train(), optimizer.zero_grad() (the parameters arrive "
                "with stale gradients), loss.backward(), optimizer.step().",
            ),
        ),
    ),
]
