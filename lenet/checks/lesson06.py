"""Checks of lesson 06 · Pruning methods: local, global and custom (solutions/06_pruning_methods.ipynb)."""
from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import prune

from ..data import MNIST
from ..model import LeNet
from .core import (by_hand, call, check_equal, check_mask, describe_call, difference, exercise, fail, require_answer,
                   show)
from .reference import LAYERS, quiet_build, quiet_pretrained, tensor_holder


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
def check_06_zero_counts(zeros_after: Callable[..., int]) -> None:
    """``zeros_after(shape, amount, dim=None)``: the entries one pruning call zeroes in a weight of ``shape`` without
    zeros, unstructured for ``dim=None``, else structured along ``dim``.

    Introduced in solutions/06_pruning_methods.ipynb.
    """
    __tracebackhide__ = True
    hint = ("a float amount is a fraction of the units, rounded with round() (4.8 -> 5, not 4; 2.5 -> 2); an int "
            "amount is a count. Unstructured units are single entries; structured units are slices along `dim`, "
            "each holding numel / shape[dim] entries: for (16, 6, 3, 3), dim=0 is a filter of 6*3*3 entries, dim=1 "
            "an input channel of 16*3*3. Compare with the zeros of `prune.LnStructured(amount, n=1, dim=dim)"
            ".compute_mask(t, torch.ones_like(t))` for a t without zeros.")
    for shape, amount, dim in ZERO_CASES:
        kwargs = {} if dim is None else {"dim": dim}
        check_equal(describe_call(zeros_after, shape, amount, **kwargs), call(zeros_after, shape, amount, **kwargs),
                    _torch_zeros(shape, amount, dim), hint)


def _ln_cases() -> list[tuple[str, torch.Tensor, float | int, float, int]]:
    """(name, tensor, amount, n, dim): a hand-made tensor where n decides, and the trained LeNet's weights."""
    tiny = torch.tensor([[3.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0], [0.5, 0.5, 0.0, 0.0]])
    tied = torch.tensor([[1.0, 0.0], [0.0, -1.0], [0.5, 0.5], [2.0, 0.0]])  # three rows of L1 norm 1, one to prune
    model = quiet_pretrained()
    conv2, fc1 = model.conv2.weight.detach(), model.fc1.weight.detach()
    t, c, f = show(tiny), "conv2.weight", "fc1.weight"
    return [(t, tiny, 2, 1, 0), (t, tiny, 2, 2, 0), (t, tiny, 0.5, 2, 1), (show(tied), tied, 1, 1, 0),
            (c, conv2, 0.3, 2, 0), (c, conv2, 0.5, 1, 1), (f, fc1, 12, float("inf"), 0), (f, fc1, 0.0, 2, 1)]


#: Exercise 2 must compute the mask itself: calling torch's structured pruning fails the check.
_LN_BY_HAND = ((prune.LnStructured, "compute_mask", "prune.LnStructured.compute_mask"),
               (prune, "ln_structured", "prune.ln_structured"))


def _slice_norms(t: torch.Tensor, n: float, dim: int) -> torch.Tensor:
    """The Ln norm of each slice of ``t`` along ``dim``, repeated over the slice (what LnStructured ranks)."""
    other = [d for d in range(t.dim()) if d != dim]
    norms = torch.linalg.vector_norm(t.double(), ord=n, dim=other, keepdim=True)
    return norms.expand_as(t)


@exercise(2, "ln_structured_mask equals torch's LnStructured mask, for every n, dim and kind of amount, up to ties")
def check_06_ln_structured_mask(ln_structured_mask: Callable[..., torch.Tensor]) -> None:
    """``ln_structured_mask(t, amount, n, dim)`` is the mask ``prune.ln_structured`` computes on an unpruned ``t``;
    among slices tied at the cut any choice is accepted.

    Introduced in solutions/06_pruning_methods.ipynb.
    """
    __tracebackhide__ = True
    hint = ("the units are the slices of t along `dim`: how many to prune is `amount` if it is an int, else "
            "round(amount * t.shape[dim]). The norm of each slice: `torch.linalg.vector_norm(t, ord=n, dim=<every "
            "other dim>)`, one number per slice. Keep the t.shape[dim] - n_prune LARGEST norms "
            "(`torch.topk(norms, k).indices`) and set their slices of a `torch.zeros_like(t)` to 1 "
            "(`mask.index_fill_(dim, indices, 1.0)`); when slices tie at the cut, any of them will do. Compare with "
            "`prune.LnStructured(amount, n, dim).compute_mask(t, torch.ones_like(t))`.")
    for shown, t, amount, n, dim in _ln_cases():
        expected = prune.LnStructured(amount, n, dim).compute_mask(t, torch.ones_like(t))
        with by_hand(*_LN_BY_HAND, hint=hint):
            got = call(ln_structured_mask, t.clone(), amount, n, dim)
        what = f"ln_structured_mask({shown}, amount={amount!r}, n={n!r}, dim={dim})"
        if isinstance(got, torch.Tensor) and got.shape == t.shape:
            per_slice = got.detach().cpu().movedim(dim, 0).flatten(1)
            if not bool((per_slice == per_slice[:, :1]).all()):
                row = int((per_slice != per_slice[:, :1]).any(dim=1).nonzero()[0])
                fail(f"`{what}` is not constant over slice {row} along dim {dim}: structured pruning keeps or "
                     "prunes whole slices.", hint)
        check_mask(what, got, expected, _slice_norms(t, n, dim), hint, rtol=1e-6, score="slice norm")


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


