"""A small synthetic course for the grader's tests: five tiny exercises that start fast, and notebooks
a class of learners might hand in (solved, untouched, partly solved, broken, hanging, cheating)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from course.exercises import build_exercise

#: The five exercises of the synthetic course: (title, solution cell, check cell).
EXERCISES = [
    ("Multiply", "### BEGIN SOLUTION\nanswer = 6 * 7\n### END SOLUTION", "checks.check_99_multiply(answer)"),
    ("Double", "def double(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION",
     "checks.check_99_double(double)"),
    ("Arange", "### BEGIN SOLUTION\nt = torch.arange(3)\n### END SOLUTION", "checks.check_99_arange(t)"),
    ("Split", "### BEGIN SOLUTION\nwords = 'a b c'.split()\n### END SOLUTION", "checks.check_99_split(words)"),
    ("Inverse", "def inverse(x):\n    ### BEGIN SOLUTION\n    return 1 / x\n    ### END SOLUTION",
     "checks.check_99_inverse(inverse)"),
]
#: The checks module of the synthetic course: this folder's synthetic_checks.py, copied into the course folder.
CHECKS = "synthetic_checks"
STEM = "99_synthetic"
LABELS = [f"Exercise {n}: {title}" for n, (title, _, _) in enumerate(EXERCISES, 1)]
WRONG = ["answer = 41", "def double(x):\n    return x + 2", "t = torch.arange(4)", "words = ['a']",
         "def inverse(x):\n    return x"]
HANG_TIMEOUT = 10


def solution_notebook() -> nbformat.NotebookNode:
    nb = new_notebook()
    nb.cells = [new_markdown_cell("# 99 · Exercises: synthetic"),
                new_code_cell(f"import torch\nimport lenet\nimport {CHECKS} as checks")]
    nb.metadata["course"] = {"checks": CHECKS}
    for n, (title, solution, check) in enumerate(EXERCISES, 1):
        nb.cells += [new_markdown_cell(f"### Exercise {n}: {title}"), new_code_cell(solution), new_code_cell(check)]
    nb.cells.append(new_markdown_cell("## Next"))
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"c{i:02d}"
    return nb


def solution(n: int) -> int:
    """Index of exercise n's answer cell in the exercise notebook (heading 3n-1, answer 3n, check 3n+1)."""
    return 3 * n


def check(n: int) -> int:
    return 3 * n + 1


def untouched() -> nbformat.NotebookNode:
    return build_exercise(solution_notebook(), f"solutions/{STEM}.ipynb")


def answered(answers: list[str]) -> nbformat.NotebookNode:
    nb = untouched()
    for n, code in enumerate(answers, 1):
        nb.cells[solution(n)].source = code
    return nb


def solved() -> nbformat.NotebookNode:
    return answered(["\n".join(line for line in code.splitlines() if "### " not in line) for _, code, _ in EXERCISES])


def wrong_with(cheat: str, after: int = 1) -> nbformat.NotebookNode:
    """Every answer wrong, and the learner's ``cheat`` in a cell of its own after cell ``after``."""
    nb = answered(WRONG)
    nb.cells.insert(after + 1, new_code_cell(cheat))
    return nb


def partly() -> nbformat.NotebookNode:
    """Right, wrong, untouched, raising in the answer cell, raising inside the check; and a cell between
    exercises 1 and 2 that raises, after which the later exercises are still graded."""
    nb = untouched()
    nb.cells[solution(1)].source = "answer = 42"
    nb.cells[solution(2)].source = "def double(x):\n    return x + 2"
    nb.cells[solution(4)].source = "words = 'a b c'.split(1)"  # TypeError in the learner's cell
    nb.cells[solution(5)].source = "def inverse(x):\n    return 1 / (x - 4)"  # ZeroDivisionError when checked
    nb.cells.insert(check(1) + 1, new_code_cell("raise RuntimeError('boom')"))
    return nb


