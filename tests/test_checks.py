"""lenet.checks: the comparison helpers, the hints, the clean tracebacks, the checks of lesson 01, mask checks that
accept every valid tie-break, "by hand" checks that refuse torch's own function, and values typed from a stored
output that fail on cases the notebook never shows."""
from __future__ import annotations

import inspect
import math
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import lenet
from lenet import checks
from course.notebook import read
from lenet.checks import CheckFailed, NotAttempted, check_equal
from lenet.checks.plain import transfer

#: A file of the checks package in a traceback: the learner should never see one.
LIBRARY_FILE = re.compile(r"lenet[/\\]checks[/\\]\w+\.py")


def failure(fn, *args, **kwargs) -> CheckFailed:
    """The CheckFailed that ``fn(*args, **kwargs)`` raises (the test fails if it passes)."""
    with pytest.raises(CheckFailed) as info:
        fn(*args, **kwargs)
    return info.value


# ---------------------------------------------------------------------------------- the helpers

@pytest.mark.parametrize("mine, expected", [
    (42, 42),
    (np.int64(42), 42),
    (torch.tensor(42), 42),
    (0.967, 0.9670000076293945),
    (torch.tensor(0.967), 0.967),
    (True, True),
    ([8, 6, 26, 26], (8, 6, 26, 26)),
    (torch.Size([8, 6]), (8, 6)),
    ({"a": (1, 2), "b": 3}, {"a": (1, 2), "b": 3}),
    ({3, 1, 2}, {1, 2, 3}),
    ("weight_orig", "weight_orig"),
    (torch.tensor([1.0, 2.0]) + 1e-7, torch.tensor([1.0, 2.0])),
    (torch.tensor([[1, 0], [0, 1]]), torch.eye(2, dtype=torch.int64)),
])
def test_check_equal_accepts_equal_answers(mine, expected):
    check_equal("x", mine, expected, hint="h")


@pytest.mark.parametrize("mine, expected, message", [
    (41, 42, "`x` is 41, expected 42."),
    (26.0, 26, "`x` is 26.0 (a float), expected the int 26."),
    (True, 1, "`x` is True (a bool), expected the int 1."),
    (0.9, 0.967, "`x` is 0.9, expected 0.967."),
    ("0.967", 0.967, "(a str), expected a number close to 0.967."),
    ((1, 6, 26, 26), (8, 6, 26, 26), "`x` is (1, 6, 26, 26), expected (8, 6, 26, 26) (item 0 differs)."),
    ((8, 6), (8, 6, 26, 26), "2 items; expected 4 items"),
    ({"a": (1, 2)}, {"a": (1, 3)}, "`x['a']` is (1, 2), expected (1, 3)"),
    ({"a": 1}, {"a": 1, "b": 2}, "is missing the keys ['b']"),
    ({1, 4}, {1, 2}, "missing [2] and unexpected [4]"),
    (torch.tensor([1, 2]), torch.tensor([1, 2, 3]), "has shape (2,), expected shape (3,)"),
    (torch.tensor([True, False]), torch.tensor([1.0, 0.0]), "has dtype torch.bool, expected torch.float32"),
    (torch.tensor([1.0, 2.5]), torch.tensor([1.0, 2.0]), "is tensor([1.0, 2.5]), expected tensor([1.0, 2.0])"),
    ([1, 2], torch.tensor([1, 2]), "(a list), expected a tensor"),
])
def test_check_equal_says_what_was_expected_and_got_and_where_to_look(mine, expected, message):
    e = failure(check_equal, "x", mine, expected, hint="see torch.equal")
    assert type(e) is CheckFailed and isinstance(e, AssertionError)
    assert message in str(e)
    assert str(e).endswith("\nHint: see torch.equal")


def test_a_big_tensor_is_summarized_with_the_first_difference():
    expected = torch.zeros(6, 1, 3, 3)
    mine = expected.clone()
    mine[2, 0, 1, 1] = 0.5
    mine[4, 0, 0, 0] = 1.0
    e = failure(check_equal, "w", mine, expected, hint="h")
    assert "differs from the expected tensor in 2 of 54 entries; the first is at index (2, 0, 1, 1): 0.5 instead of 0.0" in str(e)


def test_decimals_show_close_floats_apart_and_summarize_small_tensors():
    e = failure(check_equal, "act", torch.tensor([0.5, 0.12341, 0.3]), torch.tensor([0.5, 0.12349, 0.3]),
                hint="h", rtol=1e-4, decimals=4)
    assert "`act` differs from the expected tensor in 1 of 3 entries; the first is at index (1,): 0.1234 instead of 0.1235." in str(e)
    e = failure(check_equal, "threshold", 0.012345671, 0.012345684, hint="h", rtol=1e-6, atol=0.0, decimals=8)
    assert "`threshold` is 0.01234567, expected 0.01234568." in str(e)


@pytest.mark.parametrize("placeholder", [None, ...])
def test_a_placeholder_answer_is_not_attempted(placeholder):
    e = failure(check_equal, "acc", placeholder, 0.5, hint="h")
    assert type(e) is NotAttempted and f"`acc` is still {placeholder!r}" in str(e)


def test_exercise_decorator_prefixes_hints_and_prints_one_line(capsys):
    @checks.exercise(7, "seven is seven")
    def check_99_seven(x: int) -> None:
        check_equal("x", x, 7, hint="count again")

    check_99_seven(7)
    assert capsys.readouterr().out == "Exercise 7 passed: seven is seven\n"
    e = failure(check_99_seven, 6)
    assert str(e) == "Exercise 7: `x` is 6, expected 7.\nHint: count again"
    assert e.__cause__ is None and e.__suppress_context__  # no "during handling" chain in the traceback
    assert capsys.readouterr().out == ""
    assert check_99_seven.exercise == 7 and check_99_seven.__name__ == "check_99_seven"


def test_call_turns_the_untouched_skeleton_into_not_attempted():
    def conv_out(size, kernel):
        # YOUR CODE HERE
        raise NotImplementedError()

    e = failure(checks.call, conv_out, 28, 3)
    assert type(e) is NotAttempted and "conv_out(28, 3) still raises NotImplementedError" in str(e)

    def other(x):
        raise NotImplementedError("torch has no kernel for that")

    with pytest.raises(NotImplementedError, match="torch has no kernel"):
        checks.call(other, 1)
    assert "expected a function, got 26 (a int)" in str(failure(checks.call, 26, 28, 3))
    assert checks.call(lambda a, b=0: a + b, 1, b=2) == 3


