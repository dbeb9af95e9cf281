"""Run a notebook in a fresh local kernel: the one runner behind refreshing outputs, grading and tests.

    python -m course.execute notebooks/*.ipynb solutions/*.ipynb   # refresh stored outputs in place

The math-thread environment of every kernel the course starts is defined here, and only here
(:func:`thread_env`): one thread by default, so that the stored outputs are reproducible.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import logging
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat import NotebookNode

from .notebook import first_line, one_line, read, write

#: The variables that set how many threads torch, NumPy and their BLAS use (MKL's overrides OMP's in torch).
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
TIMED_OUT, KERNEL_DIED, ERROR = "timed out", "kernel died", "error"
#: A code cell with this tag is expected to raise (nbclient and nbval honour it too).
RAISES_TAG = "raises-exception"


def thread_env(threads: int = 1) -> dict[str, str]:
    """The environment variables that give a kernel (or this process) ``threads`` math threads."""
    return {name: str(threads) for name in THREAD_VARIABLES}


def kernel_env(threads: int = 1, extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment with ``threads`` math threads and ``extra`` on top."""
    return {**os.environ, **thread_env(threads), "PYDEVD_DISABLE_FILE_VALIDATION": "1", **(extra or {})}


class _ErrorsOnly(NotebookClient):
    """A client that keeps only the error outputs of the cells it runs (the grader reads nothing else), so that a
    notebook printing without end costs the grader no memory.

    It notes whether each cell's "idle" status came on the output channel (:attr:`idle_seen`): where it did not,
    the channel is gone (the grader's sockets drop a message over their size limit, and the connection with it),
    and :func:`run` stops waiting for it; nbclient would otherwise wait ``iopub_timeout`` (4 s) at every cell.
    """

    idle_seen = False

    def process_message(self, msg: dict[str, Any], cell: NotebookNode, cell_index: int) -> NotebookNode | None:
        if msg.get("msg_type") == "status" and msg.get("content", {}).get("execution_state") == "idle":
            self.idle_seen = True
        return super().process_message(msg, cell, cell_index)

    def output(self, outs: list[NotebookNode], msg: dict[str, Any], display_id: str | None,
               cell_index: int) -> NotebookNode | None:
        if msg.get("msg_type") != "error":
            return None
        return super().output(outs, msg, None, cell_index)

    def handle_comm_msg(self, outs: list[NotebookNode], msg: dict[str, Any], cell_index: int) -> None:
        return None  # widgets' state is not kept either


@dataclass
class Run:
    """What executing a notebook produced: the first error of each cell, and where it stopped."""

    errors: dict[int, tuple[str, str]] = field(default_factory=dict)
    ran: set[int] = field(default_factory=set)
    stop_status: str | None = None
    stop_detail: str = ""
    stop_cell: int | None = None


def _first_error(cell: NotebookNode) -> tuple[str, str] | None:
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            return str(out.get("ename", "Error")), str(out.get("evalue", ""))
    return None