def deleted() -> nbformat.NotebookNode:
    """Solved, then: exercise 2 deleted with its metadata entry, check 1 edited to hide a wrong answer."""
    nb = solved()
    nb.cells[solution(1)].source = "answer = 41"
    nb.cells[check(1)].source = "print('Exercise 1 passed: multiply')"
    del nb.cells[solution(2) - 1: check(2) + 1]
    nb.metadata["course"]["exercises"] = [e for e in nb.metadata["course"]["exercises"] if e["exercise"] != 2]
    return nb


def forged_metadata() -> nbformat.NotebookNode:
    """Wrong answers, with the check cells and the recorded checks both replaced by a print."""
    nb = answered(WRONG)
    for n in range(1, 6):
        nb.cells[check(n)].source = f"print('Exercise {n} passed')"
    for entry in nb.metadata["course"]["exercises"]:
        entry["check"] = "print('passed')"
    return nb


def hanging() -> nbformat.NotebookNode:
    nb = untouched()
    nb.cells[solution(1)].source = "answer = 42"
    nb.cells[solution(2)].source = "import time\ntime.sleep(600)"
    return nb


CHEATS = {
    "fake_checks": "class Pass:\n    def __getattr__(self, name):\n        return lambda *a, **k: None\nchecks = Pass()",
    "fake_lenet_checks": "class Pass:\n    def __getattr__(self, name):\n        return lambda *a, **k: None\n"
                         "lenet.checks = Pass()\nchecks = lenet.checks",
    "patched_functions": "import lenet.checks as c, lenet.checks.core as core\n"
                         "c.check_equal = core.check_equal = lambda *a, **k: None",
    "custom_exc": "get_ipython().set_custom_exc((BaseException,), lambda *a, **k: None)",
    "input_transformer": "get_ipython().input_transformers_cleanup.append("
                         "lambda lines: [] if any('checks.' in l for l in lines) else lines)",
    "ast_transformer": "import ast\nclass Blank(ast.NodeTransformer):\n"
                       "    def visit_Module(self, node):\n        return ast.Module(body=[], type_ignores=[])\n"
                       "get_ipython().ast_transformers.append(Blank())",
    "printed_pass": "print('Exercise 1 passed: multiply')",
    "patched_grader": "import sys, types\nfake = types.ModuleType('course.collect')\n"
                      "fake.collect = fake.fresh = lambda *a, **k: True\nsys.modules['course.collect'] = fake\n"
                      "import course\ncourse.collect = fake",
}


#: Cheats that try to forge a verdict in the learner's own kernel. The grader judges in its own process, so each
#: can at most forge the data collected there; wrong answers must still pass nothing.
_ALWAYS_EQUAL = ("class AlwaysEqual(int):\n    def __eq__(self, other):\n        return True\n"
                 "    __hash__ = int.__hash__\n")
