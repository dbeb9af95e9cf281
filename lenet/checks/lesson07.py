"""Checks of lesson 07 · What pruning costs in accuracy (solutions/07_accuracy_and_sparsity.ipynb).

Each check has three parts (docs/authoring.md, "Add a check"): ``cases`` (plain data), ``collect`` (runs the
learner's code where it runs and returns plain data) and ``judge`` (torch's answer and the hint).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import prune

from ..inspection import prunable_parameters
from ..model import LeNet
from ..pruning import entries_to_prune, prune_model
from ..training import evaluate, single_thread
from .core import Check, as_number, call, check_equal, exercise, fail, require_answer, show, type_name, written_call
from .reference import LAYERS, quiet_build, quiet_data, quiet_pretrained, torch_pruned_count

#: Exercise 5: the share of all conv and linear weights the per-layer amounts must prune.
TARGET = 0.85


def _draw(gen: torch.Generator, low: int, high: int) -> int:
    """An int in [low, high] from ``gen``."""
    return int(torch.randint(low, high + 1, (1,), generator=gen))


def _masked_count(model: nn.Module) -> tuple[int, int]:
    """(entries whose ``weight_mask`` is 0, all entries) over the conv and linear weights of ``model``."""
    zeros = total = 0
    for m, name in prunable_parameters(model):
        total += getattr(m, name).numel()
        mask = getattr(m, name + "_mask", None)
        if mask is not None:
            zeros += int((mask == 0).sum())
    return zeros, total


def _sparsity_model(case: dict) -> nn.Module:
    """An untrained LeNet pruned as the case says, the same on both sides (seeded, no global random numbers)."""
    def build() -> nn.Module:
        model = LeNet()
        if case["kind"] == "global":
            prune_model(model, 0.9, scope="global")
        for layer, method, amount in case["prunes"]:  # (layer, "l1" or "random", amount), in order
            fn = prune.l1_unstructured if method == "l1" else prune.random_unstructured
            fn(getattr(model, layer), "weight", amount=amount)
        return model

    return quiet_build(build, case["seed"])


@exercise(1, "global_sparsity_from_masks counts the masked weights of all conv and linear layers together")
class check_07_global_sparsity(Check):
    """``global_sparsity_from_masks(model)``: zeros of all ``weight_mask`` buffers / all conv and linear weights.

    Introduced in solutions/07_accuracy_and_sparsity.ipynb.
    """

    def cases(self, gen: torch.Generator) -> list[dict]:
        cases = [
            {"label": "a LeNet with only fc3 pruned, 50%", "kind": "layers", "prunes": [("fc3", "l1", 0.5)]},
            {"label": "an unpruned LeNet", "kind": "layers", "prunes": []},
            {"label": "a LeNet pruned 90% globally", "kind": "global", "prunes": []},
            {"label": "a LeNet with conv1 pruned 50% and fc1 pruned twice", "kind": "layers",
             "prunes": [("conv1", "random", 0.5), ("fc1", "l1", 0.9), ("fc1", "l1", 0.5)]},
        ]
        layers = [LAYERS[int(i)] for i in torch.randperm(len(LAYERS), generator=gen)][:_draw(gen, 1, 4)]
        cases.append({"label": f"a LeNet with {', '.join(layers)} pruned", "kind": "layers",
                      "prunes": [(layer, "l1", _draw(gen, 1, 99) / 100) for layer in layers]})
        for case in cases:
            case["seed"] = 0
        return cases

    def collect(self, case: dict, global_sparsity_from_masks: Callable[[nn.Module], float]) -> Any:
        return call(global_sparsity_from_masks, _sparsity_model(case))

    def judge(self, case: dict, got: Any) -> None:
        zeros, total = _masked_count(_sparsity_model(case))
        check_equal(f"global_sparsity_from_masks(<{case['label']}>)", got, zeros / total,
                    "divide the zeros of all `weight_mask` buffers by the entries of all conv and linear weights, "
                    "pruned or not: a layer without a `weight_mask` keeps all its weights but still counts in the "
                    "total, and a big layer weighs more than a small one (do not average the layers' shares). "
                    "`lenet.global_sparsity(model)` gives the same number from the zeros of `weight`.")


#: Exercise 2: (fraction pruned now, target, weights in the layer) for second_amount; the notebook shows 60% -> 90%.
SECOND_CASES = [(0.6, 0.9, 1000), (0.3, 0.6, 48000), (0.5, 0.75, 100), (0.2, 0.9, 10080), (0.25, 0.5, 864),
                (0.4, 0.7, 200)]


@exercise(2, "pruned_after counts like torch when a layer is pruned again, and second_amount reaches any target")
class check_07_prune_again(Check):
    """``pruned_after(n, amounts)``: entries pruned after one ``l1_unstructured`` call per amount;
    ``second_amount(now, target)``: the float amount of a second call that takes a layer pruned ``now`` to ``target``.

    Introduced in solutions/07_accuracy_and_sparsity.ipynb.
    """

    def cases(self, gen: torch.Generator) -> list[dict]:
        after = [(10, [0.25]), (10, [0.5, 0.5]), (54, [0.6, 0.5]), (100, [0.3, 0.3, 0.3]), (7, [3, 0.5]),
                 (864, [0.5, 0.5, 0.5]), (48000, [0.5, 0.5, 11 / 12])]
        after.append((_draw(gen, 10, 5000), [_draw(gen, 1, 99) / 100 for _ in range(_draw(gen, 2, 4))]))
        now = _draw(gen, 1, 8) / 10  # tenths and twentieths of a multiple of 20 weights: whole counts, as in the
        target = round(now + _draw(gen, 1, int(round((0.95 - now) * 20))) / 20, 2)  # notebook: round() never decides
        second = [*SECOND_CASES, (now, target, 20 * _draw(gen, 5, 2500))]
        return ([{"n": n, "amounts": amounts} for n, amounts in after]
                + [{"now": now, "target": target, "n": n} for now, target, n in second])

    def collect(self, case: dict, pruned_after: Callable[[int, list[float | int]], int],
                second_amount: Callable[[float, float], float]) -> Any:
        if "amounts" in case:
            return call(pruned_after, case["n"], list(case["amounts"]))
        return call(second_amount, case["now"], case["target"])

    def judge(self, case: dict, got: Any) -> None:
        if "amounts" in case:
            n, amounts = case["n"], list(case["amounts"])
            check_equal(written_call("pruned_after", n, amounts), got, torch_pruned_count(n, amounts),
                        "each call prunes round(amount * remaining) more entries, where remaining is the number "
                        "still unpruned (torch's `_compute_nparams_toprune`, Python's round: half to even, "
                        "round(2.5) == 2); an int amount is a count. Add up what each call prunes: rounding once at "
                        "the end, on 1 - (1 - a) * (1 - b), can be off by one.")
            return
        now, target, n = case["now"], case["target"], case["n"]
        what = written_call("second_amount", now, target)
        amount = as_number(got)
        if isinstance(amount, bool) or not isinstance(amount, float):
            fail(f"`{what}` is {show(amount)} (a {type_name(amount)}), expected a float.",
                 "a float amount is a fraction of the remaining weights; an int would be a count of weights.")
        hint = ("a float amount is a share of the weights still unpruned: after the first call 1 - now is left, and "
                "the second call must prune target - now of the whole layer, so now + (1 - now) * amount = target. "
                "Return the fraction as computed (a float in [0, 1]), not rounded.")
        if not 0.0 <= amount <= 1.0:
            fail(f"`{what}` is {show(amount)}, outside [0, 1].", hint)
        check_equal(f"entries of {n:,} pruned by amount={now}, then amount={what}",
                    torch_pruned_count(n, [now, amount]), round(target * n), hint)


def _adam_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor, weight_decay: float) -> None:
    """The reference: one Adam step (lr 1e-3) on the cross-entropy of the batch."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=weight_decay)
    opt.zero_grad()
    F.cross_entropy(model(x), y).backward()
    opt.step()


