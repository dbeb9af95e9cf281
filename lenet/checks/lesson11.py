"""Checks of lesson 11 · Shipping a pruned model (solutions/11_shipping_a_pruned_model.ipynb)."""
from __future__ import annotations

import os
import statistics
import tempfile
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn
from torch.nn.utils import prune

from ..model import SlimLeNet
from ..pruning import remove_pruning
from ..shipping import prune_rows, quantize_int8, shrink
from .core import CheckFailed, call, check_equal, exercise, fail, show, type_name
from .reference import quiet_build, quiet_pretrained


def _attempt(fn: Callable[..., Any], label: str, hint: str, *args: Any) -> Any:
    """``call(fn, *args)``; an exception from the learner's code becomes a failure with ``hint``."""
    __tracebackhide__ = True
    try:
        return call(fn, *args)
    except CheckFailed:
        raise
    except Exception as e:  # noqa: BLE001 - reported to the learner
        fail(f"{label} raised {type(e).__name__}: {' '.join(str(e).split())[:300]}", hint)


def _remove_cases() -> list[tuple[str, Callable[[], nn.Module]]]:
    """(label, build) of models pruned in ways the lesson did not show; no global random numbers used."""
    def twice_and_bias() -> nn.Module:
        model = quiet_pretrained()
        prune.l1_unstructured(model.fc1, "weight", amount=0.5)
        prune.l1_unstructured(model.fc1, "weight", amount=0.5)  # a PruningContainer
        prune.l1_unstructured(model.conv1, "bias", amount=2)
        prune.ln_structured(model.conv2, "weight", amount=4, n=2, dim=0)
        return model

    def bias_only() -> nn.Module:
        model = quiet_pretrained()
        prune.l1_unstructured(model.fc3, "bias", amount=3)
        return model

    def bare_conv() -> nn.Module:
        conv = quiet_build(lambda: nn.Conv2d(1, 4, 3), 3)
        prune.l1_unstructured(conv, "weight", amount=0.5)
        prune.l1_unstructured(conv, "bias", amount=1)
        return conv

    return [("a LeNet with fc1.weight pruned twice, conv1.bias and conv2.weight pruned", twice_and_bias),
            ("a LeNet with only fc3.bias pruned", bias_only),
            ("a LeNet without pruning", quiet_pretrained),
            ("a bare nn.Conv2d with weight and bias pruned", bare_conv)]


def _pruned_names(model: nn.Module) -> list[str]:
    """``module.tensor`` names of the tensors still pruned (a reparametrization or a hook left)."""
    names = [f"{m}.{p[:-len('_orig')]}".lstrip(".") for m, module in model.named_modules()
             for p, _ in module.named_parameters(recurse=False) if p.endswith("_orig")]
    names += [f"{m}.{b[:-len('_mask')]}".lstrip(".") for m, module in model.named_modules()
              for b, _ in module.named_buffers(recurse=False) if b.endswith("_mask")]
    names += [f"{m}.{h._tensor_name}".lstrip(".") for m, module in model.named_modules()
              for h in module._forward_pre_hooks.values() if isinstance(h, prune.BasePruningMethod)]
    return sorted(set(names))


