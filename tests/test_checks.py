"""lenet.checks: the comparison helpers, the hints, the clean tracebacks, and the checks of lesson 01."""
from __future__ import annotations

import inspect
import re

import numpy as np
import pytest
import torch

import lenet
from lenet import checks
from lenet.checks import CheckFailed, NotAttempted, check_equal

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
                   "    return size[0]\nchecks.check_01_conv_out(conv_out, 576)")
    out = capsys.readouterr().out
    assert "----> 3     return size[0]" in out and "TypeError: 'int' object is not subscriptable" in out
    assert not LIBRARY_FILE.search(out)


# -------------------------------------------------------------------------- the checks of lesson 01

def lesson_checks() -> list:
    return [f for name, f in vars(checks).items() if name.startswith("check_") and name != "check_equal"]


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


def confusion(true: torch.Tensor, pred: torch.Tensor, n: int = 10) -> torch.Tensor:
    return torch.bincount(true * n + pred, minlength=n * n).reshape(n, n)


def test_lesson_01_checks_pass_on_right_answers(model, data, capsys):
    x = torch.zeros(8, 1, 28, 28)
    checks.check_01_batch_shapes(dict(lenet.layer_shapes(model, x)), model)
    checks.check_01_conv_out(conv_out, 16 * 6 * 6)
    checks.check_01_param_counts(lambda c_in, c_out, k: lenet.count_parameters(torch.nn.Conv2d(c_in, c_out, k)),
                                 lambda n_in, n_out: lenet.count_parameters(torch.nn.Linear(n_in, n_out)))
    preds = lenet.predict(model, data.test_x)
    checks.check_01_accuracy((preds == data.test_y).sum().item() / len(preds), model, data)
    m = confusion(data.test_y, preds)
    off = m * (1 - torch.eye(10, dtype=torch.int64))
    checks.check_01_confusion(confusion, tuple(int(i) for i in torch.nonzero(off == off.max())[0]), model, data)
    assert capsys.readouterr().out.splitlines() == [f"Exercise {i} passed: {f.what}" for i, f in enumerate(
        [checks.check_01_batch_shapes, checks.check_01_conv_out, checks.check_01_param_counts,
         checks.check_01_accuracy, checks.check_01_confusion], 1)]


def test_lesson_01_checks_do_not_touch_the_global_random_generator(model, data):
    torch.manual_seed(5)
    checks.check_01_conv_out(conv_out, 576)
    checks.check_01_param_counts(lambda a, b, k: b * a * k * k + b, lambda a, b: a * b + b)
    drawn = torch.rand(3)
    torch.manual_seed(5)
    assert torch.equal(drawn, torch.rand(3))


@pytest.mark.parametrize("case, message", [
    ("shapes_of_one_image", "Exercise 1: `shapes['conv1']` is (1, 6, 26, 26), expected (8, 6, 26, 26)"),
    ("conv_out_without_stride", "Exercise 2: `wrong_conv_out(28, 3, stride=2, padding=1)` is 26, expected 14."),
    ("conv_out_true_division", "Exercise 2: `wrong_conv_out(28, 3, stride=1, padding=0)` is 26.0 (a float), "
                               "expected the int 26."),
    ("fc1_without_pooling", "Exercise 2: `fc1_inputs_32` is 12544, expected 576."),
    ("params_without_bias", "Exercise 3: `conv_params(1, 6, 3)` is 54, expected 60."),
    ("accuracy_as_a_count", "Exercise 4: `acc` is 967, expected 0.967."),
    ("confusion_transposed", "Exercise 5: `confusion_matrix(tensor([0, 1, 1, 2, 2, 2]), tensor([0, 2, 1, 2, 0, 2]), 3)` is "),
    ("pair_from_the_diagonal", "Exercise 5: `most_confused` is (0, 0), expected (5, 8): 6 test images of digit 5"),
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

    run = {
        "shapes_of_one_image": lambda: checks.check_01_batch_shapes(
            dict(lenet.layer_shapes(model, torch.zeros(1, 1, 28, 28))), model),
        "conv_out_without_stride": lambda: checks.check_01_conv_out(wrong_conv_out, 576),
        "conv_out_true_division": lambda: checks.check_01_conv_out(wrong_conv_out, 576),
        "fc1_without_pooling": lambda: checks.check_01_conv_out(conv_out, 16 * 28 * 28),
        "params_without_bias": lambda: checks.check_01_param_counts(conv_params, linear_params),
        "accuracy_as_a_count": lambda: checks.check_01_accuracy(
            (lenet.predict(model, data.test_x) == data.test_y).sum().item(), model, data),
        "confusion_transposed": lambda: checks.check_01_confusion(confusion_matrix, (5, 8), model, data),
        "pair_from_the_diagonal": lambda: checks.check_01_confusion(confusion, (0, 0), model, data),
    }[case]
    e = failure(run)
    assert type(e) is CheckFailed
    assert message in str(e)
    hint = str(e).split("\nHint: ", 1)[1]
    assert re.search(r"torch|lenet|help\(|//", hint), hint  # the hint names an API or the operator to use


def test_lesson_10_checks_pass_on_right_answers_and_leave_the_random_generator_alone(tmp_path, capsys):
    import statistics

    from torch.nn.utils import prune

    def remove_all(model):
        return lenet.remove_pruning(model)

    def int8_zero_mask(w):
        return torch.round(w / (w.abs().max() / 127.5)) == 0

    def ship(model, example, path):
        lenet.remove_pruning(model)
        program = torch.export.export(model, (example.clone(),), dynamic_shapes={"x": {0: torch.export.Dim("b")}})
        torch.export.save(program, path)

    def load_int8(path, widths):
        model = lenet.quantize_int8(lenet.SlimLeNet(*widths))
        model.load_state_dict(torch.load(path, weights_only=True))
        return model

    model = lenet.pretrained()
    torch.manual_seed(0)
    prune.random_unstructured(model.fc1, "weight", amount=0.5)
    w = model.fc1.weight.detach()
    torch.manual_seed(7)
    before = torch.random.get_rng_state()
    checks.check_10_remove_all(remove_all)
    checks.check_10_int8_zeros(int8_zero_mask, int((int8_zero_mask(w) & (w != 0)).sum()))
    checks.check_10_ship(ship)
    checks.check_10_median_speedup(lambda base, other: statistics.median(b / o for b, o in zip(base, other)))
    checks.check_10_load_int8(load_int8)
    assert torch.equal(torch.random.get_rng_state(), before)
    assert capsys.readouterr().out.count("passed") == 5
