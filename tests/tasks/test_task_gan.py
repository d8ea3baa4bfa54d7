"""The gan task: each player gets its own loss's gradient, the metrics, the recipes and the verdicts."""

from __future__ import annotations

import math

import pytest
import torch

from descend.diagnose import diagnose_adversarial
from descend.tasks import get_task
from descend.tasks.gan import GAN, centers, players_loss, sample, sliced_wasserstein
from descend.tasks.gan_dynamics import RECIPES, run_recipe


def _grads(model: GAN, loss: torch.Tensor) -> dict[str, torch.Tensor]:
    model.zero_grad()
    loss.backward()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def test_one_backward_gives_each_player_its_own_gradient() -> None:
    # The summed loss must give D the gradient of L_D only and G that of L_G only:
    # the simultaneous update of the game, computed here the long way for comparison.
    task = get_task("gan")
    model = task.model(0).double()
    real = task.data(0).train[0][:64].double()
    torch.manual_seed(1)
    got = _grads(model, task.loss(model(real), real))

    torch.manual_seed(1)
    z = torch.randn(64, 8, dtype=torch.float64)
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    fake = model.generator(z)
    d_loss = bce(model.discriminator(real), torch.ones(64, 1, dtype=torch.float64)) + bce(
        model.discriminator(fake.detach()), torch.zeros(64, 1, dtype=torch.float64)
    )
    d_grads = _grads(model, d_loss)
    g_loss = bce(model.discriminator(model.generator(z)), torch.ones(64, 1, dtype=torch.float64))
    g_grads = _grads(model, g_loss)
    for name, grad in got.items():
        want = d_grads[name] if name.startswith("discriminator") else g_grads[name]
        torch.testing.assert_close(grad, want, rtol=1e-12, atol=1e-14)
    assert set(got) == {n for n, _ in model.named_parameters()}


def test_sliced_wasserstein_of_a_shift_is_its_mean_projection() -> None:
    # Shifting a sample by d moves every projection by d.u_k: SW = mean_k |d.u_k|.
    a = torch.randn(300, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    d = torch.tensor([0.3, -0.7], dtype=torch.float64)
    k = 16
    want = (
        sum(
            abs(d[0] * math.cos(math.pi * i / k) + d[1] * math.sin(math.pi * i / k))
            for i in range(k)
        )
        / k
    )
    assert sliced_wasserstein(a, a + d, angles=k).item() == pytest.approx(float(want), rel=1e-12)
    assert sliced_wasserstein(a, a.flip(0)).item() == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match=r"\(n, 2\)"):
        sliced_wasserstein(a, a[:10])


def test_metrics_on_the_real_data_and_on_a_collapsed_generator() -> None:
    task = get_task("gan")
    real = task.data(0).val[0]
    perfect = task.model(0)(real)._replace(fake=real)
    assert task.metrics["modes"](perfect, real) == 8
    # A 2-D Gaussian puts 1 - exp(-9/2) = 0.9889 of its mass within 3 std of its centre;
    # 2048 draws give a binomial std of 0.0023.
    assert task.metrics["quality"](perfect, real) == pytest.approx(1 - math.exp(-4.5), abs=0.01)
    assert task.metrics["spread"](perfect, real) == pytest.approx(1.0)
    one_mode = perfect._replace(fake=centers()[3] + 0.05 * torch.randn(len(real), 2))
    assert task.metrics["modes"](one_mode, real) == 1
    assert task.metrics["spread"](one_mode, real) < 0.1
    assert task.metrics["sliced_w"](one_mode, real) > 10 * task.metrics["sliced_w"](perfect, real)
    assert players_loss(perfect, real).dim() == 0


def test_sample_is_seeded() -> None:
    model = get_task("gan").model(0)
    assert torch.equal(sample(model, 10, seed=3), sample(model, 10, seed=3))
    assert sample(model, 10, seed=3).shape == (10, 2)


def test_the_default_recipe_gets_no_verdict() -> None:
    history, _, _ = run_recipe("adam_beta1_0.5", seed=0, every=40)
    assert history.epochs[-1]["val_modes"] >= 7
    assert diagnose_adversarial(history.epochs, modes=8) == []


def test_unknown_recipe_and_short_history_are_refused() -> None:
    with pytest.raises(ValueError, match="Unknown GAN recipe 'adam'.*simultaneous_gd"):
        run_recipe("adam")
    with pytest.raises(ValueError, match="at least 4 epoch rows"):
        diagnose_adversarial([{}], modes=8)
    assert "optimistic_adam" in RECIPES


def test_the_bad_recipe_collapses_and_oscillates_and_the_diagnosis_says_so(
    tmp_path: object,
) -> None:
    # Adam at lr 3e-2 with beta1 = 0.9: the generator hops between a mode or two.
    from pathlib import Path

    from descend.comparison.gan_dynamics import write_gan_dynamics

    found = write_gan_dynamics(tmp_path, recipes=("adam_lr_3e-2",), every=20)
    collapse = found["adam_lr_3e-2"]["verdicts"][0]
    assert collapse["evidence"]["median_modes"] <= 2, found  # seeds 0-2 measured 0 to 1
    out = Path(str(tmp_path))
    assert (out / "gan_dynamics.png").read_bytes()[:4] == b"\x89PNG"
    assert [v["kind"] for v in found["adam_lr_3e-2"]["verdicts"]] == [
        "mode_collapse",
        "oscillation",
    ]
    assert "adam_lr_3e-2" in (out / "gan_dynamics.json").read_text()


def test_the_recipe_betas_apply_unless_the_caller_gives_others() -> None:
    from descend.comparison.records import hyperparameters
    from descend.tasks import run_task

    ours = run_task("gan", max_steps=1, eval_train=False)
    assert ours.config["optimizer_options"] == {"betas": [0.5, 0.999]}
    given = run_task("gan", max_steps=1, eval_train=False, optimizer_options={"betas": (0.9, 0.99)})
    assert given.config["optimizer_options"] == {"betas": [0.9, 0.99]}
    assert run_task("gan", "sgd", max_steps=1, eval_train=False).config["optimizer_options"] == {}
    recipe = get_task("gan").optimizer_options["adam"]
    h = hyperparameters("adam", 1e-3, "task default table", {"betas": (0.5, 0.999)}, recipe=recipe)
    assert h["betas"] == {"value": [0.5, 0.999], "source": "task table"}
    h = hyperparameters("adam", 1e-3, "task default table", {"betas": (0.9, 0.99)}, recipe=recipe)
    assert h["betas"]["source"] == "command line"