@exercise(1, "remove_all makes every pruned tensor permanent, skips the rest and names what it removed")
def check_11_remove_all(remove_all: Callable[[nn.Module], Sequence[str]]) -> None:
    """``remove_all(model)``: ``prune.remove`` on every pruned tensor of ``model``; returns their qualified names.

    Introduced in solutions/11_shipping_a_pruned_model.ipynb.
    """
    __tracebackhide__ = True
    hint = ("`prune.remove(module, name)` works on one module and one tensor, and raises ValueError on a tensor "
            "that is not pruned. Find the pruned ones by their hooks: for each `prefix, module` of "
            "`model.named_modules()`, each `hook` in `module._forward_pre_hooks.values()` that is a "
            "`prune.BasePruningMethod` names its tensor in `hook._tensor_name` (weight OR bias; a tensor pruned twice "
            "has one PruningContainer). Collect them all first, then remove: removing deletes the hook from the dict "
            "you would be looping over. Name them f'{prefix}.{name}', or just name for the model's own tensors.")
    for label, build in _remove_cases():
        mine, theirs = build(), build()
        expected = remove_pruning(theirs)
        got = _attempt(remove_all, f"remove_all(<{label}>)", hint, mine)
        if not isinstance(got, (list, tuple)):
            fail(f"remove_all(<{label}>) returned {show(got)} (a {type_name(got)}), expected a list of names like "
                 f"{show(expected)}.", hint)
        check_equal(f"the names remove_all(<{label}>) returned (sorted)", sorted(got), sorted(expected), hint)
        left = _pruned_names(mine)
        if left:
            fail(f"after remove_all(<{label}>) these tensors are still pruned: {show(left)}.", hint)
        check_equal(f"the state_dict keys after remove_all(<{label}>) (sorted)", sorted(mine.state_dict()),
                    sorted(theirs.state_dict()), hint)
        for key, value in theirs.state_dict().items():
            check_equal(f"state_dict()[{key!r}] after remove_all(<{label}>)", mine.state_dict()[key], value, hint,
                        rtol=0, atol=0)
        again = _attempt(remove_all, f"a second remove_all(<{label}>)", hint, mine)
        check_equal(f"a second remove_all(<{label}>)", list(again) if isinstance(again, (list, tuple)) else again,
                    [], "once nothing is pruned, there is nothing to remove: return an empty list.")


def _torch_int8_zeros(w: torch.Tensor) -> torch.Tensor:
    """Where torch's dynamic quantization (``quantize_dynamic`` of an nn.Linear) stores an int8 0 for ``w``."""
    linear = quiet_build(lambda: nn.Linear(w.shape[1], w.shape[0]))
    with torch.no_grad():
        linear.weight.copy_(w)
    return quantize_int8(nn.Sequential(linear))[0].weight().int_repr() == 0


@exercise(2, "int8_zero_mask predicts torch's int8 zeros: every float zero, and the weights that round to 0")
def check_11_int8_zeros(int8_zero_mask: Callable[[torch.Tensor], torch.Tensor], new_zeros: int) -> None:
    """``int8_zero_mask(w)``: bool tensor, True where dynamic int8 quantization stores 0; ``new_zeros``: how many
    non-zero weights of the pretrained fc1, randomly pruned by half after ``torch.manual_seed(0)``, become int8 zeros.

    Introduced in solutions/11_shipping_a_pruned_model.ipynb.
    """
    __tracebackhide__ = True
    hint = ("the weight scheme is per-tensor symmetric: `scale = w.abs().max() / 127.5` (the range [-max, max] spread "
            "over 255 steps), the int8 value is `torch.round(w / scale)` (round half to even), and the zero point is 0. "
            "So an entry is an int8 zero when `torch.round(w / scale) == 0`: every 0.0, and every |w| < scale / 2.")
    gen = torch.Generator().manual_seed(10)
    fc1 = quiet_pretrained().fc1.weight.detach()
    sparse = torch.randn(30, 50, generator=gen) * 0.1
    sparse[torch.rand(30, 50, generator=gen) < 0.6] = 0.0
    skewed = torch.rand(20, 40, generator=gen) * 1.1 - 0.1  # in [-0.1, 1.0]: not symmetric around 0
    skewed[0, 0] = 0.00395  # |w| / (1.0 / 127.5) is 0.504: not zero (with 1.0 / 127 it would be)
    skewed[0, 1] = 0.00390  # 0.497: zero
    skewed[0, 2] = 1.0
    border = torch.tensor([[1.0, 0.00393, -0.00393, 0.0039, -0.0039, 0.0, 0.5, -0.25]])
    cases = [("the pretrained LeNet's fc1.weight (no zeros)", fc1), ("a (30, 50) weight, 60% zeros", sparse),
             ("a (20, 40) weight in [-0.1, 1.0]", skewed), (f"torch.tensor({border.tolist()})", border)]
    for label, w in cases:
        got = call(int8_zero_mask, w.clone())
        if not isinstance(got, torch.Tensor):
            fail(f"int8_zero_mask(<{label}>) returned {show(got)} (a {type_name(got)}), expected a bool tensor.", hint)
        check_equal(f"int8_zero_mask(<{label}>)", got.bool() if got.dtype != torch.bool else got,
                    _torch_int8_zeros(w), hint)
    model = quiet_pretrained()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        prune.random_unstructured(model.fc1, "weight", amount=0.5)
    w = model.fc1.weight.detach()
    expected = int((_torch_int8_zeros(w) & (w != 0)).sum())
    check_equal("new_zeros", new_zeros, expected,
                "count the entries of the randomly pruned fc1.weight that are non-zero in float32 but int8 zeros: "
                "`int((int8_zero_mask(w) & (w != 0)).sum())`; the pruned zeros are not new.")


