"""Checks of lesson 06 · Pruning methods: local, global and custom (solutions/06_pruning_methods.ipynb)."""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import prune

from ..model import LeNet
from .core import (Check, by_hand, call, check_equal, check_mask, difference, exercise, fail, require_answer, show,
                   written_call)
from .plain import Opaque
from .reference import LAYERS, quiet_build, quiet_data, quiet_pretrained, tensor_holder


def _draw(gen: torch.Generator, low: int, high: int) -> int:
    """An int in [low, high] from ``gen``."""
    return int(torch.randint(low, high + 1, (1,), generator=gen))


def _draw_shape(gen: torch.Generator, dims: tuple[int, int], size: tuple[int, int]) -> tuple[int, ...]:
    """A shape of ``dims[0]`` to ``dims[1]`` dimensions, each of ``size[0]`` to ``size[1]``."""
    return tuple(_draw(gen, *size) for _ in range(_draw(gen, *dims)))


def _draw_amount(gen: torch.Generator, units: int) -> float | int:
    """A fraction with two decimals or a count of at most ``units``, one or the other at random."""
    return _draw(gen, 0, 100) / 100 if _draw(gen, 0, 1) else _draw(gen, 0, units)


def _torch_zeros(shape: tuple[int, ...], amount: float | int, dim: int | None) -> int:
    """How many entries of a weight of ``shape`` (no zeros in it) torch's L1 / Ln-structured mask zeroes."""
    t = torch.arange(1.0, math.prod(shape) + 1.0).reshape(shape)
    method = prune.L1Unstructured(amount) if dim is None else prune.LnStructured(amount, n=1, dim=dim)
    return int((method.compute_mask(t, torch.ones_like(t)) == 0).sum())


#: Exercise 1: (shape, amount, dim): the notebook's four calls a-d, then shapes and amounts it never uses.
ZERO_CASES = [((16, 6, 3, 3), 0.3, None), ((16, 6, 3, 3), 0.3, 0), ((16, 6, 3, 3), 2, 1), ((84, 120), 0.3, 1),
              ((6, 1, 3, 3), 0.5, 0), ((120, 400), 0.25, 0), ((16, 6, 3, 3), 0.75, 2), ((10, 84), 5, None),
              ((7,), 0.5, None), ((10, 3), 0.25, 0), ((6, 1, 3, 3), 1, 1)]


@exercise(1, "zeros_after counts the zeros unstructured and structured pruning leave, for any shape, amount and dim")
class check_06_zero_counts(Check):
    """``zeros_after(shape, amount, dim=None)``: the entries one pruning call zeroes in a weight of ``shape`` without
    zeros, unstructured for ``dim=None``, else structured along ``dim``.

    Introduced in solutions/06_pruning_methods.ipynb.
    """

    def cases(self, gen: torch.Generator) -> list[dict]:
        drawn = []
        for _ in range(4):  # unseen: a shape of 1 to 4 dims, unstructured or along a drawn dim, a fraction or a count
            shape = _draw_shape(gen, (1, 4), (1, 12))
            dim = None if len(shape) == 1 or _draw(gen, 0, 2) == 0 else _draw(gen, 0, len(shape) - 1)
            drawn.append((shape, _draw_amount(gen, math.prod(shape) if dim is None else shape[dim]), dim))
        return [{"shape": shape, "amount": amount, "dim": dim} for shape, amount, dim in ZERO_CASES + drawn]

    def collect(self, case: dict, zeros_after: Callable[..., int]) -> Any:
        kwargs = {} if case["dim"] is None else {"dim": case["dim"]}
        return call(zeros_after, case["shape"], case["amount"], **kwargs)

    def judge(self, case: dict, got: Any) -> None:
        shape, amount, dim = case["shape"], case["amount"], case["dim"]
        kwargs = {} if dim is None else {"dim": dim}
        check_equal(written_call("zeros_after", shape, amount, **kwargs), got, _torch_zeros(shape, amount, dim),
                    hint="a float amount is a fraction of the units, rounded with round() (4.8 -> 5, not 4; 2.5 -> 2); "
                         "an int amount is a count. Unstructured units are single entries; structured units are "
                         "slices along `dim`, each holding numel / shape[dim] entries: for (16, 6, 3, 3), dim=0 is a "
                         "filter of 6*3*3 entries, dim=1 an input channel of 16*3*3. Compare with the zeros of "
                         "`prune.LnStructured(amount, n=1, dim=dim).compute_mask(t, torch.ones_like(t))` for a t "
                         "without zeros.")


