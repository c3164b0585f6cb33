"""`heartgrid replay FILE|RUN_DIR [B] [--port P] [--html OUT]`: watch replays in a browser.

One replay file, a run directory (its runs/<run>/replays/*.hgreplay, with a picker in the
page) or a directory of replays; or two replays of the same seed side by side in lockstep,
their per-step differences in reward and hearts highlighted and the first step where they
diverge marked. The page is served on 127.0.0.1 (port 8470 by default; --port 0 picks a free
one) until Ctrl-C; with --html OUT it is written as one self-contained file instead, which
opens from file:// with no server and no network (docs/viewer.md).

Every replay is read and checked before anything is served: a missing, corrupt, truncated
or newer-format replay is one line naming the file, and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from heartgrid.errors import UsageError
from heartgrid.replay.format import find_replays, read_replay
from heartgrid.replay.html import write_viewer_html
from heartgrid.replay.server import DEFAULT_HOST, DEFAULT_PORT, ServedReplay, bind_socket, replay_app, serve, url_of


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "replay",
        help="watch replays in a browser: a file, a run's replays, or two side by side",
        description=__doc__.split("\n\n", 1)[1],
    )
    p.add_argument("paths", nargs="+", metavar="FILE|RUN_DIR",
                   help="a .hgreplay file, a run directory or a directory of replays; two "
                        "replay files: side by side")
    p.add_argument("--port", type=int, default=DEFAULT_PORT,
                   help=f"port to serve on (default {DEFAULT_PORT}; 0: a free one)")
    p.add_argument("--host", default=DEFAULT_HOST,
                   help=f"address to listen on (default {DEFAULT_HOST}: this machine only)")
    p.add_argument("--html", type=Path, metavar="OUT",
                   help="write the viewer with the replays embedded to this HTML file and exit")
    p.set_defaults(func=cmd_replay)


def label(path: Path, document: dict[str, Any]) -> str:
    """How a replay is listed in the page's picker."""
    meta = document["meta"]
    parts = [path.name, str(meta.get("source"))]
    if meta.get("epoch") is not None:
        parts.append(f"epoch {meta['epoch']}")
    parts += [f"episode {meta.get('episode')}", f"{len(document['steps'])} steps ({document['end']})"]
    return " · ".join(parts)


def load_replays(paths: list[str]) -> tuple[list[ServedReplay], list[dict[str, Any]]]:
    """Every replay the paths name, read and validated (ReplayError, exit 2, otherwise), and
    their `meta`s. One document is held at a time: a run may have many replays."""
    if len(paths) > 2:
        raise UsageError(f"give one replay (or a run directory), or two replays to compare side "
                         f"by side; got {len(paths)} paths")
    found = [find_replays(p) for p in paths]
    if len(paths) == 2:
        for path, files in zip(paths, found):
            if len(files) != 1:
                raise UsageError(f"{path} holds {len(files)} replays; to compare two runs side by "
                                 "side name one .hgreplay file of each")
    served, metas = [], []
    for path in [p for files in found for p in files]:
        document = read_replay(path)
        served.append(ServedReplay(path, label(path, document)))
        metas.append(document["meta"])
    return served, metas


def check_pair(ma: dict[str, Any], mb: dict[str, Any]) -> None:
    """Side by side is meant for two replays of the same seed: say so when they are not."""
    if (ma.get("seed"), ma.get("env"), ma.get("episode")) != (mb.get("seed"), mb.get("env"), mb.get("episode")):
        print(f"heartgrid replay: warning: the two replays are of different episodes (seed "
              f"{ma.get('seed')} env {ma.get('env')} episode {ma.get('episode')} vs seed {mb.get('seed')} env "
              f"{mb.get('env')} episode {mb.get('episode')}); their maps may differ from the start",
              file=sys.stderr)


def cmd_replay(args: argparse.Namespace) -> int:
    served, metas = load_replays(args.paths)
    compare = len(args.paths) == 2
    if compare:
        check_pair(*metas)
    if args.html is not None:
        if args.html.is_dir():
            raise UsageError(f"--html {args.html} is a directory; name the HTML file to write")
        out = write_viewer_html(args.html, served, compare=compare)
        print(f"heartgrid replay: wrote {out} ({out.stat().st_size / 1e6:.1f} MB, "
              f"{len(served)} replay{'s' if len(served) != 1 else ''}); open it in any browser")
        return 0
    sock = bind_socket(args.host, args.port)  # a taken port: one line, exit 2
    try:
        app = replay_app(served, compare=compare, host=args.host)
        what = "side by side" if compare else f"{len(served)} replay{'s' if len(served) != 1 else ''}"
        print(f"heartgrid replay: serving {what} at {url_of(sock)} (Ctrl-C to stop)", flush=True)
        serve(app, sock)
    except KeyboardInterrupt:
        pass  # Ctrl-C is how a person stops the viewer: not an error
    finally:
        sock.close()
    return 0
