"""HeartGrid: train teams of agents with reinforcement learning in a multi-agent gridworld."""

import os

# How long an idle OpenMP thread (libgomp, torch's CPU threads) spins before it sleeps: 3M
# spins, ~50 ms on the 2-vCPU VM. Waking a thread that sleeps costs what the hypervisor makes it
# cost, and on the VM that varied with its host's load: on 2026-12-06, with a short spin
# (GOMP_SPINCOUNT=3000, the default until then) training with two threads on an otherwise quiet
# VM fell to ~7k agent-steps/s against ~13k with the long spin, and bench env's gather on two
# threads to ~0.4M against ~0.8M. A long spin costs where another process keeps a core busy
# while two threads run; the thread choice (heartgrid/threads.py) takes one thread when it sees
# that at the start, and training warns when a neighbour appears later (benchmarks/README.md,
# "Threads on a shared CPU"). Set before torch loads OpenMP, so import heartgrid first; any
# setting of either variable of your own wins.
if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
    os.environ["GOMP_SPINCOUNT"] = "3000000"

__version__ = "0.1.0"
