"""The replay file: atomic gzip-JSON writes, validated reads whose every refusal is a
ReplayError (exit 2) naming the file, and finding replays from a file, a run or a directory."""

from __future__ import annotations

import copy
import gzip
import json
from pathlib import Path

import numpy as np
import pytest
from replay_helpers import facing_actions, recipe_game

from heartgrid.engine.batched import BatchedEngine
from heartgrid.errors import UsageError
from heartgrid.replay.format import (
    VERSION,
    ReplayError,
    find_replays,
    read_replay,
    validate_document,
    write_replay,
)
from heartgrid.replay.recorder import EpisodeRecorder


@pytest.fixture(scope="module")
def document() -> dict:
    engine = BatchedEngine(recipe_game("small_cardinal", 25), 2, seed=0)
    engine.reset()
    recorder = EpisodeRecorder(engine, 1, {"source": "eval", "recipe": "small_cardinal"})
    recorder.begin()
    rng = np.random.default_rng(0)
    while not recorder.done:
        actions = facing_actions(rng, engine)
        engine.step(actions)
        recorder.record(actions)
    return recorder.document()


def test_round_trip_and_plain_gzip_json(document: dict, tmp_path: Path):
    path = write_replay(tmp_path / "deep" / "dir" / "r.hgreplay", document)
    assert path.is_file() and not list(path.parent.glob(".tmp-*"))
    # What a browser does: gunzip, then JSON.parse.
    raw = json.loads(gzip.decompress(path.read_bytes()).decode("utf-8"))
    assert raw == document == read_replay(path)
    assert raw["format"] == "heartgrid-replay" and raw["version"] == VERSION == 1
    assert len(raw["steps"]) == 25 and raw["end"] == "truncated"
    assert raw["meta"]["source"] == "eval" and raw["meta"]["recipe"] == "small_cardinal"
    assert raw["meta"]["created"].endswith("Z")
    A = raw["num_agents"]
    assert [obj[0] for obj in raw["objects"][:A]] == [0] * A  # agents first
    assert raw["items"][6] == "heart" and raw["object_types"][14] == "block"


def write_bytes(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "bad.hgreplay"
    path.write_bytes(data)
    return path


def gz(obj) -> bytes:
    return gzip.compress(json.dumps(obj).encode())


def refusal(path: Path) -> str:
    with pytest.raises(ReplayError) as info:
        read_replay(path)
    assert isinstance(info.value, UsageError)  # the CLI turns it into exit status 2
    message = str(info.value)
    assert str(path) in message, message
    assert "\n" not in message
    return message


def test_refuses_a_file_that_is_not_gzip(tmp_path: Path):
    assert "not gzip-compressed" in refusal(write_bytes(tmp_path, b'{"format": "heartgrid-replay"}'))


def test_refuses_a_truncated_file(document: dict, tmp_path: Path):
    whole = gz(document)
    assert "truncated" in refusal(write_bytes(tmp_path, whole[: len(whole) // 2]))


def test_refuses_a_corrupt_file(document: dict, tmp_path: Path):
    fixed = {**document, "meta": {**document["meta"], "created": "2026-12-05T14:00:00Z"}}
    data = bytearray(gz(fixed))  # the same bytes on every run, so the same damage
    data[len(data) // 2] ^= 0xFF
    assert "corrupt" in refusal(write_bytes(tmp_path, bytes(data)))


def test_refuses_gzip_that_is_not_json(tmp_path: Path):
    assert "not JSON" in refusal(write_bytes(tmp_path, gzip.compress(b"\x00\x01 not json")))
    assert "not JSON" in refusal(write_bytes(tmp_path, gzip.compress(b'{"format": ')))


def test_refuses_json_that_is_not_a_replay(tmp_path: Path):
    assert "not a heartgrid replay" in refusal(write_bytes(tmp_path, gz([1, 2, 3])))
    assert "not a heartgrid replay" in refusal(write_bytes(tmp_path, gz({"steps": []})))


def test_refuses_missing_keys(document: dict, tmp_path: Path):
    for key in ("steps", "objects", "meta"):
        broken = {k: v for k, v in document.items() if k != key}
        assert f"lacks required key(s) {key}" in refusal(write_bytes(tmp_path, gz(broken)))
    broken = copy.deepcopy(document)
    del broken["agents"]["inventory"]
    assert "agents.inventory" in refusal(write_bytes(tmp_path, gz(broken)))
    broken = copy.deepcopy(document)
    del broken["steps"][3]["ok"]
    assert "steps[3].ok" in refusal(write_bytes(tmp_path, gz(broken)))


def test_refuses_a_newer_version(document: dict, tmp_path: Path):
    path = write_bytes(tmp_path, gz({**document, "version": 2}))
    assert refusal(path) == (f"replay {path} is format version 2; this heartgrid reads up to 1: "
                             "upgrade heartgrid")


@pytest.mark.parametrize("change, message", [
    (lambda d: d["steps"][2].update(pos=[[10_000, 1, 1]]), "names object 10000"),
    (lambda d: d["steps"][2].update(inv=[[0, 10, 1]]), "names item 10"),
    (lambda d: d["steps"][2].update(pos=[[0, 9, 1]]), "outside the map"),
    (lambda d: d["steps"][2].update(ok=[2, 0]), "other than -1, 0 or 1"),
    (lambda d: d["steps"][2].update(cst=[[0, "busy"]]), "not an integer"),
    (lambda d: d["steps"][2].update(a=[0]), "steps[2].a must be a list of 2 integers"),
    (lambda d: d.update(end="later"), "end is 'later'"),
    (lambda d: d["objects"].append([1, 99, 0]), "outside the 9x9 map"),
    (lambda d: d.update(version="1"), "invalid format version"),
])
def test_refuses_malformed_content(document: dict, change, message: str):
    broken = copy.deepcopy(document)
    change(broken)
    with pytest.raises(ReplayError, match="the-file") as info:
        validate_document(broken, "the-file")
    assert message in str(info.value)


def test_unknown_optional_keys_are_ignored(document: dict, tmp_path: Path):
    extended = copy.deepcopy(document)
    extended["steps"][0]["later_key"] = [1]
    extended["meta"]["something_new"] = True
    assert read_replay(write_replay(tmp_path / "x.hgreplay", extended)) == extended


def test_missing_file_and_directory(tmp_path: Path):
    assert "no such file" in refusal(tmp_path / "nothing.hgreplay")
    with pytest.raises(ReplayError, match="is a directory"):
        read_replay(tmp_path)


def test_find_replays(document: dict, tmp_path: Path):
    run = tmp_path / "runs" / "x"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.json").write_text("{}")
    later = write_replay(run / "replays" / "epoch_000020.hgreplay", document)
    earlier = write_replay(run / "replays" / "epoch_000010.hgreplay", document)
    (run / "replays" / "notes.txt").write_text("not a replay")
    assert find_replays(run) == [earlier, later]
    assert find_replays(run / "replays") == [earlier, later]
    assert find_replays(later) == [later]
    with pytest.raises(ReplayError, match="no such file or directory"):
        find_replays(tmp_path / "missing")
    empty = tmp_path / "runs" / "y" / "replays"
    empty.mkdir(parents=True)
    with pytest.raises(ReplayError, match="holds no .hgreplay files.*replay_interval"):
        find_replays(empty.parent)
    never = tmp_path / "runs" / "z"  # a run that never wrote a replay: no replays/ at all
    never.mkdir(parents=True)
    (never / "config.json").write_text("{}")
    with pytest.raises(ReplayError, match="has no replays/: train with logging.replay_interval=N"):
        find_replays(never)