#: Exercise 2 must compute the mask itself: calling torch's structured pruning fails the check.
_LN_BY_HAND = ((prune.LnStructured, "compute_mask", "prune.LnStructured.compute_mask"),
               (prune, "ln_structured", "prune.ln_structured"))

_LN_HINT = ("the units are the slices of t along `dim`: how many to prune is `amount` if it is an int, else "
            "round(amount * t.shape[dim]). The norm of each slice: `torch.linalg.vector_norm(t, ord=n, dim=<every "
            "other dim>)`, one number per slice. Keep the t.shape[dim] - n_prune LARGEST norms "
            "(`torch.topk(norms, k).indices`) and set their slices of a `torch.zeros_like(t)` to 1 "
            "(`mask.index_fill_(dim, indices, 1.0)`); when slices tie at the cut, any of them will do. Compare with "
            "`prune.LnStructured(amount, n, dim).compute_mask(t, torch.ones_like(t))`.")


def _slice_norms(t: torch.Tensor, n: float, dim: int) -> torch.Tensor:
    """The Ln norm of each slice of ``t`` along ``dim``, repeated over the slice (what LnStructured ranks)."""
    other = [d for d in range(t.dim()) if d != dim]
    norms = torch.linalg.vector_norm(t.double(), ord=n, dim=other, keepdim=True)
    return norms.expand_as(t)


@exercise(2, "ln_structured_mask equals torch's LnStructured mask, for every n, dim and kind of amount, up to ties")
class check_06_ln_structured_mask(Check):
    """``ln_structured_mask(t, amount, n, dim)`` is the mask ``prune.ln_structured`` computes on an unpruned ``t``;
    among slices tied at the cut any choice is accepted.

    Introduced in solutions/06_pruning_methods.ipynb.
    """

    def cases(self, gen: torch.Generator) -> list[dict]:
        tiny = torch.tensor([[3.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0], [0.5, 0.5, 0.0, 0.0]])
        tied = torch.tensor([[1.0, 0.0], [0.0, -1.0], [0.5, 0.5], [2.0, 0.0]])  # three rows of L1 norm 1, one to prune
        model = quiet_pretrained()
        conv2, fc1 = model.conv2.weight.detach(), model.fc1.weight.detach()
        t, c, f = show(tiny), "conv2.weight", "fc1.weight"
        fixed = [(t, tiny, 2, 1, 0), (t, tiny, 2, 2, 0), (t, tiny, 0.5, 2, 1), (show(tied), tied, 1, 1, 0),
                 (c, conv2, 0.3, 2, 0), (c, conv2, 0.5, 1, 1), (f, fc1, 12, float("inf"), 0), (f, fc1, 0.0, 2, 1)]
        drawn = []
        for _ in range(2):  # unseen: a tensor of 2 to 4 dims, a dim, an n and an amount
            x = torch.randn(_draw_shape(gen, (2, 4), (1, 7)), generator=gen)
            dim = _draw(gen, 0, x.dim() - 1)
            n = (1, 2, 3, float("inf"))[_draw(gen, 0, 3)]
            drawn.append((f"a tensor of shape {tuple(x.shape)}", x, _draw_amount(gen, x.shape[dim]), n, dim))
        return [{"shown": shown, "t": x, "amount": amount, "n": n, "dim": dim}
                for shown, x, amount, n, dim in fixed + drawn]

    def collect(self, case: dict, ln_structured_mask: Callable[..., torch.Tensor]) -> Any:
        with by_hand(*_LN_BY_HAND, hint=_LN_HINT):
            return call(ln_structured_mask, case["t"].clone(), case["amount"], case["n"], case["dim"])

    def judge(self, case: dict, got: Any) -> None:
        t, amount, n, dim = case["t"], case["amount"], case["n"], case["dim"]
        expected = prune.LnStructured(amount, n, dim).compute_mask(t, torch.ones_like(t))
        what = f"ln_structured_mask({case['shown']}, amount={amount!r}, n={n!r}, dim={dim})"
        if isinstance(got, torch.Tensor) and got.shape == t.shape:
            per_slice = got.movedim(dim, 0).flatten(1)
            if not bool((per_slice == per_slice[:, :1]).all()):
                row = int((per_slice != per_slice[:, :1]).any(dim=1).nonzero()[0])
                fail(f"`{what}` is not constant over slice {row} along dim {dim}: structured pruning keeps or "
                     "prunes whole slices.", _LN_HINT)
        check_mask(what, got, expected, _slice_norms(t, n, dim), _LN_HINT, rtol=1e-6, score="slice norm")


