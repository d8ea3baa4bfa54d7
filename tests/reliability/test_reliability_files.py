"""Checkpoint files under damage and attack: truncated, bit-flipped, half-rotated, or crafted.

Whatever is on disk, descend either loads exactly what was saved or refuses with a
:class:`CheckpointError` that names the file; it never runs code found in a file.
"""

from __future__ import annotations

import ast
import builtins
import os
import pickle
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import descend.train.checkpoint as ckpt
from descend.train import CheckpointError, fit, latest_good_checkpoint, load_checkpoint
from descend.train.checkpoint import save_checkpoint

PACKAGE = Path(ckpt.__file__).resolve().parents[1]  # the descend package folder
PAYLOAD = {
    "model": {"w": torch.arange(12.0).reshape(4, 3), "b": torch.tensor([0.5, -1.0, 2.0])},
    "optimizer": {"state": {0: {"step": torch.tensor(4.0)}}, "param_groups": [{"lr": 0.1}]},
    "loop": {"step": 4, "seed": 0, "lr_scale": 1.0, "name": "run <1>", "none": None},
}
FILE_SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(scope="module")
def good_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return save_checkpoint(tmp_path_factory.mktemp("good") / "last.pt", PAYLOAD).read_bytes()


def same(a: object, b: object) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


@FILE_SETTINGS
@given(fraction=st.floats(0.0, 1.0, exclude_max=True))
def test_any_truncation_is_refused_with_the_file_named(tmp_path: Path, good_bytes: bytes, fraction):
    path = tmp_path / "cut.pt"
    path.write_bytes(good_bytes[: int(fraction * len(good_bytes))])
    with pytest.raises(CheckpointError) as error:
        load_checkpoint(path)
    assert str(path) in str(error.value) and error.value.path == path


@FILE_SETTINGS
@given(data=st.data())
def test_any_bit_flip_is_refused_or_changes_nothing_that_is_loaded(
    tmp_path: Path, good_bytes: bytes, data: st.DataObject
):
    position = data.draw(st.integers(0, len(good_bytes) - 1), label="byte")
    bit = data.draw(st.integers(0, 7), label="bit")
    damaged = bytearray(good_bytes)
    damaged[position] ^= 1 << bit
    path = tmp_path / "flipped.pt"
    path.write_bytes(bytes(damaged))
    try:
        loaded = load_checkpoint(path)
    except CheckpointError as error:
        assert str(path) in str(error)
    else:
        # Only bytes that carry no payload (zip padding, the version strings) may change.
        assert same(loaded, PAYLOAD)


def test_every_payload_byte_is_covered_by_the_checksum(tmp_path: Path, good_bytes: bytes) -> None:
    """Flipping a bit inside the stored tensor data is always caught, not just sometimes."""
    raw = torch.arange(12.0).reshape(4, 3).numpy().tobytes()
    start = good_bytes.find(raw)
    assert start > 0
    for offset in range(0, len(raw), 5):
        damaged = bytearray(good_bytes)
        damaged[start + offset] ^= 0x01
        path = tmp_path / f"flip{offset}.pt"
        path.write_bytes(bytes(damaged))
        with pytest.raises(CheckpointError, match="checksum mismatch"):
            load_checkpoint(path)


def test_both_checkpoints_damaged_names_both_files(tmp_path: Path) -> None:
    save_checkpoint(tmp_path / "last.pt", PAYLOAD)
    save_checkpoint(tmp_path / "last.pt", PAYLOAD, keep_previous=True)
    for name in ("last.pt", "last.prev.pt"):
        data = (tmp_path / name).read_bytes()
        (tmp_path / name).write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError) as error:
        latest_good_checkpoint(tmp_path)
    assert "last.pt" in str(error.value) and "last.prev.pt" in str(error.value)


