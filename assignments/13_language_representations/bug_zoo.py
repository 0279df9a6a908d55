"""Bug zoo of chapter 13: mistakes students really make; each must lose exactly its items."""

from __future__ import annotations

from tools.zoo import Bug


def items(check: str, *outputs: str) -> set[str]:
    return {f"{check}: {output}" for output in outputs}


SKIPGRAM_64 = items("SkipGramNS", "loss", "grad_center", "grad_context")
SKIPGRAM_32 = items("SkipGramNS in float32", "loss", "grad_center", "grad_context")
ENCODER = items("Encoder", "h", "grad_embeddings", "grad_blocks")
MLM = items("mlm_loss", "loss", "grad_logits")
CLASSIFIER = items("fine-tuning", "logits", "grad_head", "grad_encoder")
STEP = items("fine-tuning", "step_losses", "params_after_steps")


def fit_choosing(
    choice: str,
    count_line: str = "pairs[pair] = pairs.get(pair, 0) + count",
    reset: str = "self.merges = []",
) -> str:
    """A BytePairEncoding whose fit picks the pair with ``choice`` (or counts otherwise)."""
    return f"""
class BytePairEncoding(BytePairEncoding):
    def fit(self, words, num_merges):
        counts = {{}}
        for word in words:
            counts[word] = counts.get(word, 0) + 1
        pieces = {{word: list(word) for word in counts}}
        {reset}
        for _ in range(num_merges):
            pairs = {{}}
            for word, count in counts.items():
                for pair in zip(pieces[word], pieces[word][1:]):
                    {count_line}
            if not pairs:
                break
            best = {choice}
            self.merges.append(best)
            pieces = {{word: self._apply(symbols, best) for word, symbols in pieces.items()}}
        return self
"""


MOST_FREQUENT = "min(pairs, key=lambda pair: (-pairs[pair], pair))"


def mask_code(
    draws: str = "selection, action",
    selected: str = "(selection < mask_prob) & (ids >= NUM_SPECIAL)",
    low: str = "NUM_SPECIAL",
    thresholds: tuple[str, str] = ("0.8", "0.9"),
    labels: str = "torch.where(selected, ids, torch.full_like(ids, -100))",
) -> str:
    """A mask_tokens written like the reference with one piece changed (``draws``: the names
    the first and the second torch.rand draw go to)."""
    return f"""
def mask_tokens(ids, generator, vocab_size, mask_prob=0.15):
    {draws} = (torch.rand(ids.shape, generator=generator) for _ in range(2))
    random = torch.randint({low}, vocab_size, ids.shape, generator=generator)
    selected = {selected}
    inputs = torch.where(selected & (action < {thresholds[0]}), torch.full_like(ids, MASK), ids)
    swap = selected & (action >= {thresholds[0]}) & (action < {thresholds[1]})
    inputs = torch.where(swap, random, inputs)
    return inputs, {labels}
"""


def pack_code(
    truncate: str = "a.pop() if len(a) > len(b) else b.pop()",
    segments: str = "[0] * (len(a) + 2) + [1] * (len(b) + 1)",
    mask: str = "[True] * len(tokens) + [False] * pad",
) -> str:
    """A pack_pairs written like the reference with one piece changed."""
    return f"""
def pack_pairs(pairs, max_len):
    ids, segs, masks = [], [], []
    for a, b in pairs:
        a, b = list(a), list(b)
        while len(a) + len(b) > max_len - 3:
            {truncate}
        tokens = [CLS, *a, SEP, *b, SEP]
        pad = max_len - len(tokens)
        ids.append(tokens + [PAD] * pad)
        segs.append({segments} + [0] * pad)
        masks.append({mask})
    return (torch.tensor(ids, dtype=torch.int64).reshape(-1, max_len),
            torch.tensor(segs, dtype=torch.int64).reshape(-1, max_len),
            torch.tensor(masks, dtype=torch.bool).reshape(-1, max_len))
"""


