"""Checks of lesson 05 · Saving and loading a pruned model (solutions/05_saving_and_loading.ipynb).

Every model a check hands to the learner's code is built by the course, from a name and a seed in the case
(:func:`_source`, :func:`_target`): ``collect`` builds it where the learner's code runs, ``judge`` builds the same
one again at home and asks torch for the answer.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn
from torch.nn.utils import prune

from ..checkpoints import refresh_pruned
from ..model import LeNet
from .core import Check, call, check_equal, exercise, fail, show, type_name, written_call
from .plain import Opaque, Raised
from .reference import quiet_build, quiet_pretrained


def _draw(gen: torch.Generator, low: int, high: int) -> int:
    """An int in [low, high] from ``gen``."""
    return int(torch.randint(low, high + 1, (1,), generator=gen))


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
class check_05_bytes(Check):
    """``linear_bytes(n_in, n_out, amount)``: the bytes of ``nn.Linear(n_in, n_out)``'s state_dict, dense for
    ``amount=None``, else after ``prune.l1_unstructured(layer, "weight", amount)``.

    Introduced in solutions/05_saving_and_loading.ipynb.
    """

    def cases(self, gen: torch.Generator) -> list[dict]:
        fixed = [(400, 120, None), (400, 120, 0.3), (400, 120, 0.9),  # the notebook's fc1
                 (84, 10, None), (84, 10, 0.5), (3, 2, 1), (120, 84, 0.0), (7, 5, None)]
        drawn = []  # unseen: a dense layer, a fraction, a count
        for kind in ("dense", "fraction", "count"):
            n_in, n_out = _draw(gen, 1, 500), _draw(gen, 1, 500)
            amount = None if kind == "dense" else _draw(gen, 0, 100) / 100 if kind == "fraction" else \
                _draw(gen, 0, n_in * n_out)
            drawn.append((n_in, n_out, amount))
        return [{"n_in": i, "n_out": o, "amount": amount} for i, o, amount in fixed + drawn]

    def collect(self, case: dict, linear_bytes: Callable[[int, int, float | int | None], int]) -> Any:
        return call(linear_bytes, case["n_in"], case["n_out"], case["amount"])

    def judge(self, case: dict, got: Any) -> None:
        n_in, n_out, amount = case["n_in"], case["n_out"], case["amount"]
        check_equal(written_call("linear_bytes", n_in, n_out, amount), got, _linear_bytes(n_in, n_out, amount),
                    hint="a Linear(n_in, n_out) saves a weight of n_out x n_in and a bias of n_out numbers, float32: "
                         "4 bytes each. After prune.l1_unstructured(layer, 'weight', ...) the state_dict holds "
                         "weight_orig AND weight_mask, both float32 of the weight's shape, plus the bias, stored once. "
                         "The amount, even 0.0, does not change the bytes: a zero in a dense tensor costs as much as "
                         "any other value. torch counts `t.numel() * t.element_size()` for every tensor of "
                         "`layer.state_dict()`.")


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


#: The names a drawn model's layers take: a module path may hold "mask" without its keys being masks.
DRAWN_NAMES = ("block", "head", "attn_mask_proj", "encoder", "mask", "proj_mask", "layers", "out")


def _drawn_model(seed: int, init: int) -> nn.Sequential:
    """A chain of 2 to 4 Linear layers, names, widths and nesting drawn from ``seed``, initial values from ``init``.

    A nested layer is ``nn.Sequential(nn.ReLU(), linear)``: its Linear's path is ``"<name>.1"``.
    """
    gen = torch.Generator().manual_seed(seed)
    count = _draw(gen, 2, 4)
    names = [DRAWN_NAMES[i] for i in torch.randperm(len(DRAWN_NAMES), generator=gen)[:count].tolist()]
    widths = [_draw(gen, 1, 5) for _ in range(count + 1)]
    nested = [bool(_draw(gen, 0, 1)) for _ in range(count)]

    def build() -> nn.Sequential:
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        for name, n_in, n_out, deep in zip(names, widths, widths[1:], nested):
            linear = nn.Linear(n_in, n_out)
            layers[name] = nn.Sequential(nn.ReLU(), linear) if deep else linear
        return nn.Sequential(layers)

    return quiet_build(build, init)


def _drawn_pruned(seed: int) -> nn.Sequential:
    """:func:`_drawn_model` with a drawn set of its weights and biases pruned by drawn masks (at least one weight)."""
    model = _drawn_model(seed, seed)
    gen = torch.Generator().manual_seed(seed + 1)
    linears = [module for module in model.modules() if isinstance(module, nn.Linear)]
    chosen = torch.rand(len(linears), 2, generator=gen) < 0.5
    chosen[_draw(gen, 0, len(linears) - 1), 0] = True
    for module, row in zip(linears, chosen.tolist()):
        for name, pruned in zip(("weight", "bias"), row):
            if pruned:
                mask = (torch.rand(getattr(module, name).shape, generator=gen) < 0.6).float()
                prune.custom_from_mask(module, name, mask)
    with torch.no_grad():
        refresh_pruned(model)
    return model


#: Exercise 2's hand-made state_dict: nested paths, a pruned bias, and a key holding "_mask" that is no mask.
HAND_MADE_KEYS = ("block.0.weight_orig", "block.0.bias", "block.0.weight_mask", "attn_mask_proj.weight",
                  "attn_mask_proj.bias", "head.weight", "head.bias_orig", "head.bias_mask")


def _source(case: dict) -> nn.Module:
    """The model of a case, as the course builds it (the same in the learner's kernel and in the judge)."""
    build = case["build"]
    if build == "lenet":
        return quiet_pretrained()
    if build == "lenet_pruned":
        return _pruned_lenet()
    if build == "nested_pruned":
        return _pruned_nested()
    if build == "single":
        return _single_pruned_linear()
    if build == "drawn":
        return _drawn_pruned(case["seed"])
    raise ValueError(f"no model is built as {build!r}")


def _target(case: dict) -> nn.Module:
    """A fresh, unpruned model of the class of the case's model, with other values (what a checkpoint loads into)."""
    build = case["build"]
    if build in ("lenet", "lenet_pruned"):
        return quiet_build(LeNet)
    if build == "nested_pruned":
        return quiet_build(_nested_model)
    if build == "drawn":
        return _drawn_model(case["seed"], case["seed"] + 1)
    raise ValueError(f"no target is built for {build!r}")


def _state(case: dict) -> dict[str, torch.Tensor]:
    """The state_dict of a case of exercise 2."""
    if case["build"] == "hand":
        return {key: torch.zeros(1) for key in HAND_MADE_KEYS}
    return dict(_source(case).state_dict())


def _pruned_of(model: nn.Module) -> list[tuple[str, str]]:
    """``(module path, name)`` of every pruned parameter of ``model`` (it has ``<name>_orig`` and ``<name>_mask``)."""
    return [(path, key[: -len("_mask")]) for path, module in model.named_modules()
            for key, _ in module.named_buffers(recurse=False)
            if key.endswith("_mask") and hasattr(module, key[: -len("_mask")] + "_orig")]


def _names(pairs: list[tuple[str, str]]) -> list[str]:
    """``[("block.1", "weight"), ("", "bias")]`` as ``["block.1.weight", "bias"]``."""
    return [".".join(filter(None, pair)) for pair in pairs]


def _drawn_label(seed: int) -> str:
    """What a drawn model is, for the hints: its layers and what is pruned."""
    model = _drawn_pruned(seed)
    layers = [path for path, module in model.named_modules() if isinstance(module, nn.Linear)]
    return f"a model with the Linear layers {', '.join(layers)} and {', '.join(_names(_pruned_of(model)))} pruned"


@exercise(2, "pruned_params finds every pruned parameter from the keys alone, nested and bias included")
class check_05_pruned_params(Check):
    """``pruned_params(state_dict)`` is the set of ``(module path, parameter name)`` pruned in ``state_dict``.

    Introduced in solutions/05_saving_and_loading.ipynb.
    """

    def cases(self, gen: torch.Generator) -> list[dict]:
        seed = _draw(gen, 0, 2**31)
        drawn_keys = list(_drawn_pruned(seed).state_dict())
        return [{"label": "the trained LeNet's state_dict (nothing pruned)", "build": "lenet"},
                {"label": "LeNet with conv1.weight, fc1.weight and fc3.bias pruned", "build": "lenet_pruned"},
                {"label": f"the hand-made state_dict with keys {list(HAND_MADE_KEYS)}", "build": "hand"},
                {"label": "the state_dict of a single pruned nn.Linear (keys 'bias', 'weight_orig', 'weight_mask')",
                 "build": "single"},
                {"label": f"the state_dict with keys {drawn_keys}", "build": "drawn", "seed": seed}]

    def collect(self, case: dict, pruned_params: Callable[[Mapping[str, torch.Tensor]], set[tuple[str, str]]]) -> Any:
        return call(pruned_params, _state(case))

    def judge(self, case: dict, got: Any) -> None:
        hint = ("every pruned parameter leaves a key '<module path>.<name>_mask' (and '<name>_orig'). The module path "
                "can hold dots itself ('block.0') or be empty (a pruned nn.Linear on its own: 'weight_mask'), so split "
                "each key ending in '_mask' at its LAST dot with `key.rpartition('.')`, then strip '_mask' from the "
                "name. Return a set of (module path, name) tuples.")
        if case["build"] == "hand":
            expected = {("block.0", "weight"), ("head", "bias")}
        else:  # what torch's modules hold pruned
            expected = set(_pruned_of(_source(case)))
        label = case["label"]
        if isinstance(got, (set, frozenset, list, tuple)) and not all(isinstance(x, tuple) for x in got):
            fail(f"pruned_params(...) for {label} is {show(got)}: expected (module path, name) tuples, "
                 f"like {show(sorted(expected))}.", hint)
        check_equal(f"pruned_params(...) for {label}", got, expected, hint)


def _effective(module: nn.Module, name: str) -> torch.Tensor:
    """What the pruned parameter ``name`` of ``module`` really is: ``<name>_orig * <name>_mask``."""
    return (getattr(module, name + "_orig") * getattr(module, name + "_mask")).detach()


def _loading_cases(gen: torch.Generator, count: int) -> list[dict]:
    """The first ``count`` models of the loading exercises, then one drawn from ``gen``; ``x`` is their input."""
    lenet_x = torch.linspace(-1, 1, 2 * 28 * 28).view(2, 1, 28, 28)
    fixed = [{"label": "LeNet with conv1.weight, fc1.weight and fc3.bias pruned", "build": "lenet_pruned",
              "x": lenet_x},
             {"label": "a tiny model with block.0.weight and head.bias pruned", "build": "nested_pruned",
              "x": torch.tensor([[1.0, -2.0, 0.5]])},
             {"label": "the trained LeNet, not pruned", "build": "lenet", "x": lenet_x}][:count]
    seed = _draw(gen, 0, 2**31)
    n_in = next(m for m in _drawn_model(seed, seed).modules() if isinstance(m, nn.Linear)).in_features
    return fixed + [{"label": _drawn_label(seed), "build": "drawn", "seed": seed,
                     "x": torch.linspace(-1, 1, 2 * n_in).view(2, n_in)}]


@exercise(3, "load_pruned_state restores the masks, weight_orig and the weight attributes, nested and dense too")
class check_05_load_pruned_state(Check):
    """``load_pruned_state(model, state_dict)`` re-creates the reparametrization, loads strictly, returns ``model``.

    Introduced in solutions/05_saving_and_loading.ipynb.
    """

    def cases(self, gen: torch.Generator) -> list[dict]:
        return _loading_cases(gen, 3)

    def collect(self, case: dict,
                load_pruned_state: Callable[[nn.Module, Mapping[str, torch.Tensor]], nn.Module]) -> Any:
        source, target = _source(case), _target(case)
        try:
            returned = call(load_pruned_state, target, source.state_dict())
        except RuntimeError as e:  # load_state_dict's errors become a hint; any other error is the learner's to see
            return {"raised": Raised.of(e)}  # inside a dict: a Raised on its own is an error to judge_all
        collected = {"returned_model": returned is target,
                     "returned": Opaque(type(returned).__name__) if isinstance(returned, nn.Module) else returned,
                     "state": dict(target.state_dict()),
                     # read before any forward: the forward-pre-hook would refresh them
                     "attributes": {".".join(filter(None, (path, name))): getattr(target.get_submodule(path), name)
                                    for path, name in _pruned_of(source)}}
        with torch.no_grad():
            collected["output"] = target(case["x"])
        return collected

    def judge(self, case: dict, got: Any) -> None:
        hint = ("for each (module path, name) that `state_dict` holds pruned (your pruned_params), call "
                "`prune.identity(model.get_submodule(path), name)`: it registers <name>_orig, a <name>_mask of ones "
                "and the forward-pre-hook, so `model.load_state_dict(state_dict)` (strict) finds every key. "
                "Do not touch parameters that are not pruned, and return `model`.")
        label, source = case["label"], _source(case)
        if "raised" in got:
            raised = got["raised"]
            fail(f"for {label}, your function raised {raised.type}: {' '.join(raised.message.split())[:300]}", hint)
        if not got["returned_model"]:
            fail(f"for {label}, load_pruned_state returned {show(got['returned'])}, not the model it was given.",
                 "end the function with `return model` (the same model, loaded in place).")
        check_equal(f"the state_dict of the model loaded from {label}", got["state"], dict(source.state_dict()),
                    hint + " With strict=False the unmatched keys are skipped silently: the layers stay random.")
        for path, name in _pruned_of(source):
            shown = ".".join(filter(None, (path, name)))
            check_equal(f"{shown} right after load_pruned_state (before any forward), for {label}",
                        got["attributes"].get(shown), _effective(source.get_submodule(path), name),
                        "load_state_dict copies into <name>_orig and <name>_mask, but the attribute <name> is only "
                        "recomputed by the forward-pre-hook at the next forward: it still holds what prune.identity "
                        "computed from the old values. Refresh it before returning: `lenet.refresh_pruned(model)` "
                        "(or run one forward under torch.no_grad()).")
        with torch.no_grad():
            check_equal(f"the output of the loaded model, for {label}", got["output"], source(case["x"]), hint)


@exercise(4, "plain_state_dict makes the pruning permanent in the saved dict and leaves the pruned model alone")
class check_05_plain_state_dict(Check):
    """``plain_state_dict(model)`` is what an unpruned model of the same class loads strictly: each pruned
    parameter as ``<name>_orig * <name>_mask`` under its plain key, no mask; ``model`` stays pruned.

    Introduced in solutions/05_saving_and_loading.ipynb.
    """

    def cases(self, gen: torch.Generator) -> list[dict]:
        return _loading_cases(gen, 2)

    def collect(self, case: dict, plain_state_dict: Callable[[nn.Module], Mapping[str, torch.Tensor]]) -> Any:
        source = _source(case)
        result = call(plain_state_dict, source)
        return {"result": result, "pruned_after": _pruned_of(source), "is_pruned": prune.is_pruned(source),
                "state_after": dict(source.state_dict())}

    def judge(self, case: dict, got: Any) -> None:
        hint = ("a plain model expects '<path>.<name>' where the pruned state_dict has '<path>.<name>_orig' and "
                "'<path>.<name>_mask'. Build a new dict from `model.state_dict()`: store `orig * mask` under the plain "
                "key (the zeros stay), drop the '_mask' keys, keep every other key as it is. That is what "
                "`prune.remove` would give, but prune.remove changes the model in place: never call it on `model`.")
        label, source = case["label"], _source(case)
        before, pruned_before = dict(source.state_dict()), _pruned_of(source)
        if got["pruned_after"] != pruned_before or not got["is_pruned"]:
            fail(f"for {label}, your function changed the model it was given: it is no longer pruned "
                 f"(pruned before: {show(pruned_before)}, after: {show(got['pruned_after'])}).", hint)
        check_equal(f"the state_dict of the model after plain_state_dict(model), for {label}", got["state_after"],
                    before, hint + " Your function changed the model's tensors.")
        reference = _target(case)
        for path, name in pruned_before:  # torch's own answer: a copy through the state_dict, then prune.remove
            prune.identity(reference.get_submodule(path), name)
        reference.load_state_dict(before)
        for path, name in pruned_before:
            prune.remove(reference.get_submodule(path), name)
        result = got["result"]
        if not isinstance(result, Mapping):
            fail(f"plain_state_dict(model) for {label} is {show(result)} (a {type_name(result)}), expected a dict of "
                 "tensors like `model.state_dict()`.", hint)
        check_equal(f"plain_state_dict(model) for {label}", dict(result), dict(reference.state_dict()),
                    hint + " A pruned entry must be 0 in the saved weight: `weight_orig` alone still holds the "
                           "original values.")
        _target(case).load_state_dict(dict(result))  # strict: it fits (same keys and shapes checked above)
