"""Checks of lesson 05 · Saving and loading a pruned model (solutions/05_saving_and_loading.ipynb)."""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping

import torch
from torch import nn
from torch.nn.utils import prune

from ..checkpoints import refresh_pruned
from ..model import LeNet
from .core import call, check_equal, describe_call, exercise, fail, show, type_name
from .reference import quiet_build, quiet_pretrained


def _tensor_bytes(state: Mapping[str, torch.Tensor], prefix: str) -> int:
    """Bytes of the tensors of ``state`` whose keys start with ``prefix`` (what torch.save stores for them)."""
    return sum(t.numel() * t.element_size() for key, t in state.items() if key.startswith(prefix))


def _linear_bytes(n_in: int, n_out: int, amount: float | int | None) -> int:
    """torch's own answer: the bytes of nn.Linear(n_in, n_out)'s state_dict, its weight L1-pruned by ``amount``."""
    layer = quiet_build(lambda: nn.Linear(n_in, n_out))
    if amount is not None:
        prune.l1_unstructured(layer, "weight", amount=amount)
    return _tensor_bytes(layer.state_dict(), "")


@exercise(1, "a pruned linear layer costs weight_orig + weight_mask + bias in a state_dict, whatever the amount")
def check_05_bytes(linear_bytes: Callable[[int, int, float | int | None], int]) -> None:
    """``linear_bytes(n_in, n_out, amount)``: the bytes of ``nn.Linear(n_in, n_out)``'s state_dict, dense for
    ``amount=None``, else after ``prune.l1_unstructured(layer, "weight", amount)``.

    Introduced in solutions/05_saving_and_loading.ipynb.
    """
    __tracebackhide__ = True
    hint = ("a Linear(n_in, n_out) saves a weight of n_out x n_in and a bias of n_out numbers, float32: 4 bytes each. "
            "After prune.l1_unstructured(layer, 'weight', ...) the state_dict holds weight_orig AND weight_mask, both "
            "float32 of the weight's shape, plus the bias, stored once. The amount, even 0.0, does not change the "
            "bytes: a zero in a dense tensor costs as much as any other value. torch counts "
            "`t.numel() * t.element_size()` for every tensor of `layer.state_dict()`.")
    for n_in, n_out, amount in [(400, 120, None), (400, 120, 0.3), (400, 120, 0.9),  # the notebook's fc1
                                (84, 10, None), (84, 10, 0.5), (3, 2, 1), (120, 84, 0.0), (7, 5, None)]:
        check_equal(describe_call(linear_bytes, n_in, n_out, amount), call(linear_bytes, n_in, n_out, amount),
                    _linear_bytes(n_in, n_out, amount), hint)


def _nested_model() -> nn.Module:
    """A tiny model with a nested module path: block.0 (Linear 3 -> 2) and head (Linear 2 -> 1)."""
    return nn.Sequential(OrderedDict(block=nn.Sequential(nn.Linear(3, 2)), head=nn.Linear(2, 1)))


def _pruned_nested() -> nn.Module:
    """The tiny model with known values, block.0.weight and head.bias pruned by hand-made masks."""
    model = quiet_build(_nested_model)
    with torch.no_grad():
        for i, p in enumerate(model.parameters()):
            p.copy_(torch.arange(p.numel(), dtype=p.dtype).view_as(p) * 0.25 - 0.5 + i)
    prune.custom_from_mask(model.block[0], "weight", torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]]))
    prune.custom_from_mask(model.head, "bias", torch.tensor([0.0]))
    with torch.no_grad():  # weight attributes computed without a graph: copy.deepcopy works on this model
        refresh_pruned(model)
    return model


def _pruned_lenet() -> nn.Module:
    """The trained LeNet with conv1 (30%), fc1 (50%) weights and 2 entries of fc3's bias pruned by L1."""
    model = quiet_pretrained()
    prune.l1_unstructured(model.conv1, "weight", amount=0.3)
    prune.l1_unstructured(model.fc1, "weight", amount=0.5)
    prune.l1_unstructured(model.fc3, "bias", amount=2)
    with torch.no_grad():
        refresh_pruned(model)
    return model


