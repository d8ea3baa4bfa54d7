"""write_run on a synthetic comparison: every file exists and reads back as documented."""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from report_synthetic import TASK, make_run

from descend._validation import InvalidParameterError
from descend.report import (
    summarize_runs,
    tensorboard_available,
    write_run,
    write_single_run,
    write_tensorboard,
)
from descend.report.metrics_table import KEY_COLUMNS

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

Folder = tuple[Path, dict[str, Path]]


def test_every_documented_file_is_written(report_folder: Folder) -> None:
    folder, written = report_folder
    for key, name in [
        ("config", "config.yaml"),
        ("metrics", "metrics.csv"),
        ("summary", "summary.json"),
        ("report", "report.html"),
        ("loss", "loss.png"),
        ("validation", "validation.png"),
        ("lr", "lr.png"),
    ]:
        assert written[key] == folder / name
        assert (folder / name).stat().st_size > 0
    # Atomic writes leave no temporary files behind.
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


def test_config_yaml_says_what_was_asked(report_folder: Folder) -> None:
    folder, _ = report_folder
    config = yaml.safe_load((folder / "config.yaml").read_text())
    assert config["task"] == "digits"
    assert config["optimizers"] == ["sgd", "adam"]
    assert config["seeds"] == [0, 1]
    assert config["lrs"]["adam"] == {"lr": 0.001, "source": "task default table"}
    assert config["epochs"] == 3 and config["batch_size"] == 32 and config["schedule"] == "constant"
    assert {"descend", "torch", "python"} <= set(config["versions"])
    assert len(config["runs"]) == 4


