"""``fit``: the articles' training loop, readable top to bottom.

For each epoch, for each batch: forward, loss, backward, (clip), step, schedule,
callbacks, stop? Everything else (batching, checkpoints, the non-finite guard,
signals) lives in its own module and is called from here at one clear point.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from descend._validation import BOOL, Interval, InvalidParameterError, OneOf, Satisfies, validate
from descend.optim.optimizer import Optimizer
from descend.optim.sharded import replicated
from descend.stopping import Criterion, Progress
from descend.train.batching import Batches, Data
from descend.train.callback import Callback, Hooks
from descend.train.checkpoint import LAST, load_latest, save_checkpoint
from descend.train.clipping import GradientClipping, clip_by_global_norm_, loss_and_grad_norm
from descend.train.closure import batch_closure, check_closure_step, needs_closure
from descend.train.distributed import check_arguments, setup
from descend.train.evaluate import Metric, end_epoch, evaluate
from descend.train.history import History
from descend.train.interrupts import catch_interrupts, check_interrupt
from descend.train.modes import eval_mode, train_mode
from descend.train.nonfinite import POLICIES, Rollback, locate
from descend.train.precision import MixedPrecision, resolve_device
from descend.train.resume import LoopExtras, make_payload, restore_payload
from descend.train.setup import arrange_callbacks, build_optimizer, split_schedule
from descend.train.sharded_checkpoint import has_sharded, load_sharded, save_sharded
from descend.train.state import TrainState

_NONE = Satisfies(lambda v: v is None, "None")
_COUNT = Interval(1, None, closed="left", integer=True)
_TABLE = {
    "epochs": (_COUNT, _NONE),
    "max_steps": (_COUNT, _NONE),
    "batch_size": (_COUNT, _NONE),
    "seed": Interval(0, 2**63 - 1, closed="both", integer=True),
    "shuffle": BOOL,
    "clip_grad_norm": (Interval(0, None, closed="neither"), _NONE),
    "checkpoint_every": (_COUNT, _NONE),
    "resume": BOOL,
    "progress": OneOf((None, True, False)),
    "on_nonfinite": OneOf(POLICIES),
    "eval_train": BOOL,
    "track_grad_norm": BOOL,
    "loss": Satisfies(callable, "a callable (output, target) -> scalar tensor"),
    "model": Satisfies(lambda m: isinstance(m, torch.nn.Module), "a torch.nn.Module"),
    "metrics": Satisfies(
        lambda m: m is None or (isinstance(m, Mapping) and all(callable(f) for f in m.values())),
        "None or a dict of name -> callable(output, target) -> float",
    ),
    "stop": Satisfies(
        lambda s: s is None or isinstance(s, Criterion), "a descend.stopping Criterion or None"
    ),
}


def fit(
    model: torch.nn.Module,
    data: Data,
    loss: Callable[[Any, Any], torch.Tensor],
    optimizer: torch.optim.Optimizer | str | type[torch.optim.Optimizer],
    *,
    epochs: int | None = None,
    max_steps: int | None = None,
    batch_size: int | None = None,
    optimizer_options: Mapping[str, Any] | None = None,
    schedule: Callable[[int], float] | torch.optim.lr_scheduler.LRScheduler | None = None,
    stop: Criterion | None = None,
    callbacks: Sequence[Callback] = (),
    val_data: Data | None = None,
    metrics: Mapping[str, Metric] | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
    precision: str = "fp32",
    shuffle: bool = True,
    clip_grad_norm: float | None = None,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    checkpoint_every: int | None = None,
    resume: bool = False,
    progress: bool | None = None,
    on_nonfinite: str = "raise",
    eval_train: bool = True,
    log_dir: str | os.PathLike[str] | None = None,
    track_grad_norm: bool = True,
    strategy: str | None = None,
) -> History:
    r"""Train ``model`` on ``data`` by gradient descent; return the :class:`History`.

    Each update :math:`t` (0-based) on a batch :math:`B_t`:

    .. math::
        \eta_t = \text{schedule}(t), \qquad
        L_t = \frac{1}{|B_t|} \sum_{i \in B_t} \ell(f_\theta(x_i), y_i), \qquad
        \theta \leftarrow \text{optimizer.step}(\theta, \nabla_\theta L_t, \eta_t)

    ``batch_size=None`` is batch gradient descent (:math:`B_t` is the whole set,
    exactly one update per epoch), ``1`` stochastic gradient descent (``N``
    updates per epoch), ``k`` mini-batch (``ceil(N / k)`` per epoch).

    Args:
        model: a built ``torch.nn.Module``; it is moved to ``device``.
        data: ``(X, y)`` tensors, or a ``Dataset`` whose items are ``(x, y)``.
        loss: ``loss(output, target) -> scalar tensor``, with mean reduction
            (e.g. ``torch.nn.CrossEntropyLoss()``).
        optimizer: a ``torch.optim.Optimizer`` over ``model``'s parameters (torch's
            or descend's), or a registry name / optimizer class built with
            ``descend.optim.make_optimizer(optimizer, model.parameters(), **optimizer_options)``.
            An optimizer that steps with a closure (``torch.optim.LBFGS``, ``descend.SAM``)
            gets one that computes the same batch's loss and gradients again at the
            weights of the moment (not with ``precision="fp16"``; LBFGS on one process).
        epochs: stop after this many epochs (counted from the start of the run,
            including epochs done before a resume).
        max_steps: stop after this many updates (also counted from the start).
        batch_size: ``None``, ``1`` or ``k``, as above.
        optimizer_options: keyword arguments for a named optimizer (``{"lr": 0.1}``).
        schedule: a learning-rate schedule ``t -> lr`` (``descend.schedules``),
            written to every param group before update ``t``; or a torch
            ``LRScheduler`` over ``optimizer``, stepped after every update.
        stop: a ``descend.stopping`` criterion (or ``AnyOf``), checked after every
            update with the batch loss, the gradient norm and the elapsed time;
            its message becomes ``history.stop_reason``. With ``on_nonfinite="raise"``
            it also sees a non-finite step first, so ``Divergence`` ends the run
            with its message instead of an error.
        callbacks: :class:`~descend.train.Callback` instances, called in order
            (``ModelCheckpoint`` instances last, so their files hold the others' state).
        val_data: like ``data``; adds ``val_loss`` and ``val_<metric>`` to the epoch rows.
        metrics: ``{name: fn(output, target) -> float}``, averaged over samples,
            recorded per epoch as ``train_<name>`` and ``val_<name>``.
        seed: seeds ``torch.manual_seed`` at the start of a fresh run (dropout and
            any other global randomness during training) and the data order of
            every epoch. The model is built by the caller, so its initial weights
            are the caller's to seed.
        device: where the model and the batches live: ``"cpu"``, ``"cuda"``, ``"mps"``
            or ``"auto"`` (CUDA, else MPS, else the CPU); see :func:`resolve_device`.
        precision: ``"fp32"``, or the forward pass and loss under ``torch.autocast`` in
            ``"bf16"`` or ``"fp16"`` (with gradient scaling; GPU only), parameters and
            optimizer state staying float32 (:class:`~descend.train.precision.MixedPrecision`).
        shuffle: draw a new sample order every epoch (mini-batch and stochastic).
        clip_grad_norm: clip the global gradient norm to this before each update
            (with SAM, both of its gradients; refused with LBFGS, whose step computes
            the gradient again).
        checkpoint_dir: write ``last.pt`` there every ``checkpoint_every`` updates
            and when the run ends (the previous file kept as ``last.prev.pt``).
        checkpoint_every: updates between checkpoints.
        resume: continue from the latest intact checkpoint in ``checkpoint_dir``
            (a fresh run when there is none). On the CPU the result equals an
            uninterrupted run's bit for bit. The model, optimizer, schedule,
            callbacks, RNG states, data order and history are restored; a stopping
            criterion is restored only if it has ``state_dict``/``load_state_dict``
            (otherwise it starts afresh, e.g. ``FunctionTolerance`` refills its window).
            The batch size, the number of samples, ``shuffle`` and ``seed`` must be
            those of the run that wrote the checkpoint: the position it stopped at
            counts batches of that run (otherwise :class:`InvalidParameterError`, and
            nothing is loaded). ``epochs`` and ``max_steps`` may change.
        progress: ``None`` shows a tqdm bar when standard error is a terminal;
            ``True`` always; ``False`` never.
        on_nonfinite: what a NaN or infinite loss or gradient does: ``"raise"``
            a :class:`~descend.train.NonFiniteError` naming the loss or the first
            parameter; ``"skip"`` the update; ``"rollback"`` to the state before the
            previous update and halve the learning rate (keeps a copy of the model
            and optimizer state every update). Both count in the step rows' ``skipped``.
        eval_train: evaluate the loss and metrics on the whole training set after
            each epoch (eval mode, no gradients); ``False`` records ``train_loss``
            as the mean of the epoch's batch losses instead and saves that pass.
        log_dir: also write TensorBoard event files there, when tensorboard is
            installed (silently skipped otherwise).
        track_grad_norm: compute the global gradient norm after every backward pass
            (the step rows' ``grad_norm``, the stopping criteria's ``grad_norm``, and the
            check for non-finite gradients). It is one extra pass over the gradients'
            memory, about 7% of a step for a small MLP (``docs/bench.md``). ``False``
            records ``nan`` and checks only the loss for NaN or infinity; clipping
            computes the norm regardless.
        strategy: under ``torchrun`` (or an initialized process group), how the model is
            spread over the processes: ``"ddp"`` (``DistributedDataParallel``) or
            ``"fsdp"`` (FSDP2 ``fully_shard``); ``None`` reads ``DESCEND_STRATEGY``, else
            ``"ddp"``. ``batch_size`` is then the global batch, shared among the ranks;
            checkpoints are sharded (``descend.train.sharded_checkpoint``) and rank 0
            alone shows progress. See ``descend.train.distributed`` and
            ``docs/scale.md``.

    Returns:
        The :class:`History` of the run (including any part before a resume).

    SIGINT and SIGTERM (when ``fit`` runs in the main thread) finish the current
    update, write a checkpoint when ``checkpoint_dir`` is set, and end the run
    with a ``stop_reason`` that says how to resume; a second SIGINT aborts at once.

    Example:
        >>> import torch
        >>> X = torch.linspace(-1, 1, 32).unsqueeze(1); y = 3 * X
        >>> model = torch.nn.Linear(1, 1)
        >>> h = fit(model, (X, y), torch.nn.MSELoss(), "sgd",
        ...         optimizer_options={"lr": 0.5}, epochs=200, progress=False)
        >>> round(model.weight.item(), 3), len(h.steps)
        (3.0, 200)
    """
    validate(
        "fit",
        {
            "model": model,
            "loss": loss,
            "epochs": epochs,
            "max_steps": max_steps,
            "batch_size": batch_size,
            "seed": seed,
            "shuffle": shuffle,
            "clip_grad_norm": clip_grad_norm,
            "checkpoint_every": checkpoint_every,
            "resume": resume,
            "progress": progress,
            "on_nonfinite": on_nonfinite,
            "eval_train": eval_train,
            "track_grad_norm": track_grad_norm,
            "stop": stop,
            "metrics": metrics,
        },
        _TABLE,
    )
    if epochs is None and max_steps is None and stop is None:
        raise InvalidParameterError(
            "fit needs an end: give epochs=, max_steps= or a stopping criterion stop=."
        )
    if (checkpoint_every is not None or resume) and checkpoint_dir is None:
        raise InvalidParameterError(
            "checkpoint_every= and resume=True need checkpoint_dir= (the folder of the checkpoints)."
        )
    device = resolve_device(device)
    strategy = strategy or os.environ.get("DESCEND_STRATEGY", "ddp")
    ranks = setup(strategy, device)  # None in one process
    if ranks is not None:
        check_arguments(ranks, optimizer, callbacks)
        device = ranks.device
        progress, log_dir = (progress, log_dir) if ranks.is_main else (False, None)
    amp = MixedPrecision(device, precision)
    model.to(device)
    if ranks is not None:
        model = ranks.wrap(model)
    train = Batches(data, batch_size, device, name="data")
    val = None if val_data is None else Batches(val_data, batch_size, device, name="val_data")
    metrics = dict(metrics or {})
    optimizer = build_optimizer(optimizer, model, optimizer_options)
    schedule_fn, scheduler = split_schedule(schedule, optimizer)
    callbacks = arrange_callbacks(callbacks, clip_grad_norm, progress, log_dir)
    closure_step = needs_closure(optimizer)
    clips = [c.max_norm for c in callbacks if isinstance(c, GradientClipping)]
    if closure_step:
        check_closure_step(optimizer, precision, 1 if ranks is None else ranks.world, bool(clips))
    params = [p for g in optimizer.param_groups for p in g["params"]]

    def batch_loss_of(x: Any, y: Any, weight: float | None) -> torch.Tensor:
        with amp.autocast():
            value = loss(model(x), y)
        # Distributed: the rank's share, weighted so DDP's average is the global batch mean.
        return value if weight is None else value * weight

    def clip_again(value: torch.Tensor) -> None:
        # SAM's second gradient (the one its base step uses) is clipped as the first was.
        grads = [p.grad for p in params if p.grad is not None]
        if ranks is None:
            norm = loss_and_grad_norm(value, grads)[1]
        else:
            norm = ranks.loss_and_grad_norm(value, grads, True)[1]
        for max_norm in clips:
            clip_by_global_norm_(grads, max_norm, norm)

    # Clipping needs the norm whatever the user asked; otherwise it is optional.
    measure_norm = track_grad_norm or bool(clips)
    history = History()
    state = TrainState(
        model=model,
        optimizer=optimizer,
        history=history,
        batches_per_epoch=train.n_batches,
        max_epochs=epochs,
        max_steps=max_steps,
        has_schedule=schedule_fn is not None,
    )
    # What the data order and a checkpoint's (epoch, batch) position depend on.
    settings = {"batch_size": train.size, "samples": train.n, "shuffle": shuffle, "seed": seed}
    extras = LoopExtras(seed=seed, settings=settings)
    if stop is not None:
        stop.reset()
    sharded = checkpoint_dir is not None and (ranks is not None or has_sharded(checkpoint_dir))
    found = None
    if resume and checkpoint_dir is not None:
        found = (
            load_sharded(checkpoint_dir, model, optimizer, settings)
            if sharded
            else load_latest(checkpoint_dir)
        )
    if found is None:
        torch.manual_seed(seed)
    else:
        extras = restore_payload(
            found[1],
            state,
            scheduler=scheduler,
            stop=stop,
            callbacks=callbacks,
            settings=settings,
            source=str(found[0]),
            scaler=amp.scaler,
        )
    start = time.perf_counter() - extras.elapsed

    def payload() -> dict[str, Any]:
        eval_mode(optimizer)  # checkpoints hold Schedule-Free's averaged point x
        extras.elapsed = time.perf_counter() - start
        return make_payload(
            state, extras, scheduler=scheduler, stop=stop, callbacks=callbacks, scaler=amp.scaler
        )

    def save() -> None:
        assert checkpoint_dir is not None
        if sharded:
            save_sharded(checkpoint_dir, model, optimizer, payload(), state.step)
        else:
            save_checkpoint(Path(checkpoint_dir) / LAST, payload(), keep_previous=True)

    def agree() -> None:
        # Every rank must run the same steps: one that stops alone would leave the others
        # waiting in a collective.
        if ranks is not None and ranks.agree_to_stop(state.should_stop) and not state.should_stop:
            state.stop(f"Stopped by another rank after step {state.step}.", success=False)

    def progress(step: int) -> Progress:
        return Progress(
            step, state.loss, grad_norm=state.grad_norm, elapsed=time.perf_counter() - start
        )

    state.payload_fn = payload
    hooks = Hooks(callbacks)
    rollback = Rollback() if on_nonfinite == "rollback" else None
    model.train()

    evaluator = evaluate if ranks is None else ranks.evaluate
    guard = contextlib.nullcontext() if ranks is None else ranks.failures(lambda: state.step + 1)
    # Under DDP every rank steps the same parameters: a matrix rule (Muon) computes each
    # matrix on one rank and all-gathers the rest (not ZeRO's: its ranks step their own).
    share = (
        replicated()
        if ranks is not None and ranks.strategy == "ddp" and isinstance(optimizer, Optimizer)
        else contextlib.nullcontext()
    )
    with catch_interrupts() as interrupt, guard, share:
        hooks.fit_start(state)
        try:
            while not state.should_stop:
                if epochs is not None and state.epoch > epochs:
                    state.stop(f"Reached epochs={epochs}.")
                    break
                order = train.order(extras.seed, state.epoch, shuffle)
                while state.batch < train.n_batches and not state.should_stop:
                    if max_steps is not None and state.step >= max_steps:
                        state.stop(f"Reached max_steps={max_steps}.")
                        break
                    if ranks is None:
                        (x, y), weight = train.batch(order, state.batch), None
                    else:
                        x, y, weight = ranks.share(train, order, state.batch)
                    if schedule_fn is not None:
                        lr = schedule_fn(state.step) * extras.lr_scale
                        for g in optimizer.param_groups:
                            g["lr"] = lr

                    # forward, loss, backward (at Schedule-Free's gradient point y)
                    train_mode(optimizer)
                    optimizer.zero_grad(set_to_none=True)
                    forward = functools.partial(batch_loss_of, x, y, weight)
                    batch_loss = forward()
                    amp.backward(batch_loss)
                    amp.unscale(optimizer)
                    state.grads = [p.grad for p in params if p.grad is not None]
                    if ranks is not None:
                        state.loss, state.grad_norm = ranks.loss_and_grad_norm(
                            batch_loss, state.grads, measure_norm
                        )
                    elif measure_norm:
                        state.loss, state.grad_norm = loss_and_grad_norm(batch_loss, state.grads)
                    else:
                        state.loss, state.grad_norm = batch_loss.item(), None
                    state.lrs = [float(g["lr"]) for g in optimizer.param_groups]

                    # (clip), step, unless the loss or a gradient is NaN or infinite
                    finite = math.isfinite(state.loss) and (
                        state.grad_norm is None or math.isfinite(state.grad_norm)
                    )
                    if finite:
                        hooks.before_optimizer_step(state)
                        if rollback is not None:
                            rollback.save(model, optimizer)
                        if closure_step:  # LBFGS, SAM: the same batch again
                            optimizer.step(
                                batch_closure(optimizer, forward, clip_again if clips else None)
                            )
                        else:
                            amp.step(optimizer)
                    # A finite loss with overflowed fp16 gradients is not a divergence: the
                    # scaler skips the step and halves its scale (amp.overflowed does both).
                    elif not (math.isfinite(state.loss) and amp.overflowed()):
                        if on_nonfinite == "raise":
                            # A criterion that ends the run here (Divergence) wins over the error.
                            verdict = None if stop is None else stop.check(progress(state.step + 1))
                            if verdict is None:
                                raise locate(model, state.step + 1, state.loss, state.grad_norm)
                            state.stop(verdict.message, success=verdict.success)
                        else:
                            extras.skipped += 1
                            if rollback is not None and rollback.restore(
                                model, optimizer, scheduler
                            ):
                                extras.lr_scale *= 0.5

                    # schedule
                    if scheduler is not None:
                        scheduler.step()
                    state.step += 1
                    state.batch += 1
                    row = {
                        "step": state.step,
                        "epoch": state.epoch,
                        "loss": state.loss,
                        "lr": state.lrs[0],
                        "grad_norm": math.nan if state.grad_norm is None else state.grad_norm,
                        "time": time.perf_counter() - start,
                    }
                    if on_nonfinite != "raise":
                        row["skipped"] = extras.skipped
                    history.steps.append(row)

                    # callbacks, stop?
                    hooks.step_end(state)
                    if stop is not None and finite:
                        verdict = stop.check(progress(state.step))
                        if verdict is not None:
                            state.stop(verdict.message, success=verdict.success)
                    if checkpoint_every is not None and state.step % checkpoint_every == 0:
                        save()
                    check_interrupt(interrupt, state, checkpoint_dir)
                    agree()

                # An epoch whose last batch was done ends, even when a stop came during it.
                if state.batch == train.n_batches:
                    end_epoch(state, train, val, loss, metrics, eval_train, start, evaluator)
                    hooks.epoch_end(state)
                    state.epoch += 1
                    state.batch = 0
                    check_interrupt(interrupt, state, checkpoint_dir)
                    agree()

            history.stop_reason, history.stop_success = state.stop_reason, state.stop_success
            history.interrupted_by = interrupt.name if interrupt.signum is not None else ""
            if checkpoint_dir is not None:
                save()
        finally:
            eval_mode(optimizer)  # the model ends at Schedule-Free's averaged point x
            hooks.fit_end(state)
            state.payload_fn = None
    return history
