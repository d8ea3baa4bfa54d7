"""The comparison's folder: checked before training, never silently reused, a full disk survived."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest
import yaml

import descend.comparison.run as compare_run
import descend.comparison.workers as compare_workers  # where a run calls run_task
import descend.report._files as files
from descend._validation import InvalidParameterError
from descend.cli.main import main
from descend.comparison import DiskFullError, compare, resume

# linreg, full batch: a run of 30 epochs is a few milliseconds of training.
SMALL = {"optimizers": ["sgd", "adam"], "seeds": [0], "epochs": 30}


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, capsys.readouterr().err


def no_training(*args, **kwargs):
    raise AssertionError("trained before the folder was checked")


def test_an_unwritable_out_fails_before_any_training(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setattr(compare_workers, "run_task", no_training)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code, err = run_cli(["compare", "linreg", "--out", str(blocker / "cmp"), "--quiet"], capsys)
    assert code == 2
    assert f"cannot write to the output folder {str(blocker / 'cmp')!r}" in err, err
    assert err.count("\n") == 1  # one line, no traceback


def test_an_unwritable_folder_is_named_even_when_it_exists(tmp_path, monkeypatch) -> None:
    # Running as root, permissions do not stop a write: fail the probe file instead.
    monkeypatch.setattr(compare_workers, "run_task", no_training)
    real = Path.write_bytes

    def read_only(self: Path, data: bytes) -> int:
        if self.name.startswith(".write-test"):
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", read_only)
    with pytest.raises(InvalidParameterError, match="Permission denied"):
        compare("linreg", out=tmp_path / "cmp", **SMALL)


def test_a_folder_with_files_is_refused_unless_resumed_or_overwritten(tmp_path, capsys) -> None:
    out = tmp_path / "cmp"
    compare("linreg", out=out, **SMALL)
    code, err = run_cli(["compare", "linreg", "--out", str(out), "--quiet"], capsys)
    assert code == 2
    assert "already holds files" in err and f"--resume {out}" in err and "--overwrite" in err
    (out / "notes.txt").write_text("mine")
    result = compare("linreg", out=out, overwrite=True, optimizers=["sgd"], seeds=[0], epochs=5)
    assert result.complete and (out / "notes.txt").read_text() == "mine"
    assert not (out / "runs" / "adam-seed0.json").exists()  # the old comparison's runs are gone


def test_resume_of_a_folder_without_a_comparison_is_an_error(tmp_path, capsys) -> None:
    code, err = run_cli(["compare", "--resume", str(tmp_path / "typo")], capsys)
    assert code == 2 and "holds no comparison" in err
    assert not (tmp_path / "typo").exists()  # nothing created for a mistyped name


def test_a_changed_setting_on_resume_is_refused_unless_allowed_and_then_recorded(
    tmp_path, capsys
) -> None:
    out = tmp_path / "cmp"
    compare("linreg", out=out, **SMALL)
    code, err = run_cli(["compare", "--resume", str(out), "--lr", "sgd=0.05", "--quiet"], capsys)
    assert code == 2 and "with other settings (lrs: {} -> {'sgd': 0.05})" in err, err
    assert "--allow-changes" in err
    args = ["compare", "--resume", str(out), "--lr", "sgd=0.05", "--seeds", "2", "--allow-changes"]
    code, err = run_cli([*args, "--quiet"], capsys)
    assert code == 0, err
    config = yaml.safe_load((out / "config.yaml").read_text())
    (change,) = config["changes_on_resume"]
    assert change["changed"]["lrs"] == {"was": {}, "now": {"sgd": 0.05}}
    assert change["runs_finished_before"] == ["sgd-seed0", "adam-seed0"]
    runs = {(r["optimizer"], r["seed"]): r["lr"] for r in config["runs"]}
    # Finished runs keep the rate they ran with; the new seed takes the new one.
    assert runs[("sgd", 0)] == 0.1 and runs[("sgd", 1)] == 0.05


def test_a_full_disk_says_so_keeps_what_was_written_and_resumes(tmp_path, monkeypatch) -> None:
    out = tmp_path / "cmp"
    real = files.write_bytes_atomic

    def full_at_the_second_record(path: Path, data: bytes) -> Path:
        if Path(path).name == "adam-seed0.json":
            # As a real full disk: the temporary file is created, the write fails.
            tmp = Path(path).with_name(".adam-seed0.json.tmp")
            tmp.write_bytes(data[:10])
            tmp.unlink()
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real(path, data)

    monkeypatch.setattr(files, "write_bytes_atomic", full_at_the_second_record)
    with pytest.raises(DiskFullError, match="disk full while writing the record of adam, seed 0"):
        compare("linreg", out=out, **SMALL)
    # The first run, its rows and its report survive intact.
    assert json.loads((out / "runs" / "sgd-seed0.json").read_text())["optimizer"] == "sgd"
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary["optimizers"]) == ["sgd"] and summary["complete"] is False
    assert {line.split(",")[0] for line in (out / "metrics.csv").read_text().splitlines()[1:]} == {
        "sgd"
    }
    assert not [p for p in out.rglob("*.tmp")]
    assert not (out / ".lock").exists()

    monkeypatch.setattr(files, "write_bytes_atomic", real)
    result = resume(out)
    assert result.complete and list(result.summary["optimizers"]) == ["sgd", "adam"]


def test_a_full_disk_through_the_cli_is_one_line_saying_disk_full(
    tmp_path, capsys, monkeypatch
) -> None:
    def full(path: Path, data: bytes) -> Path:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(files, "write_bytes_atomic", full)
    code, err = run_cli(["compare", "linreg", "--out", str(tmp_path / "cmp"), "--quiet"], capsys)
    assert code == 1 and err.startswith("error: disk full while writing") and "Traceback" not in err


def test_a_stale_lock_of_a_dead_process_is_taken_over(tmp_path) -> None:
    out = tmp_path / "cmp"
    out.mkdir()
    (out / ".lock").write_text("999999999\n")  # no such process
    result = compare("linreg", out=out, optimizers=["sgd"], seeds=[0], epochs=5)
    assert result.complete and not (out / ".lock").exists()


def test_every_hyperparameter_and_its_source_is_in_config_and_table(tmp_path, capsys) -> None:
    out = tmp_path / "cmp"
    args = ["compare", "linreg", "--optimizers", "momentum,adam", "--lr", "adam=0.02"]
    code, err = run_cli(
        [*args, "--seeds", "1", "--epochs", "5", "--out", str(out), "--quiet"], capsys
    )
    assert code == 0, err
    config = yaml.safe_load((out / "config.yaml").read_text())
    by_optimizer = {r["optimizer"]: r["config"]["hyperparameters"] for r in config["runs"]}
    assert by_optimizer["momentum"]["momentum"] == {"value": 0.9, "source": "optimizer default"}
    assert by_optimizer["momentum"]["lr"]["source"] == "task table"
    assert by_optimizer["adam"]["lr"] == {"value": 0.02, "source": "command line"}
    assert by_optimizer["adam"]["betas"]["value"] == [0.9, 0.999]
    page = (out / "report.html").read_text()
    assert "betas = 0.9, 0.999" in page and "momentum = 0.9" in page


def test_examples_to_target_count_whole_epochs_and_the_batches_since(tmp_path) -> None:
    # logreg: mini-batches of 32; examples, unlike steps, compare across batch sizes.
    result = compare("logreg", ["adam"], out=tmp_path / "cmp", seeds=[0], epochs=8)
    run = result.records[0]["summary"]
    samples = result.records[0]["config"]["train_samples"]
    per_epoch = -(-samples // 32)
    epochs, rest = divmod(run["steps_to_target"], per_epoch)
    assert run["examples_to_target"] == epochs * samples + min(rest * 32, samples)
    entry = result.summary["optimizers"]["adam"]["examples_to_target"]
    assert entry["mean"] == run["examples_to_target"]


def test_a_busy_machine_is_measured_and_warned_about(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(compare_run.os, "getloadavg", lambda: (7.5, 7.0, 6.0))
    monkeypatch.setattr(compare_run.os, "cpu_count", lambda: 2)
    out = tmp_path / "cmp"
    code, err = run_cli(
        [
            "compare",
            "linreg",
            "--optimizers",
            "sgd",
            "--seeds",
            "1",
            "--epochs",
            "3",
            "--out",
            str(out),
            "--quiet",
        ],
        capsys,
    )
    assert code == 0
    assert (
        "warning: The machine was busy during the runs (1-minute load up to 7.5 on 2 CPUs)" in err
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["machine_load"]["busy"] is True and summary["machine_load"]["cpus"] == 2
    assert "The machine was busy" in (out / "report.html").read_text()


def test_the_gradient_figure_has_one_line_per_optimizer() -> None:
    from descend.comparison.store import per_optimizer_gradients

    def record(name: str, seed: int, norms: list[float]) -> dict:
        weights = [f"w{i}" for i in range(len(norms))]
        health = [
            {
                "step": 1,
                "loss": 1.0,
                "grad_norms": dict(zip(weights, norms, strict=True)),
                "weights": weights,
            }
        ]
        return {"optimizer": name, "seed": seed, "history": {"steps": []}, "health": health}

    records = [
        record("sgd", 0, [1.0, 2.0, 3.0]),
        record("sgd", 1, [3.0, 4.0, 5.0]),
        record("sgd", 2, [2.0, 9.0, 4.0]),
        record("adam", 0, [0.5, 0.5, 0.5]),
    ]
    lines = per_optimizer_gradients(records, [r["health"] for r in records])
    assert lines == {"sgd (median of 3 seeds)": [2.0, 4.0, 4.0], "adam": [0.5, 0.5, 0.5]}


def test_resume_with_the_task_named_again_and_with_another_task(tmp_path, capsys) -> None:
    out = tmp_path / "cmp"
    compare("linreg", out=out, optimizers=["sgd"], seeds=[0], epochs=3)
    code, err = run_cli(["compare", "linreg", "--resume", str(out), "--quiet"], capsys)
    assert code == 0, err
    code, err = run_cli(["compare", "logreg", "--resume", str(out), "--quiet"], capsys)
    assert code == 2 and "it compares on 'linreg'" in err
