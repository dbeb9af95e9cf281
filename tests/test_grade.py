"""python -m lenet.grade on a room of submissions of a small synthetic course: honest work, broken
notebooks, cheats and attacks on the grader itself (issue 18). One module fixture grades them all once
with the real command (2 jobs, real kernels, the sandbox); each test then reads the rows of one submission.
tests/test_grade_run.py has the rest.

The grader runs from a copy of the course's code (lenet/ and course/) in a temporary folder, so that an
attack that got through could only change that copy. Attacks that scan /proc act only on processes that
carry MARKER (this room's temporary folder), so that a grader without its sandbox harms nothing else.

Every test here is marked ``grader``: the room runs in `make test-grader` (CI runs it after `make test`).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell

from course.exercises import ROOT
from synthetic_course import (ANSWER_FORGERIES, CHEATS, FORGERIES, FORKS, KILL_WORKER, LABELS, STEM, STOP_WORKER,
                              TWO_CHILDREN, WRONG, answered, deleted, fill_disk, forged_metadata, kill_peers, partly,
                              plant_sitecustomize, raid_room, sandbox_or_none, solved, survive, untouched, without_ids,
                              write_course, write_teacher_home, wrong_with)

#: The verdict of exercise 1 when its answer is the wrong one, 41.
HINT_1 = "Exercise 1: `answer` is 41, expected 42. Hint: multiply 6 by 7"
#: What the room is graded with: small limits, so that the attacks on them stay small.
MEMORY_GIB, DISK_MIB, PROCESSES = 1.5, 64, 50
MODE = sandbox_or_none()
pytestmark = pytest.mark.grader
SANDBOXED = MODE is not None


def install_copy(folder: Path) -> Path:
    """The course's code (lenet/, course/) copied into ``folder``: what the graded kernels import."""
    for package in ("lenet", "course"):
        shutil.copytree(ROOT / package, folder / package, ignore=shutil.ignore_patterns("__pycache__"))
    return folder


@pytest.fixture(scope="module")
def room(tmp_path_factory) -> dict[str, object]:
    """Grade a room of submissions once with `python -m lenet.grade --jobs 2`; the rows by submission."""
    base = tmp_path_factory.mktemp("graded")
    marker = str(base)  # in the path of every folder the grader makes for this room (TMPDIR below)
    course = write_course(base / "course")
    code = install_copy(base / "code")
    room = base / "room"
    room.mkdir()
    home = base / "teacher-home"
    home.mkdir()
    (base / "tmp").mkdir()
    listener = socket.create_server(("127.0.0.1", 0))  # a port on this machine's loopback, open during grading
    port = listener.getsockname()[1]
    raid = untouched()
    raid.cells.insert(2, new_code_cell(raid_room(str(room))))
    slow_peer = solved()
    slow_peer.cells.insert(2, new_code_cell("import time\ntime.sleep(6)"))
    notebooks = {
        "solved": solved(), "untouched": untouched(), "partly": partly(), "deleted": deleted(),
        "forged_metadata": forged_metadata(), "peer": untouched(),
        **{name: wrong_with(cheat) for name, cheat in {**CHEATS, **FORGERIES}.items()},
        **{name: answered(answers) for name, answers in ANSWER_FORGERIES.items()},
        "planted_import": wrong_with("import sys; print([p for p in sys.path if 'room' in p])"),
        "memory": wrong_with("import torch\nx = torch.empty(int(1.8e9), dtype=torch.uint8).fill_(1)"),
        "network": answered(["import errno, socket\ntry:\n"
                             f"    socket.create_connection(('127.0.0.1', {port}), 2).close()\n    answer = 0\n"
                             "except OSError as e:\n"
                             "    answer = 42 if e.errno in (errno.ECONNREFUSED, errno.ENETUNREACH) else 0",
                             *WRONG[1:]]),
        "raid": raid,
        "forks": answered([FORKS, *WRONG[1:]]),
        "two_children": answered([TWO_CHILDREN, *WRONG[1:]]),
        "disk": answered([fill_disk(DISK_MIB * 5 // 8, 4), *WRONG[1:]]),
    }
    if SANDBOXED:  # without the sandbox these would really do harm (tests/test_grade_run.py tries the worker's)
        notebooks.update({
            "sitecustomize": wrong_with(plant_sitecustomize()),
            "zz_after_sitecustomize": answered(WRONG),  # graded last: a planted sitecustomize.py would pass it
            "teacher_home": wrong_with(write_teacher_home("teacher-home")),
            "survive": wrong_with(survive(f"survivor-{marker}")),
            "kill_peers": wrong_with(kill_peers(marker)),
            "kill_target": slow_peer,  # graded beside kill_peers
            "kill_worker": wrong_with(KILL_WORKER),
            "stop_worker": wrong_with(STOP_WORKER),
        })
    for name, nb in notebooks.items():
        nbformat.write(nb, room / f"{name}-{STEM}.ipynb")
    (room / f"no_ids-{STEM}.ipynb").write_text(json.dumps(without_ids(solved())))
    (room / "lenet").mkdir()  # a package planted next to the submissions, passing every check
    (room / "lenet" / "__init__.py").write_text("from . import checks\n")
    (room / "lenet" / "checks.py").write_text("def __getattr__(name):\n    return lambda *a, **k: None\n")
    (room / "notes.ipynb").write_text(json.dumps(nbformat.v4.new_notebook()))  # not one of the course's
    (room / "garbage.ipynb").write_bytes(b"\x00\xffnot json")
    (room / f"secret-{STEM}.ipynb").write_text("SECRET-4711 is not JSON")
    os.mkfifo(room / f"fifo-{STEM}.ipynb")
    os.symlink("/dev/zero", room / f"zero-{STEM}.ipynb")
    os.symlink("/etc/passwd", room / f"passwd-{STEM}.ipynb")
    hashes = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in room.glob("*.ipynb")
              if p.is_file() and not p.is_symlink()}
    out_csv, out_json = base / "marks.csv", base / "marks.json"
    env = {**os.environ, "PYTHONPATH": str(code), "HOME": str(home), "TMPDIR": str(base / "tmp")}
    start = time.monotonic()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "lenet.grade", str(room), "--jobs", "2", "--timeout", "60",
             "--memory", str(MEMORY_GIB), "--disk", str(DISK_MIB), "--processes", str(PROCESSES),
             "--course", str(course), "--csv", str(out_csv), "--json", str(out_json),
             *([] if SANDBOXED else ["--no-sandbox"])],
            capture_output=True, text=True, timeout=900, cwd=code, env=env)
    finally:
        listener.close()
    seconds = time.monotonic() - start
    rows = json.loads(out_json.read_text())
    by_name: dict[str, list[dict]] = {}
    for row in rows:
        by_name.setdefault(Path(row["notebook"]).name.removesuffix(f"-{STEM}.ipynb"), []).append(row)
    return {"result": result, "rows": by_name, "seconds": seconds, "csv": out_csv.read_text(), "hashes": hashes,
            "room": room, "course": course, "code": code, "home": home, "marker": marker, "base": base,
            "json": out_json.read_text()}


