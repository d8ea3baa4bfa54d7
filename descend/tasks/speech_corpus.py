"""A spoken-digits corpus synthesised on this machine with espeak-ng, and its log-mel features.

The ten English digit words are spoken by :data:`ACCENTS` x :data:`VARIANTS` voices of
espeak-ng (GPL-3.0; the audio it produces is ours to use) at two speeds and two
pitches; Gaussian noise at a random signal-to-noise ratio (fixed seed) is added,
and each clip becomes a log-mel spectrogram. The features are written once to the
user cache (``$DESCEND_CACHE``, else ``$XDG_CACHE_HOME/descend``, else
``~/.cache/descend``) under a name that hashes every setting and the espeak-ng
version, so a change of either builds a new file.

Features: ``torch.stft`` and a mel filterbank written here (HTK mel scale,
triangular filters), read from WAV with :mod:`scipy.io.wavfile` (scipy comes with
scikit-learn). An audio library such as librosa would add numba and llvmlite (about
100 MB and seconds of import) for these 20 lines; torchaudio pins another torch.
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
# espeak-ng's own English voices (no mbrola add-ons): eight accents.
ACCENTS = (
    "en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-us-nyc",
    "en-gb-x-gbclan", "en-gb-x-gbcwmd",
)  # fmt: skip
VARIANTS = ("m1", "m3", "m5", "f1", "f3", "f5")
SPEEDS = (130, 190)  # words per minute
PITCHES = (30, 70)  # 0-99
RATE = 22050  # espeak-ng's output sample rate
CLIP = RATE  # one second, zero-padded or cut
N_FFT, HOP, MELS = 512, 256, 32
SNR_DB = (5.0, 25.0)
INSTALL = (
    "the speech task synthesises its corpus with espeak-ng, which is not installed. Install "
    "it with `sudo apt-get install espeak-ng` (Debian, Ubuntu), `sudo dnf install espeak-ng` "
    "(Fedora) or `brew install espeak-ng` (macOS), then run again."
)


def espeak() -> str:
    """The path of ``espeak-ng``; :class:`FileNotFoundError` saying how to install it if missing."""
    found = shutil.which("espeak-ng")
    if found is None:
        raise FileNotFoundError(INSTALL)
    return found


def cache_dir() -> Path:
    """Where built corpora are kept (see the module docstring)."""
    root = os.environ.get("DESCEND_CACHE")
    if root:
        return Path(root)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "descend"


def _synthesise(exe: str, word: str, accent: str, variant: str, speed: int, pitch: int) -> Tensor:
    from scipy.io import wavfile

    # To a file, not --stdout: a streamed WAV header cannot state the length.
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "clip.wav"
        voice = f"{accent}+{variant}"
        subprocess.run(
            [exe, "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(out), word],
            check=True,
            capture_output=True,
        )
        rate, samples = wavfile.read(out)
    if rate != RATE:
        raise RuntimeError(f"espeak-ng wrote {rate} Hz audio; the speech task expects {RATE} Hz")
    x = torch.from_numpy(samples.astype(np.float32) / 32768.0)[:CLIP]
    return torch.nn.functional.pad(x, (0, CLIP - len(x)))


def mel_filterbank(n_fft: int = N_FFT, mels: int = MELS, rate: int = RATE) -> Tensor:
    r"""Triangular filters (mels, n_fft // 2 + 1) evenly spaced on the HTK mel scale.

    .. math::
        m(f) = 2595 \log_{10}(1 + f / 700)

    Filter :math:`k` rises from 0 at the mel point :math:`k` to 1 at :math:`k + 1` and
    falls to 0 at :math:`k + 2`, over ``mels + 2`` points from 0 Hz to ``rate / 2``.
    """
    freqs = torch.linspace(0, rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    top = 2595 * math.log10(1 + (rate / 2) / 700)
    points = 700 * (10 ** (torch.linspace(0, top, mels + 2, dtype=torch.float64) / 2595) - 1)
    lo, mid, hi = points[:-2, None], points[1:-1, None], points[2:, None]
    rise = (freqs - lo) / (mid - lo)
    fall = (hi - freqs) / (hi - mid)
    return rise.minimum(fall).clamp_min(0).float()


def log_mel(clips: Tensor) -> Tensor:
    """Log-mel spectrograms (N, 1, MELS, frames) of clips (N, samples): log(1e-6 + power)."""
    spec = (
        torch.stft(clips, N_FFT, HOP, window=torch.hann_window(N_FFT), return_complex=True)
        .abs()
        .pow(2)
    )  # (N, freqs, frames)
    return (mel_filterbank() @ spec + 1e-6).log().unsqueeze(1)


def _settings() -> list[tuple[str, str, str, int, int]]:
    return [
        (w, a, v, s, p)
        for a in ACCENTS
        for v in VARIANTS
        for w in WORDS
        for s in SPEEDS
        for p in PITCHES
    ]


def _version(exe: str) -> str:
    return subprocess.run([exe, "--version"], check=True, capture_output=True, text=True).stdout


def build(*, progress: bool | None = None, workers: int = 4) -> dict[str, Tensor]:
    """The corpus as ``{"features", "labels", "accent", "variant"}``, built or read from the cache.

    The first call synthesises every clip (about 1,900, with a progress bar on a
    terminal) and writes the file; later calls read it.

    Raises:
        FileNotFoundError: espeak-ng is not installed (the message says how to install it).
    """
    exe = espeak()
    jobs = _settings()
    key = repr((jobs, RATE, CLIP, N_FFT, HOP, MELS, SNR_DB, _version(exe)))
    path = cache_dir() / f"speech-{hashlib.sha256(key.encode()).hexdigest()[:16]}.pt"
    if path.exists():
        return torch.load(path, weights_only=True)
    from tqdm.auto import tqdm

    # Synthesis is a process per clip, waiting on espeak-ng: threads overlap those waits.
    with ThreadPoolExecutor(workers) as pool:
        clips = list(
            tqdm(
                pool.map(lambda j: _synthesise(exe, *j), jobs),
                total=len(jobs),
                desc="synthesising spoken digits (once; cached)",
                disable=None if progress is None else not progress,
            )
        )
    x = torch.stack(clips)
    g = torch.Generator().manual_seed(0)
    snr = torch.empty(len(x), 1).uniform_(*SNR_DB, generator=g)
    power = x.pow(2).mean(1, keepdim=True).clamp_min(1e-10)
    x = x + torch.randn(x.shape, generator=g) * (power / 10 ** (snr / 10)).sqrt()
    corpus = {
        "features": log_mel(x),
        "labels": torch.tensor([WORDS.index(j[0]) for j in jobs]),
        "accent": torch.tensor([ACCENTS.index(j[1]) for j in jobs]),
        "variant": torch.tensor([VARIANTS.index(j[2]) for j in jobs]),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    torch.save(corpus, partial)
    partial.replace(path)  # a torn file is never read as a corpus
    return corpus
