"""The building blocks of every check: failures that read as hints, and comparisons that name the difference.

- :func:`exercise` makes a function the check of one exercise: it prefixes hints with ``Exercise N:``
  and prints ``Exercise N passed: <what>`` on success.
- :func:`check_equal` compares one answer with the expected value (:func:`difference` says how they
  differ without raising): tensors (shape, dtype, then values, with a tolerance for floats), ints (an
  int is required, 26.0 is not 26), floats (tolerance), bools, strings, tuples/lists/``torch.Size``
  (element by element), dicts (keys, then values) and sets.
- :func:`call` calls a function the learner wrote and :func:`describe_call` names such a call in a hint.
- :func:`check_mask` accepts any valid pruning mask: the right number of zeros, none of them on an entry that
  scores higher than a kept one, so that every choice among ties passes (torch's ``topk`` is one of them).
- :func:`by_hand` makes the torch functions an exercise re-implements raise while the learner's code runs.
- :func:`fail` raises :class:`CheckFailed` for a comparison ``check_equal`` cannot express;
  :func:`require_answer` raises :class:`NotAttempted` while an answer is still ``None`` or ``...``.
- :func:`show`, :func:`type_name` and :func:`as_number` write values the way hints show them.

Every check is a :class:`Check` in three parts, so that a grader can judge a learner's work outside the
learner's process: ``cases`` (plain data), ``collect`` (runs where the learner's code runs and returns plain
data) and ``judge`` (compares what was collected with torch's or a hand-computed answer). In a notebook the
check cell runs all three in one process; ``python -m lenet.grade`` runs ``collect`` in the learner's sandboxed
kernel and ``judge`` in its own process (docs/authoring.md, "Add a check").

Introduced in solutions/01_load_lenet.ipynb.
"""
from __future__ import annotations

import contextlib
import functools
import math
import numbers
import os
import types
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import torch
from torch import nn

from ..training import single_thread
from .plain import Opaque, Raised, Uncaught, plain, transfer

#: Longest rendering of a value inside a hint (longer ones are cut with "...").
MAX_SHOWN = 160

#: Tensors with at most this many entries are shown whole in a hint; larger ones by their first difference.
MAX_SHOWN_ENTRIES = 16


class CheckFailed(AssertionError):
    """The learner's answer is wrong; ``str(error)`` is the hint (expected, got, where to look).

    In IPython/Jupyter the traceback is cut down to the learner's own cells: frames of functions
    that set ``__tracebackhide__ = True`` (every check) are left out, including the innermost
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


def fail(problem: str, hint: str) -> NoReturn:
    """Raise :class:`CheckFailed` with ``problem`` (what was expected and got) and ``hint`` (where to look)."""
    __tracebackhide__ = True
    raise CheckFailed(f"{problem}\nHint: {hint}")


def require_answer(name: str, value: object, hint: str, what: str = "your answer") -> None:
    """Raise :class:`NotAttempted` while ``value`` is still the placeholder ``None`` or ``...``.

    Args:
        name: how the answer is called in the message.
        value: the learner's answer.
        hint: appended as ``Hint: ...``.
        what: what should replace the placeholder, e.g. ``"your list of names"``.
    """
    __tracebackhide__ = True
    if value is None or value is ...:
        raise NotAttempted(f"`{name}` is still {value!r}: replace it with {what}.\nHint: {hint}")


class CollectedError(Exception):
    """The learner's code raised while a grader collected their answer (in their kernel): its type and message."""

    def __init__(self, raised: Raised) -> None:
        super().__init__(raised.message)
        self.raised = raised


class Tampered(Exception):
    """What a grader collected from the learner's kernel is not what the check's collect returns."""


