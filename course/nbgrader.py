"""Write nbgrader's source notebooks from solutions/, for a teacher who grades with nbgrader 0.9.

    python -m course.nbgrader COURSE_DIR [--assignment NAME] [--force] [LESSON ...]

writes ``COURSE_DIR/source/NAME/NN_topic.ipynb`` for each lesson (all by default; a lesson is named by
its number ``03``, its stem ``03_random_unstructured`` or its solution file), and a minimal
``COURSE_DIR/nbgrader_config.py`` when there is none. A source notebook is the solution notebook with
its wrong answers left out and the cell metadata of :func:`course.exercises.annotate`, so that
``nbgrader generate_assignment NAME`` (run in COURSE_DIR, from the course's venv) releases exactly the
notebooks of exercises/. nbgrader itself is not needed to write them. docs/teaching.md has the workflow.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from .exercises import ROOT, annotate
from .notebook import read, render

DEFAULT_ASSIGNMENT = "pruning"
CONFIG = '''\
# Written by `python -m course.nbgrader` for the course on pruning in PyTorch; edit it freely, it is
# never rewritten. Run nbgrader in this folder with the course's venv (its kernel imports torch and lenet).
c = get_config()  # noqa: F821 (nbgrader defines it)

# The name students' `nbgrader fetch_assignment` uses with the exchange (release_assignment, collect).
c.CourseDirectory.course_id = "pruning"

# nbgrader's default is 30 s per cell; a lesson that trains a model (07) needs more on a laptop CPU.
c.Execute.timeout = 300
'''


def pick(lessons: Sequence[str], root: Path = ROOT) -> list[Path]:
    """The solution notebooks named by ``lessons`` (all of them when empty); ValueError for an unknown one."""
    solutions = sorted((root / "solutions").glob("*.ipynb"))
    if not lessons:
        return solutions
    out = []
    for name in lessons:
        stem = Path(name).stem
        found = [p for p in solutions if p.stem == stem or p.stem.startswith(f"{stem}_")]
        if len(found) != 1:
            raise ValueError(f"no single lesson called {name!r}: choose among {', '.join(p.stem for p in solutions)}")
        out += [p for p in found if p not in out]
    return out


def main(argv: Sequence[str] | None = None, root: Path = ROOT) -> int:
    """Write the source notebooks (and a config) into the nbgrader course folder; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m course.nbgrader", description=__doc__.split("\n")[0])
    parser.add_argument("course_dir", type=Path, help="the nbgrader course folder (created if missing)")
    parser.add_argument("lessons", nargs="*", help="lessons to include (default: all), e.g. 01 03_random_unstructured")
    parser.add_argument("--assignment", default=DEFAULT_ASSIGNMENT,
                        help=f"the nbgrader assignment (a folder under source/; default: {DEFAULT_ASSIGNMENT})")
    parser.add_argument("--force", action="store_true", help="overwrite source notebooks that differ")
    args = parser.parse_args(argv)
    if not args.assignment.replace("_", "").replace("-", "").isalnum():
        parser.error(f"--assignment {args.assignment!r}: use letters, digits, '-' and '_' only")
    try:
        texts = {p.name: render(annotate(read(p), f"solutions/{p.name}")) for p in pick(args.lessons, root)}
    except ValueError as e:
        print(f"cannot write nbgrader sources: {e}", file=sys.stderr)
        return 2
    folder = args.course_dir / "source" / args.assignment
    clash = [n for n, text in texts.items() if (folder / n).is_file() and (folder / n).read_text(encoding="utf-8") != text]
    if clash and not args.force:
        print(f"{folder} already holds different {', '.join(clash)} (edited by hand?): "
              "pass --force to overwrite", file=sys.stderr)
        return 1
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in texts.items():
        with open(folder / name, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        print(f"wrote {folder / name}")
    config = args.course_dir / "nbgrader_config.py"
    if not config.exists():
        config.write_text(CONFIG, encoding="utf-8")
        print(f"wrote {config}")
    print(f"next, in {args.course_dir}: nbgrader generate_assignment {args.assignment}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
