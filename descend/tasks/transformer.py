"""``transformer``: a small GPT-style character language model on the same text as ``charlm``.

A decoder-only transformer (Radford et al., 2018; the layout of Karpathy's
nanoGPT): token and position embeddings, pre-LayerNorm blocks of causal
multi-head self-attention and a 4x MLP, a final LayerNorm and a linear head.
It is the model on which AdamW and the newer matrix optimizers (Muon, SOAP) are
usually compared, so its parameters are named for routing: every hidden matrix
is a 2-D ``nn.Linear`` weight inside ``blocks``; the embeddings are
``tok_emb``/``pos_emb`` and the read-out is ``lm_head`` (not tied to the
embedding), and the gains and biases are 1-D.

References:
    Radford et al., "Improving Language Understanding by Generative Pre-Training" (2018).
    https://github.com/karpathy/nanoGPT
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from descend.tasks._common import lr_table
from descend.tasks.charlm import (
    _ALPHABET,
    MODULES,
    SEQ_LEN,
    _cross_entropy,
    _data,
    bits_per_char,
    check_prompt,
)
from descend.tasks.task import Target, Task

EMBED = 64
HEADS = 4
LAYERS = 2


class CausalSelfAttention(nn.Module):
    """Multi-head attention in which position t sees positions <= t only."""

    def __init__(self, embed: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(embed, 3 * embed)
        self.proj = nn.Linear(embed, embed)

    def forward(self, x: Tensor) -> Tensor:
        B, T, C = x.shape  # batch, sequence, channels
        q, k, v = self.qkv(x).split(C, dim=2)
        # (B, T, C) -> (B, heads, T, C / heads): each head attends on its own slice.
        q, k, v = (t.view(B, T, self.heads, C // self.heads).transpose(1, 2) for t in (q, k, v))
        y = nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.proj(y.transpose(1, 2).reshape(B, T, C))


class Block(nn.Module):
    """Pre-LayerNorm residual block: x + attention(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, embed: int, heads: int) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(embed)
        self.attn = CausalSelfAttention(embed, heads)
        self.ln2 = nn.LayerNorm(embed)
        self.mlp = nn.Sequential(
            nn.Linear(embed, 4 * embed), nn.GELU(), nn.Linear(4 * embed, embed)
        )

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class CharTransformer(nn.Module):
    """Token + position embedding -> ``layers`` blocks -> LayerNorm -> linear head (logits)."""

    def __init__(
        self,
        vocab: str,
        *,
        embed: int = EMBED,
        heads: int = HEADS,
        layers: int = LAYERS,
        context: int = SEQ_LEN,
    ) -> None:
        super().__init__()
        self.vocab = vocab
        self.context = context
        self.tok_emb = nn.Embedding(len(vocab), embed)
        self.pos_emb = nn.Embedding(context, embed)
        self.blocks = nn.Sequential(*(Block(embed, heads) for _ in range(layers)))
        self.ln_f = nn.LayerNorm(embed)
        self.lm_head = nn.Linear(embed, len(vocab))
        # GPT-2's initialisation: N(0, 0.02) weights, zero biases; the projections that
        # write into the residual stream are scaled by 1/sqrt(2 * layers) so the
        # stream's variance does not grow with depth.
        for name, p in self.named_parameters():
            if p.dim() == 1:
                continue
            std = (
                0.02 / (2 * layers) ** 0.5
                if name.endswith(("proj.weight", "mlp.2.weight"))
                else 0.02
            )
            nn.init.normal_(p, 0.0, std)
        for m in self.modules():
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)

    def forward(self, ids: Tensor) -> Tensor:  # (B, T) -> (B, T, V)
        T = ids.shape[1]
        if T > self.context:
            raise ValueError(f"sequence of {T} ids is longer than the context of {self.context}")
        pos = torch.arange(T, device=ids.device)
        x = self.tok_emb(ids) + self.pos_emb(pos)  # (B, T, C)
        return self.lm_head(self.ln_f(self.blocks(x)))


@torch.no_grad()
def sample(
    model: CharTransformer, prompt: str, n: int, *, temperature: float = 1.0, seed: int = 0
) -> str:
    """Continue ``prompt`` by ``n`` characters drawn from the model (the prompt is not repeated).

    Only the last ``model.context`` characters are fed back, the window it was trained on.

    Raises:
        ValueError: the prompt is empty or has a character outside the model's vocabulary,
            or ``temperature <= 0``.
    """
    check_prompt(prompt, model.vocab, temperature)
    g = torch.Generator().manual_seed(seed)
    was_training = model.training
    model.eval()
    device = model.lm_head.weight.device
    ids = [model.vocab.index(c) for c in prompt]
    out = []
    for _ in range(n):
        window = torch.tensor([ids[-model.context :]], device=device)
        probs = (model(window)[0, -1].float().cpu() / temperature).softmax(-1)
        nxt = int(torch.multinomial(probs, 1, generator=g))
        ids.append(nxt)
        out.append(model.vocab[nxt])
    model.train(was_training)
    return "".join(out)


def transformer() -> Task:
    """Next-character prediction on standard-library docstrings with a small causal transformer."""
    n_params = sum(p.numel() for p in CharTransformer(_ALPHABET).parameters())
    return Task(
        name="transformer",
        summary="GPT-style character language model (causal self-attention)",
        data_source=(
            f"the charlm text: docstrings of {len(MODULES)} Python standard-library modules, "
            "collected at run time (PSF License); last 10% is val"
        ),
        model_summary=(
            f"token+position embedding {EMBED} -> {LAYERS} pre-LN blocks ({HEADS}-head causal "
            f"attention, MLP {4 * EMBED}) -> linear (~{n_params // 1000}k params)"
        ),
        target=Target("val_bits_per_char", 3.25, "min"),
        epochs=4,
        batch_size=16,
        lrs=lr_table(3e-3, gd=1.0, sgd=1.0, momentum=0.1, nesterov=0.1, adagrad=0.05),
        default_optimizer="adamw",
        measured="val_bits_per_char 3.13 (seeds 1, 2: 3.15, 3.15), at target from epoch 3",
        metrics={"bits_per_char": bits_per_char},
        make_data=_data,
        make_model=lambda: CharTransformer(_ALPHABET),
        loss_fn=_cross_entropy,
    )
