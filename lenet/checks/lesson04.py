"""Checks of lesson 04 · Under the hood (solutions/04_under_the_hood.ipynb).

Each check has three parts (docs/authoring.md, "Add a check"): ``cases`` (plain data), ``collect`` (runs the
learner's code where it runs and returns plain data) and ``judge`` (torch's answer and the hint).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.nn.utils import prune

from ..model import LeNet
from ..training import single_thread
from .core import (Check, as_number, attempt, by_hand, call, check_equal, check_mask, difference, exercise, fail,
                   require_answer, show, type_name)
from .plain import Raised
from .reference import quiet_build, tensor_holder, torch_pruned_count

#: The cases of exercise 1: (number of weights, first amount, second amount).
#: Notebook 04 printed 0.3 twice on 54 weights (27); the table starts with a case it never ran.
PRUNE_TWICE = [(54, 0.4, 0.4), (54, 0.5, 0.5), (54, 10, 0.5), (864, 0.25, 0.25), (48000, 0.3, 0.3)]


@exercise(1, "the number of weights pruned after two calls, and the second amount that reaches 60%")
class check_04_pruned_twice(Check):
    """``counts[i]``: weights pruned after the two calls of ``PRUNE_TWICE[i]``; ``second``: the amount of a
    second call that takes fc1 (48,000 weights) from 30% to exactly 60%.

    Introduced in solutions/04_under_the_hood.ipynb.
    """

    def collect(self, case: dict, counts: list[int], second: float | int) -> Any:
        return {"counts": counts, "second": second}

    def judge(self, case: dict, got: Any) -> None:
        counts, second = got["counts"], got["second"]
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
            pruned = torch_pruned_count(48000, [0.3, second])
        except (TypeError, ValueError) as e:
            fail(f"prune.l1_unstructured refuses amount={second!r} on the 33,600 weights left: {e}", hint)
        check_equal(f"weights of 48,000 pruned by amount=0.3, then amount={second!r}", pruned, 28800, hint)


def _torch_again_mask(weight: torch.Tensor, old_mask: torch.Tensor, amount: float | int) -> torch.Tensor:
    """torch's mask after a second ``l1_unstructured(amount)`` on a tensor already pruned with ``old_mask``."""
    holder = tensor_holder(weight)
    prune.custom_from_mask(holder, name="weight", mask=old_mask)
    prune.l1_unstructured(holder, name="weight", amount=amount)
    return holder.weight_mask


