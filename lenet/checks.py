"""Checks for the exercises: compare a learner's answer with a hand-computed case or with torch.

A check cell calls one function of this module, e.g. ``lenet.checks.check_01_batch_shapes(shapes, model)``.
It prints one stable line when the answer is right (``Exercise 1 passed: ...``) and otherwise raises
:class:`CheckFailed`, whose message is the hint: what was expected, what was got, which API to look at.
In Jupyter the learner sees only their own cell and that message, never a traceback from inside ``lenet``.

Building blocks (use them in every check):

- :func:`exercise` decorates a check: gives it its exercise number, prefixes hints with
  ``Exercise N:`` and prints ``Exercise N passed: <what>`` on success.
- :func:`check_equal` compares one answer with the expected value: tensors (shape, dtype, values with
  a tolerance for floats), ints (an int is required, 26.0 is not 26), floats (tolerance), bools,
  strings, tuples/lists/``torch.Size`` (element by element), dicts (keys, then values), sets.
  An answer that is still ``None`` or ``...`` raises :class:`NotAttempted`.
- :func:`call` calls a function the learner wrote; the untouched skeleton's ``NotImplementedError``
  becomes :class:`NotAttempted`.
- :func:`fail` raises :class:`CheckFailed` for a comparison ``check_equal`` cannot express.

Checks are grouped by lesson below, one function per exercise, named ``check_NN_<what>`` where NN is
the lesson's two-digit prefix; the decorator's number is the exercise's number in that lesson.
How to write exercises for a new lesson: see ``exercise_howto.md`` (the notebook conventions are
listed in the docstring of :mod:`lenet.grade`).

Rules for a check: compute the expected value from a tiny hand-computed case or from torch's own
result, never from a stored number that could drift; do not consume the global random number
generator (build modules inside ``torch.random.fork_rng()`` or on ``device="meta"``), so that a
check does not change what the learner's next seeded cell draws; do not modify the learner's objects.

Introduced in solutions/01_load_lenet.ipynb.
"""
from __future__ import annotations

import functools
import math
import numbers
import types
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ParamSpec

import torch
import torch.nn.functional as F
from torch import nn

from .data import MNIST
from .model import layer_shapes
from .training import evaluate, predict

P = ParamSpec("P")

#: Longest rendering of a value inside a hint (longer ones are cut with "...").
MAX_SHOWN = 160


class CheckFailed(AssertionError):
    """The learner's answer is wrong; ``str(error)`` is the hint (expected, got, where to look).

    In IPython/Jupyter the traceback is cut down to the learner's own cells: frames of functions
    that set ``__tracebackhide__ = True`` (every check here) are left out, including the innermost
    one, which IPython's own ``__tracebackhide__`` support would still show.
    """

    def _render_traceback_(self) -> list[str]:
        """What IPython shows for this error: the learner's frames and the hint, nothing from lenet."""
        try:
            from IPython import get_ipython

            shell = get_ipython()
            tb = _visible_traceback(self.__traceback__)
            if shell is None or tb is None:
                raise LookupError("no IPython shell or no visible frame")
            return list(shell.InteractiveTB.structured_traceback(type(self), self, tb, tb_offset=0))
        except Exception:
            return [f"{type(self).__name__}: {self}"]


class NotAttempted(CheckFailed):
    """The answer is still the placeholder: ``None``, ``...`` or a skeleton raising NotImplementedError."""


def _visible_traceback(tb: types.TracebackType | None) -> types.TracebackType | None:
    """A copy of the traceback chain without frames whose locals set ``__tracebackhide__``."""
    kept: list[types.TracebackType] = []
    while tb is not None:
        if not tb.tb_frame.f_locals.get("__tracebackhide__"):
            kept.append(tb)
        tb = tb.tb_next
    chain: types.TracebackType | None = None
    for entry in reversed(kept):
        chain = types.TracebackType(chain, entry.tb_frame, entry.tb_lasti, entry.tb_lineno)
    return chain


