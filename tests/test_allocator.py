"""heartgrid.allocator: freed large blocks stay in the process, unless the user chose otherwise."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from heartgrid.allocator import user_choice
from heartgrid.tools import cli

# A fresh interpreter runs the default policy forward and backward over a CPU minibatch (64
# segments x 32 steps of 11x11 windows: 21 MB of normalised observations, as in training) eight
# times, on one thread, and prints the page faults of the last three.
SCRIPT = """
import resource, sys
import torch
from heartgrid.allocator import keep_freed_memory
raised = keep_freed_memory() if sys.argv[1] == "keep" else False
torch.set_num_threads(1)
torch.manual_seed(0)
from heartgrid.config.run import PolicyConfig
from heartgrid.engine.features import FeatureRegistry
from heartgrid.policies.registry import make_policy
features = FeatureRegistry.default()
policy = make_policy(PolicyConfig(), features, [f"a{i}" for i in range(19)], (len(features), 11, 11))
obs = torch.randint(0, 3, (64, 32, 11, 11, len(features)), dtype=torch.uint8).permute(0, 1, 4, 2, 3)
starts = torch.zeros(64, 32, dtype=torch.bool)
for n in range(8):
    if n == 5:
        start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    logits, values = policy.forward_sequence(obs, policy.initial_state(64, "cpu"), starts)
    (logits.logsumexp(-1).mean() + values.mean()).backward()
print(raised, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start)
"""


PAGES_OF_OBSERVATIONS = 2048 * 2541 * 4 // 4096  # one pass's normalised observations, ~5,100


def run(mode: str, **variables: str) -> tuple[bool, int]:
    plain = {k: v for k, v in os.environ.items()
             if k not in ("GLIBC_TUNABLES", "LD_PRELOAD") and not k.startswith("MALLOC_")}
    out = subprocess.run([sys.executable, "-c", SCRIPT, mode], env={**plain, **variables},
                         check=True, capture_output=True, text=True).stdout.split()
    return out[0] == "True", int(out[1])


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                    reason="glibc's malloc only")
def test_a_training_minibatch_reuses_freed_memory_without_page_faults() -> None:
    # Three passes that faulted their 21 MB of observations in anew would take ~15k faults for
    # those alone; kept, fewer than one pass's. glibc's own sliding thresholds and a user's fixed
    # one give freed blocks back and fault their pages in again (on the 2-vCPU VM: ~10k-33k and
    # ~127k, against 0-500 kept; up to ~3k on a loaded machine, whose kernel adds faults of its
    # own, e.g. collapsing transparent huge pages: the fewest of two runs is taken).
    kept = [run("keep") for _ in range(2)]
    assert all(raised for raised, _ in kept) and min(f for _, f in kept) < PAGES_OF_OBSERVATIONS
    assert run("leave")[1] > min(f for _, f in kept)
    user_raised, user_faults = run("keep", MALLOC_MMAP_THRESHOLD_="131072")
    assert not user_raised and user_faults > 3 * PAGES_OF_OBSERVATIONS
    # A malloc setting that is not about the thresholds does not stop it.
    kept = [run("keep", MALLOC_ARENA_MAX="2") for _ in range(2)]
    assert all(raised for raised, _ in kept) and min(f for _, f in kept) < PAGES_OF_OBSERVATIONS


def test_the_command_keeps_freed_memory_for_its_own_process_only(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    monkeypatch.setattr(cli, "keep_freed_memory", lambda: calls.append(True))
    monkeypatch.setattr(sys, "argv", ["heartgrid", "recipes"])
    assert cli.main() == 0 and calls == [True]  # the process's own command line
    assert cli.main(["recipes"]) == 0 and calls == [True]  # a call from Python: not its process


@pytest.mark.parametrize(("environ", "reason"), [
    ({}, None),
    ({"MALLOC_TRIM_THRESHOLD_": "0"}, "MALLOC_TRIM_THRESHOLD_ is set"),
    ({"MALLOC_ARENA_MAX": "2"}, None),  # not about the thresholds
    ({"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=1"}, "GLIBC_TUNABLES sets glibc.malloc.mmap_threshold"),
    ({"GLIBC_TUNABLES": "glibc.malloc.tcache_count=0:glibc.cpu.hwcaps=-AVX"}, None),
    ({"LD_PRELOAD": "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"}, "LD_PRELOAD loads jemalloc"),
])
def test_the_users_own_allocator_settings_win(environ: dict[str, str], reason: str | None) -> None:
    assert user_choice(environ) == reason
