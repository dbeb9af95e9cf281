"""The model, the offline data and the device choice."""
import gzip
import struct

import numpy as np
import pytest
import torch

import lenet
from lenet.data import IDX_FILES


def test_lenet_has_the_articles_layers_and_60074_parameters():
    m = lenet.LeNet()
    shapes = {n: tuple(p.shape) for n, p in m.named_parameters()}
    assert shapes["conv1.weight"] == (6, 1, 3, 3)
    assert shapes["conv2.weight"] == (16, 6, 3, 3)
    assert shapes["fc1.weight"] == (120, 400)
    assert shapes["fc2.weight"] == (84, 120)
    assert shapes["fc3.weight"] == (10, 84)
    assert lenet.count_parameters(m) == 60_074


def test_layer_shapes_follow_28_26_13_11_5():
    shapes = dict(lenet.layer_shapes(lenet.LeNet(), torch.zeros(2, 1, 28, 28)))
    assert shapes == {"conv1": (2, 6, 26, 26), "conv2": (2, 16, 11, 11), "fc1": (2, 120), "fc2": (2, 84), "fc3": (2, 10)}


@pytest.mark.parametrize("shape", [(1, 28, 28), (2, 3, 28, 28), (2, 1, 32, 32)])
def test_wrong_input_shape_is_a_clear_error(shape):
    with pytest.raises(ValueError, match=r"expects a batch of shape \(N, 1, 28, 28\), got"):
        lenet.LeNet()(torch.zeros(shape))


def test_bundled_mnist_is_split_4000_1000_stratified_and_repeatable(data):
    assert data.train_x.shape == (4000, 1, 28, 28) and data.test_x.shape == (1000, 1, 28, 28)
    assert data.train_x.dtype == torch.float32 and data.train_y.dtype == torch.int64
    assert torch.bincount(data.test_y).tolist() == [100] * 10
    assert torch.bincount(data.train_y).tolist() == [400] * 10
    again = lenet.load_mnist()
    assert torch.equal(again.test_x, data.test_x) and torch.equal(again.train_y, data.train_y)
    # no test image is also a train image
    train_rows = {tuple(r) for r in data.train_x.flatten(1).tolist()}
    assert not any(tuple(r) in train_rows for r in data.test_x.flatten(1).tolist())
    # normalized: pixel 0 maps to -mean/std
    assert data.train_x.min().item() == pytest.approx(-0.1307 / 0.3081, abs=1e-5)


def test_loaders_shuffle_by_seed(data):
    a, _ = data.loaders(64, seed=3)
    b, _ = data.loaders(64, seed=3)
    c, _ = data.loaders(64, seed=4)
    ya, yb, yc = next(iter(a))[1], next(iter(b))[1], next(iter(c))[1]
    assert torch.equal(ya, yb) and not torch.equal(ya, yc)
    with pytest.raises(ValueError, match="batch_size"):
        data.loaders(0)


def _write_idx(folder, n_train=20, n_test=10, compress=False):
    rng = np.random.default_rng(0)
    for key, name in IDX_FILES.items():
        n = n_train if key.startswith("train") else n_test
        if key.endswith("images"):
            payload = struct.pack(">IIII", 2051, n, 28, 28) + rng.integers(0, 256, (n, 28, 28), dtype=np.uint8).tobytes()
        else:
            payload = struct.pack(">II", 2049, n) + rng.integers(0, 10, n, dtype=np.uint8).tobytes()
        if compress:
            (folder / f"{name}.gz").write_bytes(gzip.compress(payload))
        else:
            (folder / name).write_bytes(payload)


@pytest.mark.parametrize("compress", [False, True])
def test_idx_folder_is_read(tmp_path, compress):
    _write_idx(tmp_path, compress=compress)
    d = lenet.load_mnist(tmp_path)
    assert d.train_x.shape == (20, 1, 28, 28) and d.test_y.shape == (10,)
    assert d.train_y.dtype == torch.int64


def test_missing_folder_names_the_expected_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist; expected .*train-images-idx3-ubyte.*t10k-labels-idx1-ubyte"):
        lenet.load_mnist(tmp_path / "nope")


def test_folder_missing_one_file_names_it(tmp_path):
    _write_idx(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError, match="has no t10k-labels-idx1-ubyte"):
        lenet.load_mnist(tmp_path)


def test_corrupt_idx_file_is_named(tmp_path):
    _write_idx(tmp_path)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x01garbage")
    with pytest.raises(ValueError, match="train-images-idx3-ubyte is not a valid MNIST IDX file: magic number"):
        lenet.load_mnist(tmp_path)


def test_device_defaults_to_cpu(monkeypatch):
    monkeypatch.delenv("LENET_DEVICE", raising=False)
    assert lenet.get_device() == torch.device("cpu")
    monkeypatch.setenv("LENET_DEVICE", "cpu")
    assert lenet.get_device() == torch.device("cpu")


def test_unknown_device_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("LENET_DEVICE", "tpu")
    with pytest.raises(ValueError, match="unknown device 'tpu' \\(from LENET_DEVICE\\); use one of"):
        lenet.get_device()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_missing_device_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("LENET_DEVICE", "cuda")
    with pytest.raises(RuntimeError, match="'cuda' was requested but is not available.*unset LENET_DEVICE"):
        lenet.get_device()


def test_device_accepts_a_torch_device():
    assert lenet.get_device(torch.device("cpu")) == torch.device("cpu")
    assert next(lenet.pretrained(lenet.get_device()).parameters()).device.type == "cpu"
