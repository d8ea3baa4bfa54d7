"""Text that users supply reaches ``report.html`` only as text, never as markup.

Every field a user or a run controls (title, task strings, optimizer and run
names, config values, stop reasons, diagnostics) carries a sentinel that opens a
tag (``<zq``) and one that closes an attribute (``"zq``); neither may survive
unescaped, whatever other characters surround it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from descend.report import write_run

TAG, QUOTE = "<zq", '"zq'
text = st.text(max_size=12)


def hostile(draw) -> str:
    return draw(text) + TAG + draw(text) + QUOTE + draw(text) + "'zq&</script>" + draw(text)


@st.composite
def report_inputs(draw):
    h = lambda: hostile(draw)
    task = {
        "name": h(),
        "summary": h(),
        "data_source": h(),
        "model_summary": h(),
        "target": {"metric": "val_loss", "value": 0.1, "mode": "min"},
    }
    run = {
        "optimizer": h(),
        "seed": 0,
        "lr": 0.1,
        "lr_source": h(),
        "config": {h(): h()},
        "history": {"steps": [], "epochs": [], "stop_reason": h()},
        "summary": {"final": {"val_loss": 0.5}, "best": {"val_loss": 0.4}},
    }
    config = {"schedule": h(), "run_name": h(), h(): [h(), h()]}
    diagnostics = [{"optimizer": h(), "verdict": h(), "evidence": {h(): h()}}]
    return task, run, config, diagnostics, h()


@settings(max_examples=25, deadline=None)
@given(report_inputs())
def test_user_text_never_becomes_markup(inputs) -> None:
    task, run, config, diagnostics, title = inputs
    with tempfile.TemporaryDirectory() as folder:
        written = write_run(
            Path(folder), task=task, runs=[run], config=config, title=title,
            diagnostics=diagnostics, tensorboard=False,
        )  # fmt: skip
        page = written["report"].read_text(encoding="utf-8")
        saved = yaml.safe_load(written["config"].read_text(encoding="utf-8"))
    assert TAG not in page and QUOTE not in page and "</script>" not in page
    assert "&lt;zq" in page and "&quot;zq" in page
    # config.yaml keeps the user's text exactly (it is data, not markup).
    assert saved["schedule"] == config["schedule"] and saved["run_name"] == config["run_name"]
