"""Chapter 13: the reference agrees with PyTorch where PyTorch has the same computation
(``F.logsigmoid`` and ``F.binary_cross_entropy_with_logits`` for the skip-gram loss,
``F.cosine_similarity``, ``F.log_softmax`` for the masked-LM loss, ``src_key_padding_mask`` for
the given block) and with independent second oracles elsewhere (Sennrich's regex-based
byte-pair encoding, BERT's own truncation loop, brute-force neighbours); the hidden checks
cover the cases the issue names; the grader rejects a library log-sigmoid in the skip-gram
loss. The corpus generator students use (``student/language.py``) has its own tests in
``tests/test_student_language.py``.
"""
from __future__ import annotations

import collections
import math
import re
import zlib
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from autograder.checks import load_checks_namespace, run_check
from solutions import ch13_language_representations as reference
from tests.conftest import failed_items, notebook_with_extra_cell

CHAPTER = "13_language_representations"
CHECKS_PATH = Path(__file__).resolve().parent.parent / "assignments" / CHAPTER / "checks.py"
F64 = torch.float64


def seeded(*parts: Any) -> torch.Generator:
    """A generator whose seed depends only on the case."""
    return torch.Generator().manual_seed(zlib.crc32(repr(parts).encode()))


def random_words(rng: torch.Generator, n: int, alphabet: str, longest: int) -> list[str]:
    lengths = torch.randint(1, longest + 1, (n,), generator=rng).tolist()
    return ["".join(alphabet[int(k)] for k in torch.randint(len(alphabet), (size,), generator=rng))
            for size in lengths]


# ------------------------------------------------------------------- byte-pair encoding
def sennrich_bpe(words: list[str], num_merges: int) -> list[tuple[str, str]]:
    """The algorithm of Sennrich et al.'s paper (words as space-separated symbols, merges by
    regular expression), with the chapter's tie rule (smallest pair) and no end marker."""
    vocab = collections.Counter(" ".join(word) for word in words)
    merges = []
    for _ in range(num_merges):
        pairs: collections.Counter[tuple[str, str]] = collections.Counter()
        for word, freq in vocab.items():
            symbols = word.split()
            for i in range(len(symbols) - 1):
                pairs[symbols[i], symbols[i + 1]] += freq
        if not pairs:
            break
        best = sorted(pairs.items(), key=lambda item: (-item[1], item[0]))[0][0]
        pattern = re.compile(r"(?<!\S)" + re.escape(" ".join(best)) + r"(?!\S)")
        vocab = collections.Counter({pattern.sub("".join(best), word): freq
                                     for word, freq in vocab.items()})
        merges.append(best)
    return merges


@pytest.mark.parametrize("alphabet,n,merges", [("ab", 30, 10), ("abcde", 60, 25),
                                                ("etaoinshrdl", 200, 60), ("xyz", 5, 40)])
def test_bpe_matches_sennrich_and_round_trips(alphabet: str, n: int, merges: int) -> None:
    rng = seeded("bpe", alphabet, n)
    words = random_words(rng, n, alphabet, 7)
    bpe = reference.BytePairEncoding().fit(words, merges)
    assert bpe.merges == sennrich_bpe(words, merges)
    for word in words + random_words(rng, 20, alphabet + "qé", 9) + ["", "q"]:
        tokens = bpe.encode(word)
        assert bpe.decode(tokens) == word
        # every learned merge is applied: no adjacent pair left that a merge would join
        assert not any((a, b) in bpe.merges for a, b in zip(tokens, tokens[1:])) or \
            len(word) == 0


def test_bpe_known_merges_and_ties() -> None:
    bpe = reference.BytePairEncoding().fit(["low", "low", "lower", "newest"], 2)
    assert bpe.merges == [("l", "o"), ("lo", "w")]
    assert bpe.fit(["dc", "ab", "ba"], 5).merges == [("a", "b"), ("b", "a"), ("d", "c")]
    assert bpe.fit(["a", "b"], 3).merges == []
    assert bpe.encode("zz") == ["z", "z"]


