"""``descend bench step``, ``compile`` and ``loop``: how fast a step, a first step and a loop run.

``bench step`` times descend's default optimizer step against torch.optim's for-loop,
foreach and fused paths (and optax's when jax and optax are installed) on the same
parameters, in interleaved rounds, and reports medians, spreads, GB/s and percent of the
in-place memory-bandwidth floor. ``bench loop`` times ``descend.fit`` against a
hand-written PyTorch loop on digits. ``bench compile`` times the first (compiling) step
of a compiled chain (compile=True) in fresh processes with empty caches.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from descend.cli.app import app

bench_app = typer.Typer(
    help="Benchmarks: optimizer step throughput and training-loop overhead.", no_args_is_help=True
)
app.add_typer(bench_app, name="bench")


@bench_app.command("step")
def step(
    params: Annotated[
        str, typer.Option("--params", help="Parameter counts, comma-separated (10M,50M).")
    ] = "10M,50M",
    optimizers: Annotated[
        str | None,
        typer.Option(
            "--optimizers",
            help="Comma-separated names (default: all): sgd, momentum, nesterov, adagrad, "
            "rmsprop, rmsprop_centered, adam, amsgrad, adamw, adamw_clip_sched, lion, "
            "ademamix, cautious_adamw, adamw_lookahead, adamw_ema.",
        ),
    ] = None,
    rounds: Annotated[
        int, typer.Option("--rounds", help="Interleaved rounds (medians over rounds).")
    ] = 7,
    steps: Annotated[
        int, typer.Option("--steps", help="Steps timed per implementation per round.")
    ] = 3,
    impls: Annotated[
        str | None,
        typer.Option(
            "--impls",
            help="Comma-separated implementations (default: all): descend (the default "
            "path: torch's fused kernel where torch has one), descend_eager (the transforms, "
            "eagerly), descend_compiled (the transforms under compile=True), torch_forloop, "
            "torch_foreach, torch_fused, optax.",
        ),
    ] = None,
    threads: Annotated[
        int | None, typer.Option("--threads", help="torch threads (default: torch's).")
    ] = None,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Write the results as JSON here.")
    ] = None,
    plot_path: Annotated[
        Path | None, typer.Option("--plot", help="Write a PNG figure here.")
    ] = None,
) -> None:
    """Time one optimizer step per implementation; print a Markdown table."""
    import torch

    from descend.bench.step import bench_step, parse_size, plot, table

    if threads is not None:
        torch.set_num_threads(threads)
    sizes = [parse_size(s) for s in params.split(",") if s.strip()]
    names = [s.strip() for s in optimizers.split(",") if s.strip()] if optimizers else None
    chosen = [s.strip() for s in impls.split(",") if s.strip()] if impls else None
    result = bench_step(sizes, names, rounds=rounds, steps=steps, impls=chosen, echo=typer.echo)
    m = result["machine"]
    typer.echo(
        f"\n{m['cpu']}, {m['nproc']} cores, {m['torch_threads']} torch threads, torch {m['torch']}"
        + ("" if m["optax"] else " (optax column skipped: jax/optax not installed)")
    )
    typer.echo(table(result))
    if json_path is not None:
        json_path.write_text(json.dumps(result, indent=2))
        typer.echo(f"wrote {json_path}")
    if plot_path is not None:
        plot(result, str(plot_path))
        typer.echo(f"wrote {plot_path}")


@bench_app.command("compile")
def compile_(
    params: Annotated[str, typer.Option("--params", help="Parameter count (10M).")] = "10M",
    optimizers: Annotated[
        str,
        typer.Option("--optimizers", help="Comma-separated: sgd, momentum, adam, adamw, rmsprop."),
    ] = "adam,adamw,momentum",
    repeats: Annotated[
        int, typer.Option("--repeats", help="Cold runs per optimizer (each in new caches).")
    ] = 2,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Write the results as JSON here.")
    ] = None,
) -> None:
    """Time the first step of a compiled chain (compile=True) from empty caches, and warm."""
    from descend.bench.cold import bench_cold
    from descend.bench.step import parse_size

    names = [s.strip() for s in optimizers.split(",") if s.strip()]
    result = bench_cold(parse_size(params), names, repeats=repeats, echo=typer.echo)
    typer.echo(
        f"first step of compile=True chains on {result['params'] / 1e6:.1f}M parameters "
        "(fresh processes; TMPDIR and the Inductor cache new and empty for each cold run)"
    )
    if json_path is not None:
        json_path.write_text(json.dumps(result, indent=2))
        typer.echo(f"wrote {json_path}")


@bench_app.command("loop")
def loop(
    rounds: Annotated[int, typer.Option("--rounds", help="Interleaved rounds.")] = 7,
    epochs: Annotated[int, typer.Option("--epochs", help="Epochs per round and loop.")] = 2,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Mini-batch size.")] = 32,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Write the results as JSON here.")
    ] = None,
) -> None:
    """Time descend.fit against a hand-written PyTorch loop (MLP on digits)."""
    from descend.bench.loop import bench_loop

    result = bench_loop(rounds=rounds, epochs=epochs, batch_size=batch_size, echo=typer.echo)
    typer.echo(
        f"{result['model']} on {result['data']}, batch {result['batch_size']}, "
        f"{result['steps_per_epoch']} steps/epoch\n"
        f"hand-written loop: {result['hand_ms_per_epoch']:.1f} ms/epoch "
        f"({result['hand_spread_ms'][0]:.1f}-{result['hand_spread_ms'][1]:.1f})\n"
        f"descend.fit:       {result['fit_ms_per_epoch']:.1f} ms/epoch "
        f"({result['fit_spread_ms'][0]:.1f}-{result['fit_spread_ms'][1]:.1f})\n"
        f"overhead: {result['overhead_ratio']:.3f}x ({result['fit_overhead_us_per_step']:.0f} us per step)\n"
        f"descend.fit(track_grad_norm=False): {result['fit_no_norm_ms_per_epoch']:.1f} ms/epoch "
        f"({result['fit_no_norm_spread_ms'][0]:.1f}-{result['fit_no_norm_spread_ms'][1]:.1f})\n"
        f"overhead without the gradient norm: {result['overhead_ratio_no_norm']:.3f}x "
        f"({result['fit_no_norm_overhead_us_per_step']:.0f} us per step)"
    )
    if json_path is not None:
        json_path.write_text(json.dumps(result, indent=2))
        typer.echo(f"wrote {json_path}")