def _single_pruned_linear() -> nn.Module:
    """An nn.Linear(2, 2) on its own with one weight pruned: its keys have no module path."""
    layer = quiet_build(lambda: nn.Linear(2, 2))
    prune.l1_unstructured(layer, "weight", amount=1)
    return layer


@exercise(2, "pruned_params finds every pruned parameter from the keys alone, nested and bias included")
def check_05_pruned_params(pruned_params: Callable[[Mapping[str, torch.Tensor]], set[tuple[str, str]]]) -> None:
    """``pruned_params(state_dict)`` is the set of ``(module path, parameter name)`` pruned in ``state_dict``.

    Introduced in solutions/05_saving_and_loading.ipynb.
    """
    __tracebackhide__ = True
    hint = ("every pruned parameter leaves a key '<module path>.<name>_mask' (and '<name>_orig'). The module path "
            "can hold dots itself ('block.0') or be empty (a pruned nn.Linear on its own: 'weight_mask'), so split "
            "each key ending in '_mask' at its LAST dot with `key.rpartition('.')`, then strip '_mask' from the "
            "name. Return a set of (module path, name) tuples.")
    hand_made = {key: torch.zeros(1) for key in (
        "block.0.weight_orig", "block.0.bias", "block.0.weight_mask", "attn_mask_proj.weight",
        "attn_mask_proj.bias", "head.weight", "head.bias_orig", "head.bias_mask")}
    cases = [
        ("the trained LeNet's state_dict (nothing pruned)", quiet_pretrained().state_dict(),
         set()),
        ("LeNet with conv1.weight, fc1.weight and fc3.bias pruned", _pruned_lenet().state_dict(),
         {("conv1", "weight"), ("fc1", "weight"), ("fc3", "bias")}),
        (f"the hand-made state_dict with keys {list(hand_made)}", hand_made, {("block.0", "weight"), ("head", "bias")}),
        ("the state_dict of a single pruned nn.Linear (keys 'bias', 'weight_orig', 'weight_mask')",
         _single_pruned_linear().state_dict(), {("", "weight")}),
    ]
    for label, state, expected in cases:
        got = call(pruned_params, state)
        if isinstance(got, (set, frozenset, list, tuple)) and not all(isinstance(x, tuple) for x in got):
            fail(f"pruned_params(...) for {label} is {show(got)}: expected (module path, name) tuples, "
                 f"like {show(sorted(expected))}.", hint)
        check_equal(f"pruned_params(...) for {label}", got, expected, hint)


def _loading_cases() -> list[tuple[str, Callable[[], nn.Module], nn.Module]]:
    """(what, build a fresh target, source model) for the loading exercises."""
    return [
        ("LeNet with conv1.weight, fc1.weight and fc3.bias pruned", lambda: quiet_build(LeNet), _pruned_lenet()),
        ("a tiny model with block.0.weight and head.bias pruned", lambda: quiet_build(_nested_model),
         _pruned_nested()),
        ("the trained LeNet, not pruned", lambda: quiet_build(LeNet), quiet_pretrained()),
    ]


def _pruned_of(model: nn.Module) -> list[tuple[str, str]]:
    """``(module path, name)`` of every pruned parameter of ``model`` (it has ``<name>_orig`` and ``<name>_mask``)."""
    return [(path, key[: -len("_mask")]) for path, module in model.named_modules()
            for key, _ in module.named_buffers(recurse=False)
            if key.endswith("_mask") and hasattr(module, key[: -len("_mask")] + "_orig")]


def _effective(module: nn.Module, name: str) -> torch.Tensor:
    """What the pruned parameter ``name`` of ``module`` really is: ``<name>_orig * <name>_mask``."""
    return (getattr(module, name + "_orig") * getattr(module, name + "_mask")).detach()


