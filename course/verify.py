"""Inside the kernel the grader started: run one check in a clean checking environment.

The grader never imports this module in the kernel (a learner's cell could patch it there): for each
check it compiles this file's source afresh and runs ``run(check_source)`` inside an IPython *user
expression* (evaluated with ``eval``, so the learner's input and AST transformers never see it), once
in a hidden first step before any cell of the submission, then once per exercise. :func:`run` first
undoes what a learner's cell could have done to the checking machinery:

- IPython's custom exception handler and the input / AST transformers are reset;
- ``lenet.checks`` and its modules are imported afresh from the course package, and the names
  ``checks`` and ``lenet.checks`` are rebound to that fresh module;

then executes the check cell's source in the learner's namespace. It returns ``True`` only when the
check ran to its end; a wrong answer raises the check's own ``CheckFailed`` with the hint.
Anything a learner could still do in the same process is described in docs/teaching.md.
"""
from __future__ import annotations

import builtins
import importlib
import sys

_exec, _compile, _import = builtins.exec, builtins.compile, importlib.import_module
_CHECK_PACKAGE = "lenet.checks"


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


def fresh_checks():
    """``lenet.checks`` imported anew from the course's files, whatever the learner did to the old one."""
    for name in [n for n in sys.modules if n == _CHECK_PACKAGE or n.startswith(_CHECK_PACKAGE + ".")]:
        del sys.modules[name]
    checks = _import(_CHECK_PACKAGE)
    lenet = _import("lenet")
    lenet.checks = checks
    return checks


def run(source: str, namespace: dict | None = None) -> bool:
    """Execute the check cell ``source`` in ``namespace`` (the learner's) after resetting; True or raise."""
    _reset_ipython()
    if namespace is None:
        from IPython import get_ipython

        namespace = get_ipython().user_ns
    checks = fresh_checks()
    namespace["checks"] = checks
    if "lenet" in namespace:
        namespace["lenet"] = _import("lenet")
    _exec(_compile(source, "<check cell>", "exec"), namespace)
    return True
