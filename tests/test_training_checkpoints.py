"""Training is deterministic, the shipped weights are good, checkpoints load or fail clearly."""
import subprocess
import sys
from pathlib import Path

import nbformat
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


def test_paired_difference_counts_only_the_images_where_the_models_disagree(data, model):
    halved = lenet.pretrained()
    with torch.no_grad():
        halved.conv2.weight[::2] = 0  # every other filter of conv2 zeroed: a visibly worse model
    right_a = lenet.predict(model, data.test_x) == data.test_y
    right_b = lenet.predict(halved, data.test_x) == data.test_y
    b, c, n = int((right_a & ~right_b).sum()), int((~right_a & right_b).sum()), len(data.test_y)
    gap = lenet.paired_difference(model, halved, data)
    assert (gap.only_first, gap.only_second) == (b, c) and b > c > 0
    assert gap.difference == pytest.approx(lenet.evaluate(model, data) - lenet.evaluate(halved, data))
    assert gap.se == pytest.approx((b + c - (b - c) ** 2 / n) ** 0.5 / n)
    assert str(gap).startswith(f"+{100 * gap.difference:.1f} ± {100 * gap.se:.1f} pp (paired")
    assert tuple(lenet.paired_difference(model, model, data)) == (0.0, 0.0, 0, 0)
    with pytest.raises(ValueError, match="split must be 'test' or 'train'"):
        lenet.paired_difference(model, halved, data, split="val")


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


def test_stop_ends_training_between_batches_with_the_weights_of_an_uninterrupted_run(data):
    small = _small(data, 512)  # 8 batches of 64 per epoch
    at_step_11 = {}

    def snapshot(step, model):
        if step == 11:
            at_step_11.update({k: v.clone() for k, v in model.state_dict().items()})

    full = lenet.pretrained()
    lenet.fine_tune(full, small, epochs=2, after_step=lambda step: snapshot(step, full))
    steps = []
    stopped = lenet.pretrained()
    losses = lenet.fine_tune(stopped, small, epochs=2, after_step=steps.append, stop=lambda: len(steps) == 11)
    assert steps == list(range(1, 12))
    assert all(torch.equal(stopped.state_dict()[k], at_step_11[k]) for k in at_step_11)
    assert len(losses) == 2 and not stopped.training  # epoch 1 whole, epoch 2 the mean of its 3 batches


def test_stop_before_the_first_batch_changes_nothing(data, model):
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert lenet.fine_tune(model, _small(data, 256), epochs=1, stop=lambda: True) == []
    assert all(torch.equal(model.state_dict()[k], before[k]) for k in before)


def test_progress_goes_to_stderr_and_changes_no_weight(data, capfd):
    small, states = _small(data, 256), []
    for progress in (True, False):
        m = lenet.pretrained()
        lenet.fine_tune(m, small, epochs=2, progress=progress)
        states.append(m.state_dict())
        out, err = capfd.readouterr()
        assert out == ""
        assert ("epoch 2/2" in err and "8/8" in err) if progress else err == "", err
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