def fail(problem: str, hint: str) -> None:
    """Raise :class:`CheckFailed` with ``problem`` (what was expected and got) and ``hint`` (where to look)."""
    __tracebackhide__ = True
    raise CheckFailed(f"{problem}\nHint: {hint}")


def exercise(number: int, what: str) -> Callable[[Callable[P, None]], Callable[P, None]]:
    """Make a function the check of exercise ``number``: prefix its hints, print a line on success.

    The decorated function raises :class:`CheckFailed` (usually through :func:`check_equal`) when the
    answer is wrong; on success the wrapper prints ``Exercise {number} passed: {what}``, the line
    nbval compares. The number is kept as ``fn.exercise`` for the tests.
    """

    def decorate(fn: Callable[P, None]) -> Callable[P, None]:
        @functools.wraps(fn)
        def check(*args: P.args, **kwargs: P.kwargs) -> None:
            __tracebackhide__ = True
            try:
                fn(*args, **kwargs)
            except CheckFailed as e:
                # a fresh exception: its traceback starts here, so nothing inside the check shows
                raise type(e)(f"Exercise {number}: {e}") from None
            print(f"Exercise {number} passed: {what}")

        check.exercise = number  # type: ignore[attr-defined]
        check.what = what  # type: ignore[attr-defined]
        return check

    return decorate


def _show(value: object) -> str:
    """A short, readable rendering of ``value`` for a hint."""
    if isinstance(value, torch.Tensor):
        if value.numel() <= 16:
            text = f"tensor({value.tolist()})" if value.dim() else f"tensor({value.item()!r})"
        else:
            text = f"a tensor of shape {tuple(value.shape)}"
        if value.dtype not in (torch.float32, torch.int64):
            text += f" ({value.dtype})"
        return text
    if isinstance(value, float):
        text = f"{value:.6g}"
        return text + ".0" if text.lstrip("-").isdigit() else text
    if isinstance(value, torch.Size):
        value = tuple(value)
    if callable(value) and hasattr(value, "__name__"):
        return f"the function {value.__name__}"
    text = repr(value)
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 3] + "..."


def _type_name(value: object) -> str:
    return type(value).__name__


def _as_number(value: object) -> object:
    """0-dim tensors and NumPy scalars as plain Python numbers; anything else unchanged."""
    if isinstance(value, torch.Tensor) and value.dim() == 0:
        return value.item()
    if isinstance(value, numbers.Number) and type(value).__module__ == "numpy":
        return value.item()  # type: ignore[attr-defined]
    return value


def check_equal(name: str, mine: object, expected: object, hint: str, *, rtol: float = 1e-5,
                atol: float = 1e-6, check_dtype: bool = True) -> None:
    """Raise :class:`CheckFailed` unless ``mine`` equals ``expected``; the message names ``name``.

    Args:
        name: how the answer is called in the message, e.g. ``"shapes"`` or ``"conv_out(28, 3)"``.
        mine: the learner's answer. ``None`` or ``...`` raises :class:`NotAttempted`.
        expected: the right answer; its type decides the comparison (see the module docstring).
        hint: where to look (the API, the formula); appended to every failure as ``Hint: ...``.
        rtol, atol: tolerance for floats and floating tensors.
        check_dtype: tensors must have the expected dtype (a bool mask is not torch's float mask).
    """
    __tracebackhide__ = True
    if mine is None or mine is ...:
        raise NotAttempted(f"`{name}` is still {mine!r}: replace it with your answer.\nHint: {hint}")
    problem = _difference(name, mine, expected, rtol, atol, check_dtype)
    if problem is not None:
        fail(problem, hint)


