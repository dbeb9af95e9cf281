"""Checks of lesson 02 · Parameters and buffers (solutions/02_parameters_and_buffers.ipynb)."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn
from torch.nn.utils import prune

from .core import Check, call, difference, exercise, fail, require_answer, show

#: Where a module keeps a tensor, as the exercises name it.
KINDS = ("parameter", "buffer", "attribute")


def _tensor_kinds(module: nn.Module) -> dict[str, str]:
    """Reference: where ``module`` itself (not its children) keeps each tensor, read from its internals."""
    kinds = {name: "parameter" for name, p in module._parameters.items() if p is not None}
    kinds.update({name: "buffer" for name, b in module._buffers.items() if b is not None})
    kinds.update({name: "attribute" for name, v in vars(module).items() if isinstance(v, torch.Tensor)})
    return kinds


class Scaler(nn.Module):
    """The class of exercise 1, as the solution notebook gives it (tests/test_checks.py compares the two)."""

    def __init__(self) -> None:
        super().__init__()
        self.gain = nn.Parameter(torch.ones(3))
        self.register_buffer("mean", torch.zeros(3))
        self.register_buffer("cache", torch.zeros(3), persistent=False)
        self.std = torch.ones(3)
        self.register_parameter("shift", nn.Parameter(torch.zeros(3)))
        self.frozen = nn.Parameter(torch.ones(3), requires_grad=False)
        self.register_buffer("count", None)
        self.eps = 1e-5
        self.count = torch.zeros(())


class Block(nn.Module):
    """The class of exercise 2, as the solution notebook gives it (tests/test_checks.py compares the two)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("step", torch.zeros((), dtype=torch.long))
        self.conv = nn.Conv2d(1, 2, 3, bias=False, device="meta")
        self.register_buffer("noise", torch.zeros(2), persistent=False)
        self.scale = nn.Parameter(torch.ones(2))
        self.norm = nn.BatchNorm2d(2, device="meta")
        self.cache = torch.zeros(2)


def _check_kinds(name: str, mine: object, expected: dict[str, str], hint: str) -> None:
    """Like check_equal for a {tensor name: kind} dict, but first refuses kinds other than KINDS."""
    __tracebackhide__ = True
    require_answer(name, mine, hint, "your dict")
    if isinstance(mine, Mapping):
        odd = [f"{k!r}: {v!r}" for k, v in mine.items() if v not in KINDS]
        if odd:
            fail(f"`{name}` has values that are not one of {list(KINDS)}: {', '.join(odd)}.", hint)
    problem = difference(name, mine, expected)
    if problem is not None:
        fail(problem, hint)


@exercise(1, "each tensor of Scaler is classified as parameter, buffer or plain attribute")
class check_02_kinds(Check):
    """``kinds`` maps the name of each tensor that a ``Scaler`` holds to "parameter", "buffer" or "attribute".

    Introduced in solutions/02_parameters_and_buffers.ipynb.
    """

    def collect(self, case: dict, kinds: dict[str, str], scaler: nn.Module) -> Any:
        return kinds

    def judge(self, case: dict, got: Any) -> None:
        _check_kinds("kinds", got, _tensor_kinds(Scaler()),
                     "a tensor wrapped in `nn.Parameter` is a parameter, whether it is assigned or passed to "
                     "`register_parameter`, and even with requires_grad=False; `register_buffer` makes a buffer "
                     "(persistent or not), and a tensor assigned later to a name registered as a buffer (even "
                     "registered as None) stays a buffer; any other tensor assigned to `self` is a plain attribute; "
                     "`eps` is a float, not a tensor. Compare with `lenet.tensor_table(scaler)`.")


