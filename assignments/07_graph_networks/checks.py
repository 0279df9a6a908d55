"""Hidden checks of chapter 07: message passing, GCN and GAT layers, pooling, classifiers.

Never shipped to students. Students write functions and ``nn.Module`` classes on plain tensors
and autograd computes the gradients. A layer check installs seeded float64 parameters by name
(``assign_parameters``), runs the layer on two different graphs in a row (a layer that caches
its normalisation or its self-loops between calls is caught) and grades the second call: the
output, the gradient with respect to the features and to every parameter, each as its own
item. Layers and classifiers run with the grader's own helpers substituted for the student's
(``add_self_loops``, ``degree``, ``gcn_normalization``, ``segment_softmax``, the pools, and the
layers inside the classifiers), so a bug in a helper costs only the helper's items. These checks
declare the names they replace (``Check.replaces``), so the forbidden-API scan does not charge a
layer or a classifier for a forbidden call inside a helper either. The pooling check grades the
three pools together (each with the other two substituted), so it replaces none of them.

Graphs cover isolated nodes, directed edges (in-degree differs from out-degree), nodes with a
single neighbour, graphs without edges, edges in random order, and relabelled nodes (the
``relabelled`` items: the layer on a permuted graph must give the permuted output). Two scale
checks run one layer on 50,000 nodes and 400,000 edges in float32. Measured on the reference
(CPU torch 2.13, one thread): forward + backward in 0.4 s (GCN) and 0.5 s (GAT), resident
memory 66 MB (GCN) and 104 MB (GAT) above the 224 MB of ``import torch``, so the whole process
stays near half of the sandbox's 640 MiB; a dense N x N adjacency would need 10 GB in float32.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from autograder.checks import Check, Output, error_location
from autograder.kit import (
    as_ints,
    assign_parameters,
    noncontiguous,
    randint,
    randn,
    record_grads,
    run_independently,
    substituted,
)

# Graph libraries do the chapter's work; none is a dependency, and none may be used.
FORBIDDEN = (
    "torch_geometric",
    "torch_scatter",
    "torch_sparse",
    "torch_cluster",
    "dgl",
    "networkx",
    "scipy.sparse",
    "torch.sparse",
    "Tensor.to_sparse",
)

Recorder = Any
Api = Any


# ------------------------------------------------------------------------ trusted helpers
def _loops(edge_index: torch.Tensor, num_nodes: int) -> torch.Tensor:
    nodes = torch.arange(num_nodes, dtype=torch.int64)
    return torch.cat([edge_index, torch.stack([nodes, nodes])], dim=1)


def _degree(
    index: torch.Tensor, num_nodes: int, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    return torch.bincount(index, minlength=num_nodes).to(dtype)


def _normalization(
    edge_index: torch.Tensor, num_nodes: int, dtype: torch.dtype = torch.float32
) -> tuple[torch.Tensor, torch.Tensor]:
    edges = _loops(edge_index, num_nodes)
    scale = 1.0 / torch.sqrt(_degree(edges[1], num_nodes, dtype))
    return edges, scale[edges[0]] * scale[edges[1]]


def _softmax(scores: torch.Tensor, index: torch.Tensor, num_nodes: int) -> torch.Tensor:
    flat = scores.reshape(scores.shape[0], -1)
    wide = index.unsqueeze(1).expand_as(flat)
    peak = torch.full((num_nodes, flat.shape[1]), -torch.inf, dtype=flat.dtype)
    peak = peak.scatter_reduce(0, wide, flat.detach(), "amax")
    exp = (flat - peak[index]).exp()
    total = torch.zeros(num_nodes, flat.shape[1], dtype=flat.dtype).index_add(0, index, exp)
    return (exp / total[index]).reshape(scores.shape)


def _add_pool(x: torch.Tensor, batch: torch.Tensor, num_graphs: int) -> torch.Tensor:
    return torch.zeros(num_graphs, x.shape[1], dtype=x.dtype).index_add(0, batch, x)


def _mean_pool(x: torch.Tensor, batch: torch.Tensor, num_graphs: int) -> torch.Tensor:
    count = torch.bincount(batch, minlength=num_graphs).clamp(min=1).to(x.dtype)
    return _add_pool(x, batch, num_graphs) / count[:, None]


def _max_pool(x: torch.Tensor, batch: torch.Tensor, num_graphs: int) -> torch.Tensor:
    wide = batch.unsqueeze(1).expand_as(x)
    return torch.zeros(num_graphs, x.shape[1], dtype=x.dtype).scatter_reduce(
        0, wide, x, "amax", include_self=False
    )


HELPERS = {
    "add_self_loops": _loops,
    "degree": _degree,
    "gcn_normalization": _normalization,
    "segment_softmax": _softmax,
    "global_add_pool": _add_pool,
    "global_mean_pool": _mean_pool,
    "global_max_pool": _max_pool,
}


# the helpers a layer calls, replaced in the layer checks (the classifiers replace all of HELPERS)
LAYER_HELPERS = ("add_self_loops", "degree", "gcn_normalization", "segment_softmax")


class _ProbeGCN(nn.Module):
    """The grader's GCNLayer (same parameter names), used inside the classifiers."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features, bias=False)
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        edges, weight = _normalization(edge_index, x.shape[0], x.dtype)
        h = self.linear(x)
        out = torch.zeros_like(h).index_add(0, edges[1], h[edges[0]] * weight[:, None])
        return out if self.bias is None else out + self.bias


