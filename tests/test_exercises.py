"""course.exercises (the generator), and the exercise/solution notebooks of the course graded for real.

For every solutions/NN_*.ipynb: exercises/ holds exactly what the generator writes; in one kernel per
lesson, the untouched exercise notebook grades as "not attempted" everywhere, each wrong answer (a raw
cell tagged wrong-answer after its solution cell) fails its check with a hint, and the solution passes.
"""
from __future__ import annotations

import copy
import re
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output, new_raw_cell

from course import exercises as mx
from course import grade
from course.notebook import CODE_STUB, WRONG_TAG, find_exercises, read, replace_blocks
from lenet import checks

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))


def wrong(code: str) -> nbformat.NotebookNode:
    return new_raw_cell(code, metadata={"tags": [WRONG_TAG]})


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
        executed("x = 1\n### BEGIN SOLUTION\ny = x + 1\n### END SOLUTION\nprint(y)", "2\n"),
        wrong("y = x"),
        executed("checks.check_equal('y', y, 2, hint='add 1')", ""),
        new_markdown_cell("### Exercise 2: A function"),
        executed("def f(a):\n    \"\"\"Doc.\"\"\"\n    if a:\n        ### BEGIN SOLUTION\n        b = a * 2\n"
                 "        return b\n        ### END SOLUTION\n    return 0", ""),
        wrong("return a"),
        new_markdown_cell("Why?\n\n### BEGIN SOLUTION\nBecause.\n### END SOLUTION"),
        executed("checks.check_equal('f(2)', checks.call(f, 2), 4, hint='double it')", ""),
        new_markdown_cell("## Next\nThe end."),
    ]
    kept = [cell for cell in nb.cells if cell.cell_type != "raw"]
    for i, cell in enumerate(kept):
        cell["id"] = f"c{i:02d}"
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "raw":
            cell["id"] = f"{nb.cells[i - 1].id}-wrong"
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


def test_cells_carry_nbgrader_metadata_answers_checks_and_read_only_cells():
    ex = mx.build_exercise(synthetic_solution(), "solutions/99_synthetic.ipynb")
    meta = [c.metadata["nbgrader"] for c in ex.cells]
    base = {"schema_version": 3, "grade": False, "solution": False, "locked": True}
    assert meta[3] == {**base, "solution": True, "locked": False, "grade_id": "99_synthetic-ex1-answer"}
    assert meta[4] == {**base, "grade": True, "points": 1, "grade_id": "99_synthetic-ex1-check"}
    assert meta[6] == {**base, "solution": True, "locked": False, "grade_id": "99_synthetic-ex2-answer"}
    # nbgrader grades a written answer by hand: a grade cell too, worth nothing beside the check
    assert meta[7] == {**base, "solution": True, "locked": False, "grade": True, "points": 0,
                       "grade_id": "99_synthetic-ex2-answer-2"}
    assert meta[0] == {**base, "grade_id": "99_synthetic-cell-c00"}  # everything else is read-only
    assert meta[2] == {**base, "grade_id": "99_synthetic-cell-c02"}
    assert mx.build_exercise(synthetic_solution()).cells[4].metadata["nbgrader"]["grade_id"] == "ex1-check"


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.stem)
def test_grade_ids_are_unique_and_valid_for_nbgrader(path):
    nb = mx.annotate(read(path), f"solutions/{path.name}")
    ids = [c.metadata["nbgrader"]["grade_id"] for c in nb.cells]
    assert len(set(ids)) == len(ids) and all(re.fullmatch(r"[A-Za-z0-9_-]+", i) for i in ids), ids
    assert sum(c.metadata["nbgrader"].get("points", 0) for c in nb.cells) == len(nb.metadata["course"]["exercises"])


def test_the_nbgrader_source_is_the_solution_without_wrong_answers_and_clears_into_the_exercise():
    solution = synthetic_solution()
    source = mx.annotate(solution, "solutions/99_synthetic.ipynb")
    kept = [c for c in solution.cells if c.cell_type != "raw"]
    assert [(c.source, c.get("outputs")) for c in source.cells] == [(c.source, c.get("outputs")) for c in kept]
    exercise = mx.build_exercise(solution, "solutions/99_synthetic.ipynb")
    assert [c.metadata for c in source.cells] == [c.metadata for c in exercise.cells]
    assert source.metadata == exercise.metadata


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
    ids = [c.id for c in mx.build_exercise(nb).cells]
    assert ids == [c.id for c in mx.build_exercise(copy.deepcopy(nb)).cells] and len(set(ids)) == 10  # no random ids


