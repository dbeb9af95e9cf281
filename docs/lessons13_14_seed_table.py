"""The seed tables of notebooks/13_beyond_lenet.ipynb and notebooks/14_coupled_channels.ipynb: seeds 0-9.

    PYTHONPATH=. .venv/bin/python docs/lessons13_14_seed_table.py [--seeds 10] [--lesson 13 | 14]

Both lessons train tiny models in a few seconds (an attention block and an LSTM over the rows of MNIST images, a
small residual CNN). A trained model's test accuracy moves by a tenth of a point or more with the CPU's float
kernels (try ATEN_CPU_CAPABILITY=default), so the lessons print the mean of seeds 0-9 with its standard error and
assert that their own run lies within 3 sd of it. This script measures that table: it runs all of a lesson's code
cells in this process, once per seed, with the lesson's SEED replaced after the cell that defines it (it seeds the
initial weights, the shuffle of training, and SEED + 1 that of fine-tuning) and its accuracy() replaced by one that
records every value instead of checking it. The prints of the cells are silenced; the GPU cell does not run (it
runs only as a file). About 8 s of CPU time per seed and lesson (the training runs on one thread; 2-core test
machine), so a few minutes in all; nothing is written to disk. Then it prints the SEED_TABLE to paste into each
lesson, with each row's min - max as a comment (lesson 14's text quotes them).
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from course.execute import code_cells, run_in_process

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = {"13": ROOT / "notebooks" / "13_beyond_lenet.ipynb", "14": ROOT / "notebooks" / "14_coupled_channels.ipynb"}
#: What the cell that defines SEED and accuracy() contains.
SEED_CELL = "SEED = "


def one_seed(notebook: Path, seed: int) -> dict[str, float]:
    """Test accuracy in % of every model the lesson reports, by label, when its cells run with SEED = ``seed``."""
    found: dict[str, float] = {}
    namespace: dict = {"__name__": f"lesson_{notebook.stem}"}
    for cell in code_cells(notebook):
        run_in_process(cell, namespace)
        if SEED_CELL in cell.source:
            lenet, data = namespace["lenet"], namespace["data"]

            def record(label, model, lenet=lenet, data=data):
                found[label] = 100 * lenet.evaluate(model, data)
                return ""

            namespace["SEED"], namespace["accuracy"] = seed, record
    return found


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=10, help="seeds 0..N-1")
    parser.add_argument("--lesson", choices=sorted(NOTEBOOKS), action="append", help="13 or 14 (default: both)")
    args = parser.parse_args(argv)
    for lesson in args.lesson or sorted(NOTEBOOKS):
        accs: dict[str, list[float]] = {}
        start = time.time()
        for seed in range(args.seeds):
            for label, acc in one_seed(NOTEBOOKS[lesson], seed).items():
                accs.setdefault(label, []).append(acc)
            print(f"lesson {lesson}, seed {seed}: " + " | ".join(f"{a[-1]:.1f}" for a in accs.values())
                  + f"  ({time.time() - start:.0f} s)", flush=True)
        print(f"\nSEED_TABLE of lesson {lesson} (mean, sd over seeds 0-{args.seeds - 1}; min - max in the comment):")
        for label, a in accs.items():
            print(f"    {label!r}: ({statistics.mean(a):.1f}, {statistics.stdev(a):.1f}),"
                  f"  # {min(a):.1f} - {max(a):.1f}")
        print()


if __name__ == "__main__":
    main()
