"""A small synthetic course for the grader's tests: five tiny exercises that start fast, and notebooks
a class of learners might hand in (solved, untouched, partly solved, broken, hanging, cheating)."""
from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from course.exercises import build_exercise

#: The five exercises of the synthetic course: (title, solution cell, check cell).
EXERCISES = [
    ("Multiply", "### BEGIN SOLUTION\nanswer = 6 * 7\n### END SOLUTION", "checks.check_99_multiply(answer)"),
    ("Double", "def double(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION",
     "checks.check_99_double(double)"),
    ("Arange", "### BEGIN SOLUTION\nt = torch.arange(3)\n### END SOLUTION", "checks.check_99_arange(t)"),
    ("Split", "### BEGIN SOLUTION\nwords = 'a b c'.split()\n### END SOLUTION", "checks.check_99_split(words)"),
    ("Inverse", "def inverse(x):\n    ### BEGIN SOLUTION\n    return 1 / x\n    ### END SOLUTION",
     "checks.check_99_inverse(inverse)"),
]
#: The checks module of the synthetic course: this folder's synthetic_checks.py, copied into the course folder.
CHECKS = "synthetic_checks"
STEM = "99_synthetic"
LABELS = [f"Exercise {n}: {title}" for n, (title, _, _) in enumerate(EXERCISES, 1)]
WRONG = ["answer = 41", "def double(x):\n    return x + 2", "t = torch.arange(4)", "words = ['a']",
         "def inverse(x):\n    return x"]
HANG_TIMEOUT = 10


def solution_notebook() -> nbformat.NotebookNode:
    nb = new_notebook()
    nb.cells = [new_markdown_cell("# 99 · Exercises: synthetic"),
                new_code_cell(f"import torch\nimport lenet\nimport {CHECKS} as checks")]
    nb.metadata["course"] = {"checks": CHECKS}
    for n, (title, solution, check) in enumerate(EXERCISES, 1):
        nb.cells += [new_markdown_cell(f"### Exercise {n}: {title}"), new_code_cell(solution), new_code_cell(check)]
    nb.cells.append(new_markdown_cell("## Next"))
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"c{i:02d}"
    return nb


def solution(n: int) -> int:
    """Index of exercise n's answer cell in the exercise notebook (heading 3n-1, answer 3n, check 3n+1)."""
    return 3 * n


def check(n: int) -> int:
    return 3 * n + 1


def untouched() -> nbformat.NotebookNode:
    return build_exercise(solution_notebook(), f"solutions/{STEM}.ipynb")


def answered(answers: list[str]) -> nbformat.NotebookNode:
    nb = untouched()
    for n, code in enumerate(answers, 1):
        nb.cells[solution(n)].source = code
    return nb


def solved() -> nbformat.NotebookNode:
    return answered(["\n".join(line for line in code.splitlines() if "### " not in line) for _, code, _ in EXERCISES])


def wrong_with(cheat: str, after: int = 1) -> nbformat.NotebookNode:
    """Every answer wrong, and the learner's ``cheat`` in a cell of its own after cell ``after``."""
    nb = answered(WRONG)
    nb.cells.insert(after + 1, new_code_cell(cheat))
    return nb


def partly() -> nbformat.NotebookNode:
    """Right, wrong, untouched, raising in the answer cell, raising inside the check; and a cell between
    exercises 1 and 2 that raises, after which the later exercises are still graded."""
    nb = untouched()
    nb.cells[solution(1)].source = "answer = 42"
    nb.cells[solution(2)].source = "def double(x):\n    return x + 2"
    nb.cells[solution(4)].source = "words = 'a b c'.split(1)"  # TypeError in the learner's cell
    nb.cells[solution(5)].source = "def inverse(x):\n    return 1 / (x - 4)"  # ZeroDivisionError when checked
    nb.cells.insert(check(1) + 1, new_code_cell("raise RuntimeError('boom')"))
    return nb


def deleted() -> nbformat.NotebookNode:
    """Solved, then: exercise 2 deleted with its metadata entry, check 1 edited to hide a wrong answer."""
    nb = solved()
    nb.cells[solution(1)].source = "answer = 41"
    nb.cells[check(1)].source = "print('Exercise 1 passed: multiply')"
    del nb.cells[solution(2) - 1: check(2) + 1]
    nb.metadata["course"]["exercises"] = [e for e in nb.metadata["course"]["exercises"] if e["exercise"] != 2]
    return nb


def forged_metadata() -> nbformat.NotebookNode:
    """Wrong answers, with the check cells and the recorded checks both replaced by a print."""
    nb = answered(WRONG)
    for n in range(1, 6):
        nb.cells[check(n)].source = f"print('Exercise {n} passed')"
    for entry in nb.metadata["course"]["exercises"]:
        entry["check"] = "print('passed')"
    return nb


def hanging() -> nbformat.NotebookNode:
    nb = untouched()
    nb.cells[solution(1)].source = "answer = 42"
    nb.cells[solution(2)].source = "import time\ntime.sleep(600)"
    return nb


CHEATS = {
    "fake_checks": "class Pass:\n    def __getattr__(self, name):\n        return lambda *a, **k: None\nchecks = Pass()",
    "fake_lenet_checks": "class Pass:\n    def __getattr__(self, name):\n        return lambda *a, **k: None\n"
                         "lenet.checks = Pass()\nchecks = lenet.checks",
    "patched_functions": "import lenet.checks as c, lenet.checks.core as core\n"
                         "c.check_equal = core.check_equal = lambda *a, **k: None",
    "custom_exc": "get_ipython().set_custom_exc((BaseException,), lambda *a, **k: None)",
    "input_transformer": "get_ipython().input_transformers_cleanup.append("
                         "lambda lines: [] if any('checks.' in l for l in lines) else lines)",
    "ast_transformer": "import ast\nclass Blank(ast.NodeTransformer):\n"
                       "    def visit_Module(self, node):\n        return ast.Module(body=[], type_ignores=[])\n"
                       "get_ipython().ast_transformers.append(Blank())",
    "printed_pass": "print('Exercise 1 passed: multiply')",
    "patched_grader": "import sys, types\nfake = types.ModuleType('course.collect')\n"
                      "fake.collect = fake.fresh = lambda *a, **k: True\nsys.modules['course.collect'] = fake\n"
                      "import course\ncourse.collect = fake",
}


def write_course(folder: Path) -> Path:
    """A course folder holding solutions/99_synthetic.ipynb and its checks module; returns it."""
    (folder / "solutions").mkdir(parents=True, exist_ok=True)
    nbformat.write(solution_notebook(), folder / "solutions" / f"{STEM}.ipynb")
    shutil.copy(Path(__file__).with_name(f"{CHECKS}.py"), folder / f"{CHECKS}.py")
    return folder
