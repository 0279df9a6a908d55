"""Reference solution of chapter 07: message passing, GCN and GAT layers, graph pooling.

Graph convention (PyTorch Geometric's): node features ``x`` (N, C), ``edge_index`` (2, E) int64
of (source, target) pairs, messages flow from source to target; a batch of graphs is one
disconnected graph plus ``batch`` (N,), the graph index of every node. Everything is sparse
(gathers and ``index_add_``): no N x N matrix is ever built.

Two copies of the reference, by rule: this module (the grading oracle that writes the expected
data) and the master's solution blocks (what the released solution notebook runs) are kept as
independent oracles, neither generated from the other; ``tests/test_check_coverage.py`` runs
every check's exercise on both and compares them with the kit's comparison rule.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def add_self_loops(edge_index: torch.Tensor, num_nodes: int) -> torch.Tensor:
    """(2, E) -> (2, E + N): the input edges, then the loops (0, 0), (1, 1), ..., in node order."""
    loops = torch.arange(num_nodes, dtype=edge_index.dtype, device=edge_index.device)
    return torch.cat([edge_index, loops.expand(2, num_nodes)], dim=1)


def degree(index: torch.Tensor, num_nodes: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """index (E,) node ids -> (N,) how often each node occurs, in ``dtype``."""
    counts = torch.zeros(num_nodes, dtype=dtype, device=index.device)
    return counts.index_add_(0, index, torch.ones(index.numel(), dtype=dtype, device=index.device))


def gcn_normalization(
    edge_index: torch.Tensor, num_nodes: int, dtype: torch.dtype = torch.float32
) -> tuple[torch.Tensor, torch.Tensor]:
    """(2, E) -> (edge_index with loops (2, E + N), weights (E + N,) = 1/sqrt(d_src * d_dst)),
    degrees counted on the target side, self-loop included (so every degree is at least 1)."""
    edges = add_self_loops(edge_index, num_nodes)
    source, target = edges[0], edges[1]
    inv_sqrt = degree(target, num_nodes, dtype).pow(-0.5)
    return edges, inv_sqrt[source] * inv_sqrt[target]


class GCNLayer(nn.Module):
    """out_i = sum over edges j -> i (self-loop included) of w_ji * (x_j W) + b."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.linear = nn.Linear(in_features, out_features, bias=False)
        if bias:
            self.bias = nn.Parameter(torch.zeros(out_features))
        else:
            self.register_parameter("bias", None)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        """x (N, in_features), edge_index (2, E) -> (N, out_features)."""
        num_nodes = x.shape[0]
        edges, weight = gcn_normalization(edge_index, num_nodes, dtype=x.dtype)
        h = self.linear(x)
        messages = h[edges[0]] * weight.unsqueeze(1)
        out = h.new_zeros(num_nodes, self.out_features).index_add_(0, edges[1], messages)
        if self.bias is not None:
            out = out + self.bias
        return out


def segment_softmax(scores: torch.Tensor, index: torch.Tensor, num_nodes: int) -> torch.Tensor:
    """scores (E,) or (E, H), index (E,) target node of each edge -> softmax over the edges of
    each target node, same shape as scores; each group's maximum is subtracted first."""
    shape = (num_nodes, *scores.shape[1:])
    expanded = index.view(-1, *([1] * (scores.dim() - 1))).expand_as(scores)
    group_max = scores.new_full(shape, float("-inf")).scatter_reduce(
        0, expanded, scores.detach(), reduce="amax", include_self=True
    )
    exp = torch.exp(scores - group_max[index])
    total = scores.new_zeros(shape).index_add_(0, index, exp)
    return exp / total[index]


class GATLayer(nn.Module):
    """Graph attention (Velickovic et al. 2018), PyTorch Geometric's GATConv without dropout."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        heads: int = 1,
        concat: bool = True,
        negative_slope: float = 0.2,
        bias: bool = True,
    ):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.heads, self.concat, self.negative_slope = heads, concat, negative_slope
        self.linear = nn.Linear(in_features, heads * out_features, bias=False)
        self.att_src = nn.Parameter(torch.empty(1, heads, out_features))
        self.att_dst = nn.Parameter(torch.empty(1, heads, out_features))
        nn.init.xavier_uniform_(self.att_src)
        nn.init.xavier_uniform_(self.att_dst)
        if bias:
            self.bias = nn.Parameter(torch.zeros(heads * out_features if concat else out_features))
        else:
            self.register_parameter("bias", None)

    def forward(
        self, x: torch.Tensor, edge_index: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """x (N, in_features), edge_index (2, E) -> (out, attention): out (N, heads *
        out_features) when concat else (N, out_features); attention (E + N, heads) in the
        order of add_self_loops(edge_index, N)."""
        num_nodes = x.shape[0]
        edges = add_self_loops(edge_index, num_nodes)
        source, target = edges[0], edges[1]
        h = self.linear(x).view(num_nodes, self.heads, self.out_features)
        score_src = (h * self.att_src).sum(dim=-1)
        score_dst = (h * self.att_dst).sum(dim=-1)
        scores = F.leaky_relu(score_src[source] + score_dst[target], self.negative_slope)
        attention = segment_softmax(scores, target, num_nodes)
        messages = h[source] * attention.unsqueeze(-1)
        out = h.new_zeros(num_nodes, self.heads, self.out_features).index_add_(0, target, messages)
        out = out.reshape(num_nodes, -1) if self.concat else out.mean(dim=1)
        if self.bias is not None:
            out = out + self.bias
        return out, attention


def global_add_pool(x: torch.Tensor, batch: torch.Tensor, num_graphs: int) -> torch.Tensor:
    """x (N, C), batch (N,) -> (num_graphs, C): sum of each graph's nodes (0 for no nodes)."""
    return x.new_zeros(num_graphs, x.shape[1]).index_add_(0, batch, x)


