"""Checks of lesson 07 · What pruning costs in accuracy (solutions/07_accuracy_and_sparsity.ipynb)."""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import prune

from ..checkpoints import pretrained
from ..data import MNIST
from ..inspection import prunable_parameters
from ..model import LeNet
from ..pruning import entries_to_prune, prune_model
from ..training import evaluate
from .core import as_number, call, check_equal, describe_call, exercise, fail, require_answer, show, type_name
from .reference import LAYERS, torch_pruned_count

#: Exercise 5: the share of all conv and linear weights the per-layer amounts must prune.
TARGET = 0.85


def _masked_count(model: nn.Module) -> tuple[int, int]:
    """(entries whose ``weight_mask`` is 0, all entries) over the conv and linear weights of ``model``."""
    zeros = total = 0
    for m, name in prunable_parameters(model):
        total += getattr(m, name).numel()
        mask = getattr(m, name + "_mask", None)
        if mask is not None:
            zeros += int((mask == 0).sum())
    return zeros, total


@exercise(1, "global_sparsity_from_masks counts the masked weights of all conv and linear layers together")
def check_07_global_sparsity(global_sparsity_from_masks: Callable[[nn.Module], float]) -> None:
    """``global_sparsity_from_masks(model)``: zeros of all ``weight_mask`` buffers / all conv and linear weights.

    Introduced in solutions/07_accuracy_and_sparsity.ipynb.
    """
    __tracebackhide__ = True
    hint = ("divide the zeros of all `weight_mask` buffers by the entries of all conv and linear weights, "
            "pruned or not: a layer without a `weight_mask` keeps all its weights but still counts in the "
            "total, and a big layer weighs more than a small one (do not average the layers' shares). "
            "`lenet.global_sparsity(model)` gives the same number from the zeros of `weight`.")
    with torch.random.fork_rng():
        torch.manual_seed(0)
        dense = LeNet()
        only_fc3 = LeNet()
        prune.l1_unstructured(only_fc3.fc3, "weight", amount=0.5)
        global90 = prune_model(LeNet(), 0.9, scope="global")
        mixed = LeNet()
        prune.random_unstructured(mixed.conv1, "weight", amount=0.5)
        prune.l1_unstructured(mixed.fc1, "weight", amount=0.9)
        prune.l1_unstructured(mixed.fc1, "weight", amount=0.5)
    for label, model in [("a LeNet with only fc3 pruned, 50%", only_fc3), ("an unpruned LeNet", dense),
                         ("a LeNet pruned 90% globally", global90),
                         ("a LeNet with conv1 pruned 50% and fc1 pruned twice", mixed)]:
        zeros, total = _masked_count(model)
        check_equal(f"global_sparsity_from_masks(<{label}>)", call(global_sparsity_from_masks, model),
                    zeros / total, hint)


#: Exercise 2: (fraction pruned now, target, weights in the layer) for second_amount; the notebook shows 60% -> 90%.
SECOND_CASES = [(0.6, 0.9, 1000), (0.3, 0.6, 48000), (0.5, 0.75, 100), (0.2, 0.9, 10080), (0.25, 0.5, 864),
                (0.4, 0.7, 200)]


@exercise(2, "pruned_after counts like torch when a layer is pruned again, and second_amount reaches any target")
def check_07_prune_again(pruned_after: Callable[[int, list[float | int]], int],
                         second_amount: Callable[[float, float], float]) -> None:
    """``pruned_after(n, amounts)``: entries pruned after one ``l1_unstructured`` call per amount;
    ``second_amount(now, target)``: the float amount of a second call that takes a layer pruned ``now`` to ``target``.

    Introduced in solutions/07_accuracy_and_sparsity.ipynb.
    """
    __tracebackhide__ = True
    hint = ("each call prunes round(amount * remaining) more entries, where remaining is the number still "
            "unpruned (torch's `_compute_nparams_toprune`, Python's round: half to even, round(2.5) == 2); "
            "an int amount is a count. Add up what each call prunes: rounding once at the end, on "
            "1 - (1 - a) * (1 - b), can be off by one.")
    for n, amounts in [(10, [0.25]), (10, [0.5, 0.5]), (54, [0.6, 0.5]), (100, [0.3, 0.3, 0.3]),
                       (7, [3, 0.5]), (864, [0.5, 0.5, 0.5]), (48000, [0.5, 0.5, 11 / 12])]:
        check_equal(describe_call(pruned_after, n, amounts), call(pruned_after, n, amounts),
                    torch_pruned_count(n, amounts), hint)
    hint = ("a float amount is a share of the weights still unpruned: after the first call 1 - now is left, and the "
            "second call must prune target - now of the whole layer, so now + (1 - now) * amount = target. "
            "Return the fraction as computed (a float in [0, 1]), not rounded.")
    for now, target, n in SECOND_CASES:
        what = describe_call(second_amount, now, target)
        amount = as_number(call(second_amount, now, target))
        if isinstance(amount, bool) or not isinstance(amount, float):
            fail(f"`{what}` is {show(amount)} (a {type_name(amount)}), expected a float.",
                 "a float amount is a fraction of the remaining weights; an int would be a count of weights.")
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


