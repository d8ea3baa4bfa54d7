"""The commands act on their advice: a diverged run is named and exits 3; lr-find sweeps the
task's optimizer and says when it has nothing to suggest."""

from __future__ import annotations

import pytest

from descend.cli.main import main


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_train_with_an_exploding_lr_says_lr_too_large_and_exits_3(tmp_path, capsys) -> None:
    args = ["train", "digits", "--optimizer", "sgd", "--lr", "1e6", "--epochs", "1", "--quiet"]
    code, _, err = run_cli([*args, "--out", str(tmp_path / "a")], capsys)
    assert code == 3, err
    assert "diverged: sgd, seed 0: lr_too_large: The loss rose from" in err
    assert "lr_too_small" not in err
    assert "lr_too_small" not in (tmp_path / "a" / "report.html").read_text()
    code, _, err = run_cli([*args, "--out", str(tmp_path / "b"), "--allow-divergence"], capsys)
    assert code == 0 and "diverged: sgd, seed 0: lr_too_large" in err


def test_compare_with_a_diverging_optimizer_names_it_and_exits_3(tmp_path, capsys) -> None:
    args = ["compare", "linreg", "--optimizers", "sgd,adam", "--lr", "sgd=0.5", "--seeds", "1"]
    code, out, err = run_cli([*args, "--epochs", "30", "--out", str(tmp_path), "--quiet"], capsys)
    assert code == 3, err
    assert "diverged: sgd, seed 0: lr_too_large" in err and "adam" not in err
    assert "final val_loss" in out  # the table is still printed
    # The report's diagnostics table highlights the diverged run, not the healthy one.
    page = (tmp_path / "report.html").read_text()
    assert page.count('<tr class="diag" data-exception="1"><td class="name">sgd</td>') >= 1
    assert '<tr class="diag" data-exception="1"><td class="name">adam</td>' not in page


def test_lr_find_sweeps_the_tasks_optimizer(tmp_path, capsys) -> None:
    code, out, err = run_cli(
        ["lr-find", "digits", "--num-steps", "20", "--out", str(tmp_path)], capsys
    )
    assert code == 0, err
    assert "digits · adam: swept lr" in out  # the task's default optimizer, not sgd


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--end-lr", "inf"], "must be a float > 0. Got inf"),
        (["--num-steps", "2"], "must be an int >= 10. Got 2"),
    ],
)
def test_lr_find_refuses_bounds_it_cannot_sweep(tmp_path, capsys, extra, words) -> None:
    code, _, err = run_cli(["lr-find", "linreg", "--out", str(tmp_path), *extra], capsys)
    assert code == 2 and words in err, err


def test_lr_find_says_when_the_curve_is_too_short(tmp_path, capsys) -> None:
    args = ["lr-find", "linreg", "--optimizer", "sgd", "--start-lr", "50", "--end-lr", "1e6"]
    code, out, err = run_cli([*args, "--num-steps", "20", "--out", str(tmp_path)], capsys)
    assert code == 0, err
    assert "too short to suggest a learning rate" in out and "suggested lr" not in out
