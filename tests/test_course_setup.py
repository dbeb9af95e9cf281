"""What a learner's machine sees before any lesson runs: `make lab`, the install claims, stored outputs."""
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
MAKE = shutil.which("make")
needs_make = pytest.mark.skipif(MAKE is None, reason="make is not installed")


def _make_n(*args: str, tmp_path: Path) -> str:
    """The commands `make -n` would run, for a venv that does not exist yet (nothing is executed)."""
    res = subprocess.run([MAKE, "-n", "--no-print-directory", *args, f"VENV={tmp_path / 'venv'}"], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    return res.stdout


# --- item 1 and 2: make lab opens the course root on a landing page, with the course's settings ---

@needs_make
def test_make_lab_roots_jupyterlab_at_the_course_and_opens_the_landing_page(tmp_path):
    lab = _make_n("lab", tmp_path=tmp_path).split("jupyter lab", 1)[1]
    assert f'--ServerApp.root_dir="{ROOT}"' in lab and lab.split()[-1] == "START_HERE.md"
    assert "notebooks/" not in lab


@needs_make
def test_make_lab_uses_the_course_settings_that_turn_off_news_and_update_checks(tmp_path):
    assert f'JUPYTER_CONFIG_PATH="{ROOT}/jupyter-config' in _make_n("lab", tmp_path=tmp_path)
    overrides = json.loads((ROOT / "jupyter-config/labconfig/default_setting_overrides.json").read_text())
    assert overrides["@jupyterlab/apputils-extension:notification"] == {"fetchNews": "false", "checkForUpdates": False}
    server = json.loads((ROOT / "jupyter-config/jupyter_server_config.json").read_text())
    assert server["LabApp"] == {"news_url": None, "check_for_updates_class": "jupyterlab.NeverCheckForUpdate"}


@needs_make
def test_make_lab_zh_opens_the_chinese_landing_page_with_jupyterlab_in_chinese(tmp_path):
    lab = _make_n("lab-zh", tmp_path=tmp_path)
    assert f'JUPYTER_CONFIG_PATH="{ROOT}/jupyter-config/zh-CN:{ROOT}/jupyter-config' in lab
    assert lab.split()[-1] == "zh-CN/START_HERE.md" and (ROOT / "zh-CN/START_HERE.md").is_file()
    overrides = json.loads((ROOT / "jupyter-config/zh-CN/labconfig/default_setting_overrides.json").read_text())
    assert overrides == {"@jupyterlab/translation-extension:plugin": {"locale": "zh_CN"}}
    pins = (ROOT / "requirements.txt").read_text()
    assert "jupyterlab-language-pack-zh-cn==" in pins


def test_landing_page_links_every_lesson_exercise_and_solution():
    text = (ROOT / "START_HERE.md").read_text(encoding="utf-8")
    links = set(re.findall(r"\]\(([^)#]+)\)", text))
    for folder in ("notebooks", "exercises", "solutions"):
        for nb in sorted((ROOT / folder).glob("*.ipynb")):
            assert f"{folder}/{nb.name}" in links, f"START_HERE.md does not link {folder}/{nb.name}"
    assert all((ROOT / link).exists() for link in links), links


# --- item 3: nothing a lesson prints depends on the torch build, the OS or the Python version ---

BUILD_SPECIFIC = {
    "a local version tag (+cpu, +cu130)": r"\b\d+\.\d+\.\d+\+[a-z]\w*",
    "the Python version": r"\b[Pp]ython 3\.\d+|\b3\.1[0-9]\.\d+\b|python3\.\d+",
    "the operating system": r"\b(Linux|linux|Darwin|darwin|Windows|win32|x86_64|aarch64|arm64)\b",
    "a path of this machine": r"(/work/|/home/|/Users/|/root/|site-packages|\.venv|C:\\\\)",
}


@pytest.mark.parametrize("folder", ["notebooks", "solutions", "teaching"])
def test_stored_outputs_do_not_depend_on_the_build_os_or_python(folder):
    found = []
    for path in sorted((ROOT / folder).glob("*.ipynb")):
        for i, cell in enumerate(nbformat.read(path, as_version=4).cells):
            for out in cell.get("outputs", []):
                text = out.get("text", "") + str(out.get("data", {}).get("text/plain", "")) + "".join(out.get("traceback", []))
                for what, pattern in BUILD_SPECIFIC.items():
                    if m := re.search(pattern, text):
                        found.append(f"{path.name} cell {i}: {what}: {m.group(0)!r}")
    assert found == []


# --- item 4: the Python versions claimed are the ones that install ---

def test_python_requirement_is_311_everywhere():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == ">=3.11"
    for doc in ("README.md", "docs/teaching.md"):
        text = (ROOT / doc).read_text(encoding="utf-8")
        assert "3.10+" not in text and not re.search(r"3\.10\S* works", text), f"{doc} still says Python 3.10 works"
        assert "Python 3.11, 3.12 or 3.13" in text, doc


def _python310() -> str | None:
    candidates = [shutil.which("python3.10"), *sorted(Path.home().glob(".pyenv/versions/3.10*/bin/python3.10"))]
    for c in filter(None, candidates):
        res = subprocess.run([str(c), "--version"], capture_output=True, text=True)
        if res.returncode == 0 and res.stdout.startswith("Python 3.10"):
            return str(c)
    return None


@needs_make
def test_make_refuses_python_310_with_a_clear_message_before_creating_anything(tmp_path):
    py310 = _python310()
    if py310 is None:
        pytest.skip("no Python 3.10 on this machine")
    res = subprocess.run([MAKE, "venv", f"PYTHON={py310}", f"VENV={tmp_path / 'venv'}"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode != 0
    assert "The course needs Python 3.11 or newer (its pinned numpy 2.4.6 does)" in res.stdout + res.stderr
    assert "is Python 3.10" in res.stdout and not (tmp_path / "venv").exists()


# --- item 5: an honest word about the torch download, and a one-word CPU-only path ---

@needs_make
def test_make_torch_cpu_installs_the_cpu_build_of_the_pinned_torch_first(tmp_path):
    pin = re.search(r"^torch==(\S+)", (ROOT / "requirements.txt").read_text(), re.M).group(1)
    cpu = _make_n("venv", "TORCH_CPU=1", tmp_path=tmp_path).splitlines()
    torch_line = next(i for i, line in enumerate(cpu) if "--index-url" in line)
    assert f"pip install --quiet torch=={pin} --index-url https://download.pytorch.org/whl/cpu" in cpu[torch_line]
    assert "-r requirements.txt" in cpu[torch_line + 1]
    assert "--index-url" not in _make_n("venv", tmp_path=tmp_path)  # opt-in only


def test_requirements_say_what_pip_really_fetches():
    comment = " ".join(line.lstrip("# ") for line in (ROOT / "requirements.txt").read_text().splitlines() if line.startswith("#"))
    assert "this exact pin takes the CPU wheel" not in comment
    for needed in ("Linux", "CUDA", "macOS", "Windows", "TORCH_CPU=1", "https://download.pytorch.org/whl/cpu"):
        assert needed in comment, needed


# --- item 6: CI tests every supported Python ---

def test_github_workflow_tests_python_311_312_313():
    text = (ROOT / ".github/workflows/test.yml").read_text()
    matrix = re.search(r"python-version:\s*\[([^\]]*)\]", text)
    assert matrix, "no python-version matrix"
    versions = {v.strip().strip("'\"") for v in matrix.group(1).split(",")}
    assert {"3.11", "3.12", "3.13"} <= versions
    assert "${{ matrix.python-version }}" in text