@pytest.mark.parametrize("source, message", [
    ("### BEGIN SOLUTION\nx = 1", "'### BEGIN SOLUTION' without a matching '### END SOLUTION'"),
    ("x = 1\n### END SOLUTION", "line 2: '### END SOLUTION' without a '### BEGIN SOLUTION' above it"),
    ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION", "line 2: '### BEGIN SOLUTION' inside a solution block"),
])
def test_broken_blocks_are_refused(source, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        replace_blocks(source, CODE_STUB)


def test_a_wrong_answer_replaces_the_block_at_its_indentation():
    source = "def f(a):\n    ### BEGIN SOLUTION\n    return 2 * a\n    ### END SOLUTION\n"
    assert replace_blocks(source, "if a:\n    return a\nreturn 0") == \
        "def f(a):\n    if a:\n        return a\n    return 0"


@pytest.mark.parametrize("change, message", [
    (lambda nb: nb.cells.pop(10), "Exercise 2: A function has no check cell"),
    (lambda nb: nb.cells.insert(1, new_code_cell("### BEGIN SOLUTION\n### END SOLUTION")),
     "cell 2: a solution block outside an exercise"),
    (lambda nb: nb.cells[6].update(source="### Exercise 3: A function"), "exercises are numbered [1, 3]"),
    (lambda nb: nb.cells.insert(6, wrong("y = 0")),
     "cell 7: a wrong answer must follow a code cell with exactly one solution block"),
    (lambda nb: nb.cells.insert(1, wrong("y = 0")),
     "cell 2: a wrong answer must follow a code cell with exactly one solution block"),
    (lambda nb: nb.cells[4].update(source="  "), "cell 5: an empty wrong answer"),
    (lambda nb: nb.cells[3].update(source="### BEGIN SOLUTION\ny = 1"), "cell 4: '### BEGIN SOLUTION' without"),
])
def test_malformed_solution_notebooks_are_refused_with_the_reason(change, message):
    nb = synthetic_solution()
    change(nb)
    with pytest.raises(ValueError, match=re.escape(message)):
        mx.build_exercise(nb)


def test_wrong_answers_are_found_after_their_solution_cell_and_left_out_of_the_exercise():
    nb = synthetic_solution()
    exercises, problems = find_exercises(nb)
    assert not problems
    assert [ex.wrong for ex in exercises] == [[(3, "y = x")], [(7, "return a")]]
    assert not any(c.cell_type == "raw" for c in mx.build_exercise(nb).cells)


def test_main_rewrites_stale_exercises_and_removes_orphans(tmp_path, capsys):
    (tmp_path / "solutions").mkdir()
    (tmp_path / "exercises").mkdir()
    nbformat.write(synthetic_solution(), tmp_path / "solutions" / "99_synthetic.ipynb")
    (tmp_path / "exercises" / "99_synthetic.ipynb").write_text("{}", encoding="utf-8")
    (tmp_path / "exercises" / "98_gone.ipynb").write_text("{}", encoding="utf-8")
    assert mx.main(["--check"], root=tmp_path) == 1
    out = capsys.readouterr().out
    assert "stale: exercises/99_synthetic.ipynb" in out and "orphan: exercises/98_gone.ipynb" in out
    assert mx.main([], root=tmp_path) == 0
    assert sorted(p.name for p in (tmp_path / "exercises").iterdir()) == ["99_synthetic.ipynb"]
    written = (tmp_path / "exercises" / "99_synthetic.ipynb").read_bytes()
    capsys.readouterr()
    assert mx.main(["--check"], root=tmp_path) == 0 and mx.main([], root=tmp_path) == 0
    assert "up to date" in capsys.readouterr().out
    assert (tmp_path / "exercises" / "99_synthetic.ipynb").read_bytes() == written  # byte-identical rerun


# ------------------------------------------------------------------- the course's own notebooks

def test_exercises_up_to_date():
    expected = mx.expected_exercises(ROOT)
    on_disk = sorted((ROOT / "exercises").glob("*.ipynb"))
    assert sorted(expected) == on_disk, "exercises/ and solutions/ hold different notebooks: run `make exercises`"
    stale = [p.name for p, text in expected.items() if p.read_text(encoding="utf-8") != text]
    assert not stale, f"exercises/ is stale for {stale}: run `make exercises` (never edit exercises/ by hand)"


#: Notebooks that are not lessons and have no exercises: the troubleshooting guide after the lessons.
NOT_LESSONS = {"99_troubleshooting.ipynb"}


def test_every_lesson_has_a_solution_notebook():
    lessons = {p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")} - NOT_LESSONS
    missing = sorted(lessons - {p.name for p in SOLUTIONS})
    assert not missing, f"lessons without solutions/ (and so exercises/) notebooks: {missing}"


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.stem)
def test_solution_notebook_follows_the_conventions(path):
    nb = read(path)
    exercises, problems = find_exercises(nb)
    assert not problems
    assert 3 <= len(exercises) <= 6, f"{len(exercises)} exercises; the course asks for 3 to 6 per lesson"
    lesson = path.name[:2]
    for ex in exercises:
        assert ex.wrong, f"{ex.label}: add at least one plausible wrong answer (a raw cell tagged {WRONG_TAG})"
        called = re.findall(r"\bchecks\.(check_\w+)\s*\(", ex.check_source)
        assert len(called) == 1, f"{ex.label}: the check cell should call one lenet.checks.check_{lesson}_... function"
        fn = getattr(checks, called[0], None)
        assert fn is not None and called[0].startswith(f"check_{lesson}_"), f"{ex.label}: {called[0]} is not in lenet.checks"
        assert fn.exercise == ex.key, f"{ex.label} calls {called[0]}, the check of exercise {fn.exercise}"


def wrong_answer_notebook(solution: nbformat.NotebookNode, stem: str) -> tuple[nbformat.NotebookNode, dict[str, str]]:
    """The course's untouched exercise notebook with, after each exercise, its wrong answers and its solution.

    One kernel grades them all: for exercise N, each wrong answer is substituted for its solution block
    (other cells of the exercise as in the solution) and followed by a copy of the check cell, tagged
    as exercise "Nw1", "Nw2", ...; then the solution and the check again ("Ns"), which also restores
    the state later exercises rely on. Returns the notebook and the status expected for each row.
    """
    nb = copy.deepcopy(grade.lessons()[stem].notebook)
    by_key = {ex.key: ex for ex in find_exercises(solution)[0]}
    after_check = {ex.check: by_key[ex.key] for ex in grade.tagged_exercises(nb)}
    cells, expected = [], {}
    for i, cell in enumerate(nb.cells):
        cells.append(cell)
        ex = after_check.get(i)
        if ex is None:
            continue
        expected[ex.label] = grade.NOT_ATTEMPTED
        answer = [j for j in range(ex.first, ex.check) if solution.cells[j].cell_type == "code"]
        for k, (changed, code) in enumerate([*ex.wrong, (None, None)], 1):
            key = f"{ex.key}w{k}" if changed is not None else f"{ex.key}s"
            for j in [*answer, ex.check]:
                copy_ = copy.deepcopy(solution.cells[j])
                copy_.outputs, copy_.execution_count, copy_["id"] = [], None, f"x{key}-{j}"
                if j == changed:
                    copy_.source = replace_blocks(copy_.source, code)
                role = "check" if j == ex.check else "solution" if j in ex.solutions else grade.GIVEN
                copy_.metadata = {"course": {"exercise": key, "role": role}}
                cells.append(copy_)
            title = f"{ex.title} (wrong answer {k}: {code.splitlines()[0]})" if changed is not None else ex.title
            nb.metadata["course"]["exercises"].append({"exercise": key, "title": title, "check": ex.check_source})
            expected[f"Exercise {key}: {title}"] = grade.FAILED if changed is not None else grade.PASSED
    nb.cells = cells
    return nb, expected


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.stem)
def test_untouched_fails_wrong_answers_fail_with_a_hint_and_solutions_pass(path):
    nb, expected = wrong_answer_notebook(read(path), path.stem)
    rows = grade.grade_run(nb, grade.tagged_exercises(nb), path.name, grade.Limits(timeout=300))
    assert {r.exercise: r.status for r in rows} == expected, "\n".join(f"{r.exercise}: {r.status}: {r.detail}" for r in rows)
    for r in rows:
        if r.status == grade.FAILED:
            assert re.match(r"Exercise \d+: .+ Hint: \S", r.detail), f"{r.exercise}: the message lacks a hint: {r.detail}"
        if r.status == grade.NOT_ATTEMPTED:
            assert "still raises NotImplementedError" in r.detail, r.detail
