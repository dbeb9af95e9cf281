"""Checks of lesson 11 · Shipping a pruned model (solutions/11_shipping_a_pruned_model.ipynb).

Each check has three parts (docs/authoring.md): ``cases`` (plain data), ``collect`` (runs the learner's code on a
case where the learner's code runs, and returns what it made as plain data: names, tensors, the files written,
what ONNX Runtime computed from a learner's file) and ``judge`` (compares with torch's own answer, built here
from the case).
"""
from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import prune

from .. import shipping
from ..model import SlimLeNet
from ..inspection import _pruning_hooks
from ..pruning import remove_pruning
from ..shipping import prune_rows, quantize_int8, shrink
from .core import Check, Raised, attempt, by_hand, call, check_equal, exercise, fail, require_answer, show, type_name
from .reference import quiet_build, quiet_pretrained

#: LeNet's layers whose weight and bias a random case may prune.
_LAYERS = ("conv1", "conv2", "fc1", "fc2", "fc3")


def _draw(gen: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand((), generator=gen))


def _pruned_lenet(spec: Sequence[Sequence[Any]]) -> nn.Module:
    """A pretrained LeNet pruned by L1 (no random numbers) as ``spec`` says: ``(layer, tensor, amount)`` in order."""
    model = quiet_pretrained()
    for layer, name, amount in spec:
        prune.l1_unstructured(model.get_submodule(layer), name, amount=amount)
    return model


def _bare_conv() -> nn.Module:
    conv = quiet_build(lambda: nn.Conv2d(1, 4, 3), 3)
    prune.l1_unstructured(conv, "weight", amount=0.5)
    prune.l1_unstructured(conv, "bias", amount=1)
    return conv


def _remove_model(case: dict) -> nn.Module:
    return _bare_conv() if case["spec"] is None else _pruned_lenet(case["spec"])


def _pruned_names(model: nn.Module) -> list[str]:
    """``module.tensor`` names of the tensors still pruned (a reparametrization or a hook left)."""
    names = [f"{m}.{p[:-len('_orig')]}".lstrip(".") for m, module in model.named_modules()
             for p, _ in module.named_parameters(recurse=False) if p.endswith("_orig")]
    names += [f"{m}.{b[:-len('_mask')]}".lstrip(".") for m, module in model.named_modules()
              for b, _ in module.named_buffers(recurse=False) if b.endswith("_mask")]
    names += [f"{m}.{tensor}".lstrip(".") for m, _, tensor in _pruning_hooks(model)]
    return sorted(set(names))


