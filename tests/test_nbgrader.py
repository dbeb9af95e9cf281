"""nbgrader 0.9 (requirements-nbgrader.txt) releases exactly exercises/ and grades it like the course does.

The command that writes nbgrader's source notebooks (``python -m course.nbgrader``) is tested without
nbgrader. The rest needs nbgrader and is skipped, with how to install it, where it is missing: in a
temporary nbgrader course, lesson 01 is generated, released, submitted by three students (solved,
untouched, and one who rewrote the check cells to print success) and autograded; the gradebook must
hold 5/5, 0/5 and 0/5. Nothing is written inside the repository.
"""
from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from course import nbgrader as course_nbgrader
from course.execute import thread_env
from course.exercises import annotate
from course.notebook import read

ROOT = Path(__file__).resolve().parents[1]
LESSON = "01_load_lenet"
ASSIGNMENT = "pruning"
HOW = ("nbgrader is not installed: `.venv/bin/python -m pip install -r requirements.txt "
       "-r requirements-nbgrader.txt` (.ci/run installs it)")


# ------------------------------------------------------------------ the command (no nbgrader needed)

def test_the_command_writes_the_sources_and_a_config_and_keeps_what_a_teacher_edited(tmp_path, capsys):
    course = tmp_path / "grading"
    assert course_nbgrader.main([str(course), "01", "--assignment", "week1"]) == 0
    written = course / "source" / "week1" / f"{LESSON}.ipynb"
    assert sorted(p.name for p in written.parent.iterdir()) == [written.name]
    nb = read(written)
    assert nb == annotate(read(ROOT / "solutions" / f"{LESSON}.ipynb"), f"solutions/{LESSON}.ipynb")
    assert not any(c.cell_type == "raw" for c in nb.cells)  # the wrong answers are left out
    assert any("### BEGIN SOLUTION" in c.source for c in nb.cells)  # the solutions stay
    config = course / "nbgrader_config.py"
    assert "c.Execute.timeout = 300" in config.read_text(encoding="utf-8")
    assert "nbgrader generate_assignment week1" in capsys.readouterr().out

    config.write_text("c = get_config()\n", encoding="utf-8")  # the teacher's own config is never rewritten
    text = written.read_text(encoding="utf-8")
    written.write_text(text.replace('"points": 1', '"points": 2', 1), encoding="utf-8")
    assert course_nbgrader.main([str(course), LESSON, "--assignment", "week1"]) == 1
    assert "pass --force" in capsys.readouterr().err
    assert course_nbgrader.main([str(course), f"solutions/{LESSON}.ipynb", "--assignment", "week1", "--force"]) == 0
    assert written.read_text(encoding="utf-8") == text
    assert config.read_text(encoding="utf-8") == "c = get_config()\n"

    assert course_nbgrader.main([str(course), "99"]) == 2
    assert "no single lesson called '99'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        course_nbgrader.main([str(course), "--assignment", "week 1"])


# ------------------------------------------------------------------------------- nbgrader itself

def nbgrader_env(course: Path) -> dict[str, str]:
    """The environment of nbgrader's commands and kernels: this venv, the repository, no user config.

    nbgrader runs `alembic` from PATH; the kernel `python3` is this venv's (jupyter_client starts a
    kernel.json's `python` as the running interpreter) once the user's own kernelspecs are out of sight.
    """
    venv_bin = str(Path(sys.executable).parent)
    path = os.pathsep.join(p for p in [str(ROOT), os.environ.get("PYTHONPATH", "")] if p)
    return {**os.environ, **thread_env(1), "PATH": venv_bin + os.pathsep + os.environ.get("PATH", ""),
            "PYTHONPATH": path, "JUPYTER_CONFIG_DIR": str(course / ".jupyter"),
            "JUPYTER_DATA_DIR": str(course / ".jupyter-data")}


