"""python -m lenet.grade on a small synthetic course: honest work, broken notebooks and cheats.

One module fixture grades a whole room of submissions with the real command (2 jobs, real kernels);
each test then reads the rows of one submission. The course is a temporary folder holding
solutions/99_synthetic.ipynb, five tiny exercises that start fast.
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from course import execute, grade
from course.exercises import build_exercise
from course.notebook import read

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
STEM = "99_synthetic"
LABELS = [f"Exercise {n}: {title}" for n, (title, _, _) in enumerate(EXERCISES, 1)]
WRONG = ["answer = 41", "def double(x):\n    return x + 2", "t = torch.arange(4)", "words = ['a']",
         "def inverse(x):\n    return x"]
HANG_TIMEOUT = 10


def solution_notebook() -> nbformat.NotebookNode:
    nb = new_notebook()
    nb.cells = [new_markdown_cell("# 99 · Exercises: synthetic"), new_code_cell("import torch\nimport lenet\nfrom lenet import checks")]
    for n, (title, solution, check) in enumerate(EXERCISES, 1):
        nb.cells += [new_markdown_cell(f"### Exercise {n}: {title}"), new_code_cell(solution), new_code_cell(check)]
    nb.cells.append(new_markdown_cell("## Next"))
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"c{i:02d}"
    return nb


def solution(n: int) -> int:
    """Index of exercise n's answer cell in the exercise notebook (heading 3n-1, answer 3n, check 3n+1)."""
    return 3 * n


def check(n: int) -> int:
    return 3 * n + 1


def untouched() -> nbformat.NotebookNode:
    return build_exercise(solution_notebook(), f"solutions/{STEM}.ipynb")


def answered(answers: list[str]) -> nbformat.NotebookNode:
    nb = untouched()
    for n, code in enumerate(answers, 1):
        nb.cells[solution(n)].source = code
    return nb


def solved() -> nbformat.NotebookNode:
    return answered(["\n".join(line for line in code.splitlines() if "### " not in line) for _, code, _ in EXERCISES])


def wrong_with(cheat: str, after: int = 1) -> nbformat.NotebookNode:
    """Every answer wrong, and the learner's ``cheat`` in a cell of its own after cell ``after``."""
    nb = answered(WRONG)
    nb.cells.insert(after + 1, new_code_cell(cheat))
    return nb


def partly() -> nbformat.NotebookNode:
    """Right, wrong, untouched, raising in the answer cell, raising inside the check; and a cell between
    exercises 1 and 2 that raises, after which the later exercises are still graded."""
    nb = untouched()
    nb.cells[solution(1)].source = "answer = 42"
    nb.cells[solution(2)].source = "def double(x):\n    return x + 2"
    nb.cells[solution(4)].source = "words = 'a b c'.split(1)"  # TypeError in the learner's cell
    nb.cells[solution(5)].source = "def inverse(x):\n    return 1 / (x - 4)"  # ZeroDivisionError when checked
    nb.cells.insert(check(1) + 1, new_code_cell("raise RuntimeError('boom')"))
    return nb


def deleted() -> nbformat.NotebookNode:
    """Solved, then: exercise 2 deleted with its metadata entry, check 1 edited to hide a wrong answer."""
    nb = solved()
    nb.cells[solution(1)].source = "answer = 41"
    nb.cells[check(1)].source = "print('Exercise 1 passed: multiply')"
    del nb.cells[solution(2) - 1: check(2) + 1]
    nb.metadata["course"]["exercises"] = [e for e in nb.metadata["course"]["exercises"] if e["exercise"] != 2]
    return nb


def forged_metadata() -> nbformat.NotebookNode:
    """Wrong answers, with the check cells and the recorded checks both replaced by a print."""
    nb = answered(WRONG)
    for n in range(1, 6):
        nb.cells[check(n)].source = f"print('Exercise {n} passed')"
    for entry in nb.metadata["course"]["exercises"]:
        entry["check"] = "print('passed')"
    return nb


