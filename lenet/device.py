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
        TypeError: ``name`` is neither a string nor a torch.device (``0`` instead of ``"cuda:0"``).
        ValueError: the name is not one of cpu, cuda, cuda:N, mps, or is malformed (``"cuda:abc"``).
        RuntimeError: the device was asked for but this machine does not have it.
    """
    source = "the argument" if name is not None else "LENET_DEVICE"
    if isinstance(name, torch.device):
        name = str(name)
    if name is not None and not isinstance(name, str):
        hint = f" (for GPU number {name} write 'cuda:{name}')" if isinstance(name, int) and not isinstance(name, bool) else ""
        raise TypeError(f"device must be a name such as 'cpu', 'cuda' or 'cuda:0', or a torch.device; "
                        f"got {type(name).__name__} {name!r}{hint}")
    requested = name if name is not None else os.environ.get("LENET_DEVICE", "cpu")
    requested = requested.strip().lower() or "cpu"
    kind, colon, index = requested.partition(":")
    if kind not in _AVAILABLE:
        raise ValueError(f"unknown device {requested!r} (from {source}); use one of: cpu, cuda, cuda:0, mps")
    if colon and not index.isdigit():
        raise ValueError(f"malformed device {requested!r} (from {source}): after '{kind}:' comes a device "
                         f"number, as in '{kind}:0'")
    if not _AVAILABLE[kind]():
        raise RuntimeError(
            f"device {requested!r} was requested but is not available on this machine; "
            "unset LENET_DEVICE (or set it to cpu) to run on the CPU"
        )
    if kind == "cuda" and colon and int(index) >= torch.cuda.device_count():
        raise RuntimeError(f"device {requested!r} was requested but this machine has "
                           f"{torch.cuda.device_count()} CUDA device(s), numbered from 0")
    return torch.device(requested)
