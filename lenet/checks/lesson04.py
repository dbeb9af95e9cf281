"""Checks of lesson 04 · Under the hood (solutions/04_under_the_hood.ipynb)."""
from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
from torch import nn
from torch.nn.utils import prune

from ..model import LeNet
from .core import (as_number, by_hand, call, check_equal, check_mask, difference, exercise, fail, require_answer,
                   show, type_name)
from .reference import quiet_build, tensor_holder, torch_pruned_count

#: The cases of exercise 1: (number of weights, first amount, second amount).
#: Notebook 04 printed 0.3 twice on 54 weights (27); the table starts with a case it never ran.
PRUNE_TWICE = [(54, 0.4, 0.4), (54, 0.5, 0.5), (54, 10, 0.5), (864, 0.25, 0.25), (48000, 0.3, 0.3)]


@exercise(1, "the number of weights pruned after two calls, and the second amount that reaches 60%")
def check_04_pruned_twice(counts: list[int], second: float | int) -> None:
    """``counts[i]``: weights pruned after the two calls of ``PRUNE_TWICE[i]``; ``second``: the amount of a
    second call that takes fc1 (48,000 weights) from 30% to exactly 60%.

    Introduced in solutions/04_under_the_hood.ipynb.
    """
    __tracebackhide__ = True
    hint = ("the second call counts its amount against the entries still unpruned: 0.3 twice on 54 weights is "
            "round(0.3 * 54) = 16, then round(0.3 * 38) = 11 more, 27 in all (not round(0.51 * 54) = 28). "
            "A float is rounded with `round` (half to even: 13.5 -> 14); an int is a count.")
    expected = [torch_pruned_count(n, [a, b]) for n, a, b in PRUNE_TWICE]
    if isinstance(counts, (list, tuple)) and len(counts) == len(expected):
        for i, ((n, a, b), mine, right) in enumerate(zip(PRUNE_TWICE, counts, expected)):
            problem = difference(f"counts[{i}]", mine, right)
            if problem is not None:
                fail(f"{problem[:-1]} for amount={a!r}, then amount={b!r}, on {n} weights.", hint)
    check_equal("counts", counts, expected, hint)
    hint = ("after the first call 70% of the weights are left, and the second call prunes a share of THOSE: "
            "0.3 + 0.7 * second = 0.6. Write the fraction as an expression (0.3 / 0.7), not a rounded decimal: "
            "on 33,600 weights 0.4286 is off by one. An int amount, a count of weights, works too.")
    require_answer("second", second, hint)
    second = as_number(second)
    if isinstance(second, bool) or not isinstance(second, (int, float)):
        fail(f"`second` is {show(second)} (a {type_name(second)}), expected a number.", hint)
    try:
        got = torch_pruned_count(48000, [0.3, second])
    except (TypeError, ValueError) as e:
        fail(f"prune.l1_unstructured refuses amount={second!r} on the 33,600 weights left: {e}", hint)
    check_equal(f"weights of 48,000 pruned by amount=0.3, then amount={second!r}", got, 28800, hint)


def _torch_again_mask(weight: torch.Tensor, old_mask: torch.Tensor, amount: float | int) -> torch.Tensor:
    """torch's mask after a second ``l1_unstructured(amount)`` on a tensor already pruned with ``old_mask``."""
    holder = tensor_holder(weight)
    prune.custom_from_mask(holder, name="weight", mask=old_mask)
    prune.l1_unstructured(holder, name="weight", amount=amount)
    return holder.weight_mask


