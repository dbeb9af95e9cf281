"""Look inside a module: parameters, buffers, hooks, sparsity, counts and bytes.

Introduced in notebooks/02_parameters_and_buffers.ipynb.
"""
from __future__ import annotations

import io

import torch
from torch import nn

#: Layer types whose ``weight`` the course prunes.
PRUNABLE_TYPES = (nn.Conv2d, nn.Linear)


def tensor_table(module: nn.Module) -> str:
    """A text table of a module's parameters, buffers and forward-pre-hooks.

    One row per tensor: kind, name, shape, dtype, device, requires_grad, is_leaf and grad_fn;
    the recomputed ``weight`` of a pruned module appears as an ``attribute`` row.
    Introduced in notebooks/02_parameters_and_buffers.ipynb.
    """
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
    """
    return [(m, "weight") for m in model.modules() if isinstance(m, PRUNABLE_TYPES)]


def sparsity(t: torch.Tensor) -> float:
    """Fraction of entries of ``t`` that are exactly zero, in [0, 1]."""
    if t.numel() == 0:
        raise ValueError("sparsity of an empty tensor is undefined")
    return (t == 0).sum().item() / t.numel()


def layer_sparsity(model: nn.Module) -> dict[str, float]:
    """Sparsity of the (effective, masked) ``weight`` of every Conv2d and Linear, by layer name."""
    return {name: sparsity(m.weight) for name, m in model.named_modules() if isinstance(m, PRUNABLE_TYPES)}


def global_sparsity(model: nn.Module) -> float:
    """Sparsity over the weights of all Conv2d and Linear layers together.

    Raises:
        ValueError: the model has no Conv2d or Linear layer.
    """
    params = prunable_parameters(model)
    if not params:
        raise ValueError(f"{type(model).__name__} has no Conv2d or Linear layer, so it has no weights whose "
                         "sparsity global_sparsity could measure")
    zeros = total = 0
    for m, name in params:
        w = getattr(m, name)
        zeros += (w == 0).sum().item()
        total += w.numel()
    return zeros / total


def count_parameters(model: nn.Module) -> int:
    """Number of scalars in ``model.parameters()`` (a pruned layer counts its ``weight_orig``)."""
    return sum(p.numel() for p in model.parameters())


def count_nonzero(model: nn.Module) -> int:
    """Number of non-zero scalars the model computes with: effective weights and biases."""
    total = 0
    for m in model.modules():
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
