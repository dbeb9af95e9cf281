#!/usr/bin/env python3
"""Maintainer tool for the course's notebooks (not used by the notebooks themselves).

    python tools/nb.py build SRC.py OUT.ipynb   # percent-format script -> executed notebook
    python tools/nb.py execute NB.ipynb ...     # re-run notebooks in place, refreshing outputs

Percent format: cells start with ``# %%`` (code) or ``# %% [markdown]`` (markdown; every line
starts with ``# ``). Execution runs in the notebook's folder with one math thread, as `make test`
does, and records no timing metadata, so a re-run changes only what the code prints.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")


def parse_percent(text: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    kind, lines = None, []

    def flush() -> None:
        if kind is None:
            return
        body = "\n".join(lines).strip("\n")
        if kind == "markdown":
            body = "\n".join(line[2:] if line.startswith("# ") else line.lstrip("#") for line in body.splitlines())
            nb.cells.append(nbformat.v4.new_markdown_cell(body))
        elif body:
            nb.cells.append(nbformat.v4.new_code_cell(body))

    for line in text.splitlines():
        if line.startswith("# %%"):
            flush()
            kind, lines = ("markdown" if "[markdown]" in line else "code"), []
        else:
            lines.append(line)
    flush()
    return nb


def execute(nb: nbformat.NotebookNode, folder: Path) -> nbformat.NotebookNode:
    nb.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
    nb.metadata["language_info"] = {"name": "python"}
    client = NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(folder)}},
                            record_timing=False, allow_errors=False)
    client.execute()
    for i, cell in enumerate(nb.cells):
        cell.pop("id", None)
        cell["id"] = f"c{i:02d}"
    return nb


def main(argv: list[str]) -> None:
    if len(argv) >= 3 and argv[0] == "build":
        src, out = Path(argv[1]), Path(argv[2])
        nb = parse_percent(src.read_text(encoding="utf-8"))
        paths = [(out, nb)]
    elif len(argv) >= 2 and argv[0] == "execute":
        paths = [(Path(p), nbformat.read(p, as_version=4)) for p in argv[1:]]
    else:
        sys.exit(__doc__)
    for out, nb in paths:
        start = time.time()
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
        execute(nb, out.resolve().parent)
        nbformat.write(nb, out)
        print(f"{out}: {len(nb.cells)} cells, executed in {time.time() - start:.1f}s")


if __name__ == "__main__":
    main(sys.argv[1:])
