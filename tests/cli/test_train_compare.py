"""``descend train`` and ``descend compare``: flag parsing, clear errors, and the run folder end to end."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
import yaml
from typer.testing import CliRunner

import descend.cli.compare_cmd
import descend.cli.train_cmd  # noqa: F401 - registers the command on app
from descend._validation import InvalidParameterError
from descend.cli.app import app
from descend.cli.compare_cmd import SEED_OPTIMIZERS, parse_lrs, results_table

RUN_FILES = (
    "config.yaml",
    "metrics.csv",
    "summary.json",
    "report.html",
    "loss.png",
    "validation.png",
    "lr.png",
    "gradients.png",
)


def test_parse_lrs() -> None:
    assert parse_lrs("adam=1e-3, sgd=0.1", ["sgd", "adam"]) == {"adam": 0.001, "sgd": 0.1}
    assert parse_lrs(None, ["sgd"]) == {}
    with pytest.raises(InvalidParameterError, match="name=value pairs"):
        parse_lrs("adam:0.1", ["adam"])
    with pytest.raises(InvalidParameterError, match="name=value pairs"):
        parse_lrs("adam=fast", ["adam"])
    with pytest.raises(InvalidParameterError, match="not being compared. Compared: sgd"):
        parse_lrs("adam=0.1", ["sgd"])


def test_results_table_marks_best_and_misses() -> None:
    def entry(mean: float | None, n: int = 2) -> dict[str, float | int | None]:
        return {
            "mean": mean,
            "std": 0.01 if mean is not None else None,
            "n": n if mean is not None else 0,
        }

    def optimizer(final: float, steps: float | None, reached: int) -> dict[str, object]:
        return {
            "seeds": [0, 1],
            "lr": 0.01,
            "final": {"val_accuracy": entry(final)},
            "best": {"val_accuracy": entry(final)},
            "steps_to_target": entry(steps),
            "time_to_target": entry(None if steps is None else steps / 100),
            "reached_target": reached,
            "seconds_per_step": entry(0.002),
            "stop_reasons": ["finished 2 epochs", "finished 2 epochs"],
        }

    summary = {
        "target": {"metric": "val_accuracy", "value": 0.95, "mode": "max"},
        "best_optimizer": "adam",
        "optimizers": {"sgd": optimizer(0.5, None, 0), "adam": optimizer(0.97, 120.0, 2)},
    }
    lines = results_table(summary).splitlines()
    assert "final val_accuracy" in lines[0]
    sgd, adam = lines[2], lines[3]
    assert sgd.startswith("sgd ") and "- (0/2)" in sgd
    assert (
        adam.startswith("adam *")
        and "0.9700 ± 0.0100" in adam
        and "120 (2/2)" in adam
        and "1.20 s" in adam
    )
    assert "finished 2 epochs" in adam and "2.00" in adam  # ms per step


def test_seed_optimizers_are_registered() -> None:
    from descend.optim import optimizer_names

    assert set(SEED_OPTIMIZERS) <= set(optimizer_names())


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["compare", "no_such_task"], "Unknown task 'no_such_task'"),
        (["compare", "digits", "--optimizers", "adam,lionheart"], "Unknown optimizer 'lionheart'"),
        (["train", "digits", "--optimizer", "adamm", "--out", "unused"], "Did you mean 'adam'"),
    ],
)
def test_unknown_names_list_what_exists(args: list[str], words: str) -> None:
    result = CliRunner().invoke(app, args)
    assert isinstance(result.exception, InvalidParameterError)
    message = str(result.exception)
    assert words in message and "Available:" in message


@pytest.mark.slow
def test_compare_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    args = [
        "compare",
        "digits",
        "--optimizers",
        "sgd,adam",
        "--seeds",
        "1",
        "--epochs",
        "2",
        "--out",
        str(out),
        "--quiet",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output + repr(result.exception)
    for name in RUN_FILES:
        assert (out / name).stat().st_size > 0, name
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary["optimizers"]) == ["sgd", "adam"]
    assert summary["optimizers"]["adam"]["final"]["val_accuracy"]["n"] == 1
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["epochs"] == 2 and config["seeds"] == [0]
    with open(out / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {r["optimizer"] for r in rows} == {"sgd", "adam"}
    assert sum(1 for r in rows if r["val_accuracy"]) == 4  # 2 optimizers x 2 epochs
    assert "report: " in result.output and "final val_accuracy" in result.output
    page = (out / "report.html").read_text()
    # A verdict per optimizer (and seed) from the gradient-health monitor.
    assert page.count('class="diag"') == 2 and "Diagnostics" in page


@pytest.mark.slow
def test_train_then_resume(tmp_path: Path) -> None:
    out = tmp_path / "run"
    base = ["train", "digits", "--optimizer", "adam", "--out", str(out), "--quiet"]
    first = CliRunner().invoke(app, [*base, "--epochs", "1"])
    assert first.exit_code == 0, first.output + repr(first.exception)
    for name in (*RUN_FILES, "model.pt"):
        assert (out / name).exists(), name
    state = torch.load(out / "model.pt", weights_only=True)
    assert set(state) == {"model"} and all(
        isinstance(v, torch.Tensor) for v in state["model"].values()
    )
    assert "report: " in first.output and "target val_accuracy" in first.output

    second = CliRunner().invoke(app, [*base, "--epochs", "2", "--resume"])
    assert second.exit_code == 0, second.output + repr(second.exception)
    with open(out / "metrics.csv", newline="") as handle:
        epochs = [r["epoch"] for r in csv.DictReader(handle) if r["val_accuracy"]]
    assert epochs == ["1", "2"]  # the resumed run carries the first epoch's history


def test_non_finite_policy_is_recorded_in_config_summary_and_report(tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["train", "linreg", "--lr", "50", "--epochs", "60", "--on-nonfinite", "skip"]
    args.append("--allow-divergence")  # it does diverge: that is what the test needs
    result = CliRunner().invoke(app, [*args, "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert yaml.safe_load((out / "config.yaml").read_text())["on_nonfinite"] == "skip"
    summary = json.loads((out / "summary.json").read_text())
    skipped = summary["optimizers"]["gd"]["skipped_steps"][0]
    assert skipped > 0
    assert f"{skipped} non-finite step(s) skipped" in (out / "report.html").read_text()