@exercise(2, "again_mask equals the mask of a second prune.l1_unstructured call (a PruningContainer), up to ties")
class check_04_again_mask(Check):
    """``again_mask(weight, old_mask, amount)``: the mask a second ``l1_unstructured(amount)`` leaves on a tensor
    already pruned with ``old_mask``, ``weight`` being the masked weight (zeros where ``old_mask`` is 0). Among
    entries tied at the cut any choice is accepted; ``weight`` and ``old_mask`` are left as they are.

    Introduced in solutions/04_under_the_hood.ipynb.
    """

    def cases(self, gen: torch.Generator) -> list[dict]:
        made = [((6, 1, 3, 3), 0.3, 0.3), ((8, 10), 0.5, 0.5), ((5, 4), 0.25, 3), ((7,), 0.5, 0.5), ((4, 6), 0.5, 0.0),
                ((120, 84), 0.6, 0.75)]
        rows, cols = int(torch.randint(2, 20, (1,), generator=gen)), int(torch.randint(2, 20, (1,), generator=gen))
        made.append(((rows, cols), float(torch.rand(1, generator=gen)) * 0.8, int(torch.randint(1, 100, (1,),
                                                                                               generator=gen)) / 100))
        cases = []
        for shape, p_old, amount in made:
            orig = torch.randn(shape, generator=gen)
            old_mask = (torch.rand(shape, generator=gen) >= p_old).float()
            cases.append({"label": f"a random weight of shape {shape}, its old_mask", "weight": orig * old_mask + 0.0,
                          "old_mask": old_mask, "amount": amount})
        cases.insert(1, {"label": "torch.tensor([0.0, 0.3, -0.2, 0.0, 0.2, 0.5, -0.2, 0.0]), torch.tensor([0., 1., 1., "
                                  "0., 1., 1., 1., 0.])",  # ties among the unpruned
                         "weight": torch.tensor([0.0, 0.3, -0.2, 0.0, 0.2, 0.5, -0.2, 0.0]),
                         "old_mask": torch.tensor([0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 0.0]), "amount": 2})
        return cases

    def collect(self, case: dict, again_mask: Callable[[torch.Tensor, torch.Tensor, float | int], torch.Tensor]) -> Any:
        weight, old_mask = case["weight"], case["old_mask"]
        hint = "compute the mask yourself, with `torch.topk` on the entries still unpruned."
        with by_hand((prune.L1Unstructured, "compute_mask", "prune.L1Unstructured.compute_mask"),
                     (prune, "l1_unstructured", "prune.l1_unstructured"), hint=hint):
            mask = call(again_mask, weight, old_mask, case["amount"])
        return {"mask": mask, "weight": weight, "old_mask": old_mask}  # the arguments as the function left them

    def judge(self, case: dict, got: Any) -> None:
        weight, old_mask, amount = case["weight"], case["old_mask"], case["amount"]
        expected = _torch_again_mask(weight, old_mask, amount)
        what = f"again_mask({case['label']}, {amount!r})"
        remaining = int(old_mask.sum())
        k = int((expected == 0).sum()) - (old_mask.numel() - remaining)
        hint = (f"torch keeps every 0 of old_mask and prunes k = {k} more of the {remaining} entries still unpruned "
                "(the amount counts against THOSE): `kept = old_mask == 1`, then the k smallest of "
                "`weight[kept].abs()` with `torch.topk(..., k, largest=False)`, written back into a clone of "
                "old_mask through the same boolean index. Ranking all entries would re-prune the zeros. When "
                "entries tie at the cut, any k of them will do.")
        for name in ("old_mask", "weight"):
            if not torch.equal(got[name], case[name]):
                fail(f"`{what}` changed its argument {name} in place. In a module, old_mask is the layer's own "
                     "`weight_mask` buffer and weight its `weight`: writing into them changes the layer before "
                     "torch's own pruning runs.",
                     "start from a copy, `mask = old_mask.clone()`, write the new zeros into it and return it.")
        mine = got["mask"]
        if isinstance(mine, torch.Tensor) and mine.shape == expected.shape:
            if bool(((mine != 0) & (old_mask == 0)).any()):
                fail(f"`{what}` puts back entries that old_mask had pruned.", hint)
        check_mask(what, mine, expected, weight.abs(), hint, free=old_mask == 1, score="|weight|")


def _reparam_module(kind: str) -> nn.Module:
    """A fresh module of exercise 3, the same every time, built without the global random generator."""
    if kind == "conv":
        return quiet_build(lambda: nn.Conv2d(1, 3, 3), 0)
    return quiet_build(lambda: nn.Linear(5, 4), 2)


def _check_state(name: str, got: Any, expected: dict[str, torch.Tensor], hint: str, exact: bool = False) -> None:
    """``got`` (a collected state_dict) has ``expected``'s keys and values; named ``name[key]`` in the message."""
    __tracebackhide__ = True
    check_equal(f"the keys of {name}", list(got) if isinstance(got, dict) else got, list(expected), hint)
    tolerance = {"rtol": 0, "atol": 0} if exact else {}
    for key, value in expected.items():
        check_equal(f"{name}[{key!r}]", got[key], value, hint, **tolerance)


def _snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of ``module.state_dict()`` now (collect returns copies: the module changes afterwards)."""
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _structure(module: nn.Module) -> tuple[list[str], list[str], list[str]]:
    """The names of ``module``'s parameters and buffers, and its state_dict keys."""
    return ([n for n, _ in module.named_parameters()], [n for n, _ in module.named_buffers()],
            list(module.state_dict()))


