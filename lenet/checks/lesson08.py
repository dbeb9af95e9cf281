"""Checks of lesson 08 · Does pruning compress? (solutions/08_does_pruning_compress.ipynb)."""
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
from .core import call, check_equal, describe_call, exercise, fail, show, type_name


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


@exercise(1, "conv_macs and linear_macs count multiply-accumulates like torch's FlopCounterMode; so does lenet_macs")
def check_08_macs(conv_macs: Callable[[nn.Conv2d, int, int], int], linear_macs: Callable[[nn.Linear], int],
                  lenet_macs: Callable[[nn.Module], int]) -> None:
    """``conv_macs(conv, h, w)`` and ``linear_macs(linear)``: MACs per image; ``lenet_macs(model)``: the total of a
    LeNet-shaped model's five layers for one 28 x 28 image.

    Introduced in solutions/08_does_pruning_compress.ipynb.
    """
    __tracebackhide__ = True
    hint = ("a conv does out_channels * in_channels * kh * kw MACs for every pixel of its OUTPUT: multiply by "
            "out_h * out_w, with out_h = (h + 2 * padding - kh) // stride + 1; a linear layer does "
            "in_features * out_features (adding the bias is not a multiply-accumulate). torch counts them with "
            "`torch.utils.flop_counter.FlopCounterMode` (2 FLOPs per MAC).")
    with torch.device("meta"):  # shapes only: no memory, no random numbers
        convs = [(nn.Conv2d(1, 6, 3), 28, 28), (nn.Conv2d(6, 16, 3), 13, 13),
                 (nn.Conv2d(3, 8, 5, stride=2, padding=2), 32, 32), (nn.Conv2d(4, 2, 3, stride=3), 10, 7),
                 (nn.Conv2d(2, 5, (3, 1), padding=(1, 0)), 6, 9)]
        linears = [nn.Linear(400, 120), nn.Linear(84, 10), nn.Linear(7, 3)]
        models = [("LeNet()", LeNet()), ("a LeNet with 4 and 8 filters and fc layers of 64 and 32",
                                         _LeNetLike(4, 8, 64, 32)),
                  ("a LeNet with 10 and 20 filters and fc layers of 100 and 50", _LeNetLike(10, 20, 100, 50))]
    for conv, h, w in convs:
        expected = _torch_macs(conv, torch.zeros(1, conv.in_channels, h, w, device="meta"))
        shown = (f"conv_macs(nn.Conv2d({conv.in_channels}, {conv.out_channels}, {conv.kernel_size}, "
                 f"stride={conv.stride}, padding={conv.padding}), {h}, {w})")
        check_equal(shown, call(conv_macs, conv, h, w), expected, hint)
    for linear in linears:
        expected = _torch_macs(linear, torch.zeros(1, linear.in_features, device="meta"))
        check_equal(f"linear_macs(nn.Linear({linear.in_features}, {linear.out_features}))", call(linear_macs, linear),
                    expected, hint)
    for label, model in models:
        check_equal(f"lenet_macs({label})", call(lenet_macs, model),
                    _torch_macs(model, torch.zeros(1, 1, 28, 28, device="meta")),
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
def check_08_csr_bytes(csr_bytes: Callable[..., int]) -> None:
    """``csr_bytes(rows, cols, nnz, index_bytes=8)``: bytes of a float32 CSR matrix with compact indices.

    Introduced in solutions/08_does_pruning_compress.ipynb.
    """
    __tracebackhide__ = True
    hint = ("CSR keeps nnz float32 values (4 bytes each), nnz column indices and rows + 1 row pointers "
            "(`crow_indices()`: where each row starts, plus the end), each index `index_bytes` wide. "
            "Compare with `t.values()`, `t.col_indices()` and `t.crow_indices()` of `t.to_sparse_csr()`.")
    for rows, cols, nnz, index_bytes in [(3, 4, 5, 8), (120, 400, 4800, 8), (120, 400, 4800, 4), (10, 84, 0, 8),
                                         (84, 120, 10080, 4), (1, 10, 3, 8)]:
        expected = _torch_csr_bytes(rows, cols, nnz, _INDEX_DTYPES[index_bytes])
        check_equal(describe_call(csr_bytes, rows, cols, nnz, index_bytes=index_bytes),
                    call(csr_bytes, rows, cols, nnz, index_bytes=index_bytes), expected, hint)


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
def check_08_break_even(max_nnz: Callable[..., int], break_even: Callable[..., float]) -> None:
    """``max_nnz(rows, cols, index_bytes=8)``: the most non-zeros for which CSR takes fewer bytes than dense;
    ``break_even(rows, cols, index_bytes=8)``: the smallest sparsity at which CSR wins.

    Introduced in solutions/08_does_pruning_compress.ipynb.
    """
    __tracebackhide__ = True
    hint = ("CSR is smaller while csr_bytes(rows, cols, nnz, index_bytes) < 4 * rows * cols (the dense float32 "
            "bytes): find the largest such nnz, e.g. solve the inequality for nnz and mind the strict '<' "
            "(an exact tie does not win), or step nnz down from rows * cols.")
    expected = {case: _torch_max_nnz(case[0], case[1], _INDEX_DTYPES[case[2]]) for case in BREAK_EVEN_CASES}
    for (rows, cols, index_bytes), nnz in expected.items():
        check_equal(describe_call(max_nnz, rows, cols, index_bytes=index_bytes),
                    call(max_nnz, rows, cols, index_bytes=index_bytes), nnz, hint)
    for (rows, cols, index_bytes), nnz in expected.items():
        check_equal(describe_call(break_even, rows, cols, index_bytes=index_bytes),
                    call(break_even, rows, cols, index_bytes=index_bytes), 1 - nnz / (rows * cols),
                    "the smallest sparsity at which CSR wins is 1 - max_nnz(rows, cols, index_bytes) / (rows * cols): "
                    "the share of zeros when exactly max_nnz values are kept. Compute it from the arguments.")


@exercise(4, "compress keeps the non-zero values and a bit-packed mask; decompress rebuilds the weight exactly")
def check_08_values_and_bits(compress: Callable[[torch.Tensor], tuple[Any, Any]],
                             decompress: Callable[[Any, Any, tuple[int, ...]], torch.Tensor]) -> None:
    """``compress(w) -> (values, packed)``: the non-zeros in row-major order and a 1-bit-per-entry mask;
    ``decompress(values, packed, shape)`` gives ``w`` back.

    Introduced in solutions/08_does_pruning_compress.ipynb.
    """
    __tracebackhide__ = True
    with torch.random.fork_rng():
        torch.manual_seed(0)
        fc1 = torch.randn(120, 400)
        weights = {
            # + 0.0 turns the -0.0 of pruned negative weights into 0.0, so that hints show plain zeros
            "a 90%-pruned (120, 400) weight": prune.L1Unstructured(0.9).prune(fc1) + 0.0,
            "a 50%-pruned (6, 1, 3, 3) conv weight (54 entries)":
                prune.L1Unstructured(0.5).prune(torch.randn(6, 1, 3, 3)) + 0.0,
            "a (10, 3) weight without zeros": torch.randn(10, 3),
            "an all-zero (5, 5) weight": torch.zeros(5, 5),
        }
    for label, w in weights.items():
        out = call(compress, w.clone())
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            fail(f"compress(<{label}>) returned {show(out)}, expected a pair (values, packed).",
                 "return `values, packed`.")
        values, packed = out
        check_equal(f"values of compress(<{label}>)", values, w[w != 0],
                    "keep only the non-zero entries, in row-major order: `w[w != 0]` (a 1-D float32 tensor).")
        if isinstance(packed, np.ndarray):
            nbytes = packed.nbytes
        elif isinstance(packed, torch.Tensor):
            nbytes = packed.numel() * packed.element_size()
        else:
            fail(f"packed of compress(<{label}>) is {show(packed)} (a {type_name(packed)}), expected a NumPy "
                 "array (or a uint8 tensor).", "`np.packbits((w != 0).flatten().numpy())` returns a uint8 array.")
        check_equal(f"bytes of packed, for <{label}>", int(nbytes), math.ceil(w.numel() / 8),
                    "one bit per entry, 8 entries per byte, the last byte padded: `np.packbits` on the flat bool "
                    "mask. A bool tensor or array takes a whole byte per entry.")
        back = call(decompress, values, packed, tuple(w.shape))
        check_equal(f"decompress(*compress(<{label}>), {tuple(w.shape)})", back, w,
                    "unpack with `np.unpackbits(packed, count=n)` (count drops the padding bits), then put the "
                    "values where the bits are 1 in a zero float32 tensor of n entries, and reshape.")


def _cut_filters(conv: nn.Conv2d, amount: float | int) -> None:
    """Structured-prune ``conv``'s output filters (L2) and mask their biases too, as notebook 08 does."""
    prune.ln_structured(conv, "weight", amount=amount, n=2, dim=0)
    prune.custom_from_mask(conv, "bias", mask=conv.weight_mask.flatten(1).any(dim=1).float())


@exercise(5, "shrink rebuilds both convolutions without the pruned filters and computes exactly the same")
def check_08_shrink(shrink: Callable[[nn.Conv2d, nn.Conv2d], tuple[nn.Conv2d, nn.Conv2d]]) -> None:
    """``shrink(conv, nxt) -> (small_conv, small_next)``: plain ``nn.Conv2d`` layers without the filters that
    ``ln_structured`` pruned in ``conv`` (and without the matching input channels of ``nxt``), same output.

    Introduced in solutions/08_does_pruning_compress.ipynb.
    """
    __tracebackhide__ = True
    hint = ("keep the filters whose mask row is not all zero: `kept = conv.weight_mask.flatten(1).any(dim=1)`; "
            "build `nn.Conv2d(conv.in_channels, n_kept, conv.kernel_size, stride=conv.stride, "
            "padding=conv.padding)` with `conv.weight[kept]` and `conv.bias[kept]`, and a next layer with "
            "`n_kept` input channels holding `nxt.weight[:, kept]` (the second dimension: input channels) and all "
            "of `nxt.bias`. Copy under `torch.no_grad()`.")
    with torch.random.fork_rng():
        torch.manual_seed(0)
        cases = []
        conv, nxt = nn.Conv2d(6, 16, 3), nn.Conv2d(16, 32, 3)
        _cut_filters(conv, 8)
        cases.append(("Conv2d(6, 16, 3) with 8 filters cut, then Conv2d(16, 32, 3)", conv, nxt, torch.randn(2, 6, 13, 13)))
        conv, nxt = nn.Conv2d(3, 8, 5, stride=2, padding=2), nn.Conv2d(8, 4, 3, padding=1)
        _cut_filters(conv, 0.5)
        cases.append(("Conv2d(3, 8, 5, stride=2, padding=2) with half its filters cut, then Conv2d(8, 4, 3, "
                      "padding=1)", conv, nxt, torch.randn(2, 3, 16, 16)))
        model = pretrained("cpu")
        _cut_filters(model.conv1, 4)
        prune.ln_structured(model.conv2, "weight", amount=8, n=2, dim=0)
        cases.append(("LeNet's conv1 with 4 of 6 filters cut, then its conv2 (pruned too)", model.conv1, model.conv2,
                      torch.randn(2, 1, 28, 28)))
        for label, conv, nxt, x in cases:
            n_kept = int(conv.weight_mask.flatten(1).any(dim=1).sum())
            out = call(shrink, conv, nxt)
            if not isinstance(out, (tuple, list)) or len(out) != 2:
                fail(f"shrink(<{label}>) returned {show(out)}, expected a pair (small_conv, small_next).",
                     "return the two new layers: `return small, small_next`.")
            small, small_next = out
            for name, layer in (("small_conv", small), ("small_next", small_next)):
                if not isinstance(layer, nn.Conv2d):
                    fail(f"{name} for <{label}> is {show(layer)} (a {type_name(layer)}), expected an nn.Conv2d.",
                         hint)
                if any(n.endswith("_orig") for n, _ in layer.named_parameters()):
                    fail(f"{name} for <{label}> still holds a pruning reparametrization (`weight_orig`).",
                         "build new `nn.Conv2d` layers and copy the kept slices into them: no masks left.")
            check_equal(f"small_conv.weight.shape for <{label}>", tuple(small.weight.shape),
                        (n_kept, *conv.weight.shape[1:]), hint)
            check_equal(f"small_next.weight.shape for <{label}>", tuple(small_next.weight.shape),
                        (nxt.weight.shape[0], n_kept, *nxt.weight.shape[2:]), hint)
            with torch.no_grad():
                expected = nxt(F.relu(conv(x)))
                try:
                    got = small_next(F.relu(small(x)))
                except RuntimeError as e:
                    fail(f"running small_next(relu(small_conv(x))) for <{label}> raised: {e}", hint)
            check_equal(f"small_next(relu(small_conv(x))) for <{label}>", got, expected, hint, rtol=1e-4, atol=1e-5)
