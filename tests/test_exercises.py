"""tools/make_exercises.py, and the exercise/solution notebooks of the course graded for real.

For every solutions/NN_*.ipynb: exercises/ holds exactly what the generator writes; the untouched
exercise notebook grades as "not attempted" everywhere; each plausible wrong answer stored in the
solution's metadata (course.wrong) fails its check with a hint, while the solution passes.
"""
from __future__ import annotations

import copy
import importlib.util
import re
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from lenet import checks, grade

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))

_spec = importlib.util.spec_from_file_location("make_exercises", ROOT / "tools" / "make_exercises.py")
mx = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(mx)


def read(path: Path) -> nbformat.NotebookNode:
    with open(path, encoding="utf-8") as f:
        return nbformat.read(f, as_version=4)


def executed(source: str, text: str, **metadata) -> nbformat.NotebookNode:
    cell = new_code_cell(source, execution_count=3, metadata=metadata)
    cell.outputs = [new_output("stream", name="stdout", text=text)]
    return cell


def synthetic_solution() -> nbformat.NotebookNode:
    nb = new_notebook()
    nb.cells = [
        new_markdown_cell("# 99 · Exercises: synthetic"),
        executed("from lenet import checks", ""),
        new_markdown_cell("Some words.\n\n### Exercise 1: Add one\n\nDo it."),
        executed("x = 1\n### BEGIN SOLUTION\ny = x + 1\n### END SOLUTION\nprint(y)", "2\n",
                 course={"wrong": ["y = x"]}),
        executed("checks.check_equal('y', y, 2, hint='add 1')", ""),
        new_markdown_cell("### Exercise 2: A function"),
        executed("def f(a):\n    \"\"\"Doc.\"\"\"\n    if a:\n        ### BEGIN SOLUTION\n        b = a * 2\n"
                 "        return b\n        ### END SOLUTION\n    return 0", "",
                 course={"wrong": ["return a"]}),
        new_markdown_cell("Why?\n\n### BEGIN SOLUTION\nBecause.\n### END SOLUTION"),
        executed("checks.check_equal('f(2)', checks.call(f, 2), 4, hint='double it')", ""),
        new_markdown_cell("## Next\nThe end."),
    ]
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"c{i:02d}"
    return nb


# ------------------------------------------------------------------------------ the generator

def test_solution_blocks_become_stubs_with_their_indentation_and_the_code_around_them_stays():
    ex = mx.build_exercise(synthetic_solution())
    assert ex.cells[3].source == "x = 1\n# YOUR CODE HERE\nraise NotImplementedError()\nprint(y)"
    assert ex.cells[6].source == ('def f(a):\n    """Doc."""\n    if a:\n        # YOUR CODE HERE\n'
                                  "        raise NotImplementedError()\n    return 0")
    assert ex.cells[7].source == "Why?\n\nYOUR ANSWER HERE"
    assert ex.cells[4].source == "checks.check_equal('y', y, 2, hint='add 1')"  # check cells stay
    assert all(c.outputs == [] and c.execution_count is None for c in ex.cells if c.cell_type == "code")


def test_cells_are_tagged_and_the_notebook_lists_its_exercises():
    ex = mx.build_exercise(synthetic_solution(), "solutions/99_synthetic.ipynb")
    tags = {i: c.metadata.get("course") for i, c in enumerate(ex.cells)}
    assert tags == {0: None, 1: None, 2: {"exercise": 1, "role": "heading"}, 3: {"exercise": 1, "role": "solution"},
                    4: {"exercise": 1, "role": "check"}, 5: {"exercise": 2, "role": "heading"},
                    6: {"exercise": 2, "role": "solution"}, 7: {"exercise": 2, "role": "solution"},
                    8: {"exercise": 2, "role": "check"}, 9: None}  # course.wrong is gone
    meta = ex.metadata["course"]
    assert meta["source"] == "solutions/99_synthetic.ipynb"
    assert meta["exercises"] == [
        {"exercise": 1, "title": "Add one", "check": "checks.check_equal('y', y, 2, hint='add 1')"},
        {"exercise": 2, "title": "A function", "check": "checks.check_equal('f(2)', checks.call(f, 2), 4, hint='double it')"}]
    assert [c.id for c in ex.cells] == [f"c{i:02d}" for i in range(10)]


def test_the_generator_is_deterministic_and_leaves_the_solution_alone():
    solution = synthetic_solution()
    before = nbformat.writes(solution)
    first = mx.render(mx.build_exercise(solution))
    assert nbformat.writes(solution) == before
    assert mx.render(mx.build_exercise(synthetic_solution())) == first
    again = nbformat.reads(nbformat.writes(solution), as_version=4)  # a round trip through a file
    assert mx.render(mx.build_exercise(again)) == first
    nb = synthetic_solution()
    for cell in nb.cells:
        del cell["id"]
    assert [c.id for c in mx.build_exercise(nb).cells] == [f"c{i:02d}" for i in range(10)]  # no random ids