def test_no_lesson_or_solution_draws_a_progress_bar():
    """A bar's text differs on every run, so it must never reach the outputs that nbval compares."""
    root = Path(__file__).resolve().parents[1]
    for path in sorted(root.glob("notebooks/*.ipynb")) + sorted(root.glob("solutions/*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            assert "progress=True" not in cell.source, f"{path.name}: a cell trains with progress=True: {cell.source[:200]}"


def test_train_cli_writes_a_checkpoint_and_prints_accuracy(tmp_path):
    out = tmp_path / "w.pt"
    res = subprocess.run([sys.executable, "-m", "lenet.train", "--epochs", "1", "--out", str(out)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "test accuracy" in res.stdout
    assert "epoch 1/1" in res.stderr and "63/63" in res.stderr, res.stderr[-300:]  # tqdm's text bar, on stderr
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
    with pytest.raises(lenet.CheckpointError, match=r"corrupt.pth: not a torch checkpoint: torch.save writes a zip archive, "
                                                    r"and this file starts with b'this'"):
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
    with pytest.raises(lenet.CheckpointError, match=r"truncated.pth: damaged checkpoint: not a complete zip archive "
                                                    r"\(File is not a zip file\); the file was probably cut off"):
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


# --- python -m lenet.train never overwrites the shipped weights by accident (issue item 7) ---

def _package_copy(tmp_path):
    """A copy of the lenet package, so that a CLI run cannot touch the real shipped weights."""
    import shutil
    root = tmp_path / "pkg"
    shutil.copytree(PRETRAINED_PATH.parents[1], root / "lenet", ignore=shutil.ignore_patterns("__pycache__"))
    return root


def _run_train(args, cwd, pythonpath):
    import os
    env = dict(os.environ, PYTHONPATH=str(pythonpath))
    return subprocess.run([sys.executable, "-m", "lenet.train", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=180)


def test_train_cli_writes_to_the_current_folder_by_default_not_over_the_shipped_weights(tmp_path):
    pkg = _package_copy(tmp_path)
    shipped = pkg / "lenet" / "weights" / "lenet_mnist.pt"
    before = shipped.read_bytes()
    res = _run_train(["--epochs", "1", "--quiet"], cwd=tmp_path, pythonpath=pkg)
    assert res.returncode == 0, res.stderr
    assert shipped.read_bytes() == before
    assert (tmp_path / "lenet_mnist.pt").is_file() and "saved to lenet_mnist.pt" in res.stdout


def test_train_cli_replaces_the_shipped_weights_only_when_asked_and_records_their_sha256(tmp_path):
    pkg = _package_copy(tmp_path)
    shipped = pkg / "lenet" / "weights" / "lenet_mnist.pt"
    res = _run_train(["--epochs", "1", "--quiet", "--replace-shipped"], cwd=tmp_path, pythonpath=pkg)
    assert res.returncode == 0, res.stderr
    assert "recorded its SHA-256 in lenet_mnist.pt.sha256" in res.stdout
    import hashlib
    assert (pkg / "lenet" / "weights" / "lenet_mnist.pt.sha256").read_text().split()[0] == \
        hashlib.sha256(shipped.read_bytes()).hexdigest()
    assert not list(shipped.parent.glob(".*.tmp"))


@pytest.mark.parametrize("argv, message", [
    (["--epoch", "3"], "unrecognized arguments: --epoch 3"),  # no silent abbreviation of --epochs
    (["--epochs", "0"], "argument --epochs: must be at least 1, got 0"),
    (["--epochs", "-2"], "argument --epochs: must be at least 1, got -2"),
    (["--epochs", "two"], "argument --epochs: expected a whole number, got 'two'"),
    (["--seed", "-1"], "argument --seed: must be at least 0, got -1"),
    (["--out", str(PRETRAINED_PATH)], "is the shipped weights that every lesson loads; to replace them on purpose, use --replace-shipped"),
    (["--out", str(PRETRAINED_PATH), "--replace-shipped"], "not allowed with argument"),
])
def test_train_cli_refuses_bad_arguments_before_training(monkeypatch, capsys, argv, message):
    import lenet.train as cli
    monkeypatch.setattr(cli, "train", lambda *a, **k: pytest.fail("training started"))
    monkeypatch.setattr(cli, "load_mnist", lambda *a, **k: pytest.fail("data loaded"))
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_train_cli_refuses_a_folder_as_out(monkeypatch, capsys, tmp_path):
    import lenet.train as cli
    monkeypatch.setattr(cli, "train", lambda *a, **k: pytest.fail("training started"))
    with pytest.raises(SystemExit):
        cli.main(["--out", str(tmp_path)])
    assert f"--out {tmp_path} is a folder; name a file, e.g. --out {tmp_path / 'lenet_mnist.pt'}" in capsys.readouterr().err


def test_train_cli_help_shows_the_defaults(capsys):
    import lenet.train as cli
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: 15)" in text and "(default: lenet_mnist.pt)" in text and "--replace-shipped" in text


# --- checkpoint writes are atomic (item 8) ---

def test_save_state_dict_writes_a_loadable_checkpoint_and_fsyncs(tmp_path, monkeypatch):
    import os
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])
    out = lenet.checkpoints.save_state_dict(lenet.pretrained(), tmp_path / "w.pt")
    assert out == tmp_path / "w.pt" and synced
    assert torch.equal(lenet.load_pruned(out).fc1.weight, lenet.pretrained().fc1.weight)
    assert [p.name for p in tmp_path.iterdir()] == ["w.pt"]


def test_failed_pickling_leaves_the_old_file_untouched(tmp_path):
    out = tmp_path / "w.pt"
    lenet.checkpoints.save_state_dict(lenet.pretrained(), out)
    good = out.read_bytes()
    with pytest.raises(Exception):
        lenet.checkpoints.save_state_dict({"fc.weight": torch.ones(2), "bad": lambda: 0}, out)  # lambdas do not pickle
    assert out.read_bytes() == good
    assert [p.name for p in tmp_path.iterdir()] == ["w.pt"]  # no temporary file left behind


def test_a_kill_during_torch_save_leaves_the_old_file_untouched(tmp_path, monkeypatch):
    out = tmp_path / "w.pt"
    lenet.checkpoints.save_state_dict(lenet.pretrained(), out)
    good = out.read_bytes()

    def killed(obj, f):
        f.write(b"PK\x03\x04" + bytes(5000))  # half a checkpoint, then the process is interrupted
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", killed)
    with pytest.raises(KeyboardInterrupt):
        lenet.checkpoints.save_state_dict(lenet.LeNet(), out)
    assert out.read_bytes() == good and [p.name for p in tmp_path.iterdir()] == ["w.pt"]


def test_save_state_dict_refuses_a_folder(tmp_path):
    with pytest.raises(IsADirectoryError, match="is a folder; name a file inside it"):
        lenet.checkpoints.save_state_dict(lenet.LeNet(), tmp_path)


def test_train_cli_saves_through_the_atomic_helper(tmp_path, monkeypatch, capsys):
    import lenet.train as cli
    saved = []
    monkeypatch.setattr(cli, "train", lambda *a, **k: [0.0])
    monkeypatch.setattr(cli, "save_state_dict", lambda state, path: saved.append(path))
    cli.main(["--epochs", "1", "--quiet", "--out", str(tmp_path / "w.pt")])
    assert saved == [tmp_path / "w.pt"]


# --- damaged files are caught: the shipped weights by SHA-256, any checkpoint by its CRC-32s (item 9) ---

def test_the_recorded_sha256_matches_the_shipped_weights():
    import hashlib
    recorded = PRETRAINED_PATH.with_name("lenet_mnist.pt.sha256").read_text().split()
    assert recorded == [hashlib.sha256(PRETRAINED_PATH.read_bytes()).hexdigest(), "lenet_mnist.pt"]


def test_overwritten_shipped_weights_are_refused(tmp_path, monkeypatch):
    import shutil
    fake = tmp_path / "lenet_mnist.pt"
    torch.save(lenet.LeNet().state_dict(), fake)  # a valid checkpoint, but not the shipped one
    shutil.copy(PRETRAINED_PATH.with_name("lenet_mnist.pt.sha256"), tmp_path)
    monkeypatch.setattr(lenet.checkpoints, "PRETRAINED_PATH", fake)
    monkeypatch.setattr(lenet.checkpoints, "PRETRAINED_SHA256_PATH", tmp_path / "lenet_mnist.pt.sha256")
    with pytest.raises(lenet.CheckpointError, match=r"lenet_mnist.pt: the shipped weights were changed or damaged "
                       r"\(SHA-256 .*\); restore them with `git checkout -- lenet/weights/`"):
        lenet.pretrained()


def test_64_damaged_bytes_in_the_body_are_caught(tmp_path):
    data = bytearray(PRETRAINED_PATH.read_bytes())
    data[100_000:100_064] = b"\xff" * 64
    bad = tmp_path / "damaged.pt"
    bad.write_bytes(bytes(data))
    assert torch.load(bad, weights_only=True)["fc1.weight"].isnan().any()  # torch alone reads it silently
    with pytest.raises(lenet.CheckpointError, match=r"damaged.pt: damaged checkpoint: the record '.*' fails its CRC-32 check"):
        lenet.load_pruned(bad)


# --- a failed load leaves the model as it was (item 10) ---

def test_failed_load_pruned_leaves_the_model_unchanged(tmp_path):
    model = lenet.pretrained()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    other = lenet.LeNet()
    prune.l1_unstructured(other.conv2, "weight", amount=0.5)
    state = other.state_dict()
    state["fc1.weight"] = torch.zeros(7, 400)  # does not fit: load_state_dict fails after restore_pruning
    torch.save(state, tmp_path / "misfit.pt")
    with pytest.raises(lenet.CheckpointError, match="(?s)misfit.pt: does not fit LeNet: .*size mismatch for fc1.weight"):
        lenet.load_pruned(tmp_path / "misfit.pt", model)
    assert not prune.is_pruned(model) and not hasattr(model.conv2, "weight_mask")
    assert len(model.conv2._forward_pre_hooks) == 0
    assert list(model.state_dict()) == list(before)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in before.items())
    assert isinstance(model.conv2.weight, nn.Parameter)


def test_failed_load_pruned_keeps_an_already_pruned_model_as_it_was(tmp_path):
    model = lenet.pretrained()
    prune.l1_unstructured(model.fc1, "weight", amount=0.5)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    bad = {k: v for k, v in lenet.LeNet().state_dict().items() if k != "fc3.bias"}  # a key missing
    bad["conv1.weight_mask"] = torch.zeros(6, 1, 3, 3)
    bad["conv1.weight_orig"] = bad.pop("conv1.weight")
    torch.save(bad, tmp_path / "missing.pt")
    with pytest.raises(lenet.CheckpointError, match="(?s)missing.pt: does not fit LeNet: .*Missing key"):
        lenet.load_pruned(tmp_path / "missing.pt", model)
    assert list(model.state_dict()) == list(before)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in before.items())
    assert not hasattr(model.conv1, "weight_mask") and hasattr(model.fc1, "weight_mask")


