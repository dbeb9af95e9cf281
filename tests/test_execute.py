"""course.execute: the one notebook runner (refreshing outputs, grading, tests) and its thread environment."""
from __future__ import annotations

import os

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from course import execute
from course.notebook import read

THREADS = "import torch, os; print(torch.get_num_threads(), os.environ['OMP_NUM_THREADS'], os.environ['MKL_NUM_THREADS'])"


def test_nbval_kernels_really_get_two_threads():
    """nbval starts kernels with this process's environment, which the root conftest.py gave two threads."""
    nb = new_notebook(cells=[new_code_cell(THREADS)])
    result = execute.run(nb, folder=execute.Path.cwd(), env=dict(os.environ))
    assert not result.errors and result.stop_status is None
    assert nb.cells[0].outputs[0].text.split() == [str(min(2, os.cpu_count() or 1)), "2", "2"]


def test_refresh_runs_with_one_thread_keeps_ids_and_refuses_errors(tmp_path):
    nb = new_notebook(cells=[new_markdown_cell("# t"), new_code_cell(THREADS), new_code_cell("x = 1")])
    nb.cells[0]["id"], nb.cells[1]["id"], nb.cells[2]["id"] = "intro", "threads", "c02"
    path = tmp_path / "t.ipynb"
    nbformat.write(nb, path)
    assert "3 cells, executed in" in execute.refresh(path)
    done = read(path)
    assert done.cells[1].outputs[0].text.split() == ["1", "1", "1"]
    assert [c.id for c in done.cells] == ["intro", "threads", "c02"]
    before = path.read_bytes()
    execute.refresh(path)
    assert path.read_bytes() == before  # a re-run changes only what the code prints
    done.cells.append(new_code_cell("1 / 0"))
    nbformat.write(done, path)
    with pytest.raises(RuntimeError, match=r"not written: cell 4 \(`1 / 0`\) raised ZeroDivisionError"):
        execute.refresh(path)
    done.cells[-1].metadata["tags"] = [execute.RAISES_TAG]
    nbformat.write(done, path)
    execute.refresh(path)  # an error the author expects is stored
    assert read(path).cells[-1].outputs[0].ename == "ZeroDivisionError"


def test_a_kernel_stopped_by_exit_is_blamed_on_the_cell_that_called_it():
    nb = new_notebook(cells=[new_code_cell("x = 1"), new_code_cell("exit()"),
                             new_code_cell("import time\ntime.sleep(2)"), new_code_cell("print(x)")])
    result = execute.run(nb, folder=execute.Path.cwd(), timeout=60)
    assert result.stop_status == execute.KERNEL_DIED and result.stop_cell == 1
    assert result.stop_detail == "cell 2 (`exit()`) called exit(), which stops the Python kernel"


def test_code_cells_by_marker_run_in_this_process(tmp_path, capsys):
    nb = new_notebook(cells=[new_markdown_cell("x = 0"), new_code_cell("x = 1\ny = 2"), new_code_cell("print(x + y)")])
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"c{i}"
    path = tmp_path / "lesson.ipynb"
    nbformat.write(nb, path)
    assert [c.id for c in execute.code_cells(path)] == ["c1", "c2"]
    assert [c.id for c in execute.code_cells(path, ("print(", "x = 1", "y = 2"))] == ["c2", "c1"]  # c1 once
    with pytest.raises(LookupError, match="no code cell contains 'z = '"):
        execute.code_cells(path, ("z = ",))
    namespace: dict = {}
    for cell in execute.code_cells(path):
        execute.run_in_process(cell, namespace)
    assert namespace["y"] == 2 and capsys.readouterr().out == ""
    execute.run_in_process(execute.code_cells(path)[1], namespace, quiet=False)
    assert capsys.readouterr().out == "3\n"
