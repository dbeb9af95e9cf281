"""Write exercises/ from solutions/, the single source (`make exercises`). Never edit exercises/ by hand.

    python -m course.exercises            # solutions/*.ipynb -> exercises/*.ipynb; removes orphans
    python -m course.exercises --check    # exit 1, naming the files, when exercises/ is not what it writes

What happens to each solution notebook (the format is in :mod:`course.notebook`):

- every solution block becomes ``# YOUR CODE HERE`` / ``raise NotImplementedError()`` at the
  indentation of its BEGIN line (``YOUR ANSWER HERE`` in a markdown cell); the code around it stays;
- wrong-answer cells are left out; outputs and execution counts are cleared;
- cells are tagged ``metadata["course"] = {"exercise": N, "role": "heading" | "solution" | "check"}``
  and the notebook records its source and its exercises (number, title, check cell source);
- every cell also carries nbgrader's cell metadata (schema 3, :func:`nbgrader_metadata`), so that
  nbgrader 0.9 releases exactly this notebook from the source ``python -m course.nbgrader`` writes;
- cell ids stay those of the solution notebook, so every run writes the same bytes.

A malformed solution notebook is refused with the reasons.
"""
from __future__ import annotations

import argparse
import copy
import sys
from collections.abc import Sequence
from pathlib import Path

from nbformat import NotebookNode

from .notebook import (CODE_STUB, MARKDOWN_STUB, POINTS, find_exercises, is_wrong_answer, read, render,
                       replace_blocks)

#: The course's top folder (the one holding notebooks/, exercises/ and solutions/).
ROOT = Path(__file__).resolve().parents[1]


def nbgrader_metadata(cell: NotebookNode, tag: dict[str, object] | None, number: int, prefix: str) -> dict[str, object]:
    """nbgrader's metadata (schema 3, nbgrader 0.9.x) of one cell of an exercise notebook.

    Args:
        tag: the cell's ``metadata["course"]`` (None for a cell outside the exercises).
        number: which answer cell of its exercise this is (1, 2, ...), for an answer cell.
        prefix: starts every ``grade_id`` (``"01_load_lenet-"``); ids are unique in the notebook.

    An answer cell is an nbgrader solution cell (``<prefix>exN-answer``, then ``-answer-2``, ...); a
    written answer is also a grade cell worth 0 points, as nbgrader requires of markdown answers. A check
    cell is a locked grade cell worth :data:`POINTS` (``<prefix>exN-check``). Every other cell is
    read-only (``<prefix>cell-<cell id>``): nbgrader's autograde restores it, as ``lenet.grade`` does.
    """
    meta: dict[str, object] = {"schema_version": 3, "grade": False, "solution": False, "locked": True}
    role = tag["role"] if tag else None
    if role == "solution":
        suffix = "" if number == 1 else f"-{number}"
        meta.update(solution=True, locked=False, grade_id=f"{prefix}ex{tag['exercise']}-answer{suffix}")
        if cell.cell_type == "markdown":
            meta.update(grade=True, points=0)
    elif role == "check":
        meta.update(grade=True, points=POINTS, grade_id=f"{prefix}ex{tag['exercise']}-check")
    else:
        meta["grade_id"] = f"{prefix}cell-{cell.id}"
    return meta