# --- weights_only refusals explained without steering to weights_only=False (item 11) ---

def test_weights_only_refusal_is_explained_safely(tmp_path):
    model = lenet.pretrained()
    torch.save(model, tmp_path / "whole.pt")  # the whole module: a pickle naming lenet.model.LeNet
    with pytest.raises(lenet.CheckpointError) as info:
        lenet.load_pruned(tmp_path / "whole.pt")
    msg = str(info.value)
    assert msg.startswith(f"{tmp_path / 'whole.pt'}: torch.load(weights_only=True) refused it: besides tensors it "
                          "holds the object lenet.model.LeNet")
    assert "weights_only=False" not in msg and "set to `False`" not in msg and "\x1b" not in msg
    assert "model.state_dict()" in msg and "torch.serialization.safe_globals" in msg
    assert info.value.__cause__ is None and info.value.__suppress_context__  # torch's advice is not chained in


# --- issue 24: nothing lost ---

@pytest.mark.parametrize("record", [b"", b"\xff\xfe garbage\n", b"not-a-hash  lenet_mnist.pt\n"])
def test_a_damaged_sha256_record_gives_the_clear_error(tmp_path, monkeypatch, record):
    (tmp_path / "lenet_mnist.pt.sha256").write_bytes(record)
    monkeypatch.setattr(lenet.checkpoints, "PRETRAINED_SHA256_PATH", tmp_path / "lenet_mnist.pt.sha256")
    with pytest.raises(lenet.CheckpointError, match=r"lenet_mnist.pt.sha256: the SHA-256 record of the shipped weights "
                       r"is damaged \(it should be one line, '<64 hex digits>  lenet_mnist.pt', as sha256sum writes\); "
                       r"restore them with `git checkout -- lenet/weights/`"):
        lenet.pretrained()


