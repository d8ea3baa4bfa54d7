"""The explorer page in headless Chromium (Debian's, driven by Playwright): it loads, reacts, teaches.

Skipped only when Chromium or Playwright is absent (``.ci/run`` installs both). With
``DESCEND_EXPLORE_SHOTS=DIR`` the lesson screenshots are also written to DIR (that is
how the ones in docs/explore.md are made).
"""

from __future__ import annotations

import os
import shutil
import socket
import statistics
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the explore extra (fastapi) is not installed")
uvicorn = pytest.importorskip("uvicorn", reason="the explore extra (uvicorn) is not installed")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    pytest.skip("chromium is not installed (apt-get install chromium)", allow_module_level=True)

from descend.cli.main import main
from descend.explore.lessons import LESSON_KEYS
from descend.explore.server import create_app

SHOTS = ("lr_too_large", "momentum_ravine", "phase")  # the lessons pictured in docs/explore.md


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


def _page(browser: object, errors: list[str]) -> object:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    return page


def _settled(page: object, redraws: int) -> None:
    """Wait until the page has redrawn past ``redraws`` and no run is in flight."""
    page.wait_for_function(
        f"window.exploreState.redraws > {redraws} && !window.exploreState.busy", timeout=60_000
    )


def _state(page: object, expr: str) -> object:
    return page.evaluate(f"window.exploreState.{expr}")


def _trace_x(page: object, i: int) -> list[float]:
    return page.evaluate(f"document.getElementById('map').data[{i}].x")


def _move(page: object, selector: str, position: int) -> int:
    before = _state(page, "redraws")
    page.eval_on_selector(
        selector, f"el => {{ el.value = {position}; el.dispatchEvent(new Event('input')); }}"
    )
    _settled(page, before)
    return before


def test_explorer_page(browser: object, url: str, tmp_path: Path) -> None:
    errors: list[str] = []
    page = _page(browser, errors)
    page.goto(url)
    page.wait_for_selector("body[data-ready='1']", timeout=60_000)
    assert page.locator("#verdicts li").count() == 3

    # Moving gd's learning-rate slider changes gd's drawn path (trace 1; trace 0 is the map).
    before = _trace_x(page, 1)
    _move(page, ".opt[data-index='0'] input[data-param='lr']", 300)
    assert _trace_x(page, 1) != before

    # Clicking the map moves the start, and every path then begins there.
    start = _state(page, "start")
    box = page.locator("#map .nsewdrag").first.bounding_box()
    redraws = _state(page, "redraws")
    page.mouse.click(box["x"] + box["width"] * 0.8, box["y"] + box["height"] * 0.2)
    _settled(page, redraws + 2)  # every run redrawn
    moved = _state(page, "start")
    assert moved != start and moved[0] > 0 and moved[1] > 0  # upper right quadrant of the map
    assert _trace_x(page, 1)[0] == pytest.approx(moved[0])

    # The replay walks every path from its start and ends on the whole path again.
    page.click("#replay")
    page.wait_for_function("window.exploreState.replays === 1", timeout=60_000)
    assert _trace_x(page, 1)[0] == pytest.approx(moved[0])

    # 6 optimizers x 300 steps: the time from a slider move to the finished redraw.
    for _ in range(3):
        page.click("#add")
    page.eval_on_selector(
        "#steps", "el => { el.value = 300; el.dispatchEvent(new Event('change')); }"
    )
    page.wait_for_function(
        "document.querySelectorAll('#verdicts li').length === 6 && !window.exploreState.busy"
        " && document.getElementById('map').data.filter(t => t.mode === 'lines').length === 6",
        timeout=60_000,
    )
    lengths = page.evaluate(
        "document.getElementById('map').data.filter(t => t.mode === 'lines').map(t => t.x.length)"
    )
    assert max(lengths) == 301 and len(lengths) == 6  # start + 300 steps (some stop earlier)
    times, fetches, draws = [], [], []
    for position in (200, 400, 600, 250, 450):
        _move(page, ".opt[data-index='3'] input[data-param='lr']", position)
        times.append(_state(page, "lastRedrawMs"))
        fetches.append(_state(page, "lastFetchMs"))
        draws.append(_state(page, "lastDrawMs"))
    median = statistics.median(times)
    print(
        f"\nexplore redraw, 6 optimizers x 300 steps, slider to drawn: median {median:.0f} ms "
        f"(each: {', '.join(f'{t:.0f}' for t in times)}); of it, the server's run: median "
        f"{statistics.median(fetches):.0f} ms, the drawing: median {statistics.median(draws):.0f} ms"
    )
    assert median < 5000  # the target is ~200 ms; this bound only catches a hang on a loaded CI box

    # A setting past the stability limit is labelled diverged.
    page.select_option("#terrain", "quadratic")
    _settled(page, _state(page, "redraws"))
    _move(page, ".opt[data-index='0'] input[data-param='lr']", 1000)  # gd at lr = 1 > 2/λmax
    first = page.locator("#verdicts li").first
    assert (
        first.get_attribute("data-kind") == "diverged" and "diverged at step" in first.inner_text()
    )
    assert errors == []

    # A request the server refuses: the page shows the server's message. (The controls only
    # offer valid values, so the test adds a terrain name the server does not know.)
    page.evaluate(
        "() => { const s = document.getElementById('terrain'); s.append(new Option('volcano'));"
        " s.value = 'volcano'; s.dispatchEvent(new Event('change')); }"
    )
    page.wait_for_selector("#error", state="visible")
    shown = page.inner_text("#error")
    assert "The 'terrain' field" in shown and "Got 'volcano'" in shown


