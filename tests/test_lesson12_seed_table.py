"""docs/lesson12_seed_table.py: it finds the lesson's cells and turns their results into the tables the lesson quotes.

The real run trains 31 LeNets per seed (minutes); here ``lenet.training.train`` is replaced by a stand-in that moves
the kept weights a little and reports its steps, so that the plumbing (markers, overrides, the per-round dicts, the
tables) runs in seconds.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

import lenet.training
from course.execute import code_cells

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("lesson12_seed_table", ROOT / "docs" / "lesson12_seed_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_each_marker_names_its_own_cell_in_notebook_order(script):
    cells = code_cells(script.NOTEBOOK, script.PER_SEED)
    assert len(cells) == len(script.PER_SEED)
    order = [c.id for c in code_cells(script.NOTEBOOK)]
    assert [order.index(c.id) for c in cells] == sorted(order.index(c.id) for c in cells)


def test_the_tables_come_out_for_every_round_and_recipe(script, monkeypatch, capsys):
    def stand_in(model, data, epochs=15, lr=1e-3, batch_size=64, weight_decay=0.0, seed=0, progress=False,
                 after_step=None):
        with torch.no_grad():  # "training": every kept entry moves a little, pruned ones stay
            for module in model.modules():
                for name, p in module.named_parameters(recurse=False):
                    mask = getattr(module, name.removesuffix("_orig") + "_mask", None) if name.endswith("_orig") else None
                    p.add_(0.01 * torch.randn_like(p) * (1.0 if mask is None else mask))
        for step in range(1, 63 * epochs + 1):  # the steps, so that the lesson's snapshot is taken
            if after_step is not None:
                after_step(step)
        return []

    monkeypatch.setattr(lenet.training, "train", stand_in)
    script.main(["--seeds", "2", "--rounds", "3"])
    out = capsys.readouterr().out
    for row in ("| 1 | 70.71% |", "| 2 | 50.00% |", "| 3 | 35.36% |"):
        assert out.count(row) == 1
    assert "LEFT = [70.71, 50.00, 35.36]" in out
    assert all(f'    "{recipe}": ([' in out for recipe in ("ticket", "control", "late")) and "DENSE = (" in out


def test_too_few_seeds_or_rounds_are_refused(script):
    with pytest.raises(SystemExit):
        script.main(["--seeds", "1"])
