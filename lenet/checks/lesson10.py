"""Checks of lesson 10 · Sparsifiers (solutions/10_sparsifiers.ipynb).

Each check has three parts (docs/authoring.md, "Add a check"): ``cases`` (plain data), ``collect`` (runs the
learner's code where it runs and returns plain data) and ``judge`` (builds torch's answer and compares).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.ao.pruning import CubicSL, WeightNormSparsifier
from torch.nn.utils import parametrize, prune

from ..inspection import sparsity
from ..model import LeNet
from .core import Check, as_number, attempt, call, check_equal, exercise, fail, show, written_call
from .lesson09 import _Mask
from .plain import Raised
from .reference import LAYERS, quiet_build, quiet_pretrained

FC = ("fc1", "fc2", "fc3")


def _draw(gen: torch.Generator, low: int, high: int) -> int:
    """An int in [low, high] from ``gen``."""
    return int(torch.randint(low, high + 1, (1,), generator=gen))


def _uniform(gen: torch.Generator, low: float, high: float) -> float:
    """A float in [low, high), rounded to 3 decimals, from ``gen``."""
    return round(low + (high - low) * float(torch.rand(1, generator=gen)), 3)


def _sparsified(layers: list[str], level: float, block: list[int], zeros: int) -> tuple[nn.Module, WeightNormSparsifier]:
    """The trained LeNet with a WeightNormSparsifier prepared on ``layers``' weights and stepped once."""
    model = quiet_pretrained()
    sparsifier = WeightNormSparsifier(sparsity_level=level, sparse_block_shape=tuple(block), zeros_per_block=zeros)
    sparsifier.prepare(model, [{"tensor_fqn": f"{name}.weight"} for name in layers])
    sparsifier.step()
    return model, sparsifier


TWO_FOUR_HINT = ("`WeightNormSparsifier(sparsity_level=1.0, sparse_block_shape=(1, 4), zeros_per_block=2)`: blocks of "
                 "1 row x 4 columns (4 consecutive inputs of one output), 2 zeros in each, and ALL blocks "
                 "(sparsity_level is the share of blocks treated). `prepare(model, [{'tensor_fqn': 'fc1.weight'}, "
                 "{'tensor_fqn': 'fc2.weight'}])`, `step()`, then `squash_mask()` to get plain Linears back.")


@exercise(1, "two_four_lenet: WeightNormSparsifier gives fc1 and fc2 the 2:4 pattern, squashed into plain Linears")
class check_10_two_four_lenet(Check):
    """``two_four_lenet()`` is the trained LeNet with 2:4 sparsity on fc1 and fc2 by torch.ao, masks squashed.

    Introduced in solutions/10_sparsifiers.ipynb.
    """

    def collect(self, case: dict, two_four_lenet: Callable[[], nn.Module]) -> Any:
        model = call(two_four_lenet)
        if not isinstance(model, nn.Module):
            return {"returned": model}
        layers = {}
        for name in LAYERS:
            module = getattr(model, name, None)
            weight = getattr(module, "weight", None)
            layers[name] = {"parametrized": module is None or parametrize.is_parametrized(module),
                            "type": type(module).__name__,
                            "weight": weight.detach().cpu() if isinstance(weight, torch.Tensor) else None}
        return layers

    def judge(self, case: dict, got: Any) -> None:
        if "returned" in got:
            fail(f"two_four_lenet() returned {show(got['returned'])}, not a model.", "return the LeNet; " + TWO_FOUR_HINT)
        reference, sparsifier = _sparsified(["fc1", "fc2"], 1.0, [1, 4], 2)
        sparsifier.squash_mask()
        for name in LAYERS:
            layer = got[name]
            if layer["parametrized"]:
                fail(f"`{name}` of two_four_lenet() is a {layer['type']}: the masks are still parametrizations.",
                     "call `sparsifier.squash_mask()` after `step()`: it writes the zeros into plain weights; "
                     + TWO_FOUR_HINT)
            weight = layer["weight"]
            if name in ("fc1", "fc2") and isinstance(weight, torch.Tensor) and weight.numel() % 4 == 0:
                nonzeros = (weight.reshape(-1, 4) != 0).sum(dim=1)
                counts = torch.bincount(nonzeros, minlength=5).tolist()
                if counts[2] != len(nonzeros):
                    fail(f"`{name}.weight` of two_four_lenet(): of its {len(nonzeros)} groups of 4 consecutive weights "
                         f"in a row, {counts} have 0/1/2/3/4 non-zeros ({sparsity(weight):.0%} zeros overall); 2:4 "
                         "means exactly 2 non-zeros in every group of a row.", TWO_FOUR_HINT)
            check_equal(f"{name}.weight of two_four_lenet()", weight, getattr(reference, name).weight.detach(),
                        "fc1 and fc2 keep the 2 largest weights of every 4, the other layers stay as trained; "
                        + TWO_FOUR_HINT)


