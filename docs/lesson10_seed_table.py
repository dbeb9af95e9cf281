"""The seed table of notebooks/09_parametrizations.ipynb: each pruning recipe fine-tuned with seeds 1-10.

    PYTHONPATH=. .venv/bin/python docs/lesson09_seed_table.py [--seeds 10]

One seed is one draw of the fine-tuning shuffle, too noisy to rank recipes that differ by a few tenths of
a point (the standard error of an accuracy near 97% on 1,000 test images is 0.5 pp), and ten seeds take
longer than a lesson may. So this script measures them: it runs the lesson's own code cells (the setup
cell and the cells that define FC, TARGET, LEVELS, one_shot and gradual), so the table and the lesson
measure the same recipes, then trains each recipe once per seed (about a minute, one thread, on the quiet 2-core
test machine) and prints the rows that the notebook quotes. Nothing is written to disk.
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from course.execute import code_cells, run_in_process

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "09_parametrizations.ipynb"
#: What the cells to run contain, in notebook order: the setup, the Linear layers, the target, the recipes.
MARKERS = ("import lenet", "FC = [", "TARGET = ", "def one_shot(", "def gradual(")


def lesson_namespace() -> dict:
    """The globals of the lesson after running the cells named by MARKERS (their prints are shown)."""
    namespace: dict = {"__name__": "lesson09"}
    for cell in code_cells(NOTEBOOK, MARKERS):
        run_in_process(cell, namespace, quiet=False)
    return namespace


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=10, help="seeds 1..N of the fine-tuning shuffle")
    args = parser.parse_args(argv)
    ns = lesson_namespace()
    lenet, data, FC, TARGET = ns["lenet"], ns["data"], ns["FC"], ns["TARGET"]
    recipes = {
        "one-shot global L1, then 5 epochs": lambda seed: ns["one_shot"](seed),
        "gradual, CubicSL, same levels": lambda seed: ns["gradual"](seed)[0],
        "gradual, CubicSL, 90% per layer": lambda seed: ns["gradual"](seed, levels={n: TARGET for n in FC})[0],
    }
    accs: dict[str, list[float]] = {label: [] for label in recipes}
    start = time.time()
    for seed in range(1, args.seeds + 1):
        for label, recipe in recipes.items():
            accs[label].append(100 * lenet.evaluate(recipe(seed), data))
        print(f"seed {seed:2d}: " + " | ".join(f"{a[-1]:.1f}" for a in accs.values()) + f"  ({time.time() - start:.0f} s)",
              flush=True)
    print(f"\n| recipe (90% of the `Linear` weights, 5 epochs) | mean ± sd over seeds 1–{args.seeds} | min – max |")
    print("|---|---|---|")
    for label, a in accs.items():
        print(f"| {label} | {statistics.mean(a):.2f} ± {statistics.stdev(a):.2f} | {min(a):.1f} – {max(a):.1f} |")
    labels = list(accs)
    for first, second in [(labels[0], labels[1]), (labels[1], labels[2])]:
        diff = [a - b for a, b in zip(accs[first], accs[second])]
        wins = sum(d > 0 for d in diff)
        print(f"\n{first} minus {second}: {statistics.mean(diff):+.2f} ± {statistics.stdev(diff):.2f} pp "
              f"(mean ± sd of the paired difference; first higher in {wins} of {len(diff)} seeds)")


if __name__ == "__main__":
    main()
