"""``fit`` under ``torchrun --nproc_per_node=2`` on gloo (127.0.0.1, a free port): DDP and
FSDP2 against one process, sharded checkpoints across process counts, a killed rank, a
hung one.

Each test starts torchrun jobs (two Python processes importing torch: a few seconds
each). A file lock makes them take turns, also across pytest-xdist workers, so that two
jobs never compete for the cores (a starved rank would look like a hung peer) or race
for a port.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import distributed_worker
import pytest
import torch

LOCK = Path(tempfile.gettempdir()) / "descend-torchrun-tests.lock"

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(distributed_worker.__file__)

# float64 throughout. The two processes' gradients are each a mean over half the global
# batch, all-reduced and halved: the same numbers as one process's mean, added in another
# order, so each step differs by a few ulps of float64 (~1e-16 relative); 12 steps of AdamW
# on this well-conditioned problem grow that little (observed: losses within 5.4e-16
# relative, weights within 3.3e-16), so 1e-12 leaves a margin of 1000 and still catches
# any real difference (a sample counted twice or lost moves the loss by ~1e-2).
PARITY = 1e-12


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(
    spec: dict, tmp: Path, *, nproc: int = 2, max_restarts: int = 0, timeout: float = 180
) -> subprocess.CompletedProcess:
    path = tmp / f"spec-{time.monotonic_ns()}.json"
    path.write_text(json.dumps(spec))
    env = {
        **os.environ,
        "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        "OMP_NUM_THREADS": "1",
        "DESCEND_COLLECTIVE_TIMEOUT": str(spec.get("timeout", 60)),
    }
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nproc_per_node={nproc}",
        # c10d rendezvous (not a static master address): a restarted attempt meets in a
        # fresh round instead of finding the dead attempt's gloo addresses in the store.
        "--rdzv-backend=c10d",
        f"--rdzv-endpoint=127.0.0.1:{_free_port()}",
        f"--max_restarts={max_restarts}",
        "--monitor_interval=0.2",
        "--shutdown_timeout=2",
        str(WORKER),
        str(path),
    ]
    with open(LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        return subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )


def _ok(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 0, proc.stderr[-4000:]


def one_process(spec: dict) -> dict:
    distributed_worker.train(spec)
    return torch.load(spec["out"], weights_only=True)


def _close(a: dict, b: dict, rel: float) -> None:
    """Same step and epoch rows (losses, gradient norms, metrics) and final parameters."""
    assert len(a["steps"]) == len(b["steps"])
    for key in ("loss", "grad_norm"):
        x = torch.tensor([r[key] for r in a["steps"]], dtype=torch.float64)
        y = torch.tensor([r[key] for r in b["steps"]], dtype=torch.float64)
        torch.testing.assert_close(x, y, rtol=rel, atol=0)
    for ra, rb in zip(a["epochs"], b["epochs"], strict=True):
        for key in ("train_loss", "val_loss"):
            assert ra[key] == pytest.approx(rb[key], rel=rel, abs=0)
    for name, p in a["params"].items():
        torch.testing.assert_close(p, b["params"][name], rtol=rel, atol=rel * p.abs().max())


@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_two_processes_follow_the_one_process_loss_curve(strategy: str, tmp_path: Path) -> None:
    """Global batch 16 shared 8 + 8 (the last batch 1 + 1), clipping on (the global norm
    is reduced across ranks), 4 batches x 3 epochs: every logged loss, gradient norm,
    epoch metric and final weight equals one process's within PARITY."""
    spec = {"strategy": strategy, "clip": 0.5}
    ref = one_process({**spec, "out": str(tmp_path / "one.pt")})
    _ok(torchrun({**spec, "out": str(tmp_path / "two.pt")}, tmp_path))
    two = torch.load(tmp_path / "two.pt", weights_only=True)
    assert any(r["grad_norm"] > 0.5 for r in ref["steps"])  # clipping did act
    _close(ref, two, PARITY)


def _identical(a: object, b: object) -> None:
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape
        assert torch.equal(a, b)
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), (a.keys(), b)
        for k in a:
            _identical(a[k], b[k])
    elif isinstance(a, list | tuple):
        assert len(a) == len(b)
        for u, v in zip(a, b, strict=True):
            _identical(u, v)
    else:
        assert a == b


def test_sharded_checkpoint_round_trip_two_one_two_is_bit_identical(tmp_path: Path) -> None:
    """FSDP2 on 2 ranks saves model and AdamW state (each rank its shards); one plain
    process loads it (DCP reshards) and saves it again; 2 ranks load that: the whole
    state, gathered, is the first one bit for bit."""
    paths = {k: str(tmp_path / k) for k in ("first", "second")}
    _ok(torchrun({**paths, "phase": "save", "out": str(tmp_path / "a.pt")}, tmp_path))
    distributed_worker.round_trip({**paths, "phase": "move"})
    _ok(torchrun({**paths, "phase": "load", "out": str(tmp_path / "b.pt")}, tmp_path))
    a = torch.load(tmp_path / "a.pt", weights_only=True)
    b = torch.load(tmp_path / "b.pt", weights_only=True)
    assert a["optimizer"]["state"]  # the moments travelled too
    _identical(a, b)


