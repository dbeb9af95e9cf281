"""Checks of lesson 03 · Random unstructured pruning of conv1 (solutions/03_random_unstructured.ipynb)."""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn.utils import prune

from .core import by_hand, call, check_equal, check_mask, describe_call, exercise, fail, show
from .reference import quiet_build, tensor_holder, torch_pruned_count


@exercise(1, "n_pruned(amount, n) counts like torch: a float is a fraction rounded half to even, an int a count")
def check_03_n_pruned(n_pruned: Callable[[float | int, int], int]) -> None:
    """``n_pruned(amount, n)`` is how many of ``n`` entries ``prune.random_unstructured`` zeroes.

    Introduced in solutions/03_random_unstructured.ipynb.
    """
    __tracebackhide__ = True
    for amount, n in [(0.3, 54), (0.25, 864), (5, 864), (0.5, 5), (0.5, 7), (0.25, 10), (0.75, 10), (0.5, 9),
                      (1, 54), (1.0, 54), (0, 54), (0.0, 54), (54, 54), (0.7, 3)]:
        check_equal(describe_call(n_pruned, amount, n), call(n_pruned, amount, n), torch_pruned_count(n, [amount]),
                    "that many entries of the mask are 0 after torch prunes an n-entry tensor. A float is a fraction, "
                    "rounded with Python's `round`, which sends exact halves to the even neighbour (2.5 -> 2, "
                    "7.5 -> 8); an int is a count, used as it is (1 prunes one entry, 1.0 all of them). "
                    "Test the type with `isinstance(amount, int)`.")


def _names_case(label: str, build: Callable[[], nn.Module], pruned: list[str]) -> tuple[str, nn.Module, list[str]]:
    """(label, a module built without the global RNG, the names to prune in turn)."""
    return label, quiet_build(build), pruned


def _torch_names_after(module: nn.Module, pruned: list[str]) -> tuple[list[str], list[str]]:
    """torch's own (named_parameters() names, state_dict() keys) after pruning each name in turn."""
    for name in pruned:
        prune.identity(module, name)
    return [n for n, _ in module.named_parameters(recurse=False)], list(module.state_dict())


def _three_parameters() -> nn.Module:
    module = nn.Module()
    for name in ("a", "b", "c"):
        module.register_parameter(name, nn.Parameter(torch.ones(2)))
    return module


@exercise(2, "names_after_pruning predicts named_parameters() and state_dict() after pruning, in any order")
def check_03_names_after_pruning(names_after_pruning: Callable[[list[str], list[str], list[str]],
                                                               tuple[list[str], list[str]]]) -> None:
    """``names_after_pruning(params, buffers, pruned)`` is ``(parameter names, state_dict keys)`` of a module with
    these parameters and persistent buffers (in order) after pruning each name of ``pruned`` in turn.

    Introduced in solutions/03_random_unstructured.ipynb.
    """
    __tracebackhide__ = True
    hint = ("pruning `name` deletes the parameter `name` and registers the same tensor again as `name + '_orig'`, "
            "so it goes to the END of the parameters; the mask is a new buffer `name + '_mask'`, after the buffers "
            "already there. `state_dict()` holds the parameters first, in that order, then the persistent buffers; "
            "the plain attribute `name` is not saved. Compare with `prune.identity(module, name)` on a real module.")
    cases = [
        _names_case("nn.Conv2d(1, 6, 3), pruning 'weight' then 'bias'", lambda: nn.Conv2d(1, 6, 3), ["weight", "bias"]),
        _names_case("nn.Conv2d(1, 6, 3), pruning 'bias' then 'weight'", lambda: nn.Conv2d(1, 6, 3), ["bias", "weight"]),
        _names_case("nn.Linear(4, 3), pruning 'weight'", lambda: nn.Linear(4, 3), ["weight"]),
        _names_case("nn.Linear(4, 3, bias=False), pruning 'weight'", lambda: nn.Linear(4, 3, bias=False), ["weight"]),
        _names_case("nn.BatchNorm1d(3), pruning 'weight'", lambda: nn.BatchNorm1d(3), ["weight"]),
        _names_case("a module with parameters a, b, c, pruning 'c' then 'a'", _three_parameters, ["c", "a"]),
    ]
    for label, module, pruned in cases:
        params = [n for n, _ in module.named_parameters(recurse=False)]
        buffers = [n for n in module.state_dict() if n not in params]
        expected = _torch_names_after(module, pruned)
        got = call(names_after_pruning, list(params), list(buffers), list(pruned))
        what = f"names_after_pruning({params}, {buffers}, {pruned}) for {label}"
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            fail(f"`{what}` is {show(got)}, expected a pair (parameter names, state_dict keys).", hint)
        check_equal(f"the parameter names of {what}", got[0], expected[0], hint)
        check_equal(f"the state_dict keys of {what}", got[1], expected[1], hint)