class Check:
    """The check of one exercise, in three parts that may run in two processes (docs/authoring.md, "Add a check").

    - :meth:`cases`: the inputs, as plain data (tensors, numbers, strings, lists, dicts): hand-made edge cases
      and cases drawn from ``gen``.
    - :meth:`collect`: runs where the learner's code runs. Called with one case and the check cell's arguments
      (the learner's functions and values), it calls the learner's code and returns plain data; it never
      computes the reference answer.
    - :meth:`judge`: compares what was collected for a case with torch's or a hand-computed answer, and raises
      :class:`CheckFailed` (through :func:`check_equal`, :func:`check_mask`, :func:`fail`) with a hint.

    ``@exercise(number, what)`` on a subclass makes the instance that a notebook's check cell calls,
    ``checks.check_NN_what(answer, ...)``: there the cases come from a fixed seed and each is collected and
    judged in turn, in the learner's process. A grader instead draws the cases from a secret seed, runs
    :meth:`collect_all` in the learner's kernel and :meth:`judge_all` in its own process (course/grade.py).
    Both ways run on one math thread, so that float sums come out in the same order in both processes.
    """

    #: The seed of the cases in a notebook's check cell (a grader draws a secret one each time it grades).
    NOTEBOOK_SEED = 0

    def __init__(self, number: int, what: str) -> None:
        self.exercise, self.what = number, what
        self.__name__ = type(self).__name__
        self.__doc__ = type(self).__doc__

    def __repr__(self) -> str:
        return f"<check of exercise {self.exercise}: {self.__name__}>"

    def cases(self, gen: torch.Generator) -> list[Any]:
        """The cases, plain data; by default one empty case (for a check of values, not of functions)."""
        return [{}]

    def collect(self, case: Any, *answers: Any) -> Any:
        """What the learner's answers give on ``case``, as plain data (runs in the learner's process)."""
        raise NotImplementedError

    def judge(self, case: Any, got: Any) -> None:
        """Raise :class:`CheckFailed` unless ``got``, collected for ``case``, is right."""
        raise NotImplementedError

    def __call__(self, *answers: Any) -> None:
        """The notebook's check cell: collect and judge each case here, print ``Exercise N passed: ...``."""
        __tracebackhide__ = True
        try:
            with single_thread():  # as collect_all and judge_all: float sums in the same order everywhere
                for case in self.cases(torch.Generator().manual_seed(self.NOTEBOOK_SEED)):
                    # both go through the same round trip as in a grader: the same data, the same verdict
                    self.judge(transfer(case), transfer(self.collect(transfer(case), *answers)))
        except CheckFailed as e:
            # a fresh exception: its traceback starts here, so nothing inside the check shows
            raise type(e)(f"Exercise {self.exercise}: {e}") from None
        except Exception as e:  # the learner's code raised: they see their own lines, not the check's
            raise e.with_traceback(_learner_frames(e.__traceback__))  # noqa: B904 - the same exception
        print(f"Exercise {self.exercise} passed: {self.what}")

    def collect_all(self, cases: Sequence[Any], answers: Sequence[Any]) -> list[Any]:
        """In the learner's kernel: plain data for each case, up to and including the first that raised."""
        collected: list[Any] = []
        with single_thread():
            for case in cases:
                try:
                    collected.append(plain(self.collect(case, *answers)))
                except Exception as e:  # noqa: BLE001 - judged at home: an error, a failure or "not attempted"
                    collected.append(plain(Uncaught.of(e)))
                    break
        return collected

    def judge_all(self, cases: Sequence[Any], collected: object) -> None:
        """In the grader: judge what :meth:`collect_all` gave for ``cases``; return when every case passed.

        Raises :class:`CheckFailed` or :class:`NotAttempted` (the hint, prefixed ``Exercise N:``),
        :class:`CollectedError` (the learner's code raised) or :class:`Tampered`.
        """
        __tracebackhide__ = True
        if not isinstance(collected, list) or not 1 <= len(collected) <= len(cases):
            raise Tampered(f"expected a list of at most {len(cases)} results, found {show(collected)}")
        try:
            with single_thread():
                for case, got in zip(cases, collected):
                    if isinstance(got, Uncaught):
                        _raise_again(got)
                    self.judge(case, got)
        except CheckFailed as e:
            raise type(e)(f"Exercise {self.exercise}: {e}") from None
        if len(collected) < len(cases):
            raise Tampered(f"{len(collected)} results for {len(cases)} cases, and none of them an error")