def statuses(room, name: str) -> list[tuple[str, str]]:
    return [(r["exercise"], r["status"]) for r in room["rows"][name]]


def passed(room, name: str) -> int:
    return sum(r["status"] == "passed" for r in room["rows"][name])


def test_solved_passes_everywhere_and_untouched_is_not_attempted(room):
    assert statuses(room, "solved") == [(label, "passed") for label in LABELS]
    assert statuses(room, "untouched") == [(label, "not attempted") for label in LABELS]
    assert "still raises NotImplementedError" in room["rows"]["untouched"][0]["detail"]


def test_a_partly_solved_notebook_gets_one_verdict_per_exercise(room):
    rows = room["rows"]["partly"]
    assert statuses(room, "partly") == list(zip(LABELS, ["passed", "failed", "not attempted", "error", "error"]))
    assert rows[0]["problem"] == ("error: error outside exercises in cell 6 (`raise RuntimeError('boom')`): "
                                  "RuntimeError: boom")
    assert rows[1]["detail"] == "Exercise 2: `double(21)` is 23, expected 42.\nHint: return twice x".replace("\n", " ")
    assert rows[3]["detail"].startswith("TypeError: ") and "(in cell 14 (`words = " in rows[3]["detail"]
    assert rows[4]["detail"].startswith("ZeroDivisionError: division by zero (in the check of exercise 5)")


def test_deleted_exercises_are_missing_and_edited_checks_are_the_courses(room):
    rows = {r["exercise"]: r for r in room["rows"]["deleted"]}
    assert rows[LABELS[0]]["status"] == "failed"
    assert rows[LABELS[0]]["detail"].endswith("the check cell had been edited; the course's check was run")
    assert rows[LABELS[1]]["status"] == "missing"
    assert [rows[label]["status"] for label in LABELS[2:]] == ["passed"] * 3


