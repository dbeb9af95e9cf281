"""Checks of lesson 03 · Random unstructured pruning of conv1 (solutions/03_random_unstructured.ipynb)."""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn.utils import prune

from .core import call, check_equal, describe_call, exercise, fail, show
from .reference import tensor_holder, torch_pruned_count


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


@exercise(2, "the parameter names and state_dict keys after pruning weight, then bias")
def check_03_names_after_pruning(param_names: list[str], keys: list[str]) -> None:
    """``param_names`` and ``keys`` list ``named_parameters()`` and ``state_dict()`` of a Conv2d pruned on both tensors.

    Introduced in solutions/03_random_unstructured.ipynb.
    """
    __tracebackhide__ = True
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        conv = nn.Conv2d(1, 6, 3)
        prune.random_unstructured(conv, name="weight", amount=0.3)
        prune.random_unstructured(conv, name="bias", amount=0.3)
    check_equal("param_names", param_names, [name for name, _ in conv.named_parameters()],
                "pruning `name` deletes the parameter `name` and registers the same tensor again as `name_orig`, "
                "so it goes to the END of the parameters: after the weight, [bias, weight_orig]; then the bias "
                "moves behind it. The masks are buffers, and `weight` and `bias` are plain attributes now.")
    check_equal("keys", keys, list(conv.state_dict()),
                "`state_dict()` holds the parameters first (in the order of `named_parameters()`), then the "
                "persistent buffers (`weight_mask`, then `bias_mask`); the plain attributes `weight` and `bias` "
                "are not saved.")


#: The calls of exercise 3: (name, amount) for prune.random_unstructured on a fresh conv1.
BAD_CALLS = [("weight", 1.5), ("weight", -0.1), ("weight", 100), ("weight", 54), ("weight", "x"),
             ("weight", True), ("weigth", 0.3)]


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
    hint = ("write the exception's class name as a string ('ValueError'), or 'ok' when the call succeeds. "
            "A float must lie in [0, 1] and an int in [0, n] (ValueError, with n = 54 weights here); "
            "a str is not a number (TypeError); a bool passes the checks as an int and fails in `topk` "
            "(TypeError); a misspelled name is a missing attribute.")
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


@exercise(4, "l1_mask equals torch's L1-unstructured mask, ties included")
def check_03_l1_mask(l1_mask: Callable[[torch.Tensor, float | int], torch.Tensor]) -> None:
    """``l1_mask(t, amount)`` returns the mask ``prune.l1_unstructured`` computes for ``t``, bit for bit.

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
        mine = call(l1_mask, t.clone(), amount)
        k = int((expected == 0).sum())
        hint = (f"torch zeroes exactly k = {k} entries (the count rules of exercise 1), those that "
                "`torch.topk(t.abs().flatten(), k, largest=False).indices` returns, and keeps the rest at 1, in a "
                "float mask shaped like t (`torch.ones_like(t)`). A threshold from `torch.kthvalue` prunes every "
                "entry equal to it, so on ties it prunes more than k; `topk` picks exactly k. "
                "k = 0 needs no call at all (`kthvalue` refuses k = 0).")
        if isinstance(mine, torch.Tensor) and mine.shape == expected.shape and int((mine == 0).sum()) != k:
            fail(f"`{what}` has {int((mine == 0).sum())} zeros, expected {k}.", hint)
        check_equal(what, mine, expected, hint)


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
        with torch.random.fork_rng(devices=[]):
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