def _report_cases() -> list[tuple[str, list[torch.Tensor], list[torch.Tensor]]]:
    """(what, tensors, masks) for shares_and_threshold: torch's global masks, and a hand-made pair of masks."""
    cases = []
    for label, tensors, amount in _global_cases()[:3]:
        cases.append((f"{label} and their global L1 masks at {amount}", tensors, _global_expected(tensors, amount)))
    hand = [torch.tensor([1.0, -2.0, 3.0]), torch.tensor([[0.5, 4.0]])]
    cases.append(("tensor([1.0, -2.0, 3.0]) and tensor([[0.5, 4.0]]) with the masks tensor([0., 1., 1.]) and "
                  "tensor([[1., 0.]])", hand, [torch.tensor([0.0, 1.0, 1.0]), torch.tensor([[1.0, 0.0]])]))
    return cases


@exercise(3, "global_l1_masks ranks all tensors together like global_unstructured; shares and threshold of any masks")
def check_06_global_l1(global_l1_masks: Callable[..., list[torch.Tensor]],
                       shares_and_threshold: Callable[..., tuple[list[float], float]]) -> None:
    """``global_l1_masks(tensors, amount)`` equals ``prune.global_unstructured(..., L1Unstructured, amount)`` up to
    ties; ``shares_and_threshold(tensors, masks)`` gives each tensor's pruned share and the largest |t| pruned.

    Introduced in solutions/06_pruning_methods.ipynb.
    """
    __tracebackhide__ = True
    hint = ("one ranking for all: `torch.cat([t.abs().flatten() for t in tensors])`, prune the n smallest of that "
            "vector (n = amount if it is an int, else round(amount * total)) with `torch.topk(scores, n, "
            "largest=False).indices`, then cut the mask back with `mask.split([t.numel() for t in tensors])` "
            "and `.view_as(t)`. Masks are float tensors of ones and zeros, like torch's. With ties at the cut a "
            "threshold (`scores <= kth value`) prunes every tied entry; any n of them will do.")
    tied = [torch.tensor([0.2, -0.1, 0.1]), torch.tensor([[0.1, 0.5]])]  # three |w| = 0.1, two to prune
    cases = _global_cases() + [("the two tensors [0.2, -0.1, 0.1] and [[0.1, 0.5]]", tied, 2)]
    for label, tensors, amount in cases:
        with by_hand(*_GLOBAL_BY_HAND, hint=hint):
            got = call(global_l1_masks, [t.clone() for t in tensors], amount)
        expected = _global_expected(tensors, amount)
        what = f"global_l1_masks({label}, {amount})"
        if not isinstance(got, (list, tuple)) or len(got) != len(expected):
            fail(f"{what} is {show(got)}, expected a list of {len(expected)} masks, one per tensor.", hint)
        for i, (mine, want) in enumerate(zip(got, expected)):
            if not isinstance(mine, torch.Tensor) or mine.shape != want.shape or mine.dtype != want.dtype:
                check_equal(f"{what}[{i}]", mine, want, hint)  # says what differs: type, shape or dtype
        check_mask(f"the masks of {what}, concatenated", torch.cat([m.flatten() for m in got]),
                   torch.cat([m.flatten() for m in expected]), torch.cat([t.abs().flatten() for t in tensors]),
                   hint + " A per-tensor ranking (local pruning) gives other masks.", score="|w|")
    hint = ("for each mask, the share of its entries that are 0: `1 - mask.mean().item()` or "
            "`(mask == 0).float().mean().item()`, one float per tensor, in order; and the largest |t| among the "
            "entries pruned anywhere: `all_abs[all_masks == 0].max().item()` with `all_abs` and `all_masks` "
            "concatenated from the flat tensors (not the smallest |t| kept, which is just above it). Read the "
            "masks you are given: they need not come from a ranking.")
    for label, tensors, masks in _report_cases():
        got = call(shares_and_threshold, [t.clone() for t in tensors], [m.clone() for m in masks])
        what = f"shares_and_threshold({label})"
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            fail(f"`{what}` is {show(got)}, expected a pair (shares, threshold).", hint)
        shares = [float((m == 0).float().mean()) for m in masks]
        pruned = torch.cat([m.flatten() for m in masks]) == 0
        threshold = torch.cat([t.abs().flatten() for t in tensors])[pruned].max().item()
        check_equal(f"the shares of {what}", list(got[0]) if isinstance(got[0], tuple) else got[0], shares, hint)
        check_equal(f"the threshold of {what}", got[1], threshold, hint, rtol=1e-6, atol=0.0, decimals=8)


