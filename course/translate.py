"""The Chinese edition in ``zh-CN/``, kept in step with the English course (docs/authoring.md, "Translate").

    python -m course.translate             # bring zh-CN/ in step; list the cells that need a translator
    python -m course.translate --check     # only report; exit 1 when zh-CN/ is not in step
    python -m course.translate --export zh-CN/notebooks/03_random_unstructured.ipynb > 03.md
    python -m course.translate --import 03.md

The English notebook is the one source of code. A Chinese notebook (``zh-CN/notebooks/NAME``,
``zh-CN/solutions/NAME``) has the English notebook's cells, in its order, by cell id: code and raw cells,
their outputs and every cell's metadata are copied byte for byte; only a markdown cell's text is Chinese.
A translated markdown cell records, in ``metadata["translation"]["en_sha256"]``, a hash of the English
text it translates, so a cell whose English changed since is listed as *stale* (an English cell with no
translation yet as *untranslated*). ``zh-CN/exercises/`` is written from ``zh-CN/solutions/`` exactly as
``exercises/`` is from ``solutions/`` (:mod:`course.exercises`), so both carry the same cell ids and grade.

Markdown pages (``zh-CN/START_HERE.md``, ``README.zh-CN.md``) record the hash of their English page in
their first line, ``<!-- translation of START_HERE.md, en_sha256: ... -->``.

``--export`` writes a notebook's cells to translate (all of them with ``--all``) as plain text, one block
per cell under a ``<!-- cell ID -->`` line; a translator replaces the English of each block, and
``--import`` puts the blocks back, recording the English each one translates.
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from nbformat import NotebookNode

from .exercises import ROOT, expected_exercises
from .notebook import find_exercises, read, render, write

#: The folder of the Chinese edition, under the course root.
ZH = "zh-CN"
#: The English folders whose notebooks are translated (exercises/ are written from solutions/).
FOLDERS = ("notebooks", "solutions")
#: English page -> its Chinese twin (paths from the course root).
PAGES = {"START_HERE.md": f"{ZH}/START_HERE.md", "README.md": "README.zh-CN.md"}
KEY = "translation"
PAGE_STAMP = re.compile(r"\A<!-- translation of (\S+), en_sha256: ([0-9a-f]+) -->\n")
BLOCK = re.compile(r"^<!-- cell (\S+)(?: \([^\n]*?(?:en_sha256: ([0-9a-f]+))?\))? -->\n", re.MULTILINE)
HEADER = re.compile(r"\A<!-- translate: (\S+) -->\n")


def digest(text: str) -> str:
    """The hash a translation records of the English text it translates (16 hex digits of sha256)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


@dataclass
class Report:
    """What is not in step in one Chinese notebook or page (paths from the course root)."""

    path: str
    differs: list[str] = field(default_factory=list)  # code, outputs, metadata, cells: the tool mends these
    untranslated: list[str] = field(default_factory=list)  # cell ids (or the page) with no translation
    stale: list[str] = field(default_factory=list)  # cell ids (or the page) whose English changed since

    def lines(self) -> list[str]:
        out = [f"{self.path}: {d}" for d in self.differs]
        if self.untranslated:
            out.append(f"{self.path}: untranslated: {', '.join(self.untranslated)}")
        if self.stale:
            out.append(f"{self.path}: stale (the English changed since): {', '.join(self.stale)}")
        return out


def status(en_source: str, zh_cell: NotebookNode | None) -> str:
    """``"ok"``, ``"stale"`` or ``"untranslated"``: a Chinese markdown cell against its English text."""
    recorded = zh_cell.get("metadata", {}).get(KEY, {}).get("en_sha256") if zh_cell is not None else None
    if recorded is None:
        return "untranslated"
    return "ok" if recorded == digest(en_source) else "stale"


def synced(en: NotebookNode, zh: NotebookNode | None) -> NotebookNode:
    """The Chinese notebook as it should be: ``en``'s cells, with the Chinese text of ``zh``'s markdown cells.

    A markdown cell keeps its Chinese text and its translation record only when ``zh`` has a markdown cell of
    the same id; every other cell (and the notebook's metadata) is a copy of the English one.
    """
    old = {c.get("id"): c for c in (zh.cells if zh is not None else [])}
    out = copy.deepcopy(en)
    for cell in out.cells:
        mine = old.get(cell.get("id"))
        if cell.cell_type == "markdown" and mine is not None and mine.cell_type == "markdown":
            cell.source = mine.source
            if KEY in mine.metadata:
                cell.metadata[KEY] = copy.deepcopy(mine.metadata[KEY])
    return out


