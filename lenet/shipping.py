"""Ship a pruned LeNet: cut whole rows, rebuild it physically smaller, quantize it, export it to ONNX, time it.

Notebook 08 builds the row cuts, the smaller LeNet and the interleaved timing by hand; they are saved here
in notebooks/11_shipping_a_pruned_model.ipynb. The accuracy of the whole pipeline over fine-tuning seeds is
measured by ``python -m lenet.pipeline``.
"""
from __future__ import annotations

import logging
import os
import re
import sys
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from numbers import Integral
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.nn.utils import parametrize, prune

from .inspection import _refuse_int8
from .model import LeNet, SlimLeNet, _require_model
from .pruning import entries_to_prune
from .training import single_thread

if TYPE_CHECKING:  # onnx is imported only by export_onnx
    import onnx

#: The rows notebooks 08 and 10 cut: 4 of 6 conv1 filters, 8 of 16 conv2 filters, 60 of 120 fc1 neurons and
#: 42 of 84 fc2 neurons (fc3 keeps its 10 outputs, one per digit). What is left is a SlimLeNet(2, 8, 60, 42).
CUTS = {"conv1": 4, "conv2": 8, "fc1": 60, "fc2": 42}

#: How torch 2.13 warns about torch.ao.quantization (deprecated; its successor is torchao's ``quantize_``).
QUANTIZATION_WARNINGS = ("torch.ao.quantization is deprecated", "torch.quantize_per_tensor, torch.quantize_per_channel")


def prune_rows(model: nn.Module, cuts: Mapping[str, int] = CUTS) -> nn.Module:
    """Cut whole output rows of ``model`` in place, as notebook 08 does, and return it.

    For each ``layer: k`` of ``cuts``: ``prune.ln_structured(layer, "weight", amount=k, n=2, dim=0)`` masks
    the ``k`` filters (conv) or neurons (linear) of smallest L2 norm, and ``prune.custom_from_mask`` masks
    their biases too, so that a cut row outputs exactly 0 and :func:`shrink` can delete it.

    Raises:
        TypeError / ValueError: ``model`` is not a float model, ``cuts`` is not a dict, names a layer the model
            does not have or cuts more rows than a layer has. Every cut is checked before anything is pruned.

    Introduced in notebooks/11_shipping_a_pruned_model.ipynb (notebook 08 does it by hand).
    """
    _require_model(model, "prune_rows")
    _refuse_int8(model, "prune_rows needs the float model",
                "prune_rows and lenet.shrink first, then lenet.quantize_int8(slim)")
    if not isinstance(cuts, Mapping):
        raise TypeError(f"cuts must be a dict {{layer name: rows to cut}} such as {{'conv1': 4}}, got a "
                        f"{type(cuts).__name__}; dict(cuts) turns a list of pairs into one")
    layers = {name: m for name, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}
    for name, amount in cuts.items():
        if name not in layers:
            raise ValueError(f"cuts names {name!r}, which {type(model).__name__} does not have; its layers: "
                             f"{', '.join(layers)}")
        mask = getattr(layers[name], "weight_mask", None)  # cut again: torch counts the rows still unpruned
        rows = int(mask.flatten(1).any(dim=1).sum()) if mask is not None else layers[name].weight.shape[0]
        try:
            entries_to_prune(amount, rows)
        except (TypeError, ValueError) as exc:
            again = "" if mask is None else f" ({name} was pruned before: {rows} rows are still unpruned)"
            raise type(exc)(f"cuts[{name!r}]: {exc}{again}") from None
    for name, amount in cuts.items():
        module = model.get_submodule(name)
        prune.ln_structured(module, "weight", amount=amount, n=2, dim=0)
        prune.custom_from_mask(module, "bias", mask=module.weight_mask.flatten(1).any(dim=1).float())
    return model


def _effective(module: nn.Module, name: str) -> torch.Tensor:
    """``module.<name>`` as the next forward computes it: ``orig * mask`` while pruned (never a stale attribute)."""
    if hasattr(module, f"{name}_orig") and hasattr(module, f"{name}_mask"):
        return (getattr(module, f"{name}_orig") * getattr(module, f"{name}_mask")).detach()
    return getattr(module, name).detach()


