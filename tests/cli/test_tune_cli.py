"""``descend tune``: the run folder end to end, ``train --config best.yaml``, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

pytest.importorskip("optuna")

from descend.cli.main import main
from descend.tune import open_study

TUNE_FILES = ("study.journal", "best.yaml", "trials.csv", "summary.json", "report.html")


def test_tune_writes_its_folder_and_train_reruns_the_best_trial(tmp_path: Path, capsys) -> None:
    out = tmp_path / "tune"
    main(
        [
            "tune",
            "logreg",
            "--optimizer",
            "momentum",
            "--trials",
            "4",
            "--epochs",
            "2",
            "--tune",
            "all",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    printed = capsys.readouterr().out
    assert "logreg · momentum · 4 trials" in printed and "descend train --config" in printed
    for name in TUNE_FILES:
        assert (out / name).exists(), name
    for name in ("history.png", "parallel.png", "importance.png", "sensitivity.png"):
        assert (out / name).exists(), name
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 4 and "http" not in page.replace(
        "http-equiv", ""
    )
    best = yaml.safe_load((out / "best.yaml").read_text())
    assert set(best) == {
        "task",
        "optimizer",
        "lr",
        "optimizer_options",
        "seed",
        "epochs",
        "batch_size",
        "schedule",
    }
    assert set(best["optimizer_options"]) == {"momentum", "weight_decay"}
    summary = json.loads((out / "summary.json").read_text())

    run = tmp_path / "train"
    main(["train", "--config", str(out / "best.yaml"), "--out", str(run), "--quiet"])
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["optimizer"] == "momentum" and config["lr"] == best["lr"]
    assert config["optimizer_options"] == best["optimizer_options"]
    final = json.loads((run / "summary.json").read_text())["optimizers"]["momentum"]["final"]
    # The seed is part of the trial: train reproduces the best trial's validation accuracy.
    assert final["val_accuracy"]["mean"] == pytest.approx(summary["best"]["value"], abs=1e-6)


def test_train_config_flags_override_and_bad_keys_are_refused(tmp_path: Path, capsys) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("task: logreg\noptimizer: sgd\nlr: 0.1\nepochs: 1\nlearning_rate: 3\n")
    with pytest.raises(SystemExit) as info:
        main(["train", "--config", str(config), "--out", str(tmp_path / "r"), "--quiet"])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown key(s) learning_rate; allowed: task" in err[0]
    config.write_text("task: logreg\noptimizer: sgd\nlr: 0.1\nepochs: 1\n")
    main(
        ["train", "--config", str(config), "--epochs", "2", "--out", str(tmp_path / "r"), "--quiet"]
    )
    assert yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())["epochs"] == 2


def _one_error(args: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (
            ["--space", "foo=0:1"],
            "sgd has no tunable hyperparameter 'foo'; allowed: lr, weight_decay",
        ),
        (["--space", "lr=0.1:0.01:log"], "the range is empty"),
        (["--space", "lr=0:1:log"], "a log range must lie above 0"),
        (["--space", "weight_decay=0.1"], "must be NAME=LOW:HIGH"),
        (["--storage", "postgresql://me:pw@127.0.0.1:1/db"], "cannot be reached"),
        (["--tune", "most"], "Unknown --tune value 'most'. Available: all, lr"),
        (["--pruner", "asha"], "'pruner' parameter of tune"),
        (["--trials", "0"], "'trials' parameter of tune"),
        (["--optimizer", "adamm"], "adam"),
        (["--schedule", "wobbly"], "'schedule' parameter of tune"),
    ],
)
def test_every_bad_input_is_one_error_line_and_writes_nothing(
    tmp_path: Path,
    capsys,
    extra: list[str],
    says: str,
) -> None:
    out = tmp_path / "out"
    line = _one_error(["tune", "logreg", "--optimizer", "sgd", *extra, "--out", str(out)], capsys)
    assert says in line and "pw@" not in line
    assert not out.exists()


def test_joining_a_study_with_another_space_is_one_error_and_writes_nothing(
    tmp_path: Path,
    capsys,
) -> None:
    journal = tmp_path / "shared.journal"
    open_study("logreg", "sgd", trials=2, epochs=2, storage=journal, study="s")
    before = journal.read_bytes()
    out = tmp_path / "out"
    line = _one_error(
        [
            "tune",
            "logreg",
            "--optimizer",
            "sgd",
            "--trials",
            "2",
            "--epochs",
            "2",
            "--storage",
            str(journal),
            "--study",
            "s",
            "--space",
            "lr=1e-3:1e-1:log",
            "--out",
            str(out),
        ],
        capsys,
    )
    assert "study 's' searches something else" in line and "space" in line
    assert journal.read_bytes() == before and not out.exists()


def test_an_unknown_task_is_one_error(tmp_path: Path, capsys) -> None:
    assert "digits" in _one_error(["tune", "digitz", "--out", str(tmp_path / "o")], capsys)


def test_several_optimizers_get_the_same_study_each_in_a_subfolder(tmp_path: Path, capsys) -> None:
    out = tmp_path / "t"
    main(
        [
            "tune",
            "logreg",
            "--optimizer",
            "sgd,adam",
            "--trials",
            "2",
            "--epochs",
            "1",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    for name in ("sgd", "adam"):
        summary = json.loads((out / name / "summary.json").read_text())
        assert summary["name"] == f"logreg-{name}" and summary["settings"]["trials"] == 2
        assert (out / name / "sensitivity.png").exists() and (out / name / "best.yaml").exists()
    assert (out / "study.journal").exists()
    assert capsys.readouterr().out.count("2 trials:") == 2


def test_a_space_entry_one_of_several_optimizers_lacks_is_refused_first(
    tmp_path: Path, capsys
) -> None:
    out = tmp_path / "t"
    line = _one_error(
        [
            "tune",
            "logreg",
            "--optimizer",
            "momentum,sgd",
            "--space",
            "momentum=0.8:0.95",
            "--out",
            str(out),
        ],
        capsys,
    )
    assert "sgd has no tunable hyperparameter 'momentum'" in line and not out.exists()