def compare(en: NotebookNode, zh: NotebookNode | None, path: str) -> Report:
    """Everything that is not in step between ``en`` and its Chinese twin ``zh`` (None: missing)."""
    report = Report(path)
    if zh is None:
        report.differs.append("missing (run `python -m course.translate`)")
        return report
    en_ids = [c.get("id") for c in en.cells]
    zh_ids = [c.get("id") for c in zh.cells]
    if en_ids != zh_ids:
        missing = [i for i in en_ids if i not in zh_ids]
        extra = [i for i in zh_ids if i not in en_ids]
        report.differs.append(f"cells are not the English ones: missing {missing}, extra {extra}"
                              if missing or extra else "cells are in another order than the English ones")
    by_id = {c.get("id"): c for c in zh.cells}
    for cell in en.cells:
        mine = by_id.get(cell.get("id"))
        if mine is None:
            continue
        if mine.cell_type != cell.cell_type:
            report.differs.append(f"cell {cell.id} is a {mine.cell_type} cell, in English a {cell.cell_type} cell")
            continue
        if cell.cell_type == "markdown":
            meta = {k: v for k, v in mine.metadata.items() if k != KEY}
            if meta != cell.metadata:
                report.differs.append(f"cell {cell.id}: metadata differs from the English cell's")
            state = status(cell.source, mine)
            if state != "ok":
                getattr(report, state).append(cell.id)
        elif cell != mine:
            what = [k for k in ("source", "outputs", "metadata", "execution_count") if cell.get(k) != mine.get(k)]
            report.differs.append(f"cell {cell.id} ({cell.cell_type}): {', '.join(what)} differ from the English")
    if zh.metadata != en.metadata or (zh.nbformat, zh.nbformat_minor) != (en.nbformat, en.nbformat_minor):
        report.differs.append("notebook metadata differs from the English notebook's")
    return report


def _same_exercises(en: NotebookNode, zh: NotebookNode) -> list[str]:
    """Why the exercises found in a Chinese solution are not the English ones (headings, blocks, checks)."""
    mine, problems = find_exercises(zh)
    theirs, _ = find_exercises(en)
    if problems:
        return problems
    where = [(e.heading, e.solutions, e.check) for e in theirs]
    if [(e.heading, e.solutions, e.check) for e in mine] != where:
        return ["its exercises are not found where the English ones are: keep every `### 练习 N：…` heading "
                "(or `### Exercise N: …`) and every BEGIN/END SOLUTION line of a markdown answer"]
    return []


def page_report(en_path: str, zh_path: str, root: Path = ROOT) -> Report:
    """A Chinese markdown page against its English page."""
    report = Report(zh_path)
    zh_file = root / zh_path
    if not zh_file.is_file():
        report.untranslated.append("the whole page (missing)")
        return report
    stamp = PAGE_STAMP.match(zh_file.read_text(encoding="utf-8"))
    if stamp is None or stamp[1] != en_path:
        report.untranslated.append(f"the whole page (its first line must be `<!-- translation of {en_path}, "
                                   "en_sha256: ... -->`)")
    elif stamp[2] != digest((root / en_path).read_text(encoding="utf-8")):
        report.stale.append(f"the whole page ({en_path} changed since)")
    return report


def pairs(root: Path = ROOT) -> list[tuple[Path, Path]]:
    """(English notebook, Chinese notebook) for every notebook translated."""
    return [(p, root / ZH / folder / p.name) for folder in FOLDERS for p in sorted((root / folder).glob("*.ipynb"))]


