"""Reference answers shared by the checks of several lessons, computed by torch itself.

Nothing here consumes the learner's global random number generator: modules are built inside
``torch.random.fork_rng()``, so a check does not change what the learner's next seeded cell draws.
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import TypeVar

import torch
from torch import nn
from torch.nn.utils import prune

from ..checkpoints import pretrained
from ..data import MNIST, load_mnist

M = TypeVar("M", bound=nn.Module)

#: LeNet's conv and linear layers, in order.
LAYERS = ("conv1", "conv2", "fc1", "fc2", "fc3")


def quiet_build(build: Callable[[], M], seed: int = 0) -> M:
    """``build()`` seeded with ``seed``, without consuming the learner's global random number generator."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def quiet_pretrained() -> nn.Module:
    """A fresh trained LeNet on the CPU, built without consuming the learner's random numbers."""
    return quiet_build(lambda: pretrained("cpu"))


def tensor_holder(t: torch.Tensor) -> nn.Module:
    """A throwaway module whose parameter ``weight`` is a copy of ``t`` (something to hand to torch's pruning)."""
    holder = nn.Module()
    holder.weight = nn.Parameter(t.detach().clone())
    return holder


def torch_pruned_count(n: int, amounts: Sequence[float | int]) -> int:
    """How many of n entries torch's own L1 pruning has zeroed after one call per amount.

    The entries are 1, 2, ..., n: all magnitudes differ, so there are no ties and no RNG.
    """
    holder = tensor_holder(torch.arange(1.0, n + 1))
    for amount in amounts:
        prune.l1_unstructured(holder, name="weight", amount=amount)
    return int((holder.weight_mask == 0).sum())


@functools.lru_cache(maxsize=1)
def _data() -> MNIST:
    return load_mnist()


def quiet_data() -> MNIST:
    """The course's data (the bundled 5,000-image MNIST subset), loaded once per process."""
    return _data()
