"""Checks of lesson 09 · Parametrizations and torch.ao.pruning (solutions/09_parametrizations.ipynb)."""
from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence

import torch
from torch import nn
from torch.ao.pruning import WeightNormSparsifier
from torch.nn.utils import parametrize, prune

from ..inspection import sparsity
from ..model import LeNet
from .core import call, check_equal, exercise, fail, show
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


@exercise(1, "the class, parameters and state_dict keys of a Conv2d parametrized on weight and bias")
def check_09_names(class_name: str, param_names: Sequence[str], keys: Sequence[str]) -> None:
    """The names torch gives a ``Conv2d`` after ``Mask`` parametrizations on its weight, then its bias.

    Introduced in solutions/09_parametrizations.ipynb.
    """
    __tracebackhide__ = True

    def build() -> nn.Module:
        conv = nn.Conv2d(1, 6, 3)
        parametrize.register_parametrization(conv, "weight", _Mask(torch.ones(6, 1, 3, 3)))
        parametrize.register_parametrization(conv, "bias", _Mask(torch.ones(6)))
        return conv

    conv = quiet_build(build)
    check_equal("class_name", class_name, type(conv).__name__,
                "register_parametrization swaps the module's class for a new subclass named 'Parametrized' + the "
                "old class name (`_inject_new_class` in torch/nn/utils/parametrize.py); print `type(conv).__name__`.")
    check_equal("param_names", param_names, [name for name, _ in conv.named_parameters()],
                "each parametrized tensor leaves the module itself and becomes `original` of the child "
                "`parametrizations.<name>`; `named_parameters()` lists the module's own parameters first (none "
                "left), then the children in the order they were added: weight first, then bias. The masks are "
                "buffers, not parameters.")
    check_equal("keys", keys, list(conv.state_dict()),
                "`state_dict()` walks the modules: for each parametrized tensor, its ParametrizationList holds "
                "`original`, and its entry 0 (the Mask) holds the buffer `mask`: "
                "'parametrizations.weight.original', 'parametrizations.weight.0.mask', then the same for bias. "
                "Unlike prune, there is no 'weight' or 'weight_mask' key.")


def _two_four_cases() -> list[tuple[str, torch.Tensor]]:
    """Tensors whose rows have a multiple of 4 entries, no zeros, negative values and ties."""
    gen = torch.Generator().manual_seed(9)
    return [
        ("torch.tensor([[0.1, -0.9, 0.3, -0.2, 1.0, 2.0, -3.0, 0.5]])",
         torch.tensor([[0.1, -0.9, 0.3, -0.2, 1.0, 2.0, -3.0, 0.5]])),
        ("a random (8, 16) tensor", torch.randn(8, 16, generator=gen)),
        ("a random (84, 120) tensor, all entries negative", -torch.rand(84, 120, generator=gen) - 0.01),
        ("torch.tensor([[1.0, -1.0, 1.0, -1.0], [0.5, 2.0, -0.5, 2.0]]) (ties)",
         torch.tensor([[1.0, -1.0, 1.0, -1.0], [0.5, 2.0, -0.5, 2.0]])),
    ]


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