@exercise(1, "remove_all makes every pruned tensor permanent, skips the rest and names what it removed")
class check_11_remove_all(Check):
    """``remove_all(model)``: ``prune.remove`` on every pruned tensor of ``model``; returns their qualified names.

    Introduced in solutions/11_shipping_a_pruned_model.ipynb.
    """

    HINT = ("`prune.remove(module, name)` works on one module and one tensor, and raises ValueError on a tensor that "
            "is not pruned. Find the pruned ones by their hooks: for each `prefix, module` of `model.named_modules()`, "
            "each `hook` in `module._forward_pre_hooks.values()` that is a `prune.BasePruningMethod` names its "
            "tensor in `hook._tensor_name` (weight OR bias; a tensor pruned twice has one PruningContainer). Collect "
            "them all first, then remove: removing deletes the hook from the dict you would be looping over. Name "
            "them f'{prefix}.{name}', or just name for the model's own tensors.")

    def cases(self, gen: torch.Generator) -> list[dict]:
        layers = [name for name in _LAYERS if float(torch.rand((), generator=gen)) < 0.6] or ["fc2"]
        drawn = [(layer, "weight", round(_draw(gen, 0.1, 0.9), 2)) for layer in layers]
        drawn += [(layers[-1], "bias", 1), (layers[0], "weight", 0.5)]  # a bias, and a tensor pruned twice
        return [
            {"label": "a LeNet with fc1.weight pruned twice, conv1.bias and conv2.weight pruned",
             "spec": [("fc1", "weight", 0.5), ("fc1", "weight", 0.5), ("conv1", "bias", 2), ("conv2", "weight", 0.3)]},
            {"label": "a LeNet with only fc3.bias pruned", "spec": [("fc3", "bias", 3)]},
            {"label": "a LeNet without pruning", "spec": []},
            {"label": "a bare nn.Conv2d with weight and bias pruned", "spec": None},
            {"label": f"a LeNet pruned at {', '.join(f'{l}.{n}' for l, n, _ in drawn)}", "spec": drawn},
        ]

    def collect(self, case: dict, remove_all: Callable[[nn.Module], Sequence[str]]) -> Any:
        model = _remove_model(case)
        names = attempt(remove_all, model)
        second = None if isinstance(names, Raised) else attempt(remove_all, model)
        return {"names": list(names) if isinstance(names, (list, tuple)) else names,
                "second": list(second) if isinstance(second, (list, tuple)) else second,
                "left": _pruned_names(model), "state": dict(model.state_dict())}

    def judge(self, case: dict, got: Any) -> None:
        reference = _remove_model(case)
        expected = remove_pruning(reference)
        what = f"remove_all(<{case['label']}>)"
        names = got["names"]
        for result, call_ in ((names, what), (got["second"], f"a second {what}")):
            if isinstance(result, Raised):
                because = (" (prune.remove on a tensor that is not pruned)"
                           if "has to be pruned before" in result.message else "")
                fail(f"{call_} raised {result.type}{because}: {' '.join(result.message.split())[:200]}", self.HINT)
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            fail(f"{what} returned {show(names)} (a {type_name(names)}), expected a list of names like "
                 f"{show(expected)}.", self.HINT)
        check_equal(f"the names {what} returned (sorted)", sorted(names), sorted(expected), self.HINT)
        if got["left"]:
            fail(f"after {what} these tensors are still pruned: {show(got['left'])}.", self.HINT)
        state = reference.state_dict()
        check_equal(f"the state_dict keys after {what} (sorted)", sorted(got["state"]), sorted(state), self.HINT)
        for key, value in state.items():
            check_equal(f"state_dict()[{key!r}] after {what}", got["state"][key], value, self.HINT, rtol=0, atol=0)
        check_equal(f"a second {what}", got["second"], [],
                    "once nothing is pruned, there is nothing to remove: return an empty list.")


def _torch_int8_zeros(w: torch.Tensor) -> torch.Tensor:
    """Where torch's dynamic quantization (``quantize_dynamic`` of an nn.Linear) stores an int8 0 for ``w``."""
    linear = quiet_build(lambda: nn.Linear(w.shape[1], w.shape[0]))
    with torch.no_grad():
        linear.weight.copy_(w)
    return quantize_int8(nn.Sequential(linear))[0].weight().int_repr() == 0


def _randomly_pruned_fc1() -> torch.Tensor:
    """The exercise's weight: the pretrained fc1, half of it pruned at random after ``torch.manual_seed(0)``."""
    model = quiet_pretrained()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        prune.random_unstructured(model.fc1, "weight", amount=0.5)
    return model.fc1.weight.detach()