# ------------------------------------------------------------- vocabulary, subsampling
def test_build_vocab_matches_counter() -> None:
    rng = seeded("vocab")
    tokens = random_words(rng, 400, "abc", 3)
    for min_count in (1, 3, 10, 1000):
        itos, counts = reference.build_vocab(tokens, min_count)
        counter = collections.Counter(tokens)
        kept = [w for w, c in sorted(counter.items(), key=lambda wc: (-wc[1], wc[0]))
                if c >= min_count]
        assert itos == list(reference.SPECIALS) + kept
        assert counts.tolist() == [0, sum(c for c in counter.values() if c < min_count), 0, 0,
                                   0] + [counter[w] for w in kept]


def test_subsample_probability_is_mikolovs_formula() -> None:
    counts = torch.tensor([0, 1, 7, 50, 400, 3000])
    total = int(counts.sum())
    for t in (1e-5, 1e-3, 0.05):
        got = reference.subsample_probability(counts, total, t)
        expected = [0.0 if c == 0 else max(0.0, 1 - math.sqrt(t / (c / total)))
                    for c in counts.tolist()]
        torch.testing.assert_close(got, torch.tensor(expected, dtype=F64), rtol=1e-12, atol=0)


# ------------------------------------------------------------------------- skip-gram data
@pytest.mark.parametrize("length", [0, 1, 2, 5, 11])
@pytest.mark.parametrize("window", [1, 2, 4, 20])
def test_skipgram_pairs_match_a_set_of_offsets(length: int, window: int) -> None:
    sequence = torch.randint(5, 50, (length,), generator=seeded("pairs", length, window))
    pairs = reference.skipgram_pairs(sequence, window)
    expected = [(int(sequence[i]), int(sequence[i + offset])) for i in range(length)
                for offset in sorted(set(range(-window, window + 1)) - {0})
                if 0 <= i + offset < length]
    assert pairs.shape == (len(expected), 2) and pairs.dtype == torch.int64
    assert [tuple(row) for row in pairs.tolist()] == expected


@pytest.mark.parametrize("power", [0.75, 1.0, 0.5, 0.0])
def test_noise_distribution_is_a_normalised_power(power: float) -> None:
    counts = torch.tensor([0, 0, 3, 1, 90, 27])
    got = reference.negative_sampling_distribution(counts, power)
    weights = [0.0 if c == 0 else c**power for c in counts.tolist()]
    expected = torch.tensor([w / sum(weights) for w in weights], dtype=F64)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-15)


# --------------------------------------------------------------------------- SkipGramNS
def skipgram_with_pytorch(model: torch.nn.Module, center: torch.Tensor, context: torch.Tensor,
                          negatives: torch.Tensor, form: str) -> torch.Tensor:
    v = model.center.weight[center]
    positive = (model.context.weight[context] * v).sum(-1)
    negative = torch.einsum("bkd,bd->bk", model.context.weight[negatives], v)
    if form == "logsigmoid":
        return (-F.logsigmoid(positive) - F.logsigmoid(-negative).sum(-1)).mean()
    logits = torch.cat([positive[:, None], negative], dim=1)
    targets = torch.zeros_like(logits)
    targets[:, 0] = 1
    return F.binary_cross_entropy_with_logits(logits, targets, reduction="none").sum(1).mean()


@pytest.mark.parametrize("form", ["logsigmoid", "bce"])
@pytest.mark.parametrize("b,k,scale", [(1, 1, 1.0), (8, 5, 0.5), (16, 3, 4.0), (4, 20, 10.0)])
def test_skipgram_loss_matches_pytorch(form: str, b: int, k: int, scale: float) -> None:
    rng = seeded("sgns", form, b, k)
    model = reference.SkipGramNS(12, 6).double()
    with torch.no_grad():
        model.center.weight.copy_(scale * torch.randn(12, 6, generator=rng, dtype=F64))
        model.context.weight.copy_(scale * torch.randn(12, 6, generator=rng, dtype=F64))
    center, context = torch.randint(12, (2, b), generator=rng)
    negatives = torch.randint(12, (b, k), generator=rng)
    negatives[:, 0] = context  # a noise word equal to the positive is kept
    results = []
    for loss_fn in (model.loss, lambda *a: skipgram_with_pytorch(model, *a, form=form)):
        model.zero_grad()
        loss = loss_fn(center, context, negatives)
        loss.backward()
        results.append((loss.detach(), model.center.weight.grad.clone(),
                        model.context.weight.grad.clone()))
    for ours, theirs in zip(*results):
        torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-12)


