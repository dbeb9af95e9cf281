"""The grader beyond the room: time limits, Ctrl-C, a worker killed or stopped, arguments, reading files, how a
submission is assembled, the sandbox's inside, and a real lesson.

The tests marked ``grader`` (time limits, signals, workers killed, an ordinary user's sandbox) wait for timeouts and
signals by design: they run with the room in `make test-grader`, which CI runs after `make test`."""
from __future__ import annotations

import csv
import dataclasses
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from course import execute, grade, sandbox
from course.exercises import build_exercise
from course.notebook import read
from synthetic_course import (CHECKS, CHEATS, FORKS, HANG_TIMEOUT, KILL_WORKER, LABELS, STEM, STOP_WORKER,
                              TWO_CHILDREN, WRONG, answered, check, fill_disk, hanging, sandbox_or_none, solution,
                              solution_notebook, solved, without_ids, write_course, wrong_with)

SANDBOXED = sandbox_or_none() is not None
#: Where bwrap cannot run, the room tests grade without it (what they check does not depend on it).
MODE_ARGS = [] if SANDBOXED else ["--no-sandbox"]


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    return write_course(tmp_path_factory.mktemp("course"))


@pytest.mark.grader
def test_a_hanging_notebook_times_out_with_a_row(course):
    nb, exercises, notes = grade.assemble(grade.lessons(course)[STEM], hanging())
    start = time.monotonic()
    rows = grade.grade_run(nb, exercises, "hanging", grade.Limits(timeout=HANG_TIMEOUT), notes, checks=CHECKS,
                           root=course)
    assert [(r.exercise, r.status) for r in rows] == [(LABELS[0], "passed"), ("", "timed out"),
                                                      *[(label, "not run") for label in LABELS[1:]]]
    assert rows[1].detail == f"timed out after {HANG_TIMEOUT}s in cell {solution(2) + 1} (`import time`)"
    assert time.monotonic() - start < HANG_TIMEOUT + 30  # the kernel is killed, not waited for


