"""Figures of the course (matplotlib); each function returns its Figure.

Introduced in notebooks/03_random_unstructured.ipynb (mask_heatmap) and
notebooks/07_accuracy_and_sparsity.ipynb (weight_histograms, accuracy_curves). The live demo for
teachers, teaching/live_demo.ipynb, redraws its figures on every slider move: mask_tiles, score_histogram
and kernel_steps draw the figures of lessons 03, 06 and 04 fast, outside pyplot, and figure_png renders one.
"""
from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

#: Colours of the live demo's figures: a kept entry, a pruned one (bright and dark, for a projector).
KEPT, PRUNED = "#f6c744", "#1a1a1a"


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


def figure_png(fig: Figure, dpi: int = 100) -> bytes:
    """The PNG bytes of ``fig``, e.g. for ``ipywidgets.Image(value=...)``; nothing is shown or kept open.

    Build ``fig`` as ``Figure(...)`` rather than with ``plt.subplots``: pyplot then never holds it, so a
    notebook does not show it again at the end of the next cell. Introduced in teaching/live_demo.ipynb.
    """
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def _tiles(mask: torch.Tensor) -> tuple[np.ndarray, list[tuple[float, float, str]]]:
    """The mask as one image (NaN between tiles) and a label (x, y, text) above each conv filter's tile."""
    m = mask.detach().cpu().float()
    if m.dim() == 2:
        return m.numpy(), []
    out_ch, in_ch, kh, kw = m.shape
    tile_h, tile_w = in_ch * (kh + 1) - 1, kw  # a filter: its input channels' kernels stacked, one row apart
    cols = min((c for c in range(1, out_ch + 1) if out_ch % c == 0),  # full rows, about 2.5 times wider than high
               key=lambda c: abs(math.log((c * (tile_w + 1) - 1) / ((out_ch // c) * (tile_h + 2) - 2) / 2.5)))
    rows = out_ch // cols
    image = np.full((rows * (tile_h + 2) - 2, cols * (tile_w + 1) - 1), np.nan)
    labels = []
    for f in range(out_ch):
        top, left = (f // cols) * (tile_h + 2), (f % cols) * (tile_w + 1)
        for c in range(in_ch):
            image[top + c * (kh + 1): top + c * (kh + 1) + kh, left: left + kw] = m[f, c].numpy()
        labels.append((left + (kw - 1) / 2, top - 0.7, str(f)))
    return image, labels


def mask_tiles(mask: torch.Tensor, title: str = "", figsize: tuple[float, float] = (6.4, 3.4)) -> Figure:
    """A layer's whole mask in one image: kept entries yellow, pruned ones black (a Figure outside pyplot).

    A Conv2d mask ``(out, in, kh, kw)`` becomes one tile per output filter, numbered, with the kernels of its
    input channels stacked; a Linear mask ``(out, in)`` is drawn as the matrix, one row per output neuron.
    One image on one Axes, so it redraws in a fraction of :func:`mask_heatmap`'s time.

    Raises:
        ValueError: ``mask`` is neither 2-D nor 4-D.

    Introduced in teaching/live_demo.ipynb, for the heatmap of notebooks/03_random_unstructured.ipynb.
    """
    if mask.dim() not in (2, 4):
        raise ValueError(f"mask_tiles needs a 2-D (Linear) or 4-D (Conv2d) mask, got shape {tuple(mask.shape)}")
    image, labels = _tiles(mask)
    fig = Figure(figsize=figsize)
    ax = fig.subplots()
    cmap = ListedColormap([PRUNED, KEPT]).with_extremes(bad="white")  # white between the tiles
    h, w = image.shape
    ax.imshow(image, cmap=cmap, vmin=0, vmax=1, interpolation="nearest", aspect="equal" if w / h < 6 else "auto")
    if labels:
        ax.set_axis_off()
        for x, y, text in labels:
            ax.text(x, y, text, ha="center", va="bottom", fontsize=8 if len(labels) > 8 else 10)
        ax.set_ylim(h - 0.5, -2)
        out_ch, in_ch, kh, kw = mask.shape
        what = f"its {in_ch} input channels' {kh}×{kw} kernels, stacked" if in_ch > 1 else f"its {kh}×{kw} kernel"
        fig.text(0.5, 0.02, f"one tile per filter (numbered): {what}", ha="center", fontsize=9)
    else:
        ax.set_xlabel(f"input ({mask.shape[1]})")
        ax.set_ylabel(f"output neuron ({mask.shape[0]})")
    ax.set_title(title, fontsize=11)
    fig.subplots_adjust(left=0.08, right=0.98, top=0.88, bottom=0.14)
    return fig


def score_histogram(scores: torch.Tensor, pruned: torch.Tensor, threshold: float | None, xlabel: str = "|w|",
                    title: str = "", figsize: tuple[float, float] = (4.8, 3.4)) -> Figure:
    """Histogram of the scores a pruning method ranked, kept (yellow) on pruned (black), and its threshold.

    Args:
        scores: one score per entry (``|w|``) or per slice (the L2 norm of each filter or row).
        pruned: a bool tensor of the same shape: which ones the method pruned.
        threshold: drawn as a dashed red line, or ``None`` (random pruning ranks no score).

    Raises:
        ValueError: ``scores`` and ``pruned`` hold different numbers of entries.

    Introduced in teaching/live_demo.ipynb, for the cut of notebooks/06_pruning_methods.ipynb's histograms.
    """
    s, p = scores.detach().cpu().flatten().numpy(), pruned.detach().cpu().flatten().numpy().astype(bool)
    if s.shape != p.shape:
        raise ValueError(f"scores has {s.size} entries but pruned has {p.size}; give one flag per score")
    edges = np.linspace(0, float(s.max()) * 1.02 or 1.0, min(40, max(len(s), 5)) + 1)
    low, _ = np.histogram(s[p], edges)
    high = low + np.histogram(s[~p], edges)[0]
    fig = Figure(figsize=figsize)
    ax = fig.subplots()  # two stairs, not one bar per bin: several times faster to draw
    ax.stairs(low, edges, fill=True, color=PRUNED, label=f"pruned ({p.sum():,})")
    ax.stairs(high, edges, baseline=low, fill=True, color=KEPT, label=f"kept ({(~p).sum():,})")
    ax.stairs(high, edges, color="0.35", lw=0.6)
    if threshold is not None:
        ax.axvline(threshold, color="tab:red", ls="--", lw=1.5, label=f"threshold {threshold:.4g}")
    ax.set_xlim(edges[0], edges[-1])
    ax.set_ylim(0, max(1, high.max()) * 1.05)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("count")
    ax.set_title(title, fontsize=11)
    ax.legend(fontsize=8, loc="upper right")
    fig.subplots_adjust(left=0.14, right=0.97, top=0.88, bottom=0.15)
    return fig


def kernel_steps(steps: Mapping[str, Mapping[str, torch.Tensor]], title: str = "",
                 figsize: tuple[float, float] = (7.5, 4.2)) -> Figure:
    """A grid of 3×3 tensors with their values: one row per moment, one column per tensor.

    ``steps`` maps a moment (``"after pruning"``, ``"after opt.step()"``, ...) to ``{name: 3×3 tensor}``, the
    same names in every row (``weight_orig``, ``weight_mask``, ``weight``). A tensor whose name ends in
    ``_mask`` is drawn yellow (1) and black (0), the others blue-white-red on one shared scale; a value that
    changed since the row above is framed in red.

    Raises:
        ValueError: a tensor is not 3×3, or the rows name different tensors.

    Introduced in teaching/live_demo.ipynb, for the panels of notebooks/04_under_the_hood.ipynb.
    """
    moments = list(steps)
    names = list(steps[moments[0]]) if moments else []
    if not names or any(list(steps[r]) != names for r in moments):
        raise ValueError(f"kernel_steps needs the same tensor names in every row, "
                         f"got {[list(v) for v in steps.values()]}")
    grid = {(i, j): steps[r][c].detach().cpu().float().numpy()
            for i, r in enumerate(moments) for j, c in enumerate(names)}
    if any(t.shape != (3, 3) for t in grid.values()):
        raise ValueError(f"kernel_steps draws 3×3 tensors, got shapes {sorted({t.shape for t in grid.values()})}")
    is_mask = [c.endswith("_mask") for c in names]
    lim = max([float(abs(t).max()) for (i, j), t in grid.items() if not is_mask[j]] + [1e-12])
    weights, masks = matplotlib.colormaps["coolwarm"], ListedColormap([PRUNED, KEPT])
    image = np.ones((4 * len(moments) - 1, 4 * len(names) - 1, 4))  # one image, white between the 3×3 panels
    fig = Figure(figsize=figsize)
    ax = fig.subplots()  # one Axes for all panels: a fraction of the time of one Axes per panel
    for (i, j), t in grid.items():
        image[4 * i: 4 * i + 3, 4 * j: 4 * j + 3] = masks(t) if is_mask[j] else weights((t / lim + 1) / 2)
        for (y, x), v in np.ndenumerate(t):
            text = f"{v:.0f}" if is_mask[j] else ("0" if v == 0 else f"{v:.3f}")
            ax.text(4 * j + x, 4 * i + y, text, ha="center", va="center", fontsize=8,
                    color="white" if is_mask[j] and v == 0 else "black")
            if i > 0 and v != grid[(i - 1, j)][y, x]:
                ax.add_patch(Rectangle((4 * j + x - 0.45, 4 * i + y - 0.45), 0.9, 0.9, fill=False, ec="red", lw=2))
    ax.imshow(image, interpolation="nearest", aspect="auto")  # cells wider than high: room for the values
    for j, c in enumerate(names):
        ax.text(4 * j + 1, -0.8, c, ha="center", va="bottom", fontsize=10)
    for i, r in enumerate(moments):
        ax.text(-0.8, 4 * i + 1, r.replace(" ", "\n", 1), ha="right", va="center", fontsize=10)
    ax.set_axis_off()
    fig.suptitle(title, fontsize=11)
    fig.subplots_adjust(left=0.19, right=0.99, top=0.86, bottom=0.02)
    return fig
