"""The replay file, format version 1 (docs/replays.md describes every key).

    write_replay("runs/x/replays/epoch_000010.hgreplay", document)   # atomic, gzip JSON
    document = read_replay(path)          # validated; ReplayError (exit 2) names the file
    paths = find_replays("runs/x")        # a file, a run directory or a directory of replays

A replay is one gzip-compressed UTF-8 JSON object: a header (the game, the vocabularies, the
map and the state at the start of the episode), then one record per step holding only what
changed. Browsers read it with `DecompressionStream("gzip")`, so the JSON is plain: no NaN or
infinity, no Python-only values.

Versioning: `version` grows when a key changes meaning or a required key is added. Readers
refuse a version above their own (with the fix: upgrade heartgrid); added optional keys do not
change the version, and readers ignore keys they do not know.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from heartgrid.checkpoint.durable import replace_file_atomically
from heartgrid.errors import UsageError
from heartgrid.rundir import CONFIG_FILE

FORMAT, VERSION = "heartgrid-replay", 1
SUFFIX = ".hgreplay"
REPLAYS_DIR = "replays"  # runs/<run>/replays/ (training writes there)
SOURCES = ("eval", "train", "render", "play")
ENDS = ("terminal", "truncated", "cut")
NUM_ITEMS = 10

HEADER_KEYS = ("format", "version", "meta", "game", "height", "width", "num_agents", "items",
               "object_types", "actions", "features", "groups", "objects", "agents",
               "converters", "steps", "end")
META_KEYS = ("heartgrid_version", "created", "source", "recipe", "policy", "seed", "env",
             "episode", "task", "epoch", "agent_step")
AGENT_KEYS = ("group", "color", "orientation", "inventory", "frozen")
CONVERTER_KEYS = ("type", "input", "output", "inventory", "state")
# Optional step keys: name -> (entry arity, which index range the first number is in).
DELTA_KEYS: dict[str, tuple[int, str]] = {
    "r": (2, "agent"), "pos": (3, "object"), "ori": (2, "agent"), "inv": (3, "agent"),
    "frz": (2, "agent"), "col": (2, "agent"), "cinv": (3, "converter"), "cst": (2, "converter"),
}


class ReplayError(UsageError):
    """A replay that cannot be read: missing, not gzip, truncated, not JSON, not a replay,
    malformed, or of a newer format version. The message names the file (exit status 2)."""


# --------------------------------------------------------------------------------------------
# Writing


def encode_replay(document: dict[str, Any]) -> bytes:
    """The file's bytes. Compact JSON; gzip with mtime 0, so the same document gives the same
    bytes (a replay's identity is its content, not when it was written)."""
    text = json.dumps(document, separators=(",", ":"), allow_nan=False, ensure_ascii=False)
    return gzip.compress(text.encode("utf-8"), compresslevel=9, mtime=0)


def write_replay(path: str | Path, document: dict[str, Any]) -> Path:
    """Write `document` to `path` atomically (a temporary file renamed into place: a reader
    never sees half a replay); creates the directory. Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_file_atomically(path, encode_replay(document))
    return path


# --------------------------------------------------------------------------------------------
# Reading


def read_replay(path: str | Path) -> dict[str, Any]:
    """The document of a replay file, validated (ReplayError naming `path` otherwise)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ReplayError(f"replay {path}: no such file") from None
    except IsADirectoryError:
        raise ReplayError(f"replay {path} is a directory; name a {SUFFIX} file") from None
    except OSError as e:
        raise ReplayError(f"replay {path}: cannot read it: {e.strerror or e}") from None
    return decode_replay(raw, path)


def decode_replay(raw: bytes, where: str | Path) -> dict[str, Any]:
    """The validated document of a replay file's bytes; `where` names it in errors."""
    if raw[:2] != b"\x1f\x8b":
        raise ReplayError(f"{where} is not a heartgrid replay: not gzip-compressed "
                          f"(a {SUFFIX} file is gzip-compressed JSON)")
    try:
        text = gzip.decompress(raw)
    except EOFError:
        raise ReplayError(f"replay {where} is truncated (the gzip stream ends early); "
                          "it was cut while being copied or written") from None
    except (gzip.BadGzipFile, zlib.error, OSError) as e:
        raise ReplayError(f"replay {where} is corrupt: {e}") from None
    try:
        document = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ReplayError(f"{where} is not a heartgrid replay: its content is not JSON ({e})") from None
    validate_document(document, where)
    return document


def validate_document(document: Any, where: str | Path) -> None:
    """Check a document against format version 1 (keys, types, sizes and every step record's
    indices), so that readers never fail half-way; ReplayError names `where`."""
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ReplayError(f"{where} is not a heartgrid replay (no \"format\": \"{FORMAT}\")")
    version = document.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ReplayError(f"replay {where} has an invalid format version {version!r}")
    if version > VERSION:
        raise ReplayError(f"replay {where} is format version {version}; this heartgrid reads up "
                          f"to {VERSION}: upgrade heartgrid")
    _Validator(document, str(where)).run()


class _Validator:
    def __init__(self, document: dict[str, Any], where: str):
        self.d, self.where = document, where

    def fail(self, what: str) -> None:
        raise ReplayError(f"replay {self.where} is malformed: {what}")

    def keys(self, mapping: Any, keys: Iterable[str], what: str) -> None:
        if not isinstance(mapping, dict):
            self.fail(f"{what} is not an object")
        missing = [k for k in keys if k not in mapping]
        if missing:
            raise ReplayError(f"replay {self.where} lacks required key(s) "
                              f"{', '.join(f'{what}.{k}' if what else k for k in missing)}")

    def ints(self, values: Any, n: int | None, what: str, low: int | None = None) -> None:
        if not isinstance(values, list) or (n is not None and len(values) != n):
            self.fail(f"{what} must be a list of {n if n is not None else 'some'} integers")
        for v in values:
            if not isinstance(v, int) or isinstance(v, bool) or (low is not None and v < low):
                self.fail(f"{what} holds {v!r}, not an integer" + (f" >= {low}" if low is not None else ""))

    def rows(self, values: Any, n: int, width: int, what: str) -> None:
        if not isinstance(values, list) or len(values) != n:
            self.fail(f"{what} must hold {n} rows")
        for row in values:
            self.ints(row, width, what)

    def run(self) -> None:
        d = self.d
        self.keys(d, HEADER_KEYS, "")
        self.keys(d["meta"], META_KEYS, "meta")
        if not isinstance(d["game"], dict):
            self.fail("game is not an object")
        for key in ("height", "width", "num_agents"):
            if not isinstance(d[key], int) or isinstance(d[key], bool) or d[key] < 1:
                self.fail(f"{key} must be a positive integer")
        H, W, A = d["height"], d["width"], d["num_agents"]
        for key in ("items", "object_types", "actions", "features"):
            if not isinstance(d[key], list):
                self.fail(f"{key} must be a list")
        if len(d["items"]) != NUM_ITEMS:
            self.fail(f"items must list {NUM_ITEMS} items")
        if not isinstance(d["groups"], dict):
            self.fail("groups must be an object")
        objects = d["objects"]
        if not isinstance(objects, list) or len(objects) < A:
            self.fail(f"objects must list at least the {A} agents")
        for obj in objects:
            self.ints(obj, 3, "objects", low=0)
            if obj[1] >= H or obj[2] >= W:
                self.fail(f"object {obj} lies outside the {H}x{W} map")
        agents = d["agents"]
        self.keys(agents, AGENT_KEYS, "agents")
        for key in ("group", "color", "orientation", "frozen"):
            self.ints(agents[key], A, f"agents.{key}")
        self.rows(agents["inventory"], A, NUM_ITEMS, "agents.inventory")
        conv = d["converters"]
        self.keys(conv, CONVERTER_KEYS, "converters")
        if not isinstance(conv["type"], list):
            self.fail("converters.type must be a list")
        C = len(conv["type"])
        if len(objects) < A + C:
            self.fail(f"objects must list the {A} agents and then the {C} converters")
        for key in ("input", "output"):
            if not isinstance(conv[key], list) or len(conv[key]) != C or not all(
                    isinstance(r, dict) for r in conv[key]):
                self.fail(f"converters.{key} must hold {C} objects")
        self.rows(conv["inventory"], C, NUM_ITEMS, "converters.inventory")
        self.ints(conv["state"], C, "converters.state")
        if d["end"] not in ENDS:
            self.fail(f"end is {d['end']!r}, not one of {', '.join(ENDS)}")
        if not isinstance(d["steps"], list):
            self.fail("steps must be a list")
        bounds = {"agent": A, "converter": C, "object": len(objects)}
        for t, step in enumerate(d["steps"]):
            self.step(step, t, A, bounds)

    def step(self, step: Any, t: int, A: int, bounds: dict[str, int]) -> None:
        what = f"steps[{t}]"
        self.keys(step, ("a", "ok"), what)
        self.ints(step["a"], A, f"{what}.a")
        self.ints(step["ok"], A, f"{what}.ok")
        if any(ok not in (-1, 0, 1) for ok in step["ok"]):
            self.fail(f"{what}.ok holds a value other than -1, 0 or 1")
        for key, entries in step.items():
            if key not in DELTA_KEYS:
                continue  # an optional key of a later minor addition: ignored
            arity, kind = DELTA_KEYS[key]
            if not isinstance(entries, list):
                self.fail(f"{what}.{key} must be a list")
            for entry in entries:
                if not isinstance(entry, list) or len(entry) != arity:
                    self.fail(f"{what}.{key} holds {entry!r}, not {arity} numbers")
                index = entry[0]
                if not isinstance(index, int) or not 0 <= index < bounds[kind]:
                    self.fail(f"{what}.{key} names {kind} {index!r} of {bounds[kind]}")
                if key == "r":
                    if not isinstance(entry[1], (int, float)) or isinstance(entry[1], bool):
                        self.fail(f"{what}.r holds {entry!r}, not (agent, reward)")
                    continue
                self.ints(entry[1:], arity - 1, f"{what}.{key}")
                if key in ("inv", "cinv") and not 0 <= entry[1] < NUM_ITEMS:
                    self.fail(f"{what}.{key} names item {entry[1]} of {NUM_ITEMS}")
                if key == "pos" and not (0 <= entry[1] < self.d["height"] and 0 <= entry[2] < self.d["width"]):
                    self.fail(f"{what}.pos moves object {index} outside the map, to {entry[1:]}")


# --------------------------------------------------------------------------------------------
# Finding


def find_replays(path: str | Path) -> list[Path]:
    """The replays a path names: a file -> [it]; a run directory -> its `replays/*.hgreplay`;
    a directory of replays -> its `*.hgreplay`; sorted by name. ReplayError when the path does
    not exist or holds no replay."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.exists():
        raise ReplayError(f"{path}: no such file or directory (expected a {SUFFIX} file, a run "
                          f"directory or a directory of replays)")
    inside = path / REPLAYS_DIR
    directory = inside if inside.is_dir() else path
    found = sorted(p for p in directory.glob(f"*{SUFFIX}") if p.is_file())
    if not found:
        hint = ""
        if directory is inside:
            hint = " (training writes replays there every logging.replay_interval epochs)"
        elif (path / CONFIG_FILE).is_file():  # a run directory that never wrote one
            hint = (f" and has no {REPLAYS_DIR}/: train with logging.replay_interval=N, or record "
                    "one with heartgrid render --policy or heartgrid eval --replays DIR")
        raise ReplayError(f"{directory} holds no {SUFFIX} files{hint}")
    return found
