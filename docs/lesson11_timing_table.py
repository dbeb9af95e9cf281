"""The timing spread behind notebooks/11_shipping_a_pruned_model.ipynb: its table, its asserts, its quoted ranges.

    PYTHONPATH=. .venv/bin/python docs/lesson11_timing_table.py [--repeats 24] [--compile 3] [--extra] [--busy torch]

A timing printed once is one draw of a noisy machine. This script runs the lesson's own code cells once (so it
measures exactly what the lesson measures), then re-runs the lesson's timing cell ``--repeats`` times: every
second repetition beside a busy neighbour (a process of this script that, for that repetition, trains a LeNet on
two threads as `make test`'s other worker does, or with ``--busy python`` spins on one core). For every artifact
it prints the speed-up against torch's dense model at batch 1 and 256 (each value the median of the cell's 31
interleaved rounds, on the thread's CPU clock, one thread), as min, median and max over
the quiet repetitions, the busy ones and all of them, and how many repetitions broke each of the lesson's
speed asserts. ``--extra`` adds artifacts the lesson does not time, measured in the same rounds: int8 weights
with the ``DequantizeLinear`` nodes left to run at every call, float16 weights read through ``Cast``, static int8
in ORT's QOperator format, and the slim float32 and int8-weights files in sessions at ONNX Runtime's default
``ORT_ENABLE_ALL``, which adds the x86 layout rewrites (NCHWc) that the lesson's ``ORT_ENABLE_EXTENDED`` leaves out.

Then it times the lesson's ``torch.compile`` sentence: the first call of ``torch.compile(slim)`` (Inductor, the
default backend, batch 256), ``--compile`` times in a fresh process with an empty Inductor cache, and once with
the cache of the last one (warm). Wall time, and the CPU time of the process and its compiler children.

Progress goes to stderr, the tables to stdout (Markdown). Nothing is written into the repository. About 4 s per
repetition on the quiet 2-core test machine, plus about 30 s for the lesson and 20 s per compile.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import matplotlib
from tqdm import tqdm

from course.execute import code_cells, run_in_process

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "11_shipping_a_pruned_model.ipynb"
#: The timing cell, found by what it contains.
TIMING = "lenet.time_rounds("
SHIP = "ORT int8 weights"
#: The lesson's speed asserts, as (label, predicate of the cell's ``speed`` dict).
ASSERTS = {
    f"{SHIP} >= 3 at batch 1 and 256": lambda s: min(s[1][SHIP], s[256][SHIP]) >= 3,
    f"{SHIP} > 1.5 x max(static, dynamic), both batches": lambda s: all(
        s[n][SHIP] > 1.5 * max(s[n]["ORT int8 static"], s[n]["ORT int8 dynamic"]) for n in s),
}
#: The first call of an Inductor-compiled slim LeNet, in a fresh process (the lesson's model, before fine-tuning).
COMPILE = """
import resource, time, torch, lenet
slim = lenet.shrink(lenet.prune_rows(lenet.pretrained("cpu")))
x = lenet.load_mnist().test_x[:256]
compiled = torch.compile(slim)
start, cpu = time.perf_counter(), time.process_time()
with torch.no_grad():
    compiled(x)
children = resource.getrusage(resource.RUSAGE_CHILDREN)
print(time.perf_counter() - start, time.process_time() - cpu + children.ru_utime + children.ru_stime)
"""

#: What the busy neighbour of every second repetition runs until it is killed.
BUSY = {
    "python": "while True: pass",
    "torch": """
import torch, lenet
model, data = lenet.LeNet(), lenet.load_mnist()
opt = torch.optim.Adam(model.parameters())
while True:
    for i in range(0, 4000, 64):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(data.train_x[i:i + 64]), data.train_y[i:i + 64]).backward()
        opt.step()
""",
}
#: The neighbour's environment: two math threads, sleeping when idle, as in `make test` (the root conftest.py).
BUSY_ENV = {**os.environ, "OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2", "OMP_WAIT_POLICY": "PASSIVE",
            "PYTHONPATH": str(ROOT)}


def lesson_namespace() -> dict:
    """The lesson's globals after running all its code cells once (plots closed, prints swallowed)."""
    import matplotlib.pyplot as plt

    ns: dict = {"__name__": "lesson11"}
    for cell in tqdm(code_cells(NOTEBOOK), desc="the lesson, once", file=sys.stderr):
        try:
            run_in_process(cell, ns)
        except AssertionError as e:
            print(f"first run, cell {cell.id}: assert failed: {e}", file=sys.stderr)
        finally:
            plt.close("all")
    return ns