def _alive_under(folder: Path) -> list[str]:
    """Processes still running whose command line names ``folder`` (every sandbox and kernel of a room whose
    TMPDIR is there does: bwrap binds the room's folders, a kernel's connection file lies in one)."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            alive = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
            if alive and str(folder).encode() in (proc / "cmdline").read_bytes():
                found.append(proc.name)
        except OSError:
            continue
    return found


@pytest.mark.grader
@pytest.mark.parametrize("how, status", [("ctrl-c", 130), ("kill", 143)])
def test_ctrl_c_prints_what_was_graded_and_ends_every_kernel(course, tmp_path, how, status):
    """Ctrl-C (SIGINT to the terminal's process group) or `kill` (SIGTERM to the grader): the table and files of
    what was graded, and every kernel ended. Only this room's processes are looked for (its TMPDIR, short enough
    to hold the kernels' sockets), so another grader running meanwhile is no matter."""
    room, tmp = tmp_path / "room", Path(tempfile.mkdtemp(prefix="ctrl-c-", dir="/tmp"))
    room.mkdir()
    nbformat.write(solved(), room / f"a-{STEM}.ipynb")
    nbformat.write(hanging(), room / f"b-{STEM}.ipynb")
    proc = subprocess.Popen([sys.executable, "-m", "lenet.grade", str(room), "--jobs", "2", "--timeout", "300",
                             "--course", str(course), "--json", str(tmp_path / "marks.json"), *MODE_ARGS],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env={**os.environ, "TMPDIR": str(tmp)})
    first = proc.stderr.readline()  # the progress line of the solved notebook
    assert _alive_under(tmp), "the hanging notebook's kernel should be running now"
    if how == "ctrl-c":
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole foreground group
    else:
        proc.terminate()
    out, err = proc.communicate(timeout=60)
    assert first.startswith(f"[1/2] {room / f'a-{STEM}.ipynb'}: 5/5 passed in "), first + err
    assert proc.returncode == status and "interrupted: 1 of 2 notebooks graded" in err and "Traceback" not in err, err
    assert out.splitlines()[-1] == "5 exercises in 1 notebook: 5 passed"
    assert [r["status"] for r in json.loads((tmp_path / "marks.json").read_text())] == ["passed"] * 5
    time.sleep(1)
    assert not _alive_under(tmp)
    assert not list(tmp.iterdir()), "the room's folders are removed"
    tmp.rmdir()


#: The grader's command, with one Ctrl-C that Python swallows: raised, as SIGINT is, while the main process is in
#: code that ignores exceptions (a finalizer prints "Exception ignored" and goes on), once the first notebook is in.
SWALLOWED_CTRL_C = """
import multiprocessing.connection, signal, sys
from course import grade
wait, done = multiprocessing.connection.wait, []


def swallowing_wait(conns, timeout=None):
    if len(conns) == 1 and not done:  # one notebook graded, the hanging one still running
        done.append(True)
        try:
            signal.raise_signal(signal.SIGINT)
        except KeyboardInterrupt:
            pass  # as in a finalizer
    return wait(conns, timeout)


multiprocessing.connection.wait = swallowing_wait
sys.exit(grade.main(sys.argv[1:]))
"""


@pytest.mark.grader
def test_a_ctrl_c_that_python_swallowed_still_ends_the_run(course, tmp_path):
    """Seen once in `make test`: Ctrl-C landed in a finalizer, Python printed "Exception ignored", and the grader
    went on until the hanging notebook's --timeout. The grader remembers the signal and its loop ends the run."""
    room = tmp_path / "room"
    room.mkdir()
    nbformat.write(solved(), room / f"a-{STEM}.ipynb")
    nbformat.write(hanging(), room / f"b-{STEM}.ipynb")
    start = time.monotonic()
    result = subprocess.run([sys.executable, "-c", SWALLOWED_CTRL_C, str(room), "--jobs", "2", "--timeout", "45",
                             "--course", str(course), "--json", str(tmp_path / "marks.json"), *MODE_ARGS],
                            capture_output=True, text=True, timeout=300, cwd=grade.ROOT)
    assert result.returncode == 130 and "interrupted: 1 of 2 notebooks graded" in result.stderr, result.stderr
    assert time.monotonic() - start < 35, "the run went on after Ctrl-C, until the hanging notebook's --timeout"
    assert result.stdout.splitlines()[-1] == "5 exercises in 1 notebook: 5 passed"


@pytest.mark.grader
def test_a_worker_killed_or_stopped_costs_one_row(course, tmp_path):
    """Without the sandbox a learner's kernel can signal its worker (with it, it cannot: tests/test_grade.py).
    A worker killed, or stopped, costs that notebook a row; the others are graded, the run ends with its
    table and files, and the exit status says the grader failed (2)."""
    room = tmp_path / "room"
    room.mkdir()
    for name, nb in (("a-kill", wrong_with(KILL_WORKER)), ("b-stop", wrong_with(STOP_WORKER)), ("c-solved", solved()),
                     ("d-solved", solved())):
        nbformat.write(nb, room / f"{name}-{STEM}.ipynb")
    start = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "lenet.grade", str(room), "--jobs", "2", "--timeout", "60",
                             "--no-sandbox", "--course", str(course), "--json", str(tmp_path / "marks.json")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr
    assert time.monotonic() - start < 150, "a stopped worker is noticed, not waited for"
    assert result.stdout.startswith("NO SANDBOX (--no-sandbox): learners' code ran as you")
    records = json.loads((tmp_path / "marks.json").read_text())
    by: dict[str, list[dict]] = {}
    for r in records:
        by.setdefault(r["learner"], []).append(r)
    assert [(r["status"], r["max_points"]) for r in by["a-kill"]] == [("grader error", 1)] * 5
    assert by["a-kill"][0]["problem"] == ("grader error: its worker ended before sending a result "
                                          "(killed by SIGKILL)")
    assert by["b-stop"][0]["problem"] == "grader error: its worker was stopped (SIGSTOP?) and is killed"
    assert [r["status"] for r in by["c-solved"] + by["d-solved"]] == ["passed"] * 10


@pytest.mark.grader
def test_a_run_past_its_deadline_ends_with_what_was_graded(course, tmp_path):
    """A hanging notebook and one after it, with --deadline 6: the run ends at the deadline (not after the
    hanging notebook's --timeout of 300 s) with the table and the files, and exit status 2."""
    room = tmp_path / "room"
    room.mkdir()
    nbformat.write(hanging(), room / f"a-{STEM}.ipynb")
    nbformat.write(solved(), room / f"b-{STEM}.ipynb")
    start = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "lenet.grade", str(room), "--jobs", "1", "--timeout", "300",
                             "--deadline", "6", "--course", str(course), "--json", str(tmp_path / "marks.json"),
                             *MODE_ARGS], capture_output=True, text=True, timeout=250)
    assert result.returncode == 2 and time.monotonic() - start < 200, result.stderr
    records = json.loads((tmp_path / "marks.json").read_text())
    assert [(r["learner"], r["status"]) for r in records] == [("a", "not graded")] * 5 + [("b", "not graded")] * 5
    assert records[0]["problem"] in ("not graded: the run's --deadline passed while it was graded",
                                     "not graded: the run's --deadline passed before it was graded")
    assert records[5]["problem"] == "not graded: the run's --deadline passed before it was graded"
    assert "2 notebook problems" in result.stdout


