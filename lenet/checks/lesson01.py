"""Checks of lesson 01 · Load the trained LeNet (solutions/01_load_lenet.ipynb)."""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..data import MNIST
from ..model import layer_shapes
from ..training import evaluate, predict
from .core import NotAttempted, as_number, call, check_equal, describe_call, exercise, fail, show


def _conv_pool_numel(size: int) -> int:
    """Numbers after conv1 -> ReLU -> pool -> conv2 -> ReLU -> pool for one size x size image (torch's own)."""
    x = torch.zeros(1, 1, size, size)
    x = F.max_pool2d(F.relu(F.conv2d(x, torch.zeros(6, 1, 3, 3))), 2)
    x = F.max_pool2d(F.relu(F.conv2d(x, torch.zeros(16, 6, 3, 3))), 2)
    return torch.flatten(x, 1).shape[1]


@exercise(1, "the output shapes of all five layers for a batch of 8 images")
def check_01_batch_shapes(shapes: dict[str, tuple[int, ...]], model: nn.Module) -> None:
    """``shapes`` maps each layer name to its output shape for an (8, 1, 28, 28) batch (as `lenet.layer_shapes`).

    Introduced in solutions/01_load_lenet.ipynb.
    """
    __tracebackhide__ = True
    expected = dict(layer_shapes(model, torch.zeros(8, 1, 28, 28, device=next(model.parameters()).device)))
    check_equal("shapes", shapes, expected,
                hint="the batch dimension comes first and stays 8; a 3x3 convolution without padding takes 2 "
                     "pixels off the height and the width, and the 2x2 pooling after it halves them; fc layers "
                     "give (batch, out_features). "
                     "Compare with `lenet.layer_shapes(model, torch.zeros(8, 1, 28, 28))`.")


@exercise(2, "conv_out agrees with torch.nn.Conv2d, and fc1 would take 576 inputs for 32x32 images")
def check_01_conv_out(conv_out: Callable[..., int], fc1_inputs_32: int) -> None:
    """``conv_out(size, kernel, stride=1, padding=0)`` is the Conv2d output size; ``fc1_inputs_32`` uses it.

    Introduced in solutions/01_load_lenet.ipynb.
    """
    __tracebackhide__ = True
    for size, kernel, stride, padding in [(28, 3, 1, 0), (13, 3, 1, 0), (28, 3, 2, 1), (28, 5, 2, 2),
                                          (7, 3, 3, 0), (32, 1, 1, 1), (10, 4, 3, 0)]:
        x = torch.zeros(1, 1, size, size)
        expected = F.conv2d(x, torch.zeros(1, 1, kernel, kernel), stride=stride, padding=padding).shape[-1]
        got = call(conv_out, size, kernel, stride=stride, padding=padding)
        check_equal(describe_call(conv_out, size, kernel, stride=stride, padding=padding), got, expected,
                    hint="that is what torch.nn.Conv2d gives. Sizes are whole numbers: the formula under "
                         "'Shape' in `help(torch.nn.Conv2d)` adds 2*padding, subtracts the kernel, "
                         "divides by the stride rounding down (//) and adds 1.")
    check_equal("fc1_inputs_32", fc1_inputs_32, _conv_pool_numel(32),
                hint="torch's own conv1 -> pool -> conv2 -> pool on a 32x32 image gives that many numbers. "
                     "Apply conv_out, then 2x2 pooling (size // 2), twice; then multiply by the 16 channels "
                     "of conv2 and by the height and width.")


@exercise(3, "conv_params and linear_params count weights and biases like torch, for every LeNet layer")
def check_01_param_counts(conv_params: Callable[[int, int, int], int],
                          linear_params: Callable[[int, int], int]) -> None:
    """``conv_params(c_in, c_out, k)`` and ``linear_params(n_in, n_out)`` count parameters by hand.

    Introduced in solutions/01_load_lenet.ipynb.
    """
    __tracebackhide__ = True
    hint = ("torch counts every tensor in `layer.parameters()`: the weight (shape (c_out, c_in, k, k) for "
            "Conv2d, (n_out, n_in) for Linear) and the bias (one number per output). "
            "Compare with `sum(p.numel() for p in layer.parameters())`.")
    for c_in, c_out, k in [(1, 6, 3), (6, 16, 3), (3, 8, 5)]:
        layer = nn.Conv2d(c_in, c_out, k, device="meta")  # meta: shapes only, no memory, no random numbers
        expected = sum(p.numel() for p in layer.parameters())
        check_equal(describe_call(conv_params, c_in, c_out, k), call(conv_params, c_in, c_out, k), expected, hint)
    for n_in, n_out in [(400, 120), (120, 84), (84, 10), (10, 1)]:
        layer = nn.Linear(n_in, n_out, device="meta")
        expected = sum(p.numel() for p in layer.parameters())
        check_equal(describe_call(linear_params, n_in, n_out), call(linear_params, n_in, n_out), expected, hint)


