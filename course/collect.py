"""Inside the kernel the grader started: collect what one check needs from the learner's answers.

The grader judges nothing here. For each check cell it draws the check's cases from a secret seed in its own
process, writes them to a file in the learner's folder, and runs ``collect(...)`` below inside an IPython *user
expression* (evaluated with ``eval``, so the learner's input and AST transformers never see it); this file's
source is compiled afresh every time, so a learner's cell cannot have patched it. :func:`collect`:

- resets IPython's custom exception handler and the input / AST transformers;
- imports the course's checks module afresh (``lenet.checks``, or the module the course names);
- runs the course's check cell, ``checks.check_NN_what(answer, ...)``, with ``checks`` standing for a collector:
  the check's ``collect_all`` calls the learner's code on every case and the plain data it returns (tensors,
  numbers, strings, ...; never an object of the learner's) is saved to a file.

The grader reads that file with ``torch.load(weights_only=True)`` and the check's ``judge_all`` decides, in the
grader's own process, with the reference answers that never enter the kernel. What a learner's cell can still do
here is forge the collected data; that passes only if the data is right for cases it has never seen
(docs/teaching.md).
"""
from __future__ import annotations

import builtins
import importlib
import sys

_exec, _compile, _import = builtins.exec, builtins.compile, importlib.import_module


def _reset_ipython() -> None:
    """Undo a custom exception handler and any input/AST transformers the learner registered."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - the grader always runs in IPython
        return
    shell = get_ipython()
    if shell is None:
        return
    shell.set_custom_exc((), None)
    shell.ast_transformers[:] = []
    manager = shell.input_transformer_manager
    defaults = type(manager)()
    manager.cleanup_transforms[:] = defaults.cleanup_transforms
    manager.line_transforms[:] = defaults.line_transforms
    manager.token_transformers[:] = defaults.token_transformers
    shell.input_transformers_post[:] = []


def fresh(name: str):
    """The module ``name`` (and ``lenet.checks``, which every check uses) imported anew from the course's files."""
    for package in {name, "lenet.checks"}:
        for module in [n for n in sys.modules if n == package or n.startswith(package + ".")]:
            del sys.modules[module]
    _import("lenet").checks = _import("lenet.checks")
    return _import(name)


class _Collector:
    """Stands for the checks module in the check cell: ``checks.check_x(*answers)`` collects instead of checking."""

    def __init__(self, checks, cases, out_path: str, save) -> None:
        self._checks, self._cases, self._out, self._save = checks, cases, out_path, save

    def __getattr__(self, name: str):
        check = getattr(self._checks, name)

        def collect_answers(*answers):
            self._save(check.collect_all(self._cases, answers), self._out)

        return collect_answers


def collect(source: str, module: str, cases_path: str, out_path: str, namespace: dict | None = None) -> bool:
    """Run the check cell ``source`` in ``namespace`` (the learner's) as a collection; True when it ran."""
    _reset_ipython()
    if namespace is None:
        from IPython import get_ipython

        namespace = get_ipython().user_ns
    checks = fresh(module)
    plain = _import("lenet.checks.plain")
    torch = _import("torch")
    cases = plain.decode(torch.load(cases_path, weights_only=True))
    namespace["checks"] = _Collector(checks, cases, out_path, plain.save)
    try:
        _exec(_compile(source, "<check cell>", "exec"), namespace)
    finally:
        namespace["checks"] = checks
    return True
