"""Grade exercise notebooks against the course's own exercises: one row per learner × exercise.

    python -m lenet.grade submissions/ [--jobs N] [--timeout 120] [--csv marks.csv] [--json marks.json]

How one submission is graded (each alone, and never trusting what it says about itself):

1. Its lesson is recognised from the file name (``03_random_unstructured.ipynb``, also
   ``alice-03_random_unstructured (1).ipynb``) or else from the source recorded in it. The exercise
   list, headings and check cells come from the course's own solution notebook, not from the file.
2. The notebook that runs is the course's exercise notebook with the learner's answer cells (found
   by cell id) and the cells the learner added. Every other cell, check cells included, is the
   course's. An exercise whose answer cell is gone is ``missing``.
3. It runs in a fresh kernel in an empty private folder, with limits on memory, CPU time, processes
   and file size, without network where ``unshare -n`` is permitted (root on Linux); every process it
   started is ended afterwards. The submitted file is only read.
4. Each check is judged in the grader's own process, never in the learner's. The grader draws the check's
   cases from a secret seed, the learner's kernel only runs the learner's code on them and hands back plain data
   (:mod:`course.collect`, compiled afresh from its file; read with ``weights_only=True``), and the check's
   ``judge`` compares that data with reference answers that never enter the kernel (lenet/checks/core.py).
"""
from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import copy
import csv
import json
import multiprocessing
import os
import ast
import importlib
import re
import resource
import secrets
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

import nbformat
import torch
from nbclient import NotebookClient
from nbformat import NotebookNode

from lenet.checks import plain
from lenet.checks.core import Check, CheckFailed, CollectedError, Tampered

from . import execute
from .exercises import ROOT, build_exercise
from .notebook import POINTS, Exercise, first_line, one_line, read

PASSED, FAILED, NOT_ATTEMPTED, ERROR = "passed", "failed", "not attempted", "error"
MISSING, NOT_RUN, UNKNOWN = "missing", "not run", "unknown notebook"
NOT_A_NOTEBOOK, TIMED_OUT, KERNEL_DIED = "not a notebook", execute.TIMED_OUT, execute.KERNEL_DIED
CHECK_ERRORS = {"CheckFailed": FAILED, "NotAttempted": NOT_ATTEMPTED}
#: The role of a course cell inside an exercise that is not the learner's (a demonstration): an error
#: there is a consequence of the answer, so the row reports the check's verdict instead.
GIVEN = "given"

#: Defaults: seconds for all cells of one notebook together, and the kernel's memory in GiB.
DEFAULT_TIMEOUT, DEFAULT_MEMORY_GIB = 120, 4.0
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