# ----------------------------------------------------------------- what the learner sees in Jupyter

@pytest.fixture()
def shell():
    from IPython.core.interactiveshell import InteractiveShell

    sh = InteractiveShell.instance(colors="nocolor")
    yield sh
    InteractiveShell.clear_instance()


def test_jupyter_shows_the_learners_cell_and_the_hint_only(shell, capsys):
    result = shell.run_cell("from lenet import checks\nanswer = 41\nchecks.check_equal('answer', answer, 42, hint='6 * 7')")
    out = capsys.readouterr().out
    assert isinstance(result.error_in_exec, CheckFailed)
    assert "----> 3 checks.check_equal('answer', answer, 42, hint='6 * 7')" in out
    assert out.rstrip().endswith("CheckFailed: `answer` is 41, expected 42.\nHint: 6 * 7")
    assert not LIBRARY_FILE.search(out) and "skipping hidden" not in out


def test_ipython_alone_would_still_show_the_raising_frame(shell, capsys):
    """Why CheckFailed renders its own traceback: IPython skips __tracebackhide__ frames except the last."""
    shell.run_cell("def helper():\n    __tracebackhide__ = True\n    raise AssertionError('plain')\nhelper()")
    out = capsys.readouterr().out
    assert "raise AssertionError('plain')" in out


def test_an_error_in_the_learners_function_points_at_their_code(shell, capsys):
    shell.run_cell("from lenet import checks\ndef conv_out(size, kernel, stride=1, padding=0):\n"
                   "    return size[0]\nchecks.check_01_conv_out(conv_out, None)")
    out = capsys.readouterr().out
    assert "----> 3     return size[0]" in out and "TypeError: 'int' object is not subscriptable" in out
    assert not LIBRARY_FILE.search(out)


# -------------------------------------------------------------------------- the checks of lesson 01

def lesson_checks() -> list:
    helpers = ("check_equal", "check_mask")
    return [f for name, f in vars(checks).items() if name.startswith("check_") and name not in helpers]


def test_every_lesson_check_is_named_numbered_and_documented():
    assert lesson_checks()
    for f in lesson_checks():
        assert re.fullmatch(r"check_\d\d_[a-z0-9_]+", f.__name__), f.__name__
        assert isinstance(f.exercise, int) and 1 <= f.exercise <= 6, f.__name__
        assert "Introduced in solutions/" in inspect.getdoc(f), f.__name__


def test_each_check_lives_in_the_module_of_its_lesson():
    for f in lesson_checks():
        assert f.__module__ == f"lenet.checks.lesson{f.__name__[6:8]}", f.__name__
        assert f"solutions/{f.__name__[6:8]}_" in inspect.getmodule(f).__doc__, f.__module__


