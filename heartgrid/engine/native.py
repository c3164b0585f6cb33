"""The engine's CPU step as one native call (`BatchedEngine(native=...)`, `system.native_step`).

A tensor step on a CPU is ~250 small operations whose cost is mostly per-operation dispatch
(~3.5 us each; benchmarks/README.md), and torch.compile's fused kernel must run the masked
path's full work. `csrc/step.cpp` is the same step (RULES.md steps 1-6 and the refresh of the
grid's feature rows) as loops in C++ over the same `World` tensors, so everything around it
(episode starts and ends, the observation gather, checkpoints, the episode log) is unchanged,
and a run may switch between the two. Tests hold that both leave the same game, tensor for
tensor, and that it matches the reference engine.

Building: the C++ file has no PyTorch headers (about a second with the system's C++ compiler,
`$CXX` or `c++`). The library is kept under `$HEARTGRID_CACHE_DIR/native` (default
`~/.cache/heartgrid/native`) in a directory named by a hash of the source, the compiler and
its flags, written under a temporary name and renamed into place, so concurrent processes
(test workers, torchrun ranks) never load a half-written file. It is loaded with ctypes; the
tensors go to it as pointers in `HgStep`, a structure that mirrors the C++ one field for field
(checked by its size when loaded).
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

import torch

from heartgrid.config.game import ACTION_ARGS
from heartgrid.engine.state import World

SOURCE = Path(__file__).parent / "csrc" / "step.cpp"
FLAGS = ("-O2", "-std=c++17", "-shared", "-fPIC")


NATIVE_STEP = {"auto": None, "on": True, "off": False}
"""`system.native_step` -> BatchedEngine's `native` argument."""


class NativeUnavailable(RuntimeError):
    """The native step could not be built or loaded (no C++ compiler, a failed build)."""


def cache_dir() -> Path:
    root = os.environ.get("HEARTGRID_CACHE_DIR")
    if root:
        return Path(root) / "native"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "heartgrid" / "native"


ADVICE = "install one (Debian: apt-get install g++), point $CXX at it, or set system.native_step=off"


def _compiler() -> str:
    compiler = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++")
    if not compiler:
        raise NativeUnavailable(f"no C++ compiler found ($CXX, c++ or g++): {ADVICE}")
    return compiler


def _run(command: list[str]) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(command, capture_output=True, text=True, check=False)
    except OSError as error:
        raise NativeUnavailable(f"cannot run the C++ compiler {command[0]} ({error.strerror}): {ADVICE}") from error