def add_extra(ns: dict) -> None:
    """More artifacts in the lesson's ``runners`` and ``paths``, built from its slim float32 file."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    session, paths, runners, torch = ns["session"], ns["paths"], ns["runners"], ns["torch"]
    folder = ns["tmp"].name
    paths["ORT int8 weights, unfolded"] = paths[SHIP]
    proto = onnx.load(paths["ORT slim float32"])
    for init in [i for i in proto.graph.initializer if len(i.dims) >= 2]:
        w = numpy_helper.to_array(init)
        proto.graph.initializer.remove(init)
        proto.graph.initializer.append(numpy_helper.from_array(w.astype(np.float16), f"{init.name}_fp16"))
        proto.graph.node.insert(0, helper.make_node("Cast", [f"{init.name}_fp16"], [init.name],
                                                    to=onnx.TensorProto.FLOAT))
    onnx.checker.check_model(proto, full_check=True)
    onnx.save(proto, paths.setdefault("ORT float16 weights", os.path.join(folder, "fp16.onnx")))
    quantization = ns["quantization"]
    paths["ORT int8 static, QOperator"] = os.path.join(folder, "static_qop.onnx")
    quantization.quantize_static(os.path.join(folder, "pre.onnx"), paths["ORT int8 static, QOperator"],
                                 ns["Calibration"](), quant_format=quantization.QuantFormat.QOperator)
    extra = {label: session(paths[label]) for label in
             ("ORT int8 weights, unfolded", "ORT float16 weights", "ORT int8 static, QOperator")}
    for label, config in (("ORT slim float32", None), (SHIP, {"session.disable_quant_qdq": "1"})):
        paths[f"{label}, ALL"] = paths[label]
        extra[f"{label}, ALL"] = level_all(paths[label], config)
    for label, s in extra.items():
        runners[label] = lambda images, s=s: torch.from_numpy(s.run(None, {"x": images.numpy()})[0])
        ns["accs"][label] = ns["accuracy"](runners[label])


def level_all(path: str, config: dict[str, str] | None):
    """The lesson's session, one thread, at ONNX Runtime's default level, ORT_ENABLE_ALL: with layout rewrites."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    for key, value in (config or {}).items():
        options.add_session_config_entry(key, value)
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def spread(values: list[float]) -> str:
    return f"{min(values):.2f} / {statistics.median(values):.2f} / {max(values):.2f}" if values else "-"


def time_compile(runs: int) -> list[str]:
    """Lines of the Inductor table: ``runs`` cold first calls, then one warm."""
    rows, env = [], {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    with tempfile.TemporaryDirectory() as folder:
        for i in tqdm(range(runs + 1), desc="torch.compile, first call", file=sys.stderr):
            cache = os.path.join(folder, f"cache{min(i, runs - 1)}")  # the last run reuses the cache before it
            out = subprocess.run([sys.executable, "-c", COMPILE], env={**env, "TORCHINDUCTOR_CACHE_DIR": cache},
                                 capture_output=True, text=True, check=True, cwd=ROOT).stdout.split()
            rows.append((("warm" if i == runs else "cold"), float(out[0]), float(out[1])))
    lines = [f"| {kind} cache | {wall:.1f} | {cpu:.1f} |" for kind, wall, cpu in rows]
    cold = [wall for kind, wall, _ in rows if kind == "cold"]
    lines.append(f"\ncold first call, wall: {min(cold):.1f}–{max(cold):.1f} s over {len(cold)} fresh processes")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=24, help="re-runs of the timing cell; every second one busy")
    parser.add_argument("--compile", type=int, default=3, help="cold first calls of torch.compile (0: skip)")
    parser.add_argument("--busy", choices=sorted(BUSY), default="torch",
                        help="what the busy neighbour runs: LeNet training steps on 2 threads, as make test's other "
                             "worker does (torch), or a Python loop that spins on one core (python)")
    parser.add_argument("--extra", action="store_true", help="also time variants the lesson does not show")
    args = parser.parse_args(argv)
    if args.repeats < 2:
        parser.error("--repeats must be at least 2 (one quiet, one beside a busy core)")
    matplotlib.use("Agg")
    start = time.time()
    ns = lesson_namespace()
    if args.extra:
        add_extra(ns)
    (cell,) = code_cells(NOTEBOOK, (TIMING,))
    speeds: dict[bool, list[dict]] = {False: [], True: []}
    broke = dict.fromkeys(ASSERTS, 0)
    for i in tqdm(range(args.repeats), desc="timing cell", file=sys.stderr):
        busy = subprocess.Popen([sys.executable, "-c", BUSY[args.busy]], env=BUSY_ENV) if i % 2 else None
        try:
            try:
                run_in_process(cell, ns)
            except AssertionError:
                pass  # counted below, assert by assert
        finally:
            if busy is not None:
                busy.kill()
                busy.wait()
        speed = ns["speed"]
        speeds[busy is not None].append(speed)
        for label, holds in ASSERTS.items():
            broke[label] += not holds(speed)
    torch = ns["torch"]
    print(f"{args.repeats} repetitions of the timing cell ({len(speeds[True])} beside a busy core), CPU "
          f"{torch.backends.cpu.get_cpu_capability()}, torch {torch.__version__}, onnxruntime "
          f"{ns['ort'].__version__}, 1 thread, thread CPU time; {time.time() - start:.0f} s\n")
    print("Speed vs torch dense (median of 31 interleaved rounds), min / median / max over the repetitions:\n")
    print("| artifact | kB | smaller | batch 1, quiet | batch 1, busy | batch 256, quiet | batch 256, busy "
          "| accuracy |\n|---|---|---|---|---|---|---|---|")
    runners, paths, smaller = ns["runners"], ns["paths"], ns["smaller"]
    for k in runners:
        cols = [spread([s[n][k] for s in speeds[busy]]) for n in (1, 256) for busy in (False, True)]
        kb = os.path.getsize(paths[k]) / 1e3
        print(f"| {k} | {kb:.1f} | {smaller[k]:.1f}× | " + " | ".join(cols) + f" | {ns['show'](*ns['accs'][k])} |")
    print("\nThe lesson's asserts:\n\n| assert | repetitions that broke it |\n|---|---|")
    for label, n in broke.items():
        print(f"| {label} | {n} of {args.repeats} |")
    every = speeds[False] + speeds[True]
    print(f"\n{SHIP}, all {len(every)} repetitions: batch 1 {spread([s[1][SHIP] for s in every])}, "
          f"batch 256 {spread([s[256][SHIP] for s in every])}")
    if args.compile:
        print("\nFirst call of torch.compile(slim) (Inductor, batch 256, OMP_NUM_THREADS=1), fresh processes:\n")
        print("| Inductor cache | wall s | CPU s (with compiler processes) |\n|---|---|---|")
        print("\n".join(time_compile(args.compile)))


if __name__ == "__main__":
    main()