def _pruned_twin(kind: int) -> nn.Module:
    """A pruned LeNet on the CPU, the same every call: 0 the lesson's (trained, 80% global L1), 1 an untrained one
    with only fc1 pruned at random (seed 1), 2 the trained one with conv1 and fc1 pruned locally by L1."""
    if kind == 0:
        return prune_model(quiet_pretrained(), 0.8, scope="global")
    if kind == 1:
        def build() -> nn.Module:
            model = LeNet()
            prune.random_unstructured(model.fc1, "weight", amount=0.6)
            return model
        return quiet_build(build, 1)
    model = quiet_pretrained()
    prune.l1_unstructured(model.conv1, "weight", amount=0.5)
    prune.l1_unstructured(model.fc1, "weight", amount=0.3)
    return model


def _parameters(model: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of every parameter of ``model``, by name."""
    return {name: p.detach().clone() for name, p in model.named_parameters()}


@exercise(3, "train_step is one Adam step, call after call; moved_and_leaked counts, on any pruned model, what moved "
             "and what leaked")
class check_07_training_step(Check):
    """``train_step(model, x, y, weight_decay)`` takes one Adam step (lr 1e-3), however often it is called on the
    same model; ``moved_and_leaked(model, x, y, wd)`` takes one step on a pruned model and counts, among fc1's pruned
    entries, those of ``weight_orig`` that changed and those of the effective weight that are not zero.

    Introduced in solutions/07_accuracy_and_sparsity.ipynb.
    """

    def cases(self, gen: torch.Generator) -> list[dict]:
        data = quiet_data()
        x, y = data.train_x[:64], data.train_y[:64]  # the lesson's batch
        x2, y2 = torch.randn(16, 1, 28, 28, generator=gen), torch.randint(0, 10, (16,), generator=gen)
        start = _draw(gen, 64, len(data.train_y) - 96)
        x3, y3 = data.train_x[start:start + 32], data.train_y[start:start + 32]
        lesson = "the lesson's model (80% global L1)"
        steps = [
            {"label": f"{lesson}, x, y", "kind": 0, "batches": [(x, y)], "weight_decay": 0.0},
            {"label": f"{lesson}, x, y", "kind": 0, "batches": [(x, y)], "weight_decay": 0.01},
            {"label": f"{lesson}, called twice: on x[:32], y[:32], then on x[32:], y[32:]", "kind": 0,
             "batches": [(x[:32], y[:32]), (x[32:], y[32:])], "weight_decay": 0.0},
            {"label": f"the trained LeNet, conv1 and fc1 pruned by L1, called three times on training images "
                      f"{start}-{start + 31}", "kind": 2, "batches": [(x3, y3)] * 3, "weight_decay": 0.01},
        ]
        counts = [
            {"label": f"{lesson}, x, y", "kind": 0, "x": x, "y": y, "weight_decay": 0.0},
            {"label": f"{lesson}, x, y", "kind": 0, "x": x, "y": y, "weight_decay": 0.01},
            {"label": "an untrained LeNet with 60% of fc1 pruned at random, 16 random images", "kind": 1, "x": x2,
             "y": y2, "weight_decay": 0.1},
            {"label": f"the trained LeNet with conv1 (50%) and fc1 (30%) pruned by L1, training images "
                      f"{start}-{start + 31}", "kind": 2, "x": x3, "y": y3, "weight_decay": 0.0},
        ]
        return [{"step": case} for case in steps] + [{"count": case} for case in counts]

    def collect(self, case: dict, train_step: Callable[..., None],
                moved_and_leaked: Callable[[nn.Module, torch.Tensor, torch.Tensor, float], tuple[int, int]],
                x: torch.Tensor, y: torch.Tensor) -> Any:
        with torch.random.fork_rng(devices=[]), single_thread():  # one thread, as the judge: the same sums
            if "step" in case:
                step = case["step"]
                model = _pruned_twin(step["kind"])
                for images, labels in step["batches"]:
                    call(train_step, model, images, labels, step["weight_decay"])
                return _parameters(model)
            count = case["count"]
            got = call(moved_and_leaked, _pruned_twin(count["kind"]), count["x"], count["y"], count["weight_decay"])
            return tuple(got) if isinstance(got, list) else got

    def judge(self, case: dict, got: Any) -> None:
        if "step" in case:
            step = case["step"]
            model = _pruned_twin(step["kind"])
            with single_thread():
                for images, labels in step["batches"]:
                    _adam_step(model, images, labels, step["weight_decay"])
            calls = len(step["batches"])
            hint = ("create `torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=weight_decay)`, then "
                    "`opt.zero_grad()`, `F.cross_entropy(model(x), y).backward()` and `opt.step()`.")
            if calls > 1:
                hint = (f"train_step is called {calls} times on the same model here, and each call must be one step "
                        "on its own batch: gradients add up in `.grad` from one `backward()` to the next, so clear "
                        "them first with `opt.zero_grad()` (or `model.zero_grad()`). " + hint)
            what = f"after train_step(<{step['label']}>, weight_decay={step['weight_decay']})"
            if not isinstance(got, dict) or list(got) != [n for n, _ in model.named_parameters()]:
                fail(f"the parameters {what} are {show(list(got) if isinstance(got, dict) else got)}, expected "
                     f"{[n for n, _ in model.named_parameters()]}: train_step must not add, remove or rename any.",
                     hint)
            for name, p in model.named_parameters():
                check_equal(f"{name} {what}", got[name], p.detach(), hint)
            return
        count = case["count"]
        ref = _pruned_twin(count["kind"])
        pruned = ref.fc1.weight_mask == 0
        before = ref.fc1.weight_orig.detach().clone()
        with single_thread():
            _adam_step(ref, count["x"], count["y"], count["weight_decay"])
        moved = int((ref.fc1.weight_orig[pruned] != before[pruned]).sum())
        leaked = int(torch.count_nonzero((ref.fc1.weight_orig * ref.fc1.weight_mask)[pruned]))
        check_equal(f"moved_and_leaked(<{count['label']}>, weight_decay={count['weight_decay']})", got,
                    (moved, leaked),
                    "compare `weight_orig` after the step with the copy taken before, at the pruned entries "
                    "(`weight_orig[pruned] != before[pruned]`): moved. The weight the model computes with is "
                    "`weight_orig * weight_mask` (the `weight` attribute is only recomputed at the next forward): "
                    "count its non-zero pruned entries: leaked. Plain Adam gets a zero gradient there; weight decay "
                    "adds weight_decay * weight_orig to it. Count on the model you are given: the check passes "
                    "others.")


@exercise(4, "planned_sparsity predicts the share of all weights that per-layer amounts prune, as torch counts it")
class check_07_planned_sparsity(Check):
    """``planned_sparsity(sizes, amounts)``: the share of all entries that one ``l1_unstructured`` call per
    layer, with that layer's amount, prunes (``sizes``: entries per layer).

    Introduced in solutions/07_accuracy_and_sparsity.ipynb.
    """

    def cases(self, gen: torch.Generator) -> list[dict]:
        with torch.device("meta"):  # shapes only: no memory, no random numbers
            lenet_sizes = {name: m.weight.numel() for name, m in LeNet().named_children()}
        made = [({"a": 10, "b": 5}, {"a": 0.25, "b": 0.5}), ({"a": 10, "b": 7}, {"a": 3, "b": 0.5}),
                ({"a": 3}, {"a": 0.0}),
                (lenet_sizes, dict(zip(lenet_sizes, [0.2, 0.4, 0.9, 0.8, 0.3]))),
                (lenet_sizes, dict(zip(lenet_sizes, [0.25, 0.5, 0.9, 0.75, 0.5])))]
        sizes = {f"layer{i}": _draw(gen, 1, 3000) for i in range(_draw(gen, 2, 6))}
        made.append((sizes, {name: _draw(gen, 0, 100) / 100 for name in sizes}))
        return [{"sizes": sizes, "amounts": amounts} for sizes, amounts in made]

    def collect(self, case: dict, planned_sparsity: Callable[[dict[str, int], dict[str, float | int]], float]) -> Any:
        return call(planned_sparsity, dict(case["sizes"]), dict(case["amounts"]))

    def judge(self, case: dict, got: Any) -> None:
        sizes, amounts = case["sizes"], case["amounts"]
        pruned = 0
        for name, size in sizes.items():
            method = prune.L1Unstructured(amount=amounts[name])
            t = torch.arange(1.0, size + 1.0)
            pruned += int((method.compute_mask(t, torch.ones_like(t)) == 0).sum())
        check_equal(written_call("planned_sparsity", sizes, amounts), got, pruned / sum(sizes.values()),
                    "torch prunes round(amount * size) entries of a layer for a float amount (Python's round: "
                    "round(2.5) == 2) and exactly `amount` entries for an int; add up these counts over the layers "
                    "and divide by the total size. A big layer weighs more than a small one: do not average the "
                    "amounts.", rtol=1e-9, atol=1e-12)


def _prune_per_layer(model: nn.Module, amounts: Mapping[str, float | int]) -> nn.Module:
    """``prune.l1_unstructured`` on each layer's weight with that layer's amount."""
    for name, amount in amounts.items():
        prune.l1_unstructured(getattr(model, name), "weight", amount=amount)
    return model


def _percent_hint(amounts: Mapping[str, object], sizes: Mapping[str, int], layer: str | None = None) -> str | None:
    """A hint when amounts look like percentages (ints above 1): an int is a count of weights.

    It names ``layer`` when that layer's amount is such an int, else the largest one.
    """
    ints = {name: a for name, a in amounts.items() if isinstance(a, int) and not isinstance(a, bool) and a > 1}
    if not ints:
        return None
    name = layer if layer in ints else max(ints, key=ints.__getitem__)
    a = ints[name]
    return (f"an int amount is a count of weights, not a percentage: amounts[{name!r}] = {a} prunes {a} of "
            f"{name}'s {sizes[name]:,} weights, not {a}%. Write a fraction as a float: {a / 100!r}.")


@exercise(5, f"your per-layer amounts prune at least {TARGET:.0%} of the weights and keep more accuracy than global L1")
class check_07_per_layer_amounts(Check):
    """``amounts``: one L1 amount per layer of LeNet, pruning at least :data:`TARGET` of all conv and linear
    weights with a one-shot test accuracy at least that of global L1 pruning of as many weights.

    Introduced in solutions/07_accuracy_and_sparsity.ipynb.
    """

    def collect(self, case: dict, amounts: dict[str, float | int], data: object) -> Any:
        return amounts

    def judge(self, case: dict, got: Any) -> None:
        amounts = got
        require_answer("amounts", amounts, "{'conv1': ..., 'conv2': ..., 'fc1': ..., 'fc2': ..., 'fc3': ...}.",
                       "a dict of five amounts")
        check_equal("the keys of amounts", set(amounts) if isinstance(amounts, Mapping) else amounts, set(LAYERS),
                    "give one amount per layer, 0.0 for a layer you leave dense.")
        model, data = quiet_pretrained(), quiet_data()
        sizes = {name: getattr(model, name).weight.numel() for name in LAYERS}
        percent = _percent_hint(amounts, sizes)
        for name in LAYERS:
            try:
                entries_to_prune(amounts[name], sizes[name])
            except (TypeError, ValueError) as e:
                fail(f"amounts[{name!r}] is not a valid amount: {e}.", _percent_hint(amounts, sizes, name)
                     or "a float in [0, 1] is a fraction of the layer, an int a count of its weights.")
        _prune_per_layer(model, amounts)
        zeros, total = _masked_count(model)
        need = math.ceil(TARGET * total)
        if zeros < need:
            fail(f"your amounts prune {zeros:,} of {total:,} weights ({zeros / total:.2%}); the target needs at "
                 f"least {need:,} ({TARGET:.0%}).",
                 percent or "fc1 holds 80% of the weights: the target is reached mostly there and in fc2. Exercise "
                 "4's planned_sparsity tells you the share before you prune.")
        with torch.random.fork_rng(devices=[]):
            acc = evaluate(model, data)
            global_acc = evaluate(prune_model(quiet_pretrained(), zeros, scope="global"), data)
            if acc < global_acc:
                local_acc = evaluate(prune_model(quiet_pretrained(), zeros / total, scope="local"), data)
                fail(f"with your amounts ({zeros / total:.1%} pruned) the test accuracy is {acc:.1%}, below the "
                     f"{global_acc:.1%} of global L1 pruning of as many weights (local pruning of the same share in "
                     f"every layer: {local_acc:.1%}).",
                     "use the one-layer sensitivity scan of the lesson: conv1, conv2 and fc3 lose the most, so prune "
                     "them little, and take the weights from fc1 and fc2 (fc2 tolerates 80-90%).")