#: Cheats on the checks (and verdict forgeries: the grader judges outside the kernel, tests/synthetic_course.py).
CHEATING = ["forged_metadata", *CHEATS, *FORGERIES, *ANSWER_FORGERIES, "planted_import"]
#: The attacks of issue 18 on the grader, its machine and the other learners, which only the sandbox makes
#: harmless. Killing or stopping the worker: in the sandbox the kernel's parent is the sandbox's own init,
#: which ignores them (tests/test_grade_run.py tries them with --no-sandbox, where they reach the worker).
ATTACKS = ["sitecustomize", "zz_after_sitecustomize", "teacher_home", "survive", "kill_peers", "kill_worker",
           "stop_worker"]
needs_sandbox = pytest.mark.skipif(not SANDBOXED,
                                   reason="bubblewrap cannot run here: the room is graded with --no-sandbox")


@pytest.mark.parametrize("name", CHEATING + [pytest.param(name, marks=needs_sandbox) for name in ATTACKS])
def test_a_cheat_or_an_attack_passes_nothing(room, name):
    rows = room["rows"][name]
    assert [r["exercise"] for r in rows] == LABELS, rows
    assert not [r for r in rows if r["status"] == "passed"], rows


@needs_sandbox
@pytest.mark.parametrize("name", ATTACKS)
def test_after_an_attack_the_learner_still_gets_the_verdicts_of_their_answers(room, name):
    """Signalling the sandbox's init fails (as root it is another user's: PermissionError) or does nothing."""
    rows = room["rows"][name]
    assert (rows[0]["status"], rows[0]["detail"]) == ("failed", HINT_1)
    assert [r["status"] for r in rows] == ["failed"] * 5, rows
    assert rows[0]["problem"] in ("", "error: error outside exercises in cell 3 (`import os, signal`): "
                                      "PermissionError: [Errno 1] Operation not permitted"), rows[0]


def test_a_cell_that_makes_exec_a_no_op_is_told_so_at_once_not_at_the_timeout(room):
    """Had the grader's collection raised in that kernel, IPython's traceback would have imported modules whose code
    exec no longer runs, and the kernel would never have answered: the notebook timed out after --timeout."""
    rows = room["rows"]["replaced_exec"]
    assert all(r["status"] == "error" and "nothing was collected for this check" in r["detail"] for r in rows), rows


def test_wrong_answers_still_get_their_hint_after_a_cheat(room):
    for name in ("fake_checks", "patched_functions", "custom_exc", "printed_pass"):
        (first,) = [r for r in room["rows"][name] if r["exercise"] == LABELS[0]]
        assert (first["status"], first["detail"]) == ("failed", HINT_1)


def test_a_peer_is_graded_from_what_was_submitted(room):
    assert statuses(room, "peer") == [(label, "not attempted") for label in LABELS]


def test_nothing_next_to_the_submission_is_importable(room):
    assert room["rows"]["planted_import"][0]["status"] == "failed"  # the planted lenet/ would pass it


@needs_sandbox
def test_the_course_cannot_be_written_into(room):
    """sitecustomize.py planted where the kernel imports lenet from would run in every later kernel."""
    assert not list(room["code"].rglob("sitecustomize.py"))
    assert passed(room, "zz_after_sitecustomize") == 0


@needs_sandbox
def test_the_teachers_home_is_out_of_reach(room):
    assert not (room["home"] / "pwned.txt").exists()


@needs_sandbox
def test_the_room_is_out_of_reach(room):
    """Found through /proc/<grader>/cmdline or guessed, the room is not there: no peer's answers are copied
    (the raid notebook is untouched, so a copied answer would pass), no file is changed."""
    assert statuses(room, "raid") == [(label, "not attempted") for label in LABELS]
    now = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in room["room"].glob("*.ipynb")
           if p.is_file() and not p.is_symlink()}
    assert {k: now[k] for k in room["hashes"]} == room["hashes"]


