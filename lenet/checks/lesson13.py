"""Checks of lesson 13 · Beyond LeNet: where the hook does not fire (solutions/13_beyond_lenet.ipynb)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.nn.utils import prune

from ..inspection import _pruning_hooks
from ..model import LeNet
from .core import Check, attempt, check_equal, check_mask, exercise, fail, show
from .plain import Raised
from .reference import quiet_build, quiet_pretrained, tensor_holder


class _RowAttention(nn.Module):
    """Lesson 13's attention model over the 28 rows of an image, narrower (d=16, 2 heads)."""

    def __init__(self, d: int = 16, heads: int = 2) -> None:
        super().__init__()
        self.embed, self.pos = nn.Linear(28, d), nn.Parameter(torch.zeros(28, d))
        self.attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.head = nn.Linear(d, 10)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        z = self.embed(images.view(-1, 28, 28)) + self.pos
        a, _ = self.attn(z, z, z, need_weights=False)
        return self.head((z + a).mean(1))


class _RowLSTM(nn.Module):
    """Lesson 13's LSTM over the rows of an image (16 hidden units)."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm, self.head = nn.LSTM(28, 16, batch_first=True), nn.Linear(16, 10)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(images.view(-1, 28, 28))
        return self.head(out[:, -1])


class _SpareHead(nn.Module):
    """A model with a layer its forward never uses (``spare``): a pruned tensor there is silent too."""

    def __init__(self) -> None:
        super().__init__()
        self.body, self.head, self.spare = nn.Linear(784, 32), nn.Linear(32, 10), nn.Linear(32, 10)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.body(images.flatten(1))))


#: The models of exercise 1: how to build one, and the shape of its input.
_MODELS: dict[str, tuple[Callable[[], nn.Module], tuple[int, ...]]] = {
    "RowAttention": (_RowAttention, (3, 1, 28, 28)),
    "TransformerEncoderLayer(16, 2)": (
        lambda: nn.TransformerEncoderLayer(16, 2, dim_feedforward=32, dropout=0.0, batch_first=True), (3, 7, 16)),
    "RowLSTM": (_RowLSTM, (3, 1, 28, 28)),
    "LeNet": (LeNet, (2, 1, 28, 28)),
    "a model with a spare layer": (_SpareHead, (2, 1, 28, 28)),
}


def _pruned_model(case: dict) -> nn.Module:
    """The case's model, built from its seed, with the case's tensors L1-pruned by half, in training mode."""
    build, _ = _MODELS[case["model"]]
    model = quiet_build(build, seed=case["seed"]).train()
    for path in case["pruned"]:
        module_name, _, tensor = path.rpartition(".")
        prune.l1_unstructured(model.get_submodule(module_name), tensor, amount=0.5)
    return model


def _hooks(model: nn.Module) -> list[tuple[str, int]]:
    """(module name, number of forward-pre-hooks and forward hooks) for every module: what a check leaves behind."""
    return [(name, len(m._forward_pre_hooks) + len(m._forward_hooks)) for name, m in model.named_modules()]


def _silent(case: dict) -> list[str]:
    """The reference: the pruned tensors of the case's model whose module is not called in one forward."""
    model = _pruned_model(case)
    called: set[str] = set()
    handles = [m.register_forward_pre_hook(lambda module, args, name=name: called.add(name))
               for name, m in model.named_modules()]
    model(case["inputs"])
    for handle in handles:
        handle.remove()
    return sorted(path for path in case["pruned"] if path.rpartition(".")[0] not in called)