def conv_out(size: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    return (size + 2 * padding - kernel) // stride + 1


def fc1_inputs(size: int) -> int:
    side = conv_out(conv_out(size, 3) // 2, 3) // 2
    return 16 * side * side


def accuracy(preds: torch.Tensor, labels: torch.Tensor) -> float:
    return (preds == labels).sum().item() / len(preds)


def confusion(true: torch.Tensor, pred: torch.Tensor, n: int = 10) -> torch.Tensor:
    return torch.bincount(true * n + pred, minlength=n * n).reshape(n, n)


def most_confused(matrix: torch.Tensor) -> tuple[int, int]:
    off = matrix * (1 - torch.eye(len(matrix), dtype=matrix.dtype))
    return tuple(int(i) for i in torch.nonzero(off == off.max())[-1])  # the LAST of tied pairs: any one will do


def test_lesson_01_checks_pass_on_right_answers(model, data, capsys):
    x = torch.zeros(8, 1, 28, 28)
    checks.check_01_batch_shapes(dict(lenet.layer_shapes(model, x)), model)
    checks.check_01_conv_out(conv_out, fc1_inputs)
    checks.check_01_param_counts(lambda c_in, c_out, k: lenet.count_parameters(torch.nn.Conv2d(c_in, c_out, k)),
                                 lambda n_in, n_out: lenet.count_parameters(torch.nn.Linear(n_in, n_out)))
    checks.check_01_accuracy(accuracy, model, data)
    checks.check_01_confusion(confusion, most_confused, model, data)
    assert capsys.readouterr().out.splitlines() == [f"Exercise {i} passed: {f.what}" for i, f in enumerate(
        [checks.check_01_batch_shapes, checks.check_01_conv_out, checks.check_01_param_counts,
         checks.check_01_accuracy, checks.check_01_confusion], 1)]


def test_lesson_01_checks_do_not_touch_the_global_random_generator(model, data):
    torch.manual_seed(5)
    checks.check_01_conv_out(conv_out, fc1_inputs)
    checks.check_01_param_counts(lambda a, b, k: b * a * k * k + b, lambda a, b: a * b + b)
    checks.check_01_accuracy(accuracy, model, data)
    drawn = torch.rand(3)
    torch.manual_seed(5)
    assert torch.equal(drawn, torch.rand(3))


@pytest.mark.parametrize("case, message", [
    ("shapes_of_one_image", "Exercise 1: `shapes['conv1']` is (1, 6, 26, 26), expected (8, 6, 26, 26)"),
    ("conv_out_without_stride", "Exercise 2: `conv_out(28, 3, stride=2, padding=1)` is 26, expected 14."),
    ("conv_out_true_division", "Exercise 2: `conv_out(28, 3, stride=1, padding=0)` is 26.0 (a float), "
                               "expected the int 26."),
    ("fc1_without_pooling", "Exercise 2: `fc1_inputs(28)` is 9216, expected 400."),
    ("params_without_bias", "Exercise 3: `conv_params(1, 6, 3)` is 54, expected 60."),
    ("accuracy_as_a_count", "Exercise 4: `accuracy(tensor([3, 1, 4, 1]), tensor([3, 1, 5, 9]))` is 2, expected 0.5."),
    ("confusion_transposed", "Exercise 5: `confusion_matrix(tensor([0, 1, 1, 2, 2, 2]), tensor([0, 2, 1, 2, 0, 2]), 3)` is "),
    ("pair_from_the_diagonal", "Exercise 5: `most_confused(torch.tensor([[5, 1, 0], [2, 7, 4], [0, 3, 9]]))` is "
                               "(2, 2), expected (1, 2): the largest count off the diagonal is 4."),
    ("pair_of_a_10_by_10_matrix", "Exercise 5: `most_confused(torch.tensor([[5, 1, 0], [2, 7, 4], [0, 3, 9]]))` is "
                                  "(0, 5), expected (1, 2)"),
])
def test_lesson_01_checks_fail_on_plausible_wrong_answers_with_a_hint(case, message, model, data):
    def wrong_conv_out(size, kernel, stride=1, padding=0):
        return size - kernel + 1 if case == "conv_out_without_stride" else (size + 2 * padding - kernel) / stride + 1

    def conv_params(c_in, c_out, k):
        return c_out * c_in * k * k

    def linear_params(n_in, n_out):
        return n_in * n_out

    def confusion_matrix(true, pred, num_classes=10):
        return confusion(pred, true, num_classes)

    def wrong_fc1_inputs(size):
        return 16 * conv_out(conv_out(size, 3), 3) ** 2

    run = {
        "shapes_of_one_image": lambda: checks.check_01_batch_shapes(
            dict(lenet.layer_shapes(model, torch.zeros(1, 1, 28, 28))), model),
        "conv_out_without_stride": lambda: checks.check_01_conv_out(wrong_conv_out, fc1_inputs),
        "conv_out_true_division": lambda: checks.check_01_conv_out(wrong_conv_out, fc1_inputs),
        "fc1_without_pooling": lambda: checks.check_01_conv_out(conv_out, wrong_fc1_inputs),
        "params_without_bias": lambda: checks.check_01_param_counts(conv_params, linear_params),
        "accuracy_as_a_count": lambda: checks.check_01_accuracy(lambda p, l: (p == l).sum().item(), model, data),
        "confusion_transposed": lambda: checks.check_01_confusion(confusion_matrix, most_confused, model, data),
        "pair_from_the_diagonal": lambda: checks.check_01_confusion(
            confusion, lambda m: divmod(int(m.argmax()), m.shape[1]), model, data),
        "pair_of_a_10_by_10_matrix": lambda: checks.check_01_confusion(
            confusion, lambda m: divmod(int((m - torch.diag(torch.diag(m))).argmax()), 10), model, data),
    }[case]
    e = failure(run)
    assert type(e) is CheckFailed
    assert message in str(e)
    hint = str(e).split("\nHint: ", 1)[1]
    assert re.search(r"torch|lenet|help\(|//", hint), hint  # the hint names an API or the operator to use


# -------------------------------------------- values typed from a stored output fail on unseen cases

def test_most_confused_accepts_any_pair_among_tied_ones(model, data):
    matrix = torch.tensor([[9, 2, 0, 2], [1, 8, 0, 0], [2, 0, 7, 1], [0, 0, 0, 6]])  # the check's tied case
    first = divmod(int((matrix - torch.diag(torch.diag(matrix))).argmax()), 4)
    assert first != most_confused(matrix) == (2, 0)  # the test's own answer breaks the tie another way
    checks.check_01_confusion(confusion, most_confused, model, data)


@pytest.mark.parametrize("case", ["accuracy", "most_confused", "fc1_inputs", "names_after_pruning", "second_amount",
                                  "zeros_after", "lenet_macs"])
def test_a_value_typed_from_a_stored_output_fails_with_a_hint(case, model, data):
    """Each typed answer is right for the notebook's own case (the old exercise accepted it), wrong elsewhere."""
    preds = lenet.predict(model, data.test_x)
    names = (["weight_orig", "bias_orig"], ["weight_orig", "bias_orig", "weight_mask", "bias_mask"])  # notebook 03
    count = lenet.checks.reference.torch_pruned_count
    typed, right_on_the_notebooks_case, run = {
        "accuracy": (0.967, lambda: abs(accuracy(preds, data.test_y) - 0.967) < 1e-9,
                     lambda: checks.check_01_accuracy(lambda p, l: 0.967, model, data)),
        "most_confused": ((5, 8), lambda: most_confused(confusion(data.test_y, preds)) == (5, 8),
                          lambda: checks.check_01_confusion(confusion, lambda m: (5, 8), model, data)),
        "fc1_inputs": (576, lambda: fc1_inputs(32) == 576,
                       lambda: checks.check_01_conv_out(conv_out, lambda size: 576)),
        "names_after_pruning": (names, lambda: True,
                                lambda: checks.check_03_names_after_pruning(lambda p, b, pr: names)),
        "second_amount": (0.75, lambda: (0.9 - 0.6) / (1 - 0.6) == pytest.approx(0.75),
                          lambda: checks.check_07_prune_again(
                              lambda n, amounts: count(n, amounts), lambda now, target: 0.75)),
        "zeros_after": (259, lambda: round(0.3 * 864) == 259,
                        lambda: checks.check_06_zero_counts(lambda shape, amount, dim=None: 259)),
        "lenet_macs": (199_968, lambda: True, lambda: checks.check_08_macs(
            lambda conv, h, w: conv.out_channels * conv.in_channels * 9 * conv_out(h, 3) * conv_out(w, 3),
            lambda linear: linear.in_features * linear.out_features, lambda model: 199_968)),
    }[case]
    assert right_on_the_notebooks_case(), typed
    e = failure(run)
    assert type(e) is CheckFailed and "\nHint: " in str(e)


def test_moved_and_leaked_typed_from_the_output_fails_on_another_pruned_model(data):
    x, y = data.train_x[:64], data.train_y[:64]

    def train_step(model, x, y, weight_decay=0.0):
        opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=weight_decay)
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()

    def typed(model, x, y, weight_decay):
        return (0, 0) if weight_decay == 0 else (40837, 0)

    def counted(model, x, y, weight_decay):
        pruned = model.fc1.weight_mask == 0
        before = model.fc1.weight_orig.detach().clone()
        train_step(model, x, y, weight_decay)
        moved = int((model.fc1.weight_orig[pruned] != before[pruned]).sum())
        return moved, int(torch.count_nonzero((model.fc1.weight_orig * model.fc1.weight_mask)[pruned]))

    model = lenet.prune_model(lenet.pretrained(), 0.8, scope="global")
    assert counted(model, x, y, 0.01) == typed(model, x, y, 0.01)  # right on the notebook's own model
    e = failure(checks.check_07_training_step, train_step, typed, x, y)
    assert "an untrained LeNet with 60% of fc1 pruned at random" in str(e) and "\nHint: " in str(e)
    checks.check_07_training_step(train_step, counted, x, y)


# ------------------------------------------------------------- masks: every valid tie-break passes

def _smallest(scores: torch.Tensor, k: int, last: bool) -> torch.Tensor:
    """Indices of the k smallest scores, ties broken towards the first (or the last) index, not as torch.topk does."""
    if last:
        return scores.numel() - 1 - torch.argsort(scores.flip(0), stable=True)[:k]
    return torch.argsort(scores, stable=True)[:k]


def l1_mask_ties(last: bool):
    def l1_mask(t: torch.Tensor, amount) -> torch.Tensor:
        mask = torch.ones_like(t)
        mask.view(-1)[_smallest(t.abs().flatten(), lenet.entries_to_prune(amount, t.numel()), last)] = 0
        return mask
    return l1_mask


def l1_mask_skips_the_smallest(t: torch.Tensor, amount) -> torch.Tensor:
    """Exactly k zeros, but on ranks 2..k+1: a wrong answer whatever the tie rule."""
    k = lenet.entries_to_prune(amount, t.numel())
    mask = torch.ones_like(t)
    if 0 < k < t.numel():
        mask.view(-1)[torch.argsort(t.abs().flatten(), stable=True)[1:k + 1]] = 0
    elif k:
        mask.zero_()
    return mask


def again_mask_ties(last: bool):
    def again_mask(weight: torch.Tensor, old_mask: torch.Tensor, amount) -> torch.Tensor:
        kept = old_mask == 1
        scores = weight[kept].abs()
        partial = torch.ones_like(scores)
        partial[_smallest(scores, lenet.entries_to_prune(amount, scores.numel()), last)] = 0
        mask = old_mask.clone()
        mask[kept] = partial
        return mask
    return again_mask


def again_mask_skips_the_smallest(weight: torch.Tensor, old_mask: torch.Tensor, amount) -> torch.Tensor:
    kept = old_mask == 1
    mask = old_mask.clone()
    mask[kept] = l1_mask_skips_the_smallest(weight[kept], amount)
    return mask


def torch_l1_mask(t: torch.Tensor, amount) -> torch.Tensor:
    return torch.nn.utils.prune.L1Unstructured(amount).compute_mask(t, torch.ones_like(t))


def test_the_tie_cases_really_break_ties_another_way_than_torch():
    """Of the two tie-breaks the next tests use, at least one differs from torch's topk on the checks' tie cases."""
    ties = torch.tensor([0.5, -0.1, 0.1, 0.3, -0.1, 0.2])
    assert any(not torch.equal(l1_mask_ties(last)(ties, 2), torch_l1_mask(ties, 2)) for last in (False, True))
    weight = torch.tensor([0.0, 0.3, -0.2, 0.0, 0.2, 0.5, -0.2, 0.0])
    old_mask = torch.tensor([0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 0.0])
    holder = torch.nn.Module()
    holder.weight = torch.nn.Parameter(weight.clone())
    torch.nn.utils.prune.custom_from_mask(holder, "weight", old_mask)
    torch.nn.utils.prune.l1_unstructured(holder, "weight", amount=2)
    assert any(not torch.equal(again_mask_ties(last)(weight, old_mask, 2), holder.weight_mask)
               for last in (False, True))


@pytest.mark.parametrize("last", [False, True], ids=["first-ties", "last-ties"])
def test_l1_mask_accepts_another_valid_tie_break_and_rejects_a_wrong_choice(last, capsys):
    checks.check_03_l1_mask(l1_mask_ties(last))
    assert capsys.readouterr().out.startswith("Exercise 4 passed")
    e = failure(checks.check_03_l1_mask, l1_mask_skips_the_smallest)
    assert "it must prune the 16 entries with the smallest |t|" in str(e) and "\nHint: " in str(e)


@pytest.mark.parametrize("last", [False, True], ids=["first-ties", "last-ties"])
def test_again_mask_accepts_another_valid_tie_break_and_rejects_a_wrong_choice(last, capsys):
    checks.check_04_again_mask(again_mask_ties(last))
    assert capsys.readouterr().out.startswith("Exercise 2 passed")
    e = failure(checks.check_04_again_mask, again_mask_skips_the_smallest)
    assert "with the smallest |weight|" in str(e) and "\nHint: " in str(e)


@pytest.mark.parametrize("mine, message", [
    (torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0, 1.0]), None),  # torch's choice
    (torch.tensor([1.0, 1.0, 0.0, 1.0, 0.0, 1.0]), None),  # another pair of the three tied entries
    (torch.tensor([1.0, 0.0, 0.0, 1.0, 0.0, 1.0]), "prunes 3 entries, expected 2"),
    (torch.tensor([1.0, 0.0, 1.0, 1.0, 1.0, 0.0]), "prunes the entry at index (5,) (|t| = 0.2) but keeps the one at "
                                                   "index (2,) (|t| = 0.1)"),
    (torch.tensor([1.0, 0.5, 1.0, 1.0, 0.0, 1.0]), "holds 0.5 at index (1,)"),
    (torch.tensor([True, False, True, True, False, True]), "has dtype torch.bool, expected torch.float32"),
])
def test_check_mask_accepts_any_valid_choice_among_ties_and_names_the_problem(mine, message):
    t = torch.tensor([0.5, -0.1, 0.1, 0.3, -0.1, 0.2])
    expected = torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0, 1.0])
    if message is None:
        checks.check_mask("m", mine, expected, t.abs(), "h", score="|t|")
    else:
        e = failure(checks.check_mask, "m", mine, expected, t.abs(), "h", score="|t|")
        assert message in str(e) and str(e).endswith("\nHint: h")


