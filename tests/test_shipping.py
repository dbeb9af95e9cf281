"""Shipping helpers: remove_pruning, prune_rows, shrink (the SlimLeNet of notebook 08), quantize_int8, timing."""
import warnings

import pytest
import torch
from torch import nn
from torch.nn.utils import prune

import lenet
from lenet import pipeline


def _hooks(model: nn.Module) -> list[str]:
    return [type(h).__name__ for m in model.modules() for h in m._forward_pre_hooks.values()]


def test_remove_pruning_removes_every_pruned_tensor_and_skips_the_rest(model, data):
    prune.l1_unstructured(model.conv1, "bias", amount=2)
    prune.global_unstructured([(model.fc1, "weight"), (model.fc2, "weight")], prune.L1Unstructured, amount=0.8)
    prune.l1_unstructured(model.fc1, "weight", amount=0.5)  # pruned twice: a PruningContainer
    x = data.test_x[:16]
    with torch.no_grad():
        before = model(x)
    effective = {name: getattr(model, name).weight.detach().clone() for name in ("fc1", "fc2")}
    assert lenet.remove_pruning(model) == ["conv1.bias", "fc1.weight", "fc2.weight"]
    assert _hooks(model) == [] and not prune.is_pruned(model)
    assert sorted(model.state_dict()) == sorted(lenet.LeNet().state_dict())  # plain keys, as dense
    for name, w in effective.items():
        assert isinstance(getattr(model, name).weight, nn.Parameter)
        assert torch.equal(getattr(model, name).weight.detach(), w)
    with torch.no_grad():
        assert torch.equal(model(x), before)
    assert lenet.remove_pruning(model) == []  # nothing left: no "has to be pruned before" error


def test_remove_pruning_names_a_bare_module_without_a_prefix():
    conv = nn.Conv2d(1, 3, 3)
    prune.random_unstructured(conv, "weight", amount=0.5)
    assert lenet.remove_pruning(conv) == ["weight"]
    assert lenet.remove_pruning(lenet.LeNet()) == []


def _by_hand_slim(structured: nn.Module) -> lenet.SlimLeNet:
    """Notebook 08's cell, verbatim in spirit: kept rows from the masks, the 25 fc1 columns per conv2 channel."""
    kept = [torch.nonzero(getattr(structured, n).weight_mask.flatten(1).any(dim=1)).flatten()
            for n in ("conv1", "conv2", "fc1", "fc2")]
    k1, k2, kf1, kf2 = kept
    fc1_cols = (k2[:, None] * 25 + torch.arange(25)).flatten()
    slim = lenet.SlimLeNet(len(k1), len(k2), len(kf1), len(kf2)).eval()
    s = structured
    with torch.no_grad():
        slim.conv1.weight.copy_(s.conv1.weight[k1]); slim.conv1.bias.copy_(s.conv1.bias[k1])
        slim.conv2.weight.copy_(s.conv2.weight[k2][:, k1]); slim.conv2.bias.copy_(s.conv2.bias[k2])
        slim.fc1.weight.copy_(s.fc1.weight[kf1][:, fc1_cols]); slim.fc1.bias.copy_(s.fc1.bias[kf1])
        slim.fc2.weight.copy_(s.fc2.weight[kf2][:, kf1]); slim.fc2.bias.copy_(s.fc2.bias[kf2])
        slim.fc3.weight.copy_(s.fc3.weight[:, kf2]); slim.fc3.bias.copy_(s.fc3.bias)
    return slim


def test_shrink_gives_notebook_08s_slim_lenet_exactly(model, data):
    structured = lenet.prune_rows(model)
    assert structured is model
    keys_before = list(structured.state_dict())
    torch.manual_seed(123)
    expected_draw = torch.rand(3)
    torch.manual_seed(123)
    slim = lenet.shrink(structured)
    assert torch.equal(torch.rand(3), expected_draw)  # the global random generator was not used
    assert list(structured.state_dict()) == keys_before and prune.is_pruned(structured)  # input untouched
    assert isinstance(slim, lenet.SlimLeNet) and slim.widths == (2, 8, 60, 42) and not slim.training
    assert _hooks(slim) == []
    by_hand = _by_hand_slim(structured)
    for (key, mine), theirs in zip(slim.state_dict().items(), by_hand.state_dict().values()):
        assert torch.equal(mine, theirs), key
    with torch.no_grad():
        assert torch.allclose(slim(data.test_x), structured(data.test_x), atol=1e-5)
    assert lenet.count_parameters(slim) == 15_224


def test_shrink_after_remove_and_of_a_slim_model(model):
    slim = lenet.shrink(lenet.prune_rows(lenet.pretrained()))
    lenet.remove_pruning(lenet.prune_rows(model))
    again = lenet.shrink(model)
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(), slim.state_dict().values()))
    assert lenet.shrink(slim).widths == slim.widths
    assert lenet.shrink(lenet.pretrained()).widths == (6, 16, 120, 84)