#: The calls of exercise 3: (name, amount) for prune.random_unstructured on a fresh conv1 (54 weights, 6 biases).
#: None of them is in notebook 99 (troubleshooting), which showed 1.5, -0.1, 100, "x", True and "weigth".
BAD_CALLS = [("weight", 1.0), ("weight", 55), ("bias", 6), ("bias", 7), ("weight", False), ("weight", None),
             ("Weight", 0.3), ("weight", -1)]


@exercise(3, "what each bad call of prune.random_unstructured raises")
def check_03_errors(outcomes: list[str]) -> None:
    """``outcomes[i]`` names the exception ``prune.random_unstructured(conv, *BAD_CALLS[i])`` raises, or "ok".

    Introduced in solutions/03_random_unstructured.ipynb.
    """
    __tracebackhide__ = True
    expected = []
    for name, amount in BAD_CALLS:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            conv = nn.Conv2d(1, 6, 3)
            try:
                prune.random_unstructured(conv, name=name, amount=amount)
                expected.append("ok")
            except Exception as e:  # noqa: BLE001 - the point is which one
                expected.append(type(e).__name__)
    if isinstance(outcomes, (list, tuple)):
        outcomes = [o.__name__ if isinstance(o, type) and issubclass(o, BaseException) else o for o in outcomes]
    hint = ("write the exception's class name as a string ('ValueError'), or 'ok' when the call succeeds, one per "
            f"call ({len(BAD_CALLS)} in all). A float must lie in [0, 1] (1.0 prunes everything) and an int in [0, n], "
            "n being the entries of the tensor named (54 weights, 6 biases), else ValueError; anything that is not a "
            "number is a TypeError; a bool is an int: True reaches `topk` and fails there, but False prunes 0 "
            "entries and never calls `topk`; names are case-sensitive, and a missing one is an AttributeError.")
    if isinstance(outcomes, (list, tuple)) and len(outcomes) == len(expected):
        for i, ((name, amount), mine, right) in enumerate(zip(BAD_CALLS, outcomes, expected)):
            if mine != right:
                fail(f"`outcomes[{i}]` is {show(mine)}, expected {right!r} for "
                     f"prune.random_unstructured(conv, name={name!r}, amount={amount!r}).", hint)
    check_equal("outcomes", outcomes, expected, hint)


def _torch_l1_mask(t: torch.Tensor, amount: float | int) -> torch.Tensor:
    """torch's own mask of ``prune.l1_unstructured(amount)`` on ``t``."""
    holder = tensor_holder(t)
    prune.l1_unstructured(holder, name="weight", amount=amount)
    return holder.weight_mask


#: Exercise 4 must compute the mask itself: calling torch's L1 pruning fails the check.
_L1_BY_HAND = ((prune.L1Unstructured, "compute_mask", "prune.L1Unstructured.compute_mask"),
               (prune, "l1_unstructured", "prune.l1_unstructured"))