def test_check_mask_keeps_entries_outside_free_as_they_are():
    old = torch.tensor([0.0, 1.0, 1.0, 1.0])
    scores = torch.tensor([0.0, 0.1, 0.2, 0.3])
    checks.check_mask("m", torch.tensor([0.0, 0.0, 1.0, 1.0]), torch.tensor([0.0, 0.0, 1.0, 1.0]), scores, "h",
                      free=old == 1)
    e = failure(checks.check_mask, "m", torch.tensor([1.0, 0.0, 0.0, 1.0]), torch.tensor([0.0, 0.0, 1.0, 1.0]),
                scores, "h", free=old == 1)
    assert "is 1.0 at index (0,), expected 0.0: that entry is not the method's to choose" in str(e)


# -------------------------------------------------- "by hand": torch's own function fails the check

def test_calling_torch_in_a_by_hand_exercise_fails_and_torch_is_restored():
    prune = torch.nn.utils.prune
    before = (prune.l1_unstructured, prune.L1Unstructured.compute_mask, prune.remove, prune.BasePruningMethod.remove)

    def l1_mask_by_torch(t, amount):
        holder = torch.nn.Module()
        holder.weight = torch.nn.Parameter(t.clone())
        prune.l1_unstructured(holder, name="weight", amount=amount)
        return holder.weight_mask

    def l1_mask_swallowing_the_error(t, amount):
        try:
            return torch_l1_mask(t, amount)
        except Exception:  # noqa: BLE001 - the learner hides the refusal; the check still sees it
            return torch.ones_like(t)

    def my_remove_by_torch(module, name):
        prune.remove(module, name)
        return module

    e = failure(checks.check_03_l1_mask, l1_mask_by_torch)
    assert "your code calls `prune.l1_unstructured`" in str(e) and "\nHint: " in str(e)
    e = failure(checks.check_03_l1_mask, l1_mask_swallowing_the_error)
    assert "your code calls `prune.L1Unstructured.compute_mask`" in str(e)
    e = failure(checks.check_04_remove, my_remove_by_torch)
    assert "your code calls `prune.remove`" in str(e)
    assert (prune.l1_unstructured, prune.L1Unstructured.compute_mask, prune.remove,
            prune.BasePruningMethod.remove) == before
    layer = torch.nn.Linear(3, 2)
    prune.l1_unstructured(layer, "weight", amount=2)  # torch works again after the checks
    prune.remove(layer, "weight")
    assert int((layer.weight == 0).sum()) == 2


