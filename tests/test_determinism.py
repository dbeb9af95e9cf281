"""Every lesson and solution notebook prints the same with 2 math threads as with 1.

`make test` runs nbval with one thread per worker (OMP_NUM_THREADS=1), which checks the stored
outputs against a 1-thread run. This test re-executes each notebook with OMP_NUM_THREADS=2 and
compares what nbval compares (stdout, stderr, text reprs, errors; not PNGs; cells marked
NBVAL_IGNORE_OUTPUT left out) after the same sanitizing, so a learner on a multi-core laptop sees
exactly the stored outputs.
"""
from __future__ import annotations

import configparser
import os
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted((ROOT / "solutions").glob("*.ipynb"))
SKIP_MARKERS = ("NBVAL_IGNORE_OUTPUT", "NBVAL_SKIP")


def _sanitizers() -> list[tuple[re.Pattern[str], str]]:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "nbval_sanitize.cfg")
    return [(re.compile(cfg[s]["regex"]), cfg[s]["replace"]) for s in cfg.sections()]


SANITIZERS = _sanitizers()


def _clean(text: str) -> str:
    for pattern, replacement in SANITIZERS:
        text = pattern.sub(replacement, text)
    return text


def compared_outputs(nb: nbformat.NotebookNode) -> list[tuple[int, str]]:
    """(cell index, sanitized text) for every output nbval compares."""
    out = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or any(m in cell.source for m in SKIP_MARKERS):
            continue
        for o in cell.get("outputs", []):
            if o.output_type == "stream":
                out.append((i, f"{o.name}: {_clean(o.text)}"))
            elif o.output_type in ("execute_result", "display_data") and "text/plain" in o.get("data", {}):
                if "image/png" not in o.data:
                    out.append((i, "repr: " + _clean(o.data["text/plain"])))
            elif o.output_type == "error":
                out.append((i, f"error: {o.ename}: {_clean(o.evalue)}"))
    return out


def _merge_streams(items: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """Join consecutive chunks of one stream in one cell (the kernel may flush them differently)."""
    merged: list[tuple[int, str]] = []
    for i, text in items:
        if merged and merged[-1][0] == i and text.startswith(("stdout: ", "stderr: ")) \
                and merged[-1][1][:8] == text[:8]:
            merged[-1] = (i, merged[-1][1] + text[8:])
        else:
            merged.append((i, text))
    return merged


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_same_outputs_with_two_threads(path: Path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    monkeypatch.setenv("MKL_NUM_THREADS", "2")
    stored = nbformat.read(path, as_version=4)
    fresh = nbformat.read(path, as_version=4)
    NotebookClient(fresh, timeout=600, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    assert _merge_streams(compared_outputs(fresh)) == _merge_streams(compared_outputs(stored))


def test_the_kernel_really_had_two_threads(monkeypatch):
    """The same environment as above really gives torch 2 threads (MKL_NUM_THREADS overrides OMP's)."""
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    monkeypatch.setenv("MKL_NUM_THREADS", "2")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import torch; print(torch.get_num_threads())")])
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    assert nb.cells[0].outputs[0].text.strip() == str(min(2, os.cpu_count() or 1))
