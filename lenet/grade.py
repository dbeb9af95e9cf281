"""Grade exercise notebooks headlessly: one row per exercise, for a classroom.

    python -m lenet.grade exercises/03_random_unstructured.ipynb [more notebooks or folders] [--timeout 120]

Each notebook runs top to bottom in a fresh local Python kernel (no network is used), in the
notebook's own folder, with a time limit for all of its cells together. Errors do not stop the run:
every later exercise is still graded. One row per exercise: ``passed``; ``failed`` with the check's
hint; ``not attempted`` (the ``raise NotImplementedError()`` of the skeleton is still there);
``error`` with the exception the learner's code raised; ``missing`` when the check cell was deleted;
``not run`` when the notebook stopped before it. Rows about the whole notebook: ``not a notebook``,
``timed out``, ``kernel died`` and ``error`` (e.g. a cell outside the exercises raised). The exit
status is 0 only when every row is ``passed``. Nothing raises out of :func:`grade_notebook`.

Notebook conventions (shared with ``tools/make_exercises.py``, which writes exercises/ from solutions/):

- **Heading**: a markdown cell with a line ``### Exercise N: title`` starts exercise N (N = 1, 2, ...
  in order). A markdown ``#`` or ``##`` heading (``## Next``) ends the exercise section.
- **Solution cells**: the exercise's code cells holding ``### BEGIN SOLUTION`` ... ``### END SOLUTION``
  (in exercises/ the block reads ``# YOUR CODE HERE`` / ``raise NotImplementedError()``, with the
  block's indentation). A markdown cell may hold a block too; it becomes ``YOUR ANSWER HERE``.
- **Check cell**: the first code cell after the solution cells that calls ``checks.<function>(...)``
  (``lenet.checks.check_01_conv_out(conv_out, fc1_inputs_32)``). It closes the exercise: cells after it
  and before the next heading belong to no exercise.
- **Tags** (written by ``tools/make_exercises.py`` into exercises/): ``cell.metadata["course"] =
  {"exercise": N, "role": "heading" | "solution" | "check"}`` and ``nb.metadata["course"] =
  {"exercises": [{"exercise": N, "title": ..., "check": <check cell source>}, ...], "source": ...}``.
  With tags the grader notices deleted cells and runs the original check cell even where the learner
  edited it; without tags (solutions/) it finds the exercises by the conventions above.
- **Wrong answers** (solutions/ only): ``cell.metadata["course"]["wrong"] = [code, ...]`` on a
  solution cell lists plausible wrong answers for its block; the tests substitute each one and expect
  the check to fail with its hint. ``tools/make_exercises.py`` strips them from exercises/.

Every code cell of an exercise before its check cell (solution cells, given cells, cells the learner
inserted) counts as the exercise's answer: when one of them raised, the row reports that error
(``NotImplementedError()`` with no message: not attempted) instead of the check cell's consequent
``NameError``.

Introduced in solutions/01_load_lenet.ipynb.
"""
from __future__ import annotations

import argparse
import logging
import math
import os
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat import NotebookNode

PASSED, FAILED, NOT_ATTEMPTED, ERROR = "passed", "failed", "not attempted", "error"
MISSING, NOT_RUN = "missing", "not run"
NOT_A_NOTEBOOK, TIMED_OUT, KERNEL_DIED = "not a notebook", "timed out", "kernel died"

#: Default time limit in seconds for all cells of one notebook together.
DEFAULT_TIMEOUT = 120
#: Longest exercise label shown in the table (longer ones are cut with "...").
MAX_TITLE = 48

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
HEADING = re.compile(r"^###\s+Exercise\s+(\d+)\s*:\s*(.*?)\s*$", re.MULTILINE)
SECTION = re.compile(r"^#{1,2}\s", re.MULTILINE)
CHECK_CALL = re.compile(r"\bchecks\.\w+\s*\(")
CHECK_ERRORS = {"CheckFailed": FAILED, "NotAttempted": NOT_ATTEMPTED}


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

    @property
    def label(self) -> str:
        return f"Exercise {self.key}: {self.title}" if self.title else f"Exercise {self.key}"


@dataclass
class Row:
    """One line of the grading table."""

    notebook: str
    exercise: str
    status: str
    detail: str = ""
    position: int = 0  # cell index, to list rows in notebook order