@pytest.mark.grader
def test_a_notebook_that_prints_without_end_costs_the_grader_no_memory():
    """The grader keeps only error outputs and takes the errors from the kernel's replies; it drops messages
    over 16 MiB and holds few unread: 200 MB printed in 1 MB lines, then one line of 100 MB, leave this
    process's peak memory (it runs the client) where it was, give or take (a client that kept them would grow by
    200 MB or more), and the error after them is found. The line of 100 MB takes the output channel with it: the
    cells after it are not made to wait for their output (nbclient's 4 s each, until the notebook timed out)."""
    nb = new_notebook(cells=[new_code_cell("for _ in range(200):\n    print('x' * 10**6)"),
                             new_code_cell("print('y' * (100 * 2**20))"),
                             *[new_code_cell(f"x{i} = {i}") for i in range(8)], new_code_cell("1 / 0")])
    place = sandbox.prepare(sandbox.NO_SANDBOX, grade.Limits(timeout=120))
    box = sandbox.Sandbox(sandbox.NO_SANDBOX, place, grade.Limits(timeout=120), grade.ROOT)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.monotonic()
    try:
        env = box.environment()
        run = execute.run(nb, Path(place.home), timeout=120, env=box.launch_env(env), km=box.kernel_manager(env),
                          kernel_kwargs=box.popen_kwargs(), errors_only=True)
    finally:
        sandbox.release(place)
    seconds = time.monotonic() - start
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert run.stop_status is None and run.errors == {10: ("ZeroDivisionError", "division by zero")}, run
    assert seconds < 24, f"{seconds:.0f} s: the 9 cells after the lost output channel waited for it (4 s each)"
    assert [len(cell.outputs) for cell in nb.cells][:2] == [0, 0]  # the error comes from the kernel's reply
    assert grown_mib < 150, f"the grader's peak memory grew by {grown_mib:.0f} MiB"


@pytest.mark.parametrize("args, message", [
    (["x.ipynb", "--timeout", "0"], "--timeout: must be greater than 0"),
    (["x.ipynb", "--timeout", "-5"], "--timeout: must be greater than 0"),
    (["x.ipynb", "--jobs", "0"], "--jobs: must be greater than 0"),
    (["x.ipynb", "--memory", "lots"], "--memory: 'lots' is not a number"),
    (["x.ipynb", "--disk", "0"], "--disk: must be greater than 0"),
    (["x.ipynb", "--deadline", "-1"], "--deadline: must be greater than 0"),
    (["x.ipynb", "--csv", "/no/such/folder/marks.csv"], "--csv: cannot write /no/such/folder/marks.csv"),
])
def test_bad_arguments_are_refused_clearly(args, message, capsys):
    with pytest.raises(SystemExit) as info:
        grade.main(args)
    assert info.value.code == 2 and message in capsys.readouterr().err