@pytest.mark.parametrize("source, message", [
    ("### BEGIN SOLUTION\nx = 1", "'### BEGIN SOLUTION' without a matching '### END SOLUTION'"),
    ("x = 1\n### END SOLUTION", "line 2: '### END SOLUTION' without a '### BEGIN SOLUTION' above it"),
    ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION", "line 2: '### BEGIN SOLUTION' inside a solution block"),
])
def test_broken_blocks_are_refused(source, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        mx.replace_blocks(source, mx.CODE_STUB)


def test_a_wrong_answer_replaces_the_block_at_its_indentation():
    source = "def f(a):\n    ### BEGIN SOLUTION\n    return 2 * a\n    ### END SOLUTION\n"
    assert mx.replace_blocks(source, "if a:\n    return a\nreturn 0") == \
        "def f(a):\n    if a:\n        return a\n    return 0"


@pytest.mark.parametrize("change, message", [
    (lambda nb: nb.cells.pop(8), "Exercise 2: A function has no check cell"),
    (lambda nb: nb.cells.insert(1, new_code_cell("### BEGIN SOLUTION\n### END SOLUTION")),
     "cell 2: a solution block outside an exercise"),
    (lambda nb: nb.cells[5].update(source="### Exercise 3: A function"), "exercises are numbered [1, 3]"),
    (lambda nb: nb.cells[4].metadata.update(course={"wrong": ["y = 0"]}),
     "cell 5: course.wrong belongs on a code cell with exactly one solution block"),
])
def test_malformed_solution_notebooks_are_refused_with_the_reason(change, message):
    nb = synthetic_solution()
    change(nb)
    with pytest.raises(ValueError, match=re.escape(message)):
        mx.build_exercise(nb)


def test_wrong_cells_of_a_percent_script_go_into_the_solution_cells_metadata():
    script = ("# %% [markdown]\n# ### Exercise 1: One\n\n# %%\ndef f():\n    ### BEGIN SOLUTION\n    return 1\n"
              "    ### END SOLUTION\n\n# %% [wrong]\nreturn 2\n\n# %% [wrong]\nx = 0\nreturn x\n\n"
              "# %%\nchecks.check_equal('f()', f(), 1, hint='one')\n")
    nb = mx.parse_solution_script(script)
    assert [c.cell_type for c in nb.cells] == ["markdown", "code", "code"]
    assert nb.cells[1].metadata["course"]["wrong"] == ["return 2", "x = 0\nreturn x"]
    with pytest.raises(ValueError, match=r"must follow a solution cell"):
        mx.parse_solution_script("# %%\nx = 1\n\n# %% [wrong]\nx = 2\n")


def test_main_rewrites_stale_exercises_and_removes_orphans(tmp_path, capsys):
    (tmp_path / "solutions").mkdir()
    (tmp_path / "exercises").mkdir()
    nbformat.write(synthetic_solution(), tmp_path / "solutions" / "99_synthetic.ipynb")
    (tmp_path / "exercises" / "99_synthetic.ipynb").write_text("{}", encoding="utf-8")
    (tmp_path / "exercises" / "98_gone.ipynb").write_text("{}", encoding="utf-8")
    assert mx.main(check=True, root=tmp_path) == 1
    out = capsys.readouterr().out
    assert "stale: exercises/99_synthetic.ipynb" in out and "orphan: exercises/98_gone.ipynb" in out
    assert mx.main(root=tmp_path) == 0
    assert sorted(p.name for p in (tmp_path / "exercises").iterdir()) == ["99_synthetic.ipynb"]
    written = (tmp_path / "exercises" / "99_synthetic.ipynb").read_bytes()
    capsys.readouterr()
    assert mx.main(check=True, root=tmp_path) == 0 and mx.main(root=tmp_path) == 0
    assert "up to date" in capsys.readouterr().out
    assert (tmp_path / "exercises" / "99_synthetic.ipynb").read_bytes() == written  # byte-identical rerun


# ------------------------------------------------------------------- the course's own notebooks

def test_exercises_up_to_date():
    expected = mx.expected_exercises(ROOT)
    on_disk = sorted((ROOT / "exercises").glob("*.ipynb"))
    assert sorted(expected) == on_disk, "exercises/ and solutions/ hold different notebooks: run `make exercises`"
    stale = [p.name for p, text in expected.items() if p.read_text(encoding="utf-8") != text]
    assert not stale, f"exercises/ is stale for {stale}: run `make exercises` (never edit exercises/ by hand)"


def test_every_lesson_has_a_solution_notebook():
    lessons = {p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")}
    missing = sorted(lessons - {p.name for p in SOLUTIONS})
    assert not missing, f"lessons without solutions/ (and so exercises/) notebooks: {missing}"


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.stem)
def test_solution_notebook_follows_the_conventions(path):
    nb = read(path)
    exercises, problems = grade.find_exercises(nb)
    assert not problems
    assert 3 <= len(exercises) <= 6, f"{len(exercises)} exercises; the course asks for 3 to 6 per lesson"
    lesson = path.name[:2]
    for ex in exercises:
        wrong = [w for i in ex.solutions for w in nb.cells[i].metadata.get("course", {}).get("wrong", [])]
        assert wrong, f"{ex.label}: add at least one plausible wrong answer (a `# %% [wrong]` cell)"
        called = re.findall(r"\bchecks\.(check_\w+)\s*\(", ex.check_source)
        assert len(called) == 1, f"{ex.label}: the check cell should call one lenet.checks.check_{lesson}_... function"
        fn = getattr(checks, called[0], None)
        assert fn is not None and called[0].startswith(f"check_{lesson}_"), f"{ex.label}: {called[0]} is not in lenet.checks"
        assert fn.exercise == ex.key, f"{ex.label} calls {called[0]}, the check of exercise {fn.exercise}"


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.stem)
def test_untouched_exercise_notebook_is_not_attempted_everywhere(path, capsys):
    exercise = ROOT / "exercises" / path.name
    assert grade.main([str(exercise), "--timeout", "300"]) == 1
    table = capsys.readouterr().out.splitlines()
    titles = [e["title"] for e in read(exercise).metadata["course"]["exercises"]]
    rows = [line for line in table if line.startswith(str(exercise))]
    assert len(rows) == len(titles), "\n".join(table)
    for n, (title, line) in enumerate(zip(titles, rows), 1):
        label = f"Exercise {n}: {title}"
        shown = label if len(label) <= grade.MAX_TITLE else label[: grade.MAX_TITLE - 3] + "..."
        assert f"  {shown}  " in line and " not attempted " in line, line
    assert table[-1] == f"{len(titles)} exercises in 1 notebook: {len(titles)} not attempted"


