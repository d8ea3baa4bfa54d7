"""The charlm and vae helpers: text and images sampled from a model."""

from __future__ import annotations

import pytest
import torch

from descend.tasks import get_task, sample_images, sample_text
from descend.tasks.charlm import MODULES, corpus


def test_corpus_is_stdlib_docstrings_in_printable_ascii() -> None:
    text = corpus()
    assert len(text) > 100_000
    assert "Return" in text and len(MODULES) >= 30
    assert all(c == "\n" or 32 <= ord(c) < 127 for c in text)


def test_charlm_sample_continues_a_prompt() -> None:
    task = get_task("charlm")
    model = task.model(0)
    text = sample_text(model, "Return the ", 40, seed=1)
    assert len(text) == 40 and all(c in model.vocab for c in text)
    assert sample_text(model, "Return the ", 40, seed=1) == text
    assert sample_text(model, "Return the ", 40, seed=2) != text
    assert model.training  # restored


def test_charlm_sample_rejects_bad_prompts() -> None:
    model = get_task("charlm").model(0)
    with pytest.raises(ValueError, match="vocabulary"):
        sample_text(model, "caf\u00e9", 5)
    with pytest.raises(ValueError, match="empty"):
        sample_text(model, "", 5)


def test_vae_loss_is_reconstruction_plus_kl() -> None:
    task = get_task("vae")
    x = task.data(0).train[0][:32]
    torch.manual_seed(0)
    out = task.model(0)(x)
    total = task.loss(out, x).item()
    parts = task.metrics["reconstruction"](out, x) + task.metrics["kl"](out, x)
    assert total == pytest.approx(parts, rel=1e-5)
    assert task.metrics["kl"](out, x) >= 0


def test_vae_sample_gives_pixel_probabilities() -> None:
    model = get_task("vae").model(0)
    images = sample_images(model, 5, seed=3)
    assert images.shape == (5, 8, 8)
    assert images.min() >= 0 and images.max() <= 1
    assert torch.equal(sample_images(model, 5, seed=3), images)