@exercise(2, "again_mask equals the mask of a second prune.l1_unstructured call (a PruningContainer), up to ties")
def check_04_again_mask(again_mask: Callable[[torch.Tensor, torch.Tensor, float | int], torch.Tensor]) -> None:
    """``again_mask(weight, old_mask, amount)``: the mask a second ``l1_unstructured(amount)`` leaves on a tensor
    already pruned with ``old_mask``, ``weight`` being the masked weight (zeros where ``old_mask`` is 0). Among
    entries tied at the cut any choice is accepted.

    Introduced in solutions/04_under_the_hood.ipynb.
    """
    __tracebackhide__ = True
    gen = torch.Generator().manual_seed(5)
    cases = []
    for shape, p_old, amount in [((6, 1, 3, 3), 0.3, 0.3), ((8, 10), 0.5, 0.5), ((5, 4), 0.25, 3), ((7,), 0.5, 0.5),
                                 ((4, 6), 0.5, 0.0), ((120, 84), 0.6, 0.75)]:
        orig = torch.randn(shape, generator=gen)
        old_mask = (torch.rand(shape, generator=gen) >= p_old).float()
        cases.append((f"a random weight of shape {shape}, its old_mask", orig * old_mask, old_mask, amount))
    cases.insert(1, ("torch.tensor([0.0, 0.3, -0.2, 0.0, 0.2, 0.5, -0.2, 0.0]), torch.tensor([0., 1., 1., 0., 1., "
                     "1., 1., 0.])", torch.tensor([0.0, 0.3, -0.2, 0.0, 0.2, 0.5, -0.2, 0.0]),
                     torch.tensor([0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 0.0]), 2))  # ties among the unpruned
    for label, weight, old_mask, amount in cases:
        expected = _torch_again_mask(weight, old_mask, amount)
        what = f"{getattr(again_mask, '__name__', 'again_mask')}({label}, {amount!r})"
        remaining = int(old_mask.sum())
        k = int((expected == 0).sum()) - (old_mask.numel() - remaining)
        hint = (f"torch keeps every 0 of old_mask and prunes k = {k} more of the {remaining} entries still unpruned "
                "(the amount counts against THOSE): `kept = old_mask == 1`, then the k smallest of "
                "`weight[kept].abs()` with `torch.topk(..., k, largest=False)`, written back into a clone of "
                "old_mask through the same boolean index. Ranking all entries would re-prune the zeros. When "
                "entries tie at the cut, any k of them will do.")
        with by_hand((prune.L1Unstructured, "compute_mask", "prune.L1Unstructured.compute_mask"),
                     (prune, "l1_unstructured", "prune.l1_unstructured"), hint=hint):
            mine = call(again_mask, weight.clone(), old_mask.clone(), amount)
        if isinstance(mine, torch.Tensor) and mine.shape == expected.shape:
            if bool(((mine != 0) & (old_mask == 0)).any()):
                fail(f"`{what}` puts back entries that old_mask had pruned.", hint)
        check_mask(what, mine, expected, weight.abs(), hint, free=old_mask == 1, score="|weight|")


def _reparam_cases() -> list[tuple[str, Callable[[], nn.Module], list[tuple[str, torch.Tensor]], torch.Tensor]]:
    """(label, make a fresh module, [(tensor name, mask), ...] pruned in that order, input); no global RNG used."""
    gen = torch.Generator().manual_seed(4)
    conv_w, conv_b = (torch.rand(3, 1, 3, 3, generator=gen) > 0.3).float(), torch.tensor([1.0, 0.0, 1.0])
    lin_w, lin_b = (torch.rand(4, 5, generator=gen) > 0.5).float(), torch.tensor([0.0, 1.0, 1.0, 0.0])
    conv = partial(quiet_build, lambda: nn.Conv2d(1, 3, 3), 0)
    linear = partial(quiet_build, lambda: nn.Linear(5, 4), 2)
    x_conv, x_lin = torch.randn(2, 1, 6, 6, generator=gen), torch.randn(3, 5, generator=gen)
    return [
        ("nn.Conv2d(1, 3, 3)", conv, [("weight", conv_w), ("bias", conv_b)], x_conv),
        ("nn.Conv2d(1, 3, 3)", conv, [("bias", conv_b), ("weight", conv_w)], x_conv),
        ("nn.Linear(5, 4)", linear, [("weight", lin_w)], x_lin),
        ("nn.Linear(5, 4)", linear, [("bias", lin_b), ("weight", lin_w)], x_lin),
    ]


def _forward(module: nn.Module, x: torch.Tensor, what: str, hint: str) -> torch.Tensor:
    """``module(x)``; an exception (raised by the learner's hook, usually) becomes a hint."""
    __tracebackhide__ = True
    try:
        return module(x)
    except Exception as e:  # noqa: BLE001 - reported to the learner
        fail(f"{what} raised {type(e).__name__}: {e}", hint)