def _global_cases() -> list[tuple[str, list[torch.Tensor], float | int]]:
    """(what, tensors, amount): two small hand-made tensors, and the trained LeNet's five weights."""
    model = quiet_pretrained()
    weights = [getattr(model, name).weight.detach() for name in LAYERS]
    small = [torch.tensor([[0.5, -0.1], [0.3, 2.0]]), torch.tensor([0.05, -0.4, 1.0])]
    return [("the two small tensors [[0.5, -0.1], [0.3, 2.0]] and [0.05, -0.4, 1.0]", small, 0.4),
            ("the five trained LeNet weights", weights, 0.5), ("the five trained LeNet weights", weights, 0.9),
            ("the five trained LeNet weights", weights, 1000)]


def _global_expected(tensors: list[torch.Tensor], amount: float | int) -> list[torch.Tensor]:
    """torch's own global L1 masks: prune.global_unstructured on modules holding copies of ``tensors``."""
    holders = [tensor_holder(t) for t in tensors]
    prune.global_unstructured([(h, "weight") for h in holders], pruning_method=prune.L1Unstructured, amount=amount)
    return [h.weight_mask for h in holders]


#: Exercise 3 must rank the tensors itself: calling torch's (global) L1 pruning fails the check.
_GLOBAL_BY_HAND = ((prune.L1Unstructured, "compute_mask", "prune.L1Unstructured.compute_mask"),
                   (prune, "global_unstructured", "prune.global_unstructured"),
                   (prune, "l1_unstructured", "prune.l1_unstructured"))

_GLOBAL_HINT = ("one ranking for all: `torch.cat([t.abs().flatten() for t in tensors])`, prune the n smallest of that "
                "vector (n = amount if it is an int, else round(amount * total)) with `torch.topk(scores, n, "
                "largest=False).indices`, then cut the mask back with `mask.split([t.numel() for t in tensors])` "
                "and `.view_as(t)`. Masks are float tensors of ones and zeros, like torch's. With ties at the cut a "
                "threshold (`scores <= kth value`) prunes every tied entry; any n of them will do.")

_REPORT_HINT = ("for each mask, the share of its entries that are 0: `1 - mask.mean().item()` or "
                "`(mask == 0).float().mean().item()`, one float per tensor, in order; and the largest |t| among the "
                "entries pruned anywhere: `all_abs[all_masks == 0].max().item()` with `all_abs` and `all_masks` "
                "concatenated from the flat tensors (not the smallest |t| kept, which is just above it). Read the "
                "masks you are given: they need not come from a ranking.")


def _draw_tensors(gen: torch.Generator) -> list[torch.Tensor]:
    """2 to 4 tensors of 1 to 3 dims, their entries drawn from a normal distribution."""
    return [torch.randn(_draw_shape(gen, (1, 3), (1, 6)), generator=gen) for _ in range(_draw(gen, 2, 4))]


