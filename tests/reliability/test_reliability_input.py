"""Every bad input gets one clear line: what was wrong, what is allowed, the closest valid name.

The CLI is driven through ``descend.cli.main.main`` (the installed ``descend``
entry point) in this process: a failure must exit non-zero with exactly one
``error: ...`` line on standard error and no traceback, unless ``--debug``.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from descend._validation import InvalidParameterError, reject_unknown_keywords
from descend.cli.main import main
from descend.optim import make_optimizer
from descend.schedules import from_name
from descend.tasks import get_task
from descend.tasks.recommender import load_movielens
from descend.train import fit


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Exit status and the standard-error text of ``descend ARGV``."""
    with pytest.raises(SystemExit) as exited:
        main(argv)
    captured = capsys.readouterr()
    return exited.value.code, captured.err


def assert_one_line_error(err: str) -> str:
    lines = err.strip("\n").splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize(
    ("argv", "suggestion"),
    [
        (["train", "linreg", "--epoch", "3"], "Did you mean --epochs?"),
        (["train", "linreg", "--optimzer", "adam"], "Did you mean --optimizer?"),
        (["train", "linreg", "--checkpoint_every", "5"], "Did you mean --checkpoint-every?"),
        (["compare", "linreg", "--seed", "2"], "Did you mean --seeds?"),
        (["terrain", "rosenbrock", "--step", "5"], "Did you mean --steps?"),
    ],
)
def test_an_unknown_option_suggests_the_closest_valid_one(argv, suggestion, capsys) -> None:
    code, err = run_cli(argv, capsys)
    line = assert_one_line_error(err)
    assert code == 2
    assert f"No such option: {argv[2]}." in line and suggestion in line


def test_an_unknown_command_suggests_the_closest(capsys) -> None:
    code, err = run_cli(["trian", "linreg"], capsys)
    assert code == 2 and "Did you mean 'train'" in assert_one_line_error(err)


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["train", "linreg", "--epochs", "0"], ["'epochs'", "an int >= 1", "Got 0"]),
        (["train", "linreg", "--lr", "-0.5"], ["'lr'", "a float > 0", "Got -0.5"]),
        (["train", "linreg", "--seed", "-1"], ["'seed'", "[0, 9.22337e+18]", "Got -1"]),
        (["train", "linreg", "--batch-size", "0"], ["'batch_size'", ">= 1", "Got 0"]),
        (["train", "linreg", "--checkpoint-every", "0"], ["'checkpoint_every'", ">= 1", "Got 0"]),
        (["compare", "linreg", "--seeds", "0"], ["'--seeds'", "greater than or equal to 1", "'0'"]),
        (["train", "linreg", "--epochs", "ten"], ["'--epochs'", "integer", "'ten'"]),
        (["train", "linreg", "--lr=fast"], ["'--lr'", "'fast'"]),
    ],
)
def test_a_value_out_of_range_names_the_range_and_the_value(argv, words, capsys, tmp_path) -> None:
    code, err = run_cli([*argv, "--out", str(tmp_path / "run"), "--quiet"], capsys)
    line = assert_one_line_error(err)
    assert code == 2
    for word in words:
        assert word in line, (word, line)


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["train", "linreg", "--optimizer", "adamm"], ["Unknown optimizer 'adamm'", "Did you mean 'adam'", "Available: adadelta, adafactor, adagrad, adam,"]),
        (["train", "linregg"], ["Unknown task 'linregg'", "Did you mean 'linreg'", "Available:", "digits"]),
        (["compare", "linreg", "--optimizers", "sgd,lionheart"], ["Unknown optimizer 'lionheart'", "Available:"]),
        (["train", "linreg", "--schedule", "cosin"], ["Unknown schedule 'cosin'", "Did you mean 'cosine'", "Available:"]),
        (["terrain", "rosenbrok"], ["Unknown terrain 'rosenbrok'", "Available:", "rosenbrock"]),
    ],
)  # fmt: skip
def test_an_unknown_name_lists_the_available_ones(argv, words, capsys, tmp_path) -> None:
    code, err = run_cli([*argv, "--out", str(tmp_path / "out")], capsys)
    line = assert_one_line_error(err)
    assert code == 2
    for word in words:
        assert word in line, (word, line)


def test_debug_shows_the_traceback_instead(capsys) -> None:
    with pytest.raises(InvalidParameterError, match="Unknown task 'linregg'"):
        main(["--debug", "train", "linregg"])
    assert "error:" not in capsys.readouterr().err


def test_resume_from_a_damaged_checkpoint_names_the_file(tmp_path, capsys) -> None:
    folder = tmp_path / "run"
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "checkpoints" / "last.pt").write_bytes(b"PK\x03\x04 not a whole file")
    code, err = run_cli(["train", "linreg", "--out", str(folder), "--resume", "--quiet"], capsys)
    line = assert_one_line_error(err)
    assert code == 2  # a file the run was given that cannot be used is bad input
    assert str(folder / "checkpoints" / "last.pt") in line and "truncated or corrupted" in line


