"""Redraw time of each view of the live demo (teaching/live_demo.ipynb): the median over repeated moves.

    .venv/bin/python docs/live_demo_timing.py            # about a minute on a 2-core laptop

Runs the demo's own cells in this process (no kernel, no browser), with the hook view shown, then moves the
controls as a teacher would: every method on every layer at amounts from 5% to 95%, in shuffled order. For
each view it prints the median and the 90th percentile of the wall time, and the median CPU time of the
thread (what the view would take on an idle machine), on one torch thread. A browser adds the transfer and
the drawing of the picture: tests/test_browser.py prints those end-to-end times.
"""
from __future__ import annotations

import os
import random
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MPLBACKEND", "agg")

import torch  # noqa: E402

from course.execute import code_cells, run_in_process  # noqa: E402

DEMO = ROOT / "teaching" / "live_demo.ipynb"
AMOUNTS = (0.05, 0.3, 0.5, 0.7, 0.9, 0.95)


def main() -> None:
    torch.set_num_threads(1)
    namespace: dict = {}
    for cell in code_cells(DEMO):
        if cell.id != "debounce":  # its observers need a kernel's event loop: this script redraws by hand
            run_in_process(cell, namespace)
        if cell.id == "demo":  # the demo is built and drawn; the checks after it need a kernel too
            break
    namespace["show_hook"].value = True
    moves = [(m, layer, a) for m in namespace["METHODS"] for layer in namespace["LAYERS"] for a in AMOUNTS]
    random.Random(0).shuffle(moves)
    namespace["history"].clear()
    for method, layer, amount in moves:
        namespace["method"].value, namespace["layer"].value = method, layer
        namespace["amount"].value = round(100 * amount)
        namespace["redraw"]()
    history = namespace["history"][-len(moves):]
    views = list(history[0][1])
    print(f"{len(history)} redraws (4 methods x 5 layers x {len(AMOUNTS)} amounts), 1 torch thread, "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    print(f"{'view':10s} {'wall median':>12s} {'wall p90':>9s} {'CPU median':>11s}")
    totals = [sum(wall.values()) for _, wall, _ in history], [sum(cpu.values()) for _, _, cpu in history]
    for view, walls, cpus in [(v, [h[1][v] for h in history], [h[2][v] for h in history]) for v in views] + [
            ("all views", *totals)]:
        print(f"{view:10s} {statistics.median(walls):11.3f}s {statistics.quantiles(walls, n=10)[-1]:8.3f}s "
              f"{statistics.median(cpus):10.3f}s")
    by_layer = {layer: statistics.median(h[2]["mask"] for h in history if h[0][1] == layer)
                for layer in namespace["LAYERS"]}
    print("mask view, CPU median by layer:", ", ".join(f"{k} {v:.3f}s" for k, v in by_layer.items()))


if __name__ == "__main__":
    main()