#: Batch sizes the shipped program must accept; none is the example's 2.
_SHIP_BATCHES = (1, 7, 300)


def _ship_cases() -> list[tuple[str, Callable[[], nn.Module]]]:
    def pruned() -> nn.Module:
        model = quiet_pretrained()
        prune.l1_unstructured(model.fc1, "weight", amount=0.5)
        prune.l1_unstructured(model.conv1, "bias", amount=2)
        return model

    return [("a LeNet with fc1.weight and conv1.bias pruned", pruned),
            ("a SlimLeNet(2, 8, 60, 42) from lenet.shrink", lambda: shrink(prune_rows(quiet_pretrained())))]


@exercise(3, "ship writes a .pt2 without masks, for any batch size, without the example's whole storage")
def check_11_ship(ship: Callable[[nn.Module, torch.Tensor, str], object]) -> None:
    """``ship(model, example, path)``: remove the pruning, ``torch.export`` with a dynamic batch, save to ``path``.

    Introduced in solutions/11_shipping_a_pruned_model.ipynb.
    """
    __tracebackhide__ = True
    hint = ("first `lenet.remove_pruning(model)` (or else the program takes weight_orig and weight_mask as inputs); "
            "then `torch.export.export(model, (example.clone(),), dynamic_shapes={'x': {0: torch.export.Dim('batch')}})` "
            "(without dynamic_shapes the program accepts the example's batch size only; without clone() a slice "
            "saves the whole tensor it is a view of) and `torch.export.save(program, path)`.")
    gen = torch.Generator().manual_seed(3)
    images = torch.randn(500, 1, 28, 28, generator=gen)
    inputs = {n: torch.randn(n, 1, 28, 28, generator=gen) for n in _SHIP_BATCHES}
    with tempfile.TemporaryDirectory() as folder:
        for i, (label, build) in enumerate(_ship_cases()):
            model = build()
            with torch.no_grad():
                expected = {n: model(x) for n, x in inputs.items()}
            weights = sum(t.numel() * t.element_size() for t in model.state_dict().values())
            path = os.path.join(folder, f"shipped{i}.pt2")
            what = f"ship(<{label}>, images[:2], path)"
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the export of a still-pruned model warns; the check says why
                _attempt(ship, what, hint, model, images[:2], path)
            if not os.path.isfile(path):
                fail(f"after {what} there is no file at `path`.", "save the exported program with "
                     "`torch.export.save(program, path)`.")
            try:
                program = torch.export.load(path)
            except Exception as e:  # noqa: BLE001 - reported to the learner
                fail(f"torch.export.load could not read the file {what} wrote: {type(e).__name__}: {e}", hint)
            masks = [s.target for s in program.graph_signature.input_specs
                     if s.target and s.target.endswith(("_orig", "_mask"))]
            if masks:
                fail(f"the program {what} saved takes {show(masks)} as inputs: the pruning is still there.", hint)
            size = os.path.getsize(path)
            if size > weights + 400_000:
                fail(f"the file {what} saved has {size:,} bytes for {weights:,} bytes of weights: it carries the "
                     "500 images `example` is a slice of.", hint)
            module = program.module()
            for n, x in inputs.items():
                try:
                    with torch.no_grad():
                        got = module(x)
                except Exception as e:  # noqa: BLE001 - reported to the learner
                    fail(f"the program {what} saved fails on a batch of {n}: {type(e).__name__}: "
                         f"{' '.join(str(e).split())[:200]}", hint)
                check_equal(f"the saved program's output for a batch of {n} (<{label}>)", got, expected[n], hint,
                            rtol=1e-4, atol=1e-5)