def _kept_rows(model: nn.Module, name: str) -> torch.Tensor:
    """Indices of the output rows of layer ``name`` that still compute something (a non-zero weight)."""
    module = model.get_submodule(name)
    kept = _effective(module, "weight").flatten(1).ne(0).any(dim=1)
    leaky = torch.nonzero(~kept & _effective(module, "bias").ne(0)).flatten().tolist()
    if leaky:
        raise ValueError(
            f"{name}: rows {leaky} have all-zero weights but non-zero biases, so they output a constant "
            "(ReLU passes a positive bias on) and deleting them would change the model. Mask those biases too, "
            "as notebook 08 does: prune.custom_from_mask(module, 'bias', "
            "mask=module.weight_mask.flatten(1).any(dim=1).float()); lenet.prune_rows does both.")
    if not kept.any():
        raise ValueError(f"{name}: every row is pruned, so nothing would be left of the layer")
    return torch.nonzero(kept).flatten()


@torch.no_grad()
def shrink(model: LeNet) -> SlimLeNet:
    """A physically smaller copy of a structured-pruned LeNet: only the filters and neurons that still compute.

    A row of conv1, conv2, fc1 or fc2 (an output filter or neuron) is kept when its weight, as the forward
    computes it, has a non-zero entry; the next layer keeps the matching inputs: conv2 the kept conv1
    channels, fc1 the 25 columns ``25c ... 25c+24`` of each kept conv2 channel ``c`` (a 5x5 map after
    pooling), fc2 and fc3 the kept neurons. fc3 keeps its 10 outputs. Works on a hook-pruned model (it reads
    ``orig * mask``), after ``prune.remove``, and on a SlimLeNet. ``model`` is not changed, and the global
    random generator is not used.

    Returns:
        A plain SlimLeNet (no masks, no hooks) in eval mode on ``model``'s device, giving the same logits as
        ``model`` up to float rounding (its sums run over fewer terms).

    Raises:
        TypeError: ``model`` is not a LeNet, or is int8 (shrink before quantizing).
        ValueError: a row has all-zero weights but a non-zero bias (it outputs a constant: mask its bias too),
            or a layer has no row left.

    Introduced in notebooks/11_shipping_a_pruned_model.ipynb (notebook 08 does it by hand).
    """
    _require_model(model, "shrink")
    _refuse_int8(model, "shrink needs the float model", "shrink first, then lenet.quantize_int8(slim)")
    if not isinstance(model, LeNet):
        raise TypeError(f"shrink expects a LeNet (or SlimLeNet), got {type(model).__name__}")
    k1, k2, kf1, kf2 = (_kept_rows(model, name) for name in ("conv1", "conv2", "fc1", "fc2"))
    fc1_cols = (k2[:, None] * 25 + torch.arange(25, device=k2.device)).flatten()
    device = _effective(model.conv1, "weight").device
    with torch.random.fork_rng(devices=[]):  # the new layers' random initial weights are overwritten below
        slim = SlimLeNet(len(k1), len(k2), len(kf1), len(kf2)).to(device).eval()
    taken = {  # layer: (weight, bias) of the kept rows and kept inputs
        "conv1": (_effective(model.conv1, "weight")[k1], _effective(model.conv1, "bias")[k1]),
        "conv2": (_effective(model.conv2, "weight")[k2][:, k1], _effective(model.conv2, "bias")[k2]),
        "fc1": (_effective(model.fc1, "weight")[kf1][:, fc1_cols], _effective(model.fc1, "bias")[kf1]),
        "fc2": (_effective(model.fc2, "weight")[kf2][:, kf1], _effective(model.fc2, "bias")[kf2]),
        "fc3": (_effective(model.fc3, "weight")[:, kf2], _effective(model.fc3, "bias")),
    }
    for name, (weight, bias) in taken.items():
        layer = slim.get_submodule(name)
        layer.weight.copy_(weight)
        layer.bias.copy_(bias)
    return slim