@dataclass
class Run:
    """What executing a notebook produced: the first error of each cell, and where it stopped."""

    errors: dict[int, tuple[str, str]] = field(default_factory=dict)
    ran: set[int] = field(default_factory=set)
    stop_status: str | None = None
    stop_detail: str = ""
    stop_cell: int | None = None


def find_exercises(nb: NotebookNode) -> tuple[list[Exercise], list[str]]:
    """The exercises of ``nb``, from its tags (exercises/) or by the conventions (solutions/), and problems.

    Problems are sentences about a malformed notebook (a heading without a check cell, a solution
    block outside any exercise, numbers out of order); ``tools/make_exercises.py`` refuses to write
    when there are any, the grader grades what it can.
    """
    meta = nb.get("metadata", {}).get("course")
    if isinstance(meta, dict) and isinstance(meta.get("exercises"), list):
        return _from_tags(nb, meta["exercises"]), []
    return _from_conventions(nb)


def _from_tags(nb: NotebookNode, listed: list[object]) -> list[Exercise]:
    exercises: dict[object, Exercise] = {}
    for entry in listed:
        if isinstance(entry, dict) and "exercise" in entry:
            key = entry["exercise"]
            exercises[key] = Exercise(key, str(entry.get("title", "")), first=len(nb.cells),
                                      check_source=entry.get("check"))
    for i, cell in enumerate(nb.cells):
        tag = cell.get("metadata", {}).get("course")
        if not isinstance(tag, dict) or tag.get("exercise") not in exercises:
            continue
        ex = exercises[tag["exercise"]]
        ex.first = min(ex.first, i)
        role = tag.get("role")
        if role == "heading" and ex.heading is None:
            ex.heading = i
        elif role == "solution":
            ex.solutions.append(i)
        elif role == "check" and ex.check is None:
            ex.check = i
    return list(exercises.values())


def _from_conventions(nb: NotebookNode) -> tuple[list[Exercise], list[str]]:
    exercises: list[Exercise] = []
    problems: list[str] = []
    current: Exercise | None = None
    for i, cell in enumerate(nb.cells):
        source = cell.get("source", "")
        if cell.get("cell_type") == "markdown":
            heading = HEADING.search(source)
            if heading:
                current = Exercise(int(heading[1]), heading[2], first=i, heading=i)
                exercises.append(current)
                continue
            if SECTION.search(source):
                current = None
        elif cell.get("cell_type") != "code":
            continue
        if BEGIN in source:
            if current is None or current.check is not None:
                problems.append(f"cell {i + 1}: a solution block outside an exercise "
                                "(no '### Exercise N: title' heading above it, or after its check cell)")
            else:
                current.solutions.append(i)
        elif cell.get("cell_type") == "code" and current is not None and current.check is None \
                and CHECK_CALL.search(source):
            current.check, current.check_source = i, source
    for ex in exercises:
        if not ex.solutions:
            problems.append(f"{ex.label} has no solution cell (a cell with '{BEGIN}' ... '{END}')")
        if ex.check is None:
            problems.append(f"{ex.label} has no check cell (a code cell calling lenet.checks.<function>(...) "
                            "after the solution cells)")
    numbers = [ex.key for ex in exercises]
    if numbers != list(range(1, len(numbers) + 1)):
        problems.append(f"exercises are numbered {numbers}; number them 1, 2, 3, ... in order")
    return exercises, problems


def _one_line(text: str, limit: int = 600) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _cell_name(nb: NotebookNode, index: int) -> str:
    first = next((line.strip() for line in nb.cells[index].get("source", "").splitlines() if line.strip()), "")
    return f"cell {index + 1}" + (f" (`{_one_line(first, 50)}`)" if first else "")


def _first_error(cell: NotebookNode) -> tuple[str, str] | None:
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            return str(out.get("ename", "Error")), str(out.get("evalue", ""))
    return None


def _kernel_env() -> dict[str, str]:
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env.setdefault(name, "1")  # one math thread, as `make test` runs the notebooks
    env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    return env