def test_shrink_refuses_rows_whose_bias_still_leaks_and_other_models(model):
    prune.ln_structured(model.conv2, "weight", amount=8, n=2, dim=0)  # biases not masked: 08's trap
    with pytest.raises(ValueError, match=r"conv2: rows \[.+\] have all-zero weights but non-zero biases.*custom_from_mask"):
        lenet.shrink(model)
    empty = lenet.pretrained()
    lenet.prune_rows(empty, {"fc2": 84})
    with pytest.raises(ValueError, match="fc2: every row is pruned"):
        lenet.shrink(empty)
    with pytest.raises(TypeError, match="expects a LeNet"):
        lenet.shrink(nn.Sequential(nn.Linear(2, 2)))


def test_slim_lenet_defaults_to_lenets_widths_and_checks_its_input():
    assert lenet.count_parameters(lenet.SlimLeNet()) == lenet.count_parameters(lenet.LeNet()) == 60_074
    with pytest.raises(ValueError, match="expects a batch of shape"):
        lenet.SlimLeNet(2, 8, 60, 42)(torch.zeros(1, 28, 28))


def test_quantize_int8_needs_permanent_pruning_keeps_zeros_and_is_quiet(model, data):
    prune.l1_unstructured(model.fc1, "weight", amount=0.5)
    with pytest.raises(ValueError, match="remove_pruning"):
        lenet.quantize_int8(model)
    lenet.remove_pruning(model)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # neither torch's deprecation warnings nor any other
        q = lenet.quantize_int8(model)
    assert type(q.fc1).__name__ == "Linear" and type(q.fc1).__module__.startswith("torch.ao.nn.quantized.dynamic")
    assert isinstance(q.conv1, nn.Conv2d) and isinstance(model.fc1, nn.Linear)  # a copy: the model is unchanged
    zeros = model.fc1.weight == 0
    assert int(zeros.sum()) == 24_000 and bool((q.fc1.weight().int_repr()[zeros] == 0).all())
    assert lenet.evaluate(q, data) >= lenet.evaluate(model, data) - 0.01


def test_time_rounds_and_speedups():
    threads = torch.get_num_threads()
    calls = []
    times = lenet.time_rounds({"dense": lambda: calls.append("d"), "other": lambda: calls.append("o")}, rounds=3, number=2)
    assert calls == ["d", "o"] + ["d", "d", "o", "o"] * 3  # warm-up, then interleaved rounds
    assert [len(v) for v in times.values()] == [3, 3] and torch.get_num_threads() == threads
    ratios = lenet.speedups({"dense": [2.0, 4.0, 9.0], "slim": [1.0, 4.0, 3.0]})
    assert ratios == {"slim": [2.0, 1.0, 3.0]}
    with pytest.raises(KeyError, match="no 'dense' entry"):
        lenet.speedups({"slim": [1.0]})
    with pytest.raises(ValueError, match="rounds and number must be >= 1"):
        lenet.time_rounds({}, rounds=0)


def test_the_seed_table_command(capsys, monkeypatch, data):
    monkeypatch.setattr(pipeline, "load_mnist", lambda: data)
    table = pipeline.main(["--seeds", "3", "--epochs", "1"])
    out = capsys.readouterr().out
    assert list(table) == [3] and all(0.5 < a <= 1 for a in table[3])
    assert "SlimLeNet(2, 8, 60, 42)" in out and "| 3 | " in out and "int8: min" in out


def test_export_onnx_writes_one_checked_file_for_any_batch_and_leaves_the_model_alone(tmp_path, data):
    import onnx
    import onnxruntime as ort

    slim = lenet.shrink(lenet.prune_rows(lenet.pretrained()))
    before = {k: v.clone() for k, v in slim.state_dict().items()}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch's warnings about its own code are silenced, nothing else is raised
        proto = lenet.export_onnx(slim, tmp_path / "slim.onnx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["slim.onnx"]  # the weights inside, no .data file
    assert onnx.load(tmp_path / "slim.onnx") == proto
    onnx.checker.check_model(proto, full_check=True)
    assert [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim] == ["batch", 1, 28, 28]
    assert all(len(node.metadata_props) == 0 for node in proto.graph.node)  # no stack traces with this machine's paths
    assert all(torch.equal(v, before[k]) for k, v in slim.state_dict().items())
    session = ort.InferenceSession(str(tmp_path / "slim.onnx"), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        for n in (1, 3, 1000):
            x = data.test_x[:n]
            logits = torch.from_numpy(session.run(None, {"x": x.numpy()})[0])
            assert torch.allclose(logits, slim(x), rtol=1e-5, atol=1e-5)


def test_export_onnx_refuses_a_model_still_pruned_or_parametrized(tmp_path, model):
    from torch.ao.pruning import FakeSparsity
    from torch.nn.utils import parametrize

    prune.l1_unstructured(model.fc1, "weight", amount=0.5)
    with pytest.raises(ValueError, match=r"pruning hooks.*lenet.remove_pruning\(model\)"):
        lenet.export_onnx(model, tmp_path / "hooked.onnx")
    lenet.remove_pruning(model)
    parametrize.register_parametrization(model.fc2, "weight", FakeSparsity(torch.ones_like(model.fc2.weight)))
    with pytest.raises(ValueError, match="parametrizations.*remove_parametrizations"):
        lenet.export_onnx(model, tmp_path / "parametrized.onnx")
    assert list(tmp_path.iterdir()) == []