@exercise(2, "TwoFour keeps the 2 largest |x| of every 4 consecutive entries of a row, as a parametrization")
def check_09_two_four(TwoFour: type[nn.Module]) -> None:
    """``TwoFour()`` is a parametrization that zeroes the 2 smallest magnitudes of every group of 4 in a row.

    Introduced in solutions/09_parametrizations.ipynb.
    """
    __tracebackhide__ = True
    hint = ("group 4 consecutive entries of each row with `X.reshape(-1, 4)`, find the 2 smallest MAGNITUDES of each "
            "group with `.abs().topk(2, dim=1, largest=False).indices`, and zero them in a NEW tensor "
            "(`groups.scatter(1, indices, 0.0)`, not `scatter_`), then `.reshape(X.shape)`. Among ties any choice "
            "is right.")
    layer = call(TwoFour)
    if not isinstance(layer, nn.Module):
        fail(f"TwoFour() is {show(layer)}, not an nn.Module.", "write `class TwoFour(nn.Module):` with a `forward(self, X)`.")
    for label, t in _two_four_cases():
        X = t.clone()
        out = call(layer, X)
        if not torch.equal(X, t):
            fail(f"TwoFour()(X) changed X itself, for X = {label}.",
                 "in a parametrization X is `original`, the trained weights: never change it in place (`scatter_`, "
                 "`mul_`, `X[...] = 0`); " + hint)
        problem = _two_four_problem(t, out)
        if problem is not None:
            fail(f"TwoFour()(X) for X = {label}: {problem}.", hint)
    # torch.ao's own 2:4 mask (blocks of 1 x 4, 2 zeros each) agrees on a tensor without ties
    holder = nn.Sequential(nn.Linear(16, 8))
    with torch.no_grad():
        holder[0].weight.copy_(_two_four_cases()[1][1])
    sparsifier = WeightNormSparsifier(sparsity_level=1.0, sparse_block_shape=(1, 4), zeros_per_block=2)
    sparsifier.prepare(holder, [{"tensor_fqn": "0.weight"}])
    sparsifier.step()
    check_equal("TwoFour()(X) for a random (8, 16) tensor", call(layer, _two_four_cases()[1][1].clone()),
                holder[0].weight.detach(), "it should equal the 2:4 mask of WeightNormSparsifier(sparsity_level=1.0, "
                "sparse_block_shape=(1, 4), zeros_per_block=2) times X; " + hint)
    # registered on a layer: weight follows the pattern, and the gradient reaches original at the kept entries
    lin = quiet_build(lambda: nn.Linear(8, 3))
    try:
        parametrize.register_parametrization(lin, "weight", TwoFour())
        lin(torch.ones(2, 8)).sum().backward()
    except RuntimeError as e:
        fail(f"registering TwoFour() on an nn.Linear(8, 3) and running a backward pass raised RuntimeError: "
             f"{str(e).splitlines()[0]}", "an in-place change of X (a view of a Parameter that requires grad) is "
             "refused by autograd; " + hint)
    grad, weight = lin.parametrizations.weight.original.grad, lin.weight.detach()
    if grad is None or not torch.equal(grad != 0, weight != 0):
        fail("after registering TwoFour() on an nn.Linear(8, 3), the gradient of `original` is not non-zero exactly "
             "at the kept entries.", "compute the output from X with differentiable operations (`scatter`, `*`), "
             "not under `torch.no_grad()` and not from `X.detach()` alone; " + hint)


def _parametrized_state(layers: Sequence[str], seed: int) -> dict[str, torch.Tensor]:
    """The state_dict of the trained LeNet with a random Mask (about half zeros) on the weights of ``layers``."""
    model = quiet_pretrained()
    gen = torch.Generator().manual_seed(seed)
    for name in layers:
        module = getattr(model, name)
        mask = (torch.rand(module.weight.shape, generator=gen) > 0.5).float()
        parametrize.register_parametrization(module, "weight", _Mask(mask))
    return {key: value.clone() for key, value in model.state_dict().items()}


