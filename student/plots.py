"""Plotting helpers for the notebooks (matplotlib)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch
from matplotlib.ticker import MaxNLocator


def plot_curves(
    curves: dict[str, list[float]], ylabel: str, title: str = "", xlabel: str = "epoch"
):
    """One line per named curve, e.g. {"train": [...], "val": [...]}; returns the figure."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, values in curves.items():
        ax.plot(range(1, len(values) + 1), values, label=name)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs and steps are whole numbers
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def show_images(
    images: torch.Tensor,
    titles: list[str] | None = None,
    columns: int = 8,
    cmap: str = "gray",
    shared_scale: bool = False,
):
    """A grid of images of shape (n, H, W) or (n, 1, H, W); returns the figure.

    By default each image is scaled to its own range (its darkest pixel black, its brightest
    white); with ``shared_scale=True`` all images share one range, so they can be compared.
    """
    images = images.detach().cpu()
    if images.ndim == 4:
        images = images[:, 0]
    rows = (len(images) + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(1.3 * columns, 1.4 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, image in enumerate(images):
        ax = axes.flat[i]
        if shared_scale:
            ax.imshow(image, cmap=cmap, vmin=float(images.min()), vmax=float(images.max()))
        else:
            ax.imshow(image, cmap=cmap)
        if titles:
            ax.set_title(titles[i], fontsize=8)
    fig.tight_layout()
    return fig