def skipgram_loss(
    positive: str = "-torch.logaddexp(torch.zeros_like(pos), -pos)",
    negative: str = "-torch.logaddexp(torch.zeros_like(neg), neg).sum(dim=1)",
    reduce: str = ".mean()",
    negatives: str = "self.context(negatives)",
) -> str:
    """A SkipGramNS whose loss is written with one term changed."""
    return f"""
class SkipGramNS(SkipGramNS):
    def loss(self, center, context, negatives):
        v = self.center(center)
        pos = (self.context(context) * v).sum(dim=1)
        neg = ({negatives} * v[:, None, :]).sum(dim=2)
        return -({positive} + {negative}){reduce}
"""


def encoder_forward(body: str) -> str:
    lines = "\n".join("        " + line for line in body.strip("\n").splitlines())
    return f"""
class Encoder(Encoder):
    def forward(self, input_ids, segment_ids, attention_mask):
{lines}
"""


EMBED = "self.token_embedding(input_ids) + self.segment_embedding(segment_ids)"


def classifier_forward(pooled: str) -> str:
    return f"""
class PairClassifier(PairClassifier):
    def forward(self, input_ids, segment_ids, attention_mask):
        h = self.encoder(input_ids, segment_ids, attention_mask)
        return self.head({pooled})
"""


def step_code(
    train: str = "model.train()",
    clear: str = "optimizer.zero_grad()",
    result: str = "loss.item()",
) -> str:
    """A fine_tune_step written like the reference with one line changed."""
    return f"""
def fine_tune_step(model, optimizer, batch, labels):
    {train}
    {clear}
    loss = F.cross_entropy(model(*batch), labels)
    loss.backward()
    optimizer.step()
    return {result}
"""