def _refused_before_training(monkeypatch, capsys, argv):
    import lenet.train as cli
    monkeypatch.setattr(cli, "train", lambda *a, **k: pytest.fail("training started"))
    monkeypatch.setattr(cli, "load_mnist", lambda *a, **k: pytest.fail("data loaded"))
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    return " ".join(capsys.readouterr().err.split())


@pytest.mark.parametrize("name", ["lenet_mnist.pt.sha256", "other.pt", "notes.txt"])
def test_train_cli_protects_the_whole_shipped_weights_folder(monkeypatch, capsys, name):
    err = _refused_before_training(monkeypatch, capsys, ["--out", str(PRETRAINED_PATH.with_name(name))])
    assert (f"--out {PRETRAINED_PATH.with_name(name)} is inside {PRETRAINED_PATH.parent}, the shipped weights that "
            "every lesson loads and their SHA-256 record; write elsewhere (the default is lenet_mnist.pt in the "
            "current folder), or use --replace-shipped to replace the weights on purpose") in err


def test_train_cli_refuses_seeds_numpy_cannot_take(monkeypatch, capsys):
    err = _refused_before_training(monkeypatch, capsys, ["--seed", "4294967296"])
    assert "argument --seed: must be at most 4294967295, got 4294967296" in err


def test_train_cli_refuses_a_folder_it_cannot_write_to_before_training(monkeypatch, capsys, tmp_path):
    import errno
    import tempfile

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "mkdtemp", read_only)  # how the CLI probes the folder
    err = _refused_before_training(monkeypatch, capsys, ["--out", str(tmp_path / "sub" / "w.pt")])
    assert (f"--out {tmp_path / 'sub' / 'w.pt'}: cannot write in {tmp_path} (Read-only file system); choose a folder "
            "you can write to") in err


