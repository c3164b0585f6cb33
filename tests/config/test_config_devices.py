"""Configs for a GPU build anywhere; a GPU that is not there is a usage error, not a traceback."""

from __future__ import annotations

import re

import pytest
import torch

from heartgrid.devices import DeviceError, require_device
from heartgrid.recipes import all_recipes, build_config
from heartgrid.tools.cli import main


@pytest.mark.parametrize("recipe", sorted(all_recipes()))
def test_every_recipe_resolves_for_a_gpu(recipe):
    """The small recipes once set a batch smaller than the GPU default minibatch first and were
    refused on every GPU machine."""
    config = build_config(recipe, [], default_device="cuda")
    assert config.trainer.batch_size % config.trainer.minibatch_size == 0


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_a_missing_gpu_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(DeviceError, match="system.device=cuda, but this PyTorch"):
        require_device("cuda")
    assert require_device("auto") == "cpu"
    code = main(["train", "small_cardinal", "system.device=cuda", f"data_dir={tmp_path / 'data'}", "run=gpu"])
    assert code == 2
    assert "use system.device=cpu or auto" in capsys.readouterr().err
    assert not (tmp_path / "data").exists()  # refused before anything is made on disk


def test_a_data_dir_that_is_a_file_is_a_usage_error(tmp_path, capsys):
    (tmp_path / "x").write_text("")
    assert main(["train", "small_cardinal", f"data_dir={tmp_path / 'x'}", "run=y"]) == 2
    assert f"data_dir={tmp_path / 'x'} is a file, not a directory" in capsys.readouterr().err
    assert main(["train", "small_cardinal", f"data_dir={tmp_path / 'x' / 'sub'}", "run=y"]) == 2
    assert f"data_dir={tmp_path / 'x' / 'sub'}: {tmp_path / 'x'} is a file, not a directory" in capsys.readouterr().err


@pytest.mark.parametrize("device", ["tpu", "cuda:x", "mps", ""])
def test_an_unknown_device_name_is_a_usage_error_everywhere(device, tmp_path, monkeypatch, capsys):
    """Not torch's RuntimeError from deep inside a command: every verb that takes a device,
    named as the user named it."""
    with pytest.raises(DeviceError, match=re.escape(f"system.device must be auto, cpu, cuda or cuda:N, got {device!r}")):
        require_device(device)
    monkeypatch.chdir(tmp_path)
    for argv, given in ((["train", "small_cardinal", f"system.device={device}"], "system.device"),
                        (["bench", "env", "small_cardinal", "--device", device], "--device"),
                        (["eval", "no_such_run", "--device", device], "--device"),
                        (["render", "small_cardinal", "--policy", "no_such_run", "--device", device], "--device")):
        assert main(argv) == 2, argv
        assert f"{given} must be auto, cpu, cuda or cuda:N, got {device!r}" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_a_device_torch_names_cpu_still_runs():
    assert require_device("cpu:0", "--device") == "cpu:0"
