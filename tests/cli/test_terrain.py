"""``descend terrain`` writes its two figures and prints the table."""

from __future__ import annotations

import re

import pytest
import typer
from typer.testing import CliRunner

import descend.cli.terrain  # noqa: F401 - registers the command on the app
from descend.cli.app import app


def _invoke(args: list[str]):
    # With a single registered command typer runs it directly; with several, by name.
    prefix = ["terrain"] if hasattr(typer.main.get_command(app), "commands") else []
    return CliRunner().invoke(app, prefix + args)


def _png(path) -> bool:
    return (
        path.is_file()
        and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        and path.stat().st_size > 10_000
    )


def test_terrain_writes_figures_and_table(tmp_path):
    res = _invoke(
        [
            "himmelblau",
            "--optimizers",
            "sgd,adam",
            "--lr",
            "0.01,0.05",
            "--steps",
            "150",
            "--start",
            "-1,4",
            "--out",
            str(tmp_path),
        ]
    )
    assert res.exit_code == 0, res.output
    assert _png(tmp_path / "himmelblau_trajectories.png")
    assert _png(tmp_path / "himmelblau_values.png")
    out = res.output
    assert "himmelblau from (-1, 4), 150 steps" in out
    rows = {
        line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
        for line in out.splitlines()
        if re.match(r"^\| (sgd|adam) ", line)
    }
    assert set(rows) == {"sgd", "adam"}
    lr, iters, final_f, dist, stop = rows["sgd"]
    assert lr == "0.01" and int(iters) < 150 and float(final_f) < 1e-6
    assert float(dist) < 1e-3 and stop == "gtol"


def test_lr_sweep_shows_overshoot_and_divergence(tmp_path):
    res = _invoke(
        [
            "quadratic",
            "--optimizers",
            "gd",
            "--lr-sweep",
            "0.05,0.15,0.3",
            "--steps",
            "150",
            "--out",
            str(tmp_path),
        ]
    )
    assert res.exit_code == 0, res.output
    assert _png(tmp_path / "quadratic_gd_lr_sweep_trajectories.png")
    stops = [
        line.split("|")[-2].strip() for line in res.output.splitlines() if line.startswith("| gd")
    ]
    assert stops == ["max_iter", "gtol", "divergence"]


def test_unbounded_terrain_has_no_distance_and_bad_options_fail(tmp_path):
    res = _invoke(["saddle", "--optimizers", "sgd", "--steps", "20", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    row = next(line for line in res.output.splitlines() if line.startswith("| sgd"))
    assert row.split("|")[5].strip() == "—"
    bad = _invoke(
        ["saddle", "--optimizers", "sgd,adam", "--lr-sweep", "0.1,0.2", "--out", str(tmp_path)]
    )
    assert bad.exit_code != 0 and isinstance(bad.exception, ValueError)


@pytest.mark.parametrize("args", [["nowhere"], ["quadratic", "--lr", "0.1,0.2"]])
def test_bad_names_and_lr_counts_raise_value_errors(tmp_path, args):
    res = _invoke(args + ["--steps", "5", "--out", str(tmp_path)])
    assert res.exit_code != 0 and isinstance(res.exception, ValueError)
