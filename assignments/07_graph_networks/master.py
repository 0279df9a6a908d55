# %% [raw]
# # ASSIGNMENT CONFIG
# name: 07_graph_networks
# init_cell: false
# run_tests: false
# strip_solutions_from_all_cells: true
# export_cell:
#   pdf: false
#   run_tests: true
#   instructions: "Upload the zip this cell writes (or the .ipynb itself) to Gradescope; in Colab, use File > Download > Download .ipynb and upload that. The grader re-runs your definitions in a sandbox and skips the experiment cells, so their outputs do not matter for your score."
# tests:
#   files: true

# %% [markdown]
# # Chapter 07 — Graph neural networks: message passing, GCN and GAT layers, pooling
#
# Images live on a grid and sequences on a line; many data sets live on a **graph**: people and
# friendships, molecules and bonds, papers and citations. A graph neural network computes a
# vector for every node by repeatedly letting each node collect **messages** from its
# neighbours. In this chapter you write the two classic layers, the graph convolution (GCN,
# Kipf and Welling 2017) and graph attention (GAT, Velickovic et al. 2018), from plain tensor
# operations; then you use them to classify nodes (whose community is this node in?) and whole
# graphs (is this graph a ring or a tree?).
#
# **Allowed:** tensor operations (indexing, `index_add_`, `scatter_reduce`, `bincount`, ...),
# `nn.Module`, `nn.Parameter`, `nn.Linear`, `nn.ModuleList`, `torch.nn.functional`, autograd
# (`loss.backward()`), and `torch.optim` in the experiments.
#
# {{FORBIDDEN_RULES}}
#
# **Other rules the grader enforces.** Never change an input tensor in place (`x += ...`,
# `x[...] = ...` or an in-place method such as `x.clamp_()` on a tensor you were given): every
# output recorded after an input changed fails. Each function and method is called at least
# twice in a row on different inputs, so nothing may carry over from one call to the next.
# Where a class or function is graded with the grader's own parts in place of yours (each such
# place says so), build and call those parts by their names and never test `isinstance`
# against your own classes.
#
# **No dense adjacency matrix in the graded layers.** A graph with N nodes has N x N possible
# edges but real graphs use a tiny fraction of them. The grader runs your `GCNLayer` and
# `GATLayer` on a graph of **50,000 nodes and 400,000 edges** (8 features, float32), where an
# N x N matrix would need 10 GB and a one-hot (E, N) matrix even more; the sandbox has 640 MB.
# Work per edge: gather, multiply, and sum into the targets. A correct layer takes well under a
# second there. No tensor in the layers may grow like N x N or N x E: not a dense adjacency or
# attention matrix, not a one-hot matrix of the edges, not `torch.diag` of the degrees. The
# public checks run each layer on a ring of 1,000 nodes and fail if any operation returns a
# tensor of 100,000 entries or more (a correct layer stays below 10,000 there).
#
# **How this notebook is graded.** Every function and class below is called by hidden checks on
# seeded float64 graphs: paths, stars with directed edges, random graphs with isolated nodes,
# graphs without edges, edges in random order. Layers are built by the grader, which then
# **installs seeded parameters by name** (the names and shapes in each docstring are part of
# the specification), calls the layer on two different graphs in a row (nothing may be cached
# between calls) and compares, as separate items, the output, the gradient with respect to the
# features and the gradient of every parameter. Relabelling the nodes of a graph must permute
# the output the same way: that is also an item. Your layers are graded with the grader's own
# `add_self_loops`, `degree`, `gcn_normalization` and `segment_softmax` put in place of yours
# (call them by these names), and the classifiers of section 6 with the grader's own layers and
# pools, so a bug in one function costs only that function's points. Cells starting with
# `# EXPERIMENT` are not run by the grader.
#
# ## Conventions (those of PyTorch Geometric)
# * Node features `x`: `(N, C)`, one row per node.
# * Edges `edge_index`: `(2, E)` int64; column `k` is the edge `edge_index[0, k] ->
#   edge_index[1, k]`, **source to target**. Messages flow along the edges, from source to
#   target: a node aggregates what its *incoming* edges bring. An undirected graph lists every
#   edge in both directions. The edges come in any order.
# * Input graphs have no self-loops; the layers add exactly one per node (`i -> i`), so that a
#   node keeps part of its own features.
# * A batch of graphs is one big graph with no edges between the parts, plus `batch` `(N,)`:
#   the graph index of every node (`batch[i] = g`). `batch` need not be sorted.
#
# A worked example used throughout, 4 nodes, the undirected path 0 - 1 - 2 plus node 3 alone:
#
# ```
# edge_index = [[0, 1, 1, 2],      sources
#               [1, 0, 2, 1]]      targets
# ```
# With self-loops added, node 1 receives from 0, 2 and itself (in-degree 3), nodes 0 and 2 from
# 1 and themselves (2), node 3 only from itself (1).

# %%
import math

import torch
import torch.nn.functional as F
from torch import nn

# %% [markdown]
# ## 1. Self-loops, degrees and the GCN normalisation
#
# `add_self_loops(edge_index, num_nodes)` returns `(2, E + N)`: the input edges unchanged, then
# the loops `(0, 0), (1, 1), ..., (N-1, N-1)` in node order. Every node gets one, isolated
# nodes included. Keep the int64 dtype (`torch.arange` gives int64).
#
# `degree(index, num_nodes, dtype=torch.float32)` counts how often each node number occurs in
# the 1-D tensor `index`, as a `(num_nodes,)` tensor of `dtype`; nodes that never occur count 0.
# `degree(edge_index[1], N)` is the in-degree, `degree(edge_index[0], N)` the out-degree. Use
# `torch.zeros(...).index_add_(0, index, ones)` or `torch.bincount(index, minlength=N)`.
#
# **The GCN normalisation.** A GCN layer averages neighbours, but a plain sum would let
# high-degree nodes explode and a plain mean (`1 / deg(i)`) ignores how popular the sender is.
# Kipf and Welling weight the edge `j -> i` by
#
# `w_ji = 1 / sqrt(deg(j) * deg(i))`,
#
# with degrees counted **on the target side, self-loop included** (`deg(i)` = number of edges
# into `i` after adding the loops, at least 1, so never a division by zero). In matrix form
# this is `D^-1/2 (A + I) D^-1/2`, with `A[i, j] = 1` for an edge `j -> i`. In the worked
# example `w_01 = 1/sqrt(2*3)`, `w_11 = 1/3`, `w_33 = 1`. On a directed graph the source's
# degree is still its *in*-degree (a node with no incoming edges has degree 1, its self-loop).
#
# `gcn_normalization(edge_index, num_nodes, dtype=torch.float32)` returns
# `(edge_index_with_loops, edge_weight)`: the `(2, E + N)` edges of `add_self_loops` and the
# `(E + N,)` weights in `dtype`. The grader compares the edges and weights pairwise in any
# order, so you may reorder them; returning them in `add_self_loops`' order is simplest.

# %% [raw]
# # BEGIN QUESTION
# name: q1
# points: 6

# %% [raw]
# # BEGIN SOLUTION

# %%
def add_self_loops(edge_index, num_nodes):
    """edge_index (2, E) int64 -> (2, E + num_nodes): the edges, then (i, i) for i = 0..N-1."""
    assert edge_index.ndim == 2 and edge_index.shape[0] == 2, f"edge_index must be (2, E), got {tuple(edge_index.shape)}"
    # BEGIN SOLUTION NO PROMPT
    node_ids = torch.arange(num_nodes, dtype=edge_index.dtype, device=edge_index.device)
    return torch.cat([edge_index, torch.stack([node_ids, node_ids])], dim=1)
    # END SOLUTION
    """ # BEGIN PROMPT
    raise NotImplementedError("add_self_loops")
    """ # END PROMPT


