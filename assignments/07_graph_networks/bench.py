"""Bench of chapter 07: the sparse reference layers at the hidden scale check's size.

``bench()`` times one forward + backward of the reference ``GCNLayer(8, 8)`` and
``GATLayer(8, 8, heads=1)`` on a random graph of 50,000 nodes and 400,000 edges (float32, one
thread, median of a few runs), reports what a dense N x N adjacency would need instead, and
times the hidden checks run against the reference, which bounds the chapter's grading work.
"""

from __future__ import annotations

from pathlib import Path

import torch

from solutions import ch07_graph_networks as reference
from tools.timing import hidden_checks_figure, median_seconds, one_thread

NODES, EDGES, FEATURES, REPEATS = 50_000, 400_000, 8, 5


def bench() -> dict[str, str]:
    with one_thread():
        generator = torch.Generator().manual_seed(0)
        edges = torch.randint(0, NODES, (2, EDGES), generator=generator)
        edges = edges[:, edges[0] != edges[1]]
        x = torch.randn(NODES, FEATURES, generator=generator)
        figures = {
            "setting": f"N={NODES}, E={EDGES}, {FEATURES} features, float32, 1 thread, "
            f"median of {REPEATS}"
        }
        for name, layer in (
            ("GCNLayer(8, 8)", reference.GCNLayer(FEATURES, FEATURES)),
            ("GATLayer(8, 8, heads=1)", reference.GATLayer(FEATURES, FEATURES)),
        ):

            def step(layer: torch.nn.Module = layer) -> None:
                layer.zero_grad(set_to_none=True)
                out = layer(x, edges)
                out = out[0] if isinstance(out, tuple) else out
                out.sum().backward()

            figures[f"{name} forward+backward"] = f"{median_seconds(step, REPEATS) * 1e3:.0f} ms"
        figures["dense float32 adjacency would need"] = f"{NODES * NODES * 4 / 1e9:.0f} GB"
        figures |= hidden_checks_figure(Path(__file__).with_name("checks.py"), reference, repeats=3)
        return figures


if __name__ == "__main__":
    for key, value in bench().items():
        print(f"{key}: {value}")
