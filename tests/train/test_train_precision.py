"""``device`` and ``precision``: resolving devices, autocast in bf16 on the CPU, fp16 on CUDA."""

from __future__ import annotations

import pytest
import torch

from descend._validation import InvalidParameterError
from descend.cli.main import main
from descend.tasks import get_task, run_task
from descend.train import fit
from descend.train.precision import MixedPrecision, resolve_device

CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="no CUDA GPU on this machine")


def test_auto_is_cuda_when_there_is_one_else_mps_else_cpu() -> None:
    mps = torch.backends.mps.is_available()
    assert resolve_device("auto").type == ("cuda" if CUDA else "mps" if mps else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")


def test_unknown_device_is_refused_with_the_choices() -> None:
    with pytest.raises(InvalidParameterError, match="'device'.*auto.*cpu.*cuda.*mps.*'tpu'"):
        resolve_device("tpu")


@pytest.mark.skipif(CUDA, reason="checks the message when there is no GPU")
def test_missing_cuda_is_an_error_not_a_silent_cpu_run() -> None:
    with pytest.raises(InvalidParameterError, match="no CUDA GPU.*--device cpu or auto"):
        resolve_device("cuda")


def test_fp16_on_the_cpu_and_unknown_precisions_are_refused() -> None:
    with pytest.raises(InvalidParameterError, match="'fp16' needs a GPU.*'bf16' or 'fp32'"):
        MixedPrecision(torch.device("cpu"), "fp16")
    with pytest.raises(InvalidParameterError, match="'precision'.*fp32.*bf16.*fp16.*'fp8'"):
        MixedPrecision(torch.device("cpu"), "fp8")


def _dtypes_seen(precision: str, device: str = "cpu") -> tuple[set[torch.dtype], torch.dtype]:
    # The dtype of a Linear layer's output during training, and the weights' dtype after.
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
    seen: set[torch.dtype] = set()
    model[0].register_forward_hook(lambda m, i, o: seen.add(o.dtype) if m.training else None)
    x = torch.randn(64, 4, generator=torch.Generator().manual_seed(0))
    y = x.sum(1, keepdim=True)
    history = fit(
        model, (x, y), torch.nn.MSELoss(), "adam", optimizer_options={"lr": 1e-2},
        epochs=30, batch_size=16, device=device, precision=precision, progress=False,
    )  # fmt: skip
    assert history.epochs[-1]["train_loss"] < 0.1 * history.epochs[0]["train_loss"]
    return seen, model[0].weight.dtype


def test_bf16_autocasts_the_forward_pass_and_keeps_float32_weights() -> None:
    assert _dtypes_seen("fp32") == ({torch.float32}, torch.float32)
    assert _dtypes_seen("bf16") == ({torch.bfloat16}, torch.float32)


def test_a_task_reaches_its_target_in_bf16_on_the_cpu() -> None:
    task = get_task("digits")
    result = run_task(task, precision="bf16", device="cpu", eval_train=False)
    assert result.config["precision"] == "bf16" and result.config["device"] == "cpu"
    assert task.target.reached(result.history.epochs[-1][task.target.metric])


def test_cli_asks_for_a_missing_gpu_and_exits_2(
    tmp_path: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    if CUDA:
        pytest.skip("this machine has a GPU")
    with pytest.raises(SystemExit) as exc:
        main(["train", "linreg", "--device", "cuda", "--out", str(tmp_path), "--quiet"])
    assert exc.value.code == 2
    assert "no CUDA GPU" in capsys.readouterr().err


@needs_cuda
@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_cuda_runs_each_precision(precision: str) -> None:
    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bfloat16")
    want = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    assert _dtypes_seen(precision, "cuda") == ({want}, torch.float32)


@needs_cuda
@pytest.mark.parametrize("name", ["digits", "gan", "transformer"])
def test_tasks_reach_their_targets_on_cuda_in_fp16(name: str) -> None:
    task = get_task(name)
    result = run_task(task, device="cuda", precision="fp16", eval_train=False)
    assert next(result.model.parameters()).device.type == "cuda"
    assert task.target.reached(result.history.epochs[-1][task.target.metric])


def test_a_checkpoint_carries_the_gradient_scaler() -> None:
    """The float16 scaler's scale and growth count go into the payload and come back: a
    resumed run scales its first loss as the interrupted one would have (a fresh scaler
    would start again at 65536 and spend steps halving it). On the CPU, with torch's CPU
    GradScaler, after an overflow (scale halved) and a clean step (growth counted)."""
    from descend.train.history import History
    from descend.train.resume import LoopExtras, make_payload, restore_payload
    from descend.train.state import TrainState

    w = torch.nn.Parameter(torch.ones(3))
    opt = torch.optim.SGD([w], lr=0.1)
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0, growth_interval=3)
    for grad in (torch.full((3,), float("inf")), torch.ones(3)):
        scaler.scale(w.sum()).backward()  # starts the scaler; the gradient is then set
        w.grad = grad.clone()
        scaler.step(opt)
        scaler.update()
    assert scaler.state_dict()["scale"] == 512.0 and scaler.state_dict()["_growth_tracker"] == 1

    model = torch.nn.Linear(1, 1)
    state = TrainState(model, opt, History(), batches_per_epoch=1)
    payload = make_payload(
        state, LoopExtras(seed=0), scheduler=None, stop=None, callbacks=[], scaler=scaler
    )
    fresh = torch.amp.GradScaler("cpu", init_scale=1024.0, growth_interval=3)
    restore_payload(
        payload,
        TrainState(model, opt, History(), batches_per_epoch=1),
        scheduler=None,
        stop=None,
        callbacks=[],
        settings={},
        source="test",
        scaler=fresh,
    )
    assert fresh.state_dict() == scaler.state_dict()
    assert fresh.get_scale() == 512.0


@needs_cuda
def test_fp16_stop_then_resume_equals_uninterrupted_on_cuda(tmp_path) -> None:
    """With the scaler in the checkpoint, an fp16 run stopped after 7 steps and resumed to
    12 ends where the uninterrupted one does (same device, same kernels: bit for bit)."""
    from tests.train.train_problems import mlp, regression

    x, y = regression()

    def run(folder, steps, **kw):
        model = mlp()
        fit(
            model,
            (x, y),
            torch.nn.MSELoss(),
            "adam",
            max_steps=steps,
            batch_size=5,
            seed=1,
            precision="fp16",
            device="cuda",
            checkpoint_dir=folder,
            progress=False,
            **kw,
        )
        return torch.cat([p.detach().flatten().cpu() for p in model.parameters()])

    whole = run(None, 12)
    run(tmp_path, 7)
    assert torch.equal(whole, run(tmp_path, 12, resume=True))