BUGS = [
    # ---------------------------------------------------------------------------- BPE
    Bug(
        "BPE merges the first pair found instead of the most frequent",
        items("BytePairEncoding", "merges"),
        fit_choosing("next(iter(pairs))"),
    ),
    Bug(
        "BPE breaks ties by the largest pair",
        items("BytePairEncoding", "merges"),
        fit_choosing("max(pairs, key=lambda pair: (pairs[pair], pair))"),
    ),
    Bug(
        "BPE counts each distinct word once",
        items("BytePairEncoding", "merges"),
        fit_choosing(MOST_FREQUENT, count_line="pairs[pair] = pairs.get(pair, 0) + 1"),
        pattern=None,  # depends on repeated words, which no case parameter names
    ),
    Bug(
        "BPE keeps the merges of an earlier fit",
        items("BytePairEncoding", "merges"),
        fit_choosing(MOST_FREQUENT, reset="self.merges = getattr(self, 'merges', [])"),
    ),
    Bug(
        "BPE encode merges the leftmost known pair first instead of following the merge order",
        items("BytePairEncoding", "encode"),
        """
class BytePairEncoding(BytePairEncoding):
    def encode(self, word):
        symbols, known = list(word), {tuple(pair) for pair in self.merges}
        merged = True
        while merged:
            merged = False
            for k in range(len(symbols) - 1):
                if (symbols[k], symbols[k + 1]) in known:
                    symbols[k:k + 2] = [symbols[k] + symbols[k + 1]]
                    merged = True
                    break
        return symbols
""",
    ),
    Bug(
        "BPE decode puts spaces between tokens",
        items("BytePairEncoding", "decode"),
        """
class BytePairEncoding(BytePairEncoding):
    def decode(self, tokens):
        return " ".join(tokens)
""",
    ),
    # --------------------------------------------------------------------- vocabulary
    Bug(
        "vocabulary puts <unk> before <pad>",
        items("vocabulary", "itos", "counts"),
        """
_build_vocab = build_vocab
def build_vocab(tokens, min_count=1):
    itos, counts = _build_vocab(tokens, min_count)
    return [itos[1], itos[0]] + itos[2:], torch.cat([counts[1:2], counts[:1], counts[2:]])
""",
    ),
    Bug(
        "vocabulary keeps only words seen more than min_count times",
        items("vocabulary", "itos", "counts"),
        """
_build_vocab = build_vocab
def build_vocab(tokens, min_count=1):
    return _build_vocab(tokens, min_count + 1)
""",
    ),
    Bug(
        "vocabulary gives <unk> a count of 0",
        items("vocabulary", "counts"),
        """
_build_vocab = build_vocab
def build_vocab(tokens, min_count=1):
    itos, counts = _build_vocab(tokens, min_count)
    return itos, torch.cat([counts[:1], torch.zeros(1, dtype=torch.int64), counts[2:]])
""",
    ),
    Bug(
        "subsampling returns the probability of keeping",
        items("vocabulary", "discard"),
        """
_subsample = subsample_probability
def subsample_probability(counts, total, t=1e-4):
    return torch.where(counts > 0, 1 - _subsample(counts, total, t), torch.zeros(len(counts), dtype=torch.float64))
""",
    ),
    Bug(
        "subsampling without the clamp at 0",
        items("vocabulary", "discard"),
        """
def subsample_probability(counts, total, t=1e-4):
    f = counts.double() / total
    return torch.where(counts > 0, 1 - torch.sqrt(t / f), torch.zeros_like(f))
""",
        pattern="t",  # the clamp matters once t exceeds some word's frequency
    ),
    Bug(
        "subsampling uses the count as the frequency",
        items("vocabulary", "discard"),
        """
_subsample = subsample_probability
def subsample_probability(counts, total, t=1e-4):
    return _subsample(counts, 1, t)
""",
    ),
    # ----------------------------------------------------------------- skip-gram data
    Bug(
        "skip-gram window includes the centre word",
        items("skip-gram data", "pairs"),
        """
def skipgram_pairs(sequence, window):
    rows = [[int(sequence[i]), int(sequence[j])] for i in range(len(sequence))
            for j in range(max(0, i - window), min(len(sequence), i + window + 1))]
    return torch.tensor(rows, dtype=torch.int64).reshape(-1, 2)
""",
    ),
    Bug(
        "skip-gram window stops one word short on the right",
        items("skip-gram data", "pairs"),
        """
def skipgram_pairs(sequence, window):
    rows = [[int(sequence[i]), int(sequence[j])] for i in range(len(sequence))
            for j in range(max(0, i - window), min(len(sequence), i + window)) if j != i]
    return torch.tensor(rows, dtype=torch.int64).reshape(-1, 2)
""",
    ),
    Bug(
        "skip-gram window wraps around the sentence",
        items("skip-gram data", "pairs"),
        """
def skipgram_pairs(sequence, window):
    n = len(sequence)
    rows = [[int(sequence[i]), int(sequence[j % n])] for i in range(n)
            for j in range(i - window, i + window + 1) if j != i and j % n != i]
    return torch.tensor(rows, dtype=torch.int64).reshape(-1, 2)
""",
        pattern="L",  # every sentence of two words or more has an edge to wrap around
    ),
    Bug(
        "noise distribution without the 0.75 power",
        items("skip-gram data", "noise"),
        """
def negative_sampling_distribution(counts, power=0.75):
    return counts.double() / counts.sum()
""",
    ),
    Bug(
        "noise distribution ignores the power argument",
        items("skip-gram data", "noise"),
        """
def negative_sampling_distribution(counts, power=0.75):
    weights = counts.double() ** 0.75
    return weights / weights.sum()
""",
    ),
    Bug(
        "noise distribution gives unseen words weight 0 ** 0 = 1",
        items("skip-gram data", "noise"),
        """
def negative_sampling_distribution(counts, power=0.75):
    weights = counts.double() ** power
    return weights / weights.sum()
""",
        pattern="power",  # 0 ** power is 0 for every power above 0
    ),
    # --------------------------------------------------------------------- SkipGramNS
    Bug(
        "negative term with the wrong sign",
        SKIPGRAM_64 | SKIPGRAM_32,
        skipgram_loss(negative="-torch.logaddexp(torch.zeros_like(neg), -neg).sum(dim=1)"),
    ),
    Bug(
        "negative term as log(1 - sigmoid), which overflows in float32",
        SKIPGRAM_32,
        skipgram_loss(
            positive="torch.log(torch.sigmoid(pos))",
            negative="torch.log(1 - torch.sigmoid(neg)).sum(dim=1)",
        ),
    ),
    Bug(
        "one embedding table shared by centre and context words",
        SKIPGRAM_64 | SKIPGRAM_32,
        """
class SkipGramNS(SkipGramNS):
    def __init__(self, vocab_size, dim):
        super().__init__(vocab_size, dim)
        self.context = self.center
""",
    ),
    Bug(
        "skip-gram loss summed over the batch",
        SKIPGRAM_64 | SKIPGRAM_32,
        skipgram_loss(reduce=".sum()"),
    ),
    Bug(
        "noise words equal to the context word dropped",
        SKIPGRAM_64 | SKIPGRAM_32,
        skipgram_loss(
            negatives="self.context(negatives) * (negatives != context[:, None])[..., None]"
        ),
    ),
    # ------------------------------------------------------------------- word vectors
    Bug(
        "analogy may return a query word",
        items("word vectors", "analogy"),
        """
class WordVectors(WordVectors):
    def analogy(self, a, b, c):
        unit = self.vectors / self.vectors.norm(dim=1, keepdim=True)
        i = [self.words.index(w) for w in (a, b, c)]
        sims = cosine_similarity_matrix((unit[i[1]] - unit[i[0]] + unit[i[2]])[None], self.vectors)[0]
        return self.words[int(sims.argmax())]
""",
    ),
    Bug(
        "analogy adds the raw vectors without normalising them",
        items("word vectors", "analogy"),
        """
class WordVectors(WordVectors):
    def analogy(self, a, b, c):
        i = [self.words.index(w) for w in (a, b, c)]
        v = self.vectors
        sims = cosine_similarity_matrix((v[i[1]] - v[i[0]] + v[i[2]])[None], v)[0].clone()
        sims[i] = -math.inf
        return self.words[int(sims.argmax())]
""",
    ),
    Bug(
        "nearest includes the word itself",
        items("word vectors", "nearest"),
        """
class WordVectors(WordVectors):
    def nearest(self, word, k):
        i = self.words.index(word)
        sims = cosine_similarity_matrix(self.vectors[i:i + 1], self.vectors)[0]
        return [self.words[j] for j in torch.argsort(sims, descending=True)[:k].tolist()]
""",
    ),
    Bug(
        "nearest ranks by dot product",
        items("word vectors", "nearest"),
        """
class WordVectors(WordVectors):
    def nearest(self, word, k):
        i = self.words.index(word)
        sims = (self.vectors @ self.vectors[i]).clone()
        sims[i] = -math.inf
        return [self.words[j] for j in torch.argsort(sims, descending=True)[:k].tolist()]
""",
    ),
    Bug(
        "cosine similarity normalises only a",
        items("word vectors", "cosine"),
        """
def cosine_similarity_matrix(a, b):
    return (a / a.norm(dim=1, keepdim=True)) @ b.T
""",
    ),
    Bug(
        "cosine similarity normalises over the wrong axis",
        items("word vectors", "cosine"),
        """
def cosine_similarity_matrix(a, b):
    return F.normalize(a, dim=0) @ F.normalize(b, dim=0).T
""",
    ),
    # -------------------------------------------------------------------- mask_tokens
    Bug(
        "masking may select special tokens",
        items("mask_tokens", "inputs", "labels"),
        mask_code(selected="selection < mask_prob"),
    ),
    Bug(
        "80/10/10 random tokens drawn from the specials too",
        items("mask_tokens", "inputs"),
        mask_code(low="0"),
    ),
    Bug(
        "labels set on unmasked positions",
        items("mask_tokens", "labels"),
        mask_code(labels="ids.clone()"),
    ),
    Bug(
        "80/10/10 draws in the wrong order",
        items("mask_tokens", "inputs", "labels"),
        mask_code(draws="action, selection"),
        pattern=None,
    ),
    Bug(
        "80/10/10 with the keep and random branches swapped",
        items("mask_tokens", "inputs"),
        mask_code(thresholds=("0.8", "1.0")),
        pattern=None,
    ),
    # --------------------------------------------------------------------- pack_pairs
    Bug(
        "segment ids off by one at the separator",
        items("pack_pairs", "segment_ids"),
        pack_code(segments="[0] * (len(a) + 1) + [1] * (len(b) + 2)"),
    ),
    Bug(
        "truncation removes from a on a tie",
        items("pack_pairs", "input_ids", "segment_ids"),
        pack_code(truncate="a.pop() if len(a) >= len(b) else b.pop()"),
    ),
    Bug(
        "truncation always shortens a first",
        items("pack_pairs", "input_ids", "segment_ids"),
        pack_code(truncate="a.pop() if a else b.pop()"),
    ),
    Bug(
        "attention mask True on the padding too",
        items("pack_pairs", "attention_mask"),
        pack_code(mask="[True] * max_len"),
    ),
    # ------------------------------------------------------------------------ Encoder
    Bug(
        "encoder without the segment embedding",
        ENCODER,
        encoder_forward("""
positions = torch.arange(input_ids.shape[1])
h = self.token_embedding(input_ids) + self.position_embedding(positions)
for block in self.blocks:
    h = block(h, attention_mask[:, None, None, :])
return h
"""),
    ),
    Bug(
        "encoder positions start at 1",
        ENCODER,
        encoder_forward(f"""
positions = torch.arange(1, input_ids.shape[1] + 1).clamp(max=self.position_embedding.num_embeddings - 1)
h = {EMBED} + self.position_embedding(positions)
for block in self.blocks:
    h = block(h, attention_mask[:, None, None, :])
return h
"""),
    ),
    Bug(
        "encoder does not pass the mask to the blocks",
        ENCODER,
        encoder_forward(f"""
h = {EMBED} + self.position_embedding(torch.arange(input_ids.shape[1]))
for block in self.blocks:
    h = block(h)
return h
"""),
    ),
    Bug(
        "encoder applies the blocks in reverse order",
        ENCODER,
        encoder_forward(f"""
h = {EMBED} + self.position_embedding(torch.arange(input_ids.shape[1]))
for block in reversed(self.blocks):
    h = block(h, attention_mask[:, None, None, :])
return h
"""),
    ),
    # ----------------------------------------------------------------------- mlm_loss
    Bug(
        "masked-LM loss summed instead of averaged",
        MLM,
        """
def mlm_loss(logits, labels):
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), reduction="sum")
""",
    ),
    Bug(
        "masked-LM loss averaged over every position",
        MLM,
        """
def mlm_loss(logits, labels):
    total = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), reduction="sum")
    return total / labels.numel()
""",
        pattern="share",  # right only when every position is labelled (share 1)
    ),
    Bug(
        "masked-LM loss on probabilities (softmax twice)",
        MLM,
        """
def mlm_loss(logits, labels):
    return F.cross_entropy(torch.softmax(logits, dim=-1).reshape(-1, logits.shape[-1]), labels.reshape(-1))
""",
    ),
    # --------------------------------------------------------------------- fine-tuning
    Bug(
        "classifier reads the last position instead of <cls>",
        CLASSIFIER,
        classifier_forward("h[:, -1]"),
    ),
    Bug("classifier averages every position", CLASSIFIER, classifier_forward("h.mean(dim=1)")),
    Bug(
        "classifier reads the first sequence for the whole batch",
        CLASSIFIER,
        classifier_forward("h[0].expand(len(h), -1)"),
    ),
    Bug("fine-tuning step without zero_grad", STEP, step_code(clear="pass")),
    Bug("fine-tuning step without model.train()", STEP, step_code(train="pass")),
    Bug(
        "fine-tuning step returns the loss after the step",
        items("fine-tuning", "step_losses"),
        step_code(result="F.cross_entropy(model(*batch), labels).item()"),
    ),
]
