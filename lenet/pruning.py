"""Small wrappers over ``torch.nn.utils.prune`` for pruning a whole model in one call.

Each lesson first calls torch's API by hand; these helpers only save the loop afterwards.
entries_to_prune is introduced in notebooks/03_random_unstructured.ipynb, prune_model in
notebooks/06_pruning_methods.ipynb, remove_pruning in notebooks/11_shipping_a_pruned_model.ipynb.
"""
from __future__ import annotations

from numbers import Integral, Real

from torch import nn
from torch.nn.utils import parametrize, prune

from .inspection import _pruning_hooks, _refuse_int8, prunable_parameters
from .model import _require_model

#: Unstructured methods by name, as ``prune.global_unstructured`` wants them.
METHODS = {"l1": prune.L1Unstructured, "random": prune.RandomUnstructured}


def entries_to_prune(amount: float | int, n: int) -> int:
    """Return how many of ``n`` entries ``amount`` prunes, with torch's rules and clearer errors.

    A float is a fraction in [0.0, 1.0], rounded with Python's ``round`` (half to even); an int is
    a count in [0, n]. ``1`` prunes one entry, ``1.0`` prunes them all. When a tensor is pruned
    again, torch counts ``amount`` against the entries still unpruned: pass that number as ``n``.

    Raises:
        TypeError: ``amount`` is not a number (or is a bool).
        ValueError: a float outside [0, 1], or an int below 0 or above ``n``.
    """
    if isinstance(amount, bool) or not isinstance(amount, Real):
        raise TypeError(f"amount must be a float in [0, 1] or an int count, got {type(amount).__name__} {amount!r}")
    if isinstance(amount, Integral):
        if not 0 <= amount <= n:
            raise ValueError(f"amount={amount} is a count of entries to prune, but the tensor has {n}; "
                             f"use an int in [0, {n}] or a float fraction in [0.0, 1.0]")
        return int(amount)
    if not 0.0 <= amount <= 1.0:
        raise ValueError(f"amount={amount} is a fraction and must lie in [0.0, 1.0]")
    return round(amount * n)


def prune_model(model: nn.Module, amount: float | int, method: str = "l1", scope: str = "local") -> nn.Module:
    """Prune the weight of every Conv2d and Linear of ``model`` in place and return it.

    Args:
        amount: fraction (float) or count (int) to prune, per layer (``scope="local"``) or over
            all the weights together (``scope="global"``).
        method: ``"l1"`` (smallest magnitudes) or ``"random"`` (seed torch first).
        scope: ``"local"`` (each layer alike) or ``"global"`` (one threshold for the whole model).

    Raises:
        ValueError / TypeError: unknown method or scope, or a bad amount (see :func:`entries_to_prune`).
        TypeError: ``model`` is not a model (the class ``LeNet`` for ``LeNet()``), or it is int8.
    """
    _require_model(model, "prune_model", ", amount")
    _refuse_int8(model, "prune_model cannot prune this model",
                "prune the float model first, then lenet.remove_pruning(model) and lenet.quantize_int8(model)")
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {sorted(METHODS)}")
    if scope not in ("local", "global"):
        raise ValueError(f"unknown scope {scope!r}; choose 'local' or 'global'")
    params = prunable_parameters(model)
    if not params:
        raise ValueError(f"{type(model).__name__} has no Conv2d or Linear layer to prune")
    if scope == "global":
        entries_to_prune(amount, sum(getattr(m, n).numel() for m, n in params))
        prune.global_unstructured(params, pruning_method=METHODS[method], amount=amount)
        return model
    for m, name in params:
        entries_to_prune(amount, getattr(m, name).numel())
    for m, name in params:
        METHODS[method].apply(m, name, amount=amount)
    return model


def remove_pruning(model: nn.Module) -> list[str]:
    """Make every pruned tensor of ``model`` permanent with ``prune.remove``, in place; return their names.

    A tensor is pruned when its module holds a pruning forward-pre-hook for it (what ``prune.is_pruned``
    looks for). Each one, weight or bias, pruned once or several times (a ``PruningContainer``), becomes a
    plain parameter holding ``orig * mask``; ``<name>_orig``, ``<name>_mask`` and the hook disappear. Modules
    and tensors that are not pruned are skipped, so torch's "has to be pruned before pruning can be removed"
    never comes up. ``prune.remove`` itself works on one (module, name) at a time and does not recurse.

    Returns:
        The qualified names removed, in module order, e.g. ``["fc1.weight", "fc1.bias"]``; ``[]`` when
        nothing was pruned.

    Raises:
        ValueError: a tensor is parametrized (``torch.nn.utils.parametrize``, lesson 09), which is the other
            mechanism: the message names it and the call that makes it permanent. Nothing is removed then.

    Introduced in notebooks/11_shipping_a_pruned_model.ipynb.
    """
    _require_model(model, "remove_pruning")
    parametrized = [(prefix, name) for prefix, module in model.named_modules() if parametrize.is_parametrized(module)
                    for name in module.parametrizations]
    if parametrized:
        prefix, name = parametrized[0]
        where = ", ".join(f"{p}.{n}" if p else n for p, n in parametrized)
        raise ValueError(
            f"remove_pruning found a parametrization on {where} (torch.nn.utils.parametrize, lesson 09), the other "
            "mechanism, which it does not remove: it removes torch.nn.utils.prune's hooks only, and nothing was "
            f"changed. Make it permanent first: parametrize.remove_parametrizations({_path(prefix)}, {name!r}, "
            "leave_parametrized=True) for each (after a torch.ao.pruning sparsifier, lesson 10: "
            "sparsifier.squash_mask()), then call remove_pruning(model) again")
    found = _pruning_hooks(model)
    for _, module, name in found:
        prune.remove(module, name)
    return [f"{prefix}.{name}" if prefix else name for prefix, _, name in found]


def _path(prefix: str) -> str:
    """How a learner's code names the submodule ``prefix``: ``model.fc1``, or ``model`` for the model itself."""
    return f"model.{prefix}" if prefix else "model"
