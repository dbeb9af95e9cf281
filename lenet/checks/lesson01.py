"""Checks of lesson 01 · Load the trained LeNet (solutions/01_load_lenet.ipynb).

The worked example of a check in three parts (docs/authoring.md): ``cases`` (plain data), ``collect`` (runs the
learner's code on a case where the learner's code runs) and ``judge`` (compares with torch, in the grader's own
process when a grader grades).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..model import layer_shapes
from ..training import predict
from .core import Check, as_number, call, check_equal, exercise, fail, show, written_call
from .reference import quiet_data, quiet_pretrained


def _conv_pool_numel(size: int) -> int:
    """Numbers after conv1 -> ReLU -> pool -> conv2 -> ReLU -> pool for one size x size image (torch's own)."""
    x = torch.zeros(1, 1, size, size)
    x = F.max_pool2d(F.relu(F.conv2d(x, torch.zeros(6, 1, 3, 3))), 2)
    x = F.max_pool2d(F.relu(F.conv2d(x, torch.zeros(16, 6, 3, 3))), 2)
    return torch.flatten(x, 1).shape[1]


def _draw(gen: torch.Generator, low: int, high: int) -> int:
    """An int in [low, high] from ``gen``."""
    return int(torch.randint(low, high + 1, (1,), generator=gen))


@exercise(1, "the output shapes of all five layers for a batch of 8 images")
class check_01_batch_shapes(Check):
    """``shapes`` maps each layer name to its output shape for an (8, 1, 28, 28) batch (as `lenet.layer_shapes`).

    Introduced in solutions/01_load_lenet.ipynb.
    """

    def collect(self, case: dict, shapes: dict[str, tuple[int, ...]], model: nn.Module) -> Any:
        return shapes

    def judge(self, case: dict, got: Any) -> None:
        expected = dict(layer_shapes(quiet_pretrained(), torch.zeros(8, 1, 28, 28)))
        check_equal("shapes", got, expected,
                    hint="the batch dimension comes first and stays 8; a 3x3 convolution without padding takes 2 "
                         "pixels off the height and the width, and the 2x2 pooling after it halves them; fc layers "
                         "give (batch, out_features). "
                         "Compare with `lenet.layer_shapes(model, torch.zeros(8, 1, 28, 28))`.")


@exercise(2, "conv_out agrees with torch.nn.Conv2d, and fc1_inputs(size) with torch's layers for any image size")
class check_01_conv_out(Check):
    """``conv_out(size, kernel, stride=1, padding=0)`` is the Conv2d output size; ``fc1_inputs(size)`` uses it to
    count what reaches fc1 for ``size`` x ``size`` images.

    Introduced in solutions/01_load_lenet.ipynb.
    """

    def cases(self, gen: torch.Generator) -> list[dict]:
        convs = [(28, 3, 1, 0), (13, 3, 1, 0), (28, 3, 2, 1), (28, 5, 2, 2), (7, 3, 3, 0), (32, 1, 1, 1), (10, 4, 3, 0)]
        for _ in range(3):  # unseen: a size, a kernel that fits, a stride, a padding
            size = _draw(gen, 5, 64)
            convs.append((size, _draw(gen, 1, min(size, 7)), _draw(gen, 1, 3), _draw(gen, 0, 2)))
        sizes = [28, 32, 35, 64, 15, _draw(gen, 16, 100)]  # 28 and 32 are the notebook's; odd sizes test pooling
        return ([{"size": s, "kernel": k, "stride": st, "padding": p} for s, k, st, p in convs]
                + [{"fc1_size": s} for s in sizes])

    def collect(self, case: dict, conv_out: Callable[..., int], fc1_inputs: Callable[[int], int]) -> Any:
        if "fc1_size" in case:
            return call(fc1_inputs, case["fc1_size"])
        return call(conv_out, case["size"], case["kernel"], stride=case["stride"], padding=case["padding"])

    def judge(self, case: dict, got: Any) -> None:
        if "fc1_size" in case:
            size = case["fc1_size"]
            check_equal(written_call("fc1_inputs", size), got, _conv_pool_numel(size),
                        hint=f"torch's own conv1 -> pool -> conv2 -> pool on a {size}x{size} image gives that many "
                             "numbers. Apply conv_out(size, 3), then the 2x2 pooling (// 2, which rounds down), "
                             "twice; then multiply by the 16 channels of conv2 and by the height and the width.")
            return
        size, kernel, stride, padding = case["size"], case["kernel"], case["stride"], case["padding"]
        x = torch.zeros(1, 1, size, size)
        expected = F.conv2d(x, torch.zeros(1, 1, kernel, kernel), stride=stride, padding=padding).shape[-1]
        check_equal(written_call("conv_out", size, kernel, stride=stride, padding=padding), got, expected,
                    hint="that is what torch.nn.Conv2d gives. Sizes are whole numbers: the formula under "
                         "'Shape' in `help(torch.nn.Conv2d)` adds 2*padding, subtracts the kernel, "
                         "divides by the stride rounding down (//) and adds 1.")


@exercise(3, "conv_params and linear_params count weights and biases like torch, for every LeNet layer")
class check_01_param_counts(Check):
    """``conv_params(c_in, c_out, k)`` and ``linear_params(n_in, n_out)`` count parameters by hand.

    Introduced in solutions/01_load_lenet.ipynb.
    """

    def cases(self, gen: torch.Generator) -> list[dict]:
        convs = [(1, 6, 3), (6, 16, 3), (3, 8, 5), (_draw(gen, 1, 64), _draw(gen, 1, 64), _draw(gen, 1, 7))]
        linears = [(400, 120), (120, 84), (84, 10), (10, 1), (_draw(gen, 1, 1000), _draw(gen, 1, 1000))]
        return [{"conv": c} for c in convs] + [{"linear": n} for n in linears]

    def collect(self, case: dict, conv_params: Callable[[int, int, int], int],
                linear_params: Callable[[int, int], int]) -> Any:
        return call(conv_params, *case["conv"]) if "conv" in case else call(linear_params, *case["linear"])

    def judge(self, case: dict, got: Any) -> None:
        if "conv" in case:  # meta: shapes only, no memory, no random numbers
            name, layer = written_call("conv_params", *case["conv"]), nn.Conv2d(*case["conv"], device="meta")
        else:
            name, layer = written_call("linear_params", *case["linear"]), nn.Linear(*case["linear"], device="meta")
        check_equal(name, got, sum(p.numel() for p in layer.parameters()),
                    hint="torch counts every tensor in `layer.parameters()`: the weight (shape (c_out, c_in, k, k) "
                         "for Conv2d, (n_out, n_in) for Linear) and the bias (one number per output). "
                         "Compare with `sum(p.numel() for p in layer.parameters())`.")


@exercise(4, "accuracy(preds, labels) is the fraction of right predictions, for LeNet's and for unseen ones")
class check_01_accuracy(Check):
    """``accuracy(preds, labels)`` is the fraction of ``preds`` equal to ``labels``, a float in [0, 1].

    Introduced in solutions/01_load_lenet.ipynb.
    """

    def cases(self, gen: torch.Generator) -> list[dict]:
        model, data = quiet_pretrained(), quiet_data()
        n = _draw(gen, 50, 1000)
        return [
            {"label": "tensor([3, 1, 4, 1]), tensor([3, 1, 5, 9])", "preds": torch.tensor([3, 1, 4, 1]),
             "labels": torch.tensor([3, 1, 5, 9])},
            {"label": "lenet.predict(model, data.test_x), data.test_y", "preds": predict(model, data.test_x),
             "labels": data.test_y},
            {"label": "lenet.predict(model, data.train_x[:500]), data.train_y[:500]",
             "preds": predict(model, data.train_x[:500]), "labels": data.train_y[:500]},
            {"label": f"{n:,} random predictions, {n:,} random labels",
             "preds": torch.randint(0, 10, (n,), generator=gen), "labels": torch.randint(0, 10, (n,), generator=gen)},
        ]

    def collect(self, case: dict, accuracy: Callable[[torch.Tensor, torch.Tensor], float], model: nn.Module,
                data: object) -> Any:
        return call(accuracy, case["preds"], case["labels"])

    def judge(self, case: dict, got: Any) -> None:
        expected = (case["preds"] == case["labels"]).sum().item() / len(case["labels"])
        check_equal(f"accuracy({case['label']})", got, expected,
                    hint="accuracy is a fraction, not a count: `preds == labels` is a bool tensor, and "
                         "`.float().mean().item()` turns it into a Python float between 0 and 1. Compute it from "
                         "the arguments: the check also passes other predictions than the notebook's. "
                         "`lenet.evaluate(model, data)` gives the value for the test set.")


def _confusion(true: torch.Tensor, pred: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Reference confusion matrix, counted one pair at a time (row = true class, column = prediction)."""
    matrix = torch.zeros(num_classes, num_classes, dtype=torch.int64)
    for t, p in zip(true.tolist(), pred.tolist()):
        matrix[t, p] += 1
    return matrix


@exercise(5, "confusion_matrix counts like a hand-made loop; most_confused finds the worst pair of any matrix")
class check_01_confusion(Check):
    """``confusion_matrix(true, pred, num_classes)`` counts (true, predicted) pairs; ``most_confused(matrix)`` is the
    position ``(true, predicted)`` of the largest entry off the diagonal (any of them when several tie).

    Introduced in solutions/01_load_lenet.ipynb.
    """

    def cases(self, gen: torch.Generator) -> list[dict]:
        model, data = quiet_pretrained(), quiet_data()
        test_pred, train_pred = predict(model, data.test_x), predict(model, data.train_x[:2000])
        k = _draw(gen, 3, 12)
        true, pred = torch.randint(0, k, (300,), generator=gen), torch.randint(0, k, (300,), generator=gen)
        confusions = [
            ("tensor([0, 1, 1, 2, 2, 2]), tensor([0, 2, 1, 2, 0, 2]), 3", torch.tensor([0, 1, 1, 2, 2, 2]),
             torch.tensor([0, 2, 1, 2, 0, 2]), 3),
            ("data.test_y, lenet.predict(model, data.test_x), 10", data.test_y, test_pred, 10),
            (f"300 random labels and predictions among {k} classes, {k}", true, pred, k),
        ]
        matrices = [
            ("torch.tensor([[5, 1, 0], [2, 7, 4], [0, 3, 9]])", torch.tensor([[5, 1, 0], [2, 7, 4], [0, 3, 9]])),
            ("torch.tensor([[9, 2, 0, 2], [1, 8, 0, 0], [2, 0, 7, 1], [0, 0, 0, 6]])",
             torch.tensor([[9, 2, 0, 2], [1, 8, 0, 0], [2, 0, 7, 1], [0, 0, 0, 6]])),
            ("LeNet's confusion matrix on the test images", _confusion(data.test_y, test_pred, 10)),
            ("LeNet's confusion matrix on the first 2,000 training images",
             _confusion(data.train_y[:2000], train_pred, 10)),
            (f"a random {k} x {k} matrix", torch.randint(0, 50, (k, k), generator=gen)),
        ]
        return ([{"label": label, "true": t, "pred": p, "classes": n} for label, t, p, n in confusions]
                + [{"label": label, "matrix": m} for label, m in matrices])

    def collect(self, case: dict, confusion_matrix: Callable[..., torch.Tensor],
                most_confused: Callable[[torch.Tensor], tuple[int, int]], model: nn.Module, data: object) -> Any:
        if "matrix" in case:
            got = call(most_confused, case["matrix"])
            return tuple(got) if isinstance(got, (tuple, list)) else got
        return call(confusion_matrix, case["true"], case["pred"], case["classes"])

    def judge(self, case: dict, got: Any) -> None:
        if "matrix" not in case:
            check_equal(f"confusion_matrix({case['label']})", got,
                        _confusion(case["true"], case["pred"], case["classes"]),
                        hint="entry [t, p] counts the images of true class t predicted as p (rows: true, columns: "
                             "predicted), as an int64 tensor of shape (num_classes, num_classes). One way: "
                             "`torch.bincount(true * num_classes + pred, minlength=num_classes ** 2)`, reshaped.")
            return
        hint = ("zero the diagonal (the correct predictions) first, e.g. `m - torch.diag(torch.diag(m))`, then find "
                "the largest entry with `argmax()`, which gives a flat index, and turn it into (row, column) with "
                "`divmod(index, m.shape[1])`: the matrix is not always 10 x 10. The pair is (true, predicted), row "
                "first, as two ints; when several entries tie, any of them is accepted.")
        matrix, what = case["matrix"], f"most_confused({case['label']})"
        mine = tuple(as_number(v) for v in got) if isinstance(got, tuple) else as_number(got)
        if not (isinstance(mine, tuple) and len(mine) == 2 and all(isinstance(v, int) for v in mine)):
            fail(f"`{what}` is {show(got)}, expected a pair of ints (true, predicted).", hint)
        off = matrix - torch.diag(torch.diag(matrix))
        worst = int(off.max())
        pairs = sorted((t, p) for t, p in torch.nonzero(off == worst).tolist())
        if mine not in pairs:
            right = show(pairs[0]) if len(pairs) == 1 else "one of " + ", ".join(map(show, pairs))
            fail(f"`{what}` is {show(mine)}, expected {right}: the largest count off the diagonal is {worst}.", hint)
