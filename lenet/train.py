"""Retrain the shipped checkpoint: ``python -m lenet.train [--epochs 15] [--out PATH]``."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from .checkpoints import PRETRAINED_PATH
from .data import load_mnist
from .device import get_device
from .model import LeNet
from .training import evaluate, seed_everything, train


def main(argv: list[str] | None = None) -> float:
    """Train LeNet from its seed, save it, print and return its test accuracy."""
    parser = argparse.ArgumentParser(prog="python -m lenet.train", description=__doc__)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=PRETRAINED_PATH, help="where to write the state_dict")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    start = time.time()
    data = load_mnist()
    seed_everything(args.seed)
    model = LeNet().to(get_device())
    train(model, data, epochs=args.epochs, seed=args.seed, progress=not args.quiet)
    acc = evaluate(model, data)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.cpu() for k, v in model.state_dict().items()}, args.out)
    print(f"test accuracy {acc:.2%} on {len(data.test_y)} held-out images; "
          f"saved to {args.out} in {time.time() - start:.1f}s")
    return acc


if __name__ == "__main__":
    main()