@pytest.mark.parametrize("content", [b'{\n "cells": []\n}\n', b"", b"PK\x03\x04 a zip that is not a checkpoint"])
def test_train_cli_refuses_to_overwrite_a_file_that_is_not_a_checkpoint(monkeypatch, capsys, tmp_path, content):
    notes = tmp_path / "notes.ipynb"
    notes.write_bytes(content)
    err = _refused_before_training(monkeypatch, capsys, ["--out", str(notes)])
    assert (f"--out {notes} exists and is not a torch checkpoint: training would replace it. Choose another name, or "
            "add --force to overwrite it") in err
    assert notes.read_bytes() == content


def test_train_cli_overwrites_a_checkpoint_or_with_force(tmp_path, monkeypatch, capsys):
    import lenet.train as cli
    saved = []
    monkeypatch.setattr(cli, "train", lambda *a, **k: [0.0])
    monkeypatch.setattr(cli, "save_state_dict", lambda state, path: saved.append(path))
    torch.save(lenet.LeNet().state_dict(), tmp_path / "old.pt")
    (tmp_path / "notes.ipynb").write_text("{}")
    cli.main(["--epochs", "1", "--quiet", "--out", str(tmp_path / "old.pt")])
    cli.main(["--epochs", "1", "--quiet", "--out", str(tmp_path / "notes.ipynb"), "--force"])
    assert saved == [tmp_path / "old.pt", tmp_path / "notes.ipynb"]


def test_a_failed_save_keeps_the_trained_model_and_says_where(tmp_path, monkeypatch, capsys):
    import errno
    import tempfile

    import lenet.train as cli

    real_save = cli.save_state_dict

    def full_disk(state, path):
        if path == tmp_path / "w.pt":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(state, path)

    monkeypatch.setattr(cli, "train", lambda *a, **k: [0.0])
    monkeypatch.setattr(cli, "save_state_dict", full_disk)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "rescue"))
    (tmp_path / "rescue").mkdir()
    with pytest.raises(SystemExit) as info:
        cli.main(["--epochs", "1", "--quiet", "--seed", "3", "--out", str(tmp_path / "w.pt")])
    rescued = tmp_path / "rescue" / "lenet_mnist-seed3.pt"
    assert str(info.value.code) == (f"could not write {tmp_path / 'w.pt'} (No space left on device). The trained model "
                                    f"was saved to {rescued} instead: move it where you want it.")
    assert set(lenet.load_pruned(rescued).state_dict()) == set(lenet.LeNet().state_dict())


def test_a_failed_write_raises_its_own_error_not_the_cleanups(tmp_path, monkeypatch):
    import errno
    import pathlib

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(lenet.checkpoints, "open", read_only, raising=False)  # the temporary file cannot be made...
    monkeypatch.setattr(pathlib.Path, "unlink", read_only)  # ...nor removed
    with pytest.raises(OSError) as info:
        lenet.checkpoints.save_state_dict(lenet.LeNet(), tmp_path / "w.pt")
    assert info.value.errno == errno.EROFS and info.value.__context__ is None  # one error, not two chained


@pytest.mark.parametrize("argv, message", [
    (["--epochs", "-1"], "argument --epochs: must be at least 0, got -1"),
    (["--seeds", "1", "-3"], "argument --seeds: must be at least 0, got -3"),
    (["--seeds", "4294967296"], "argument --seeds: must be at most 4294967295, got 4294967296"),
    (["--epoch", "3"], "unrecognized arguments: --epoch 3"),
])
def test_pipeline_refuses_bad_arguments_before_loading_data(monkeypatch, capsys, argv, message):
    from lenet import pipeline
    monkeypatch.setattr(pipeline, "load_mnist", lambda *a, **k: pytest.fail("data loaded"))
    with pytest.raises(SystemExit) as exit_info:
        pipeline.main(argv)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def _bwrap_works() -> bool:
    import shutil
    if shutil.which("bwrap") is None:
        return False
    return subprocess.run(["bwrap", "--dev-bind", "/", "/", "true"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _bwrap_works(), reason="needs bubblewrap to mount a folder read-only")
def test_train_cli_on_a_real_read_only_folder_stops_before_training(tmp_path):
    import os
    ro = tmp_path / "ro"
    ro.mkdir()
    env = dict(os.environ, PYTHONPATH=str(PRETRAINED_PATH.parents[2]))
    res = subprocess.run(["bwrap", "--dev-bind", "/", "/", "--ro-bind", str(ro), str(ro), sys.executable, "-m",
                          "lenet.train", "--out", str(ro / "w.pt")], env=env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and f"cannot write in {ro} (Read-only file system)" in res.stderr
    assert "test accuracy" not in res.stdout and "Traceback" not in res.stderr