def _difference(name: str, mine: object, expected: object, rtol: float, atol: float, check_dtype: bool) -> str | None:
    """Why ``mine`` differs from ``expected`` (one sentence), or None when they match."""
    if isinstance(expected, torch.Tensor):
        return _tensor_difference(name, mine, expected, rtol, atol, check_dtype)
    mine = _as_number(mine)
    got = f"`{name}` is {_show(mine)}"
    if isinstance(expected, bool):
        if not isinstance(mine, bool):
            return f"{got} (a {_type_name(mine)}), expected the bool {expected}."
        return None if mine == expected else f"{got}, expected {expected}."
    if isinstance(expected, int):
        if isinstance(mine, bool) or not isinstance(mine, int):
            return f"{got} (a {_type_name(mine)}), expected the int {expected}."
        return None if mine == expected else f"{got}, expected {expected}."
    if isinstance(expected, float):
        if isinstance(mine, bool) or not isinstance(mine, (int, float)):
            return f"{got} (a {_type_name(mine)}), expected a number close to {_show(expected)}."
        if math.isclose(mine, expected, rel_tol=rtol, abs_tol=atol):
            return None
        return f"{got}, expected {_show(expected)}."
    if isinstance(expected, (set, frozenset)):
        if not isinstance(mine, (set, frozenset, list, tuple)):
            return f"{got} (a {_type_name(mine)}), expected a set like {_show(expected)}."
        missing, extra = set(expected) - set(mine), set(mine) - set(expected)
        if not missing and not extra:
            return None
        parts = ([f"missing {_show(sorted(missing, key=repr))}"] if missing else []) + (
            [f"unexpected {_show(sorted(extra, key=repr))}"] if extra else [])
        return f"`{name}` has {' and '.join(parts)}; expected {_show(expected)}."
    if isinstance(expected, Mapping):
        if not isinstance(mine, Mapping):
            return f"{got} (a {_type_name(mine)}), expected a dict with keys {_show(list(expected))}."
        missing = [k for k in expected if k not in mine]
        extra = [k for k in mine if k not in expected]
        if missing or extra:
            parts = ([f"is missing the keys {_show(missing)}"] if missing else []) + (
                [f"has unexpected keys {_show(extra)}"] if extra else [])
            return f"`{name}` {' and '.join(parts)}; expected the keys {_show(list(expected))}."
        for key in expected:
            problem = _difference(f"{name}[{key!r}]", mine[key], expected[key], rtol, atol, check_dtype)
            if problem is not None:
                return problem
        return None
    if isinstance(expected, Sequence) and not isinstance(expected, str):
        if isinstance(mine, torch.Tensor) or isinstance(mine, str) or not isinstance(mine, Sequence):
            return f"{got} (a {_type_name(mine)}), expected a tuple like {_show(expected)}."
        if len(mine) != len(expected):
            return f"{got}, {len(mine)} items; expected {len(expected)} items: {_show(expected)}."
        for i, (a, b) in enumerate(zip(mine, expected)):
            if _difference(f"{name}[{i}]", a, b, rtol, atol, check_dtype) is not None:
                return f"{got}, expected {_show(expected)} (item {i} differs)."
        return None
    return None if mine == expected else f"{got}, expected {_show(expected)}."


def _tensor_difference(name: str, mine: object, expected: torch.Tensor, rtol: float, atol: float,
                       check_dtype: bool) -> str | None:
    if not isinstance(mine, torch.Tensor):
        return f"`{name}` is {_show(mine)} (a {_type_name(mine)}), expected a tensor: {_show(expected)}."
    if mine.shape != expected.shape:
        return f"`{name}` has shape {tuple(mine.shape)}, expected shape {tuple(expected.shape)}."
    if check_dtype and mine.dtype != expected.dtype:
        return f"`{name}` has dtype {mine.dtype}, expected {expected.dtype}."
    mine = mine.detach().to("cpu", expected.dtype)
    expected = expected.detach().cpu()
    if expected.is_floating_point() or expected.is_complex():
        same = torch.isclose(mine, expected, rtol=rtol, atol=atol, equal_nan=True)
    else:
        same = mine == expected
    if bool(same.all()):
        return None
    if expected.numel() <= 16:
        return f"`{name}` is {_show(mine)}, expected {_show(expected)}."
    first = tuple(int(i) for i in torch.nonzero(~same)[0])
    return (f"`{name}` differs from the expected tensor in {int((~same).sum())} of {expected.numel()} entries; "
            f"the first is at index {first}: {mine[first].item()!r} instead of {expected[first].item()!r}.")


