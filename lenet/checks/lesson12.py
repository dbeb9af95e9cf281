"""Checks of lesson 12 · Lottery tickets (solutions/12_lottery_tickets.ipynb).

Each check is in three parts (docs/authoring.md): ``cases`` (plain data), ``collect`` (runs the learner's code on
models built from a case, where the learner's code runs) and ``judge`` (rebuilds the same models and compares with
torch, in the grader's own process when a grader grades).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.nn.utils import prune

from ..model import LeNet
from ..training import train
from .core import Check, as_number, attempt, call, check_equal, exercise, fail, show, type_name, written_call
from .plain import Raised
from .reference import quiet_build, quiet_data, torch_pruned_count


def _draw(gen: torch.Generator, low: int, high: int) -> int:
    """An int in [low, high] from ``gen``."""
    return int(torch.randint(low, high + 1, (1,), generator=gen))


def _architecture(name: str) -> nn.Module:
    """A fresh, untrained model: LeNet, or a small MLP whose modules are named "0", "1", "2"."""
    return LeNet() if name == "lenet" else nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))


def _weights(model: nn.Module) -> list[tuple[nn.Module, str]]:
    """``(module, "weight")`` for every Conv2d and Linear, as ``prune.global_unstructured`` takes them."""
    return [(m, "weight") for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def _pruned_model(case: dict) -> nn.Module:
    """The model a case describes: ``case["arch"]`` from ``case["seed"]``, pruned step by step.

    A step is ``["global", amount]`` (global L1 over all weights) or ``[module, tensor, "l1" | "random", amount]``.
    Built the same way on both sides, without consuming the learner's random numbers.
    """
    def build() -> nn.Module:
        model = _architecture(case["arch"])
        for step in case["prune"]:
            if step[0] == "global":
                prune.global_unstructured(_weights(model), pruning_method=prune.L1Unstructured, amount=step[1])
            else:
                module, tensor, method, amount = step
                how = prune.l1_unstructured if method == "l1" else prune.random_unstructured
                how(model.get_submodule(module), tensor, amount=amount)
        return model

    return quiet_build(build, case["seed"])


REWIND_HINT = ("For each key of `state`, e.g. 'fc1.weight' or '2.bias', find the module "
               "(`model.get_submodule('fc1')`); if it has `weight_orig` (the tensor is pruned, a weight or a bias, "
               "once or several times), copy the value into that, otherwise into the parameter itself: "
               "`target.copy_(value)` under `torch.no_grad()`. The masks stay as they are.")


@exercise(1, "rewind copies θ0 into every *_orig and unpruned parameter in place, on any pruned model")
class check_12_rewind(Check):
    """``rewind(model, state)`` writes the values of ``state`` (the state_dict of the unpruned model) into ``model``
    in place: into ``<name>_orig`` where ``<name>`` is pruned, into the parameter itself where it is not; the masks
    and the Parameter objects stay.

    Introduced in solutions/12_lottery_tickets.ipynb.
    """

    def cases(self, gen: torch.Generator) -> list[dict]:
        specs = [
            ("a LeNet pruned by global L1, 50% then 30% more", "lenet", [["global", 0.5], ["global", 0.3]]),
            ("an MLP with 0.weight pruned 40% and one entry of 2.bias pruned", "mlp",
             [["0", "weight", "l1", 0.4], ["2", "bias", "l1", 1]]),
            ("a LeNet with only fc1 pruned, twice (L1 30%, then random 50%)", "lenet",
             [["fc1", "weight", "l1", 0.3], ["fc1", "weight", "random", 0.5]]),
            ("an MLP with both biases and 2.weight pruned at random", "mlp",
             [["0", "bias", "random", 0.4], ["2", "bias", "random", 0.5], ["2", "weight", "random", 0.6]]),
        ]
        cases = []
        for label, arch, steps in specs:
            theta0 = quiet_build(lambda arch=arch: _architecture(arch), _draw(gen, 0, 2**31 - 1))
            cases.append({"label": label, "arch": arch, "prune": steps, "seed": _draw(gen, 0, 2**31 - 1),
                          "state": {k: v.clone() for k, v in theta0.state_dict().items()}})
        return cases

    def collect(self, case: dict, rewind: Callable[[nn.Module, dict], Any]) -> Any:
        model = _pruned_model(case)
        before = dict(model.named_parameters())
        got = attempt(rewind, model, {k: v.clone() for k, v in case["state"].items()})
        if isinstance(got, Raised):
            return {"raised": got}  # inside a dict: the judge turns it into a hint, not an error row
        after = dict(model.named_parameters())
        return {"state_dict": {k: v.detach().clone() for k, v in model.state_dict().items()},
                "same_parameters": list(after) == list(before) and all(after[n] is p for n, p in before.items())}

    def judge(self, case: dict, got: Any) -> None:
        what = f"rewind(<{case['label']}>, state)"
        if isinstance(got, dict) and isinstance(got.get("raised"), Raised):
            fail(f"`{what}` raised {got['raised']}.", REWIND_HINT)
        if not isinstance(got, dict) or not isinstance(got.get("state_dict"), dict):
            fail(f"the model after `{what}` could not be read: {show(got)}.", REWIND_HINT)
        expected = {}
        for key, value in _pruned_model(case).state_dict().items():
            if key.endswith("_mask"):
                expected[key] = value
            else:
                expected[key] = case["state"][key.removesuffix("_orig")]
        mine = got["state_dict"]
        check_equal(f"the state_dict keys after {what}", list(mine), list(expected),
                    "rewinding changes values only: no tensor is added, removed or renamed (keep the pruning: do not "
                    "call `prune.remove`, and do not assign new attributes).")
        for key, value in expected.items():
            if key.endswith("_mask"):
                hint = "the masks must stay: a ticket is θ0 × the mask found by pruning. Write only into values."
            elif key.endswith("_orig"):
                hint = (f"`{key}` must hold θ0 from `state['{key.removesuffix('_orig')}']`: the hook recomputes "
                        f"`{key.removesuffix('_orig')}` from it at every forward, so assigning to the pruned "
                        f"attribute itself is overwritten, and `load_state_dict(state, strict=False)` skips it. "
                        + REWIND_HINT)
            else:
                hint = f"`{key}` is not pruned but it is part of θ0 too: copy `state['{key}']` into it. " + REWIND_HINT
            check_equal(f"{key} after {what}", mine[key], value, hint, rtol=0.0, atol=0.0)
        if got.get("same_parameters") is not True:
            fail(f"after `{what}` the values are right, but the model holds new Parameter objects.",
                 "an optimizer built before the rewind (a training loop that keeps one) still holds the old "
                 "tensors and would never train the new ones: write into the existing ones, "
                 "`target.copy_(value)` under `torch.no_grad()`, instead of `setattr(module, name, nn.Parameter(...))`.")


@exercise(2, "imp_schedule counts the weights left after each round as torch's pruning does")
class check_12_imp_schedule(Check):
    """``imp_schedule(n, rounds, rate)``: the number of weights left after each of ``rounds`` rounds that each prune
    ``rate`` of the weights still unpruned, as torch rounds it.

    Introduced in solutions/12_lottery_tickets.ipynb.
    """

    def cases(self, gen: torch.Generator) -> list[dict]:
        cases = [(59_838, 10, 1 - 2 ** -0.5), (10, 4, 0.5), (59_838, 5, 0.5), (100, 6, 0.2), (7, 3, 0.25)]
        for _ in range(2):  # unseen: a size, a number of rounds, a rate with 3 decimals
            cases.append((_draw(gen, 10, 100_000), _draw(gen, 1, 12), _draw(gen, 50, 900) / 1000))
        return [{"n": n, "rounds": rounds, "rate": rate} for n, rounds, rate in cases]

    def collect(self, case: dict, imp_schedule: Callable[[int, int, float], list[int]]) -> Any:
        got = call(imp_schedule, case["n"], case["rounds"], case["rate"])
        return list(got) if isinstance(got, tuple) else got

    def judge(self, case: dict, got: Any) -> None:
        n, rounds, rate = case["n"], case["rounds"], case["rate"]
        expected = [n - torch_pruned_count(n, [rate] * k) for k in range(1, rounds + 1)]
        if isinstance(got, list):
            got = [as_number(v) for v in got]
        check_equal(written_call("imp_schedule", n, rounds, rate), got, expected,
                    "each round prunes round(rate * left) of the weights still left (Python's round: half to "
                    "even, round(2.5) == 2), so count round by round: rounding once at the end, on "
                    "n * (1 - rate) ** k, can be off by one. Return a list of ints, one per round.")


def _imp_history(case: dict) -> nn.Module:
    """A LeNet after the case's rounds of global L1 pruning, its kept weights perturbed between rounds (as if
    trained), so that each round ranks new values."""
    def build() -> nn.Module:
        model = LeNet()
        for rate in case["rates"]:
            prune.global_unstructured(_weights(model), pruning_method=prune.L1Unstructured, amount=rate)
            with torch.no_grad():
                for m, _ in _weights(model):
                    m.weight_orig.add_(0.05 * torch.randn_like(m.weight_orig))
        return model

    return quiet_build(build, case["seed"])


@exercise(3, "pruned_per_round reads from the PruningContainer how many entries each IMP round pruned")
class check_12_pruned_per_round(Check):
    """``pruned_per_round(module)``: for a module pruned by one or more rounds of ``prune.global_unstructured``,
    the number of its entries each round pruned, read from its pruning hook.

    Introduced in solutions/12_lottery_tickets.ipynb.
    """

    def cases(self, gen: torch.Generator) -> list[dict]:
        specs = [("fc3", [0.5, 0.5, 0.5]), ("fc1", [0.2]), ("conv2", [0.3, 0.3, 0.3, 0.3, 0.3]),
                 ("fc2", [_draw(gen, 10, 60) / 100 for _ in range(_draw(gen, 2, 6))])]
        return [{"layer": layer, "rates": rates, "seed": _draw(gen, 0, 2**31 - 1)} for layer, rates in specs]

    def collect(self, case: dict, pruned_per_round: Callable[[nn.Module], list[int]]) -> Any:
        got = call(pruned_per_round, _imp_history(case).get_submodule(case["layer"]))
        return list(got) if isinstance(got, tuple) else got

    def judge(self, case: dict, got: Any) -> None:
        def build() -> list[int]:  # the reference: count the zeros of the mask after each round, as it happens
            model, zeros = LeNet(), [0]
            for rate in case["rates"]:
                prune.global_unstructured(_weights(model), pruning_method=prune.L1Unstructured, amount=rate)
                zeros.append(int((model.get_submodule(case["layer"]).weight_mask == 0).sum()))
                with torch.no_grad():
                    for m, _ in _weights(model):
                        m.weight_orig.add_(0.05 * torch.randn_like(m.weight_orig))
            return [b - a for a, b in zip(zeros, zeros[1:])]

        expected = quiet_build(build, case["seed"])
        if isinstance(got, list):
            got = [as_number(v) for v in got]
        rounds = len(case["rates"])
        check_equal(f"pruned_per_round(<{case['layer']} of a LeNet after {rounds} round(s) of global L1>)", got,
                    expected,
                    "the hook is one `CustomFromMask` after one round, a `PruningContainer` after more: its "
                    "`_pruning_methods` holds one `CustomFromMask` per round, in order, and each one's `.mask` is the "
                    "whole mask after that round (global_unstructured applies the combined mask). A round pruned "
                    "the entries that are 1 in the mask before it and 0 in its own: count those, not the zeros so far.")


@exercise(4, "weights_at_step keeps a copy of the weights after step k, as late rewinding needs")
class check_12_weights_at_step(Check):
    """``weights_at_step(model, data, k, seed)`` trains ``model`` for one epoch with ``lenet.training.train`` (shuffle
    ``seed``) and returns a copy of its state_dict after ``k`` optimizer steps.

    Introduced in solutions/12_lottery_tickets.ipynb.
    """

    def cases(self, gen: torch.Generator) -> list[dict]:
        return [{"init": _draw(gen, 0, 2**31 - 1), "k": k, "seed": _draw(gen, 0, 1000)}
                for k in (1, 63, _draw(gen, 2, 62))]

    def collect(self, case: dict, weights_at_step: Callable[..., dict]) -> Any:
        model = quiet_build(LeNet, case["init"])
        with torch.random.fork_rng(devices=[]):  # train() seeds the global generators
            return call(weights_at_step, model, quiet_data(), case["k"], case["seed"])

    def judge(self, case: dict, got: Any) -> None:
        model, saved = quiet_build(LeNet, case["init"]), {}

        def grab(step: int) -> None:
            if step == case["k"]:
                saved.update({name: t.clone() for name, t in model.state_dict().items()})

        with torch.random.fork_rng(devices=[]):  # the reference stops once it has step k's weights
            train(model, quiet_data(), epochs=1, seed=case["seed"], after_step=grab, stop=lambda: bool(saved))
        what = f"weights_at_step(model, data, {case['k']}, {case['seed']})"
        hint = ("pass `after_step=` to `train`: it is called after every optimizer step with the number of steps "
                "done so far (1, 2, ...). At step k store a copy: `state_dict()` returns the live tensors, which "
                "training keeps changing in place, so clone each one (`{n: t.clone() for n, t in ...items()}`).")
        if not isinstance(got, dict):
            fail(f"`{what}` is {show(got)} (a {type_name(got)}), expected a dict of tensors like a state_dict.", hint)
        check_equal(f"the keys of {what}", list(got), list(saved), hint)
        for name, value in saved.items():
            check_equal(f"{what}[{name!r}]", got[name], value, hint, rtol=0.0, atol=0.0)


def _ticket_reference(masks: list[torch.Tensor], seed: int) -> bytes:
    """The ticket's bytes, by hand: bits in order, 8 to a byte, first bit highest, zero-padded; the seed, 8 bytes LE."""
    bits = [int(b) for m in masks for b in m.flatten().tolist()]
    bits += [0] * (-len(bits) % 8)
    packed = bytes(int("".join(map(str, bits[i:i + 8])), 2) for i in range(0, len(bits), 8))
    return packed + seed.to_bytes(8, "little")


