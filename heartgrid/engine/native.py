"""The engine's CPU step as one native call (`BatchedEngine(native=...)`, `system.native_step`).

A tensor step on a CPU is ~250 small operations whose cost is mostly per-operation dispatch
(~3.5 us each; benchmarks/README.md), and torch.compile's fused kernel must run the masked
path's full work. `csrc/step.cpp` is the same step, RULES.md steps 1-7 (the grid's feature rows
and the observation windows with their global features included), as loops in C++ over the
same `World` tensors and observation buffer, one env at a time. Everything around it (episode
starts and ends, checkpoints, the episode log) is the tensor engine's, so a run may switch
between the two. Tests hold that both leave the same game, tensor for tensor, and that it
matches the reference engine.

Building: the C++ file has no PyTorch headers (about a second with the system's C++ compiler,
`$CXX` or `c++`). The library is kept under `$HEARTGRID_CACHE_DIR/native` (default
`~/.cache/heartgrid/native`) in a directory named by a hash of the source, the compiler and
its flags, written under a temporary name and renamed into place, so concurrent processes
(test workers, torchrun ranks) never load a half-written file. It is loaded with ctypes. The
C++ side lists its structure's fields (`hg_fields`: C type and name); the ctypes structure is
built from that list, each pointer taken from the tensor of that name after checking its
dtype, so the two sides cannot disagree on an order or a type.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

import torch

from heartgrid.engine.actions import MAX_ARGS, MOVE_KINDS
from heartgrid.engine.state import World
from heartgrid.engine.tables import AGENT_CODE

SOURCE = Path(__file__).parent / "csrc" / "step.cpp"
# No contraction of a*b+c into one rounding (FMA): the rewards must round as torch's separate
# multiply and add do, on CPUs where FMA is the default (aarch64) too.
FLAGS = ("-O2", "-std=c++17", "-ffp-contract=off", "-shared", "-fPIC")
ADVICE = ("install one (Debian: apt-get install g++), point $CXX at it, or set system.native_step=off "
          "(bench env: --native off)")
NATIVE_STEP = {"auto": None, "on": True, "off": False}
"""`system.native_step` -> BatchedEngine's `native` argument."""

# The C element type of a pointer field -> the tensor dtypes it may point into.
_DTYPES = {"uint8_t": (torch.uint8, torch.bool), "int16_t": (torch.int16,), "int32_t": (torch.int32,),
           "int64_t": (torch.int64,), "float": (torch.float32,), "double": (torch.float64,)}


class NativeUnavailable(RuntimeError):
    """The native step cannot run here (no C++ compiler, a failed build, not a CPU)."""


def cache_dir() -> Path:
    root = os.environ.get("HEARTGRID_CACHE_DIR")
    if root:
        return Path(root) / "native"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "heartgrid" / "native"


def _compiler() -> list[str]:
    """The compiler's command ($CXX may carry words of its own: `ccache g++`)."""
    given = os.environ.get("CXX")
    if given:
        return shlex.split(given)
    found = shutil.which("c++") or shutil.which("g++")
    if not found:
        raise NativeUnavailable(f"no C++ compiler found ($CXX, c++ or g++): {ADVICE}")
    return [found]


def _run(command: list[str]) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(command, capture_output=True, text=True, check=False)
    except OSError as error:
        raise NativeUnavailable(f"cannot run the C++ compiler {command[0]} ({error.strerror}): {ADVICE}") from error


@functools.cache
def load() -> tuple[ctypes.CDLL | None, str | None]:
    """(the step library, None), or (None, why it cannot be had); tried once per process."""
    try:
        return _load(), None
    except NativeUnavailable as error:
        return None, str(error)
    except (OSError, RuntimeError, AttributeError) as error:  # no home directory, a library without our symbols
        return None, f"the native step cannot be loaded ({type(error).__name__}: {error}): {ADVICE}"


def library() -> ctypes.CDLL:
    lib, problem = load()
    if lib is None:
        raise NativeUnavailable(problem)
    return lib


def available() -> str | None:
    """None when the native step can run here, else why not."""
    return load()[1]


def _load() -> ctypes.CDLL:
    compiler = _compiler()
    version = _run([*compiler, "--version"]).stdout
    key = hashlib.sha256(b"\0".join([SOURCE.read_bytes(), " ".join(compiler).encode(), version.encode(),
                                     " ".join(FLAGS).encode(), platform.machine().encode()]))
    directory = cache_dir() / key.hexdigest()[:16]
    path = directory / "step.so"
    if not path.exists():
        try:
            _build(compiler, directory, path)
        except OSError as error:
            raise NativeUnavailable(f"cannot write the native step under {directory} ({error.strerror}): "
                                    f"set HEARTGRID_CACHE_DIR to a writable directory") from error
    try:
        lib = ctypes.CDLL(str(path))
    except OSError as error:
        raise NativeUnavailable(f"cannot load {path} ({error}): delete it to build it again") from error
    lib.hg_step.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p, ctypes.c_int64]
    lib.hg_step.restype = ctypes.c_int
    lib.hg_fields.restype = ctypes.c_char_p
    return lib


