"""Checkpoint files: atomic, checksummed, and never executing pickled code."""

from __future__ import annotations

import builtins
import os
from pathlib import Path

import pytest
import torch

import descend.train.checkpoint as ckpt
from descend.train import CheckpointError, latest_good_checkpoint, load_checkpoint, save_checkpoint


def payload(value: float = 1.0) -> dict:
    return {
        "model": {"w": torch.full((3, 2), value), "n": torch.tensor(7)},
        "loop": {"step": 3, "seed": 0, "lr": 0.5, "name": "x", "none": None, "flag": True},
        "list": [1, 2.5, (3, "a")],
    }


def assert_same(a, b) -> None:
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], dict):
            assert_same(a[key], b[key])
        elif isinstance(a[key], torch.Tensor):
            assert torch.equal(a[key], b[key])
        else:
            assert a[key] == b[key] or (list(a[key]) == list(b[key]))


def test_round_trip_records_versions_and_loads_with_weights_only(tmp_path):
    path = save_checkpoint(tmp_path / "a" / "c.pt", payload())
    assert_same(load_checkpoint(path), payload())
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == "descend.checkpoint" and raw["format_version"] == 1
    assert raw["torch_version"] == torch.__version__ and "descend_version" in raw
    assert raw["sha256"] == ckpt.payload_digest(raw["payload"])
    assert [p.name for p in path.parent.iterdir()] == ["c.pt"]  # no temporary left


def test_failed_write_keeps_the_previous_file(tmp_path, monkeypatch):
    path = save_checkpoint(tmp_path / "last.pt", payload(1.0))
    before = path.read_bytes()
    real_save = torch.save

    def half_then_fail(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 partial")
        raise OSError("disk full")

    monkeypatch.setattr(ckpt.torch, "save", half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, payload(2.0), keep_previous=True)
    monkeypatch.setattr(ckpt.torch, "save", real_save)
    assert path.read_bytes() == before
    assert load_checkpoint(path)["model"]["w"][0, 0].item() == 1.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


def test_a_later_write_removes_the_temporaries_of_killed_writers(tmp_path):
    # What a writer killed before its rename leaves: an old one, a recent one (a writer
    # may still be at work on it), and an old one of another checkpoint.
    old, recent, other = (
        tmp_path / n for n in (".last.pt.k1.tmp", ".last.pt.k2.tmp", ".epoch=1.pt.k3.tmp")
    )
    for f in (old, recent, other):
        f.write_bytes(b"PK partial")
    hour_ago = os.path.getmtime(old) - 3600
    os.utime(old, (hour_ago, hour_ago))
    os.utime(other, (hour_ago, hour_ago))
    save_checkpoint(tmp_path / "last.pt", payload(1.0))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["last.pt", recent.name, other.name]
    )


def test_rotation_keeps_the_previous_checkpoint(tmp_path):
    save_checkpoint(tmp_path / "last.pt", payload(1.0), keep_previous=True)
    save_checkpoint(tmp_path / "last.pt", payload(2.0), keep_previous=True)
    assert load_checkpoint(tmp_path / "last.prev.pt")["model"]["w"][0, 0].item() == 1.0
    assert latest_good_checkpoint(tmp_path) == tmp_path / "last.pt"


def test_truncated_file_is_refused_and_latest_falls_back(tmp_path):
    save_checkpoint(tmp_path / "last.pt", payload(1.0), keep_previous=True)
    save_checkpoint(tmp_path / "last.pt", payload(2.0), keep_previous=True)
    data = (tmp_path / "last.pt").read_bytes()
    (tmp_path / "last.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="last.pt") as err:
        load_checkpoint(tmp_path / "last.pt")
    assert err.value.path == tmp_path / "last.pt"
    assert latest_good_checkpoint(tmp_path) == tmp_path / "last.prev.pt"
    (tmp_path / "last.prev.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match="no intact checkpoint"):
        latest_good_checkpoint(tmp_path)
    assert latest_good_checkpoint(tmp_path / "empty") is None


def test_a_bit_flip_in_tensor_data_is_caught(tmp_path):
    path = save_checkpoint(tmp_path / "c.pt", payload(1.0))
    data = bytearray(path.read_bytes())
    # The float 1.0 is stored as 00 00 80 3f; flip one bit of the first such value.
    at = data.find(bytes.fromhex("0000803f"))
    assert at > 0
    data[at + 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="c.pt"):
        load_checkpoint(path)


def test_checksum_mismatch_is_named(tmp_path):
    # A well-formed file whose payload does not match its recorded checksum.
    record = torch.load(save_checkpoint(tmp_path / "c.pt", payload()), weights_only=True)
    record["payload"]["model"]["w"][0, 0] = 5.0
    torch.save(record, tmp_path / "c.pt")
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        load_checkpoint(tmp_path / "c.pt")


@pytest.mark.parametrize(
    "record, reason",
    [
        ({"format": "other"}, "not a descend checkpoint"),
        (
            {"format": "descend.checkpoint", "format_version": 99, "sha256": "", "payload": {}},
            "unknown format version 99",
        ),
        ([1, 2], "not a descend checkpoint"),
    ],
)
def test_unknown_formats_are_refused(tmp_path, record, reason):
    torch.save(record, tmp_path / "c.pt")
    with pytest.raises(CheckpointError, match=reason):
        load_checkpoint(tmp_path / "c.pt")


class Exploit:
    """Unpickling this object would create the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (builtins.open, (str(self.marker), "w"))


def test_a_file_that_runs_code_when_unpickled_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    evil = {
        "format": "descend.checkpoint",
        "format_version": 1,
        "sha256": "",
        "payload": {"x": Exploit(marker)},
    }
    torch.save(evil, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="evil.pt.*objects other than tensors"):
        load_checkpoint(tmp_path / "evil.pt")
    assert not marker.exists()
    # The file really is an exploit: an unsafe load runs it.
    torch.load(tmp_path / "evil.pt", weights_only=False)
    assert marker.exists()


def test_unstorable_objects_are_refused_at_save(tmp_path):
    with pytest.raises(TypeError, match="can only hold tensors"):
        save_checkpoint(tmp_path / "c.pt", {"f": object()})
    assert not os.listdir(tmp_path)
