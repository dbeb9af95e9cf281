"""What the grader's sandbox costs in time: a kernel's start with and without it, and a room of 30 submissions.

    .venv/bin/python docs/grader_timing.py             # both parts (a few minutes on a quiet 2-core machine)
    .venv/bin/python docs/grader_timing.py --rounds 10 --room 0

1. Kernel start: one notebook of one cell (``1 + 1``) executed ``--rounds`` times in each mode, interleaved
   (no sandbox, sandbox, no sandbox, ...): the time from preparing its place to releasing it, so the sandbox's
   share (bwrap, the launcher, the cgroups and the tmpfs as root) is the difference of the medians.
2. The room: ``--room`` copies of solutions/01_load_lenet.ipynb graded by ``python -m lenet.grade --jobs 2``,
   with the sandbox and then with ``--no-sandbox`` (issue 18's limit: 30 in at most 60 s with the sandbox).

Every number depends on the machine and on its load: the script prints the CPU count and the load average
before and after, and the teacher's guide quotes what it printed on a quiet machine.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from nbformat.v4 import new_code_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from course import execute, sandbox  # noqa: E402


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3]) if Path("/proc/loadavg").exists() else "?"


def one_kernel(mode: sandbox.Mode, limits: sandbox.Limits) -> float:
    """Seconds to prepare a place, start a kernel there from a forked worker (as the grader does), run one cell,
    end it and release the place."""
    start = time.perf_counter()
    place = sandbox.prepare(mode, limits)
    try:
        pid = os.fork()
        if pid == 0:  # the worker: its own folder (a tmpfs where the mode allows), then the kernel
            ok = False
            try:
                box = sandbox.Sandbox(mode, place, limits, ROOT)
                box.enter()
                env = box.environment()
                nb = new_notebook(cells=[new_code_cell("1 + 1")])
                run = execute.run(nb, Path(place.home), timeout=60, env=box.launch_env(env),
                                  km=box.kernel_manager(env), kernel_kwargs=box.popen_kwargs())
                ok = run.stop_status is None and not run.errors
            finally:
                os._exit(0 if ok else 1)
        if os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) != 0:
            raise RuntimeError("the kernel failed")
    finally:
        sandbox.release(place)
    return time.perf_counter() - start


def room(count: int, extra: list[str]) -> float:
    """Seconds for `python -m lenet.grade` on ``count`` solved copies of lesson 01, two at a time."""
    folder = Path(tempfile.mkdtemp(prefix="grader-timing-"))
    try:
        for n in range(count):
            shutil.copy(ROOT / "solutions" / "01_load_lenet.ipynb", folder / f"learner{n:02d}-01_load_lenet.ipynb")
        start = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", "lenet.grade", str(folder), "--jobs", "2", *extra],
                                capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
        seconds = time.perf_counter() - start
        if result.returncode != 0:
            raise RuntimeError(f"the room did not pass everywhere:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
        return seconds
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7, help="kernels started in each mode (default 7)")
    parser.add_argument("--room", type=int, default=30, help="submissions in the room (0: skip it; default 30)")
    args = parser.parse_args()
    mode = sandbox.probe()
    limits = sandbox.Limits(timeout=60)
    print(f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}, load average {load()}")
    print("sandbox: " + " ".join(sandbox.describe(mode, limits)))
    if args.rounds:
        times: dict[str, list[float]] = {"no sandbox": [], "sandbox": []}
        one_kernel(mode, limits)  # warm the file cache once
        for _ in range(args.rounds):
            times["no sandbox"].append(one_kernel(sandbox.NO_SANDBOX, limits))
            times["sandbox"].append(one_kernel(mode, limits))
        for name, values in times.items():
            print(f"kernel start + one cell + end, {name}: median {statistics.median(values):.2f} s "
                  f"(min {min(values):.2f}, max {max(values):.2f}, {len(values)} rounds)")
        share = statistics.median(times["sandbox"]) - statistics.median(times["no sandbox"])
        print(f"the sandbox's share: {share:+.2f} s per notebook (difference of the medians)")
    if args.room:
        for name, extra in (("sandbox", []), ("no sandbox", ["--no-sandbox"])):
            print(f"{args.room} submissions of lesson 01, --jobs 2, {name}: {room(args.room, extra):.1f} s "
                  f"(load average after: {load()})")
    print(f"load average at the end: {load()}")


if __name__ == "__main__":
    main()