def run(root: Path = ROOT, check: bool = False) -> list[Report]:
    """Bring ``zh-CN/`` in step (unless ``check``); every notebook's and page's report, in order."""
    reports = []
    for en_path, zh_path in pairs(root):
        en = read(en_path)
        zh = read(zh_path) if zh_path.is_file() else None
        rel = zh_path.relative_to(root).as_posix()
        if not check:
            zh = synced(en, zh)
            zh_path.parent.mkdir(parents=True, exist_ok=True)
            if not zh_path.is_file() or zh_path.read_text(encoding="utf-8") != render(zh):
                write(zh, zh_path)
        report = compare(en, zh, rel)
        if zh is not None and en_path.parent.name == "solutions":
            report.differs += _same_exercises(en, zh)
        reports.append(report)
    for folder in FOLDERS:  # a Chinese notebook whose English one was renamed or removed: left for a person
        for orphan in sorted((root / ZH / folder).glob("*.ipynb")):
            if not (root / folder / orphan.name).is_file():
                reports.append(Report(orphan.relative_to(root).as_posix(), differs=[
                    f"has no English notebook {folder}/{orphan.name} (renamed? move it; removed? delete it)"]))
    reports.append(_exercises_report(root, check))
    reports += [page_report(en, zh, root) for en, zh in PAGES.items()]
    return reports


def _exercises_report(root: Path, check: bool) -> Report:
    """zh-CN/exercises/ against what course.exercises writes from zh-CN/solutions/."""
    report = Report(f"{ZH}/exercises")
    try:
        expected = expected_exercises(root / ZH)
    except ValueError as e:
        report.differs.append(f"cannot be written: {e}")
        return report
    out = root / ZH / "exercises"
    for path in sorted(set(out.glob("*.ipynb")) - set(expected)):
        if check:
            report.differs.append(f"{path.name} has no solution")
        else:
            path.unlink()
    for path, text in expected.items():
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            if check:
                report.differs.append(f"{path.name} is not what zh-CN/solutions/{path.name} gives")
            else:
                out.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8", newline="\n")
    return report


def english_of(zh_path: Path, root: Path = ROOT) -> Path:
    """The English notebook a Chinese notebook translates."""
    rel = zh_path.resolve().relative_to((root / ZH).resolve())
    if rel.parts[0] not in FOLDERS:
        raise ValueError(f"{zh_path} is not in {ZH}/notebooks or {ZH}/solutions")
    return root / rel


def export(zh_path: Path, everything: bool = False, root: Path = ROOT) -> str:
    """The markdown cells of a Chinese notebook to translate, as text ``--import`` reads back."""
    en, zh = read(english_of(zh_path, root)), read(zh_path)
    by_id = {c.get("id"): c for c in zh.cells}
    rel = zh_path.resolve().relative_to(root.resolve()).as_posix()
    blocks = [f"<!-- translate: {rel} -->\n"]
    for cell in en.cells:
        if cell.cell_type != "markdown":
            continue
        state = status(cell.source, by_id.get(cell.id))
        if everything or state != "ok":
            blocks.append(f"<!-- cell {cell.id} ({state}, en_sha256: {digest(cell.source)}) -->\n{cell.source}\n")
    return "\n".join(blocks)


CODE_SPAN = re.compile(r"```.*?```|`[^`]+`", re.DOTALL)  # a span may run over a line end, as in Markdown
NUMBER = re.compile(r"(?<![\w.])\d+(?:[.:,]\d+)*")
LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)]*)?\)")


def lint(english: str, chinese: str, where: Path, root: Path = ROOT) -> list[str]:
    """What a translated cell or page seems to have lost: code, numbers, headings, answer blocks, links.

    ``where`` is the Chinese file, against which relative links are resolved. These are warnings for the
    translator (``--lint``, ``--import``): code and numbers stay as they are in a translation.
    """
    out = []
    spans = lambda text: sorted(s if s.startswith("```") else " ".join(s.split()) for s in CODE_SPAN.findall(text))
    if spans(english) != spans(chinese):
        lost = sorted(set(spans(english)) - set(spans(chinese)))
        out.append(f"code is not the English code{': lost ' + ', '.join(lost)[:200] if lost else ''}")
    plain_en, plain_zh = CODE_SPAN.sub("", english), CODE_SPAN.sub("", chinese)
    if set(NUMBER.findall(plain_en)) - set(NUMBER.findall(plain_zh)):
        out.append(f"numbers lost: {sorted(set(NUMBER.findall(plain_en)) - set(NUMBER.findall(plain_zh)))}")
    for what, pattern in (("headings", r"^(#+) "), ("answer blocks", r"^### (?:BEGIN|END) SOLUTION")):
        if re.findall(pattern, english, re.MULTILINE) != re.findall(pattern, chinese, re.MULTILINE):
            out.append(f"{what} differ from the English ones (their levels and lines stay as they are)")
    for target in LINK.findall(chinese):
        if "://" in target:
            continue
        file = (where.parent / target).resolve()
        if not file.exists():
            out.append(f"link to {target}: no such file")
        elif (root / ZH).resolve() not in file.parents and (
                file.parent.name in (*FOLDERS, "exercises") and file.suffix == ".ipynb" or file.name in PAGES):
            out.append(f"link to {target}: an English page (the Chinese one is in {ZH}/)")
    return out