def wrong_answer_notebook(solution: nbformat.NotebookNode) -> tuple[nbformat.NotebookNode, dict[str, str]]:
    """The untouched exercise notebook with, after each exercise, its wrong answers and its solution.

    One kernel grades them all: for exercise N, each wrong answer is substituted for its solution block
    (other cells of the exercise as in the solution) and followed by a copy of the check cell, tagged
    as exercise "Nw1", "Nw2", ...; then the solution and the check again ("Ns"), which also restores
    the state later exercises rely on. Returns the notebook and the status expected for each row.
    """
    nb = mx.build_exercise(solution)
    exercises, _ = grade.find_exercises(nb)
    after_check = {ex.check: ex for ex in exercises}
    cells, expected = [], {}
    for i, cell in enumerate(nb.cells):
        cells.append(cell)
        ex = after_check.get(i)
        if ex is None:
            continue
        expected[ex.label] = grade.NOT_ATTEMPTED
        answer = [j for j in range(ex.first, ex.check) if solution.cells[j].cell_type == "code"]
        variants = [(j, w) for j in ex.solutions for w in solution.cells[j].metadata.get("course", {}).get("wrong", [])]
        for k, (changed, wrong) in enumerate([*variants, (None, None)], 1):
            key = f"{ex.key}w{k}" if changed is not None else f"{ex.key}s"
            for j in [*answer, ex.check]:
                copy_ = copy.deepcopy(solution.cells[j])
                copy_.outputs, copy_.execution_count, copy_["id"] = [], None, f"x{key}-{j}"
                if j == changed:
                    copy_.source = mx.replace_blocks(copy_.source, wrong)
                copy_.metadata = {"course": {"exercise": key, "role": "check" if j == ex.check else "solution"}}
                cells.append(copy_)
            title = f"{ex.title} (wrong answer {k}: {wrong.splitlines()[0]})" if changed is not None else ex.title
            nb.metadata["course"]["exercises"].append({"exercise": key, "title": title, "check": ex.check_source})
            expected[f"Exercise {key}: {title}"] = grade.FAILED if changed is not None else grade.PASSED
    nb.cells = cells
    return nb, expected


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.stem)
def test_wrong_answers_fail_with_a_hint_and_solutions_pass(path):
    nb, expected = wrong_answer_notebook(read(path))
    rows = grade.grade(nb, ROOT / "exercises", path.name, timeout=300)
    assert {r.exercise: r.status for r in rows} == expected, "\n".join(f"{r.exercise}: {r.status}: {r.detail}" for r in rows)
    for r in rows:
        if r.status == grade.FAILED:
            assert re.match(r"Exercise \d+: .+ Hint: \S", r.detail), f"{r.exercise}: the message lacks a hint: {r.detail}"
