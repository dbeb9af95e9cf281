"""The Chinese edition (zh-CN/, README.zh-CN.md) cannot drift from the English course (issue 23).

A Chinese notebook's code cells and outputs are the English notebook's, byte for byte, so the Chinese notebooks
need no nbval run of their own: what runs is what tests/ and nbval already ran in English. What can drift is
the text, and a translated cell records the hash of the English it translates (course/translate.py).
"""
from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from course import translate as tr
from course.exercises import ROOT
from course.notebook import read, write
from synthetic_course import sandbox_or_none

PAIRS = tr.pairs(ROOT)


@pytest.mark.parametrize("english, chinese", PAIRS, ids=[f"{e.parent.name}/{e.name}" for e, _ in PAIRS])
def test_every_chinese_notebook_has_the_english_code_and_outputs_and_no_stale_text(english, chinese):
    report = tr.compare(read(english), read(chinese) if chinese.is_file() else None,
                        chinese.relative_to(ROOT).as_posix())
    assert report.lines() == [], "run `make translate` (docs/authoring.md, \"Translate\")"


def test_chinese_exercises_are_what_the_chinese_solutions_give_and_find_the_english_exercises():
    reports = tr.run(ROOT, check=True)
    assert [line for r in reports for line in r.lines()] == []
    assert sorted(p.name for p in (ROOT / tr.ZH / "exercises").glob("*.ipynb")) == \
        sorted(p.name for p in (ROOT / "exercises").glob("*.ipynb"))


def _links(text: str) -> set[str]:
    return {t for t in tr.LINK.findall(text) if "://" not in t}


@pytest.mark.parametrize("page", [tr.ZH + "/START_HERE.md", "README.zh-CN.md"])
def test_chinese_pages_link_the_chinese_lessons_and_every_link_resolves(page):
    path = ROOT / page
    text = path.read_text(encoding="utf-8")
    for target in _links(text):
        assert (path.parent / target).exists(), f"{page}: link to {target}: no such file"
    prefix = "" if page.startswith(tr.ZH) else f"{tr.ZH}/"
    for folder in ("notebooks", "exercises", "solutions"):
        for nb in sorted((ROOT / folder).glob("*.ipynb")):
            if folder == "notebooks" or page.startswith(tr.ZH):
                assert f"{prefix}{folder}/{nb.name}" in _links(text), f"{page} does not link {folder}/{nb.name}"


def test_links_in_chinese_notebooks_resolve_and_stay_in_the_chinese_edition():
    problems = []
    for _, chinese in PAIRS:
        for cell in read(chinese).cells:
            if cell.cell_type == "markdown":
                problems += [f"{chinese.name} {cell.id}: {w}" for w in tr.lint("", cell.source, chinese, ROOT)
                             if w.startswith("link")]
    assert problems == []


