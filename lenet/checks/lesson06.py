"""Checks of lesson 06 · Pruning methods: local, global and custom (solutions/06_pruning_methods.ipynb)."""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import prune

from ..data import MNIST
from ..model import LeNet
from .core import call, check_equal, difference, exercise, fail, require_answer, show
from .reference import LAYERS, quiet_build, quiet_pretrained, tensor_holder


def _zeros_after(call_prune: Callable[[nn.Module], None]) -> int:
    """How many entries of the pruned tensor are 0 in the mask after ``call_prune(fresh LeNet)`` (torch's own)."""
    model = quiet_build(LeNet)
    with torch.random.fork_rng(devices=[]):
        call_prune(model)
    masks = [b for name, b in model.named_buffers() if name.endswith("_mask")]
    return int(sum((m == 0).sum() for m in masks))


@exercise(1, "the number of zeros each pruning call leaves, unstructured and structured")
def check_06_zero_counts(zeros: dict[str, int]) -> None:
    """``zeros`` maps "a".."d" to how many entries each call of the exercise zeroes on a fresh LeNet.

    Introduced in solutions/06_pruning_methods.ipynb.
    """
    __tracebackhide__ = True
    calls = {
        "a": lambda m: prune.l1_unstructured(m.conv2, "weight", amount=0.3),
        "b": lambda m: prune.ln_structured(m.conv2, "weight", amount=0.3, n=2, dim=0),
        "c": lambda m: prune.random_structured(m.conv2, "weight", amount=2, dim=1),
        "d": lambda m: prune.ln_structured(m.fc2, "weight", amount=0.3, n=1, dim=1),
    }
    expected = {key: _zeros_after(fn) for key, fn in calls.items()}
    check_equal("zeros", zeros, expected,
                hint="a float amount is a fraction of the units, rounded with round() (4.8 -> 5, not 4); an int "
                     "amount is a count. Unstructured units are single entries; structured units are slices "
                     "along `dim`: for conv2.weight (16, 6, 3, 3), dim=0 is a filter of 6*3*3 entries, dim=1 an "
                     "input channel of 16*3*3; for fc2.weight (84, 120), dim=1 is a column of 84 entries.")


def _ln_cases() -> list[tuple[str, torch.Tensor, float | int, float, int]]:
    """(name, tensor, amount, n, dim): a hand-made tensor where n decides, and the trained LeNet's weights."""
    tiny = torch.tensor([[3.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0], [0.5, 0.5, 0.0, 0.0]])
    model = quiet_pretrained()
    conv2, fc1 = model.conv2.weight.detach(), model.fc1.weight.detach()
    t, c, f = show(tiny), "conv2.weight", "fc1.weight"
    return [(t, tiny, 2, 1, 0), (t, tiny, 2, 2, 0), (t, tiny, 0.5, 2, 1), (c, conv2, 0.3, 2, 0),
            (c, conv2, 0.5, 1, 1), (f, fc1, 12, float("inf"), 0), (f, fc1, 0.0, 2, 1)]


@exercise(2, "ln_structured_mask equals torch's LnStructured mask, for every n, dim and kind of amount")
def check_06_ln_structured_mask(ln_structured_mask: Callable[..., torch.Tensor]) -> None:
    """``ln_structured_mask(t, amount, n, dim)`` is the mask ``prune.ln_structured`` computes on an unpruned ``t``.

    Introduced in solutions/06_pruning_methods.ipynb.
    """
    __tracebackhide__ = True
    hint = ("the units are the slices of t along `dim`: how many to prune is `amount` if it is an int, else "
            "round(amount * t.shape[dim]). The norm of each slice: `torch.linalg.vector_norm(t, ord=n, dim=<every "
            "other dim>)`, one number per slice. Keep the t.shape[dim] - n_prune LARGEST norms "
            "(`torch.topk(norms, k).indices`) and set their slices of a `torch.zeros_like(t)` to 1 "
            "(`mask.index_fill_(dim, indices, 1.0)`). Compare with "
            "`prune.LnStructured(amount, n, dim).compute_mask(t, torch.ones_like(t))`.")
    for shown, t, amount, n, dim in _ln_cases():
        expected = prune.LnStructured(amount, n, dim).compute_mask(t, torch.ones_like(t))
        got = call(ln_structured_mask, t.clone(), amount, n, dim)
        check_equal(f"ln_structured_mask({shown}, amount={amount!r}, n={n!r}, dim={dim})", got, expected, hint)


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