@exercise(4, "l1_mask prunes exactly the k smallest |t| like torch's L1-unstructured mask, ties included")
def check_03_l1_mask(l1_mask: Callable[[torch.Tensor, float | int], torch.Tensor]) -> None:
    """``l1_mask(t, amount)`` returns a mask like ``prune.l1_unstructured``'s for ``t``: the same number of zeros,
    on entries with the smallest ``|t|``; among entries tied at the cut any choice is accepted.

    Introduced in solutions/03_random_unstructured.ipynb.
    """
    __tracebackhide__ = True
    gen = torch.Generator().manual_seed(3)
    ties1, ties2 = "[0.5, -0.1, 0.1, 0.3, -0.1, 0.2]", "[[0.2, -0.2, 0.2, 0.1], [-0.2, 0.2, 0.2, -0.2]]"
    cases = [
        ("a random (6, 1, 3, 3) tensor", torch.randn(6, 1, 3, 3, generator=gen), 0.3),
        (f"torch.tensor({ties1})", torch.tensor([0.5, -0.1, 0.1, 0.3, -0.1, 0.2]), 2),  # 3 tie at |0.1|, 2 pruned
        (f"torch.tensor({ties2})", torch.tensor([[0.2, -0.2, 0.2, 0.1], [-0.2, 0.2, 0.2, -0.2]]), 0.5),
        ("a random (4, 5) tensor", torch.randn(4, 5, generator=gen), 7),
        ("a random (3, 4) tensor", torch.randn(3, 4, generator=gen), 1.0),
        ("a random (2, 3) tensor", torch.randn(2, 3, generator=gen), 0),
        ("a random (2, 3) tensor", torch.randn(2, 3, generator=gen), 0.0),
    ]
    for label, t, amount in cases:
        expected = _torch_l1_mask(t, amount)
        what = f"{getattr(l1_mask, '__name__', 'l1_mask')}({label}, {amount!r})"
        k = int((expected == 0).sum())
        hint = (f"prune exactly k = {k} entries (the count rules of exercise 1): the k smallest of `t.abs()`, "
                "e.g. the indices `torch.topk(t.abs().flatten(), k, largest=False).indices`, and keep the rest at 1, "
                "in a float mask shaped like t (`torch.ones_like(t)`). A threshold from `torch.kthvalue` prunes every "
                "entry equal to it, so on ties it prunes more than k; when entries tie at the cut, any k of them "
                "will do. k = 0 needs no call at all (`kthvalue` refuses k = 0).")
        with by_hand(*_L1_BY_HAND, hint=hint):
            mine = call(l1_mask, t.clone(), amount)
        check_mask(what, mine, expected, t.abs(), hint, score="|t|")


@exercise(5, "random_mask reproduces prune.random_unstructured's seeded mask with its own torch.Generator")
def check_03_random_mask(random_mask: Callable[[torch.Tensor, float | int, int], torch.Tensor]) -> None:
    """``random_mask(t, amount, seed)`` equals the mask of ``torch.manual_seed(seed)``; ``prune.random_unstructured``,
    without touching torch's global random number generator.

    Introduced in solutions/03_random_unstructured.ipynb.
    """
    __tracebackhide__ = True
    hint = ("`RandomUnstructured.compute_mask` draws `prob = torch.rand_like(t)` and zeroes the k entries with the "
            "LARGEST prob: `torch.topk(prob.flatten(), k).indices`. Draw the same numbers from your own "
            "`g = torch.Generator().manual_seed(seed)` with `torch.rand(t.shape, generator=g)`: a fresh generator "
            "seeded like the global one gives the same sequence.")
    for shape, amount, seed in [((6, 1, 3, 3), 0.3, 0), ((4, 5), 7, 1), ((10,), 0.5, 2), ((3, 3), 0, 3),
                                ((120, 84), 0.9, 4)]:
        t = torch.ones(shape)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            holder = tensor_holder(t)
            prune.random_unstructured(holder, name="weight", amount=amount)
        with torch.random.fork_rng(devices=[]), by_hand(
                (prune.RandomUnstructured, "compute_mask", "prune.RandomUnstructured.compute_mask"),
                (prune, "random_unstructured", "prune.random_unstructured"), hint=hint):
            torch.manual_seed(12345)
            mine = call(random_mask, t.clone(), amount, seed)
            after = torch.rand(4)
            torch.manual_seed(12345)
            untouched = torch.rand(4)
        check_equal(f"random_mask(torch.ones{shape}, {amount!r}, seed={seed})", mine, holder.weight_mask, hint)
        if not torch.equal(after, untouched):
            fail(f"random_mask(torch.ones{shape}, {amount!r}, seed={seed}) gives the right mask but changed torch's "
                 "global random number generator, so your next seeded cell would draw other numbers.",
                 "do not call `torch.manual_seed` or `torch.rand` without a generator: make a "
                 "`torch.Generator().manual_seed(seed)` and pass `generator=g` to `torch.rand`.")
