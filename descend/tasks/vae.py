"""``vae``: a small variational autoencoder on the 8x8 digits (a generative task).

Pixels are scaled to [0, 1] and modelled as Bernoulli probabilities. The loss is
the negative evidence lower bound per image, in nats:

    -ELBO(x) = E_q(z|x)[-log p(x|z)] + KL(q(z|x) || N(0, I)),

estimated with one reparameterised sample of z (in evaluation too, so the
validation number is an ELBO and not a deterministic reconstruction score).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from descend.tasks._common import digits_split, lr_table
from descend.tasks.task import Target, Task, TaskData

LATENT = 8
HIDDEN = 128
PIXELS = 64

# (reconstruction logits (B, 64), mu (B, L), logvar (B, L))
VAEOutput = tuple[Tensor, Tensor, Tensor]


class VAE(nn.Module):
    """MLP encoder to a diagonal Gaussian q(z|x); MLP decoder to Bernoulli pixel logits."""

    def __init__(self, latent: int = LATENT, hidden: int = HIDDEN) -> None:
        super().__init__()
        self.latent = latent
        self.encoder = nn.Sequential(
            nn.Linear(PIXELS, hidden), nn.ReLU(), nn.Linear(hidden, 2 * latent)
        )
        self.decoder = nn.Sequential(
            nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, PIXELS)
        )

    def forward(self, x: Tensor) -> VAEOutput:  # x: (B, 64) in [0, 1]
        mu, logvar = self.encoder(x).chunk(2, dim=-1)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()  # reparameterisation trick
        return self.decoder(z), mu, logvar


def _reconstruction(output: VAEOutput, target: Tensor) -> Tensor:
    bce = nn.functional.binary_cross_entropy_with_logits(output[0], target, reduction="sum")
    return bce / len(target)


def _kl(output: VAEOutput, target: Tensor) -> Tensor:
    _, mu, logvar = output
    return -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum() / len(target)


def reconstruction_nats(output: VAEOutput, target: Tensor) -> float:
    """The reconstruction term, -log p(x|z), in nats per image."""
    return _reconstruction(output, target).item()


def kl_nats(output: VAEOutput, target: Tensor) -> float:
    """The KL term, KL(q(z|x) || N(0, I)), in nats per image."""
    return _kl(output, target).item()


def negative_elbo(output: VAEOutput, target: Tensor) -> Tensor:
    """Reconstruction + KL, in nats per image (mean over the batch)."""
    return _reconstruction(output, target) + _kl(output, target)


def _data(seed: int) -> TaskData:
    x_tr, _, x_va, _ = digits_split(seed)
    # An autoencoder's target is its input.
    return TaskData(train=(x_tr, x_tr), val=(x_va, x_va), meta={"image_shape": (8, 8)})


@torch.no_grad()
def sample(model: VAE, n: int, *, seed: int = 0) -> Tensor:
    """``n`` images (n, 8, 8) of pixel probabilities, decoded from z ~ N(0, I)."""
    g = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device
    z = torch.randn(n, model.latent, generator=g).to(device)
    return model.decoder(z).sigmoid().view(n, 8, 8).cpu()


def vae() -> Task:
    """Variational autoencoder on the digits; loss = negative ELBO (nats per image)."""
    return Task(
        name="vae",
        summary="variational autoencoder on 8x8 digits (generative; loss = -ELBO)",
        data_source="scikit-learn's bundled 8x8 digits (UCI, CC BY 4.0) scaled to [0, 1]; 80/20 split by seed",
        model_summary=f"MLP encoder 64-{HIDDEN}-2x{LATENT}, MLP decoder {LATENT}-{HIDDEN}-64 (Bernoulli)",
        target=Target("val_loss", 25.0, "min"),
        epochs=30,
        batch_size=64,
        lrs=lr_table(3e-3, gd=0.01, sgd=0.01, momentum=0.002, nesterov=0.002, adagrad=0.05),
        default_optimizer="adam",
        measured="val_loss 24.60 nats/image, at target from epoch 13",
        metrics={"reconstruction": reconstruction_nats, "kl": kl_nats},
        make_data=_data,
        make_model=VAE,
        loss_fn=negative_elbo,
    )