def _forward_and_backward(module: nn.Module, x: torch.Tensor, names: list[str]) -> dict[str, Any]:
    """Outputs, gradients, and the output after every ``<name>_orig`` is multiplied by -2 (``attempt``ed).

    On one thread, as the judge computes torch's: sums in the same order, so the two agree bit for bit even when a
    grader runs them in two processes.
    """
    with single_thread():
        return _forward_and_backward_here(module, x, names)


def _forward_and_backward_here(module: nn.Module, x: torch.Tensor, names: list[str]) -> dict[str, Any]:
    out = attempt(module, x)
    if isinstance(out, Raised):
        return {"output": out}
    result: dict[str, Any] = {"output": out, "requires_grad": bool(out.requires_grad)}
    if out.requires_grad:
        out.sum().backward()
        result["grads"] = {n: None if p.grad is None else p.grad.clone() for n, p in module.named_parameters()}
    with torch.no_grad():  # change every original: the next forward must use them all
        for n in names:
            getattr(module, n + "_orig").mul_(-2)
        result["second"] = attempt(module, x)
    return result


@exercise(3, "one MaskHook per module, for every pruned tensor: state, outputs and gradients equal torch's, bit "
             "for bit")
class check_04_reparametrize(Check):
    """``my_prune(module, name, mask)`` reparametrizes like ``prune.custom_from_mask``, but every pruned tensor of
    a module shares one forward-pre-hook ``MaskHook()``, which recomputes each name in its ``names``.

    Introduced in solutions/04_under_the_hood.ipynb.
    """

    def cases(self, gen: torch.Generator) -> list[dict]:
        conv_w, conv_b = (torch.rand(3, 1, 3, 3, generator=gen) > 0.3).float(), torch.tensor([1.0, 0.0, 1.0])
        lin_w, lin_b = (torch.rand(4, 5, generator=gen) > 0.5).float(), torch.tensor([0.0, 1.0, 1.0, 0.0])
        x_conv, x_lin = torch.randn(2, 1, 6, 6, generator=gen), torch.randn(3, 5, generator=gen)
        made = [("nn.Conv2d(1, 3, 3)", "conv", [("weight", conv_w), ("bias", conv_b)], x_conv),
                ("nn.Conv2d(1, 3, 3)", "conv", [("bias", conv_b), ("weight", conv_w)], x_conv),
                ("nn.Linear(5, 4)", "linear", [("weight", lin_w)], x_lin),
                ("nn.Linear(5, 4)", "linear", [("bias", lin_b), ("weight", lin_w)], x_lin)]
        return [{"label": label, "kind": kind, "prunes": prunes, "x": x} for label, kind, prunes, x in made]

    def collect(self, case: dict, MaskHook: type, my_prune: Callable[[nn.Module, str, torch.Tensor], object]) -> Any:
        if not isinstance(MaskHook, type):
            return {"MaskHook": MaskHook}
        module, steps, done = _reparam_module(case["kind"]), [], []
        for name, mask in case["prunes"]:
            param = getattr(module, name)
            call(my_prune, module, name, mask.clone())
            done.append(name)
            hooks = list(module._forward_pre_hooks.values())
            steps.append({
                "structure": _structure(module),
                "same_parameter": getattr(module, name + "_orig", None) is param,
                "hooks": [type(h).__name__ for h in hooks],
                "one_maskhook": len(hooks) == 1 and isinstance(hooks[0], MaskHook),
                "attributes": {n: vars(module)[n].detach().clone() if isinstance(vars(module).get(n), torch.Tensor) else None
                               for n in done},
            })
        return {"steps": steps, "state": _snapshot(module),
                **_forward_and_backward(module, case["x"], done)}

    def judge(self, case: dict, got: Any) -> None:
        if "MaskHook" in got:
            fail(f"`MaskHook` is {show(got['MaskHook'])}, expected the class itself.",
                 "pass the class `MaskHook`, not an instance.")
        hint_state = ("like `prune.custom_from_mask`: `del module._parameters[name]`, then "
                      "`module.register_parameter(name + '_orig', param)` with the SAME Parameter object (an optimizer "
                      "built before keeps training it), `module.register_buffer(name + '_mask', mask)`, and compute "
                      "`name` right away (call the hook by hand: `hook(module, None)`).")
        hint_one = ("the module must end with ONE forward-pre-hook, a MaskHook, whatever the number of tensors "
                    "pruned: look for it first (`[h for h in module._forward_pre_hooks.values() if isinstance(h, "
                    "MaskHook)]`), append `name` to its `names`, and register a new `MaskHook()` only when there is "
                    "none. Notebook 04's `my_prune` registers one hook per call: that is the design to change.")
        hint_hook = ("before every forward the hook must set, for EVERY name in `self.names`, the plain attribute: "
                     "`setattr(module, name, mask.to(dtype=orig.dtype) * orig)`, with `orig` and `mask` read with "
                     "`getattr(module, name + '_orig')` and `..._mask`, and autograd on (no `torch.no_grad()`), "
                     "so that the gradient flows back to `<name>_orig`.")
        theirs, done = _reparam_module(case["kind"]), []
        where = ""
        for (name, mask), step in zip(case["prunes"], got["steps"]):
            prune.custom_from_mask(theirs, name, mask.clone())
            done.append(name)
            where = f"after my_prune on {case['label']}'s " + ", then ".join(repr(n) for n in done)
            check_equal(f"the (parameters, buffers, state_dict keys) {where}", step["structure"], _structure(theirs),
                        hint_state)
            if not step["same_parameter"]:
                fail(f"{where}, `{name}_orig` is a new tensor, not the Parameter that was `{name}`.", hint_state)
            if not step["one_maskhook"]:
                fail(f"{where}, the module has {len(step['hooks'])} forward-pre-hooks ({step['hooks']}), expected "
                     "one MaskHook.", hint_one)
            for n in done:
                if step["attributes"][n] is None:
                    fail(f"{where}, `{n}` is not a plain attribute of the module yet (torch's is, right away).",
                         hint_state)
                check_equal(f"{n} {where}", step["attributes"][n], getattr(theirs, n).detach(), hint_hook)
        _check_state(f"state_dict() {where}", got["state"], theirs.state_dict(), hint_state)
        if isinstance(got["output"], Raised):
            fail(f"the forward {where} raised {got['output']}", hint_hook)
        reference = _forward_and_backward(theirs, case["x"], done)  # one thread, like collect's
        out_theirs = reference["output"]
        check_equal(f"the output {where}", got["output"], out_theirs.detach(), hint_hook, rtol=0, atol=0)
        if not got["requires_grad"]:
            fail(f"{where}, the output does not require grad: no gradient can reach any `_orig`.", hint_hook)
        for n, grad in reference["grads"].items():
            if got["grads"].get(n) is None:
                fail(f"{where}, no gradient reached `{n}` in the backward pass.", hint_hook)
            check_equal(f"{n}.grad {where}", got["grads"][n], grad, hint_hook, rtol=0, atol=0)
        if isinstance(got["second"], Raised):
            fail(f"the second forward {where} raised {got['second']}", hint_hook)
        check_equal(f"the output {where} and multiplying every `_orig` by -2", got["second"], reference["second"],
                    "the hook must recompute every attribute from the current `_orig` and `_mask` before every "
                    "forward. " + hint_hook, rtol=0, atol=0)