@exercise(2, "the state_dict keys of Block, in order")
class check_02_state_dict_keys(Check):
    """``keys`` is ``list(block.state_dict())``, predicted: which tensors are saved, and in which order.

    Introduced in solutions/02_parameters_and_buffers.ipynb.
    """

    def collect(self, case: dict, keys: list[str], block: nn.Module) -> Any:
        return keys

    def judge(self, case: dict, got: Any) -> None:
        expected = list(Block().state_dict())
        hint = ("`state_dict()` saves parameters and persistent buffers, not non-persistent buffers "
                "(`persistent=False`) and not plain attributes; a child's tensors are prefixed with the child's "
                "name (`norm.running_mean`); BatchNorm2d holds 2 parameters and 3 buffers, and `bias=False` means "
                "no bias.")
        require_answer("keys", got, hint, "your list of names")
        if not isinstance(got, (list, tuple)) or not all(isinstance(k, str) for k in got):
            fail(f"`keys` is {show(got)}, expected a list of strings like {show(expected[:2])}.", hint)
        missing = [k for k in expected if k not in got]
        extra = sorted(set(got) - set(expected))
        if missing or extra:
            parts = ([f"is missing {show(missing)}"] if missing else []) + (
                [f"has unexpected {show(extra)}"] if extra else [])
            fail(f"`keys` {' and '.join(parts)}.", hint)
        if len(got) != len(expected):
            fail(f"`keys` has {len(got)} entries, expected {len(expected)}: a key appears twice.", hint)
        if list(got) != expected:
            fail(f"`keys` has the right names in the wrong order: {show(list(got))}, expected {show(expected)}.",
                 "a module saves its own parameters first, then its own persistent buffers, then each child in the "
                 "order the children were assigned, whatever order the tensors were registered in "
                 "(`nn.Module._save_to_state_dict`, then the recursion over `_modules`).")


@exercise(3, "Standardize keeps mean/std as saved buffers, inv_std as a non-persistent buffer, gain as a parameter")
class check_02_standardize(Check):
    """``Standardize(mean, std)``: ``gain`` a parameter, ``mean``/``std`` buffers, ``inv_std`` a non-persistent buffer.

    Introduced in solutions/02_parameters_and_buffers.ipynb.
    """

    def cases(self, gen: torch.Generator) -> list[dict]:
        return [{"mean": torch.tensor([1.0, -2.0, 0.5]), "std": torch.tensor([2.0, 4.0, 0.5]),
                 "x": torch.tensor([[3.0, 2.0, 1.0]])},
                {"mean": torch.randn(5, generator=gen), "std": torch.rand(5, generator=gen) + 0.5,
                 "x": torch.randn(2, 5, generator=gen)}]

    def collect(self, case: dict, Standardize: type) -> Any:
        norm = call(Standardize, case["mean"].clone(), case["std"].clone())
        if not isinstance(norm, nn.Module):
            return {"module": norm}
        with torch.no_grad():
            output = norm(case["x"].clone())
        return {"kinds": _tensor_kinds(norm), "keys": list(norm.state_dict()),
                "values": {name: getattr(norm, name, None) for name in ("mean", "std", "inv_std", "gain")},
                "output": output}

    def judge(self, case: dict, got: Any) -> None:
        hint = ("trained: `nn.Parameter`; saved and moved by `.to()` but not trained: `self.register_buffer(name, t)`; "
                "moved but not saved: `self.register_buffer(name, t, persistent=False)`; "
                "a plain `self.x = t` is neither saved nor moved.")
        if "module" in got:
            fail(f"`Standardize(mean, std)` is {show(got['module'])}, expected an nn.Module.", hint)
        kinds = got["kinds"]
        expected = {"gain": "parameter", "mean": "buffer", "std": "buffer", "inv_std": "buffer"}
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
        mean, std, x = case["mean"], case["std"], case["x"]
        problem = difference("list(Standardize(mean, std).state_dict())", got["keys"], ["gain", "mean", "std"])
        if problem:
            fail(problem, "`inv_std` can be recomputed from `std`, so it is not saved: `persistent=False`. "
                          "Register `mean` before `std`.")
        for name, value in [("mean", mean), ("std", std), ("inv_std", 1 / std), ("gain", torch.ones_like(mean))]:
            problem = difference(f"Standardize(mean, std).{name}", got["values"][name], value)
            if problem:
                fail(problem, "`mean` and `std` hold the tensors passed in, `inv_std` is `1 / std`, `gain` starts at "
                              "ones (`torch.ones_like(mean)`).")
        problem = difference("Standardize(mean, std)(x)", got["output"], (x - mean) / std)
        if problem:
            fail(problem, "forward computes `(x - self.mean) * self.inv_std * self.gain`; with gain = 1 that is "
                          "`(x - mean) / std`.")


