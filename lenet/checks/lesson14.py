"""Checks of lesson 14 · Beyond LeNet: channels that must be cut together (solutions/14_coupled_channels.ipynb)."""
from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..model import LeNet
from .core import Check, attempt, check_equal, exercise, fail, show, written_call
from .plain import Raised
from .reference import quiet_build

#: BatchNorm's four tensors of one value per channel.
BN_TENSORS = ("weight", "bias", "running_mean", "running_var")


class _TinyResNet(nn.Module):
    """Lesson 14's residual CNN: stem (conv, BN, ReLU, max-pool), one block added to its input, pool, linear head."""

    def __init__(self, c: int = 8) -> None:
        super().__init__()
        self.stem, self.bn0 = nn.Conv2d(1, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
        self.conv1, self.bn1 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
        self.conv2, self.bn2 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
        self.fc = nn.Linear(16 * c, 10)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.bn0(self.stem(images))), 2)
        h = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(x + self.bn2(self.conv2(h)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 4), 1))


class _TwoBlocks(_TinyResNet):
    """The same with a second block (conv3, bn3, conv4, bn4) added to the stream after the first."""

    def __init__(self, c: int = 8) -> None:
        super().__init__(c)
        self.conv3, self.bn3 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
        self.conv4, self.bn4 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.bn0(self.stem(images))), 2)
        x = F.relu(x + self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))))
        x = F.relu(x + self.bn4(self.conv4(F.relu(self.bn3(self.conv3(x))))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 4), 1))


def _with_statistics(model: nn.Module, gen: torch.Generator | None = None, seed: int = 0) -> nn.Module:
    """``model`` in eval mode with BN weights and running statistics away from their defaults (drawn, not trained)."""
    gen = gen if gen is not None else torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.weight.copy_(torch.rand(module.num_features, generator=gen) + 0.5)
                module.bias.copy_(torch.randn(module.num_features, generator=gen) * 0.1)
                module.running_mean.copy_(torch.randn(module.num_features, generator=gen) * 0.2)
                module.running_var.copy_(torch.rand(module.num_features, generator=gen) + 0.5)
    return model.eval()


_MODELS: dict[str, Callable[[int], nn.Module]] = {"TinyResNet": _TinyResNet, "TinyResNet with two blocks": _TwoBlocks,
                                                  "LeNet": lambda c: LeNet()}


def _group(model: str, layer: str) -> dict[str, str]:
    """The reference, written down by hand: {layer: "out" or "in"} for a cut of ``layer``'s output channels."""
    if model == "LeNet":
        return {"conv1": {"conv1": "out", "conv2": "in"}, "conv2": {"conv2": "out", "fc1": "in"}}[layer]
    blocks = 2 if model == "TinyResNet with two blocks" else 1
    if layer in ("conv1", "conv3"):  # inside a block: the block's BN and the next conv's inputs
        k = int(layer[-1])
        return {f"conv{k}": "out", f"bn{k}": "out", f"conv{k + 1}": "in"}
    skip = {"stem": "out", "bn0": "out", "fc": "in"}  # the stream the blocks add to
    for k in range(1, 2 * blocks, 2):
        skip.update({f"conv{k}": "in", f"conv{k + 1}": "out", f"bn{k + 1}": "out"})
    return skip


