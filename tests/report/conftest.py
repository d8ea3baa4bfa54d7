"""Fixtures for the report tests: one run folder written once from synthetic runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from report_synthetic import TASK, synthetic_config, synthetic_runs


@pytest.fixture(scope="session")
def report_folder(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path]]:
    """The synthetic comparison's run folder, shared by the tests that only read it."""
    from descend.report import write_run

    folder = tmp_path_factory.mktemp("compare")
    written = write_run(folder, task=dict(TASK), runs=synthetic_runs(), config=synthetic_config())
    return folder, written