PLAIN_HINT = ("`model.state_dict()` holds each sparsified weight as `<layer>.parametrizations.weight.original`, the "
              "weights WITHOUT the mask (FakeSparsity's own state_dict is empty). The masks are in "
              "`sparsifier.state_dict()['state'][fqn]['mask']` (or the buffer `model.<layer>.parametrizations."
              "weight[0].mask`). Start from `dict(model.state_dict())`, and for each fqn of the sparsifier's state "
              "replace the `original` key by the plain key `fqn`, holding original * mask. Do not call "
              "`squash_mask()`: it would take the masks off your model.")


@exercise(2, "plain_state gives a plain LeNet the sparsifier's zeros, and leaves the model and its masks as they were")
class check_10_plain_state(Check):
    """``plain_state(model, sparsifier)`` is a state_dict a plain LeNet loads strictly, each sparsified weight times
    its mask; ``model`` and ``sparsifier`` are left unchanged.

    Introduced in solutions/10_sparsifiers.ipynb.
    """

    def cases(self, gen: torch.Generator) -> list[dict]:
        k = _draw(gen, 1, 3)
        drawn = [FC[i] for i in sorted(torch.randperm(3, generator=gen)[:k].tolist())]
        return [
            {"layers": ["fc1", "fc2"], "level": 0.9, "block": [1, 1], "zeros": 1},
            {"layers": ["fc3"], "level": 0.5, "block": [1, 4], "zeros": 2},
            {"layers": drawn, "level": _uniform(gen, 0.2, 0.95), "block": [1, 1], "zeros": 1},
        ]

    def collect(self, case: dict, plain_state: Callable[..., dict]) -> Any:
        model, sparsifier = _sparsified(case["layers"], case["level"], case["block"], case["zeros"])
        buffers = {name: getattr(model, name).parametrizations.weight[0].mask for name in case["layers"]}
        before = {name: mask.clone() for name, mask in buffers.items()}
        state = attempt(plain_state, model, sparsifier)
        masked = all(parametrize.is_parametrized(getattr(model, name), "weight") for name in case["layers"])
        kept = masked and all(torch.equal(getattr(model, name).parametrizations.weight[0].mask, before[name])
                              and getattr(model, name).parametrizations.weight[0].mask is buffers[name]
                              for name in case["layers"])
        return {"state": dict(state) if isinstance(state, dict) else state, "still_masked": masked,
                "masks_kept": kept}

    def judge(self, case: dict, got: Any) -> None:
        what = (f"plain_state(model, sparsifier) for a sparsifier at sparsity_level={case['level']} with blocks "
                f"{tuple(case['block'])} on {', '.join(case['layers'])}")
        state = got["state"]
        if isinstance(state, Raised):
            fail(f"{what} raised {state}", PLAIN_HINT)
        if not got["still_masked"]:
            fail(f"{what}: afterwards the model's layers are no longer parametrized.",
                 "leave the model as it is (it keeps training with its masks); " + PLAIN_HINT)
        if not got["masks_kept"]:
            fail(f"{what}: afterwards the model's masks have changed.", "only read them; " + PLAIN_HINT)
        if not isinstance(state, dict):
            fail(f"{what} returned {show(state)}, not a dict.", PLAIN_HINT)
        reference, sparsifier = _sparsified(case["layers"], case["level"], case["block"], case["zeros"])
        sparsifier.squash_mask()
        expected = reference.state_dict()
        try:
            result = quiet_build(LeNet).load_state_dict(state, strict=False)
        except (RuntimeError, TypeError, AttributeError) as e:
            fail(f"{what}: a plain LeNet does not load it: {str(e).splitlines()[0]}", PLAIN_HINT)
        if result.missing_keys or result.unexpected_keys:
            fail(f"{what}: a plain LeNet does not load it strictly (missing {show(result.missing_keys)}, unexpected "
                 f"{show(result.unexpected_keys)}).", PLAIN_HINT)
        for key, value in expected.items():
            if key.split(".")[0] in case["layers"] and key.endswith(".weight"):
                mine = state[key]
                if isinstance(mine, torch.Tensor) and mine.shape == value.shape and int((mine == 0).sum()) < int(
                        (value == 0).sum()):
                    fail(f"{what}: `{key}` has {int((mine == 0).sum())} zeros, expected {int((value == 0).sum())}: "
                         "the mask's zeros are missing.", PLAIN_HINT)
            check_equal(f"{key} of {what}", state[key], value, PLAIN_HINT, decimals=6)


