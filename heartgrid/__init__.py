"""HeartGrid: train teams of agents with reinforcement learning in a multi-agent gridworld."""

import os

# How long an idle OpenMP thread spins before it sleeps (libgomp, torch's CPU threads). By
# default it spins for a long while: harmless on a quiet machine, but when another process
# keeps a core busy every parallel operation then waits for a descheduled thread, and training
# with two torch threads on a busy 2-core VM fell from ~17k to 0.7-2k agent-steps/s. Sleeping at
# once (PASSIVE) keeps ~9k busy but costs a third of the quiet speed (~11k). A short spin keeps
# most of both: 15-17k quiet, ~7k busy (benchmarks/threads.py, benchmarks/README.md "Threads").
# The engine's small operations run on one thread anyway (BatchedEngine(threads=1)). Set before
# torch loads OpenMP, so import heartgrid first; any setting of either variable of your own wins.
if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    os.environ["GOMP_SPINCOUNT"] = "3000"

__version__ = "0.1.0"