def _call_text(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    shown = [_show(a) for a in args] + [f"{k}={_show(v)}" for k, v in kwargs.items()]
    return f"{getattr(fn, '__name__', 'your function')}({', '.join(shown)})"


def call(fn: object, *args: Any, **kwargs: Any) -> Any:
    """Call the learner's function ``fn``; an untouched skeleton raises :class:`NotAttempted`.

    ``fn`` that is not callable fails with a hint. Other exceptions from the learner's code pass
    through unchanged, so the learner sees the line of their own code that raised.
    """
    __tracebackhide__ = True
    if fn is None or fn is ...:
        raise NotAttempted(f"the function is still {fn!r}: define it with `def ...`.")
    if not callable(fn):
        fail(f"expected a function, got {_show(fn)} (a {_type_name(fn)}).",
             "pass the function itself (its name, without parentheses), not the result of calling it.")
    try:
        return fn(*args, **kwargs)
    except NotImplementedError as e:
        if str(e):
            raise
        raise NotAttempted(f"{_call_text(fn, args, kwargs)} still raises NotImplementedError: "
                           "replace `# YOUR CODE HERE` and the `raise` line with your code.") from None


def describe_call(fn: object, *args: Any, **kwargs: Any) -> str:
    """``"name(arg, ..., key=value)"``: how a call of the learner's function is named in a hint."""
    return _call_text(fn, args, kwargs) if callable(fn) else "your function"


# --------------------------------------------------------------------------------------------------
# Lesson 01 · Load the trained LeNet  (solutions/01_load_lenet.ipynb)
# --------------------------------------------------------------------------------------------------

def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


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
    expected = dict(layer_shapes(model, torch.zeros(8, 1, 28, 28, device=_device(model))))
    check_equal("shapes", shapes, expected,
                hint="the batch dimension comes first and stays 8; a 3x3 convolution without padding takes 2 "
                     "pixels off each side's length, 2x2 pooling halves it; fc layers give (batch, out_features). "
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
    mine = tuple(_as_number(v) for v in most_confused) if isinstance(most_confused, (tuple, list)) else most_confused
    if mine is None or mine is ... or isinstance(mine, tuple) and ... in mine:
        raise NotAttempted("`most_confused` is still a placeholder: replace it with a (true, predicted) pair.\n"
                           "Hint: look for the largest entry off the diagonal.")
    if mine not in pairs:
        fail(f"`most_confused` is {_show(mine)}, expected {_show(min(pairs))}: {worst} test images of digit "
             f"{min(pairs)[0]} are predicted as {min(pairs)[1]}.",
             "zero the diagonal (the correct predictions) first, e.g. `m - torch.diag(torch.diag(m))`, then find "
             "the largest entry with `argmax()` and turn the flat index into (row, column) with `divmod(i, 10)`; "
             "the pair is (true, predicted), row first.")


# ==== Lesson 02 checks (solutions/02_*.ipynb) ====


# ==== Lesson 03 checks (solutions/03_*.ipynb) ====


# ==== Lesson 04 checks (solutions/04_*.ipynb) ====


# ==== Lesson 05 checks (solutions/05_*.ipynb) ====


# ==== Lesson 06 checks (solutions/06_*.ipynb) ====


# ==== Lesson 07 checks (solutions/07_*.ipynb) ====


# ==== Lesson 08 checks (solutions/08_*.ipynb) ====
