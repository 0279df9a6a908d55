"""Bug zoo of chapter 07: mistakes students really make; each must lose exactly its items."""

# ruff: noqa: E501 - the mutants are notebook code, written as students write it
from __future__ import annotations

from tools.zoo import Bug


def items(check: str, *outputs: str) -> set[str]:
    return {f"{check}: {output}" for output in outputs}


GCN_SMALL = ("out", "grad_x", "grad_linear.weight", "grad_bias", "relabelled")
GAT_SMALL = (
    "out",
    "attention",
    "grad_x",
    "grad_linear.weight",
    "grad_att_src",
    "grad_att_dst",
    "grad_bias",
    "relabelled",
)
GCN_SCALE = items("GCNLayer at scale", "out_sample", "grad_linear.weight", "grad_bias")
GAT_SCALE = items(
    "GATLayer at scale",
    "out_sample",
    "grad_linear.weight",
    "grad_att_src",
    "grad_att_dst",
    "grad_bias",
)
# A wrong attention score changes everything but the bias gradient, small and at scale.
GAT_SCORE = items("GATLayer", *(o for o in GAT_SMALL if o != "grad_bias")) | (
    GAT_SCALE - items("GATLayer at scale", "grad_bias")
)


def gcn_forward(*body: str) -> str:
    """A GCNLayer whose forward runs `body` (x, edge_index given; returns the output)."""
    lines = "\n".join("        " + line for line in body)
    return f"""
class GCNLayer(GCNLayer):
    def forward(self, x, edge_index):
{lines}
"""


def gat_forward(
    score: str = "F.leaky_relu(s[src] + d[dst], self.negative_slope)",
    group: str = "dst",
    combine: str = "summed.flatten(1) if self.concat else summed.mean(dim=1)",
) -> str:
    """A GATLayer whose forward computes the edge scores with `score`, normalises them grouped
    by `group` and combines the heads with `combine`."""
    return f"""
class GATLayer(GATLayer):
    def forward(self, x, edge_index):
        n = x.shape[0]
        src, dst = add_self_loops(edge_index, n)
        h = self.linear(x).view(n, self.heads, self.out_features)
        s = (h * self.att_src).sum(dim=-1)
        d = (h * self.att_dst).sum(dim=-1)
        alpha = segment_softmax({score}, {group}, n)
        summed = torch.zeros_like(h).index_add_(0, dst, h[src] * alpha.unsqueeze(-1))
        result = {combine}
        return (result if self.bias is None else result + self.bias), alpha
"""


