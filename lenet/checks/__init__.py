"""The checks of the exercises: compare a learner's answer with a tiny hand-computed case or with torch.

A check is a :class:`~lenet.checks.core.Check` ``check_NN_<what>`` (NN: the lesson) that a notebook's check cell
calls, e.g.
``checks.check_01_conv_out(conv_out, fc1_inputs_32)`` after ``from lenet import checks``. It prints one
stable line when the answer is right (``Exercise N passed: ...``) and otherwise raises :class:`CheckFailed`,
whose message is the hint: what was expected, what was got, which API to look at. In Jupyter the learner
sees only their own cell and that message, never a traceback from inside ``lenet``.

The building blocks live in :mod:`lenet.checks.core`, torch's reference answers shared by several lessons
in :mod:`lenet.checks.reference`, and the checks of lesson NN in ``lenet.checks.lessonNN``. How to write
an exercise and its check: docs/authoring.md.
"""
from .core import (
    Check,
    CheckFailed,
    CollectedError,
    NotAttempted,
    Tampered,
    attempt,
    by_hand,
    call,
    check_equal,
    check_mask,
    describe_call,
    exercise,
    fail,
    written_call,
)
from .lesson01 import (
    check_01_accuracy,
    check_01_batch_shapes,
    check_01_confusion,
    check_01_conv_out,
    check_01_param_counts,
)
from .lesson02 import check_02_kinds, check_02_standardize, check_02_state_dict_keys, check_02_tensor_kinds
from .lesson03 import (
    check_03_errors,
    check_03_l1_mask,
    check_03_n_pruned,
    check_03_names_after_pruning,
    check_03_random_mask,
)
from .lesson04 import (
    check_04_again_mask,
    check_04_pruned_twice,
    check_04_remove,
    check_04_reparametrize,
    check_04_safe_deepcopy,
)
from .lesson05 import check_05_bytes, check_05_load_pruned_state, check_05_plain_state_dict, check_05_pruned_params
from .lesson06 import (
    check_06_activation_scores,
    check_06_global_l1,
    check_06_ln_structured_mask,
    check_06_threshold_pruning,
    check_06_zero_counts,
)
from .lesson07 import (
    check_07_global_sparsity,
    check_07_per_layer_amounts,
    check_07_planned_sparsity,
    check_07_prune_again,
    check_07_training_step,
)
from .lesson08 import check_08_break_even, check_08_csr_bytes, check_08_macs, check_08_shrink, check_08_values_and_bits
from .lesson09 import check_09_load_masked, check_09_make_plain, check_09_names, check_09_two_four
from .lesson10 import check_10_cubic_level, check_10_next_weight, check_10_plain_state, check_10_two_four_lenet
from .lesson11 import (
    check_11_int8_zeros,
    check_11_load_int8,
    check_11_per_row_int8,
    check_11_remove_all,
    check_11_ship_onnx,
)
from .lesson12 import (
    check_12_imp_schedule,
    check_12_pruned_per_round,
    check_12_rewind,
    check_12_ticket_bytes,
    check_12_weights_at_step,
)
from .lesson13 import check_13_load_ddp, check_13_prune_to_share, check_13_safe_scores, check_13_silent_pruned
from .lesson14 import check_14_coupled_layers, check_14_narrow_block, check_14_params_after

__all__ = [
    "Check", "CheckFailed", "CollectedError", "NotAttempted", "Tampered", "attempt", "by_hand", "call", "check_equal",
    "check_mask", "describe_call", "exercise", "fail", "written_call",
    "check_01_accuracy",
    "check_01_batch_shapes", "check_01_confusion", "check_01_conv_out", "check_01_param_counts", "check_02_kinds",
    "check_02_standardize", "check_02_state_dict_keys", "check_02_tensor_kinds", "check_03_errors",
    "check_03_l1_mask", "check_03_n_pruned", "check_03_names_after_pruning", "check_03_random_mask",
    "check_04_again_mask", "check_04_pruned_twice", "check_04_remove", "check_04_reparametrize",
    "check_04_safe_deepcopy", "check_05_bytes", "check_05_load_pruned_state", "check_05_plain_state_dict",
    "check_05_pruned_params", "check_06_activation_scores", "check_06_global_l1", "check_06_ln_structured_mask",
    "check_06_threshold_pruning", "check_06_zero_counts", "check_07_global_sparsity", "check_07_per_layer_amounts",
    "check_07_planned_sparsity", "check_07_prune_again", "check_07_training_step", "check_08_break_even",
    "check_08_csr_bytes", "check_08_macs", "check_08_shrink", "check_08_values_and_bits", "check_09_load_masked",
    "check_09_make_plain", "check_09_names", "check_09_two_four", "check_10_cubic_level",
    "check_10_next_weight", "check_10_plain_state", "check_10_two_four_lenet", "check_11_int8_zeros",
    "check_11_load_int8", "check_11_per_row_int8", "check_11_remove_all", "check_11_ship_onnx",
    "check_12_imp_schedule", "check_12_pruned_per_round", "check_12_rewind", "check_12_ticket_bytes",
    "check_12_weights_at_step", "check_13_load_ddp", "check_13_prune_to_share", "check_13_safe_scores",
    "check_13_silent_pruned",
    "check_14_coupled_layers", "check_14_narrow_block", "check_14_params_after",
]