def degree(index, num_nodes, dtype=torch.float32):
    """index (E,) int64 node numbers -> (num_nodes,) occurrences of each node, in dtype."""
    assert index.ndim == 1, f"index must be 1-D (one row of edge_index), got {tuple(index.shape)}"
    # BEGIN SOLUTION NO PROMPT
    ones = torch.ones(index.shape[0], dtype=dtype, device=index.device)
    return torch.zeros(num_nodes, dtype=dtype, device=index.device).index_add_(0, index, ones)
    # END SOLUTION
    """ # BEGIN PROMPT
    raise NotImplementedError("degree")
    """ # END PROMPT


def gcn_normalization(edge_index, num_nodes, dtype=torch.float32):
    """edge_index (2, E) -> (edges (2, E + N) with self-loops, weights (E + N,) in dtype),
    weight of j -> i = 1 / sqrt(deg(j) * deg(i)), degrees counted on the target side with loops."""
    assert edge_index.ndim == 2 and edge_index.shape[0] == 2, f"edge_index must be (2, E), got {tuple(edge_index.shape)}"
    # BEGIN SOLUTION NO PROMPT
    looped = add_self_loops(edge_index, num_nodes)
    deg_inv_sqrt = degree(looped[1], num_nodes, dtype).rsqrt()
    return looped, deg_inv_sqrt[looped[0]] * deg_inv_sqrt[looped[1]]
    # END SOLUTION
    """ # BEGIN PROMPT
    raise NotImplementedError("gcn_normalization")
    """ # END PROMPT

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
example = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
looped = add_self_loops(example, 4)
assert looped.dtype == torch.int64 and looped.shape == (2, 8), f"add_self_loops of 4 edges on 4 nodes gives (2, 8) int64, got {tuple(looped.shape)} {looped.dtype}"
assert torch.equal(looped[:, :4], example) and torch.equal(looped[:, 4:], torch.tensor([[0, 1, 2, 3], [0, 1, 2, 3]])), "the input edges first, then (0, 0), (1, 1), (2, 2), (3, 3)"

# %%
counts = degree(torch.tensor([1, 0, 2, 1, 1]), 4, torch.float64)
assert counts.dtype == torch.float64 and torch.equal(counts, torch.tensor([1.0, 3.0, 1.0, 0.0], dtype=torch.float64)), f"degree counts each node's occurrences in the requested dtype (node 3 never occurs: 0); got {counts}"
assert degree(torch.tensor([0]), 2).dtype == torch.float32, "the default dtype is float32"

# %%
example = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
edges, weights = gcn_normalization(example, 4, torch.float64)
assert edges.shape == (2, 8) and weights.shape == (8,) and weights.dtype == torch.float64, "gcn_normalization returns the 8 edges with loops and 8 weights in the requested dtype"
by_edge = {(int(s), int(t)): float(w) for s, t, w in zip(edges[0], edges[1], weights)}
assert abs(by_edge[(0, 1)] - 1 / math.sqrt(6)) < 1e-12 and abs(by_edge[(1, 1)] - 1 / 3) < 1e-12 and abs(by_edge[(3, 3)] - 1) < 1e-12, "worked example: w_01 = 1/sqrt(2*3), w_11 = 1/3, the isolated node's loop 1"

# %%
directed = torch.tensor([[0, 0], [1, 2]])
edges, weights = gcn_normalization(directed, 3, torch.float64)
by_edge = {(int(s), int(t)): float(w) for s, t, w in zip(edges[0], edges[1], weights)}
assert abs(by_edge[(0, 1)] - 1 / math.sqrt(2)) < 1e-12, "directed 0 -> 1, 0 -> 2: node 0 has in-degree 1 (its loop), node 1 has 2: w_01 = 1/sqrt(1*2). Count degrees on the TARGET side"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# ## 2. The graph convolution layer (GCN)
#
# A GCN layer transforms every node's features with one shared linear map and then lets each
# node take the normalised sum over its incoming edges:
#
# `out_i = sum over edges j -> i (self-loop included) of w_ji * (x_j W) + b`.
#
# In matrix form, `out = D^-1/2 (A + I) D^-1/2 X W + b`; but you never build that N x N matrix.
# **Message passing** does the same per edge:
#
# 1. `h = self.linear(x)`: `(N, out_features)`; transforming first is cheaper when
#    `out_features < in_features`, and the sum is linear, so the order does not matter.
# 2. messages: `h[source] * weight[:, None]`: one row per edge, `(E + N, out_features)`.
# 3. aggregation: `index_add_(0, target, messages)` into an `(N, out_features)` tensor of zeros
#    (`h.new_zeros(...)` copies h's dtype).
# 4. add the bias.
#
# Shapes of the worked example with `GCNLayer(3, 2)`: x `(4, 3)` -> h `(4, 2)` -> messages
# `(8, 2)` -> out `(4, 2)`. The isolated node 3 gets only its own message: `out_3 = h_3 + b`.
#
# Parameters (names and shapes graded): `linear = nn.Linear(in_features, out_features,
# bias=False)` (so `linear.weight` is `(out_features, in_features)`) and `bias`, an
# `nn.Parameter` of shape `(out_features,)` initialised to zeros, or, with `bias=False`, no bias
# at all: `self.register_parameter("bias", None)`, so that `self.bias` is None. Compute the
# normalisation with `gcn_normalization(..., dtype=x.dtype)` inside `forward`, on every call:
# the next call may bring another graph.

# %% [raw]
# # BEGIN QUESTION
# name: q2
# points: 5

# %% [raw]
# # BEGIN SOLUTION

# %%
class GCNLayer(nn.Module):
    """Graph convolution: out_i = sum_{j -> i, self-loop included} w_ji * (x_j W) + b.

    Parameters: linear = nn.Linear(in_features, out_features, bias=False);
                bias: nn.Parameter (out_features,), zeros, or None when bias=False.
    """

    def __init__(self, in_features, out_features, bias=True):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        # BEGIN SOLUTION NO PROMPT
        self.linear = nn.Linear(in_features, out_features, bias=False)
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("GCNLayer.__init__")
        """ # END PROMPT

    def forward(self, x, edge_index):
        """x (N, in_features), edge_index (2, E) -> (N, out_features)."""
        assert x.ndim == 2 and x.shape[1] == self.in_features, f"GCNLayer expects x of shape (N, {self.in_features}), got {tuple(x.shape)}"
        assert edge_index.ndim == 2 and edge_index.shape[0] == 2, f"edge_index must be (2, E), got {tuple(edge_index.shape)}"
        # BEGIN SOLUTION NO PROMPT
        edges, edge_weight = gcn_normalization(edge_index, x.shape[0], dtype=x.dtype)
        transformed = self.linear(x)
        aggregated = torch.zeros_like(transformed).index_add_(0, edges[1], transformed[edges[0]] * edge_weight.unsqueeze(-1))
        return aggregated if self.bias is None else aggregated + self.bias
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("GCNLayer.forward")
        """ # END PROMPT

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
layer = GCNLayer(3, 2)
shapes = {name: tuple(p.shape) for name, p in layer.named_parameters()}
assert shapes == {"linear.weight": (2, 3), "bias": (2,)}, f"GCNLayer(3, 2) owns linear.weight (2, 3) and bias (2,); found {shapes}"
assert GCNLayer(3, 2, bias=False).bias is None and len(list(GCNLayer(3, 2, bias=False).parameters())) == 1, "with bias=False there is no bias parameter (self.bias is None)"

# %%
edges, weights = gcn_normalization(torch.tensor([[0], [1]]), 3, torch.float64)
by_edge = {(int(s), int(t)): float(w) for s, t, w in zip(edges[0], edges[1], weights)}
assert by_edge.keys() == {(0, 1), (0, 0), (1, 1), (2, 2)} and all(abs(by_edge[edge] - 1 / math.sqrt(degrees)) < 1e-12 for edge, degrees in [((0, 1), 1 * 2), ((0, 0), 1 * 1), ((1, 1), 2 * 2), ((2, 2), 1 * 1)]), "q1 fails: GCNLayer calls your gcn_normalization, which is wrong on the graph 0 -> 1 with node 2 alone; fix q1 first"
layer = GCNLayer(1, 1).double()
with torch.no_grad():
    layer.linear.weight.fill_(1.0)
    layer.bias.fill_(0.5)
