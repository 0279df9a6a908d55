"""Teaching figures, drawn with matplotlib at build time and embedded in the notebooks.

A markdown cell of a master that contains ``{{FIGURE:name}}`` gets the figure ``name`` as a
cell attachment (PNG), so it shows in Jupyter, VS Code and Colab alike, with nothing to
download and nothing for the student to run. The PNGs carry no timestamp: builds stay
byte-for-byte reproducible.
"""

from __future__ import annotations

import io
import re
from base64 import b64encode
from collections.abc import Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, Rectangle

MARKER = re.compile(r"\{\{FIGURE:(\w+)\}\}")
BLUE, ORANGE, GREY, GREEN = "#4C72B0", "#DD8452", "#D9D9D9", "#55A868"


def _png(fig: plt.Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()


def _box(
    ax, x: float, y: float, text: str, color: str = "white", w: float = 1.6, h: float = 0.8
) -> None:
    ax.add_patch(Rectangle((x - w / 2, y - h / 2), w, h, facecolor=color, edgecolor="black"))
    ax.text(x, y, text, ha="center", va="center", fontsize=10)


def _arrow(
    ax,
    start: tuple[float, float],
    end: tuple[float, float],
    color: str = "black",
    text: str = "",
    offset: float = 0.25,
) -> None:
    ax.add_patch(
        FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=12, color=color, linewidth=1.3)
    )
    if text:
        ax.text(
            (start[0] + end[0]) / 2,
            (start[1] + end[1]) / 2 + offset,
            text,
            ha="center",
            va="center",
            fontsize=8.5,
            color=color,
        )


def linear_graph() -> bytes:
    """Forward (black) and backward (orange) through y = x @ W + b: shapes, not formulas
    (the students derive those)."""
    fig, ax = plt.subplots(figsize=(8.5, 2.6))
    _box(ax, 0, 0, "x\n(N, in)", GREY)
    _box(ax, 0, -1.6, "W\n(in, out)", GREY)
    _box(ax, 2.6, 0, "u = x @ W\n(N, out)")
    _box(ax, 2.6, -1.6, "b\n(out,)", GREY)
    _box(ax, 5.2, 0, "y = u + b\n(N, out)")
    _box(ax, 7.8, 0, "loss L", GREY, w=1.2)
    for start, end in [
        ((0.8, 0), (1.8, 0)),
        ((0.8, -1.6), (1.8, -0.3)),
        ((3.4, 0), (4.4, 0)),
        ((3.4, -1.6), (4.4, -0.3)),
        ((6.0, 0), (7.2, 0)),
    ]:
        _arrow(ax, start, end)
    _arrow(ax, (7.2, 0.55), (6.0, 0.55), ORANGE, "dL/dy = dupstream (N, out)", 0.25)
    _arrow(ax, (4.4, 0.55), (3.4, 0.55), ORANGE, "dL/du: (N, out)", 0.25)
    _arrow(ax, (1.8, 0.55), (0.8, 0.55), ORANGE, "dL/dx: (N, in)", 0.25)
    ax.text(
        1.3, -2.45, "backward also sets dL/dW: (in, out)", ha="center", color=ORANGE, fontsize=9
    )
    ax.text(6.3, -2.45, "and dL/db: (out,)", ha="center", color=ORANGE, fontsize=9)
    ax.set_xlim(-1, 8.6)
    ax.set_ylim(-2.6, 1.1)
    ax.axis("off")
    return _png(fig)


def _grid(
    ax,
    x0: float,
    y0: float,
    rows: int,
    cols: int,
    colors: dict,
    labels: dict | None = None,
    size: float = 1.0,
) -> None:
    for i in range(rows):
        for j in range(cols):
            ax.add_patch(
                Rectangle(
                    (x0 + j * size, y0 - (i + 1) * size),
                    size,
                    size,
                    facecolor=colors.get((i, j), "white"),
                    edgecolor="black",
                    linewidth=0.8,
                )
            )
            if labels and (i, j) in labels:
                ax.text(
                    x0 + (j + 0.5) * size,
                    y0 - (i + 0.5) * size,
                    labels[(i, j)],
                    ha="center",
                    va="center",
                    fontsize=9,
                )


