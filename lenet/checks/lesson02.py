"""Checks of lesson 02 · Parameters and buffers (solutions/02_parameters_and_buffers.ipynb)."""
from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import nn
from torch.nn.utils import prune

from .core import call, check_equal, difference, exercise, fail, require_answer, show

#: Where a module keeps a tensor, as the exercises name it.
KINDS = ("parameter", "buffer", "attribute")


def _tensor_kinds(module: nn.Module) -> dict[str, str]:
    """Reference: where ``module`` itself (not its children) keeps each tensor, read from its internals."""
    kinds = {name: "parameter" for name, p in module._parameters.items() if p is not None}
    kinds.update({name: "buffer" for name, b in module._buffers.items() if b is not None})
    kinds.update({name: "attribute" for name, v in vars(module).items() if isinstance(v, torch.Tensor)})
    return kinds


def _check_kinds(name: str, mine: object, expected: dict[str, str], hint: str) -> None:
    """Like check_equal for a {tensor name: kind} dict, but first refuses kinds other than KINDS."""
    __tracebackhide__ = True
    if isinstance(mine, Mapping):
        odd = [f"{k!r}: {v!r}" for k, v in mine.items() if v not in KINDS]
        if odd:
            fail(f"`{name}` has values that are not one of {list(KINDS)}: {', '.join(odd)}.", hint)
    problem = difference(name, mine, expected)
    if problem is not None:
        fail(problem, hint)


@exercise(1, "each tensor of Scaler is classified as parameter, buffer or plain attribute")
def check_02_kinds(kinds: dict[str, str], scaler: nn.Module) -> None:
    """``kinds`` maps the name of each tensor that ``scaler`` holds to "parameter", "buffer" or "attribute".

    Introduced in solutions/02_parameters_and_buffers.ipynb.
    """
    __tracebackhide__ = True
    require_answer("kinds", kinds, "one key per tensor name, with the value 'parameter', 'buffer' or 'attribute'.",
                   "your dict")
    _check_kinds("kinds", kinds, _tensor_kinds(scaler),
                 "a tensor wrapped in `nn.Parameter` is a parameter, whether it is assigned or passed to "
                 "`register_parameter`, and even with requires_grad=False; `register_buffer` makes a buffer "
                 "(persistent or not), and a tensor assigned later to a name registered as a buffer (even "
                 "registered as None) stays a buffer; any other tensor assigned to `self` is a plain attribute; "
                 "`eps` is a float, not a tensor. Compare with `lenet.tensor_table(scaler)`.")


@exercise(2, "the state_dict keys of Block, in order")
def check_02_state_dict_keys(keys: list[str], block: nn.Module) -> None:
    """``keys`` is ``list(block.state_dict())``, predicted: which tensors are saved, and in which order.

    Introduced in solutions/02_parameters_and_buffers.ipynb.
    """
    __tracebackhide__ = True
    expected = list(block.state_dict())
    hint = ("`state_dict()` saves parameters and persistent buffers, not non-persistent buffers "
            "(`persistent=False`) and not plain attributes; a child's tensors are prefixed with the child's name "
            "(`norm.running_mean`); BatchNorm2d holds 2 parameters and 3 buffers, and `bias=False` means no bias.")
    require_answer("keys", keys, hint, "your list of names")
    if not isinstance(keys, (list, tuple)) or not all(isinstance(k, str) for k in keys):
        fail(f"`keys` is {show(keys)}, expected a list of strings like {show(expected[:2])}.", hint)
    missing = [k for k in expected if k not in keys]
    extra = sorted(set(keys) - set(expected))
    if missing or extra:
        parts = ([f"is missing {show(missing)}"] if missing else []) + (
            [f"has unexpected {show(extra)}"] if extra else [])
        fail(f"`keys` {' and '.join(parts)}.", hint)
    if len(keys) != len(expected):
        fail(f"`keys` has {len(keys)} entries, expected {len(expected)}: a key appears twice.", hint)
    if list(keys) != expected:
        fail(f"`keys` has the right names in the wrong order: {show(list(keys))}, expected {show(expected)}.",
             "a module saves its own parameters first, then its own persistent buffers, then each child in the "
             "order the children were assigned, whatever order the tensors were registered in "
             "(`nn.Module._save_to_state_dict`, then the recursion over `_modules`).")