x = torch.tensor([[1.0], [2.0], [3.0], [4.0]], dtype=torch.float64)
out = layer(x, torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]]))
expected_1 = 1 / math.sqrt(6) + 2 / 3 + 3 / math.sqrt(6) + 0.5
assert out.shape == (4, 1) and out.dtype == torch.float64, f"output (N, out_features) in x's dtype, got {tuple(out.shape)} {out.dtype}"
assert abs(out[1, 0].item() - expected_1) < 1e-12, "worked example with W = 1, b = 0.5: out_1 = 1/sqrt(6) * 1 + 1/3 * 2 + 1/sqrt(6) * 3 + 0.5"
assert abs(out[3, 0].item() - 4.5) < 1e-12, "the isolated node keeps only its own message: out_3 = x_3 W + b"

# %%
generator = torch.Generator().manual_seed(0)
layer = GCNLayer(3, 4).double()
x = torch.randn(6, 3, dtype=torch.float64, generator=generator, requires_grad=True)
edges = torch.tensor([[0, 1, 2, 3, 4], [1, 2, 3, 4, 5]])
dense = torch.eye(6, dtype=torch.float64)
dense[edges[1], edges[0]] = 1.0
scale = dense.sum(dim=1).rsqrt()
expected = (scale[:, None] * dense * scale[None, :]) @ layer.linear(x) + layer.bias
assert torch.allclose(layer(x, edges), expected), "a directed chain 0 -> 1 -> ... -> 5 must match D^-1/2 (A + I) D^-1/2 X W + b with A[i, j] = 1 for j -> i (messages flow source to target)"
layer(x, edges).sum().backward()
assert x.grad is not None and layer.linear.weight.grad is not None and layer.bias.grad is not None, "gradients must reach x, linear.weight and bias"

# %%
generator = torch.Generator().manual_seed(1)
layer, twin = GCNLayer(2, 3).double(), GCNLayer(2, 3).double()
with torch.no_grad():
    layer.linear.weight.copy_(torch.randn(3, 2, dtype=torch.float64, generator=generator))
twin.load_state_dict(layer.state_dict())
x = torch.randn(5, 2, dtype=torch.float64, generator=generator)
chain = torch.tensor([[0, 1, 2, 3], [1, 2, 3, 4]])
layer(x[:3], torch.tensor([[0, 2], [1, 1]]))
assert torch.allclose(layer(x, chain), twin(x, chain)), "called first on a 3-node graph, then on a 5-node chain, the layer must give what a fresh copy gives on the chain: compute gcn_normalization inside forward on every call (nothing kept from the previous call)"

# %%
from student.graphs import LargestTensor, ring

# the largest tensor any torch operation returns while the layer runs on a ring of 1,000 nodes
with LargestTensor() as seen:
    GCNLayer(2, 2)(torch.ones(1000, 2), ring(1000))
assert seen.entries < 100_000, f"on a ring of 1,000 nodes and 2,000 edges, GCNLayer (or a helper it calls) built a tensor of {seen.entries:,} entries: a dense N x N adjacency, a one-hot (N, E) matrix or torch.diag of the degrees. Work per edge: gather h[source], scale by the weights, index_add_ into the targets"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# ## 3. Softmax over each node's incoming edges
#
# Attention needs a softmax over the edges *into* each node: edge `k` with target `index[k]`
# gets `exp(s_k) / sum over edges l with index[l] = index[k] of exp(s_l)`. The weights into
# every node sum to 1; a node with a single incoming edge (for example only its self-loop)
# gives that edge weight 1.
#
# Numerical stability: `exp(1000)` is `inf` even in float64. As with the ordinary softmax,
# subtract the **maximum of each group** first; it cancels in the ratio. Per-group maxima come
# from `torch.full((N, H), -inf).scatter_reduce(0, index_expanded, scores, reduce="amax")`
# (pass `scores.detach()`: the maximum is a constant shift and needs no gradient), sums from
# `index_add_`. A single global maximum is not enough: a group far below it underflows to 0/0.
#
# `segment_softmax(scores, index, num_nodes)`: scores `(E,)` or `(E, H)` (one column per
# attention head), index `(E,)` -> the same shape as scores. Nodes without incoming edges simply
# have no entries.

# %% [raw]
# # BEGIN QUESTION
# name: q3
# points: 1.5

# %% [raw]
# # BEGIN SOLUTION

# %%
def segment_softmax(scores, index, num_nodes):
    """scores (E,) or (E, H), index (E,) target node of each edge -> softmax of the scores over
    the edges of each target node, same shape as scores."""
    assert scores.ndim in (1, 2) and index.shape == scores.shape[:1], f"scores (E,) or (E, H) and index (E,) expected, got {tuple(scores.shape)} and {tuple(index.shape)}"
    # BEGIN SOLUTION NO PROMPT
    columns = scores if scores.ndim == 2 else scores.unsqueeze(1)
    spread = index.unsqueeze(1).expand_as(columns)
    group_max = torch.full((num_nodes, columns.shape[1]), float("-inf"), dtype=scores.dtype).scatter_reduce(0, spread, columns.detach(), reduce="amax")
    exps = torch.exp(columns - group_max[index])
    sums = torch.zeros(num_nodes, columns.shape[1], dtype=scores.dtype).index_add_(0, index, exps)
    return (exps / sums[index]).reshape(scores.shape)
    # END SOLUTION
    """ # BEGIN PROMPT
    raise NotImplementedError("segment_softmax")
    """ # END PROMPT

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
weights = segment_softmax(torch.tensor([0.0, math.log(3.0), 5.0], dtype=torch.float64), torch.tensor([1, 1, 0]), 3)
assert weights.shape == (3,), f"(E,) scores give (E,) weights, got {tuple(weights.shape)}"
assert torch.allclose(weights, torch.tensor([0.25, 0.75, 1.0], dtype=torch.float64)), "node 1 receives two edges (scores 0 and log 3: weights 1/4, 3/4), node 0 one edge (weight 1): normalise per target node"

# %%
big = segment_softmax(torch.tensor([[1000.0, -1000.0], [999.0, -1001.0], [-1000.0, 0.0]], dtype=torch.float64), torch.tensor([0, 0, 1]), 2)
assert big.shape == (3, 2) and torch.isfinite(big).all(), "scores of magnitude 1000 must not overflow: subtract each group's maximum first"
assert torch.allclose(big[:, 0], torch.tensor([1 / (1 + math.exp(-1)), 1 / (1 + math.exp(1)), 1.0], dtype=torch.float64)), "each head (column) is normalised separately"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# ## 4. The graph attention layer (GAT)
#
# GCN fixes how much each neighbour counts (the degrees decide). GAT *learns* it: every edge
# gets an attention weight computed from the two nodes' features. With `h = x W` split into
# `heads` independent heads of `out_features` each, for head `k` and edge `j -> i`:
#
# `e_ji = LeakyReLU(a_src[k] . h_j[k] + a_dst[k] . h_i[k])` (slope `negative_slope`, 0.2 by default),
#
# `alpha_ji = softmax of e over the edges into i` (self-loop included: your `segment_softmax`
# grouped by target),
#
# `out_i[k] = sum over j -> i of alpha_ji * h_j[k]`.
#
# The heads' outputs are **concatenated** (`concat=True`, output `(N, heads * out_features)`)
# or **averaged** (`concat=False`, output `(N, out_features)`, usual in the last layer), then
# the bias is added. Note which vector meets which node: `a_src` the source (the sender, `j`),
# `a_dst` the target (`i`). The score splits into a per-node part for each role, so compute
# `(h * att_src).sum(-1)` once per node, `(N, heads)`, and gather it per edge: cheap and sparse.
# Without the LeakyReLU the score would be `u_j + v_i`, and `v_i` cancels in the softmax over
# i's edges: every node would rank its neighbours the same way.
#
# Parameters (names and shapes graded): `linear = nn.Linear(in_features, heads *
# out_features, bias=False)` (column block `k` of `h` is head `k`: `h.view(N, heads,
# out_features)`), `att_src` and `att_dst` `(1, heads, out_features)` (initialise them, e.g.
# `nn.init.xavier_uniform_`), and `bias` `(heads * out_features,)` with concat or
# `(out_features,)` without, zeros; None when `bias=False`.
#
# `forward(x, edge_index)` returns `(out, attention)`, attention `(E + N, heads)` in the order
# of `add_self_loops(edge_index, N)` (the grader compares it entry by entry): the weights you
# will draw in the experiments.

