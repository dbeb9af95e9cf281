"""Checks of lesson 01 · Load the trained LeNet (solutions/01_load_lenet.ipynb)."""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..data import MNIST
from ..model import layer_shapes
from ..training import predict
from .core import as_number, call, check_equal, describe_call, exercise, fail, show


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


@exercise(2, "conv_out agrees with torch.nn.Conv2d, and fc1_inputs(size) with torch's layers for any image size")
def check_01_conv_out(conv_out: Callable[..., int], fc1_inputs: Callable[[int], int]) -> None:
    """``conv_out(size, kernel, stride=1, padding=0)`` is the Conv2d output size; ``fc1_inputs(size)`` uses it to
    count what reaches fc1 for ``size`` x ``size`` images.

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
    for size in (28, 32, 35, 64, 15):  # 28 and 32 are the notebook's; odd sizes test the rounding of the pooling
        check_equal(describe_call(fc1_inputs, size), call(fc1_inputs, size), _conv_pool_numel(size),
                    hint=f"torch's own conv1 -> pool -> conv2 -> pool on a {size}x{size} image gives that many "
                         "numbers. Apply conv_out(size, 3), then the 2x2 pooling (// 2, which rounds down), twice; "
                         "then multiply by the 16 channels of conv2 and by the height and the width.")


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


def _seeded_predictions(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` random predictions and labels among 10 classes, from a private generator."""
    gen = torch.Generator().manual_seed(1)
    return torch.randint(0, 10, (n,), generator=gen), torch.randint(0, 10, (n,), generator=gen)


@exercise(4, "accuracy(preds, labels) is the fraction of right predictions, for LeNet's and for unseen ones")
def check_01_accuracy(accuracy: Callable[[torch.Tensor, torch.Tensor], float], model: nn.Module, data: MNIST) -> None:
    """``accuracy(preds, labels)`` is the fraction of ``preds`` equal to ``labels``, a float in [0, 1].

    Introduced in solutions/01_load_lenet.ipynb.
    """
    __tracebackhide__ = True
    hint = ("accuracy is a fraction, not a count: `preds == labels` is a bool tensor, and `.float().mean().item()` "
            "turns it into a Python float between 0 and 1. Compute it from the arguments: the check also passes "
            "other predictions than the notebook's. `lenet.evaluate(model, data)` gives the value for the test set.")
    random_preds, random_labels = _seeded_predictions(1000)
    cases = [
        ("tensor([3, 1, 4, 1]), tensor([3, 1, 5, 9])", torch.tensor([3, 1, 4, 1]), torch.tensor([3, 1, 5, 9])),
        ("lenet.predict(model, data.test_x), data.test_y", predict(model, data.test_x), data.test_y),
        ("lenet.predict(model, data.train_x[:500]), data.train_y[:500]", predict(model, data.train_x[:500]),
         data.train_y[:500]),
        ("1,000 random predictions, 1,000 random labels", random_preds, random_labels),
    ]
    for label, preds, labels in cases:
        expected = (preds.cpu() == labels.cpu()).sum().item() / len(labels)
        check_equal(f"accuracy({label})", call(accuracy, preds.clone(), labels.clone()), expected, hint)


def _confusion(true: torch.Tensor, pred: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Reference confusion matrix, counted one pair at a time (row = true class, column = prediction)."""
    matrix = torch.zeros(num_classes, num_classes, dtype=torch.int64)
    for t, p in zip(true.tolist(), pred.tolist()):
        matrix[t, p] += 1
    return matrix


def _most_confused_cases(model: nn.Module, data: MNIST) -> list[tuple[str, torch.Tensor]]:
    """(label, confusion matrix): two hand-made ones (the second with a tie) and LeNet's on test and train images."""
    return [
        ("torch.tensor([[5, 1, 0], [2, 7, 4], [0, 3, 9]])", torch.tensor([[5, 1, 0], [2, 7, 4], [0, 3, 9]])),
        ("torch.tensor([[9, 2, 0, 2], [1, 8, 0, 0], [2, 0, 7, 1], [0, 0, 0, 6]])",
         torch.tensor([[9, 2, 0, 2], [1, 8, 0, 0], [2, 0, 7, 1], [0, 0, 0, 6]])),
        ("LeNet's confusion matrix on the test images", _confusion(data.test_y, predict(model, data.test_x), 10)),
        ("LeNet's confusion matrix on the first 2,000 training images",
         _confusion(data.train_y[:2000], predict(model, data.train_x[:2000]), 10)),
    ]


@exercise(5, "confusion_matrix counts like a hand-made loop; most_confused finds the worst pair of any matrix")
def check_01_confusion(confusion_matrix: Callable[..., torch.Tensor],
                       most_confused: Callable[[torch.Tensor], tuple[int, int]], model: nn.Module, data: MNIST) -> None:
    """``confusion_matrix(true, pred, num_classes)`` counts (true, predicted) pairs; ``most_confused(matrix)`` is the
    position ``(true, predicted)`` of the largest entry off the diagonal (any of them when several tie).

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
    check_equal("confusion_matrix(data.test_y, lenet.predict(model, data.test_x), 10)",
                call(confusion_matrix, data.test_y, test_pred, 10), _confusion(data.test_y, test_pred, 10), hint)
    hint = ("zero the diagonal (the correct predictions) first, e.g. `m - torch.diag(torch.diag(m))`, then find "
            "the largest entry with `argmax()`, which gives a flat index, and turn it into (row, column) with "
            "`divmod(index, m.shape[1])`: the matrix is not always 10 x 10. The pair is (true, predicted), row "
            "first, as two ints; when several entries tie, any of them is accepted.")
    for label, matrix in _most_confused_cases(model, data):
        got = call(most_confused, matrix.clone())
        what = f"most_confused({label})"
        mine = tuple(as_number(v) for v in got) if isinstance(got, (tuple, list)) else as_number(got)
        if not (isinstance(mine, tuple) and len(mine) == 2 and all(isinstance(v, int) for v in mine)):
            fail(f"`{what}` is {show(got)}, expected a pair of ints (true, predicted).", hint)
        off = matrix - torch.diag(torch.diag(matrix))
        worst = int(off.max())
        pairs = sorted((t, p) for t, p in torch.nonzero(off == worst).tolist())
        if mine not in pairs:
            right = show(pairs[0]) if len(pairs) == 1 else "one of " + ", ".join(map(show, pairs))
            fail(f"`{what}` is {show(mine)}, expected {right}: the largest count off the diagonal is {worst}.", hint)
