"""The grader beyond the room: time limits, Ctrl-C, arguments, how a submission is assembled, and a real lesson."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from course import grade
from course.exercises import build_exercise
from course.notebook import read
from synthetic_course import (CHECKS, CHEATS, HANG_TIMEOUT, LABELS, STEM, check, hanging, solution, solution_notebook, solved,
                              write_course)


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    return write_course(tmp_path_factory.mktemp("course"))


def test_a_hanging_notebook_times_out_with_a_row(course):
    nb, exercises, notes = grade.assemble(grade.lessons(course)[STEM], hanging())
    start = time.monotonic()
    rows = grade.grade_run(nb, exercises, "hanging", grade.Limits(timeout=HANG_TIMEOUT), notes, checks=CHECKS,
                           root=course)
    assert [(r.exercise, r.status) for r in rows] == [(LABELS[0], "passed"), ("", "timed out"),
                                                      *[(label, "not run") for label in LABELS[1:]]]
    assert rows[1].detail == f"timed out after {HANG_TIMEOUT}s in cell {solution(2) + 1} (`import time`)"
    assert time.monotonic() - start < HANG_TIMEOUT + 30  # the kernel is killed, not waited for


def test_ctrl_c_prints_what_was_graded_and_ends_every_kernel(course, tmp_path):
    nbformat.write(solved(), tmp_path / f"a-{STEM}.ipynb")
    nbformat.write(hanging(), tmp_path / f"b-{STEM}.ipynb")
    proc = subprocess.Popen([sys.executable, "-m", "lenet.grade", str(tmp_path), "--jobs", "2", "--timeout", "300",
                             "--course", str(course)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    first = proc.stderr.readline()  # the progress line of the solved notebook
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole foreground group
    out, err = proc.communicate(timeout=60)
    assert first.startswith(f"[1/2] {tmp_path / f'a-{STEM}.ipynb'}: 5/5 passed"), first + err
    assert proc.returncode == 130 and "interrupted: 1 of 2 notebooks graded" in err and "Traceback" not in err, err
    assert out.splitlines()[-1] == "5 exercises in 1 notebook: 5 passed"
    time.sleep(1)
    assert not [p.name for p in Path("/proc").glob("[0-9]*") if _graded_in_a_room(p)]


def _graded_in_a_room(proc: Path) -> bool:
    """Whether ``proc`` is alive and was started by `python -m lenet.grade` (its room token is set)."""
    try:
        env = (proc / "environ").read_bytes().split(b"\0")
        alive = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
    return alive and any(e.startswith(b"COURSE_GRADE_ROOM=") and len(e) > len(b"COURSE_GRADE_ROOM=") for e in env)


@pytest.mark.parametrize("args, message", [
    (["x.ipynb", "--timeout", "0"], "--timeout: must be greater than 0"),
    (["x.ipynb", "--timeout", "-5"], "--timeout: must be greater than 0"),
    (["x.ipynb", "--jobs", "0"], "--jobs: must be greater than 0"),
    (["x.ipynb", "--memory", "lots"], "--memory: 'lots' is not a number"),
])
def test_bad_arguments_are_refused_clearly(args, message, capsys):
    with pytest.raises(SystemExit) as info:
        grade.main(args)
    assert info.value.code == 2 and message in capsys.readouterr().err


def test_lesson_is_recognised_by_name_or_recorded_source():
    known = {"03_random_unstructured": "x", "01_load_lenet": "y"}
    nb = new_notebook()
    assert grade.lesson_of("alice-03_random_unstructured (1).ipynb", nb, known) == "x"
    assert grade.lesson_of("submissions/bob/01_load_lenet.ipynb", nb, known) == "y"
    assert grade.lesson_of("homework.ipynb", nb, known) is None
    nb.metadata["course"] = {"source": "solutions/01_load_lenet.ipynb"}
    assert grade.lesson_of("homework.ipynb", nb, known) == "y"


def test_learner_cells_are_kept_in_place_and_course_cells_restored(tmp_path):
    lesson = grade.lessons(write_course(tmp_path))[STEM]
    nb = solved()
    nb.cells[1].source = "checks = None"  # the setup cell, edited: the course's runs
    helper = new_code_cell("def helper():\n    return 6 * 7")
    nb.cells.insert(solution(1), helper)  # a cell of the learner's inside exercise 1
    to_run, exercises, _ = grade.assemble(lesson, nb)
    assert to_run.cells[1].source == lesson.notebook.cells[1].source
    assert to_run.cells[solution(1)].source == helper.source
    assert exercises[0].first == solution(1) - 1 and exercises[0].check == check(1) + 1


def test_an_error_in_a_demonstration_cell_does_not_hide_the_hint(tmp_path):
    """A course cell between the answer and the check raises because the answer is wrong: the row gives
    the check's hint, not the demonstration's error."""
    nb = solution_notebook()
    nb.cells.insert(check(2), new_code_cell("assert double(1) == 2, 'the demonstration fails'"))
    nb.cells[check(2)]["id"] = "demo"
    write_course(tmp_path)
    nbformat.write(nb, tmp_path / "solutions" / f"{STEM}.ipynb")
    submission = build_exercise(nb, f"solutions/{STEM}.ipynb")
    submission.cells[solution(2)].source = "def double(x):\n    return x + 2"
    rows = grade.grade_submission(f"{STEM}.ipynb", nbformat.writes(submission).encode(), root=tmp_path)
    (row,) = [r for r in rows if r.exercise == LABELS[1]]
    assert (row.status, row.detail) == ("failed", "Exercise 2: `double(21)` is 23, expected 42. Hint: return twice x")


def test_a_real_lesson_solved_passes_and_typed_values_with_a_cheat_pass_nothing():
    """Lesson 01 for real: its solution passes everywhere; answers typed from the stored outputs, with
    `checks` rebound to an object that passes everything, pass nothing."""
    root = Path(grade.ROOT)
    solved_rows = grade.grade_submission("alice-01_load_lenet.ipynb", (root / "solutions" / "01_load_lenet.ipynb").read_bytes())
    assert [r.status for r in solved_rows] == ["passed"] * 5, solved_rows
    nb = read(root / "exercises" / "01_load_lenet.ipynb")
    answers = {c.metadata["course"]["exercise"]: c for c in nb.cells
               if c.get("metadata", {}).get("course", {}).get("role") == "solution"}
    answers[4].source = "def accuracy(preds, labels):\n    return 0.967"
    answers[5].source = "def most_confused(matrix):\n    return (5, 8)"
    nb.cells.insert(2, new_code_cell(CHEATS["fake_checks"]))
    rows = grade.grade_submission("bob-01_load_lenet.ipynb", nbformat.writes(nb).encode())
    assert [r.exercise for r in rows if r.exercise][3:] == ["Exercise 4: Accuracy by hand",
                                                            "Exercise 5: Which digits does it confuse?"]
    assert not [r for r in rows if r.status == "passed"], rows
    assert [r.status for r in rows if r.exercise][3] == "failed", rows