def _learner_frames(tb: types.TracebackType | None) -> types.TracebackType | None:
    """The traceback chain without the frames of the checks' own code (this package's files)."""
    here = os.path.dirname(os.path.abspath(__file__)) + os.sep
    kept: list[types.TracebackType] = []
    while tb is not None:
        if not os.path.abspath(tb.tb_frame.f_code.co_filename).startswith(here):
            kept.append(tb)
        tb = tb.tb_next
    chain: types.TracebackType | None = None
    for entry in reversed(kept):
        chain = types.TracebackType(chain, entry.tb_frame, entry.tb_lasti, entry.tb_lineno)
    return chain


def _raise_again(raised: Raised) -> NoReturn:
    """Raise what the learner's code raised in collect, as the grader reports it."""
    __tracebackhide__ = True
    if raised.type == "NotAttempted":
        raise NotAttempted(raised.message)
    if raised.type == "CheckFailed":
        raise CheckFailed(raised.message)
    raise CollectedError(raised)


def attempt(fn: object, *args: Any, **kwargs: Any) -> Any:
    """:func:`call`, but an exception from the learner's code is returned as a :class:`Raised` value.

    For a ``collect`` whose ``judge`` turns an error into a hint (``fail(f"... raised {got}", hint)``); an
    untouched skeleton still raises :class:`NotAttempted`.
    """
    __tracebackhide__ = True
    try:
        return call(fn, *args, **kwargs)
    except CheckFailed:
        raise
    except Exception as e:  # noqa: BLE001 - returned to the judge
        return Raised.of(e)


def exercise(number: int, what: str) -> Callable[[Any], Any]:
    """Make a :class:`Check` subclass (or a function) the check of exercise ``number``.

    On a :class:`Check` subclass it returns the one instance that check cells call. On a function (the
    form of checks written before checks had three parts) it returns a wrapper that runs it in the
    learner's process. Either way failures are prefixed ``Exercise N:``, success prints
    ``Exercise {number} passed: {what}`` (the line nbval compares), and ``.exercise`` / ``.what`` are kept.
    """

    def decorate(fn: Any) -> Any:
        if isinstance(fn, type) and issubclass(fn, Check):
            return fn(number, what)

        @functools.wraps(fn)
        def check(*args: Any, **kwargs: Any) -> None:
            __tracebackhide__ = True
            try:
                fn(*args, **kwargs)
            except CheckFailed as e:
                raise type(e)(f"Exercise {number}: {e}") from None
            print(f"Exercise {number} passed: {what}")

        check.exercise = number  # type: ignore[attr-defined]
        check.what = what  # type: ignore[attr-defined]
        return check

    return decorate


def show(value: object) -> str:
    """A short, readable rendering of ``value`` for a hint."""
    if isinstance(value, Opaque):  # not plain data: named by its type (the judge never sees the object)
        return f"a {value.type}"
    if isinstance(value, Raised):
        return str(value)
    if isinstance(value, torch.Tensor):
        if value.numel() <= MAX_SHOWN_ENTRIES:
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


def type_name(value: object) -> str:
    """The name of ``value``'s type, as hints write it: ``(a float)``; an :class:`Opaque` value's own type."""
    return value.type if isinstance(value, Opaque) else type(value).__name__


def as_number(value: object) -> object:
    """0-dim tensors and NumPy scalars as plain Python numbers; anything else unchanged."""
    if isinstance(value, torch.Tensor) and value.dim() == 0:
        return value.item()
    if isinstance(value, numbers.Number) and type(value).__module__ == "numpy":
        return value.item()  # type: ignore[attr-defined]
    return value


def check_equal(name: str, mine: object, expected: object, hint: str, *, rtol: float = 1e-5,
                atol: float = 1e-6, check_dtype: bool = True, decimals: int | None = None) -> None:
    """Raise :class:`CheckFailed` unless ``mine`` equals ``expected``; the message names ``name``.

    Args:
        name: how the answer is called in the message, e.g. ``"shapes"`` or ``"conv_out(28, 3)"``.
        mine: the learner's answer. ``None`` or ``...`` raises :class:`NotAttempted`.
        expected: the right answer; its type decides the comparison (see the module docstring).
        hint: where to look (the API, the formula); appended to every failure as ``Hint: ...``.
        rtol, atol: tolerance for floats and floating tensors.
        check_dtype: tensors must have the expected dtype (a bool mask is not torch's float mask).
        decimals: write floats with this many decimals, and a differing tensor of any size by its first
            difference (for values that differ in the last digits, such as a layer's outputs).
    """
    __tracebackhide__ = True
    require_answer(name, mine, hint)
    problem = difference(name, mine, expected, rtol=rtol, atol=atol, check_dtype=check_dtype, decimals=decimals)
    if problem is not None:
        fail(problem, hint)