@exercise(3, "load_masked restores the parametrizations a checkpoint names, then loads it with every key matched")
def check_09_load_masked(load_masked: Callable[[Mapping[str, torch.Tensor]], nn.Module]) -> None:
    """``load_masked(state)`` is a fresh LeNet with a ``Mask`` on every weight the state_dict parametrizes, loaded.

    Introduced in solutions/09_parametrizations.ipynb.
    """
    __tracebackhide__ = True
    hint = (f"for every key ending in '{ORIGINAL}', register `Mask(torch.ones_like(module.weight))` on that layer of "
            "a fresh `lenet.LeNet()` (`getattr(model, key.split('.')[0])`), then `model.load_state_dict(state)` with "
            "the default strict=True, which copies `original` AND the mask in. Renaming 'original' to 'weight' "
            "loads the unmasked weights, and strict=False leaves those layers at random values.")
    x = quiet_build(lambda: torch.randn(4, 1, 28, 28))
    for layers, seed in [(("conv2", "fc3"), 1), (("fc1",), 2), (("conv1", "fc2", "fc3"), 3)]:
        state = _parametrized_state(layers, seed)
        label = f"load_masked(state) for a state_dict with Masks on {', '.join(layers)}"
        try:
            model = call(load_masked, copy.deepcopy(state))
        except (RuntimeError, KeyError, AttributeError) as e:
            fail(f"{label} raised {type(e).__name__}: {str(e).splitlines()[0]}"
                 + (f" {str(e).splitlines()[1].strip()}" if len(str(e).splitlines()) > 1 else ""),
                 "did you write the layer names by hand? Read them from the keys of `state`; " + hint)
        if not isinstance(model, nn.Module):
            fail(f"{label} returned {show(model)}, not a model.", "return the LeNet you loaded; " + hint)
        for name in LAYERS:
            module = getattr(model, name, None)
            if name in layers:
                if module is None or not parametrize.is_parametrized(module, "weight"):
                    weight = getattr(module, "weight", None)
                    if isinstance(weight, torch.Tensor) and torch.equal(weight.detach().cpu(), state[name + ORIGINAL]):
                        problem = "holds the unmasked `original`: the layer is silently un-pruned"
                    elif isinstance(weight, torch.Tensor) and torch.equal(
                            weight.detach().cpu(), state[name + ORIGINAL] * state[name + MASK]):
                        problem = "holds the masked values but no parametrization, so fine-tuning would move its zeros"
                    else:
                        problem = "is not the saved weight at all (strict=False skips the keys that do not match)"
                    fail(f"{label}: `{name}.weight` {problem}.", hint)
                mask = getattr(module.parametrizations.weight[0], "mask", None)
                if not isinstance(mask, torch.Tensor):
                    fail(f"{label}: the parametrization of `{name}.weight` has no buffer `mask`.",
                         "register the lesson's `Mask` (its mask is a buffer that load_state_dict fills); " + hint)
                check_equal(f"{name}.parametrizations.weight[0].mask", mask.cpu(), state[name + MASK], hint)
            expected = state[name + ORIGINAL] * state[name + MASK] if name in layers else state[name + ".weight"]
            check_equal(f"{name}.weight of {label}", module.weight.detach().cpu(), expected, hint)
        reference = quiet_build(LeNet)
        reference.load_state_dict({key.replace(ORIGINAL, ".weight"): value * state[key.replace(ORIGINAL, MASK)]
                                   if key.endswith(ORIGINAL) else value
                                   for key, value in state.items() if not key.endswith(MASK)})
        model.eval()
        with torch.no_grad():
            check_equal(f"the outputs of {label}", model(x.to(next(model.parameters()).device)).cpu(), reference(x),
                        hint, decimals=6)


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


@exercise(4, "make_plain bakes every hook and parametrization into a plain weight, zeros kept")
def check_09_make_plain(make_plain: Callable[[nn.Module], nn.Module]) -> None:
    """``make_plain(model)`` makes every forward-pre-hook and parametrization of ``model`` permanent, in place.

    Introduced in solutions/09_parametrizations.ipynb.
    """
    __tracebackhide__ = True
    hint = ("walk `list(model.modules())`: where `parametrize.is_parametrized(module, 'weight')`, call "
            "`parametrize.remove_parametrizations(module, 'weight', leave_parametrized=True)` (True keeps the "
            "masked values; False gives back `original`, the unmasked weights); where the module has `weight_orig` "
            "(a prune hook; `prune.is_pruned(model)` is True for the whole LeNet too, it looks into submodules), "
            "call `prune.remove(module, 'weight')`. Then every layer is a plain Conv2d or Linear again.")
    x = quiet_build(lambda: torch.randn(4, 1, 28, 28))
    for hooked, masked, seed in [(("conv1",), ("fc1",), 1), (("fc2", "conv2"), ("conv1", "fc3"), 2), ((), ("fc2",), 3),
                                 (("fc3",), (), 4)]:
        model = _mixed_lenet(hooked, masked, seed)
        label = (f"make_plain(model) for a LeNet with prune hooks on {', '.join(hooked) or 'no layer'} and Masks on "
                 f"{', '.join(masked) or 'no layer'}")
        with torch.no_grad():
            expected = {name: getattr(model, name).weight.detach().clone() for name in LAYERS}
            out = model.eval()(x)
        try:
            returned = call(make_plain, model)
        except (ValueError, RuntimeError, AttributeError) as e:
            fail(f"{label} raised {type(e).__name__}: {str(e).splitlines()[0]}",
                 "did you write the layer names by hand? Find them with `parametrize.is_parametrized` and "
                 "`hasattr(module, 'weight_orig')`; " + hint)
        if returned is not model:
            fail(f"{label} returned {show(returned)}, not the model it was given.", "change the model in place and "
                 "return it, like prune.remove and remove_parametrizations do with their module.")
        for name in LAYERS:
            module = getattr(model, name)
            if parametrize.is_parametrized(module) or module._forward_pre_hooks:
                what = f"is still a {type(module).__name__}" if parametrize.is_parametrized(module) else \
                    "still has a pruning hook"
                fail(f"{label}: `{name}` {what}.", hint)
            zeros, expected_zeros = int((module.weight == 0).sum()), int((expected[name] == 0).sum())
            if zeros < expected_zeros:
                fail(f"{label}: `{name}.weight` has {zeros} zeros, expected {expected_zeros}: the mask's zeros are "
                     "gone.", "`leave_parametrized=False` gives back `original`, the weights WITHOUT the mask; " + hint)
            check_equal(f"{name}.weight after {label}", module.weight.detach(), expected[name], hint)
        result = quiet_build(LeNet).load_state_dict(model.state_dict())
        if result.missing_keys or result.unexpected_keys:
            fail(f"{label}: a fresh LeNet does not load its state_dict: {result}.", hint)
        with torch.no_grad():
            check_equal(f"the outputs after {label}", model(x), out, hint, decimals=6)