def annotate(solution: NotebookNode, source: str = "") -> NotebookNode:
    """The solution notebook ``solution`` (left unchanged) as the course and nbgrader read it.

    Wrong-answer cells are left out; every cell gets its ``course`` tag and nbgrader metadata and an id;
    the notebook records its source (e.g. ``"solutions/01_load_lenet.ipynb"``, whose stem prefixes the
    grade ids) and its exercises. Solution blocks and outputs stay: this is nbgrader's source notebook,
    and :func:`build_exercise` clears it. Raises ValueError listing the problems of a malformed notebook.
    """
    nb = copy.deepcopy(solution)
    nb.metadata.pop("course", None)
    exercises, problems = find_exercises(nb)
    if problems:
        raise ValueError("; ".join(problems))
    tags: dict[int, dict[str, object]] = {}
    answers: dict[int, int] = {}  # cell index -> its number among the answer cells of its exercise
    for ex in exercises:
        tags[ex.heading] = {"exercise": ex.key, "role": "heading"}
        tags.update({i: {"exercise": ex.key, "role": "solution"} for i in ex.solutions})
        answers.update({i: k for k, i in enumerate(ex.solutions, 1)})
        tags[ex.check] = {"exercise": ex.key, "role": "check"}
    prefix = f"{Path(source).stem}-" if source else ""
    cells = []
    for i, cell in enumerate(nb.cells):
        if is_wrong_answer(cell):
            continue
        cell.metadata.pop("course", None)
        if i in tags:
            cell.metadata["course"] = tags[i]
        if not cell.get("id"):
            cell["id"] = f"c{i:02d}"
        cell.metadata["nbgrader"] = nbgrader_metadata(cell, tags.get(i), answers.get(i, 0), prefix)
        cells.append(cell)
    nb.cells = cells
    nb.nbformat_minor = max(nb.get("nbformat_minor", 5), 5)  # cell ids need 4.5
    nb.metadata["course"] = {
        "source": source,
        "generated_by": "python -m course.exercises: edit the solution notebook, then run `make exercises`",
        "exercises": [{"exercise": ex.key, "title": ex.title, "check": ex.check_source} for ex in exercises],
    }
    return nb


def build_exercise(solution: NotebookNode, source: str = "") -> NotebookNode:
    """The exercise notebook made from the solution notebook ``solution`` (which is left unchanged).

    ``source`` names the solution notebook in the metadata (e.g. ``"solutions/01_load_lenet.ipynb"``).
    It is :func:`annotate`'s notebook with every solution block replaced by its stub and outputs cleared,
    what nbgrader's ``generate_assignment`` makes of it. Raises ValueError for a malformed notebook.
    """
    nb = annotate(solution, source)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.source = replace_blocks(cell.source, CODE_STUB)
            cell.outputs, cell.execution_count = [], None
        elif cell.cell_type == "markdown":
            cell.source = replace_blocks(cell.source, MARKDOWN_STUB)
    return nb


def expected_exercises(root: Path = ROOT) -> dict[Path, str]:
    """``{exercises/NAME.ipynb: text}`` for every ``solutions/NAME.ipynb`` under ``root``."""
    out: dict[Path, str] = {}
    for path in sorted((root / "solutions").glob("*.ipynb")):
        try:
            out[root / "exercises" / path.name] = render(build_exercise(read(path), f"solutions/{path.name}"))
        except ValueError as e:
            raise ValueError(f"solutions/{path.name}: {e}") from None
    return out


def main(argv: Sequence[str] | None = None, root: Path = ROOT) -> int:
    """Write (or with ``--check``, only compare) exercises/ under ``root``; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m course.exercises", description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="only say whether exercises/ is up to date")
    check = parser.parse_args(argv).check
    try:
        expected = expected_exercises(root)
    except ValueError as e:
        print(f"cannot make exercises: {e}", file=sys.stderr)
        return 2
    out_dir = root / "exercises"
    stale = [p for p, text in expected.items() if not p.is_file() or p.read_text(encoding="utf-8") != text]
    orphans = sorted(set(out_dir.glob("*.ipynb")) - set(expected))
    if check:
        for p in stale:
            print(f"stale: exercises/{p.name} is not what `make exercises` writes from solutions/{p.name}")
        for p in orphans:
            print(f"orphan: exercises/{p.name} has no solutions/{p.name}")
        if stale or orphans:
            print("run `make exercises` to rewrite exercises/ from solutions/", file=sys.stderr)
            return 1
    else:
        out_dir.mkdir(exist_ok=True)
        for p in stale:
            with open(p, "w", encoding="utf-8", newline="\n") as f:
                f.write(expected[p])
            print(f"wrote exercises/{p.name}")
        for p in orphans:
            p.unlink()
            print(f"removed exercises/{p.name} (there is no solutions/{p.name})")
    if not stale and not orphans:
        print(f"exercises/ is up to date ({len(expected)} notebooks)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