def _pruned_80_percent(device: torch.device) -> nn.Module:
    """The trained LeNet with 80% of its conv and linear weights pruned by global L1."""
    return prune_model(pretrained(device), 0.8, scope="global")


def _pruned_twin(kind: int, device: torch.device) -> nn.Module:
    """A pruned LeNet, the same every call: 0 the lesson's (trained, 80% global L1), 1 an untrained one with only fc1
    pruned at random (seed 1), 2 the trained one with conv1 and fc1 pruned locally by L1."""
    with torch.random.fork_rng():
        if kind == 0:
            return _pruned_80_percent(device)
        if kind == 1:
            torch.manual_seed(1)
            model = LeNet().to(device)
            prune.random_unstructured(model.fc1, "weight", amount=0.6)
            return model
        model = pretrained(device)
        prune.l1_unstructured(model.conv1, "weight", amount=0.5)
        prune.l1_unstructured(model.fc1, "weight", amount=0.3)
        return model


@exercise(3, "train_step is one Adam step; moved_and_leaked counts, on any pruned model, what moved and what leaked")
def check_07_training_step(train_step: Callable[..., None],
                           moved_and_leaked: Callable[[nn.Module, torch.Tensor, torch.Tensor, float], tuple[int, int]],
                           x: torch.Tensor, y: torch.Tensor) -> None:
    """``train_step(model, x, y, weight_decay)`` takes one Adam step (lr 1e-3); ``moved_and_leaked(model, x, y, wd)``
    takes one step on a pruned model and counts, among fc1's pruned entries, those of ``weight_orig`` that changed
    and those of the effective weight that are not zero.

    Introduced in solutions/07_accuracy_and_sparsity.ipynb.
    """
    __tracebackhide__ = True
    step_hint = ("create `torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=weight_decay)`, then "
                 "`opt.zero_grad()`, `F.cross_entropy(model(x), y).backward()` and `opt.step()`.")
    gen = torch.Generator().manual_seed(2)
    x2 = torch.randn(16, 1, 28, 28, generator=gen).to(x.device)
    y2 = torch.randint(0, 10, (16,), generator=gen).to(y.device)
    cases = [("the lesson's model (80% global L1), x, y", 0, x, y, 0.0),
             ("the lesson's model (80% global L1), x, y", 0, x, y, 0.01),
             ("an untrained LeNet with 60% of fc1 pruned at random, 16 random images", 1, x2, y2, 0.1),
             ("the trained LeNet with conv1 (50%) and fc1 (30%) pruned by L1, x[:16], y[:16]", 2, x[:16], y[:16], 0.0)]
    with torch.random.fork_rng():
        for weight_decay in (0.0, 0.01):
            mine, ref = _pruned_twin(0, x.device), _pruned_twin(0, x.device)
            call(train_step, mine, x, y, weight_decay)
            _adam_step(ref, x, y, weight_decay)
            for (name, p), q in zip(mine.named_parameters(), ref.parameters()):
                check_equal(f"{name} after train_step(model, x, y, weight_decay={weight_decay})", p.detach(),
                            q.detach(), step_hint)
        hint = ("compare `weight_orig` after the step with the copy taken before, at the pruned entries "
                "(`weight_orig[pruned] != before[pruned]`): moved. The weight the model computes with is "
                "`weight_orig * weight_mask` (the `weight` attribute is only recomputed at the next forward): "
                "count its non-zero pruned entries: leaked. Plain Adam gets a zero gradient there; weight decay "
                "adds weight_decay * weight_orig to it. Count on the model you are given: the check passes others.")
        for label, kind, images, labels, weight_decay in cases:
            ref = _pruned_twin(kind, x.device)
            pruned = ref.fc1.weight_mask == 0
            before = ref.fc1.weight_orig.detach().clone()
            _adam_step(ref, images, labels, weight_decay)
            moved = int((ref.fc1.weight_orig[pruned] != before[pruned]).sum())
            leaked = int(torch.count_nonzero((ref.fc1.weight_orig * ref.fc1.weight_mask)[pruned]))
            got = call(moved_and_leaked, _pruned_twin(kind, x.device), images, labels, weight_decay)
            check_equal(f"moved_and_leaked(<{label}>, weight_decay={weight_decay})",
                        tuple(got) if isinstance(got, list) else got, (moved, leaked), hint)