def _build(compiler: list[str], directory: Path, path: Path) -> None:
    """Compile into a temporary file next to `path`, then rename it into place (atomic: a
    process that finds `path` finds it whole)."""
    directory.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(suffix=".so", dir=directory)
    os.close(fd)
    try:
        built = _run([*compiler, *FLAGS, "-o", partial, str(SOURCE)])
        if built.returncode != 0:
            raise NativeUnavailable(f"building {SOURCE} with {' '.join(compiler)} failed:\n{built.stderr.strip()}")
        os.chmod(partial, 0o755)  # mkstemp's 0600 would keep other users of a shared cache out
        os.replace(partial, path)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)


def _fields(lib: ctypes.CDLL) -> list[tuple[str, str]]:
    """(C type, name) of every field of step.cpp's HgStep, in order."""
    return [tuple(field.rsplit(" ", 1)) for field in lib.hg_fields().decode().split(";") if field]


class NativeStep:
    """Calls the native step on the engine's tensors; `bind` again when the world reallocates."""

    def __init__(self, engine) -> None:
        self.lib = library()
        self.fields = _fields(self.lib)
        space, kinds, observer = engine.action_space, engine.kinds, engine.observer
        type_of = {name: t for t, name in enumerate(space.type_names)}
        self.flags = 0  # set_flags
        self.arrays = {
            "is_move": torch.tensor([name in MOVE_KINDS for name in space.type_names], dtype=torch.uint8),
            "decode_rows": engine.decoder.rows, "decode_valid": engine.decoder.valid,
            "num_args": engine.decoder.num_args, "forward": kinds.forward, "scan": kinds.scan,
            "move_delta": kinds.move_delta, "move_turn": kinds.move_turn,
            "agent_rows": observer.agent_rows, "rewards": engine.rewards, "obs": observer.store,
        }
        self.obs = observer.store  # [S, H, W, F]: the windows the step writes
        c, column = observer.channel, engine.stat_layout.column
        self.ints = {
            "num_features": len(c), "num_types": len(space.type_names), "max_args": MAX_ARGS,
            "decode_len": len(engine.decoder.valid),
            "type_channel": c["type_id"], "swappable_channel": c["swappable"], "agent_code": AGENT_CODE,
            "frozen_channel": c["agent:frozen"], "orientation_channel": c["agent:orientation"],
            "color_channel": c["agent:color"], "inventory_channel": observer.inventory.start,
            "completion_channel": c["episode_completion_pct"], "last_action_channel": c["last_action"],
            "last_reward_channel": c["last_reward"],
            **{f"t_{short}": type_of.get(name, -1) for short, name in
               (("attack", "attack"), ("swap", "swap"), ("rotate", "rotate"), ("put", "put_items"),
                ("get", "get_items"), ("color", "change_color"), ("noop", "noop"))},
            "col_invalid_type": column["action.invalid_type"], "col_invalid_arg": column["action.invalid_arg"],
            "col_blocked": column["action.attack.blocked"], "col_frozen_ticks": column["status.frozen.ticks"],
            "col_trash": engine.stat_layout.trash,
        }
        self.bind(engine.world)

    def bind(self, w: World) -> None:
        d = w.dims
        ints = {**self.ints, "slots": d.slots, "num_agents": d.num_agents, "num_envs": d.num_envs,
                "converters": d.converters, "num_counters": w.agent_counts.shape[1],
                "num_stats": d.num_stats, "obs_height": d.obs_height, "obs_width": d.obs_width,
                "padded_width": d.padded_width}
        claims = torch.full((max(d.cells + d.slots, 2 * d.converters + d.slots),), -1, dtype=torch.int64)
        tensors = {**w.tensors(), **self.arrays, "claims": claims}
        values = []
        for ctype, name in self.fields:
            if ctype == "int64_t":
                values.append(ints[name])
                continue
            tensor = tensors[name]
            element = ctype.removeprefix("const ").removesuffix("*")
            if tensor.dtype not in _DTYPES[element] or not tensor.is_contiguous() or tensor.device.type != "cpu":
                raise TypeError(f"the native step's {name} must be a contiguous CPU tensor of {element}, "
                                f"got {tensor.dtype} on {tensor.device}")
            values.append(tensor.data_ptr())
        structure = type("HgStep", (ctypes.Structure,), {"_fields_": [
            (name, ctypes.c_int64 if ctype == "int64_t" else ctypes.c_void_p) for ctype, name in self.fields]})
        self.struct = structure(*values)
        self.pointer = ctypes.addressof(self.struct)
        self.world, self.claims = w, claims  # what the pointers point into lives as long as they do

    def set_flags(self, needs: bool, costs: bool, penalties: bool, stat_rewards: bool, sharing: bool) -> None:
        """The engine's host flags (what some env's task needs; the rest is skipped), kept
        until its tasks change."""
        self.flags = needs | costs << 1 | penalties << 2 | stat_rewards << 3 | sharing << 4

    def __call__(self, actions: torch.Tensor, key: torch.Tensor) -> None:
        """One step with its observations (RULES.md steps 1-7); `actions` int64 [S] flat or
        [S, 2] pairs (decode.py's check), `key` this step's priority keys."""
        actions = actions.contiguous()
        if self.lib.hg_step(self.pointer, actions.data_ptr(), actions.dim() == 2, key.data_ptr(), self.flags):
            raise MemoryError("the native step could not allocate its scratch memory")