def test_the_grader_grades_a_chinese_exercise_notebook_as_the_english_one(tmp_path):
    """The real grader, on lesson 01 in both languages: solved (the solution notebooks) and untouched."""
    room = tmp_path / "room"
    room.mkdir()
    for language, top in (("en", ROOT), ("zh", ROOT / tr.ZH)):
        shutil.copy(top / "solutions" / "01_load_lenet.ipynb", room / f"{language}_solved-01_load_lenet.ipynb")
        shutil.copy(top / "exercises" / "01_load_lenet.ipynb", room / f"{language}_untouched-01_load_lenet.ipynb")
    marks = tmp_path / "marks.json"
    result = subprocess.run([sys.executable, "-m", "lenet.grade", str(room), "--jobs", "2", "--json", str(marks),
                             *([] if sandbox_or_none() else ["--no-sandbox"])],
                            capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert result.returncode == 1, result.stderr  # the untouched notebooks fail
    rows = {}
    for row in json.loads(marks.read_text()):
        language, how = row["learner"].split("-")[0].split("_")
        rows.setdefault(how, {}).setdefault(language, []).append(
            (row["exercise"], row["status"], row["points"], row["detail"]))
    assert rows["solved"]["zh"] == rows["solved"]["en"] and {r[1] for r in rows["solved"]["zh"]} == {"passed"}
    assert rows["untouched"]["zh"] == rows["untouched"]["en"]
    assert {r[1] for r in rows["untouched"]["zh"]} == {"not attempted"} and len(rows["solved"]["zh"]) == 5
    for name in ("01_load_lenet.ipynb", "11_shipping_a_pruned_model.ipynb"):
        zh, en = read(ROOT / tr.ZH / "exercises" / name), read(ROOT / "exercises" / name)
        assert [c.id for c in zh.cells] == [c.id for c in en.cells]
        assert [c.metadata.get("nbgrader") for c in zh.cells] == [c.metadata.get("nbgrader") for c in en.cells]


# --- the tool itself, on a small pair of notebooks ---

def _english() -> nbformat.NotebookNode:
    nb = new_notebook(cells=[new_markdown_cell("# Title\n\nPrune `conv1` by 30%.", id="m1"),
                             new_code_cell("print(1 + 1)", id="k1", execution_count=1,
                                           outputs=[new_output("stream", name="stdout", text="2\n")]),
                             new_markdown_cell("## Next\n\n[02](02_next.ipynb)", id="m2")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


@pytest.fixture
def course(tmp_path):
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "solutions").mkdir()
    write(_english(), tmp_path / "notebooks" / "01_x.ipynb")
    write(_english(), tmp_path / "notebooks" / "02_next.ipynb")
    for english, chinese in tr.PAGES.items():
        (tmp_path / english).write_text(f"# {english}\n", encoding="utf-8")
        (tmp_path / chinese).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / chinese).write_text(f"<!-- translation of {english}, en_sha256: "
                                        f"{tr.digest((tmp_path / english).read_text())} -->\n# 中文\n")
    return tmp_path


def _translate(root: Path, name: str, blocks: dict[str, str]) -> list[str]:
    text = f"<!-- translate: {tr.ZH}/notebooks/{name} -->\n" + "".join(
        f"<!-- cell {cell_id} (untranslated) -->\n{body}\n\n" for cell_id, body in blocks.items())
    return tr.import_(text, root)[1]


def test_the_tool_writes_a_chinese_twin_that_lists_its_cells_to_translate(course):
    reports = tr.run(course)
    zh = read(course / tr.ZH / "notebooks" / "01_x.ipynb")
    assert [c.id for c in zh.cells] == ["m1", "k1", "m2"] and zh.cells[1] == _english().cells[1]
    assert reports[0].untranslated == ["m1", "m2"] and reports[0].differs == []
    export = tr.export(course / tr.ZH / "notebooks" / "01_x.ipynb", root=course)
    assert export.startswith(f"<!-- translate: {tr.ZH}/notebooks/01_x.ipynb -->\n")
    sha = tr.digest("# Title\n\nPrune `conv1` by 30%.")
    assert f"<!-- cell m1 (untranslated, en_sha256: {sha}) -->\n# Title" in export and "print(1 + 1)" not in export


def test_a_cell_whose_english_changed_while_it_was_translated_comes_back_stale(course):
    tr.run(course)
    export = tr.export(course / tr.ZH / "notebooks" / "01_x.ipynb", root=course)
    english = read(course / "notebooks" / "01_x.ipynb")
    english.cells[0].source = "# Title\n\nPrune `conv1` by 50%."  # changed by an author meanwhile
    write(english, course / "notebooks" / "01_x.ipynb")
    done = export.replace("# Title\n\nPrune `conv1` by 30%.", "# 标题\n\n对 `conv1` 剪枝 30%。")
    done = done.replace("## Next", "## 下一步")
    assert tr.import_(done, course)[1] == ["m1", "m2"]
    report = tr.run(course, check=True)[0]
    assert report.stale == ["m1"] and report.untranslated == [] and report.differs == []


def test_a_translation_goes_stale_when_its_english_changes_and_code_changes_are_copied(course):
    tr.run(course)
    for name in ("01_x.ipynb", "02_next.ipynb"):
        assert _translate(course, name, {"m1": "# 标题\n\n对 `conv1` 剪枝 30%。",
                                         "m2": "## 下一步\n\n[02](02_next.ipynb)"}) == ["m1", "m2"]
    assert [r.lines() for r in tr.run(course, check=True)] == [[]] * 5
    english = read(course / "notebooks" / "01_x.ipynb")
    english.cells[0].source = "# Title\n\nPrune `conv1` by 50%."
    english.cells[1].source = "print(2 + 2)"
    english.cells[1].outputs[0].text = "4\n"
    english.cells.insert(2, new_markdown_cell("A new paragraph.", id="m3"))
    write(english, course / "notebooks" / "01_x.ipynb")
    report = tr.run(course, check=True)[0]
    assert report.stale == ["m1"] and "missing ['m3']" in report.differs[0]
    assert any("cell k1 (code): source, outputs differ" in d for d in report.differs)
    report = tr.run(course)[0]  # mends the code, keeps the Chinese, adds m3 in English for a translator
    zh = read(course / tr.ZH / "notebooks" / "01_x.ipynb")
    assert report.differs == [] and report.stale == ["m1"] and report.untranslated == ["m3"]
    assert zh.cells[0].source.startswith("# 标题") and zh.cells[1] == english.cells[1]
    assert zh.cells[2].source == "A new paragraph."


def test_check_mode_reports_edited_code_extra_cells_and_a_stale_page_and_writes_nothing(course, capsys):
    tr.run(course)
    path = course / tr.ZH / "notebooks" / "01_x.ipynb"
    zh = read(path)
    zh.cells[1].source = "print('edited in Chinese')"
    zh.cells.append(new_markdown_cell("多出来的", id="extra"))
    write(zh, path)
    before = path.read_bytes()
    (course / "START_HERE.md").write_text("# START_HERE.md, changed\n", encoding="utf-8")
    assert tr.main(["--check"], root=course) == 1
    out = capsys.readouterr().out
    assert "cell k1 (code): source differ" in out and "extra ['extra']" in out
    assert "START_HERE.md: stale" in out and path.read_bytes() == before


def test_a_chinese_notebook_whose_english_one_is_gone_is_reported_and_kept(course):
    tr.run(course)
    (course / "notebooks" / "02_next.ipynb").rename(course / "notebooks" / "02_renamed.ipynb")
    lines = [line for r in tr.run(course) for line in r.lines()]
    assert f"{tr.ZH}/notebooks/02_next.ipynb: has no English notebook notebooks/02_next.ipynb (renamed? move it; " \
           "removed? delete it)" in lines
    assert (course / tr.ZH / "notebooks" / "02_next.ipynb").is_file()


def test_lint_names_lost_code_numbers_headings_and_links(course):
    tr.run(course)
    where = course / tr.ZH / "notebooks" / "01_x.ipynb"
    english = "## Next\n\nPrune `conv1` by 30% ([02](02_next.ipynb)).\n### BEGIN SOLUTION\nx\n### END SOLUTION"
    assert tr.lint(english, "## 下一步\n\n对 `conv1` 剪枝 30%（[02](02_next.ipynb)）。\n### BEGIN SOLUTION\nx\n"
                            "### END SOLUTION", where, course) == []
    warnings = tr.lint(english, "# 下一步\n\n对 `conv2` 剪枝三成（[02](../../notebooks/02_next.ipynb)）。", where, course)
    assert [w.split(":")[0] for w in warnings] == [
        "code is not the English code", "numbers lost", "headings differ from the English ones (their levels and lines "
        "stay as they are)", "answer blocks differ from the English ones (their levels and lines stay as they are)",
        "link to ../../notebooks/02_next.ipynb"]
    assert warnings[-1].endswith("an English page (the Chinese one is in zh-CN/)")


def test_the_command_line_exports_and_imports(course, capsys, monkeypatch):
    tr.run(course)
    assert tr.main(["--export", str(course / tr.ZH / "notebooks" / "01_x.ipynb")], root=course) == 0
    exported = capsys.readouterr().out
    assert "<!-- cell m2 (untranslated, en_sha256: " in exported
    done = exported.replace("# Title\n\nPrune `conv1` by 30%.", "# 标题\n\n对 `conv1` 剪枝 30%。")
    monkeypatch.setattr(sys, "stdin", io.StringIO(done.replace("## Next", "## 下一步")))
    assert tr.main(["--import", "-"], root=course) == 0
    out = capsys.readouterr()
    assert "2 cells translated" in out.out and out.err == ""
    assert read(course / tr.ZH / "notebooks" / "01_x.ipynb").cells[0].metadata[tr.KEY] == \
        {"en_sha256": tr.digest("# Title\n\nPrune `conv1` by 30%.")}
    assert tr.main(["--check"], root=course) == 1  # 02_next.ipynb is still untranslated; 01_x.ipynb is done
    assert "01_x" not in capsys.readouterr().out
    monkeypatch.setattr(sys, "stdin", io.StringIO("no header\n"))
    assert tr.main(["--import", "-"], root=course) == 2
    assert "the first line must be" in capsys.readouterr().err