@dataclass
class Limits:
    """What one submission's kernel may use."""

    timeout: float = DEFAULT_TIMEOUT  # seconds of wall time for all cells together
    memory_gib: float = DEFAULT_MEMORY_GIB  # address space of the kernel
    file_mib: int = 256  # largest file it may write
    processes: int = 64  # processes it may start (beyond those of the grading user now)

    def apply(self) -> None:  # runs in the kernel's process, before the kernel starts
        cpu = int(self.timeout * 2 + 30)
        memory = int(self.memory_gib * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
        resource.setrlimit(resource.RLIMIT_FSIZE, (self.file_mib * 2**20, self.file_mib * 2**20))
        now = sum(1 for p in Path("/proc").iterdir() if p.name.isdigit()) if Path("/proc").is_dir() else 0
        resource.setrlimit(resource.RLIMIT_NPROC, (now + self.processes, now + self.processes))


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
    mine = {cell.get("id"): cell for cell in submission.cells if cell.get("id") in trusted_ids}
    added: dict[int | None, list[NotebookNode]] = {}  # learner cells, attached to the next course cell
    pending: list[NotebookNode] = []
    for cell in submission.cells:
        if cell.get("id") in trusted_ids:
            added[trusted_ids[cell["id"]]] = pending
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
        expression = (f"(lambda g: (exec(compile({code!r}, '<course grader>', 'exec'), g), g['verdict'])[-1])"
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
              notes: dict[object, str] | None = None, room: str = "", *, checks: str = CHECKS_MODULE,
              root: Path = ROOT) -> list[Row]:
    """Execute ``nb`` (kernel in an empty private folder) and return one row per exercise, in notebook order.

    Check cells are never run as the learner's cells: :func:`_verify` collects in the kernel and judges here,
    with the checks of module ``checks`` of the course at ``root``. An exercise without solution cells is
    ``missing`` and its check is not run.
    """
    limits = limits or Limits()
    notes = notes or {}
    module = checks_module(checks, root)
    to_check = {ex.check: (ex, check_of(ex.check_source or "", module)) for ex in exercises
                if ex.check is not None and ex.solutions}
    verdicts: dict[int, tuple[str, str] | None] = {}
    token, seed = uuid.uuid4().hex, secrets.randbits(62)  # the seed of the unseen cases: never in the kernel

    with tempfile.TemporaryDirectory(prefix="course-grade-") as folder:
        def before_cell(client: NotebookClient, index: int) -> bool:
            if index not in to_check:
                return True
            ex, check = to_check[index]
            verdicts[index] = _verify(client, nb, index, ex.check_source or "", checks, check, Path(folder),
                                      seed + index)
            return False

        env = execute.kernel_env(1, {"COURSE_GRADE_TOKEN": token, "COURSE_GRADE_ROOM": room,
                                     "PYTHONPATH": str(root), "MPLBACKEND": "Agg", "HOME": folder})
        run = execute.run(nb, Path(folder), timeout=limits.timeout, env=env, before_cell=before_cell,
                          kernel_kwargs={"preexec_fn": limits.apply}, offline=True)
    end_processes("COURSE_GRADE_TOKEN", token)
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
        rows.append(Row(name, "", run.stop_status, run.stop_detail, stop))
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
    return row(ERROR, f"{ename}: {one_line(evalue)} (in the check of exercise {ex.key})")


def end_processes(variable: str, token: str) -> None:
    """Kill every process whose environment has ``variable=token``: a kernel and all it started."""
    needle = f"{variable}={token}".encode()
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if needle in (proc / "environ").read_bytes().split(b"\0"):
                os.kill(int(proc.name), signal.SIGKILL)
        except (OSError, ValueError):
            continue


def grade_submission(name: str, data: bytes, limits: Limits | None = None, root: Path = ROOT,
                     room: str = "") -> list[Row]:
    """The rows of one submitted file (its bytes, read before any submission ran), never raising."""
    try:
        try:
            nb = nbformat.reads(data.decode("utf-8"), as_version=4, capture_validation_error={})
            if not isinstance(nb.get("cells"), list) or not all(isinstance(c, dict) for c in nb.cells):
                raise ValueError("no list of cells")
        except Exception as e:
            return [Row(name, "", NOT_A_NOTEBOOK, f"cannot read it as a Jupyter notebook: {type(e).__name__}: "
                        f"{one_line(e, 200)}")]
        known = lessons(root)
        lesson = lesson_of(name, nb, known)
        if lesson is None:
            return [Row(name, "", UNKNOWN, "not one of the course's exercise notebooks (name it like "
                        f"exercises/NN_topic.ipynb; known: {', '.join(known)})")]
        to_run, exercises, notes = assemble(lesson, nb)
        return grade_run(to_run, exercises, name, limits, notes, room, checks=lesson.checks, root=root)
    except Exception as e:  # never crash on one notebook: report and go on with the next
        return [Row(name, "", ERROR, f"the grader failed on this notebook: {type(e).__name__}: {one_line(e, 300)}")]


# ------------------------------------------------------------------------------------- the room

def notebooks_in(paths: Sequence[str | Path]) -> tuple[list[Path], list[Row]]:
    """The notebooks named by ``paths`` (folders searched recursively), and rows for paths that hold none."""
    found: list[Path] = []
    rows: list[Row] = []
    for p in map(Path, paths):
        if p.is_dir():
            inside = sorted(q for q in p.rglob("*.ipynb") if ".ipynb_checkpoints" not in q.parts)
            found.extend(inside)
            if not inside:
                rows.append(Row(str(p), "", ERROR, "no notebooks (*.ipynb) in this folder"))
        elif p.exists():
            found.append(p)
        else:
            rows.append(Row(str(p), "", ERROR, "no such file or folder"))
    return found, rows


def format_table(rows: Sequence[Row]) -> str:
    """The rows as an aligned text table, then a line per learner (points) and a summary line."""
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
    notebooks = list(dict.fromkeys(r.notebook for r in rows))
    if len(notebooks) > 1:
        lines.append("")
        for nb in notebooks:
            mine = [r for r in exercise_rows if r.notebook == nb]
            passed = sum(r.status == PASSED for r in mine)
            lines.append(f"{nb:{w_nb}}  {passed}/{len(mine)} passed, {passed * POINTS} point{'s' * (passed * POINTS != 1)}")
    summary = (f"{len(exercise_rows)} exercise{'s' * (len(exercise_rows) != 1)} in {len(notebooks)} "
               f"notebook{'s' * (len(notebooks) != 1)}: " + (", ".join(f"{n} {s}" for s, n in counts.items()) or "none"))
    if problems:
        summary += f"; {problems} notebook problem{'s' * (problems != 1)}"
    return "\n".join(lines + ["", summary])


def _write_files(rows: Sequence[Row], csv_path: Path | None, json_path: Path | None) -> None:
    records = [{**asdict(r), "points": POINTS if r.status == PASSED else 0} for r in rows]
    for record in records:
        del record["position"]
    if csv_path:
        with open(csv_path, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=["notebook", "exercise", "status", "detail", "points"])
            writer.writeheader()
            writer.writerows(records)
    if json_path:
        json_path.write_text(json.dumps(records, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


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
                        help=f"GiB of memory for each notebook's kernel (default {DEFAULT_MEMORY_GIB:g})")
    parser.add_argument("--csv", type=Path, help="also write one row per learner × exercise to this CSV file")
    parser.add_argument("--json", type=Path, help="the same rows as a JSON list")
    parser.add_argument("--course", type=Path, default=ROOT, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    say = progress or (lambda line: print(line, file=sys.stderr, flush=True))
    paths, rows = notebooks_in(args.paths)
    limits = Limits(timeout=args.timeout, memory_gib=args.memory)
    submissions = {}
    for path in paths:  # read every file before any of them runs: nothing graded later can change them
        try:
            submissions[str(path)] = path.read_bytes()
        except OSError as e:
            rows.append(Row(str(path), "", ERROR, f"cannot read it: {e.strerror}"))
    graded: dict[str, list[Row]] = {}
    interrupted, room = False, uuid.uuid4().hex
    start = time.monotonic()
    pool = concurrent.futures.ProcessPoolExecutor(max_workers=min(int(args.jobs), max(1, len(submissions))),
                                                  mp_context=multiprocessing.get_context("spawn"),
                                                  initializer=signal.signal, initargs=(signal.SIGINT, signal.SIG_IGN))
    try:
        futures = {pool.submit(grade_submission, name, data, limits, args.course.resolve(), room): name
                   for name, data in submissions.items()}
        for n, future in enumerate(concurrent.futures.as_completed(futures), 1):
            name = futures[future]
            graded[name] = future.result()
            passed = sum(r.status == PASSED for r in graded[name] if r.exercise)
            total = sum(1 for r in graded[name] if r.exercise)
            say(f"[{n}/{len(futures)}] {name}: {passed}/{total} passed ({time.monotonic() - start:.0f}s)")
    except KeyboardInterrupt:
        interrupted = True
        pool.shutdown(wait=False, cancel_futures=True)
        end_processes("COURSE_GRADE_ROOM", room)  # the kernels still running, and all they started
        say(f"interrupted: {len(graded)} of {len(submissions)} notebooks graded; the others are left out")
    finally:
        pool.shutdown(wait=not interrupted, cancel_futures=True)
    for name in submissions:
        rows.extend(graded.get(name, []))
    order = {name: i for i, name in enumerate([*submissions, *(r.notebook for r in rows)])}
    rows.sort(key=lambda r: (order[r.notebook], r.position))
    print(format_table(rows))
    _write_files(rows, args.csv, args.json)
    if interrupted:
        return 130
    return 0 if rows and all(r.status == PASSED for r in rows) else 1