@exercise(3, "global_l1_masks ranks all tensors together like global_unstructured; shares and threshold of any masks")
class check_06_global_l1(Check):
    """``global_l1_masks(tensors, amount)`` equals ``prune.global_unstructured(..., L1Unstructured, amount)`` up to
    ties; ``shares_and_threshold(tensors, masks)`` gives each tensor's pruned share and the largest |t| pruned.

    Introduced in solutions/06_pruning_methods.ipynb.
    """

    def cases(self, gen: torch.Generator) -> list[dict]:
        tied = [torch.tensor([0.2, -0.1, 0.1]), torch.tensor([[0.1, 0.5]])]  # three |w| = 0.1, two to prune
        drawn = _draw_tensors(gen)  # unseen: other tensors, another amount
        rankings = _global_cases() + [("the two tensors [0.2, -0.1, 0.1] and [[0.1, 0.5]]", tied, 2),
                                      (f"{len(drawn)} tensors of shapes {[tuple(t.shape) for t in drawn]}", drawn,
                                       _draw_amount(gen, sum(t.numel() for t in drawn)))]
        reports = [(f"{label} and their global L1 masks at {amount}", tensors, _global_expected(tensors, amount))
                   for label, tensors, amount in _global_cases()[:3]]
        hand = [torch.tensor([1.0, -2.0, 3.0]), torch.tensor([[0.5, 4.0]])]
        reports.append(("tensor([1.0, -2.0, 3.0]) and tensor([[0.5, 4.0]]) with the masks tensor([0., 1., 1.]) and "
                        "tensor([[1., 0.]])", hand, [torch.tensor([0.0, 1.0, 1.0]), torch.tensor([[1.0, 0.0]])]))
        drawn = _draw_tensors(gen)  # unseen: masks that come from no ranking, at least one 0 among them
        masks = [(torch.rand(t.shape, generator=gen) < 0.6).float() for t in drawn]
        masks[0].view(-1)[0] = 0.0
        reports.append((f"{len(drawn)} tensors of shapes {[tuple(t.shape) for t in drawn]} with drawn masks", drawn,
                        masks))
        return ([{"label": label, "tensors": tensors, "amount": amount} for label, tensors, amount in rankings]
                + [{"label": label, "tensors": tensors, "masks": masks} for label, tensors, masks in reports])

    def collect(self, case: dict, global_l1_masks: Callable[..., list[torch.Tensor]],
                shares_and_threshold: Callable[..., tuple[list[float], float]]) -> Any:
        tensors = [t.clone() for t in case["tensors"]]
        if "masks" in case:
            return call(shares_and_threshold, tensors, [m.clone() for m in case["masks"]])
        with by_hand(*_GLOBAL_BY_HAND, hint=_GLOBAL_HINT):
            return call(global_l1_masks, tensors, case["amount"])

    def judge(self, case: dict, got: Any) -> None:
        if "masks" in case:
            self._judge_report(case, got)
            return
        tensors, amount = case["tensors"], case["amount"]
        expected = _global_expected(tensors, amount)
        what = f"global_l1_masks({case['label']}, {amount})"
        if not isinstance(got, (list, tuple)) or len(got) != len(expected):
            fail(f"{what} is {show(got)}, expected a list of {len(expected)} masks, one per tensor.", _GLOBAL_HINT)
        for i, (mine, want) in enumerate(zip(got, expected)):
            if not isinstance(mine, torch.Tensor) or mine.shape != want.shape or mine.dtype != want.dtype:
                check_equal(f"{what}[{i}]", mine, want, _GLOBAL_HINT)  # says what differs: type, shape or dtype
        check_mask(f"the masks of {what}, concatenated", torch.cat([m.flatten() for m in got]),
                   torch.cat([m.flatten() for m in expected]), torch.cat([t.abs().flatten() for t in tensors]),
                   _GLOBAL_HINT + " A per-tensor ranking (local pruning) gives other masks.", score="|w|")

    @staticmethod
    def _judge_report(case: dict, got: Any) -> None:
        """``shares_and_threshold`` on the tensors and masks of ``case``."""
        tensors, masks = case["tensors"], case["masks"]
        what = f"shares_and_threshold({case['label']})"
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            fail(f"`{what}` is {show(got)}, expected a pair (shares, threshold).", _REPORT_HINT)
        shares = [float((m == 0).float().mean()) for m in masks]
        pruned = torch.cat([m.flatten() for m in masks]) == 0
        threshold = torch.cat([t.abs().flatten() for t in tensors])[pruned].max().item()
        check_equal(f"the shares of {what}", list(got[0]) if isinstance(got[0], tuple) else got[0], shares,
                    _REPORT_HINT)
        check_equal(f"the threshold of {what}", got[1], threshold, _REPORT_HINT, rtol=1e-6, atol=0.0, decimals=8)


