"""A real ``descend train`` process killed mid-run loses nothing but the steps since its last checkpoint.

These tests run the CLI as a separate process (``python -m descend.cli.main``),
so the kill is a real SIGKILL at an arbitrary point: during an update, between
updates, or in the middle of writing a checkpoint.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from descend.tasks import run_task
from descend.train.checkpoint import load_checkpoint

# A short linreg run: 10 epochs of 32 mini-batches, a checkpoint every 8 updates (40 in all).
EPOCHS, BATCH, EVERY = 10, 16, 8
TOTAL_STEPS = EPOCHS * 512 // BATCH
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def train_args(out: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "descend.cli.main", "train", "linreg",
        "--epochs", str(EPOCHS), "--batch-size", str(BATCH), "--checkpoint-every", str(EVERY),
        "--seed", "0", "--out", str(out), "--quiet", *extra,
    ]  # fmt: skip


def start(out: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        train_args(out, *extra), env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def wait_for_checkpoints(proc: subprocess.Popen, path: Path, count: int) -> None:
    """Poll until ``path`` has been (re)written ``count`` times: each save renames a new file in."""
    deadline = time.monotonic() + 240.0
    seen, inode = 0, None
    while seen < count:
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"train ended before checkpoint {count}:\n{out}\n{err}")
        assert time.monotonic() < deadline, f"only {seen} checkpoints appeared"
        try:
            current = path.stat().st_ino
        except FileNotFoundError:  # before the first save, or between the two renames
            current = inode
        if current != inode:
            seen, inode = seen + 1, current
        time.sleep(0.002)


def uninterrupted_parameters(tmp: Path) -> dict[str, torch.Tensor]:
    """The same run in this process, never stopped (one thread, like the CLI processes)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = run_task(
            "linreg", "gd", epochs=EPOCHS, batch_size=BATCH, seed=0, schedule="constant",
            checkpoint_dir=tmp / "straight", checkpoint_every=EVERY,
        )  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    return result.model.state_dict()


def test_sigkill_at_a_random_moment_then_resume_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    out = tmp_path / "run"
    last = out / "checkpoints" / "last.pt"
    proc = start(out)
    # A random moment in the first quarter of the run: after the k-th checkpoint, plus up
    # to about one checkpoint interval, so the kill lands in an update or inside a write.
    k, delay = random.randint(1, 10), random.uniform(0.0, 0.03)
    wait_for_checkpoints(proc, last, k)
    time.sleep(delay)
    still_running = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert still_running and proc.returncode == -signal.SIGKILL, f"not killed mid-run ({k=})"
    assert not (out / "model.pt").exists()  # the run really did not finish

    # Whatever moment the kill hit, every checkpoint file left is complete and intact
    # (a half-written one only ever exists under a temporary name).
    saved = [p for p in (last, last.with_name("last.prev.pt")) if p.exists()]
    steps = [load_checkpoint(p)["loop"]["step"] for p in saved]
    assert steps and all(0 < s < TOTAL_STEPS and s % EVERY == 0 for s in steps), (k, delay, steps)

    resumed = subprocess.run(
        train_args(out, "--resume"),
        check=False,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stderr
    final = torch.load(out / "model.pt", weights_only=True)["model"]
    expected = uninterrupted_parameters(tmp_path)
    assert final.keys() == expected.keys()
    for name, value in expected.items():
        assert torch.equal(final[name], value), f"{name} differs after a kill ({k=}, {delay=:.3f})"
    assert load_checkpoint(last)["loop"]["step"] == TOTAL_STEPS
    assert len(load_checkpoint(last)["history"]["steps"]) == TOTAL_STEPS  # no step lost or doubled


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_finishes_the_step_writes_a_checkpoint_and_says_how_to_resume(
    tmp_path: Path, signum: int
) -> None:
    name = signal.Signals(signum).name
    out = tmp_path / "run"
    last = out / "checkpoints" / "last.pt"
    proc = start(out)
    wait_for_checkpoints(proc, last, 1)
    proc.send_signal(signum)
    stdout, stderr = proc.communicate(timeout=600)
    text = stdout + stderr
    assert "Traceback" not in text
    assert f"Interrupted by {name} after step" in text and "resume" in text, text
    # The command line says how to resume with the command line, and exits 128 + signal
    # so that a job scheduler does not take a preempted run for a finished one.
    assert f"--out {out} --resume" in stderr, stderr
    assert proc.returncode == 128 + signum
    stopped_at = int(text.split(f"Interrupted by {name} after step ")[1].split(";")[0])
    assert 0 < stopped_at < TOTAL_STEPS
    # The checkpoint holds exactly the state after the step the message names.
    payload = load_checkpoint(last)
    assert payload["loop"]["step"] == stopped_at
    assert len(payload["history"]["steps"]) == stopped_at