def hanging() -> nbformat.NotebookNode:
    nb = untouched()
    nb.cells[solution(1)].source = "answer = 42"
    nb.cells[solution(2)].source = "import time\ntime.sleep(600)"
    return nb


CHEATS = {
    "fake_checks": "class Pass:\n    def __getattr__(self, name):\n        return lambda *a, **k: None\nchecks = Pass()",
    "fake_lenet_checks": "class Pass:\n    def __getattr__(self, name):\n        return lambda *a, **k: None\n"
                         "lenet.checks = Pass()\nchecks = lenet.checks",
    "patched_functions": "import lenet.checks as c, lenet.checks.core as core\n"
                         "c.check_equal = core.check_equal = lambda *a, **k: None",
    "custom_exc": "get_ipython().set_custom_exc((BaseException,), lambda *a, **k: None)",
    "input_transformer": "get_ipython().input_transformers_cleanup.append("
                         "lambda lines: [] if any('checks.' in l for l in lines) else lines)",
    "ast_transformer": "import ast\nclass Blank(ast.NodeTransformer):\n"
                       "    def visit_Module(self, node):\n        return ast.Module(body=[], type_ignores=[])\n"
                       "get_ipython().ast_transformers.append(Blank())",
    "printed_pass": "print('Exercise 1 passed: multiply')",
    "patched_grader": "import sys, types\nfake = types.ModuleType('course.verify')\n"
                      "fake.run = fake.fresh_checks = lambda *a, **k: True\nsys.modules['course.verify'] = fake\n"
                      "import course\ncourse.verify = fake",
}


@pytest.fixture(scope="module")
def room(tmp_path_factory) -> dict[str, object]:
    """Grade a room of submissions once with `python -m lenet.grade --jobs 2`; the rows by submission."""
    course = tmp_path_factory.mktemp("course")
    (course / "solutions").mkdir()
    nbformat.write(solution_notebook(), course / "solutions" / f"{STEM}.ipynb")
    room = tmp_path_factory.mktemp("room")
    pidfile = room.parent / "detached.pid"
    peer = room / f"peer-{STEM}.ipynb"
    notebooks = {
        "solved": solved(), "untouched": untouched(), "partly": partly(), "deleted": deleted(),
        "forged_metadata": forged_metadata(), "peer": untouched(),
        **{name: wrong_with(cheat) for name, cheat in CHEATS.items()},
        "overwrites_peer": wrong_with(f"import shutil\nopen({str(peer)!r}, 'w').write(open({str(peer)!r}).read()"
                                      ".replace('raise NotImplementedError()', 'pass'))"),
        "planted_import": wrong_with("import sys; print([p for p in sys.path if 'room' in p])"),
        "detached": wrong_with(f"import subprocess\np = subprocess.Popen(['sleep', '300'], start_new_session=True)\n"
                               f"open({str(pidfile)!r}, 'w').write(str(p.pid))"),
        "memory": wrong_with("import torch\nx = torch.empty(int(1.8e9), dtype=torch.uint8).fill_(1)"),
        "network": answered(["import socket\ntry:\n    socket.create_connection(('127.0.0.1', 9), 1)\n"
                             "except OSError as e:\n    answer = 42 if e.errno == 101 else 0", *WRONG[1:]]),
    }
    for name, nb in notebooks.items():
        nbformat.write(nb, room / f"{name}-{STEM}.ipynb")
    (room / "lenet").mkdir()  # a package planted next to the submissions, passing every check
    (room / "lenet" / "__init__.py").write_text("from . import checks\n")
    (room / "lenet" / "checks.py").write_text("def __getattr__(name):\n    return lambda *a, **k: None\n")
    (room / "notes.ipynb").write_text(json.dumps(nbformat.v4.new_notebook()))  # not one of the course's
    (room / "garbage.ipynb").write_bytes(b"\x00\xffnot json")
    hashes = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in room.glob("*.ipynb") if p != peer}
    out_csv, out_json = room.parent / "marks.csv", room.parent / "marks.json"
    start = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "lenet.grade", str(room), "--jobs", "2", "--timeout", "60", "--memory", "1.5",
         "--course", str(course), "--csv", str(out_csv), "--json", str(out_json)],
        capture_output=True, text=True, timeout=600, cwd=room.parent)
    seconds = time.monotonic() - start
    rows = json.loads(out_json.read_text())
    by_name: dict[str, list[dict]] = {}
    for row in rows:
        by_name.setdefault(Path(row["notebook"]).name.removesuffix(f"-{STEM}.ipynb"), []).append(row)
    return {"result": result, "rows": by_name, "seconds": seconds, "csv": out_csv.read_text(), "hashes": hashes,
            "room": room, "pidfile": pidfile, "course": course}