@exercise(3, "Standardize keeps mean/std as saved buffers, inv_std as a non-persistent buffer, gain as a parameter")
def check_02_standardize(Standardize: type) -> None:
    """``Standardize(mean, std)``: ``gain`` a parameter, ``mean``/``std`` buffers, ``inv_std`` a non-persistent buffer.

    Introduced in solutions/02_parameters_and_buffers.ipynb.
    """
    __tracebackhide__ = True
    mean, std = torch.tensor([1.0, -2.0, 0.5]), torch.tensor([2.0, 4.0, 0.5])
    norm = call(Standardize, mean.clone(), std.clone())
    kinds = _tensor_kinds(norm)
    expected = {"gain": "parameter", "mean": "buffer", "std": "buffer", "inv_std": "buffer"}
    hint = ("trained: `nn.Parameter`; saved and moved by `.to()` but not trained: `self.register_buffer(name, t)`; "
            "moved but not saved: `self.register_buffer(name, t, persistent=False)`; "
            "a plain `self.x = t` is neither saved nor moved.")
    article = {"parameter": "a parameter", "buffer": "a buffer", "attribute": "a plain attribute"}
    for name, kind in expected.items():
        if name not in kinds:
            fail(f"`Standardize(mean, std)` holds no tensor `{name}`, expected {article[kind]}.", hint)
        if kinds[name] != kind:
            fail(f"`Standardize(mean, std).{name}` is {article[kinds[name]]}, expected {article[kind]}.", hint)
    extra = sorted(set(kinds) - set(expected))
    if extra:
        fail(f"`Standardize(mean, std)` holds unexpected tensors {show(extra)}; expected only "
             f"{show(list(expected))}.", hint)
    check_equal("list(Standardize(mean, std).state_dict())", list(norm.state_dict()), ["gain", "mean", "std"],
                "`inv_std` can be recomputed from `std`, so it is not saved: `persistent=False`. "
                "Register `mean` before `std`.")
    for name, value in [("mean", mean), ("std", std), ("inv_std", 1 / std), ("gain", torch.ones(3))]:
        check_equal(f"Standardize(mean, std).{name}", getattr(norm, name).detach(), value,
                    "`mean` and `std` hold the tensors passed in, `inv_std` is `1 / std`, `gain` starts at ones "
                    "(`torch.ones_like(mean)`).")
    x = torch.tensor([[3.0, 2.0, 1.0]])
    with torch.no_grad():
        check_equal("Standardize(mean, std)(x)", norm(x), (x - mean) / std, "forward computes "
                    "`(x - self.mean) * self.inv_std * self.gain`; with gain = 1 that is `(x - mean) / std`.")


@exercise(4, "tensor_kinds classifies the tensors of five modules, a pruned Conv2d included")
def check_02_tensor_kinds(tensor_kinds: Callable[[nn.Module], dict[str, str]]) -> None:
    """``tensor_kinds(module)`` maps each tensor the module itself holds to "parameter", "buffer" or "attribute".

    Introduced in solutions/02_parameters_and_buffers.ipynb.
    """
    __tracebackhide__ = True
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        tiny = nn.Module()
        tiny.w = nn.Parameter(torch.ones(2))
        tiny.register_buffer("running", torch.zeros(2))
        tiny.register_buffer("scratch", torch.zeros(2), persistent=False)
        tiny.plain = torch.ones(2)
        tiny.label = "not a tensor"
        block = nn.Sequential()
        block.scale = nn.Parameter(torch.ones(2))
        block.add_module("conv", nn.Conv2d(1, 2, 3, bias=False))
        block.add_module("norm", nn.BatchNorm2d(2))
        pruned = nn.Conv2d(1, 2, 3)
        prune.random_unstructured(pruned, name="weight", amount=0.5)
    cases = [("a module like notebook 02's Tiny", tiny), ("nn.BatchNorm1d(3)", nn.BatchNorm1d(3, device="meta")),
             ("nn.Conv2d(1, 2, 3, bias=False)", block.conv),
             ("a module with children conv and norm and its own parameter scale", block),
             ("nn.Conv2d(1, 2, 3) after prune.random_unstructured(conv, 'weight', 0.5)", pruned)]
    hint = ("list only the module's own tensors: `named_parameters(recurse=False)`, "
            "`named_buffers(recurse=False)` (a child's tensors belong to the child; a `bias=False` "
            "layer has no bias tensor), then the tensors among `vars(module).values()` "
            "(`isinstance(value, torch.Tensor)`): after pruning, `weight` is such a plain attribute.")
    for label, module in cases:
        _check_kinds(f"tensor_kinds({label})", call(tensor_kinds, module), _tensor_kinds(module), hint)