def test_a_rank_killed_mid_run_resumes_to_the_uninterrupted_result(tmp_path: Path) -> None:
    """FSDP2, checkpoint every 5 steps; rank 1 SIGKILLs itself after step 7 in the first
    attempt. torchrun (--max-restarts=1) restarts both ranks, fit(resume=True) continues
    from step 5's complete checkpoint, and the run ends as the uninterrupted one."""
    spec = {"strategy": "fsdp", "checkpoint_every": 5, "resume": True}
    spec["checkpoint_dir"] = str(tmp_path / "ck")
    ref = one_process({"strategy": "fsdp", "out": str(tmp_path / "one.pt")})
    proc = torchrun(
        {**spec, "kill": [1, 7], "out": str(tmp_path / "two.pt")}, tmp_path, max_restarts=1
    )
    _ok(proc)
    assert "SIGKILL" in proc.stderr or "-9" in proc.stderr, proc.stderr[-3000:]
    _close(ref, torch.load(tmp_path / "two.pt", weights_only=True), PARITY)


def test_a_hung_peer_ends_the_job_within_the_timeout(tmp_path: Path) -> None:
    """Rank 1 stops answering after step 3; rank 0 gives up after the collective timeout
    (10 s here: short, yet longer than the gap between two ranks' start-up on a loaded
    machine, which the same timeout bounds), naming itself and the step, and torchrun
    ends the job."""
    out = str(tmp_path / "x.pt")
    proc = torchrun({"hang": [1, 3], "timeout": 10, "out": out}, tmp_path)
    assert proc.returncode != 0
    assert "PeerFailure: rank 0 of 2 stopped during step 4" in proc.stderr, proc.stderr[-3000:]
    assert "10 s timeout" in proc.stderr
    waited = float(Path(out + ".failed").read_text()) - float(Path(out + ".hung").read_text())
    # About the timeout: rank 0 may enter the collective a little before rank 1 writes
    # its file (so less than 10 s), and a loaded machine adds scheduling delays.
    assert 5 < waited < 25, waited


def test_a_rank_that_raises_ends_the_job_at_once(tmp_path: Path) -> None:
    """Rank 1 raises after step 3 while rank 0 goes on into step 4's collective: rank 1
    leaves at once (no leaving barrier, which would wait on rank 0's collective) and
    rank 0 learns it from its broken connection (or torchrun stops it), long before the
    120 s collective timeout would; the error is rank 1's own."""
    began = time.monotonic()
    proc = torchrun({"fail": [1, 3], "timeout": 120, "out": str(tmp_path / "x.pt")}, tmp_path)
    took = time.monotonic() - began
    assert proc.returncode != 0
    assert "injected failure on rank 1 after step 3" in proc.stderr, proc.stderr[-3000:]
    assert took < 60, took


@pytest.mark.slow
def test_descend_train_nproc_2_matches_one_process(tmp_path: Path) -> None:
    """The command line: ``descend train linreg --nproc 2 --strategy fsdp`` (full batch, 512
    samples shared 256 + 256) ends where one process does. float32: the mean over the batch
    is summed in another order, about 512 additions of relative error eps=1.2e-7 per step at
    worst, over 3 steps: within 1e-4 relative (observed: equal to 4 digits and more)."""
    from descend.cli.main import main

    common = ["train", "linreg", "--epochs", "3", "--quiet"]
    main([*common, "--out", str(tmp_path / "one")])
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    two = [*common, "--out", str(tmp_path / "two"), "--nproc", "2", "--strategy", "fsdp"]
    with open(LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        proc = subprocess.run(
            [sys.executable, "-m", "descend.cli.main", *two],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
    assert proc.returncode == 0, proc.stderr[-3000:]
    one, two = (json.loads((tmp_path / n / "summary.json").read_text()) for n in ("one", "two"))
    assert one["runs"][0]["summary"]["final"]["val_loss"] == pytest.approx(
        two["runs"][0]["summary"]["final"]["val_loss"], rel=1e-4
    )
    assert (tmp_path / "two" / "model.pt").exists()
    assert not (tmp_path / "two" / "checkpoints" / "last.pt").exists()  # sharded instead


def test_a_distributed_fit_refuses_what_it_cannot_do() -> None:
    from descend._validation import InvalidParameterError
    from descend.train import ModelCheckpoint
    from descend.train.distributed import Ranks, check_arguments, collective_timeout

    fsdp = Ranks(0, 2, torch.device("cpu"), "fsdp", 5.0)
    built = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    with pytest.raises(InvalidParameterError, match="registry name or an Optimizer class"):
        check_arguments(fsdp, built, [])
    with pytest.raises(InvalidParameterError, match="ModelCheckpoint"):
        check_arguments(fsdp, "sgd", [ModelCheckpoint("x")])
    check_arguments(Ranks(0, 2, torch.device("cpu"), "ddp", 5.0), built, [])  # DDP keeps them
    os.environ["DESCEND_COLLECTIVE_TIMEOUT"] = "-3"
    try:
        with pytest.raises(InvalidParameterError, match="seconds > 0. Got '-3'"):
            collective_timeout()
    finally:
        del os.environ["DESCEND_COLLECTIVE_TIMEOUT"]


def test_a_one_process_checkpoint_is_not_silently_ignored(tmp_path: Path) -> None:
    """A folder with a one-process ``last.pt`` and no sharded checkpoint: loading it as
    sharded says why it cannot, instead of starting afresh."""
    from descend.train import CheckpointError, fit
    from descend.train.sharded_checkpoint import load_sharded

    net = distributed_worker.model()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    fit(
        net,
        distributed_worker.data(),
        torch.nn.MSELoss(),
        opt,
        max_steps=1,
        checkpoint_dir=tmp_path,
        progress=False,
    )
    assert (tmp_path / "last.pt").exists()
    with pytest.raises(CheckpointError, match="descend train --nproc 1"):
        load_sharded(tmp_path, net, opt)