# %% [raw]
# # BEGIN QUESTION
# name: q4
# points: 8

# %% [raw]
# # BEGIN SOLUTION

# %%
class GATLayer(nn.Module):
    """Graph attention with `heads` heads; see the formulas above.

    Parameters: linear = nn.Linear(in_features, heads * out_features, bias=False);
                att_src, att_dst: (1, heads, out_features);
                bias: (heads * out_features,) if concat else (out_features,), zeros; None if bias=False.
    """

    def __init__(self, in_features, out_features, heads=1, concat=True, negative_slope=0.2, bias=True):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.heads = heads
        self.concat = concat
        self.negative_slope = negative_slope
        # BEGIN SOLUTION NO PROMPT
        self.linear = nn.Linear(in_features, heads * out_features, bias=False)
        self.att_src = nn.Parameter(nn.init.xavier_uniform_(torch.empty(1, heads, out_features)))
        self.att_dst = nn.Parameter(nn.init.xavier_uniform_(torch.empty(1, heads, out_features)))
        self.bias = nn.Parameter(torch.zeros(heads * out_features if concat else out_features)) if bias else None
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("GATLayer.__init__")
        """ # END PROMPT

    def forward(self, x, edge_index):
        """x (N, in_features), edge_index (2, E) -> (out, attention):
        out (N, heads * out_features) if concat else (N, out_features); attention (E + N, heads)."""
        assert x.ndim == 2 and x.shape[1] == self.in_features, f"GATLayer expects x of shape (N, {self.in_features}), got {tuple(x.shape)}"
        assert edge_index.ndim == 2 and edge_index.shape[0] == 2, f"edge_index must be (2, E), got {tuple(edge_index.shape)}"
        # BEGIN SOLUTION NO PROMPT
        n = x.shape[0]
        src, dst = add_self_loops(edge_index, n)
        per_head = self.linear(x).view(n, self.heads, self.out_features)
        from_src = (per_head * self.att_src).sum(dim=-1)
        from_dst = (per_head * self.att_dst).sum(dim=-1)
        alpha = segment_softmax(F.leaky_relu(from_src[src] + from_dst[dst], negative_slope=self.negative_slope), dst, n)
        summed = torch.zeros_like(per_head).index_add_(0, dst, per_head[src] * alpha.unsqueeze(-1))
        result = summed.flatten(1) if self.concat else summed.mean(dim=1)
        if self.bias is not None:
            result = result + self.bias
        return result, alpha
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("GATLayer.forward")
        """ # END PROMPT

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
layer = GATLayer(3, 2, heads=4)
shapes = {name: tuple(p.shape) for name, p in layer.named_parameters()}
assert shapes == {"linear.weight": (8, 3), "att_src": (1, 4, 2), "att_dst": (1, 4, 2), "bias": (8,)}, f"GATLayer(3, 2, heads=4) owns linear.weight (8, 3), att_src and att_dst (1, 4, 2), bias (8,); found {shapes}"
assert tuple(GATLayer(3, 2, heads=4, concat=False).bias.shape) == (2,), "with concat=False the bias has out_features entries"

# %%
assert add_self_loops(torch.tensor([[1], [0]]), 3).tolist() == [[1, 0, 1, 2], [0, 0, 1, 2]] and torch.allclose(segment_softmax(torch.tensor([0.0, math.log(3.0)], dtype=torch.float64), torch.tensor([0, 0]), 1), torch.tensor([0.25, 0.75], dtype=torch.float64)), "q1 or q3 fails: GATLayer calls your add_self_loops and segment_softmax, which are wrong on a tiny case; fix them first"
generator = torch.Generator().manual_seed(0)
layer = GATLayer(3, 2, heads=4).double()
x = torch.randn(4, 3, dtype=torch.float64, generator=generator, requires_grad=True)
out, attention = layer(x, torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]]))
assert out.shape == (4, 8) and attention.shape == (8, 4), f"4 nodes, 4 edges, 4 heads of 2: out (4, 8) and attention (8, 4), got {tuple(out.shape)} and {tuple(attention.shape)}"
sums = torch.zeros(4, 4, dtype=torch.float64).index_add_(0, torch.tensor([1, 0, 2, 1, 0, 1, 2, 3]), attention)
assert torch.allclose(sums, torch.ones(4, 4, dtype=torch.float64)), "the attention into every node sums to 1 per head (softmax grouped by TARGET, self-loops included)"
assert torch.allclose(attention[7], torch.ones(4, dtype=torch.float64)), "the isolated node attends only to itself: weight 1"
out.sum().backward()
assert all(p.grad is not None for p in layer.parameters()) and x.grad is not None, "gradients must reach x and every parameter"

# %%
layer = GATLayer(2, 3, heads=2, concat=False).double()
with torch.no_grad():
    layer.att_src.zero_()
    layer.att_dst.zero_()
x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], dtype=torch.float64)
out, attention = layer(x, torch.tensor([[0, 1], [2, 2]]))
h = layer.linear(x).view(3, 2, 3)
assert out.shape == (3, 3), f"concat=False averages the heads: (N, out_features) = (3, 3), got {tuple(out.shape)}"
assert torch.allclose(out[2], h.mean(dim=0).mean(dim=0) + layer.bias), "with zero attention vectors every incoming edge counts equally: node 2 averages h_0, h_1, h_2, then the heads are averaged"

# %%
layer = GATLayer(1, 1, heads=2).double()
heads = [(1.0, 1.0, 0.0, 0.25), (2.0, 1.0, 0.5, -0.5)]  # per head: W, a_src, a_dst, bias
with torch.no_grad():
    layer.linear.weight.copy_(torch.tensor([[w] for w, _, _, _ in heads]))
    layer.att_src.copy_(torch.tensor([[[a_src] for _, a_src, _, _ in heads]]))
    layer.att_dst.copy_(torch.tensor([[[a_dst] for _, _, a_dst, _ in heads]]))
    layer.bias.copy_(torch.tensor([b for _, _, _, b in heads]))
x = [1.0, -1.0, -2.0]
out, attention = layer(torch.tensor([[value] for value in x], dtype=torch.float64), torch.tensor([[1, 2], [0, 0]]))
assert out.shape == (3, 2) and attention.shape == (5, 2), f"3 nodes, 2 edges, 2 heads of 1 feature: out (3, 2), attention (5, 2); got {tuple(out.shape)} and {tuple(attention.shape)}"
for k, (w, a_src, a_dst, b) in enumerate(heads):
    h = [w * value for value in x]
    scores = [a_src * h[j] + a_dst * h[0] for j in (1, 2, 0)]  # edges 1 -> 0, 2 -> 0, then the loop 0 -> 0
    exps = [math.exp(score if score > 0 else 0.2 * score) for score in scores]
    alpha = [e / sum(exps) for e in exps]
    assert torch.allclose(attention[:3, k], torch.tensor(alpha, dtype=torch.float64), atol=1e-12), f"head {k}: the attention of node 0's edges 1 -> 0, 2 -> 0, 0 -> 0 must be the softmax of LeakyReLU(a_src . h_j + a_dst . h_0) (a_dst = {a_dst} here): a_src meets the SOURCE j, a_dst the target, and a negative score is multiplied by negative_slope = 0.2"
    assert abs(out[0, k].item() - (sum(a * h[j] for a, j in zip(alpha, (1, 2, 0))) + b)) < 1e-12, f"head {k}: column {k} of out_0 must be sum over j of alpha_j0 * h_j in head {k} alone, plus the bias: with concat=True the heads stay side by side (not averaged)"