def run(nb: NotebookNode, folder: Path, *, timeout: float = 600, threads: int = 1,
        env: dict[str, str] | None = None, kernel_kwargs: dict[str, Any] | None = None,
        km: AsyncKernelManager | None = None, before_cell: Callable[[NotebookClient, int], bool] | None = None,
        errors_only: bool = False) -> Run:
    """Execute ``nb`` in place in a fresh kernel started in ``folder``; a cell that raises does not stop it.

    Args:
        timeout: seconds for all cells together (not counting the kernel's start). The run stops at
            the first cell that goes past it, or that kills the kernel; the result says where and why.
        threads: math threads of the kernel (:func:`thread_env`).
        env: the kernel's whole environment (default: :func:`kernel_env` of ``threads``).
        kernel_kwargs: more arguments for starting the kernel's process (``subprocess.Popen``'s).
        km: the kernel manager to start the kernel with (the grader's sandbox, :mod:`course.sandbox`);
            by default a local kernel.
        before_cell: called with the client and the index before each code cell; when it returns
            False the cell is not executed (the grader runs check cells its own way).
        errors_only: keep only the cells' error outputs (the grader's runs: a cell printing without end
            then costs no memory here).
    """
    quiet = logging.getLogger("course.execute.nbclient")  # nbclient logs timeouts as errors: Run says it
    if not quiet.handlers:
        quiet.addHandler(logging.NullHandler())
    quiet.propagate = False
    client = (_ErrorsOnly if errors_only else NotebookClient)(
        nb, km=km, timeout=max(1, math.ceil(timeout)), kernel_name="python3", allow_errors=True, record_timing=False,
        shutdown_kernel="immediate", log=quiet, resources={"metadata": {"path": str(folder)}})
    result = Run()
    index = None
    exited: list[int] = []  # cells that called exit() or quit(): the kernel stops after them
    replied: dict[int, tuple[str, str]] = {}  # errors as the kernel's replies give them (never dropped, unlike outputs)

    def on_cell_executed(cell: NotebookNode, cell_index: int, execute_reply: dict[str, Any]) -> None:
        content = (execute_reply or {}).get("content", {})
        if any(p.get("source") == "ask_exit" for p in content.get("payload", [])):
            exited.append(cell_index)
        if content.get("status") == "error":
            replied[cell_index] = str(content.get("ename", "Error")), str(content.get("evalue", ""))

    client.on_cell_executed = on_cell_executed
    try:
        with client.setup_kernel(env=env if env is not None else kernel_env(threads),
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **(kernel_kwargs or {})):
            deadline = time.monotonic() + timeout
            for index, cell in enumerate(nb.cells):
                if cell.get("cell_type") != "code":
                    continue
                left = deadline - time.monotonic()
                if left <= 0:
                    raise CellTimeoutError(f"no time left before {first_line(nb, index)}")
                client.timeout = max(1, math.ceil(left))
                if before_cell is not None and not before_cell(client, index):
                    continue
                if errors_only:
                    client.idle_seen = False
                client.execute_cell(cell, index)
                if errors_only and not client.idle_seen:
                    client.iopub_timeout = 0  # the output channel is gone: the errors come from the replies
                result.ran.add(index)
                error = _first_error(cell) or replied.get(index)
                if error is not None:
                    result.errors[index] = error
    except CellTimeoutError:
        result.stop_status, result.stop_cell = TIMED_OUT, index
        where = f" in {first_line(nb, index)}" if index is not None else ""
        result.stop_detail = f"timed out after {timeout:g}s{where}"
    except DeadKernelError:
        result.stop_status, result.stop_cell = KERNEL_DIED, index
        if exited:
            result.stop_cell = exited[0]
            result.stop_detail = f"{first_line(nb, exited[0])} called exit(), which stops the Python kernel"
        else:
            where = f" in {first_line(nb, index)}" if index is not None else ""
            result.stop_detail = f"the Python kernel died{where} (out of memory? a crash? os._exit?)"
    except Exception as e:  # the kernel could not start, or nbclient failed: a result, never a crash
        result.stop_status, result.stop_cell = ERROR, index
        result.stop_detail = f"could not run the notebook: {type(e).__name__}: {one_line(e, 300)}"
    return result


def code_cells(path: Path, markers: Sequence[str] | None = None) -> list[NotebookNode]:
    """The code cells of the notebook at ``path``: all of them, or the first containing each of ``markers``.

    With markers the cells come in the order of ``markers``, each once (a cell holding two markers is not
    repeated). For the scripts in docs/ that re-run a lesson's own cells over seeds or timing rounds.
    """
    cells = [cell for cell in read(path).cells if cell.cell_type == "code"]
    if markers is None:
        return cells
    chosen: dict[str, NotebookNode] = {}
    for marker in markers:
        cell = next((c for c in cells if marker in c.source), None)
        if cell is None:
            raise LookupError(f"{path}: no code cell contains {marker!r}")
        chosen.setdefault(cell.id, cell)
    return list(chosen.values())


def run_in_process(cell: NotebookNode, namespace: dict[str, Any], quiet: bool = True) -> None:
    """Execute ``cell``'s source in ``namespace`` in this process (no kernel), its prints silenced if ``quiet``."""
    with contextlib.redirect_stdout(io.StringIO()) if quiet else contextlib.nullcontext():
        exec(compile(cell.source, f"<cell {cell.get('id', '?')}>", "exec"), namespace)  # noqa: S102 - the course's cells


def refresh(path: Path) -> str:
    """Re-run the notebook at ``path`` with one math thread and store its new outputs in place.

    Cell ids are kept (the grader finds a learner's answer cells by them), so that a re-run changes only
    what the code prints. Raises
    RuntimeError (and writes nothing) when a cell not tagged ``raises-exception`` raised.
    """
    nb = read(path)
    start = time.monotonic()
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    result = run(nb, path.resolve().parent)
    unexpected = [i for i in result.errors if RAISES_TAG not in nb.cells[i].get("metadata", {}).get("tags", [])]
    if result.stop_status or unexpected:
        problems = [result.stop_detail] if result.stop_status else []
        problems += [f"{first_line(nb, i)} raised {result.errors[i][0]}: {one_line(result.errors[i][1], 200)}"
                     for i in unexpected]
        raise RuntimeError(f"{path}: not written: " + "; ".join(problems))
    nb.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.nbformat_minor = max(nb.get("nbformat_minor", 5), 5)
    write(nb, path)
    return f"{path}: {len(nb.cells)} cells, executed in {time.monotonic() - start:.1f}s"


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: refresh the stored outputs of the notebooks given."""
    parser = argparse.ArgumentParser(prog="python -m course.execute", description=refresh.__doc__.split("\n")[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    status = 0
    for path in parser.parse_args(argv).notebooks:
        try:
            print(refresh(path), flush=True)
        except (OSError, RuntimeError, ValueError) as e:
            print(e, file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
