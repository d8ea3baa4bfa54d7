"""``charlm``: a character-level GRU language model on the Python standard library's docstrings.

The text is collected at run time from the ``__doc__`` strings of a fixed list
of standard-library modules (and their public classes, functions and methods),
so it ships with every Python installation (PSF License). It varies a little
between Python versions; under ``python -OO`` docstrings are stripped and the
task refuses to run.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import string
import sys
import warnings

import torch
from torch import Tensor, nn

from descend.tasks._common import lr_table
from descend.tasks.task import Target, Task, TaskData

MODULES = (
    "abc", "argparse", "base64", "bisect", "calendar", "collections", "contextlib", "copy",
    "csv", "dataclasses", "datetime", "decimal", "difflib", "enum", "fractions", "functools",
    "heapq", "inspect", "itertools", "json", "logging", "os", "pathlib", "pprint", "queue",
    "random", "re", "shutil", "statistics", "string", "subprocess", "tempfile", "textwrap",
    "threading", "unittest", "urllib.parse", "uuid", "zipfile",
)  # fmt: skip
SEQ_LEN = 32
VAL_FRACTION = 0.1
# Printable ASCII and newline; anything else (box-drawing characters, tabs) becomes "?".
_ALPHABET = "\n" + "".join(c for c in string.printable if c.isprintable())


def _docstrings(module_name: str) -> list[str]:
    module = importlib.import_module(module_name)
    docs = [module.__doc__]
    for name in sorted(vars(module)):
        obj = vars(module)[name]
        if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
            continue
        if inspect.isfunction(obj) or inspect.isclass(obj):
            docs.append(obj.__doc__)
        if inspect.isclass(obj):
            docs += [
                f.__doc__
                for n, f in sorted(vars(obj).items())
                if not n.startswith("_") and inspect.isfunction(f)
            ]
    return [inspect.cleandoc(d) for d in docs if d]


@functools.cache
def corpus() -> str:
    """The training text: docstrings of :data:`MODULES`, restricted to printable ASCII."""
    if sys.flags.optimize >= 2:
        raise RuntimeError("charlm needs docstrings, which python -OO strips; run without -OO")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        text = "\n\n".join(d for m in MODULES for d in _docstrings(m))
    allowed = set(_ALPHABET)
    return "".join(c if c in allowed else "?" for c in text)


def _windows(ids: Tensor, offset: int) -> tuple[Tensor, Tensor]:
    # Non-overlapping windows of SEQ_LEN + 1 ids: inputs are the first SEQ_LEN,
    # targets the same window shifted by one character.
    n = (len(ids) - offset) // (SEQ_LEN + 1)
    w = ids[offset : offset + n * (SEQ_LEN + 1)].view(n, SEQ_LEN + 1)
    return w[:, :-1].contiguous(), w[:, 1:].contiguous()


def _data(seed: int) -> TaskData:
    text = corpus()
    ids = torch.tensor([_ALPHABET.index(c) for c in text], dtype=torch.long)
    # A contiguous split (last 10% is validation), so no validation text is seen in training.
    cut = int(len(ids) * (1 - VAL_FRACTION))
    # The seed shifts where the windows start, so different seeds see different cuts of the text.
    offset = seed % (SEQ_LEN + 1)
    return TaskData(
        train=_windows(ids[:cut], offset),
        val=_windows(ids[cut:], 0),
        meta={"vocab": _ALPHABET, "chars": len(text), "seq_len": SEQ_LEN},
    )


class CharGRU(nn.Module):
    """Embedding -> one GRU layer -> linear read-out to next-character logits."""

    def __init__(self, vocab: str, *, embed: int = 32, hidden: int = 128) -> None:
        super().__init__()
        self.vocab = vocab
        self.embed = nn.Embedding(len(vocab), embed)
        self.gru = nn.GRU(embed, hidden, batch_first=True)
        self.head = nn.Linear(hidden, len(vocab))

    def step(self, ids: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Logits (B, T, V) for ids (B, T), continuing from ``state``; returns the new state too."""
        out, state = self.gru(self.embed(ids), state)
        return self.head(out), state

    def forward(self, ids: Tensor) -> Tensor:  # (B, T) -> (B, T, V)
        return self.step(ids)[0]


def _cross_entropy(output: Tensor, target: Tensor) -> Tensor:
    # Mean over every character of every sequence: nats per character.
    return nn.functional.cross_entropy(output.flatten(0, 1), target.flatten())


def bits_per_char(output: Tensor, target: Tensor) -> float:
    """Cross-entropy in bits per character."""
    return _cross_entropy(output, target).item() / 0.6931471805599453


@torch.no_grad()
def check_prompt(prompt: str, vocab: str, temperature: float) -> None:
    """Refuse what a character model cannot continue: an empty prompt, a character outside
    its vocabulary, a temperature that is not positive."""
    if not prompt:
        raise ValueError("sample needs a non-empty prompt")
    bad = sorted({c for c in prompt if c not in vocab})
    if bad:
        raise ValueError(f"prompt characters {bad} are not in the model's vocabulary")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")


def sample(model: CharGRU, prompt: str, n: int, *, temperature: float = 1.0, seed: int = 0) -> str:
    """Continue ``prompt`` by ``n`` characters drawn from the model (the prompt is not repeated).

    Raises:
        ValueError: the prompt is empty or has a character outside the model's vocabulary.
    """
    check_prompt(prompt, model.vocab, temperature)
    g = torch.Generator().manual_seed(seed)
    was_training = model.training
    model.eval()
    device = model.head.weight.device
    ids = torch.tensor([[model.vocab.index(c) for c in prompt]], device=device)
    logits, state = model.step(ids)
    out = []
    for _ in range(n):
        probs = (logits[0, -1].float().cpu() / temperature).softmax(-1)
        nxt = int(torch.multinomial(probs, 1, generator=g))
        out.append(model.vocab[nxt])
        logits, state = model.step(torch.tensor([[nxt]], device=device), state)
    model.train(was_training)
    return "".join(out)


def charlm() -> Task:
    """Next-character prediction on standard-library docstrings with a small GRU."""
    return Task(
        name="charlm",
        summary="character-level language model (next-character prediction)",
        data_source=(
            f"docstrings of {len(MODULES)} Python standard-library modules, collected at run time "
            "(PSF License; ~250k characters, varies slightly by Python version); last 10% is val"
        ),
        model_summary="embedding 32 -> GRU 128 -> linear (~78k params)",
        target=Target("val_loss", 2.3, "min"),
        epochs=2,
        batch_size=64,
        lrs=lr_table(1e-2, gd=1.0, sgd=1.0, momentum=0.1, nesterov=0.1, adagrad=0.05),
        default_optimizer="adam",
        measured="val_loss 2.17 nats/char (3.13 bits/char), at target from epoch 2",
        metrics={"bits_per_char": bits_per_char},
        make_data=_data,
        make_model=lambda: CharGRU(_ALPHABET),
        loss_fn=_cross_entropy,
    )
