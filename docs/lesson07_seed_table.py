"""The seed table of notebooks/07_accuracy_and_sparsity.ipynb: its three fine-tuning recipes with seeds 1-20.

    PYTHONPATH=. .venv/bin/python docs/lesson07_seed_table.py [--seeds 20]

The lesson fine-tunes three models with one seed of the shuffle (SEED = 1): the one-shot 12x model, the
iterative schedule and the dense control. Their accuracies differ by a few tenths of a point, less than the
standard error of an accuracy near 97% on 1,000 test images (0.56 pp), so one seed cannot rank them. This
script runs the lesson's own code cells (the setup cell once, then per seed the cells that prune, fine-tune,
prune iteratively and train the control, with SEED replaced; their prints are silenced), so the table and the
lesson measure the same recipes. About 7 s per seed on one thread (2-core machine); progress goes to stderr;
nothing is written to disk. Training runs on one thread and is deterministic: the accuracies do not depend on the
machine's load, only the time does.
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from tqdm import tqdm

from course.execute import code_cells, run_in_process

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "07_accuracy_and_sparsity.ipynb"
#: What the setup cell contains (run once).
SETUP = "import lenet"
#: What the cells to run per seed contain, in notebook order: prune (defines SEED), fine-tune, its accuracy,
#: the iterative schedule, the dense control.
PER_SEED = ("SEED = ", "losses = lenet.fine_tune(", "fine_tuned_acc = ", "iterative = lenet.pretrained()",
            "control = lenet.pretrained()")
#: The recipes: (label, the lesson's variable holding its test accuracy).
RECIPES = (("one-shot 91.7% + 5 epochs", "fine_tuned_acc"), ("iterative to 91.7%, 5 epochs", "iterative_acc"),
           ("dense + 5 epochs (control)", "control_acc"))
#: Paired differences to report (first minus second), by label.
PAIRS = ((RECIPES[0][0], RECIPES[2][0]), (RECIPES[0][0], RECIPES[1][0]))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=20, help="seeds 1..N of the fine-tuning shuffle")
    args = parser.parse_args(argv)
    namespace: dict = {"__name__": "lesson07"}
    run_in_process(code_cells(NOTEBOOK, (SETUP,))[0], namespace)
    dense = 100 * namespace["dense_acc"]
    per_seed = code_cells(NOTEBOOK, PER_SEED)
    accs: dict[str, list[float]] = {label: [] for label, _ in RECIPES}
    start = time.time()
    for seed in tqdm(range(1, args.seeds + 1), desc="seeds", unit="seed"):  # progress on stderr
        for i, cell in enumerate(per_seed):
            run_in_process(cell, namespace)
            if i == 0:
                namespace["SEED"] = seed  # the first cell sets SEED = 1; the later ones read it
        for label, var in RECIPES:
            accs[label].append(100 * namespace[var])
    print(f"{args.seeds} seeds in {time.time() - start:.0f} s\n")
    print("seed  " + " | ".join(accs))
    for i in range(args.seeds):
        print(f"{i + 1:4d}  " + " | ".join(f"{a[i]:.1f}" for a in accs.values()))
    print(f"\ndense (no fine-tuning): {dense:.1f}")
    print(f"\n| recipe | mean ± sd over seeds 1–{args.seeds} | min – max | mean − dense |")
    print("|---|---|---|---|")
    for label, a in accs.items():
        print(f"| {label} | {statistics.mean(a):.2f} ± {statistics.stdev(a):.2f} | {min(a):.1f} – {max(a):.1f} "
              f"| {statistics.mean(a) - dense:+.2f} |")
    for first, second in PAIRS:
        diff = [a - b for a, b in zip(accs[first], accs[second])]
        sd = statistics.stdev(diff)
        print(f"\n{first} minus {second}: {statistics.mean(diff):+.2f} ± {sd:.2f} pp (mean ± sd of the paired "
              f"difference; standard error of the mean {sd / len(diff) ** 0.5:.2f}; first higher in "
              f"{sum(d > 0 for d in diff)}, equal in {sum(d == 0 for d in diff)} of {len(diff)} seeds)")


if __name__ == "__main__":
    main()
