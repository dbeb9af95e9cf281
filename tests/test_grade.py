"""python -m lenet.grade on synthetic notebooks: solved, untouched, partly solved, broken, cells deleted,
hanging, and files that are not notebooks. Each notebook runs in a real kernel once (module fixture).
"""
from __future__ import annotations

import contextlib
import copy
import importlib.util
import io
import re
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from lenet import grade

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("make_exercises", ROOT / "tools" / "make_exercises.py")
mx = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(mx)

#: The five exercises of the synthetic course: (title, solution cell, check cell).
EXERCISES = [
    ("Multiply", "### BEGIN SOLUTION\nanswer = 6 * 7\n### END SOLUTION",
     "checks.check_equal('answer', answer, 42, hint='multiply 6 by 7')"),
    ("Double", "def double(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION",
     "checks.check_equal('double(21)', checks.call(double, 21), 42, hint='return twice x')"),
    ("Arange", "### BEGIN SOLUTION\nt = torch.arange(3)\n### END SOLUTION",
     "checks.check_equal('t', t, torch.tensor([0, 1, 2]), hint='torch.arange')"),
    ("Split", "### BEGIN SOLUTION\nwords = 'a b c'.split()\n### END SOLUTION",
     "checks.check_equal('words', words, ['a', 'b', 'c'], hint='str.split')"),
    ("Inverse", "def inverse(x):\n    ### BEGIN SOLUTION\n    return 1 / x\n    ### END SOLUTION",
     "checks.check_equal('inverse(4)', checks.call(inverse, 4), 0.25, hint='1 / x')"),
]
SETUP, FIRST_SOLUTION = 1, 3  # cell indices: the setup cell; exercise N: heading 3N-1, solution 3N, check 3N+1


def solved() -> nbformat.NotebookNode:
    nb = new_notebook()
    nb.cells = [new_markdown_cell("# 99 · Exercises: synthetic"), new_code_cell("import torch\nfrom lenet import checks")]
    for n, (title, solution, check) in enumerate(EXERCISES, 1):
        nb.cells += [new_markdown_cell(f"### Exercise {n}: {title}"), new_code_cell(solution), new_code_cell(check)]
    nb.cells.append(new_markdown_cell("## Next"))
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"c{i:02d}"
    return nb


def untouched() -> nbformat.NotebookNode:
    return mx.build_exercise(solved())


def solved_by_learner() -> nbformat.NotebookNode:
    """The exercise notebook (tagged) with each exercise's solution typed in by the learner."""
    nb = untouched()
    for n, (_, code, _) in enumerate(EXERCISES, 1):
        nb.cells[solution(n)].source = "\n".join(line for line in code.splitlines() if "### " not in line)
    return nb


def solution(n: int) -> int:
    return 3 * n


def check(n: int) -> int:
    return 3 * n + 1


def partly() -> nbformat.NotebookNode:
    """A learner's work: right, wrong, untouched, raising in the answer cell, raising inside the check;
    and broken: a cell between exercises 1 and 2 raises, yet the later exercises are still graded."""
    nb = untouched()
    nb.cells[solution(1)].source = "answer = 42"
    nb.cells[solution(2)].source = "def double(x):\n    return x + 2"
    nb.cells[solution(4)].source = "words = 'a b c'.split(1)"  # TypeError in the learner's cell
    nb.cells[solution(5)].source = "def inverse(x):\n    return 1 / (x - 4)"  # ZeroDivisionError when checked
    nb.cells.insert(check(1) + 1, new_code_cell("raise RuntimeError('boom')"))
    return nb


def deleted() -> nbformat.NotebookNode:
    """Solved, then: check 2 deleted, solution 3 deleted, check 1 edited to hide a wrong answer."""
    nb = solved_by_learner()
    nb.cells[solution(1)].source = "answer = 41"
    nb.cells[check(1)].source = "print('all good')"
    del nb.cells[solution(3)]
    del nb.cells[check(2)]
    return nb