CUBIC_HINT = ("CubicSL sets s = s_f + (s_0 - s_f) * (1 - (t - t_0) / (n * delta_t)) ** 3, clamped to [s_0, s_f] "
              "(`help(torch.ao.pruning.CubicSL)`); here s_0 = 0, t_0 = 0, delta_t = 1: "
              "`final * (1 - (1 - t / n) ** 3)`, which rises fast at first, then flattens; past t = n it would "
              "overshoot, so clamp it with `min(final, ...)`.")


@exercise(3, "cubic_level(t, final, n) is the level CubicSL sets after t steps, past the end of the schedule too")
class check_10_cubic_level(Check):
    """``cubic_level(t, final, n)`` is CubicSL's sparsity level after ``t`` steps (init_sl=0, init_t=0, delta_t=1,
    total_t=n) for the target ``final``.

    Introduced in solutions/10_sparsifiers.ipynb.
    """

    def cases(self, gen: torch.Generator) -> list[dict]:
        hand = [(0, 0.9, 9), (1, 0.9, 9), (5, 0.928, 9), (9, 0.928, 9), (12, 0.5, 9), (3, 0.8, 1)]
        drawn = [(_draw(gen, 0, 25), _uniform(gen, 0.05, 0.99), _draw(gen, 1, 15)) for _ in range(4)]
        return [{"t": t, "final": final, "n": n} for t, final, n in hand + drawn]

    def collect(self, case: dict, cubic_level: Callable[[int, float, int], float]) -> Any:
        return as_number(call(cubic_level, case["t"], case["final"], case["n"]))

    def judge(self, case: dict, got: Any) -> None:
        t, final, n = case["t"], case["final"], case["n"]
        expected = CubicSL.sparsity_compute_fn(s_0=0.0, s_f=final, t=t, t_0=0, dt=1, n=n)
        check_equal(written_call("cubic_level", t, final, n), got, float(expected), CUBIC_HINT)


NEXT_HINT = ("a prune hook STORES `weight` (as last computed, stale after a step): compute what the next forward "
             "will use from `layer.weight_orig` and `layer.weight_mask` (`weight_mask * weight_orig`). A "
             "parametrized layer's `weight` is computed from `parametrizations.weight.original` on every read, mask "
             "included, and a plain layer's `weight` is its parameter: for both, `layer.weight` is right.")
