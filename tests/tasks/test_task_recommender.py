"""The recommender task: generated ratings near the noise floor, and the MovieLens loader."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from descend.tasks import get_task, load_movielens, run_task

U_DATA = "196\t242\t3\t881250949\n186\t302\t3\t891717742\n22\t377\t1\t878887116\n196\t377\t5\t881250950\n\n"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "u.data"
    path.write_text(text)
    return path


def test_movielens_loader_reads_u_data(tmp_path: Path) -> None:
    r = load_movielens(_write(tmp_path, U_DATA))
    assert (r.n_users, r.n_items) == (3, 3)  # users 22, 186, 196; items 242, 302, 377
    assert r.pairs.dtype == torch.long and r.pairs.shape == (4, 2)
    assert r.pairs.tolist() == [[2, 0], [1, 1], [0, 2], [2, 2]]
    assert r.ratings.tolist() == [3.0, 3.0, 1.0, 5.0]


def test_missing_file_names_it(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "u.data"
    with pytest.raises(FileNotFoundError, match="nope"):
        load_movielens(missing)
    task = get_task("recommender", ratings_path=str(missing))
    with pytest.raises(FileNotFoundError, match="nope"):
        task.data(0)
    with pytest.raises(FileNotFoundError, match=tmp_path.name):
        load_movielens(tmp_path)  # a directory is not a ratings file


def test_malformed_line_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"u.data:2: expected"):
        load_movielens(_write(tmp_path, "1\t2\t3\t4\n1,2,3,4\n"))


def test_task_on_a_ratings_file_trains(tmp_path: Path) -> None:
    g = torch.Generator().manual_seed(0)
    lines = [
        f"{u}\t{i}\t{int(torch.randint(1, 6, (1,), generator=g))}\t0"
        for u in range(1, 41)
        for i in range(1, 31)
        if (u * 7 + i * 3) % 4 == 0
    ]
    path = _write(tmp_path, "\n".join(lines) + "\n")
    task = get_task("recommender", ratings_path=path)
    assert str(path) in task.data_source
    data = task.data(0)
    assert data.meta["n_users"] == 40 and data.meta["n_items"] == 30
    assert len(data.train[1]) + len(data.val[1]) == len(lines)
    result = run_task(task, "adam", epochs=2, eval_train=False)
    assert len(result.history.epochs) == 2
    assert result.config["task_options"]["ratings_path"] == str(path)


def test_generated_ratings_have_the_stated_noise_floor() -> None:
    data = get_task("recommender").data(0)
    assert data.meta["noise_std"] == 0.25
    ratings = torch.cat([data.train[1], data.val[1]])
    assert ratings.std() > 2 * data.meta["noise_std"]  # there is signal to learn above the noise
