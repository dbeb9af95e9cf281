"""Deterministic training, evaluation and fine-tuning of LeNet on MNIST.

Introduced in notebooks/01_load_lenet.ipynb (evaluate, paired_difference) and
notebooks/07_accuracy_and_sparsity.ipynb (fine_tune).
"""
from __future__ import annotations

import contextlib
import random
import sys
from collections.abc import Callable, Iterator
from numbers import Integral
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .data import MNIST
from .model import _require_model


def seed_everything(seed: int = 0) -> None:
    """Seed Python, NumPy and torch so that masks, shuffles and initial weights repeat exactly.

    Raises:
        TypeError / ValueError: ``seed`` is not an int in [0, 2**32 - 1] (checked before any generator is seeded).
    """
    if isinstance(seed, bool) or not isinstance(seed, Integral):
        raise TypeError(f"seed must be an int such as 0, got {type(seed).__name__} {seed!r}; "
                        "a fixed seed is what makes masks and shuffles repeat")
    if not 0 <= seed < 2**32:
        raise ValueError(f"seed must lie in [0, 2**32 - 1] (the range NumPy accepts), got {seed}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Run the block on one CPU thread, then restore the previous thread count.

    Training with 2 threads sums gradients in another order than with 1, and after a few
    hundred Adam steps the weights differ visibly; one thread makes every run identical.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Predicted class of every image in ``x`` (runs in eval mode, on the model's device).

    Raises:
        TypeError: ``x`` is not a tensor.
        ValueError: ``x`` holds no image, or ``batch_size`` < 1.
    """
    _require_model(model, "predict", ", x")
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"predict expects a torch.Tensor of images (N, 1, 28, 28), got a {type(x).__name__}; "
                        "convert it with torch.as_tensor(x, dtype=torch.float32)")
    if x.dim() == 0 or len(x) == 0:
        raise ValueError(f"predict got no images (x has shape {tuple(x.shape)}); pass a batch (N, 1, 28, 28) with N >= 1")
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    model.eval()
    device = _device_of(model)
    return torch.cat([model(x[i : i + batch_size].to(device)).argmax(1).cpu() for i in range(0, len(x), batch_size)])


def evaluate(model: nn.Module, data: MNIST, split: str = "test") -> float:
    """Accuracy of ``model`` on the ``"test"`` (default) or ``"train"`` split, a float in [0, 1]."""
    _require_model(model, "evaluate", ", data")
    if not all(hasattr(data, name) for name in ("test_x", "test_y", "train_x", "train_y")):
        raise TypeError(f"evaluate needs the data as lenet.load_mnist() returns it (an MNIST), got "
                        f"{type(data).__name__} {data!r:.40}; the split is the third argument: evaluate(model, data, "
                        "split='test')")
    if split not in ("test", "train"):
        raise ValueError(f"split must be 'test' or 'train', got {split!r}")
    x, y = (data.test_x, data.test_y) if split == "test" else (data.train_x, data.train_y)
    return (predict(model, x) == y).float().mean().item()


class PairedDifference(NamedTuple):
    """Accuracy of one model minus another's on the same images, with its paired standard error."""

    difference: float  #: accuracy of the first model minus the second's, a fraction
    se: float  #: the paired standard error of ``difference``, a fraction
    only_first: int  #: images only the first model classifies right
    only_second: int  #: images only the second model classifies right

    def __str__(self) -> str:
        return (f"{100 * self.difference:+.1f} ± {100 * self.se:.1f} pp (paired standard error; {self.only_first} "
                f"images only the first model gets right, {self.only_second} only the second)")


def paired_difference(model_a: nn.Module, model_b: nn.Module, data: MNIST, split: str = "test") -> PairedDifference:
    """Accuracy of ``model_a`` minus that of ``model_b`` on the same images, with its paired standard error.

    Only the images where the two models disagree make the gap: with b images that only ``model_a`` gets right
    and c that only ``model_b`` gets right, out of n, the gap is (b - c) / n and its standard error
    √(b + c - (b - c)² / n) / n (McNemar's paired comparison). When the models agree on most images it is far
    smaller than √(SE_a² + SE_b²), the error of two accuracies measured on separate test sets.

    Introduced in notebooks/01_load_lenet.ipynb.
    """
    if split not in ("test", "train"):
        raise ValueError(f"split must be 'test' or 'train', got {split!r}")
    x, y = (data.test_x, data.test_y) if split == "test" else (data.train_x, data.train_y)
    right_a, right_b = predict(model_a, x) == y, predict(model_b, x) == y
    b, c, n = int((right_a & ~right_b).sum()), int((~right_a & right_b).sum()), len(y)
    return PairedDifference((b - c) / n, (b + c - (b - c) ** 2 / n) ** 0.5 / n, b, c)


def train(
    model: nn.Module,
    data: MNIST,
    epochs: int = 15,
    lr: float = 1e-3,
    batch_size: int = 64,
    weight_decay: float = 0.0,
    seed: int = 0,
    progress: bool = False,
    after_step: Callable[[int], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> list[float]:
    """Train ``model`` in place with Adam and cross-entropy; return the mean loss of each epoch.

    Deterministic: the shuffle order comes from ``seed`` and the CPU work runs on one thread
    (see :func:`single_thread`), so every run gives the same weights. Works the same on a pruned model: the
    pruning masks are re-applied before every forward, so pruned weights stay zero.

    Args:
        progress: show a ``tqdm.auto`` progress bar, one tick per batch: a text bar on stderr in a terminal,
            a widget in a notebook. Lessons leave it off, so that it never lands in their stored outputs.
        after_step: called after every optimizer step with the number of steps done so far (1, 2, ...),
            e.g. to let a sparsifier update its masks while the model trains (notebooks/10_sparsifiers.ipynb).
        stop: called before every batch; when it returns True, training ends there, with the steps done so
            far (the same weights as the first steps of an uninterrupted run). The epoch it cuts short reports
            the mean loss of the batches it ran (none if it ran none). teaching/live_demo.ipynb's stop button.
    """
    if epochs < 0:
        raise ValueError(f"epochs must be >= 0, got {epochs}")
    seed_everything(seed)
    device = _device_of(model)
    train_loader, _ = data.loaders(batch_size, seed=seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    losses: list[float] = []
    done, stopped = 0, False
    bar = _progress_bar(epochs * len(train_loader), f"epoch 1/{epochs}") if progress else None
    try:
        with single_thread():
            for epoch in range(epochs):
                model.train()
                running, seen = 0.0, 0
                if bar is not None:
                    bar.set_description(f"epoch {epoch + 1}/{epochs}", refresh=False)
                for x, y in train_loader:
                    stopped = stop is not None and stop()
                    if stopped:
                        break
                    x, y = x.to(device), y.to(device)
                    opt.zero_grad()
                    loss = F.cross_entropy(model(x), y)
                    loss.backward()
                    opt.step()
                    running += loss.item() * len(x)
                    seen += len(x)
                    done += 1
                    if after_step is not None:
                        after_step(done)
                    if bar is not None:
                        bar.update()
                if seen:
                    losses.append(running / seen)  # a whole epoch sees every training image once
                if stopped:
                    break
    finally:
        if bar is not None:
            bar.close()
        model.eval()
    return losses


def _progress_bar(total: int, description: str) -> Any:
    """A ``tqdm.auto`` bar of ``total`` batches on stderr, a widget in a notebook (train's ``progress``)."""
    from tqdm.auto import tqdm  # imported here: in a notebook it imports ipywidgets, which no lesson needs

    return tqdm(total=total, desc=description, file=sys.stderr, unit="batch", leave=True)


def fine_tune(model: nn.Module, data: MNIST, epochs: int = 5, lr: float = 5e-4, seed: int = 1, progress: bool = False,
              after_step: Callable[[int], None] | None = None, stop: Callable[[], bool] | None = None) -> list[float]:
    """Retrain a (pruned) model for a few epochs at a lower learning rate; masks stay in place.

    ``progress``, ``after_step`` and ``stop`` are passed on to :func:`train`.
    Introduced in notebooks/07_accuracy_and_sparsity.ipynb.
    """
    return train(model, data, epochs=epochs, lr=lr, seed=seed, progress=progress, after_step=after_step, stop=stop)
