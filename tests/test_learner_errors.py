"""Mistakes a learner can make with lenet's helpers each get a clear message (and change nothing)."""
import gzip
import random
import struct
import warnings

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


# --- issue 24: a careless learner loses nothing and gets nothing silently wrong ---

def _int8(model: nn.Module) -> nn.Module:
    return lenet.quantize_int8(model)


def _pruned_90_int8() -> tuple[nn.Module, nn.Module]:
    """(the float LeNet pruned 90% globally and made permanent, its int8 copy)."""
    model = lenet.prune_model(lenet.pretrained(), 0.9, scope="global")
    lenet.remove_pruning(model)
    return model, _int8(model)


def test_int8_linear_layers_are_measured_through_their_weight():
    model, q = _pruned_90_int8()
    assert lenet.global_sparsity(model) == pytest.approx(0.9, abs=1e-4)
    # the int8 model computes with weight().dequantize(): its zeros are the float zeros and the weights that
    # rounded to 0 (symmetric qint8: 0.0 stays exactly 0)
    int8_zeros = sum(int((getattr(q, n).weight().int_repr() == 0).sum()) for n in ("fc1", "fc2", "fc3"))
    conv_zeros = sum(int((getattr(q, n).weight == 0).sum()) for n in ("conv1", "conv2"))
    assert lenet.global_sparsity(q) == pytest.approx((int8_zeros + conv_zeros) / 59_838)
    assert lenet.global_sparsity(q) >= lenet.global_sparsity(model)  # was 0.447: the Linear layers were skipped
    layers = lenet.layer_sparsity(q)
    assert list(layers) == ["conv1", "conv2", "fc1", "fc2", "fc3"]
    assert layers["fc1"] == pytest.approx(float((q.fc1.weight().int_repr() == 0).float().mean()))
    nonzero = sum(int(torch.count_nonzero(getattr(q, n).weight().int_repr()))
                  + int(torch.count_nonzero(getattr(q, n).bias())) for n in ("fc1", "fc2", "fc3"))
    nonzero += sum(int(torch.count_nonzero(p)) for n in ("conv1", "conv2") for p in getattr(q, n).parameters())
    assert lenet.count_nonzero(q) == nonzero  # was 530: the conv layers only


def test_pruning_helpers_refuse_an_int8_model_before_pruning_anything():
    q = _int8(lenet.pretrained())
    for call in (lambda: lenet.prune_model(q, 0.9), lambda: lenet.prune_model(q, 0.9, scope="global"),
                 lambda: lenet.prunable_parameters(q)):
        with pytest.raises(TypeError, match=r"fc1, fc2, fc3 are int8 \(quantize_dynamic\) layers.*prune the float "
                                            r"model first, then lenet.remove_pruning\(model\) and lenet.quantize_int8"):
            call()
    assert not prune.is_pruned(q)  # the convs were not pruned either


@pytest.mark.parametrize("fn, name", [(lenet.prune_model, "prune_model"), (lenet.remove_pruning, "remove_pruning"),
                                      (lenet.global_sparsity, "global_sparsity"), (lenet.shrink, "shrink"),
                                      (lenet.prune_rows, "prune_rows"), (lenet.quantize_int8, "quantize_int8"),
                                      (lenet.count_nonzero, "count_nonzero"), (lenet.layer_sparsity, "layer_sparsity")])
def test_the_class_instead_of_a_model(fn, name):
    args = (0.5,) if fn is lenet.prune_model else ()
    with pytest.raises(TypeError, match=f"{name} needs a model, got the class LeNet itself: write "
                                        f"{name}\\(LeNet\\(\\)"):
        fn(lenet.LeNet, *args)


def test_a_state_dict_instead_of_a_model():
    with pytest.raises(TypeError, match=r"global_sparsity needs a model \(an nn.Module\), got a dict: a state_dict\? "
                                        r"load it into a model first"):
        lenet.global_sparsity(lenet.LeNet().state_dict())


def test_shrink_and_prune_rows_refuse_an_int8_model():
    q = _int8(lenet.pretrained())
    with pytest.raises(TypeError, match=r"shrink needs the float model: fc1, fc2, fc3 are int8 \(quantize_dynamic\) "
                                        r"layers.*shrink first, then lenet.quantize_int8"):
        lenet.shrink(q)
    with pytest.raises(TypeError, match=r"prune_rows needs the float model: fc1, fc2, fc3 are int8"):
        lenet.prune_rows(q)
    assert not prune.is_pruned(q)