@exercise(2, "int8_zero_mask predicts torch's int8 zeros: every float zero, and the weights that round to 0")
class check_11_int8_zeros(Check):
    """``int8_zero_mask(w)``: bool tensor, True where dynamic int8 quantization stores 0; ``new_zeros``: how many
    non-zero weights of the pretrained fc1, randomly pruned by half after ``torch.manual_seed(0)``, become int8 zeros.

    Introduced in solutions/11_shipping_a_pruned_model.ipynb.
    """

    HINT = ("the weight scheme is per-tensor symmetric: `scale = w.abs().max() / 127.5` (the range [-max, max] "
            "spread over 255 steps), the int8 value is `torch.round(w / scale)` (round half to even), and the zero "
            "point is 0. So an entry is an int8 zero when `torch.round(w / scale) == 0`: every 0.0, and every "
            "|w| < scale / 2.")

    def cases(self, gen: torch.Generator) -> list[dict]:
        sparse = torch.randn(30, 50, generator=gen) * 0.1
        sparse[torch.rand(30, 50, generator=gen) < 0.6] = 0.0
        skewed = torch.rand(20, 40, generator=gen) * 1.1 - 0.1  # in [-0.1, 1.0]: not symmetric around 0
        skewed[0, 0] = 0.00395  # |w| / (1.0 / 127.5) is 0.504: not zero (with 1.0 / 127 it would be)
        skewed[0, 1] = 0.00390  # 0.497: zero
        skewed[0, 2] = 1.0
        border = torch.tensor([[1.0, 0.00393, -0.00393, 0.0039, -0.0039, 0.0, 0.5, -0.25]])
        return [{"label": "the pretrained LeNet's fc1.weight (no zeros)", "w": quiet_pretrained().fc1.weight.detach()},
                {"label": "a (30, 50) weight, 60% zeros", "w": sparse},
                {"label": "a (20, 40) weight in [-0.1, 1.0]", "w": skewed},
                {"label": f"torch.tensor({border.tolist()})", "w": border},
                {"new_zeros": True}]

    def collect(self, case: dict, int8_zero_mask: Callable[[torch.Tensor], torch.Tensor], new_zeros: int) -> Any:
        if "new_zeros" in case:
            return new_zeros
        return call(int8_zero_mask, case["w"].clone())

    def judge(self, case: dict, got: Any) -> None:
        if "new_zeros" in case:
            w = _randomly_pruned_fc1()
            check_equal("new_zeros", got, int((_torch_int8_zeros(w) & (w != 0)).sum()),
                        "count the entries of the randomly pruned fc1.weight that are non-zero in float32 but int8 "
                        "zeros: `&` of your mask and `w != 0`, then `.sum()`; the pruned zeros are not new.")
            return
        what = f"int8_zero_mask(<{case['label']}>)"
        if not isinstance(got, torch.Tensor):
            fail(f"{what} returned {show(got)} (a {type_name(got)}), expected a bool tensor.", self.HINT)
        check_equal(what, got.bool(), _torch_int8_zeros(case["w"]), self.HINT)


#: Batch sizes the shipped file must accept; the solution's example has 2.
_SHIP_BATCHES = (1, 7, 300)


def _ship_model(case: dict) -> nn.Module:
    if case["kind"] == "slim":
        return shrink(prune_rows(quiet_pretrained()))
    model = quiet_pretrained()
    prune.l1_unstructured(model.fc1, "weight", amount=case["amount"])
    prune.l1_unstructured(model.conv1, "bias", amount=2)
    return model


def _run_onnx(path: str, inputs: dict[str, torch.Tensor]) -> dict[str, Any]:
    """What ONNX Runtime computes from the file at ``path`` for each named input batch (a Raised if it refuses)."""
    import onnxruntime as ort

    session = attempt(lambda: ort.InferenceSession(path, providers=["CPUExecutionProvider"]))
    if isinstance(session, Raised):
        return dict.fromkeys(inputs, session)
    name = session.get_inputs()[0].name
    return {key: attempt(lambda x=x: torch.from_numpy(session.run(None, {name: x.numpy()})[0]))
            for key, x in inputs.items()}


