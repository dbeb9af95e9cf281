"""Mistakes a learner can make with lenet's helpers each get a clear message (and change nothing)."""
import gzip
import random
import struct

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils import prune

import lenet
from lenet.checkpoints import read_state_dict
from lenet.data import IDX_FILES


def test_predict_on_no_images(model):
    with pytest.raises(ValueError, match=r"predict got no images \(x has shape \(0, 1, 28, 28\)\)"):
        lenet.predict(model, torch.zeros(0, 1, 28, 28))


@pytest.mark.parametrize("x", [np.zeros((2, 1, 28, 28), dtype=np.float32), [[0.0] * 28] * 28])
def test_non_tensor_input(model, x):
    name = type(x).__name__
    with pytest.raises(TypeError, match=f"predict expects a torch.Tensor of images .*got a {name}; convert it with torch.as_tensor"):
        lenet.predict(model, x)
    with pytest.raises(TypeError, match=f"LeNet expects a torch.Tensor of shape \\(N, 1, 28, 28\\), got a {name}"):
        model(x)


def test_integer_images_are_refused_with_the_normalization():
    with pytest.raises(TypeError, match=r"LeNet expects float images, got dtype torch.uint8; .*0.1307\) / 0.3081"):
        lenet.LeNet()(torch.zeros(2, 1, 28, 28, dtype=torch.uint8))


@pytest.mark.parametrize("seed, error, message", [
    (None, TypeError, "seed must be an int such as 0, got NoneType None"),
    (1.5, TypeError, "seed must be an int such as 0, got float 1.5"),
    (-1, ValueError, r"seed must lie in \[0, 2\*\*32 - 1\]"),
    (2**32, ValueError, r"seed must lie in \[0, 2\*\*32 - 1\]"),
])
def test_bad_seed_is_refused_before_any_generator_is_seeded(seed, error, message):
    lenet.seed_everything(7)
    state = random.getstate(), np.random.get_state()[1].copy(), torch.get_rng_state()
    with pytest.raises(error, match=message):
        lenet.seed_everything(seed)
    assert random.getstate() == state[0]
    assert np.array_equal(np.random.get_state()[1], state[1]) and torch.equal(torch.get_rng_state(), state[2])


def test_device_number_instead_of_a_name():
    with pytest.raises(TypeError, match=r"got int 0 \(for GPU number 0 write 'cuda:0'\)"):
        lenet.get_device(0)


@pytest.mark.parametrize("name", ["cuda:abc", "cpu:", "mps:x"])
def test_malformed_device_is_not_reported_as_unavailable(name):
    with pytest.raises(ValueError, match=f"malformed device '{name}' \\(from the argument\\): after '{name.split(':')[0]}:' comes a device number"):
        lenet.get_device(name)


def test_read_state_dict_of_a_folder(tmp_path):
    with pytest.raises(lenet.CheckpointError, match="is a folder, not a checkpoint file; pass the path of the .pt/.pth file in it"):
        read_state_dict(tmp_path)


def test_restore_pruning_given_a_file_name():
    with pytest.raises(TypeError, match=r"restore_pruning expects a state_dict \(a dict of tensors\), got str; "
                                        r"to load a file, use lenet.load_pruned\('x.pt', model\)"):
        lenet.restore_pruning(lenet.LeNet(), "x.pt")


def test_load_pruned_given_the_class_instead_of_a_model(tmp_path):
    torch.save(lenet.LeNet().state_dict(), tmp_path / "w.pt")
    with pytest.raises(TypeError, match=r"got the class LeNet itself: write load_pruned\(path, LeNet\(\)\)"):
        lenet.load_pruned(tmp_path / "w.pt", lenet.LeNet)


def test_legacy_checkpoint_of_old_pytorch_loads(tmp_path, model):
    torch.manual_seed(0)
    prune.random_unstructured(model.conv1, "weight", amount=0.3)
    torch.save(model.state_dict(), tmp_path / "old.pth", _use_new_zipfile_serialization=False)
    back = lenet.load_pruned(tmp_path / "old.pth")
    assert torch.equal(back.conv1.weight_mask, model.conv1.weight_mask)
    assert torch.equal(back.fc1.weight, model.fc1.weight)


def test_training_checkpoint_with_the_state_dict_under_a_key(tmp_path):
    torch.save({"model": lenet.LeNet().state_dict(), "epoch": 3}, tmp_path / "ckpt.pt")
    with pytest.raises(lenet.CheckpointError, match=r"ckpt.pt: holds a dict with keys \['epoch', 'model'\], and its "
                       r"state_dict is under 'model' .*torch.load\(path, weights_only=True\)\['model'\]"):
        lenet.load_pruned(tmp_path / "ckpt.pt")


def test_not_a_zip_names_what_the_file_starts_with(tmp_path):
    (tmp_path / "notes.pt").write_text("hello")
    with pytest.raises(lenet.CheckpointError, match=r"notes.pt: not a torch checkpoint: torch.save writes a zip archive, "
                                                    r"and this file starts with b'hell'"):
        lenet.load_pruned(tmp_path / "notes.pt")


def _idx(path, magic, dims, payload):
    path.write_bytes(struct.pack(f">I{len(dims)}I", magic, *dims) + payload)


def _mnist_folder(folder, n_train=4, n_test=3, train_labels=None):
    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("test", n_test)):
        _idx(folder / IDX_FILES[f"{split}_images"], 2051, (n, 28, 28), rng.integers(0, 256, n * 784, dtype=np.uint8).tobytes())
        labels = train_labels if split == "train" and train_labels is not None else [1] * n
        _idx(folder / IDX_FILES[f"{split}_labels"], 2049, (n,), bytes(labels))


def test_idx_labels_outside_0_to_9(tmp_path):
    _mnist_folder(tmp_path, train_labels=[1, 2, 25, 3])
    with pytest.raises(ValueError, match=r"train-labels-idx1-ubyte: label 25 at index 2 is outside 0-9"):
        lenet.load_mnist(tmp_path)


def test_idx_file_with_zero_images(tmp_path):
    _mnist_folder(tmp_path, n_test=0)
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte holds 0 images"):
        lenet.load_mnist(tmp_path)


def test_truncated_idx_file(tmp_path):
    _mnist_folder(tmp_path)
    path = tmp_path / IDX_FILES["train_images"]
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ValueError, match=r"is not a valid MNIST IDX file: its header announces 4 x 28 x 28 = 3136 bytes of "
                                         r"data, but it holds 3036 \(truncated\?\)"):
        lenet.load_mnist(tmp_path)


def test_gzipped_idx_still_reads(tmp_path):
    _mnist_folder(tmp_path)
    for name in IDX_FILES.values():
        p = tmp_path / name
        (tmp_path / f"{name}.gz").write_bytes(gzip.compress(p.read_bytes()))
        p.unlink()
    assert lenet.load_mnist(tmp_path).train_x.shape == (4, 1, 28, 28)


def test_global_sparsity_without_prunable_layers():
    with pytest.raises(ValueError, match="Sequential has no Conv2d or Linear layer"):
        lenet.global_sparsity(nn.Sequential(nn.ReLU(), nn.Flatten()))
