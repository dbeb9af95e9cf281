"""The course in real JupyterLab in real Chromium, started the way `make lab` starts it.

One JupyterLab server serves a copy of the course (lessons, exercises, solutions, the teacher's live
demo, the landing page) with the course's settings from `jupyter-config/`, so the originals stay untouched.
The tests open the landing page and an exercise from it, run lesson 01 and its Chinese twin (zh-CN/) and look
at the result, open the Chinese landing page as `make lab-zh` does (a second server, JupyterLab's menus in
Chinese), and run the live demo and work its controls as a teacher would.

Needs Debian's chromium (/usr/bin/chromium) and Playwright for Python (only its driver: the
browser Playwright would download is not used). `.ci/run` installs both; elsewhere the tests are
skipped with a message saying how to get them. The screenshots land in $COURSE_ARTIFACTS
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
LANDING = "START_HERE.md"
COURSE = ["notebooks", "exercises", "solutions", "teaching", "docs", LANDING, "README.md",  # what a learner browses
          "zh-CN", "README.zh-CN.md"]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(os.environ.get("COURSE_ARTIFACTS", Path(tempfile.gettempdir()) / "course-artifacts"))
HOW = "install it with `apt-get install chromium` and `pip install playwright` (no `playwright install` needed)"
NEWS_PROMPT = "official Jupyter news"

playwright_api = pytest.importorskip("playwright.sync_api", reason=f"Playwright is missing: {HOW}")
if CHROMIUM is None:
    pytest.skip(f"Chromium is missing: {HOW}", allow_module_level=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(tmp: Path, config_path: str, landing: str):
    """Start JupyterLab like `make lab` (or `make lab-zh`) on a copy of the course; yield its URL and token."""
    course = tmp / "course"
    for name in COURSE:
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, course / name)
    port, token = _free_port(), "course-browser-test"
    # As `make lab`: the course's settings on JUPYTER_CONFIG_PATH, the course root as root, the landing page
    # to open. Only the user's own config (~/.jupyter) is swapped for an empty folder, so it cannot interfere.
    env = dict(os.environ, JUPYTER_CONFIG_PATH=config_path, JUPYTER_CONFIG_DIR=str(tmp / "config"),
               JUPYTER_RUNTIME_DIR=str(tmp / "runtime"))
    log = open(tmp / "lab.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={course}", str(course / landing),
         "--no-browser", "--allow-root", "--ip=127.0.0.1", f"--port={port}", f"--ServerApp.token={token}",
         "--LabApp.expose_app_in_browser=True", "--ServerApp.disable_check_xsrf=True"],
        stdout=log, stderr=subprocess.STDOUT, env=env, cwd=course)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
            break
        except OSError:
            if time.time() > deadline or proc.poll() is not None:
                proc.kill()
                pytest.fail("JupyterLab did not start:\n" + (tmp / "lab.log").read_text()[-3000:])
            time.sleep(0.5)
    yield base, token
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """Base URL and token of a JupyterLab started like `make lab`, on a copy of the course."""
    yield from _serve(tmp_path_factory.mktemp("lab"), str(ROOT / "jupyter-config"), LANDING)


@pytest.fixture(scope="module")
def lab_zh(tmp_path_factory):
    """The same, started like `make lab-zh`: the Chinese landing page, the zh-CN settings layered first."""
    config = f"{ROOT / 'jupyter-config' / 'zh-CN'}{os.pathsep}{ROOT / 'jupyter-config'}"
    yield from _serve(tmp_path_factory.mktemp("lab-zh"), config, "zh-CN/START_HERE.md")


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        yield b
        b.close()


def test_landing_page_opens_an_exercise_and_nothing_asks_about_news(lab, browser):
    base, token = lab
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{base}/lab/workspaces/landing/tree/{LANDING}?reset&token={token}")  # a workspace of its own
    # the landing page opens rendered (not as source), with one link per lesson, exercise and solution
    link = page.locator(".jp-RenderedMarkdown a", has_text="exercise 03")
    link.wait_for(timeout=60_000)
    assert page.evaluate("() => window.jupyterapp.shell.currentWidget.title.label") == LANDING
    assert page.locator(".jp-RenderedMarkdown a", has_text="solution 08").count() == 1
    link.click()
    page.wait_for_function("() => { const w = window.jupyterapp.shell.currentWidget;"
                           " return w && w.context && w.context.path === 'exercises/03_random_unstructured.ipynb'"
                           " && w.content && w.content.widgets.length > 0; }", timeout=60_000)
    page.locator(".jp-Notebook .jp-RenderedMarkdown h3", has_text="Exercise 1").first.wait_for(timeout=30_000)
    # the file browser, rooted at the course, lists exercises/ and solutions/ beside notebooks/
    listed = page.locator(".jp-DirListing-itemText").all_inner_texts()
    assert {"notebooks", "exercises", "solutions"} <= set(listed), listed
    # no news prompt: the course's setting says never, and none was shown
    fetch_news = page.evaluate("""async () => {
        const plugin = await window.jupyterapp.serviceManager.settings.fetch('@jupyterlab/apputils-extension:notification');
        return plugin.settings.fetchNews ?? plugin.schema.properties.fetchNews.default; }""")
    page.wait_for_timeout(1500)  # the prompt would appear right after the app is restored
    toasts = page.locator(".Toastify").all_inner_texts()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "exercise_03_from_landing_page.png"))
    page.close()
    assert fetch_news == "false"
    assert not any(NEWS_PROMPT in t for t in toasts), toasts


def test_make_lab_zh_shows_the_chinese_landing_page_in_jupyterlab_in_chinese(lab_zh, browser):
    """`make lab-zh`: JupyterLab's own menus come from the zh-CN language pack, the landing page is Chinese and
    its links open the Chinese exercises; the English settings (no news prompt) still apply beneath."""
    base, token = lab_zh
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(f"{base}/lab/workspaces/zh/tree/zh-CN/START_HERE.md?reset&token={token}")
    link = page.locator(".jp-RenderedMarkdown a", has_text="练习 03")
    link.wait_for(timeout=60_000)
    menus = page.locator(".lm-MenuBar-itemLabel").all_inner_texts()
    settings = page.evaluate("""async () => {
        const s = window.jupyterapp.serviceManager.settings;
        const t = await s.fetch('@jupyterlab/translation-extension:plugin');
        const n = await s.fetch('@jupyterlab/apputils-extension:notification');
        return [t.settings.locale ?? t.schema.properties.locale.default,
                n.settings.fetchNews ?? n.schema.properties.fetchNews.default]; }""")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "zh-CN_START_HERE.png"))
    link.click()
    page.wait_for_function("() => { const w = window.jupyterapp.shell.currentWidget;"
                           " return w && w.context && w.context.path === 'zh-CN/exercises/03_random_unstructured.ipynb'"
                           " && w.content && w.content.widgets.length > 0; }", timeout=60_000)
    page.locator(".jp-Notebook .jp-RenderedMarkdown h3", has_text="练习 1").first.wait_for(timeout=30_000)
    page.close()
    assert settings == ["zh_CN", "false"], settings
    assert "文件" in menus and "File" not in menus, menus


@pytest.mark.parametrize("path, title", [("notebooks/01_load_lenet.ipynb", "Load the trained LeNet"),
                                         ("zh-CN/notebooks/01_load_lenet.ipynb", "载入训练好的 LeNet")],
                         ids=["english", "chinese"])
def test_lesson_01_runs_in_jupyterlab_in_chromium(lab, browser, path, title):
    """Lesson 01 runs top to bottom in the browser, and so does its Chinese twin (issue 23)."""
    base, token = lab
    shot = ARTIFACTS / path.replace("/", "_").replace(".ipynb", ".png")
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{base}/lab/workspaces/lesson01-{len(path)}/tree/{path}?reset&token={token}")
    h1 = page.locator(".jp-Notebook .jp-RenderedMarkdown h1").first
    h1.wait_for(timeout=60_000)  # read before running: a long notebook renders only the cells in view
    heading = h1.inner_text()
    _run_all(page, path)
    n_code = page.evaluate("() => window.jupyterapp.shell.currentWidget.content.widgets"
                           ".filter(c => c.model.type === 'code').length")
    errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
    error_text = [errors.nth(i).inner_text()[:300] for i in range(errors.count())]
    images = page.locator(".jp-OutputArea-output img")
    assert images.count() >= 1, "no plot rendered as an image"
    images.first.scroll_into_view_if_needed()
    widths = images.evaluate_all("imgs => imgs.map(i => i.naturalWidth)")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shot), full_page=False)
    page.close()
    assert title in heading, heading
    assert n_code >= 8
    assert error_text == [], f"cells showed errors or warnings: {error_text}"
    assert all(w > 100 for w in widths), f"an image did not load: natural widths {widths}"
    assert shot.stat().st_size > 20_000
    print(f"screenshot: {shot}")


DEMO = "teaching/live_demo.ipynb"
#: The image of a widget as a PNG data URL, drawn from the pixels the browser decoded: two differ iff the pictures do.
PIXELS = """img => { const c = document.createElement('canvas');
                     c.width = img.naturalWidth; c.height = img.naturalHeight;
                     c.getContext('2d').drawImage(img, 0, 0); return c.toDataURL(); }"""


def _run_all(page, path):
    """Open ``path`` in JupyterLab, run all its cells and wait until every code cell ran and the kernel is idle."""
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    page.wait_for_function("path => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;"
                           " return w && w.context && w.context.path === path && w.sessionContext"
                           " && w.sessionContext.session; }", arg=path, timeout=60_000)
    page.evaluate("""async () => {
        const panel = window.jupyterapp.shell.currentWidget;
        await panel.sessionContext.ready;
        await window.jupyterapp.commands.execute('notebook:clear-all-cell-outputs');
        await window.jupyterapp.commands.execute('notebook:run-all-cells');
    }""")
    page.wait_for_function("""() => {
        const nb = window.jupyterapp.shell.currentWidget;
        const cells = nb.content.widgets.filter(c => c.model.type === 'code');
        return nb.sessionContext.session.kernel.status === 'idle'
            && cells.every(c => c.model.executionCount !== null);
    }""", timeout=180_000)


def _changes(page, locator, before, timeout=30):
    """Seconds until ``locator``'s text (or an image's pixels) differs from ``before``; fails after ``timeout``."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        now = locator.evaluate(PIXELS) if before.startswith("data:") else locator.inner_text()
        if now != before:
            return time.monotonic() - start, now
        page.wait_for_timeout(20)
    pytest.fail(f"{locator} did not change within {timeout} s")


