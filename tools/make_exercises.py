#!/usr/bin/env python3
"""Write exercises/ from solutions/, the single source (`make exercises`). Never edit exercises/ by hand.

    python tools/make_exercises.py            # solutions/*.ipynb -> exercises/*.ipynb; removes orphans
    python tools/make_exercises.py --check    # exit 1, naming the files, when exercises/ is not what it writes
    python tools/make_exercises.py build SRC.py solutions/NN_topic.ipynb
        # a percent script -> an executed solution notebook (like `tools/nb.py build`), then exercises/.
        # A `# %% [wrong]` cell placed right after a solution cell is not a cell of the notebook: its code
        # is a plausible wrong answer for that cell's solution block, stored in the cell's
        # metadata["course"]["wrong"] (the tests check that each one fails with a hint).

What the generator does to each solution notebook (the conventions are in lenet/grade.py):
- each ``### BEGIN SOLUTION`` ... ``### END SOLUTION`` block of a code cell becomes ``# YOUR CODE HERE``
  and ``raise NotImplementedError()`` at the indentation of the BEGIN line; the code around the block
  stays (a ``def f(...):`` line, a given import). In a markdown cell the block becomes ``YOUR ANSWER HERE``;
- outputs and execution counts are cleared; ``course.wrong`` is removed;
- cells are tagged ``metadata["course"] = {"exercise": N, "role": "heading" | "solution" | "check"}`` and the
  notebook gets ``metadata["course"]["exercises"]`` (number, title, check cell source) for the grader;
- cell ids stay those of the solution notebook (``c00``, ``c01``, ...), so every run writes the same bytes.
A malformed solution notebook (a block without its END, an exercise without a check cell, ...) is
refused with the reason.
"""
from __future__ import annotations

import copy
import importlib.util
import re
import sys
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import nbformat
from nbformat import NotebookNode

from lenet.grade import BEGIN, END, find_exercises

ROOT = Path(__file__).resolve().parents[1]
CODE_STUB = ("# YOUR CODE HERE", "raise NotImplementedError()")
MARKDOWN_STUB = ("YOUR ANSWER HERE",)
WRONG_CELL = re.compile(r"^# %% \[wrong\][^\n]*$", re.MULTILINE)
WRONG_MARKER = "#<wrong answer>#"


