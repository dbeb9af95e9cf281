"""Training is deterministic, the shipped weights are good, checkpoints load or fail clearly."""
import subprocess
import sys

import pytest
import torch
from torch import nn
from torch.nn.utils import prune

import lenet
from lenet.checkpoints import PRETRAINED_PATH
from lenet.data import MNIST
from lenet.training import train


def _small(data: MNIST, n: int = 512) -> MNIST:
    return MNIST(data.train_x[:n], data.train_y[:n], data.test_x, data.test_y)


def test_pretrained_reaches_96_5_percent(data, model):
    assert not model.training
    assert lenet.evaluate(model, data) >= 0.965


def test_pretrained_loads_with_weights_only(monkeypatch):
    seen = {}
    real = torch.load

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    lenet.pretrained()
    assert seen.get("weights_only") is True


def test_training_is_deterministic_and_learns(data):
    small = _small(data)
    weights = []
    before = torch.get_num_threads()
    torch.set_num_threads(2)  # train() runs on one thread and must give the caller's count back
    for _ in range(2):
        lenet.seed_everything(0)
        m = lenet.LeNet()
        losses = train(m, small, epochs=2, seed=0)
        weights.append(m.state_dict())
        assert losses[1] < losses[0]
    threads_after = torch.get_num_threads()
    torch.set_num_threads(before)
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    assert threads_after == 2


def test_evaluate_rejects_unknown_split(data, model):
    with pytest.raises(ValueError, match="split must be 'test' or 'train'"):
        lenet.evaluate(model, data, split="val")


def test_fine_tune_keeps_pruned_weights_zero(data, model):
    prune.l1_unstructured(model.fc1, "weight", amount=0.8)
    mask = model.fc1.weight_mask.clone()
    lenet.fine_tune(model, _small(data, 256), epochs=1)
    assert torch.equal(model.fc1.weight_mask, mask)
    assert torch.all(model.fc1.weight[mask == 0] == 0)
    assert not torch.equal(model.fc1.weight_orig[mask == 1], lenet.pretrained().fc1.weight[mask == 1])


def test_after_step_is_called_once_per_optimizer_step_and_leaves_training_unchanged(data):
    small = _small(data, 256)  # 4 batches of 64 per epoch
    steps, states = [], []
    for callback in (steps.append, None):
        m = lenet.pretrained()
        lenet.fine_tune(m, small, epochs=2, after_step=callback)
        states.append(m.state_dict())
    assert steps == list(range(1, 9))
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


def test_train_cli_writes_a_checkpoint_and_prints_accuracy(tmp_path):
    out = tmp_path / "w.pt"
    res = subprocess.run([sys.executable, "-m", "lenet.train", "--epochs", "1", "--out", str(out)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "test accuracy" in res.stdout and "[####" in res.stderr
    assert lenet.evaluate(lenet.load_pruned(out), lenet.load_mnist()) > 0.8


def test_pruned_checkpoint_round_trip(tmp_path, data, model):
    torch.manual_seed(0)
    prune.random_unstructured(model.conv1, "weight", amount=0.3)
    prune.l1_unstructured(model.fc1, "weight", amount=0.9)
    path = tmp_path / "pruned.pth"
    torch.save(model.state_dict(), path)
    with pytest.raises(RuntimeError, match="Unexpected key\\(s\\) in state_dict: .*conv1.weight_orig"):
        lenet.LeNet().load_state_dict(torch.load(path, weights_only=True))
    back = lenet.load_pruned(path)
    assert torch.equal(back.conv1.weight_mask, model.conv1.weight_mask)
    assert torch.equal(back.fc1.weight, model.fc1.weight)
    assert prune.is_pruned(back) and not hasattr(back.conv2, "weight_mask")
    assert lenet.evaluate(back, data) == lenet.evaluate(model, data)


def test_missing_checkpoint(tmp_path):
    with pytest.raises(lenet.CheckpointError, match="nope.pth: no such checkpoint file"):
        lenet.load_pruned(tmp_path / "nope.pth")


def test_corrupt_checkpoint_names_file_and_cause(tmp_path):
    bad = tmp_path / "corrupt.pth"
    bad.write_bytes(b"this is not a checkpoint at all" * 10)
    with pytest.raises(lenet.CheckpointError, match=r"corrupt.pth: not a torch checkpoint \(not a zip archive\)"):
        lenet.load_pruned(bad)


def test_zip_that_is_not_a_checkpoint(tmp_path):
    import zipfile
    bad = tmp_path / "other.zip"
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr("hello.txt", "hi")
    with pytest.raises(lenet.CheckpointError, match=r"other.zip: not a readable torch checkpoint \(corrupt or truncated file\?\)"):
        lenet.load_pruned(bad)


def test_truncated_checkpoint_names_file_and_cause(tmp_path):
    cut = tmp_path / "truncated.pth"
    cut.write_bytes(PRETRAINED_PATH.read_bytes()[:100_000])
    with pytest.raises(lenet.CheckpointError, match=r"truncated.pth: not a readable torch checkpoint"):
        lenet.load_pruned(cut)


def test_other_architecture_is_refused(tmp_path):
    other = tmp_path / "mlp.pth"
    torch.save(nn.Sequential(nn.Linear(784, 10)).state_dict(), other)
    with pytest.raises(lenet.CheckpointError, match="(?s)mlp.pth: does not fit LeNet: .*Missing key"):
        lenet.load_pruned(other)


def test_checkpoint_that_is_not_a_state_dict(tmp_path):
    f = tmp_path / "tensor.pth"
    torch.save(torch.zeros(3), f)
    with pytest.raises(lenet.CheckpointError, match="holds a Tensor, not a state_dict"):
        lenet.checkpoints.read_state_dict(f)


def test_restore_pruning_rejects_a_parameter_that_does_not_exist():
    sd = {"conv1.weigth_mask": torch.ones(6, 1, 3, 3)}
    with pytest.raises(KeyError, match="conv1.weigth, which this model does not have"):
        lenet.restore_pruning(lenet.LeNet(), sd)


def test_import_lenet_does_not_import_matplotlib():
    code = "import sys, lenet; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
