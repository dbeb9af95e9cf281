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

How to add exercises for lesson NN (the notebook conventions are in the docstring of :mod:`lenet.grade`):

1. Write the solution notebook as a percent script ``solutions_NN_<stem>.py`` (same stem as
   ``notebooks/NN_<stem>.ipynb``), shaped like solutions/01_load_lenet.ipynb: title
   ``# NN · Exercises: <lesson title>``, intro, one setup cell, then 3-6 exercises, then ``## Next``.
   Each exercise: a markdown cell ``### Exercise N: title`` (what to do, hints naming the exact API);
   one or more solution cells whose answer sits between ``### BEGIN SOLUTION`` and ``### END SOLUTION``
   (a ``def`` line or given code may surround the block; one block per cell when it has wrong answers);
   right after a solution cell, one ``# %% [wrong]`` cell per plausible wrong answer, written at column 0
   (it replaces that cell's block); then a check cell calling ``checks.check_NN_<what>(...)`` only.
2. Add ``check_NN_<what>`` here, under the marker line of lesson NN: decorated ``@exercise(N, "what")``
   (N = its exercise's number), typed, docstring ending "Introduced in solutions/NN_<stem>.ipynb.",
   ``__tracebackhide__ = True`` as its first statement, built from :func:`check_equal`, :func:`call`,
   :func:`describe_call` and :func:`fail`, with hints that say where to look.
3. ``python tools/make_exercises.py build solutions_NN_<stem>.py solutions/NN_<stem>.ipynb`` executes
   the solution notebook and rewrites exercises/ (``make exercises`` does the latter alone).
4. Check: ``pytest -n 0 solutions/NN_<stem>.ipynb`` (strict nbval) and
   ``pytest -n 0 tests/test_exercises.py -k NN``: exercises/ is up to date, the untouched exercise grades
   "not attempted" everywhere, each wrong answer "failed" with a hint, each solution "passed".

Rules for a check: compute the expected value from a tiny hand-computed case or from torch's own
result, never from a stored number that could drift; do not consume the global random number
generator (build modules inside ``torch.random.fork_rng()`` or on ``device="meta"``), so that a
check does not change what the learner's next seeded cell draws; do not modify the learner's objects.
Rules for exercise cells: each exercise works from its own fresh objects (``lenet.pretrained()``,
not a model an earlier exercise pruned), so re-running a cell, skipping an exercise or trying a
wrong answer first does not change the next one; slow shared work (training) goes in the setup cell
or in a cell before the exercise's heading, since the tests re-run an exercise's cells once per
wrong answer.

Introduced in solutions/01_load_lenet.ipynb.
"""
from __future__ import annotations

import functools
import math
import numbers
import types
import warnings
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ParamSpec

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import prune
from torch.utils.flop_counter import FlopCounterMode

from .checkpoints import pretrained, refresh_pruned
from .data import MNIST
from .inspection import prunable_parameters
from .model import LeNet, layer_shapes
from . import pruning  # module import: its entries_to_prune must not look like an exercise check here
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
    if isinstance(value, nn.Module):
        return f"a {type(value).__name__}"
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

KINDS_02 = ("parameter", "buffer", "attribute")


def _tensor_kinds02(module: nn.Module) -> dict[str, str]:
    """Reference: where ``module`` itself (not its children) keeps each tensor, read from its internals."""
    kinds = {name: "parameter" for name, p in module._parameters.items() if p is not None}
    kinds.update({name: "buffer" for name, b in module._buffers.items() if b is not None})
    kinds.update({name: "attribute" for name, v in vars(module).items() if isinstance(v, torch.Tensor)})
    return kinds


def _kinds_difference02(name: str, mine: object, expected: dict[str, str]) -> str | None:
    """Like check_equal for a {tensor name: kind} dict, but first refuses kinds other than KINDS_02."""
    if isinstance(mine, Mapping):
        odd = [f"{k!r}: {v!r}" for k, v in mine.items() if v not in KINDS_02]
        if odd:
            return f"`{name}` has values that are not one of {list(KINDS_02)}: {', '.join(odd)}."
    return _difference(name, mine, expected, 1e-5, 1e-6, True)


@exercise(1, "each tensor of Scaler is classified as parameter, buffer or plain attribute")
def check_02_kinds(kinds: dict[str, str], scaler: nn.Module) -> None:
    """``kinds`` maps the name of each tensor that ``scaler`` holds to "parameter", "buffer" or "attribute".

    Introduced in solutions/02_parameters_and_buffers.ipynb.
    """
    __tracebackhide__ = True
    if kinds is None or kinds is ...:
        raise NotAttempted("`kinds` is still a placeholder: replace it with your dict.\n"
                           "Hint: one key per tensor name, with the value 'parameter', 'buffer' or 'attribute'.")
    problem = _kinds_difference02("kinds", kinds, _tensor_kinds02(scaler))
    if problem is not None:
        fail(problem, "a tensor wrapped in `nn.Parameter` is a parameter, whether it is assigned or passed to "
                      "`register_parameter`, and even with requires_grad=False; `register_buffer` makes a buffer "
                      "(persistent or not), and a tensor assigned later to a name registered as a buffer (even "
                      "registered as None) stays a buffer; any other tensor assigned to `self` is a plain attribute; "
                      "`eps` is a float, not a tensor. Compare with `lenet.tensor_table(scaler)`.")


@exercise(2, "the state_dict keys of Block, in order")
def check_02_state_dict_keys(keys: list[str], block: nn.Module) -> None:
    """``keys`` is ``list(block.state_dict())``, predicted: which tensors are saved, and in which order.

    Introduced in solutions/02_parameters_and_buffers.ipynb.
    """
    __tracebackhide__ = True
    expected = list(block.state_dict())
    hint = ("`state_dict()` saves parameters and persistent buffers, not non-persistent buffers "
            "(`persistent=False`) and not plain attributes; a child's tensors are prefixed with the child's name "
            "(`norm.running_mean`); BatchNorm2d holds 2 parameters and 3 buffers, and `bias=False` means no bias.")
    if keys is None or keys is ...:
        raise NotAttempted(f"`keys` is still {keys!r}: replace it with your list of names.\nHint: {hint}")
    if not isinstance(keys, (list, tuple)) or not all(isinstance(k, str) for k in keys):
        fail(f"`keys` is {_show(keys)}, expected a list of strings like {_show(expected[:2])}.", hint)
    missing = [k for k in expected if k not in keys]
    extra = sorted(set(keys) - set(expected))
    if missing or extra:
        parts = ([f"is missing {_show(missing)}"] if missing else []) + (
            [f"has unexpected {_show(extra)}"] if extra else [])
        fail(f"`keys` {' and '.join(parts)}.", hint)
    if len(keys) != len(expected):
        fail(f"`keys` has {len(keys)} entries, expected {len(expected)}: a key appears twice.", hint)
    if list(keys) != expected:
        fail(f"`keys` has the right names in the wrong order: {_show(list(keys))}, expected {_show(expected)}.",
             "a module saves its own parameters first, then its own persistent buffers, then each child in the "
             "order the children were assigned, whatever order the tensors were registered in "
             "(`nn.Module._save_to_state_dict`, then the recursion over `_modules`).")


@exercise(3, "Standardize keeps mean/std as saved buffers, inv_std as a non-persistent buffer, gain as a parameter")
def check_02_standardize(Standardize: type) -> None:
    """``Standardize(mean, std)``: ``gain`` a parameter, ``mean``/``std`` buffers, ``inv_std`` a non-persistent buffer.

    Introduced in solutions/02_parameters_and_buffers.ipynb.
    """
    __tracebackhide__ = True
    mean, std = torch.tensor([1.0, -2.0, 0.5]), torch.tensor([2.0, 4.0, 0.5])
    norm = call(Standardize, mean.clone(), std.clone())
    kinds = _tensor_kinds02(norm)
    expected = {"gain": "parameter", "mean": "buffer", "std": "buffer", "inv_std": "buffer"}
    hint = ("trained: `nn.Parameter`; saved and moved by `.to()` but not trained: `self.register_buffer(name, t)`; "
            "moved but not saved: `self.register_buffer(name, t, persistent=False)`; "
            "a plain `self.x = t` is neither saved nor moved.")
    article = {"parameter": "a parameter", "buffer": "a buffer", "attribute": "a plain attribute"}
    for name, kind in expected.items():
        if name not in kinds:
            fail(f"`Standardize(mean, std)` holds no tensor `{name}`, expected {article[kind]}.", hint)
        if kinds[name] != kind:
            fail(f"`Standardize(mean, std).{name}` is {article[kinds[name]]}, expected {article[kind]}.", hint)
    extra = sorted(set(kinds) - set(expected))
    if extra:
        fail(f"`Standardize(mean, std)` holds unexpected tensors {_show(extra)}; expected only "
             f"{_show(list(expected))}.", hint)
    check_equal("list(Standardize(mean, std).state_dict())", list(norm.state_dict()), ["gain", "mean", "std"],
                "`inv_std` can be recomputed from `std`, so it is not saved: `persistent=False`. "
                "Register `mean` before `std`.")
    for name, value in [("mean", mean), ("std", std), ("inv_std", 1 / std), ("gain", torch.ones(3))]:
        check_equal(f"Standardize(mean, std).{name}", getattr(norm, name).detach(), value,
                    "`mean` and `std` hold the tensors passed in, `inv_std` is `1 / std`, `gain` starts at ones "
                    "(`torch.ones_like(mean)`).")
    x = torch.tensor([[3.0, 2.0, 1.0]])
    with torch.no_grad():
        check_equal("Standardize(mean, std)(x)", norm(x), (x - mean) / std, "forward computes "
                    "`(x - self.mean) * self.inv_std * self.gain`; with gain = 1 that is `(x - mean) / std`.")


@exercise(4, "tensor_kinds classifies the tensors of five modules, a pruned Conv2d included")
def check_02_tensor_kinds(tensor_kinds: Callable[[nn.Module], dict[str, str]]) -> None:
    """``tensor_kinds(module)`` maps each tensor the module itself holds to "parameter", "buffer" or "attribute".

    Introduced in solutions/02_parameters_and_buffers.ipynb.
    """
    __tracebackhide__ = True
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        tiny = nn.Module()
        tiny.w = nn.Parameter(torch.ones(2))
        tiny.register_buffer("running", torch.zeros(2))
        tiny.register_buffer("scratch", torch.zeros(2), persistent=False)
        tiny.plain = torch.ones(2)
        tiny.label = "not a tensor"
        block = nn.Sequential()
        block.scale = nn.Parameter(torch.ones(2))
        block.add_module("conv", nn.Conv2d(1, 2, 3, bias=False))
        block.add_module("norm", nn.BatchNorm2d(2))
        pruned = nn.Conv2d(1, 2, 3)
        prune.random_unstructured(pruned, name="weight", amount=0.5)
    cases = [("a module like notebook 02's Tiny", tiny), ("nn.BatchNorm1d(3)", nn.BatchNorm1d(3, device="meta")),
             ("nn.Conv2d(1, 2, 3, bias=False)", block.conv),
             ("a module with children conv and norm and its own parameter scale", block),
             ("nn.Conv2d(1, 2, 3) after prune.random_unstructured(conv, 'weight', 0.5)", pruned)]
    for label, module in cases:
        problem = _kinds_difference02(f"tensor_kinds({label})", call(tensor_kinds, module), _tensor_kinds02(module))
        if problem is not None:
            fail(problem, "list only the module's own tensors: `named_parameters(recurse=False)`, "
                          "`named_buffers(recurse=False)` (a child's tensors belong to the child; a `bias=False` "
                          "layer has no bias tensor), then the tensors among `vars(module).values()` "
                          "(`isinstance(value, torch.Tensor)`): after pruning, `weight` is such a plain attribute.")


# ==== Lesson 03 checks (solutions/03_*.ipynb) ====

def _holder03(t: torch.Tensor) -> nn.Module:
    """A throwaway module whose parameter ``weight`` is a copy of ``t`` (something to hand to torch's pruning)."""
    holder = nn.Module()
    holder.weight = nn.Parameter(t.detach().clone())
    return holder


def _torch_pruned_count(n: int, amounts: Sequence[float | int]) -> int:
    """How many of n entries torch's own L1 pruning has zeroed after one call per amount.

    The entries are 1, 2, ..., n: all magnitudes differ, so there are no ties and no RNG.
    """
    holder = _holder03(torch.arange(1.0, n + 1))
    for amount in amounts:
        prune.l1_unstructured(holder, name="weight", amount=amount)
    return int((holder.weight_mask == 0).sum())


@exercise(1, "n_pruned(amount, n) counts like torch: a float is a fraction rounded half to even, an int a count")
def check_03_n_pruned(n_pruned: Callable[[float | int, int], int]) -> None:
    """``n_pruned(amount, n)`` is how many of ``n`` entries ``prune.random_unstructured`` zeroes.

    Introduced in solutions/03_random_unstructured.ipynb.
    """
    __tracebackhide__ = True
    for amount, n in [(0.3, 54), (0.25, 864), (5, 864), (0.5, 5), (0.5, 7), (0.25, 10), (0.75, 10), (0.5, 9),
                      (1, 54), (1.0, 54), (0, 54), (0.0, 54), (54, 54), (0.7, 3)]:
        check_equal(describe_call(n_pruned, amount, n), call(n_pruned, amount, n), _torch_pruned_count(n, [amount]),
                    "that many entries of the mask are 0 after torch prunes an n-entry tensor. A float is a fraction, "
                    "rounded with Python's `round`, which sends exact halves to the even neighbour (2.5 -> 2, "
                    "7.5 -> 8); an int is a count, used as it is (1 prunes one entry, 1.0 all of them). "
                    "Test the type with `isinstance(amount, int)`.")


@exercise(2, "the parameter names and state_dict keys after pruning weight, then bias")
def check_03_names_after_pruning(param_names: list[str], keys: list[str]) -> None:
    """``param_names`` and ``keys`` list ``named_parameters()`` and ``state_dict()`` of a Conv2d pruned on both tensors.

    Introduced in solutions/03_random_unstructured.ipynb.
    """
    __tracebackhide__ = True
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        conv = nn.Conv2d(1, 6, 3)
        prune.random_unstructured(conv, name="weight", amount=0.3)
        prune.random_unstructured(conv, name="bias", amount=0.3)
    check_equal("param_names", param_names, [name for name, _ in conv.named_parameters()],
                "pruning `name` deletes the parameter `name` and registers the same tensor again as `name_orig`, "
                "so it goes to the END of the parameters: after the weight, [bias, weight_orig]; then the bias "
                "moves behind it. The masks are buffers, and `weight` and `bias` are plain attributes now.")
    check_equal("keys", keys, list(conv.state_dict()),
                "`state_dict()` holds the parameters first (in the order of `named_parameters()`), then the "
                "persistent buffers (`weight_mask`, then `bias_mask`); the plain attributes `weight` and `bias` "
                "are not saved.")


#: The calls of exercise 3: (name, amount) for prune.random_unstructured on a fresh conv1.
BAD_CALLS_03 = [("weight", 1.5), ("weight", -0.1), ("weight", 100), ("weight", 54), ("weight", "x"),
                ("weight", True), ("weigth", 0.3)]


@exercise(3, "what each bad call of prune.random_unstructured raises")
def check_03_errors(outcomes: list[str]) -> None:
    """``outcomes[i]`` names the exception ``prune.random_unstructured(conv, *BAD_CALLS_03[i])`` raises, or "ok".

    Introduced in solutions/03_random_unstructured.ipynb.
    """
    __tracebackhide__ = True
    expected = []
    for name, amount in BAD_CALLS_03:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            conv = nn.Conv2d(1, 6, 3)
            try:
                prune.random_unstructured(conv, name=name, amount=amount)
                expected.append("ok")
            except Exception as e:  # noqa: BLE001 - the point is which one
                expected.append(type(e).__name__)
    if isinstance(outcomes, (list, tuple)):
        outcomes = [o.__name__ if isinstance(o, type) and issubclass(o, BaseException) else o for o in outcomes]
    hint = ("write the exception's class name as a string ('ValueError'), or 'ok' when the call succeeds. "
            "A float must lie in [0, 1] and an int in [0, n] (ValueError, with n = 54 weights here); "
            "a str is not a number (TypeError); a bool passes the checks as an int and fails in `topk` "
            "(TypeError); a misspelled name is a missing attribute.")
    if isinstance(outcomes, (list, tuple)) and len(outcomes) == len(expected):
        for i, ((name, amount), mine, right) in enumerate(zip(BAD_CALLS_03, outcomes, expected)):
            if mine != right:
                fail(f"`outcomes[{i}]` is {_show(mine)}, expected {right!r} for "
                     f"prune.random_unstructured(conv, name={name!r}, amount={amount!r}).", hint)
    check_equal("outcomes", outcomes, expected, hint)


def _l1_mask_torch03(t: torch.Tensor, amount: float | int) -> torch.Tensor:
    holder = _holder03(t)
    prune.l1_unstructured(holder, name="weight", amount=amount)
    return holder.weight_mask


@exercise(4, "l1_mask equals torch's L1-unstructured mask, ties included")
def check_03_l1_mask(l1_mask: Callable[[torch.Tensor, float | int], torch.Tensor]) -> None:
    """``l1_mask(t, amount)`` returns the mask ``prune.l1_unstructured`` computes for ``t``, bit for bit.

    Introduced in solutions/03_random_unstructured.ipynb.
    """
    __tracebackhide__ = True
    gen = torch.Generator().manual_seed(3)
    ties1, ties2 = "[0.5, -0.1, 0.1, 0.3, -0.1, 0.2]", "[[0.2, -0.2, 0.2, 0.1], [-0.2, 0.2, 0.2, -0.2]]"
    cases = [
        ("a random (6, 1, 3, 3) tensor", torch.randn(6, 1, 3, 3, generator=gen), 0.3),
        (f"torch.tensor({ties1})", torch.tensor([0.5, -0.1, 0.1, 0.3, -0.1, 0.2]), 2),  # 3 tie at |0.1|, 2 pruned
        (f"torch.tensor({ties2})", torch.tensor([[0.2, -0.2, 0.2, 0.1], [-0.2, 0.2, 0.2, -0.2]]), 0.5),
        ("a random (4, 5) tensor", torch.randn(4, 5, generator=gen), 7),
        ("a random (3, 4) tensor", torch.randn(3, 4, generator=gen), 1.0),
        ("a random (2, 3) tensor", torch.randn(2, 3, generator=gen), 0),
        ("a random (2, 3) tensor", torch.randn(2, 3, generator=gen), 0.0),
    ]
    for label, t, amount in cases:
        expected = _l1_mask_torch03(t, amount)
        what = f"{getattr(l1_mask, '__name__', 'l1_mask')}({label}, {amount!r})"
        mine = call(l1_mask, t.clone(), amount)
        k = int((expected == 0).sum())
        hint = (f"torch zeroes exactly k = {k} entries (the count rules of exercise 1), those that "
                "`torch.topk(t.abs().flatten(), k, largest=False).indices` returns, and keeps the rest at 1, in a "
                "float mask shaped like t (`torch.ones_like(t)`). A threshold from `torch.kthvalue` prunes every "
                "entry equal to it, so on ties it prunes more than k; `topk` picks exactly k. "
                "k = 0 needs no call at all (`kthvalue` refuses k = 0).")
        if isinstance(mine, torch.Tensor) and mine.shape == expected.shape and int((mine == 0).sum()) != k:
            fail(f"`{what}` has {int((mine == 0).sum())} zeros, expected {k}.", hint)
        check_equal(what, mine, expected, hint)


@exercise(5, "random_mask reproduces prune.random_unstructured's seeded mask with its own torch.Generator")
def check_03_random_mask(random_mask: Callable[[torch.Tensor, float | int, int], torch.Tensor]) -> None:
    """``random_mask(t, amount, seed)`` equals the mask of ``torch.manual_seed(seed)``; ``prune.random_unstructured``,
    without touching torch's global random number generator.

    Introduced in solutions/03_random_unstructured.ipynb.
    """
    __tracebackhide__ = True
    hint = ("`RandomUnstructured.compute_mask` draws `prob = torch.rand_like(t)` and zeroes the k entries with the "
            "LARGEST prob: `torch.topk(prob.flatten(), k).indices`. Draw the same numbers from your own "
            "`g = torch.Generator().manual_seed(seed)` with `torch.rand(t.shape, generator=g)`: a fresh generator "
            "seeded like the global one gives the same sequence.")
    for shape, amount, seed in [((6, 1, 3, 3), 0.3, 0), ((4, 5), 7, 1), ((10,), 0.5, 2), ((3, 3), 0, 3),
                                ((120, 84), 0.9, 4)]:
        t = torch.ones(shape)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            holder = _holder03(t)
            prune.random_unstructured(holder, name="weight", amount=amount)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(12345)
            mine = call(random_mask, t.clone(), amount, seed)
            after = torch.rand(4)
            torch.manual_seed(12345)
            untouched = torch.rand(4)
        check_equal(f"random_mask(torch.ones{shape}, {amount!r}, seed={seed})", mine, holder.weight_mask, hint)
        if not torch.equal(after, untouched):
            fail(f"random_mask(torch.ones{shape}, {amount!r}, seed={seed}) gives the right mask but changed torch's "
                 "global random number generator, so your next seeded cell would draw other numbers.",
                 "do not call `torch.manual_seed` or `torch.rand` without a generator: make a "
                 "`torch.Generator().manual_seed(seed)` and pass `generator=g` to `torch.rand`.")


# ==== Lesson 04 checks (solutions/04_*.ipynb) ====

#: The cases of exercise 1: (number of weights, first amount, second amount).
PRUNE_TWICE_04 = [(54, 0.3, 0.3), (54, 0.5, 0.5), (54, 10, 0.5), (864, 0.25, 0.25), (48000, 0.3, 0.3)]


@exercise(1, "the number of weights pruned after two calls, and the second amount that reaches 60%")
def check_04_pruned_twice(counts: list[int], second: float | int) -> None:
    """``counts[i]``: weights pruned after the two calls of ``PRUNE_TWICE_04[i]``; ``second``: the amount of a
    second call that takes fc1 (48,000 weights) from 30% to exactly 60%.

    Introduced in solutions/04_under_the_hood.ipynb.
    """
    __tracebackhide__ = True
    hint = ("the second call counts its amount against the entries still unpruned: 0.3 twice on 54 weights is "
            "round(0.3 * 54) = 16, then round(0.3 * 38) = 11 more, 27 in all (not round(0.51 * 54) = 28). "
            "A float is rounded with `round` (half to even: 13.5 -> 14); an int is a count.")
    expected = [_torch_pruned_count(n, [a, b]) for n, a, b in PRUNE_TWICE_04]
    if isinstance(counts, (list, tuple)) and len(counts) == len(expected):
        for i, ((n, a, b), mine, right) in enumerate(zip(PRUNE_TWICE_04, counts, expected)):
            problem = _difference(f"counts[{i}]", mine, right, 1e-5, 1e-6, True)
            if problem is not None:
                fail(f"{problem[:-1]} for amount={a!r}, then amount={b!r}, on {n} weights.", hint)
    check_equal("counts", counts, expected, hint)
    hint = ("after the first call 70% of the weights are left, and the second call prunes a share of THOSE: "
            "0.3 + 0.7 * second = 0.6. Write the fraction as an expression (0.3 / 0.7), not a rounded decimal: "
            "on 33,600 weights 0.4286 is off by one. An int amount, a count of weights, works too.")
    if second is None or second is ...:
        raise NotAttempted(f"`second` is still {second!r}: replace it with your answer.\nHint: {hint}")
    second = _as_number(second)
    if isinstance(second, bool) or not isinstance(second, (int, float)):
        fail(f"`second` is {_show(second)} (a {_type_name(second)}), expected a number.", hint)
    try:
        got = _torch_pruned_count(48000, [0.3, second])
    except (TypeError, ValueError) as e:
        fail(f"prune.l1_unstructured refuses amount={second!r} on the 33,600 weights left: {e}", hint)
    check_equal(f"weights of 48,000 pruned by amount=0.3, then amount={second!r}", got, 28800, hint)


def _again_mask_torch04(weight: torch.Tensor, old_mask: torch.Tensor, amount: float | int) -> torch.Tensor:
    """torch's mask after a second ``l1_unstructured(amount)`` on a tensor already pruned with ``old_mask``."""
    holder = _holder03(weight)
    prune.custom_from_mask(holder, name="weight", mask=old_mask)
    prune.l1_unstructured(holder, name="weight", amount=amount)
    return holder.weight_mask


@exercise(2, "again_mask equals the mask of a second prune.l1_unstructured call (a PruningContainer)")
def check_04_again_mask(again_mask: Callable[[torch.Tensor, torch.Tensor, float | int], torch.Tensor]) -> None:
    """``again_mask(weight, old_mask, amount)``: the mask a second ``l1_unstructured(amount)`` leaves on a tensor
    already pruned with ``old_mask``, ``weight`` being the masked weight (zeros where ``old_mask`` is 0).

    Introduced in solutions/04_under_the_hood.ipynb.
    """
    __tracebackhide__ = True
    gen = torch.Generator().manual_seed(5)
    cases = []
    for shape, p_old, amount in [((6, 1, 3, 3), 0.3, 0.3), ((8, 10), 0.5, 0.5), ((5, 4), 0.25, 3), ((7,), 0.5, 0.5),
                                 ((4, 6), 0.5, 0.0), ((120, 84), 0.6, 0.75)]:
        orig = torch.randn(shape, generator=gen)
        old_mask = (torch.rand(shape, generator=gen) >= p_old).float()
        cases.append((f"a random weight of shape {shape}, its old_mask", orig * old_mask, old_mask, amount))
    cases.insert(1, ("torch.tensor([0.0, 0.3, -0.2, 0.0, 0.2, 0.5, -0.2, 0.0]), torch.tensor([0., 1., 1., 0., 1., "
                     "1., 1., 0.])", torch.tensor([0.0, 0.3, -0.2, 0.0, 0.2, 0.5, -0.2, 0.0]),
                     torch.tensor([0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 0.0]), 2))  # ties among the unpruned
    for label, weight, old_mask, amount in cases:
        expected = _again_mask_torch04(weight, old_mask, amount)
        what = f"{getattr(again_mask, '__name__', 'again_mask')}({label}, {amount!r})"
        mine = call(again_mask, weight.clone(), old_mask.clone(), amount)
        remaining = int(old_mask.sum())
        k = int((expected == 0).sum()) - (old_mask.numel() - remaining)
        hint = (f"torch keeps every 0 of old_mask and prunes k = {k} more of the {remaining} entries still unpruned "
                "(the amount counts against THOSE): `kept = old_mask == 1`, then the k smallest of "
                "`weight[kept].abs()` with `torch.topk(..., k, largest=False)`, written back into a clone of "
                "old_mask through the same boolean index. Ranking all entries would re-prune the zeros.")
        if isinstance(mine, torch.Tensor) and mine.shape == expected.shape:
            if bool(((mine != 0) & (old_mask == 0)).any()):
                fail(f"`{what}` puts back entries that old_mask had pruned.", hint)
            if int((mine == 0).sum()) != int((expected == 0).sum()):
                fail(f"`{what}` has {int((mine == 0).sum())} zeros, expected {int((expected == 0).sum())} "
                     f"({old_mask.numel() - remaining} from old_mask + {k} new).", hint)
        check_equal(what, mine, expected, hint)


def _reparam_cases04() -> list[tuple[str, Callable[[], nn.Module], str, torch.Tensor, torch.Tensor]]:
    """(label, make a fresh module, tensor name, mask, input) for the reparametrization checks; no global RNG used."""
    gen = torch.Generator().manual_seed(4)

    def seeded(make: Callable[[], nn.Module], seed: int) -> Callable[[], nn.Module]:
        def fresh() -> nn.Module:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                return make()
        return fresh

    return [
        ("nn.Conv2d(1, 3, 3), 'weight'", seeded(lambda: nn.Conv2d(1, 3, 3), 0), "weight",
         (torch.rand(3, 1, 3, 3, generator=gen) > 0.3).float(), torch.randn(2, 1, 6, 6, generator=gen)),
        ("nn.Conv2d(1, 3, 3), 'bias'", seeded(lambda: nn.Conv2d(1, 3, 3), 1), "bias",
         torch.tensor([1.0, 0.0, 1.0]), torch.randn(2, 1, 6, 6, generator=gen)),
        ("nn.Linear(5, 4), 'weight'", seeded(lambda: nn.Linear(5, 4), 2), "weight",
         (torch.rand(4, 5, generator=gen) > 0.5).float(), torch.randn(3, 5, generator=gen)),
    ]


def _forward04(module: nn.Module, x: torch.Tensor, what: str, hint: str) -> torch.Tensor:
    """``module(x)``; an exception (raised by the learner's hook, usually) becomes a hint."""
    __tracebackhide__ = True
    try:
        return module(x)
    except Exception as e:  # noqa: BLE001 - reported to the learner
        fail(f"{what} raised {type(e).__name__}: {e}", hint)
        raise  # unreachable: fail raises


def _structure04(module: nn.Module) -> tuple[list[str], list[str], list[str]]:
    return ([n for n, _ in module.named_parameters()], [n for n, _ in module.named_buffers()],
            list(module.state_dict()))


@exercise(3, "MaskHook + my_prune equal prune.custom_from_mask: state, outputs and gradients, bit for bit")
def check_04_reparametrize(MaskHook: type, my_prune: Callable[[nn.Module, str, torch.Tensor], object]) -> None:
    """``my_prune(module, name, mask)`` with the forward-pre-hook ``MaskHook(name)`` reparametrizes like torch.

    Introduced in solutions/04_under_the_hood.ipynb.
    """
    __tracebackhide__ = True
    if not isinstance(MaskHook, type):
        fail(f"`MaskHook` is {_show(MaskHook)}, expected the class itself.", "pass the class `MaskHook`, not an instance.")
    hint_state = ("like `prune.custom_from_mask`: `del module._parameters[name]`, then "
                  "`module.register_parameter(name + '_orig', param)` with the SAME Parameter object (an optimizer "
                  "built before keeps training it), `module.register_buffer(name + '_mask', mask)`, compute "
                  "`name` once right away (call the hook by hand: `hook(module, None)`), then "
                  "`module.register_forward_pre_hook(hook)`.")
    hint_hook = ("before every forward the hook must set the plain attribute: "
                 "`setattr(module, self.name, mask.to(dtype=orig.dtype) * orig)`, with `orig` and `mask` read with "
                 "`getattr(module, self.name + '_orig')` and `..._mask`, and autograd on (no `torch.no_grad()`), "
                 "so that the gradient flows back to `<name>_orig`.")
    for label, fresh, name, mask, x in _reparam_cases04():
        mine, theirs = fresh(), fresh()
        param = getattr(mine, name)
        call(my_prune, mine, name, mask.clone())
        prune.custom_from_mask(theirs, name, mask.clone())
        where = f"after my_prune({label}, mask)"
        check_equal(f"the (parameters, buffers, state_dict keys) {where}", _structure04(mine), _structure04(theirs),
                    hint_state)
        if getattr(mine, name + "_orig") is not param:
            fail(f"{where}, `{name}_orig` is a new tensor, not the Parameter that was `{name}`.", hint_state)
        hooks = list(mine._forward_pre_hooks.values())
        if len(hooks) != 1 or not isinstance(hooks[0], MaskHook):
            fail(f"{where}, the module has {len(hooks)} forward-pre-hooks "
                 f"({[type(h).__name__ for h in hooks]}), expected one MaskHook.", hint_state)
        if name not in vars(mine):
            fail(f"{where}, `{name}` is not a plain attribute of the module yet (torch's is, right away).",
                 hint_state)
        check_equal(f"{name} {where}", getattr(mine, name).detach(), getattr(theirs, name).detach(), hint_hook)
        for sd_key, value in theirs.state_dict().items():
            check_equal(f"state_dict()[{sd_key!r}] {where}", mine.state_dict()[sd_key], value, hint_state)
        out_mine = _forward04(mine, x, f"the forward {where}", hint_hook)
        out_theirs = theirs(x)
        check_equal(f"the output {where}", out_mine.detach(), out_theirs.detach(), hint_hook, rtol=0, atol=0)
        out_mine.sum().backward()
        out_theirs.sum().backward()
        grads_theirs = {n: p.grad for n, p in theirs.named_parameters()}
        for n, p in mine.named_parameters():
            if p.grad is None:
                fail(f"{where}, no gradient reached `{n}` in the backward pass.", hint_hook)
            check_equal(f"{n}.grad {where}", p.grad, grads_theirs[n], hint_hook, rtol=0, atol=0)
        with torch.no_grad():  # change the original values: the next forward must use them
            getattr(mine, name + "_orig").mul_(-2)
            getattr(theirs, name + "_orig").mul_(-2)
            out_mine, out_theirs = _forward04(mine, x, f"the second forward {where}", hint_hook), theirs(x)
        check_equal(f"the output {where} and multiplying {name}_orig by -2", out_mine, out_theirs,
                    "the hook must recompute the attribute from the current `_orig` and `_mask` before every "
                    "forward. " + hint_hook, rtol=0, atol=0)


def _pruned_pair04(case: int) -> tuple[nn.Module, nn.Module, str]:
    """Two identical pruned modules (same seed, same masks) and the name to remove."""
    def make() -> nn.Module:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(case)
            if case == 0:  # weight and bias pruned, remove the weight
                m = nn.Conv2d(1, 4, 3)
                prune.l1_unstructured(m, name="weight", amount=0.5)
                prune.random_unstructured(m, name="bias", amount=2)
            elif case == 1:  # pruned twice: the hook is a PruningContainer
                m = nn.Linear(6, 5)
                prune.l1_unstructured(m, name="weight", amount=0.3)
                prune.random_unstructured(m, name="weight", amount=0.3)
            else:  # a custom mask on the bias only
                m = nn.Linear(4, 3)
                prune.custom_from_mask(m, name="bias", mask=torch.tensor([0.0, 1.0, 1.0]))
            return m

    return make(), make(), ("weight", "weight", "bias")[case]


def _hook_names04(module: nn.Module) -> list[tuple[str, str | None]]:
    return [(type(h).__name__, getattr(h, "_tensor_name", None)) for h in module._forward_pre_hooks.values()]


@exercise(4, "my_remove makes pruning permanent like prune.remove, keeping the same Parameter object")
def check_04_remove(my_remove: Callable[[nn.Module, str], object]) -> None:
    """``my_remove(module, name)`` does what ``prune.remove(module, name)`` does.

    Introduced in solutions/04_under_the_hood.ipynb.
    """
    __tracebackhide__ = True
    hint = ("like `prune.remove`: compute `mask * orig` one last time, delete the plain attribute `name`, take "
            "`orig = module._parameters.pop(name + '_orig')` and put the product into it with "
            "`orig.data = (mask * orig).data` (the same object!), delete the buffer `module._buffers[name + '_mask']`, "
            "delete from `module._forward_pre_hooks` the one hook whose `_tensor_name` is `name` (leave the "
            "others), and register `orig` as the parameter `name` again (`setattr(module, name, orig)`).")
    labels = ["a Conv2d with weight and bias pruned: my_remove(conv, 'weight')",
              "a Linear pruned twice (a PruningContainer): my_remove(linear, 'weight')",
              "a Linear with a custom mask on its bias: my_remove(linear, 'bias')"]
    for case, label in enumerate(labels):
        mine, theirs, name = _pruned_pair04(case)
        orig = getattr(mine, name + "_orig")
        call(my_remove, mine, name)
        prune.remove(theirs, name)
        where = f"after {label}"
        check_equal(f"the (parameters, buffers, state_dict keys) {where}", _structure04(mine), _structure04(theirs), hint)
        check_equal(f"the forward-pre-hooks (type, tensor name) {where}", _hook_names04(mine), _hook_names04(theirs), hint)
        if vars(mine).get(name) is not None:
            fail(f"{where}, `{name}` is still a plain attribute in the module's __dict__.", hint)
        if getattr(mine, name) is not orig:
            fail(f"{where}, `{name}` is a new Parameter, not the object that was `{name}_orig`: an optimizer built "
                 "before `remove` would go on training the old one.", hint)
        for key, value in theirs.state_dict().items():
            check_equal(f"state_dict()[{key!r}] {where}", mine.state_dict()[key], value, hint, rtol=0, atol=0)
        if not getattr(mine, name).requires_grad:
            fail(f"{where}, `{name}` has requires_grad=False.", hint)


@exercise(5, "safe_deepcopy copies a pruned LeNet right after a training forward; both stay pruned and independent")
def check_04_safe_deepcopy(safe_deepcopy: Callable[[nn.Module], nn.Module]) -> None:
    """``safe_deepcopy(model)`` returns an independent copy of a pruned model, whatever the last forward was.

    Introduced in solutions/04_under_the_hood.ipynb.
    """
    __tracebackhide__ = True
    from .model import LeNet

    hint = ("`copy.deepcopy` refuses the non-leaf plain attribute `weight` that a forward with autograd on leaves "
            "behind. Recompute it without a graph first: under `torch.no_grad()`, call each pruning hook by hand "
            "(`hook(module, None)` for every `prune.BasePruningMethod` in `module._forward_pre_hooks`, or "
            "`lenet.refresh_pruned(model)`), then `copy.deepcopy(model)`. Leave the model pruned: no `prune.remove`.")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = LeNet()
        prune.random_unstructured(model.conv1, name="weight", amount=0.3)
        prune.l1_unstructured(model.conv1, name="bias", amount=2)
        prune.l1_unstructured(model.fc1, name="weight", amount=0.5)
        prune.l1_unstructured(model.fc1, name="weight", amount=0.5)
        x = torch.randn(4, 1, 28, 28)
    model(x).sum().backward()  # a training forward: conv1.weight and fc1.weight are non-leaves now
    origs = dict(model.named_parameters())
    state = {k: v.clone() for k, v in model.state_dict().items()}
    hooks = _hook_names04(model.conv1) + _hook_names04(model.fc1)
    try:
        twin = call(safe_deepcopy, model)
    except NotAttempted:
        raise NotAttempted("safe_deepcopy(model) still raises NotImplementedError: replace `# YOUR CODE HERE` and "
                           "the `raise` line with your code.") from None
    except RuntimeError as e:
        fail(f"safe_deepcopy(model) raised RuntimeError: {str(e).split('. ')[0]}.", hint)
    if twin is model:
        fail("safe_deepcopy(model) returned the model itself, not a copy.", hint)
    if not isinstance(twin, LeNet):
        fail(f"safe_deepcopy(model) returned {_show(twin)}, expected a LeNet.", hint)
    # the original is left as it was
    now = dict(model.named_parameters())
    if (list(now) != list(origs) or any(now[n] is not p for n, p in origs.items())
            or _hook_names04(model.conv1) + _hook_names04(model.fc1) != hooks):
        fail("after safe_deepcopy(model), the model's parameters or pruning hooks changed (was it "
             "`prune.remove`d?); it must stay pruned, with the same Parameter objects.", hint)
    for key, value in state.items():
        check_equal(f"model.state_dict()[{key!r}] after safe_deepcopy(model)", model.state_dict()[key], value, hint)
    for label, m in [("model", model), ("the copy", twin)]:
        for layer, name in [("conv1", "weight"), ("conv1", "bias"), ("fc1", "weight")]:
            module = getattr(m, layer)
            if not isinstance(vars(module).get(name), torch.Tensor):
                fail(f"after safe_deepcopy(model), {label}.{layer} has no `{name}` attribute: it was deleted and not "
                     "recomputed, so anything reading it before the next forward fails.", hint)
            check_equal(f"{label}.{layer}.{name} after safe_deepcopy(model)", vars(module)[name].detach(),
                        getattr(module, name + "_mask") * getattr(module, name + "_orig").detach(), hint)
    # the copy is pruned the same way, and independent
    check_equal("the forward-pre-hooks (type, tensor name) of the copy", _hook_names04(twin.conv1) + _hook_names04(twin.fc1),
                hooks, hint)
    for key, value in state.items():
        check_equal(f"copy.state_dict()[{key!r}]", twin.state_dict()[key], value, hint)
    if any(a is b for a, b in zip(twin.parameters(), model.parameters())):
        fail("the copy shares Parameter objects with the model: it is not a deep copy.", hint)
    with torch.no_grad():
        twin.fc1.weight_orig.mul_(-1)
        changed = twin(x)
        same = model(x)
    if torch.equal(changed, same):
        fail("changing the copy's fc1.weight_orig does not change the copy's output: its hooks do not act on it.", hint)


# ==== Lesson 05 checks (solutions/05_*.ipynb) ====
# Lesson 05 · Saving and loading a pruned model  (solutions/05_saving_and_loading.ipynb)



def _quiet_build(build: Callable[[], nn.Module]) -> nn.Module:
    """``build()`` without consuming the learner's global random number generator."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return build()


def _tensor_bytes(state: Mapping[str, torch.Tensor], prefix: str) -> int:
    """Bytes of the tensors of ``state`` whose keys start with ``prefix`` (what torch.save stores for them)."""
    return sum(t.numel() * t.element_size() for key, t in state.items() if key.startswith(prefix))


@exercise(1, "a pruned fc1 costs weight_orig + weight_mask + bias in a state_dict, whatever the amount")
def check_05_bytes(dense_bytes: int, pruned_bytes: int, pruned_90_bytes: int) -> None:
    """The bytes of fc1's tensors in LeNet's state_dict: dense, with 30% and with 90% of its weight pruned.

    Introduced in solutions/05_saving_and_loading.ipynb.
    """
    __tracebackhide__ = True

    def fc1_bytes(amount: float | None) -> int:
        model = _quiet_build(LeNet)
        if amount is not None:
            prune.l1_unstructured(model.fc1, "weight", amount=amount)
        return _tensor_bytes(model.state_dict(), "fc1.")

    check_equal("dense_bytes", dense_bytes, fc1_bytes(None),
                hint="fc1 holds a weight of 120 x 400 and a bias of 120 numbers, float32: 4 bytes each. "
                     "torch counts `t.numel() * t.element_size()` for every key starting with 'fc1.'.")
    check_equal("pruned_bytes", pruned_bytes, fc1_bytes(0.3),
                hint="after prune.l1_unstructured(model.fc1, 'weight', ...) the state_dict holds weight_orig "
                     "AND weight_mask, both float32 of the weight's shape (120 x 400), plus the bias, which "
                     "was not pruned and is stored once.")
    check_equal("pruned_90_bytes", pruned_90_bytes, fc1_bytes(0.9),
                hint="the amount does not change the bytes: weight_orig is the full original weight, and the "
                     "zeros of the float32 mask take 4 bytes like its ones: a zero in a dense tensor costs as "
                     "much as any other value.")


def _nested_model() -> nn.Module:
    """A tiny model with a nested module path: block.0 (Linear 3 -> 2) and head (Linear 2 -> 1)."""
    return nn.Sequential(OrderedDict(block=nn.Sequential(nn.Linear(3, 2)), head=nn.Linear(2, 1)))


def _pruned_nested() -> nn.Module:
    """The tiny model with known values, block.0.weight and head.bias pruned by hand-made masks."""
    model = _quiet_build(_nested_model)
    with torch.no_grad():
        for i, p in enumerate(model.parameters()):
            p.copy_(torch.arange(p.numel(), dtype=p.dtype).view_as(p) * 0.25 - 0.5 + i)
    prune.custom_from_mask(model.block[0], "weight", torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]]))
    prune.custom_from_mask(model.head, "bias", torch.tensor([0.0]))
    with torch.no_grad():  # weight attributes computed without a graph: copy.deepcopy works on this model
        refresh_pruned(model)
    return model


def _pruned_lenet() -> nn.Module:
    """The trained LeNet with conv1 (30%), fc1 (50%) weights and 2 entries of fc3's bias pruned by L1."""
    model = _quiet_build(lambda: pretrained("cpu"))
    prune.l1_unstructured(model.conv1, "weight", amount=0.3)
    prune.l1_unstructured(model.fc1, "weight", amount=0.5)
    prune.l1_unstructured(model.fc3, "bias", amount=2)
    with torch.no_grad():
        refresh_pruned(model)
    return model


def _single_pruned_linear() -> nn.Module:
    """An nn.Linear(2, 2) on its own with one weight pruned: its keys have no module path."""
    layer = _quiet_build(lambda: nn.Linear(2, 2))
    prune.l1_unstructured(layer, "weight", amount=1)
    return layer


@exercise(2, "pruned_params finds every pruned parameter from the keys alone, nested and bias included")
def check_05_pruned_params(pruned_params: Callable[[Mapping[str, torch.Tensor]], set[tuple[str, str]]]) -> None:
    """``pruned_params(state_dict)`` is the set of ``(module path, parameter name)`` pruned in ``state_dict``.

    Introduced in solutions/05_saving_and_loading.ipynb.
    """
    __tracebackhide__ = True
    hint = ("every pruned parameter leaves a key '<module path>.<name>_mask' (and '<name>_orig'). The module path "
            "can hold dots itself ('block.0') or be empty (a pruned nn.Linear on its own: 'weight_mask'), so split "
            "each key ending in '_mask' at its LAST dot with `key.rpartition('.')`, then strip '_mask' from the "
            "name. Return a set of (module path, name) tuples.")
    hand_made = {key: torch.zeros(1) for key in (
        "block.0.weight_orig", "block.0.bias", "block.0.weight_mask", "attn_mask_proj.weight",
        "attn_mask_proj.bias", "head.weight", "head.bias_orig", "head.bias_mask")}
    cases = [
        ("the trained LeNet's state_dict (nothing pruned)", _quiet_build(lambda: pretrained("cpu")).state_dict(),
         set()),
        ("LeNet with conv1.weight, fc1.weight and fc3.bias pruned", _pruned_lenet().state_dict(),
         {("conv1", "weight"), ("fc1", "weight"), ("fc3", "bias")}),
        (f"the hand-made state_dict with keys {list(hand_made)}", hand_made, {("block.0", "weight"), ("head", "bias")}),
        ("the state_dict of a single pruned nn.Linear (keys 'bias', 'weight_orig', 'weight_mask')",
         _single_pruned_linear().state_dict(), {("", "weight")}),
    ]
    for label, state, expected in cases:
        got = call(pruned_params, state)
        if isinstance(got, (set, frozenset, list, tuple)) and not all(isinstance(x, tuple) for x in got):
            fail(f"pruned_params(...) for {label} is {_show(got)}: expected (module path, name) tuples, "
                 f"like {_show(sorted(expected))}.", hint)
        check_equal(f"pruned_params(...) for {label}", got, expected, hint)


def _loading_cases() -> list[tuple[str, Callable[[], nn.Module], nn.Module]]:
    """(what, build a fresh target, source model) for the loading exercises."""
    return [
        ("LeNet with conv1.weight, fc1.weight and fc3.bias pruned", lambda: _quiet_build(LeNet), _pruned_lenet()),
        ("a tiny model with block.0.weight and head.bias pruned", lambda: _quiet_build(_nested_model),
         _pruned_nested()),
        ("the trained LeNet, not pruned", lambda: _quiet_build(LeNet), _quiet_build(lambda: pretrained("cpu"))),
    ]


def _pruned_of(model: nn.Module) -> list[tuple[str, str]]:
    """``(module path, name)`` of every pruned parameter of ``model`` (it has ``<name>_orig`` and ``<name>_mask``)."""
    return [(path, key[: -len("_mask")]) for path, module in model.named_modules()
            for key, _ in module.named_buffers(recurse=False)
            if key.endswith("_mask") and hasattr(module, key[: -len("_mask")] + "_orig")]


def _effective(module: nn.Module, name: str) -> torch.Tensor:
    """What the pruned parameter ``name`` of ``module`` really is: ``<name>_orig * <name>_mask``."""
    return (getattr(module, name + "_orig") * getattr(module, name + "_mask")).detach()


@exercise(3, "load_pruned_state restores the masks, weight_orig and the weight attributes, nested and dense too")
def check_05_load_pruned_state(load_pruned_state: Callable[[nn.Module, Mapping[str, torch.Tensor]], nn.Module]) -> None:
    """``load_pruned_state(model, state_dict)`` re-creates the reparametrization, loads strictly, returns ``model``.

    Introduced in solutions/05_saving_and_loading.ipynb.
    """
    __tracebackhide__ = True
    hint = ("for each (module path, name) that `state_dict` holds pruned (your pruned_params), call "
            "`prune.identity(model.get_submodule(path), name)`: it registers <name>_orig, a <name>_mask of ones "
            "and the forward-pre-hook, so `model.load_state_dict(state_dict)` (strict) finds every key. "
            "Do not touch parameters that are not pruned, and return `model`.")
    x_of = {"LeNet": torch.linspace(-1, 1, 2 * 28 * 28).view(2, 1, 28, 28), "tiny": torch.tensor([[1.0, -2.0, 0.5]])}
    for label, build, source in _loading_cases():
        target = build()
        state = source.state_dict()
        try:
            returned = call(load_pruned_state, target, state)
        except RuntimeError as e:
            fail(f"for {label}, your function raised {type(e).__name__}: {' '.join(str(e).split())[:300]}", hint)
        if returned is not target:
            fail(f"for {label}, load_pruned_state returned {_show(returned)}, not the model it was given.",
                 "end the function with `return model` (the same model, loaded in place).")
        check_equal(f"the state_dict of the model loaded from {label}", dict(target.state_dict()), dict(state),
                    hint + " With strict=False the unmatched keys are skipped silently: the layers stay random.")
        for path, name in _pruned_of(source):
            check_equal(f"{'.'.join(filter(None, (path, name)))} right after load_pruned_state (before any forward), "
                        f"for {label}", getattr(target.get_submodule(path), name),
                        _effective(source.get_submodule(path), name),
                        "load_state_dict copies into <name>_orig and <name>_mask, but the attribute <name> is only "
                        "recomputed by the forward-pre-hook at the next forward: it still holds what prune.identity "
                        "computed from the old values. Refresh it before returning: `lenet.refresh_pruned(model)` "
                        "(or run one forward under torch.no_grad()).")
        x = x_of["LeNet" if isinstance(source, LeNet) else "tiny"]
        with torch.no_grad():
            check_equal(f"the output of the loaded model, for {label}", target(x), source(x), hint)


@exercise(4, "plain_state_dict makes the pruning permanent in the saved dict and leaves the pruned model alone")
def check_05_plain_state_dict(plain_state_dict: Callable[[nn.Module], Mapping[str, torch.Tensor]]) -> None:
    """``plain_state_dict(model)`` is what an unpruned model of the same class loads strictly: each pruned
    parameter as ``<name>_orig * <name>_mask`` under its plain key, no mask; ``model`` stays pruned.

    Introduced in solutions/05_saving_and_loading.ipynb.
    """
    __tracebackhide__ = True
    hint = ("a plain model expects '<path>.<name>' where the pruned state_dict has '<path>.<name>_orig' and "
            "'<path>.<name>_mask'. Build a new dict from `model.state_dict()`: store `orig * mask` under the plain "
            "key (the zeros stay), drop the '_mask' keys, keep every other key as it is. That is what "
            "`prune.remove` would give, but prune.remove changes the model in place: never call it on `model`.")
    for label, build, source in _loading_cases()[:2]:
        before = {key: t.clone() for key, t in source.state_dict().items()}
        pruned_before = _pruned_of(source)
        got = call(plain_state_dict, source)
        if _pruned_of(source) != pruned_before or not prune.is_pruned(source):
            fail(f"for {label}, your function changed the model it was given: it is no longer pruned "
                 f"(pruned before: {_show(pruned_before)}, after: {_show(_pruned_of(source))}).", hint)
        check_equal(f"the state_dict of the model after plain_state_dict(model), for {label}",
                    dict(source.state_dict()), before, hint + " Your function changed the model's tensors.")
        plain = build()
        for path, name in pruned_before:  # torch's own answer: a copy through the state_dict, then prune.remove
            prune.identity(plain.get_submodule(path), name)
        plain.load_state_dict(before)
        for path, name in pruned_before:
            prune.remove(plain.get_submodule(path), name)
        if not isinstance(got, Mapping):
            fail(f"plain_state_dict(model) for {label} is {_show(got)} (a {_type_name(got)}), expected a dict of "
                 "tensors like `model.state_dict()`.", hint)
        check_equal(f"plain_state_dict(model) for {label}", dict(got), dict(plain.state_dict()),
                    hint + " A pruned entry must be 0 in the saved weight: `weight_orig` alone still holds the "
                           "original values.")
        fresh = build()
        fresh.load_state_dict(dict(got))  # strict: it fits (same keys and shapes checked above)


# ==== Lesson 06 checks (solutions/06_*.ipynb) ====
# Lesson 06 · Pruning methods: local, global and custom  (solutions/06_pruning_methods.ipynb)
# (uses `prune`, `pretrained`, `LeNet` and `_quiet_build` from the lesson 05 section above)

_06_LAYERS = ("conv1", "conv2", "fc1", "fc2", "fc3")


def _zeros_after(call_prune: Callable[[nn.Module], None]) -> int:
    """How many entries of the pruned tensor are 0 in the mask after ``call_prune(fresh LeNet)`` (torch's own)."""
    model = _quiet_build(LeNet)
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
    model = _quiet_build(lambda: pretrained("cpu"))
    conv2, fc1 = model.conv2.weight.detach(), model.fc1.weight.detach()
    t, c, f = _show(tiny), "conv2.weight", "fc1.weight"
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
    model = _quiet_build(lambda: pretrained("cpu"))
    weights = [getattr(model, name).weight.detach() for name in _06_LAYERS]
    small = [torch.tensor([[0.5, -0.1], [0.3, 2.0]]), torch.tensor([0.05, -0.4, 1.0])]
    return [("the two small tensors [[0.5, -0.1], [0.3, 2.0]] and [0.05, -0.4, 1.0]", small, 0.4),
            ("the five trained LeNet weights", weights, 0.5), ("the five trained LeNet weights", weights, 0.9),
            ("the five trained LeNet weights", weights, 1000)]


def _global_expected(tensors: list[torch.Tensor], amount: float | int) -> list[torch.Tensor]:
    """torch's own global L1 masks: prune.global_unstructured on modules holding copies of ``tensors``."""
    holders = [nn.Module() for _ in tensors]
    for holder, t in zip(holders, tensors):
        holder.register_parameter("w", nn.Parameter(t.clone()))
    prune.global_unstructured([(h, "w") for h in holders], pruning_method=prune.L1Unstructured, amount=amount)
    return [h.w_mask for h in holders]


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
            fail(f"{what} is {_show(got)}, expected a list of {len(expected)} masks, one per tensor.", hint)
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
             f"{_show([torch.as_tensor(m) for m in got])}; expected exactly 2 of the three entries with |w| = 0.1.",
             "with ties at the cut, a threshold (`scores <= kth value`) prunes every tied entry. Prune exactly "
             "n entries by their indices: `torch.topk(scores, n, largest=False).indices`.")
    # per-layer sparsity and threshold on the trained LeNet at 50%, from torch's own global pruning
    model = _quiet_build(lambda: pretrained("cpu"))
    prune.global_unstructured([(getattr(model, n), "weight") for n in _06_LAYERS],
                              pruning_method=prune.L1Unstructured, amount=0.5)
    expected_sparsity = {n: float((getattr(model, n).weight_mask == 0).float().mean()) for n in _06_LAYERS}
    check_equal("per_layer", per_layer, expected_sparsity,
                hint="the fraction of each layer's mask that is 0: `1 - mask.mean().item()` or "
                     "`(mask == 0).float().mean().item()`, under the layer's name. conv1 loses few weights, "
                     "fc1 more than half.")
    orig = torch.cat([getattr(model, n).weight_orig.detach().abs().flatten() for n in _06_LAYERS])
    kept = torch.cat([getattr(model, n).weight_mask.flatten() for n in _06_LAYERS]) == 1
    expected_threshold = orig[~kept].max().item()
    threshold_hint = ("the largest |w| that was pruned, over all five layers together: "
                      "`all_abs[all_masks == 0].max().item()` (not the smallest |w| kept, which is just above it).")
    if isinstance(_as_number(threshold), float) and not math.isclose(_as_number(threshold), expected_threshold,
                                                                     rel_tol=1e-6):
        fail(f"`threshold` is {_as_number(threshold):.8f}, expected {expected_threshold:.8f}.", threshold_hint)
    check_equal("threshold", threshold, expected_threshold, threshold_hint, rtol=1e-6, atol=0.0)


def _threshold_layer() -> nn.Linear:
    """nn.Linear(4, 3) with known weights from -0.55 to 0.55 (|w| = 0.25 twice, on the threshold of the check)."""
    layer = _quiet_build(lambda: nn.Linear(4, 3))
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
    if ThresholdPruning is None or ThresholdPruning is ...:
        raise NotAttempted("`ThresholdPruning` is still a placeholder: define the class.")
    if not (isinstance(ThresholdPruning, type) and issubclass(ThresholdPruning, prune.BasePruningMethod)):
        fail(f"ThresholdPruning is {_show(ThresholdPruning)}, not a subclass of prune.BasePruningMethod.", hint)
    check_equal("ThresholdPruning.PRUNING_TYPE", getattr(ThresholdPruning, "PRUNING_TYPE", None), "unstructured",
                "it prunes single entries: torch then hands compute_mask only the entries still unpruned, as a 1-D "
                "tensor, when the parameter was pruned before.")
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
        fail(f"threshold_unstructured(layer, 'weight', threshold=0.25) returned {_show(returned)}, not the module.",
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


def _check_close(name: str, mine: object, expected: torch.Tensor, hint: str, rtol: float = 1e-4,
                 atol: float = 1e-6) -> None:
    """Like :func:`check_equal` for float tensors, but names only the first differing entry (short messages)."""
    __tracebackhide__ = True
    if isinstance(mine, torch.Tensor) and mine.shape == expected.shape and mine.is_floating_point():
        got = mine.detach().cpu().to(expected.dtype)
        bad = ~torch.isclose(got, expected, rtol=rtol, atol=atol)
        if bool(bad.any()):
            first = tuple(int(i) for i in bad.nonzero()[0])
            fail(f"`{name}` differs from the expected values in {int(bad.sum())} of {expected.numel()} entries; "
                 f"the first is at index {first}: {got[first].item():.4f} instead of {expected[first].item():.4f}.",
                 hint)
    check_equal(name, mine, expected, hint, rtol=rtol, atol=atol)


def _conv2_outputs(x: torch.Tensor) -> torch.Tensor:
    """conv2's output (before ReLU) for the images ``x``, from a fresh trained LeNet and a forward hook."""
    model = _quiet_build(lambda: pretrained("cpu"))
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
    _check_close("channel_act", channel_act, expected_act,
                 hint="capture conv2's output with `model.conv2.register_forward_hook(lambda module, args, out: "
                      "outputs.append(out))` during one forward of `data.train_x[:256]` (remove the handle after), "
                      "apply ReLU (`F.relu`), then average over the images and the pixels: `.mean(dim=(0, 2, 3))`, "
                      "one number per filter (16).")
    expected_scores = expected_act[:, None, None, None].expand(16, 6, 3, 3)
    _check_close("scores", scores, expected_scores,
                 hint="importance_scores must have the weight's shape (16, 6, 3, 3), with every entry of filter f "
                      "equal to channel_act[f]: `channel_act[:, None, None, None].expand_as(model.conv2.weight)`.")
    if not hasattr(model.conv2, "weight_mask"):
        fail("model.conv2 is not pruned (it has no weight_mask).",
             "call `prune.ln_structured(model.conv2, 'weight', amount=0.25, n=1, dim=0, importance_scores=scores)`.")
    reference = _quiet_build(lambda: pretrained("cpu"))
    prune.ln_structured(reference.conv2, "weight", amount=0.25, n=1, dim=0,
                        importance_scores=scores.detach().cpu().clone())
    zeroed = (reference.conv2.weight_mask.sum(dim=(1, 2, 3)) == 0).nonzero().flatten().tolist()
    check_equal("model.conv2.weight_mask", model.conv2.weight_mask, reference.conv2.weight_mask,
                hint=f"pruned by your scores, 4 whole filters go: {zeroed}, the 4 with the lowest mean activation. "
                     "Pass `importance_scores=scores` to `prune.ln_structured(model.conv2, 'weight', amount=0.25, "
                     "n=1, dim=0, ...)` on a fresh `lenet.pretrained()`: without it, ln_structured ranks the weights.")


# ==== Lesson 07 checks (solutions/07_*.ipynb) ====
# Lesson 07 · What pruning costs in accuracy  (solutions/07_accuracy_and_sparsity.ipynb)


#: Exercise 5 of lesson 07: the share of all conv and linear weights the per-layer amounts must prune.
TARGET_07 = 0.85


def _masked_count07(model: nn.Module) -> tuple[int, int]:
    """(entries whose ``weight_mask`` is 0, all entries) over the conv and linear weights of ``model``."""
    zeros = total = 0
    for m, name in prunable_parameters(model):
        total += getattr(m, name).numel()
        mask = getattr(m, name + "_mask", None)
        if mask is not None:
            zeros += int((mask == 0).sum())
    return zeros, total


@exercise(1, "global_sparsity_from_masks counts the masked weights of all conv and linear layers together")
def check_07_global_sparsity(global_sparsity_from_masks: Callable[[nn.Module], float]) -> None:
    """``global_sparsity_from_masks(model)``: zeros of all ``weight_mask`` buffers / all conv and linear weights.

    Introduced in solutions/07_accuracy_and_sparsity.ipynb.
    """
    __tracebackhide__ = True
    hint = ("divide the zeros of all `weight_mask` buffers by the entries of all conv and linear weights, "
            "pruned or not: a layer without a `weight_mask` keeps all its weights but still counts in the "
            "total, and a big layer weighs more than a small one (do not average the layers' shares). "
            "`lenet.global_sparsity(model)` gives the same number from the zeros of `weight`.")
    with torch.random.fork_rng():
        torch.manual_seed(0)
        dense = LeNet()
        only_fc3 = LeNet()
        prune.l1_unstructured(only_fc3.fc3, "weight", amount=0.5)
        global90 = pruning.prune_model(LeNet(), 0.9, scope="global")
        mixed = LeNet()
        prune.random_unstructured(mixed.conv1, "weight", amount=0.5)
        prune.l1_unstructured(mixed.fc1, "weight", amount=0.9)
        prune.l1_unstructured(mixed.fc1, "weight", amount=0.5)
    for label, model in [("a LeNet with only fc3 pruned, 50%", only_fc3), ("an unpruned LeNet", dense),
                         ("a LeNet pruned 90% globally", global90),
                         ("a LeNet with conv1 pruned 50% and fc1 pruned twice", mixed)]:
        zeros, total = _masked_count07(model)
        check_equal(f"global_sparsity_from_masks(<{label}>)", call(global_sparsity_from_masks, model),
                    zeros / total, hint)


@exercise(2, "pruned_after counts like torch when a layer is pruned again, and the second amount reaches 90%")
def check_07_prune_again(pruned_after: Callable[[int, list[float | int]], int], second_amount: float) -> None:
    """``pruned_after(n, amounts)``: entries pruned after one ``l1_unstructured`` call per amount;
    ``second_amount``: the float amount that takes a layer already pruned 60% to 90%.

    Introduced in solutions/07_accuracy_and_sparsity.ipynb.
    """
    __tracebackhide__ = True
    hint = ("each call prunes round(amount * remaining) more entries, where remaining is the number still "
            "unpruned (torch's `_compute_nparams_toprune`, Python's round: half to even, round(2.5) == 2); "
            "an int amount is a count. Add up what each call prunes: rounding once at the end, on "
            "1 - (1 - a) * (1 - b), can be off by one.")
    with torch.random.fork_rng():
        for n, amounts in [(10, [0.25]), (10, [0.5, 0.5]), (54, [0.6, 0.5]), (100, [0.3, 0.3, 0.3]),
                           (7, [3, 0.5]), (864, [0.5, 0.5, 0.5]), (48000, [0.5, 0.5, 11 / 12])]:
            check_equal(describe_call(pruned_after, n, amounts), call(pruned_after, n, amounts),
                        _torch_pruned_count(n, amounts), hint)
        if second_amount is None or second_amount is ...:
            raise NotAttempted("`second_amount` is still a placeholder: replace it with your answer.\nHint: "
                               "the second call sees only the 40% left.")
        if isinstance(second_amount, bool) or not isinstance(_as_number(second_amount), float):
            fail(f"`second_amount` is {_show(second_amount)} (a {_type_name(second_amount)}), expected a float.",
                 "a float amount is a fraction of the remaining weights; an int would be a count of weights.")
        amount = float(_as_number(second_amount))  # type: ignore[arg-type]
        if not 0.0 <= amount <= 1.0:
            fail(f"`second_amount` is {_show(amount)}, outside [0, 1].", "a float amount is a fraction in [0, 1].")
        check_equal("entries of 1,000 pruned by amount=0.6, then amount=second_amount",
                    _torch_pruned_count(1000, [0.6, amount]), 900,
                    f"`second_amount` = {_show(amount)} prunes that share of the 400 entries still unpruned. "
                    "You need 300 more of those 400.")


def _adam_step07(model: nn.Module, x: torch.Tensor, y: torch.Tensor, weight_decay: float) -> None:
    """The reference: one Adam step (lr 1e-3) on the cross-entropy of the batch."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=weight_decay)
    opt.zero_grad()
    F.cross_entropy(model(x), y).backward()
    opt.step()


def _pruned80_07(device: torch.device) -> nn.Module:
    return pruning.prune_model(pretrained(device), 0.8, scope="global")


@exercise(3, "train_step is one Adam step; pruned weights stay zero, and weight_orig moves there only with weight decay")
def check_07_training_step(train_step: Callable[..., None], moved_and_leaked: Callable[[float], tuple[int, int]],
                           x: torch.Tensor, y: torch.Tensor) -> None:
    """``train_step(model, x, y, weight_decay)`` takes one Adam step (lr 1e-3); ``moved_and_leaked(wd)``
    counts, among fc1's pruned entries after that step, those of ``weight_orig`` that changed and those of the
    effective weight that are not zero.

    Introduced in solutions/07_accuracy_and_sparsity.ipynb.
    """
    __tracebackhide__ = True
    step_hint = ("create `torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=weight_decay)`, then "
                 "`opt.zero_grad()`, `F.cross_entropy(model(x), y).backward()` and `opt.step()`.")
    expected: dict[float, tuple[int, int]] = {}
    with torch.random.fork_rng():
        for weight_decay in (0.0, 0.01):
            mine, ref = _pruned80_07(x.device), _pruned80_07(x.device)
            call(train_step, mine, x, y, weight_decay)
            _adam_step07(ref, x, y, weight_decay)
            for (name, p), q in zip(mine.named_parameters(), ref.parameters()):
                check_equal(f"{name} after train_step(model, x, y, weight_decay={weight_decay})", p.detach(),
                            q.detach(), step_hint)
            before = _pruned80_07(x.device).fc1
            pruned = before.weight_mask == 0
            moved = int((ref.fc1.weight_orig[pruned] != before.weight_orig[pruned]).sum())
            leaked = int(torch.count_nonzero((ref.fc1.weight_orig * ref.fc1.weight_mask)[pruned]))
            expected[weight_decay] = (moved, leaked)
        hint = ("compare `weight_orig` after the step with the copy taken before, at the pruned entries "
                "(`weight_orig[pruned] != before[pruned]`): moved. The weight the model computes with is "
                "`weight_orig * weight_mask` (the `weight` attribute is only recomputed at the next forward): "
                "count its non-zero pruned entries: leaked. Plain Adam gets a zero gradient there; weight decay "
                "adds weight_decay * weight_orig to it.")
        for weight_decay, counts in expected.items():
            got = call(moved_and_leaked, weight_decay)
            check_equal(describe_call(moved_and_leaked, weight_decay), tuple(got) if isinstance(got, list) else got,
                        counts, hint)


@exercise(4, "planned_sparsity predicts the share of all weights that per-layer amounts prune, as torch counts it")
def check_07_planned_sparsity(planned_sparsity: Callable[[dict[str, int], dict[str, float | int]], float]) -> None:
    """``planned_sparsity(sizes, amounts)``: the share of all entries that one ``l1_unstructured`` call per
    layer, with that layer's amount, prunes (``sizes``: entries per layer).

    Introduced in solutions/07_accuracy_and_sparsity.ipynb.
    """
    __tracebackhide__ = True
    hint = ("torch prunes round(amount * size) entries of a layer for a float amount (Python's round: "
            "round(2.5) == 2) and exactly `amount` entries for an int; add up these counts over the layers and "
            "divide by the total size. A big layer weighs more than a small one: do not average the amounts.")
    with torch.device("meta"):  # shapes only: no memory, no random numbers
        lenet_sizes = {name: m.weight.numel() for name, m in LeNet().named_children()}
    cases = [({"a": 10, "b": 5}, {"a": 0.25, "b": 0.5}), ({"a": 10, "b": 7}, {"a": 3, "b": 0.5}),
             ({"a": 3}, {"a": 0.0}),
             (lenet_sizes, dict(zip(lenet_sizes, [0.2, 0.4, 0.9, 0.8, 0.3]))),
             (lenet_sizes, dict(zip(lenet_sizes, [0.25, 0.5, 0.9, 0.75, 0.5])))]
    for sizes, amounts in cases:
        pruned = 0
        for name, size in sizes.items():
            method = prune.L1Unstructured(amount=amounts[name])
            t = torch.arange(1.0, size + 1.0)
            pruned += int((method.compute_mask(t, torch.ones_like(t)) == 0).sum())
        expected = pruned / sum(sizes.values())
        check_equal(describe_call(planned_sparsity, sizes, amounts), call(planned_sparsity, dict(sizes), dict(amounts)),
                    expected, hint, rtol=1e-9, atol=1e-12)


def _prune_per_layer07(model: nn.Module, amounts: Mapping[str, float | int]) -> nn.Module:
    for name, amount in amounts.items():
        prune.l1_unstructured(getattr(model, name), "weight", amount=amount)
    return model


@exercise(5, f"your per-layer amounts prune at least {TARGET_07:.0%} of the weights and keep more accuracy than global L1")
def check_07_per_layer_amounts(amounts: dict[str, float | int], data: MNIST) -> None:
    """``amounts``: one L1 amount per layer of LeNet, pruning at least :data:`TARGET_07` of all conv and linear
    weights with a one-shot test accuracy at least that of global L1 pruning of as many weights.

    Introduced in solutions/07_accuracy_and_sparsity.ipynb.
    """
    __tracebackhide__ = True
    if amounts is None or amounts is ...:
        raise NotAttempted("`amounts` is still a placeholder: replace it with a dict of five amounts.\n"
                           "Hint: {'conv1': ..., 'conv2': ..., 'fc1': ..., 'fc2': ..., 'fc3': ...}.")
    with torch.random.fork_rng():
        model = pretrained()
        names = [name for name, m in model.named_children() if isinstance(m, (nn.Conv2d, nn.Linear))]
        check_equal("the keys of amounts", set(amounts) if isinstance(amounts, Mapping) else amounts, set(names),
                    "give one amount per layer, 0.0 for a layer you leave dense.")
        for name in names:
            try:
                pruning.entries_to_prune(amounts[name], getattr(model, name).weight.numel())
            except (TypeError, ValueError) as e:
                fail(f"amounts[{name!r}] is not a valid amount: {e}.", "a float in [0, 1] is a fraction of the "
                     "layer, an int a count of its weights.")
        _prune_per_layer07(model, amounts)
        zeros, total = _masked_count07(model)
        need = math.ceil(TARGET_07 * total)
        if zeros < need:
            fail(f"your amounts prune {zeros:,} of {total:,} weights ({zeros / total:.2%}); the target needs at "
                 f"least {need:,} ({TARGET_07:.0%}).",
                 "fc1 holds 80% of the weights: the target is reached mostly there and in fc2. Exercise 4's "
                 "planned_sparsity tells you the share before you prune.")
        acc = evaluate(model, data)
        global_acc = evaluate(pruning.prune_model(pretrained(), zeros, scope="global"), data)
        if acc < global_acc:
            local_acc = evaluate(pruning.prune_model(pretrained(), zeros / total, scope="local"), data)
            fail(f"with your amounts ({zeros / total:.1%} pruned) the test accuracy is {acc:.1%}, below the "
                 f"{global_acc:.1%} of global L1 pruning of as many weights (local pruning of the same share in "
                 f"every layer: {local_acc:.1%}).",
                 "use the one-layer sensitivity scan of the lesson: conv1, conv2 and fc3 lose the most, so prune "
                 "them little, and take the weights from fc1 and fc2 (fc2 tolerates 80-90%).")


# ==== Lesson 08 checks (solutions/08_*.ipynb) ====
# Lesson 08 · Does pruning compress?  (solutions/08_does_pruning_compress.ipynb)



def _macs_by_torch08(module: nn.Module, x: torch.Tensor) -> int:
    """Multiply-accumulates of ``module(x)`` as torch's FlopCounterMode counts them (2 FLOPs per MAC)."""
    with FlopCounterMode(display=False) as counter:
        module(x)
    return counter.get_total_flops() // 2


@exercise(1, "conv_macs and linear_macs count multiply-accumulates like torch's FlopCounterMode; LeNet's total is right")
def check_08_macs(conv_macs: Callable[[nn.Conv2d, int, int], int], linear_macs: Callable[[nn.Linear], int],
                  lenet_macs: int) -> None:
    """``conv_macs(conv, h, w)`` and ``linear_macs(linear)``: MACs per image; ``lenet_macs``: LeNet's total.

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
        model = LeNet()
    for conv, h, w in convs:
        expected = _macs_by_torch08(conv, torch.zeros(1, conv.in_channels, h, w, device="meta"))
        shown = (f"conv_macs(nn.Conv2d({conv.in_channels}, {conv.out_channels}, {conv.kernel_size}, "
                 f"stride={conv.stride}, padding={conv.padding}), {h}, {w})")
        check_equal(shown, call(conv_macs, conv, h, w), expected, hint)
    for linear in linears:
        expected = _macs_by_torch08(linear, torch.zeros(1, linear.in_features, device="meta"))
        check_equal(f"linear_macs(nn.Linear({linear.in_features}, {linear.out_features}))", call(linear_macs, linear),
                    expected, hint)
    check_equal("lenet_macs", lenet_macs, _macs_by_torch08(model, torch.zeros(1, 1, 28, 28, device="meta")),
                "conv1 sees 28x28 images, conv2 the 13x13 maps left after the first 2x2 pooling; add the five layers.")


def _csr_bytes_by_torch08(rows: int, cols: int, nnz: int, index_dtype: torch.dtype) -> int:
    """Bytes of the values, column indices and row pointers of a compact CSR matrix with ``nnz`` non-zeros."""
    flat = torch.zeros(rows * cols)
    flat[:nnz] = 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Sparse CSR tensor support is in beta state"
        c = flat.reshape(rows, cols).to_sparse_csr()
    parts = (c.values().clone(), c.col_indices().to(index_dtype, copy=True), c.crow_indices().to(index_dtype, copy=True))
    return sum(t.untyped_storage().nbytes() for t in parts)


_INDEX_DTYPES08 = {8: torch.int64, 4: torch.int32}


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
        expected = _csr_bytes_by_torch08(rows, cols, nnz, _INDEX_DTYPES08[index_bytes])
        check_equal(describe_call(csr_bytes, rows, cols, nnz, index_bytes=index_bytes),
                    call(csr_bytes, rows, cols, nnz, index_bytes=index_bytes), expected, hint)


def _max_nnz_by_torch08(rows: int, cols: int, index_dtype: torch.dtype) -> int:
    """The largest nnz whose compact CSR takes fewer bytes than the dense float32 matrix (binary search)."""
    dense_bytes = 4 * rows * cols
    low, high = -1, rows * cols  # bytes(low) < dense (or low == -1); bytes(high) >= dense
    if _csr_bytes_by_torch08(rows, cols, high, index_dtype) < dense_bytes:
        return high
    while high - low > 1:
        mid = (low + high) // 2
        if _csr_bytes_by_torch08(rows, cols, mid, index_dtype) < dense_bytes:
            low = mid
        else:
            high = mid
    return low


@exercise(3, "max_nnz finds where CSR stops beating dense, for int64 and int32 indices")
def check_08_break_even(max_nnz: Callable[..., int], break_even: dict[str, float]) -> None:
    """``max_nnz(rows, cols, index_bytes=8)``: the most non-zeros for which CSR takes fewer bytes than dense;
    ``break_even``: fc1's smallest sparsity at which CSR wins, ``{"int64": ..., "int32": ...}``.

    Introduced in solutions/08_does_pruning_compress.ipynb.
    """
    __tracebackhide__ = True
    hint = ("CSR is smaller while csr_bytes(rows, cols, nnz, index_bytes) < 4 * rows * cols (the dense float32 "
            "bytes): find the largest such nnz, e.g. solve the inequality for nnz and mind the strict '<' "
            "(an exact tie does not win), or step nnz down from rows * cols.")
    expected_fc1 = {}
    for rows, cols, index_bytes in [(120, 400, 8), (120, 400, 4), (1, 10, 8), (84, 120, 8), (10, 84, 4),
                                    (3, 4, 8), (16, 2, 4)]:
        expected = _max_nnz_by_torch08(rows, cols, _INDEX_DTYPES08[index_bytes])
        check_equal(describe_call(max_nnz, rows, cols, index_bytes=index_bytes),
                    call(max_nnz, rows, cols, index_bytes=index_bytes), expected, hint)
        if (rows, cols) == (120, 400):
            expected_fc1["int64" if index_bytes == 8 else "int32"] = 1 - expected / (rows * cols)
    check_equal("break_even", break_even, expected_fc1,
                "the smallest sparsity at which CSR wins is 1 - max_nnz(120, 400, index_bytes) / 48000: the share "
                "of zeros when exactly max_nnz values are kept.")


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
            fail(f"compress(<{label}>) returned {_show(out)}, expected a pair (values, packed).",
                 "return `values, packed`.")
        values, packed = out
        check_equal(f"values of compress(<{label}>)", values, w[w != 0],
                    "keep only the non-zero entries, in row-major order: `w[w != 0]` (a 1-D float32 tensor).")
        if isinstance(packed, np.ndarray):
            nbytes = packed.nbytes
        elif isinstance(packed, torch.Tensor):
            nbytes = packed.numel() * packed.element_size()
        else:
            fail(f"packed of compress(<{label}>) is {_show(packed)} (a {_type_name(packed)}), expected a NumPy "
                 "array (or a uint8 tensor).", "`np.packbits((w != 0).flatten().numpy())` returns a uint8 array.")
        check_equal(f"bytes of packed, for <{label}>", int(nbytes), math.ceil(w.numel() / 8),
                    "one bit per entry, 8 entries per byte, the last byte padded: `np.packbits` on the flat bool "
                    "mask. A bool tensor or array takes a whole byte per entry.")
        back = call(decompress, values, packed, tuple(w.shape))
        check_equal(f"decompress(*compress(<{label}>), {tuple(w.shape)})", back, w,
                    "unpack with `np.unpackbits(packed, count=n)` (count drops the padding bits), then put the "
                    "values where the bits are 1 in a zero float32 tensor of n entries, and reshape.")


def _cut_filters08(conv: nn.Conv2d, amount: float | int) -> None:
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
        _cut_filters08(conv, 8)
        cases.append(("Conv2d(6, 16, 3) with 8 filters cut, then Conv2d(16, 32, 3)", conv, nxt, torch.randn(2, 6, 13, 13)))
        conv, nxt = nn.Conv2d(3, 8, 5, stride=2, padding=2), nn.Conv2d(8, 4, 3, padding=1)
        _cut_filters08(conv, 0.5)
        cases.append(("Conv2d(3, 8, 5, stride=2, padding=2) with half its filters cut, then Conv2d(8, 4, 3, "
                      "padding=1)", conv, nxt, torch.randn(2, 3, 16, 16)))
        model = pretrained("cpu")
        _cut_filters08(model.conv1, 4)
        prune.ln_structured(model.conv2, "weight", amount=8, n=2, dim=0)
        cases.append(("LeNet's conv1 with 4 of 6 filters cut, then its conv2 (pruned too)", model.conv1, model.conv2,
                      torch.randn(2, 1, 28, 28)))
        for label, conv, nxt, x in cases:
            n_kept = int(conv.weight_mask.flatten(1).any(dim=1).sum())
            out = call(shrink, conv, nxt)
            if not isinstance(out, (tuple, list)) or len(out) != 2:
                fail(f"shrink(<{label}>) returned {_show(out)}, expected a pair (small_conv, small_next).",
                     "return the two new layers: `return small, small_next`.")
            small, small_next = out
            for name, layer in (("small_conv", small), ("small_next", small_next)):
                if not isinstance(layer, nn.Conv2d):
                    fail(f"{name} for <{label}> is {_show(layer)} (a {_type_name(layer)}), expected an nn.Conv2d.",
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
