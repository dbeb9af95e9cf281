"""Retrain LeNet from its seed and save its state_dict.

By default the result goes to lenet_mnist.pt in the current folder; the weights the lessons load
(lenet/weights/lenet_mnist.pt) are replaced only with --replace-shipped. The file is written
atomically: an interrupted run leaves the old file as it was. Every argument, and whether --out can
be written, is checked before the data loads.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from .checkpoints import (_LEGACY_MAGIC, PRETRAINED_PATH, PRETRAINED_SHA256_PATH, _replace_atomically,
                          save_state_dict, sha256_of)
from .data import load_mnist
from .device import get_device
from .model import LeNet
from .training import evaluate, seed_everything, train

#: The largest seed NumPy (and so :func:`lenet.seed_everything`) accepts.
MAX_SEED = 2**32 - 1


def int_in(lowest: int, highest: int | None = None):
    """An argparse ``type``: a whole number in [lowest, highest], with a message that names the bound."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < lowest:
            raise argparse.ArgumentTypeError(f"must be at least {lowest}, got {value}")
        if highest is not None and value > highest:
            raise argparse.ArgumentTypeError(f"must be at most {highest}, got {value}")
        return value
    return parse


def _is_checkpoint(path: Path) -> bool:
    """Whether ``path`` holds what ``torch.save`` writes: a zip archive with a ``data.pkl``, or the legacy format."""
    with open(path, "rb") as f:
        head = f.read(len(_LEGACY_MAGIC))
    if head.startswith(_LEGACY_MAGIC):
        return True
    try:
        with zipfile.ZipFile(path) as archive:
            return any(name == "data.pkl" or name.endswith("/data.pkl") for name in archive.namelist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return False


def _write_problem(out: Path) -> str | None:
    """Why nothing can be written where ``out`` goes (the nearest existing folder above it), or None."""
    folder = out.absolute().parent
    while not folder.exists():
        folder = folder.parent
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".lenet-write-test-", dir=folder))  # what the save will need: a new entry
    except OSError as exc:
        return f"cannot write in {folder} ({exc.strerror or exc})"
    return None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse and check the command line; every error is reported before training starts."""
    parser = argparse.ArgumentParser(prog="python -m lenet.train", description=__doc__, allow_abbrev=False,
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--epochs", type=int_in(1), default=15, help="passes over the 4,000 training images")
    parser.add_argument("--seed", type=int_in(0, MAX_SEED), default=0,
                        help="seed of the initial weights and of the shuffles")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--out", type=Path, default=Path("lenet_mnist.pt"),
                       help="file to write the state_dict to (replaces that file if it is a checkpoint)")
    where.add_argument("--replace-shipped", action="store_true",
                       help=f"overwrite the weights every lesson loads, {PRETRAINED_PATH}, and their SHA-256 record")
    parser.add_argument("--force", action="store_true",
                        help="let --out replace an existing file that is not a checkpoint")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.replace_shipped:
        args.out = PRETRAINED_PATH
    elif args.out.resolve() == PRETRAINED_PATH.resolve():
        parser.error(f"--out {args.out} is the shipped weights that every lesson loads; "
                     "to replace them on purpose, use --replace-shipped instead")
    elif args.out.resolve().is_relative_to(PRETRAINED_PATH.parent.resolve()):
        parser.error(f"--out {args.out} is inside {PRETRAINED_PATH.parent}, the shipped weights that every lesson "
                     "loads and their SHA-256 record; write elsewhere (the default is lenet_mnist.pt in the current "
                     "folder), or use --replace-shipped to replace the weights on purpose")
    elif args.out.is_dir():
        parser.error(f"--out {args.out} is a folder; name a file, e.g. --out {args.out / 'lenet_mnist.pt'}")
    elif args.out.parent.exists() and not args.out.parent.is_dir():
        parser.error(f"--out {args.out}: {args.out.parent} is a file, not a folder")
    elif args.out.exists() and not args.force and not _is_checkpoint(args.out):
        parser.error(f"--out {args.out} exists and is not a torch checkpoint: training would replace it. Choose "
                     "another name, or add --force to overwrite it")
    problem = _write_problem(args.out)
    if problem is not None:
        parser.error(f"--out {args.out}: {problem}; choose a folder you can write to, e.g. "
                     f"--out {Path.home() / 'lenet_mnist.pt'}")
    return args


def _rescue(state: dict, seed: int) -> Path | None:
    """Save ``state`` in the temporary folder after the save to --out failed; its path, or None if that fails too."""
    path = Path(tempfile.gettempdir()) / f"lenet_mnist-seed{seed}.pt"
    try:
        save_state_dict(state, path)
    except OSError:
        return None
    return path


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
    state = {k: v.cpu() for k, v in model.state_dict().items()}
    try:
        save_state_dict(state, args.out)
    except OSError as exc:
        rescued = _rescue(state, args.seed)
        where = (f"was saved to {rescued} instead: move it where you want it." if rescued is not None else
                 "could not be saved anywhere (the temporary folder failed too): free some space and train again.")
        sys.exit(f"could not write {args.out} ({exc.strerror or exc}). The trained model {where}")
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
