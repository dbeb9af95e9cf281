"""Grade exercise notebooks against the course's own exercises: one row per learner × exercise.

    python -m lenet.grade submissions/ [--jobs N] [--timeout 120] [--memory 4] [--disk 256] [--processes 128]
                          [--deadline SECONDS] [--csv marks.csv] [--json marks.json] [--no-sandbox]

How one submission is graded (each alone, and never trusting what it says about itself):

1. It is read once, before any submission runs: only a regular file (never a symbolic link, a FIFO or a
   device, refused without being opened), of at most 50 MB.
2. Its lesson is recognised from the file name (``03_random_unstructured.ipynb``, also
   ``alice-03_random_unstructured (1).ipynb``) or else from the source recorded in it. The exercise
   list, headings and check cells come from the course's own solution notebook, not from the file.
3. The notebook that runs is the course's exercise notebook with the learner's answer cells (found
   by cell id, or by position and source in a notebook saved without ids) and the cells the learner
   added. Every other cell, check cells included, is the course's. An exercise whose answer cell is gone
   is ``missing``.
4. It runs in a fresh kernel inside the sandbox (:mod:`course.sandbox`: bubblewrap, uid 65534, no network,
   a private folder, limits on memory, processes, disk and time for all the learner's processes), started
   by a worker process of its own: a worker that dies or stops costs that notebook a row, never the others.
5. Each check is judged in the grader's own process (the worker), never in the learner's. The grader draws
   the check's cases from a secret seed, the learner's kernel only runs the learner's code on them and hands
   back plain data (:mod:`course.collect`, compiled afresh from its file; read with ``weights_only=True``),
   and the check's ``judge`` compares that data with reference answers that never enter the kernel
   (lenet/checks/core.py).

The run ends with the table (its header says how learners' code ran and which limits held) and the CSV and
JSON files, also when interrupted or past ``--deadline``. Exit status: 0 when everything passed, 1 when
something did not, 2 when the grader could not grade something (its row says why), 130 on Ctrl-C, 143 on
SIGTERM.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import csv
import difflib
import json
import math
import multiprocessing
import multiprocessing.connection
import multiprocessing.forkserver
import os
import ast
import importlib
import re
import secrets
import signal
import stat
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields
from functools import lru_cache
from pathlib import Path

import nbformat
import torch
from nbclient import NotebookClient
from nbformat import NotebookNode

from lenet.checks import plain
from lenet.checks.core import Check, CheckFailed, CollectedError, Tampered

from . import execute, sandbox
from .exercises import ROOT, build_exercise
from .notebook import POINTS, Exercise, first_line, one_line, read
from .sandbox import DEFAULT_DISK_MIB, DEFAULT_MEMORY_GIB, DEFAULT_PROCESSES, DEFAULT_TIMEOUT, Limits, Sandbox

PASSED, FAILED, NOT_ATTEMPTED, ERROR = "passed", "failed", "not attempted", "error"
MISSING, NOT_RUN, UNKNOWN = "missing", "not run", "unknown notebook"
NOT_A_NOTEBOOK, TIMED_OUT, KERNEL_DIED = "not a notebook", execute.TIMED_OUT, execute.KERNEL_DIED
#: The grader could not grade (its worker died or stopped, the sandbox failed), or the run's deadline came first:
#: the exit status is then 2.
GRADER_ERROR, NOT_GRADED = "grader error", "not graded"
CHECK_ERRORS = {"CheckFailed": FAILED, "NotAttempted": NOT_ATTEMPTED}
#: The role of a course cell inside an exercise that is not the learner's (a demonstration): an error
#: there is a consequence of the answer, so the row reports the check's verdict instead.
GIVEN = "given"

#: The largest file read as a notebook.
MAX_NOTEBOOK_BYTES = 50 * 2**20
#: Seconds a worker may take beyond --timeout (the kernel's start, the checks, the end) before it is killed.
WORKER_SLACK = 90
#: Longest exercise label shown in the table (longer ones are cut with "...").
MAX_TITLE = 48
_STEM = re.compile(r"(\d\d_[a-z0-9_]+?)(?:[ _-]*\(\d+\))?\.ipynb$")
#: What runs a check's collection in the kernel: course/collect.py, compiled afresh from the course's file every time.
_COLLECT_SOURCE = Path(__file__).with_name("collect.py").read_text(encoding="utf-8")
#: The checks module of a course whose solution notebooks name none (``metadata.course.checks``).
CHECKS_MODULE = "lenet.checks"
#: Largest file of collected answers the grader reads back from a kernel.
MAX_COLLECTED = 64 * 2**20


@dataclass
class Row:
    """One line of the grading table: one exercise of one submission, or a problem of the whole notebook."""

    notebook: str
    exercise: str
    status: str
    detail: str = ""
    position: int = 0  # cell index, to list rows in notebook order
    lesson: str = ""  # the lesson's stem ("01_load_lenet"), when known


@dataclass
class Lesson:
    """The course's trusted version of one exercise notebook."""

    stem: str
    notebook: NotebookNode  # the exercise notebook, built from the solution notebook
    exercises: list[Exercise] = field(default_factory=list)
    checks: str = CHECKS_MODULE  # the module whose checks its check cells call


# ------------------------------------------------------------------------------------ the course

def tagged_exercises(nb: NotebookNode) -> list[Exercise]:
    """The exercises of a notebook written by :func:`course.exercises.build_exercise`, from its tags."""
    found: dict[object, Exercise] = {}
    for entry in nb.metadata["course"]["exercises"]:
        found[entry["exercise"]] = Exercise(entry["exercise"], entry["title"], first=len(nb.cells),
                                            check_source=entry["check"])
    for i, cell in enumerate(nb.cells):
        tag = cell.get("metadata", {}).get("course")
        if not isinstance(tag, dict) or tag.get("exercise") not in found:
            continue
        ex = found[tag["exercise"]]
        ex.first = min(ex.first, i)
        role = tag.get("role")
        if role == "heading":
            ex.heading = i
        elif role == "solution":
            ex.solutions.append(i)
        elif role == "check":
            ex.check = i
    return list(found.values())


