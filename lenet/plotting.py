"""Figures of the course (matplotlib); each function returns its Figure.

Introduced in notebooks/03_random_unstructured.ipynb (mask_heatmap) and
notebooks/07_accuracy_and_sparsity.ipynb (weight_histograms, accuracy_curves).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure


def mask_heatmap(mask: torch.Tensor, title: str = "mask (dark = pruned)") -> Figure:
    """One panel per output filter (conv, 4-D) or one panel for the whole matrix (linear, 2-D).

    Kept entries are light, pruned entries dark. The input channels of a filter sit side by side.
    """
    mask = mask.detach().cpu().float()
    if mask.dim() == 4:
        out_ch, in_ch, kh, kw = mask.shape
        panels = [mask[i].permute(1, 0, 2).reshape(kh, in_ch * kw) for i in range(out_ch)]
        labels = [f"filter {i}: {int(p.sum())}/{p.numel()} kept" for i, p in enumerate(panels)]
    elif mask.dim() == 2:
        panels, labels = [mask], [f"{int(mask.sum())}/{mask.numel()} kept"]
    else:
        raise ValueError(f"mask_heatmap needs a 2-D (Linear) or 4-D (Conv2d) mask, got shape {tuple(mask.shape)}")
    cols = min(len(panels), 8)
    rows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(1.9 * cols, 2.1 * rows), squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, panel, label in zip(axes.flat, panels, labels):
        ax.imshow(panel.numpy(), cmap="gray", vmin=0, vmax=1)
        h, w = panel.shape
        if h * w <= 400:  # grey cell borders, so white (kept) cells stay visible on the white figure
            for y in range(h + 1):
                ax.axhline(y - 0.5, color="0.6", lw=0.8)
            for x in range(w + 1):
                ax.axvline(x - 0.5, color="0.6", lw=0.8)
        ax.set_title(label, fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def weight_histograms(before: torch.Tensor, after: torch.Tensor, title: str = "weights") -> Figure:
    """Histograms of a weight tensor before and after pruning (log count axis, zeros included)."""
    fig, ax = plt.subplots(figsize=(6, 3.2))
    b, a = before.detach().cpu().flatten().numpy(), after.detach().cpu().flatten().numpy()
    edges = torch.linspace(float(min(b.min(), a.min())), float(max(b.max(), a.max())), 81).numpy()
    ax.hist(b, bins=edges, alpha=0.6, label=f"before ({(b == 0).mean():.0%} zero)")
    ax.hist(a, bins=edges, alpha=0.6, label=f"after ({(a == 0).mean():.0%} zero)")
    ax.set_yscale("log")
    ax.set_xlabel("weight value")
    ax.set_ylabel("count (log)")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    return fig


def accuracy_curves(curves: Mapping[str, tuple[Sequence[float], Sequence[float]]],
                    title: str = "accuracy vs sparsity", dense: float | None = None) -> Figure:
    """Lines of test accuracy against sparsity: ``{label: (sparsities, accuracies)}``, both in [0, 1]."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for label, (xs, ys) in curves.items():
        if len(xs) != len(ys):
            raise ValueError(f"curve {label!r}: {len(xs)} sparsities but {len(ys)} accuracies")
        ax.plot([100 * x for x in xs], [100 * y for y in ys], marker="o", ms=3, label=label)
    if dense is not None:
        ax.axhline(100 * dense, color="gray", ls="--", lw=1, label="dense")
    ax.set_xlabel("weights pruned (%)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