#: Exercise 4's cases: what the module is and which name my_remove makes permanent.
_REMOVE_LABELS = ["a Conv2d with weight and bias pruned: my_remove(conv, 'weight')",
                  "a Linear pruned twice (a PruningContainer): my_remove(linear, 'weight')",
                  "a Linear with a custom mask on its bias: my_remove(linear, 'bias')"]


def _pruned_module(case: int) -> tuple[nn.Module, str]:
    """A pruned module of exercise 4 (the same every call: seeded, without the global generator), the name to remove."""
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

    return quiet_build(make, case), ("weight", "weight", "bias")[case]


def _hook_names(module: nn.Module) -> list[tuple[str, str | None]]:
    """(type, tensor name) of each forward-pre-hook of ``module``."""
    return [(type(h).__name__, getattr(h, "_tensor_name", None)) for h in module._forward_pre_hooks.values()]


@exercise(4, "my_remove makes pruning permanent like prune.remove, keeping the same Parameter object")
class check_04_remove(Check):
    """``my_remove(module, name)`` does what ``prune.remove(module, name)`` does.

    Introduced in solutions/04_under_the_hood.ipynb.
    """

    HINT = ("like `prune.remove`: compute `mask * orig` one last time, delete the plain attribute `name`, take "
            "`orig = module._parameters.pop(name + '_orig')` and put the product into it with "
            "`orig.data = (mask * orig).data` (the same object!), delete the buffer `module._buffers[name + "
            "'_mask']`, delete from `module._forward_pre_hooks` the one hook whose `_tensor_name` is `name` (leave "
            "the others), and register `orig` as the parameter `name` again (`setattr(module, name, orig)`).")

    def cases(self, gen: torch.Generator) -> list[dict]:
        return [{"case": i, "label": label} for i, label in enumerate(_REMOVE_LABELS)]

    def collect(self, case: dict, my_remove: Callable[[nn.Module, str], object]) -> Any:
        module, name = _pruned_module(case["case"])
        orig = getattr(module, name + "_orig")
        with by_hand((prune, "remove", "prune.remove"),
                     (prune.BasePruningMethod, "remove", "prune.BasePruningMethod.remove"), hint=self.HINT):
            call(my_remove, module, name)
        param = getattr(module, name, None)
        return {"structure": _structure(module), "hooks": _hook_names(module),
                "attribute_left": vars(module).get(name) is not None, "same_object": param is orig,
                "state": _snapshot(module),
                "requires_grad": bool(getattr(param, "requires_grad", False))}

    def judge(self, case: dict, got: Any) -> None:
        theirs, name = _pruned_module(case["case"])
        prune.remove(theirs, name)
        where, hint = f"after {case['label']}", self.HINT
        check_equal(f"the (parameters, buffers, state_dict keys) {where}", got["structure"], _structure(theirs), hint)
        check_equal(f"the forward-pre-hooks (type, tensor name) {where}", got["hooks"], _hook_names(theirs), hint)
        if got["attribute_left"]:
            fail(f"{where}, `{name}` is still a plain attribute in the module's __dict__.", hint)
        if not got["same_object"]:
            fail(f"{where}, `{name}` is a new Parameter, not the object that was `{name}_orig`: an optimizer built "
                 "before `remove` would go on training the old one.", hint)
        _check_state(f"state_dict() {where}", got["state"], theirs.state_dict(), hint, exact=True)
        if not got["requires_grad"]:
            fail(f"{where}, `{name}` has requires_grad=False.", hint)


