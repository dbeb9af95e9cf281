"""The course's notebook format: what is an exercise, a solution block, a check cell, a wrong answer.

One exercise in a solution notebook (``solutions/NN_topic.ipynb``) is, in order:

- a markdown **heading** cell with a line ``### Exercise N: title`` (N = 1, 2, ... in order);
- one or more **solution** cells: code cells holding ``### BEGIN SOLUTION`` ... ``### END SOLUTION``
  (a ``def`` line or given code may surround the block; a markdown cell may hold a block too);
- after a solution cell with one block, any number of **wrong answer** cells: raw cells tagged
  ``wrong-answer`` whose text replaces that block (the tests prove each one fails its check with a hint);
- a **check** cell: the first code cell after the solution cells calling ``checks.<function>(...)``.

A markdown ``#`` or ``##`` heading (``## Next``) ends the exercise section. ``docs/authoring.md`` is
the manual; :mod:`course.exercises` turns solutions into exercises and :mod:`course.grade` grades them.
"""
from __future__ import annotations

import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbformat import NotebookNode

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
#: ``### Exercise N: title``, or in the Chinese edition ``### 练习 N：title`` (a full-width colon too).
HEADING = re.compile(r"^###\s+(?:Exercise\s+|练习\s*)(\d+)\s*[:：]\s*(.*?)\s*$", re.MULTILINE)
SECTION = re.compile(r"^#{1,2}\s", re.MULTILINE)
CHECK_CALL = re.compile(r"\bchecks\.(\w+)\s*\(")
#: The tag of a raw cell holding a wrong answer for the solution block of the code cell above it.
WRONG_TAG = "wrong-answer"
#: What replaces a solution block in an exercise notebook.
CODE_STUB = ("# YOUR CODE HERE", "raise NotImplementedError()")
MARKDOWN_STUB = ("YOUR ANSWER HERE",)
#: Points of one exercise (its check cell), for the course's grader and nbgrader alike.
POINTS = 1


@dataclass
class Exercise:
    """Where one exercise sits in a notebook (cell indices, 0-based)."""

    key: int | str
    title: str
    first: int
    heading: int | None = None
    solutions: list[int] = field(default_factory=list)
    check: int | None = None
    check_source: str | None = None
    #: (index of the solution cell, wrong code) for every wrong-answer cell of the exercise.
    wrong: list[tuple[int, str]] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"Exercise {self.key}: {self.title}" if self.title else f"Exercise {self.key}"


def read(path: str | Path) -> NotebookNode:
    """The notebook at ``path`` (nbformat 4)."""
    with open(path, encoding="utf-8") as f:
        return nbformat.read(f, as_version=4)


def render(nb: NotebookNode) -> str:
    """The exact text :func:`write` puts in the file."""
    text = nbformat.writes(nb)
    return text if text.endswith("\n") else text + "\n"


def write(nb: NotebookNode, path: str | Path) -> None:
    """Write ``nb`` to ``path`` as :func:`render` gives it (LF line ends on every OS)."""
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(render(nb))


def is_wrong_answer(cell: NotebookNode) -> bool:
    """Whether ``cell`` is a raw cell tagged as a wrong answer."""
    return cell.get("cell_type") == "raw" and WRONG_TAG in cell.get("metadata", {}).get("tags", [])


def replace_blocks(source: str, replacement: str | Sequence[str]) -> str:
    """Replace every BEGIN/END SOLUTION block of ``source`` (markers included) by ``replacement``.

    ``replacement`` (lines, or a text that is dedented first) is indented like the BEGIN line, so a
    block inside a ``def`` stays inside it. Raises ValueError for an END without BEGIN, a BEGIN inside
    a block, or a block that never ends.
    """
    lines = textwrap.dedent(replacement).splitlines() if isinstance(replacement, str) else list(replacement)
    out: list[str] = []
    indent: str | None = None
    for number, line in enumerate(source.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith(BEGIN):
            if indent is not None:
                raise ValueError(f"line {number}: '{BEGIN}' inside a solution block (missing '{END}' above?)")
            indent = line[: len(line) - len(line.lstrip())]
            out.extend(indent + r if r.strip() else "" for r in lines)
        elif stripped.startswith(END):
            if indent is None:
                raise ValueError(f"line {number}: '{END}' without a '{BEGIN}' above it")
            indent = None
        elif indent is None:
            out.append(line)
    if indent is not None:
        raise ValueError(f"'{BEGIN}' without a matching '{END}'")
    return "\n".join(out)


def find_exercises(nb: NotebookNode) -> tuple[list[Exercise], list[str]]:
    """The exercises of ``nb`` by the conventions above, and the problems of a malformed notebook.

    Problems are sentences (a heading without a check cell, a solution block outside any exercise,
    numbers out of order, a wrong answer in the wrong place, a broken block); :mod:`course.exercises`
    refuses to write while there are any, the grader grades what it can.
    """
    exercises: list[Exercise] = []
    problems: list[str] = []
    current: Exercise | None = None
    last_code: int | None = None  # the code cell a wrong answer belongs to
    for i, cell in enumerate(nb.cells):
        kind, source = cell.get("cell_type"), cell.get("source", "")
        try:
            replace_blocks(source, ())
        except ValueError as e:
            problems.append(f"cell {i + 1}: {e}")
        if is_wrong_answer(cell):
            if current is None or last_code is None or last_code not in current.solutions \
                    or nb.cells[last_code].source.count(BEGIN) != 1:
                problems.append(f"cell {i + 1}: a wrong answer must follow a code cell with exactly one "
                                "solution block (or another wrong answer)")
            elif not source.strip():
                problems.append(f"cell {i + 1}: an empty wrong answer")
            else:
                current.wrong.append((last_code, source))
            continue
        last_code = None
        if kind == "markdown":
            heading = HEADING.search(source)
            if heading:
                current = Exercise(int(heading[1]), heading[2], first=i, heading=i)
                exercises.append(current)
                continue
            if SECTION.search(source):
                current = None
        elif kind != "code":
            continue
        if BEGIN in source:
            if current is None or current.check is not None:
                problems.append(f"cell {i + 1}: a solution block outside an exercise "
                                "(no '### Exercise N: title' heading above it, or after its check cell)")
            else:
                current.solutions.append(i)
                last_code = i if kind == "code" else None
        elif kind == "code" and current is not None and current.check is None and CHECK_CALL.search(source):
            current.check, current.check_source = i, source
    for ex in exercises:
        if not ex.solutions:
            problems.append(f"{ex.label} has no solution cell (a cell with '{BEGIN}' ... '{END}')")
        if ex.check is None:
            problems.append(f"{ex.label} has no check cell (a code cell calling checks.<function>(...) "
                            "after the solution cells)")
    numbers = [ex.key for ex in exercises]
    if numbers != list(range(1, len(numbers) + 1)):
        problems.append(f"exercises are numbered {numbers}; number them 1, 2, 3, ... in order")
    return exercises, problems


def first_line(nb: NotebookNode, index: int) -> str:
    """``cell N (`first line`)``: how a cell is named in messages."""
    first = next((line.strip() for line in nb.cells[index].get("source", "").splitlines() if line.strip()), "")
    return f"cell {index + 1}" + (f" (`{one_line(first, 50)}`)" if first else "")


def one_line(text: object, limit: int = 600) -> str:
    """``text`` on one line, whitespace collapsed, cut with "..." past ``limit`` characters."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
