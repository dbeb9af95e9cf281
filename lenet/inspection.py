"""Look inside a module: parameters, buffers, hooks, sparsity, counts and bytes.

Introduced in notebooks/02_parameters_and_buffers.ipynb.
"""
from __future__ import annotations

import io

import torch
from torch import nn
from torch.nn.utils import prune

from .model import _require_model

#: Layer types whose ``weight`` the course prunes.
PRUNABLE_TYPES = (nn.Conv2d, nn.Linear)


def _is_int8(module: nn.Module) -> bool:
    """True for a quantized layer (``torch.ao.nn.quantized``, e.g. the Linear of ``quantize_dynamic``).

    Its ``weight`` is a method returning a packed int8 tensor, not a Parameter: ``torch.nn.utils.prune``
    cannot mask it, and code that reads ``module.weight`` as a tensor gets a bound method. ``lenet.quantize_int8``
    (notebooks/11_shipping_a_pruned_model.ipynb) makes such layers.
    """
    return type(module).__module__.startswith("torch.ao.nn.quantized") and callable(getattr(module, "weight", None))


def _int8_layers(model: nn.Module) -> list[str]:
    """Names of the int8 layers of ``model`` (see :func:`_is_int8`), in module order."""
    return [name for name, m in model.named_modules() if _is_int8(m)]


def _pruning_hooks(model: nn.Module) -> list[tuple[str, nn.Module, str]]:
    """``(module name, module, tensor name)`` for every tensor ``model`` holds pruned by ``torch.nn.utils.prune``, in
    module order: one entry per pruning hook (a tensor pruned twice has one ``PruningContainer``)."""
    return [(name, module, hook._tensor_name) for name, module in model.named_modules()
            for hook in module._forward_pre_hooks.values() if isinstance(hook, prune.BasePruningMethod)]


def _refuse_int8(model: nn.Module, problem: str, fix: str) -> None:
    """Raise a TypeError naming the int8 layers of ``model``, if it has any: ``"{problem}: {layers} ... {fix}"``."""
    names = _int8_layers(model)
    if names:
        raise TypeError(f"{problem}: {', '.join(names)} {'are' if len(names) > 1 else 'is an'} int8 (quantize_dynamic) "
                        f"layer{'s' if len(names) > 1 else ''}, whose weight is packed int8 (a method, "
                        f"module.weight()), not a Parameter; {fix}")


def _measured_weights(model: nn.Module) -> list[tuple[str, torch.Tensor]]:
    """(name, the weight the layer computes with) for every Conv2d, Linear and int8 layer.

    A pruned layer's ``weight`` is ``weight_orig * weight_mask``; an int8 layer's is ``weight().dequantize()``,
    whose zeros are exactly the int8 entries equal to the zero point (0.0 stays 0 in symmetric qint8, and a
    weight too small for the scale becomes 0 too: the int8 model computes with 0 there).
    """
    return [(name, m.weight().dequantize() if _is_int8(m) else m.weight) for name, m in model.named_modules()
            if isinstance(m, PRUNABLE_TYPES) or _is_int8(m)]


def tensor_table(module: nn.Module) -> str:
    """A text table of a module's parameters, buffers and forward-pre-hooks.

    One row per tensor: kind, name, shape, dtype, device, requires_grad, is_leaf and grad_fn;
    the recomputed ``weight`` of a pruned module appears as an ``attribute`` row.
    Introduced in notebooks/02_parameters_and_buffers.ipynb.
    """
    _require_model(module, "tensor_table")
    rows = [("kind", "name", "shape", "dtype", "device", "requires_grad", "is_leaf", "grad_fn")]

    def row(kind: str, name: str, t: torch.Tensor) -> None:
        fn = type(t.grad_fn).__name__ if t.grad_fn is not None else "None"
        rows.append((kind, name, str(tuple(t.shape)), str(t.dtype).replace("torch.", ""), str(t.device),
                     str(t.requires_grad), str(t.is_leaf), fn))

    params = dict(module.named_parameters(recurse=False))
    buffers = dict(module.named_buffers(recurse=False))
    for name, p in params.items():
        row("parameter", name, p)
    for name, b in buffers.items():
        row("buffer", name, b)
    for name, value in vars(module).items():
        if isinstance(value, torch.Tensor) and name not in params and name not in buffers:
            row("attribute", name, value)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    hooks = [type(h).__name__ for h in module._forward_pre_hooks.values()]
    lines.append(f"forward-pre-hooks: {', '.join(hooks) if hooks else 'none'}")
    return "\n".join(lines)