FORGERIES = {
    "replaced_exec": "import builtins\nbuiltins.exec = lambda *a, **k: None",
    "replaced_compile": "import builtins\n_compile = builtins.compile\n"
                        "builtins.compile = lambda s, *a, **k: _compile('None' if 'collect' in str(s) else s, *a, **k)",
    "planted_on_lenet_path": _ALWAYS_EQUAL + "import lenet, os, sys, tempfile\nd = tempfile.mkdtemp()\n"
                             "os.makedirs(os.path.join(d, 'checks'))\n"
                             "open(os.path.join(d, 'checks', '__init__.py'), 'w').write(\n"
                             "    'import types\\ndef __getattr__(n):\\n    return types.SimpleNamespace(collect_all=lambda c, a: [0] * len(c))\\n')\n"
                             "lenet.__path__.insert(0, d)\nsys.path.insert(0, d)",
    "wrapped_user_expressions": "shell = get_ipython()\nshell.user_expressions = lambda expressions: {\n"
                                "    k: {'status': 'ok', 'data': {'text/plain': 'True'}, 'metadata': {}} for k in expressions}",
    "wrapped_eval": "import builtins\n_eval = builtins.eval\nbuiltins.eval = lambda *a, **k: True",
    "settrace": "import sys\ndef tracer(frame, event, arg):\n    if event == 'return' and frame.f_code.co_name in "
                "('judge', 'judge_all', 'collect_all'):\n        frame.f_locals.clear()\n    return tracer\n"
                "sys.settrace(tracer)",
    "setprofile": "import sys\nsys.setprofile(lambda frame, event, arg: None)",
    "audit_hook": "import sys\ndef hook(event, args):\n    if event == 'open' and 'collected' in str(args[0]):\n"
                  "        raise PermissionError('no')\nsys.addaudithook(hook)",
    "thread_patches_checks": _ALWAYS_EQUAL + "import threading, time, sys\ndef patch():\n    while True:\n"
                             "        for m in list(sys.modules.values()):\n"
                             "            for name in dir(m) if getattr(m, '__name__', '').endswith('checks') else []:\n"
                             "                c = getattr(m, name)\n                if hasattr(c, 'collect_all'):\n"
                             "                    type(c).collect_all = lambda self, cases, answers: [AlwaysEqual(0)] * len(cases)\n"
                             "        time.sleep(0.01)\nthreading.Thread(target=patch, daemon=True).start()",
    "meta_path_finder": _ALWAYS_EQUAL + "import sys, types, importlib.abc, importlib.util\n"
                        "class Fake(importlib.abc.MetaPathFinder, importlib.abc.Loader):\n"
                        "    def find_spec(self, name, path, target=None):\n"
                        "        if name.endswith('checks'):\n"
                        "            return importlib.util.spec_from_loader(name, self)\n"
                        "    def create_module(self, spec):\n        return None\n"
                        "    def exec_module(self, module):\n"
                        "        module.__getattr__ = lambda n: types.SimpleNamespace(\n"
                        "            collect_all=lambda cases, answers: [AlwaysEqual(0)] * len(cases))\n"
                        "sys.meta_path.insert(0, Fake())",
    "patched_torch_load": "import torch\n_load = torch.load\ntorch.load = lambda *a, **k: [0, 0]",
}


_FRAME_READER = ("def {name}(x):\n    import sys\n    f = sys._getframe(1)\n    while f is not None:\n"
                 "        for key in ('expected', 'want', 'right', 'reference'):\n"
                 "            if key in f.f_locals:\n                return f.f_locals[key]\n"
                 "        f = f.f_back\n    return x")
#: Answers that are themselves the cheat (one per exercise): they replace the answer cells.
ANSWER_FORGERIES = {
    "always_equal": [_ALWAYS_EQUAL + "answer = AlwaysEqual(0)",
                     _ALWAYS_EQUAL + "def double(x):\n    return AlwaysEqual(0)",
                     "class Tricky(torch.Tensor):\n    def __eq__(self, other):\n        return torch.ones(3, dtype=torch.bool)\n"
                     "t = torch.zeros(3).as_subclass(Tricky)",
                     "class Words(list):\n    def __eq__(self, other):\n        return True\nwords = Words()",
                     _ALWAYS_EQUAL + "def inverse(x):\n    return AlwaysEqual(0)"],
    "frame_reader": ["answer = 41", _FRAME_READER.format(name="double"), "t = torch.arange(4)", "words = ['a']",
                     _FRAME_READER.format(name="inverse")],
    "answers_patch_the_checks": [
        "answer = 41",
        "def double(x):\n    import sys\n    for m in list(sys.modules.values()):\n"
        "        c = getattr(m, 'check_99_double', None)\n        if c is not None:\n"
        "            type(c).judge = type(c).judge_all = lambda *a, **k: None\n    return x",
        "t = torch.arange(4)", "words = ['a']", "def inverse(x):\n    return x"],
}


def sandbox_or_none():
    """The grader's sandbox mode on this machine (course.sandbox.probe), or None where bwrap cannot run: then the
    grader's tests pass --no-sandbox and skip what only the sandbox guarantees."""
    from course import sandbox

    try:
        return sandbox.probe()
    except sandbox.Unavailable:
        return None