def test_help_is_not_an_error(capsys) -> None:
    assert main(["train", "--help"]) is None  # returns normally: exit status 0
    captured = capsys.readouterr()
    assert "--checkpoint-every" in captured.out and captured.err == ""


# -- settings given to the library -------------------------------------------------------


def test_unknown_settings_suggest_the_closest_valid_name() -> None:
    with pytest.raises(InvalidParameterError, match="Did you mean 'gamma'"):
        from_name("exponential", lr=0.1, total_steps=10, gama=0.5)
    with pytest.raises(InvalidParameterError, match="Did you mean 'ratings_path'"):
        get_task("recommender", ratings_pth="u.data")
    with pytest.raises(
        InvalidParameterError, match="'lr' parameter of SGD must be .*Got -1 instead"
    ):
        make_optimizer("sgd", [torch.zeros(2, requires_grad=True)], lr=-1)
    with pytest.raises(InvalidParameterError, match="Adam has no parameter 'betas1'. Did you mean"):
        reject_unknown_keywords("Adam", torch.optim.Adam, {"lr": 0.1, "betas1": 0.9})
    reject_unknown_keywords("SGD", torch.optim.SGD, {"lr": 0.1, "momentum": 0.9})


def test_a_misspelt_optimizer_setting_suggests_the_closest_valid_one() -> None:
    """``make_optimizer`` and ``fit(optimizer_options=...)`` forward keywords to the class."""
    params = [torch.zeros(2, requires_grad=True)]
    with pytest.raises(InvalidParameterError, match="no parameter 'betas1'. Did you mean 'betas'"):
        make_optimizer("adam", params, betas1=0.9)
    with pytest.raises(
        InvalidParameterError, match="no parameter 'momentun'. Did you mean 'momentum'"
    ):
        make_optimizer("sgd", params, momentun=0.9)


def test_a_missing_or_unreadable_data_file_names_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "u.data"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        get_task("recommender", ratings_path=missing).data(0)
    with pytest.raises(FileNotFoundError, match=str(missing)):
        load_movielens(missing)
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        load_movielens(tmp_path)  # a folder, not a file
    binary = tmp_path / "binary.data"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(FileNotFoundError, match=str(binary)):
        load_movielens(binary)
    bad = tmp_path / "bad.data"
    bad.write_text("1\t2\t5\t881250949\n1\ttwo\t4\t881250950\n")
    with pytest.raises(ValueError, match=f"{bad}:2: expected"):
        load_movielens(bad)


def test_an_infinite_count_is_refused_with_the_range_not_an_overflow() -> None:
    model, data = torch.nn.Linear(2, 1), (torch.randn(4, 2), torch.randn(4, 1))
    for key in ("epochs", "max_steps", "batch_size", "checkpoint_every"):
        with pytest.raises(InvalidParameterError, match=f"'{key}' parameter of fit .*Got inf"):
            fit(model, data, torch.nn.MSELoss(), "sgd", progress=False,
                **{"max_steps": 1, key: math.inf})  # fmt: skip


def test_an_infinite_learning_rate_is_refused_before_training(capsys, tmp_path) -> None:
    """``--lr inf`` is out of range: refused up front, not answered by a NaN at step 2."""
    code, err = run_cli(
        ["train", "linreg", "--lr", "inf", "--out", str(tmp_path), "--quiet"], capsys
    )
    line = assert_one_line_error(err)
    assert code == 2 and "'lr'" in line and "Got inf" in line, line
    params = [torch.zeros(2, requires_grad=True)]
    for name in ("sgd", "adam"):
        with pytest.raises(InvalidParameterError, match="'lr' parameter .*Got inf"):
            make_optimizer(name, params, lr=math.inf)
    with pytest.raises(InvalidParameterError, match="'lr' parameter .*Got inf"):
        from_name("cosine", lr=math.inf, total_steps=10)


def test_a_diverging_run_stops_with_one_line_naming_the_step(capsys, tmp_path) -> None:
    """The default non-finite policy ("raise") at the command line: no traceback from torch."""
    argv = ["train", "linreg", "--lr", "50", "--epochs", "40", "--out", str(tmp_path), "--quiet"]
    code, err = run_cli(argv, capsys)
    line = assert_one_line_error(err)
    assert code == 1 and "At step " in line and "(not finite)" in line, line
    assert "the loss" in line or "the gradient" in line


def test_an_unusable_output_folder_is_named(capsys, tmp_path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code, err = run_cli(["train", "linreg", "--out", str(blocker / "run"), "--quiet"], capsys)
    line = assert_one_line_error(err)
    assert code != 0 and str(blocker) in line
