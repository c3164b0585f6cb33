"""The local web server behind `heartgrid replay` and `heartgrid play` (starlette on uvicorn).

    app = replay_app([path_a, path_b], compare=True)     # the viewer and these replays
    app = play_app(session, speed=0)                     # the viewer in play mode + /ws
    sock = bind_socket("127.0.0.1", 8470)                # UsageError when the port is taken
    serve(app, sock)                                     # until Ctrl-C

What it serves, and nothing else (no directory is mounted, so no path can reach another file):
- `/` and the viewer's own files, by exact name from a fixed list, read into memory at start;
- `/api/session`: what to show (replay, side by side, or play) and the replays' names;
- `/replay/<n>`: the bytes of the n-th replay it was given (an index, never a path);
- `/ws` (play only): the game's websocket. Every message from the page is untrusted: it is
  size-limited, parsed as one of three typed messages (PlayMessage) and checked against the
  game's actions; a bad one gets an error reply and changes nothing.

It listens on 127.0.0.1 unless told otherwise; the Host header must name this machine (no DNS
rebinding) and a websocket must come from the page's own origin (another site open in the
same browser cannot drive the game).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import uvicorn
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from heartgrid.errors import UsageError

if TYPE_CHECKING:  # the viewer alone needs neither torch nor the engine
    from heartgrid.replay.play import PlaySession

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8470
# The viewer's files (heartgrid/replay/viewer/, package data) and their media types.
ASSETS = {
    "index.html": "text/html; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
    "replay.js": "text/javascript; charset=utf-8",
    "draw.js": "text/javascript; charset=utf-8",
    "viewer.js": "text/javascript; charset=utf-8",
    "play.js": "text/javascript; charset=utf-8",
}
MAX_MESSAGE = 1024  # characters: the largest valid message is well under 100
MAX_FRAME = 64 * 1024  # bytes: uvicorn closes the connection on a larger websocket frame
HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
           "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; connect-src 'self'; "
                                      "style-src 'self'; script-src 'self'; frame-ancestors 'none'"}


def viewer_assets() -> dict[str, bytes]:
    """The viewer's files, read from the installed package."""
    folder = resources.files("heartgrid.replay") / "viewer"
    return {name: (folder / name).read_bytes() for name in ASSETS}


@dataclass(frozen=True)
class ServedReplay:
    path: Path
    label: str  # shown in the page's picker


# --------------------------------------------------------------------------------------------
# Apps


def _asset_routes(assets: dict[str, bytes]) -> list[Route]:
    async def index(request: Request) -> Response:
        return Response(assets["index.html"], media_type=ASSETS["index.html"], headers=HEADERS)

    async def asset(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in assets:  # only the listed files; `..`, `%2e%2e` and the like land here
            return PlainTextResponse("not found", status_code=404, headers=HEADERS)
        return Response(assets[name], media_type=ASSETS[name], headers=HEADERS)

    return [Route("/", index), Route("/{name}", asset)]


def _middleware(host: str) -> list[Middleware]:
    # A listener on every interface (the person asked for it with --host) is reached by any name.
    allowed = ["*"] if host in ("0.0.0.0", "::", "") else sorted({host, "127.0.0.1", "localhost", "[::1]", "::1"})
    return [Middleware(TrustedHostMiddleware, allowed_hosts=allowed)]


def replay_app(replays: list[ServedReplay], *, compare: bool = False, host: str = DEFAULT_HOST) -> Starlette:
    """The viewer and `replays` (already validated by the caller; they are sent as they are
    on disk, and the page checks them again)."""
    if compare and len(replays) != 2:
        raise ValueError(f"side by side needs 2 replays, got {len(replays)}")
    assets = viewer_assets()
    listing = [{"id": i, "name": r.path.name, "label": r.label} for i, r in enumerate(replays)]
    session = {"mode": "compare" if compare else "replay", "replays": listing,
               "compare": [0, 1] if compare else None}

    async def api_session(request: Request) -> Response:
        return JSONResponse(session, headers=HEADERS)

    async def replay_bytes(request: Request) -> Response:
        index = request.path_params["index"]
        if not 0 <= index < len(replays):
            return PlainTextResponse("no such replay", status_code=404, headers=HEADERS)
        try:
            data = replays[index].path.read_bytes()
        except OSError as e:
            return PlainTextResponse(f"cannot read the replay: {e.strerror or e}", status_code=410, headers=HEADERS)
        return Response(data, media_type="application/octet-stream", headers=HEADERS)

    routes = [Route("/api/session", api_session), Route("/replay/{index:int}", replay_bytes),
              *_asset_routes(assets)]
    return Starlette(routes=routes, middleware=_middleware(host))


# --------------------------------------------------------------------------------------------
# Play: the websocket


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ActMessage(_Message):
    type: Literal["act"]
    action: str = Field(min_length=1, max_length=64)
    """A flat action name of the game (`get_items_0`) or a direction (`up`, `down`, `left`, `right`)."""


class SaveMessage(_Message):
    type: Literal["save"]


class ResetMessage(_Message):
    type: Literal["reset"]


PlayMessage = TypeAdapter(Annotated[ActMessage | SaveMessage | ResetMessage, Field(discriminator="type")])


def parse_message(text: Any) -> ActMessage | SaveMessage | ResetMessage:
    """One message from the page, or ValueError saying what is wrong with it."""
    if not isinstance(text, str):
        raise ValueError("messages are JSON text, not binary")
    if len(text) > MAX_MESSAGE:
        raise ValueError(f"message of {len(text)} characters; the limit is {MAX_MESSAGE}")
    try:
        return PlayMessage.validate_json(text)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(x) for x in first.get("loc", ())) or "message"
        raise ValueError(f"bad message ({where}: {first.get('msg', 'invalid')})") from None