def hanging() -> nbformat.NotebookNode:
    nb = untouched()
    nb.cells[solution(1)].source = "answer = 42"
    nb.cells[solution(2)].source = "import time\ntime.sleep(600)"
    return nb


HANG_TIMEOUT = 8


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> dict[str, list[grade.Row]]:
    folder = tmp_path_factory.mktemp("notebooks")
    rows: dict[str, list[grade.Row]] = {}
    for name, make in [("solved", solved), ("untouched", untouched), ("deleted", deleted)]:
        nbformat.write(make(), folder / f"{name}.ipynb")
        rows[name] = grade.grade_notebook(folder / f"{name}.ipynb", timeout=120)
    rows["partly_executed"] = partly()  # type: ignore[assignment]  # graded in memory, to look at its outputs
    rows["partly"] = grade.grade(rows["partly_executed"], folder, "partly", timeout=120)  # type: ignore[arg-type]
    nbformat.write(hanging(), folder / "hanging.ipynb")
    start = time.monotonic()
    rows["hanging"] = grade.grade_notebook(folder / "hanging.ipynb", timeout=HANG_TIMEOUT)
    rows["hanging_seconds"] = time.monotonic() - start  # type: ignore[assignment]
    return rows


def statuses(rows: list[grade.Row]) -> list[tuple[str, str]]:
    return [(r.exercise, r.status) for r in rows]


LABELS = [f"Exercise {n}: {title}" for n, (title, _, _) in enumerate(EXERCISES, 1)]


def test_a_solved_notebook_passes_everywhere(graded):
    assert statuses(graded["solved"]) == [(label, "passed") for label in LABELS]


def test_an_untouched_notebook_is_not_attempted_everywhere(graded):
    assert statuses(graded["untouched"]) == [(label, "not attempted") for label in LABELS]
    assert "still raises NotImplementedError" in graded["untouched"][0].detail


def test_a_partly_solved_notebook_gets_one_verdict_per_exercise(graded):
    rows = graded["partly"]
    assert statuses(rows) == [(LABELS[0], "passed"), ("", "error"), *zip(LABELS[1:], ["failed", "not attempted",
                                                                                        "error", "error"])]
    assert rows[2].detail == "`double(21)` is 23, expected 42. Hint: return twice x"
    # the error of the answer cell is reported, not the NameError it causes in the check cell
    assert rows[4].detail.startswith("TypeError: ") and f"(in cell {solution(4) + 2} (`words = " in rows[4].detail
    assert rows[5].detail.startswith(f"ZeroDivisionError: division by zero (in the check cell, cell {check(5) + 2} ")


def test_an_error_outside_the_exercises_is_a_row_and_later_exercises_are_still_graded(graded):
    rows = graded["partly"]
    assert rows[1].detail == f"error outside exercises in cell {check(1) + 2} (`raise RuntimeError('boom')`): RuntimeError: boom"
    assert rows[2].status == "failed"  # graded after the error


def test_deleted_and_edited_cells_are_noticed(graded):
    rows = {r.exercise: r for r in graded["deleted"]}
    assert rows[LABELS[0]].status == "failed"  # the original check ran, not the learner's print
    assert rows[LABELS[0]].detail.endswith("the check cell had been edited; the original check was run")
    assert (rows[LABELS[1]].status, rows[LABELS[1]].detail) == \
        ("missing", "the check cell of exercise 2 is missing (cells deleted?)")
    assert rows[LABELS[2]].status == "error"
    assert rows[LABELS[2]].detail.startswith("NameError: name 't' is not defined")
    assert rows[LABELS[2]].detail.endswith("the solution cell of exercise 3 is missing (cells deleted?)")
    assert rows[LABELS[3]].status == rows[LABELS[4]].status == "passed"