def conv_window() -> bytes:
    """A 3x3 window on a 5x5 input padded by 1, stride 2: three positions and the output."""
    fig, axes = plt.subplots(1, 4, figsize=(11, 3.1))
    positions = [(0, 0), (0, 1), (1, 0)]
    for ax, (oi, oj) in zip(axes, positions):
        colors = {(i, j): GREY for i in range(7) for j in range(7) if i in (0, 6) or j in (0, 6)}
        for u in range(3):
            for v in range(3):
                colors[(2 * oi + u, 2 * oj + v)] = (
                    BLUE if colors.get((2 * oi + u, 2 * oj + v)) is None else "#9DB4D6"
                )
        _grid(ax, 0, 7, 7, 7, colors)
        ax.set_title(
            f"output ({oi}, {oj}):\nrows {2 * oi}-{2 * oi + 2}, cols {2 * oj}-{2 * oj + 2} of xp",
            fontsize=9,
        )
        ax.set_xlim(-0.2, 7.2)
        ax.set_ylim(-0.2, 7.2)
        ax.set_aspect("equal")
        ax.axis("off")
    ax = axes[3]
    out_colors = {(0, 0): BLUE, (0, 1): BLUE, (1, 0): BLUE}
    _grid(ax, 0.5, 6, 3, 3, out_colors, {(0, 0): "0,0", (0, 1): "0,1", (1, 0): "1,0"}, size=2)
    ax.set_title("output, 3x3:\n1 + (5 + 2*1 - 3) // 2 = 3", fontsize=9)
    ax.set_xlim(-0.2, 7.2)
    ax.set_ylim(-0.2, 7.2)
    ax.set_aspect("equal")
    ax.axis("off")
    fig.suptitle("3x3 window, stride 2, padding 1 (grey: the zero padding of xp)", fontsize=10)
    return _png(fig)


def im2col() -> bytes:
    """Each window of a 4x4 input (3x3, stride 1) becomes one column of a 9 x 4 matrix."""
    fig, (left, right) = plt.subplots(
        1, 2, figsize=(9, 3.6), gridspec_kw={"width_ratios": [1, 1.1]}
    )
    shades = [BLUE, ORANGE, GREEN, "#C44E52"]
    labels = {(i, j): f"{4 * i + j}" for i in range(4) for j in range(4)}
    _grid(left, 0, 4, 4, 4, {}, labels)
    for index, (oi, oj) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
        left.add_patch(
            Rectangle(
                (oj + 0.06 * index, 4 - oi - 3 + 0.06 * index),
                3 - 0.12 * index,
                3 - 0.12 * index,
                fill=False,
                edgecolor=shades[index],
                linewidth=2.2,
            )
        )
    left.set_title("input (one channel), four 3x3 windows", fontsize=9)
    left.set_xlim(-0.2, 4.2)
    left.set_ylim(-0.2, 4.2)
    left.set_aspect("equal")
    left.axis("off")
    colors, values = {}, {}
    for column, (oi, oj) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
        for u in range(3):
            for v in range(3):
                values[(3 * u + v, column)] = f"{4 * (oi + u) + oj + v}"
                colors[(3 * u + v, column)] = shades[column] + "55"
    _grid(right, 0, 9, 9, 4, colors, values)
    right.set_title("cols: (C*k*k, H'*W') = (9, 4); y = weight.reshape(F, 9) @ cols", fontsize=9)
    right.set_xlim(-0.2, 4.2)
    right.set_ylim(-0.2, 9.2)
    right.set_aspect("equal")
    right.axis("off")
    return _png(fig)