def global_mean_pool(x: torch.Tensor, batch: torch.Tensor, num_graphs: int) -> torch.Tensor:
    """x (N, C), batch (N,) -> (num_graphs, C): mean of each graph's nodes (0 for no nodes)."""
    counts = degree(batch, num_graphs, x.dtype).clamp(min=1)
    return global_add_pool(x, batch, num_graphs) / counts.unsqueeze(1)


def global_max_pool(x: torch.Tensor, batch: torch.Tensor, num_graphs: int) -> torch.Tensor:
    """x (N, C), batch (N,) -> (num_graphs, C): feature-wise max of each graph's nodes
    (0 for a graph without nodes)."""
    index = batch.unsqueeze(1).expand_as(x)
    return x.new_zeros(num_graphs, x.shape[1]).scatter_reduce(
        0, index, x, reduce="amax", include_self=False
    )


class GCN(nn.Module):
    """Node classifier: conv1 -> ReLU -> dropout -> conv2 (logits)."""

    def __init__(
        self, in_features: int, hidden_features: int, num_classes: int, dropout: float = 0.5
    ):
        super().__init__()
        self.conv1 = GCNLayer(in_features, hidden_features)
        self.conv2 = GCNLayer(hidden_features, num_classes)
        self.dropout = dropout

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        """x (N, in_features), edge_index (2, E) -> logits (N, num_classes)."""
        h = F.relu(self.conv1(x, edge_index))
        h = F.dropout(h, self.dropout, self.training)
        return self.conv2(h, edge_index)


class GAT(nn.Module):
    """Node classifier: conv1 (heads, concat) -> ELU -> dropout -> conv2 (1 head, mean)."""

    def __init__(
        self,
        in_features: int,
        hidden_features: int,
        num_classes: int,
        heads: int = 4,
        dropout: float = 0.5,
    ):
        super().__init__()
        self.conv1 = GATLayer(in_features, hidden_features, heads=heads, concat=True)
        self.conv2 = GATLayer(heads * hidden_features, num_classes, heads=1, concat=False)
        self.dropout = dropout

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        """x (N, in_features), edge_index (2, E) -> logits (N, num_classes)."""
        h = F.elu(self.conv1(x, edge_index)[0])
        h = F.dropout(h, self.dropout, self.training)
        return self.conv2(h, edge_index)[0]


POOLS = {"mean": global_mean_pool, "max": global_max_pool, "add": global_add_pool}


class GraphClassifier(nn.Module):
    """num_layers x (GCNLayer -> ReLU), then pooling per graph, then a linear head."""

    def __init__(
        self,
        in_features: int,
        hidden_features: int,
        num_classes: int,
        num_layers: int = 3,
        pool: str = "mean",
    ):
        super().__init__()
        sizes = [in_features] + [hidden_features] * num_layers
        self.convs = nn.ModuleList(GCNLayer(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.head = nn.Linear(hidden_features, num_classes)
        self.pool = pool

    def forward(
        self, x: torch.Tensor, edge_index: torch.Tensor, batch: torch.Tensor, num_graphs: int
    ) -> torch.Tensor:
        """x (N, in_features), edge_index (2, E), batch (N,) -> logits (num_graphs, classes)."""
        for conv in self.convs:
            x = F.relu(conv(x, edge_index))
        pool = {"mean": global_mean_pool, "max": global_max_pool, "add": global_add_pool}[self.pool]
        return self.head(pool(x, batch, num_graphs))


def receptive_field(
    edge_index: torch.Tensor, num_nodes: int, node: int, num_layers: int
) -> torch.Tensor:
    """(N,) bool: the nodes whose input features can change ``node``'s output after
    ``num_layers`` message-passing layers (a directed path of at most num_layers edges into
    ``node``; the node itself always)."""
    reached = torch.zeros(num_nodes, dtype=torch.bool, device=edge_index.device)
    reached[node] = True
    source, target = edge_index[0], edge_index[1]
    for _ in range(num_layers):
        reached = reached.index_put(
            (source[reached[target]],), torch.tensor(True), accumulate=False
        )
    return reached


def gcn_parameter_count(in_features: int, out_features: int, bias: bool = True) -> int:
    """Number of trainable scalars of GCNLayer(in_features, out_features, bias)."""
    return in_features * out_features + (out_features if bias else 0)


def gat_parameter_count(
    in_features: int, out_features: int, heads: int = 1, concat: bool = True, bias: bool = True
) -> int:
    """Number of trainable scalars of GATLayer(in_features, out_features, heads, concat, bias)."""
    bias_size = (heads * out_features if concat else out_features) if bias else 0
    return in_features * heads * out_features + 2 * heads * out_features + bias_size
