"""Open a lesson in real JupyterLab in real Chromium, run all cells, and look at the result.

Needs Debian's chromium (/usr/bin/chromium) and Playwright for Python (only its driver: the
browser Playwright would download is not used). `.ci/run` installs both; elsewhere the test is
skipped with a message saying how to get them. The screenshot lands in $COURSE_ARTIFACTS
(default: a `course-artifacts` folder in the system temp dir), never in the repository.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = "01_load_lenet.ipynb"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(os.environ.get("COURSE_ARTIFACTS", Path(tempfile.gettempdir()) / "course-artifacts"))
HOW = "install it with `apt-get install chromium` and `pip install playwright` (no `playwright install` needed)"

playwright_api = pytest.importorskip("playwright.sync_api", reason=f"Playwright is missing: {HOW}")
if CHROMIUM is None:
    pytest.skip(f"Chromium is missing: {HOW}", allow_module_level=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def lab(tmp_path):
    """A JupyterLab server on 127.0.0.1 serving a copy of the notebook (the original stays untouched)."""
    shutil.copy(ROOT / "notebooks" / NOTEBOOK, tmp_path / NOTEBOOK)
    port, token = _free_port(), "course-browser-test"
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"), JUPYTER_CONFIG_DIR=str(tmp_path / "config"))
    log = open(tmp_path / "lab.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ip=127.0.0.1", f"--port={port}",
         f"--ServerApp.token={token}", f"--ServerApp.root_dir={tmp_path}", "--LabApp.expose_app_in_browser=True",
         "--ServerApp.disable_check_xsrf=True", "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        stdout=log, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
            break
        except OSError:
            if time.time() > deadline or proc.poll() is not None:
                proc.kill()
                pytest.fail("JupyterLab did not start:\n" + (tmp_path / "lab.log").read_text()[-3000:])
            time.sleep(0.5)
    yield f"{base}/lab/tree/{NOTEBOOK}?token={token}"
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def test_lesson_01_runs_in_jupyterlab_in_chromium(lab):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "01_load_lenet.png"
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(lab)
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
        page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
                               " && window.jupyterapp.shell.currentWidget.sessionContext.session", timeout=60_000)
        page.evaluate("""async () => {
            const panel = window.jupyterapp.shell.currentWidget;
            await panel.sessionContext.ready;
            await window.jupyterapp.commands.execute('notebook:clear-all-cell-outputs');
            await window.jupyterapp.commands.execute('notebook:run-all-cells');
        }""")
        # every code cell has an execution count and the kernel is idle again
        page.wait_for_function("""() => {
            const nb = window.jupyterapp.shell.currentWidget;
            const cells = nb.content.widgets.filter(c => c.model.type === 'code');
            return nb.sessionContext.session.kernel.status === 'idle'
                && cells.every(c => c.model.executionCount !== null);
        }""", timeout=180_000)
        n_code = page.evaluate("() => window.jupyterapp.shell.currentWidget.content.widgets"
                               ".filter(c => c.model.type === 'code').length")
        errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
        error_text = [errors.nth(i).inner_text()[:300] for i in range(errors.count())]
        images = page.locator(".jp-OutputArea-output img")
        assert images.count() >= 1, "no plot rendered as an image"
        images.first.scroll_into_view_if_needed()
        widths = images.evaluate_all("imgs => imgs.map(i => i.naturalWidth)")
        page.screenshot(path=str(shot), full_page=False)
        browser.close()
    assert n_code >= 8
    assert error_text == [], f"cells showed errors or warnings: {error_text}"
    assert all(w > 100 for w in widths), f"an image did not load: natural widths {widths}"
    assert shot.stat().st_size > 20_000
    print(f"screenshot: {shot}")