def test_without_bubblewrap_the_grader_refuses_with_the_install_line(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(sandbox.shutil, "which", lambda name: None)
    monkeypatch.setattr(sandbox.os, "access", lambda path, mode: False)
    monkeypatch.setattr(sandbox.sys, "platform", "linux")
    nbformat.write(solved(), tmp_path / f"a-{STEM}.ipynb")
    assert grade.main([str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "refusing to grade: bubblewrap (bwrap) is not installed" in err and "apt-get install bubblewrap" in err
    assert "--no-sandbox" in err


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


def test_without_cell_ids_answers_are_found_by_position_and_source(tmp_path):
    """nbformat 4.4 has no cell ids: the course's untouched cells anchor the match, answers fill the gaps,
    a cell the learner added stays theirs, an edited setup cell is the course's again."""
    lesson = grade.lessons(write_course(tmp_path))[STEM]
    nb = answered(["answer = 6 * 7", "def double(x):\n    return 2 * x", *WRONG[2:]])
    nb.cells.insert(solution(2) + 1, new_code_cell("print(double(2))"))  # after the answer: the learner's own
    nb.cells[1].source += "\nimport os"  # the setup cell, edited
    bare = nbformat.reads(json.dumps(without_ids(nb)), as_version=4)
    assert not any("id" in cell for cell in bare.cells)
    to_run, exercises, _ = grade.assemble(lesson, bare)
    assert [bool(ex.solutions) for ex in exercises] == [True] * 5
    sources = [to_run.cells[ex.solutions[0]].source for ex in exercises]
    assert sources[:2] == ["answer = 6 * 7", "def double(x):\n    return 2 * x"] and sources[2:] == WRONG[2:]
    assert to_run.cells[1].source == lesson.notebook.cells[1].source
    assert "print(double(2))" in [c.source for c in to_run.cells]


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


def test_symlinks_fifos_devices_and_huge_files_are_refused_without_being_opened(tmp_path):
    target = tmp_path / "real.ipynb"
    target.write_text("{}")
    os.symlink(target, tmp_path / "link.ipynb")
    os.mkfifo(tmp_path / "fifo.ipynb")
    os.symlink("/dev/zero", tmp_path / "zero.ipynb")
    start = time.monotonic()
    assert grade.read_submission(target) == b"{}"
    for name, kind in (("link", "a symbolic link"), ("fifo", "a FIFO (named pipe)"), ("zero", "a symbolic link")):
        row = grade.read_submission(tmp_path / f"{name}.ipynb")
        assert (row.status, row.detail.split(",")[0]) == ("not a notebook", f"refused: {kind}")
    assert grade.read_submission(Path("/dev/null")).detail.startswith("refused: a character device")
    (tmp_path / "big.ipynb").write_bytes(b" " * 2000)
    assert "more than the" in grade.read_submission(tmp_path / "big.ipynb", max_bytes=1000).detail
    assert time.monotonic() - start < 5  # nothing blocked on the FIFO
    found, rows = grade.notebooks_in([tmp_path])
    assert [p.name for p in found] == ["big.ipynb", "fifo.ipynb", "link.ipynb", "real.ipynb", "zero.ipynb"]


@pytest.mark.parametrize("data", [b"root:x:0:0:root:/root:/bin/bash\n", b"\xff\xfe SECRET", b'{"SECRET": 1}',
                                  b'{"cells": "SECRET", "nbformat": 4}', b"[" * 100000 + b"SECRET"])
def test_a_file_that_is_not_a_notebook_is_never_quoted(data):
    why = grade.parse_notebook(data)
    assert isinstance(why, str) and why.startswith("not a Jupyter notebook")
    assert "root" not in why and "SECRET" not in why


def test_a_tampered_or_silent_check_says_so():
    nb = solution_notebook()
    exercise = grade.tagged_exercises(build_exercise(nb, f"solutions/{STEM}.ipynb"))[0]
    for error, said in ((("Tampered", "2 results for 3 cases"), "the check was tampered with: 2 results for 3 cases"),
                        (("Error", ""), "the check of exercise 1 gave no verdict: something in the notebook "
                                        "tampered with it")):
        run = execute.Run(errors={exercise.check: error}, ran={exercise.check})
        row = grade._exercise_row(nb, "x", exercise, run, "")
        assert row.status == "error" and row.detail.startswith(said), row.detail


def test_records_name_the_learner_and_total_the_points():
    rows = [grade.Row("room/alice-01_load_lenet (1).ipynb", "Exercise 1: A", "passed", lesson="01_load_lenet"),
            grade.Row("room/alice-01_load_lenet (1).ipynb", "Exercise 2: B", "failed", "hint", lesson="01_load_lenet"),
            grade.Row("room/alice-01_load_lenet (1).ipynb", "", "timed out", "timed out after 9s",
                      lesson="01_load_lenet"),
            grade.Row("room/bob/01_load_lenet.ipynb", "", "grader error", "its worker ...", lesson="01_load_lenet")]
    found = grade.records(rows, ["room"], {"01_load_lenet": ["Exercise 1: A", "Exercise 2: B"]})
    assert [(r["learner"], r["exercise"], r["status"], r["points"], r["max_points"]) for r in found] == [
        ("alice", "Exercise 1: A", "passed", 1, 1), ("alice", "Exercise 2: B", "failed", 0, 1),
        ("bob", "Exercise 1: A", "grader error", 0, 1), ("bob", "Exercise 2: B", "grader error", 0, 1)]
    assert found[0]["problem"] == "timed out: timed out after 9s" and found[1]["detail"] == "hint"


def test_what_learners_chose_cannot_rewrite_the_table_or_run_in_a_spreadsheet(tmp_path):
    """A file name and an error message come from the learner: escape sequences and newlines are shown as "?"
    in the table, and a field that starts like a formula is quoted in the CSV."""
    rows = [grade.Row("=SUM(1+1)-01_load_lenet.ipynb", "Exercise 1: A", "error",
                      "ValueError: \x1b[2K\rExercise 1: A  passed\u202e", lesson="01_load_lenet")]
    table = grade.format_table(rows)
    assert "\x1b" not in table and "\r" not in table and "\u202e" not in table and "?[2K?Exercise" in table
    grade._write_files(rows, tmp_path / "marks.csv", None)
    with open(tmp_path / "marks.csv", newline="", encoding="utf-8") as f:
        (record,) = csv.DictReader(f)
    assert record["learner"] == "'=SUM(1+1)" and record["notebook"].startswith("'=SUM(")


#: A file the learner's code writes in the sandbox's /tmp (a name no checkout of the course lies at: /tmp/x may).
TMP_FILE = "/tmp/learner-wrote-this.txt"
SANDBOX_FACTS = f"""\
import json, os, socket
facts = {{"uid": os.getuid(), "pids": sorted(int(p) for p in os.listdir('/proc') if p.isdigit()),
         "cwd": os.getcwd(), "home": os.environ.get("HOME"), "env": sorted(os.environ),
         "root": sorted(os.listdir('/')), "course": sorted(os.listdir(os.path.dirname(os.path.dirname(
             __import__('lenet').__file__))))}}
for path in ({TMP_FILE!r}, 'here.txt', os.path.dirname(__import__('lenet').__file__) + '/x.py', '/etc/x', '/usr/x'):
    try:
        open(path, 'w').close()
        facts[path] = 'written'
    except OSError as e:
        facts[path] = e.strerror
try:
    socket.create_connection(('1.1.1.1', 53), 2)
except OSError as e:
    facts['network'] = e.strerror
print(json.dumps(facts))
"""


@pytest.mark.skipif(not SANDBOXED, reason="bubblewrap cannot run here")
def test_inside_the_sandbox():
    """What a learner's code sees: a non-root uid, a handful of processes, its own folder (writable, like
    /tmp), the course's lenet/ only and read-only, no network, none of the teacher's variables. (Its folder is
    a plain one here: making it a tmpfs needs a process with one thread, which pytest's is not; the room's
    tests grade with it.)"""
    mode, limits = dataclasses.replace(sandbox.probe(), tmpfs=False), grade.Limits(timeout=60)  # see below
    place = sandbox.prepare(mode, limits)
    box = sandbox.Sandbox(mode, place, limits, grade.ROOT)
    try:
        nb = new_notebook(cells=[new_code_cell(SANDBOX_FACTS)])
        env = box.environment()
        run = execute.run(nb, Path(place.home), timeout=60, env=box.launch_env(env), km=box.kernel_manager(env),
                          kernel_kwargs=box.popen_kwargs())
        assert run.stop_status is None and not run.errors, (run, nb.cells[0].outputs)
        facts = json.loads(nb.cells[0].outputs[0].text)
    finally:
        sandbox.release(place)
    assert facts["uid"] == sandbox.NOBODY and len(facts["pids"]) <= 4, facts
    assert facts["cwd"] == facts["home"] == place.home
    assert "lenet" in facts["course"] and not {"solutions", "course", "tests"} & set(facts["course"])
    assert "HOME" in facts["env"] and not {"USER", "SSH_AUTH_SOCK", "PYTEST_CURRENT_TEST"} & set(facts["env"])
    assert facts[TMP_FILE] == facts["here.txt"] == "written"
    assert {facts[p] for p in facts if p.startswith("/") and p != TMP_FILE} <= {"Read-only file system",
                                                                              "Permission denied"}
    assert facts["network"] == "Network is unreachable"
    assert not os.path.exists(place.folder), "released"


AS_NOBODY = """\
import ctypes, os, subprocess, sys, tempfile
# In a mount namespace of its own (as root): make every folder on the way to Python, the venv and the course
# that others may not enter (e.g. /root, where pyenv puts Python) a tmpfs holding only those paths, as on a
# laptop where the teacher owns all of them; then become uid 65534 and run the grader.
needed, libc = [os.path.realpath(p) for p in sys.argv[1].split(os.pathsep)], ctypes.CDLL(None, use_errno=True)
run = lambda *args: subprocess.run(args, check=True)
for folder in sorted({a for p in needed for a in map(str, __import__('pathlib').Path(p).parents)
                      if a != '/' and not os.stat(a).st_mode & 0o001}, key=len):
    held = [(p, tempfile.mkdtemp(dir='/tmp')) for p in needed if p.startswith(folder + '/')]
    for p, hold in held:
        run('mount', '--bind', p, hold)
    run('mount', '-t', 'tmpfs', '-o', 'mode=0755', 'tmpfs', folder)
    for p, hold in held:
        os.makedirs(p, exist_ok=True)
        run('mount', '--move', hold, p)
os.setgroups([]); os.setresgid(65534, 65534, 65534); os.setresuid(65534, 65534, 65534)
os.execv(sys.executable, [sys.executable, *sys.argv[2:]])
"""


@pytest.mark.grader
@pytest.mark.skipif(not (SANDBOXED and os.geteuid() == 0 and shutil.which("unshare")),
                    reason="needs bubblewrap, root (to become an ordinary user) and unshare")
def test_as_an_ordinary_user_the_header_says_which_limits_hold(course, tmp_path):
    """A teacher's laptop: the grader runs as an ordinary user (uid 65534 here), bwrap in an unprivileged user
    namespace, no cgroups. The solved notebook passes; the process limit holds (RLIMIT_NPROC in the user
    namespace), and so does the disk limit (a tmpfs in the worker's own user and mount namespaces); memory is
    limited per process only, so two children of 1 GiB under --memory 1.5 get through, as the header says."""
    room, home = tmp_path / "room", tmp_path / "home"
    room.mkdir(), home.mkdir()
    nbformat.write(solved(), room / f"solved-{STEM}.ipynb")
    nbformat.write(answered([FORKS, *WRONG[1:]]), room / f"forks-{STEM}.ipynb")
    nbformat.write(answered([TWO_CHILDREN, *WRONG[1:]]), room / f"memory-{STEM}.ipynb")
    nbformat.write(answered([fill_disk(40, 4), *WRONG[1:]]), room / f"disk-{STEM}.ipynb")
    for path in (tmp_path, room, home, *room.iterdir(), course, *course.rglob("*")):
        os.chown(path, 65534, 65534)
    os.chmod(tmp_path, 0o755)
    needed = [sys.prefix, sys.base_prefix, str(grade.ROOT), str(course), str(tmp_path)]
    result = subprocess.run(
        ["unshare", "-m", "--propagation", "private", sys.executable, "-c", AS_NOBODY, os.pathsep.join(needed),
         "-m", "lenet.grade", str(room), "--jobs", "2", "--timeout", "60", "--memory", "1.5", "--processes", "50",
         "--disk", "64",
         "--course", str(course), "--json", str(tmp_path / "marks.json")],
        capture_output=True, text=True, timeout=600, cwd=grade.ROOT,
        env={**os.environ, "HOME": str(home), "TMPDIR": str(tmp_path), "PYTHONPATH": str(grade.ROOT)})
    header = result.stdout.split("\n\n")[0]
    assert header.startswith("Sandbox: bubblewrap") and "in an unprivileged user namespace" in header, result.stderr
    assert "processes 50 per learner" in header and "memory 1.5 GiB per process only" in header, header
    assert "disk 64 MiB for its folder" in header, header
    records = json.loads((tmp_path / "marks.json").read_text())
    first = {r["learner"]: r for r in records if r["exercise"] == LABELS[0]}
    assert [r["status"] for r in records if r["learner"] == "solved"] == ["passed"] * 5, result.stdout
    assert first["forks"]["status"] == "failed", first["forks"]  # the process limit held
    assert first["disk"]["status"] == "failed", first["disk"]  # so did the disk limit
    assert first["memory"]["status"] == "passed", first["memory"]  # per process only: both children got 1 GiB


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
