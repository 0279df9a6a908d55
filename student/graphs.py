"""Graphs for chapter 07, all embedded or generated (nothing is downloaded).

* :func:`karate_club`: Zachary's karate club (1977), 34 members, 78 friendships, and the
  faction each member joined when the club split (0: the instructor "Mr. Hi", 1: the
  administrator "Officer"); public facts, numbered from 0 as in most software.
* :func:`stochastic_block_model`: a seeded node-classification graph in which the edges carry
  the class signal and the features are noisy.
* :func:`cycles_and_trees`: a seeded graph-classification set (a cycle or a tree).
* :func:`spring_layout`: 2-D positions for drawing a small graph (Fruchterman-Reingold).

Graphs follow the chapter's convention: ``edge_index`` (2, E) int64 (source, target), both
directions listed for an undirected graph, no self-loops.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.overrides import TorchFunctionMode

# Zachary's karate club: each undirected friendship once, as (smaller, larger) member number.
KARATE_EDGES = (
    (0, 1),
    (0, 2),
    (0, 3),
    (0, 4),
    (0, 5),
    (0, 6),
    (0, 7),
    (0, 8),
    (0, 10),
    (0, 11),
    (0, 12),
    (0, 13),
    (0, 17),
    (0, 19),
    (0, 21),
    (0, 31),
    (1, 2),
    (1, 3),
    (1, 7),
    (1, 13),
    (1, 17),
    (1, 19),
    (1, 21),
    (1, 30),
    (2, 3),
    (2, 7),
    (2, 8),
    (2, 9),
    (2, 13),
    (2, 27),
    (2, 28),
    (2, 32),
    (3, 7),
    (3, 12),
    (3, 13),
    (4, 6),
    (4, 10),
    (5, 6),
    (5, 10),
    (5, 16),
    (6, 16),
    (8, 30),
    (8, 32),
    (8, 33),
    (9, 33),
    (13, 33),
    (14, 32),
    (14, 33),
    (15, 32),
    (15, 33),
    (18, 32),
    (18, 33),
    (19, 33),
    (20, 32),
    (20, 33),
    (22, 32),
    (22, 33),
    (23, 25),
    (23, 27),
    (23, 29),
    (23, 32),
    (23, 33),
    (24, 25),
    (24, 27),
    (24, 31),
    (25, 31),
    (26, 29),
    (26, 33),
    (27, 33),
    (28, 31),
    (28, 33),
    (29, 32),
    (29, 33),
    (30, 32),
    (30, 33),
    (31, 32),
    (31, 33),
    (32, 33),
)
# The faction each member joined after the split: 0 = Mr. Hi (the instructor, member 0),
# 1 = Officer (the administrator, member 33).
KARATE_FACTIONS = (
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    1,
    0,
    0,
    0,
    0,
    1,
    1,
    0,
    0,
    1,
    0,
    1,
    0,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
)


@dataclass
class Graph:
    """One graph: features x (N, C) float32, edge_index (2, E) int64, labels (N,) or (),
    and optional boolean node masks (N,) for a train/validation/test split."""

    x: torch.Tensor
    edge_index: torch.Tensor
    y: torch.Tensor
    train_mask: torch.Tensor | None = None
    val_mask: torch.Tensor | None = None
    test_mask: torch.Tensor | None = None

    @property
    def num_nodes(self) -> int:
        return self.x.shape[0]


def both_directions(pairs: torch.Tensor) -> torch.Tensor:
    """(2, E) undirected pairs -> (2, 2E): every pair in both directions."""
    return torch.cat([pairs, pairs.flip(0)], dim=1)


def karate_club() -> Graph:
    """Zachary's karate club: x = identity (34, 34) (one-hot member id), 156 directed edges
    (78 friendships, both directions), y = faction (34,)."""
    pairs = torch.tensor(KARATE_EDGES, dtype=torch.int64).T
    return Graph(torch.eye(34), both_directions(pairs), torch.tensor(KARATE_FACTIONS))


def _split_masks(
    labels: torch.Tensor, per_class_train: int, val_fraction: float, generator: torch.Generator
) -> tuple[torch.Tensor, ...]:
    n = len(labels)
    train = torch.zeros(n, dtype=torch.bool)
    for c in labels.unique():
        members = (labels == c).nonzero().flatten()
        chosen = members[torch.randperm(len(members), generator=generator)[:per_class_train]]
        train[chosen] = True
    rest = (~train).nonzero().flatten()
    rest = rest[torch.randperm(len(rest), generator=generator)]
    val = torch.zeros(n, dtype=torch.bool)
    val[rest[: int(val_fraction * len(rest))]] = True
    return train, val, ~(train | val)


def stochastic_block_model(
    nodes_per_class: int = 100,
    num_classes: int = 4,
    p_in: float = 0.05,
    p_out: float = 0.004,
    num_features: int = 16,
    feature_noise: float = 2.0,
    per_class_train: int = 20,
    seed: int = 0,
) -> Graph:
    """A stochastic block model: node i in class c; an undirected edge between two nodes with
    probability p_in (same class) or p_out (different classes). Features: a class mean (a
    random unit vector per class) plus Gaussian noise of standard deviation ``feature_noise``
    per entry, so a node's own features barely reveal its class while its neighbours, mostly
    of its class, average the noise away. Masks: ``per_class_train`` training nodes per class,
    then a third of the rest for validation and the remainder for testing."""
    generator = torch.Generator().manual_seed(seed)
    n = nodes_per_class * num_classes
    labels = torch.arange(num_classes).repeat_interleave(nodes_per_class)
    same = labels[:, None] == labels[None, :]
    probability = torch.where(same, torch.tensor(p_in), torch.tensor(p_out))
    draw = torch.rand(n, n, generator=generator) < probability
    upper = torch.triu(draw, diagonal=1).nonzero().T
    means = torch.randn(num_classes, num_features, generator=generator)
    means = means / means.norm(dim=1, keepdim=True)
    x = means[labels] + feature_noise * torch.randn(n, num_features, generator=generator)
    train, val, test = _split_masks(labels, per_class_train, 1 / 3, generator)
    return Graph(x, both_directions(upper), labels, train, val, test)


def _random_tree(n: int, generator: torch.Generator) -> torch.Tensor:
    parents = [int(torch.randint(0, k, (1,), generator=generator)) for k in range(1, n)]
    return torch.tensor([parents, list(range(1, n))], dtype=torch.int64)


def _cycle(n: int) -> torch.Tensor:
    nodes = torch.arange(n)
    return torch.stack([nodes, (nodes + 1) % n])


def cycles_and_trees(
    num_graphs: int = 400, min_nodes: int = 8, max_nodes: int = 20, seed: int = 0
) -> list[Graph]:
    """Graph classification: label 1 for a single cycle through all n nodes, 0 for a random
    tree on n nodes (n uniform in [min_nodes, max_nodes], nodes relabelled at random). Every
    node has the same feature, 1: only the structure tells the classes apart."""
    generator = torch.Generator().manual_seed(seed)
    graphs = []
    for k in range(num_graphs):
        n = int(torch.randint(min_nodes, max_nodes + 1, (1,), generator=generator))
        label = k % 2
        pairs = _cycle(n) if label else _random_tree(n, generator)
        pairs = torch.randperm(n, generator=generator)[pairs]
        graphs.append(Graph(torch.ones(n, 1), both_directions(pairs), torch.tensor(label)))
    order = torch.randperm(num_graphs, generator=generator)
    return [graphs[int(i)] for i in order]


def collate(graphs: list[Graph]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A batch as one disconnected graph: (x (N, C), edge_index (2, E), batch (N,), y (B,)),
    each graph's node numbers shifted by the number of nodes before it."""
    xs, edges, batch, offset = [], [], [], 0
    for g, graph in enumerate(graphs):
        xs.append(graph.x)
        edges.append(graph.edge_index + offset)
        batch.append(torch.full((graph.num_nodes,), g, dtype=torch.int64))
        offset += graph.num_nodes
    labels = torch.stack([graph.y for graph in graphs])
    return torch.cat(xs), torch.cat(edges, dim=1), torch.cat(batch), labels


