"""``descend lr-find`` and ``descend landscape`` run end to end on digits and write their files."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from descend.cli.main import main


def _png(path) -> bool:
    return (
        path.is_file()
        and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        and path.stat().st_size > 10_000
    )


def test_lr_find_prints_suggestions_writes_files_and_applies(tmp_path, capsys):
    main(
        [
            "lr-find",
            "digits",
            "--out",
            str(tmp_path),
            "--num-steps",
            "30",
            "--apply",
            "--epochs",
            "1",
        ]
    )
    out = capsys.readouterr().out
    assert "suggested lr (valley):" in out and "<- applied" in out
    assert "trained with suggested lr" in out
    assert _png(tmp_path / "lr_find.png")
    with (tmp_path / "lr_find.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert 2 <= len(rows) <= 30 and set(rows[0]) == {"step", "lr", "loss", "smoothed"}
    lrs = [float(r["lr"]) for r in rows]
    assert lrs == sorted(lrs) and lrs[0] == pytest.approx(1e-7)


def test_lr_find_unknown_task_is_a_one_line_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["lr-find", "digitz", "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "digits" in capsys.readouterr().err


def test_landscape_trains_briefly_and_writes_the_slices(tmp_path, capsys):
    main(
        [
            "landscape",
            "digits",
            "--out",
            str(tmp_path),
            "--steps",
            "30",
            "--grid",
            "7",
            "--samples",
            "128",
        ]
    )
    out = capsys.readouterr().out
    assert "7x7 slice" in out
    assert _png(tmp_path / "landscape_2d.png") and _png(tmp_path / "landscape_1d.png")
    saved = np.load(tmp_path / "landscape.npz")
    assert saved["losses"].shape == (7, 7) and np.isfinite(saved["losses"]).all()
    assert saved["alphas"].shape == saved["betas"].shape == (7,)
    assert saved["trajectory"].shape[1] == 2 and saved["trajectory_steps"][-1] == 30
    assert np.allclose(saved["trajectory"][-1], 0.0, atol=1e-6)  # the path ends at the centre
    line = saved["line_losses"]
    assert (
        line[np.argmin(np.abs(saved["line_alphas"] - 1.0))]
        < line[np.argmin(np.abs(saved["line_alphas"]))]
    )


def test_diagnose_names_the_trouble(capsys):
    main(["diagnose", "deep_sigmoid", "--steps", "10", "--every", "2"])
    out = capsys.readouterr().out
    assert "verdict: vanishing" in out and "curvature: largest" in out
    main(
        [
            "diagnose",
            "digits",
            "--optimizer",
            "sgd",
            "--lr",
            "3",
            "--steps",
            "40",
            "--every",
            "1",
            "--no-curvature",
        ]
    )
    out = capsys.readouterr().out
    assert "verdict: lr_too_large" in out and "Diagnosed lr_too_large" in out


def test_landscape_of_given_weights_needs_no_training(tmp_path, capsys):
    import torch

    from descend.tasks import get_task

    weights = tmp_path / "model.pt"
    torch.save({"model": get_task("digits").model(5).state_dict()}, weights)
    out_dir = tmp_path / "out"
    main(
        [
            "landscape",
            "digits",
            "--checkpoint",
            str(weights),
            "--out",
            str(out_dir),
            "--grid",
            "5",
            "--samples",
            "64",
        ]
    )
    assert "weights from model.pt" in capsys.readouterr().out
    saved = np.load(out_dir / "landscape.npz")
    assert saved["losses"].shape == (5, 5) and saved["trajectory"].shape == (0, 2)
    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                "landscape",
                "digits",
                "--checkpoint",
                str(tmp_path / "gone.pt"),
                "--out",
                str(out_dir),
            ]
        )
    assert exit_info.value.code == 2
