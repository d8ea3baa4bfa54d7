r"""``gan``: a generative adversarial network on a ring of 8 Gaussians (the picture of mode collapse).

Two players descend at once. The discriminator :math:`D` minimises
:math:`L_D = -\log D(x) - \log(1 - D(G(z)))`; the generator :math:`G` minimises the
non-saturating :math:`L_G = -\log D(G(z))` (Goodfellow et al., 2014). The task's
loss is :math:`L_D + L_G` with stop-gradients placed so that the gradient of the
sum with respect to :math:`D`'s parameters is :math:`\nabla L_D` and with respect to
:math:`G`'s is :math:`\nabla L_G`: one ``backward`` gives both players' gradients,
and one optimizer step is the *simultaneous* update of the two. Any registry
optimizer therefore trains the GAN through the ordinary ``fit`` loop; the logged
loss is the sum, which need not fall (at the game's equilibrium it is
:math:`2 \log 2 + \log 2`).

Metrics on the generated samples of each evaluation: ``modes`` (how many of the
8 Gaussians hold at least :data:`MIN_SHARE` of the samples within 3 standard
deviations), ``quality`` (the fraction of samples within 3 standard deviations
of some mode), ``spread`` (how wide the generated cloud is, relative to the data) and ``sliced_w`` (the sliced 1-Wasserstein distance between the
generated and the real samples, over :data:`ANGLES` evenly spaced directions).

References:
    Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014. https://arxiv.org/abs/1406.2661
    Metz et al., "Unrolled Generative Adversarial Networks", ICLR 2017 (the 8-Gaussian ring).
    https://arxiv.org/abs/1611.02163
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.func import functional_call

from descend.tasks._common import lr_table
from descend.tasks.task import Target, Task, TaskData

MODES = 8
RADIUS = 2.0
STD = 0.1
LATENT = 8
HIDDEN = 128
TRAIN, VAL = 4096, 2048
MIN_SHARE = 0.02  # a sixth of a mode's fair share (1/8) counts it as covered
ANGLES = 32


def centers() -> Tensor:
    """The 8 mode centres (8, 2), evenly spaced on a circle of radius :data:`RADIUS`."""
    angle = torch.arange(MODES, dtype=torch.float32) * (2 * math.pi / MODES)
    return RADIUS * torch.stack([angle.cos(), angle.sin()], dim=1)


def ring(n: int, generator: torch.Generator) -> Tensor:
    """``n`` samples (n, 2) from the equal-weight mixture of the 8 Gaussians."""
    which = torch.randint(0, MODES, (n,), generator=generator)
    return centers()[which] + STD * torch.randn(n, 2, generator=generator)


class GANOutput(NamedTuple):
    """What one forward pass gives the loss and the metrics."""

    d_real: Tensor  # (B, 1) D's logits on real samples
    d_fake: Tensor  # (B, 1) D's logits on G's samples, G held fixed (D's loss)
    d_fake_for_g: Tensor  # (B, 1) the same logits with D held fixed (G's loss)
    fake: Tensor  # (B, 2) the generated samples


def _mlp(n_in: int, n_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(n_in, HIDDEN), nn.LeakyReLU(0.2), nn.Linear(HIDDEN, HIDDEN), nn.LeakyReLU(0.2),
        nn.Linear(HIDDEN, n_out),
    )  # fmt: skip


class GAN(nn.Module):
    """Generator MLP latent -> 2 and discriminator MLP 2 -> 1 logit; forward draws z ~ N(0, I)."""

    def __init__(self) -> None:
        super().__init__()
        self.generator = _mlp(LATENT, 2)
        self.discriminator = _mlp(2, 1)

    def forward(self, real: Tensor) -> GANOutput:  # real: (B, 2)
        z = torch.randn(len(real), LATENT, device=real.device, dtype=real.dtype)
        fake = self.generator(z)
        # D's parameters as constants, so G's loss sends no gradient into D.
        frozen = {n: p.detach() for n, p in self.discriminator.named_parameters()}
        return GANOutput(
            d_real=self.discriminator(real),
            d_fake=self.discriminator(fake.detach()),  # G as a constant for D's loss
            d_fake_for_g=functional_call(self.discriminator, frozen, (fake,)),
            fake=fake,
        )


def players_loss(output: GANOutput, target: Tensor) -> Tensor:
    """:math:`L_D + L_G`, each a mean over the batch (``target`` is the real batch, unused)."""
    bce = nn.functional.binary_cross_entropy_with_logits
    d = bce(output.d_real, torch.ones_like(output.d_real)) + bce(
        output.d_fake, torch.zeros_like(output.d_fake)
    )
    return d + bce(output.d_fake_for_g, torch.ones_like(output.d_fake_for_g))


def _near(fake: Tensor) -> tuple[Tensor, Tensor]:
    # Each sample's nearest centre and whether it lies within 3 standard deviations of it.
    dist = torch.cdist(fake.float(), centers().to(fake.device))
    d, which = dist.min(dim=1)
    return which, d <= 3 * STD


def modes_covered(output: GANOutput, target: Tensor) -> float:
    """How many of the 8 modes hold at least :data:`MIN_SHARE` of the samples, within 3 std."""
    which, close = _near(output.fake)
    counts = torch.bincount(which[close], minlength=MODES)
    return float((counts >= MIN_SHARE * len(which)).sum())


def quality(output: GANOutput, target: Tensor) -> float:
    """The fraction of generated samples within 3 standard deviations of some mode."""
    return _near(output.fake)[1].float().mean().item()


def spread(output: GANOutput, target: Tensor) -> float:
    """RMS distance of the generated points from their mean, over the real batch's (1 = as wide)."""

    def rms(x: Tensor) -> Tensor:
        return (x.float() - x.float().mean(0)).pow(2).sum(1).mean().sqrt()

    return (rms(output.fake) / rms(target)).item()