@functools.cache
def library() -> ctypes.CDLL:
    """The built step library (built on first use, then from the cache)."""
    compiler = _compiler()
    version = _run([compiler, "--version"]).stdout
    source = SOURCE.read_bytes()
    key = hashlib.sha256(b"\0".join([source, compiler.encode(), version.encode(),
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
    lib.hg_struct_size.restype = ctypes.c_int64
    if lib.hg_struct_size() != ctypes.sizeof(HgStep):
        raise NativeUnavailable(f"{path} does not match native.py's HgStep (stale build?)")
    return lib


def _build(compiler: str, directory: Path, path: Path) -> None:
    """Compile into a temporary file next to `path`, then rename it into place (atomic: a
    process that finds `path` finds it whole)."""
    directory.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(suffix=".so", dir=directory)
    os.close(fd)
    try:
        built = _run([compiler, *FLAGS, "-o", partial, str(SOURCE)])
        if built.returncode != 0:
            raise NativeUnavailable(f"building {SOURCE} with {compiler} failed:\n{built.stderr.strip()}")
        os.replace(partial, path)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)


def available() -> str | None:
    """None when the native step can run here, else why not."""
    try:
        library()
    except NativeUnavailable as error:
        return str(error)
    return None


_I64 = ctypes.c_int64
_P = ctypes.c_void_p
# Field order and types of csrc/step.cpp's HgStep.
_INTS = ("slots num_agents num_envs converters num_features num_types max_args num_counters "
         "num_stats type_channel swappable_channel agent_code frozen_channel orientation_channel "
         "color_channel inventory_channel completion_channel last_action_channel last_reward_channel "
         "obs_height obs_width padded_width t_attack t_swap t_rotate t_put t_get t_color t_noop "
         "col_invalid_type col_invalid_arg col_blocked col_frozen_ticks col_trash").split()
_TABLES = ["is_move", "decode_rows", "decode_valid", "decode_len", "num_args", "forward", "scan",
           "move_delta", "move_turn"]
_WORLD = ("planes agent_at conv_at agent_cell agent_orientation agent_inventory agent_frozen "
          "agent_color agent_last_action agent_episode_reward agent_inventory_value "
          "agent_item_stats agent_counts env_step env_length conv_feature_index conv_inventory conv_timer "
          "conv_conversions conv_blocked conv_input conv_output conv_output_mask conv_finish_at "
          "conv_busy_time conv_max_output conv_max_conversions slot_item_max slot_freeze "
          "slot_attack_cost slot_attack_need slot_defense slot_has_defense param_reward_weight "
          "param_reward_cap param_stat_weight param_stat_cap param_group_pct param_action_need "
          "param_action_cost param_action_penalty").split()


class HgStep(ctypes.Structure):
    _fields_ = ([(name, _I64) for name in _INTS]
                + [(name, _I64 if name == "decode_len" else _P) for name in _TABLES]
                + [(name, _P) for name in _WORLD]
                + [("agent_rows", _P), ("rewards", _P), ("obs", _P), ("claims", _P)])


class NativeStep:
    """Calls the native step on the engine's tensors; `bind` again when the world reallocates."""

    def __init__(self, engine) -> None:
        self.lib = library()
        space, kinds, observer = engine.action_space, engine.kinds, engine.observer
        type_of = {name: t for t, name in enumerate(space.type_names)}
        self.layout = engine.stat_layout
        self.tables = {
            "is_move": torch.tensor([n in ("move", "move_cardinal", "move_8way") for n in space.type_names],
                                    dtype=torch.uint8),
            "decode_rows": engine.decoder.rows.contiguous(),
            "decode_valid": engine.decoder.valid.to(torch.uint8),
            "num_args": engine.decoder.num_args.contiguous(),
            "forward": kinds.forward.contiguous(), "scan": kinds.scan.contiguous(),
            "move_delta": kinds.move_delta.contiguous(), "move_turn": kinds.move_turn.contiguous(),
        }
        c = observer.channel
        column = self.layout.column
        self.ints = {
            "num_features": len(c), "num_types": len(space.type_names),
            "max_args": max(ACTION_ARGS.values()),
            "type_channel": c["type_id"], "swappable_channel": c["swappable"],
            "agent_code": int(observer.agent_rows[0, c["type_id"]]),
            "frozen_channel": c["agent:frozen"], "orientation_channel": c["agent:orientation"],
            "color_channel": c["agent:color"], "inventory_channel": observer.inventory.start,
            "completion_channel": c["episode_completion_pct"], "last_action_channel": c["last_action"],
            "last_reward_channel": c["last_reward"],
            **{f"t_{short}": type_of.get(name, -1) for short, name in
               (("attack", "attack"), ("swap", "swap"), ("rotate", "rotate"), ("put", "put_items"),
                ("get", "get_items"), ("color", "change_color"), ("noop", "noop"))},
            "col_invalid_type": column["action.invalid_type"], "col_invalid_arg": column["action.invalid_arg"],
            "col_blocked": column["action.attack.blocked"], "col_frozen_ticks": column["status.frozen.ticks"],
            "col_trash": self.layout.trash,
        }
        self.agent_rows, self.rewards, self.obs = observer.agent_rows, engine.rewards, observer.store
        self.bind(engine.world)

    def bind(self, w: World) -> None:
        d = w.dims
        size = max(d.cells + d.slots, 2 * d.converters + d.slots)
        self.claims = torch.full((size,), -1, dtype=torch.int64)
        self.world = w  # the tensors the pointers point into stay alive with it
        fields = {**self.ints, "slots": d.slots, "num_agents": d.num_agents, "num_envs": d.num_envs,
                  "converters": d.converters, "num_counters": w.agent_counts.shape[1],
                  "num_stats": d.num_stats, "decode_len": len(self.tables["decode_valid"]),
                  "obs_height": d.obs_height, "obs_width": d.obs_width, "padded_width": d.padded_width}
        pointers = {name: t.data_ptr() for name, t in self.tables.items()}
        for name in _WORLD:
            tensor = getattr(w, name)
            assert tensor.is_contiguous() and tensor.device.type == "cpu", name
            pointers[name] = tensor.data_ptr()
        assert self.obs.is_contiguous()
        pointers.update(agent_rows=self.agent_rows.data_ptr(), rewards=self.rewards.data_ptr(),
                        obs=self.obs.data_ptr(), claims=self.claims.data_ptr())
        self.struct = HgStep(**fields, **pointers)
        self.pointer = ctypes.addressof(self.struct)

    def __call__(self, actions: torch.Tensor, key: torch.Tensor, needs: bool, costs: bool,
                 penalties: bool, stat_rewards: bool, sharing: bool) -> None:
        """One step with its observations (RULES.md steps 1-7); `actions` int64 [S] flat or
        [S, 2] pairs (decode.py's check), `key` this step's priority keys; the flags are the
        engine's (what some env's task needs)."""
        actions = actions.contiguous()
        flags = needs | costs << 1 | penalties << 2 | stat_rewards << 3 | sharing << 4
        self.lib.hg_step(self.pointer, actions.data_ptr(), actions.dim() == 2, key.data_ptr(), flags)