#: Exercise 4's layer: nn.Linear(4, 3) with known weights from -0.55 to 0.55 (|w| = 0.25 twice, on the threshold).
THRESHOLD_WEIGHT = ((0.5, -0.05, 0.25, -0.3), (0.1, -0.25, 0.55, 0.0), (-0.4, 0.2, -0.15, 0.35))


def _threshold_layer(weight: torch.Tensor) -> nn.Linear:
    """An nn.Linear holding ``weight`` (its bias from a fixed seed)."""
    layer = quiet_build(lambda: nn.Linear(weight.shape[1], weight.shape[0]))
    with torch.no_grad():
        layer.weight.copy_(weight)
    return layer


_THRESHOLD_HINT = ("a pruning method is `class ThresholdPruning(prune.BasePruningMethod)` with `PRUNING_TYPE = "
                   "'unstructured'`, an `__init__(self, threshold)` that stores it, and `compute_mask(self, t, "
                   "default_mask)` returning `default_mask * (t.abs() >= self.threshold)`, in default_mask's dtype: "
                   "entries whose |score| is below the threshold become 0, |score| equal to it is kept, and every 0 "
                   "of default_mask stays 0.")


@exercise(4, "ThresholdPruning prunes |score| < threshold, keeps earlier zeros, and works through apply and a container")
class check_06_threshold_pruning(Check):
    """``ThresholdPruning(threshold)`` is an unstructured ``BasePruningMethod``; ``threshold_unstructured(module,
    name, threshold)`` applies it like torch's module-level functions.

    Introduced in solutions/06_pruning_methods.ipynb.
    """

    def cases(self, gen: torch.Generator) -> list[dict]:
        t = torch.tensor([0.5, -0.05, 0.1, -2.0, 0.0, 0.3, -0.1])
        default = torch.tensor([1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 1.0])
        # unseen: entries and thresholds on multiples of 1/8 (exact in float32), so that some |t| equal the threshold
        n = _draw(gen, 5, 16)
        drawn_t = torch.randint(-16, 17, (n,), generator=gen) / 8
        drawn_default = (torch.rand(n, generator=gen) < 0.8).float()
        shape = (_draw(gen, 2, 5), _draw(gen, 2, 5))
        numel = shape[0] * shape[1]  # distinct |w|, so that the L1 pruning before has no ties to break
        signs = torch.randint(0, 2, shape, generator=gen) * 2 - 1
        drawn_w = ((torch.randperm(numel, generator=gen).view(shape) + 1) * signs / 8).float()
        threshold, first = _draw(gen, 1, numel) / 8, _draw(gen, 0, numel - 1)
        mask_threshold = _draw(gen, 1, 12) / 8
        return [
            {"part": "compute_mask", "threshold": 0.1, "t": t, "default": default,
             "label": "ThresholdPruning(0.1).compute_mask(torch.tensor([0.5, -0.05, 0.1, -2.0, 0.0, 0.3, -0.1]), "
                      "default_mask=torch.tensor([1., 1., 1., 1., 1., 0., 1.]))"},
            {"part": "compute_mask", "threshold": mask_threshold, "t": drawn_t, "default": drawn_default,
             "label": written_call(f"ThresholdPruning({mask_threshold}).compute_mask", drawn_t,
                                   default_mask=drawn_default)},
            {"part": "apply", "weight": torch.tensor(THRESHOLD_WEIGHT), "threshold": 0.25, "first": None},
            {"part": "twice", "weight": torch.tensor(THRESHOLD_WEIGHT), "threshold": 0.25, "first": 3,
             "label": "layer.weight_mask after l1_unstructured(amount=3) then threshold_unstructured(threshold=0.25)"},
            {"part": "twice", "weight": drawn_w, "threshold": threshold, "first": first,
             "label": f"layer.weight_mask after l1_unstructured(amount={first}) then threshold_unstructured("
                      f"threshold={threshold}), for a layer with the weight {drawn_w.tolist()}"},
        ]

    def collect(self, case: dict, ThresholdPruning: type, threshold_unstructured: Callable[..., nn.Module]) -> Any:
        require_answer("ThresholdPruning", ThresholdPruning, _THRESHOLD_HINT, "your class")
        is_method = isinstance(ThresholdPruning, type) and issubclass(ThresholdPruning, prune.BasePruningMethod)
        pruning_type = getattr(ThresholdPruning, "PRUNING_TYPE", None) if is_method else None
        got = {"is_method": is_method, "shown": show(ThresholdPruning), "pruning_type": pruning_type}
        if not (is_method and type(pruning_type) is str and pruning_type == "unstructured"):
            return got  # the judge fails on these: running the method would only raise inside torch
        if case["part"] == "compute_mask":
            method = call(ThresholdPruning, case["threshold"])
            got["mask"] = call(method.compute_mask, case["t"].clone(), default_mask=case["default"].clone())
            return got
        layer = _threshold_layer(case["weight"])
        if case["first"] is not None:
            prune.l1_unstructured(layer, "weight", amount=case["first"])
        returned = call(threshold_unstructured, layer, "weight", threshold=case["threshold"])
        got.update(returned_layer=returned is layer,
                   returned=Opaque(type(returned).__name__) if isinstance(returned, nn.Module) else returned,
                   mask=getattr(layer, "weight_mask", None), weight=layer.weight)
        return got

    def judge(self, case: dict, got: Any) -> None:
        if not got["is_method"]:
            fail(f"ThresholdPruning is {got['shown']}, not a subclass of prune.BasePruningMethod.", _THRESHOLD_HINT)
        problem = difference("ThresholdPruning.PRUNING_TYPE", got["pruning_type"], "unstructured")
        if problem is not None:  # a missing PRUNING_TYPE is a wrong answer, not a placeholder
            fail(problem, "it prunes single entries: torch then hands compute_mask only the entries still unpruned, "
                          "as a 1-D tensor, when the parameter was pruned before.")
        threshold = case["threshold"]
        if case["part"] == "compute_mask":
            t, default = case["t"], case["default"]
            check_equal(case["label"], got["mask"], default * (t.abs() >= threshold).to(default.dtype), _THRESHOLD_HINT)
            return
        w = case["weight"]
        call_text = f"threshold_unstructured(layer, 'weight', threshold={threshold})"
        if case["part"] == "apply":  # through apply on a module: weight_orig, weight_mask and the hook
            if not got["returned_layer"]:
                fail(f"{call_text} returned {show(got['returned'])}, not the module.",
                     "call `ThresholdPruning.apply(module, name, threshold=threshold)` (it does the "
                     "reparametrization) and `return module`, as torch's prune.l1_unstructured does.")
            if got["mask"] is None:
                fail(f"after {call_text} the layer has no weight_mask.",
                     "the classmethod `ThresholdPruning.apply(module, name, threshold=threshold)` registers "
                     "weight_orig, weight_mask and the forward-pre-hook.")
            check_equal(f"layer.weight_mask after {call_text}", got["mask"], (w.abs() >= threshold).float(),
                        _THRESHOLD_HINT)
            check_equal(f"layer.weight after {call_text}", got["weight"], w * (w.abs() >= threshold),
                        _THRESHOLD_HINT)
            return
        # pruning twice: a PruningContainer hands compute_mask the 1-D vector of the entries still unpruned
        layer = _threshold_layer(w)
        prune.l1_unstructured(layer, "weight", amount=case["first"])
        what = case["label"]
        if got["mask"] is None:
            fail(f"{what}: the layer has no weight_mask any more.", _THRESHOLD_HINT)
        check_equal(what, got["mask"], layer.weight_mask * (w.abs() >= threshold), _THRESHOLD_HINT)