def _module(case: dict) -> nn.Module:
    """The module of one case of exercise 4, built the same way wherever it is built (no global random numbers)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(case.get("seed", 0))
        build = case["build"]
        if build == "tiny":
            module = nn.Module()
            module.w = nn.Parameter(torch.ones(2))
            module.register_buffer("running", torch.zeros(2))
            module.register_buffer("scratch", torch.zeros(2), persistent=False)
            module.plain = torch.ones(2)
            module.label = "not a tensor"
        elif build == "batchnorm":
            module = nn.BatchNorm1d(3, device="meta")
        elif build in ("conv", "block"):
            module = nn.Sequential()
            module.scale = nn.Parameter(torch.ones(2))
            module.add_module("conv", nn.Conv2d(1, 2, 3, bias=False))
            module.add_module("norm", nn.BatchNorm2d(2))
            module = module.conv if build == "conv" else module
        elif build == "pruned":
            module = nn.Conv2d(1, 2, 3)
            prune.random_unstructured(module, name="weight", amount=0.5)
        else:  # "layout": tensors of the kinds listed, in that order
            module = nn.Module()
            for name, kind in case["layout"]:
                if kind == "parameter":
                    module.register_parameter(name, nn.Parameter(torch.zeros(1)))
                elif kind == "buffer":
                    module.register_buffer(name, torch.zeros(1), persistent=name.startswith("p"))
                else:
                    setattr(module, name, torch.zeros(1))
        return module


@exercise(4, "tensor_kinds classifies the tensors of five modules, a pruned Conv2d included")
class check_02_tensor_kinds(Check):
    """``tensor_kinds(module)`` maps each tensor the module itself holds to "parameter", "buffer" or "attribute".

    Introduced in solutions/02_parameters_and_buffers.ipynb.
    """

    def cases(self, gen: torch.Generator) -> list[dict]:
        layout = [(f"{'pq'[int(torch.randint(2, (1,), generator=gen))]}{i}", KINDS[int(torch.randint(3, (1,),
                                                                                                       generator=gen))])
                  for i in range(int(torch.randint(2, 7, (1,), generator=gen)))]
        return [{"label": "a module like notebook 02's Tiny", "build": "tiny"},
                {"label": "nn.BatchNorm1d(3)", "build": "batchnorm"},
                {"label": "nn.Conv2d(1, 2, 3, bias=False)", "build": "conv"},
                {"label": "a module with children conv and norm and its own parameter scale", "build": "block"},
                {"label": "nn.Conv2d(1, 2, 3) after prune.random_unstructured(conv, 'weight', 0.5)", "build": "pruned"},
                {"label": f"a module holding {len(layout)} tensors of other kinds", "build": "layout",
                 "layout": layout}]

    def collect(self, case: dict, tensor_kinds: Callable[[nn.Module], dict[str, str]]) -> Any:
        return call(tensor_kinds, _module(case))

    def judge(self, case: dict, got: Any) -> None:
        _check_kinds(f"tensor_kinds(<{case['label']}>)", got, _tensor_kinds(_module(case)),
                     "list only the module's own tensors: `named_parameters(recurse=False)`, "
                     "`named_buffers(recurse=False)` (a child's tensors belong to the child; a `bias=False` "
                     "layer has no bias tensor), then the tensors among `vars(module).values()` "
                     "(`isinstance(value, torch.Tensor)`): after pruning, `weight` is such a plain attribute.")