class PlayHub:
    """The game's one session and the pages watching it: messages in, step records out to all."""

    def __init__(self, session: PlaySession, speed: float, save: Path | None):
        self.session, self.speed, self.save_path = session, speed, save
        self.clients: set[WebSocket] = set()
        self.lock = asyncio.Lock()  # one step at a time (the ticker and key presses)
        self.pending: str | None = None  # at a set speed: the person's next action

    def init_message(self) -> dict[str, Any]:
        s = self.session
        return {"type": "init", "document": s.document(), "agent": s.agent, "keys": s.key_map,
                "speed": self.speed, "save": str(self.save_path) if self.save_path else None,
                "name": f"live game ({s.recipe or 'game'}, episode {s.episode})"}

    async def broadcast(self, message: dict[str, Any]) -> None:
        text = json.dumps(message, allow_nan=False)
        for ws in list(self.clients):
            try:
                await ws.send_text(text)
            except Exception:  # a page that went away mid-send; it is dropped on disconnect
                self.clients.discard(ws)

    async def step(self, action: str | None) -> None:
        async with self.lock:
            if self.session.done:
                return
            record = self.session.act(action)
        await self.broadcast(record)

    async def handle(self, ws: WebSocket, text: Any) -> None:
        try:
            msg = parse_message(text)
            if isinstance(msg, ActMessage):
                self.session.resolve(msg.action)  # refused here, before it can reach the engine
                if self.session.done:
                    raise ValueError("the episode has ended; start a new one (reset)")
                if self.speed > 0:
                    self.pending = msg.action
                else:
                    await self.step(msg.action)
            elif isinstance(msg, SaveMessage):
                path = self.save()
                await ws.send_json({"type": "saved", "path": str(path)})
            else:
                async with self.lock:
                    self.session.new_episode()
                    self.pending = None
                await self.broadcast(self.init_message())
        except (ValueError, UsageError) as e:  # PlayError is a ValueError
            await ws.send_json({"type": "error", "message": str(e)})

    def save(self) -> Path:
        path = self.save_path or self.session.default_save_path()
        return self.session.save(path)

    async def ticker(self) -> None:
        """At a set speed: a step every 1/speed seconds while a page watches."""
        while True:
            await asyncio.sleep(1.0 / self.speed)
            if self.clients and not self.session.done:
                action, self.pending = self.pending, None
                await self.step(action)


def _same_origin(ws: WebSocket) -> bool:
    origin = ws.headers.get("origin")
    if origin is None:  # not a browser (a script on this machine): nothing to forge
        return True
    host = ws.headers.get("host", "")
    return origin in (f"http://{host}", f"https://{host}")


def play_app(hub: PlayHub, *, host: str = DEFAULT_HOST) -> Starlette:
    assets = viewer_assets()

    async def api_session(request: Request) -> Response:
        return JSONResponse({"mode": "play", "replays": [], "compare": None}, headers=HEADERS)

    async def game_socket(ws: WebSocket) -> None:
        if not _same_origin(ws):
            await ws.close(code=1008)  # policy violation: a page of another origin
            return
        await ws.accept()
        hub.clients.add(ws)
        try:
            await ws.send_json(hub.init_message())
            while True:
                message = await ws.receive()
                if message["type"] == "websocket.disconnect":
                    break
                await hub.handle(ws, message.get("text", message.get("bytes")))
        except WebSocketDisconnect:
            pass
        finally:
            hub.clients.discard(ws)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        task = asyncio.create_task(hub.ticker()) if hub.speed > 0 else None
        try:
            yield
        finally:
            if task is not None:
                task.cancel()

    routes = [Route("/api/session", api_session), WebSocketRoute("/ws", game_socket), *_asset_routes(assets)]
    return Starlette(routes=routes, middleware=_middleware(host), lifespan=lifespan)


# --------------------------------------------------------------------------------------------
# Serving


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (port 0: a free one), or UsageError naming the problem.
    Bound here, before uvicorn starts, so that a taken port is one clear line and exit 2."""
    if not 0 <= port <= 65535:
        raise UsageError(f"--port must be in 0..65535, got {port}")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise UsageError(f"cannot listen on host {host!r}: {e.strerror}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(128)
    except OSError as e:
        sock.close()
        if e.errno == errno.EADDRINUSE:
            raise UsageError(f"port {port} is in use; pass --port 0 for a free one") from None
        raise UsageError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    sock.setblocking(False)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/"


def make_server(app: Starlette) -> uvicorn.Server:
    config = uvicorn.Config(app, log_level="warning", ws_max_size=MAX_FRAME, lifespan="on",
                            timeout_graceful_shutdown=2, ws="websockets-sansio")
    return uvicorn.Server(config)


def serve(app: Starlette, sock: socket.socket) -> None:
    """Serve until Ctrl-C (uvicorn stops gracefully, then raises KeyboardInterrupt)."""
    make_server(app).run(sockets=[sock])