@exercise(5, "ticket_bytes writes the masks as bits and the seed as 8 bytes, exactly in the agreed layout")
class check_12_ticket_bytes(Check):
    """``ticket_bytes(masks, seed)``: the masks' entries, in order, one bit each, packed 8 to a byte (first entry in
    the highest bit, the last byte padded with 0s, as ``np.packbits``), then ``seed`` as 8 bytes, little-endian.

    Introduced in solutions/12_lottery_tickets.ipynb.
    """

    def cases(self, gen: torch.Generator) -> list[dict]:
        def mask(*shape: int) -> torch.Tensor:
            return (torch.rand(shape, generator=gen) < 0.3).float()

        lenet = quiet_build(LeNet, 0)
        prune.global_unstructured(_weights(lenet), pruning_method=prune.L1Unstructured, amount=0.875)
        cases = [
            {"label": "[tensor([1., 0., 1.])], 5", "masks": [torch.tensor([1.0, 0.0, 1.0])], "seed": 5},
            {"label": "the masks of a LeNet pruned 87.5%, seed 1", "seed": 1,
             "masks": [m.weight_mask.clone() for m, _ in _weights(lenet)]},
            {"label": "masks of shapes (3, 5), (7,), (2, 2, 3), seed 2**40 + 3", "seed": 2**40 + 3,
             "masks": [mask(3, 5), mask(7), mask(2, 2, 3)]},
        ]
        shapes = [(_draw(gen, 1, 9), _draw(gen, 1, 9)) for _ in range(_draw(gen, 1, 4))]
        seed = _draw(gen, 0, 2**31 - 1)
        cases.append({"label": f"random masks of shapes {shapes}, seed {seed}", "seed": seed,
                      "masks": [mask(*s) for s in shapes]})
        return cases

    def collect(self, case: dict, ticket_bytes: Callable[[list[torch.Tensor], int], bytes]) -> Any:
        return call(ticket_bytes, [m.clone() for m in case["masks"]], case["seed"])

    def judge(self, case: dict, got: Any) -> None:
        what = f"ticket_bytes({case['label']})"
        expected = _ticket_reference(case["masks"], case["seed"])
        n = sum(m.numel() for m in case["masks"])
        packed = -(-n // 8)
        hint = ("concatenate the flattened masks first, then pack the whole bit string once (`np.packbits` on a uint8 "
                f"array): {n} entries take ceil({n} / 8) = {packed} byte{'s' * (packed != 1)}, padded only at the "
                "very end; then append `seed.to_bytes(8, 'little')`.")
        if not isinstance(got, (bytes, bytearray)):
            fail(f"`{what}` is {show(got)} (a {type_name(got)}), expected bytes.",
                 "`np.packbits(...).tobytes()` gives bytes, and bytes + bytes is bytes.")
        if len(got) != len(expected):
            fail(f"`{what}` is {len(got)} bytes long, expected {len(expected)}: {packed} for the {n} bits, "
                 "8 for the seed.", hint)
        if bytes(got[-8:]) != expected[-8:]:
            fail(f"the last 8 bytes of `{what}` are {bytes(got[-8:])!r}, expected the seed {case['seed']} as "
                 f"{expected[-8:]!r}.", "write the seed with `seed.to_bytes(8, 'little')` (8 bytes, little-endian).")
        first = next((i for i, (a, b) in enumerate(zip(got, expected)) if a != b), None)
        if first is not None:
            fail(f"byte {first} of `{what}` is {got[first]:08b}, expected {expected[first]:08b} (in bits).", hint)