@exercise(3, "ship writes one ONNX file, without masks, that ONNX Runtime runs on any batch size")
class check_11_ship_onnx(Check):
    """``ship(model, path)``: remove the pruning, ``torch.onnx.export`` with a dynamic batch, weights in the file.

    Introduced in solutions/11_shipping_a_pruned_model.ipynb.
    """

    HINT = ("first `lenet.remove_pruning(model)` (or else the file holds weight_orig, weight_mask and a Mul); then "
            "`torch.onnx.export(model, (torch.zeros(2, 1, 28, 28),), path, dynamic_shapes={'x': {0: "
            "torch.export.Dim('batch')}}, external_data=False)`: without dynamic_shapes the file takes the example's "
            "batch size only, and without external_data=False torch 2.13 writes the weights to a second file.")

    def cases(self, gen: torch.Generator) -> list[dict]:
        inputs = {str(n): torch.randn(n, 1, 28, 28, generator=gen) for n in _SHIP_BATCHES}
        amount = round(_draw(gen, 0.3, 0.9), 2)
        return [{"label": f"a LeNet with {amount:.0%} of fc1.weight and 2 conv1 biases pruned", "kind": "pruned",
                 "amount": amount, "inputs": inputs},
                {"label": "a SlimLeNet(2, 8, 60, 42) from lenet.shrink", "kind": "slim", "inputs": inputs}]

    def collect(self, case: dict, ship: Callable[[nn.Module, str], object]) -> Any:
        import onnx

        import lenet

        model = _ship_model(case)
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "model.onnx")
            hint = "write the export yourself: `torch.onnx.export(...)`, as the lesson's section 5 does by hand."
            with warnings.catch_warnings(), by_hand((lenet, "export_onnx", "lenet.export_onnx"),
                                                    (shipping, "export_onnx", "lenet.export_onnx"), hint=hint):
                warnings.simplefilter("ignore")  # the export of a still-pruned model warns; the judge says why
                raised = attempt(ship, model, path)
            got: dict[str, Any] = {"raised": raised if isinstance(raised, Raised) else None,
                                   "files": sorted(os.listdir(folder))}
            if got["raised"] is None and os.path.isfile(path):
                proto = attempt(onnx.load, path, load_external_data=False)
                if not isinstance(proto, Raised):
                    got["initializers"] = [i.name for i in proto.graph.initializer]
                got["outputs"] = _run_onnx(path, case["inputs"])
        return got

    def judge(self, case: dict, got: Any) -> None:
        what = f"ship(<{case['label']}>, path)"
        if got["raised"] is not None:
            fail(f"{what} raised {got['raised']}.", self.HINT)
        if "model.onnx" not in got["files"]:
            fail(f"after {what} there is no file at `path` (the folder holds {show(got['files'])}).",
                 "pass `path` as the third argument of `torch.onnx.export`, the file to write.")
        if got["files"] != ["model.onnx"]:
            fail(f"{what} wrote {show(got['files'])}: the weights went to a second file, which must travel with "
                 "the first.", "pass `external_data=False` to `torch.onnx.export` (torch 2.13 writes the weights "
                 "apart by default).")
        masks = [n for n in got.get("initializers", []) if n.endswith(("_orig", "_mask"))]
        if masks:
            fail(f"the file {what} wrote holds {show(masks)}: the pruning is still there, and the file multiplies "
                 "weights by masks at every call.", self.HINT)
        model = _ship_model(case)
        for key, x in case["inputs"].items():
            out = got["outputs"][key]
            if isinstance(out, Raised):
                fail(f"ONNX Runtime refuses a batch of {key} images with the file {what} wrote: "
                     f"{' '.join(out.message.split())[:200]}", self.HINT)
            with torch.no_grad():
                expected = model(x)
            check_equal(f"the file's logits for a batch of {key} (<{case['label']}>)", out, expected, self.HINT,
                        rtol=1e-4, atol=1e-5)


def _gemm_model(w1: torch.Tensor, b1: torch.Tensor, w2: torch.Tensor, b2: torch.Tensor) -> Any:
    """An ONNX model x -> Gemm(w1, b1) -> Relu -> Gemm(w2, b2), weights as initializers (as torch exports Linear)."""
    from onnx import TensorProto, helper, numpy_helper

    nodes = [helper.make_node("Gemm", ["x", "fc1.weight", "fc1.bias"], ["h"], transB=1),
             helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("Gemm", ["r", "fc2.weight", "fc2.bias"], ["y"], transB=1)]
    inits = [numpy_helper.from_array(t.numpy(), name) for name, t in
             (("fc1.weight", w1), ("fc1.bias", b1), ("fc2.weight", w2), ("fc2.bias", b2))]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", w1.shape[1]])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", w2.shape[0]])
    graph = helper.make_graph(nodes, "gemm", [x], [y], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])


def _conv_model(wc: torch.Tensor, bc: torch.Tensor, wf: torch.Tensor, bf: torch.Tensor) -> Any:
    """An ONNX model x -> Conv(wc, bc) -> Relu -> Flatten -> Gemm(wf, bf)."""
    from onnx import TensorProto, helper, numpy_helper

    nodes = [helper.make_node("Conv", ["x", "conv1.weight", "conv1.bias"], ["c"], kernel_shape=[3, 3]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("Flatten", ["r"], ["f"], axis=1),
             helper.make_node("Gemm", ["f", "fc1.weight", "fc1.bias"], ["y"], transB=1)]
    inits = [numpy_helper.from_array(t.numpy(), name) for name, t in
             (("conv1.weight", wc), ("conv1.bias", bc), ("fc1.weight", wf), ("fc1.bias", bf))]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 1, 6, 6])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", wf.shape[0]])
    graph = helper.make_graph(nodes, "conv", [x], [y], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])