def test_a_hanging_notebook_times_out_with_a_row(graded):
    rows = graded["hanging"]
    assert statuses(rows) == [(LABELS[0], "passed"), ("", "timed out"), *[(label, "not run") for label in LABELS[1:]]]
    assert rows[1].detail == f"timed out after {HANG_TIMEOUT}s in cell {solution(2) + 1} (`import time`)"
    assert graded["hanging_seconds"] < HANG_TIMEOUT + 30  # the kernel is killed, not waited for


def test_not_notebooks_are_rows_not_crashes(tmp_path):
    (tmp_path / "garbage.ipynb").write_bytes(b"\x00\xffnot json")
    (tmp_path / "homework.py").write_text("print('hi')\n")
    (tmp_path / "no_cells.ipynb").write_text('{"nbformat": 4, "nbformat_minor": 5, "metadata": {}}')
    (tmp_path / "empty").mkdir()
    for name in ["garbage.ipynb", "homework.py"]:
        (row,) = grade.grade_notebook(tmp_path / name)
        assert row.status == "not a notebook" and row.detail.startswith("cannot read it as a Jupyter notebook: ")
    (row,) = grade.grade_notebook(tmp_path / "no_cells.ipynb")
    assert row.status in ("not a notebook", "error")
    (row,) = grade.grade_notebook(tmp_path / "missing.ipynb")
    assert (row.status, row.detail) == ("error", "no such file or folder")


def test_the_command_line_prints_a_table_and_exits_0_only_when_all_passed(tmp_path, graded, monkeypatch):
    def cached(path, timeout=grade.DEFAULT_TIMEOUT):
        return graded[path.stem]  # the rows the fixture got from the real kernels

    nbformat.write(solved(), tmp_path / "solved.ipynb")
    nbformat.write(untouched(), tmp_path / "untouched.ipynb")
    for paths, expected_status, summary in [(["solved.ipynb"], 0, "5 exercises in 1 notebook: 5 passed"),
                                            (["."], 1, "10 exercises in 2 notebooks: 5 passed, 5 not attempted")]:
        out = io.StringIO()
        with monkeypatch.context() as m, contextlib.redirect_stdout(out):
            m.setattr(grade, "grade_notebook", cached)
            m.chdir(tmp_path)
            status = grade.main(paths)
        lines = out.getvalue().splitlines()
        assert status == expected_status, out.getvalue()
        assert lines[0].split() == ["notebook", "exercise", "result", "detail"]
        assert lines[-1] == summary

    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "garbage.ipynb").write_text("not a notebook")
    (tmp_path / "empty").mkdir()
    result = subprocess.run([sys.executable, "-m", "lenet.grade", str(tmp_path / "bad"), str(tmp_path / "empty")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "garbage.ipynb  -         not a notebook  cannot read it as a Jupyter notebook" in result.stdout
    assert "no notebooks (*.ipynb) in this folder" in result.stdout
    assert result.stderr == ""


def test_the_learner_sees_the_hint_not_the_library_in_the_failed_check(graded):
    """What a failed check looks like in the notebook itself (the traceback the kernel sent)."""
    nb = graded["partly_executed"]
    (error,) = [o for o in nb.cells[check(2) + 1].outputs if o.output_type == "error"]
    assert error.ename == "CheckFailed" and error.evalue == "`double(21)` is 23, expected 42.\nHint: return twice x"
    text = re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(error.traceback))  # without the colours
    assert "checks.check_equal('double(21)'" in text and not re.search(r"lenet[/\\]checks[/\\]", text) and "site-packages" not in text


def test_find_exercises_from_tags_and_from_conventions_agree():
    by_conventions, problems = grade.find_exercises(solved())
    by_tags, _ = grade.find_exercises(untouched())
    assert not problems
    assert [(e.key, e.title, e.heading, e.solutions, e.check) for e in by_conventions] == \
        [(e.key, e.title, e.heading, e.solutions, e.check) for e in by_tags]
    nb = copy.deepcopy(untouched())
    del nb.metadata["course"]  # tags lost (another tool saved it): the conventions still find the exercises
    assert [e.check for e in grade.find_exercises(nb)[0]] == [e.check for e in by_tags]
