"""docs/lesson07_seed_table.py measures what notebooks/07_accuracy_and_sparsity.ipynb quotes (no training here)."""
from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

from course.notebook import read

ROOT = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location("lesson07_seed_table", ROOT / "docs" / "lesson07_seed_table.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


def _assigned(source: str, name: str) -> object:
    """The literal value a cell assigns to ``name`` at its top level."""
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise LookupError(name)


def test_the_script_runs_the_lessons_cells_in_notebook_order():
    script = _script()
    ids = [c.id for c in read(script.NOTEBOOK).cells if c.cell_type == "code"]
    chosen = script.code_cells(script.NOTEBOOK, script.PER_SEED)
    assert len(chosen) == len(script.PER_SEED)
    assert [ids.index(c.id) for c in chosen] == sorted(ids.index(c.id) for c in chosen)
    (seed_cell,) = [c for c in chosen if script.SEED_CELL in c.source]
    assert "def over_seeds(label, acc)" in seed_cell.source  # the script replaces it after this cell


def test_the_lessons_tables_have_the_scripts_rows():
    script = _script()
    cells = [c.source for c in read(script.NOTEBOOK).cells if c.cell_type == "code"]
    seed_table = _assigned(next(s for s in cells if "SEED_TABLE = {" in s), "SEED_TABLE")
    assert list(seed_table) == [label for label, _ in script.RECIPES]
    paired = _assigned(next(s for s in cells if "PAIRED = {" in s), "PAIRED")
    first = {a for a, _ in script.PAIRS}
    assert first == {"one-shot 91.7% + 5 epochs"} and set(paired) == {b for _, b in script.PAIRS}