@exercise(4, "planned_sparsity predicts the share of all weights that per-layer amounts prune, as torch counts it")
def check_07_planned_sparsity(planned_sparsity: Callable[[dict[str, int], dict[str, float | int]], float]) -> None:
    """``planned_sparsity(sizes, amounts)``: the share of all entries that one ``l1_unstructured`` call per
    layer, with that layer's amount, prunes (``sizes``: entries per layer).

    Introduced in solutions/07_accuracy_and_sparsity.ipynb.
    """
    __tracebackhide__ = True
    hint = ("torch prunes round(amount * size) entries of a layer for a float amount (Python's round: "
            "round(2.5) == 2) and exactly `amount` entries for an int; add up these counts over the layers and "
            "divide by the total size. A big layer weighs more than a small one: do not average the amounts.")
    with torch.device("meta"):  # shapes only: no memory, no random numbers
        lenet_sizes = {name: m.weight.numel() for name, m in LeNet().named_children()}
    cases = [({"a": 10, "b": 5}, {"a": 0.25, "b": 0.5}), ({"a": 10, "b": 7}, {"a": 3, "b": 0.5}),
             ({"a": 3}, {"a": 0.0}),
             (lenet_sizes, dict(zip(lenet_sizes, [0.2, 0.4, 0.9, 0.8, 0.3]))),
             (lenet_sizes, dict(zip(lenet_sizes, [0.25, 0.5, 0.9, 0.75, 0.5])))]
    for sizes, amounts in cases:
        pruned = 0
        for name, size in sizes.items():
            method = prune.L1Unstructured(amount=amounts[name])
            t = torch.arange(1.0, size + 1.0)
            pruned += int((method.compute_mask(t, torch.ones_like(t)) == 0).sum())
        expected = pruned / sum(sizes.values())
        check_equal(describe_call(planned_sparsity, sizes, amounts), call(planned_sparsity, dict(sizes), dict(amounts)),
                    expected, hint, rtol=1e-9, atol=1e-12)


def _prune_per_layer(model: nn.Module, amounts: Mapping[str, float | int]) -> nn.Module:
    """``prune.l1_unstructured`` on each layer's weight with that layer's amount."""
    for name, amount in amounts.items():
        prune.l1_unstructured(getattr(model, name), "weight", amount=amount)
    return model


@exercise(5, f"your per-layer amounts prune at least {TARGET:.0%} of the weights and keep more accuracy than global L1")
def check_07_per_layer_amounts(amounts: dict[str, float | int], data: MNIST) -> None:
    """``amounts``: one L1 amount per layer of LeNet, pruning at least :data:`TARGET` of all conv and linear
    weights with a one-shot test accuracy at least that of global L1 pruning of as many weights.

    Introduced in solutions/07_accuracy_and_sparsity.ipynb.
    """
    __tracebackhide__ = True
    require_answer("amounts", amounts, "{'conv1': ..., 'conv2': ..., 'fc1': ..., 'fc2': ..., 'fc3': ...}.",
                   "a dict of five amounts")
    with torch.random.fork_rng():
        model = pretrained()
        check_equal("the keys of amounts", set(amounts) if isinstance(amounts, Mapping) else amounts, set(LAYERS),
                    "give one amount per layer, 0.0 for a layer you leave dense.")
        for name in LAYERS:
            try:
                entries_to_prune(amounts[name], getattr(model, name).weight.numel())
            except (TypeError, ValueError) as e:
                fail(f"amounts[{name!r}] is not a valid amount: {e}.", "a float in [0, 1] is a fraction of the "
                     "layer, an int a count of its weights.")
        _prune_per_layer(model, amounts)
        zeros, total = _masked_count(model)
        need = math.ceil(TARGET * total)
        if zeros < need:
            fail(f"your amounts prune {zeros:,} of {total:,} weights ({zeros / total:.2%}); the target needs at "
                 f"least {need:,} ({TARGET:.0%}).",
                 "fc1 holds 80% of the weights: the target is reached mostly there and in fc2. Exercise 4's "
                 "planned_sparsity tells you the share before you prune.")
        acc = evaluate(model, data)
        global_acc = evaluate(prune_model(pretrained(), zeros, scope="global"), data)
        if acc < global_acc:
            local_acc = evaluate(prune_model(pretrained(), zeros / total, scope="local"), data)
            fail(f"with your amounts ({zeros / total:.1%} pruned) the test accuracy is {acc:.1%}, below the "
                 f"{global_acc:.1%} of global L1 pruning of as many weights (local pruning of the same share in "
                 f"every layer: {local_acc:.1%}).",
                 "use the one-layer sensitivity scan of the lesson: conv1, conv2 and fc3 lose the most, so prune "
                 "them little, and take the weights from fc1 and fc2 (fc2 tolerates 80-90%).")