@exercise(3, "global_l1_masks ranks all the tensors together like global_unstructured; per-layer sparsity and threshold")
def check_06_global_l1(global_l1_masks: Callable[..., list[torch.Tensor]], per_layer: dict[str, float],
                       threshold: float) -> None:
    """``global_l1_masks(tensors, amount)`` equals ``prune.global_unstructured(..., L1Unstructured, amount)``;
    ``per_layer`` and ``threshold`` describe it on the trained LeNet at 50%.

    Introduced in solutions/06_pruning_methods.ipynb.
    """
    __tracebackhide__ = True
    hint = ("one ranking for all: `torch.cat([t.abs().flatten() for t in tensors])`, prune the n smallest of that "
            "vector (n = amount if it is an int, else round(amount * total)) with `torch.topk(scores, n, "
            "largest=False).indices`, then cut the mask back with `mask.split([t.numel() for t in tensors])` "
            "and `.view_as(t)`. Masks are float tensors of ones and zeros, like torch's.")
    for label, tensors, amount in _global_cases():
        got = call(global_l1_masks, [t.clone() for t in tensors], amount)
        expected = _global_expected(tensors, amount)
        what = f"global_l1_masks({label}, {amount})"
        if not isinstance(got, (list, tuple)) or len(got) != len(expected):
            fail(f"{what} is {show(got)}, expected a list of {len(expected)} masks, one per tensor.", hint)
        for i, (mine, want) in enumerate(zip(got, expected)):
            check_equal(f"{what}[{i}]", mine, want, hint + " A per-tensor ranking (local pruning) gives other masks.")
    # ties at the cut: three entries of |w| = 0.1 and only two to prune; torch's topk picks two of them
    tied = [torch.tensor([0.2, -0.1, 0.1]), torch.tensor([[0.1, 0.5]])]
    got = call(global_l1_masks, [t.clone() for t in tied], 2)
    flat_mask = torch.cat([torch.as_tensor(m).flatten() for m in got]).float()
    flat_abs = torch.cat([t.abs().flatten() for t in tied])
    pruned_n = int((flat_mask == 0).sum())
    if pruned_n != 2 or flat_abs[flat_mask == 0].max() > flat_abs[flat_mask == 1].min():
        fail(f"global_l1_masks([tensor([0.2, -0.1, 0.1]), tensor([[0.1, 0.5]])], 2) prunes {pruned_n} entries: "
             f"{show([torch.as_tensor(m) for m in got])}; expected exactly 2 of the three entries with |w| = 0.1.",
             "with ties at the cut, a threshold (`scores <= kth value`) prunes every tied entry. Prune exactly "
             "n entries by their indices: `torch.topk(scores, n, largest=False).indices`.")
    # per-layer sparsity and threshold on the trained LeNet at 50%, from torch's own global pruning
    model = quiet_pretrained()
    prune.global_unstructured([(getattr(model, n), "weight") for n in LAYERS],
                              pruning_method=prune.L1Unstructured, amount=0.5)
    expected_sparsity = {n: float((getattr(model, n).weight_mask == 0).float().mean()) for n in LAYERS}
    check_equal("per_layer", per_layer, expected_sparsity,
                hint="the fraction of each layer's mask that is 0: `1 - mask.mean().item()` or "
                     "`(mask == 0).float().mean().item()`, under the layer's name. conv1 loses few weights, "
                     "fc1 more than half.")
    orig = torch.cat([getattr(model, n).weight_orig.detach().abs().flatten() for n in LAYERS])
    kept = torch.cat([getattr(model, n).weight_mask.flatten() for n in LAYERS]) == 1
    expected_threshold = orig[~kept].max().item()
    threshold_hint = ("the largest |w| that was pruned, over all five layers together: "
                      "`all_abs[all_masks == 0].max().item()` (not the smallest |w| kept, which is just above it).")
    check_equal("threshold", threshold, expected_threshold, threshold_hint, rtol=1e-6, atol=0.0, decimals=8)


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


def _conv2_outputs(x: torch.Tensor) -> torch.Tensor:
    """conv2's output (before ReLU) for the images ``x``, from a fresh trained LeNet and a forward hook."""
    model = quiet_pretrained()
    outputs: list[torch.Tensor] = []
    handle = model.conv2.register_forward_hook(lambda module, args, out: outputs.append(out))
    with torch.no_grad():
        model(x.cpu())
    handle.remove()
    return outputs[0]


@exercise(5, "mean ReLU activation per conv2 filter, expanded to scores, and ln_structured pruning by them")
def check_06_activation_scores(channel_act: torch.Tensor, scores: torch.Tensor, model: nn.Module,
                               data: MNIST) -> None:
    """``channel_act`` is each conv2 filter's mean ReLU output on the first 256 training images, ``scores`` it
    expanded to conv2.weight's shape, ``model.conv2`` pruned by ``ln_structured(amount=0.25, dim=0)`` on them.

    Introduced in solutions/06_pruning_methods.ipynb.
    """
    __tracebackhide__ = True
    out = _conv2_outputs(data.train_x[:256])
    expected_act = F.relu(out).mean(dim=(0, 2, 3))
    check_equal("channel_act", channel_act, expected_act, rtol=1e-4, decimals=4,
                hint="capture conv2's output with `model.conv2.register_forward_hook(lambda module, args, out: "
                     "outputs.append(out))` during one forward of `data.train_x[:256]` (remove the handle after), "
                     "apply ReLU (`F.relu`), then average over the images and the pixels: `.mean(dim=(0, 2, 3))`, "
                     "one number per filter (16).")
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
