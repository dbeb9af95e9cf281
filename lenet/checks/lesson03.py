"""Checks of lesson 03 · Random unstructured pruning of conv1 (solutions/03_random_unstructured.ipynb).

Each check has three parts (docs/authoring.md, "Add a check"): ``cases`` (plain data), ``collect`` (runs the
learner's code where it runs) and ``judge`` (torch's answer and the hint).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.nn.utils import prune

from .core import Check, by_hand, call, check_equal, check_mask, exercise, fail, show, written_call
from .reference import quiet_build, tensor_holder, torch_pruned_count


def _draw(gen: torch.Generator, low: int, high: int) -> int:
    """An int in [low, high] from ``gen``."""
    return int(torch.randint(low, high + 1, (1,), generator=gen))


def _draw_fraction(gen: torch.Generator) -> float:
    """A float amount in (0, 1) with two decimals, from ``gen``."""
    return _draw(gen, 1, 99) / 100


@exercise(1, "n_pruned(amount, n) counts like torch: a float is a fraction rounded half to even, an int a count")
class check_03_n_pruned(Check):
    """``n_pruned(amount, n)`` is how many of ``n`` entries ``prune.random_unstructured`` zeroes.

    Introduced in solutions/03_random_unstructured.ipynb.
    """

    def cases(self, gen: torch.Generator) -> list[dict]:
        pairs = [(0.3, 54), (0.25, 864), (5, 864), (0.5, 5), (0.5, 7), (0.25, 10), (0.75, 10), (0.5, 9), (1, 54),
                 (1.0, 54), (0, 54), (0.0, 54), (54, 54), (0.7, 3), (0.35, 54)]
        n = _draw(gen, 2, 500)
        pairs += [(_draw_fraction(gen), n), (0.5, 2 * _draw(gen, 1, 200) + 1), (_draw(gen, 0, n), n)]
        return [{"amount": amount, "n": n} for amount, n in pairs]

    def collect(self, case: dict, n_pruned: Callable[[float | int, int], int]) -> Any:
        return call(n_pruned, case["amount"], case["n"])

    def judge(self, case: dict, got: Any) -> None:
        amount, n = case["amount"], case["n"]
        check_equal(written_call("n_pruned", amount, n), got, torch_pruned_count(n, [amount]),
                    "that many entries of the mask are 0 after torch prunes an n-entry tensor. A float is a fraction, "
                    "rounded with Python's `round`, which sends exact halves to the even neighbour (2.5 -> 2, "
                    "7.5 -> 8), not truncated with `int` (0.35 of 54 is 18.9, so 19); an int is a count, used as it "
                    "is (1 prunes one entry, 1.0 all of them). Test the type with `isinstance(amount, int)`.")


def _module_with(params: list[str], buffers: list[str]) -> nn.Module:
    """A module whose own parameters and persistent buffers have these names, in this order."""
    module = nn.Module()
    for name in params:
        module.register_parameter(name, nn.Parameter(torch.ones(2)))
    for name in buffers:
        module.register_buffer(name, torch.zeros(2))
    return module


#: Exercise 2's modules by kind: how to build each one (without the global random generator).
_MODULES: dict[str, Callable[[], nn.Module]] = {
    "conv": lambda: nn.Conv2d(1, 6, 3),
    "linear": lambda: nn.Linear(4, 3),
    "linear, no bias": lambda: nn.Linear(4, 3, bias=False),
    "batchnorm": lambda: nn.BatchNorm1d(3),
}


def _names_module(case: dict) -> nn.Module:
    """A fresh module for an exercise 2 case: one of :data:`_MODULES`, or one with the case's own names."""
    if case["kind"] in _MODULES:
        return quiet_build(_MODULES[case["kind"]])
    return _module_with(case["params"], case["buffers"])


