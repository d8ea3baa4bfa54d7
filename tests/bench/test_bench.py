"""The benchmark commands run and report consistent numbers (their timings are not tested)."""

from __future__ import annotations

import json

import pytest
import torch

import descend
from descend._validation import InvalidParameterError
from descend.bench.step import (
    ALGORITHMS,
    bench_step,
    model_shapes,
    parse_size,
    round_orders,
    table,
)
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


def test_round_orders_shuffle_every_round_and_repeat_with_the_seed() -> None:
    names = ["descend", "torch_forloop", "torch_foreach", "torch_fused", "inplace"]
    orders = round_orders(names, 40, seed=3)
    assert all(sorted(order) == sorted(names) for order in orders)  # each round runs all
    assert orders == round_orders(names, 40, seed=3)
    # Unlike a rotation, who runs just before each implementation changes between rounds.
    before = {(order[i - 1], order[i]) for order in orders for i in range(1, len(order))}
    assert len({b for b, a in before if a == "descend"}) == len(names) - 1
    assert len({tuple(o) for o in orders}) > len(names)


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
    # The read-only pass over the floor's 4n floats, timed in the same rounds.
    assert size["read_gb_per_s"] == pytest.approx(16 * n / (size["read_ms"] / 1e3) / 1e9)
    assert size["inplace_gb_per_s"] == pytest.approx(32 * n / (size["inplace_ms"] / 1e3) / 1e9)
    assert "Read-only bandwidth at" in table(result)
    # A whole training step (gradients from backward) is measured, not left out.
    train = size["training_step"]
    assert train["ratio"] == pytest.approx(train["descend_ms"] / train["torch_ms"])
    assert "Training step at" in table(result)


def test_eager_and_compiled_rows_are_the_named_rule_as_a_chain() -> None:
    result = bench_step(
        [4096],
        ["adam", "adamw_clip_sched"],
        rounds=1,
        steps=1,
        impls=["descend", "descend_eager", "descend_compiled", "torch_forloop"],
    )
    rows = {(r["algorithm"], r["impl"]): r for r in result["sizes"][0]["rows"]}
    # A chain's default is its eager step, so it has no separate eager row.
    assert set(rows) == {
        ("adam", "descend"),
        ("adam", "descend_eager"),
        ("adam", "descend_compiled"),
        ("adam", "torch_forloop"),
        ("adamw_clip_sched", "descend"),
        ("adamw_clip_sched", "descend_compiled"),
        ("adamw_clip_sched", "torch_forloop"),
    }
    r = rows[("adam", "descend_eager")]
    assert r["vs_torch_forloop"] == pytest.approx(
        r["median_ms"] / rows[("adam", "torch_forloop")]["median_ms"]
    )


def test_as_chain_keeps_the_rule_and_drops_the_kernel() -> None:
    from descend.bench.step import as_chain

    params = [torch.randn(5, requires_grad=True)]
    opt = as_chain(descend.AdamW(params, lr=0.1, weight_decay=0.1), compile=False)
    assert type(opt) is descend.Optimizer and opt.transform is descend.AdamW.transform
    assert opt.defaults["lr"] == 0.1 and opt.defaults["decoupled_weight_decay"] is True


def test_every_algorithm_builds_for_every_implementation() -> None:
    import torch

    for algo in ALGORITHMS.values():
        shape = (3,) if algo.shapes is None else (2, 3)  # Muon: matrices only
        params = [torch.zeros(shape, requires_grad=True)]
        params[0].grad = torch.ones(shape)
        algo.descend(params).step()
        for impl in algo.torch_impls:
            algo.torch([torch.zeros(shape, requires_grad=True)], impl)


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
    assert _cli(["bench", "compile", "--optimizers", "lionheart"]) == 2


def test_adafactor_and_soap_rows_measure_their_state() -> None:
    # Adafactor against torch's paths; SOAP against its reference package; the state of
    # both depends on the shapes, so it is measured: a (19, 1024) matrix and a 1024-vector.
    result = bench_step([20_000], ["adafactor", "soap"], rounds=1, steps=1)
    rows = {(r["algorithm"], r["impl"]): r for r in result["sizes"][0]["rows"]}
    assert {("adafactor", "torch_forloop"), ("soap", "reference")} <= set(rows)
    assert ("soap", "torch_forloop") not in rows and ("soap", "descend_compiled") not in rows
    n = 19 * 1024 + 1024
    # Adafactor: row and column factors of the matrix, the vector's full variance.
    assert rows[("adafactor", "descend")]["state_bytes_per_param"] == 4 * (19 + 1024 + 1024) / n
    # SOAP: m and v for every weight; the matrix's GG and Q on both sides (19^2 and 1024^2,
    # each twice: 1024 is within max_precond_dim); the vector is not rotated.
    soap = 4 * (2 * n + 2 * (19 * 19 + 1024 * 1024)) / n
    assert rows[("soap", "descend")]["state_bytes_per_param"] == pytest.approx(soap)
    assert rows[("soap", "descend")]["vs_torch_best"] > 0


def test_matrix_shapes_are_transformer_blocks() -> None:
    from descend.bench.matrices import matrix_shapes

    shapes = matrix_shapes(10_000_000)
    assert len(shapes) == 18 and sum(a * b for a, b in shapes) == 9_437_184
    assert {(512, 512), (2048, 512), (512, 2048)} == set(shapes)
    assert matrix_shapes(1000) == [(512, 1)]