def test_skipgram_loss_is_finite_at_dot_products_of_50_in_float32() -> None:
    model = reference.SkipGramNS(3, 1)
    with torch.no_grad():
        model.center.weight.copy_(torch.tensor([[5.0], [1.0], [-5.0]]))
        model.context.weight.copy_(torch.tensor([[10.0], [-10.0], [3.0]]))
    loss = model.loss(torch.tensor([0, 2]), torch.tensor([1, 0]), torch.tensor([[0, 1], [1, 0]]))
    loss.backward()
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    assert abs(loss.item() - 100.0) < 1e-3  # each example: 50 + 50 + about 0
    assert torch.isfinite(model.center.weight.grad).all()
    naive = -torch.log(1 - torch.sigmoid(torch.tensor(50.0)))
    assert torch.isinf(naive)  # what the float32 hidden check is built to catch


# ---------------------------------------------------------------- similarity, analogies
def test_cosine_matrix_matches_pytorch() -> None:
    rng = seeded("cosine")
    a, b = torch.randn(7, 5, generator=rng, dtype=F64), 3 * torch.randn(4, 5, generator=rng,
                                                                           dtype=F64)
    expected = F.cosine_similarity(a[:, None, :], b[None, :, :], dim=-1)
    torch.testing.assert_close(reference.cosine_similarity_matrix(a, b), expected,
                               rtol=1e-12, atol=1e-14)


def test_nearest_and_analogy_match_brute_force() -> None:
    rng = seeded("analogy")
    vectors = torch.randn(30, 6, generator=rng, dtype=F64) * torch.rand(30, 1, generator=rng)
    words = [f"w{i}" for i in range(30)]
    table = reference.WordVectors(vectors, words)
    unit = [v / v.norm() for v in vectors]
    for i in range(30):
        ranked = sorted((j for j in range(30) if j != i), key=lambda j: -float(unit[i] @ unit[j]))
        assert table.nearest(words[i], 4) == [words[j] for j in ranked[:4]]
    for a, b, c in [(0, 1, 2), (5, 9, 3), (29, 0, 14)]:
        target = unit[b] - unit[a] + unit[c]
        best = max((j for j in range(30) if j not in (a, b, c)),
                   key=lambda j: float(target @ unit[j]) / float(target.norm()))
        assert table.analogy(words[a], words[b], words[c]) == words[best]


# ------------------------------------------------------------------------- mask_tokens
def test_mask_tokens_follows_the_documented_draws_and_proportions() -> None:
    ids = torch.randint(5, 1000, (200, 100), generator=seeded("mask"))
    ids[:, 0], ids[:, -1], ids[:, 50:60] = reference.CLS, reference.SEP, reference.PAD
    generator = torch.Generator().manual_seed(11)
    selection = torch.rand(ids.shape, generator=generator)
    action = torch.rand(ids.shape, generator=generator)
    random = torch.randint(5, 1000, ids.shape, generator=generator)
    inputs, labels = reference.mask_tokens(ids, torch.Generator().manual_seed(11), 1000)
    ordinary = ids >= 5
    selected = (selection < 0.15) & ordinary
    assert torch.equal(labels != -100, selected) and torch.equal(labels[selected], ids[selected])
    assert torch.equal(inputs[~selected], ids[~selected])
    assert torch.equal(inputs == reference.MASK, selected & (action < 0.8))
    swap = selected & (action >= 0.8) & (action < 0.9)
    assert torch.equal(inputs[swap], random[swap]) and (inputs[swap] >= 5).all()
    share = selected.sum() / ordinary.sum()
    assert abs(share.item() - 0.15) < 0.01  # 17,800 draws: sd 0.0027
    masked = (inputs == reference.MASK).sum() / selected.sum()
    assert abs(masked.item() - 0.8) < 0.03


def test_mask_tokens_never_touches_an_all_special_batch() -> None:
    ids = torch.randint(0, 5, (4, 9), generator=seeded("specials"))
    inputs, labels = reference.mask_tokens(ids, torch.Generator().manual_seed(0), 20, 1.0)
    assert torch.equal(inputs, ids) and (labels == -100).all()


