"""ASCII map files: a room drawn in the game's map symbols, with its own time limit.

    max_steps: 250
    description: open 21x21 room, 4 altars in the corners, none in sight of the start

    #######################
    #.....................#
    ...

A file is a header of `key: value` lines, a blank line, then the rows of the room in the
symbols of `AsciiRoomConfig` (`#` wall, `@` agent, `_` altar, `s` block, `.` empty, ...).
Header keys: `max_steps` (required: each map has the episode length its task needs) and
`description` (required: what the map tests, shown by `heartgrid suites`). Any other key is
refused, as unknown config keys are. Why a header and not a sidecar JSON: one file holds the
whole task, so a map cannot be copied without its time limit.

Maps shipped with HeartGrid live in `heartgrid/evaluation/maps/<group>/<name>.map` and are
named `<group>/<name>` (`navigation/corridors`); any other name is a path to a file.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from heartgrid.config.game import AsciiRoomConfig

MAPS_DIR = Path(__file__).resolve().parent / "maps"
SUFFIX = ".map"
HEADER_KEYS = ("max_steps", "description")


class MapFileError(ValueError):
    """A map file that cannot be read or is not a valid map; the message names the file."""


@dataclass(frozen=True)
class MapFile:
    name: str  # `navigation/corridors` for shipped maps, else the path as given
    path: Path
    max_steps: int
    description: str
    rows: tuple[str, ...]

    @property
    def agents(self) -> int:
        return sum(row.count("@") + row.count("A") for row in self.rows)

    @property
    def altars(self) -> int:
        return sum(row.count("_") for row in self.rows)


def parse_map_text(text: str, source: str) -> tuple[dict[str, str], list[str]]:
    """(header, rows) of a map file's text; MapFileError naming `source` when malformed."""
    lines = text.splitlines()
    header: dict[str, str] = {}
    index = 0
    while index < len(lines) and lines[index].strip():
        line = lines[index]
        key, sep, value = line.partition(":")
        if not sep or not key.strip().isidentifier():
            break  # the first map row (map rows hold no `key:`)
        key = key.strip()
        if key not in HEADER_KEYS:
            close = difflib.get_close_matches(key, HEADER_KEYS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise MapFileError(f"{source}: line {index + 1}: unknown header key {key!r}{hint} "
                               f"(valid: {', '.join(HEADER_KEYS)})")
        if key in header:
            raise MapFileError(f"{source}: line {index + 1}: header key {key!r} given twice")
        header[key] = value.strip()
        index += 1
    rows = [line.rstrip() for line in lines[index:]]
    while rows and not rows[0]:
        rows.pop(0)
    while rows and not rows[-1]:
        rows.pop()
    return header, rows


def read_map_file(path: Path, name: str | None = None) -> MapFile:
    """Read and check one map file (header keys, rectangular rows, known symbols, an agent)."""
    source = str(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise MapFileError(f"{source}: cannot read map file ({e.strerror or e})") from None
    header, rows = parse_map_text(text, source)
    missing = [key for key in HEADER_KEYS if key not in header]
    if missing:
        raise MapFileError(f"{source}: missing header line(s) {', '.join(f'{k}: ...' for k in missing)} "
                           "before the map rows (e.g. `max_steps: 200`)")
    try:
        max_steps = int(header["max_steps"])
    except ValueError:
        raise MapFileError(f"{source}: max_steps must be a whole number, got {header['max_steps']!r}") from None
    if max_steps < 1:
        raise MapFileError(f"{source}: max_steps must be at least 1, got {max_steps}")
    try:
        AsciiRoomConfig(rows=rows)
    except ValidationError as e:
        reason = "; ".join(str(err.get("ctx", {}).get("error", err["msg"])) for err in e.errors())
        raise MapFileError(f"{source}: not a valid map: {reason}") from None
    found = MapFile(name or source, path, max_steps, header["description"], tuple(rows))
    if found.agents < 1:
        raise MapFileError(f"{source}: the map holds no agent; mark at least one start with @")
    return found


def shipped_map_names(group: str | None = None) -> list[str]:
    """`<group>/<name>` of every map shipped in the package (of one group, if given)."""
    groups = [MAPS_DIR / group] if group else sorted(p for p in MAPS_DIR.iterdir() if p.is_dir())
    return sorted(f"{g.name}/{p.stem}" for g in groups if g.is_dir() for p in g.glob(f"*{SUFFIX}"))


def load_map(ref: str, base_dir: Path | None = None) -> MapFile:
    """A shipped map by name (`navigation/corridors`) or a map file by path (relative paths
    from `base_dir`, the directory of the suite file that names it, else the working dir)."""
    shipped = MAPS_DIR / f"{ref}{SUFFIX}"
    if not ref.endswith(SUFFIX) and shipped.is_file():
        return read_map_file(shipped, ref)
    path = Path(ref).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    if path.is_file():
        return read_map_file(path, ref)
    close = difflib.get_close_matches(ref, shipped_map_names(), n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise MapFileError(f"map {ref!r} is neither a shipped map nor a file; {hint}"
                       f"shipped maps: {', '.join(shipped_map_names())}")