def _threshold_layer() -> nn.Linear:
    """nn.Linear(4, 3) with known weights from -0.55 to 0.55 (|w| = 0.25 twice, on the threshold of the check)."""
    layer = quiet_build(lambda: nn.Linear(4, 3))
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.5, -0.05, 0.25, -0.3], [0.1, -0.25, 0.55, 0.0], [-0.4, 0.2, -0.15, 0.35]]))
    return layer


@exercise(4, "ThresholdPruning prunes |score| < threshold, keeps earlier zeros, and works through apply and a container")
def check_06_threshold_pruning(ThresholdPruning: type, threshold_unstructured: Callable[..., nn.Module]) -> None:
    """``ThresholdPruning(threshold)`` is an unstructured ``BasePruningMethod``; ``threshold_unstructured(module,
    name, threshold)`` applies it like torch's module-level functions.

    Introduced in solutions/06_pruning_methods.ipynb.
    """
    __tracebackhide__ = True
    hint = ("a pruning method is `class ThresholdPruning(prune.BasePruningMethod)` with `PRUNING_TYPE = "
            "'unstructured'`, an `__init__(self, threshold)` that stores it, and `compute_mask(self, t, default_mask)` "
            "returning `default_mask * (t.abs() >= self.threshold)`, in default_mask's dtype: entries whose |score| "
            "is below the threshold become 0, |score| equal to it is kept, and every 0 of default_mask stays 0.")
    require_answer("ThresholdPruning", ThresholdPruning, hint, "your class")
    if not (isinstance(ThresholdPruning, type) and issubclass(ThresholdPruning, prune.BasePruningMethod)):
        fail(f"ThresholdPruning is {show(ThresholdPruning)}, not a subclass of prune.BasePruningMethod.", hint)
    problem = difference("ThresholdPruning.PRUNING_TYPE", getattr(ThresholdPruning, "PRUNING_TYPE", None),
                         "unstructured")  # a missing PRUNING_TYPE is a wrong answer, not a placeholder
    if problem is not None:
        fail(problem, "it prunes single entries: torch then hands compute_mask only the entries still unpruned, "
                      "as a 1-D tensor, when the parameter was pruned before.")
    method = call(ThresholdPruning, 0.1)
    t = torch.tensor([0.5, -0.05, 0.1, -2.0, 0.0, 0.3, -0.1])
    default = torch.tensor([1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 1.0])
    expected = default * (t.abs() >= 0.1).to(default.dtype)
    check_equal("ThresholdPruning(0.1).compute_mask(torch.tensor([0.5, -0.05, 0.1, -2.0, 0.0, 0.3, -0.1]), "
                "default_mask=torch.tensor([1., 1., 1., 1., 1., 0., 1.]))",
                call(method.compute_mask, t, default_mask=default.clone()), expected, hint)
    # through apply on a module: weight_orig, weight_mask and the hook, like torch's own methods
    layer = _threshold_layer()
    w = layer.weight.detach().clone()
    returned = call(threshold_unstructured, layer, "weight", threshold=0.25)
    if returned is not layer:
        fail(f"threshold_unstructured(layer, 'weight', threshold=0.25) returned {show(returned)}, not the module.",
             "call `ThresholdPruning.apply(module, name, threshold=threshold)` (it does the reparametrization) "
             "and `return module`, as torch's prune.l1_unstructured does.")
    if not hasattr(layer, "weight_mask"):
        fail("after threshold_unstructured(layer, 'weight', threshold=0.25) the layer has no weight_mask.",
             "the classmethod `ThresholdPruning.apply(module, name, threshold=threshold)` registers weight_orig, "
             "weight_mask and the forward-pre-hook.")
    check_equal("layer.weight_mask after threshold_unstructured(layer, 'weight', threshold=0.25)", layer.weight_mask,
                (w.abs() >= 0.25).float(), hint)
    check_equal("layer.weight after threshold_unstructured(layer, 'weight', threshold=0.25)", layer.weight,
                w * (w.abs() >= 0.25), hint)
    # pruning twice: a PruningContainer hands compute_mask the 1-D vector of the entries still unpruned
    layer = _threshold_layer()
    prune.l1_unstructured(layer, "weight", amount=3)
    first = layer.weight_mask.clone()
    threshold_unstructured(layer, "weight", threshold=0.25)
    check_equal("layer.weight_mask after l1_unstructured(amount=3) then threshold_unstructured(threshold=0.25)",
                layer.weight_mask, first * (w.abs() >= 0.25), hint)


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