@exercise(1, "silent_pruned finds every pruned tensor whose hook never runs, in attention, RNN and other models")
class check_13_silent_pruned(Check):
    """``silent_pruned(model, inputs)``: the sorted ``"module.tensor"`` names of the pruned tensors whose pruning
    hook does not run during ``model(inputs)``; the model keeps no hook of the function's own.

    Introduced in solutions/13_beyond_lenet.ipynb.
    """

    def cases(self, gen: torch.Generator) -> list[dict]:
        chosen = [
            ("RowAttention", ["attn.in_proj_weight", "attn.out_proj.weight"]),
            ("RowAttention", ["embed.weight", "attn.out_proj.bias", "head.weight"]),
            ("TransformerEncoderLayer(16, 2)", ["self_attn.in_proj_weight", "self_attn.out_proj.weight",
                                                "linear1.weight", "linear2.bias"]),
            ("RowLSTM", ["lstm.weight_ih_l0", "lstm.weight_hh_l0", "head.weight"]),
            ("LeNet", ["conv1.weight", "fc3.bias"]),
            ("a model with a spare layer", ["body.weight", "spare.weight"]),
        ]
        cases = []
        for model, pruned in chosen:
            seed = int(torch.randint(0, 2**31 - 1, (1,), generator=gen))
            shape = _MODELS[model][1]
            cases.append({"model": model, "pruned": pruned, "seed": seed, "inputs": torch.randn(shape, generator=gen)})
        return cases

    def collect(self, case: dict, silent_pruned: Callable[[nn.Module, torch.Tensor], list[str]]) -> Any:
        model = _pruned_model(case)
        before = _hooks(model)
        got = attempt(silent_pruned, model, case["inputs"].clone())
        return {"answer": got, "hooks_left": _hooks(model) != before}

    def judge(self, case: dict, got: Any) -> None:
        name = f"silent_pruned({case['model']} with {', '.join(case['pruned'])} pruned, inputs)"
        hint = ("register a forward-pre-hook on every module (`model.named_modules()`) that notes the module's name, "
                "run `model(inputs)` once, remove your hooks (`handle.remove()`), then keep the pruned tensors "
                "whose module never ran. A pruned tensor is a `prune.BasePruningMethod` among `module."
                "_forward_pre_hooks.values()`, its name `hook._tensor_name`; write it `f\"{module_name}.{tensor}\"`.")
        answer = got["answer"]
        if isinstance(answer, Raised):
            fail(f"`{name}` raised {answer}.", hint)
        if got["hooks_left"]:
            fail(f"after `{name}` the model holds hooks it did not have before: your function must remove the hooks "
                 "it registers, or every later forward keeps running them.", hint)
        if not isinstance(answer, (list, tuple, set)):
            fail(f"`{name}` returned {show(answer)}, expected a list of names like 'attn.out_proj.weight'.", hint)
        check_equal(name, sorted(answer) if all(isinstance(a, str) for a in answer) else answer, _silent(case), hint)


def _ddp_state(model: nn.Module, prefix: str) -> dict[str, torch.Tensor]:
    """``model``'s state dict with ``prefix`` before every key, as DistributedDataParallel or DataParallel save it."""
    return {prefix + key: value.detach().clone() for key, value in model.state_dict().items()}


def _reference_load(state: dict[str, torch.Tensor]) -> nn.Module:
    """The reference answer: the prefix stripped, the pruning restored, the state loaded strictly."""
    from torch.nn.modules.utils import consume_prefix_in_state_dict_if_present

    from ..checkpoints import restore_pruning

    state = dict(state)
    consume_prefix_in_state_dict_if_present(state, "module.")
    model = restore_pruning(quiet_build(LeNet), state)
    model.load_state_dict(state)
    return model


def _pruned_names(model: nn.Module) -> list[str]:
    """``"module.tensor"`` for every tensor ``model`` holds pruned, sorted."""
    return sorted(f"{name}.{tensor}" for name, _, tensor in _pruning_hooks(model))