def ln_mask_ties(last: bool):
    def ln_structured_mask(t, amount, n, dim):
        n_prune = amount if isinstance(amount, int) else round(amount * t.shape[dim])
        norms = torch.linalg.vector_norm(t, ord=n, dim=[d for d in range(t.dim()) if d != dim])
        return torch.ones_like(t).index_fill_(dim, _smallest(norms, n_prune, last), 0.0)
    return ln_structured_mask


def global_masks_ties(last: bool):
    def global_l1_masks(tensors, amount):
        scores = torch.cat([t.detach().abs().flatten() for t in tensors])
        mask = torch.ones_like(scores)
        mask[_smallest(scores, amount if isinstance(amount, int) else round(amount * scores.numel()), last)] = 0
        return [piece.view_as(t) for piece, t in zip(mask.split([t.numel() for t in tensors]), tensors)]
    return global_l1_masks


def shares_and_threshold(tensors, masks):
    all_abs = torch.cat([t.detach().abs().flatten() for t in tensors])
    return [1 - m.mean().item() for m in masks], all_abs[torch.cat([m.flatten() for m in masks]) == 0].max().item()


@pytest.mark.parametrize("last", [False, True], ids=["first-ties", "last-ties"])
def test_structured_and_global_masks_accept_any_valid_tie_break(last, capsys):
    checks.check_06_ln_structured_mask(ln_mask_ties(last))
    checks.check_06_global_l1(global_masks_ties(last), shares_and_threshold)
    assert [line.split(" passed")[0] for line in capsys.readouterr().out.splitlines()] == ["Exercise 2", "Exercise 3"]


def test_lesson_11_checks_pass_on_right_answers_and_leave_the_random_generator_alone(tmp_path, capsys):
    import warnings

    import onnx
    from onnx import helper, numpy_helper
    from torch.nn.utils import prune

    def remove_all(model):
        return lenet.remove_pruning(model)

    def int8_zero_mask(w):
        return torch.round(w / (w.abs().max() / 127.5)) == 0

    def ship(model, path):
        lenet.remove_pruning(model)
        torch.onnx.export(model, (torch.zeros(3, 1, 28, 28),), path, dynamic_shapes={"x": {0: torch.export.Dim("n")}},
                          external_data=False, verbose=False)

    def per_row_int8(src, dst):  # another correct answer than the solution's: torch does the arithmetic
        proto = onnx.load(src)
        for init in [i for i in proto.graph.initializer if len(i.dims) >= 2]:
            w = torch.from_numpy(numpy_helper.to_array(init).copy())
            scale = w.flatten(1).abs().amax(1) / 127
            scale[scale == 0] = 1
            q = torch.round(w / scale.view(-1, *[1] * (w.dim() - 1))).to(torch.int8)
            proto.graph.initializer.remove(init)
            proto.graph.initializer.extend([numpy_helper.from_array(q.numpy(), init.name + "/q"),
                                            numpy_helper.from_array(scale.numpy(), init.name + "/s")])
            proto.graph.node.insert(0, helper.make_node("DequantizeLinear", [init.name + "/q", init.name + "/s"],
                                                        [init.name], axis=-w.dim()))  # axis 0, counted from the end
        onnx.save(proto, dst)

    def load_int8(path, widths):
        model = lenet.quantize_int8(lenet.SlimLeNet(*widths))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.load_state_dict(torch.load(path, weights_only=True))
        return model

    model = lenet.pretrained()
    torch.manual_seed(0)
    prune.random_unstructured(model.fc1, "weight", amount=0.5)
    w = model.fc1.weight.detach()
    torch.manual_seed(7)
    before = torch.random.get_rng_state()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch's exporter about torch's own code
        checks.check_11_remove_all(remove_all)
        checks.check_11_int8_zeros(int8_zero_mask, int((int8_zero_mask(w) & (w != 0)).sum()))
        checks.check_11_ship_onnx(ship)
        checks.check_11_per_row_int8(per_row_int8)
        checks.check_11_load_int8(load_int8)
    assert torch.equal(torch.random.get_rng_state(), before)
    assert capsys.readouterr().out.count("passed") == 5


def test_lesson_02_judges_the_classes_the_exercise_notebook_gives():
    """Exercises 1 and 2 ask about classes the notebook defines; the judge builds its own copies of them."""
    from lenet.checks import lesson02

    nb = read(Path(__file__).resolve().parents[1] / "solutions" / "02_parameters_and_buffers.ipynb")
    namespace = {"torch": torch, "nn": torch.nn}
    for name in ("Scaler", "Block"):
        (cell,) = [c for c in nb.cells if c.cell_type == "code" and f"class {name}(nn.Module)" in c.source]
        exec(compile(cell.source, name, "exec"), namespace)  # noqa: S102 - the course's own cell
    assert lesson02._tensor_kinds(namespace["Scaler"]()) == lesson02._tensor_kinds(lesson02.Scaler())
    assert list(namespace["Block"]().state_dict()) == list(lesson02.Block().state_dict())


# -------------------------------------------- issue 24: careless answers to lessons 03, 04, 07 and 08