def quantize_int8(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose ``nn.Linear`` layers compute in int8 (``torch.ao.quantization.quantize_dynamic``).

    Each Linear weight is stored as int8 with one scale (symmetric: 0.0 stays exactly 0), and the activations
    are quantized batch by batch at run time; Conv2d layers stay float32. Which int8 kernels run depends on the
    CPU (``torch.backends.quantized.engine``: x86/fbgemm on x86, qnnpack on ARM). torch 2.13 deprecates
    ``torch.ao.quantization`` in favour of torchao's ``quantize_``; the two warnings it gives for that are
    silenced here (notebook 11 shows them once).

    Raises:
        ValueError: ``model`` still has pruning hooks: torch cannot deep-copy it, and quantizing it in place
            would carry the hooks onto the int8 layers. Call :func:`lenet.remove_pruning` first. Or a Linear
            weight is parametrized (lesson 09), which ``quantize_dynamic`` cannot convert.

    Introduced in notebooks/11_shipping_a_pruned_model.ipynb.
    """
    _require_model(model, "quantize_int8")
    for prefix, module in model.named_modules():
        if isinstance(module, nn.Linear) and parametrize.is_parametrized(module, "weight"):
            where = f"model.{prefix}" if prefix else "model"
            raise ValueError(f"{prefix + '.' if prefix else ''}weight is parametrized (torch.nn.utils.parametrize, "
                             "lesson 09), and quantize_dynamic cannot convert it (its class is now "
                             f"{type(module).__name__}). Make it permanent first: parametrize.remove_parametrizations("
                             f"{where}, 'weight', leave_parametrized=True) (after a torch.ao.pruning sparsifier, "
                             "lesson 10: sparsifier.squash_mask())")
    if prune.is_pruned(model):
        raise ValueError("the model still has pruning hooks (weight_orig, weight_mask): quantize_dynamic cannot "
                         "deep-copy it; make the pruning permanent with lenet.remove_pruning(model) first")
    with warnings.catch_warnings():
        for message in QUANTIZATION_WARNINGS:
            warnings.filterwarnings("ignore", message=re.escape(message))
        return torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)


#: What :func:`time_rounds` measures with: CPU time of the calling thread (wall time on Windows).
CLOCK = time.perf_counter if sys.platform == "win32" else time.thread_time


def time_rounds(fns: Mapping[str, Callable[[], object]], rounds: int = 31, number: int = 2) -> dict[str, list[float]]:
    """Seconds per call of each function, one entry per interleaved round: one CPU thread, gradients off.

    Each function is called once to warm up; then every round calls each function ``number`` times in turn,
    so that a slow moment of a busy machine hurts all of them alike. The clock is the thread's own CPU time
    (:data:`CLOCK`), which stops while another process holds the core; on Windows, whose thread clock ticks
    every ~16 ms, it is the wall clock. Compare two entries round by round (:func:`speedups`), not through
    their separate averages.

    Raises:
        TypeError: ``fns`` is not a dict of functions, or ``rounds`` / ``number`` is not a whole number.
        ValueError: ``rounds`` or ``number`` is below 1.

    Introduced in notebooks/11_shipping_a_pruned_model.ipynb (notebook 08 writes it by hand).
    """
    if not isinstance(fns, Mapping):
        raise TypeError(f"time_rounds takes a dict {{name: function}}, such as {{'dense': lambda: model(x)}}, got a "
                        f"{type(fns).__name__}; the names label the times it returns")
    for name, fn in fns.items():
        if isinstance(fn, nn.Module):
            raise TypeError(f"time_rounds[{name!r}] is a {type(fn).__name__}, not a function of no arguments: wrap "
                            f"the call with its input, {{{name!r}: lambda: model(x)}}")
        if not callable(fn):
            raise TypeError(f"time_rounds[{name!r}] is {type(fn).__name__} {fn!r:.40}, not a function: wrap the call "
                            "in a lambda, {name: lambda: model(x)}, so that time_rounds can call it again and again")
    for label, value in (("rounds", rounds), ("number", number)):
        if isinstance(value, bool) or not isinstance(value, Integral):
            raise TypeError(f"{label} must be a whole number >= 1, got {type(value).__name__} {value!r}")
    if rounds < 1 or number < 1:
        raise ValueError(f"rounds and number must be >= 1, got rounds={rounds}, number={number}")
    times: dict[str, list[float]] = {name: [] for name in fns}
    with single_thread(), torch.no_grad():
        for fn in fns.values():
            fn()
        for _ in range(rounds):
            for name, fn in fns.items():
                start = CLOCK()
                for _ in range(number):
                    fn()
                times[name].append((CLOCK() - start) / number)
    return times


def speedups(times: Mapping[str, Sequence[float]], baseline: str = "dense") -> dict[str, list[float]]:
    """For every entry but ``baseline``: its speed relative to ``baseline`` in each round (baseline time / its time).

    Above 1 is faster than the baseline. The median over the rounds is a robust speed-up, and the spread of
    the rounds says how far to trust it.

    Introduced in notebooks/11_shipping_a_pruned_model.ipynb.
    """
    if not isinstance(times, Mapping):
        raise TypeError(f"speedups takes the dict that lenet.time_rounds returns, {{name: [seconds per round]}}, got a "
                        f"{type(times).__name__}")
    if baseline not in times:
        raise KeyError(f"no {baseline!r} entry to compare with; the entries are {list(times)}")
    for name, ts in times.items():
        if len(ts) != len(times[baseline]):
            raise ValueError(f"{name!r} has {len(ts)} rounds but {baseline!r} has {len(times[baseline])}: speedups "
                             "compares round by round, so every entry needs one time per round; time them together, "
                             "interleaved, with lenet.time_rounds")
    return {name: [b / t for b, t in zip(times[baseline], ts)] for name, ts in times.items() if name != baseline}


#: How torch 2.13's ONNX exporter warns about torch's own deprecated pytree API (nothing a caller can change).
ONNX_EXPORT_WARNINGS = ("`isinstance(treespec, LeafSpec)` is deprecated",)


def export_onnx(model: nn.Module, path: str | os.PathLike[str]) -> onnx.ModelProto:
    """Save ``model`` as one ONNX file at ``path`` that takes any batch size, as notebook 11 does by hand.

    ``torch.onnx.export`` with its default (dynamo) exporter, which needs ``onnxscript``: the input is LeNet's
    ``x``, an example batch of two 1x28x28 images of zeros, with a dynamic batch axis named ``batch``; the
    weights go inside the file (``external_data=False``: the default writes them to a second file). Then the
    metadata the exporter records on every node (the Python stack trace that made it, with your machine's
    paths) is stripped, and ``onnx.checker.check_model`` checks the result before it is saved. Warnings that
    torch's exporter gives about its own deprecated internals, and its log lines about torchvision, are
    silenced. ``model`` is not changed.

    Returns:
        The ``onnx.ModelProto`` written at ``path``.

    Raises:
        ValueError: ``model`` still has pruning hooks or parametrizations: the file would carry both the
            weights and the masks and multiply them at every call. Call :func:`lenet.remove_pruning` (or
            ``parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)``) first.

    Introduced in notebooks/11_shipping_a_pruned_model.ipynb.
    """
    import onnx  # imported here: the rest of lenet does not need onnx

    if prune.is_pruned(model):
        raise ValueError("the model still has pruning hooks: the ONNX file would hold weight_orig and weight_mask "
                         "and multiply them at every call; make the pruning permanent with "
                         "lenet.remove_pruning(model) first")
    if any(parametrize.is_parametrized(m) for m in model.modules()):
        raise ValueError("the model still has parametrizations: the ONNX file would hold the original weights and "
                         "the masks; remove them first with parametrize.remove_parametrizations(module, 'weight', "
                         "leave_parametrized=True) on each parametrized module")
    device = next(model.parameters()).device
    example = (torch.zeros(2, 1, 28, 28, device=device),)
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)  # "torchvision is not installed. Skipping torchvision::nms", and others
    try:
        with warnings.catch_warnings():
            for message in ONNX_EXPORT_WARNINGS:
                warnings.filterwarnings("ignore", message=re.escape(message))
            program = torch.onnx.export(model, example, dynamic_shapes={"x": {0: torch.export.Dim("batch")}},
                                        verbose=False)
    finally:
        logger.setLevel(level)
    proto = program.model_proto
    for node in proto.graph.node:
        del node.metadata_props[:]
    onnx.checker.check_model(proto, full_check=True)
    onnx.save(proto, os.fspath(path))
    return proto
