"""Checks of lesson 08 · Does pruning compress? (solutions/08_does_pruning_compress.ipynb).

Each check has three parts (docs/authoring.md, "Add a check"): ``cases`` (plain data), ``collect`` (runs the
learner's code where it runs and returns plain data) and ``judge`` (torch's answer and the hint).
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import prune
from torch.utils.flop_counter import FlopCounterMode

from ..checkpoints import pretrained
from ..model import LeNet
from .core import Check, attempt, call, check_equal, exercise, fail, show, type_name, written_call
from .plain import Raised
from .reference import quiet_build


def _torch_macs(module: nn.Module, x: torch.Tensor) -> int:
    """Multiply-accumulates of ``module(x)`` as torch's FlopCounterMode counts them (2 FLOPs per MAC)."""
    with FlopCounterMode(display=False) as counter:
        module(x)
    return counter.get_total_flops() // 2


class _LeNetLike(nn.Module):
    """LeNet's layers and forward (3x3 convs, 2x2 pools), with other widths: conv1 -> pool -> conv2 -> pool -> 3 fc."""

    def __init__(self, c1: int, c2: int, f1: int, f2: int) -> None:
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, c1, 3), nn.Conv2d(c1, c2, 3)
        self.fc1, self.fc2, self.fc3 = nn.Linear(c2 * 5 * 5, f1), nn.Linear(f1, f2), nn.Linear(f2, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = torch.flatten(F.max_pool2d(F.relu(self.conv2(x)), 2), 1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


def _draw(gen: torch.Generator, low: int, high: int) -> int:
    """An int in [low, high] from ``gen``."""
    return int(torch.randint(low, high + 1, (1,), generator=gen))


def _layer(case: dict, device: str | None = None) -> nn.Module:
    """The layer or model of an exercise 1 case: real CPU tensors by default (built without the global random
    generator), so that a learner's answer may run it; on the meta device for torch's count."""
    def build() -> nn.Module:
        if "conv" in case:
            c_in, c_out, kernel, stride, padding = case["conv"]
            return nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, device=device)
        if "linear" in case:
            return nn.Linear(*case["linear"], device=device)
        widths = case["model"]
        model = LeNet() if widths is None else _LeNetLike(*widths)
        return model.to(device) if device is not None else model

    if device == "meta":
        with torch.device("meta"):
            return build()
    return quiet_build(build)


@exercise(1, "conv_macs and linear_macs count multiply-accumulates like torch's FlopCounterMode; so does lenet_macs")
class check_08_macs(Check):
    """``conv_macs(conv, h, w)`` and ``linear_macs(linear)``: MACs per image; ``lenet_macs(model)``: the total of a
    LeNet-shaped model's five layers for one 28 x 28 image.

    The layers handed to the learner's functions are real CPU layers, so counting with ``FlopCounterMode`` on a zero
    input works too. Introduced in solutions/08_does_pruning_compress.ipynb.
    """

    def cases(self, gen: torch.Generator) -> list[dict]:
        convs = [((1, 6, 3, 1, 0), 28, 28), ((6, 16, 3, 1, 0), 13, 13), ((3, 8, 5, 2, 2), 32, 32),
                 ((4, 2, 3, 3, 0), 10, 7), ((2, 5, (3, 1), 1, (1, 0)), 6, 9)]
        kernel = _draw(gen, 1, 5)
        convs.append(((_draw(gen, 1, 8), _draw(gen, 1, 8), kernel, _draw(gen, 1, 3), _draw(gen, 0, 2)),
                      _draw(gen, kernel, 40), _draw(gen, kernel, 40)))
        linears = [(400, 120), (84, 10), (7, 3), (_draw(gen, 1, 500), _draw(gen, 1, 500))]
        models = [("LeNet()", None), ("a LeNet with 4 and 8 filters and fc layers of 64 and 32", (4, 8, 64, 32)),
                  ("a LeNet with 10 and 20 filters and fc layers of 100 and 50", (10, 20, 100, 50))]
        widths = (_draw(gen, 1, 12), _draw(gen, 1, 24), _draw(gen, 1, 150), _draw(gen, 1, 100))
        models.append((f"a LeNet with {widths[0]} and {widths[1]} filters and fc layers of {widths[2]} and "
                       f"{widths[3]}", widths))
        return ([{"conv": conv, "h": h, "w": w} for conv, h, w in convs] + [{"linear": lin} for lin in linears]
                + [{"model": widths, "label": label} for label, widths in models])

    def collect(self, case: dict, conv_macs: Callable[[nn.Conv2d, int, int], int], linear_macs: Callable[[nn.Linear], int],
                lenet_macs: Callable[[nn.Module], int]) -> Any:
        layer = _layer(case)
        with torch.random.fork_rng(devices=[]):  # an answer that runs the layer on random input draws numbers
            if "conv" in case:
                return call(conv_macs, layer, case["h"], case["w"])
            if "linear" in case:
                return call(linear_macs, layer)
            return call(lenet_macs, layer)

    def judge(self, case: dict, got: Any) -> None:
        hint = ("a conv does out_channels * in_channels * kh * kw MACs for every pixel of its OUTPUT: multiply by "
                "out_h * out_w, with out_h = (h + 2 * padding - kh) // stride + 1; a linear layer does "
                "in_features * out_features (adding the bias is not a multiply-accumulate). torch counts them with "
                "`torch.utils.flop_counter.FlopCounterMode` (2 FLOPs per MAC).")
        layer = _layer(case, "meta")
        if "conv" in case:
            expected = _torch_macs(layer, torch.zeros(1, layer.in_channels, case["h"], case["w"], device="meta"))
            shown = (f"conv_macs(nn.Conv2d({layer.in_channels}, {layer.out_channels}, {layer.kernel_size}, "
                     f"stride={layer.stride}, padding={layer.padding}), {case['h']}, {case['w']})")
            check_equal(shown, got, expected, hint)
        elif "linear" in case:
            expected = _torch_macs(layer, torch.zeros(1, layer.in_features, device="meta"))
            check_equal(f"linear_macs(nn.Linear({layer.in_features}, {layer.out_features}))", got, expected, hint)
        else:
            check_equal(f"lenet_macs({case['label']})", got, _torch_macs(layer, torch.zeros(1, 1, 28, 28, device="meta")),
                        "read the layers from the model you are given (`model.conv1`, ..., `model.fc3`): conv1 sees "
                        "28x28 images, conv2 the 13x13 maps left after the first 2x2 pooling; add the five layers.")


def _torch_csr_bytes(rows: int, cols: int, nnz: int, index_dtype: torch.dtype) -> int:
    """Bytes of the values, column indices and row pointers of a compact CSR matrix with ``nnz`` non-zeros."""
    flat = torch.zeros(rows * cols)
    flat[:nnz] = 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Sparse CSR tensor support is in beta state"
        c = flat.reshape(rows, cols).to_sparse_csr()
    parts = (c.values().clone(), c.col_indices().to(index_dtype, copy=True), c.crow_indices().to(index_dtype, copy=True))
    return sum(t.untyped_storage().nbytes() for t in parts)


#: Index dtypes by their width in bytes.
_INDEX_DTYPES = {8: torch.int64, 4: torch.int32}


@exercise(2, "csr_bytes counts the bytes of a CSR matrix's values, column indices and row pointers")
class check_08_csr_bytes(Check):
    """``csr_bytes(rows, cols, nnz, index_bytes=8)``: bytes of a float32 CSR matrix with compact indices.

    Introduced in solutions/08_does_pruning_compress.ipynb.
    """

    def cases(self, gen: torch.Generator) -> list[dict]:
        made = [(3, 4, 5, 8), (120, 400, 4800, 8), (120, 400, 4800, 4), (10, 84, 0, 8), (84, 120, 10080, 4),
                (1, 10, 3, 8)]
        rows, cols = _draw(gen, 1, 300), _draw(gen, 1, 300)
        made.append((rows, cols, _draw(gen, 0, rows * cols), (4, 8)[_draw(gen, 0, 1)]))
        return [{"rows": r, "cols": c, "nnz": n, "index_bytes": b} for r, c, n, b in made]

    def collect(self, case: dict, csr_bytes: Callable[..., int]) -> Any:
        return call(csr_bytes, case["rows"], case["cols"], case["nnz"], index_bytes=case["index_bytes"])

    def judge(self, case: dict, got: Any) -> None:
        rows, cols, nnz, index_bytes = case["rows"], case["cols"], case["nnz"], case["index_bytes"]
        check_equal(written_call("csr_bytes", rows, cols, nnz, index_bytes=index_bytes), got,
                    _torch_csr_bytes(rows, cols, nnz, _INDEX_DTYPES[index_bytes]),
                    "CSR keeps nnz float32 values (4 bytes each), nnz column indices and rows + 1 row pointers "
                    "(`crow_indices()`: where each row starts, plus the end), each index `index_bytes` wide. "
                    "Compare with `t.values()`, `t.col_indices()` and `t.crow_indices()` of `t.to_sparse_csr()`.")


def _torch_max_nnz(rows: int, cols: int, index_dtype: torch.dtype) -> int:
    """The largest nnz whose compact CSR takes fewer bytes than the dense float32 matrix (binary search)."""
    dense_bytes = 4 * rows * cols
    low, high = -1, rows * cols  # bytes(low) < dense (or low == -1); bytes(high) >= dense
    if _torch_csr_bytes(rows, cols, high, index_dtype) < dense_bytes:
        return high
    while high - low > 1:
        mid = (low + high) // 2
        if _torch_csr_bytes(rows, cols, mid, index_dtype) < dense_bytes:
            low = mid
        else:
            high = mid
    return low


#: Exercise 3: (rows, cols, index bytes); fc1 (120 x 400) is the notebook's, the others it never shows.
BREAK_EVEN_CASES = [(120, 400, 8), (120, 400, 4), (1, 10, 8), (84, 120, 8), (10, 84, 4), (3, 4, 8), (16, 2, 4)]


@exercise(3, "max_nnz and break_even find where CSR stops beating dense, for int64 and int32 indices")
class check_08_break_even(Check):
    """``max_nnz(rows, cols, index_bytes=8)``: the most non-zeros for which CSR takes fewer bytes than dense;
    ``break_even(rows, cols, index_bytes=8)``: the smallest sparsity at which CSR wins.

    Introduced in solutions/08_does_pruning_compress.ipynb.
    """

    def cases(self, gen: torch.Generator) -> list[dict]:
        shapes = [*BREAK_EVEN_CASES, (_draw(gen, 1, 200), _draw(gen, 1, 200), (4, 8)[_draw(gen, 0, 1)])]
        return ([{"fn": "max_nnz", "shape": shape} for shape in shapes]
                + [{"fn": "break_even", "shape": shape} for shape in shapes])

    def collect(self, case: dict, max_nnz: Callable[..., int], break_even: Callable[..., float]) -> Any:
        rows, cols, index_bytes = case["shape"]
        fn = max_nnz if case["fn"] == "max_nnz" else break_even
        return call(fn, rows, cols, index_bytes=index_bytes)

    def judge(self, case: dict, got: Any) -> None:
        rows, cols, index_bytes = case["shape"]
        nnz = _torch_max_nnz(rows, cols, _INDEX_DTYPES[index_bytes])
        what = written_call(case["fn"], rows, cols, index_bytes=index_bytes)
        if case["fn"] == "max_nnz":
            check_equal(what, got, nnz,
                        "CSR is smaller while csr_bytes(rows, cols, nnz, index_bytes) < 4 * rows * cols (the dense "
                        "float32 bytes): find the largest such nnz, e.g. solve the inequality for nnz and mind the "
                        "strict '<' (an exact tie does not win), or step nnz down from rows * cols.")
            return
        check_equal(what, got, 1 - nnz / (rows * cols),
                    "the smallest sparsity at which CSR wins is 1 - max_nnz(rows, cols, index_bytes) / (rows * cols): "
                    "the share of zeros when exactly max_nnz values are kept. Compute it from the arguments.")


def _weight_case(label: str, gen: torch.Generator) -> torch.Tensor:
    """A weight of exercise 4, drawn from ``gen``; + 0.0 turns the -0.0 of pruned negative weights into 0.0."""
    if label == "90%":
        return prune.L1Unstructured(0.9).prune(torch.randn(120, 400, generator=gen)) + 0.0
    if label == "50%":
        return prune.L1Unstructured(0.5).prune(torch.randn(6, 1, 3, 3, generator=gen)) + 0.0
    return torch.randn(10, 3, generator=gen)


@exercise(4, "compress keeps the non-zero values and a bit-packed mask; decompress rebuilds the weight exactly")
class check_08_values_and_bits(Check):
    """``compress(w) -> (values, packed)``: the non-zeros in row-major order and a 1-bit-per-entry mask;
    ``decompress(values, packed, shape)`` gives ``w`` back.

    Introduced in solutions/08_does_pruning_compress.ipynb.
    """

    def cases(self, gen: torch.Generator) -> list[dict]:
        weights = {
            "a 90%-pruned (120, 400) weight": _weight_case("90%", gen),
            "a 50%-pruned (6, 1, 3, 3) conv weight (54 entries)": _weight_case("50%", gen),
            "a (10, 3) weight without zeros": _weight_case("dense", gen),
            "an all-zero (5, 5) weight": torch.zeros(5, 5),
        }
        rows, cols = _draw(gen, 1, 40), _draw(gen, 1, 40)
        drawn = torch.randn(rows, cols, generator=gen) * (torch.rand(rows, cols, generator=gen) > 0.7)
        weights[f"a 70%-pruned ({rows}, {cols}) weight"] = drawn + 0.0
        return [{"label": label, "w": w} for label, w in weights.items()]

    def collect(self, case: dict, compress: Callable[[torch.Tensor], tuple[Any, Any]],
                decompress: Callable[[Any, Any, tuple[int, ...]], torch.Tensor]) -> Any:
        w = case["w"]
        out = call(compress, w.clone())
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            return {"out": out}
        values, packed = out
        nbytes = (packed.nbytes if isinstance(packed, np.ndarray) else
                  packed.numel() * packed.element_size() if isinstance(packed, torch.Tensor) else None)
        if nbytes is None:  # the judge stops at the type of packed
            return {"values": values, "packed": packed, "nbytes": None}
        return {"values": values, "packed": packed, "nbytes": nbytes,
                "back": attempt(decompress, values, packed, tuple(w.shape))}

    def judge(self, case: dict, got: Any) -> None:
        label, w = case["label"], case["w"]
        if "out" in got:
            fail(f"compress(<{label}>) returned {show(got['out'])}, expected a pair (values, packed).",
                 "return `values, packed`.")
        check_equal(f"values of compress(<{label}>)", got["values"], w[w != 0],
                    "keep only the non-zero entries, in row-major order: `w[w != 0]` (a 1-D float32 tensor).")
        if got["nbytes"] is None:
            fail(f"packed of compress(<{label}>) is {show(got['packed'])} (a {type_name(got['packed'])}), expected a "
                 "NumPy array (or a uint8 tensor).", "`np.packbits((w != 0).flatten().numpy())` returns a uint8 array.")
        check_equal(f"bytes of packed, for <{label}>", int(got["nbytes"]), math.ceil(w.numel() / 8),
                    "one bit per entry, 8 entries per byte, the last byte padded: `np.packbits` on the flat bool "
                    "mask. A bool tensor or array takes a whole byte per entry.")
        what = f"decompress(*compress(<{label}>), {tuple(w.shape)})"
        if isinstance(got["back"], Raised):
            fail(f"{what} raised {got['back']}",
                 "unpack with `np.unpackbits(packed, count=n)` (count drops the padding bits), then put the values "
                 "where the bits are 1 in a zero float32 tensor of n entries, and reshape.")
        check_equal(what, got["back"], w,
                    "unpack with `np.unpackbits(packed, count=n)` (count drops the padding bits), then put the "
                    "values where the bits are 1 in a zero float32 tensor of n entries, and reshape.")


def _cut_filters(conv: nn.Conv2d, amount: float | int) -> None:
    """Structured-prune ``conv``'s output filters (L2) and mask their biases too, as notebook 08 does."""
    prune.ln_structured(conv, "weight", amount=amount, n=2, dim=0)
    prune.custom_from_mask(conv, "bias", mask=conv.weight_mask.flatten(1).any(dim=1).float())


#: Exercise 5's cases: what is handed to shrink.
_SHRINK_LABELS = ["Conv2d(6, 16, 3) with 8 filters cut, then Conv2d(16, 32, 3)",
                  "Conv2d(3, 8, 5, stride=2, padding=2) with half its filters cut, then Conv2d(8, 4, 3, padding=1)",
                  "LeNet's conv1 with 4 of 6 filters cut, then its conv2 (pruned too)"]


def _shrink_pair(case: int) -> tuple[nn.Conv2d, nn.Conv2d]:
    """The pruned conv and the conv after it of an exercise 5 case, the same every call (no global random numbers)."""
    def build() -> tuple[nn.Conv2d, nn.Conv2d]:
        if case == 0:
            conv, nxt = nn.Conv2d(6, 16, 3), nn.Conv2d(16, 32, 3)
            _cut_filters(conv, 8)
        elif case == 1:
            conv, nxt = nn.Conv2d(3, 8, 5, stride=2, padding=2), nn.Conv2d(8, 4, 3, padding=1)
            _cut_filters(conv, 0.5)
        else:
            model = pretrained("cpu")
            _cut_filters(model.conv1, 4)
            prune.ln_structured(model.conv2, "weight", amount=8, n=2, dim=0)
            conv, nxt = model.conv1, model.conv2
        return conv, nxt

    return quiet_build(build)


#: The first words of torch's refusal to deep-copy a non-leaf tensor (a pruned layer's computed weight).
_DEEPCOPY_REFUSAL = "Only Tensors created explicitly by the user (graph leaves) support the deepcopy protocol"


@exercise(5, "shrink rebuilds both convolutions without the pruned filters and computes exactly the same")
class check_08_shrink(Check):
    """``shrink(conv, nxt) -> (small_conv, small_next)``: plain ``nn.Conv2d`` layers without the filters that
    ``ln_structured`` pruned in ``conv`` (and without the matching input channels of ``nxt``), same output.

    Introduced in solutions/08_does_pruning_compress.ipynb.
    """

    HINT = ("keep the filters whose mask row is not all zero: `kept = conv.weight_mask.flatten(1).any(dim=1)`; "
            "build `nn.Conv2d(conv.in_channels, n_kept, conv.kernel_size, stride=conv.stride, "
            "padding=conv.padding)` with `conv.weight[kept]` and `conv.bias[kept]`, and a next layer with "
            "`n_kept` input channels holding `nxt.weight[:, kept]` (the second dimension: input channels) and all "
            "of `nxt.bias`. Copy under `torch.no_grad()`.")

    def cases(self, gen: torch.Generator) -> list[dict]:
        shapes = [(2, 6, 13, 13), (2, 3, 16, 16), (2, 1, 28, 28)]
        return [{"case": i, "label": label, "x": torch.randn(shape, generator=gen)}
                for i, (label, shape) in enumerate(zip(_SHRINK_LABELS, shapes))]

    def collect(self, case: dict, shrink: Callable[[nn.Conv2d, nn.Conv2d], tuple[nn.Conv2d, nn.Conv2d]]) -> Any:
        conv, nxt = _shrink_pair(case["case"])
        with torch.random.fork_rng(devices=[]):  # new layers draw their initial weights
            out = attempt(shrink, conv, nxt)
        if isinstance(out, Raised) or not isinstance(out, (tuple, list)) or len(out) != 2:
            return {"out": out}
        layers = {}
        for name, layer in zip(("small_conv", "small_next"), out):
            layers[name] = {"layer": layer if not isinstance(layer, nn.Conv2d) else "an nn.Conv2d",
                            "type": type(layer).__name__,
                            "pruned": any(n.endswith("_orig") for n, _ in layer.named_parameters())
                            if isinstance(layer, nn.Module) else False,
                            "shape": tuple(layer.weight.shape) if isinstance(layer, nn.Conv2d) else None}
        small, small_next = out
        result: dict[str, Any] = {"layers": layers}
        if isinstance(small, nn.Module) and isinstance(small_next, nn.Module):
            with torch.no_grad():
                result["output"] = attempt(lambda: small_next(F.relu(small(case["x"]))))
        return result

    def judge(self, case: dict, got: Any) -> None:
        label, hint = case["label"], self.HINT
        out = got.get("out")
        if isinstance(out, Raised):
            if _DEEPCOPY_REFUSAL in out.message:
                fail(f"shrink(<{label}>) raised {out.type} from `copy.deepcopy`: {_DEEPCOPY_REFUSAL}. A pruned "
                     "layer's `weight` is a plain attribute that the pruning hook computed with autograd on, so it "
                     "is not a leaf of the graph, and deepcopy refuses it (lesson 04, 'why deepcopy fails').",
                     "do not copy the pruned layers: build new `nn.Conv2d` layers and copy the kept slices into "
                     "them (that is the exercise). " + hint)
            fail(f"shrink(<{label}>) raised {out}", hint)
        if "out" in got:
            fail(f"shrink(<{label}>) returned {show(out)}, expected a pair (small_conv, small_next).",
                 "return the two new layers: `return small, small_next`.")
        conv, nxt = _shrink_pair(case["case"])
        n_kept = int(conv.weight_mask.flatten(1).any(dim=1).sum())
        for name, layer in got["layers"].items():
            if layer["layer"] != "an nn.Conv2d":
                fail(f"{name} for <{label}> is {show(layer['layer'])} (a {layer['type']}), expected an nn.Conv2d.",
                     hint)
            if layer["pruned"]:
                fail(f"{name} for <{label}> still holds a pruning reparametrization (`weight_orig`).",
                     "build new `nn.Conv2d` layers and copy the kept slices into them: no masks left.")
        check_equal(f"small_conv.weight.shape for <{label}>", got["layers"]["small_conv"]["shape"],
                    (n_kept, *conv.weight.shape[1:]), hint)
        check_equal(f"small_next.weight.shape for <{label}>", got["layers"]["small_next"]["shape"],
                    (nxt.weight.shape[0], n_kept, *nxt.weight.shape[2:]), hint)
        if isinstance(got["output"], Raised):
            fail(f"running small_next(relu(small_conv(x))) for <{label}> raised {got['output']}", hint)
        with torch.no_grad():
            expected = nxt(F.relu(conv(case["x"])))
        check_equal(f"small_next(relu(small_conv(x))) for <{label}>", got["output"], expected, hint, rtol=1e-4,
                    atol=1e-5)