@exercise(2, "names_after_pruning predicts named_parameters() and state_dict() after pruning, in any order")
class check_03_names_after_pruning(Check):
    """``names_after_pruning(params, buffers, pruned)`` is ``(parameter names, state_dict keys)`` of a module with
    these parameters and persistent buffers (in order) after pruning each name of ``pruned`` in turn.

    Introduced in solutions/03_random_unstructured.ipynb.
    """

    def cases(self, gen: torch.Generator) -> list[dict]:
        made = [("nn.Conv2d(1, 6, 3)", "conv", ["weight", "bias"]), ("nn.Conv2d(1, 6, 3)", "conv", ["bias", "weight"]),
                ("nn.Linear(4, 3)", "linear", ["weight"]), ("nn.Linear(4, 3, bias=False)", "linear, no bias", ["weight"]),
                ("nn.BatchNorm1d(3)", "batchnorm", ["weight"])]
        cases = []
        for label, kind, pruned in made:
            module = quiet_build(_MODULES[kind])
            params = [n for n, _ in module.named_parameters(recurse=False)]
            buffers = [n for n in module.state_dict() if n not in params]
            cases.append({"label": label, "kind": kind, "params": params, "buffers": buffers, "pruned": pruned})
        cases.append({"label": "a module with parameters a, b, c", "kind": "names", "params": ["a", "b", "c"],
                      "buffers": [], "pruned": ["c", "a"]})
        names = [chr(ord("a") + int(i)) for i in torch.randperm(6, generator=gen)]  # unseen names and orders
        params, buffers = names[:_draw(gen, 2, 4)], [f"buf_{n}" for n in names[4:]]
        pruned = [params[int(i)] for i in torch.randperm(len(params), generator=gen)][:_draw(gen, 1, len(params))]
        cases.append({"label": f"a module with parameters {', '.join(params)} and buffers {', '.join(buffers)}",
                      "kind": "names", "params": params, "buffers": buffers, "pruned": pruned})
        return cases

    def collect(self, case: dict, names_after_pruning: Callable[[list[str], list[str], list[str]],
                                                                tuple[list[str], list[str]]]) -> Any:
        return call(names_after_pruning, list(case["params"]), list(case["buffers"]), list(case["pruned"]))

    def judge(self, case: dict, got: Any) -> None:
        hint = ("pruning `name` deletes the parameter `name` and registers the same tensor again as `name + '_orig'`, "
                "so it goes to the END of the parameters; the mask is a new buffer `name + '_mask'`, after the buffers "
                "already there. `state_dict()` holds the parameters first, in that order, then the persistent "
                "buffers; the plain attribute `name` is not saved. Compare with `prune.identity(module, name)` on a "
                "real module.")
        module = _names_module(case)
        for name in case["pruned"]:
            prune.identity(module, name)
        expected = ([n for n, _ in module.named_parameters(recurse=False)], list(module.state_dict()))
        what = (f"names_after_pruning({case['params']}, {case['buffers']}, {case['pruned']}) for {case['label']}, "
                f"pruning {' then '.join(repr(n) for n in case['pruned'])}")
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            fail(f"`{what}` is {show(got)}, expected a pair (parameter names, state_dict keys).", hint)
        check_equal(f"the parameter names of {what}", got[0], expected[0], hint)
        check_equal(f"the state_dict keys of {what}", got[1], expected[1], hint)


#: The calls of exercise 3: (name, amount) for prune.random_unstructured on a fresh conv1 (54 weights, 6 biases).
#: None of them is in notebook 99 (troubleshooting), which showed 1.5, -0.1, 100, "x", True and "weigth".
BAD_CALLS = [("weight", 1.0), ("weight", 55), ("bias", 6), ("bias", 7), ("weight", False), ("weight", None),
             ("Weight", 0.3), ("weight", -1)]


@exercise(3, "what each bad call of prune.random_unstructured raises")
class check_03_errors(Check):
    """``outcomes[i]`` names the exception ``prune.random_unstructured(conv, *BAD_CALLS[i])`` raises, or "ok".

    Introduced in solutions/03_random_unstructured.ipynb.
    """

    def collect(self, case: dict, outcomes: list[str]) -> Any:
        if isinstance(outcomes, (list, tuple)):  # an exception class is accepted for its name
            return [o.__name__ if isinstance(o, type) and issubclass(o, BaseException) else o for o in outcomes]
        return outcomes

    def judge(self, case: dict, got: Any) -> None:
        expected = []
        for name, amount in BAD_CALLS:
            conv = quiet_build(lambda: nn.Conv2d(1, 6, 3))
            try:
                with torch.random.fork_rng(devices=[]):
                    prune.random_unstructured(conv, name=name, amount=amount)
                expected.append("ok")
            except Exception as e:  # noqa: BLE001 - the point is which one
                expected.append(type(e).__name__)
        hint = ("write the exception's class name as a string ('ValueError'), or 'ok' when the call succeeds, one per "
                f"call ({len(BAD_CALLS)} in all). A float must lie in [0, 1] (1.0 prunes everything) and an int in "
                "[0, n], n being the entries of the tensor named (54 weights, 6 biases), else ValueError; anything "
                "that is not a number is a TypeError; a bool is an int: True reaches `topk` and fails there, but "
                "False prunes 0 entries and never calls `topk`; names are case-sensitive, and a missing one is an "
                "AttributeError.")
        if isinstance(got, (list, tuple)) and len(got) == len(expected):
            for i, ((name, amount), mine, right) in enumerate(zip(BAD_CALLS, got, expected)):
                if mine != right:
                    fail(f"`outcomes[{i}]` is {show(mine)}, expected {right!r} for "
                         f"prune.random_unstructured(conv, name={name!r}, amount={amount!r}).", hint)
        check_equal("outcomes", got, expected, hint)


