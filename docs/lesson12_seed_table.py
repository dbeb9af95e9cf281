"""The seed table of notebooks/12_lottery_tickets.ipynb: its tickets, controls and late rewinding for seeds 1-10.

    PYTHONPATH=. .venv/bin/python docs/lesson12_seed_table.py [--seeds 10] [--rounds 10]

The lesson runs, for one seed (SEED = 1), 6 rounds of iterative magnitude pruning (IMP), a control at rounds 1 and 6
and 2 rounds of late rewinding; one seed is one draw of the initial weights and of the shuffles. This script runs
the lesson's own code cells (the setup cell once; per seed the cells that train the dense model, prune, rewind,
train the ticket, train the control, do round 2 by hand, run the rounds that follow and rewind late, their prints
silenced) with the seed replaced and with every round: ``--rounds`` rounds (default 10, to 3.13% of the weights),
a control and late rewinding at each. So the table and the lesson measure the same recipes, and the live run is
the first rounds of the same schedule. Progress goes to stderr; to stdout go the markdown table the lesson shows
(accuracies, and differences paired by seed with their standard errors) and the SEED_TABLE it asserts against.
31 trainings per seed (145 epochs): about 13 minutes for 10 seeds on one thread of a quiet 2-core machine (66 on
a busy one). Nothing is written to disk.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from tqdm import tqdm

from course.execute import code_cells, run_in_process

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "12_lottery_tickets.ipynb"
#: What the setup cell contains (run once).
SETUP = "import lenet"
#: What the cells to run per seed contain, in notebook order: the dense training (and the snapshot for late
#: rewinding), round 1's pruning, the rewind, the ticket's training, the control, round 2 by hand, the rounds that
#: follow, late rewinding.
PER_SEED = ("model = fresh(SEED)", "prune.global_unstructured(params", "def rewind(", "before = {",
            "def reinit_control(", "scores = torch.cat(", "def imp_round(", "late_model = fresh(SEED)")
#: The recipes: the lesson's dict of {round: (share kept, test accuracy)} for each.
RECIPES = ("ticket", "control", "late")


def mean_sd(values: list[float]) -> str:
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


def mean_se(values: list[float]) -> str:
    """Mean ± standard error (sd / sqrt(n)) of paired differences."""
    return f"{statistics.mean(values):+.2f} ± {statistics.stdev(values) / len(values) ** 0.5:.2f}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=10, help="seeds 1..N of the initial weights and the shuffles")
    parser.add_argument("--rounds", type=int, default=10, help="IMP rounds (each prunes 29.3%% of what is left)")
    args = parser.parse_args(argv)
    if args.seeds < 2 or args.rounds < 2:
        parser.error("--seeds and --rounds must be at least 2 (a spread needs two seeds; round 2 is in the lesson)")
    ns: dict = {"__name__": "lesson12"}
    run_in_process(code_cells(NOTEBOOK, (SETUP,))[0], ns)
    ns.update(ROUNDS=args.rounds, CONTROLS=range(1, args.rounds + 1), LATE_ROUNDS=args.rounds)
    cells = code_cells(NOTEBOOK, PER_SEED)
    dense: list[float] = []
    accs = {recipe: {r: [] for r in range(1, args.rounds + 1)} for recipe in RECIPES}
    kept: dict[int, float] = {}
    start = time.time()
    bar = tqdm(range(1, args.seeds + 1), desc="seeds", unit="seed", file=sys.stderr)
    for seed in bar:
        ns["SEED"] = seed
        for cell in cells:
            run_in_process(cell, ns)
        dense.append(100 * ns["dense_acc"])
        for recipe in RECIPES:
            for r, (share, acc) in ns[recipe].items():
                accs[recipe][r].append(100 * acc)
                kept.setdefault(r, 100 * share)
                if abs(kept[r] - 100 * share) > 1e-9:
                    raise RuntimeError(f"round {r} kept {share:.4%} with seed {seed}, {kept[r]:.4f}% before")
        bar.set_postfix_str(f"seed {seed}: dense {dense[-1]:.1f}, ticket round {args.rounds} "
                            f"{accs['ticket'][args.rounds][-1]:.1f}, control {accs['control'][args.rounds][-1]:.1f}")
    n = args.seeds
    print(f"{n} seeds, {args.rounds} rounds, {time.time() - start:.0f} s\n")
    print(f"dense, the same {ns['EPOCHS']} epochs: {mean_sd(dense)} % (min {min(dense):.1f}, max {max(dense):.1f})\n")
    print(f"Test accuracy in %, mean ± sd over seeds 1-{n}; paired differences in pp, mean ± standard error "
          f"(sd / sqrt({n})); late rewinding to step {ns['LATE_STEP']}\n")
    print("| round | weights left | ticket | control | late | ticket − dense | ticket − control | late − ticket |")
    print("|---|---|---|---|---|---|---|---|")
    below = []
    for r in range(1, args.rounds + 1):
        t, c, la = accs["ticket"][r], accs["control"][r], accs["late"][r]
        below.append(f"{r}: {sum(a < d for a, d in zip(t, dense))}")
        print(f"| {r} | {kept[r]:.2f}% | {mean_sd(t)} | {mean_sd(c)} | {mean_sd(la)} "
              f"| {mean_se([a - d for a, d in zip(t, dense)])} | {mean_se([a - b for a, b in zip(t, c)])} "
              f"| {mean_se([a - b for a, b in zip(la, t)])} |".replace("-", "−"))
    print(f"\nseeds (of {n}) where the ticket is below dense, by round: " + ", ".join(below) + "\n")
    print(f"LEFT = [{', '.join(f'{kept[r]:.2f}' for r in range(1, args.rounds + 1))}]")
    print(f"SEED_TABLE = {{  # (means, sds) in %, rounds 1-{args.rounds}, seeds 1-{n}")
    for recipe in RECIPES:
        means = ", ".join(f"{statistics.mean(a):.2f}" for a in accs[recipe].values())
        sds = ", ".join(f"{statistics.stdev(a):.2f}" for a in accs[recipe].values())
        print(f'    "{recipe}": ([{means}],\n{" " * (len(recipe) + 9)}[{sds}]),')
    print("}")
    print(f"DENSE = ({statistics.mean(dense):.2f}, {statistics.stdev(dense):.2f})")


if __name__ == "__main__":
    main()
