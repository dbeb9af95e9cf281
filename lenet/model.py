"""The LeNet of the course: the exact architecture of the source article.

Introduced in notebooks/01_load_lenet.ipynb.
"""
from __future__ import annotations

from collections.abc import Mapping
from numbers import Integral

import torch
import torch.nn.functional as F
from torch import nn

#: Shape of one input image: 1 channel, 28 x 28 pixels (MNIST).
INPUT_SHAPE = (1, 28, 28)


class LeNet(nn.Module):
    """A small LeNet for 28x28 MNIST digits, 60,074 parameters.

    Shapes for one image (batch dimension left out)::

        input          1 x 28 x 28
        conv1 (3x3)    6 x 26 x 26   -> ReLU -> max-pool 2x2 ->  6 x 13 x 13
        conv2 (3x3)   16 x 11 x 11   -> ReLU -> max-pool 2x2 -> 16 x  5 x  5
        flatten        400
        fc1            120 -> ReLU
        fc2             84 -> ReLU
        fc3             10   (logits, one per digit)

    Introduced in notebooks/01_load_lenet.ipynb.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 3)  # 1 input channel (grey), 6 filters of 3x3
        self.conv2 = nn.Conv2d(6, 16, 3)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)  # 5x5 is the image size after two conv+pool
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"LeNet expects a torch.Tensor of shape (N, 1, 28, 28), got a {type(x).__name__}; "
                            "convert it with torch.as_tensor(x, dtype=torch.float32)")
        if not x.is_floating_point():
            raise TypeError(f"LeNet expects float images, got dtype {x.dtype}; scale and normalize them as "
                            "lenet.load_mnist does: ((x.float() / 255) - 0.1307) / 0.3081")
        if x.dim() != 4 or tuple(x.shape[1:]) != INPUT_SHAPE:
            raise ValueError(
                f"LeNet expects a batch of shape (N, 1, 28, 28), got {tuple(x.shape)}; "
                "add a batch dimension with x.unsqueeze(0) for a single image"
            )
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


class SlimLeNet(LeNet):
    """LeNet with ``c1``/``c2`` conv filters and ``f1``/``f2`` hidden neurons; the same ``forward``.

    ``SlimLeNet()`` has LeNet's own widths (6, 16, 120, 84). :func:`lenet.shrink` builds one from the
    channels and neurons a structured-pruned LeNet kept. Notebook 08 writes this class by hand; it is
    saved here in notebooks/11_shipping_a_pruned_model.ipynb.
    """

    def __init__(self, c1: int = 6, c2: int = 16, f1: int = 120, f2: int = 84) -> None:
        """Raises TypeError / ValueError: a width is not a whole number of at least 1 (or the four came as one tuple)."""
        if isinstance(c1, (tuple, list, torch.Size)):
            raise TypeError(f"SlimLeNet takes the four widths as separate ints: write SlimLeNet(*widths) for the "
                            f"tuple {tuple(c1)}")
        for name, width in (("c1", c1), ("c2", c2), ("f1", f1), ("f2", f2)):
            if isinstance(width, bool) or not isinstance(width, Integral):
                raise TypeError(f"{name} must be a whole number of at least 1, got {type(width).__name__} {width!r} "
                                "(a width counts filters or neurons)")
            if width < 1:
                raise ValueError(f"{name} must be a whole number of at least 1, got {width}: a layer needs at least "
                                 "one filter or neuron")
        super().__init__()
        self.conv1 = nn.Conv2d(1, c1, 3)
        self.conv2 = nn.Conv2d(c1, c2, 3)
        self.fc1 = nn.Linear(c2 * 5 * 5, f1)  # each conv2 channel is a 5x5 map after the second pooling
        self.fc2 = nn.Linear(f1, f2)
        self.fc3 = nn.Linear(f2, 10)

    @property
    def widths(self) -> tuple[int, int, int, int]:
        """``(c1, c2, f1, f2)``: what ``SlimLeNet(*widths)`` needs to load this model's state_dict."""
        return (self.conv1.out_channels, self.conv2.out_channels, self.fc1.out_features, self.fc2.out_features)


def _require_model(model: object, where: str, rest: str = "") -> None:
    """Raise a TypeError naming the fix unless ``model`` is an ``nn.Module`` instance.

    The usual slips: the class itself (``LeNet`` for ``LeNet()``) and a ``state_dict`` for the model.
    ``rest`` is how the call goes on after the model in the message, e.g. ``", amount"``.
    """
    if isinstance(model, type):
        raise TypeError(f"{where} needs a model, got the class {model.__name__} itself: write "
                        f"{where}({model.__name__}(){rest}), or pass a model you built, such as lenet.pretrained()")
    if isinstance(model, Mapping):
        raise TypeError(f"{where} needs a model (an nn.Module), got a dict: a state_dict? load it "
                        "into a model first: lenet.load_pruned(path), or model.load_state_dict(state_dict)")
    if not isinstance(model, nn.Module):
        raise TypeError(f"{where} needs a model (an nn.Module) such as lenet.pretrained(), got "
                        f"{type(model).__name__} {model!r:.60}")


def layer_shapes(model: nn.Module, x: torch.Tensor) -> list[tuple[str, tuple[int, ...]]]:
    """Run ``x`` through ``model`` and return ``(layer name, output shape)`` for every leaf layer.

    Uses forward hooks, so it works for any model, pruned or not.
    Introduced in notebooks/01_load_lenet.ipynb.
    """
    _require_model(model, "layer_shapes")
    shapes: list[tuple[str, tuple[int, ...]]] = []
    handles = [
        m.register_forward_hook(lambda mod, inp, out, name=name: shapes.append((name, tuple(out.shape))))
        for name, m in model.named_modules()
        if not list(m.children())
    ]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return shapes
