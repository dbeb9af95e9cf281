"""The timing spread behind the asserts of notebooks/08_does_pruning_compress.ipynb.

    PYTHONPATH=. .venv/bin/python docs/lesson08_timing_table.py [--repeats 12] [--busy] [--wall]

A timing printed once is one draw of a noisy machine. This script runs the lesson's own code cells once (so it
measures exactly what the lesson measures), then re-runs each of its four timing cells ``--repeats`` times and
prints, for every quantity an assert checks, its min, median and max and how many repetitions broke the
assert. With ``--busy`` it starts one process that keeps a core busy for the whole run (and ends it); with
``--wall`` the repetitions use the wall clock (``time.perf_counter``, the lesson's clock on Windows) instead of
the thread's CPU time. It also times the stages at batch 1, which the lesson quotes. About 3 s per repetition on the 2-core test machine;
progress goes to stderr; nothing is written to disk. Timings depend on the machine and its load: re-run it on a quiet one.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import matplotlib
from tqdm import tqdm

from course.execute import code_cells, run_in_process

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "08_does_pruning_compress.ipynb"
#: The timing cells, found by what they contain, and the quantity each one's assert checks.
TIMED = {
    "stage_s = ": ("(conv1 + relu+pool 1) / fc1, time", "> 2",
                   lambda ns: (ns["stage_s"]["conv1"] + ns["stage_s"]["relu+pool 1"]) / ns["stage_s"]["fc1"]),
    '"masked 90% (hook)"': ("masked 90% / dense, speed", "< 1.25", lambda ns: ns["speedup"]["masked 90% (hook)"]),
    '"fc1 layer only, CSR 90%"': ("fc1 CSR 90% / fc1 dense, speed", "< 4",
                                  lambda ns: ns["speedup"]["fc1 layer only, CSR 90%"]),
    '"slim (structured, rebuilt)": lambda': ("slim / dense, speed", ">= 1.5",
                                             lambda ns: ns["speedup"]["slim (structured, rebuilt)"]),
}
#: A second quantity of the masked-and-removed cell.
REMOVED = ("prune.remove 90% / dense, speed", "< 1.25", lambda ns: ns["speedup"]["prune.remove 90%"])


def run(cell, ns: dict) -> str | None:
    """Run one lesson cell in ``ns``, its output swallowed; the message of a failed assert, else None."""
    import matplotlib.pyplot as plt

    try:
        run_in_process(cell, ns)
    except AssertionError as e:
        return str(e) or "assert failed"
    finally:
        plt.close("all")
    return None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=12)
    parser.add_argument("--busy", action="store_true", help="keep one core busy with another process meanwhile")
    parser.add_argument("--wall", action="store_true", help="time with the wall clock, not the thread's CPU time")
    args = parser.parse_args(argv)
    matplotlib.use("Agg")
    cells = code_cells(NOTEBOOK)
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if args.busy else None
    try:
        ns: dict = {"__name__": "lesson08"}
        start = time.time()
        for cell in cells:  # the whole lesson once, in order
            if (failed := run(cell, ns)) is not None:
                print(f"first run, cell {cell.id}: {failed}")
        if args.wall:
            ns["clock"] = time.perf_counter  # the lesson's timings() reads this global at every call
        timed = dict(zip(TIMED, code_cells(NOTEBOOK, tuple(TIMED))))
        values: dict[str, list[float]] = {}
        fails: dict[str, int] = {}
        for _ in tqdm(range(args.repeats), desc="repetitions", unit="rep"):  # progress on stderr
            for marker, cell in timed.items():
                run(cell, ns)  # a failed assert is counted below, quantity by quantity
                quantities = [TIMED[marker]] + ([REMOVED] if marker == '"masked 90% (hook)"' else [])
                for label, rule, get in quantities:
                    values.setdefault(label, []).append(value := get(ns))
                    fails[label] = fails.get(label, 0) + (not eval(f"{value!r} {rule}"))  # noqa: S307 - our rules
        torch, timings = ns["torch"], ns["timings"]
        x1 = ns["data"].test_x[:1]
        F, dense = ns["F"], ns["dense"]
        with torch.no_grad():
            a1 = dense.conv1(x1); p1 = F.max_pool2d(F.relu(a1), 2)  # noqa: E702
            a2 = dense.conv2(p1); h = torch.flatten(F.max_pool2d(F.relu(a2), 2), 1)  # noqa: E702
            h1 = F.relu(dense.fc1(h))
        batch1 = {"conv1": lambda: dense.conv1(x1), "relu+pool 1": lambda: F.max_pool2d(F.relu(a1), 2),
                  "conv2": lambda: dense.conv2(p1), "relu+pool 2": lambda: F.max_pool2d(F.relu(a2), 2),
                  "fc1": lambda: dense.fc1(h), "fc2+fc3": lambda: dense.fc3(F.relu(dense.fc2(h1)))}
        stage1 = {k: statistics.median(v) for k, v in timings(batch1, number=50).items()}
    finally:
        if busy is not None:
            busy.kill()
            busy.wait()
    print(f"{args.repeats} repetitions{' beside a busy process' if args.busy else ''}, clock {ns['clock'].__name__}, "
          f"CPU {torch.backends.cpu.get_cpu_capability()}, torch {torch.__version__} ({time.time() - start:.0f} s)\n")
    print("| quantity (1 thread, batch 256, median over the rounds) | assert | min | median | max | broke the assert |")
    print("|---|---|---|---|---|---|")
    for label, rule, _ in [*TIMED.values(), REMOVED]:
        v = values[label]
        print(f"| {label} | {rule} | {min(v):.2f} | {statistics.median(v):.2f} | {max(v):.2f} | {fails[label]} |")
    print("\nbatch 1, 1 thread, stage times (µs):", {k: round(1e6 * s, 1) for k, s in stage1.items()})


if __name__ == "__main__":
    main()