def run_nbgrader(course: Path, *args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, env=nbgrader_env(course),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{(done.stdout + done.stderr)[-4000:]}"


def submit(course: Path, student: str, nb: nbformat.NotebookNode) -> None:
    folder = course / "submitted" / student / ASSIGNMENT
    folder.mkdir(parents=True)
    nbformat.write(nb, folder / f"{LESSON}.ipynb")


def test_every_exercise_notebook_has_valid_nbgrader_metadata():
    pytest.importorskip("nbgrader", reason=HOW)
    from nbgrader.nbgraderformat import MetadataValidator

    for path in sorted((ROOT / "exercises").glob("*.ipynb")):
        nb = read(path)
        MetadataValidator().validate_nb(nb)  # schema, unique grade ids, markdown answers also graded
        checks = [c for c in nb.cells if c.metadata["nbgrader"]["grade"] and c.cell_type == "code"]
        assert len(checks) == len(nb.metadata["course"]["exercises"]), path.name


def test_nbgrader_releases_our_exercises_and_grades_solutions_full_and_untouched_zero(tmp_path):
    pytest.importorskip("nbgrader", reason=HOW)
    from nbgrader.api import Gradebook

    course = tmp_path / "grading"
    assert course_nbgrader.main([str(course), LESSON, "--assignment", ASSIGNMENT]) == 0
    run_nbgrader(course, "generate_assignment", ASSIGNMENT)

    released = read(course / "release" / ASSIGNMENT / f"{LESSON}.ipynb")
    ours = read(ROOT / "exercises" / f"{LESSON}.ipynb")
    assert [(c.id, c.cell_type, c.source) for c in released.cells] == [(c.id, c.cell_type, c.source) for c in ours.cells]
    assert released.metadata == ours.metadata
    for mine, theirs in zip(ours.cells, released.cells):  # nbgrader only adds checksums and locks
        assert {k: v for k, v in theirs.metadata["nbgrader"].items() if k not in ("checksum", "cell_type")} \
            == mine.metadata["nbgrader"]

    source = read(course / "source" / ASSIGNMENT / f"{LESSON}.ipynb")
    answers = {c.metadata["nbgrader"]["grade_id"]: c.source for c in source.cells if c.metadata["nbgrader"]["solution"]}
    solved, cheat = copy.deepcopy(released), copy.deepcopy(released)
    for cell in solved.cells:
        if cell.metadata["nbgrader"]["solution"]:
            cell.source = answers[cell.metadata["nbgrader"]["grade_id"]]
    for cell in cheat.cells:
        if cell.metadata["nbgrader"]["grade"]:
            cell.source = 'print("Exercise passed")'
    submit(course, "solved", solved)
    submit(course, "untouched", released)
    submit(course, "cheat", cheat)
    run_nbgrader(course, "autograde", ASSIGNMENT)

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", course_id="pruning") as gb:
        scores = {s: (gb.find_submission(ASSIGNMENT, s).score, gb.find_submission(ASSIGNMENT, s).max_score)
                  for s in ("solved", "untouched", "cheat")}
    assert scores == {"solved": (5, 5), "untouched": (0, 5), "cheat": (0, 5)}
    outputs = {}
    for student in scores:
        graded = read(course / "autograded" / student / ASSIGNMENT / f"{LESSON}.ipynb")
        checks = [c for c in graded.cells if c.metadata["nbgrader"]["grade"]]
        assert [c.source for c in checks] == [c.source for c in ours.cells if c.metadata["nbgrader"]["grade"]]
        outputs[student] = [(o.get("ename") or o.get("text", "")).split(":")[0] for c in checks for o in c.outputs]
    assert outputs["solved"] == [f"Exercise {n} passed" for n in range(1, 6)]
    # an untouched answer cell raises, so its check meets a missing name, or says "not attempted"
    assert set(outputs["untouched"]) <= {"NameError", "NotAttempted"} and len(outputs["untouched"]) == 5
    assert outputs["cheat"] == outputs["untouched"]  # nbgrader restored the locked check cells