def _l1_mask_from_values(t, amount):
    """Zero the k smallest of a copy of |t|, then `!= 0`: extra zeros where t already holds zeros."""
    k = lenet.entries_to_prune(amount, t.numel())
    magnitudes = t.abs().flatten()
    magnitudes[torch.topk(magnitudes, k, largest=False).indices] = 0
    return (magnitudes != 0).float().reshape(t.shape)


def _l1_mask_truncating(t, amount):
    k = amount if isinstance(amount, int) else int(amount * t.numel())
    mask = torch.ones_like(t)
    mask.view(-1)[torch.topk(t.abs().flatten(), k, largest=False).indices] = 0
    return mask


def _l1_mask_in_place(t, amount):
    scores = t.abs_().flatten()
    mask = torch.ones_like(t)
    mask.view(-1)[torch.topk(scores, lenet.entries_to_prune(amount, t.numel()), largest=False).indices] = 0
    return mask


def _again_mask_in_place(weight, old_mask, amount):
    kept = old_mask == 1
    scores = weight[kept].abs()
    partial = torch.ones_like(scores)
    partial[torch.topk(scores, lenet.entries_to_prune(amount, scores.numel()), largest=False).indices] = 0
    old_mask[kept] = partial
    return old_mask


def _train_step(clear: str | None):
    def train_step(model, x, y, weight_decay=0.0):
        opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=weight_decay)
        if clear == "optimizer":
            opt.zero_grad()
        elif clear == "model":
            model.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return train_step


def _moved_and_leaked(model, x, y, weight_decay):
    pruned = model.fc1.weight_mask == 0
    before = model.fc1.weight_orig.detach().clone()
    _train_step("optimizer")(model, x, y, weight_decay)
    return (int((model.fc1.weight_orig[pruned] != before[pruned]).sum()),
            int(torch.count_nonzero((model.fc1.weight_orig * model.fc1.weight_mask)[pruned])))


def _shrink_by_deepcopy(conv, nxt):
    import copy
    return copy.deepcopy(conv), copy.deepcopy(nxt)


@pytest.mark.parametrize("case", ["zeros", "truncation", "in place", "old_mask in place", "no zero_grad",
                                  "percentages", "deepcopy"])
def test_the_careless_wrong_answers_fail_with_a_hint_that_names_the_cause(case, data):
    fn, args, message = {
        "zeros": (checks.check_03_l1_mask, (_l1_mask_from_values,),
                  r"prunes 3 entries, expected 2\.\nHint: this t already holds 3 zeros, and torch prunes only k = "
                  r"round\(0.25 \* 8\) = round\(2\) = 2 .*not with `!= 0` on values you zeroed"),
        "truncation": (checks.check_03_l1_mask, (_l1_mask_truncating,),
                       r"l1_mask\(a random \(6, 1, 3, 3\) tensor, 0.35\)` prunes 18 entries, expected 19\.\nHint: prune "
                       r"exactly k = round\(0.35 \* 54\) = round\(18.9\) = 19 \(exercise 1: Python's `round`, half to "
                       r"even; `int` would truncate\)"),
        "in place": (checks.check_03_l1_mask, (_l1_mask_in_place,),
                     r"changed its argument t in place: in a module, t would be the layer's own weight\.\nHint: work "
                     r"on a copy: `t.abs\(\)` \(not `t.abs_\(\)`\)"),
        "old_mask in place": (checks.check_04_again_mask, (_again_mask_in_place,),
                              r"changed its argument old_mask in place\. In a module, old_mask is the layer's own "
                              r"`weight_mask` buffer.*\nHint: start from a copy, `mask = old_mask.clone\(\)`"),
        "no zero_grad": (checks.check_07_training_step, (_train_step(None), _moved_and_leaked, None, None),
                         r"after train_step\(<the lesson's model \(80% global L1\), called twice: .*\nHint: train_step "
                         r"is called 2 times on the same model here, and each call must be one step on its own batch: "
                         r"gradients add up in `.grad`"),
        "percentages": (checks.check_07_per_layer_amounts,
                        ({"conv1": 0, "conv2": 30, "fc1": 87, "fc2": 85, "fc3": 30}, data),
                        r"your amounts prune 232 of 59,838 weights.*\nHint: an int amount is a count of weights, not a "
                        r"percentage: amounts\['fc1'\] = 87 prunes 87 of fc1's 48,000 weights, not 87%\. Write a "
                        r"fraction as a float: 0.87\."),
        "deepcopy": (checks.check_08_shrink, (_shrink_by_deepcopy,),
                     r"raised RuntimeError from `copy.deepcopy`: Only Tensors created explicitly by the user \(graph "
                     r"leaves\) support the deepcopy protocol\. A pruned layer's `weight` is a plain attribute that "
                     r"the pruning hook computed with autograd on.*\(lesson 04, 'why deepcopy fails'\)"),
    }[case]
    e = failure(fn, *args)
    assert type(e) is CheckFailed and re.search(message, str(e)), str(e)


def test_right_but_unusual_answers_pass(capsys):
    """model.zero_grad() instead of opt.zero_grad(); 08-1 counted with the FlopCounterMode its hint names."""
    from torch.utils.flop_counter import FlopCounterMode

    def count(module, x):
        with FlopCounterMode(display=False) as counter:
            module(x)
        return counter.get_total_flops() // 2

    checks.check_07_training_step(_train_step("model"), _moved_and_leaked, None, None)
    checks.check_08_macs(lambda conv, h, w: count(conv, torch.zeros(1, conv.in_channels, h, w)),
                         lambda linear: count(linear, torch.zeros(1, linear.in_features)),
                         lambda model: count(model, torch.zeros(1, 1, 28, 28)))
    assert [line.split(" passed")[0] for line in capsys.readouterr().out.splitlines()] == ["Exercise 3", "Exercise 1"]


@pytest.mark.parametrize("lesson", ["03_random_unstructured", "04_under_the_hood", "07_accuracy_and_sparsity",
                                    "08_does_pruning_compress"])
def test_the_checks_of_lessons_03_04_07_08_pass_the_solutions_and_leave_the_random_generator_alone(lesson, capsys):
    from course.execute import code_cells, run_in_process

    import copy
    import warnings

    namespace: dict = {}
    root = Path(__file__).resolve().parents[1]
    passed = 0
    options = copy.copy(torch._tensor_str.PRINT_OPTS)  # the setup cells set print options and warning filters
    with warnings.catch_warnings():
        passed = _run_checks(code_cells(root / "solutions" / f"{lesson}.ipynb"), namespace, run_in_process)
    torch._tensor_str.PRINT_OPTS = options
    assert capsys.readouterr().out.count(" passed: ") == passed == 5


