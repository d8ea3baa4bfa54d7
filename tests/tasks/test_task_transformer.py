"""The transformer task: causality, parameter layout for matrix optimizers, sampling."""

from __future__ import annotations

import pytest
import torch

from descend.tasks import get_task
from descend.tasks.transformer import CharTransformer, sample


def test_attention_is_causal() -> None:
    # Changing a later character must leave every earlier position's logits unchanged.
    model = get_task("transformer").model(0).eval()
    ids = torch.randint(0, len(model.vocab), (2, 32), generator=torch.Generator().manual_seed(0))
    changed = ids.clone()
    changed[:, 20] = (changed[:, 20] + 1) % len(model.vocab)
    a, b = model(ids), model(changed)
    torch.testing.assert_close(a[:, :20], b[:, :20], rtol=0, atol=0)
    assert not torch.allclose(a[:, 20:], b[:, 20:])


def test_parameters_are_named_for_routing() -> None:
    # Muon-style optimizers take the hidden 2-D matrices and leave embeddings, the head
    # and the 1-D gains and biases to AdamW; that split must be readable from the names.
    model = get_task("transformer").model(0)
    names = dict(model.named_parameters())
    assert 100_000 < sum(p.numel() for p in names.values()) < 500_000
    hidden = [n for n, p in names.items() if n.startswith("blocks.") and p.dim() == 2]
    assert len(hidden) == 4 * 2  # qkv, proj, two MLP matrices per block
    outer = {n for n in names if not n.startswith("blocks.") and names[n].dim() == 2}
    assert outer == {"tok_emb.weight", "pos_emb.weight", "lm_head.weight"}
    assert all(p.dim() == 1 for n, p in names.items() if n.endswith(("bias", "ln1.weight")))


def test_sample_is_seeded_and_crops_to_the_context() -> None:
    model = get_task("transformer").model(0)
    prompt = "Return the value of the attribute named by this string "  # > 32 characters
    text = sample(model, prompt, 40, seed=1)
    assert len(text) == 40 and all(c in model.vocab for c in text)
    assert sample(model, prompt, 40, seed=1) == text
    assert sample(model, prompt, 40, seed=2) != text
    assert model.training


def test_bad_input_is_refused() -> None:
    model = CharTransformer("ab", embed=8, heads=2, layers=1, context=4)
    with pytest.raises(ValueError, match="vocabulary"):
        sample(model, "abc", 3)
    with pytest.raises(ValueError, match="temperature"):
        sample(model, "ab", 3, temperature=0)
    with pytest.raises(ValueError, match="longer than the context of 4"):
        model(torch.zeros(1, 5, dtype=torch.long))