#: Exercise 4 must compute the mask itself: calling torch's L1 pruning fails the check.
_L1_BY_HAND = ((prune.L1Unstructured, "compute_mask", "prune.L1Unstructured.compute_mask"),
               (prune, "l1_unstructured", "prune.l1_unstructured"))

#: Exercise 4's hint, the part that does not depend on the case.
_L1_HINT = ("the k smallest of `t.abs()`, e.g. the indices `torch.topk(t.abs().flatten(), k, largest=False).indices`, "
            "set to 0 in a float mask shaped like t (`torch.ones_like(t)`), the rest kept at 1. A threshold from "
            "`torch.kthvalue` prunes every entry equal to it, so on ties it prunes more than k; when entries tie at "
            "the cut, any k of them will do. k = 0 needs no call at all (`kthvalue` refuses k = 0).")


def _torch_l1_mask(t: torch.Tensor, amount: float | int) -> torch.Tensor:
    """torch's own mask of ``prune.l1_unstructured(amount)`` on ``t``."""
    holder = tensor_holder(t)
    prune.l1_unstructured(holder, name="weight", amount=amount)
    return holder.weight_mask


@exercise(4, "l1_mask prunes exactly the k smallest |t| like torch's L1-unstructured mask, ties and zeros included")
class check_03_l1_mask(Check):
    """``l1_mask(t, amount)`` returns a mask like ``prune.l1_unstructured``'s for ``t``: the same number of zeros,
    on entries with the smallest ``|t|``; among entries tied at the cut any choice is accepted. ``t`` is left as it is.

    Introduced in solutions/03_random_unstructured.ipynb.
    """

    def cases(self, gen: torch.Generator) -> list[dict]:
        ties1, ties2 = "[0.5, -0.1, 0.1, 0.3, -0.1, 0.2]", "[[0.2, -0.2, 0.2, 0.1], [-0.2, 0.2, 0.2, -0.2]]"
        zeros = "[[0.0, 0.4, -0.2, 0.0], [0.5, 0.0, 0.1, -0.3]]"
        made = [
            ("a random (6, 1, 3, 3) tensor", torch.randn(6, 1, 3, 3, generator=gen), 0.3),
            (f"torch.tensor({ties1})", torch.tensor([0.5, -0.1, 0.1, 0.3, -0.1, 0.2]), 2),  # 3 tie at |0.1|, 2 pruned
            (f"torch.tensor({ties2})", torch.tensor([[0.2, -0.2, 0.2, 0.1], [-0.2, 0.2, 0.2, -0.2]]), 0.5),
            (f"torch.tensor({zeros})", torch.tensor([[0.0, 0.4, -0.2, 0.0], [0.5, 0.0, 0.1, -0.3]]), 0.25),  # 3 zeros, 2 pruned
            ("a random (6, 1, 3, 3) tensor", torch.randn(6, 1, 3, 3, generator=gen), 0.35),  # 18.9: rounded, not cut
            ("a random (4, 5) tensor", torch.randn(4, 5, generator=gen), 7),
            ("a random (3, 4) tensor", torch.randn(3, 4, generator=gen), 1.0),
            ("a random (2, 3) tensor", torch.randn(2, 3, generator=gen), 0),
            ("a random (2, 3) tensor", torch.randn(2, 3, generator=gen), 0.0),
        ]
        rows, cols = _draw(gen, 3, 12), _draw(gen, 3, 12)
        t = torch.randn(rows, cols, generator=gen)
        made.append((f"a random ({rows}, {cols}) tensor", t, _draw_fraction(gen)))
        holes = t * (torch.rand(rows, cols, generator=gen) > 0.4)  # about 40% zeros, fewer pruned than that
        made.append((f"a random ({rows}, {cols}) tensor holding {int((holes == 0).sum())} zeros", holes + 0.0,
                     _draw(gen, 0, max(0, int((holes == 0).sum()) - 1))))
        return [{"label": label, "t": t, "amount": amount} for label, t, amount in made]

    def collect(self, case: dict, l1_mask: Callable[[torch.Tensor, float | int], torch.Tensor]) -> Any:
        t = case["t"]
        with by_hand(*_L1_BY_HAND, hint=_L1_HINT):
            mask = call(l1_mask, t, case["amount"])
        return {"mask": mask, "t": t}  # t as the function left it

    def judge(self, case: dict, got: Any) -> None:
        t, amount = case["t"], case["amount"]
        expected = _torch_l1_mask(t, amount)
        what = f"l1_mask({case['label']}, {amount!r})"
        k = int((expected == 0).sum())
        if isinstance(amount, float):
            count = (f"k = round({amount} * {t.numel()}) = round({amount * t.numel():.4g}) = {k} (exercise 1: "
                     "Python's `round`, half to even; `int` would truncate)")
        else:
            count = f"k = {k} (an int amount is a count)"
        hint = f"prune exactly {count}: {_L1_HINT}"
        if bool((t == 0).any()):
            hint = (f"this t already holds {int((t == 0).sum())} zeros, and torch prunes only {count}: a zero is "
                    "pruned only when it is among the k, so build the mask from the indices you prune "
                    "(`torch.ones_like(t)`, then 0 at those indices), not with `!= 0` on values you zeroed. "
                    + _L1_HINT)
        if not torch.equal(got["t"], t):
            fail(f"`{what}` changed its argument t in place: in a module, t would be the layer's own weight.",
                 "work on a copy: `t.abs()` (not `t.abs_()`), `t.clone()`, and return a new mask.")
        check_mask(what, got["mask"], expected, t.abs(), hint, score="|t|")


