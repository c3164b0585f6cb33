"""The engine's step through torch.compile (`system.compile`, `BatchedEngine(compile=True)`).

What is compiled: the device part of a step (RULES.md steps 1-6 and the refresh of the grid's
feature rows) as one graph: `fullgraph=True` (no graph breaks), `dynamic=False` (every shape
is fixed by the engine's dims). It runs the engine's masked path, the one a GPU runs eagerly
(every kind over every slot, no host reads, writes that miss land in trash rows), in the form
written for the compiler (`ActionKinds(compiled=True)`): the large buffers are written only
through whole-tensor `index_put_` / `index_copy_` / `index_fill_`, which inductor keeps in
place, and conflicts are resolved by comparing claimants pairwise. A write through a view of a
large buffer, or a scatter-max into a grid-sized scratch array, becomes a copy of the whole
buffer once AOTAutograd functionalises the graph (benchmarks/README.md; a test reads the
generated code for such copies).

What stays eager: the priority keys (a block of steps at once, on a host-side counter), the
observation gather (one index_select that already runs at memory speed, on its own threads)
and the global features written into the windows after it, and episode ends and starts (the
host knows which envs end; they run in place, so a reset never changes a shape and never
recompiles).

Compiling happens at the first step, and its time is reported (`CompiledStep.note`).
Inductor's FX graph cache keeps the generated code (TORCHINDUCTOR_CACHE_DIR, default
/tmp/torchinductor_<user>), so the same game and batch compile again from the cache. A task
that changes the graph later (another converter capacity, a cost or stat reward where no
task had one: the host flags the step reads) compiles again at its first step; every call
that made a new graph is timed and kept in `CompiledStep.compiles`, which training logs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

# Every engine shape (game dims, number of envs) and host flag set is one entry of the step's
# compile cache, shared by all engines of a process (they run one function), and a process may
# hold many (tests compile ~40): more than dynamo's default of 8. Past the limit a compiled
# step fails (fullgraph) rather than run eagerly; raising it is a process-wide dynamo setting.
RECOMPILE_LIMIT = 64


def options(device: torch.device) -> dict[str, int | bool]:
    """Inductor options for the step (step times at 64 envs when each was measured,
    benchmarks/README.md).
    Every device: keep the program order of reads and writes of a buffer
    (reorder_for_locality off): with it, inductor moved the attack's read of `agent_at` after
    the moves' writes and kept the old contents in a copy of the whole array, two cell-sized
    copies per step in games with attacks.
    On a CPU:
    - scalar C++ (simdlen 1): the step is mostly masks, and inductor's vector code moves bool
      tensors one byte at a time through a stack buffer; a [7, 1536] bool `&` took 134 us
      vectorised against 26 us scalar, the step 2.56 ms against 2.02 ms;
    - store rather than recompute a value read more than once (realize_reads_threshold 1):
      the conflict comparisons ([N, A, A]) otherwise recompute each claimant's target and
      key per pair; 1.79 ms against 1.62 ms."""
    options: dict[str, int | bool] = {"reorder_for_locality": False}
    if device.type == "cpu":
        options.update({"cpp.simdlen": 1, "realize_reads_threshold": 1})
    return options


@dataclass(frozen=True)
class Compile:
    """One compile of the step: how long it took, where the code came from, at which call."""

    seconds: float
    source: str
    """cold, from inductor's cache, or already compiled in this process (another engine's)"""
    call: int
    """The call of this CompiledStep (the engine's steps in this process, from 1) that compiled."""

    def __str__(self) -> str:
        # In an engine, only a task that changed the step's shapes or host flags recompiles.
        when = "" if self.call == 1 else (
            f", again at this process's engine step {self.call} (a task changed the step's "
            "shapes or host flags)")
        return f"engine step: compiled with torch.compile in {self.seconds:.1f} s ({self.source}){when}"


class CompiledStep:
    """`fn` compiled for its engine's static shapes; every compile is timed and kept."""

    def __init__(self, fn: Callable[..., None], device: torch.device):
        import torch._dynamo
        import torch._dynamo.utils

        self._dynamo = torch._dynamo.utils  # read `counters` from it: compiling may replace it
        config = torch._dynamo.config
        config.recompile_limit = max(config.recompile_limit, RECOMPILE_LIMIT)
        self.compiled = torch.compile(fn, fullgraph=True, dynamic=False, options=options(device))
        self.compiles: list[Compile] = []
        """Every compile so far, the first step's first (also when another engine of this
        process had compiled the same graph: source 'already compiled in this process')."""
        self.calls = 0

    def __call__(self, *args: torch.Tensor) -> None:
        # Two clock reads and two counter lookups per step (~1 us against a step's ~1 ms)
        # catch every recompile, whatever caused it.
        self.calls += 1
        before = self._graphs_and_cache_hits()
        start = time.perf_counter()
        self.compiled(*args)
        seconds = time.perf_counter() - start
        graphs, hits = (after - earlier for after, earlier in zip(self._graphs_and_cache_hits(), before))
        if graphs or self.calls == 1:
            source = ("already compiled in this process" if not graphs
                      else "from inductor's cache" if hits else "cold")
            self.compiles.append(Compile(seconds, source, self.calls))

    def _graphs_and_cache_hits(self) -> tuple[int, int]:
        counters = self._dynamo.counters
        return counters["stats"]["unique_graphs"], counters["inductor"]["fxgraph_cache_hit"]

    @property
    def compile_seconds(self) -> float | None:
        """The first step's compile time (None before the first step)."""
        return self.compiles[0].seconds if self.compiles else None

    @property
    def source(self) -> str:
        return self.compiles[0].source if self.compiles else ""

    @property
    def note(self) -> str:
        """What compiling cost: the first step's compile, and how many followed."""
        if not self.compiles:
            return "engine step: compiled at the first step"
        first, later = self.compiles[0], self.compiles[1:]
        more = (f"; {len(later)} recompile(s) since, {sum(c.seconds for c in later):.1f} s in all"
                if later else "")
        return f"{first}{more}"