# %%
from student.graphs import LargestTensor, ring

with LargestTensor() as seen:
    GATLayer(2, 2, heads=2)(torch.ones(1000, 2), ring(1000))
assert seen.entries < 100_000, f"on a ring of 1,000 nodes and 2,000 edges, GATLayer (or a helper it calls) built a tensor of {seen.entries:,} entries: a dense N x N attention or score matrix, or a one-hot (N, E) matrix. Work per edge: scores from the per-node parts gathered at the edges, segment_softmax by target, index_add_ into the targets"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# ## 5. Pooling: one vector per graph
#
# To classify whole graphs, the node vectors of each graph are reduced to one vector, whatever
# the graph's size and however its nodes are numbered (a sum, a mean or a maximum does not care
# about the order). With `batch` `(N,)` naming each node's graph:
#
# * `global_add_pool(x, batch, num_graphs)`: row `g` = sum of the rows of `x` with `batch == g`;
# * `global_mean_pool`: their mean;
# * `global_max_pool`: their feature-wise maximum (`scatter_reduce(..., reduce="amax",
#   include_self=False)`).
#
# All return `(num_graphs, C)`. A graph without nodes (possible when `num_graphs` is larger than
# the graphs present) gives a row of zeros in all three. `batch` need not be sorted. Do not loop
# over the graphs in Python, and do not pool the whole batch into one row.

# %% [raw]
# # BEGIN QUESTION
# name: q5
# points: 4.5

# %% [raw]
# # BEGIN SOLUTION

# %%
def global_add_pool(x, batch, num_graphs):
    """x (N, C), batch (N,) graph of each node -> (num_graphs, C): per-graph sums."""
    assert x.ndim == 2 and batch.shape == x.shape[:1], f"x (N, C) and batch (N,) expected, got {tuple(x.shape)} and {tuple(batch.shape)}"
    # BEGIN SOLUTION NO PROMPT
    return torch.zeros(num_graphs, x.shape[1], dtype=x.dtype).index_add_(0, batch, x)
    # END SOLUTION
    """ # BEGIN PROMPT
    raise NotImplementedError("global_add_pool")
    """ # END PROMPT


def global_mean_pool(x, batch, num_graphs):
    """x (N, C), batch (N,) -> (num_graphs, C): per-graph means (zeros for an empty graph)."""
    assert x.ndim == 2 and batch.shape == x.shape[:1], f"x (N, C) and batch (N,) expected, got {tuple(x.shape)} and {tuple(batch.shape)}"
    # BEGIN SOLUTION NO PROMPT
    sizes = torch.bincount(batch, minlength=num_graphs).clamp(min=1).to(x.dtype)
    return global_add_pool(x, batch, num_graphs) / sizes.unsqueeze(1)
    # END SOLUTION
    """ # BEGIN PROMPT
    raise NotImplementedError("global_mean_pool")
    """ # END PROMPT


def global_max_pool(x, batch, num_graphs):
    """x (N, C), batch (N,) -> (num_graphs, C): per-graph feature-wise maxima (zeros if empty)."""
    assert x.ndim == 2 and batch.shape == x.shape[:1], f"x (N, C) and batch (N,) expected, got {tuple(x.shape)} and {tuple(batch.shape)}"
    # BEGIN SOLUTION NO PROMPT
    return torch.zeros(num_graphs, x.shape[1], dtype=x.dtype).scatter_reduce(0, batch.unsqueeze(1).expand(-1, x.shape[1]), x, reduce="amax", include_self=False)
    # END SOLUTION
    """ # BEGIN PROMPT
    raise NotImplementedError("global_max_pool")
    """ # END PROMPT

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
x = torch.tensor([[1.0, -1.0], [3.0, -5.0], [10.0, 2.0]], dtype=torch.float64)
batch = torch.tensor([0, 0, 2])
assert torch.equal(global_add_pool(x, batch, 3), torch.tensor([[4.0, -6.0], [0.0, 0.0], [10.0, 2.0]], dtype=torch.float64)), "add: graph 0 = rows 0 and 1, graph 1 has no nodes (zeros), graph 2 = row 2"
assert torch.equal(global_mean_pool(x, batch, 3), torch.tensor([[2.0, -3.0], [0.0, 0.0], [10.0, 2.0]], dtype=torch.float64)), "mean per graph, zeros for a graph without nodes (not the mean of the whole batch)"
assert torch.equal(global_max_pool(x, batch, 3), torch.tensor([[3.0, -1.0], [0.0, 0.0], [10.0, 2.0]], dtype=torch.float64)), "feature-wise max per graph (negative maxima stay negative), zeros for a graph without nodes"

# %%
x = torch.tensor([[1.0], [2.0], [4.0]], dtype=torch.float64, requires_grad=True)
global_mean_pool(x, torch.tensor([1, 0, 1]), 2).sum().backward()
assert torch.allclose(x.grad, torch.tensor([[0.5], [1.0], [0.5]], dtype=torch.float64)), "batch need not be sorted; each node's gradient is 1 / (size of its graph)"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# ## 6. Node and graph classifiers
#
# The architectures are fixed (names graded: the grader installs parameters by these names):
#
# * `GCN(in_features, hidden_features, num_classes, dropout=0.5)`: `conv1 =
#   GCNLayer(in_features, hidden_features)`, ReLU, dropout, `conv2 = GCNLayer(hidden_features,
#   num_classes)`; `forward(x, edge_index)` returns the logits `(N, num_classes)`.
# * `GAT(in_features, hidden_features, num_classes, heads=4, dropout=0.5)`: `conv1 =
#   GATLayer(in_features, hidden_features, heads=heads, concat=True)`, ELU, dropout, `conv2 =
#   GATLayer(heads * hidden_features, num_classes, heads=1, concat=False)`; keep only the output
#   of each layer's `(out, attention)`.
# * `GraphClassifier(in_features, hidden_features, num_classes, num_layers=3, pool="mean")`:
#   `convs`, an `nn.ModuleList` of `num_layers` `GCNLayer`s (the first from `in_features` to
#   `hidden_features`, the others `hidden_features` to `hidden_features`), each followed by ReLU
#   (the last one too); then the pool named by `pool` (`"mean"`, `"max"` or `"add"`, your
#   functions of section 5); then `head = nn.Linear(hidden_features, num_classes)`. `forward(x, edge_index, batch,
#   num_graphs)` returns `(num_graphs, num_classes)`.
#
# Dropout: use `F.dropout(h, self.dropout, self.training)`, so that `model.eval()` switches it
# off. The grader checks the classifiers in eval mode with **its own** `GCNLayer`, `GATLayer`
# and pools in place of yours (build them by these names inside `__init__` and `forward`), so
# only the wiring is graded here.

# %% [raw]
# # BEGIN QUESTION
# name: q6
# points: 4.5

# %% [raw]
# # BEGIN SOLUTION

# %%
class GCN(nn.Module):
    """conv1 -> ReLU -> dropout -> conv2; forward(x (N, in), edge_index) -> logits (N, classes)."""

    def __init__(self, in_features, hidden_features, num_classes, dropout=0.5):
        super().__init__()
        self.dropout = dropout
        # BEGIN SOLUTION NO PROMPT
        self.conv1 = GCNLayer(in_features, hidden_features)
        self.conv2 = GCNLayer(hidden_features, num_classes)
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("GCN.__init__")
        """ # END PROMPT

    def forward(self, x, edge_index):
        # BEGIN SOLUTION NO PROMPT
        hidden = F.dropout(torch.relu(self.conv1(x, edge_index)), self.dropout, self.training)
        return self.conv2(hidden, edge_index)
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("GCN.forward")
        """ # END PROMPT


