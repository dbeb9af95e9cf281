"""Lessons 13 and 14 (beyond LeNet): their checks against the notebooks' own classes and answers.

The checks of lesson 13 and 14 build their own copies of the models the notebooks define (an attention model, an
LSTM, a residual CNN), so that a grader never runs a learner's class as the reference: these tests tie each copy to
the notebook cell it copies. Then the solutions' answers pass every check in this process, and the checks leave
the learner's random number generator where it was.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from course.notebook import read
from lenet import checks
from lenet.checks import lesson13, lesson14

ROOT = Path(__file__).resolve().parents[1]


def cell_namespace(path: Path, marker: str) -> dict:
    """The namespace after running the one code cell of the notebook at ``path`` that contains ``marker``."""
    (cell,) = [c for c in read(ROOT / path).cells if c.cell_type == "code" and marker in c.source]
    namespace = {"torch": torch, "nn": torch.nn, "F": F}
    source = cell.source.split("\n\n\ntorch.manual_seed")[0]  # the class, not the training that follows it
    exec(compile(source, f"{path}:{marker}", "exec"), namespace)  # noqa: S102 - the course's own cell
    return namespace


def same_model(theirs: torch.nn.Module, ours: torch.nn.Module, images: torch.Tensor) -> None:
    """The two models hold the same tensors by name and shape and, given the same values, compute the same."""
    assert {k: v.shape for k, v in theirs.state_dict().items()} == {k: v.shape for k, v in ours.state_dict().items()}
    theirs.load_state_dict(ours.state_dict())
    with torch.no_grad():
        assert torch.equal(theirs.eval()(images), ours.eval()(images))


@pytest.mark.parametrize("path", ["notebooks/13_beyond_lenet.ipynb", "solutions/13_beyond_lenet.ipynb"])
def test_lesson_13_checks_build_the_notebooks_attention_model(path):
    ns = cell_namespace(Path(path), "class RowAttention(nn.Module)")
    same_model(ns["RowAttention"](16, 2), lesson13._RowAttention(), torch.randn(3, 1, 28, 28))


def test_lesson_13_checks_build_the_notebooks_lstm():
    ns = cell_namespace(Path("notebooks/13_beyond_lenet.ipynb"), "class RowLSTM(nn.Module)")
    same_model(ns["RowLSTM"](hidden=16), lesson13._RowLSTM(), torch.randn(3, 1, 28, 28))


@pytest.mark.parametrize("path", ["notebooks/14_coupled_channels.ipynb", "solutions/14_coupled_channels.ipynb"])
def test_lesson_14_checks_build_the_notebooks_residual_cnn(path):
    ns = cell_namespace(Path(path), "class TinyResNet(nn.Module)")
    for c in (8, 5):
        same_model(ns["TinyResNet"](c), lesson14._with_statistics(lesson14._TinyResNet(c), seed=c),
                   torch.randn(3, 1, 28, 28))


def test_lesson_14_reference_groups_agree_with_torch_pruning():
    """The groups exercise 1 expects, written by hand, are the ones torch-pruning traces."""
    import torch_pruning as tp

    for model_name, layer in [("TinyResNet", "conv1"), ("TinyResNet", "stem"), ("TinyResNet with two blocks", "conv3"),
                              ("TinyResNet with two blocks", "conv4"), ("LeNet", "conv2")]:
        model = lesson14._MODELS[model_name](6).eval()
        names = {module: name for name, module in model.named_modules()}
        graph = tp.DependencyGraph().build_dependency(model, example_inputs=torch.randn(1, 1, 28, 28))
        group = graph.get_pruning_group(model.get_submodule(layer), tp.prune_conv_out_channels, idxs=[0])
        traced = {names[dep.target.module]: "out" if graph.is_out_channel_pruning_fn(dep.handler) else "in"
                  for dep, _ in group if dep.target.module in names}
        assert traced == lesson14._group(model_name, layer), (model_name, layer)


def solution_answers(path: str) -> dict:
    """The solution notebook's setup and answer cells run here (not its check cells): the right answers."""
    namespace: dict = {"__name__": "solution"}
    for cell in read(ROOT / path).cells:
        if cell.cell_type == "code" and "checks.check_" not in cell.source:
            exec(compile(cell.source, path, "exec"), namespace)  # noqa: S102 - the course's own cells
    return namespace


@pytest.mark.parametrize("path, calls", [
    ("solutions/13_beyond_lenet.ipynb", [("check_13_silent_pruned", "silent_pruned"),
                                         ("check_13_load_ddp", "load_ddp_checkpoint"),
                                         ("check_13_safe_scores", "safe_scores"),
                                         ("check_13_prune_to_share", "prune_to_share")]),
    ("solutions/14_coupled_channels.ipynb", [("check_14_coupled_layers", "coupled_layers"),
                                             ("check_14_narrow_block", "narrow_block"),
                                             ("check_14_params_after", "params_after")]),
])
def test_solutions_pass_and_the_checks_leave_the_random_generator_alone(path, calls, capsys):
    answers = solution_answers(path)
    capsys.readouterr()

    def isolated(fn):  # the answers may draw random numbers (a new layer's weights); the checks may not
        def run(*args):
            with torch.random.fork_rng(devices=[]):
                return fn(*args)
        run.__name__ = fn.__name__
        return run

    before = torch.random.get_rng_state()
    for check, answer in calls:
        getattr(checks, check)(isolated(answers[answer]))
    assert torch.equal(torch.random.get_rng_state(), before)
    assert capsys.readouterr().out.count(" passed: ") == len(calls)


def test_the_seed_table_script_finds_both_lessons_cells():
    """docs/lessons13_14_seed_table.py replaces SEED and accuracy() after the cell that defines them."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("seed_table", ROOT / "docs" / "lessons13_14_seed_table.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    for notebook in script.NOTEBOOKS.values():
        cells = [c for c in read(notebook).cells if c.cell_type == "code"]
        (seed_cell,) = [c for c in cells if script.SEED_CELL in c.source]
        assert "def accuracy(label, model)" in seed_cell.source
        later = "".join(c.source for c in cells[cells.index(seed_cell) + 1:])
        assert "SEED" in later and "accuracy(" in later and "lenet.evaluate" not in later
