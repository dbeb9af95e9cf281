"""The seed tables of notebooks/10_sparsifiers.ipynb: its fine-tuning recipes with seeds 1-10.

    PYTHONPATH=. .venv/bin/python docs/lesson10_seed_table.py [--seeds 10] [--part all|2:4|gradual]

One seed is one draw of the fine-tuning shuffle, too noisy to rank recipes that differ by a few tenths of a point
(the standard error of an accuracy near 97% on 1,000 test images is 0.5 pp), and ten seeds take longer than a
lesson may. So this script measures them: it runs the lesson's own code cells (the setup cell and the cells that
define n_m_lenet, l1_half_lenet, tuned, TARGET, LEVELS, one_shot and gradual; their prints are silenced), so the
table and the lesson measure the same recipes, then trains each recipe once per seed and prints the rows the
notebook quotes. Two parts: "2:4" (2:4 on fc1-fc3, unstructured L1 at the same 50%, the dense control, each
fine-tuned 5 epochs) and "gradual" (one-shot global L1 against CubicSL). About 2.5 s per recipe and seed on one
thread of the quiet 2-core test machine; progress goes to stderr; nothing is written to disk. Training runs on
one thread and is deterministic, so the accuracies do not depend on the machine's load (only the time does).
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from tqdm import tqdm

from course.execute import code_cells, run_in_process

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "10_sparsifiers.ipynb"
#: What the cells to run contain, in notebook order: the setup, the 2:4 and L1 recipes, the target, the recipes.
MARKERS = ("import lenet", "def n_m_lenet(", "def l1_half_lenet(", "def tuned(", "TARGET = ", "def one_shot(",
           "def gradual(")


def lesson_namespace() -> dict:
    """The globals of the lesson after running the cells named by MARKERS (their prints silenced)."""
    namespace: dict = {"__name__": "lesson10"}
    for cell in code_cells(NOTEBOOK, MARKERS):
        run_in_process(cell, namespace)
    return namespace


def recipes(ns: dict, part: str) -> tuple[dict, list[tuple[str, str]]]:
    """The recipes of ``part`` ({label: seed -> model}) and the pairs (first, second) whose difference to report."""
    lenet, FC, TARGET = ns["lenet"], ns["FC"], ns["TARGET"]
    two_four = {
        "2:4 on fc1-fc3, 5 epochs": lambda seed: ns["tuned"](ns["n_m_lenet"](1.0), seed),
        "unstructured L1 50% of fc1-fc3, 5 epochs": lambda seed: ns["tuned"](ns["l1_half_lenet"](), seed),
        "dense, 5 epochs (control)": lambda seed: ns["tuned"](lenet.pretrained().to(ns["device"]), seed),
    }
    gradual = {
        "one-shot global L1, then 5 epochs": lambda seed: ns["one_shot"](seed),
        "gradual, CubicSL, same levels": lambda seed: ns["gradual"](seed)[0],
        "gradual, CubicSL, 90% per layer": lambda seed: ns["gradual"](seed, levels={n: TARGET for n in FC})[0],
    }
    chosen, pairs = {}, []
    if part in ("all", "2:4"):
        chosen.update(two_four)
        labels = list(two_four)
        pairs += [(labels[0], labels[2]), (labels[0], labels[1])]
    if part in ("all", "gradual"):
        chosen.update(gradual)
        labels = list(gradual)
        pairs += [(labels[0], labels[1]), (labels[1], labels[2])]
    return chosen, pairs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=10, help="seeds 1..N of the fine-tuning shuffle")
    parser.add_argument("--part", choices=("all", "2:4", "gradual"), default="all", help="which table to measure")
    args = parser.parse_args(argv)
    ns = lesson_namespace()
    lenet, data = ns["lenet"], ns["data"]
    chosen, pairs = recipes(ns, args.part)
    accs: dict[str, list[float]] = {label: [] for label in chosen}
    start = time.time()
    with tqdm(total=args.seeds * len(chosen), desc="recipes x seeds", unit="run") as bar:  # progress on stderr
        for seed in range(1, args.seeds + 1):
            for label, recipe in chosen.items():
                accs[label].append(100 * lenet.evaluate(recipe(seed), data))
                bar.update()
    print(f"{args.seeds} seeds x {len(chosen)} recipes in {time.time() - start:.0f} s\n")
    print("seed  " + " | ".join(accs))
    for i in range(args.seeds):
        print(f"{i + 1:4d}  " + " | ".join(f"{a[i]:.1f}" for a in accs.values()))
    print(f"\n| recipe | mean ± sd over seeds 1–{args.seeds} | min – max |")
    print("|---|---|---|")
    for label, a in accs.items():
        print(f"| {label} | {statistics.mean(a):.2f} ± {statistics.stdev(a):.2f} | {min(a):.1f} – {max(a):.1f} |")
    for first, second in pairs:
        diff = [a - b for a, b in zip(accs[first], accs[second])]
        mean, sd = statistics.mean(diff), statistics.stdev(diff)
        print(f"\n{first} minus {second}: {mean:+.2f} pp, mean of the {len(diff)} paired differences; their sd "
              f"{sd:.2f}, so the standard error of the mean {sd / len(diff) ** 0.5:.2f}; first higher in "
              f"{sum(d > 0 for d in diff)}, equal in {sum(d == 0 for d in diff)}")


if __name__ == "__main__":
    main()