def _blocks(text: str, root: Path) -> tuple[Path, NotebookNode, dict[str, str], list[tuple[str, str, str]]]:
    """An export file read back: the Chinese notebook, the English texts by id, and the blocks as (id, Chinese,
    hash of the English exported), the hash taken from the block's line (the English may have changed since)."""
    header = HEADER.match(text)
    if header is None:
        raise ValueError("the first line must be `<!-- translate: zh-CN/... -->`, as --export writes it")
    zh_path = root / header[1]
    en, zh = read(english_of(zh_path, root)), read(zh_path)
    english = {c.id: c.source for c in en.cells if c.cell_type == "markdown"}
    parts = BLOCK.split(text[header.end():])
    blocks = []
    for cell_id, sha, body in zip(parts[1::3], parts[2::3], parts[3::3]):
        if cell_id not in english:
            raise ValueError(f"cell {cell_id} is not a markdown cell of {header[1]}")
        blocks.append((cell_id, body.strip("\n"), sha or digest(english[cell_id])))
    return zh_path, zh, english, blocks


def lint_export(text: str, root: Path = ROOT) -> list[str]:
    """:func:`lint` of every block of an export file, one line a warning."""
    zh_path, _, english, blocks = _blocks(text, root)
    return [f"cell {cell_id}: {w}" for cell_id, body, _ in blocks for w in lint(english[cell_id], body, zh_path, root)]


def import_(text: str, root: Path = ROOT) -> tuple[Path, list[str]]:
    """Put translated blocks back into their Chinese notebook; returns it and the cell ids written.

    Each cell records the hash of the English it was exported with, so a cell whose English changed while it was
    being translated comes back stale."""
    zh_path, zh, _, blocks = _blocks(text, root)
    cells = {c.get("id"): c for c in zh.cells}
    for cell_id, body, sha in blocks:
        cells[cell_id].source = body
        cells[cell_id].metadata[KEY] = {"en_sha256": sha}
    write(zh, zh_path)
    return zh_path, [cell_id for cell_id, _, _ in blocks]


def main(argv: Sequence[str] | None = None, root: Path = ROOT) -> int:
    parser = argparse.ArgumentParser(prog="python -m course.translate", description=__doc__.split("\n")[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--check", action="store_true", help="only report; exit 1 when zh-CN/ is not in step")
    group.add_argument("--export", metavar="NOTEBOOK", help="print the cells of a zh-CN notebook to translate")
    group.add_argument("--import", dest="import_", metavar="FILE", help="read translated cells back ('-': stdin)")
    group.add_argument("--lint", metavar="FILE", help="only warn about what translated cells seem to have lost")
    parser.add_argument("--all", action="store_true", help="with --export: every markdown cell, translated or not")
    args = parser.parse_args(argv)
    try:
        if args.export:
            sys.stdout.write(export(Path(args.export), args.all, root))
            return 0
        if args.lint or args.import_:
            name = args.lint or args.import_
            text = sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
            for warning in lint_export(text, root):
                print(f"warning: {warning}", file=sys.stderr)
            if args.lint:
                return 0
            path, written = import_(text, root)
            print(f"{path.relative_to(root)}: {len(written)} cells translated")
    except (OSError, ValueError) as e:
        print(f"python -m course.translate: {e}", file=sys.stderr)
        return 2
    lines = [line for r in run(root, check=args.check) for line in r.lines()]
    print("\n".join(lines) if lines else f"{ZH}/ is in step with the English course")
    return 1 if args.check and lines else 0


if __name__ == "__main__":
    sys.exit(main())