def test_a_crash_between_the_two_renames_leaves_the_previous_checkpoint_in_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``keep_previous`` renames last -> prev, then tmp -> last; dying between them loses nothing."""
    save_checkpoint(tmp_path / "last.pt", PAYLOAD)
    real_replace = os.replace
    calls = []

    def die_on_second_rename(src, dst):
        calls.append(Path(dst).name)
        if len(calls) == 2:
            raise KeyboardInterrupt  # stands for the process dying here
        real_replace(src, dst)

    monkeypatch.setattr(ckpt.os, "replace", die_on_second_rename)
    newer = {**PAYLOAD, "loop": {**PAYLOAD["loop"], "step": 8}}
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path / "last.pt", newer, keep_previous=True)
    monkeypatch.setattr(ckpt.os, "replace", real_replace)
    assert calls == ["last.prev.pt", "last.pt"]
    assert not (tmp_path / "last.pt").exists()
    assert latest_good_checkpoint(tmp_path) == tmp_path / "last.prev.pt"
    assert load_checkpoint(tmp_path / "last.prev.pt")["loop"]["step"] == 4
    assert [p.name for p in tmp_path.iterdir()] == ["last.prev.pt"]  # no temporary left behind


# -- files crafted to run code when unpickled ----------------------------------------------


class Exploit:
    """Unpickling this object calls ``func(*args)``: each one creates the marker file."""

    def __init__(self, func, args) -> None:
        self.func, self.args = func, args

    def __reduce__(self):
        return (self.func, self.args)


def exploits(marker: Path) -> dict[str, Exploit]:
    return {
        "open": Exploit(builtins.open, (str(marker), "w")),
        "exec": Exploit(builtins.exec, (f"open({str(marker)!r}, 'w').close()",)),
        "os.system": Exploit(os.system, (f"touch '{marker}'",)),
    }


def write_evil(path: Path, exploit: Exploit, how: str) -> None:
    record = {"format": "descend.checkpoint", "format_version": 1, "sha256": "0" * 64,
              "payload": {"model": {"w": torch.zeros(2)}, "x": exploit}}  # fmt: skip
    if how == "zip":
        torch.save(record, path)
    elif how == "legacy":
        torch.save(record, path, _use_new_zipfile_serialization=False)
    else:
        path.write_bytes(pickle.dumps(record, protocol=2))


@pytest.mark.parametrize("how", ["zip", "legacy", "plain pickle"])
@pytest.mark.parametrize("vector", ["open", "exec", "os.system"])
def test_a_checkpoint_that_runs_code_when_unpickled_is_refused_without_running_it(
    tmp_path: Path, vector: str, how: str
) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "last.pt"
    write_evil(path, exploits(marker)[vector], how)
    with pytest.raises(CheckpointError) as error:
        load_checkpoint(path)
    assert str(path) in str(error.value)
    assert not marker.exists()
    if how == "zip":  # the file is a real exploit: an unsafe load runs it
        torch.load(path, weights_only=False)
        assert marker.exists()


def test_resume_from_a_crafted_checkpoint_refuses_it_and_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    write_evil(tmp_path / "last.pt", exploits(marker)["exec"], "zip")
    model = torch.nn.Linear(2, 1)
    before = [p.detach().clone() for p in model.parameters()]
    data = (torch.randn(8, 2), torch.randn(8, 1))
    with pytest.raises(CheckpointError, match="last.pt"):
        fit(model, data, torch.nn.MSELoss(), "sgd", max_steps=2, checkpoint_dir=tmp_path,
            resume=True, progress=False)  # fmt: skip
    assert not marker.exists()
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


# -- every place descend reads a file ------------------------------------------------------

UNSAFE_MODULES = {"pickle", "cPickle", "dill", "cloudpickle", "joblib", "marshal", "shelve"}


def _calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield node, ast.unparse(node.func)


def test_the_package_never_unpickles_arbitrary_objects() -> None:
    """Every ``torch.load`` passes ``weights_only=True``; no pickle, eval, exec or unsafe YAML."""
    loads = []
    for source in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(source.read_text(encoding="utf-8"), filename=str(source))
        where = source.relative_to(PACKAGE.parent)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                bad = {n.split(".")[0] for n in names} & UNSAFE_MODULES
                assert not bad, f"{where}:{node.lineno} imports {bad}"
        for node, func in _calls(tree):
            keywords = {k.arg: k.value for k in node.keywords}
            if func.endswith("torch.load") or func == "load" and "weights_only" in keywords:
                loads.append(where)
                flag = keywords.get("weights_only")
                assert isinstance(flag, ast.Constant) and flag.value is True, (
                    f"{where}:{node.lineno}: torch.load without weights_only=True"
                )
            assert func not in {
                "eval",
                "exec",
                "yaml.load",
                "yaml.unsafe_load",
                "yaml.full_load",
            }, f"{where}:{node.lineno} calls {func}"
            if func.endswith(("np.load", "numpy.load")):
                flag = keywords.get("allow_pickle")
                assert flag is None or (isinstance(flag, ast.Constant) and flag.value is False)
    assert loads, "the scan found no torch.load at all: it is not looking in the right place"


def test_descend_train_resume_refuses_a_crafted_checkpoint_in_one_line(tmp_path, capsys) -> None:
    from descend.cli.main import main

    marker = tmp_path / "pwned"
    folder = tmp_path / "run"
    (folder / "checkpoints").mkdir(parents=True)
    write_evil(folder / "checkpoints" / "last.pt", exploits(marker)["os.system"], "zip")
    with pytest.raises(SystemExit) as exited:
        main(["train", "linreg", "--out", str(folder), "--resume", "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert exited.value.code == 2 and len(err) == 1 and "Traceback" not in err[0]
    assert str(folder / "checkpoints" / "last.pt") in err[0] and "objects other than" in err[0]
    assert not marker.exists() and not (folder / "model.pt").exists()


@pytest.mark.parametrize("damage", ["truncated", "crafted"])
def test_descend_landscape_names_a_weights_file_it_cannot_use(tmp_path, capsys, damage) -> None:
    """``--checkpoint`` is the other file the CLI reads: same one-line answer, nothing run."""
    from descend.cli.main import main

    marker, weights = tmp_path / "pwned", tmp_path / "model.pt"
    if damage == "truncated":
        torch.save({"model": {"weight": torch.zeros(1, 10), "bias": torch.zeros(1)}}, weights)
        weights.write_bytes(weights.read_bytes()[:200])
    else:
        torch.save({"model": {"weight": exploits(marker)["exec"]}}, weights)
    argv = ["landscape", "linreg", "--checkpoint", str(weights), "--out", str(tmp_path / "out")]
    with pytest.raises(SystemExit) as exited:
        main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert exited.value.code == 2 and len(err) == 1 and str(weights) in err[0], err
    assert not marker.exists()
