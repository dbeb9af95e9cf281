"""Checks of lesson 09 · Parametrizations (solutions/09_parametrizations.ipynb).

Each check has three parts (docs/authoring.md, "Add a check"): ``cases`` (plain data), ``collect`` (runs the
learner's code where it runs and returns plain data) and ``judge`` (builds torch's answer and compares).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.ao.pruning import WeightNormSparsifier
from torch.nn.utils import parametrize, prune

from ..model import LeNet
from .core import Check, attempt, call, check_equal, exercise, fail, show
from .plain import Raised
from .reference import LAYERS, quiet_build, quiet_pretrained

#: The end of the state_dict key of a parametrized weight's trained values, and of its Mask's buffer.
ORIGINAL, MASK = ".parametrizations.weight.original", ".parametrizations.weight.0.mask"


class _Mask(nn.Module):
    """The lesson's parametrization: the layer computes with ``X * mask``; the mask is a buffer."""

    def __init__(self, mask: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mask", mask)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return X * self.mask


def _draw(gen: torch.Generator, low: int, high: int) -> int:
    """An int in [low, high] from ``gen``."""
    return int(torch.randint(low, high + 1, (1,), generator=gen))


def _some_layers(gen: torch.Generator, k: int) -> list[str]:
    """``k`` of LeNet's layers, drawn from ``gen``, in model order."""
    chosen = torch.randperm(len(LAYERS), generator=gen)[:k].sort().values.tolist()
    return [LAYERS[i] for i in chosen]


@exercise(1, "the class, parameters and state_dict keys of a Conv2d parametrized on weight and bias")
class check_09_names(Check):
    """The names torch gives a ``Conv2d`` after ``Mask`` parametrizations on its weight, then its bias.

    Introduced in solutions/09_parametrizations.ipynb.
    """

    def collect(self, case: dict, class_name: str, param_names: Sequence[str], keys: Sequence[str]) -> Any:
        return {"class_name": class_name, "param_names": param_names, "keys": keys}

    def judge(self, case: dict, got: Any) -> None:
        def build() -> nn.Module:
            conv = nn.Conv2d(1, 6, 3)
            parametrize.register_parametrization(conv, "weight", _Mask(torch.ones(6, 1, 3, 3)))
            parametrize.register_parametrization(conv, "bias", _Mask(torch.ones(6)))
            return conv

        conv = quiet_build(build)
        check_equal("class_name", got["class_name"], type(conv).__name__,
                    "register_parametrization swaps the module's class for a new subclass named 'Parametrized' + the "
                    "old class name (`_inject_new_class` in torch/nn/utils/parametrize.py); print "
                    "`type(conv).__name__`.")
        check_equal("param_names", got["param_names"], [name for name, _ in conv.named_parameters()],
                    "each parametrized tensor leaves the module itself and becomes `original` of the child "
                    "`parametrizations.<name>`; `named_parameters()` lists the module's own parameters first (none "
                    "left), then the children in the order they were added: weight first, then bias. The masks are "
                    "buffers, not parameters.")
        check_equal("keys", got["keys"], list(conv.state_dict()),
                    "`state_dict()` walks the modules: for each parametrized tensor, its ParametrizationList holds "
                    "`original`, and its entry 0 (the Mask) holds the buffer `mask`: "
                    "'parametrizations.weight.original', 'parametrizations.weight.0.mask', then the same for bias. "
                    "Unlike prune, there is no 'weight' or 'weight_mask' key.")


def _rounded(t: torch.Tensor) -> list[float]:
    """The entries of a small tensor, rounded to 4 decimals for a hint."""
    return [round(v, 4) for v in t.tolist()]


def _two_four_problem(X: torch.Tensor, out: object) -> str | None:
    """Why ``out`` is not X with the 2 smallest |x| of every 4 consecutive entries of a row zeroed (ties: any)."""
    if not isinstance(out, torch.Tensor):
        return f"it returned {show(out)}, not a tensor"
    if out.shape != X.shape:
        return f"it returned shape {tuple(out.shape)}, expected {tuple(X.shape)} (a parametrization keeps the shape)"
    if out.dtype != X.dtype:
        return f"it returned dtype {out.dtype}, expected {X.dtype}"
    groups, got = X.reshape(-1, 4), out.detach().reshape(-1, 4)
    kept = got != 0
    if not torch.equal(got[kept], groups[kept]):
        return "some entries it kept have other values than the input's"
    counts = kept.sum(dim=1)
    bad = int(torch.nonzero(counts != 2)[0, 0]) if bool((counts != 2).any()) else None
    if bad is not None:
        return (f"group {bad} of 4 consecutive entries, {_rounded(groups[bad])}, became {_rounded(got[bad])}: "
                f"{int(counts[bad])} kept instead of exactly 2")
    magnitude = groups.abs()
    smallest_kept = magnitude.masked_fill(~kept, float("inf")).min(dim=1).values
    largest_dropped = magnitude.masked_fill(kept, -1.0).max(dim=1).values
    wrong = smallest_kept < largest_dropped
    if bool(wrong.any()):
        g = int(torch.nonzero(wrong)[0, 0])
        return (f"group {g}, {_rounded(groups[g])}, became {_rounded(got[g])}: it dropped an entry of larger "
                "magnitude than one it kept")
    return None


def _torch_two_four(X: torch.Tensor) -> torch.Tensor:
    """X times torch.ao's own 2:4 mask (WeightNormSparsifier, blocks of 1 x 4 with 2 zeros, all blocks)."""
    holder = quiet_build(lambda: nn.Sequential(nn.Linear(X.shape[1], X.shape[0])))
    with torch.no_grad():
        holder[0].weight.copy_(X)
    sparsifier = WeightNormSparsifier(sparsity_level=1.0, sparse_block_shape=(1, 4), zeros_per_block=2)
    sparsifier.prepare(holder, [{"tensor_fqn": "0.weight"}])
    sparsifier.step()
    return holder[0].weight.detach().clone()


TWO_FOUR_HINT = ("group 4 consecutive entries of each row with `X.reshape(-1, 4)`, find the 2 smallest MAGNITUDES of "
                 "each group with `.abs().topk(2, dim=1, largest=False).indices`, and zero them in a NEW tensor "
                 "(`groups.scatter(1, indices, 0.0)`, not `scatter_`), then `.reshape(X.shape)`. Among ties any "
                 "choice is right.")


@exercise(2, "TwoFour keeps the 2 largest |x| of every 4 consecutive entries of a row, as a parametrization")
class check_09_two_four(Check):
    """``TwoFour()`` is a parametrization that zeroes the 2 smallest magnitudes of every group of 4 in a row.

    Introduced in solutions/09_parametrizations.ipynb.
    """

    def cases(self, gen: torch.Generator) -> list[dict]:
        rows, groups = _draw(gen, 2, 12), _draw(gen, 1, 8)
        return [
            {"label": "torch.tensor([[0.1, -0.9, 0.3, -0.2, 1.0, 2.0, -3.0, 0.5]])",
             "X": torch.tensor([[0.1, -0.9, 0.3, -0.2, 1.0, 2.0, -3.0, 0.5]])},
            {"label": "a random (8, 16) tensor", "X": torch.randn(8, 16, generator=gen), "torch": True},
            {"label": "a random (84, 120) tensor, all entries negative", "X": -torch.rand(84, 120, generator=gen) - 0.01},
            {"label": "torch.tensor([[1.0, -1.0, 1.0, -1.0], [0.5, 2.0, -0.5, 2.0]]) (ties)",
             "X": torch.tensor([[1.0, -1.0, 1.0, -1.0], [0.5, 2.0, -0.5, 2.0]])},
            {"label": f"a random ({rows}, {4 * groups}) tensor", "X": torch.randn(rows, 4 * groups, generator=gen)},
            {"label": "registered on an nn.Linear(8, 3), then a backward pass", "linear": torch.randn(3, 8, generator=gen)},
        ]

    def collect(self, case: dict, TwoFour: type[nn.Module]) -> Any:
        layer = call(TwoFour)
        if not isinstance(layer, nn.Module):
            return {"module": layer}
        if "linear" in case:
            lin = quiet_build(lambda: nn.Linear(8, 3))
            with torch.no_grad():
                lin.weight.copy_(case["linear"])

            def register_and_backward() -> None:
                parametrize.register_parametrization(lin, "weight", layer)
                lin(torch.ones(2, 8)).sum().backward()

            raised = attempt(register_and_backward)
            if isinstance(raised, Raised):
                return {"raised": raised}
            return {"grad": lin.parametrizations.weight.original.grad, "weight": lin.weight.detach()}
        X = case["X"].clone()
        out = call(layer, X)
        return {"out": out, "input_changed": not torch.equal(X, case["X"])}

    def judge(self, case: dict, got: Any) -> None:
        if "module" in got:
            fail(f"TwoFour() is {show(got['module'])}, not an nn.Module.",
                 "write `class TwoFour(nn.Module):` with a `forward(self, X)`.")
        if "linear" in case:
            if "raised" in got:
                fail(f"registering TwoFour() on an nn.Linear(8, 3) and running a backward pass raised {got['raised']}",
                     "an in-place change of X (a view of a Parameter that requires grad) is refused by autograd; "
                     + TWO_FOUR_HINT)
            problem = _two_four_problem(case["linear"], got["weight"])
            if problem is not None:
                fail(f"registered on an nn.Linear(8, 3), its weight: {problem}.", TWO_FOUR_HINT)
            grad = got["grad"]
            if not isinstance(grad, torch.Tensor) or not torch.equal(grad != 0, got["weight"] != 0):
                fail("after registering TwoFour() on an nn.Linear(8, 3), the gradient of `original` is not non-zero "
                     "exactly at the kept entries.", "compute the output from X with differentiable operations "
                     "(`scatter`, `*`), not under `torch.no_grad()` and not from `X.detach()` alone; " + TWO_FOUR_HINT)
            return
        if got["input_changed"]:
            fail(f"TwoFour()(X) changed X itself, for X = {case['label']}.",
                 "in a parametrization X is `original`, the trained weights: never change it in place (`scatter_`, "
                 "`mul_`, `X[...] = 0`); " + TWO_FOUR_HINT)
        problem = _two_four_problem(case["X"], got["out"])
        if problem is not None:
            fail(f"TwoFour()(X) for X = {case['label']}: {problem}.", TWO_FOUR_HINT)
        if case.get("torch"):  # torch.ao's own 2:4 mask agrees on a tensor without ties
            check_equal(f"TwoFour()(X) for X = {case['label']}", got["out"], _torch_two_four(case["X"]),
                        "it should equal X times the 2:4 mask of WeightNormSparsifier(sparsity_level=1.0, "
                        "sparse_block_shape=(1, 4), zeros_per_block=2); " + TWO_FOUR_HINT)


def _parametrized_state(layers: Sequence[str], seed: int) -> dict[str, torch.Tensor]:
    """The state_dict of the trained LeNet with a random Mask (about half zeros) on the weights of ``layers``."""
    model = quiet_pretrained()
    gen = torch.Generator().manual_seed(seed)
    for name in layers:
        module = getattr(model, name)
        mask = (torch.rand(module.weight.shape, generator=gen) > 0.5).float()
        parametrize.register_parametrization(module, "weight", _Mask(mask))
    return {key: value.clone() for key, value in model.state_dict().items()}


def _layer_report(model: nn.Module, x: torch.Tensor) -> dict:
    """What the judges need to know of a LeNet-like model: per layer, whether parametrized, its mask and weight."""
    layers = {}
    for name in LAYERS:
        module = getattr(model, name, None)
        weight = getattr(module, "weight", None) if module is not None else None
        report = {"exists": module is not None, "parametrized": module is not None and parametrize.is_parametrized(
            module, "weight"), "hooks": len(getattr(module, "_forward_pre_hooks", {})),
            "weight": weight.detach().cpu() if isinstance(weight, torch.Tensor) else None}
        if report["parametrized"]:
            report["mask"] = getattr(module.parametrizations.weight[0], "mask", None)
        layers[name] = report
    model.eval()
    with torch.no_grad():
        outputs = model(x.to(next(model.parameters()).device)).cpu()
    return {"layers": layers, "outputs": outputs, "keys": list(model.state_dict())}


LOAD_HINT = (f"for every key ending in '{ORIGINAL}', register `Mask(torch.ones_like(module.weight))` on that layer of "
             "a fresh `lenet.LeNet()` (`getattr(model, key.split('.')[0])`), then `model.load_state_dict(state)` with "
             "the default strict=True, which copies `original` AND the mask in. Renaming 'original' to 'weight' "
             "loads the unmasked weights, and strict=False leaves those layers at random values.")


@exercise(3, "load_masked restores the parametrizations a checkpoint names, then loads it with every key matched")
class check_09_load_masked(Check):
    """``load_masked(state)`` is a fresh LeNet with a ``Mask`` on every weight the state_dict parametrizes, loaded.

    Introduced in solutions/09_parametrizations.ipynb.
    """

    def cases(self, gen: torch.Generator) -> list[dict]:
        chosen = [("conv2", "fc3"), ("fc1",), ("conv1", "fc2", "fc3"), tuple(_some_layers(gen, _draw(gen, 1, 4)))]
        return [{"layers": list(layers), "state": _parametrized_state(layers, _draw(gen, 0, 10_000)),
                 "x": torch.randn(4, 1, 28, 28, generator=gen)} for layers in chosen]

    def collect(self, case: dict, load_masked: Callable[[Mapping[str, torch.Tensor]], nn.Module]) -> Any:
        model = attempt(load_masked, {key: value.clone() for key, value in case["state"].items()})
        if isinstance(model, Raised) or not isinstance(model, nn.Module):
            return {"returned": model}
        return _layer_report(model, case["x"])

    def judge(self, case: dict, got: Any) -> None:
        layers, state = case["layers"], case["state"]
        label = f"load_masked(state) for a state_dict with Masks on {', '.join(layers)}"
        if "returned" in got:
            returned = got["returned"]
            if isinstance(returned, Raised):
                lines = [line.strip() for line in returned.message.splitlines() if line.strip()][:2]
                fail(f"{label} raised {returned.type}: {' '.join(lines)}",
                     "did you write the layer names by hand? Read them from the keys of `state`; " + LOAD_HINT)
            fail(f"{label} returned {show(returned)}, not a model.", "return the LeNet you loaded; " + LOAD_HINT)
        for name in LAYERS:
            report = got["layers"][name]
            if name in layers:
                if not report["parametrized"]:
                    weight = report["weight"]
                    if isinstance(weight, torch.Tensor) and torch.equal(weight, state[name + ORIGINAL]):
                        problem = "holds the unmasked `original`: the layer is silently un-pruned"
                    elif isinstance(weight, torch.Tensor) and torch.equal(
                            weight, state[name + ORIGINAL] * state[name + MASK]):
                        problem = "holds the masked values but no parametrization, so fine-tuning would move its zeros"
                    else:
                        problem = "is not the saved weight at all (strict=False skips the keys that do not match)"
                    fail(f"{label}: `{name}.weight` {problem}.", LOAD_HINT)
                if not isinstance(report.get("mask"), torch.Tensor):
                    fail(f"{label}: the parametrization of `{name}.weight` has no buffer `mask`.",
                         "register the lesson's `Mask` (its mask is a buffer that load_state_dict fills); " + LOAD_HINT)
                check_equal(f"{name}.parametrizations.weight[0].mask", report["mask"], state[name + MASK], LOAD_HINT)
            expected = state[name + ORIGINAL] * state[name + MASK] if name in layers else state[name + ".weight"]
            check_equal(f"{name}.weight of {label}", report["weight"], expected, LOAD_HINT)
        reference = quiet_build(LeNet)
        reference.load_state_dict({key.replace(ORIGINAL, ".weight"): value * state[key.replace(ORIGINAL, MASK)]
                                   if key.endswith(ORIGINAL) else value
                                   for key, value in state.items() if not key.endswith(MASK)})
        with torch.no_grad():
            expected_outputs = reference.eval()(case["x"])
        check_equal(f"the outputs of {label}", got["outputs"], expected_outputs, LOAD_HINT, decimals=6)


def _mixed_lenet(hooked: Sequence[str], masked: Sequence[str], seed: int) -> nn.Module:
    """The trained LeNet with L1 hooks (50%) on ``hooked`` and random Masks on ``masked`` (weights only)."""
    model = quiet_pretrained()
    gen = torch.Generator().manual_seed(seed)
    for name in hooked:
        prune.l1_unstructured(getattr(model, name), "weight", amount=0.5)
    for name in masked:
        module = getattr(model, name)
        parametrize.register_parametrization(
            module, "weight", _Mask((torch.rand(module.weight.shape, generator=gen) > 0.5).float()))
    return model


PLAIN_HINT = ("walk `list(model.modules())`: where `parametrize.is_parametrized(module, 'weight')`, call "
              "`parametrize.remove_parametrizations(module, 'weight', leave_parametrized=True)` (True keeps the "
              "masked values; False gives back `original`, the unmasked weights); where the module has `weight_orig` "
              "(a prune hook; `prune.is_pruned(model)` is True for the whole LeNet too, it looks into submodules), "
              "call `prune.remove(module, 'weight')`. Then every layer is a plain Conv2d or Linear again.")


@exercise(4, "make_plain bakes every hook and parametrization into a plain weight, zeros kept")
class check_09_make_plain(Check):
    """``make_plain(model)`` makes every forward-pre-hook and parametrization of ``model`` permanent, in place.

    Introduced in solutions/09_parametrizations.ipynb.
    """

    def cases(self, gen: torch.Generator) -> list[dict]:
        drawn = _some_layers(gen, _draw(gen, 2, 5))
        split = _draw(gen, 1, len(drawn) - 1)
        mixes = [(["conv1"], ["fc1"]), (["conv2", "fc2"], ["conv1", "fc3"]), ([], ["fc2"]), (["fc3"], []),
                 (drawn[:split], drawn[split:])]
        return [{"hooked": hooked, "masked": masked, "seed": _draw(gen, 0, 10_000),
                 "x": torch.randn(4, 1, 28, 28, generator=gen)} for hooked, masked in mixes]

    def collect(self, case: dict, make_plain: Callable[[nn.Module], nn.Module]) -> Any:
        model = _mixed_lenet(case["hooked"], case["masked"], case["seed"])
        returned = attempt(make_plain, model)
        if isinstance(returned, Raised):
            return {"raised": returned}
        return {"same_model": returned is model, **_layer_report(model, case["x"])}

    def judge(self, case: dict, got: Any) -> None:
        label = (f"make_plain(model) for a LeNet with prune hooks on {', '.join(case['hooked']) or 'no layer'} and "
                 f"Masks on {', '.join(case['masked']) or 'no layer'}")
        if "raised" in got:
            fail(f"{label} raised {got['raised']}", "did you write the layer names by hand? Find them with "
                 "`parametrize.is_parametrized` and `hasattr(module, 'weight_orig')`; " + PLAIN_HINT)
        if not got["same_model"]:
            fail(f"{label} returned something else than the model it was given.", "change the model in place and "
                 "return it, like prune.remove and remove_parametrizations do with their module.")
        reference = _mixed_lenet(case["hooked"], case["masked"], case["seed"]).eval()
        with torch.no_grad():
            expected_outputs = reference(case["x"])
        for name in LAYERS:
            report, expected = got["layers"][name], getattr(reference, name).weight.detach()
            if report["parametrized"] or report["hooks"]:
                what = "is still parametrized" if report["parametrized"] else "still has a pruning hook"
                fail(f"{label}: `{name}` {what}.", PLAIN_HINT)
            weight = report["weight"]
            zeros, expected_zeros = int((weight == 0).sum()) if isinstance(weight, torch.Tensor) else 0, int(
                (expected == 0).sum())
            if zeros < expected_zeros:
                fail(f"{label}: `{name}.weight` has {zeros} zeros, expected {expected_zeros}: the mask's zeros are "
                     "gone.", "`leave_parametrized=False` gives back `original`, the weights WITHOUT the mask; "
                     + PLAIN_HINT)
            check_equal(f"{name}.weight after {label}", weight, expected, PLAIN_HINT)
        plain_keys = list(quiet_build(LeNet).state_dict())
        if sorted(got["keys"]) != sorted(plain_keys):
            fail(f"{label}: a fresh LeNet does not load its state_dict: its keys are {show(got['keys'])}.", PLAIN_HINT)
        check_equal(f"the outputs after {label}", got["outputs"], expected_outputs, PLAIN_HINT, decimals=6)