def spring_layout(
    edge_index: torch.Tensor, num_nodes: int, iterations: int = 300, seed: int = 0
) -> torch.Tensor:
    """(N, 2) positions in [-1, 1]: Fruchterman-Reingold, connected nodes attract (d^2 / k),
    all pairs repel (k^2 / d), with a cooling step size. Seeded, deterministic."""
    generator = torch.Generator().manual_seed(seed)
    pos = torch.rand(num_nodes, 2, generator=generator, dtype=torch.float64) * 2 - 1
    k = math.sqrt(4.0 / num_nodes)
    adjacency = torch.zeros(num_nodes, num_nodes, dtype=torch.float64)
    adjacency[edge_index[0], edge_index[1]] = 1.0
    for step in range(iterations):
        delta = pos[:, None, :] - pos[None, :, :]
        distance = delta.norm(dim=2).clamp(min=1e-3)
        force = k * k / distance**2 - adjacency * distance / k
        move = (delta * force[:, :, None]).sum(dim=1)
        length = move.norm(dim=1, keepdim=True).clamp(min=1e-9)
        temperature = 0.1 * (1 - step / iterations) + 1e-3
        pos = pos + move / length * torch.clamp(length, max=temperature)
    pos = pos - pos.mean(dim=0)
    return (pos / pos.abs().max()).float()


def ring(n: int) -> torch.Tensor:
    """The undirected cycle 0 - 1 - ... - (n-1) - 0 as edge_index (2, 2n), both directions."""
    nodes = torch.arange(n)
    return both_directions(torch.stack([nodes, (nodes + 1) % n]))


class LargestTensor(TorchFunctionMode):
    """``with LargestTensor() as seen: ...``: afterwards ``seen.entries`` is the number of
    entries of the largest (strided) tensor any torch operation returned inside the block.
    The public checks use it to see whether a layer built an N x N or N x E matrix."""

    def __init__(self) -> None:
        super().__init__()
        self.entries = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        result = func(*args, **(kwargs or {}))
        for value in result if isinstance(result, (tuple, list)) else (result,):
            if isinstance(value, torch.Tensor) and value.layout == torch.strided:
                self.entries = max(self.entries, value.numel())
        return result