@exercise(3, "load_pruned_state restores the masks, weight_orig and the weight attributes, nested and dense too")
def check_05_load_pruned_state(load_pruned_state: Callable[[nn.Module, Mapping[str, torch.Tensor]], nn.Module]) -> None:
    """``load_pruned_state(model, state_dict)`` re-creates the reparametrization, loads strictly, returns ``model``.

    Introduced in solutions/05_saving_and_loading.ipynb.
    """
    __tracebackhide__ = True
    hint = ("for each (module path, name) that `state_dict` holds pruned (your pruned_params), call "
            "`prune.identity(model.get_submodule(path), name)`: it registers <name>_orig, a <name>_mask of ones "
            "and the forward-pre-hook, so `model.load_state_dict(state_dict)` (strict) finds every key. "
            "Do not touch parameters that are not pruned, and return `model`.")
    x_of = {"LeNet": torch.linspace(-1, 1, 2 * 28 * 28).view(2, 1, 28, 28), "tiny": torch.tensor([[1.0, -2.0, 0.5]])}
    for label, build, source in _loading_cases():
        target = build()
        state = source.state_dict()
        try:
            returned = call(load_pruned_state, target, state)
        except RuntimeError as e:
            fail(f"for {label}, your function raised {type(e).__name__}: {' '.join(str(e).split())[:300]}", hint)
        if returned is not target:
            fail(f"for {label}, load_pruned_state returned {show(returned)}, not the model it was given.",
                 "end the function with `return model` (the same model, loaded in place).")
        check_equal(f"the state_dict of the model loaded from {label}", dict(target.state_dict()), dict(state),
                    hint + " With strict=False the unmatched keys are skipped silently: the layers stay random.")
        for path, name in _pruned_of(source):
            check_equal(f"{'.'.join(filter(None, (path, name)))} right after load_pruned_state (before any forward), "
                        f"for {label}", getattr(target.get_submodule(path), name),
                        _effective(source.get_submodule(path), name),
                        "load_state_dict copies into <name>_orig and <name>_mask, but the attribute <name> is only "
                        "recomputed by the forward-pre-hook at the next forward: it still holds what prune.identity "
                        "computed from the old values. Refresh it before returning: `lenet.refresh_pruned(model)` "
                        "(or run one forward under torch.no_grad()).")
        x = x_of["LeNet" if isinstance(source, LeNet) else "tiny"]
        with torch.no_grad():
            check_equal(f"the output of the loaded model, for {label}", target(x), source(x), hint)


@exercise(4, "plain_state_dict makes the pruning permanent in the saved dict and leaves the pruned model alone")
def check_05_plain_state_dict(plain_state_dict: Callable[[nn.Module], Mapping[str, torch.Tensor]]) -> None:
    """``plain_state_dict(model)`` is what an unpruned model of the same class loads strictly: each pruned
    parameter as ``<name>_orig * <name>_mask`` under its plain key, no mask; ``model`` stays pruned.

    Introduced in solutions/05_saving_and_loading.ipynb.
    """
    __tracebackhide__ = True
    hint = ("a plain model expects '<path>.<name>' where the pruned state_dict has '<path>.<name>_orig' and "
            "'<path>.<name>_mask'. Build a new dict from `model.state_dict()`: store `orig * mask` under the plain "
            "key (the zeros stay), drop the '_mask' keys, keep every other key as it is. That is what "
            "`prune.remove` would give, but prune.remove changes the model in place: never call it on `model`.")
    for label, build, source in _loading_cases()[:2]:
        before = {key: t.clone() for key, t in source.state_dict().items()}
        pruned_before = _pruned_of(source)
        got = call(plain_state_dict, source)
        if _pruned_of(source) != pruned_before or not prune.is_pruned(source):
            fail(f"for {label}, your function changed the model it was given: it is no longer pruned "
                 f"(pruned before: {show(pruned_before)}, after: {show(_pruned_of(source))}).", hint)
        check_equal(f"the state_dict of the model after plain_state_dict(model), for {label}",
                    dict(source.state_dict()), before, hint + " Your function changed the model's tensors.")
        plain = build()
        for path, name in pruned_before:  # torch's own answer: a copy through the state_dict, then prune.remove
            prune.identity(plain.get_submodule(path), name)
        plain.load_state_dict(before)
        for path, name in pruned_before:
            prune.remove(plain.get_submodule(path), name)
        if not isinstance(got, Mapping):
            fail(f"plain_state_dict(model) for {label} is {show(got)} (a {type_name(got)}), expected a dict of "
                 "tensors like `model.state_dict()`.", hint)
        check_equal(f"plain_state_dict(model) for {label}", dict(got), dict(plain.state_dict()),
                    hint + " A pruned entry must be 0 in the saved weight: `weight_orig` alone still holds the "
                           "original values.")
        fresh = build()
        fresh.load_state_dict(dict(got))  # strict: it fits (same keys and shapes checked above)