def test_load_pruned_refuses_an_int8_model_and_explains_an_int8_checkpoint(tmp_path):
    torch.save(lenet.LeNet().state_dict(), tmp_path / "float.pt")
    q = _int8(lenet.pretrained())
    before = {k: v for k, v in q.state_dict().items()}
    with pytest.raises(TypeError, match=r"load_pruned needs a float model: fc1, fc2, fc3 are int8 \(quantize_dynamic\) "
                                        r"layers"):
        lenet.load_pruned(tmp_path / "float.pt", q)
    assert list(q.state_dict()) == list(before)
    torch.save(q.state_dict(), tmp_path / "int8.pt")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch's "TypedStorage is deprecated" is not shown either
        with pytest.raises(lenet.CheckpointError, match=r"int8.pt: holds the state_dict of an int8 \(quantize_dynamic\) "
                           r"model \(keys such as 'fc1._packed_params._packed_params'\), which a float LeNet cannot "
                           r"load.*lenet.quantize_int8\(lenet.SlimLeNet\(\*widths\)\).*load_state_dict"):
            lenet.load_pruned(tmp_path / "int8.pt")


def test_load_pruned_resolves_the_device_before_touching_the_model(tmp_path, monkeypatch):
    other = lenet.LeNet()
    prune.l1_unstructured(other.fc1, "weight", amount=0.5)
    torch.save(other.state_dict(), tmp_path / "pruned.pt")
    monkeypatch.setitem(lenet.device._AVAILABLE, "cuda", lambda: False)  # a machine without a GPU
    model = lenet.pretrained()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(RuntimeError, match="device 'cuda' was requested but is not available"):
        lenet.load_pruned(tmp_path / "pruned.pt", model, device="cuda")
    assert not prune.is_pruned(model) and list(model.state_dict()) == list(before)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in before.items())


def _parametrized() -> nn.Module:
    from torch.nn.utils import parametrize

    class Mask(nn.Module):
        def __init__(self, mask):
            super().__init__()
            self.register_buffer("mask", mask)

        def forward(self, w):
            return w * self.mask

    model = lenet.pretrained()
    parametrize.register_parametrization(model.fc1, "weight", Mask((torch.rand(120, 400) > 0.5).float()))
    return model


def test_remove_pruning_names_a_parametrization_and_how_to_remove_it():
    model = _parametrized()
    prune.l1_unstructured(model.conv1, "weight", amount=0.5)
    with pytest.raises(ValueError, match=r"remove_pruning found a parametrization on fc1.weight \(torch.nn.utils."
                                         r"parametrize, lesson 09\).*parametrize.remove_parametrizations\(model.fc1, "
                                         r"'weight', leave_parametrized=True\).*sparsifier.squash_mask\(\)"):
        lenet.remove_pruning(model)
    assert prune.is_pruned(model)  # nothing was done half-way


def test_quantize_int8_refuses_a_parametrized_model_clearly():
    with pytest.raises(ValueError, match=r"fc1.weight is parametrized.*quantize_dynamic cannot convert it.*"
                                         r"parametrize.remove_parametrizations\(model.fc1, 'weight', leave_parametrized=True\)"):
        lenet.quantize_int8(_parametrized())


def test_speedups_refuses_rounds_of_unequal_length():
    with pytest.raises(ValueError, match=r"'slim' has 2 rounds but 'dense' has 3: speedups compares round by round.*"
                                         r"lenet.time_rounds"):
        lenet.speedups({"dense": [1.0, 2.0, 3.0], "slim": [1.0, 2.0]})


@pytest.mark.parametrize("cuts, error, message", [
    ([("conv1", 4)], TypeError, r"cuts must be a dict \{layer name: rows to cut\} such as \{'conv1': 4\}, got a list; "
                                r"dict\(cuts\) turns a list of pairs into one"),
    ({"conv3": 4}, ValueError, r"cuts names 'conv3', which LeNet does not have; its layers: conv1, conv2, fc1, fc2, fc3"),
    ({"conv1": 7}, ValueError, r"cuts\['conv1'\]: amount=7 is a count of entries to prune, but the tensor has 6"),
    ({"conv1": 4, "fc1": "60"}, TypeError, r"cuts\['fc1'\]: amount must be a float in \[0, 1\] or an int count"),
])
def test_prune_rows_checks_every_cut_before_pruning(cuts, error, message):
    model = lenet.pretrained()
    with pytest.raises(error, match=message):
        lenet.prune_rows(model, cuts=cuts)
    assert not prune.is_pruned(model)