# -------------------------------------------------------------------------- pack_pairs
def bert_truncate_seq_pair(tokens_a: list[int], tokens_b: list[int], max_length: int) -> None:
    """Google's BERT (run_classifier.py), verbatim logic: truncates in place."""
    while True:
        total_length = len(tokens_a) + len(tokens_b)
        if total_length <= max_length:
            break
        if len(tokens_a) > len(tokens_b):
            tokens_a.pop()
        else:
            tokens_b.pop()


@pytest.mark.parametrize("max_len", [3, 5, 8, 13, 30])
def test_pack_pairs_matches_bert_truncation(max_len: int) -> None:
    rng = seeded("pack", max_len)
    pairs = [(torch.randint(5, 40, (int(la),), generator=rng).tolist(),
              torch.randint(5, 40, (int(lb),), generator=rng).tolist())
             for la, lb in torch.randint(0, 12, (20, 2), generator=rng)]
    ids, segments, mask = reference.pack_pairs(pairs, max_len)
    for row, (a, b) in enumerate(pairs):
        a, b = list(a), list(b)
        bert_truncate_seq_pair(a, b, max_len - 3)
        tokens = [reference.CLS, *a, reference.SEP, *b, reference.SEP]
        pad = max_len - len(tokens)
        assert ids[row].tolist() == tokens + [reference.PAD] * pad
        assert segments[row].tolist() == [0] * (len(a) + 2) + [1] * (len(b) + 1) + [0] * pad
        assert mask[row].tolist() == [True] * len(tokens) + [False] * pad


# ----------------------------------------------------------------------- encoder, losses
def test_given_block_masks_like_src_key_padding_mask() -> None:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # global seed on purpose: nn layers draw from it, restored after
        block = reference.TransformerEncoderBlock(8, 2, 16).double().eval()
    rng = seeded("block")
    x = torch.randn(3, 6, 8, generator=rng, dtype=F64)
    keep = torch.tensor([[True] * 6, [True] * 4 + [False] * 2, [True] * 2 + [False] * 4])
    ours = block(x, keep[:, None, None, :])
    theirs = block.layer(x, src_key_padding_mask=~keep)
    torch.testing.assert_close(ours[keep], theirs[keep], rtol=1e-10, atol=1e-12)


def test_encoder_ignores_what_stands_in_the_padding() -> None:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)  # global seed on purpose: nn layers draw from it, restored after
        encoder = reference.Encoder(30, 8, 2, 16, 2, 10).double().eval()
    ids, segments, mask = reference.pack_pairs([([5, 6], [7]), ([8, 9, 10], [11, 12])], 10)
    h = encoder(ids, segments, mask)
    noisy = torch.where(mask, ids, torch.full_like(ids, 29))
    torch.testing.assert_close(encoder(noisy, segments, mask)[mask], h[mask])


def test_mlm_loss_matches_log_softmax() -> None:
    rng = seeded("mlm")
    logits = 5 * torch.randn(3, 7, 11, generator=rng, dtype=F64)
    labels = torch.randint(11, (3, 7), generator=rng)
    labels[torch.rand(3, 7, generator=rng) < 0.6] = -100
    labels[0, 0] = 4
    keep = labels != -100
    expected = -F.log_softmax(logits, dim=-1)[keep].gather(1, labels[keep][:, None]).mean()
    torch.testing.assert_close(reference.mlm_loss(logits, labels), expected)


# ------------------------------------------------------------------------ grading checks
def chapter_checks():  # type: ignore[no-untyped-def]
    return load_checks_namespace(CHECKS_PATH.read_text(), str(CHECKS_PATH))