def _structure(module: nn.Module) -> tuple[list[str], list[str], list[str]]:
    """The names of ``module``'s parameters and buffers, and its state_dict keys."""
    return ([n for n, _ in module.named_parameters()], [n for n, _ in module.named_buffers()],
            list(module.state_dict()))


@exercise(3, "one MaskHook per module, for every pruned tensor: state, outputs and gradients equal torch's, bit "
             "for bit")
def check_04_reparametrize(MaskHook: type, my_prune: Callable[[nn.Module, str, torch.Tensor], object]) -> None:
    """``my_prune(module, name, mask)`` reparametrizes like ``prune.custom_from_mask``, but every pruned tensor of
    a module shares one forward-pre-hook ``MaskHook()``, which recomputes each name in its ``names``.

    Introduced in solutions/04_under_the_hood.ipynb.
    """
    __tracebackhide__ = True
    if not isinstance(MaskHook, type):
        fail(f"`MaskHook` is {show(MaskHook)}, expected the class itself.", "pass the class `MaskHook`, not an instance.")
    hint_state = ("like `prune.custom_from_mask`: `del module._parameters[name]`, then "
                  "`module.register_parameter(name + '_orig', param)` with the SAME Parameter object (an optimizer "
                  "built before keeps training it), `module.register_buffer(name + '_mask', mask)`, and compute "
                  "`name` right away (call the hook by hand: `hook(module, None)`).")
    hint_one = ("the module must end with ONE forward-pre-hook, a MaskHook, whatever the number of tensors pruned: "
                "look for it first (`[h for h in module._forward_pre_hooks.values() if isinstance(h, MaskHook)]`), "
                "append `name` to its `names`, and register a new `MaskHook()` only when there is none. Notebook "
                "04's `my_prune` registers one hook per call: that is the design to change.")
    hint_hook = ("before every forward the hook must set, for EVERY name in `self.names`, the plain attribute: "
                 "`setattr(module, name, mask.to(dtype=orig.dtype) * orig)`, with `orig` and `mask` read with "
                 "`getattr(module, name + '_orig')` and `..._mask`, and autograd on (no `torch.no_grad()`), "
                 "so that the gradient flows back to `<name>_orig`.")
    for label, fresh, prunes, x in _reparam_cases():
        mine, theirs = fresh(), fresh()
        done = []
        for name, mask in prunes:
            param = getattr(mine, name)
            call(my_prune, mine, name, mask.clone())
            prune.custom_from_mask(theirs, name, mask.clone())
            done.append(name)
            where = f"after my_prune on {label}'s " + ", then ".join(repr(n) for n in done)
            check_equal(f"the (parameters, buffers, state_dict keys) {where}", _structure(mine), _structure(theirs),
                        hint_state)
            if getattr(mine, name + "_orig") is not param:
                fail(f"{where}, `{name}_orig` is a new tensor, not the Parameter that was `{name}`.", hint_state)
            hooks = list(mine._forward_pre_hooks.values())
            if len(hooks) != 1 or not isinstance(hooks[0], MaskHook):
                fail(f"{where}, the module has {len(hooks)} forward-pre-hooks "
                     f"({[type(h).__name__ for h in hooks]}), expected one MaskHook.", hint_one)
            for n in done:
                if n not in vars(mine):
                    fail(f"{where}, `{n}` is not a plain attribute of the module yet (torch's is, right away).",
                         hint_state)
                check_equal(f"{n} {where}", getattr(mine, n).detach(), getattr(theirs, n).detach(), hint_hook)
        for sd_key, value in theirs.state_dict().items():
            check_equal(f"state_dict()[{sd_key!r}] {where}", mine.state_dict()[sd_key], value, hint_state)
        out_mine = _forward(mine, x, f"the forward {where}", hint_hook)
        out_theirs = theirs(x)
        check_equal(f"the output {where}", out_mine.detach(), out_theirs.detach(), hint_hook, rtol=0, atol=0)
        if not out_mine.requires_grad:
            fail(f"{where}, the output does not require grad: no gradient can reach any `_orig`.", hint_hook)
        out_mine.sum().backward()
        out_theirs.sum().backward()
        grads_theirs = {n: p.grad for n, p in theirs.named_parameters()}
        for n, p in mine.named_parameters():
            if p.grad is None:
                fail(f"{where}, no gradient reached `{n}` in the backward pass.", hint_hook)
            check_equal(f"{n}.grad {where}", p.grad, grads_theirs[n], hint_hook, rtol=0, atol=0)
        with torch.no_grad():  # change every original: the next forward must use them all
            for n in done:
                getattr(mine, n + "_orig").mul_(-2)
                getattr(theirs, n + "_orig").mul_(-2)
            out_mine, out_theirs = _forward(mine, x, f"the second forward {where}", hint_hook), theirs(x)
        check_equal(f"the output {where} and multiplying every `_orig` by -2", out_mine, out_theirs,
                    "the hook must recompute every attribute from the current `_orig` and `_mask` before every "
                    "forward. " + hint_hook, rtol=0, atol=0)


