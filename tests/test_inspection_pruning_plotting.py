"""Inspection helpers, the pruning wrappers and the figures."""
import re

import pytest
import torch
from matplotlib.figure import Figure
from torch import nn
from torch.nn.utils import prune

import lenet
from lenet import plotting


def test_tensor_table_before_and_after_pruning():
    conv = nn.Conv2d(1, 6, 3)
    before = lenet.tensor_table(conv)
    assert "parameter  weight  (6, 1, 3, 3)" in before and "buffer" not in before
    assert before.endswith("forward-pre-hooks: none")
    torch.manual_seed(0)
    prune.random_unstructured(conv, "weight", amount=0.3)
    after = lenet.tensor_table(conv)
    rows = {r[1]: r for r in (re.split(r"\s{2,}", line) for line in after.splitlines()[1:-1])}
    assert rows["weight_orig"][0] == "parameter" and rows["weight_orig"][6] == "True"
    assert rows["weight_mask"][0] == "buffer" and rows["weight_mask"][5] == "False"
    assert rows["weight"][0] == "attribute" and rows["weight"][-2:] == ["False", "MulBackward0"]
    assert after.endswith("forward-pre-hooks: RandomUnstructured")


def test_sparsity_and_counts():
    assert lenet.sparsity(torch.tensor([0.0, 1.0, 0.0, 2.0])) == 0.5
    with pytest.raises(ValueError, match="empty tensor"):
        lenet.sparsity(torch.tensor([]))
    m = lenet.LeNet()
    prune.l1_unstructured(m.fc1, "weight", amount=0.5)
    assert lenet.layer_sparsity(m)["fc1"] == 0.5 and lenet.layer_sparsity(m)["conv1"] == 0.0
    assert lenet.global_sparsity(m) == pytest.approx(24_000 / 59_838)
    assert lenet.count_parameters(m) == 60_074
    assert lenet.count_nonzero(m) == 60_074 - 24_000


def test_state_dict_bytes_grows_with_masks():
    m = lenet.LeNet()
    dense = lenet.state_dict_bytes(m.state_dict())
    assert dense > 60_074 * 4
    prune.identity(m.fc1, "weight")
    assert lenet.state_dict_bytes(m.state_dict()) > dense + 48_000 * 4
    with pytest.raises(TypeError, match="pass model.state_dict\\(\\), not the model"):
        lenet.state_dict_bytes(m)


@pytest.mark.parametrize("amount,n,expected", [(0.3, 54, 16), (0.5, 5, 2), (1, 54, 1), (1.0, 54, 54), (0, 5, 0), (54, 54, 54)])
def test_entries_to_prune_follows_torch(amount, n, expected):
    assert lenet.entries_to_prune(amount, n) == expected
    t = torch.arange(1.0, n + 1)
    mask = prune.L1Unstructured(amount).compute_mask(t, torch.ones_like(t))
    assert int((mask == 0).sum()) == expected


@pytest.mark.parametrize("amount,exc,msg", [
    (1.5, ValueError, "amount=1.5 is a fraction and must lie in \\[0.0, 1.0\\]"),
    (-0.1, ValueError, "must lie in \\[0.0, 1.0\\]"),
    (100, ValueError, "amount=100 is a count of entries to prune, but the tensor has 54"),
    (-1, ValueError, "use an int in \\[0, 54\\]"),
    ("x", TypeError, "got str 'x'"),
    (True, TypeError, "got bool True"),
])
def test_entries_to_prune_rejects_bad_input(amount, exc, msg):
    with pytest.raises(exc, match=msg):
        lenet.entries_to_prune(amount, 54)


def test_prune_model_local_and_global():
    m = lenet.prune_model(lenet.LeNet(), 0.5, "l1", "local")
    assert all(abs(s - 0.5) < 0.01 for s in lenet.layer_sparsity(m).values())
    g = lenet.prune_model(lenet.pretrained(), 0.9, "l1", "global")
    assert lenet.global_sparsity(g) == pytest.approx(0.9, abs=1e-4)
    assert len(set(round(s, 2) for s in lenet.layer_sparsity(g).values())) > 1  # one threshold, uneven layers


@pytest.mark.parametrize("kwargs,exc,msg", [
    ({"amount": 0.5, "method": "l3"}, ValueError, "unknown method 'l3'"),
    ({"amount": 0.5, "scope": "everywhere"}, ValueError, "unknown scope 'everywhere'"),
    ({"amount": 2.0}, ValueError, "must lie in"),
    ({"amount": 100_000, "scope": "global"}, ValueError, "the tensor has 59838"),
])
def test_prune_model_rejects_bad_input_before_touching_the_model(kwargs, exc, msg):
    m = lenet.LeNet()
    with pytest.raises(exc, match=msg):
        lenet.prune_model(m, **kwargs)
    assert not prune.is_pruned(m)


def test_mask_heatmap_has_one_panel_per_filter():
    fig = plotting.mask_heatmap(torch.ones(6, 1, 3, 3))
    assert isinstance(fig, Figure) and sum(ax.get_images() != [] for ax in fig.axes) == 6
    fig = plotting.mask_heatmap(torch.ones(16, 6, 3, 3))
    assert sum(ax.get_images() != [] for ax in fig.axes) == 16
    assert sum(ax.get_images() != [] for ax in plotting.mask_heatmap(torch.ones(10, 84)).axes) == 1


def test_mask_heatmap_rejects_wrong_shape():
    with pytest.raises(ValueError, match="needs a 2-D \\(Linear\\) or 4-D \\(Conv2d\\) mask, got shape \\(6,\\)"):
        plotting.mask_heatmap(torch.ones(6))


def test_other_figures():
    w = torch.randn(100)
    assert isinstance(plotting.weight_histograms(w, w * (w.abs() > 1)), Figure)
    fig = plotting.accuracy_curves({"l1": ([0, 0.5], [0.97, 0.9])}, dense=0.97)
    assert len(fig.axes[0].lines) == 2
    with pytest.raises(ValueError, match="2 sparsities but 1 accuracies"):
        plotting.accuracy_curves({"bad": ([0, 0.5], [0.97])})