MECHANISMS = ("prune hook", "Mask parametrization", "torch.ao sparsifier", "no mask")


@exercise(4, "next_weight(layer) is the weight the next forward uses, for a hook, a parametrization and a plain layer")
class check_10_next_weight(Check):
    """``next_weight(layer)`` is the weight ``layer``'s next forward multiplies by, whichever mechanism masks it,
    computed without a forward and without changing ``layer``.

    Introduced in solutions/10_sparsifiers.ipynb.
    """

    def cases(self, gen: torch.Generator) -> list[dict]:
        cases = []
        for mechanism in MECHANISMS:
            rows, cols = _draw(gen, 2, 10), 4 * _draw(gen, 1, 4)
            orig = torch.randn(rows, cols, generator=gen)
            cases.append({"mechanism": mechanism, "orig": orig, "new": orig + 0.1 * torch.randn(rows, cols, generator=gen),
                          "mask": (torch.rand(rows, cols, generator=gen) > 0.5).float()})
        return cases

    def collect(self, case: dict, next_weight: Callable[[nn.Module], torch.Tensor]) -> Any:
        rows, cols = case["orig"].shape
        holder = quiet_build(lambda: nn.Sequential(nn.Linear(cols, rows, bias=False)))
        layer = holder[0]
        with torch.no_grad():
            layer.weight.copy_(case["orig"])
        if case["mechanism"] == "prune hook":
            prune.custom_from_mask(layer, "weight", case["mask"])
        elif case["mechanism"] == "Mask parametrization":
            parametrize.register_parametrization(layer, "weight", _Mask(case["mask"]))
        elif case["mechanism"] == "torch.ao sparsifier":
            sparsifier = WeightNormSparsifier(sparsity_level=0.5, sparse_block_shape=(1, 1), zeros_per_block=1)
            sparsifier.prepare(holder, [{"tensor_fqn": "0.weight"}])
            sparsifier.step()
        trained = layer.weight_orig if hasattr(layer, "weight_orig") else (
            layer.parametrizations.weight.original if parametrize.is_parametrized(layer) else layer.weight)
        with torch.no_grad():
            trained.copy_(case["new"])  # what optimizer.step() does to the trained values
        stored = vars(layer).get("weight")
        got = attempt(next_weight, layer)
        changed = vars(layer).get("weight") is not stored or not torch.equal(trained.detach(), case["new"])
        return {"weight": got, "changed": changed}

    def judge(self, case: dict, got: Any) -> None:
        what = f"next_weight(layer) for a layer masked by a {case['mechanism']}, after a step"
        if case["mechanism"] == "no mask":
            what = "next_weight(layer) for a plain nn.Linear, after a step"
        if isinstance(got["weight"], Raised):
            fail(f"{what} raised {got['weight']}", NEXT_HINT)
        if got["changed"]:
            fail(f"{what} changed the layer (its `weight` attribute or its trained values).",
                 "only read: calling the hook (or `lenet.refresh_pruned`) writes a new `weight`; " + NEXT_HINT)
        if case["mechanism"] == "torch.ao sparsifier":
            holder = quiet_build(lambda: nn.Sequential(nn.Linear(case["orig"].shape[1], case["orig"].shape[0],
                                                                 bias=False)))
            with torch.no_grad():
                holder[0].weight.copy_(case["orig"])
            sparsifier = WeightNormSparsifier(sparsity_level=0.5, sparse_block_shape=(1, 1), zeros_per_block=1)
            sparsifier.prepare(holder, [{"tensor_fqn": "0.weight"}])
            sparsifier.step()
            expected = case["new"] * holder[0].parametrizations.weight[0].mask
        elif case["mechanism"] == "no mask":
            expected = case["new"]
        else:
            expected = case["mask"] * case["new"]
        check_equal(what, got["weight"], expected, NEXT_HINT, decimals=6)