def sliced_wasserstein(a: Tensor, b: Tensor, angles: int = ANGLES) -> Tensor:
    r"""Sliced 1-Wasserstein distance between two equal-size 2-D samples.

    .. math::
        SW_1(a, b) = \frac{1}{K} \sum_{k=1}^{K} \frac{1}{n} \sum_{i=1}^{n}
            \bigl| (a \cdot u_k)_{(i)} - (b \cdot u_k)_{(i)} \bigr|,
        \qquad u_k = (\cos \tfrac{\pi k}{K}, \sin \tfrac{\pi k}{K})

    where :math:`(\cdot)_{(i)}` is the :math:`i`-th smallest value: in one dimension
    the optimal transport plan matches sorted samples. Directions are evenly spaced,
    not random, so the distance is a deterministic function of the samples.

    Example:
        >>> a = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
        >>> round(sliced_wasserstein(a, a + torch.tensor([0.5, 0.0]), angles=2).item(), 3)
        0.25
    """
    if a.shape != b.shape or a.dim() != 2 or a.shape[1] != 2:
        raise ValueError(f"sliced_wasserstein needs two (n, 2) samples, got {a.shape}, {b.shape}")
    k = torch.arange(angles, dtype=a.dtype, device=a.device) * (math.pi / angles)
    u = torch.stack([k.cos(), k.sin()])  # (2, K)
    pa, pb = (a @ u).sort(dim=0).values, (b @ u).sort(dim=0).values
    return (pa - pb).abs().mean()


def sliced_w(output: GANOutput, target: Tensor) -> float:
    """:func:`sliced_wasserstein` between the generated samples and the real batch."""
    return sliced_wasserstein(output.fake.float(), target.float()).item()


def _data(seed: int) -> TaskData:
    g = torch.Generator().manual_seed(seed)
    train, val = ring(TRAIN, g), ring(VAL, g)
    # The discriminator's real samples are both the input and the (unused) target.
    return TaskData(train=(train, train), val=(val, val), meta={"centers": centers(), "std": STD})


@torch.no_grad()
def sample(model: GAN, n: int, *, seed: int = 0) -> Tensor:
    """``n`` generated points (n, 2) from z ~ N(0, I) drawn with ``seed``."""
    z = torch.randn(n, LATENT, generator=torch.Generator().manual_seed(seed))
    device = next(model.parameters()).device
    return model.generator(z.to(device)).float().cpu()


def gan() -> Task:
    """GAN on a ring of 8 Gaussians; simultaneous updates of generator and discriminator."""
    return Task(
        name="gan",
        summary="GAN on a ring of 8 Gaussians (two players; mode collapse and cycling)",
        data_source=(
            f"generated from the seed: {MODES} Gaussians of std {STD} on a circle of radius "
            f"{RADIUS}, {TRAIN} train + {VAL} val points"
        ),
        model_summary=(
            f"generator MLP {LATENT}-{HIDDEN}-{HIDDEN}-2, discriminator MLP 2-{HIDDEN}-{HIDDEN}-1 "
            "(LeakyReLU 0.2), non-saturating loss, simultaneous updates"
        ),
        target=Target("val_modes", 7.0, "max"),
        epochs=40,
        batch_size=128,
        lrs=lr_table(1e-3, gd=0.01, sgd=0.01, momentum=0.001, nesterov=0.001, adagrad=0.01),
        default_optimizer="adam",
        measured="val_modes 8 of 8, sliced W 0.16 (seeds 1, 2: 8, 8), at target from epoch 21",
        optimizer_options={"adam": {"betas": (0.5, 0.999)}, "adamw": {"betas": (0.5, 0.999)}},
        metrics={
            "modes": modes_covered,
            "quality": quality,
            "spread": spread,
            "sliced_w": sliced_w,
        },
        make_data=_data,
        make_model=GAN,
        loss_fn=players_loss,
    )