def run_notebook(nb: NotebookNode, folder: Path, timeout: int = DEFAULT_TIMEOUT) -> Run:
    """Execute ``nb`` in place in a fresh kernel started in ``folder``; cells that raise do not stop it.

    ``timeout`` (seconds) bounds all cells together, not counting the kernel's start. Stops at the
    first cell that runs past it or that kills the kernel; the result says where and why.
    """
    quiet = logging.getLogger("lenet.grade.nbclient")  # nbclient logs timeouts as errors: the row says it
    if not quiet.handlers:
        quiet.addHandler(logging.NullHandler())
    quiet.propagate = False
    client = NotebookClient(nb, timeout=max(1, int(timeout)), kernel_name="python3", allow_errors=True,
                            record_timing=False, shutdown_kernel="immediate", log=quiet,
                            resources={"metadata": {"path": str(folder)}})
    run = Run()
    index = None
    try:
        with client.setup_kernel(env=_kernel_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL):
            deadline = time.monotonic() + timeout
            for index, cell in enumerate(nb.cells):
                if cell.get("cell_type") != "code":
                    continue
                left = deadline - time.monotonic()
                if left <= 0:
                    raise CellTimeoutError(f"no time left before {_cell_name(nb, index)}")
                client.timeout = max(1, math.ceil(left))
                client.execute_cell(cell, index)
                run.ran.add(index)
                error = _first_error(cell)
                if error is not None:
                    run.errors[index] = error
    except CellTimeoutError:
        run.stop_status, run.stop_cell = TIMED_OUT, index
        run.stop_detail = f"timed out after {timeout}s in {_cell_name(nb, index)}" if index is not None \
            else f"timed out after {timeout}s"
    except DeadKernelError:
        run.stop_status, run.stop_cell = KERNEL_DIED, index
        where = f" in {_cell_name(nb, index)}" if index is not None else ""
        run.stop_detail = f"the Python kernel died{where} (out of memory? a crash? os._exit?)"
    except Exception as e:  # the kernel could not start, or nbclient failed: a row, never a crash
        run.stop_status, run.stop_cell = ERROR, index
        run.stop_detail = f"could not run the notebook: {type(e).__name__}: {_one_line(str(e), 300)}"
    return run


def _grade_exercise(nb: NotebookNode, name: str, ex: Exercise, run: Run, note: str) -> Row:
    """The row of one exercise, from the errors of its answer cells and of its check cell."""
    position = ex.check if ex.check is not None else ex.first

    def row(status: str, detail: str) -> Row:
        return Row(name, ex.label, status, "; ".join(part for part in (detail, note) if part), position)

    if ex.check is None:
        return row(MISSING, f"the check cell of exercise {ex.key} is missing (cells deleted?)")
    if ex.check not in run.ran:
        return row(NOT_RUN, "the notebook stopped before this exercise (see its row)")
    check_error = run.errors.get(ex.check)
    if check_error is None:
        return row(PASSED, "")
    for i in range(ex.first, ex.check):  # answer cells: the first error is the cause
        if i in run.errors:
            ename, evalue = run.errors[i]
            if ename == "NotImplementedError" and not evalue:
                return row(NOT_ATTEMPTED, f"{_cell_name(nb, i)} still raises NotImplementedError")
            return row(ERROR, f"{ename}: {_one_line(evalue)} (in {_cell_name(nb, i)})")
    ename, evalue = check_error
    if ename in CHECK_ERRORS:
        return row(CHECK_ERRORS[ename], _one_line(evalue))
    if ename == "NotImplementedError" and not evalue:
        return row(NOT_ATTEMPTED, "your function still raises NotImplementedError")
    detail = f"{ename}: {_one_line(evalue)} (in the check cell, {_cell_name(nb, ex.check)})"
    if not ex.solutions:
        detail += f"; the solution cell of exercise {ex.key} is missing (cells deleted?)"
    return row(ERROR, detail)


def grade_notebook(path: Path, timeout: int = DEFAULT_TIMEOUT, name: str | None = None) -> list[Row]:
    """Run the notebook at ``path`` and return its rows (exercises and notebook-level problems), never raising."""
    name = name or str(path)
    try:
        if not path.exists():
            return [Row(name, "", ERROR, "no such file or folder")]
        captured: dict[str, object] = {}
        try:
            with open(path, encoding="utf-8") as f:
                nb = nbformat.read(f, as_version=4, capture_validation_error=captured)
            if not isinstance(nb.get("cells"), list) or not all(isinstance(c, dict) for c in nb.cells):
                raise ValueError("no list of cells")
        except Exception as e:
            return [Row(name, "", NOT_A_NOTEBOOK, f"cannot read it as a Jupyter notebook: {type(e).__name__}: "
                        f"{_one_line(str(e), 200)}")]
        return grade(nb, path.resolve().parent, name, timeout)
    except Exception as e:  # never crash on one notebook: report and go on with the next
        return [Row(name, "", ERROR, f"the grader failed on this notebook: {type(e).__name__}: {_one_line(str(e), 300)}")]