def replace_blocks(source: str, replacement: str | Sequence[str]) -> str:
    """Replace every BEGIN/END SOLUTION block of ``source`` (markers included) by ``replacement``.

    ``replacement`` (lines, or a text that is dedented first) is indented like the BEGIN line, so a
    block inside a ``def`` stays inside it. Raises ValueError for an END without BEGIN, a BEGIN inside
    a block, or a block that never ends.
    """
    lines = textwrap.dedent(replacement).splitlines() if isinstance(replacement, str) else list(replacement)
    out: list[str] = []
    indent: str | None = None
    for number, line in enumerate(source.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith(BEGIN):
            if indent is not None:
                raise ValueError(f"line {number}: '{BEGIN}' inside a solution block (missing '{END}' above?)")
            indent = line[: len(line) - len(line.lstrip())]
            out.extend(indent + r if r.strip() else "" for r in lines)
        elif stripped.startswith(END):
            if indent is None:
                raise ValueError(f"line {number}: '{END}' without a '{BEGIN}' above it")
            indent = None
        elif indent is None:
            out.append(line)
    if indent is not None:
        raise ValueError(f"'{BEGIN}' without a matching '{END}'")
    return "\n".join(out)


def _problems(nb: NotebookNode) -> list[str]:
    """Everything that keeps ``nb`` from being a well-formed solution notebook."""
    _, problems = find_exercises(nb)
    for i, cell in enumerate(nb.cells):
        source = cell.get("source", "")
        try:
            replace_blocks(source, ())
        except ValueError as e:
            problems.append(f"cell {i + 1}: {e}")
            continue
        wrong = cell.get("metadata", {}).get("course", {}).get("wrong")
        if wrong is not None:
            if not isinstance(wrong, list) or not all(isinstance(w, str) and w.strip() for w in wrong):
                problems.append(f"cell {i + 1}: metadata course.wrong must be a list of code strings")
            elif cell.get("cell_type") != "code" or source.count(BEGIN) != 1:
                problems.append(f"cell {i + 1}: course.wrong belongs on a code cell with exactly one solution block")
    return problems


def build_exercise(nb: NotebookNode, source: str = "") -> NotebookNode:
    """The exercise notebook made from the solution notebook ``nb`` (which is left unchanged).

    ``source`` names the solution notebook in the metadata (e.g. ``"solutions/01_load_lenet.ipynb"``).
    Raises ValueError listing the problems of a malformed solution notebook.
    """
    nb = copy.deepcopy(nb)
    nb.metadata.pop("course", None)
    problems = _problems(nb)
    if problems:
        raise ValueError("; ".join(problems))
    exercises, _ = find_exercises(nb)
    tags: dict[int, dict[str, object]] = {}
    for ex in exercises:
        assert ex.heading is not None and ex.check is not None
        tags[ex.heading] = {"exercise": ex.key, "role": "heading"}
        tags.update({i: {"exercise": ex.key, "role": "solution"} for i in ex.solutions})
        tags[ex.check] = {"exercise": ex.key, "role": "check"}
    for i, cell in enumerate(nb.cells):
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
    nb.nbformat_minor = max(nb.get("nbformat_minor", 5), 5)  # cell ids need 4.5
    nb.metadata["course"] = {
        "source": source,
        "generated_by": "tools/make_exercises.py: edit the solution notebook, then run `make exercises`",
        "exercises": [{"exercise": ex.key, "title": ex.title, "check": nb.cells[ex.check].source}
                      for ex in exercises if ex.check is not None],
    }
    return nb


def render(nb: NotebookNode) -> str:
    """The exact text ``nbformat.write`` puts in the file."""
    text = nbformat.writes(nb)
    return text if text.endswith("\n") else text + "\n"


def _read(path: Path) -> NotebookNode:
    with open(path, encoding="utf-8") as f:
        return nbformat.read(f, as_version=4)


def expected_exercises(root: Path = ROOT) -> dict[Path, str]:
    """``{exercises/NAME.ipynb: text}`` for every ``solutions/NAME.ipynb`` under ``root``."""
    out: dict[Path, str] = {}
    for path in sorted((root / "solutions").glob("*.ipynb")):
        try:
            out[root / "exercises" / path.name] = render(build_exercise(_read(path), f"solutions/{path.name}"))
        except ValueError as e:
            raise ValueError(f"solutions/{path.name}: {e}") from None
    return out


def main(check: bool = False, root: Path = ROOT) -> int:
    """Write (or with ``check``, only compare) exercises/ under ``root``; return the exit status."""
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
            print(f"stale: exercises/{p.name} is not what tools/make_exercises.py writes from solutions/{p.name}")
        for p in orphans:
            print(f"orphan: exercises/{p.name} has no solutions/{p.name}")
        if stale or orphans:
            print("run `make exercises` to rewrite exercises/ from solutions/", file=sys.stderr)
            return 1
        print(f"exercises/ is up to date ({len(expected)} notebooks)")
        return 0
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


def _nb_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("course_nb_tool", Path(__file__).with_name("nb.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parse_solution_script(text: str) -> NotebookNode:
    """A percent script -> notebook, with each ``# %% [wrong]`` cell moved into the solution cell above it."""
    tool = _nb_tool()
    nb = tool.parse_percent(WRONG_CELL.sub(f"# %%\n{WRONG_MARKER}", text))
    cells: list[NotebookNode] = []
    for cell in nb.cells:
        if cell.cell_type == "code" and cell.source.startswith(WRONG_MARKER):
            target = cells[-1] if cells else None
            if target is None or target.cell_type != "code" or BEGIN not in target.source:
                raise ValueError("a `# %% [wrong]` cell must follow a solution cell (or another [wrong] cell)")
            body = cell.source[len(WRONG_MARKER):].strip("\n")
            target.metadata.setdefault("course", {}).setdefault("wrong", []).append(body)
        else:
            cells.append(cell)
    nb.cells = cells
    return nb


def build_solution(src: Path, out: Path) -> None:
    """Build and execute the solution notebook ``out`` from the percent script ``src``."""
    start = time.time()
    nb = parse_solution_script(src.read_text(encoding="utf-8"))
    problems = _problems(nb)
    if problems:
        raise SystemExit(f"{src}: " + "; ".join(problems))
    _nb_tool().execute(nb, out.resolve().parent)
    nbformat.write(nb, out)
    print(f"{out}: {len(nb.cells)} cells, executed in {time.time() - start:.1f}s")


if __name__ == "__main__":
    argv = sys.argv[1:]
    if argv[:1] == ["build"] and len(argv) == 3:
        build_solution(Path(argv[1]), Path(argv[2]))
        sys.exit(main())
    if argv in ([], ["--check"]):
        sys.exit(main(check=bool(argv)))
    sys.exit(__doc__)
