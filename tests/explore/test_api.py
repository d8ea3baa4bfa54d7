"""The explorer's JSON API: every bad request gets a 4xx naming the field; good ones are judged right."""

from __future__ import annotations

import json
import time

import pytest
import torch

pytest.importorskip("fastapi", reason="the explore extra (fastapi) is not installed")
pytest.importorskip(
    "httpx", reason="the explore extra (httpx, for the test client) is not installed"
)

from fastapi.testclient import TestClient

from descend.explore import runs
from descend.explore.lesson_figures import FIGURES
from descend.explore.lessons import LESSON_KEYS, LESSONS
from descend.explore.runs import parse_request
from descend.explore.serve import check_host, is_loopback
from descend.explore.server import MAX_BODY, create_app
from descend.optim.registry import OPTIMIZERS, OptimizerSpec
from descend.terrains import TERRAIN_NAMES


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(create_app())


def _run(client: TestClient, **body: object) -> tuple[int, dict]:
    body.setdefault("terrain", "quadratic")
    body.setdefault("optimizers", [{"name": "gd"}])
    r = client.post("/api/run", json=body)
    return r.status_code, r.json()


def test_catalog_lists_every_terrain_and_registry_optimizer(client: TestClient) -> None:
    cat = client.get("/api/catalog").json()
    assert [t["name"] for t in cat["terrains"]] == list(TERRAIN_NAMES)
    assert [o["name"] for o in cat["optimizers"]] == list(OPTIMIZERS)
    adam = next(o for o in cat["optimizers"] if o["name"] == "adam")
    lr = adam["sliders"][0]
    assert (lr["name"], lr["log"]) == ("lr", True) and lr["low"] < lr["default"] < lr["high"]
    assert {s["name"] for s in adam["sliders"]} >= {"beta1", "beta2", "eps"}


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"terrain": "volcano"}, "terrain", ["rosenbrock", "'volcano'"]),
        ({"terrain": 3}, "terrain", ["Got 3"]),
        ({"optimizers": [{"name": "adamm"}]}, "optimizers[0].name", ["adam,", "'adamm'"]),
        (
            {"optimizers": [{"name": "gd", "hp": {"lr": -1}}]},
            "optimizers[0].hp.lr",
            ["[0.0001, 1]", "-1"],
        ),
        ({"optimizers": [{"name": "gd", "hp": {"lr": "0.1"}}]}, "optimizers[0].hp.lr", ["'0.1'"]),
        ({"optimizers": [{"name": "gd", "hp": {"lr": True}}]}, "optimizers[0].hp.lr", ["True"]),
        (
            {"optimizers": [{"name": "gd", "hp": {"momentum": 0.9}}]},
            "optimizers[0].hp",
            ["['lr']", "momentum"],
        ),
        (
            {"optimizers": [{"name": "momentum", "hp": {"momentum": 1.0}}]},
            "optimizers[0].hp.momentum",
            ["0.999", "1.0"],
        ),
        ({"optimizers": [{"name": "gd", "code": "x"}]}, "optimizers[0]", ["'hp'", "code"]),
        ({"optimizers": ["gd"]}, "optimizers[0]", ["'gd'"]),
        ({"optimizers": []}, "optimizers", ["1 to 8", "[]"]),
        ({"optimizers": [{"name": "gd"}] * 9}, "optimizers", ["1 to 8"]),
        ({"steps": 0}, "steps", ["[1, 1000]", "Got 0"]),
        ({"steps": 1001}, "steps", ["[1, 1000]", "1001"]),
        ({"steps": 2.5}, "steps", ["an int", "2.5"]),
        ({"start": [6.0, 0.0]}, "start", ["x in [-5, 5]", "[6.0, 0.0]"]),
        ({"start": [0.0]}, "start", ["[x, y]"]),
        ({"start": ["a", 0]}, "start", ["'a'"]),
        ({"noise": -0.1}, "noise", ["[0, 10]", "-0.1"]),
        ({"noise": 11}, "noise", ["[0, 10]"]),
        ({"eval": "1"}, "body", ["'eval'"]),
        ({"knobs": {"condition": 0.5}}, "knobs.condition", ["[1, 1000]", "0.5"]),
        ({"knobs": {"dim": 3}}, "knobs", ["['condition']", "dim"]),
        ({"knobs": [100]}, "knobs", ["an object"]),
        ({"terrain": "beale", "knobs": {"width": 2}}, "knobs", ["beale has no settings"]),
    ],
)
def test_bad_run_request_names_field_allowed_and_given(
    client: TestClient, body: dict, field: str, words: list[str]
) -> None:
    status, out = _run(client, **body)
    assert status == 422, out
    assert out["field"] == field
    assert out["error"].startswith(f"The {field!r} field of the explore request must be")
    for w in words:
        assert w in out["error"], out["error"]


