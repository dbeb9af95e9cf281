"""Write exercises/ from solutions/, the single source (`make exercises`). Never edit exercises/ by hand.

    python -m course.exercises            # solutions/*.ipynb -> exercises/*.ipynb; removes orphans
    python -m course.exercises --check    # exit 1, naming the files, when exercises/ is not what it writes

What happens to each solution notebook (the format is in :mod:`course.notebook`):

- every solution block becomes ``# YOUR CODE HERE`` / ``raise NotImplementedError()`` at the
  indentation of its BEGIN line (``YOUR ANSWER HERE`` in a markdown cell); the code around it stays;
- wrong-answer cells are left out; outputs and execution counts are cleared;
- cells are tagged ``metadata["course"] = {"exercise": N, "role": "heading" | "solution" | "check"}``
  and the notebook records its source and its exercises (number, title, check cell source);
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

from .notebook import CODE_STUB, MARKDOWN_STUB, find_exercises, is_wrong_answer, read, render, replace_blocks

#: The course's top folder (the one holding notebooks/, exercises/ and solutions/).
ROOT = Path(__file__).resolve().parents[1]


def build_exercise(solution: NotebookNode, source: str = "") -> NotebookNode:
    """The exercise notebook made from the solution notebook ``solution`` (which is left unchanged).

    ``source`` names the solution notebook in the metadata (e.g. ``"solutions/01_load_lenet.ipynb"``).
    Raises ValueError listing the problems of a malformed solution notebook.
    """
    nb = copy.deepcopy(solution)
    nb.metadata.pop("course", None)
    exercises, problems = find_exercises(nb)
    if problems:
        raise ValueError("; ".join(problems))
    tags: dict[int, dict[str, object]] = {}
    for ex in exercises:
        tags[ex.heading] = {"exercise": ex.key, "role": "heading"}
        tags.update({i: {"exercise": ex.key, "role": "solution"} for i in ex.solutions})
        tags[ex.check] = {"exercise": ex.key, "role": "check"}
    cells = []
    for i, cell in enumerate(nb.cells):
        if is_wrong_answer(cell):
            continue
        cell.metadata.pop("course", None)
        if i in tags:
            cell.metadata["course"] = tags[i]
        if not cell.get("id"):
            cell["id"] = f"c{i:02d}"
        if cell.cell_type == "code":
            cell.source = replace_blocks(cell.source, CODE_STUB)
            cell.outputs, cell.execution_count = [], None
        elif cell.cell_type == "markdown":
            cell.source = replace_blocks(cell.source, MARKDOWN_STUB)
        cells.append(cell)
    nb.cells = cells
    nb.nbformat_minor = max(nb.get("nbformat_minor", 5), 5)  # cell ids need 4.5
    nb.metadata["course"] = {
        "source": source,
        "generated_by": "python -m course.exercises: edit the solution notebook, then run `make exercises`",
        "exercises": [{"exercise": ex.key, "title": ex.title, "check": ex.check_source} for ex in exercises],
    }
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
