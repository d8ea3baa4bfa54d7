"""``descend tasks`` lists every task with its source, model and target."""

from __future__ import annotations

import pytest

from descend.cli.main import main
from descend.tasks import TASKS


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    try:
        main(args)
    except SystemExit as exc:  # main may exit explicitly; only success is acceptable
        assert exc.code in (0, None)
    return capsys.readouterr().out


def test_descend_tasks_lists_every_task(capsys: pytest.CaptureFixture[str]) -> None:
    out = _run(["tasks"], capsys)
    for name, task in TASKS.items():
        assert f"\n{name}\n" in f"\n{out}"
        assert task.data_source in out
        assert task.target.describe() in out


def test_descend_tasks_verbose_shows_options(capsys: pytest.CaptureFixture[str]) -> None:
    out = _run(["tasks", "--verbose"], capsys)
    assert "init='xavier'" in out and "ratings_path=None" in out


def test_descend_tasks_shows_what_each_default_recipe_measured(
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = _run(["tasks"], capsys)
    for task in TASKS.values():
        assert task.measured and f"  measured: {task.measured}\n" in out
    assert "recipe: adam betas=(0.5, 0.999) lr 0.001" in out  # the gan's recipe