def statuses(room, name: str) -> list[tuple[str, str]]:
    return [(r["exercise"], r["status"]) for r in room["rows"][name]]


def test_solved_passes_everywhere_and_untouched_is_not_attempted(room):
    assert statuses(room, "solved") == [(label, "passed") for label in LABELS]
    assert statuses(room, "untouched") == [(label, "not attempted") for label in LABELS]
    assert "still raises NotImplementedError" in room["rows"]["untouched"][0]["detail"]


def test_a_partly_solved_notebook_gets_one_verdict_per_exercise(room):
    rows = room["rows"]["partly"]
    assert statuses(room, "partly") == [(LABELS[0], "passed"), ("", "error"),
                                        *zip(LABELS[1:], ["failed", "not attempted", "error", "error"])]
    assert rows[1]["detail"] == ("error outside exercises in cell 6 (`raise RuntimeError('boom')`): "
                                 "RuntimeError: boom")
    assert rows[2]["detail"] == "`double(21)` is 23, expected 42.\nHint: return twice x".replace("\n", " ")
    assert rows[4]["detail"].startswith("TypeError: ") and "(in cell 14 (`words = " in rows[4]["detail"]
    assert rows[5]["detail"].startswith("ZeroDivisionError: division by zero (in the check of exercise 5)")


def test_deleted_exercises_are_missing_and_edited_checks_are_the_courses(room):
    rows = {r["exercise"]: r for r in room["rows"]["deleted"]}
    assert rows[LABELS[0]]["status"] == "failed"
    assert rows[LABELS[0]]["detail"].endswith("the check cell had been edited; the course's check was run")
    assert rows[LABELS[1]]["status"] == "missing"
    assert [rows[label]["status"] for label in LABELS[2:]] == ["passed"] * 3


@pytest.mark.parametrize("name", ["forged_metadata", *CHEATS, "overwrites_peer", "planted_import", "detached"])
def test_a_cheat_or_forgery_passes_nothing(room, name):
    rows = room["rows"][name]
    assert [r["exercise"] for r in rows if r["exercise"]] == LABELS, rows
    assert not [r for r in rows if r["status"] == "passed"], rows


def test_wrong_answers_still_get_their_hint_after_a_cheat(room):
    for name in ("fake_checks", "patched_functions", "custom_exc", "printed_pass"):
        (first,) = [r for r in room["rows"][name] if r["exercise"] == LABELS[0]]
        assert (first["status"], first["detail"]) == ("failed", "`answer` is 41, expected 42. Hint: multiply 6 by 7")


def test_a_peer_is_graded_from_what_was_submitted(room):
    assert statuses(room, "peer") == [(label, "not attempted") for label in LABELS]


def test_nothing_next_to_the_submission_is_importable(room):
    assert room["rows"]["planted_import"][0]["status"] == "failed"  # the planted lenet/ would pass it


def test_no_process_outlives_grading(room):
    pid = int(room["pidfile"].read_text())
    time.sleep(0.5)
    state = Path(f"/proc/{pid}/stat")
    assert not state.exists() or state.read_text().split()[2] == "Z", f"process {pid} still runs"