def test_non_finite_numbers_are_refused(client: TestClient) -> None:
    # JSON has no NaN; Python's json (and so a hand-made request) accepts the token anyway.
    body = '{"terrain": "quadratic", "optimizers": [{"name": "gd", "hp": {"lr": NaN}}]}'
    r = client.post("/api/run", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["field"] == "optimizers[0].hp.lr"
    r = client.post("/api/run", content=body.replace("NaN", "Infinity"))
    assert r.status_code == 422


def test_malformed_bodies(client: TestClient) -> None:
    r = client.post("/api/run", content=b"{not json")
    assert r.status_code == 400 and "must be JSON" in r.json()["error"]
    r = client.post("/api/run", json=[1, 2])
    assert r.status_code == 422 and r.json()["field"] == "body"
    big = json.dumps({"terrain": "quadratic", "pad": "x" * MAX_BODY})
    r = client.post("/api/run", content=big)
    assert r.status_code == 413 and str(MAX_BODY) in r.json()["error"]


def test_other_routes_refuse_unknown_names(client: TestClient) -> None:
    r = client.get("/api/terrain/volcano")
    assert r.status_code == 422 and "rosenbrock" in r.json()["error"]
    r = client.get("/api/terrain/quadratic?condition=1e9")
    assert r.status_code == 422 and r.json()["field"] == "knobs.condition"
    r = client.get("/api/terrain/quadratic?condition=steep")
    assert r.status_code == 422 and r.json()["field"] == "condition"
    r = client.get("/api/lesson/nope")
    assert r.status_code == 422 and "lr_too_large" in r.json()["error"]
    r = client.get("/api/lesson/batch?batch_size=3")
    assert r.status_code == 422 and "1, 2, 4, 8, 16, 32, 64" in r.json()["error"]
    r = client.get("/api/lesson/batch?batch_size=x")
    assert r.status_code == 422 and r.json()["field"] == "batch_size"
    r = client.get("/api/lesson/momentum_ravine?steps=5")
    assert r.status_code == 422 and r.json()["field"] == "steps"
    r = client.get("/static/../server.py")
    assert r.status_code == 404
    assert client.get("/static/secrets.js").status_code == 404


def test_verdicts_diverged_saddle_converged_local(client: TestClient) -> None:
    # On the quadratic (λmax = 10) gradient descent diverges for η > 2/λmax = 0.2.
    status, out = _run(
        client,
        optimizers=[{"name": "gd", "hp": {"lr": 0.21}}, {"name": "gd", "hp": {"lr": 0.1}}],
        steps=400,
    )
    assert status == 200
    bad, good = out["runs"]
    assert bad["kind"] == "diverged" and bad["label"].startswith("diverged at step")
    assert good["kind"] == "converged" and "global minimum" in good["label"]
    # On x² − y², started on the ridge y = 0, descent stops at the saddle; λmin = −2 exactly.
    _, out = _run(
        client,
        terrain="saddle",
        start=[1.5, 0.0],
        optimizers=[{"name": "gd", "hp": {"lr": 0.05}}],
        steps=300,
    )
    (run,) = out["runs"]
    assert run["kind"] == "saddle" and "λmin = -2" in run["label"]
    # Rastrigin from its standard start: a local minimum, not the global one at the origin.
    _, out = _run(
        client, terrain="rastrigin", optimizers=[{"name": "gd", "hp": {"lr": 0.002}}], steps=300
    )
    assert out["runs"][0]["kind"] == "converged" and "a local minimum" in out["runs"][0]["label"]
    # The gap is f − f* along the path, from the start point.
    assert len(out["runs"][0]["path"]) == len(out["runs"][0]["gap"])


def test_noise_lets_descent_leave_the_saddle(client: TestClient) -> None:
    _, out = _run(
        client,
        terrain="saddle",
        start=[1.5, 0.0],
        noise=0.1,
        optimizers=[{"name": "gd", "hp": {"lr": 0.05}}],
        steps=200,
    )
    run = out["runs"][0]
    assert run["kind"] != "saddle" and abs(run["path"][-1][1]) > 1.0


def test_a_request_is_cut_off_by_the_time_limit(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runs, "TIME_LIMIT", 0.2)
    specs = [{"name": "adam", "hp": {"lr": 1e-5 * (i + 1)}} for i in range(8)]
    started = time.perf_counter()
    status, out = _run(client, terrain="rosenbrock", steps=1000, optimizers=specs)
    assert status == 200 and time.perf_counter() - started < 3.0
    assert any(r["kind"] == "cut_off" for r in out["runs"])


def test_an_optimizer_that_needs_matrices_is_greyed_out_not_run(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # torch's own Muon refuses parameters that are not 2-D matrices.
    monkeypatch.setitem(
        OPTIMIZERS, "muon_probe", OptimizerSpec("muon_probe", torch.optim.Muon, {"lr": 0.02})
    )
    entry = next(
        o for o in client.get("/api/catalog").json()["optimizers"] if o["name"] == "muon_probe"
    )
    assert entry["available"] is False and "2-D point" in entry["reason"]
    status, out = _run(client, optimizers=[{"name": "muon_probe"}])
    assert status == 422 and out["field"] == "optimizers[0].name" and "2-D" in out["error"]


def test_every_lesson_setting_is_a_valid_request(client: TestClient) -> None:
    # The lessons' figures are drawn (and so computed) by the browser test; here, cheaply:
    # every preset passes the server's own checks, and a lesson with a figure answers.
    keys = [lesson["key"] for lesson in client.get("/api/catalog").json()["lessons"]]
    assert keys == list(LESSON_KEYS)
    for lesson in LESSONS:
        if lesson.request is not None:
            parse_request(dict(lesson.request))
        else:
            assert lesson.figure in FIGURES, lesson.key
    r = client.get("/api/lesson/batch?batch_size=1")
    assert r.status_code == 200
    assert [t.get("name") for t in r.json()["figure"]["data"][1:]] == [
        "batch (all samples)",
        "stochastic (1 sample)",
    ]


def test_host_must_be_loopback_unless_allowed() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("example.org")
    assert check_host("127.0.0.1", allow_remote=False) is None
    with pytest.raises(ValueError, match="--allow-remote is given. Got '0.0.0.0'"):
        check_host("0.0.0.0", allow_remote=False)
    assert "warning" in check_host("0.0.0.0", allow_remote=True)


def test_a_setting_the_optimizer_itself_refuses_is_a_4xx(client: TestClient) -> None:
    # momentum = 0 is inside the slider's range, but Nesterov needs some momentum.
    status, out = _run(client, optimizers=[{"name": "nesterov", "hp": {"momentum": 0.0}}])
    assert status == 422 and out["field"] == "optimizers[0]"
    assert "momentum" in out["error"].lower()


def test_the_condition_number_is_a_setting_of_the_quadratic(client: TestClient) -> None:
    # κ = 100: gradient descent needs η < 2/100; at η = 0.021 it diverges, at κ = 10 it does not.
    body = {"optimizers": [{"name": "gd", "hp": {"lr": 0.021}}], "steps": 300}
    assert _run(client, knobs={"condition": 100}, **body)[1]["runs"][0]["kind"] == "diverged"
    assert _run(client, **body)[1]["runs"][0]["kind"] != "diverged"
    view = client.get("/api/terrain/quadratic?condition=100").json()
    assert view["knobs"] == {"condition": 100.0}
    assert max(max(row) for row in view["z"]) > 100  # 100 y²/2 at y = 3 is 450


def test_the_command_refuses_a_public_address_without_the_flag(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from descend.cli.main import main

    with pytest.raises(SystemExit) as done:
        main(["explore", "--host", "0.0.0.0", "--no-browser"])
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert "loopback" in err and "--allow-remote" in err and "'0.0.0.0'" in err