def prunable_parameters(model: nn.Module) -> list[tuple[nn.Module, str]]:
    """``(module, "weight")`` for every Conv2d and Linear: the list ``prune.global_unstructured`` takes.

    Introduced in notebooks/06_pruning_methods.ipynb.

    Raises:
        TypeError: ``model`` is not a model, or holds int8 layers (``prune`` cannot mask them).
    """
    _require_model(model, "prunable_parameters")
    _refuse_int8(model, "prunable_parameters lists what torch.nn.utils.prune can mask, but this model is quantized",
                "prune the float model first, then lenet.remove_pruning(model) and lenet.quantize_int8(model)")
    return [(m, "weight") for m in model.modules() if isinstance(m, PRUNABLE_TYPES)]


def sparsity(t: torch.Tensor) -> float:
    """Fraction of entries of ``t`` that are exactly zero, in [0, 1]."""
    if isinstance(t, nn.Module):
        raise TypeError(f"sparsity takes a tensor, got a {type(t).__name__}: pass its weight, sparsity(module.weight), "
                        "or use lenet.layer_sparsity(model) for every layer")
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"sparsity takes a tensor, got {type(t).__name__}; convert it with torch.as_tensor(t)")
    if t.numel() == 0:
        raise ValueError("sparsity of an empty tensor is undefined")
    return (t == 0).sum().item() / t.numel()


def layer_sparsity(model: nn.Module) -> dict[str, float]:
    """Sparsity of the weight each Conv2d and Linear computes with, by layer name.

    That is the masked ``weight`` of a pruned layer, and ``weight()`` of an int8 (``quantize_dynamic``) Linear,
    whose zeros are real zeros too (lesson 11).
    """
    _require_model(model, "layer_sparsity")
    return {name: sparsity(w) for name, w in _measured_weights(model)}


def global_sparsity(model: nn.Module) -> float:
    """Sparsity over the weights of all Conv2d and Linear layers together (int8 layers through ``weight()``).

    Raises:
        ValueError: the model has no Conv2d or Linear layer.
    """
    _require_model(model, "global_sparsity")
    weights = _measured_weights(model)
    if not weights:
        raise ValueError(f"{type(model).__name__} has no Conv2d or Linear layer, so it has no weights whose "
                         "sparsity global_sparsity could measure")
    zeros = sum(int((w == 0).sum()) for _, w in weights)
    return zeros / sum(w.numel() for _, w in weights)


def count_parameters(model: nn.Module) -> int:
    """Number of scalars in ``model.parameters()`` (a pruned layer counts its ``weight_orig``; the packed weights
    of an int8 layer are not parameters)."""
    _require_model(model, "count_parameters")
    return sum(p.numel() for p in model.parameters())


def count_nonzero(model: nn.Module) -> int:
    """Number of non-zero scalars the model computes with: effective weights and biases.

    An int8 (``quantize_dynamic``) layer counts its ``weight()`` and ``bias()``, which are not parameters.
    """
    _require_model(model, "count_nonzero")
    total = 0
    for m in model.modules():
        if _is_int8(m):
            bias = m.bias()
            total += int(torch.count_nonzero(m.weight().dequantize()))
            total += int(torch.count_nonzero(bias)) if bias is not None else 0
        for name, p in m.named_parameters(recurse=False):
            t = getattr(m, name[: -len("_orig")]) if name.endswith("_orig") else p
            total += int(torch.count_nonzero(t))
    return total


def state_dict_bytes(state_dict: dict[str, torch.Tensor]) -> int:
    """Size in bytes that ``torch.save(state_dict, f)`` writes (measured in memory, no file)."""
    if not isinstance(state_dict, dict):
        raise TypeError(f"expected a state_dict (a dict of tensors), got {type(state_dict).__name__}; "
                        "pass model.state_dict(), not the model")
    buf = io.BytesIO()
    torch.save(state_dict, buf)
    return buf.getbuffer().nbytes
