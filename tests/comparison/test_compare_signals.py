"""A real ``descend compare`` process: Ctrl-C stops the whole comparison, SIGKILL loses nothing
that a resume cannot redo exactly, and a second process is kept out of its folder.

The processes run the CLI (``python -m descend.cli.main``) on ``linreg`` (full batch,
a fraction of a millisecond per step), with enough epochs that a signal lands mid-run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def compare_args(out: Path, *extra: str, epochs: int = 400, seeds: int = 2) -> list[str]:
    return [
        sys.executable, "-m", "descend.cli.main", "compare", "linreg",
        "--optimizers", "sgd,adam", "--seeds", str(seeds), "--epochs", str(epochs),
        "--checkpoint-every", "25", "--out", str(out), "--quiet", *extra,
    ]  # fmt: skip


def start(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        args, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def wait_for(proc: subprocess.Popen, path: Path, timeout: float = 240.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"compare ended before {path} appeared:\n{out}\n{err}")
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.005)


def without_times(value: Any) -> Any:
    """``value`` without wall-clock numbers and machine load, which differ between any two runs."""
    if isinstance(value, dict):
        return {
            k: without_times(v)
            for k, v in value.items()
            if "time" not in k
            and "seconds" not in k
            and k not in ("created", "machine", "machine_load")
        }
    if isinstance(value, list):
        return [without_times(v) for v in value]
    return value


def test_first_sigint_stops_the_whole_compare_keeps_finished_runs_and_exits_130(
    tmp_path: Path,
) -> None:
    out = tmp_path / "cmp"
    proc = start(compare_args(out, epochs=400))
    # The second run (sgd, seed 1) is in progress once its first checkpoint is written.
    wait_for(proc, out / "checkpoints" / "sgd-seed1" / "last.pt")
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stdout + stderr
    assert "Traceback" not in stderr
    assert "interrupted by SIGINT: 1 of 4 runs finished" in stderr, stderr
    assert f"descend compare --resume {out}" in stderr

    summary = json.loads((out / "summary.json").read_text())
    # The interrupted run is not averaged in: sgd has one finished seed, adam none.
    assert list(summary["optimizers"]) == ["sgd"]
    assert summary["optimizers"]["sgd"]["seeds"] == [0]
    assert summary["complete"] is False
    assert summary["missing_runs"] == ["sgd-seed1", "adam-seed0", "adam-seed1"]
    assert (
        "Incomplete (interrupted by SIGINT): 1 of 4 runs finished"
        in (out / "report.html").read_text()
    )
    assert (out / "checkpoints" / "sgd-seed1" / "last.pt").exists()
    assert not (out / ".lock").exists()


def test_a_second_sigint_exits_at_once(tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    proc = start(compare_args(out, epochs=400))
    wait_for(proc, out / "checkpoints" / "sgd-seed0" / "last.pt")
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stdout + stderr
    assert "Traceback" not in stderr


def test_sigkill_mid_compare_then_resume_equals_an_uninterrupted_compare(tmp_path: Path) -> None:
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    reference = subprocess.run(
        compare_args(straight, seeds=1, epochs=300),
        check=False,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert reference.returncode == 0, reference.stderr

    proc = start(compare_args(killed, seeds=1, epochs=300))
    # Kill during the second run, after it wrote a checkpoint: one run finished, one half done.
    wait_for(proc, killed / "checkpoints" / "adam-seed0" / "last.pt")
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    assert (killed / "runs" / "sgd-seed0.json").exists()
    assert not (killed / "runs" / "adam-seed0.json").exists()

    resumed = subprocess.run(
        [sys.executable, "-m", "descend.cli.main", "compare", "--resume", str(killed), "--quiet"],
        check=False,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stderr
    a = json.loads((straight / "summary.json").read_text())
    b = json.loads((killed / "summary.json").read_text())
    assert without_times(b) == without_times(a)
    assert b["complete"] is True
    for name in ("sgd-seed0", "adam-seed0"):
        run_a = json.loads((straight / "runs" / f"{name}.json").read_text())
        run_b = json.loads((killed / "runs" / f"{name}.json").read_text())
        # Every step's loss, gradient norm and lr, bit for bit (JSON keeps a float's repr).
        assert without_times(run_b["history"]) == without_times(run_a["history"]), name
    # Each run's rows once in metrics.csv: the resumed file equals the uninterrupted one's
    # row count (no run lost, none doubled).
    rows_a = (straight / "metrics.csv").read_text().splitlines()
    rows_b = (killed / "metrics.csv").read_text().splitlines()
    assert len(rows_b) == len(rows_a) and rows_b[0] == rows_a[0]
    assert not (killed / "checkpoints").exists()


def test_a_second_process_on_the_same_folder_is_refused_naming_the_holder(tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    first = start(compare_args(out, epochs=3000))
    try:
        wait_for(first, out / "checkpoints" / "sgd-seed0" / "last.pt")
        for extra in (["--out", str(out)], ["--resume", str(out)]):
            args = [sys.executable, "-m", "descend.cli.main", "compare", "linreg", *extra]
            second = subprocess.run(
                args, check=False, env=ENV, capture_output=True, text=True, timeout=120
            )
            assert second.returncode != 0
            assert f"in use by another descend process (pid {first.pid})" in second.stderr, (
                second.stderr
            )
        assert first.poll() is None  # the first one goes on, untouched
    finally:
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=120)
    assert first.returncode == 130