def test_hidden_cases_cover_the_edge_cases_of_the_issue() -> None:
    checks = {check.name: check for check in chapter_checks().checks}
    bpe = checks["BytePairEncoding"].cases
    assert any(len(set(case.get("words", ()))) == len(case.get("words", (1, 1))) and
               all(len(w) == 2 for w in case.get("words", ("",))) for case in bpe)  # all ties
    assert any(case.get("words") and all(len(w) == 1 for w in case["words"]) for case in bpe)
    assert any(any(ch not in "".join(case.get("words", ())) + case.get("alphabet", "")
                   for word in case["encode"] for ch in word) for case in bpe)  # unseen
    data = checks["skip-gram data"].cases
    assert any(case["window"] >= case["L"] for case in data)
    assert any(case["L"] == 1 for case in data)
    assert any(case["power"] is None for case in data) and {0.0, 1.0} <= {c["power"] for c in data}
    assert any(case.get("collide") for case in checks["SkipGramNS in float32"].cases)
    assert any(case.get("collide") for case in checks["SkipGramNS"].cases)
    mask_cases = checks["mask_tokens"].cases
    assert any(case.get("all_special") for case in mask_cases)
    assert any(case["p"] is None for case in mask_cases)
    pack = checks["pack_pairs"].cases
    assert any(la == lb and la + lb > case["max_len"] - 3 for case in pack
               for la, lb in case["lengths"])  # a truncation tie
    assert any(case["max_len"] == 3 for case in pack)


def test_float32_skipgram_cases_have_dot_products_near_50() -> None:
    checks = {check.name: check for check in chapter_checks().checks}
    namespace: dict[str, Any] = {}
    exec(compile(CHECKS_PATH.read_text(), str(CHECKS_PATH), "exec"), namespace)  # noqa: S102
    for case in checks["SkipGramNS in float32"].cases:
        tables = namespace["skipgram_tables"](seeded("dots"), case)
        dots = tables["center.weight"] @ tables["context.weight"].T
        assert tables["center.weight"].dtype == torch.float32
        assert ((dots.abs() - 50).abs() < 1).all()


def test_word_vector_checks_accept_another_style() -> None:
    """A WordVectors that ranks with torch.topk and normalises with F.normalize gets the
    reference's outputs."""
    class TopK(reference.WordVectors):
        def nearest(self, word: str, k: int) -> list[str]:
            i = self.words.index(word)
            sims = F.cosine_similarity(self.vectors, self.vectors[i][None], dim=1)
            sims[i] = -2.0
            return [self.words[j] for j in torch.topk(sims, k).indices.tolist()]

    check = next(c for c in chapter_checks().checks if c.name == "word vectors")
    expected: dict[tuple[int, str], Any] = {}
    run_check(check, reference, lambda c, n, a: expected.__setitem__((c, n), a))
    namespace = {"WordVectors": TopK,
                 "cosine_similarity_matrix": reference.cosine_similarity_matrix}
    got: dict[tuple[int, str], Any] = {}
    run_check(check, namespace, lambda c, n, a: got.__setitem__((c, n), a))
    assert expected.keys() == got.keys()
    for key, value in expected.items():
        assert (got[key] == value).all(), key


def test_runtime_trap_leaves_the_allowed_api_alone() -> None:
    from autograder.child import _forbidden_functions

    found = _forbidden_functions(list(chapter_checks().forbidden))
    allowed = [torch.sigmoid, torch.log, torch.log1p, torch.exp, torch.logaddexp, torch.clamp,
               F.cross_entropy, F.normalize, F.embedding, F.linear, torch.Tensor.backward]
    assert [f for f in allowed if f in found] == []
    assert F.logsigmoid in found and F.softplus in found
    assert F.binary_cross_entropy_with_logits in found


def test_grader_rejects_logsigmoid_in_the_skipgram_loss_only(grade_file, tmp_path) -> None:  # type: ignore[no-untyped-def]
    code = '''
class SkipGramNS(SkipGramNS):
    def loss(self, center, context, negatives):
        v = self.center(center)
        positive = (self.context(context) * v).sum(dim=1)
        negative = (self.context(negatives) * v[:, None, :]).sum(dim=2)
        return (-F.logsigmoid(positive) - F.logsigmoid(-negative).sum(dim=1)).mean()
'''
    results = grade_file(CHAPTER, notebook_with_extra_cell(CHAPTER, code,
                                                           tmp_path / f"{CHAPTER}.ipynb"))
    failed = failed_items(results)
    assert {item.split(":")[0] for item in failed} == {"SkipGramNS", "SkipGramNS in float32"}
    messages = [test["output"] for test in results["tests"] if test["status"] == "failed"]
    assert all("torch.nn.functional.logsigmoid" in message for message in messages)
