"""The seed table of notebooks/12_lottery_tickets.ipynb: its tickets, controls and late rewinding for seeds 1-10.

    PYTHONPATH=. .venv/bin/python docs/lesson12_seed_table.py [--seeds 10] [--rounds 10]

The lesson runs 6 rounds of iterative magnitude pruning (IMP) for one seed (SEED = 1), a control at rounds 1 and 6
and 2 rounds of late rewinding; one seed is one draw of the initial weights and of the shuffles. This script runs
the lesson's own code cells (the setup cell once; per seed the cells that train the dense model, prune, rewind,
train the ticket, train the control, do round 2 by hand, run the rounds that follow and rewind late, their prints
silenced) with the seed replaced and with every round: ``--rounds`` rounds (default 10, to 3.1% of the weights),
a control at each round and late rewinding at each round. So the table and the lesson measure the same recipes,
and the live run is the first rounds of the same schedule. Progress goes to stderr; the tables it prints (markdown)
and the dict the lesson's SEED_TABLE holds go to stdout. About 80 s per seed on one thread of a quiet 2-core
machine (31 trainings); nothing is written to disk.
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
    print(f"| round | weights left | ticket | control: same mask, fresh init | late rewinding (step {ns['LATE_STEP']}) |")
    print("|---|---|---|---|---|")
    for r in range(1, args.rounds + 1):
        print(f"| {r} | {kept[r]:.1f}% | " + " | ".join(mean_sd(accs[recipe][r]) for recipe in RECIPES) + " |")
    print(f"\ndense, the same {ns['EPOCHS']} epochs: {mean_sd(dense)} (min {min(dense):.1f}, max {max(dense):.1f})\n")
    print("| round | weights left | ticket − control | ticket − dense (ticket below in) | late − ticket |")
    print("|---|---|---|---|---|")
    for r in range(1, args.rounds + 1):
        t, c, la = accs["ticket"][r], accs["control"][r], accs["late"][r]
        below = sum(a < d for a, d in zip(t, dense))
        print(f"| {r} | {kept[r]:.1f}% | {mean_se([a - b for a, b in zip(t, c)])} "
              f"| {mean_se([a - d for a, d in zip(t, dense)])} ({below} of {n}) "
              f"| {mean_se([a - b for a, b in zip(la, t)])} |")
    print("\nmean ± standard error of the paired difference (sd / sqrt(seeds)), in percentage points\n")
    print(f"SEED_TABLE = {{  # round -> (weights left %, mean %, sd %), seeds 1-{n}")
    for recipe in RECIPES:
        rows = ", ".join(f"{r}: ({kept[r]:.2f}, {statistics.mean(a):.2f}, {statistics.stdev(a):.2f})"
                         for r, a in accs[recipe].items())
        print(f'    "{recipe}": {{{rows}}},')
    print("}")
    print(f"DENSE = ({statistics.mean(dense):.2f}, {statistics.stdev(dense):.2f})")


if __name__ == "__main__":
    main()