class GAT(nn.Module):
    """conv1 (heads, concat) -> ELU -> dropout -> conv2 (1 head, mean) -> logits (N, classes)."""

    def __init__(self, in_features, hidden_features, num_classes, heads=4, dropout=0.5):
        super().__init__()
        self.dropout = dropout
        # BEGIN SOLUTION NO PROMPT
        self.conv1 = GATLayer(in_features, hidden_features, heads=heads, concat=True)
        self.conv2 = GATLayer(heads * hidden_features, num_classes, heads=1, concat=False)
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("GAT.__init__")
        """ # END PROMPT

    def forward(self, x, edge_index):
        # BEGIN SOLUTION NO PROMPT
        hidden = F.dropout(F.elu(self.conv1(x, edge_index)[0]), self.dropout, self.training)
        return self.conv2(hidden, edge_index)[0]
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("GAT.forward")
        """ # END PROMPT


class GraphClassifier(nn.Module):
    """num_layers x (GCNLayer -> ReLU) in self.convs, pooling per graph, self.head (nn.Linear)."""

    def __init__(self, in_features, hidden_features, num_classes, num_layers=3, pool="mean"):
        super().__init__()
        assert pool in ("mean", "max", "add"), f"pool must be 'mean', 'max' or 'add', got {pool!r}"
        self.pool = pool
        # BEGIN SOLUTION NO PROMPT
        widths = [in_features] + [hidden_features] * num_layers
        self.convs = nn.ModuleList([GCNLayer(widths[k], widths[k + 1]) for k in range(num_layers)])
        self.head = nn.Linear(hidden_features, num_classes)
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("GraphClassifier.__init__")
        """ # END PROMPT

    def forward(self, x, edge_index, batch, num_graphs):
        """x (N, in), edge_index (2, E), batch (N,) -> logits (num_graphs, num_classes)."""
        # BEGIN SOLUTION NO PROMPT
        for conv in self.convs:
            x = torch.relu(conv(x, edge_index))
        if self.pool == "mean":
            pooled = global_mean_pool(x, batch, num_graphs)
        elif self.pool == "max":
            pooled = global_max_pool(x, batch, num_graphs)
        else:
            pooled = global_add_pool(x, batch, num_graphs)
        return self.head(pooled)
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("GraphClassifier.forward")
        """ # END PROMPT

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
model = GCN(5, 8, 3)
names = sorted(name for name, _ in model.named_parameters())
assert names == ["conv1.bias", "conv1.linear.weight", "conv2.bias", "conv2.linear.weight"], f"GCN owns conv1 and conv2 (GCNLayers); found {names}"
model.eval()
x = torch.randn(6, 5, generator=torch.Generator().manual_seed(0))
edges = torch.tensor([[0, 1, 2], [1, 2, 3]])
assert model(x, edges).shape == (6, 3) and torch.equal(model(x, edges), model(x, edges)), "logits (N, num_classes); in eval mode dropout is off, so two calls agree"

# %%
model = GAT(5, 4, 3, heads=2).eval()
assert tuple(model.conv1.linear.weight.shape) == (8, 5) and tuple(model.conv2.linear.weight.shape) == (3, 8), "GAT: conv1 = GATLayer(5, 4, heads=2, concat=True) feeds 2 * 4 = 8 features into conv2 = GATLayer(8, 3, heads=1, concat=False)"
logits = model(torch.randn(6, 5, generator=torch.Generator().manual_seed(0)), torch.tensor([[0, 1, 2], [1, 2, 3]]))
assert isinstance(logits, torch.Tensor) and logits.shape == (6, 3), "GAT returns the logits only (N, num_classes), not the (out, attention) pair"

# %%
model = GraphClassifier(2, 6, 4, num_layers=2, pool="max").eval()
names = sorted(name for name, _ in model.named_parameters())
assert names == ["convs.0.bias", "convs.0.linear.weight", "convs.1.bias", "convs.1.linear.weight", "head.bias", "head.weight"], f"GraphClassifier owns convs (ModuleList of GCNLayers) and head; found {names}"
x = torch.randn(7, 2, generator=torch.Generator().manual_seed(0))
logits = model(x, torch.tensor([[0, 1, 3, 4], [1, 0, 4, 3]]), torch.tensor([0, 0, 0, 1, 1, 2, 2]), 3)
assert logits.shape == (3, 4), f"one row of logits per graph: (3, 4), got {tuple(logits.shape)}"

# %%
def seeded_parameters(model, seed):
    """The model in float64, eval mode, every parameter drawn from a seeded generator."""
    generator = torch.Generator().manual_seed(seed)
    model = model.double().eval()
    with torch.no_grad():
        for _, parameter in sorted(model.named_parameters()):
            parameter.copy_(torch.randn(parameter.shape, dtype=torch.float64, generator=generator))
    return model