def _rows(gen: torch.Generator, shape: tuple[int, ...], sizes: Sequence[float]) -> torch.Tensor:
    """Random weights whose row r has the largest |w| of ``sizes[r]`` (0: a pruned row of zeros)."""
    w = torch.rand(shape, generator=gen) * 2 - 1
    w = w / w.flatten(1).abs().amax(1).view(-1, *[1] * (len(shape) - 1))
    return (w * torch.tensor(sizes).view(-1, *[1] * (len(shape) - 1))).float()


def _per_row_reference(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The exercise's rule: per-row scale max|w[r]| / 127 (1 for a row of zeros) and the int8 values."""
    scale = w.flatten(1).abs().amax(1) / 127
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    return torch.round(w / scale.view(-1, *[1] * (w.dim() - 1))).to(torch.int8), scale


@exercise(4, "per_row_int8 stores every weight as int8 with one scale per row, read through DequantizeLinear")
class check_11_per_row_int8(Check):
    """``per_row_int8(src, dst)``: the ONNX file ``src`` with every weight (2-D and up) as int8 and one float32 scale
    per output row, read through a ``DequantizeLinear`` (axis 0) whose output keeps the weight's name; saved at dst.

    Introduced in solutions/11_shipping_a_pruned_model.ipynb.
    """

    HINT = ("for each initializer with 2 or more dims: `scale = np.abs(w).reshape(len(w), -1).max(axis=1) / 127`, "
            "1 where that is 0 (`np.where(scale > 0, scale, 1)`), as float32; `q = np.round(w / scale.reshape(-1, "
            "*[1] * (w.ndim - 1))).astype(np.int8)`; replace the initializer by q and the scales, and insert "
            "`helper.make_node('DequantizeLinear', [q_name, scale_name], [the weight's name], axis=0)`: without "
            "axis=0, ONNX pairs a vector of scales with axis 1.")

    def cases(self, gen: torch.Generator) -> list[dict]:
        rows = [1.0, 0.01, 0.3, 0.0, 2.0, 0.05]  # sizes 200x apart, and a pruned row
        gemm = {"kind": "gemm", "label": "x -> Gemm (6 rows, one of zeros) -> Relu -> Gemm",
                "weights": {"fc1.weight": _rows(gen, (6, 20), rows),
                            "fc2.weight": _rows(gen, (3, 6), [1.0, 0.02, 0.5])},
                "biases": {"fc1.bias": torch.randn(6, generator=gen) * 0.1, "fc2.bias": torch.randn(3, generator=gen)},
                "x": torch.randn(5, 20, generator=gen)}
        conv = {"kind": "conv", "label": "x -> Conv (4 filters, one of zeros) -> Relu -> Flatten -> Gemm",
                "weights": {"conv1.weight": _rows(gen, (4, 1, 3, 3), [0.8, 0.0, 0.004, 0.2]),
                            "fc1.weight": _rows(gen, (3, 64), [0.05, 1.0, 0.3])},
                "biases": {"conv1.bias": torch.randn(4, generator=gen) * 0.1,
                           "fc1.bias": torch.randn(3, generator=gen)},
                "x": torch.randn(2, 1, 6, 6, generator=gen) * 3}
        return [gemm, conv]

    def collect(self, case: dict, per_row_int8: Callable[[str, str], object]) -> Any:
        import onnx
        from onnx import numpy_helper

        build = _gemm_model if case["kind"] == "gemm" else _conv_model
        w, b = list(case["weights"].values()), list(case["biases"].values())
        proto = build(w[0], b[0], w[1], b[1])
        with tempfile.TemporaryDirectory() as folder:
            src, dst = os.path.join(folder, "src.onnx"), os.path.join(folder, "dst.onnx")
            onnx.save(proto, src)
            raised = attempt(per_row_int8, src, dst)
            got: dict[str, Any] = {"raised": raised if isinstance(raised, Raised) else None,
                                   "saved": os.path.isfile(dst)}
            if got["raised"] is None and got["saved"]:
                out = attempt(onnx.load, dst)
                if isinstance(out, Raised):
                    got["raised"] = out
                    return got
                got["initializers"] = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy())
                                       for i in out.graph.initializer}
                got["dequantize"] = {n.output[0]: {"inputs": list(n.input),
                                                   "axis": next((a.i for a in n.attribute if a.name == "axis"), None)}
                                     for n in out.graph.node if n.op_type == "DequantizeLinear" and n.output}
                got["y"] = _run_onnx(dst, {"x": case["x"]})["x"]
        return got

    def judge(self, case: dict, got: Any) -> None:
        what = f"per_row_int8(<{case['label']}>)"
        if got["raised"] is not None:
            fail(f"{what} raised {got['raised']}.", self.HINT)
        if not got["saved"]:
            fail(f"after {what} there is no file at `dst`.", "save the changed model: `onnx.save(proto, dst)`.")
        inits, dq = got["initializers"], got["dequantize"]
        for name, w in case["weights"].items():
            if name in inits:
                fail(f"the file {what} wrote still holds `{name}` as a {inits[name].dtype} initializer.", self.HINT)
            node = dq.get(name)
            if node is None or len(node["inputs"]) < 2 or not all(i in inits for i in node["inputs"][:2]):
                fail(f"in the file {what} wrote, no DequantizeLinear of two initializers makes `{name}`.", self.HINT)
            q, scale = inits[node["inputs"][0]], inits[node["inputs"][1]]
            expected_q, expected_scale = _per_row_reference(w)
            if q.dtype != torch.int8:
                fail(f"`{name}` is stored as {q.dtype}, expected int8 (a byte per weight).", self.HINT)
            if scale.dim() != 1 or len(scale) != len(w):
                fail(f"the scale of `{name}` has shape {tuple(scale.shape)}, expected one per row: "
                     f"({len(w)},). One scale for the whole tensor is the lesson's weight_only_int8.", self.HINT)
            if node["axis"] not in (0, -w.dim()):
                fail(f"the DequantizeLinear of `{name}` has axis {node['axis']} (None: the default, 1); its scales "
                     "run along axis 0, the rows.", self.HINT)
            zero_rows = (w.flatten(1) == 0).all(1)
            if not bool((scale > 0).all()) or not bool(torch.isfinite(scale).all()):
                fail(f"the scales of `{name}` are {show(scale)}: a row of zeros (row {zero_rows.nonzero()[0].item()}, "
                     "a pruned neuron) got the scale 0, and 0 / 0 is nan. Give such a row the scale 1.", self.HINT)
            check_equal(f"the scales of `{name}`", scale, expected_scale, self.HINT, rtol=1e-6, atol=0)
            off = (q.int() - expected_q.int()).abs()
            if int(off.max()) > 1:  # one step of slack for a division that lands on .5 another way
                first = tuple(torch.nonzero(off > 1)[0].tolist())
                fail(f"the int8 values of `{name}` differ from round(w / scale[r]) by up to {int(off.max())}, "
                     f"first at {first}.", self.HINT)
        y = got["y"]
        if isinstance(y, Raised):
            fail(f"ONNX Runtime cannot run the file {what} wrote: {' '.join(y.message.split())[:200]}", self.HINT)
        check_equal(f"the outputs of the file {what} wrote", y, self._expected(case), self.HINT, rtol=1e-4,
                    atol=1e-5)

    @staticmethod
    def _expected(case: dict) -> torch.Tensor:
        """The model's outputs with every weight replaced by its per-row int8 value times its scale."""
        deq = {}
        for name, w in case["weights"].items():
            q, scale = _per_row_reference(w)
            deq[name] = q.float() * scale.view(-1, *[1] * (w.dim() - 1))
        b, x = case["biases"], case["x"]
        if case["kind"] == "gemm":
            return F.linear(F.relu(F.linear(x, deq["fc1.weight"], b["fc1.bias"])), deq["fc2.weight"], b["fc2.bias"])
        h = F.relu(F.conv2d(x, deq["conv1.weight"], b["conv1.bias"])).flatten(1)
        return F.linear(h, deq["fc1.weight"], b["fc1.bias"])