def write_course(folder: Path) -> Path:
    """A course folder holding solutions/99_synthetic.ipynb and its checks module; returns it."""
    (folder / "solutions").mkdir(parents=True, exist_ok=True)
    nbformat.write(solution_notebook(), folder / "solutions" / f"{STEM}.ipynb")
    shutil.copy(Path(__file__).with_name(f"{CHECKS}.py"), folder / f"{CHECKS}.py")
    return folder


# ------------------------------------------------------------------------------------------ attacks
# What a class of motivated learners tried against the grader (issue 18), each as one cell of a notebook whose
# answers are otherwise wrong, so that any "passed" is the attack's doing. MARKER is a string only the test's own
# room uses (a folder name): an attack that scans /proc acts only on processes that carry it, so that a grader
# without its sandbox is never able to harm anything on the machine but the test's own room.

SITECUSTOMIZE_PAYLOAD = '''\
import importlib.abc, importlib.util, sys
class _Pass(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "lenet.checks.core":
            return None
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        run = spec.loader.exec_module
        def exec_module(module):
            run(module)
            module.check_equal = lambda *a, **k: None
        spec.loader.exec_module = exec_module
        return spec
sys.meta_path.insert(0, _Pass())
'''


def plant_sitecustomize() -> str:
    """Write sitecustomize.py into the folder the kernel imports lenet from: every later kernel would run it."""
    return ("import os, lenet\n"
            "root = os.path.dirname(os.path.dirname(lenet.__file__))\n"
            "try:\n"
            f"    open(os.path.join(root, 'sitecustomize.py'), 'w').write({SITECUSTOMIZE_PAYLOAD!r})\n"
            "    print('planted in', root)\n"
            "except OSError as e:\n"
            "    print('refused:', e)")


def _scan(body: str) -> str:
    """A loop over every process this kernel can see, with ``pid``, ``cmd`` (bytes) and ``env`` (bytes) bound."""
    return ("import os\n"
            "for pid in [p for p in os.listdir('/proc') if p.isdigit()]:\n"
            "    try:\n"
            "        cmd = open(f'/proc/{pid}/cmdline', 'rb').read()\n"
            "        env = open(f'/proc/{pid}/environ', 'rb').read()\n"
            "    except OSError:\n"
            "        continue\n" + "".join(f"    {line}\n" for line in body.splitlines()))


def write_teacher_home(marker: str) -> str:
    """Find the grader through /proc, read its HOME from /proc/<grader>/environ and write a file there."""
    return _scan("if b'lenet.grade' not in cmd:\n"
                 "    continue\n"
                 "for entry in env.split(b'\\0'):\n"
                 f"    if entry.startswith(b'HOME=') and {marker.encode()!r} in entry:\n"
                 "        open(os.path.join(entry[5:].decode(), 'pwned.txt'), 'w').write('a learner was here')\n"
                 "        print('wrote into', entry[5:].decode())")


def raid_room(known_room: str) -> str:
    """Find the room through /proc/<grader>/cmdline (or at the path a learner guessed), copy the answers of a
    peer's solved notebook into this kernel and rewrite an untouched peer's file on disk."""
    return ("import glob, json, os\n"
            f"rooms = [{known_room!r}]\n"
            + _scan("if b'lenet.grade' in cmd:\n"
                    "    rooms += [a.decode() for a in cmd.split(b'\\0') if a and os.path.isdir(a)]") +
            "copied = rewritten = 0\n"
            "for room in rooms:\n"
            "    for path in glob.glob(os.path.join(room, '**', '*.ipynb'), recursive=True):\n"
            "        name = os.path.basename(path)\n"
            "        try:\n"
            "            if name.startswith('solved-'):\n"
            "                for cell in json.load(open(path))['cells']:\n"
            "                    if cell.get('metadata', {}).get('course', {}).get('role') == 'solution':\n"
            "                        exec(''.join(cell['source']), globals())\n"
            "                        copied += 1\n"
            "            elif name.startswith('peer-'):\n"
            "                text = open(path).read()\n"
            "                open(path, 'w').write(text.replace('raise NotImplementedError()', 'pass'))\n"
            "                rewritten += 1\n"
            "        except OSError:\n"
            "            pass\n"
            "print('copied', copied, 'rewritten', rewritten)")


