"""lenet: the helper package of the course on pruning LeNet with torch.nn.utils.prune.

Nothing runs at import. Plotting lives in :mod:`lenet.plotting` (imports matplotlib), exercise
checks in :mod:`lenet.checks`, the grading command in :mod:`lenet.grade`.
"""
from .checkpoints import CheckpointError, load_pruned, pretrained, refresh_pruned, restore_pruning
from .data import MNIST, load_mnist
from .device import get_device
from .inspection import (
    count_nonzero,
    count_parameters,
    global_sparsity,
    layer_sparsity,
    prunable_parameters,
    sparsity,
    state_dict_bytes,
    tensor_table,
)
from .model import LeNet, SlimLeNet, layer_shapes
from .pruning import entries_to_prune, prune_model, remove_pruning
from .shipping import export_onnx, prune_rows, quantize_int8, shrink, speedups, time_rounds
from .training import evaluate, fine_tune, paired_difference, predict, seed_everything, single_thread

__all__ = [
    "CheckpointError", "LeNet", "MNIST", "SlimLeNet", "count_nonzero", "count_parameters", "entries_to_prune",
    "evaluate", "fine_tune", "get_device", "global_sparsity", "layer_shapes", "layer_sparsity", "load_mnist",
    "load_pruned", "paired_difference", "predict", "prunable_parameters", "prune_model", "prune_rows", "pretrained", "quantize_int8",
    "refresh_pruned", "remove_pruning", "restore_pruning", "seed_everything", "shrink", "single_thread", "sparsity",
    "speedups", "state_dict_bytes", "tensor_table", "time_rounds",
    "export_onnx",
]