@lru_cache(maxsize=None)
def lessons(root: Path = ROOT) -> dict[str, Lesson]:
    """Every lesson of the course at ``root`` that has exercises, by stem (``"03_random_unstructured"``)."""
    out = {}
    for path in sorted((root / "solutions").glob("*.ipynb")):
        solution = read(path)
        module = solution.metadata.get("course", {}).get("checks", CHECKS_MODULE)
        nb = build_exercise(solution, f"solutions/{path.name}")
        out[path.stem] = Lesson(path.stem, nb, tagged_exercises(nb), module)
    return out


def checks_module(name: str, root: Path = ROOT):
    """The course's checks module ``name``, imported in the grader's own process (the course root first on the path)."""
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    return importlib.import_module(name)


def check_of(source: str, module) -> Check:
    """The :class:`Check` that a course's check cell (``checks.check_x(answer, ...)``, one call) calls."""
    tree = ast.parse(source)
    call = tree.body[0].value if len(tree.body) == 1 and isinstance(tree.body[0], ast.Expr) else None
    func = call.func if isinstance(call, ast.Call) else None
    if not (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "checks"):
        raise ValueError(f"a check cell must be one call `checks.check_...(...)`, not {one_line(source, 80)!r}")
    check = getattr(module, func.attr, None)
    if not isinstance(check, Check):
        raise ValueError(f"{module.__name__}.{func.attr} is not a check in three parts (lenet.checks.Check)")
    return check


def lesson_of(name: str, nb: NotebookNode, known: dict[str, Lesson]) -> Lesson | None:
    """The lesson a submission belongs to: by its file name, else by the source it records."""
    match = _STEM.search(Path(name).name)
    candidates = [match[1]] if match else []
    source = nb.get("metadata", {}).get("course", {})
    if isinstance(source, dict) and isinstance(source.get("source"), str):
        candidates.append(Path(source["source"]).stem)
    for stem in candidates:
        for known_stem in known:
            if stem == known_stem or stem.endswith(known_stem):
                return known[known_stem]
    return None


def assemble(lesson: Lesson, submission: NotebookNode) -> tuple[NotebookNode, list[Exercise], dict[object, str]]:
    """The notebook to run: the course's cells, the learner's answer cells (by id) and added cells.

    Returns it, its exercises (indices into it; an exercise whose answer cell is missing has no
    solution cells) and notes per exercise (e.g. an edited check cell).
    """
    trusted = lesson.notebook
    role = {i: (ex, "solution") for ex in lesson.exercises for i in ex.solutions}
    role.update({ex.check: (ex, "check") for ex in lesson.exercises if ex.check is not None})
    trusted_ids = {cell.get("id"): i for i, cell in enumerate(trusted.cells)}
    ids = course_ids(trusted, submission)
    mine = {ids[j]: cell for j, cell in enumerate(submission.cells) if ids[j] is not None}
    added: dict[int | None, list[NotebookNode]] = {}  # learner cells, attached to the next course cell
    pending: list[NotebookNode] = []
    for j, cell in enumerate(submission.cells):
        if ids[j] is not None:
            added[trusted_ids[ids[j]]] = pending
            pending = []
        elif cell.get("cell_type") in ("code", "markdown"):
            pending.append(cell)
    added[None] = pending
    cells: list[NotebookNode] = []
    notes: dict[object, str] = {}
    lost: set[object] = set()
    for i, cell in enumerate(trusted.cells):
        cells.extend(_learner_cell(c) for c in added.get(i, []))
        ex, kind = role.get(i, (None, None))
        if kind == "solution":
            if cell["id"] not in mine:
                lost.add(ex.key)
                continue
            answer = _learner_cell(mine[cell["id"]])
            answer.metadata["course"] = {"exercise": ex.key, "role": "solution"}
            cells.append(answer)
            continue
        if kind == "check" and cell["id"] in mine and mine[cell["id"]].get("source", "").strip() != cell.source.strip():
            notes[ex.key] = "the check cell had been edited; the course's check was run"
        given = copy.deepcopy(cell)
        if kind is None and given.cell_type == "code":
            given.metadata.setdefault("course", {"role": GIVEN})
        cells.append(given)
    cells.extend(_learner_cell(c) for c in added[None])
    nb = copy.deepcopy(trusted)
    nb.cells = cells
    exercises = tagged_exercises(nb)
    for ex in exercises:
        if ex.key in lost:
            ex.solutions = []
    return nb, exercises, notes


