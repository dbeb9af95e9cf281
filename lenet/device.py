"""Which device the course runs on: the CPU unless LENET_DEVICE asks for another.

Introduced in notebooks/01_load_lenet.ipynb.
"""
from __future__ import annotations

import os

import torch

_AVAILABLE = {
    "cpu": lambda: True,
    "cuda": lambda: torch.cuda.is_available(),
    "mps": lambda: hasattr(torch.backends, "mps") and torch.backends.mps.is_available(),
}


def get_device(name: str | torch.device | None = None) -> torch.device:
    """Return the device to use: ``name``, else ``$LENET_DEVICE``, else the CPU.

    The CPU is the default so that every stored notebook output is reproducible.

    Raises:
        ValueError: the name is not one of cpu, cuda, cuda:N, mps.
        RuntimeError: the device was asked for but this machine does not have it.
    """
    if isinstance(name, torch.device):
        name = str(name)
    requested = name if name is not None else os.environ.get("LENET_DEVICE", "cpu")
    requested = requested.strip().lower() or "cpu"
    kind = requested.split(":")[0]
    if kind not in _AVAILABLE:
        raise ValueError(
            f"unknown device {requested!r} (from {'the argument' if name else 'LENET_DEVICE'}); "
            "use one of: cpu, cuda, cuda:0, mps"
        )
    if not _AVAILABLE[kind]():
        raise RuntimeError(
            f"device {requested!r} was requested but is not available on this machine; "
            "unset LENET_DEVICE (or set it to cpu) to run on the CPU"
        )
    return torch.device(requested)