@exercise(2, "load_ddp_checkpoint strips `module.`, restores the pruning and loads strictly, leaving its argument alone")
class check_13_load_ddp(Check):
    """``load_ddp_checkpoint(state_dict)``: a ``lenet.LeNet`` with the pruning of ``state_dict`` restored and its
    values loaded, whether its keys start with ``module.`` (DDP, DataParallel) or not; ``state_dict`` unchanged.

    Introduced in solutions/13_beyond_lenet.ipynb.
    """

    def cases(self, gen: torch.Generator) -> list[dict]:
        cases = []
        for label, prefix, pruned in [("DDP, fc1.weight pruned", "module.", [("fc1", "weight", 0.5)]),
                                      ("DDP, conv1.weight and fc3.bias pruned", "module.",
                                       [("conv1", "weight", 0.3), ("fc3", "bias", 3)]),
                                      ("no prefix, conv2.weight pruned", "", [("conv2", "weight", 0.7)]),
                                      ("DDP, nothing pruned", "module.", []),
                                      ("DDP, random masks on two layers", "module.", None)]:
            model = quiet_pretrained()
            if pruned is None:  # masks drawn from the grader's generator
                for layer in ("conv2", "fc2"):
                    weight = model.get_submodule(layer).weight
                    prune.custom_from_mask(model.get_submodule(layer), "weight",
                                           (torch.rand(weight.shape, generator=gen) > 0.4).float())
            for layer, tensor, amount in pruned or []:
                prune.l1_unstructured(model.get_submodule(layer), tensor, amount=amount)
            cases.append({"label": label, "state": _ddp_state(model, prefix), "images": torch.randn(4, 1, 28, 28,
                                                                                                   generator=gen)})
        return cases

    def collect(self, case: dict, load_ddp_checkpoint: Callable[[dict], nn.Module]) -> Any:
        given = {key: value.clone() for key, value in case["state"].items()}
        model = attempt(load_ddp_checkpoint, given)
        unchanged = list(given) == list(case["state"]) and all(torch.equal(given[k], case["state"][k]) for k in given)
        if not isinstance(model, nn.Module):
            return {"model": model, "unchanged": unchanged}
        with torch.no_grad():
            logits = attempt(lambda: model.eval()(case["images"]))
        return {"model": type(model).__name__, "state": model.state_dict(), "pruned": _pruned_names(model),
                "logits": logits, "unchanged": unchanged}

    def judge(self, case: dict, got: Any) -> None:
        name = f"load_ddp_checkpoint(<{case['label']}>)"
        hint = ("strip the prefix from a copy of the dict (`state = dict(state_dict)`, then "
                "`consume_prefix_in_state_dict_if_present(state, 'module.')`, which works in place and leaves keys "
                "without the prefix alone), then `lenet.restore_pruning(lenet.LeNet(), state)` and a strict "
                "`model.load_state_dict(state)`: in this order, since restore_pruning looks the masks' modules up by "
                "name.")
        if isinstance(got["model"], Raised):
            fail(f"`{name}` raised {got['model']}.", hint)
        if not got["unchanged"]:
            fail(f"`{name}` changed the dict it was given: `consume_prefix_in_state_dict_if_present` renames the keys "
                 "in place, so the caller's checkpoint would lose its prefix.", hint)
        if got["model"] != "LeNet":
            fail(f"`{name}` returned {show(got['model'])}, expected a lenet.LeNet.", hint)
        reference = _reference_load(case["state"])
        check_equal(f"the pruned tensors of {name}", got["pruned"], _pruned_names(reference), hint)
        check_equal(f"{name}.state_dict()", got["state"], dict(reference.state_dict()), hint)
        with torch.no_grad():
            expected = reference.eval()(case["images"])
        if isinstance(got["logits"], Raised):
            fail(f"the model from `{name}` raised {got['logits']} in a forward.", hint)
        check_equal(f"the logits of the model from {name}", got["logits"], expected, hint)


#: How exercise 3's cases hand the scores over: what collect does to the stored (contiguous, CPU) tensor.
_FORMS = {"as is": lambda s: s, "transposed view": lambda s: s.t(), "on the meta device": lambda s: s.to("meta"),
          "permuted view": lambda s: s.permute(0, 2, 1)}


def _scores(case: dict) -> torch.Tensor:
    """The case's scores in the form the learner's function receives them."""
    return _FORMS[case["form"]](case["scores"].clone())


