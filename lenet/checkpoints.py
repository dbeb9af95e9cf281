"""Save and load LeNet checkpoints, pruned or not; the shipped pretrained weights.

Introduced in notebooks/05_saving_and_loading.ipynb (pretrained() in 01_load_lenet).
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.nn.utils import prune

from .device import get_device
from .model import LeNet

#: The trained weights shipped with the course (made by ``python -m lenet.train``).
PRETRAINED_PATH = Path(__file__).with_name("weights") / "lenet_mnist.pt"


class CheckpointError(RuntimeError):
    """A checkpoint file that cannot be loaded: missing, corrupt, truncated or of another model."""


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """``torch.load(path, weights_only=True)`` with one clear error per way it can fail."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    with open(path, "rb") as f:
        if f.read(4) != b"PK\x03\x04":  # torch.save writes a zip archive (since PyTorch 1.6)
            raise CheckpointError(f"{path}: not a torch checkpoint (not a zip archive): corrupt, truncated "
                                  "at the start, or another format")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load raises many types on bad bytes (IndexError, UnpicklingError, ...)
        cause = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(
            f"{path}: not a readable torch checkpoint (corrupt or truncated file?): {cause}"
        ) from exc
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path}: holds a {type(obj).__name__}, not a state_dict of tensors")
    return obj


def restore_pruning(model: nn.Module, state_dict: dict[str, torch.Tensor]) -> nn.Module:
    """Re-create the pruning reparametrization that ``state_dict`` describes, in place.

    For every ``<module>.<name>_mask`` key it calls ``prune.identity(module, name)``, which
    registers ``<name>_orig``, a ``<name>_mask`` buffer and the forward-pre-hook, so that
    ``model.load_state_dict(state_dict)`` then finds every key it expects.
    """
    modules = dict(model.named_modules())
    for key in state_dict:
        if not key.endswith("_mask"):
            continue
        module_name, _, param = key[: -len("_mask")].rpartition(".")
        module = modules.get(module_name)
        if module is None or not hasattr(module, param):
            raise KeyError(f"checkpoint key {key!r} names {module_name}.{param}, which this model does not have")
        if not prune.is_pruned(module) or f"{param}_mask" not in dict(module.named_buffers(recurse=False)):
            prune.identity(module, param)
    return model


def load_pruned(path: str | Path, model: nn.Module | None = None, device: str | torch.device | None = None) -> nn.Module:
    """Load a checkpoint saved with or without pruning into ``model`` (a fresh LeNet by default).

    The pruning reparametrization is restored first (see :func:`restore_pruning`), so the masks
    come back exactly. Always loads with ``weights_only=True``.

    Raises:
        CheckpointError: missing, corrupt or truncated file, or a checkpoint of another architecture.
    """
    state = read_state_dict(path)
    model = model if model is not None else LeNet()
    try:
        restore_pruning(model, state)
        model.load_state_dict(state)
    except (KeyError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: does not fit {type(model).__name__}: {exc}") from exc
    model = model.to(get_device(device)).eval()
    refresh_pruned(model)
    return model


def refresh_pruned(model: nn.Module) -> None:
    """Recompute every pruned attribute (``weight = weight_orig * weight_mask``) now.

    ``load_state_dict`` copies new values into ``weight_orig`` and ``weight_mask`` but the
    ``weight`` attribute is only recomputed by the forward-pre-hook, at the next forward.
    Calling the hooks by hand makes ``module.weight`` right at once.
    """
    for module in model.modules():
        for hook in list(module._forward_pre_hooks.values()):
            if isinstance(hook, prune.BasePruningMethod):
                hook(module, None)


def pretrained(device: str | torch.device | None = None) -> LeNet:
    """The course's trained LeNet (≈97% on the 1,000 held-out test images), in eval mode.

    Loaded offline from the weights shipped inside the package, with ``weights_only=True``.
    Introduced in notebooks/01_load_lenet.ipynb.
    """
    model = load_pruned(PRETRAINED_PATH, LeNet(), device)
    assert isinstance(model, LeNet)
    return model
