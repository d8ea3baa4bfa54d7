"""The benchmark commands run and report consistent numbers (their timings are not tested)."""

from __future__ import annotations

import json

import pytest

import descend
from descend._validation import InvalidParameterError
from descend.bench.step import ALGORITHMS, bench_step, model_shapes, parse_size, table
from descend.cli.main import main


def test_parse_size() -> None:
    assert parse_size("10M") == 10_000_000
    assert parse_size("1.5k") == 1500
    assert parse_size("2000") == 2000
    with pytest.raises(InvalidParameterError, match="Got 'ten' instead"):
        parse_size("ten")


def test_model_shapes_are_the_issue_s_layout() -> None:
    shapes = model_shapes(10_000_000)
    assert shapes.count((1024, 1024)) == 10 and shapes.count((1024,)) == 40
    assert model_shapes(50_000_000).count((1024, 1024)) == 48
    assert sum(a * b for a, b in model_shapes(5000)[:1]) > 0


def test_bench_step_rows_are_consistent() -> None:
    result = bench_step(
        [20_000],
        ["adam", "rmsprop"],
        rounds=2,
        steps=1,
        impls=["descend", "torch_forloop", "torch_fused"],
    )
    size = result["sizes"][0]
    rows = {(r["algorithm"], r["impl"]): r for r in size["rows"]}
    # torch has no fused RMSprop: that cell is absent, not an error.
    assert set(rows) == {
        ("adam", "descend"),
        ("adam", "torch_forloop"),
        ("adam", "torch_fused"),
        ("rmsprop", "descend"),
        ("rmsprop", "torch_forloop"),
    }
    adam = rows[("adam", "descend")]
    assert adam["bytes_per_param"] == 28 and adam["state_bytes_per_param"] == 8
    n = size["params"]
    assert adam["gb_per_s"] == pytest.approx(28 * n / (adam["median_ms"] / 1e3) / 1e9)
    assert adam["pct_of_floor"] == pytest.approx(
        100 * 28 * n / (size["inplace_gb_per_s"] * 1e9) / (adam["median_ms"] / 1e3)
    )
    assert min(r["vs_torch_best"] for r in size["rows"] if r["impl"].startswith("torch")) == 1.0
    assert "| adam | descend |" in table(result)
    # What backward pays for the flat gradient buffer is measured, not left out.
    handoff = size["handoff"]
    assert handoff["extra_ms"] == pytest.approx(handoff["descend_ms"] - handoff["torch_ms"])
    assert "Gradient hand-off at" in table(result)


def test_handoff_is_timed_with_the_hooks_in_place() -> None:
    from descend.bench import step as bench

    seen = []
    real = bench._backward

    def spy(opt, params, coefs):
        run = real(opt, params, coefs)

        def checked() -> None:
            run()
            flat = opt._flat.get(0) if isinstance(opt, descend.Optimizer) else None
            if flat is not None:  # built by the first step, after the first backward
                seen.append(all(p.grad is v for p, v in zip(params, flat.grad_views, strict=True)))

        return checked

    bench._backward = spy
    try:
        bench.handoff([(300, 1024)], rounds=2, steps=1)
    finally:
        bench._backward = real
    assert seen and all(seen), "backward must hand each gradient to the flat buffer"


def test_every_algorithm_builds_for_every_implementation() -> None:
    import torch

    for algo in ALGORITHMS.values():
        params = [torch.zeros(3, requires_grad=True)]
        params[0].grad = torch.ones(3)
        algo.descend(params).step()
        for impl in algo.torch_impls:
            algo.torch([torch.zeros(3, requires_grad=True)], impl)


def _cli(argv: list[str]) -> int:
    try:
        main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def test_cli_bench_step_writes_json_and_plot(tmp_path, capsys) -> None:
    out, png = tmp_path / "r.json", tmp_path / "r.png"
    assert (
        _cli(
            [
                "bench",
                "step",
                "--params",
                "10k",
                "--optimizers",
                "sgd,adam",
                "--rounds",
                "1",
                "--steps",
                "1",
                "--impls",
                "descend,torch_foreach",
                "--json",
                str(out),
                "--plot",
                str(png),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "| sgd | descend |" in printed and "optax" in printed  # the skipped column is named
    data = json.loads(out.read_text())
    assert {r["algorithm"] for r in data["sizes"][0]["rows"]} == {"sgd", "adam"}
    assert png.stat().st_size > 1000


def test_cli_rejects_unknown_optimizer(capsys) -> None:
    assert _cli(["bench", "step", "--params", "10k", "--optimizers", "adan"]) == 2
    assert "adam" in capsys.readouterr().err


def test_cli_bench_loop(capsys) -> None:
    assert _cli(["bench", "loop", "--rounds", "1", "--epochs", "1"]) == 0
    assert "overhead:" in capsys.readouterr().out


def test_bench_compile_runs_fresh_processes_and_reports(tmp_path, capsys) -> None:
    out = tmp_path / "cold.json"
    argv = ["bench", "compile", "--params", "20k", "--optimizers", "sgd", "--repeats", "1"]
    assert _cli([*argv, "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    (row,) = data["rows"]
    assert row["optimizer"] == "sgd" and data["params"] == 19 * 1024 + 1024
    assert len(row["cold_first_step_s"]) == len(row["warm_first_step_s"]) == 1
    assert all(x > 0 for x in row["cold_first_step_s"] + row["warm_first_step_s"])
    assert "sgd: cold first step" in capsys.readouterr().out
    assert _cli(["bench", "compile", "--optimizers", "lion"]) == 2