#: Exercise 5: the pruned layers of the model, (layer, tensor name).
_DEEPCOPY_TENSORS = [("conv1", "weight"), ("conv1", "bias"), ("fc1", "weight")]


def _trained_forward_model() -> tuple[nn.Module, torch.Tensor]:
    """Exercise 5's pruned LeNet right after a training forward and backward (non-leaf weights), and its input."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = LeNet()
        prune.random_unstructured(model.conv1, name="weight", amount=0.3)
        prune.l1_unstructured(model.conv1, name="bias", amount=2)
        prune.l1_unstructured(model.fc1, name="weight", amount=0.5)
        prune.l1_unstructured(model.fc1, name="weight", amount=0.5)
        x = torch.randn(4, 1, 28, 28)
    model(x).sum().backward()  # a training forward: conv1.weight and fc1.weight are non-leaves now
    return model, x


def _pruned_attributes(model: nn.Module) -> dict[str, Any]:
    """For each pruned tensor: the plain attribute (None if missing) and ``mask * orig``, both detached."""
    out = {}
    for layer, name in _DEEPCOPY_TENSORS:
        module = getattr(model, layer)
        attribute, mask, orig = (vars(module).get(name), getattr(module, name + "_mask", None),
                                 getattr(module, name + "_orig", None))
        out[f"{layer}.{name}"] = {
            "attribute": attribute.detach().clone() if isinstance(attribute, torch.Tensor) else None,
            "computed": None if mask is None or orig is None else (mask * orig).detach()}
    return out


@exercise(5, "safe_deepcopy copies a pruned LeNet right after a training forward; both stay pruned and independent")
class check_04_safe_deepcopy(Check):
    """``safe_deepcopy(model)`` returns an independent copy of a pruned model, whatever the last forward was.

    Introduced in solutions/04_under_the_hood.ipynb.
    """

    HINT = ("`copy.deepcopy` refuses the non-leaf plain attribute `weight` that a forward with autograd on leaves "
            "behind. Recompute it without a graph first: under `torch.no_grad()`, call each pruning hook by hand "
            "(`hook(module, None)` for every `prune.BasePruningMethod` in `module._forward_pre_hooks`, or "
            "`lenet.refresh_pruned(model)`), then `copy.deepcopy(model)`. Leave the model pruned: no `prune.remove`.")

    def collect(self, case: dict, safe_deepcopy: Callable[[nn.Module], nn.Module]) -> Any:
        model, x = _trained_forward_model()
        origs = dict(model.named_parameters())
        hooks = _hook_names(model.conv1) + _hook_names(model.fc1)
        twin = attempt(safe_deepcopy, model)
        if isinstance(twin, Raised) or not isinstance(twin, LeNet) or twin is model:
            return {"twin": twin, "is_model": twin is model}
        now = dict(model.named_parameters())
        result = {
            "twin": "a LeNet", "is_model": False,
            "same_parameters": list(now) == list(origs) and all(now[n] is p for n, p in origs.items()),
            "hooks_kept": _hook_names(model.conv1) + _hook_names(model.fc1) == hooks,
            "state": _snapshot(model), "attributes": _pruned_attributes(model),
            "twin_hooks": _hook_names(twin.conv1) + _hook_names(twin.fc1), "twin_state": _snapshot(twin),
            "twin_attributes": _pruned_attributes(twin),
            "shares_parameters": any(a is b for a, b in zip(twin.parameters(), model.parameters())),
        }
        original = getattr(twin.fc1, "weight_orig", None)  # None: not pruned, which the judge fails before this
        with torch.no_grad():
            if original is not None:
                original.mul_(-1)
            changed, same = attempt(twin, x), attempt(model, x)
        result["independent"] = (isinstance(changed, torch.Tensor) and isinstance(same, torch.Tensor)
                                 and not torch.equal(changed, same))
        return result

    def judge(self, case: dict, got: Any) -> None:
        hint, twin = self.HINT, got["twin"]
        if isinstance(twin, Raised):
            fail(f"safe_deepcopy(model) raised {twin.type}: {twin.message.split('. ')[0]}.", hint)
        if got["is_model"]:
            fail("safe_deepcopy(model) returned the model itself, not a copy.", hint)
        if twin != "a LeNet":
            fail(f"safe_deepcopy(model) returned {show(twin)}, expected a LeNet.", hint)
        reference, _ = _trained_forward_model()
        state = reference.state_dict()
        if not got["same_parameters"] or not got["hooks_kept"]:
            fail("after safe_deepcopy(model), the model's parameters or pruning hooks changed (was it "
                 "`prune.remove`d?); it must stay pruned, with the same Parameter objects.", hint)
        _check_state("model.state_dict() after safe_deepcopy(model)", got["state"], state, hint)
        for label, attributes in [("model", got["attributes"]), ("the copy", got["twin_attributes"])]:
            for qualified, pair in attributes.items():
                if pair["attribute"] is None:
                    fail(f"after safe_deepcopy(model), {label}.{qualified} is missing: the attribute was deleted and "
                         "not recomputed, so anything reading it before the next forward fails.", hint)
                check_equal(f"{label}.{qualified} after safe_deepcopy(model)", pair["attribute"], pair["computed"],
                            hint)
        check_equal("the forward-pre-hooks (type, tensor name) of the copy", got["twin_hooks"],
                    _hook_names(reference.conv1) + _hook_names(reference.fc1), hint)
        _check_state("copy.state_dict()", got["twin_state"], state, hint)
        if got["shares_parameters"]:
            fail("the copy shares Parameter objects with the model: it is not a deep copy.", hint)
        if not got["independent"]:
            fail("changing the copy's fc1.weight_orig does not change the copy's output: its hooks do not act on it.",
                 hint)