@exercise(5, "channel_activation measures each conv2 filter on any model and images; ln_structured prunes by it")
def check_06_activation_scores(channel_activation: Callable[[nn.Module, torch.Tensor], torch.Tensor],
                               scores: torch.Tensor, model: nn.Module, data: MNIST) -> None:
    """``channel_activation(model, x)`` is each conv2 filter's mean ReLU output on ``x``; ``scores`` it on the first
    256 training images expanded to conv2.weight's shape, ``model.conv2`` pruned by ``ln_structured(amount=0.25,
    dim=0)`` on them.

    Introduced in solutions/06_pruning_methods.ipynb.
    """
    __tracebackhide__ = True
    hint = ("capture conv2's output with `model.conv2.register_forward_hook(lambda module, args, out: "
            "outputs.append(out))` during one forward of `x` under `torch.no_grad()` (remove the handle after), "
            "apply ReLU (`F.relu`), then average over the images and the pixels: `.mean(dim=(0, 2, 3))`, one "
            "number per filter. Use the model and the images you are given: the check passes others too.")
    cases = [("lenet.pretrained(), data.train_x[:256]", quiet_pretrained(), data.train_x[:256]),
             ("lenet.pretrained(), data.test_x[:100]", quiet_pretrained(), data.test_x[:100]),
             ("an untrained LeNet (seed 1), data.train_x[256:320]", quiet_build(LeNet, 1), data.train_x[256:320])]
    for label, net, x in cases:
        expected = _channel_activation(net, x)
        got = call(channel_activation, net, x.clone())
        if net.conv2._forward_hooks:
            fail(f"channel_activation({label}) left a forward hook on model.conv2: every later forward would "
                 "record its output again.", "keep the handle `register_forward_hook` returns and call "
                 "`handle.remove()` after the forward.")
        check_equal(f"channel_activation({label})", got.detach().cpu() if isinstance(got, torch.Tensor) else got,
                    expected, hint, rtol=1e-4, decimals=4)
    expected_act = _channel_activation(quiet_pretrained(), data.train_x[:256])
    expected_scores = expected_act[:, None, None, None].expand(16, 6, 3, 3)
    check_equal("scores", scores, expected_scores, rtol=1e-4, decimals=4,
                hint="importance_scores must have the weight's shape (16, 6, 3, 3), with every entry of filter f "
                     "equal to channel_act[f]: `channel_act[:, None, None, None].expand_as(model.conv2.weight)`.")
    if not hasattr(model.conv2, "weight_mask"):
        fail("model.conv2 is not pruned (it has no weight_mask).",
             "call `prune.ln_structured(model.conv2, 'weight', amount=0.25, n=1, dim=0, importance_scores=scores)`.")
    reference = quiet_pretrained()
    prune.ln_structured(reference.conv2, "weight", amount=0.25, n=1, dim=0,
                        importance_scores=scores.detach().cpu().clone())
    zeroed = (reference.conv2.weight_mask.sum(dim=(1, 2, 3)) == 0).nonzero().flatten().tolist()
    check_equal("model.conv2.weight_mask", model.conv2.weight_mask, reference.conv2.weight_mask,
                hint=f"pruned by your scores, 4 whole filters go: {zeroed}, the 4 with the lowest mean activation. "
                     "Pass `importance_scores=scores` to `prune.ln_structured(model.conv2, 'weight', amount=0.25, "
                     "n=1, dim=0, ...)` on a fresh `lenet.pretrained()`: without it, ln_structured ranks the weights.")
