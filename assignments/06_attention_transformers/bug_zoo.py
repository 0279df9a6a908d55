"""Bug zoo of chapter 06: mistakes students really make; each must lose exactly its items."""

from tools.zoo import Bug


def items(check: str, *outputs: str) -> set[str]:
    return {f"{check}: {output}" for output in outputs}


SDPA = "scaled_dot_product_attention"
SDPA_MAIN = ("out", "weights", "grad_q", "grad_k", "grad_v")
SDPA_ALL = items(SDPA, *SDPA_MAIN, "large_scores", "fully_masked")
SDPA_MASKED = items(SDPA, *SDPA_MAIN, "fully_masked")
MHA = "MultiHeadAttention"
MHA_ALL = items(
    MHA,
    "out",
    "weights",
    "grad_query",
    "grad_key",
    "grad_value",
    "grad_projections",
    "grad_out_proj",
)
BLOCK = "TransformerEncoderBlock"
BLOCK_VALUES = items(BLOCK, "out", "grad_x", "grad_attention", "grad_feedforward", "grad_norms")

SAFE_SOFTMAX = """
def _softmax_rows(scores):
    top = scores.detach().amax(dim=-1, keepdim=True)
    top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
    exps = torch.exp(scores - top)
    sums = exps.sum(dim=-1, keepdim=True)
    return exps / torch.where(sums > 0, sums, torch.ones_like(sums))
"""


def attention(
    scores: str = "q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])",
    masking: str = "scores = scores.masked_fill(~mask, float('-inf'))",
    weights: str = "_softmax_rows(scores)",
    after: str = "",
) -> str:
    """A scaled_dot_product_attention with one step replaced."""
    return (
        SAFE_SOFTMAX
        + f"""
def scaled_dot_product_attention(q, k, v, mask=None):
    scores = {scores}
    if mask is not None:
        {masking}
    weights = {weights}
    {after or "pass"}
    return weights @ v, weights
"""
    )


def mha(
    split: str = "x.reshape(N, x.shape[1], self.num_heads, self.head_dim).transpose(1, 2)",
    query: str = "self.q_proj(query)",
    key: str = "self.k_proj(key)",
    merge: str = "heads.transpose(1, 2).reshape(N, Lq, E)",
    finish: str = "self.out_proj(merged)",
    mask: str = "mask",
    weights: str = "weights",
) -> str:
    """A MultiHeadAttention whose forward has one step replaced."""
    return f"""
class MultiHeadAttention(MultiHeadAttention):
    def forward(self, query, key, value, mask=None):
        N, Lq, E = query.shape
        def split(x):
            return {split}
        heads, weights = scaled_dot_product_attention(split({query}), split({key}), split(self.v_proj(value)), {mask})
        merged = {merge}
        return {finish}, {weights}
"""


def block(
    attention_step: str = "x = self.norm1(x + self.dropout_attention(self.self_attn(x, x, x, mask)[0]))",
    feedforward_step: str = "x = self.norm2(x + self.dropout_feedforward(self.linear2(self.dropout_inner(torch.relu(self.linear1(x))))))",
    prepare: str = "pass",
) -> str:
    """A TransformerEncoderBlock whose forward has one step replaced."""
    return f"""
class TransformerEncoderBlock(TransformerEncoderBlock):
    def forward(self, x, mask=None):
        {prepare}
        {attention_step}
        {feedforward_step}
        return x
"""


def encoding(
    angle: str = "position / 10000.0 ** (pair_index / d_model)",
    even: str = "torch.sin(angle)",
    odd: str = "torch.cos(angle[:, :d_model // 2])",
    pair_index: str = "torch.arange(0, d_model, 2, dtype=torch.float64)",
    position: str = "torch.arange(max_len, dtype=torch.float64)[:, None]",
) -> str:
    """A sinusoidal_positional_encoding with one step replaced."""
    return f"""
def sinusoidal_positional_encoding(max_len, d_model):
    position = {position}
    pair_index = {pair_index}
    angle = {angle}
    table = torch.zeros(max_len, d_model, dtype=torch.float64)
    table[:, 0::2] = {even}
    table[:, 1::2] = {odd}
    return table.float()
"""