def _pruned_pair(case: int) -> tuple[nn.Module, nn.Module, str]:
    """Two identical pruned modules (same seed, same masks) and the name to remove."""
    def make() -> nn.Module:
        if case == 0:  # weight and bias pruned, remove the weight
            m = nn.Conv2d(1, 4, 3)
            prune.l1_unstructured(m, name="weight", amount=0.5)
            prune.random_unstructured(m, name="bias", amount=2)
        elif case == 1:  # pruned twice: the hook is a PruningContainer
            m = nn.Linear(6, 5)
            prune.l1_unstructured(m, name="weight", amount=0.3)
            prune.random_unstructured(m, name="weight", amount=0.3)
        else:  # a custom mask on the bias only
            m = nn.Linear(4, 3)
            prune.custom_from_mask(m, name="bias", mask=torch.tensor([0.0, 1.0, 1.0]))
        return m

    return quiet_build(make, case), quiet_build(make, case), ("weight", "weight", "bias")[case]


def _hook_names(module: nn.Module) -> list[tuple[str, str | None]]:
    """(type, tensor name) of each forward-pre-hook of ``module``."""
    return [(type(h).__name__, getattr(h, "_tensor_name", None)) for h in module._forward_pre_hooks.values()]


@exercise(4, "my_remove makes pruning permanent like prune.remove, keeping the same Parameter object")
def check_04_remove(my_remove: Callable[[nn.Module, str], object]) -> None:
    """``my_remove(module, name)`` does what ``prune.remove(module, name)`` does.

    Introduced in solutions/04_under_the_hood.ipynb.
    """
    __tracebackhide__ = True
    hint = ("like `prune.remove`: compute `mask * orig` one last time, delete the plain attribute `name`, take "
            "`orig = module._parameters.pop(name + '_orig')` and put the product into it with "
            "`orig.data = (mask * orig).data` (the same object!), delete the buffer `module._buffers[name + '_mask']`, "
            "delete from `module._forward_pre_hooks` the one hook whose `_tensor_name` is `name` (leave the "
            "others), and register `orig` as the parameter `name` again (`setattr(module, name, orig)`).")
    labels = ["a Conv2d with weight and bias pruned: my_remove(conv, 'weight')",
              "a Linear pruned twice (a PruningContainer): my_remove(linear, 'weight')",
              "a Linear with a custom mask on its bias: my_remove(linear, 'bias')"]
    for case, label in enumerate(labels):
        mine, theirs, name = _pruned_pair(case)
        orig = getattr(mine, name + "_orig")
        with by_hand((prune, "remove", "prune.remove"),
                     (prune.BasePruningMethod, "remove", "prune.BasePruningMethod.remove"), hint=hint):
            call(my_remove, mine, name)
        prune.remove(theirs, name)
        where = f"after {label}"
        check_equal(f"the (parameters, buffers, state_dict keys) {where}", _structure(mine), _structure(theirs), hint)
        check_equal(f"the forward-pre-hooks (type, tensor name) {where}", _hook_names(mine), _hook_names(theirs), hint)
        if vars(mine).get(name) is not None:
            fail(f"{where}, `{name}` is still a plain attribute in the module's __dict__.", hint)
        if getattr(mine, name) is not orig:
            fail(f"{where}, `{name}` is a new Parameter, not the object that was `{name}_orig`: an optimizer built "
                 "before `remove` would go on training the old one.", hint)
        for key, value in theirs.state_dict().items():
            check_equal(f"state_dict()[{key!r}] {where}", mine.state_dict()[key], value, hint, rtol=0, atol=0)
        if not getattr(mine, name).requires_grad:
            fail(f"{where}, `{name}` has requires_grad=False.", hint)