@exercise(5, "two_four_lenet: WeightNormSparsifier gives fc1 and fc2 the 2:4 pattern, squashed into plain Linears")
def check_09_two_four_lenet(two_four_lenet: Callable[[], nn.Module]) -> None:
    """``two_four_lenet()`` is the trained LeNet with 2:4 sparsity on fc1 and fc2 by torch.ao, masks squashed.

    Introduced in solutions/09_parametrizations.ipynb.
    """
    __tracebackhide__ = True
    hint = ("`WeightNormSparsifier(sparsity_level=1.0, sparse_block_shape=(1, 4), zeros_per_block=2)`: blocks of 1 "
            "row x 4 columns (4 consecutive inputs of one output), 2 zeros in each, and ALL blocks (sparsity_level "
            "is the share of blocks treated). `prepare(model, [{'tensor_fqn': 'fc1.weight'}, {'tensor_fqn': "
            "'fc2.weight'}])`, `step()`, then `squash_mask()` to get plain Linears back.")
    model = call(two_four_lenet)
    if not isinstance(model, nn.Module):
        fail(f"two_four_lenet() returned {show(model)}, not a model.", "return the LeNet; " + hint)
    reference = quiet_pretrained()
    sparsifier = WeightNormSparsifier(sparsity_level=1.0, sparse_block_shape=(1, 4), zeros_per_block=2)
    sparsifier.prepare(reference, [{"tensor_fqn": "fc1.weight"}, {"tensor_fqn": "fc2.weight"}])
    sparsifier.step()
    sparsifier.squash_mask()
    for name in LAYERS:
        module = getattr(model, name, None)
        if module is None or parametrize.is_parametrized(module):
            fail(f"`{name}` of two_four_lenet() is {show(module)}: the masks are still parametrizations.",
                 "call `sparsifier.squash_mask()` after `step()`: it writes the zeros into plain weights; " + hint)
        weight = module.weight.detach().cpu()
        if name in ("fc1", "fc2"):
            nonzeros = (weight.reshape(-1, 4) != 0).sum(dim=1)
            counts = torch.bincount(nonzeros, minlength=5).tolist()
            if counts[2] != len(nonzeros):
                fail(f"`{name}.weight` of two_four_lenet(): of its {len(nonzeros)} groups of 4 consecutive weights in "
                     f"a row, {counts} have 0/1/2/3/4 non-zeros ({sparsity(weight):.0%} zeros overall); 2:4 means "
                     "exactly 2 non-zeros in every group of a row.", hint)
        check_equal(f"{name}.weight of two_four_lenet()", weight, getattr(reference, name).weight.detach(),
                    "fc1 and fc2 keep the 2 largest weights of every 4, the other layers stay as trained; " + hint)
