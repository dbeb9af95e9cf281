"""Retrain LeNet from its seed and save its state_dict.

By default the result goes to lenet_mnist.pt in the current folder; the weights the lessons load
(lenet/weights/lenet_mnist.pt) are replaced only with --replace-shipped. The file is written
atomically: an interrupted run leaves the old file as it was.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from .checkpoints import PRETRAINED_PATH, PRETRAINED_SHA256_PATH, _replace_atomically, save_state_dict, sha256_of
from .data import load_mnist
from .device import get_device
from .model import LeNet
from .training import evaluate, seed_everything, train


def _int_at_least(lowest: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < lowest:
            raise argparse.ArgumentTypeError(f"must be at least {lowest}, got {value}")
        return value
    return parse


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse and check the command line; every error is reported before training starts."""
    parser = argparse.ArgumentParser(prog="python -m lenet.train", description=__doc__, allow_abbrev=False,
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--epochs", type=_int_at_least(1), default=15, help="passes over the 4,000 training images")
    parser.add_argument("--seed", type=_int_at_least(0), default=0, help="seed of the initial weights and of the shuffles")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--out", type=Path, default=Path("lenet_mnist.pt"),
                       help="file to write the state_dict to (replaces that file if it exists)")
    where.add_argument("--replace-shipped", action="store_true",
                       help=f"overwrite the weights every lesson loads, {PRETRAINED_PATH}, and their SHA-256 record")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.replace_shipped:
        args.out = PRETRAINED_PATH
    elif args.out.resolve() == PRETRAINED_PATH.resolve():
        parser.error(f"--out {args.out} is the shipped weights that every lesson loads; "
                     "to replace them on purpose, use --replace-shipped instead")
    elif args.out.is_dir():
        parser.error(f"--out {args.out} is a folder; name a file, e.g. --out {args.out / 'lenet_mnist.pt'}")
    elif args.out.parent.exists() and not args.out.parent.is_dir():
        parser.error(f"--out {args.out}: {args.out.parent} is a file, not a folder")
    return args


def main(argv: list[str] | None = None) -> float:
    """Train LeNet from its seed, save it, print and return its test accuracy."""
    args = parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    start = time.time()
    data = load_mnist()
    seed_everything(args.seed)
    model = LeNet().to(get_device())
    train(model, data, epochs=args.epochs, seed=args.seed, progress=not args.quiet)
    acc = evaluate(model, data)
    save_state_dict({k: v.cpu() for k, v in model.state_dict().items()}, args.out)
    note = ""
    if args.replace_shipped:
        line = f"{sha256_of(PRETRAINED_PATH)}  {PRETRAINED_PATH.name}\n".encode("ascii")
        _replace_atomically(PRETRAINED_SHA256_PATH, lambda f: f.write(line))
        note = f" and recorded its SHA-256 in {PRETRAINED_SHA256_PATH.name}"
    print(f"test accuracy {acc:.2%} on {len(data.test_y)} held-out images; "
          f"saved to {args.out}{note} in {time.time() - start:.1f}s")
    return acc


if __name__ == "__main__":
    main()