@exercise(5, "safe_deepcopy copies a pruned LeNet right after a training forward; both stay pruned and independent")
def check_04_safe_deepcopy(safe_deepcopy: Callable[[nn.Module], nn.Module]) -> None:
    """``safe_deepcopy(model)`` returns an independent copy of a pruned model, whatever the last forward was.

    Introduced in solutions/04_under_the_hood.ipynb.
    """
    __tracebackhide__ = True
    hint = ("`copy.deepcopy` refuses the non-leaf plain attribute `weight` that a forward with autograd on leaves "
            "behind. Recompute it without a graph first: under `torch.no_grad()`, call each pruning hook by hand "
            "(`hook(module, None)` for every `prune.BasePruningMethod` in `module._forward_pre_hooks`, or "
            "`lenet.refresh_pruned(model)`), then `copy.deepcopy(model)`. Leave the model pruned: no `prune.remove`.")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = LeNet()
        prune.random_unstructured(model.conv1, name="weight", amount=0.3)
        prune.l1_unstructured(model.conv1, name="bias", amount=2)
        prune.l1_unstructured(model.fc1, name="weight", amount=0.5)
        prune.l1_unstructured(model.fc1, name="weight", amount=0.5)
        x = torch.randn(4, 1, 28, 28)
    model(x).sum().backward()  # a training forward: conv1.weight and fc1.weight are non-leaves now
    origs = dict(model.named_parameters())
    state = {k: v.clone() for k, v in model.state_dict().items()}
    hooks = _hook_names(model.conv1) + _hook_names(model.fc1)
    try:
        twin = call(safe_deepcopy, model)
    except RuntimeError as e:
        fail(f"safe_deepcopy(model) raised RuntimeError: {str(e).split('. ')[0]}.", hint)
    if twin is model:
        fail("safe_deepcopy(model) returned the model itself, not a copy.", hint)
    if not isinstance(twin, LeNet):
        fail(f"safe_deepcopy(model) returned {show(twin)}, expected a LeNet.", hint)
    # the original is left as it was
    now = dict(model.named_parameters())
    if (list(now) != list(origs) or any(now[n] is not p for n, p in origs.items())
            or _hook_names(model.conv1) + _hook_names(model.fc1) != hooks):
        fail("after safe_deepcopy(model), the model's parameters or pruning hooks changed (was it "
             "`prune.remove`d?); it must stay pruned, with the same Parameter objects.", hint)
    for key, value in state.items():
        check_equal(f"model.state_dict()[{key!r}] after safe_deepcopy(model)", model.state_dict()[key], value, hint)
    for label, m in [("model", model), ("the copy", twin)]:
        for layer, name in [("conv1", "weight"), ("conv1", "bias"), ("fc1", "weight")]:
            module = getattr(m, layer)
            if not isinstance(vars(module).get(name), torch.Tensor):
                fail(f"after safe_deepcopy(model), {label}.{layer} has no `{name}` attribute: it was deleted and not "
                     "recomputed, so anything reading it before the next forward fails.", hint)
            check_equal(f"{label}.{layer}.{name} after safe_deepcopy(model)", vars(module)[name].detach(),
                        getattr(module, name + "_mask") * getattr(module, name + "_orig").detach(), hint)
    # the copy is pruned the same way, and independent
    check_equal("the forward-pre-hooks (type, tensor name) of the copy", _hook_names(twin.conv1) + _hook_names(twin.fc1),
                hooks, hint)
    for key, value in state.items():
        check_equal(f"copy.state_dict()[{key!r}]", twin.state_dict()[key], value, hint)
    if any(a is b for a, b in zip(twin.parameters(), model.parameters())):
        fail("the copy shares Parameter objects with the model: it is not a deep copy.", hint)
    with torch.no_grad():
        twin.fc1.weight_orig.mul_(-1)
        changed = twin(x)
        same = model(x)
    if torch.equal(changed, same):
        fail("changing the copy's fc1.weight_orig does not change the copy's output: its hooks do not act on it.", hint)