def maxpool_routing() -> bytes:
    """2x2 max pooling, stride 2: forward picks each window's maximum, backward routes there."""
    grid = [[1, 2, 5, 0], [3, 4, 1, 1], [0, -1, 2, 7], [1, 1, 3, 2]]
    winners = {(1, 1), (0, 2), (3, 0), (2, 3)}  # ties (1, 1 in the third window): the first
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.2))
    labels = {(i, j): str(grid[i][j]) for i in range(4) for j in range(4)}
    _grid(axes[0], 0, 4, 4, 4, {w: ORANGE for w in winners}, labels)
    for i in (0, 2):
        for j in (0, 2):
            axes[0].add_patch(Rectangle((j, 4 - i - 2), 2, 2, fill=False, linewidth=2.4))
    axes[0].set_title("forward: x, 2x2 windows,\nwinners in orange (ties: the first)", fontsize=9)
    _grid(axes[1], 1, 3, 2, 2, {}, {(0, 0): "4", (0, 1): "5", (1, 0): "1", (1, 1): "7"})
    axes[1].set_title("y = the maxima;\nbackward: dupstream g1 .. g4", fontsize=9)
    routed = {(1, 1): "g1", (0, 2): "g2", (3, 0): "g3", (2, 3): "g4"}
    _grid(
        axes[2],
        0,
        4,
        4,
        4,
        {w: ORANGE for w in winners},
        {(i, j): routed.get((i, j), "0") for i in range(4) for j in range(4)},
    )
    axes[2].set_title("dx: each g goes to its window's\nwinner, 0 elsewhere", fontsize=9)
    for ax in axes:
        ax.set_xlim(-0.2, 4.2)
        ax.set_ylim(-0.2, 4.2)
        ax.set_aspect("equal")
        ax.axis("off")
    return _png(fig)


def unrolled_rnn() -> bytes:
    """One cell, its parameters shared by every step, unrolled over T = 4 steps."""
    fig, ax = plt.subplots(figsize=(9.5, 3.2))
    for t in range(4):
        x = 2.4 * t + 1.2
        _box(ax, x, 0, "cell", "#E8EEF7", w=1.2)
        _box(ax, x, -1.5, f"x[{t}]", GREY, w=1.0, h=0.6)
        _box(ax, x, 1.5, f"outputs[{t}]", "white", w=1.5, h=0.6)
        _arrow(ax, (x, -1.2), (x, -0.4))
        _arrow(ax, (x, 0.4), (x, 1.2))
        _arrow(
            ax,
            (x - 1.8, 0),
            (x - 0.6, 0),
            text=("state\n(or None)" if t == 0 else f"h{t}"),
            offset=0.45 if t == 0 else 0.25,
        )
    _arrow(ax, (2.4 * 3 + 1.8, 0), (2.4 * 3 + 3.0, 0), text="returned\nstate", offset=0.45)
    ax.text(
        4.8,
        -2.3,
        "the same weight_xh, weight_hh, bias_xh, bias_hh at every step; "
        "backward: autograd follows the arrows back (through time)",
        ha="center",
        fontsize=9,
    )
    ax.set_xlim(-0.8, 11.4)
    ax.set_ylim(-2.6, 2.0)
    ax.axis("off")
    return _png(fig)


FIGURES: dict[str, Callable[[], bytes]] = {
    "linear_graph": linear_graph,
    "conv_window": conv_window,
    "im2col": im2col,
    "maxpool_routing": maxpool_routing,
    "unrolled_rnn": unrolled_rnn,
}


def embed_figures(notebook) -> None:
    """Replaces each ``{{FIGURE:name}}`` in a markdown cell with the figure, as an attachment."""
    for cell in notebook.cells:
        if cell.cell_type != "markdown":
            continue
        for name in MARKER.findall(cell.source):
            if name not in FIGURES:
                raise KeyError(f"unknown figure {name!r}; known: {sorted(FIGURES)}")
            cell.setdefault("attachments", {})[f"{name}.png"] = {
                "image/png": b64encode(FIGURES[name]()).decode()
            }
            cell.source = cell.source.replace(
                f"{{{{FIGURE:{name}}}}}", f"![{name}](attachment:{name}.png)"
            )
