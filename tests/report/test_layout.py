"""The comparison report at 1400 x 900 in headless Chromium: no sideways scrolling, every figure shown.

The report itself has no script (it must open anywhere, from disk); the test renders a
copy with a few lines of JavaScript appended that write the measurements into the page,
which ``--dump-dom`` then returns.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from descend.comparison import compare

PROBE = """
<script>
const doc = document.documentElement;
const wide = [...document.querySelectorAll('main *')]
  .filter(e => e.scrollWidth > e.clientWidth + 1 && getComputedStyle(e).overflowX !== 'visible')
  .map(e => e.tagName + '.' + e.className);
const images = [...document.images].map(i => ({
  w: i.naturalWidth, shown: i.getBoundingClientRect().width, right: i.getBoundingClientRect().right
}));
const out = document.createElement('pre');
out.id = 'probe';
out.textContent = JSON.stringify({
  scroll: doc.scrollWidth, client: doc.clientWidth, wide: wide, images: images
});
document.body.appendChild(out);
</script>
"""


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.slow
def test_the_comparison_report_fits_1400_pixels_and_shows_every_figure(tmp_path: Path) -> None:
    browser = _chromium()
    if browser is None:
        pytest.skip("chromium not installed")
    out = tmp_path / "cmp"
    # The default comparison (deep_sigmoid, the six seed optimizers), shortened to two
    # seeds of two epochs, with tuning so that every kind of figure is drawn.
    optimizers = ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam"]
    compare("deep_sigmoid", optimizers, out=out, seeds=[0, 1], epochs=2, budget=2)
    page = (out / "report.html").read_text()
    probe_page = tmp_path / "probe.html"
    probe_page.write_text(page.replace("</body>", PROBE + "</body>"))
    command = [
        browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1400,900",
        "--virtual-time-budget=5000", "--dump-dom", probe_page.resolve().as_uri(),
    ]  # fmt: skip
    dom = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True).stdout
    found = re.search(r'<pre id="probe">(.*?)</pre>', dom, re.DOTALL)
    assert found, dom[-2000:]
    probe = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert probe["scroll"] <= probe["client"], probe  # no horizontal scrollbar on the page
    assert probe["wide"] == [], probe["wide"]  # nor inside it (a table scrolling sideways)
    figures = ["loss", "validation", "lr", "tuning", "gradients"]
    assert len(probe["images"]) == len(figures), probe["images"]
    for image in probe["images"]:
        assert image["w"] > 0 and image["shown"] > 300 and image["right"] <= probe["client"]