@exercise(4, "median_speedup takes the median of the per-round ratios")
def check_11_median_speedup(median_speedup: Callable[[Sequence[float], Sequence[float]], float]) -> None:
    """``median_speedup(base, other)``: median over the rounds of base time / other time, round by round.

    Introduced in solutions/11_shipping_a_pruned_model.ipynb.
    """
    __tracebackhide__ = True
    hint = ("pair the two lists round by round: `ratios = [b / o for b, o in zip(base, other)]` (above 1: `other` is "
            "faster), then `statistics.median(ratios)`. A ratio of two medians or of two means mixes rounds where "
            "the machine was busy with rounds where it was not.")
    cases = [
        ([2.0, 2.0, 2.0], [1.0, 1.0, 1.0]),
        ([2.0, 9.0, 3.0, 2.2, 2.1], [1.0, 9.5, 1.0, 1.0, 1.5]),  # round 2: a slow moment hit both
        ([10.0, 10.0, 30.0, 10.0], [5.0, 8.0, 10.0, 4.0]),  # even count: the mean of the middle two ratios
        ([0.004, 0.005, 0.012, 0.004, 0.0041, 0.0042], [0.002, 0.0021, 0.011, 0.0019, 0.0022, 0.003]),
    ]
    for base, other in cases:
        expected = statistics.median(b / o for b, o in zip(base, other))
        got = call(median_speedup, list(base), list(other))
        check_equal(f"median_speedup({base}, {other})", got, expected, hint, rtol=1e-9, atol=1e-12)


def _int8_case(widths: tuple[int, int, int, int], seed: int) -> nn.Module:
    """An int8 SlimLeNet with random float weights (built without the learner's random numbers)."""
    return quantize_int8(quiet_build(lambda: SlimLeNet(*widths), seed))


@exercise(5, "load_int8 rebuilds the int8 SlimLeNet from its state_dict")
def check_11_load_int8(load_int8: Callable[[str, tuple[int, int, int, int]], nn.Module]) -> None:
    """``load_int8(path, widths)``: the int8 SlimLeNet whose ``state_dict`` was saved at ``path``.

    Introduced in solutions/11_shipping_a_pruned_model.ipynb.
    """
    __tracebackhide__ = True
    hint = ("an int8 state_dict holds `fc1._packed_params...`, `fc1.scale` and `fc1.zero_point`, not `fc1.weight`: "
            "it fits a model that is already quantized and of the same widths (`strict=False` into a float model "
            "loads the convolutions only and leaves the Linear layers random: lesson 05's trap). Build "
            "`lenet.quantize_int8(lenet.SlimLeNet(*widths))`, then `model.load_state_dict(torch.load(path, "
            "weights_only=True))`, and return the model.")
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(16, 1, 28, 28, generator=gen)
    with tempfile.TemporaryDirectory() as folder:
        for i, widths in enumerate([(2, 8, 60, 42), (3, 5, 17, 11), (6, 16, 120, 84)]):
            saved = _int8_case(widths, i)
            path = os.path.join(folder, f"int8_{i}.pt")
            torch.save(saved.state_dict(), path)
            what = f"load_int8(path, {widths})"
            with warnings.catch_warnings(), torch.random.fork_rng(devices=[]):  # building a model draws numbers
                warnings.simplefilter("ignore")  # torch's loader of quantized tensors warns about TypedStorage
                model = _attempt(load_int8, what, hint, path, widths)
            if not isinstance(model, nn.Module):
                fail(f"{what} returned {show(model)} (a {type_name(model)}), expected the model.", hint)
            if not type(getattr(model, "fc1", None)).__module__.startswith("torch.ao.nn.quantized"):
                fail(f"{what} returned a model whose fc1 is {show(getattr(model, 'fc1', None))}, not an int8 "
                     "(dynamically quantized) Linear.", hint)
            with torch.no_grad():
                check_equal(f"the outputs of {what}", model(x), saved(x), hint, rtol=0, atol=0)