def test_live_demo_redraws_as_the_teacher_moves_the_controls(lab, browser):
    base, token = lab
    start = time.monotonic()
    page = browser.new_page(viewport={"width": 1400, "height": 1900})  # a tall screen: the whole demo in one picture
    page.goto(f"{base}/lab/workspaces/demo/tree/{DEMO}?reset&token={token}")
    _run_all(page, DEMO)
    ran_all = time.monotonic() - start
    demo = page.locator(".jp-OutputArea-output .widget-vbox").first
    numbers, mask, status, tuned = (page.locator(f".live-{name}") for name in ("numbers", "mask", "status", "tuned"))
    demo.scroll_into_view_if_needed()
    numbers.wait_for(timeout=30_000)
    first_numbers, first_mask = numbers.inner_text(), mask.evaluate(PIXELS)
    assert "conv1 16 of 54" in first_numbers and "± " in first_numbers, first_numbers  # conv1 at 30%: round(16.2)

    # drag the amount slider's handle to the right, as a teacher would with the mouse
    handle = demo.locator(".widget-slider .noUi-handle").first
    box, track = handle.bounding_box(), demo.locator(".widget-slider .noUi-target").first.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(track["x"] + 0.9 * track["width"], box["y"] + box["height"] / 2, steps=12)
    page.mouse.up()
    seconds = {"amount: accuracy text": _changes(page, numbers, first_numbers)[0]}
    seconds["amount: mask image"], moved_mask = _changes(page, mask, first_mask)
    moved_numbers = numbers.inner_text()
    amount = demo.locator(".widget-slider .widget-readout").first.inner_text()
    assert int(amount) > 60, amount

    # another method: the accuracy and the mask change again
    demo.locator(".widget-dropdown select").first.select_option("L1 unstructured")
    seconds["method: accuracy text"] = _changes(page, numbers, moved_numbers)[0]
    seconds["method: mask image"] = _changes(page, mask, moved_mask)[0]

    # the hook at work: a third picture appears
    demo.locator("button", has_text="show the hook at work").click()
    page.wait_for_function("img => img.offsetWidth > 0 && img.naturalWidth > 100",
                           arg=page.locator(".live-hook").element_handle(), timeout=30_000)

    # fine-tune: a progress bar, then the accuracy won back; then a second run, stopped
    tune, stop = demo.locator("button", has_text="fine-tune 1 epoch"), demo.locator("button", has_text="stop")
    tune.click()
    demo.locator(".widget-output .progress-bar").first.wait_for(timeout=60_000)
    page.wait_for_function("el => el.innerText.includes('batches')", arg=tuned.element_handle(), timeout=120_000)
    finished = tuned.inner_text()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "live_demo.png"
    demo.scroll_into_view_if_needed()
    demo.screenshot(path=str(shot))
    tune.click()  # waits until the first run has given the button back
    stop.click()  # waits until the kernel has enabled it
    page.wait_for_function("el => el.innerText.includes('(stopped)')", arg=tuned.element_handle(), timeout=120_000)
    stopped = tuned.inner_text()

    errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
    error_text = [errors.nth(i).inner_text()[:300] for i in range(errors.count())]
    status_text = status.inner_text()
    page.close()
    assert "after 63 of 63 batches" in finished and "over the pruned model (paired)" in finished, finished
    assert "(stopped)" in stopped and "failed" not in stopped, stopped
    assert error_text == [], f"cells showed errors or warnings: {error_text}"
    assert status_text.startswith("redrawn in"), status_text  # not "redraw failed: ..."
    assert shot.stat().st_size > 20_000
    print(f"live demo: run all {ran_all:.0f} s; from the move to the view: "
          f"{', '.join(f'{k} {v:.2f} s' for k, v in seconds.items())}; kernel: {status_text}; "
          f"whole test {time.monotonic() - start:.0f} s; screenshot: {shot}")