@exercise(4, "the accuracy computed from lenet.predict equals lenet.evaluate")
def check_01_accuracy(acc: float, model: nn.Module, data: MNIST) -> None:
    """``acc`` is the fraction of test images ``lenet.predict`` gets right, a float in [0, 1].

    Introduced in solutions/01_load_lenet.ipynb.
    """
    __tracebackhide__ = True
    check_equal("acc", acc, evaluate(model, data),
                hint="accuracy is a fraction: compare `lenet.predict(model, data.test_x)` with `data.test_y` "
                     "(a bool tensor), then take the mean of it as floats: `.float().mean().item()`; "
                     "`lenet.evaluate(model, data)` gives the value to match.")


def _confusion(true: torch.Tensor, pred: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Reference confusion matrix, counted one pair at a time (row = true class, column = prediction)."""
    matrix = torch.zeros(num_classes, num_classes, dtype=torch.int64)
    for t, p in zip(true.tolist(), pred.tolist()):
        matrix[t, p] += 1
    return matrix


@exercise(5, "confusion_matrix matches a hand-computed case and LeNet's test predictions; the most confused pair is right")
def check_01_confusion(confusion_matrix: Callable[..., torch.Tensor], most_confused: tuple[int, int],
                       model: nn.Module, data: MNIST) -> None:
    """``confusion_matrix(true, pred, num_classes)`` counts (true, predicted) pairs; ``most_confused`` is its
    largest off-diagonal entry as ``(true digit, predicted digit)``.

    Introduced in solutions/01_load_lenet.ipynb.
    """
    __tracebackhide__ = True
    hint = ("entry [t, p] counts the images of true class t predicted as p (rows: true, columns: predicted), "
            "as an int64 tensor of shape (num_classes, num_classes). One way: "
            "`torch.bincount(true * num_classes + pred, minlength=num_classes ** 2)`, reshaped.")
    true, pred = torch.tensor([0, 1, 1, 2, 2, 2]), torch.tensor([0, 2, 1, 2, 0, 2])
    check_equal(describe_call(confusion_matrix, true, pred, 3), call(confusion_matrix, true, pred, 3),
                _confusion(true, pred, 3), hint)
    test_pred = predict(model, data.test_x)
    expected = _confusion(data.test_y, test_pred, 10)
    check_equal("confusion_matrix(data.test_y, lenet.predict(model, data.test_x), 10)",
                call(confusion_matrix, data.test_y, test_pred, 10), expected, hint)
    off = expected - torch.diag(torch.diag(expected))
    worst = int(off.max())
    pairs = {(t, p) for t, p in torch.nonzero(off == worst).tolist()}
    mine = tuple(as_number(v) for v in most_confused) if isinstance(most_confused, (tuple, list)) else most_confused
    if mine is None or mine is ... or isinstance(mine, tuple) and ... in mine:
        raise NotAttempted("`most_confused` is still a placeholder: replace it with a (true, predicted) pair.\n"
                           "Hint: look for the largest entry off the diagonal.")
    if mine not in pairs:
        fail(f"`most_confused` is {show(mine)}, expected {show(min(pairs))}: {worst} test images of digit "
             f"{min(pairs)[0]} are predicted as {min(pairs)[1]}.",
             "zero the diagonal (the correct predictions) first, e.g. `m - torch.diag(torch.diag(m))`, then find "
             "the largest entry with `argmax()` and turn the flat index into (row, column) with `divmod(i, 10)`; "
             "the pair is (true, predicted), row first.")