class _ProbeGAT(nn.Module):
    """The grader's GATLayer (same parameter names), used inside the classifiers."""

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
        self.heads, self.out_features, self.concat = heads, out_features, concat
        self.negative_slope = negative_slope
        self.linear = nn.Linear(in_features, heads * out_features, bias=False)
        self.att_src = nn.Parameter(torch.zeros(1, heads, out_features))
        self.att_dst = nn.Parameter(torch.zeros(1, heads, out_features))
        width = heads * out_features if concat else out_features
        self.bias = nn.Parameter(torch.zeros(width)) if bias else None

    def forward(
        self, x: torch.Tensor, edge_index: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        n = x.shape[0]
        edges = _loops(edge_index, n)
        h = self.linear(x).reshape(n, self.heads, self.out_features)
        scores = (
            torch.einsum("nhc,hc->nh", h, self.att_src[0])[edges[0]]
            + torch.einsum("nhc,hc->nh", h, self.att_dst[0])[edges[1]]
        )
        alpha = _softmax(F.leaky_relu(scores, self.negative_slope), edges[1], n)
        out = torch.zeros_like(h).index_add(0, edges[1], h[edges[0]] * alpha[:, :, None])
        out = out.reshape(n, -1) if self.concat else out.mean(dim=1)
        return (out if self.bias is None else out + self.bias), alpha


# ------------------------------------------------------------------------------- graphs
def draw_graph(rng: torch.Generator, case: Mapping[str, Any]) -> torch.Tensor:
    """(2, E) int64 edges of the case's graph, in random order, without self-loops or
    duplicates. Kinds: "path" (undirected; the ends have one neighbour), "star_in" (directed
    leaves -> centre), "empty", "random" (E directed edges among the first N - isolated
    nodes, optionally undirected; the isolated nodes are scattered by a relabelling)."""
    n, kind = case["N"], case["graph"]
    if kind == "path":
        a = torch.arange(n - 1)
        edges = torch.cat([torch.stack([a, a + 1]), torch.stack([a + 1, a])], dim=1)
    elif kind == "star_in":
        leaves = torch.arange(1, n)
        edges = torch.stack([leaves, torch.zeros_like(leaves)])
    elif kind == "empty":
        edges = torch.zeros(2, 0, dtype=torch.int64)
    else:
        used = n - case.get("isolated", 0)
        pairs = randint(rng, used, 2, 6 * case["E"])
        pairs = pairs[:, pairs[0] != pairs[1]]
        if case.get("undirected"):
            pairs = torch.cat([pairs, pairs.flip(0)], dim=1)
        keys = torch.unique(pairs[0] * used + pairs[1])
        if case.get("undirected"):
            keys = keys[(keys // used) < (keys % used)]
        keys = keys[torch.randperm(len(keys), generator=rng)[: case["E"]]]
        edges = torch.stack([keys // used, keys % used])
        if case.get("undirected"):
            edges = torch.cat([edges, edges.flip(0)], dim=1)
        edges = torch.randperm(n, generator=rng)[edges]
    return edges[:, torch.randperm(edges.shape[1], generator=rng)]


def relabel(
    rng: torch.Generator, edge_index: torch.Tensor, n: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(perm, relabelled edges): node perm[k] of the original graph becomes node k."""
    perm = torch.randperm(n, generator=rng)
    return perm, torch.argsort(perm)[edge_index]


def sorted_edges(
    edges: torch.Tensor, weights: torch.Tensor, n: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Edges and weights in a canonical order (by source, then target), so that a correct
    gcn_normalization may return them in any order."""
    order = torch.argsort(edges[0] * n + edges[1])
    return edges[:, order], weights[order]


GRAPH_CASES: tuple[Mapping[str, Any], ...] = (
    {"graph": "path", "N": 5},
    {"graph": "star_in", "N": 6},
    {"graph": "random", "N": 12, "E": 30, "isolated": 3},
    {"graph": "random", "N": 16, "E": 20, "undirected": True, "isolated": 2},
    {"graph": "empty", "N": 4},
    {"graph": "random", "N": 30, "E": 90},
    {"graph": "random", "N": 2, "E": 1},
)

GRADIENT_HINT = (
    "Autograd computes this gradient from your forward pass: if the output item "
    "passes, look for .detach(), .data, torch.no_grad() or a tensor rebuilt with "
    "torch.tensor(...) between {what} and the output."
)


# ------------------------------------------------------------------ q1: graph basics
def exercise_basics(api: Api, case: Mapping[str, Any], rng: torch.Generator, out: Recorder) -> None:
    first = draw_graph(rng, {**case, "N": case["N"] + 1})
    edges = draw_graph(rng, case)
    n = case["N"]
    out.watch(edge_index=edges)

    def loops() -> None:
        api.add_self_loops(first, n + 1)
        out["add_self_loops"] = api.add_self_loops(edges, n)

    def degrees() -> None:
        api.degree(first[1], n + 1, torch.float64)
        out["degree"] = api.degree(edges[0], n, torch.float64)
        out["degree_default_dtype"] = api.degree(edges[1], n)

    run_independently(loops, degrees)


def exercise_normalization(
    api: Api, case: Mapping[str, Any], rng: torch.Generator, out: Recorder
) -> None:
    n = case["N"]
    first = draw_graph(rng, {**case, "N": n + 2})
    edges = draw_graph(rng, case)
    out.watch(edge_index=edges)
    with substituted(api, add_self_loops=_loops, degree=_degree):
        api.gcn_normalization(first, n + 2, torch.float64)
        result = api.gcn_normalization(edges, n, torch.float64)
        single = api.gcn_normalization(edges, n)
    new_edges, weights = sorted_edges(result[0], result[1], n)
    out["edges"] = new_edges
    out["weights"] = weights
    out["default_dtype"] = sorted_edges(single[0], single[1], n)[1]


# ------------------------------------------------------------------- layers (q2, q4)
def gcn_parameters(
    rng: torch.Generator, c_in: int, c_out: int, bias: bool
) -> dict[str, torch.Tensor]:
    values = {"linear.weight": 0.6 * randn(rng, c_out, c_in)}
    if bias:
        values["bias"] = randn(rng, c_out)
    return values


def gat_parameters(
    rng: torch.Generator, c_in: int, c_out: int, heads: int, concat: bool, bias: bool
) -> dict[str, torch.Tensor]:
    values = {
        "linear.weight": 0.6 * randn(rng, heads * c_out, c_in),
        "att_src": randn(rng, 1, heads, c_out),
        "att_dst": randn(rng, 1, heads, c_out),
    }
    if bias:
        values["bias"] = randn(rng, heads * c_out if concat else c_out)
    return values


LAYOUTS = {
    "linear.weight": "nn.Linear(in_features, heads * out_features, bias=False).weight",
    "att_src": "(1, heads, out_features)",
    "att_dst": "(1, heads, out_features)",
    "bias": "(heads * out_features,) with concat, (out_features,) without",
}


def explained_dtype_error(
    exc: RuntimeError, layer: Any, installed: Mapping[str, torch.Tensor]
) -> RuntimeError:
    """A dtype mismatch from parameters the grader did not install (typically nn.Linear's own
    bias, left in float32 next to float64 weights) with its cause; any other error as is."""
    text = str(exc).lower()
    extra = [name for name, _ in layer.named_parameters() if name not in installed]
    if not extra or not any(word in text for word in ("dtype", "scalar type", "double")):
        return exc
    where = error_location(exc)
    return RuntimeError(
        f"dtype mismatch from {', '.join(extra)}: the notebook does not list it, so the "
        f"grader left it float32 next to float64 weights; use nn.Linear(..., bias=False) "
        f"and the separate parameter `bias`{where}"
    )


def make_layer_exercise(kind: str) -> Callable[..., None]:
    def exercise(api: Api, case: Mapping[str, Any], rng: torch.Generator, out: Recorder) -> None:
        n, c_in, c_out = case["N"], case.get("in", 3), case.get("out", 4)
        bias = case.get("bias", True)
        with substituted(
            api,
            **{k: v for k, v in HELPERS.items() if k in LAYER_HELPERS},
        ):
            if kind == "GCN":
                layer = api.GCNLayer(c_in, c_out, bias=bias)
                values = gcn_parameters(rng, c_in, c_out, bias)
            else:
                heads, concat = case["heads"], case["concat"]
                extra = {"negative_slope": case["slope"]} if "slope" in case else {}
                layer = api.GATLayer(c_in, c_out, heads=heads, concat=concat, bias=bias, **extra)
                values = gat_parameters(rng, c_in, c_out, heads, concat, bias)
            assign_parameters(layer, values, LAYOUTS)
            first_edges = draw_graph(rng, {**case, "N": n + 3})
            edges = draw_graph(rng, case)
            x = randn(rng, n, c_in)
            if case.get("noncontiguous"):
                x = noncontiguous(x)
            x.requires_grad_(True)
            out.watch(x=x, edge_index=edges)

            def call(features: torch.Tensor, edge_index: torch.Tensor) -> Any:
                try:
                    result = layer(features, edge_index)
                except RuntimeError as exc:
                    explained = explained_dtype_error(exc, layer, values)
                    if explained is exc:
                        raise
                    raise explained from exc
                if kind == "GAT":
                    return result
                return result, None

            def graded() -> None:
                try:
                    call(randn(rng, n + 3, c_in), first_edges)
                    result, attention = call(x, edges)
                    out["out"] = result
                    if attention is not None:
                        out["attention"] = attention
                    (result * randn(rng, *result.shape)).sum().backward()
                finally:
                    record_grads(out, {"grad_x": x})
                    record_grads(
                        out, {"grad_" + name: param for name, param in layer.named_parameters()}
                    )
                    if not bias:  # bias=False: the layer must not own a bias parameter
                        out["grad_bias"] = torch.tensor(getattr(layer, "bias", None) is None)

            def relabelled() -> None:
                perm, moved = relabel(rng, edges, n)
                with torch.no_grad():
                    result = call(x.detach()[perm], moved)[0]
                out["relabelled"] = result[torch.argsort(perm)]

            run_independently(graded, relabelled)

    return exercise


GCN_CASES = GRAPH_CASES + (
    {"graph": "random", "N": 10, "E": 25, "in": 5, "out": 2, "bias": False, "noncontiguous": True},
)
GAT_CASES: tuple[Mapping[str, Any], ...] = (
    {"graph": "path", "N": 5, "heads": 1, "concat": True},
    {"graph": "star_in", "N": 6, "heads": 4, "concat": True},
    {"graph": "random", "N": 12, "E": 30, "isolated": 3, "heads": 4, "concat": False},
    {
        "graph": "random",
        "N": 16,
        "E": 20,
        "undirected": True,
        "isolated": 2,
        "heads": 2,
        "concat": True,
        "slope": 0.1,
    },
    {"graph": "empty", "N": 4, "heads": 1, "concat": False},
    {"graph": "random", "N": 30, "E": 90, "heads": 4, "concat": True, "noncontiguous": True},
    {
        "graph": "random",
        "N": 10,
        "E": 25,
        "in": 5,
        "out": 2,
        "heads": 3,
        "concat": False,
        "bias": False,
    },
    # one head on a graph whose nodes receive scores of both signs: the path above gives every
    # node scores of one sign, so a_dst cancels in its softmax there (its gradient is 0) and a
    # bug in the LeakyReLU would show on att_dst only where heads > 1, a false pattern
    {"graph": "random", "N": 12, "E": 30, "isolated": 1, "heads": 1, "concat": True},
)


def layer_outputs(kind: str, forward_hint: str) -> tuple[Output, ...]:
    outputs = [Output("out", hint=forward_hint)]
    if kind == "GAT":
        outputs.append(
            Output(
                "attention",
                hint=(
                    "attention (E + N, heads), in the order of add_self_loops: score of j -> i = "
                    "LeakyReLU(a_src . Wx_j + a_dst . Wx_i, negative_slope), softmax over the "
                    "edges "
                    "INTO each node i (segment_softmax grouped by target)."
                ),
            )
        )
    outputs.append(Output("grad_x", points=0.5, hint=GRADIENT_HINT.format(what="x")))
    names = ["linear.weight"] + (["att_src", "att_dst"] if kind == "GAT" else []) + ["bias"]
    for name in names:
        outputs.append(
            Output(
                "grad_" + name,
                points=0.5,
                hint=GRADIENT_HINT.format(what=f"self.{name}")
                + (
                    " With bias=False there is no bias: self.bias is None "
                    "(register_parameter('bias', None))."
                    if name == "bias"
                    else ""
                ),
            )
        )
    outputs.append(
        Output(
            "relabelled",
            points=0.5,
            hint=(
                "Relabelling the nodes (x[perm] and the edges renamed alike) must permute the "
                "output "
                "the same way: do not rely on the order of the nodes or of the edges (for example "
                "edges sorted by target), only on edge_index."
            ),
        )
    )
    return tuple(outputs)


# ------------------------------------------------------------------------ scale (q2, q4)
SCALE_N, SCALE_E, SCALE_C, SCALE_SAMPLE = 50_000, 400_000, 8, 2_000


def make_scale_exercise(kind: str) -> Callable[..., None]:
    def exercise(api: Api, case: Mapping[str, Any], rng: torch.Generator, out: Recorder) -> None:
        with substituted(
            api,
            add_self_loops=_loops,
            degree=_degree,
            gcn_normalization=_normalization,
            segment_softmax=_softmax,
        ):
            if kind == "GCN":
                layer = api.GCNLayer(SCALE_C, SCALE_C)
                values = gcn_parameters(rng, SCALE_C, SCALE_C, True)
            else:
                layer = api.GATLayer(SCALE_C, SCALE_C, heads=1)
                values = gat_parameters(rng, SCALE_C, SCALE_C, 1, True, True)
            assign_parameters(layer, {k: v.float() for k, v in values.items()}, LAYOUTS)
            edges = randint(rng, SCALE_N, 2, SCALE_E)
            edges = edges[:, edges[0] != edges[1]]
            x = randn(rng, SCALE_N, SCALE_C, dtype=torch.float32)
            sample = randint(rng, SCALE_N, SCALE_SAMPLE)
            threads = torch.get_num_threads()
            torch.set_num_threads(1)  # parallel float32 sums over 400,000 edges vary in the
            try:  # last bits from run to run; one thread keeps the build reproducible
                result = layer(x, edges)
                result = result[0] if kind == "GAT" else result
                out["out_sample"] = result[sample]
                (result * torch.randn(result.shape, generator=rng)).sum().backward()
            finally:
                torch.set_num_threads(threads)
                record_grads(
                    out, {"grad_" + name: param for name, param in layer.named_parameters()}
                )

    return exercise


SCALE_HINT = (
    "This item runs the same layer on 50,000 nodes and 400,000 edges in float32, with the "
    "grader's helpers, and the layer passes on the small graphs: compute in x's dtype (float32 "
    "here) throughout, gathering x[source] per edge and summing into the targets with "
    "index_add_."
)
# Exceptions only this scale shows: the address-space limit, and a Python loop over nodes.
SCALE_ERROR_HINTS = (
    (
        r"Memory limit",
        "on 50,000 nodes a dense N x N matrix needs 10 GB and a one-hot (N, E) matrix 80 GB: "
        "gather x[source] per edge (E rows) and sum the messages into their targets with "
        "index_add_, never building an N x N or N x E tensor.",
    ),
)


def scale_outputs(kind: str) -> tuple[Output, ...]:
    """The scale check's items; each needs the small-graph item of the layer that runs the same
    code (its hint assumes the layer is right on small graphs)."""
    names = ["linear.weight"] + (["att_src", "att_dst"] if kind == "GAT" else []) + ["bias"]
    layer = f"{kind}Layer"
    return (
        Output("out_sample", rtol=1e-4, atol=1e-4, hint=SCALE_HINT, needs=(f"{layer}: out",)),
        *(
            Output(
                "grad_" + name,
                points=0.5,
                rtol=1e-3,
                atol=1e-2,
                hint=SCALE_HINT,
                needs=(f"{layer}: grad_{name}",),
            )
            for name in names
        ),
    )


# ---------------------------------------------------------------------- q3: segment softmax
def exercise_softmax(
    api: Api, case: Mapping[str, Any], rng: torch.Generator, out: Recorder
) -> None:
    n, e = case["N"], case["E"]
    shape = (e, case["heads"]) if case["heads"] else (e,)
    first = randn(rng, e + 2, *shape[1:])
    api.segment_softmax(first, randint(rng, n, e + 2), n)
    index = randint(rng, n - case.get("empty", 0), e)
    scores = (case.get("scale", 1.0) * randn(rng, *shape)).requires_grad_(True)
    weights = randn(rng, *shape)
    out.watch(scores=scores, index=index)
    try:
        result = api.segment_softmax(scores, index, n)
        out["softmax"] = result
        (result * weights).sum().backward()
    finally:
        record_grads(out, {"grad_scores": scores})


SOFTMAX_CASES: tuple[Mapping[str, Any], ...] = (
    {"N": 1, "E": 1, "heads": 0},
    {"N": 4, "E": 10, "heads": 0},
    {"N": 6, "E": 9, "heads": 3, "empty": 2},
    {"N": 5, "E": 12, "heads": 2, "scale": 1e3},
    {"N": 8, "E": 8, "heads": 0, "scale": 1e3},
    {"N": 20, "E": 60, "heads": 4},
)


# ------------------------------------------------------------------------ q5: pooling
def exercise_pooling(
    api: Api, case: Mapping[str, Any], rng: torch.Generator, out: Recorder
) -> None:
    sizes = torch.tensor(case["sizes"])
    batch = torch.repeat_interleave(torch.arange(len(sizes)), sizes)
    if case.get("shuffled"):
        batch = batch[torch.randperm(len(batch), generator=rng)]
    x = randn(rng, len(batch), case["C"]).requires_grad_(True)
    weights = randn(rng, len(sizes), case["C"])
    out.watch(x=x, batch=batch)

    def pool(name: str) -> Callable[[], None]:
        others = {
            f"global_{other}_pool": HELPERS[f"global_{other}_pool"]
            for other in ("mean", "max", "add")
            if other != name
        }

        def run() -> None:
            function = getattr(api, f"global_{name}_pool")
            with substituted(api, **others):  # a mean pool may call the student's add pool
                function(randn(rng, 3, case["C"]), torch.tensor([0, 1, 1]), 2)
                x.grad = None
                result = function(x, batch, len(sizes))
            out[name] = result
            (result * weights).sum().backward()
            record_grads(out, {f"grad_x_{name}": x})

        return run

    run_independently(pool("mean"), pool("max"), pool("add"))


POOL_CASES: tuple[Mapping[str, Any], ...] = (
    {"sizes": [1], "C": 1},
    {"sizes": [3, 1, 5], "C": 4},
    {"sizes": [2, 0, 4, 1], "C": 3},
    {"sizes": [6, 2, 3, 7], "C": 5, "shuffled": True},
)

POOL_HINTS = {
    "mean": "Average the rows of each graph separately (batch[i] is node i's graph); a graph "
    "without nodes gives zeros. Do not average over the whole batch.",
    "max": "Feature-wise maximum over each graph's rows (scatter_reduce with 'amax', "
    "include_self=False); a graph without nodes gives zeros.",
    "add": "Sum of each graph's rows (index_add_ along dim 0 with batch).",
}


# ------------------------------------------------------------------- q6: classifiers
def model_parameters(
    rng: torch.Generator,
    shapes: Mapping[str, tuple[int, ...]],
) -> dict[str, torch.Tensor]:
    return {name: 0.5 * randn(rng, *shape) for name, shape in shapes.items()}


def gcn_model_shapes(c_in: int, hidden: int, classes: int) -> dict[str, tuple[int, ...]]:
    return {
        "conv1.linear.weight": (hidden, c_in),
        "conv1.bias": (hidden,),
        "conv2.linear.weight": (classes, hidden),
        "conv2.bias": (classes,),
    }


def gat_model_shapes(
    c_in: int, hidden: int, classes: int, heads: int
) -> dict[str, tuple[int, ...]]:
    return {
        "conv1.linear.weight": (heads * hidden, c_in),
        "conv1.att_src": (1, heads, hidden),
        "conv1.att_dst": (1, heads, hidden),
        "conv1.bias": (heads * hidden,),
        "conv2.linear.weight": (classes, heads * hidden),
        "conv2.att_src": (1, 1, classes),
        "conv2.att_dst": (1, 1, classes),
        "conv2.bias": (classes,),
    }


def classifier_shapes(
    c_in: int, hidden: int, classes: int, layers: int
) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}
    for k in range(layers):
        shapes[f"convs.{k}.linear.weight"] = (hidden, c_in if k == 0 else hidden)
        shapes[f"convs.{k}.bias"] = (hidden,)
    shapes["head.weight"] = (classes, hidden)
    shapes["head.bias"] = (classes,)
    return shapes


def run_model(
    model: nn.Module,
    values: Mapping[str, torch.Tensor],
    out: Recorder,
    call: Callable[[], torch.Tensor],
    weights_of: Callable[[torch.Size], torch.Tensor],
) -> None:
    model.double()
    assign_parameters(model, values)
    model.eval()
    try:
        call()
        logits = call()
        out["logits"] = logits
        (logits * weights_of(logits.shape)).sum().backward()
    finally:
        params = dict(model.named_parameters())
        grads = [g.flatten() for g in (params[k].grad for k in values) if g is not None]
        if len(grads) == len(values):
            out["grad_parameters"] = torch.cat(grads)


def exercise_node_models(
    api: Api, case: Mapping[str, Any], rng: torch.Generator, out: Recorder
) -> None:
    n, c_in, hidden, classes = case["N"], 3, 4, 3
    edges = draw_graph(rng, case)
    x = randn(rng, n, c_in)
    with substituted(api, GCNLayer=_ProbeGCN, GATLayer=_ProbeGAT, **HELPERS):

        def gcn() -> None:
            model = api.GCN(c_in, hidden, classes, dropout=0.5)
            run_model(
                model,
                model_parameters(rng, gcn_model_shapes(c_in, hidden, classes)),
                out,
                lambda: model(x, edges),
                lambda shape: randn(rng, *shape),
            )
            out["gcn_logits"] = out.values.pop("logits")
            if "grad_parameters" in out.values:
                out["gcn_grads"] = out.values.pop("grad_parameters")

        def gat() -> None:
            heads = case["heads"]
            model = api.GAT(c_in, hidden, classes, heads=heads, dropout=0.5)
            shapes = gat_model_shapes(c_in, hidden, classes, heads)
            run_model(
                model,
                model_parameters(rng, shapes),
                out,
                lambda: model(x, edges),
                lambda shape: randn(rng, *shape),
            )
            out["gat_logits"] = out.values.pop("logits")
            if "grad_parameters" in out.values:
                out["gat_grads"] = out.values.pop("grad_parameters")

        run_independently(gcn, gat)


NODE_MODEL_CASES: tuple[Mapping[str, Any], ...] = (
    {"graph": "random", "N": 12, "E": 30, "isolated": 2, "heads": 4},
    {"graph": "path", "N": 5, "heads": 1},
    {"graph": "random", "N": 16, "E": 20, "undirected": True, "heads": 2},
)


def exercise_graph_classifier(
    api: Api, case: Mapping[str, Any], rng: torch.Generator, out: Recorder
) -> None:
    c_in, hidden, classes, layers = 3, 5, 2, case["layers"]
    parts, batch, offset = [], [], 0
    for g, size in enumerate(case["sizes"]):
        edges = draw_graph(rng, {"graph": "random", "N": size, "E": 2 * size, "undirected": True})
        parts.append(edges + offset)
        batch.append(torch.full((size,), g))
        offset += size
    edge_index, batch_t = torch.cat(parts, dim=1), torch.cat(batch)
    x = randn(rng, offset, c_in)
    with substituted(api, GCNLayer=_ProbeGCN, **HELPERS):
        model = api.GraphClassifier(c_in, hidden, classes, num_layers=layers, pool=case["pool"])
        values = model_parameters(rng, classifier_shapes(c_in, hidden, classes, layers))
        run_model(
            model,
            values,
            out,
            lambda: model(x, edge_index, batch_t, len(case["sizes"])),
            lambda shape: randn(rng, *shape),
        )


CLASSIFIER_CASES: tuple[Mapping[str, Any], ...] = (
    {"sizes": [4, 7, 5], "layers": 3, "pool": "mean"},
    {"sizes": [6, 3], "layers": 1, "pool": "max"},
    {"sizes": [5, 5, 8, 2], "layers": 2, "pool": "add"},
    {"sizes": [9], "layers": 2, "pool": "mean"},
)


# --------------------------------------------------------------------- q7: concepts
def exercise_concepts(
    api: Api, case: Mapping[str, Any], rng: torch.Generator, out: Recorder
) -> None:
    edges = draw_graph(rng, case)

    def field() -> None:
        masks = []
        for layers in (0, 1, 2, 3):
            for node in (0, case["N"] - 1):
                masks.append(api.receptive_field(edges, case["N"], node, layers))
        out["receptive_field"] = torch.stack(masks)

    def gcn_counts() -> None:
        out["gcn_parameter_count"] = as_ints(
            [api.gcn_parameter_count(a, b, bias) for a, b, bias in case["gcn"]],
            "gcn_parameter_count",
        )

    def gat_counts() -> None:
        out["gat_parameter_count"] = as_ints(
            [api.gat_parameter_count(*args) for args in case["gat"]], "gat_parameter_count"
        )

    run_independently(field, gcn_counts, gat_counts)


CONCEPT_CASES: tuple[Mapping[str, Any], ...] = (
    {
        "graph": "path",
        "N": 7,
        "gcn": [(3, 4, True), (16, 7, False)],
        "gat": [(3, 4, 1, True, True), (8, 5, 4, True, True)],
    },
    {
        "graph": "star_in",
        "N": 5,
        "gcn": [(1, 1, True)],
        "gat": [(6, 2, 3, False, True), (6, 2, 3, True, False)],
    },
    {
        "graph": "random",
        "N": 12,
        "E": 18,
        "isolated": 2,
        "gcn": [(34, 2, True)],
        "gat": [(34, 8, 8, True, True), (64, 2, 1, False, True)],
    },
)


CHECKS = [
    Check(
        name="graph basics",
        question="q1",
        uses=("add_self_loops", "degree"),
        exercise=exercise_basics,
        cases=GRAPH_CASES,
        outputs=(
            Output(
                "add_self_loops",
                hint="Append one loop (i, i) per node AFTER the input "
                "edges, in node order 0..N-1, as int64 (2, E + N); "
                "nodes without edges get a loop too.",
            ),
            Output(
                "degree",
                hint="Count how often each node occurs in `index` (index_add_ "
                "of ones, or bincount with minlength=num_nodes), in the "
                "requested dtype; nodes that never occur have degree 0.",
            ),
            Output(
                "degree_default_dtype",
                points=0.5,
                hint="Without a dtype argument the degrees are float32.",
                needs=("degree",),
            ),
        ),
    ),
    Check(
        name="gcn_normalization",
        question="q1",
        uses=("gcn_normalization",),
        replaces=("add_self_loops", "degree"),
        exercise=exercise_normalization,
        cases=GRAPH_CASES,
        outputs=(
            Output(
                "edges",
                hint="Return the edges WITH one self-loop per node (2, E + N); "
                "this item compares them in any order.",
            ),
            Output(
                "weights",
                hint="w_ji = 1 / sqrt(deg(j) * deg(i)), degrees counted on the "
                "TARGET side (edge_index[1]) including the self-loop; "
                "symmetric, not 1 / deg(i).",
            ),
            Output(
                "default_dtype",
                points=0.5,
                hint="Without a dtype argument the weights are float32.",
                needs=("weights",),
            ),
        ),
    ),
    Check(
        name="GCNLayer",
        question="q2",
        uses=("GCNLayer",),
        replaces=LAYER_HELPERS,
        exercise=make_layer_exercise("GCN"),
        cases=GCN_CASES,
        timeout_s=20.0,
        outputs=layer_outputs(
            "GCN",
            (
                "out_i = sum over edges j -> i, self-loop included, of w_ji * (x_j W) + b: "
                "gather messages at edge_index[0] (source), sum them at edge_index[1] (target) "
                "with index_add_, weights from gcn_normalization in x's dtype."
            ),
        ),
    ),
    Check(
        name="GCNLayer at scale",
        question="q2",
        uses=("GCNLayer",),
        replaces=LAYER_HELPERS,
        exercise=make_scale_exercise("GCN"),
        cases=({"N": SCALE_N, "E": SCALE_E},),
        error_hints=SCALE_ERROR_HINTS,
        timeout_s=20.0,
        outputs=scale_outputs("GCN"),
    ),
    Check(
        name="segment_softmax",
        question="q3",
        uses=("segment_softmax",),
        exercise=exercise_softmax,
        cases=SOFTMAX_CASES,
        outputs=(
            Output(
                "softmax",
                hint="Normalise over the edges of each TARGET node separately "
                "(not over all edges), after subtracting each group's "
                "maximum (scores of 1e3 overflow exp otherwise); works for "
                "(E,) and (E, heads).",
            ),
            Output("grad_scores", points=0.5, hint=GRADIENT_HINT.format(what="scores")),
        ),
    ),
    Check(
        name="GATLayer",
        question="q4",
        uses=("GATLayer",),
        replaces=LAYER_HELPERS,
        exercise=make_layer_exercise("GAT"),
        cases=GAT_CASES,
        pattern_axes=("graph", "heads", "concat", "slope", "bias", "noncontiguous"),
        timeout_s=20.0,
        outputs=layer_outputs(
            "GAT",
            (
                "out_i = sum over j -> i of alpha_ji * W x_j per head, concatenated over heads "
                "(concat=True) or averaged (concat=False), plus the bias. Check a_src pairs with "
                "the SOURCE j and a_dst with the target i, and the LeakyReLU slope."
            ),
        ),
    ),
    Check(
        name="GATLayer at scale",
        question="q4",
        uses=("GATLayer",),
        replaces=LAYER_HELPERS,
        exercise=make_scale_exercise("GAT"),
        cases=({"N": SCALE_N, "E": SCALE_E},),
        error_hints=SCALE_ERROR_HINTS,
        timeout_s=20.0,
        outputs=scale_outputs("GAT"),
    ),
    Check(
        name="pooling",
        question="q5",
        uses=("global_mean_pool", "global_max_pool", "global_add_pool"),
        exercise=exercise_pooling,
        cases=POOL_CASES,
        pattern_axes=("sizes", "shuffled"),
        outputs=tuple(
            output
            for name in ("mean", "max", "add")
            for output in (
                Output(name, hint=POOL_HINTS[name]),
                Output(
                    f"grad_x_{name}",
                    points=0.5,
                    hint=GRADIENT_HINT.format(what="x") + " " + POOL_HINTS[name],
                ),
            )
        ),
    ),
    Check(
        name="node classifiers",
        question="q6",
        uses=("GCN", "GAT"),
        replaces=("GCNLayer", "GATLayer", *HELPERS),
        exercise=exercise_node_models,
        cases=NODE_MODEL_CASES,
        outputs=(
            Output(
                "gcn_logits",
                hint="GCN: conv1 -> ReLU -> dropout -> conv2, attributes "
                "named conv1 and conv2; graded in eval mode with the "
                "grader's own GCNLayer (dropout off: F.dropout(h, p, "
                "self.training)).",
            ),
            Output("gcn_grads", points=0.5, hint=GRADIENT_HINT.format(what="the layers")),
            Output(
                "gat_logits",
                hint="GAT: conv1 = GATLayer(in, hidden, heads, concat=True) "
                "-> ELU -> dropout -> conv2 = GATLayer(heads * hidden, "
                "classes, heads=1, concat=False); keep only the first "
                "element of each layer's (out, attention).",
            ),
            Output("gat_grads", points=0.5, hint=GRADIENT_HINT.format(what="the layers")),
        ),
    ),
    Check(
        name="GraphClassifier",
        question="q6",
        uses=("GraphClassifier",),
        replaces=("GCNLayer", *HELPERS),
        exercise=exercise_graph_classifier,
        cases=CLASSIFIER_CASES,
        outputs=(
            Output(
                "logits",
                hint="num_layers x (GCNLayer -> ReLU) in self.convs (an "
                "nn.ModuleList), then the pooling named by `pool` PER "
                "GRAPH (batch), then self.head (nn.Linear).",
            ),
            Output("grad_parameters", points=0.5, hint=GRADIENT_HINT.format(what="the parameters")),
        ),
    ),
    Check(
        name="concepts",
        question="q7",
        uses=("receptive_field", "gcn_parameter_count", "gat_parameter_count"),
        exercise=exercise_concepts,
        cases=CONCEPT_CASES,
        outputs=(
            Output(
                "receptive_field",
                hint="After k layers node v depends on the nodes with "
                "a DIRECTED path of at most k edges INTO v (messages "
                "go source -> target), v itself included.",
            ),
            Output(
                "gcn_parameter_count", points=0.5, hint="in * out weights, plus out when bias=True."
            ),
            Output(
                "gat_parameter_count",
                points=0.5,
                hint="in * heads * out weights, 2 * heads * out attention vectors, plus a "
                "bias of heads * out (concat) or out (mean) entries.",
            ),
        ),
    ),
]