def test_metrics_csv_is_long_format_with_epochs_merged(report_folder: Folder) -> None:
    folder, _ = report_folder
    with open(folder / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    header = list(rows[0])
    assert header[: len(KEY_COLUMNS)] == list(KEY_COLUMNS)
    assert header[len(KEY_COLUMNS) :] == [
        "loss",
        "lr",
        "grad_norm",
        "train_loss",
        "val_loss",
        "train_accuracy",
        "val_accuracy",
    ]
    assert len(rows) == 4 * 90  # 2 optimizers x 2 seeds x 90 steps
    adam0 = [r for r in rows if r["optimizer"] == "adam" and r["seed"] == "0"]
    assert [int(r["step"]) for r in adam0] == list(range(1, 91))
    # Epoch metrics sit only on the step where each epoch ended.
    with_epoch = [int(r["step"]) for r in adam0 if r["val_accuracy"]]
    assert with_epoch == [30, 60, 90]


def test_summary_json_has_final_and_best_per_optimizer(report_folder: Folder) -> None:
    folder, _ = report_folder
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["target"] == TASK["target"]
    assert summary["task"]["name"] == "digits"
    assert summary["best_optimizer"] == "adam"
    for name in ("sgd", "adam"):
        per = summary["optimizers"][name]
        final, best = per["final"]["val_accuracy"], per["best"]["val_accuracy"]
        assert final["n"] == 2 and len(final["values"]) == 2
        assert final["mean"] == pytest.approx(sum(final["values"]) / 2)
        assert final["std"] == pytest.approx(
            abs(final["values"][0] - final["values"][1]) / math.sqrt(2)
        )
        assert best["max"] >= final["min"]
        assert per["stop_reasons"] == ["finished 3 epochs"] * 2
        assert per["seconds_per_step"]["mean"] == pytest.approx(0.01)
    assert summary["optimizers"]["adam"]["reached_target"] == 2
    assert summary["optimizers"]["sgd"]["reached_target"] == 0
    assert summary["optimizers"]["sgd"]["steps_to_target"]["mean"] is None


def test_pngs_are_valid_and_not_trivial(report_folder: Folder) -> None:
    folder, _ = report_folder
    for name in ("loss.png", "validation.png", "lr.png"):
        data = (folder / name).read_bytes()
        assert data[:8] == PNG_MAGIC
        width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        assert width >= 600 and height >= 300
        assert len(data) > 15_000  # a blank figure compresses to a few kB


def test_report_html_is_self_contained(report_folder: Folder) -> None:
    folder, _ = report_folder
    page = (folder / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 3
    assert "http://" not in page and "https://" not in page
    assert "<script" not in page.lower()
    assert not re.search(r"""(src|href)\s*=\s*["'](?!data:)""", page)
    # The best row is marked and the lr source is shown.
    assert '<tr class="best"><td class="name">adam' in page
    assert "task default table" in page


@pytest.mark.skipif(not tensorboard_available(), reason="tensorboard is an optional extra")
def test_tensorboard_events_one_folder_per_run(report_folder: Folder) -> None:
    _folder, written = report_folder
    runs = sorted(p.name for p in written["tensorboard"].iterdir())
    assert runs == ["adam-seed0", "adam-seed1", "sgd-seed0", "sgd-seed1"]
    assert all(
        any(
            f.name.startswith("events.out.tfevents") for f in (written["tensorboard"] / r).iterdir()
        )
        for r in runs
    )


def test_single_run_folder(tmp_path: Path) -> None:
    run = make_run("adam", 3, lr=0.002, rate=0.04)
    written = write_single_run(
        tmp_path, task=dict(TASK), run=run, config={"command": "train"}, tensorboard=False
    )
    assert "tensorboard" not in written
    summary = json.loads(written["summary"].read_text())
    assert list(summary["optimizers"]) == ["adam"]
    assert summary["optimizers"]["adam"]["final"]["val_accuracy"]["std"] == 0.0
    page = written["report"].read_text()
    assert "digits: adam (lr 0.002, seed 3)" in page


def test_diverged_run_gives_valid_json(tmp_path: Path) -> None:
    run: dict[str, Any] = make_run("sgd", 0, lr=10.0, rate=0.01)
    run["summary"]["final"]["val_loss"] = float("nan")
    run["history"]["steps"][-1]["loss"] = float("inf")
    run["history"]["stop_reason"] = "loss became non-finite"
    written = write_run(tmp_path, task=dict(TASK), runs=[run], config={}, tensorboard=False)
    summary = json.loads(written["summary"].read_text())  # strict JSON: no NaN tokens
    assert summary["optimizers"]["sgd"]["final"]["val_loss"]["mean"] is None
    assert "inf" in written["metrics"].read_text()


def test_config_yaml_keeps_text_with_yaml_line_breaks(tmp_path: Path) -> None:
    # PyYAML writes NEL, LINE SEPARATOR and PARAGRAPH SEPARATOR raw when asked for Unicode
    # and reads them back as spaces; names with them must still read back exactly.
    names = {"run_name": "a\x85", "note": "b\u2028c\u2029", "plain": "café"}
    run = make_run("adam", 0, lr=0.001, rate=0.04)
    written = write_run(tmp_path, task=dict(TASK), runs=[run], config=names, tensorboard=False)
    saved = yaml.safe_load(written["config"].read_text(encoding="utf-8"))
    assert {k: saved[k] for k in names} == names


def test_summary_falls_back_to_history() -> None:
    run = make_run("adam", 0, lr=0.001, rate=0.04)
    del run["summary"]
    per = summarize_runs(TASK, [run])["optimizers"]["adam"]
    last = run["history"]["epochs"][-1]
    assert per["final"]["val_accuracy"]["mean"] == pytest.approx(last["val_accuracy"])
    assert per["best"]["val_loss"]["mean"] == pytest.approx(
        min(e["val_loss"] for e in run["history"]["epochs"])
    )


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"runs": []}, "'runs' parameter of write_run"),
        ({"runs": ["adam"]}, "'runs' parameter of write_run"),
        ({"task": {"summary": "no name"}}, "'task' parameter of write_run"),
        ({"config": None}, "'config' parameter of write_run"),
    ],
)
def test_bad_input_is_one_clear_error(tmp_path: Path, kwargs: dict[str, Any], words: str) -> None:
    arguments: dict[str, Any] = {
        "task": dict(TASK),
        "runs": [make_run("adam", 0, lr=1e-3, rate=0.04)],
        "config": {},
    }
    arguments.update(kwargs)
    with pytest.raises(InvalidParameterError, match=words):
        write_run(tmp_path, **arguments)


@pytest.mark.skipif(not tensorboard_available(), reason="tensorboard is an optional extra")
def test_tensorboard_rewrite_replaces_old_events(tmp_path: Path) -> None:
    run = make_run("adam", 0, lr=0.001, rate=0.04, epochs=1, steps_per_epoch=5)
    write_tensorboard(tmp_path, [run])
    (folder,) = write_tensorboard(tmp_path, [run])  # as after a resume
    assert len(list(folder.glob("events.out.tfevents.*"))) == 1