def course_ids(trusted: NotebookNode, submission: NotebookNode) -> list[str | None]:
    """For each cell of ``submission``, the id of the course cell it is (None: a cell the learner added).

    By cell id when the submission keeps the course's ids (JupyterLab does). A notebook saved without ids
    (nbformat 4.4, as older tools and some editors write it) or with new ones is matched by position and
    source instead: the course's cells the learner left as they were anchor the match (difflib), and between
    two anchors each answer cell of the course takes, in order, the learner's cell of its type that is most
    like it (the first of equals); an edited course cell takes a cell at least half like it.
    """
    known = {cell.get("id") for cell in trusted.cells if cell.get("id")}
    by_id = [cell.get("id") if cell.get("id") in known else None for cell in submission.cells]
    if any(by_id):
        return by_id
    answers = {i for i, cell in enumerate(trusted.cells)
               if cell.get("metadata", {}).get("course", {}).get("role") == "solution"}

    def key(cell: NotebookNode) -> tuple[str, str]:
        lines = str(cell.get("source", "")).strip().splitlines()
        return str(cell.get("cell_type")), "\n".join(line.rstrip() for line in lines)

    theirs, mine = [key(c) for c in trusted.cells], [key(c) for c in submission.cells]
    out: list[str | None] = [None] * len(submission.cells)
    matcher = difflib.SequenceMatcher(None, theirs, mine, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            for k in range(i2 - i1):
                out[j1 + k] = trusted.cells[i1 + k].get("id")
        elif tag == "replace":
            start = j1
            for i in range(i1, i2):
                candidates = [j for j in range(start, j2) if mine[j][0] == theirs[i][0]]
                if not candidates:
                    continue
                likeness = {j: difflib.SequenceMatcher(None, theirs[i][1], mine[j][1]).ratio() for j in candidates}
                best = max(candidates, key=likeness.__getitem__)  # the first of equals
                if i in answers or likeness[best] >= 0.5:
                    out[best] = trusted.cells[i].get("id")
                    start = best + 1
    return out


def _learner_cell(cell: NotebookNode) -> NotebookNode:
    """A copy of a learner's cell, reduced to what runs: its type and source."""
    if cell.get("cell_type") == "code":
        return nbformat.v4.new_code_cell(str(cell.get("source", "")))
    return nbformat.v4.new_markdown_cell(str(cell.get("source", "")))


# ---------------------------------------------------------------------------------------- grading

def _verify(client: NotebookClient, nb: NotebookNode, index: int, source: str, module: str, check: Check,
            folder: Path, seed: int) -> tuple[str, str] | None:
    """Judge one check: collect in the kernel (:mod:`course.collect`), judge here; None when it passed, else
    (ename, evalue) as the row reports it (``CheckFailed``, ``NotAttempted``, the learner's exception, ...).

    ``folder`` is the kernel's private folder (the same path inside its sandbox); the cases and the collected
    answers pass through files there, each named with a fresh nonce.
    """
    cases = check.cases(torch.Generator().manual_seed(seed))
    nonce = uuid.uuid4().hex
    cases_path, out_path = folder / f".course-cases-{nonce}.pt", folder / f".course-collected-{nonce}.pt"
    try:
        plain.save(cases, cases_path)
        os.chmod(cases_path, 0o644)
        code = (f"{_COLLECT_SOURCE}\nverdict = collect({source!r}, {module!r}, {str(cases_path)!r}, "
                f"{str(out_path)!r})\n")
        # g.get, not g[...]: where a cell made exec a no-op, an error here would have IPython format a traceback with
        # imports that exec no longer runs, and the kernel would never reply (the notebook timed out, 0 passed)
        expression = (f"(lambda g: (exec(compile({code!r}, '<course grader>', 'exec'), g), g.get('verdict'))[-1])"
                      "({'__name__': '__course_collect__'})")
        msg_id = client.kc.execute("", silent=True, store_history=False, user_expressions={"verdict": expression})
        reply = client.wait_for_reply(msg_id, nb.cells[index])
        content = (reply or {}).get("content", {})
        verdict = content.get("user_expressions", {}).get("verdict")
        if content.get("status") != "ok" or not isinstance(verdict, dict):
            return "GraderError", ("the check could not run: the kernel refused a cell (did a cell change how "
                                   "IPython runs code?)")
        if verdict.get("status") != "ok":  # e.g. a NameError from the check cell's arguments
            return str(verdict.get("ename", "Error")), str(verdict.get("evalue", ""))
        try:
            collected = plain.load(out_path, MAX_COLLECTED)
        except FileNotFoundError:
            return "Tampered", ("nothing was collected for this check: did a cell change how IPython evaluates "
                                "code (eval, exec, user_expressions)?")
        except Exception as e:  # noqa: BLE001 - replaced, not plain data: all the learner's doing
            return "Tampered", (f"the answers collected for this check could not be read ({type(e).__name__}: "
                                f"{one_line(e, 120)}): did a cell change the checking machinery?")
        return judge(check, cases, collected)
    finally:
        for path in (cases_path, out_path):
            with contextlib.suppress(OSError):
                path.unlink()


def judge(check: Check, cases: list, collected: object) -> tuple[str, str] | None:
    """The check's verdict on what was collected, in this process: None when it passed, else (ename, evalue).
    """
    try:
        check.judge_all(cases, collected)
    except CheckFailed as e:  # NotAttempted too
        return type(e).__name__, str(e)
    except CollectedError as e:
        return e.raised.type, e.raised.message
    except Tampered as e:
        return "Tampered", (f"what was collected for this check is not what the check collects ({one_line(e, 120)}): "
                            "did a cell change the checking machinery?")
    except Exception as e:  # noqa: BLE001 - data the judge could not handle: the learner's, reported
        return "Error", f"the check could not judge what your code returned: {type(e).__name__}: {one_line(e, 200)}"
    return None


def grade_run(nb: NotebookNode, exercises: list[Exercise], name: str, limits: Limits | None = None,
              notes: dict[object, str] | None = None, box: Sandbox | None = None, *, checks: str = CHECKS_MODULE,
              root: Path = ROOT) -> list[Row]:
    """Execute ``nb`` and return one row per exercise, in notebook order, then rows for the whole notebook.

    The kernel runs in ``box`` (a sandbox the caller prepared and releases), or else as this user in a
    private folder of its own (for the course's own notebooks, e.g. tests/test_exercises.py). Check cells
    are never run as the learner's cells: :func:`_verify` collects in the kernel and judges here, with the
    checks of module ``checks`` of the course at ``root``. An exercise without solution cells is
    ``missing`` and its check is not run.
    """
    limits = limits or Limits()
    notes = notes or {}
    module = checks_module(checks, root)
    to_check = {ex.check: (ex, check_of(ex.check_source or "", module)) for ex in exercises
                if ex.check is not None and ex.solutions}
    verdicts: dict[int, tuple[str, str] | None] = {}
    seed = secrets.randbits(62)  # the seed of the unseen cases: never in the kernel
    own = box is None
    if box is None:
        box = Sandbox(sandbox.NO_SANDBOX, sandbox.prepare(sandbox.NO_SANDBOX, limits), limits, ROOT)
    box = box.importing(checks, root)
    folder = Path(box.place.home)  # the kernel's private folder, at the same path inside its sandbox

    def before_cell(client: NotebookClient, index: int) -> bool:
        if index not in to_check:
            return True
        ex, check = to_check[index]
        verdicts[index] = _verify(client, nb, index, ex.check_source or "", checks, check, folder, seed + index)
        return False

    try:
        env = box.environment()
        run = execute.run(nb, folder, timeout=limits.timeout, before_cell=before_cell, errors_only=True,
                          km=box.kernel_manager(env), env=box.launch_env(env), kernel_kwargs=box.popen_kwargs())
        if run.stop_status == KERNEL_DIED and sandbox.out_of_memory(box.place):
            where = f" in {first_line(nb, run.stop_cell)}" if run.stop_cell is not None else ""
            run.stop_detail = (f"the Python kernel died{where}: the learner's processes used more than the memory "
                               f"limit ({limits.memory_gib:g} GiB) and one was killed")
    finally:
        if own:
            sandbox.release(box.place)
    run.ran.update(i for i in verdicts)
    for index, verdict in verdicts.items():
        if verdict is not None:
            run.errors[index] = verdict
    rows: list[Row] = []
    owned: set[int] = set()
    starts = sorted(ex.first for ex in exercises) + [len(nb.cells)]
    for ex in exercises:
        end = ex.check + 1 if ex.check is not None else min(s for s in starts if s > ex.first)
        owned.update(range(ex.first, end))
        rows.append(_exercise_row(nb, name, ex, run, notes.get(ex.key, "")))
    for i, (ename, evalue) in sorted(run.errors.items()):
        if i not in owned:
            rows.append(Row(name, "", ERROR, f"error outside exercises in {first_line(nb, i)}: {ename}: "
                            f"{one_line(evalue)}", i))
    if run.stop_status is not None:
        stop = run.stop_cell if run.stop_cell is not None else len(nb.cells)
        status = GRADER_ERROR if run.stop_status == execute.ERROR else run.stop_status
        rows.append(Row(name, "", status, run.stop_detail, stop))
    return sorted(rows, key=lambda r: r.position)


def _exercise_row(nb: NotebookNode, name: str, ex: Exercise, run: execute.Run, note: str) -> Row:
    """The row of one exercise, from the errors of its answer cells and the verdict of its check."""
    position = ex.check if ex.check is not None else ex.first

    def row(status: str, detail: str) -> Row:
        return Row(name, ex.label, status, "; ".join(part for part in (detail, note) if part), position)

    if not ex.solutions or ex.check is None:
        return row(MISSING, f"the answer cell of exercise {ex.key} is not in the notebook (cells deleted?)")
    if ex.check not in run.ran:
        return row(NOT_RUN, "the notebook stopped before this exercise (see its row)")
    check_error = run.errors.get(ex.check)
    if check_error is None:
        return row(PASSED, "")
    for i in range(ex.first, ex.check):  # the learner's cells: the first error is the cause
        if i in run.errors and nb.cells[i].get("metadata", {}).get("course", {}).get("role") != GIVEN:
            ename, evalue = run.errors[i]
            if ename == "NotImplementedError" and not evalue:
                return row(NOT_ATTEMPTED, f"{first_line(nb, i)} still raises NotImplementedError")
            return row(ERROR, f"{ename}: {one_line(evalue)} (in {first_line(nb, i)})")
    ename, evalue = check_error
    if ename in CHECK_ERRORS:
        return row(CHECK_ERRORS[ename], one_line(evalue))
    if ename == "NotImplementedError" and not evalue:
        return row(NOT_ATTEMPTED, "your function still raises NotImplementedError")
    if ename == "Tampered":
        return row(ERROR, f"the check was tampered with: {one_line(evalue)}")
    if ename in ("", "Error") and not evalue.strip():
        return row(ERROR, f"the check of exercise {ex.key} gave no verdict: something in the notebook tampered with "
                          "it (look for cells that change builtins, sys or IPython)")
    return row(ERROR, f"{ename}: {one_line(evalue)} (in the check of exercise {ex.key})")


def grade_submission(name: str, data: bytes, limits: Limits | None = None, root: Path = ROOT,
                     box: Sandbox | None = None) -> list[Row]:
    """The rows of one submitted file (its bytes, read before any submission ran), never raising."""
    try:
        nb = parse_notebook(data)
        if isinstance(nb, str):
            return [Row(name, "", NOT_A_NOTEBOOK, nb, lesson=_stem_in(name))]
        known = lessons(root)
        lesson = lesson_of(name, nb, known)
        if lesson is None:
            return [Row(name, "", UNKNOWN, "not one of the course's exercise notebooks (name it like "
                        f"exercises/NN_topic.ipynb; known: {', '.join(known)})")]
        to_run, exercises, notes = assemble(lesson, nb)
        rows = grade_run(to_run, exercises, name, limits, notes, box, checks=lesson.checks, root=root)
        for row in rows:
            row.lesson = lesson.stem
        return rows
    except Exception as e:  # never crash on one notebook: report and go on with the next
        return [Row(name, "", GRADER_ERROR, f"the grader failed on this notebook: {type(e).__name__}: "
                    f"{one_line(e, 300)}")]


def parse_notebook(data: bytes) -> NotebookNode | str:
    """The notebook in ``data``, or why it is not one: a sentence that never quotes the file's contents."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        return f"not a Jupyter notebook: not UTF-8 text (byte {e.start:,} of {len(data):,})"
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as e:
        return f"not a Jupyter notebook: not JSON ({e.msg} at line {e.lineno}, column {e.colno})"
    except (RecursionError, ValueError) as e:
        return f"not a Jupyter notebook: not JSON ({type(e).__name__})"
    if not isinstance(raw, dict) or not isinstance(raw.get("cells"), list) \
            or not all(isinstance(c, dict) for c in raw["cells"]) or not isinstance(raw.get("nbformat"), int):
        return "not a Jupyter notebook: JSON without a list of cells and an nbformat version"
    try:
        nb = nbformat.reads(text, as_version=4, capture_validation_error={})
        if not isinstance(nb.get("cells"), list) or not all(isinstance(c, dict) for c in nb.cells):
            raise ValueError("no list of cells")
    except Exception as e:  # nbformat's own messages may quote the file: give the type only
        return f"not a Jupyter notebook nbformat can read ({type(e).__name__})"
    return nb


def _stem_in(name: str) -> str:
    match = _STEM.search(Path(name).name)
    return match[1] if match else ""


# ------------------------------------------------------------------------------------- the room

def notebooks_in(paths: Sequence[str | Path]) -> tuple[list[Path], list[Row]]:
    """The notebooks named by ``paths`` (folders searched recursively), and rows for what is not graded.

    A folder given on the command line is followed even if it is a symbolic link (the teacher named it);
    inside it, symbolic links are listed (and refused by :func:`read_submission`) but never followed.
    """
    found: list[Path] = []
    rows: list[Row] = []
    for p in map(Path, paths):
        if p.is_dir():
            inside: list[Path] = []
            for folder, dirs, files in os.walk(p):  # never follows a symbolic link to a folder
                dirs[:] = sorted(d for d in dirs if d != ".ipynb_checkpoints")
                for d in list(dirs):
                    if os.path.islink(os.path.join(folder, d)):
                        rows.append(Row(os.path.join(folder, d), "", ERROR,
                                        "a symbolic link to a folder: not followed (copy the notebooks instead)"))
                inside.extend(Path(folder, f) for f in sorted(files) if f.endswith(".ipynb"))
            found.extend(sorted(inside))
            if not inside:
                rows.append(Row(str(p), "", ERROR, "no notebooks (*.ipynb) in this folder"))
        elif os.path.lexists(p):
            found.append(p)
        else:
            rows.append(Row(str(p), "", ERROR, "no such file or folder"))
    return found, rows


def read_submission(path: Path, max_bytes: int = MAX_NOTEBOOK_BYTES) -> bytes | Row:
    """The bytes of the regular file at ``path``, or a row saying why not. Symbolic links, FIFOs, sockets and
    devices are refused without being opened (``lstat``, then ``O_NOFOLLOW | O_NONBLOCK``), so none of them
    can hang the grader or put another file's contents in the table."""
    name = str(path)
    kinds = {stat.S_IFLNK: "a symbolic link", stat.S_IFIFO: "a FIFO (named pipe)", stat.S_IFSOCK: "a socket",
             stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device", stat.S_IFDIR: "a folder"}

    def refused(info: os.stat_result) -> Row:
        kind = kinds.get(stat.S_IFMT(info.st_mode), "not a regular file")
        return Row(name, "", NOT_A_NOTEBOOK, f"refused: {kind}, not a regular file (only regular files are "
                   "graded; ask for the notebook itself)", lesson=_stem_in(name))

    try:
        info = os.lstat(path)
        if not stat.S_ISREG(info.st_mode):
            return refused(info)
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        return Row(name, "", ERROR, f"cannot read it: {e.strerror}", lesson=_stem_in(name))
    try:
        info = os.fstat(fd)  # what was opened, not what the name meant a moment ago
        if not stat.S_ISREG(info.st_mode):
            return refused(info)
        if info.st_size > max_bytes:
            return Row(name, "", NOT_A_NOTEBOOK, f"refused: {info.st_size / 2**20:.0f} MB, more than the "
                       f"{max_bytes / 2**20:.0f} MB a notebook may have (clear its outputs)", lesson=_stem_in(name))
        chunks, size = [], 0
        while size <= max_bytes:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > max_bytes:
            return Row(name, "", NOT_A_NOTEBOOK, f"refused: more than the {max_bytes / 2**20:.0f} MB a notebook "
                       "may have (clear its outputs)", lesson=_stem_in(name))
        return b"".join(chunks)
    except OSError as e:
        return Row(name, "", ERROR, f"cannot read it: {e.strerror}", lesson=_stem_in(name))
    finally:
        os.close(fd)


def _work(conn: multiprocessing.connection.Connection, name: str, data: bytes, limits: Limits, root: Path,
          box: Sandbox) -> None:
    """A worker process: grade one submission in ``box``, send its rows as JSON, exit."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C and `kill` are the main process's to handle
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    sandbox.die_with_parent()  # and if the grader is killed outright, its workers go with it
    try:
        box.enter()  # first, while this process has one thread
    except OSError as e:
        rows = [Row(name, "", GRADER_ERROR, f"the grader could not make the notebook's private folder: {e}",
                    lesson=_stem_in(name))]
        conn.send_bytes(json.dumps([asdict(r) for r in rows]).encode())
        return
    try:
        rows = grade_submission(name, data, limits, root, box)
    except BaseException as e:  # noqa: BLE001 - whatever happens, the main process gets rows
        rows = [Row(name, "", GRADER_ERROR, f"the grader failed on this notebook: {type(e).__name__}")]
    conn.send_bytes(json.dumps([asdict(r) for r in rows]).encode())
    conn.close()
    os._exit(0)  # its kernel has ended, and the main process releases its place: nothing left to tear down


@dataclass
class _Job:
    """One submission being graded: its worker, the pipe its rows come through, its sandbox's place."""

    name: str
    process: multiprocessing.process.BaseProcess
    conn: multiprocessing.connection.Connection
    place: sandbox.Place
    started: float


class Room:
    """Grades submissions, each in a worker process of its own (at most ``jobs`` at once), supervised here.

    A worker that dies, stops or runs past its time costs its own submission a ``grader error`` row; the
    others go on. Each worker is forked from this process, which has imported everything already (or, where
    this process has threads, from multiprocessing's forkserver), so starting one costs milliseconds. Every
    submission's place (folders, cgroups) is made and released here, in the main process, whatever happened
    to its worker.
    """

    def __init__(self, mode: sandbox.Mode, limits: Limits, root: Path, jobs: int) -> None:
        self.mode, self.limits, self.root, self.jobs = mode, limits, root, jobs
        self.running: list[_Job] = []
        if _threads() == 1:  # the grader's command: fork it, everything is imported already
            self.context = multiprocessing.get_context("fork")
        else:  # a caller with threads (forking it would copy locks held by them): a clean server to fork from
            self.context = multiprocessing.get_context("forkserver")
            self.context.set_forkserver_preload(["course.grade"])
            previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server and its workers ignore Ctrl-C
            try:
                multiprocessing.forkserver.ensure_running()
            finally:
                signal.signal(signal.SIGINT, previous)

    def grade(self, submissions: dict[str, bytes], deadline: float) -> Iterator[tuple[str, list[Row], float]]:
        """Yield (name, rows, seconds) for each submission as it is graded, until all are or ``deadline``
        (a time.monotonic() value) passes; then the running ones are stopped and yielded as not graded."""
        waiting = list(submissions)
        while waiting or self.running:
            while waiting and len(self.running) < self.jobs and time.monotonic() < deadline:
                name = waiting.pop(0)
                self.running.append(self._start(name, submissions[name]))
            if time.monotonic() >= deadline:
                for job in list(self.running):
                    yield job.name, self._stop(job, NOT_GRADED, "the run's --deadline passed while it was graded"), \
                        time.monotonic() - job.started
                for name in waiting:
                    yield name, [Row(name, "", NOT_GRADED, "the run's --deadline passed before it was graded",
                                     lesson=_stem_in(name))], 0.0
                return
            ready = multiprocessing.connection.wait([job.conn for job in self.running], timeout=0.25)
            _check_stop()
            for job in list(self.running):
                if job.conn in ready:
                    yield job.name, self._finish(job), time.monotonic() - job.started
                elif _stopped(job.process.pid):
                    yield job.name, self._stop(job, GRADER_ERROR, "its worker was stopped (SIGSTOP?) and is killed"), \
                        time.monotonic() - job.started
                elif time.monotonic() - job.started > self.limits.timeout + WORKER_SLACK:
                    yield job.name, self._stop(job, GRADER_ERROR, f"its worker took more than --timeout + "
                                               f"{WORKER_SLACK}s and is killed"), time.monotonic() - job.started

    def _start(self, name: str, data: bytes) -> _Job:
        place = sandbox.prepare(self.mode, self.limits)
        receive, send = self.context.Pipe(duplex=False)
        box = Sandbox(self.mode, place, self.limits, ROOT)
        process = self.context.Process(target=_work, args=(send, name, data, self.limits, self.root, box),
                                       name=f"grade {name}", daemon=True)
        try:
            process.start()
        except BaseException:
            sandbox.release(place)
            raise
        finally:
            send.close()
        return _Job(name, process, receive, place, time.monotonic())

    def _finish(self, job: _Job) -> list[Row]:
        """The rows the worker sent (checked: plain JSON of rows), or a row saying why there are none."""
        try:
            data = job.conn.recv_bytes(maxlength=64 * 2**20)
            rows = [Row(**{f.name: (int if f.type == "int" else str)(r[f.name]) for f in fields(Row)})
                    for r in json.loads(data)]
        except EOFError:
            job.process.join(5)
            code = job.process.exitcode
            why = (f"killed by {signal.Signals(-code).name}" if code is not None and code < 0
                   else f"exit status {code}")
            rows = [Row(job.name, "", GRADER_ERROR, f"its worker ended before sending a result ({why})",
                        lesson=_stem_in(job.name))]
        except Exception as e:  # noqa: BLE001 - a garbled message is the worker's failure, not the room's
            rows = [Row(job.name, "", GRADER_ERROR, f"its worker sent no readable result ({type(e).__name__})",
                        lesson=_stem_in(job.name))]
        self._end(job)
        return rows

    def _stop(self, job: _Job, status: str, why: str) -> list[Row]:
        self._end(job)
        return [Row(job.name, "", status, why, lesson=_stem_in(job.name))]

    def _end(self, job: _Job) -> None:
        if job.process.is_alive():
            job.process.kill()
        job.process.join(10)
        job.conn.close()
        sandbox.release(job.place)
        self.running.remove(job)

    def close(self) -> None:
        """Stop every worker still running (and so every sandbox) and release their places."""
        for job in list(self.running):
            self._end(job)


class _Terminated(KeyboardInterrupt):
    """SIGTERM: the run ends as on Ctrl-C (exit status 143)."""


#: The signals (SIGINT, SIGTERM) that asked this run to end. Python raises a signal's exception wherever the main
#: thread is, and where that is a finalizer (multiprocessing closing a pipe, say) it prints "Exception ignored" and
#: goes on: the room then kept grading until --timeout. So the grading loop also looks here between its waits.
_asked_to_stop: list[int] = []


def _stop_exception(signum: int) -> KeyboardInterrupt:
    return _Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def _interrupt(signum: int, frame: object) -> None:
    """SIGINT (Ctrl-C) and SIGTERM (`kill`): remember it, and raise."""
    _asked_to_stop.append(signum)
    raise _stop_exception(signum)


def _check_stop() -> None:
    """Raise what an earlier SIGINT or SIGTERM raised, should Python have swallowed it."""
    if _asked_to_stop:
        raise _stop_exception(_asked_to_stop[0])


def _threads() -> int:
    """How many threads this process has (from /proc; 1 where that cannot be read)."""
    try:
        return int(next(line.split()[1] for line in Path("/proc/self/status").read_text().splitlines()
                        if line.startswith("Threads:")))
    except (OSError, StopIteration, ValueError):
        return 1


def _stopped(pid: int | None) -> bool:
    """Whether process ``pid`` is stopped (by SIGSTOP or a tracer), from /proc."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("T", "t")
    except (OSError, IndexError):
        return False


def learner_of(row: Row, roots: Sequence[str]) -> str:
    """Who handed in ``row``'s notebook: its file name without the lesson (``alice-03_x (1).ipynb``: alice), else
    the folder it is in below the folder given on the command line (``room/alice/03_x.ipynb``: alice)."""
    path = Path(row.notebook)
    stem = re.sub(r"[ _-]*\(\d+\)$", "", path.name.removesuffix(".ipynb"))
    if row.lesson and row.lesson in stem:
        stem = stem.replace(row.lesson, "")
    name = stem.strip(" -_.")
    if name:
        return name
    for root in roots:
        try:
            relative = path.relative_to(root)
        except ValueError:
            continue
        if len(relative.parts) > 1:
            return str(relative.parent)
    return path.parent.name or path.name


def records(rows: Sequence[Row], roots: Sequence[str] = (),
            exercises: dict[str, list[str]] | None = None) -> list[dict[str, object]]:
    """One record per learner × exercise, for the CSV and the JSON. A problem of the whole notebook (it timed
    out, it is not a notebook, ...) goes into the ``problem`` column of each of its exercises. A notebook that
    has no exercise rows gets one record per exercise of its lesson (``exercises``: the labels by lesson),
    worth no points out of the usual, when its lesson is known from its name; else one record worth 0 of 0."""
    by_notebook: dict[str, list[Row]] = {}
    for row in rows:
        by_notebook.setdefault(row.notebook, []).append(row)
    out: list[dict[str, object]] = []
    for notebook, mine in by_notebook.items():
        problems = [r for r in mine if not r.exercise]
        problem = "; ".join(f"{r.status}: {r.detail}" for r in problems)
        lesson = next((r.lesson for r in mine if r.lesson), "")
        learner = learner_of(mine[0], roots)
        found = [(r.exercise, r.status, r.detail) for r in mine if r.exercise]
        if not found:
            status = problems[0].status if problems else ERROR
            found = [(label, status, "") for label in (exercises or {}).get(lesson, [])] or [("", status, "")]
        for exercise, status, detail in found:
            out.append({"learner": learner, "lesson": lesson, "exercise": exercise, "status": status,
                        "points": POINTS if status == PASSED else 0, "max_points": POINTS if exercise else 0,
                        "detail": detail, "problem": problem, "notebook": notebook})
    return out


def printable(text: str) -> str:
    """``text`` with every character a terminal would act on (escape sequences, newlines, bidi overrides) shown
    as "?": file names and error messages come from learners, and must not rewrite the table on screen."""
    return "".join(c if c.isprintable() else "?" for c in text)


def _csv_safe(value: object) -> object:
    """A CSV field a spreadsheet will not run as a formula (a learner chose the file name and the messages)."""
    return "'" + value if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def format_table(rows: Sequence[Row], header: Sequence[str] = ()) -> str:
    """The rows as an aligned text table, then a line per learner (points) and a summary line; ``header``
    lines (how learners' code ran) first."""
    def cut(text: str) -> str:
        return text if len(text) <= MAX_TITLE else text[: MAX_TITLE - 3] + "..."

    rows = [Row(printable(r.notebook), printable(r.exercise), r.status, printable(r.detail), r.position,
                r.lesson) for r in rows]

    top = Row("notebook", "exercise", "result", "detail")
    shown = [top, *(Row(r.notebook, cut(r.exercise), r.status, r.detail) for r in rows)]
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
    notebooks = list(dict.fromkeys(r.notebook for r in rows))
    if len(notebooks) > 1:
        lines.append("")
        for nb in notebooks:
            mine = [r for r in exercise_rows if r.notebook == nb]
            passed = sum(r.status == PASSED for r in mine)
            points = passed * POINTS
            lines.append(f"{nb:{w_nb}}  {passed}/{len(mine)} passed, {points} point{'s' * (points != 1)}")
    summary = (f"{len(exercise_rows)} exercise{'s' * (len(exercise_rows) != 1)} in {len(notebooks)} "
               f"notebook{'s' * (len(notebooks) != 1)}: "
               + (", ".join(f"{n} {s}" for s, n in counts.items()) or "none"))
    if problems:
        summary += f"; {problems} notebook problem{'s' * (problems != 1)}"
    return "\n".join([*header, *([""] if header else []), *lines, "", summary])


#: The columns of the CSV, in order (the JSON records have the same keys).
COLUMNS = ["learner", "lesson", "exercise", "status", "points", "max_points", "detail", "problem", "notebook"]


def _write_files(rows: Sequence[Row], csv_path: Path | None, json_path: Path | None,
                 roots: Sequence[str] = (), exercises: dict[str, list[str]] | None = None) -> None:
    found = records(rows, roots, exercises)
    if csv_path:
        with open(csv_path, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows({key: _csv_safe(value) for key, value in record.items()} for record in found)
    if json_path:
        json_path.write_text(json.dumps(found, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def _positive(kind: Callable[[str], float]) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
        return value
    return parse


def main(argv: Sequence[str] | None = None, progress: Callable[[str], None] | None = None) -> int:
    """Command line: grade the notebooks and folders given, print the table, return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m lenet.grade", description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+", help="notebooks (.ipynb) or folders holding them")
    parser.add_argument("--jobs", type=_positive(int), default=os.cpu_count() or 1,
                        help="notebooks graded at once (default: the number of cores)")
    parser.add_argument("--timeout", type=_positive(float), default=DEFAULT_TIMEOUT,
                        help=f"seconds for all cells of one notebook together (default {DEFAULT_TIMEOUT})")
    parser.add_argument("--memory", type=_positive(float), default=DEFAULT_MEMORY_GIB,
                        help="GiB of memory for all of one learner's processes together "
                             f"(default {DEFAULT_MEMORY_GIB:g})")
    parser.add_argument("--disk", type=_positive(int), default=DEFAULT_DISK_MIB,
                        help=f"MiB one learner's kernel may write in its folder (default {DEFAULT_DISK_MIB})")
    parser.add_argument("--processes", type=_positive(int), default=DEFAULT_PROCESSES,
                        help=f"processes and threads of one learner together (default {DEFAULT_PROCESSES})")
    parser.add_argument("--deadline", type=_positive(float),
                        help="seconds for the whole run; what is not graded by then gets a 'not graded' row "
                             "(default: enough for every notebook to use all of --timeout)")
    parser.add_argument("--csv", type=Path, help="also write one row per learner × exercise to this CSV file")
    parser.add_argument("--json", type=Path, help="the same rows as a JSON list")
    parser.add_argument("--no-sandbox", action="store_true",
                        help="run learners' code as you, without bubblewrap (it can then read and change your files)")
    parser.add_argument("--course", type=Path, default=ROOT, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for option, path in (("--csv", args.csv), ("--json", args.json)):  # found out now, not after grading
        if path is not None and (path.is_dir() or not os.access(path.parent, os.W_OK)):
            parser.error(f"{option}: cannot write {path} (is its folder there, and yours to write in?)")
    say = progress or (lambda line: print(line, file=sys.stderr, flush=True))
    limits = Limits(timeout=args.timeout, memory_gib=args.memory, disk_mib=args.disk, processes=args.processes)
    try:
        mode = sandbox.probe(no_sandbox=args.no_sandbox)
    except sandbox.Unavailable as e:
        print(f"python -m lenet.grade: refusing to grade: {e}", file=sys.stderr)
        return 2
    paths, rows = notebooks_in(args.paths)
    submissions: dict[str, bytes] = {}
    for path in paths:  # read every file before any of them runs: nothing graded later can change them
        data = read_submission(path)
        if isinstance(data, Row):
            rows.append(data)
        else:
            submissions[str(path)] = data
    jobs = min(int(args.jobs), max(1, len(submissions)))
    deadline = args.deadline or (math.ceil(len(submissions) / jobs) * (limits.timeout + WORKER_SLACK) + 60)
    graded: dict[str, list[Row]] = {}
    interrupted, failed = 0, False
    _asked_to_stop.clear()
    previous = signal.signal(signal.SIGTERM, _interrupt)  # `kill` ends the run as Ctrl-C does
    previous_sigint = signal.signal(signal.SIGINT, _interrupt)
    start = time.monotonic()
    room = None
    try:
        if submissions:
            room = Room(mode, limits, args.course.resolve(), jobs)
            for name, result, seconds in room.grade(submissions, start + deadline):
                graded[name] = result
                passed = sum(r.status == PASSED for r in result if r.exercise)
                total = sum(1 for r in result if r.exercise)
                problem = next((f", {r.status}" for r in result if not r.exercise), "")
                say(f"[{len(graded)}/{len(submissions)}] {printable(name)}: {passed}/{total} passed{problem} in "
                    f"{seconds:.1f}s ({time.monotonic() - start:.0f}s)")
    except KeyboardInterrupt as e:
        interrupted = 143 if isinstance(e, _Terminated) else 130
        say(f"interrupted: {len(graded)} of {len(submissions)} notebooks graded; the others are left out")
    except Exception as e:  # noqa: BLE001 - the run still ends with what was graded
        failed = True
        say(f"the grader failed: {type(e).__name__}: {one_line(e, 300)}; {len(graded)} of {len(submissions)} "
            "notebooks graded")
    finally:  # from here on the run ends with its table and files, whatever the keyboard says
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if room is not None:
            room.close()
        signal.signal(signal.SIGTERM, previous)
    try:
        return _finish(args, mode, limits, rows, submissions, graded, interrupted, failed)
    finally:
        signal.signal(signal.SIGINT, previous_sigint)


def _finish(args: argparse.Namespace, mode: sandbox.Mode, limits: Limits, rows: list[Row],
            submissions: dict[str, bytes], graded: dict[str, list[Row]], interrupted: int, failed: bool) -> int:
    """Print the table, write the files, return the exit status."""
    for name in submissions:
        if name in graded:
            rows.extend(graded[name])
        elif not interrupted:
            rows.append(Row(name, "", NOT_GRADED, "the grader failed before grading it", lesson=_stem_in(name)))
    order = {name: i for i, name in enumerate([*submissions, *(r.notebook for r in rows)])}
    rows.sort(key=lambda r: (order[r.notebook], r.position))
    print(format_table(rows, sandbox.describe(mode, limits)))
    roots = [str(p) for p in map(Path, args.paths) if p.is_dir()]
    try:
        labels = {stem: [ex.label for ex in lesson.exercises]
                  for stem, lesson in lessons(args.course.resolve()).items()}
    except Exception:  # noqa: BLE001 - the files are written anyway, with fewer records
        labels = {}
    _write_files(rows, args.csv, args.json, roots, labels)
    if interrupted:
        return interrupted
    if failed or any(r.status in (GRADER_ERROR, NOT_GRADED) for r in rows):
        return 2
    return 0 if rows and all(r.status == PASSED for r in rows) else 1