def test_every_lesson_renders(browser: object, url: str) -> None:
    errors: list[str] = []
    page = _page(browser, errors)
    page.goto(url)
    page.wait_for_selector("body[data-ready='1']", timeout=60_000)
    shots = os.environ.get("DESCEND_EXPLORE_SHOTS")
    for key in LESSON_KEYS:
        page.click(f"button[data-lesson='{key}']")
        page.wait_for_selector(f"#lesson[data-ready='{key}']", timeout=90_000)
        page.wait_for_function("!window.exploreState.busy", timeout=60_000)
        figure = page.evaluate("document.getElementById('lesson-fig').style.display") == "block"
        drawn = page.evaluate(
            "(figure) => { const el = document.getElementById(figure ? 'lesson-fig' : 'map');"
            " return el.data ? el.data.length : 0; }",
            figure,
        )
        assert drawn > 0, key
        assert page.locator("#lesson-text").inner_text().strip(), key
        if key == "lr_too_large":
            assert page.locator("#verdicts li[data-kind='diverged']").count() == 1
        if shots and key in SHOTS:
            Path(shots).mkdir(parents=True, exist_ok=True)
            page.set_viewport_size({"width": 1400, "height": 1450})  # down to the verdicts
            page.wait_for_timeout(500)  # the plots resize to the new window
            page.screenshot(path=str(Path(shots) / f"{key}.png"))
            page.set_viewport_size({"width": 1400, "height": 1000})
    # The batch-size slider of the batch lesson redraws its figure.
    page.click("button[data-lesson='batch']")
    page.wait_for_selector("#lesson[data-ready='batch']")
    page.eval_on_selector(
        "#lesson-controls input", "el => { el.value = 0; el.dispatchEvent(new Event('input')); }"
    )
    page.wait_for_function("document.getElementById('lesson-fig').data.length === 3")
    assert errors == []


def test_learn_page_opens_from_disk(browser: object, tmp_path: Path) -> None:
    main(["learn", "--out", str(tmp_path)])
    html = (tmp_path / "lessons.html").read_text()
    assert "<script src=" not in html and "http://" not in html.split("<script>")[0]
    errors: list[str] = []
    page = _page(browser, errors)
    page.goto((tmp_path / "lessons.html").as_uri())
    page.wait_for_selector("body[data-ready='1']", timeout=60_000)
    for key in LESSON_KEYS:
        assert page.locator(f"#{key} .js-plotly-plot").count() >= 1, key
    assert errors == []