@exercise(3, "safe_scores makes any scores usable by prune, refusing those that hold no values or do not fit")
class check_13_safe_scores(Check):
    """``safe_scores(scores, weight)``: float32, contiguous scores on ``weight``'s device, ranked like ``scores``;
    ``ValueError`` when ``scores`` are on the meta device or their shape differs from ``weight``'s.

    Introduced in solutions/13_beyond_lenet.ipynb.
    """

    def cases(self, gen: torch.Generator) -> list[dict]:
        w = torch.randn(12, 20, generator=gen)
        conv = torch.randn(4, 3, 5, generator=gen)
        amount = float(torch.randint(2, 9, (1,), generator=gen)) / 10
        rows = [
            ("float64 |w|", w, w.abs().double(), "as is"),
            ("int64 ranks of |w|", w, w.abs().flatten().argsort().argsort().view_as(w), "as is"),
            ("float16 |w|", w, w.abs().half(), "as is"),
            ("bool |w| > 0.5 (ties)", w, w.abs() > 0.5, "as is"),
            ("|w|, a transposed view", w, w.abs().t().contiguous(), "transposed view"),
            ("|w| of a 3-d weight, a permuted view", conv, conv.abs().permute(0, 2, 1).contiguous(), "permuted view"),
            ("|w| on the meta device", w, w.abs(), "on the meta device"),
            ("|w|ᵀ: another shape", w, w.abs().t().contiguous(), "as is"),
        ]
        return [{"label": label, "weight": weight, "scores": scores, "form": form, "amount": amount}
                for label, weight, scores, form in rows]

    def collect(self, case: dict, safe_scores: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> Any:
        weight = case["weight"].clone()
        out = attempt(safe_scores, _scores(case), weight)
        if not isinstance(out, torch.Tensor):
            return {"out": out}
        holder = tensor_holder(weight)
        mask = attempt(lambda: prune.l1_unstructured(holder, "weight", case["amount"], importance_scores=out).weight_mask)
        return {"out": "a tensor", "dtype": out.dtype, "device": out.device.type, "contiguous": out.is_contiguous(),
                "mask": mask}

    def judge(self, case: dict, got: Any) -> None:
        name = f"safe_scores(<{case['label']}>, weight)"
        hint = ("check first, then convert: scores on the meta device (`scores.device.type == 'meta'` or "
                "`scores.is_meta`) hold no values, so raise ValueError; so does a shape other than `weight.shape`. "
                "Otherwise return `scores.to(weight.device, torch.float32).contiguous()`: float, since torch.abs "
                "refuses bool; contiguous, since compute_mask calls .view(-1).")
        refused = case["form"] == "on the meta device" or _scores(case).shape != case["weight"].shape
        out = got["out"]
        if refused:
            if not (isinstance(out, Raised) and out.type == "ValueError"):
                what = f"raised {out}" if isinstance(out, Raised) else "returned scores"
                fail(f"`{name}` {what}, expected a ValueError: these scores "
                     + ("hold no values" if case["form"] == "on the meta device" else "do not fit the weight") + ".",
                     hint)
            return
        if isinstance(out, Raised):
            fail(f"`{name}` raised {out}; these scores are usable once converted.", hint)
        if out != "a tensor":
            fail(f"`{name}` returned {show(out)}, expected a tensor.", hint)
        check_equal(f"{name}: (dtype, device, is_contiguous())", (got["dtype"], got["device"], got["contiguous"]),
                    (torch.float32, case["weight"].device.type, True), hint)
        if isinstance(got["mask"], Raised):
            fail(f"prune.l1_unstructured(..., importance_scores={name}) raised {got['mask']}.", hint)
        scores = _FORMS[case["form"]](case["scores"]).float().contiguous()
        expected = prune.l1_unstructured(tensor_holder(case["weight"]), "weight", case["amount"],
                                         importance_scores=scores).weight_mask
        check_mask(f"the mask with importance_scores={name}", got["mask"], expected, scores, hint, score="score")


def _holders(case: dict) -> list[nn.Module]:
    """The case's tensors as modules with a ``weight`` parameter, the case's old masks applied."""
    holders = [tensor_holder(w) for w in case["weights"]]
    for i, mask in case["old_masks"].items():
        prune.custom_from_mask(holders[i], "weight", mask)
    return holders


def _mask_of(module: nn.Module) -> torch.Tensor:
    """The module's weight mask, or ones where it is not pruned."""
    return getattr(module, "weight_mask", torch.ones_like(module.weight)).detach()


@exercise(4, "prune_to_share reaches the share of zeros exactly, with tensors listed twice and old masks")
class check_13_prune_to_share(Check):
    """``prune_to_share(pairs, share)``: one global L1 cut over the distinct tensors of ``pairs`` after which exactly
    ``round(share * N)`` of their N entries are pruned, old masks kept; ``ValueError`` if more are pruned already.

    Introduced in solutions/13_beyond_lenet.ipynb.
    """

    def cases(self, gen: torch.Generator) -> list[dict]:
        shapes = [(6, 5), (4, 7), (10,)]
        weights = [torch.randn(s, generator=gen) for s in shapes]
        old = {0: (torch.rand(shapes[0], generator=gen) > 0.5).float(), 2: (torch.rand(shapes[2], generator=gen) > 0.3).float()}
        share = float(torch.randint(55, 90, (1,), generator=gen)) / 100
        return [
            {"label": "three tensors, each once, none pruned", "weights": weights, "old_masks": {}, "pairs": [0, 1, 2],
             "share": 0.5},
            {"label": "the first tensor listed twice", "weights": weights, "old_masks": {}, "pairs": [0, 1, 0],
             "share": 0.4},
            {"label": "tensors already pruned", "weights": weights, "old_masks": old, "pairs": [0, 1, 2], "share": share},
            {"label": "tensors already pruned, one listed twice", "weights": weights, "old_masks": old,
             "pairs": [2, 0, 1, 2], "share": share},
            {"label": "already sparser than asked", "weights": weights, "old_masks": old, "pairs": [0, 2], "share": 0.1},
        ]

    def collect(self, case: dict, prune_to_share: Callable[[list, float], None]) -> Any:
        holders = _holders(case)
        raised = attempt(prune_to_share, [(holders[i], "weight") for i in case["pairs"]], case["share"])
        return {"raised": raised if isinstance(raised, Raised) else None, "masks": [_mask_of(h) for h in holders]}

    def judge(self, case: dict, got: Any) -> None:
        name = f"prune_to_share(<{case['label']}>, share={case['share']})"
        hint = ("list each tensor once (`list(dict.fromkeys(pairs))`), count its N entries and the ones its old mask "
                "already prunes (`getattr(module, name + '_mask', None)`), then cut exactly the rest: "
                "`prune.global_unstructured(unique, prune.L1Unstructured, amount=round(share * N) - already)`, an int: "
                "a float amount counts only the entries not yet pruned. Raise ValueError when `already` is larger.")
        holders = _holders(case)
        unique = sorted(set(case["pairs"]))
        total = sum(case["weights"][i].numel() for i in unique)
        already = sum(int((_mask_of(holders[i]) == 0).sum()) for i in unique)
        target = round(case["share"] * total)
        if target < already:
            if not (isinstance(got["raised"], Raised) and got["raised"].type == "ValueError"):
                fail(f"`{name}` did not raise ValueError: {already} of the {total} entries are pruned already, more "
                     f"than round(share * N) = {target}.", hint)
            return
        if got["raised"] is not None:
            fail(f"`{name}` raised {got['raised']}.", hint)
        prune.global_unstructured([(holders[i], "weight") for i in unique], prune.L1Unstructured, amount=target - already)
        old = torch.cat([_mask_of(h).flatten() for h in _holders(case)])
        mine = torch.cat([m.flatten() for m in got["masks"]]) if all(
            isinstance(m, torch.Tensor) for m in got["masks"]) else got["masks"]
        expected = torch.cat([_mask_of(h).flatten() for h in holders])
        scores = torch.cat([w.abs().flatten() for w in case["weights"]])
        listed = torch.cat([torch.full((w.numel(),), i in unique) for i, w in enumerate(case["weights"])])
        check_mask(f"the masks after {name}, one after the other", mine, expected, scores, hint,
                   free=listed & (old == 1), score="|w|")
