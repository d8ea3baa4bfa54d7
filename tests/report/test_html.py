"""report.html: user text is escaped, and a real browser renders it with its figures."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib.image import imread
from report_synthetic import TASK

from descend.report import write_run

HOSTILE = "<script>alert('x')</script>"


def _bare_run(optimizer: str) -> dict[str, Any]:
    # No history: no figures to draw, so the test is about the page text only.
    return {
        "optimizer": optimizer,
        "seed": 0,
        "lr": 0.1,
        "lr_source": "<i>command line</i>",
        "config": {"note": HOSTILE},
        "history": {"steps": [], "epochs": [], "stop_reason": "stopped <b>early</b> & fast"},
        "summary": {"final": {"val_accuracy": 0.5}, "best": {"val_accuracy": 0.6}},
    }


def test_user_text_is_escaped(tmp_path: Path) -> None:
    task = {**TASK, "summary": "<img src=x onerror=alert(1)>", "model_summary": "a<b"}
    written = write_run(
        tmp_path,
        task=task,
        runs=[_bare_run("<b>evil</b>")],
        config={"schedule": HOSTILE},
        title="<h1>title</h1>",
        diagnostics=[{"optimizer": "<u>o</u>", "verdict": HOSTILE, "evidence": {"<k>": "<v>"}}],
        tensorboard=False,
    )
    page = written["report"].read_text()
    for raw in (
        "<script",
        "<img src=x",
        "<b>evil",
        "<i>command",
        "<b>early",
        "<h1>title",
        "<u>o",
        "<k>",
        "<v>",
        "a<b",
    ):
        assert raw not in page, raw
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "&lt;b&gt;evil&lt;/b&gt;" in page
    assert "stopped &lt;b&gt;early&lt;/b&gt; &amp; fast" in page
    assert "Diagnostics" in page


def test_diagnostics_section_only_when_given(tmp_path: Path) -> None:
    written = write_run(
        tmp_path, task=dict(TASK), runs=[_bare_run("adam")], config={}, tensorboard=False
    )
    assert "Diagnostics" not in written["report"].read_text()


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _headless(browser: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)


def _near(pixels: np.ndarray, rgb: tuple[int, int, int]) -> int:
    """How many pixels are within a small distance of the color ``rgb`` (0-255)."""
    return int((np.abs(pixels[..., :3] * 255 - np.array(rgb)).max(axis=-1) < 12).sum())


def test_headless_chromium_renders_every_figure(
    report_folder: tuple[Path, dict[str, Path]], tmp_path: Path
) -> None:
    browser = _chromium()
    if browser is None:
        pytest.skip("chromium not installed")
    report = report_folder[1]["report"]
    url = report.resolve().as_uri()

    dom = _headless(browser, tmp_path / "profile-dom", "--dump-dom", url).stdout
    assert dom.count('<img src="data:image/png;base64,') == 3
    assert "Results" in dom

    shot = tmp_path / "shot.png"
    _headless(
        browser, tmp_path / "profile-shot", "--window-size=1300,4200", f"--screenshot={shot}", url
    )
    pixels = imread(shot)
    assert pixels.std() > 0.05  # not a blank page
    # The plot line colors (tab:blue, tab:orange) appear only if the embedded PNGs decoded;
    # the page's own CSS uses neither.
    assert _near(pixels, (31, 119, 180)) > 500
    assert _near(pixels, (255, 127, 14)) > 500