def _run_checks(cells, namespace, run_in_process) -> int:
    """Run a solution notebook's cells here; around each check cell, the global random generator must not move."""
    passed = 0
    for cell in cells:
        if not cell.source.startswith("checks.check_"):
            run_in_process(cell, namespace)
            continue
        torch.manual_seed(7)
        before = torch.random.get_rng_state()
        run_in_process(cell, namespace, quiet=False)
        assert torch.equal(torch.random.get_rng_state(), before), cell.source
        passed += 1
    return passed


# --------------------------------------- lessons 05 and 06: answers that cheat fail, in the notebook and the grader

def graded(check, *answers, seed: int = 2024) -> None:
    """What the grader does, in one process: cases from a seed the notebook never uses, ``collect_all`` (in the
    learner's kernel), the trip between processes, ``judge_all`` (at home)."""
    cases = check.cases(torch.Generator().manual_seed(seed))
    check.judge_all(cases, transfer(check.collect_all(transfer(cases), answers)))


def failures(check, *answers) -> list[CheckFailed]:
    """The failures of ``answers`` in the notebook's check cell and through the grader's steps: both must fail."""
    return [failure(check, *answers), failure(graded, check, *answers)]


class EqualsEverything:
    """A learner's object that claims to equal anything it is compared with."""

    def __eq__(self, other: object) -> bool:
        return True

    def __ne__(self, other: object) -> bool:
        return False

    __hash__ = object.__hash__


def expected_from_the_callers(fallback):
    """A learner's cheat: the first local called ``expected`` in the frames above the learner's function.

    The checks of lessons 05 and 06 computed torch's answer before calling the learner's function: this read it.
    """
    frame = sys._getframe(2)
    while frame is not None:
        if "expected" in frame.f_locals:
            return frame.f_locals["expected"]
        frame = frame.f_back
    return fallback


def pruned_params(state):
    return {(path, name[: -len("_mask")]) for path, _, name in (k.rpartition(".") for k in state) if name.endswith("_mask")}


def load_pruned_state(model, state):
    for path, name in pruned_params(state):
        torch.nn.utils.prune.identity(model.get_submodule(path), name)
    model.load_state_dict(state)
    lenet.refresh_pruned(model)
    return model


def threshold_pruning(mask_of=None) -> type:
    """The class of exercise 06-4; ``mask_of(self, t, default_mask)`` replaces its compute_mask."""

    class ThresholdPruning(torch.nn.utils.prune.BasePruningMethod):
        PRUNING_TYPE = "unstructured"

        def __init__(self, threshold):
            self.threshold = threshold

        def compute_mask(self, t, default_mask):
            if mask_of is not None:
                return mask_of(self, t, default_mask)
            return default_mask * (t.abs() >= self.threshold).to(default_mask.dtype)

    return ThresholdPruning


def threshold_unstructured_of(method: type):
    def threshold_unstructured(module, name, threshold):
        method.apply(module, name, threshold=threshold)
        return module
    return threshold_unstructured


def channel_activation(model, x):
    outputs = []
    handle = model.conv2.register_forward_hook(lambda module, args, out: outputs.append(out))
    with torch.no_grad():
        model(x)
    handle.remove()
    return torch.relu(outputs[0]).mean(dim=(0, 2, 3))


def scored_lenet(scores: torch.Tensor) -> torch.nn.Module:
    model = lenet.pretrained()
    torch.nn.utils.prune.ln_structured(model.conv2, "weight", amount=0.25, n=1, dim=0, importance_scores=scores)
    return model


@pytest.mark.parametrize("case", ["05-1", "05-2", "05-3", "05-4", "06-1", "06-2", "06-3 masks", "06-3 report", "06-4",
                                  "06-5 activation", "06-5 scores"])
def test_an_object_that_equals_everything_passes_no_check_of_lessons_05_and_06(case, data):
    """``collect`` hands the judge plain data: the object arrives as an opaque marker, or as a bool computed beside it."""
    anything = EqualsEverything()
    scores = lenet.checks.lesson06.activation_scores()
    method = threshold_pruning(lambda self, t, default_mask: anything)
    check, answers, message = {
        "05-1": (checks.check_05_bytes, [lambda n_in, n_out, amount=None: anything], "is a EqualsEverything"),
        "05-2": (checks.check_05_pruned_params, [lambda state: anything], "is a EqualsEverything"),
        "05-3": (checks.check_05_load_pruned_state, [lambda model, state: (load_pruned_state(model, state), anything)[1]],
                 "returned a EqualsEverything"),
        "05-4": (checks.check_05_plain_state_dict, [lambda model: anything], "is a EqualsEverything"),
        "06-1": (checks.check_06_zero_counts, [lambda shape, amount, dim=None: anything], "is a EqualsEverything"),
        "06-2": (checks.check_06_ln_structured_mask, [lambda t, amount, n, dim: anything], "is a EqualsEverything"),
        "06-3 masks": (checks.check_06_global_l1, [lambda tensors, amount: [anything for _ in tensors],
                                                   shares_and_threshold], "is a EqualsEverything"),
        "06-3 report": (checks.check_06_global_l1, [global_masks_ties(False), lambda tensors, masks: (anything, anything)],
                        "is a EqualsEverything"),
        "06-4": (checks.check_06_threshold_pruning, [method, threshold_unstructured_of(method)], "is a EqualsEverything"),
        "06-5 activation": (checks.check_06_activation_scores, [lambda model, x: anything, scores, scored_lenet(scores),
                                                                data], "is a EqualsEverything"),
        "06-5 scores": (checks.check_06_activation_scores, [channel_activation, anything, scored_lenet(scores), data],
                        "`scores` is a EqualsEverything"),
    }[case]
    for e in failures(check, *answers):
        assert message in str(e) and "\nHint: " in str(e), str(e)