@exercise(5, "random_mask reproduces prune.random_unstructured's seeded mask with its own torch.Generator")
class check_03_random_mask(Check):
    """``random_mask(t, amount, seed)`` equals the mask of ``torch.manual_seed(seed)``; ``prune.random_unstructured``,
    without touching torch's global random number generator.

    Introduced in solutions/03_random_unstructured.ipynb.
    """

    def cases(self, gen: torch.Generator) -> list[dict]:
        made = [((6, 1, 3, 3), 0.3, 0), ((4, 5), 7, 1), ((10,), 0.5, 2), ((3, 3), 0, 3), ((120, 84), 0.9, 4)]
        made.append(((_draw(gen, 2, 30), _draw(gen, 2, 30)), _draw_fraction(gen), _draw(gen, 5, 10_000)))
        return [{"shape": shape, "amount": amount, "seed": seed} for shape, amount, seed in made]

    def collect(self, case: dict, random_mask: Callable[[torch.Tensor, float | int, int], torch.Tensor]) -> Any:
        hint = ("do not call torch's random pruning: draw the numbers yourself from "
                "`g = torch.Generator().manual_seed(seed)`.")
        with torch.random.fork_rng(devices=[]), by_hand(
                (prune.RandomUnstructured, "compute_mask", "prune.RandomUnstructured.compute_mask"),
                (prune, "random_unstructured", "prune.random_unstructured"), hint=hint):
            torch.manual_seed(12345)
            mask = call(random_mask, torch.ones(case["shape"]), case["amount"], case["seed"])
            after = torch.rand(4)  # what the learner's next seeded cell would draw
        return {"mask": mask, "after": after}

    def judge(self, case: dict, got: Any) -> None:
        shape, amount, seed = tuple(case["shape"]), case["amount"], case["seed"]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            holder = tensor_holder(torch.ones(shape))
            prune.random_unstructured(holder, name="weight", amount=amount)
            torch.manual_seed(12345)
            untouched = torch.rand(4)
        what = f"random_mask(torch.ones{shape}, {amount!r}, seed={seed})"
        check_equal(what, got["mask"], holder.weight_mask,
                    "`RandomUnstructured.compute_mask` draws `prob = torch.rand_like(t)` and zeroes the k entries with "
                    "the LARGEST prob: `torch.topk(prob.flatten(), k).indices`. Draw the same numbers from your own "
                    "`g = torch.Generator().manual_seed(seed)` with `torch.rand(t.shape, generator=g)`: a fresh "
                    "generator seeded like the global one gives the same sequence.")
        if not torch.equal(got["after"], untouched):
            fail(f"{what} gives the right mask but changed torch's global random number generator, so your next "
                 "seeded cell would draw other numbers.",
                 "do not call `torch.manual_seed` or `torch.rand` without a generator: make a "
                 "`torch.Generator().manual_seed(seed)` and pass `generator=g` to `torch.rand`.")