@exercise(1, "coupled_layers finds the group of any conv's output channels, across batch norm and skip connections")
class check_14_coupled_layers(Check):
    """``coupled_layers(model, layer_name)``: ``{layer name: "out" or "in"}`` for every conv, BN and linear layer whose
    tensors shrink when output channels of the conv ``layer_name`` are cut.

    Introduced in solutions/14_coupled_channels.ipynb.
    """

    def cases(self, gen: torch.Generator) -> list[dict]:
        chosen = [("TinyResNet", "conv1"), ("TinyResNet", "stem"), ("TinyResNet", "conv2"),
                  ("TinyResNet with two blocks", "conv3"), ("TinyResNet with two blocks", "conv2"),
                  ("TinyResNet with two blocks", "stem"), ("LeNet", "conv1"), ("LeNet", "conv2")]
        return [{"model": model, "layer": layer, "c": int(torch.randint(4, 11, (1,), generator=gen))}
                for model, layer in chosen]

    def collect(self, case: dict, coupled_layers: Callable[[nn.Module, str], dict]) -> Any:
        model = quiet_build(lambda: _MODELS[case["model"]](case["c"])).eval()
        return attempt(coupled_layers, model, case["layer"])

    def judge(self, case: dict, got: Any) -> None:
        name = f"coupled_layers(<{case['model']}, {case['c']} channels>, {case['layer']!r})"
        hint = ("a cut of a conv's outputs also cuts its BN and the inputs of the next conv (or linear layer); where "
                "two feature maps are added, both sides lose the same channels, so every layer feeding the sum and "
                "every layer reading it belongs to the group. `tp.DependencyGraph().build_dependency(model, "
                "example_inputs=torch.randn(1, 1, 28, 28))`, then `DG.get_pruning_group(layer, "
                "tp.prune_conv_out_channels, idxs=[0])`: keep the entries whose `dep.target.module` is a layer of "
                "the model, 'out' when `DG.is_out_channel_pruning_fn(dep.handler)`, else 'in'.")
        if isinstance(got, Raised):
            fail(f"`{name}` raised {got}.", hint)
        check_equal(name, got, _group(case["model"], case["layer"]), hint)


def _narrowed(model: nn.Module, keep: list[int]) -> nn.Module:
    """The reference: ``model``'s block with only the channels ``keep`` of conv1 (sliced by hand)."""
    slim, c, k = copy.deepcopy(model), model.conv1.in_channels, len(keep)
    with torch.random.fork_rng(devices=[]):  # the new layers' initial weights: not from the learner's generator
        slim.conv1, slim.bn1 = nn.Conv2d(c, k, 3, padding=1, bias=False), nn.BatchNorm2d(k)
        slim.conv2 = nn.Conv2d(k, c, 3, padding=1, bias=False)
    with torch.no_grad():
        slim.conv1.weight.copy_(model.conv1.weight[keep])
        for tensor in BN_TENSORS:
            getattr(slim.bn1, tensor).copy_(getattr(model.bn1, tensor)[keep])
        slim.conv2.weight.copy_(model.conv2.weight[:, keep])
    return slim.eval()


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict without BN's batch counters (a count of training steps, not a value per channel)."""
    return {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}


@exercise(2, "narrow_block keeps the chosen channels in conv1, all four of bn1's tensors and conv2's inputs")
class check_14_narrow_block(Check):
    """``narrow_block(model, keep)``: a narrower copy of a TinyResNet (eval mode) whose block keeps only conv1's output
    channels ``keep``; ``model`` unchanged.

    Introduced in solutions/14_coupled_channels.ipynb.
    """

    def cases(self, gen: torch.Generator) -> list[dict]:
        cases = []
        for c, k in [(8, 4), (8, 7), (6, 1), (int(torch.randint(5, 13, (1,), generator=gen)), None)]:
            k = k or int(torch.randint(1, c, (1,), generator=gen))
            keep = sorted(torch.randperm(c, generator=gen)[:k].tolist())
            cases.append({"c": c, "keep": keep, "seed": int(torch.randint(0, 2**31 - 1, (1,), generator=gen)),
                          "images": torch.randn(4, 1, 28, 28, generator=gen)})
        return cases

    def collect(self, case: dict, narrow_block: Callable[[nn.Module, list[int]], nn.Module]) -> Any:
        model = _with_statistics(quiet_build(lambda: _TinyResNet(case["c"]), seed=case["seed"]), seed=case["seed"])
        before = {k: v.clone() for k, v in model.state_dict().items()}
        slim = attempt(narrow_block, model, list(case["keep"]))
        unchanged = model.state_dict().keys() == before.keys() and all(
            torch.equal(v, before[k]) for k, v in model.state_dict().items())
        if not isinstance(slim, nn.Module):
            return {"slim": slim, "unchanged": unchanged}
        with torch.no_grad():
            logits = attempt(lambda: slim.eval()(case["images"]))
        return {"slim": "a module", "state": _state(slim), "logits": logits, "unchanged": unchanged}

    def judge(self, case: dict, got: Any) -> None:
        name = f"narrow_block(<TinyResNet({case['c']})>, {case['keep']})"
        hint = ("work on `slim = copy.deepcopy(model)`; give it `nn.Conv2d(c, k, 3, padding=1, bias=False)`, "
                "`nn.BatchNorm2d(k)` and `nn.Conv2d(k, c, 3, padding=1, bias=False)`; then, under `torch.no_grad()`, "
                "copy `model.conv1.weight[keep]` (rows), bn1's weight, bias, running_mean and running_var `[keep]`, "
                "and `model.conv2.weight[:, keep]` (columns: conv2's inputs). Return `slim.eval()`.")
        if isinstance(got["slim"], Raised):
            fail(f"`{name}` raised {got['slim']}.", hint)
        if not got["unchanged"]:
            fail(f"`{name}` changed the model it was given: cut a copy (`copy.deepcopy(model)`).", hint)
        if got["slim"] != "a module":
            fail(f"`{name}` returned {show(got['slim'])}, expected a model.", hint)
        model = _with_statistics(quiet_build(lambda: _TinyResNet(case["c"]), seed=case["seed"]), seed=case["seed"])
        reference = _narrowed(model, case["keep"])
        check_equal(f"{name}.state_dict() (BN's num_batches_tracked left out)", got["state"], _state(reference), hint)
        if isinstance(got["logits"], Raised):
            fail(f"the model from `{name}` raised {got['logits']} in a forward.", hint)
        with torch.no_grad():
            expected = reference(case["images"])
        check_equal(f"the logits of {name}", got["logits"], expected, hint, atol=1e-5)