BUGS = [
    # ---------------------------------------------------------------------- graph basics
    Bug(
        "self-loops put before the edges",
        items("graph basics", "add_self_loops"),
        """
def add_self_loops(edge_index, num_nodes):
    nodes = torch.arange(num_nodes)
    return torch.cat([torch.stack([nodes, nodes]), edge_index], dim=1)
""",
    ),
    Bug(
        "self-loops only for nodes that have edges",
        items("graph basics", "add_self_loops"),
        """
def add_self_loops(edge_index, num_nodes):
    nodes = edge_index.flatten().unique()
    return torch.cat([edge_index, torch.stack([nodes, nodes])], dim=1)
""",
    ),
    Bug(
        "degree by bincount without minlength",
        items("graph basics", "degree", "degree_default_dtype"),
        """
def degree(index, num_nodes, dtype=torch.float32):
    return torch.bincount(index).to(dtype)
""",
    ),
    Bug(
        "degree always float32",
        items("graph basics", "degree"),
        """
def degree(index, num_nodes, dtype=torch.float32):
    return torch.zeros(num_nodes).index_add_(0, index, torch.ones(len(index)))
""",
    ),
    # ----------------------------------------------------------------- gcn_normalization
    Bug(
        "row normalisation 1/deg(target)",
        items("gcn_normalization", "weights", "default_dtype"),
        """
def gcn_normalization(edge_index, num_nodes, dtype=torch.float32):
    looped = add_self_loops(edge_index, num_nodes)
    return looped, 1.0 / degree(looped[1], num_nodes, dtype)[looped[1]]
""",
    ),
    Bug(
        "normalisation without self-loops",
        items("gcn_normalization", "edges", "weights", "default_dtype"),
        """
def gcn_normalization(edge_index, num_nodes, dtype=torch.float32):
    scale = degree(edge_index[1], num_nodes, dtype).clamp(min=1).rsqrt()
    return edge_index, scale[edge_index[0]] * scale[edge_index[1]]
""",
    ),
    Bug(
        "degree counted on the source side",
        items("gcn_normalization", "weights", "default_dtype"),
        """
def gcn_normalization(edge_index, num_nodes, dtype=torch.float32):
    looped = add_self_loops(edge_index, num_nodes)
    scale = degree(looped[0], num_nodes, dtype).rsqrt()
    return looped, scale[looped[0]] * scale[looped[1]]
""",
    ),
    Bug(
        "weights always float32",
        items("gcn_normalization", "weights"),
        """
def gcn_normalization(edge_index, num_nodes, dtype=torch.float32):
    looped = add_self_loops(edge_index, num_nodes)
    scale = degree(looped[1], num_nodes).rsqrt()
    return looped, scale[looped[0]] * scale[looped[1]]
""",
    ),
    # -------------------------------------------------------------------------- GCNLayer
    Bug(
        "messages sent from target to source",
        items("GCNLayer", "out", "grad_x", "grad_linear.weight", "relabelled")
        | (GCN_SCALE - items("GCNLayer at scale", "grad_bias")),
        gcn_forward(
            "edges, w = gcn_normalization(edge_index, x.shape[0], dtype=x.dtype)",
            "h = self.linear(x)",
            "out = torch.zeros_like(h).index_add_(0, edges[0], h[edges[1]] * w[:, None])",
            "return out if self.bias is None else out + self.bias",
        ),
    ),
    Bug(
        "linear keeps nn.Linear's own bias (bias=False missing)",
        items("GCNLayer", *GCN_SMALL) | items("GCNLayer at scale", "out_sample"),
        """
class GCNLayer(GCNLayer):
    def __init__(self, in_features, out_features, bias=True):
        super().__init__(in_features, out_features, bias)
        self.linear = nn.Linear(in_features, out_features)
""",
    ),
    Bug(
        "bias never added",
        items("GCNLayer", "out", "grad_bias", "relabelled")
        | items("GCNLayer at scale", "out_sample", "grad_bias"),
        gcn_forward(
            "edges, w = gcn_normalization(edge_index, x.shape[0], dtype=x.dtype)",
            "h = self.linear(x)",
            "return torch.zeros_like(h).index_add_(0, edges[1], h[edges[0]] * w[:, None])",
        ),
    ),
    Bug(
        "normalisation cached from the first call",
        items("GCNLayer", *GCN_SMALL),
        gcn_forward(
            "if not hasattr(self, 'cached'):",
            "    self.cached = gcn_normalization(edge_index, x.shape[0], dtype=x.dtype)",
            "edges, w = self.cached",
            "h = self.linear(x)",
            "out = torch.zeros_like(h).index_add_(0, edges[1], h[edges[0]] * w[:, None])",
            "return out if self.bias is None else out + self.bias",
        ),
    ),
    Bug(
        "dense normalised adjacency matrix",
        GCN_SCALE,
        gcn_forward(
            "n = x.shape[0]",
            "adjacency = torch.eye(n, dtype=x.dtype)",
            "adjacency[edge_index[1], edge_index[0]] = 1.0",
            "scale = adjacency.sum(dim=1).rsqrt()",
            "out = (scale[:, None] * adjacency * scale[None, :]) @ self.linear(x)",
            "return out if self.bias is None else out + self.bias",
        ),
    ),
    Bug(
        "aggregation through a one-hot (N, E) matrix",
        GCN_SCALE,
        gcn_forward(
            "edges, w = gcn_normalization(edge_index, x.shape[0], dtype=x.dtype)",
            "h = self.linear(x)",
            "one_hot = F.one_hot(edges[1], x.shape[0]).T.to(x.dtype)",
            "out = one_hot @ (h[edges[0]] * w[:, None])",
            "return out if self.bias is None else out + self.bias",
        ),
    ),
    Bug(
        "degrees through a dense diagonal matrix",
        GCN_SCALE,
        gcn_forward(
            "edges = add_self_loops(edge_index, x.shape[0])",
            "inv = torch.diag(degree(edges[1], x.shape[0], x.dtype).rsqrt())",
            "w = inv[edges[0], edges[0]] * inv[edges[1], edges[1]]",
            "h = self.linear(x)",
            "out = torch.zeros_like(h).index_add_(0, edges[1], h[edges[0]] * w[:, None])",
            "return out if self.bias is None else out + self.bias",
        ),
    ),
    # ------------------------------------------------------------------- segment_softmax
    Bug(
        "softmax over all edges",
        items("segment_softmax", "softmax", "grad_scores"),
        """
def segment_softmax(scores, index, num_nodes):
    return torch.softmax(scores, dim=0)
""",
    ),
    Bug(
        "softmax without the maximum subtracted",
        items("segment_softmax", "softmax", "grad_scores"),
        """
def segment_softmax(scores, index, num_nodes):
    exps = scores.exp()
    sums = torch.zeros((num_nodes,) + scores.shape[1:], dtype=scores.dtype).index_add_(0, index, exps)
    return exps / sums[index]
""",
        pattern="scale",
    ),
    Bug(
        "one global maximum subtracted",
        items("segment_softmax", "softmax", "grad_scores"),
        """
def segment_softmax(scores, index, num_nodes):
    exps = (scores - scores.max().detach()).exp()
    sums = torch.zeros((num_nodes,) + scores.shape[1:], dtype=scores.dtype).index_add_(0, index, exps)
    return exps / sums[index]
""",
        pattern="scale",
    ),
    # -------------------------------------------------------------------------- GATLayer
    Bug(
        "a_src and a_dst swapped",
        GAT_SCORE,
        gat_forward(score="F.leaky_relu(d[src] + s[dst], self.negative_slope)"),
        pattern=None,
    ),
    Bug("LeakyReLU missing", GAT_SCORE, gat_forward(score="s[src] + d[dst]"), pattern=None),
    Bug(
        "LeakyReLU slope fixed at 0.01",
        GAT_SCORE,
        gat_forward(score="F.leaky_relu(s[src] + d[dst], 0.01)"),
        pattern=None,
    ),
    Bug(
        "attention normalised over each source's edges",
        GAT_SCORE,
        gat_forward(group="src"),
        pattern=None,
    ),
    Bug(
        "heads averaged when they should be concatenated",
        items("GATLayer", *(o for o in GAT_SMALL if o not in ("attention", "grad_bias"))),
        gat_forward(
            combine="summed.mean(dim=1).repeat(1, self.heads) if self.concat else summed.mean(dim=1)"
        ),
    ),
    Bug(
        "dense attention matrix",
        GAT_SCALE,
        """
class GATLayer(GATLayer):
    def forward(self, x, edge_index):
        n = x.shape[0]
        src, dst = add_self_loops(edge_index, n)
        h = self.linear(x).view(n, self.heads, self.out_features)
        s = (h * self.att_src).sum(dim=-1)
        d = (h * self.att_dst).sum(dim=-1)
        mask = torch.zeros(n, n, dtype=torch.bool)
        mask[dst, src] = True
        outs, alphas = [], []
        for k in range(self.heads):
            scores = F.leaky_relu(d[:, k, None] + s[None, :, k], self.negative_slope)
            alpha = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=1)
            outs.append(alpha @ h[:, k])
            alphas.append(alpha[dst, src])
        result = torch.cat(outs, dim=1) if self.concat else torch.stack(outs).mean(dim=0)
        return (result if self.bias is None else result + self.bias), torch.stack(alphas, dim=1)
""",
    ),
    Bug(
        "GAT aggregation through a one-hot (N, E) matrix",
        GAT_SCALE,
        """
class GATLayer(GATLayer):
    def forward(self, x, edge_index):
        n = x.shape[0]
        src, dst = add_self_loops(edge_index, n)
        h = self.linear(x).view(n, self.heads, self.out_features)
        s = (h * self.att_src).sum(dim=-1)
        d = (h * self.att_dst).sum(dim=-1)
        alpha = segment_softmax(F.leaky_relu(s[src] + d[dst], self.negative_slope), dst, n)
        one_hot = F.one_hot(dst, n).T.to(x.dtype)
        summed = torch.einsum("ne,ehc->nhc", one_hot, h[src] * alpha.unsqueeze(-1))
        result = summed.flatten(1) if self.concat else summed.mean(dim=1)
        return (result if self.bias is None else result + self.bias), alpha
""",
    ),
    Bug(
        "GAT scores through an (N, N) matrix",
        GAT_SCALE,
        """
class GATLayer(GATLayer):
    def forward(self, x, edge_index):
        n = x.shape[0]
        src, dst = add_self_loops(edge_index, n)
        h = self.linear(x).view(n, self.heads, self.out_features)
        s = (h * self.att_src).sum(dim=-1)
        d = (h * self.att_dst).sum(dim=-1)
        pair_scores = F.leaky_relu(d[:, None, :] + s[None, :, :], self.negative_slope)
        alpha = segment_softmax(pair_scores[dst, src], dst, n)
        summed = torch.zeros_like(h).index_add_(0, dst, h[src] * alpha.unsqueeze(-1))
        result = summed.flatten(1) if self.concat else summed.mean(dim=1)
        return (result if self.bias is None else result + self.bias), alpha
""",
    ),
    # --------------------------------------------------------------------------- pooling
    Bug(
        "mean pooling over the whole batch",
        items("pooling", "mean", "grad_x_mean"),
        """
def global_mean_pool(x, batch, num_graphs):
    return x.mean(dim=0, keepdim=True).expand(num_graphs, -1)
""",
        pattern=None,
    ),
    Bug(
        "max pooling that includes the zeros",
        items("pooling", "max", "grad_x_max"),
        """
def global_max_pool(x, batch, num_graphs):
    index = batch.unsqueeze(1).expand(-1, x.shape[1])
    return torch.zeros(num_graphs, x.shape[1], dtype=x.dtype).scatter_reduce(0, index, x, reduce="amax")
""",
    ),
    Bug(
        "add pooling that assumes a sorted batch",
        items("pooling", "add", "grad_x_add"),
        """
def global_add_pool(x, batch, num_graphs):
    sizes = torch.bincount(batch, minlength=num_graphs).tolist()
    return torch.stack([part.sum(dim=0) for part in torch.split(x, sizes)])
""",
        pattern="shuffled",
    ),
    Bug(
        "mean pooling divides empty graphs by zero",
        items("pooling", "mean"),
        """
def global_mean_pool(x, batch, num_graphs):
    return global_add_pool(x, batch, num_graphs) / torch.bincount(batch, minlength=num_graphs).to(x.dtype).unsqueeze(1)
""",
    ),
    # ------------------------------------------------------------------ node classifiers
    Bug(
        "GCN dropout left on in eval mode",
        items("node classifiers", "gcn_logits", "gcn_grads"),
        """
class GCN(GCN):
    def forward(self, x, edge_index):
        return self.conv2(F.dropout(torch.relu(self.conv1(x, edge_index)), self.dropout), edge_index)
""",
    ),
    Bug(
        "GCN without the ReLU",
        items("node classifiers", "gcn_logits", "gcn_grads"),
        """
class GCN(GCN):
    def forward(self, x, edge_index):
        return self.conv2(F.dropout(self.conv1(x, edge_index), self.dropout, self.training), edge_index)
""",
    ),
    Bug(
        "GAT with ReLU instead of ELU",
        items("node classifiers", "gat_logits", "gat_grads"),
        """
class GAT(GAT):
    def forward(self, x, edge_index):
        hidden = F.dropout(torch.relu(self.conv1(x, edge_index)[0]), self.dropout, self.training)
        return self.conv2(hidden, edge_index)[0]
""",
    ),
    # ------------------------------------------------------------------ GraphClassifier
    Bug(
        "classifier ignores the pool argument",
        items("GraphClassifier", "logits", "grad_parameters"),
        """
class GraphClassifier(GraphClassifier):
    def forward(self, x, edge_index, batch, num_graphs):
        for conv in self.convs:
            x = torch.relu(conv(x, edge_index))
        return self.head(global_mean_pool(x, batch, num_graphs))
""",
    ),
    Bug(
        "classifier without ReLU after the last layer",
        items("GraphClassifier", "logits", "grad_parameters"),
        """
class GraphClassifier(GraphClassifier):
    def forward(self, x, edge_index, batch, num_graphs):
        for k, conv in enumerate(self.convs):
            x = conv(x, edge_index)
            if k < len(self.convs) - 1:
                x = torch.relu(x)
        pools = {"mean": global_mean_pool, "max": global_max_pool, "add": global_add_pool}
        return self.head(pools[self.pool](x, batch, num_graphs))
""",
    ),
    Bug(
        "classifier applies the head before pooling",
        items("GraphClassifier", "logits", "grad_parameters"),
        """
class GraphClassifier(GraphClassifier):
    def forward(self, x, edge_index, batch, num_graphs):
        for conv in self.convs:
            x = torch.relu(conv(x, edge_index))
        pools = {"mean": global_mean_pool, "max": global_max_pool, "add": global_add_pool}
        return pools[self.pool](self.head(x), batch, num_graphs)
""",
    ),
    # -------------------------------------------------------------------------- concepts
    Bug(
        "receptive field along outgoing edges",
        items("concepts", "receptive_field"),
        """
def receptive_field(edge_index, num_nodes, node, num_layers):
    seen = torch.zeros(num_nodes, dtype=torch.bool)
    seen[node] = True
    for _ in range(num_layers):
        grown = seen.clone()
        grown[edge_index[1][seen[edge_index[0]]]] = True
        seen = grown
    return seen
""",
    ),
    Bug(
        "GCN count ignores bias=False",
        items("concepts", "gcn_parameter_count"),
        """
def gcn_parameter_count(in_features, out_features, bias=True):
    return in_features * out_features + out_features
""",
    ),
    Bug(
        "GAT count with one attention vector per head",
        items("concepts", "gat_parameter_count"),
        """
def gat_parameter_count(in_features, out_features, heads=1, concat=True, bias=True):
    bias_entries = (heads * out_features if concat else out_features) if bias else 0
    return heads * out_features * (in_features + 1) + bias_entries
""",
    ),
]
