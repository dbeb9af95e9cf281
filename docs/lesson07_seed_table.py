"""The seed table of notebooks/07_accuracy_and_sparsity.ipynb: its three fine-tuning recipes with seeds 1-20.

    PYTHONPATH=. .venv/bin/python docs/lesson07_seed_table.py [--seeds 20]

The lesson fine-tunes three models with one seed of the shuffle (SEED = 1): the one-shot 12x model, the
iterative schedule and the dense control. Their accuracies differ by a few tenths of a point, and another CPU,
whose float kernels round differently, lands elsewhere in the same spread, so the lesson prints a fine-tuned
accuracy as this table's mean and sd and asserts that its own run lies within 3 sd (its over_seeds()). This script
runs the lesson's own code cells (the setup cell once, then per seed the cells that set SEED, prune, fine-tune,
prune iteratively and train the control, with SEED replaced and over_seeds() replaced by one that checks
nothing; their prints are silenced), so the table and the lesson measure the same recipes.

Besides the accuracies it prints, for each pair of models the lesson compares (one-shot minus control, minus the
iterative model, minus the dense baseline), what the lesson quotes: the per-seed difference (mean ± sd), the
standard error of its mean from the seeds (sd / sqrt(seeds)) and from the test images (the paired standard error
of notebook 01 on the answers averaged over the seeds: every seed shares the same 1,000 images), each seed's own
paired standard error, and on how many seeds the gap passed 2 of them in each direction. And the spread of the
one-shot model's training loss per epoch, which the lesson prints rounded.

About 7 s of CPU time per seed on one thread (2-core machine, longer under load); progress goes to stderr;
nothing is written to disk. Training runs on one thread and is deterministic: the numbers do not depend on the
machine's load, only the time does.
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from tqdm import tqdm

from course.execute import code_cells, run_in_process

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "07_accuracy_and_sparsity.ipynb"
#: What the setup cell contains (run once).
SETUP = "import lenet"
#: What the cells to run per seed contain, in notebook order: prune, SEED and over_seeds(), fine-tune, its
#: accuracy, the iterative schedule, the dense control.
PER_SEED = ("one_shot_model = prune_to(", "SEED = ", "losses = lenet.fine_tune(", "fine_tuned_acc = ",
            "iterative, cuts = ", "control = lenet.pretrained()")
#: What the cell that defines SEED and over_seeds() contains: both are replaced after it runs.
SEED_CELL = "SEED = "
#: The rows of the lesson's SEED_TABLE: (label, an expression over the lesson's variables giving the accuracy).
RECIPES = (("one-shot 91.7% + 5 epochs", "fine_tuned_acc"), ("iterative, cut to 75%", "cuts[1]"),
           ("iterative, cut to 91.7%", "cuts[2]"), ("iterative to 91.7%, 5 epochs", "iterative_acc"),
           ("dense + 5 epochs (control)", "control_acc"))
#: The models the lesson compares on the same test images: label, the lesson's variable.
MODELS = (("one-shot 91.7% + 5 epochs", "one_shot_model"), ("dense + 5 epochs (control)", "control"),
          ("iterative to 91.7%, 5 epochs", "iterative"), ("dense (the baseline)", "dense"))
#: Paired differences to report (first minus second), by label.
PAIRS = ((MODELS[0][0], MODELS[1][0]), (MODELS[0][0], MODELS[2][0]), (MODELS[0][0], MODELS[3][0]))


def paired_se(diff: torch.Tensor) -> float:
    """The paired standard error (notebook 01) of the mean of per-image differences ``diff``: sqrt(var / n)."""
    return float((diff.pow(2).mean() - diff.mean() ** 2).clamp(min=0).sqrt() / len(diff) ** 0.5)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=20, help="seeds 1..N of the fine-tuning shuffle")
    args = parser.parse_args(argv)
    namespace: dict = {"__name__": "lesson07"}
    run_in_process(code_cells(NOTEBOOK, (SETUP,))[0], namespace)
    lenet, data = namespace["lenet"], namespace["data"]
    dense = 100 * namespace["dense_acc"]
    per_seed = code_cells(NOTEBOOK, PER_SEED)
    accs: dict[str, list[float]] = {label: [] for label, _ in RECIPES}
    right: dict[str, list[torch.Tensor]] = {label: [] for label, _ in MODELS}  # per seed: 1.0 where right
    losses: list[list[float]] = []
    start = time.time()
    for seed in tqdm(range(1, args.seeds + 1), desc="seeds", unit="seed"):  # progress on stderr
        for cell in per_seed:
            run_in_process(cell, namespace)
            if SEED_CELL in cell.source:  # it sets SEED = 1 and defines over_seeds(); the later cells use them
                namespace["SEED"], namespace["over_seeds"] = seed, lambda label, acc: ""
        for label, expression in RECIPES:
            accs[label].append(100 * eval(expression, namespace))  # noqa: S307 - the lesson's own variables
        for label, var in MODELS:
            right[label].append((lenet.predict(namespace[var], data.test_x) == data.test_y).float())
        losses.append(namespace["losses"])
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
        per_image = [a - b for a, b in zip(right[first], right[second])]  # per seed: +1, 0 or -1 per image
        diff = [100 * float(d.mean()) for d in per_image]
        ses = [100 * paired_se(d) for d in per_image]
        sd = statistics.stdev(diff)
        print(f"\n{first} minus {second}: {statistics.mean(diff):+.2f} ± {sd:.2f} pp (mean ± sd of the paired "
              f"difference; standard error of the mean {sd / len(diff) ** 0.5:.2f} from the seeds, "
              f"{100 * paired_se(torch.stack(per_image).mean(0)):.2f} from the test images; first higher in "
              f"{sum(d > 0 for d in diff)}, equal in {sum(d == 0 for d in diff)} of {len(diff)} seeds)")
        print(f"  one seed's paired standard error: {min(ses):.2f} – {max(ses):.2f} pp; the gap passed 2 of them "
              f"on {sum(d <= -2 * s for d, s in zip(diff, ses) if s > 0)} seeds below, "
              f"{sum(d >= 2 * s for d, s in zip(diff, ses) if s > 0)} above")
    print(f"\ntraining loss per epoch of the one-shot model, min – max over {args.seeds} seeds: "
          + ", ".join(f"{min(e):.3f} – {max(e):.3f}" for e in zip(*losses)))


if __name__ == "__main__":
    main()