@pytest.mark.parametrize("widths, message", [
    (((2, 8, 60, 42),), r"SlimLeNet takes the four widths as separate ints: write SlimLeNet\(\*widths\) for the tuple "
                        r"\(2, 8, 60, 42\)"),
    ((0, 8, 60, 42), r"c1 must be a whole number of at least 1, got 0"),
    ((2, 8.0, 60, 42), r"c2 must be a whole number of at least 1, got float 8.0"),
    ((2, 8, 60, True), r"f2 must be a whole number of at least 1, got bool True"),
])
def test_slim_lenet_checks_its_widths(widths, message):
    with pytest.raises((TypeError, ValueError), match=message):
        lenet.SlimLeNet(*widths)


@pytest.mark.parametrize("args, kwargs, message", [
    (([lambda: 0],), {}, r"time_rounds takes a dict \{name: function\}, such as \{'dense': lambda: model\(x\)\}, got a list"),
    (({"a": lambda: 0},), {"rounds": "3"}, r"rounds must be a whole number >= 1, got str '3'"),
    (({"a": lambda: 0},), {"number": 2.5}, r"number must be a whole number >= 1, got float 2.5"),
    (({"a": 3},), {}, r"time_rounds\['a'\] is int 3, not a function: wrap the call in a lambda"),
])
def test_time_rounds_checks_its_arguments(args, kwargs, message):
    with pytest.raises(TypeError, match=message):
        lenet.time_rounds(*args, **kwargs)


def test_load_mnist_given_a_file(tmp_path):
    _mnist_folder(tmp_path)
    path = tmp_path / IDX_FILES["train_images"]
    with pytest.raises(NotADirectoryError, match=f"{path} is a file, not a folder: pass the folder that holds the four "
                                                 f"MNIST IDX files, here load_mnist\\('{tmp_path}'\\)"):
        lenet.load_mnist(path)


def _twice_cut() -> nn.Module:
    return lenet.prune_rows(lenet.pretrained())


@pytest.mark.parametrize("call, error, message", [
    (lambda m, d: lenet.sparsity(m.conv1), TypeError, r"sparsity takes a tensor, got a Conv2d: pass its weight, "
                                                      r"sparsity\(module.weight\), or use lenet.layer_sparsity"),
    (lambda m, d: lenet.time_rounds({"dense": m}), TypeError, r"time_rounds\['dense'\] is a LeNet, not a function of "
                                                               r"no arguments: wrap the call with its input"),
    (lambda m, d: lenet.speedups([1.0, 2.0]), TypeError, r"speedups takes the dict that lenet.time_rounds returns"),
    (lambda m, d: lenet.load_pruned(m), TypeError, r"expected the path of a checkpoint file, got LeNet \(the path comes "
                                                   r"first, then the model: load_pruned\(path, model\)\)"),
    (lambda m, d: lenet.load_mnist(3), TypeError, r"root must be the path of a folder of MNIST IDX files"),
    (lambda m, d: d.loaders("64"), ValueError, r"batch_size must be a positive int, got str '64'"),
    (lambda m, d: lenet.evaluate(lenet.LeNet, d), TypeError, r"evaluate needs a model, got the class LeNet itself: "
                                                             r"write evaluate\(LeNet\(\), data\)"),
    (lambda m, d: lenet.evaluate(m, "test"), TypeError, r"evaluate needs the data as lenet.load_mnist\(\) returns it "
                                                        r"\(an MNIST\), got str 'test'"),
    (lambda m, d: lenet.prune_rows(_twice_cut()), ValueError, r"cuts\['conv1'\]: amount=4 is a count of entries to "
                                                              r"prune, but the tensor has 2.*\(conv1 was pruned before: 2 "
                                                              r"rows are still unpruned\)"),
])
def test_other_careless_calls_name_the_cause_and_the_fix(model, data, call, error, message):
    with pytest.raises(error, match=message):
        call(model, data)
