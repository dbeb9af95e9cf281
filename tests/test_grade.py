"""python -m lenet.grade on a room of submissions of a small synthetic course: honest work, broken
notebooks and cheats. One module fixture grades them all once with the real command (2 jobs, real
kernels); each test then reads the rows of one submission. tests/test_grade_run.py has the rest.
"""
from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from course import execute
from synthetic_course import (ANSWER_FORGERIES, CHEATS, FORGERIES, LABELS, STEM, WRONG, answered, deleted, forged_metadata, partly, solved,
                              untouched, wrong_with, write_course)

@pytest.fixture(scope="module")
def room(tmp_path_factory) -> dict[str, object]:
    """Grade a room of submissions once with `python -m lenet.grade --jobs 2`; the rows by submission."""
    course = write_course(tmp_path_factory.mktemp("course"))
    room = tmp_path_factory.mktemp("room")
    pidfile = room.parent / "detached.pid"
    peer = room / f"peer-{STEM}.ipynb"
    notebooks = {
        "solved": solved(), "untouched": untouched(), "partly": partly(), "deleted": deleted(),
        "forged_metadata": forged_metadata(), "peer": untouched(),
        **{name: wrong_with(cheat) for name, cheat in {**CHEATS, **FORGERIES}.items()},
        **{name: answered(answers) for name, answers in ANSWER_FORGERIES.items()},
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
    assert rows[2]["detail"] == "Exercise 2: `double(21)` is 23, expected 42.\nHint: return twice x".replace("\n", " ")
    assert rows[4]["detail"].startswith("TypeError: ") and "(in cell 14 (`words = " in rows[4]["detail"]
    assert rows[5]["detail"].startswith("ZeroDivisionError: division by zero (in the check of exercise 5)")


def test_deleted_exercises_are_missing_and_edited_checks_are_the_courses(room):
    rows = {r["exercise"]: r for r in room["rows"]["deleted"]}
    assert rows[LABELS[0]]["status"] == "failed"
    assert rows[LABELS[0]]["detail"].endswith("the check cell had been edited; the course's check was run")
    assert rows[LABELS[1]]["status"] == "missing"
    assert [rows[label]["status"] for label in LABELS[2:]] == ["passed"] * 3


@pytest.mark.parametrize("name", ["forged_metadata", *CHEATS, *FORGERIES, *ANSWER_FORGERIES, "overwrites_peer",
                                  "planted_import", "detached"])
def test_a_cheat_or_forgery_passes_nothing(room, name):
    rows = room["rows"][name]
    assert [r["exercise"] for r in rows if r["exercise"]] == LABELS, rows
    assert not [r for r in rows if r["status"] == "passed"], rows


def test_wrong_answers_still_get_their_hint_after_a_cheat(room):
    for name in ("fake_checks", "patched_functions", "custom_exc", "printed_pass"):
        (first,) = [r for r in room["rows"][name] if r["exercise"] == LABELS[0]]
        assert (first["status"], first["detail"]) == ("failed", "Exercise 1: `answer` is 41, expected 42. Hint: multiply 6 by 7")


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