def test_no_process_outlives_grading(room):
    """Not even one started with an empty environment in a session of its own (it names the marker)."""
    time.sleep(0.5)
    alive = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if f"survivor-{room['marker']}".encode() in (proc / "cmdline").read_bytes() \
                    and (proc / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                alive.append(proc.name)
        except OSError:
            continue
    assert not alive, f"still running: {alive}"


@needs_sandbox
def test_a_learner_cannot_kill_a_peers_kernel(room):
    assert statuses(room, "kill_target") == [(label, "passed") for label in LABELS]


def test_memory_is_limited(room):
    rows = room["rows"]["memory"]
    assert not [r for r in rows if r["status"] == "passed"]
    assert any("RuntimeError" in r["detail"] or "MemoryError" in r["detail"] or "kernel died" in r["problem"]
               for r in rows), rows


def held(mode) -> dict[str, bool]:
    """Which limits hold for all of a learner's processes, as course.sandbox.describe says in the table's header."""
    return {"forks": bool(mode and (mode.cgroup or not mode.root)),  # cgroup pids, or RLIMIT_NPROC in a user ns
            "two_children": bool(mode and mode.cgroup),  # else memory is limited per process only
            "disk": bool(mode and mode.tmpfs)}  # else the learner's folder is limited per file only


@pytest.mark.parametrize("name", ["forks", "two_children", "disk"])
def test_the_limits_that_hold_are_those_the_header_names(room, name):
    """Exercise 1 passes only when a limit did not hold: 100 forks under --processes 50, two children of 1 GiB
    each under --memory 1.5, four files of 40 MiB under --disk 64. As root all three hold (cgroups, tmpfs); as
    an ordinary user only the first, and the table's header says so."""
    first, header = room["rows"][name][0], room["result"].stdout.split("\n\n")[0]
    assert (first["status"] == "failed") == held(MODE)[name], (first, header)
    if name == "two_children" and not held(MODE)[name]:
        assert "per process only" in header
    if name == "disk" and not held(MODE)[name]:
        assert "per file" in header


@needs_sandbox
def test_the_kernel_has_no_network(room):
    """Not even this machine's loopback: a port open on it during grading cannot be reached."""
    assert room["rows"]["network"][0]["status"] == "passed", room["rows"]["network"][0]


def test_the_submitted_files_are_not_modified(room):
    now = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in room["room"].glob("*.ipynb")
           if p.is_file() and not p.is_symlink()}
    assert {k: now[k] for k in room["hashes"] if not k.startswith("peer-") or SANDBOXED} == \
        {k: v for k, v in room["hashes"].items() if not k.startswith("peer-") or SANDBOXED}


def test_a_notebook_saved_without_cell_ids_is_graded_fairly(room):
    assert statuses(room, "no_ids") == [(label, "passed") for label in LABELS]


def test_unknown_and_unreadable_notebooks_are_rows_that_never_quote_the_file(room):
    """Refused files of a known lesson (by their name) get one record per exercise, worth 0 points of 1."""
    assert statuses(room, "notes.ipynb") == [("", "unknown notebook")]
    assert statuses(room, "garbage.ipynb") == [("", "not a notebook")]
    assert statuses(room, "secret") == [(label, "not a notebook") for label in LABELS]
    for name, kind in (("fifo", "a FIFO"), ("zero", "a symbolic link"), ("passwd", "a symbolic link")):
        rows = room["rows"][name]
        assert [(r["status"], r["points"], r["max_points"]) for r in rows] == [("not a notebook", 0, 1)] * 5
        assert rows[0]["problem"].startswith(f"not a notebook: refused: {kind}"), rows[0]
    for text in (room["result"].stdout, room["csv"], room["json"]):
        assert "root:" not in text and "SECRET" not in text


def test_the_room_gets_progress_a_table_points_and_files(room):
    result = room["result"]
    assert result.returncode == 1, result.stderr
    progress = [line for line in result.stderr.splitlines() if line.startswith("[")]
    graded = [p for p in room["room"].glob("*.ipynb") if p.is_file() and not p.is_symlink()]
    assert len(progress) == len(graded), result.stderr
    assert re.match(r"\[1/\d+\] .+: \d+/\d+ passed(, [a-z ]+)? in \d+\.\ds \(\d+s\)$", progress[0]), progress[0]
    out = result.stdout.splitlines()
    assert out[0].startswith("Sandbox: bubblewrap" if SANDBOXED else "NO SANDBOX")
    assert out[3].split() == ["notebook", "exercise", "result", "detail"]
    assert any(line.startswith(str(room["room"] / f"solved-{STEM}.ipynb")) and line.endswith("5/5 passed, 5 points")
               for line in out)


def test_the_csv_has_one_row_per_learner_and_exercise_that_a_teacher_can_total(room):
    lines = room["csv"].splitlines()
    assert lines[0] == "learner,lesson,exercise,status,points,max_points,detail,problem,notebook"
    records = json.loads(room["json"])
    assert sum(r["status"] == "passed" for r in records) == sum(r["points"] for r in records)
    solved_rows = [r for r in records if r["learner"] == "solved"]
    assert [(r["lesson"], r["exercise"], r["points"], r["max_points"], r["problem"]) for r in solved_rows] == \
        [(STEM, label, 1, 1, "") for label in LABELS]
    partly_rows = [r for r in records if r["learner"] == "partly"]
    assert len(partly_rows) == 5 and all(r["problem"].startswith("error: error outside exercises") for r in partly_rows)
    (garbage,) = [r for r in records if r["learner"] == "garbage"]
    assert (garbage["exercise"], garbage["points"], garbage["max_points"]) == ("", 0, 0)
    assert sum(r["max_points"] for r in records if r["learner"] == "fifo") == len(LABELS)