def schedule(*body: str) -> str:
    lines = "\n".join("    " + line for line in body)
    return f"""
def warmup_cosine_lr(step, warmup_steps, max_steps, base_lr):
{lines}
"""


COSINE = (
    "base_lr * 0.5 * (1 + math.cos(math.pi * (step - warmup_steps) / (max_steps - warmup_steps)))"
)

BUGS = [
    # ------------------------------------------------------- scaled_dot_product_attention
    Bug(
        "attention scaled by d instead of sqrt(d)",
        SDPA_ALL,
        attention(scores="q @ k.transpose(-2, -1) / q.shape[-1]"),
    ),
    Bug(
        "attention scaled by sqrt(dv)",
        SDPA_ALL,
        attention(scores="q @ k.transpose(-2, -1) / math.sqrt(v.shape[-1])"),
    ),
    Bug(
        "softmax over the query axis",
        SDPA_ALL,
        attention(weights="torch.softmax(scores, dim=-2).nan_to_num(0.0)"),
    ),
    Bug(
        "mask applied after the softmax, not renormalised",
        SDPA_MASKED,
        attention(masking="pass", after="weights = weights if mask is None else weights * mask"),
    ),
    Bug(
        "masked scores set to 0 instead of -inf",
        SDPA_MASKED,
        attention(masking="scores = scores.masked_fill(~mask, 0.0)"),
    ),
    Bug(
        "mask read as PyTorch's True = blocked",
        SDPA_MASKED,
        attention(masking="scores = scores.masked_fill(mask, float('-inf'))"),
    ),
    Bug(
        "softmax without subtracting the row maximum",
        items(SDPA, "large_scores", "fully_masked"),
        attention(weights="torch.exp(scores) / torch.exp(scores).sum(dim=-1, keepdim=True)"),
    ),
    Bug(
        "fully masked rows left as NaN",
        items(SDPA, "fully_masked"),
        attention(weights="torch.softmax(scores, dim=-1)"),
    ),
    Bug(
        "masked scores set to the smallest float (uniform fully masked rows)",
        items(SDPA, "fully_masked"),
        attention(masking="scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)"),
    ),
    Bug(
        "attention weights detached",
        items(SDPA, "grad_q", "grad_k", "fully_masked"),
        attention(weights="_softmax_rows(scores).detach()"),
    ),
    # ---------------------------------------------------------------------------- masks
    Bug(
        "causal mask without the diagonal",
        items("masks", "causal"),
        """
def causal_mask(L):
    return torch.ones(L, L, dtype=torch.bool).tril(diagonal=-1)
""",
    ),
    Bug(
        "causal mask lets queries see the future",
        items("masks", "causal"),
        """
def causal_mask(L):
    return torch.ones(L, L, dtype=torch.bool).triu()
""",
        pattern="L",
    ),
    Bug(
        "causal mask of floats",
        items("masks", "causal"),
        """
def causal_mask(L):
    return torch.tril(torch.ones(L, L))
""",
    ),
    Bug(
        "padding mask of shape (N, L)",
        items("masks", "padding"),
        """
def padding_mask(lengths, L):
    return torch.arange(L)[None, :] < torch.as_tensor(lengths)[:, None]
""",
    ),
    Bug(
        "padding mask keeps one padded position",
        items("masks", "padding"),
        """
def padding_mask(lengths, L):
    return (torch.arange(L)[None, :] <= torch.as_tensor(lengths)[:, None])[:, None, None, :]
""",
        pattern="L",
    ),
    # ---------------------------------------------------------------- MultiHeadAttention
    Bug(
        "heads split by a reshape without transpose",
        MHA_ALL,
        mha(split="x.reshape(N, self.num_heads, x.shape[1], self.head_dim)"),
        pattern="heads",  # one head: the reshape is the transpose
    ),
    Bug(
        "keys and values split with the query's length",
        MHA_ALL,
        mha(split="x.view(N, Lq, self.num_heads, self.head_dim).transpose(1, 2)"),
        pattern=None,  # raises where Lq != Lk; E > 6 coincides there, and is not an axis
    ),
    Bug(
        "heads merged by a reshape without transpose",
        MHA_ALL - items(MHA, "weights"),
        mha(merge="heads.reshape(N, Lq, E)"),
        pattern="heads",  # one head: the reshape is the transpose
    ),
    Bug("out_proj forgotten", MHA_ALL - items(MHA, "weights"), mha(finish="merged")),
    Bug(
        "weights averaged over the heads", items(MHA, "weights"), mha(weights="weights.mean(dim=1)")
    ),
    Bug("keys projected with q_proj", MHA_ALL, mha(key="self.q_proj(key)")),
    Bug("mask not passed to the attention", MHA_ALL, mha(mask="None"), pattern="mask"),
    Bug(
        "queries scaled twice", MHA_ALL, mha(query="self.q_proj(query) / math.sqrt(self.head_dim)")
    ),
    # ------------------------------------------------------ sinusoidal_positional_encoding
    Bug(
        "sin and cos swapped",
        items("sinusoidal_positional_encoding", "table"),
        encoding(even="torch.cos(angle)", odd="torch.sin(angle[:, :d_model // 2])"),
    ),
    Bug(
        "frequency exponent uses i instead of 2i",
        items("sinusoidal_positional_encoding", "table"),
        encoding(pair_index="torch.arange(0, (d_model + 1) // 2, dtype=torch.float64)"),
    ),
    Bug(
        "odd d_model not handled",
        items("sinusoidal_positional_encoding", "table"),
        encoding(odd="torch.cos(angle)"),
        pattern=None,
    ),
    Bug(
        "positions counted from 1",
        items("sinusoidal_positional_encoding", "table"),
        encoding(position="torch.arange(1, max_len + 1, dtype=torch.float64)[:, None]"),
    ),
    # --------------------------------------------------------------- PositionalEncoding
    Bug(
        "positional table stored as a trainable parameter",
        items("PositionalEncoding", "no_parameters", "buffer"),
        """
class PositionalEncoding(PositionalEncoding):
    def __init__(self, d_model, max_len=5000):
        super().__init__(d_model, max_len)
        table = self.pe
        del self.pe
        self.pe = nn.Parameter(table)
""",
    ),
    Bug(
        "positional table kept as a plain attribute, not a buffer",
        items("PositionalEncoding", "buffer"),
        """
class PositionalEncoding(PositionalEncoding):
    def __init__(self, d_model, max_len=5000):
        super().__init__(d_model, max_len)
        table = self.pe
        del self.pe
        self.pe = table
""",
    ),
    Bug(
        "positional encoding sliced by the batch size",
        items("PositionalEncoding", "output"),
        """
class PositionalEncoding(PositionalEncoding):
    def forward(self, x):
        return x + self.pe[:x.shape[0]]
""",
    ),
    Bug(
        "positional encoding caches the first length",
        items("PositionalEncoding", "output"),
        """
class PositionalEncoding(PositionalEncoding):
    def forward(self, x):
        if not hasattr(self, "rows"):
            self.rows = self.pe[:x.shape[1]]
        return x + self.rows
""",
    ),
    # ---------------------------------------------------------- TransformerEncoderBlock
    Bug(
        "pre-norm instead of post-norm",
        BLOCK_VALUES,
        block(
            attention_step="h = self.norm1(x); x = x + self.self_attn(h, h, h, mask)[0]",
            feedforward_step="x = x + self.linear2(torch.relu(self.linear1(self.norm2(x))))",
        ),
    ),
    Bug(
        "attention residual connection missing",
        BLOCK_VALUES,
        block(attention_step="x = self.norm1(self.self_attn(x, x, x, mask)[0])"),
    ),
    Bug(
        "feed-forward residual connection missing",
        BLOCK_VALUES,
        block(feedforward_step="x = self.norm2(self.linear2(torch.relu(self.linear1(x))))"),
    ),
    Bug(
        "dropout applied in eval mode",
        BLOCK_VALUES | items(BLOCK, "permutation"),
        block(
            prepare="import torch.nn.functional as F; p = self.dropout_attention.p",
            feedforward_step="x = self.norm2(x + F.dropout(self.linear2(torch.relu(self.linear1(x))), p))",
        ),
    ),
    Bug(
        "mask not passed to self-attention",
        BLOCK_VALUES,
        block(attention_step="x = self.norm1(x + self.self_attn(x, x, x)[0])"),
    ),
    Bug(
        "block adds a positional encoding itself",
        BLOCK_VALUES | items(BLOCK, "permutation"),
        block(prepare="x = x + sinusoidal_positional_encoding(x.shape[1], x.shape[2]).to(x.dtype)"),
    ),
    # --------------------------------------------------------------------- warmup_cosine_lr
    Bug(
        "warm-up off by one step",
        items("warmup_cosine_lr", "warmup"),
        schedule(
            "if step < warmup_steps:",
            "    return base_lr * (step + 1) / warmup_steps",
            "if step >= max_steps:",
            "    return 0.0",
            f"return {COSINE}",
        ),
        pattern="warmup",
    ),
    Bug(
        "warm-up multiplied into a cosine from step 0 (the notes' variant)",
        items("warmup_cosine_lr", "warmup", "cosine", "after_max_steps"),
        schedule(
            "factor = 0.5 * (1 + math.cos(math.pi * step / max_steps))",
            "if step <= warmup_steps and warmup_steps > 0:",
            "    factor *= step / warmup_steps",
            "return base_lr * factor",
        ),
        pattern="warmup",
    ),
    Bug(
        "cosine phase measured from step 0",
        items("warmup_cosine_lr", "cosine"),
        schedule(
            "if step < warmup_steps:",
            "    return base_lr * step / warmup_steps",
            "if step >= max_steps:",
            "    return 0.0",
            "return base_lr * 0.5 * (1 + math.cos(math.pi * step / max_steps))",
        ),
        pattern="warmup",
    ),
    Bug(
        "cosine continues after max_steps",
        items("warmup_cosine_lr", "after_max_steps"),
        schedule(
            "if step < warmup_steps:",
            "    return base_lr * step / warmup_steps",
            f"return {COSINE}",
        ),
    ),
    # ----------------------------------------------------------------------------- concepts
    Bug(
        "parameter count without the biases",
        items("concepts", "mha_param_count"),
        """
def mha_param_count(embed_dim, num_heads, bias=True):
    return 4 * embed_dim * embed_dim
""",
    ),
    Bug(
        "wide count without the unifying bias",
        items("concepts", "wide_mha_param_count"),
        """
def wide_mha_param_count(embed_dim, num_heads):
    return 4 * embed_dim * embed_dim * num_heads
""",
    ),
    Bug(
        "attention memory without the heads",
        items("concepts", "attention_matrix_bytes"),
        """
def attention_matrix_bytes(seq_len, batch_size, num_heads, bytes_per_element=4):
    return batch_size * seq_len * seq_len * bytes_per_element
""",
    ),
    Bug(
        "permutation error compares with the unpermuted output",
        items("concepts", "permutation_error"),
        """
def permutation_error(module, x, perm):
    with torch.no_grad():
        return (module(x[:, perm]) - module(x)).abs().max().item()
""",
    ),
]