def difference(name: str, mine: object, expected: object, *, rtol: float = 1e-5, atol: float = 1e-6,
               check_dtype: bool = True, decimals: int | None = None) -> str | None:
    """Why ``mine`` differs from ``expected``, in one sentence, or None when they match (see :func:`check_equal`)."""
    return _Rules(rtol, atol, check_dtype, decimals).difference(name, mine, expected)


@dataclass(frozen=True)
class _Rules:
    """How :func:`difference` compares (tolerances, dtype) and writes numbers."""

    rtol: float
    atol: float
    check_dtype: bool
    decimals: int | None

    def show(self, value: object, exact: bool = False) -> str:
        """A float with ``decimals`` decimals when set; otherwise :func:`show` (or ``repr`` if ``exact``)."""
        if self.decimals is not None and isinstance(value, float):
            return f"{value:.{self.decimals}f}"
        return repr(value) if exact else show(value)

    def difference(self, name: str, mine: object, expected: object) -> str | None:
        """Why ``mine`` differs from ``expected``; the type of ``expected`` decides the comparison."""
        if isinstance(mine, Opaque):  # an object that is not data: nothing to compare, whatever it claims
            return f"`{name}` is {show(mine)}, not a value like {show(expected)}."
        if isinstance(expected, torch.Tensor):
            return self.tensor_difference(name, mine, expected)
        mine = as_number(mine)
        got = f"`{name}` is {self.show(mine)}"
        if isinstance(expected, bool):
            if not isinstance(mine, bool):
                return f"{got} (a {type_name(mine)}), expected the bool {expected}."
            return None if mine == expected else f"{got}, expected {expected}."
        if isinstance(expected, int):
            if isinstance(mine, bool) or not isinstance(mine, int):
                return f"{got} (a {type_name(mine)}), expected the int {expected}."
            return None if mine == expected else f"{got}, expected {expected}."
        if isinstance(expected, float):
            if isinstance(mine, bool) or not isinstance(mine, (int, float)):
                return f"{got} (a {type_name(mine)}), expected a number close to {self.show(expected)}."
            if math.isclose(mine, expected, rel_tol=self.rtol, abs_tol=self.atol):
                return None
            return f"{got}, expected {self.show(expected)}."
        if isinstance(expected, (set, frozenset)):
            if not isinstance(mine, (set, frozenset, list, tuple)):
                return f"{got} (a {type_name(mine)}), expected a set like {show(expected)}."
            missing, extra = set(expected) - set(mine), set(mine) - set(expected)
            if not missing and not extra:
                return None
            parts = ([f"missing {show(sorted(missing, key=repr))}"] if missing else []) + (
                [f"unexpected {show(sorted(extra, key=repr))}"] if extra else [])
            return f"`{name}` has {' and '.join(parts)}; expected {show(expected)}."
        if isinstance(expected, Mapping):
            if not isinstance(mine, Mapping):
                return f"{got} (a {type_name(mine)}), expected a dict with keys {show(list(expected))}."
            missing = [k for k in expected if k not in mine]
            extra = [k for k in mine if k not in expected]
            if missing or extra:
                parts = ([f"is missing the keys {show(missing)}"] if missing else []) + (
                    [f"has unexpected keys {show(extra)}"] if extra else [])
                return f"`{name}` {' and '.join(parts)}; expected the keys {show(list(expected))}."
            for key in expected:
                problem = self.difference(f"{name}[{key!r}]", mine[key], expected[key])
                if problem is not None:
                    return problem
            return None
        if isinstance(expected, Sequence) and not isinstance(expected, str):
            if isinstance(mine, (torch.Tensor, str)) or not isinstance(mine, Sequence):
                return f"{got} (a {type_name(mine)}), expected a tuple like {show(expected)}."
            if len(mine) != len(expected):
                return f"{got}, {len(mine)} items; expected {len(expected)} items: {show(expected)}."
            for i, (a, b) in enumerate(zip(mine, expected)):
                if self.difference(f"{name}[{i}]", a, b) is not None:
                    return f"{got}, expected {show(expected)} (item {i} differs)."
            return None
        return None if mine == expected else f"{got}, expected {show(expected)}."

    def tensor_difference(self, name: str, mine: object, expected: torch.Tensor) -> str | None:
        """Shape, then dtype, then values; a larger tensor (or any with ``decimals``) by its first difference."""
        if not isinstance(mine, torch.Tensor):
            return f"`{name}` is {show(mine)} (a {type_name(mine)}), expected a tensor: {show(expected)}."
        if mine.shape != expected.shape:
            return f"`{name}` has shape {tuple(mine.shape)}, expected shape {tuple(expected.shape)}."
        if self.check_dtype and mine.dtype != expected.dtype:
            return f"`{name}` has dtype {mine.dtype}, expected {expected.dtype}."
        mine = mine.detach().to("cpu", expected.dtype)
        expected = expected.detach().cpu()
        if expected.is_floating_point() or expected.is_complex():
            differs = ~torch.isclose(mine, expected, rtol=self.rtol, atol=self.atol, equal_nan=True)
        else:
            differs = mine != expected
        if not bool(differs.any()):
            return None
        if expected.numel() <= MAX_SHOWN_ENTRIES and self.decimals is None:
            return f"`{name}` is {show(mine)}, expected {show(expected)}."
        first = tuple(differs.nonzero()[0].tolist())
        return (f"`{name}` differs from the expected tensor in {int(differs.sum())} of {expected.numel()} entries; "
                f"the first is at index {first}: {self.show(mine[first].item(), exact=True)} instead of "
                f"{self.show(expected[first].item(), exact=True)}.")