def _count(c: int, block_cut: int, skip_cut: int) -> int:
    """The reference: the parameters of a TinyResNet(c) built directly with the narrower widths (on the meta device)."""
    s, b = c - skip_cut, c - block_cut
    layers = [nn.Conv2d(1, s, 3, bias=False, device="meta"), nn.BatchNorm2d(s, device="meta"),
              nn.Conv2d(s, b, 3, bias=False, device="meta"), nn.BatchNorm2d(b, device="meta"),
              nn.Conv2d(b, s, 3, bias=False, device="meta"), nn.BatchNorm2d(s, device="meta"),
              nn.Linear(16 * s, 10, device="meta")]
    return sum(p.numel() for layer in layers for p in layer.parameters())


@exercise(3, "params_after counts what is left of TinyResNet after cutting both of its groups, for any widths")
class check_14_params_after(Check):
    """``params_after(c, block_cut, skip_cut)``: the parameters of ``TinyResNet(c)`` after cutting ``block_cut`` of
    conv1's output channels and ``skip_cut`` channels of the skip-connection group.

    Introduced in solutions/14_coupled_channels.ipynb.
    """

    def cases(self, gen: torch.Generator) -> list[dict]:
        rows = [(8, 0, 0), (8, 4, 4), (8, 4, 0), (8, 0, 4), (6, 5, 1)]
        for _ in range(3):
            c = int(torch.randint(2, 33, (1,), generator=gen))
            rows.append((c, int(torch.randint(0, c, (1,), generator=gen)), int(torch.randint(0, c, (1,), generator=gen))))
        return [{"c": c, "block_cut": b, "skip_cut": s} for c, b, s in rows]

    def collect(self, case: dict, params_after: Callable[[int, int, int], int]) -> Any:
        return attempt(params_after, case["c"], case["block_cut"], case["skip_cut"])

    def judge(self, case: dict, got: Any) -> None:
        name = written_call("params_after", case["c"], case["block_cut"], case["skip_cut"])
        hint = ("with s = c - skip_cut channels in the stream and b = c - block_cut inside the block: the stem has "
                "9·s weights (1 input, 3 x 3, no bias), every BN 2 parameters per channel (weight and bias; its "
                "running statistics are buffers), conv1 9·s·b, conv2 9·b·s, and fc reads 16 values per stream "
                "channel: 16·s·10 weights + 10 biases. Compare with `lenet.count_parameters` of a model cut by "
                "torch-pruning.")
        if isinstance(got, Raised):
            fail(f"`{name}` raised {got}.", hint)
        check_equal(name, got, _count(case["c"], case["block_cut"], case["skip_cut"]), hint)