def grade(nb: NotebookNode, folder: Path, name: str, timeout: int = DEFAULT_TIMEOUT) -> list[Row]:
    """Execute ``nb`` in place (kernel started in ``folder``) and return its rows in notebook order."""
    exercises, _ = find_exercises(nb)
    if not exercises:
        return [Row(name, "", ERROR, "no exercises found (no '### Exercise N: title' headings)")]
    notes: dict[object, str] = {}
    for ex in exercises:  # run the original check, whatever the learner did to the check cell
        if ex.check is not None and ex.check_source is not None \
                and nb.cells[ex.check].get("source", "").strip() != ex.check_source.strip():
            nb.cells[ex.check]["source"] = ex.check_source
            notes[ex.key] = "the check cell had been edited; the original check was run"
    run = run_notebook(nb, folder, timeout)
    rows: list[Row] = []
    owned: set[int] = set()
    starts = sorted(ex.first for ex in exercises) + [len(nb.cells)]
    for ex in exercises:
        end = ex.check + 1 if ex.check is not None else min(s for s in starts if s > ex.first)
        owned.update(range(ex.first, end))
        rows.append(_grade_exercise(nb, name, ex, run, notes.get(ex.key, "")))
    for i, (ename, evalue) in sorted(run.errors.items()):
        if i not in owned:
            rows.append(Row(name, "", ERROR, f"error outside exercises in {_cell_name(nb, i)}: {ename}: "
                            f"{_one_line(evalue)}", i))
    if run.stop_status is not None:
        stop = run.stop_cell if run.stop_cell is not None else len(nb.cells)
        rows.append(Row(name, "", run.stop_status, run.stop_detail, stop))
    return sorted(rows, key=lambda r: r.position)


def notebooks_in(paths: Sequence[str | Path]) -> list[Path]:
    """The notebooks named by ``paths``: files as given, folders searched recursively for ``*.ipynb``."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found.extend(sorted(q for q in p.rglob("*.ipynb") if ".ipynb_checkpoints" not in q.parts))
        else:
            found.append(p)
    return found


def format_table(rows: Sequence[Row]) -> str:
    """The rows as an aligned text table with a header and a summary line."""
    def cut(text: str) -> str:
        return text if len(text) <= MAX_TITLE else text[: MAX_TITLE - 3] + "..."

    header = Row("notebook", "exercise", "result", "detail")
    shown = [header, *(Row(r.notebook, cut(r.exercise), r.status, r.detail) for r in rows)]
    w_nb = max(len(r.notebook) for r in shown)
    w_ex = max(len(r.exercise or "-") for r in shown)
    w_st = max(len(r.status) for r in shown)
    lines = [f"{r.notebook:{w_nb}}  {(r.exercise or '-'):{w_ex}}  {r.status:{w_st}}  {r.detail}".rstrip()
             for r in shown]
    exercise_rows = [r for r in rows if r.exercise]
    counts: dict[str, int] = {}
    for r in exercise_rows:
        counts[r.status] = counts.get(r.status, 0) + 1
    problems = len(rows) - len(exercise_rows)
    notebooks = len({r.notebook for r in rows})
    summary = (f"{len(exercise_rows)} exercise{'s' * (len(exercise_rows) != 1)} in {notebooks} "
               f"notebook{'s' * (notebooks != 1)}: " + (", ".join(f"{n} {s}" for s, n in counts.items()) or "none"))
    if problems:
        summary += f"; {problems} notebook problem{'s' * (problems != 1)}"
    return "\n".join(lines + ["", summary])


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: grade the notebooks and folders given, print the table, return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m lenet.grade", description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+", help="notebooks (.ipynb) or folders holding them")
    parser.add_argument("--timeout", type=int, default=DEFAULT_TIMEOUT,
                        help=f"seconds for all cells of one notebook together (default {DEFAULT_TIMEOUT})")
    args = parser.parse_args(argv)
    rows: list[Row] = []
    paths = notebooks_in(args.paths)
    for p in args.paths:
        if Path(p).is_dir() and not any(q.is_relative_to(Path(p)) for q in paths):
            rows.append(Row(str(p), "", ERROR, "no notebooks (*.ipynb) in this folder"))
    for path in paths:
        rows.extend(grade_notebook(path, args.timeout))
    print(format_table(rows))
    return 0 if rows and all(r.status == PASSED for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