def _channel_activation(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Reference: the mean ReLU output of each conv2 filter of ``model`` on the images ``x`` (a forward hook)."""
    outputs: list[torch.Tensor] = []
    handle = model.conv2.register_forward_hook(lambda module, args, out: outputs.append(out))
    try:
        with torch.no_grad():
            model(x)
    finally:
        handle.remove()
    return F.relu(outputs[0]).mean(dim=(0, 2, 3))


def activation_scores() -> torch.Tensor:
    """The scores of exercise 5, as the notebook's cell computes them: the trained LeNet's conv2 activations on
    the first 256 training images, expanded to conv2.weight's shape (tests/test_checks.py ties it to the cell).

    Introduced in solutions/06_pruning_methods.ipynb.
    """
    return _channel_activation(quiet_pretrained(), quiet_data().train_x[:256])[:, None, None, None].expand(16, 6, 3, 3)


def _net(case: dict) -> nn.Module:
    """The model of a case of exercise 5: the trained LeNet, or an untrained one from a seed."""
    return quiet_pretrained() if case["seed"] is None else quiet_build(LeNet, case["seed"])


@exercise(5, "channel_activation measures each conv2 filter on any model and images; ln_structured prunes by it")
class check_06_activation_scores(Check):
    """``channel_activation(model, x)`` is each conv2 filter's mean ReLU output on ``x``; ``scores`` it on the first
    256 training images expanded to conv2.weight's shape, ``model.conv2`` pruned by ``ln_structured(amount=0.25,
    dim=0)`` on them.

    Introduced in solutions/06_pruning_methods.ipynb.
    """

    def cases(self, gen: torch.Generator) -> list[dict]:
        x = quiet_data().train_x
        seed, start, n = _draw(gen, 2, 2**31), _draw(gen, 0, len(x) - 64), _draw(gen, 16, 64)
        return [{"label": "lenet.pretrained(), data.train_x[:256]", "seed": None, "x": x[:256]},
                {"label": "lenet.pretrained(), data.test_x[:100]", "seed": None, "x": quiet_data().test_x[:100]},
                {"label": "an untrained LeNet (seed 1), data.train_x[256:320]", "seed": 1, "x": x[256:320]},
                {"label": f"an untrained LeNet (seed {seed}), data.train_x[{start}:{start + n}]", "seed": seed,
                 "x": x[start:start + n]},
                {"label": "the notebook's scores and model"}]

    def collect(self, case: dict, channel_activation: Callable[[nn.Module, torch.Tensor], torch.Tensor],
                scores: torch.Tensor, model: nn.Module, data: object) -> Any:
        if "x" not in case:
            return {"scores": scores, "mask": getattr(model.conv2, "weight_mask", None)}
        net = _net(case)
        activation = call(channel_activation, net, case["x"].clone())
        return {"activation": activation, "hook_left": bool(net.conv2._forward_hooks)}

    def judge(self, case: dict, got: Any) -> None:
        if "x" in case:
            label = case["label"]
            if got["hook_left"]:
                fail(f"channel_activation({label}) left a forward hook on model.conv2: every later forward would "
                     "record its output again.", "keep the handle `register_forward_hook` returns and call "
                     "`handle.remove()` after the forward.")
            check_equal(f"channel_activation({label})", got["activation"], _channel_activation(_net(case), case["x"]),
                        rtol=1e-4, decimals=4,
                        hint="capture conv2's output with `model.conv2.register_forward_hook(lambda module, args, out: "
                             "outputs.append(out))` during one forward of `x` under `torch.no_grad()` (remove the "
                             "handle after), apply ReLU (`F.relu`), then average over the images and the pixels: "
                             "`.mean(dim=(0, 2, 3))`, one number per filter. Use the model and the images you are "
                             "given: the check passes others too.")
            return
        scores = got["scores"]
        check_equal("scores", scores, activation_scores(), rtol=1e-4, decimals=4,
                    hint="importance_scores must have the weight's shape (16, 6, 3, 3), with every entry of filter f "
                         "equal to channel_act[f]: `channel_act[:, None, None, None].expand_as(model.conv2.weight)`.")
        if got["mask"] is None:
            fail("model.conv2 is not pruned (it has no weight_mask).",
                 "call `prune.ln_structured(model.conv2, 'weight', amount=0.25, n=1, dim=0, importance_scores=scores)`.")
        reference = quiet_pretrained()  # torch's mask from the learner's own scores
        prune.ln_structured(reference.conv2, "weight", amount=0.25, n=1, dim=0, importance_scores=scores.clone())
        zeroed = (reference.conv2.weight_mask.sum(dim=(1, 2, 3)) == 0).nonzero().flatten().tolist()
        check_equal("model.conv2.weight_mask", got["mask"], reference.conv2.weight_mask,
                    hint=f"pruned by your scores, 4 whole filters go: {zeroed}, the 4 with the lowest mean activation. "
                         "Pass `importance_scores=scores` to `prune.ln_structured(model.conv2, 'weight', amount=0.25, "
                         "n=1, dim=0, ...)` on a fresh `lenet.pretrained()`: without it, ln_structured ranks the weights.")
