"""The server behind `heartgrid replay` and `heartgrid play`, and those commands' bad input:
it serves only the files it was given, checks the Host and the websocket's Origin, answers
bad websocket messages with an error (and keeps working), and bad replays, a taken port or a
bad agent are one line and exit 2. Ctrl-C stops the viewer with exit 0."""

from __future__ import annotations

import gzip
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from browser import ServerThread, record_random_episode
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from heartgrid.recipes import build_config
from heartgrid.replay.format import read_replay, write_replay
from heartgrid.replay.play import PlaySession
from heartgrid.replay.server import PlayHub, ServedReplay, play_app, replay_app, viewer_assets
from heartgrid.tools.cli import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def replay(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return record_random_episode(tmp_path_factory.mktemp("r") / "small.hgreplay", "small_cardinal", 20)


def get(server: ServerThread, path: str, host: str | None = None) -> tuple[int, bytes]:
    """A GET with the path sent exactly as written (no client-side normalisation)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.putrequest("GET", path, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", host or f"127.0.0.1:{server.port}")
        conn.endheaders()
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_serves_the_viewer_and_the_given_replays_only(replay: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the page")
    assets = viewer_assets()
    with ServerThread(replay_app([ServedReplay(replay, "small")])) as server:
        status, body = get(server, "/")
        assert status == 200 and body == assets["index.html"]
        assert get(server, "/viewer.js") == (200, assets["viewer.js"])
        assert get(server, "/replay/0") == (200, replay.read_bytes())
        session = json.loads(get(server, "/api/session")[1])
        assert session["mode"] == "replay" and [r["name"] for r in session["replays"]] == [replay.name]
        escapes = [
            "/../../../../etc/passwd", "/..%2f..%2f..%2fetc%2fpasswd", "/%2e%2e/%2e%2e/etc/passwd",
            "/%2e%2e%2f%2e%2e%2fetc%2fpasswd", "/..%5c..%5cetc%5cpasswd", "/%252e%252e%252fetc%252fpasswd",
            "/replay/..%2f..%2fetc%2fpasswd", "/replay/1", "/replay/-1", "/replay/0/../../etc/passwd",
            f"/..%2f..%2f..%2f..%2f..%2f..%2f..%2f..%2f{secret}", f"/{secret.name}",
            "/viewer.js/..", "/viewer.js%00.png", "/heartgrid/replay/server.py", "/server.py",
            "/%2e%2e", "/.", "//etc/passwd", "/static/../viewer.js/../../../etc/passwd",
        ]
        for path in escapes:
            status, body = get(server, path)
            assert status in (403, 404), (path, status)
            assert b"root:" not in body and b"not for the page" not in body, path
        # DNS rebinding: a page of another name that resolves to 127.0.0.1 is refused.
        assert get(server, "/", host="evil.example:80")[0] == 400
        assert get(server, "/replay/0", host="evil.example")[0] == 400


@pytest.fixture
def play_server() -> Any:
    game = build_config("small_cardinal", [], default_device="cpu").game
    session = PlaySession(game, agent=0, seed=0, meta={"recipe": "small_cardinal"})
    with ServerThread(play_app(PlayHub(session, speed=0, save=None))) as server:
        server.session = session
        yield server


def ws_url(server: ServerThread) -> str:
    return f"ws://127.0.0.1:{server.port}/ws"


def test_bad_websocket_messages_get_an_error_and_change_nothing(play_server: Any) -> None:
    session = play_server.session
    bad = [
        "not json", "[]", "null", '"act"', "{}", '{"type": "fly"}', '{"type": "act"}',
        '{"type": "act", "action": 3}', '{"type": "act", "action": ""}', '{"type": "act", "action": "jump"}',
        '{"type": "act", "action": "move_cardinal_9"}', '{"type": "act", "action": "noop_0"}',
        '{"type": "act", "action": "up", "extra": 1}', '{"type": "act", "action": ["up"]}',
        '{"type": "act", "action": "' + "x" * 500 + '"}', "{" * 5000, '{"type": "save", "path": "/etc/x"}',
        b"\x00\x01binary", '{"type": "act", "action": "up\\u0000"}',
    ]
    with connect(ws_url(play_server), proxy=None, open_timeout=10) as ws:
        init = json.loads(ws.recv(timeout=10))
        assert init["type"] == "init" and init["agent"] == 0
        for message in bad:
            ws.send(message)
            reply = json.loads(ws.recv(timeout=10))
            assert reply["type"] == "error" and reply["message"], message
        assert session.steps == 0
        ws.send(json.dumps({"type": "act", "action": "get_items_0"}))  # still working
        reply = json.loads(ws.recv(timeout=10))
        assert reply["type"] == "step" and reply["t"] == 1
        assert session.steps == 1


def test_a_frame_over_the_size_limit_closes_only_that_connection(play_server: Any) -> None:
    with connect(ws_url(play_server), proxy=None, open_timeout=10, max_size=None) as ws:
        ws.recv(timeout=10)
        ws.send("x" * (128 * 1024))
        with pytest.raises(Exception):
            ws.recv(timeout=10)
    with connect(ws_url(play_server), proxy=None, open_timeout=10) as ws:  # the server lives on
        assert json.loads(ws.recv(timeout=10))["type"] == "init"


def test_a_websocket_from_another_origin_is_refused(play_server: Any) -> None:
    with pytest.raises(InvalidStatus):
        with connect(ws_url(play_server), proxy=None, origin="http://evil.example", open_timeout=10) as ws:
            ws.recv(timeout=10)
    origin = f"http://127.0.0.1:{play_server.port}"
    with connect(ws_url(play_server), proxy=None, origin=origin, open_timeout=10) as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "init"


# ------------------------------------------------------------------------------------------
# The commands' bad input: one line naming the problem, exit 2, before any server starts


def run_cli(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str]:
    code = main(argv)
    err = capsys.readouterr().err.strip()
    return code, err


def corrupt_variants(replay: Path, d: Path) -> dict[str, Path]:
    raw = replay.read_bytes()
    document = read_replay(replay)
    newer = write_replay(d / "newer.hgreplay", {**document, "version": 2})
    (d / "truncated.hgreplay").write_bytes(raw[: len(raw) // 2])
    (d / "corrupt.hgreplay").write_bytes(os.urandom(2000))
    (d / "notjson.hgreplay").write_bytes(gzip.compress(b"{not json"))
    missing_key = {k: v for k, v in document.items() if k != "objects"}
    (d / "nokey.hgreplay").write_bytes(gzip.compress(json.dumps(missing_key).encode()))
    return {"newer": newer, "truncated": d / "truncated.hgreplay", "corrupt": d / "corrupt.hgreplay",
            "notjson": d / "notjson.hgreplay", "nokey": d / "nokey.hgreplay", "missing": d / "nope.hgreplay"}


@pytest.mark.parametrize("html", [False, True])
def test_bad_replays_are_one_line_and_exit_2(replay: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
                                            html: bool) -> None:
    extra = ["--html", str(tmp_path / "out.html")] if html else ["--port", "0"]
    for kind, path in corrupt_variants(replay, tmp_path).items():
        code, err = run_cli(["replay", str(path), *extra], capsys)
        assert code == 2, (kind, err)
        assert len(err.splitlines()) == 1 and str(path) in err, (kind, err)
        if kind == "newer":
            assert "format version 2" in err and "upgrade heartgrid" in err
        # As the second of a side-by-side pair too.
        code, err = run_cli(["replay", str(replay), str(path), *extra], capsys)
        assert code == 2 and str(path) in err, (kind, err)
    assert not (tmp_path / "out.html").exists()
    code, err = run_cli(["replay", str(replay), str(replay), str(replay)], capsys)
    assert code == 2 and "two replays" in err
    empty = tmp_path / "empty_run"
    empty.mkdir()
    code, err = run_cli(["replay", str(empty)], capsys)
    assert code == 2 and str(empty) in err


def test_a_port_in_use_is_one_line_and_exit_2(replay: Path, capsys: pytest.CaptureFixture) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    try:
        code, err = run_cli(["replay", str(replay), "--port", str(port)], capsys)
        assert (code, err) == (2, f"heartgrid replay: error: port {port} is in use; pass --port 0 for a free one")
        code, err = run_cli(["play", "small_cardinal", "--port", str(port)], capsys)
        assert (code, err) == (2, f"heartgrid play: error: port {port} is in use; pass --port 0 for a free one")
    finally:
        taken.close()


def test_play_refuses_bad_arguments(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "file").write_text("x")
    for argv, words in [
        (["play", "small_cardinal", "--agent", "7"], "--agent 7 is out of range"),
        (["play", "small_cardinal", "--policy", str(tmp_path / "nothing")], "no such file"),
        (["play", "small_cardinal", "--speed", "-1"], "--speed"),
        (["play", "small_cardinal", "--save", str(tmp_path)], "is a directory"),
        (["play", "small_cardinal", "--save", str(tmp_path / "file" / "ep.hgreplay")], "file is a file, not a directory"),
        (["play", "small_cardinal", "game.nope=1", "--port", "0"], "nope"),
    ]:
        code, err = run_cli(argv, capsys)
        assert code == 2 and words in err and len(err.splitlines()) == 1, (argv, err)


def test_the_viewer_serves_until_ctrl_c_and_exits_0(replay: Path) -> None:
    process = subprocess.Popen([sys.executable, "-m", "heartgrid.tools.cli", "replay", str(replay), "--port", "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        line = process.stdout.readline()
        assert line.startswith("heartgrid replay: serving 1 replay at http://127.0.0.1:"), line
        url = line.split(" at ", 1)[1].split()[0]
        host, port = url.removeprefix("http://").rstrip("/").rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        conn.request("GET", "/replay/0")
        assert conn.getresponse().read() == replay.read_bytes()
        conn.close()
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
        assert process.stderr.read() == ""
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_play_refuses_a_save_path_it_cannot_write_before_the_game(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A read-only directory (simulated: this suite may run as root, whom permissions do not stop)
    is found before the game starts, not at its end, when the episode would be lost."""
    def read_only(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("heartgrid.tools.play_cmd.tempfile.TemporaryFile", read_only)
    code, err = run_cli(["play", "small_cardinal", "--save", str(tmp_path / "ep.hgreplay")], capsys)
    assert (code, err) == (2, f"heartgrid play: error: --save {tmp_path / 'ep.hgreplay'}: cannot write in "
                              f"{tmp_path} (Permission denied); choose another replay file")