x = torch.randn(6, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
edges = torch.tensor([[0, 1, 1, 2, 3, 4], [1, 0, 2, 1, 4, 5]])
model = seeded_parameters(GCN(3, 4, 2), 2)
assert torch.allclose(model(x, edges), model.conv2(torch.relu(model.conv1(x, edges)), edges)), "GCN.forward must be conv2(dropout(ReLU(conv1(x)))), dropout off in eval mode: check the ReLU between the two layers"
model = seeded_parameters(GAT(3, 2, 2, heads=2), 3)
assert torch.allclose(model(x, edges), model.conv2(F.elu(model.conv1(x, edges)[0]), edges)[0]), "GAT.forward must be conv2(dropout(ELU(conv1(x)[0])))[0], dropout off in eval mode: ELU between the layers (not ReLU)"

# %%
x = torch.randn(7, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
edges, batch = torch.tensor([[0, 1, 1, 2, 3, 4, 5, 6], [1, 0, 2, 1, 4, 3, 6, 5]]), torch.tensor([0, 0, 0, 1, 1, 2, 2])
for pool, pooling in {"mean": global_mean_pool, "max": global_max_pool, "add": global_add_pool}.items():
    model = seeded_parameters(GraphClassifier(2, 3, 2, num_layers=2, pool=pool), 5)
    h = x
    for conv in model.convs:
        h = torch.relu(conv(h, edges))
    assert torch.allclose(model(x, edges, batch, 3), model.head(pooling(h, batch, 3))), f"pool={pool!r}: GraphClassifier must apply every GCNLayer followed by ReLU (the last one too), then global_{pool}_pool per graph, then the head: pool first, head last"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# ## 7. Concepts, as numbers
#
# **Receptive field.** One message-passing layer lets node `v` see its in-neighbours; two
# layers, the in-neighbours of those; `k` layers, every node with a directed path of at most
# `k` edges **into** `v` (and `v` itself, through its self-loop). Nothing further away can
# change `v`'s output, however the weights are set. `receptive_field(edge_index, num_nodes,
# node, num_layers)` returns a `(num_nodes,)` bool tensor marking those nodes (with
# `num_layers = 0`, only `node`). On an undirected graph that is the `k`-hop neighbourhood. Work
# with the edge list (a frontier that grows by one hop per layer), not a matrix power.
#
# **Parameter counts.** Write `gcn_parameter_count(in_features, out_features, bias=True)` and
# `gat_parameter_count(in_features, out_features, heads=1, concat=True, bias=True)`: the number
# of trainable scalars of your layers, as Python ints, from the formulas (not by building the
# layer). Note that a GCN layer's size does not depend on the graph: the same weights serve a
# graph of 34 nodes or of 50,000.

# %% [raw]
# # BEGIN QUESTION
# name: q7
# points: 2

# %% [raw]
# # BEGIN SOLUTION

# %%
def receptive_field(edge_index, num_nodes, node, num_layers):
    """(num_nodes,) bool: nodes with a directed path of at most num_layers edges into `node`."""
    assert edge_index.ndim == 2 and edge_index.shape[0] == 2, f"edge_index must be (2, E), got {tuple(edge_index.shape)}"
    # BEGIN SOLUTION NO PROMPT
    seen = torch.zeros(num_nodes, dtype=torch.bool)
    seen[node] = True
    for _ in range(num_layers):
        frontier = seen.clone()
        frontier[edge_index[0][seen[edge_index[1]]]] = True
        seen = frontier
    return seen
    # END SOLUTION
    """ # BEGIN PROMPT
    raise NotImplementedError("receptive_field")
    """ # END PROMPT


def gcn_parameter_count(in_features, out_features, bias=True):
    """Trainable scalars of GCNLayer(in_features, out_features, bias), a Python int."""
    # BEGIN SOLUTION NO PROMPT
    return in_features * out_features + int(bias) * out_features
    # END SOLUTION
    """ # BEGIN PROMPT
    raise NotImplementedError("gcn_parameter_count")
    """ # END PROMPT


def gat_parameter_count(in_features, out_features, heads=1, concat=True, bias=True):
    """Trainable scalars of GATLayer(in_features, out_features, heads, concat, bias=bias), an int."""
    # BEGIN SOLUTION NO PROMPT
    bias_entries = (heads * out_features if concat else out_features) if bias else 0
    return heads * out_features * (in_features + 2) + bias_entries
    # END SOLUTION
    """ # BEGIN PROMPT
    raise NotImplementedError("gat_parameter_count")
    """ # END PROMPT

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
chain = torch.tensor([[0, 1, 2, 3], [1, 2, 3, 4]])
assert receptive_field(chain, 5, 4, 2).tolist() == [False, False, True, True, True], "directed chain 0 -> 1 -> 2 -> 3 -> 4: two layers let node 4 see nodes 2 and 3 (and itself)"
assert receptive_field(chain, 5, 0, 3).tolist() == [True, False, False, False, False], "node 0 has no incoming edges: only itself, however many layers"

# %%
assert gcn_parameter_count(3, 4) == 16 and gcn_parameter_count(3, 4, bias=False) == 12, "GCNLayer(3, 4): 3 * 4 weights + 4 biases"
assert gat_parameter_count(3, 4) == 3 * 4 + 2 * 4 + 4, "GATLayer(3, 4): 12 weights, 4 + 4 attention entries, 4 biases"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# ## 8. Experiments (not graded by execution)
#
# ### 8.1 Node classification: does the graph help?
# The data is a **stochastic block model** (`student/graphs.py`): 400 nodes in 4 classes of
# 100; two nodes of the same class are linked with probability 0.05, of different classes with
# probability 0.004, so about 80% of a node's neighbours share its class. Each node's 16
# features are its class's mean direction (a unit vector) plus Gaussian noise of standard
# deviation 2 per entry: on its own, a node says little about its class. Only 20 nodes per
# class are labelled for training (a *semi-supervised* setting, as in the GCN paper); 106 nodes
# validate, 214 test.
#
# We compare an MLP that sees only each node's own features with the GCN and GAT that also see
# the neighbours. Adam, weight decay 5e-4, 200 full-graph steps, the parameters of the best
# validation epoch are kept. In our run of the solution notebook (2 cores) the test accuracies
# were **0.29 (MLP), 0.74 (GCN) and 0.85 (GAT)**: averaging over neighbours of the same
# class averages the noise away. Expect the second digit to move on another machine.

# %% tags=["experiment"]
# EXPERIMENT: not run by the grader
from student.results import record  # figures for the course's tests; prints nothing
import time

import matplotlib.pyplot as plt
from tqdm.auto import tqdm
from student.graphs import collate, cycles_and_trees, karate_club, spring_layout, stochastic_block_model
from student.seeding import seeded

torch.set_num_threads(1)
sbm = stochastic_block_model(seed=0)
print(f"block model: {sbm.num_nodes} nodes, {sbm.edge_index.shape[1] // 2} undirected edges, "
      f"{int(sbm.train_mask.sum())} labelled")


class MLP(nn.Module):
    """Ignores the graph: two linear layers on each node's own features."""

    def __init__(self, in_features, hidden_features, num_classes, dropout=0.5):
        super().__init__()
        self.first, self.second, self.dropout = nn.Linear(in_features, hidden_features), nn.Linear(hidden_features, num_classes), dropout

    def forward(self, x, edge_index):
        return self.second(F.dropout(torch.relu(self.first(x)), self.dropout, self.training))


def train_nodes(model, graph, epochs=200, lr=0.01, weight_decay=5e-4, label="training"):
    """Full-graph training on graph.train_mask; returns (test accuracy at the best validation
    epoch, validation accuracies per epoch)."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    best_val, test_at_best, curve = -1.0, 0.0, []
    for _ in tqdm(range(epochs), desc=label, leave=False):
        model.train()
        loss = F.cross_entropy(model(graph.x, graph.edge_index)[graph.train_mask], graph.y[graph.train_mask])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        model.eval()
        with torch.no_grad():
            predicted = model(graph.x, graph.edge_index).argmax(dim=1)
        val = (predicted[graph.val_mask] == graph.y[graph.val_mask]).float().mean().item()
        curve.append(val)
        if val > best_val:
            best_val = val
            test_at_best = (predicted[graph.test_mask] == graph.y[graph.test_mask]).float().mean().item()
    return test_at_best, curve


node_results, node_curves = {}, {}
for name, make in [("MLP", lambda: MLP(16, 16, 4)), ("GCN", lambda: GCN(16, 16, 4)), ("GAT", lambda: GAT(16, 8, 4, heads=4))]:
    started = time.perf_counter()
    # the layers' initial weights and F.dropout's masks come from the global generator: build
    # and train inside `seeded`, which seeds it for this block only and restores it afterwards
    with seeded(0):
        node_results[name], node_curves[name] = train_nodes(make(), sbm, label=name)
    print(f"{name}: test accuracy {node_results[name]:.3f} ({time.perf_counter() - started:.1f} s)")
print("| model | test accuracy |\n|---|---|\n" + "\n".join(f"| {k} | {v:.3f} |" for k, v in node_results.items()))
plt.figure(figsize=(6, 3.5))
for name, curve in node_curves.items():
    plt.plot(curve, label=name)
plt.xlabel("epoch"); plt.ylabel("validation accuracy"); plt.title("Block model: graph or no graph"); plt.legend(); plt.show()
record(sbm_mlp_test_accuracy=node_results['MLP'])
record(sbm_gcn_test_accuracy=node_results['GCN'])
record(sbm_gat_test_accuracy=node_results['GAT'])
record(sbm_gcn_minus_mlp=node_results['GCN'] - node_results['MLP'])

# %% [markdown]
# ### 8.2 The karate club: embeddings that find the factions
# Zachary's karate club: 34 members, 78 friendships, and the two factions the club split into
# (around the instructor, member 0, and the administrator, member 33). The features are one-hot
# member ids (`x` = identity), so the model knows nothing but the friendships. Only members 0
# and 33 are labelled. A GCN with a 2-dimensional output (`GCN(34, 8, 2)`) is trained on those
# two labels, and we draw every member's 2-D output at four moments of training, coloured by
# the faction they actually joined: the graph alone pulls the factions apart. In our run the
# two labels sufficed to put 33 of the 34 members (0.97) in the faction they joined.

# %% tags=["experiment"]
# EXPERIMENT: not run by the grader
karate = karate_club()
karate.train_mask = torch.zeros(34, dtype=torch.bool)
karate.train_mask[[0, 33]] = True
layout = spring_layout(karate.edge_index, 34, seed=0)
with seeded(0):
    karate_gcn = GCN(34, 8, 2, dropout=0.0)
optimizer = torch.optim.Adam(karate_gcn.parameters(), lr=0.01, weight_decay=5e-4)
snapshots = {}
for epoch in tqdm(range(101), desc="karate GCN", leave=False):
    if epoch in (0, 10, 30, 100):
        with torch.no_grad():
            snapshots[epoch] = karate_gcn(karate.x, karate.edge_index).clone()
    loss = F.cross_entropy(karate_gcn(karate.x, karate.edge_index)[karate.train_mask], karate.y[karate.train_mask])
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
figure, axes = plt.subplots(1, 4, figsize=(13, 3.2))
for axis, (epoch, points) in zip(axes, snapshots.items()):
    axis.scatter(points[:, 0], points[:, 1], c=karate.y, cmap="coolwarm", s=40, edgecolors="k")
    axis.set_title(f"epoch {epoch}")
figure.suptitle("GCN outputs of the 34 members, coloured by faction"); plt.show()
karate_accuracy = (snapshots[100].argmax(dim=1) == karate.y).float().mean().item()
print(f"faction predicted from 2 labels: {karate_accuracy:.3f} of the members")
record(karate_gcn_accuracy=karate_accuracy)

# %% [markdown]
# Now a GAT on the same task; we draw the club with the spring layout (`spring_layout` in
# `student/graphs.py`) and each friendship with a width proportional to the first layer's
# attention, averaged over heads and both directions. Which friendships matter most?

# %% tags=["experiment"]
# EXPERIMENT: not run by the grader
with seeded(0):
    karate_gat = GAT(34, 4, 2, heads=2, dropout=0.0)
optimizer = torch.optim.Adam(karate_gat.parameters(), lr=0.01, weight_decay=5e-4)
for epoch in tqdm(range(100), desc="karate GAT", leave=False):
    loss = F.cross_entropy(karate_gat(karate.x, karate.edge_index)[karate.train_mask], karate.y[karate.train_mask])
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
with torch.no_grad():
    _, karate_attention = karate_gat.conv1(karate.x, karate.edge_index)
edge_attention = karate_attention[:karate.edge_index.shape[1]].mean(dim=1)
plt.figure(figsize=(6, 5))
for (s, t), a in zip(karate.edge_index.T.tolist(), edge_attention.tolist()):
    plt.plot(*layout[[s, t]].T, color="gray", linewidth=0.5 + 6 * a, alpha=0.6)
plt.scatter(layout[:, 0], layout[:, 1], c=karate.y, cmap="coolwarm", s=120, edgecolors="k", zorder=3)
for member, (px, py) in enumerate(layout.tolist()):
    plt.text(px, py, str(member), fontsize=7, ha="center", va="center", zorder=4)
plt.axis("off"); plt.title("GAT attention on the karate club (width = attention)"); plt.show()
gat_karate_accuracy = (karate_gat.eval()(karate.x, karate.edge_index).argmax(dim=1) == karate.y).float().mean().item()
print(f"GAT: faction predicted for {gat_karate_accuracy:.3f} of the members")

# %% [markdown]
# ### 8.3 Graph classification: ring or tree?
# 400 graphs of 8 to 20 nodes (`cycles_and_trees`): half are a single cycle through all nodes,
# half random trees. Every node has the same feature, 1, so only the structure tells them
# apart: in a cycle every node has two neighbours, a tree has leaves and hubs. A
# `GraphClassifier(1, 16, 2, num_layers=3)` is trained on 300 graphs in batches of 32
# (`collate` merges a list of graphs into one disconnected graph and its `batch`) and tested on
# 100, once with mean pooling and once with max pooling.
#
# In our run **max pooling reached a test accuracy of 0.99, mean pooling stayed at chance
# (0.48)**. The GCN weights `1/sqrt(deg(j) deg(i))` are built to keep averages roughly
# unchanged: on a constant input, the mean over a tree's nodes ends up close to a ring's, so
# the mean hides the difference. The maximum looks at the most extreme node, and a tree's hubs
# (three or more neighbours) produce values a ring never does. The pooling is part of the
# model's inductive bias: pick it for what should be detected.

# %% tags=["experiment"]
# EXPERIMENT: not run by the grader
graphs = cycles_and_trees(400, seed=0)
train_graphs, test_graphs = graphs[:300], graphs[300:]
pool_accuracies, pool_losses = {}, {}
for pool in ("mean", "max"):
    with seeded(0):
        classifier = GraphClassifier(1, 16, 2, num_layers=3, pool=pool)
    optimizer = torch.optim.Adam(classifier.parameters(), lr=0.01)
    order_generator = torch.Generator().manual_seed(0)
    pool_losses[pool] = []
    for epoch in tqdm(range(30), desc=f"ring or tree, {pool} pooling", leave=False):
        order = torch.randperm(len(train_graphs), generator=order_generator).tolist()
        total = 0.0
        for start in range(0, len(order), 32):
            x, edges, batch, y = collate([train_graphs[k] for k in order[start:start + 32]])
            loss = F.cross_entropy(classifier(x, edges, batch, len(y)), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(y)
        pool_losses[pool].append(total / len(train_graphs))
    x, edges, batch, y = collate(test_graphs)
    with torch.no_grad():
        pool_accuracies[pool] = (classifier(x, edges, batch, len(y)).argmax(dim=1) == y).float().mean().item()
    print(f"ring or tree, {pool} pooling: test accuracy {pool_accuracies[pool]:.3f}")
plt.figure(figsize=(5, 3))
for pool, curve in pool_losses.items():
    plt.plot(curve, label=f"{pool} pooling")
plt.xlabel("epoch"); plt.ylabel("training loss"); plt.title("Ring or tree"); plt.legend(); plt.show()
record(graph_classification_max_test_accuracy=pool_accuracies['max'])
record(graph_classification_mean_test_accuracy=pool_accuracies['mean'])

# %% [markdown]
# ### 8.4 Over-smoothing
# Each GCN layer replaces a node's vector by a weighted average over its neighbourhood. Repeat
# that many times and every node of a connected component converges to the same direction
# (the weights `D^-1/2 (A + I) D^-1/2` have one dominant eigenvector): the features are
# **over-smoothed** and the nodes can no longer be told apart. We measure it on the block
# model with pure propagation (a `GCNLayer(16, 16, bias=False)` whose weight is the identity,
# applied `k` times) and report the mean cosine similarity between all pairs of node vectors.
# In our run it rose from 0.01 for the raw features to 0.06 after one layer, 0.46 after four,
# 0.84 after eight and 0.985 from 32 layers on: after a few dozen layers the nodes' vectors
# point the same way whatever their class. That is one reason GCNs are usually only 2 or 3
# layers deep.

# %% tags=["experiment"]
# EXPERIMENT: not run by the grader
propagate = GCNLayer(16, 16, bias=False)
with torch.no_grad():
    propagate.linear.weight.copy_(torch.eye(16))


def mean_cosine(features):
    unit = F.normalize(features, dim=1)
    n = unit.shape[0]
    return ((unit @ unit.T).sum() - n).item() / (n * (n - 1))


depths, similarities = [0, 1, 2, 4, 8, 16, 32, 64], []
with torch.no_grad():
    h, done = sbm.x.clone(), 0
    for depth in depths:
        while done < depth:
            h, done = propagate(h, sbm.edge_index), done + 1
        similarities.append(mean_cosine(h))
for depth, similarity in zip(depths, similarities):
    print(f"{depth:>3} layers: mean cosine similarity {similarity:.3f}")
plt.figure(figsize=(5, 3)); plt.semilogx([max(d, 0.5) for d in depths], similarities, marker="o")
plt.xlabel("layers (0 plotted at 0.5)"); plt.ylabel("mean cosine similarity"); plt.title("Over-smoothing on the block model"); plt.show()
record(oversmoothing_cosine_1=similarities[1])
record(oversmoothing_cosine_64=similarities[-1])