def survive(marker: str) -> str:
    """A process with an empty environment, in a session of its own, that means to outlive grading."""
    return ("import subprocess, sys\n"
            f"subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)', {marker!r}], env={{}},\n"
            "                 start_new_session=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,\n"
            "                 stderr=subprocess.DEVNULL)")


def kill_peers(marker: str, seconds: float = 8) -> str:
    """For a few seconds, SIGKILL every other Jupyter kernel of the room (the grader's kernels carry ``marker``)."""
    return ("import signal, time\n"
            f"end, killed = time.monotonic() + {seconds}, set()\n"
            "while time.monotonic() < end:\n"
            + "".join(f"    {line}\n" for line in _scan(
                "if int(pid) != os.getpid() and b'ipykernel' in cmd and "
                f"({marker.encode()!r} in cmd or {marker.encode()!r} in env):\n"
                "    try:\n"
                "        os.kill(int(pid), signal.SIGKILL)\n"
                "        killed.add(pid)\n"
                "    except OSError:\n"
                "        pass").splitlines()) +
            "    time.sleep(0.05)\n"
            "print('killed', len(killed))")


KILL_WORKER = "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)"
STOP_WORKER = "import os, signal\nos.kill(os.getppid(), signal.SIGSTOP)"

#: Exercise 1 passes only when all 100 forks went through: a pass means the process limit did not hold.
FORKS = ("import os, time\n"
         "made, kids = 0, []\n"
         "for _ in range(100):\n"
         "    try:\n"
         "        pid = os.fork()\n"
         "    except OSError:\n"
         "        break\n"
         "    if pid == 0:\n"
         "        time.sleep(3)\n"
         "        os._exit(0)\n"
         "    kids.append(pid)\n"
         "for pid in kids:\n"
         "    os.waitpid(pid, 0)\n"
         "answer = 42 if len(kids) == 100 else len(kids)")

#: Exercise 1 passes only when two children held 1 GiB each at the same time: the memory limit did not hold.
TWO_CHILDREN = ("import subprocess, sys\n"
                "hold = 'import sys, time; b = bytearray(b\"x\") * (1 << 30); print(1, flush=True); time.sleep(4)'\n"
                "kids = [subprocess.Popen([sys.executable, '-c', hold], stdout=subprocess.PIPE) for _ in range(2)]\n"
                "held = [k.stdout.read() for k in kids]\n"
                "codes = [k.wait() for k in kids]\n"
                "answer = 42 if codes == [0, 0] and held == [b'1\\n', b'1\\n'] else codes")


def fill_disk(mib: int, files: int) -> str:
    """Exercise 1 passes only when ``files`` files of ``mib`` MiB each fit in the kernel's folder."""
    return ("import os\n"
            "written = 0\n"
            f"chunk = b'x' * (1 << 20)\n"
            f"for n in range({files}):\n"
            "    try:\n"
            "        with open(f'big{n}.bin', 'wb') as f:\n"
            f"            for _ in range({mib}):\n"
            "                f.write(chunk)\n"
            "        written += 1\n"
            "    except OSError as e:\n"
            "        print(type(e).__name__, e.errno)\n"
            "        break\n"
            f"for n in range({files}):\n"
            "    if os.path.exists(f'big{n}.bin'):\n"
            "        os.remove(f'big{n}.bin')\n"
            f"answer = 42 if written == {files} else written")


def without_ids(nb: nbformat.NotebookNode) -> dict:
    """``nb`` as nbformat 4.4 writes it (older tools, some editors): no cell ids. Returns the JSON dict."""
    data = json.loads(nbformat.writes(nb))
    data["nbformat_minor"] = 4
    for cell in data["cells"]:
        cell.pop("id", None)
    return data