@pytest.mark.parametrize("case", ["05-2", "06-2", "06-4", "06-5"])
def test_an_answer_read_from_the_checks_frames_fails(case, data):
    """The old checks of these exercises held torch's answer in a local ``expected`` while the learner's code ran;
    now the answer is computed after collect, in the judge, and no frame above the learner's code holds it."""
    method = threshold_pruning(lambda self, t, default_mask: expected_from_the_callers(default_mask))
    scores = lenet.checks.lesson06.activation_scores()
    check, answers = {
        "05-2": (checks.check_05_pruned_params, [lambda state: expected_from_the_callers({("", "weight")})]),
        "06-2": (checks.check_06_ln_structured_mask, [lambda t, amount, n, dim: expected_from_the_callers(
            torch.ones_like(t))]),
        "06-4": (checks.check_06_threshold_pruning, [method, threshold_unstructured_of(method)]),
        "06-5": (checks.check_06_activation_scores, [lambda model, x: expected_from_the_callers(torch.zeros(16)),
                                                     scores, scored_lenet(scores), data]),
    }[case]
    for e in failures(check, *answers):
        assert "\nHint: " in str(e)


def test_answers_right_on_every_case_in_the_checks_source_fail_on_the_drawn_ones():
    """A learner can read the fixed cases (and the notebook's outputs): tables of them fail on the cases drawn from
    the seed, and the messages name the exercise's function."""
    zeros_table = {(shape, amount, dim): lenet.checks.lesson06._torch_zeros(shape, amount, dim)
                   for shape, amount, dim in lenet.checks.lesson06.ZERO_CASES}
    fixed_bytes = [(400, 120, None), (400, 120, 0.3), (400, 120, 0.9), (84, 10, None), (84, 10, 0.5), (3, 2, 1),
                   (120, 84, 0.0), (7, 5, None)]
    bytes_table = {case: lenet.checks.lesson05._linear_bytes(*case) for case in fixed_bytes}
    for e in failures(checks.check_06_zero_counts, lambda shape, amount, dim=None: zeros_table.get((shape, amount, dim), 0)):
        assert re.search(r"`zeros_after\(\(\d+(, \d+)*,?\), [\d.]+(, dim=\d)?\)` is 0, expected \d+", str(e)), str(e)
    for e in failures(checks.check_05_bytes, lambda n_in, n_out, amount=None: bytes_table.get((n_in, n_out, amount), 0)):
        assert re.search(r"`linear_bytes\(\d+, \d+, [\w.]+\)` is 0, expected \d+", str(e)), str(e)


def test_lessons_05_and_06_pass_right_answers_on_other_seeds_and_leave_the_random_generator_alone(data, capsys):
    """The right answers pass in the check cell and on the cases of other seeds (the grader's secret seed)."""
    scores = lenet.checks.lesson06.activation_scores()
    method = threshold_pruning()

    def plain_state_dict(model):
        state = model.state_dict()
        return {key[: -len("_orig")] if key.endswith("_orig") else key:
                value * state[key[: -len("_orig")] + "_mask"] if key.endswith("_orig") else value
                for key, value in state.items() if not key.endswith("_mask")}

    def zeros_after(shape, amount, dim=None):
        units = math.prod(shape) if dim is None else shape[dim]
        return (amount if isinstance(amount, int) else round(amount * units)) * (math.prod(shape) // units)

    def linear_bytes(n_in, n_out, amount=None):
        return 4 * ((1 if amount is None else 2) * n_in * n_out + n_out)

    answers = [(checks.check_05_bytes, linear_bytes), (checks.check_05_pruned_params, pruned_params),
               (checks.check_05_load_pruned_state, load_pruned_state),
               (checks.check_05_plain_state_dict, plain_state_dict), (checks.check_06_zero_counts, zeros_after),
               (checks.check_06_ln_structured_mask, ln_mask_ties(True)),
               (checks.check_06_global_l1, global_masks_ties(True), shares_and_threshold),
               (checks.check_06_threshold_pruning, method, threshold_unstructured_of(method)),
               (checks.check_06_activation_scores, channel_activation, scores, scored_lenet(scores), data)]
    before = torch.random.get_rng_state()
    for check, *args in answers:
        check(*args)
        for seed in (1, 2, 3):
            graded(check, *args, seed=seed)
    assert torch.equal(torch.random.get_rng_state(), before)
    assert capsys.readouterr().out.splitlines() == [f"Exercise {check.exercise} passed: {check.what}"
                                                    for check, *_ in answers]


def test_lesson_06_judges_the_scores_and_model_the_exercise_notebook_builds(data):
    """Exercise 5 compares with the scores of the trained LeNet on the first 256 training images, which the judge
    computes itself (lesson06.activation_scores): the notebook's cells give the same scores and the same mask."""
    nb = read(Path(__file__).resolve().parents[1] / "solutions" / "06_pruning_methods.ipynb")
    namespace = {"torch": torch, "F": torch.nn.functional, "prune": torch.nn.utils.prune, "lenet": lenet,
                 "data": data, "device": "cpu"}
    for marker in ("def channel_activation(", "channel_act = channel_activation("):
        (cell,) = [c for c in nb.cells if c.cell_type == "code" and marker in c.source]
        exec(compile(cell.source, marker, "exec"), namespace)  # noqa: S102 - the course's own cell
    assert torch.equal(namespace["scores"], lenet.checks.lesson06.activation_scores())
    assert torch.equal(namespace["model"].conv2.weight_mask, scored_lenet(namespace["scores"]).conv2.weight_mask)


def test_a_raised_value_that_collect_returns_reaches_the_judge_in_both_ways():
    """attempt() hands the learner's exception to the judge as a value; only an exception collect let escape is
    the grader's error row (the notebook shows that one as a traceback)."""
    from lenet.checks import Check, attempt, exercise, fail
    from lenet.checks.core import CollectedError
    from lenet.checks.plain import Raised, transfer

    @exercise(1, "never raises")
    class check_99_raises(Check):
        """Introduced in tests/test_checks.py."""

        def collect(self, case, fn):
            return attempt(fn) if case.get("attempt", True) else fn()

        def judge(self, case, got):
            if isinstance(got, Raised):
                fail(f"it raised {got}", "do not raise")

    def boom():
        raise KeyError("k")

    with pytest.raises(CheckFailed, match=r"Exercise 1: it raised KeyError: 'k'\nHint: do not raise"):
        check_99_raises(boom)
    collected = transfer(check_99_raises.collect_all([{}], (boom,)))
    with pytest.raises(CheckFailed, match="it raised KeyError"):
        check_99_raises.judge_all([{}], collected)
    collected = transfer(check_99_raises.collect_all([{"attempt": False}], (boom,)))
    with pytest.raises(CollectedError) as info:
        check_99_raises.judge_all([{"attempt": False}], collected)
    assert (info.value.raised.type, info.value.raised.message) == ("KeyError", "'k'")
