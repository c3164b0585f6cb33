"""The same checkpoint paths on a GPU: a CUDA policy saves and loads onto either device, and a
CUDA run stops, resumes and is evaluated on the GPU. Run where CUDA is available (skipped
elsewhere): `pytest tests/checkpoint/test_checkpoint_cuda.py`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from checkpoint_testing import outputs, random_obs, small_policy
from test_checkpoint_resume import EPOCH_STEPS, EPOCHS, stop_after, tiny_config

from heartgrid.checkpoint import CheckpointManager, load_policy, save_policy
from heartgrid.tools import cli
from heartgrid.trainer.logger import read_metrics
from heartgrid.trainer.run import train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def test_a_cuda_policy_loads_on_cuda_and_cpu(tmp_path: Path) -> None:
    policy = small_policy(seed=4).to("cuda")
    save_policy(tmp_path / "p", policy)
    on_gpu, on_cpu = load_policy(tmp_path / "p", device="cuda"), load_policy(tmp_path / "p")
    assert all(t.device.type == "cuda" for t in on_gpu.state_dict().values())
    assert all(t.device.type == "cpu" for t in on_cpu.state_dict().values())
    for name, tensor in policy.state_dict().items():
        assert torch.equal(on_cpu.state_dict()[name], tensor.cpu()), name
    obs = random_obs(4, seed=2)
    logits, values = outputs(on_gpu, obs.cuda())
    expected_logits, expected_values = outputs(on_cpu, obs)
    assert torch.allclose(logits.cpu(), expected_logits, atol=1e-4)
    assert torch.allclose(values.cpu(), expected_values, atol=1e-4)


def test_a_cuda_run_stops_resumes_and_evaluates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    config = tiny_config(tmp_path, "gpu", **{"system.device": "cuda"})
    with monkeypatch.context() as patch:
        stop_after(patch, 1, "ctrl_c")
        run_dir = train(config)
    train(config)
    records = read_metrics(run_dir)
    assert [r["metric/agent_step"] for r in records] == [EPOCH_STEPS * e for e in range(1, EPOCHS + 1)]
    checkpoint = CheckpointManager(run_dir).load_latest()
    assert checkpoint.epoch == EPOCHS
    assert all(t.device.type == "cpu" for t in checkpoint.policy_weights.values())

    if "heartgrid.tools.eval_cmd" not in cli.COMMAND_MODULES:
        monkeypatch.setattr(cli, "COMMAND_MODULES", [*cli.COMMAND_MODULES, "heartgrid.tools.eval_cmd"])
    code = cli.main(["eval", str(run_dir), "--episodes", "2", "--device", "cuda", "--json"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert summary["episodes"] == 2 and summary["episode_length"]["mean"] == 12
