"""The checks of the synthetic course (tests/synthetic_course.py), in three parts like the course's own.

``write_course`` copies this file into the synthetic course's folder, whose solution notebook names it as its
checks module (``metadata.course.checks``): the grader imports it from there, in its kernel and at home.
"""
from __future__ import annotations

from typing import Any

import torch

from lenet.checks import Check, call, check_equal, exercise


@exercise(1, "multiply")
class check_99_multiply(Check):
    """``answer`` is 6 * 7. Introduced in tests/synthetic_course.py."""

    def collect(self, case: dict, answer: Any) -> Any:
        return answer

    def judge(self, case: dict, got: Any) -> None:
        check_equal("answer", got, 42, hint="multiply 6 by 7")


@exercise(2, "double")
class check_99_double(Check):
    """``double(x)`` is 2 * x, on 21 and on a number drawn for each grading. Introduced in tests/synthetic_course.py."""

    def cases(self, gen: torch.Generator) -> list[int]:
        return [21, int(torch.randint(-1000, 1000, (1,), generator=gen))]

    def collect(self, case: int, double: Any) -> Any:
        return call(double, case)

    def judge(self, case: int, got: Any) -> None:
        check_equal(f"double({case})", got, 2 * case, hint="return twice x")


@exercise(3, "arange")
class check_99_arange(Check):
    """``t`` is torch.arange(3). Introduced in tests/synthetic_course.py."""

    def collect(self, case: dict, t: Any) -> Any:
        return t

    def judge(self, case: dict, got: Any) -> None:
        check_equal("t", got, torch.tensor([0, 1, 2]), hint="torch.arange")


@exercise(4, "split")
class check_99_split(Check):
    """``words`` is 'a b c'.split(). Introduced in tests/synthetic_course.py."""

    def collect(self, case: dict, words: Any) -> Any:
        return words

    def judge(self, case: dict, got: Any) -> None:
        check_equal("words", got, ["a", "b", "c"], hint="str.split")


@exercise(5, "inverse")
class check_99_inverse(Check):
    """``inverse(x)`` is 1 / x. Introduced in tests/synthetic_course.py."""

    def cases(self, gen: torch.Generator) -> list[int]:
        return [4, int(torch.randint(1, 100, (1,), generator=gen))]

    def collect(self, case: int, inverse: Any) -> Any:
        return call(inverse, case)

    def judge(self, case: int, got: Any) -> None:
        check_equal(f"inverse({case})", got, 1 / case, hint="1 / x")