def _int8_case(widths: Sequence[int], seed: int) -> nn.Module:
    """An int8 SlimLeNet with random float weights (built without the learner's random numbers)."""
    return quantize_int8(quiet_build(lambda: SlimLeNet(*widths), seed))


@exercise(5, "load_int8 rebuilds the int8 SlimLeNet from its state_dict")
class check_11_load_int8(Check):
    """``load_int8(path, widths)``: the int8 SlimLeNet whose ``state_dict`` was saved at ``path``.

    Introduced in solutions/11_shipping_a_pruned_model.ipynb.
    """

    HINT = ("an int8 state_dict holds `fc1._packed_params...`, `fc1.scale` and `fc1.zero_point`, not `fc1.weight`: "
            "it fits a model that is already quantized and of the same widths (`strict=False` into a float model "
            "loads the convolutions only and leaves the Linear layers random: lesson 05's trap). Build "
            "`lenet.quantize_int8(lenet.SlimLeNet(*widths))`, then `model.load_state_dict(torch.load(path, "
            "weights_only=True))`, and return the model.")

    def cases(self, gen: torch.Generator) -> list[dict]:
        drawn = tuple(int(torch.randint(low, high, (1,), generator=gen)) for low, high in
                      ((1, 7), (1, 17), (4, 121), (4, 85)))
        return [{"widths": widths, "seed": seed, "x": torch.randn(16, 1, 28, 28, generator=gen)}
                for seed, widths in enumerate([(2, 8, 60, 42), (3, 5, 17, 11), (6, 16, 120, 84), drawn])]

    def collect(self, case: dict, load_int8: Callable[[str, tuple[int, int, int, int]], nn.Module]) -> Any:
        widths = tuple(case["widths"])
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "int8.pt")
            torch.save(_int8_case(widths, case["seed"]).state_dict(), path)
            with warnings.catch_warnings(), torch.random.fork_rng(devices=[]):  # building a model draws numbers
                warnings.simplefilter("ignore")  # torch's loader of quantized tensors warns about TypedStorage
                model = attempt(load_int8, path, widths)
        if not isinstance(model, nn.Module):
            return {"model": model}
        fc1 = getattr(model, "fc1", None)
        weight = getattr(fc1, "weight", None)
        int8 = attempt(lambda: weight().int_repr()) if callable(weight) else None  # an int8 Linear's weight()
        with torch.no_grad():
            return {"model": type(model).__name__, "fc1": f"{type(fc1).__module__}.{type(fc1).__name__}",
                    "fc1_int8": int8, "outputs": attempt(model, case["x"])}

    def judge(self, case: dict, got: Any) -> None:
        widths = tuple(case["widths"])
        what = f"load_int8(path, {widths})"
        model = got["model"]
        if isinstance(model, Raised):
            if "state_dict" in model.message:
                said = " ".join(model.message.split())
                fail(f"{what} built a model that the int8 state_dict does not fit: build an int8 SlimLeNet of these "
                     f"widths before loading (torch said: {model.type}: "
                     f"{said if len(said) <= 160 else said[:157] + '...'}).", self.HINT)
            fail(f"{what} raised {model.type}: {' '.join(model.message.split())[:200]}", self.HINT)
        if "fc1" not in got:
            fail(f"{what} returned {show(model)} (a {type_name(model)}), expected the model.", self.HINT)
        if not got["fc1"].startswith("torch.ao.nn.quantized"):
            fail(f"{what} returned a {model} whose fc1 is a {got['fc1']}, not an int8 (dynamically quantized) "
                 "Linear.", self.HINT)
        saved = _int8_case(widths, case["seed"])
        loaded = got["fc1_int8"]
        if isinstance(loaded, torch.Tensor) and not torch.equal(loaded, saved.fc1.weight().int_repr()):
            fail(f"{what} returned an int8 model whose fc1 weights are not the file's: load the state_dict into it. "
                 "(Quantizing after loading into a float model with strict=False leaves fc1 as random as a fresh "
                 "model's.)", self.HINT)
        with torch.no_grad():
            expected = saved(case["x"])
        require_answer(f"the outputs of {what}", got["outputs"], self.HINT)
        if isinstance(got["outputs"], Raised):
            fail(f"the model {what} returned cannot run a batch: {got['outputs']}", self.HINT)
        check_equal(f"the outputs of {what}", got["outputs"], expected, self.HINT, rtol=0, atol=0)
