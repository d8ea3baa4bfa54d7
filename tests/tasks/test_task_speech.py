"""The speech task: the mel filterbank, the message without espeak-ng, the split by accent."""

from __future__ import annotations

import math
import shutil

import pytest
import torch

from descend.cli.main import main
from descend.tasks import get_task, run_task, speech_corpus, summarize
from descend.tasks.speech_corpus import ACCENTS, mel_filterbank

needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None, reason="espeak-ng is not installed (.ci/run installs it)"
)


def _mel(f: float) -> float:
    return 2595 * math.log10(1 + f / 700)


def test_mel_filters_are_triangles_peaking_at_evenly_spaced_mels() -> None:
    bank = mel_filterbank(n_fft=4096, mels=10, rate=16000)
    assert bank.shape == (10, 2049)
    freqs = torch.linspace(0, 8000, 2049)
    peaks = freqs[bank.argmax(1)]
    step = _mel(8000) / 11  # 12 points from 0 to 8 kHz on the mel scale
    for k, f in enumerate(peaks.tolist()):
        assert _mel(f) == pytest.approx((k + 1) * step, abs=_mel(f + 4) - _mel(f))
    assert torch.all(bank >= 0) and torch.all(bank <= 1)
    # Adjacent triangles cross at 1/2 and sum to 1 between their peaks (a partition).
    between = (freqs > peaks[3]) & (freqs < peaks[4])
    torch.testing.assert_close(bank[3, between] + bank[4, between], torch.ones(int(between.sum())))


def test_missing_espeak_says_how_to_install_it_and_the_cli_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: object
) -> None:
    monkeypatch.setattr(speech_corpus.shutil, "which", lambda name: None)
    with pytest.raises(FileNotFoundError, match="apt-get install espeak-ng"):
        get_task("speech").data(0)
    with pytest.raises(SystemExit) as exc:
        main(["train", "speech", "--out", str(tmp_path), "--quiet", "--device", "cpu"])
    assert exc.value.code == 2
    assert "apt-get install espeak-ng" in capsys.readouterr().err


@needs_espeak
def test_validation_accents_are_never_heard_in_training() -> None:
    corpus = speech_corpus.build()
    a, b = get_task("speech").data(0), get_task("speech").data(1)
    assert len(a.meta["val_accents"]) == 2 and a.meta["val_accents"] != b.meta["val_accents"]
    held = torch.tensor([ACCENTS.index(n) for n in a.meta["val_accents"]])
    n_val = int(torch.isin(corpus["accent"], held).sum())
    assert len(a.val[1]) == n_val == len(corpus["labels"]) * 2 // len(ACCENTS)
    assert torch.bincount(a.val[1], minlength=10).tolist() == [n_val // 10] * 10


@needs_espeak
@pytest.mark.slow
def test_default_recipe_reaches_its_target_on_unseen_accents() -> None:
    task = get_task("speech")
    result = run_task(task, seed=0, eval_train=False)
    summary = summarize(result, task)
    assert task.target.reached(summary["final"]["val_accuracy"]), summary["final"]