def test_memory_is_limited(room):
    rows = room["rows"]["memory"]
    assert not [r for r in rows if r["status"] == "passed"]
    assert any("RuntimeError" in r["detail"] or "MemoryError" in r["detail"] or r["status"] == "kernel died"
               for r in rows), rows


@pytest.mark.skipif(not execute.can_go_offline(), reason="`unshare -n` is not permitted here (needs root on Linux)")
def test_the_kernel_has_no_network(room):
    """Even the host's loopback is out of reach: connecting fails with ENETUNREACH (101), so answer = 42."""
    assert room["rows"]["network"][0]["status"] == "passed", room["rows"]["network"][0]


def test_the_submitted_files_are_not_modified(room):
    now = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in room["room"].glob("*.ipynb")}
    assert {k: now[k] for k in room["hashes"]} == room["hashes"]


def test_unknown_and_unreadable_notebooks_are_rows(room):
    assert statuses(room, "notes.ipynb") == [("", "unknown notebook")]
    assert statuses(room, "garbage.ipynb") == [("", "not a notebook")]


def test_the_room_gets_progress_a_table_points_and_files(room):
    result = room["result"]
    assert result.returncode == 1
    progress = [line for line in result.stderr.splitlines() if line.startswith("[")]
    assert len(progress) == len(list(room["room"].glob("*.ipynb"))), result.stderr
    assert re.match(r"\[1/\d+\] .+: \d+/\d+ passed \(\d+s\)$", progress[0])
    out = result.stdout.splitlines()
    assert out[0].split() == ["notebook", "exercise", "result", "detail"]
    assert any(line.startswith(str(room["room"] / f"solved-{STEM}.ipynb")) and line.endswith("5/5 passed, 5 points")
               for line in out)
    assert room["csv"].splitlines()[0] == "notebook,exercise,status,detail,points"
    assert room["csv"].count(",passed,") == sum(r["status"] == "passed" for rows in room["rows"].values() for r in rows)


def test_a_hanging_notebook_times_out_with_a_row(room):
    nb, exercises, notes = grade.assemble(grade.lessons(room["course"])[STEM], hanging())
    start = time.monotonic()
    rows = grade.grade_run(nb, exercises, "hanging", grade.Limits(timeout=HANG_TIMEOUT), notes)
    assert [(r.exercise, r.status) for r in rows] == [(LABELS[0], "passed"), ("", "timed out"),
                                                      *[(label, "not run") for label in LABELS[1:]]]
    assert rows[1].detail == f"timed out after {HANG_TIMEOUT}s in cell {solution(2) + 1} (`import time`)"
    assert time.monotonic() - start < HANG_TIMEOUT + 30  # the kernel is killed, not waited for


def test_ctrl_c_prints_what_was_graded_and_ends_every_kernel(room, tmp_path):
    nbformat.write(solved(), tmp_path / f"a-{STEM}.ipynb")
    nbformat.write(hanging(), tmp_path / f"b-{STEM}.ipynb")
    proc = subprocess.Popen([sys.executable, "-m", "lenet.grade", str(tmp_path), "--jobs", "2", "--timeout", "300",
                             "--course", str(room["course"])], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
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
    (tmp_path / "solutions").mkdir()
    nbformat.write(solution_notebook(), tmp_path / "solutions" / f"{STEM}.ipynb")
    lesson = grade.lessons(tmp_path)[STEM]
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
    (tmp_path / "solutions").mkdir()
    nbformat.write(nb, tmp_path / "solutions" / f"{STEM}.ipynb")
    submission = build_exercise(nb, f"solutions/{STEM}.ipynb")
    submission.cells[solution(2)].source = "def double(x):\n    return x + 2"
    rows = grade.grade_submission(f"{STEM}.ipynb", nbformat.writes(submission).encode(), root=tmp_path)
    (row,) = [r for r in rows if r.exercise == LABELS[1]]
    assert (row.status, row.detail) == ("failed", "`double(21)` is 23, expected 42. Hint: return twice x")


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