def _call_text(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    """``"name(arg, ..., key=value)"`` with the arguments as :func:`show` writes them."""
    return written_call(getattr(fn, "__name__", "your function"), *args, **kwargs)


def call(fn: object, *args: Any, **kwargs: Any) -> Any:
    """Call the learner's function ``fn``; an untouched skeleton raises :class:`NotAttempted`.

    ``fn`` that is not callable fails with a hint. Other exceptions from the learner's code pass
    through unchanged, so the learner sees the line of their own code that raised.
    """
    __tracebackhide__ = True
    if fn is None or fn is ...:
        raise NotAttempted(f"the function is still {fn!r}: define it with `def ...`.")
    if not callable(fn):
        fail(f"expected a function, got {show(fn)} (a {type_name(fn)}).",
             "pass the function itself (its name, without parentheses), not the result of calling it.")
    try:
        return fn(*args, **kwargs)
    except NotImplementedError as e:
        if str(e):
            raise
        raise NotAttempted(f"{_call_text(fn, args, kwargs)} still raises NotImplementedError: "
                           "replace `# YOUR CODE HERE` and the `raise` line with your code.") from None


def written_call(name: str, *args: Any, **kwargs: Any) -> str:
    """``"name(arg, ..., key=value)"`` with the arguments as :func:`show` writes them: a call named in a hint."""
    shown = [show(a) for a in args] + [f"{k}={show(v)}" for k, v in kwargs.items()]
    return f"{name}({', '.join(shown)})"


def describe_call(fn: object, *args: Any, **kwargs: Any) -> str:
    """``"name(arg, ..., key=value)"``: how a call of the learner's function is named in a hint."""
    return _call_text(fn, args, kwargs) if callable(fn) else "your function"


def check_mask(name: str, mine: object, expected: torch.Tensor, scores: torch.Tensor, hint: str, *,
               free: torch.Tensor | None = None, rtol: float = 0.0, score: str = "score") -> None:
    """Raise :class:`CheckFailed` unless ``mine`` is a valid pruning mask, like ``expected`` up to ties.

    Valid: same shape and dtype as ``expected``, only 0s and 1s, equal to ``expected`` outside ``free``, and inside
    ``free`` (the entries the method chooses among; all by default) as many zeros as ``expected``, none of them on
    an entry whose score is larger than the score of an entry kept. Among entries tied at the cut any choice passes,
    so ``torch.topk``'s choice is one answer, not the only one.

    Args:
        name: how the answer is called in the message, e.g. ``"l1_mask(t, 2)"``.
        mine: the learner's mask.
        expected: torch's mask (float 0/1, the shape of the pruned tensor).
        scores: what the method ranks, one per entry of ``expected`` (``t.abs()``; a slice's norm repeated over the
            slice for structured pruning).
        hint: where to look; appended to every failure.
        free: bool tensor, the entries up for choice (``old_mask == 1`` when a tensor is pruned again).
        rtol: scores this close count as tied (for norms that the learner may sum in another order).
        score: how a score is called in the message (``"|t|"``, ``"norm"``).
    """
    __tracebackhide__ = True
    require_answer(name, mine, hint)
    if not isinstance(mine, torch.Tensor) or mine.shape != expected.shape or mine.dtype != expected.dtype:
        fail(difference(name, mine, expected) or f"`{name}` is not a mask like torch's.", hint)
    mine = mine.detach().cpu()
    expected, scores = expected.detach().cpu(), scores.detach().cpu().to(torch.float64)
    if torch.equal(mine, expected):
        return
    odd = (mine != 0) & (mine != 1)
    if bool(odd.any()):
        first = tuple(odd.nonzero()[0].tolist())
        fail(f"`{name}` holds {mine[first].item()!r} at index {first}: a mask holds only 0s and 1s.", hint)
    free = torch.ones_like(expected, dtype=torch.bool) if free is None else free.cpu().bool()
    fixed = ~free & (mine != expected)
    if bool(fixed.any()):
        first = tuple(fixed.nonzero()[0].tolist())
        fail(f"`{name}` is {mine[first].item()!r} at index {first}, expected {expected[first].item()!r}: that entry "
             "is not the method's to choose.", hint)
    zeros, want = int((free & (mine == 0)).sum()), int((free & (expected == 0)).sum())
    if zeros != want:
        fail(f"`{name}` prunes {zeros} entries, expected {want}.", hint)
    pruned, kept = free & (mine == 0), free & (mine == 1)
    if bool(pruned.any()) and bool(kept.any()):
        worst, best = scores[pruned].max(), scores[kept].min()
        if worst > best * (1 + rtol):
            at_worst = tuple((pruned & (scores == worst)).nonzero()[0].tolist())
            at_best = tuple((kept & (scores == best)).nonzero()[0].tolist())
            fail(f"`{name}` prunes the entry at index {at_worst} ({score} = {worst.item():.6g}) but keeps the one at "
                 f"index {at_best} ({score} = {best.item():.6g}): it must prune the {want} entries with the smallest "
                 f"{score} (any choice among entries tied at the cut is accepted).", hint)


@contextlib.contextmanager
def by_hand(*targets: tuple[object, str, str], hint: str) -> Iterator[None]:
    """Inside the block, calling one of ``targets`` fails the check: an exercise done by hand may not call torch's own.

    Each target is ``(owner, attribute, shown name)``, e.g. ``(prune.L1Unstructured, "compute_mask",
    "prune.L1Unstructured.compute_mask")``: the attribute is replaced by a function that raises
    :class:`CheckFailed` naming it, and restored when the block ends, whatever happens. A call the learner's
    code caught and went past still fails when the block ends. Run only the learner's code inside the block,
    never torch's reference answer.
    """
    __tracebackhide__ = True
    used: list[str] = []
    # (owner, attribute, its own value or None when it was inherited): what the end of the block puts back
    saved = [(owner, attr, vars(owner).get(attr)) for owner, attr, _ in targets]

    def refusal(shown: str) -> Callable[..., NoReturn]:
        def refuse(*args: Any, **kwargs: Any) -> NoReturn:
            __tracebackhide__ = True
            used.append(shown)
            raise CheckFailed(f"your code calls `{shown}`: this exercise asks you to compute it yourself.\n"
                              f"Hint: {hint}")
        return refuse

    try:
        for owner, attr, shown in targets:
            setattr(owner, attr, refusal(shown))
        yield
    finally:
        for owner, attr, original in reversed(saved):
            if original is None:
                delattr(owner, attr)
            else:
                setattr(owner, attr, original)
    if used:
        fail(f"your code calls `{used[0]}`: this exercise asks you to compute it yourself.", hint)
