"""Golden fingerprints: every shipped recipe behaves, stage by stage, as its file in
tests/golden/fingerprints says. After an intended change:  heartgrid fingerprint --regenerate
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from heartgrid.fingerprint import Fingerprint, capture, first_divergence
from heartgrid.fingerprint.golden import cpu_vendor, golden_dir
from heartgrid.recipes import all_recipes, build_config
from heartgrid.tools.cli import main
from heartgrid.tools.fingerprint_cmd import golden_configs

GOLDEN = golden_dir(Path(__file__).resolve().parents[1] / "golden" / "fingerprints")  # this CPU vendor's


def test_every_recipe_and_switch_has_a_golden_fingerprint():
    assert set(all_recipes()) <= set(golden_configs())
    assert {p.stem for p in GOLDEN.glob("*.json")} == set(golden_configs()), (
        "tests/golden/fingerprints does not match the recipes and switches; run "
        "`heartgrid fingerprint --regenerate`")


@pytest.mark.parametrize("recipe", list(golden_configs()))
def test_recipe_behaves_as_its_golden_fingerprint(recipe):
    golden = Fingerprint.load(GOLDEN / f"{recipe}.json")
    base, overrides = golden_configs()[recipe]
    current = capture(build_config(base, overrides, default_device="cpu"), golden.updates)
    divergence = first_divergence(golden, current)
    assert divergence is None, (
        f"{recipe}: {divergence.message()}\nIf the change is intended, run "
        "`heartgrid fingerprint --regenerate` and commit the diff.")


def test_the_thread_count_does_not_enter_and_is_put_back():
    config = build_config("small_cardinal", [], default_device="cpu")
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        a = capture(config)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)
    assert first_divergence(a, capture(config)) is None


def test_check_exits_1_naming_the_first_divergent_stage(tmp_path, capsys):
    golden = tmp_path / "golden"
    golden.mkdir()
    shutil.copy(GOLDEN / "small_cardinal.json", golden)
    assert main(["fingerprint", "--check", "--golden", str(golden), "small_cardinal"]) == 0
    assert "same behaviour" in capsys.readouterr().out

    # A stored advantage off by 0.5: as if the code computing it had changed.
    data = json.loads((golden / "small_cardinal.json").read_text())
    check = next(c for c in data["checks"] if c["stage"] == "advantages" and c["update"] == 2)
    check["values"][1] += 0.5
    (golden / "small_cardinal.json").write_text(json.dumps(data))
    assert main(["fingerprint", "--check", "--golden", str(golden), "small_cardinal"]) == 1
    out = capsys.readouterr().out
    assert f"first divergence: update 2, stage `advantages` at {check['where']} (every check before it agreed: " in out
    assert "max abs diff 0.5 at segment 1" in out and "fingerprint --regenerate" in out


def test_two_configs_compare_with_their_config_diff(tmp_path, capsys):
    out = tmp_path / "b.json"
    code = main(["fingerprint", "small_cardinal", "small_cardinal trainer.gae_lambda=0.5", "--out", str(out)])
    text = capsys.readouterr().out
    assert code == 1
    assert "trainer.gae_lambda: 0.95 -> 0.5" in text or "trainer.gae_lambda" in text
    assert "stage `advantages`" in text
    assert main(["fingerprint", str(out), "small_cardinal trainer.gae_lambda=0.5"]) == 0  # a file is a side
    assert "same behaviour" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["fingerprint", "no_such_recipe"], "unknown recipe"),
    (["fingerprint", "small_cardinal", "--updates", "0"], "--updates must be at least 1"),
    (["fingerprint", "--check", "--golden", "/nonexistent"], "no golden fingerprints"),
    (["fingerprint"], "give a recipe"),
    (["fingerprint", "no_such_a.json", "no_such_b.json"], "no_such_a.json: no such fingerprint file"),
])
def test_bad_input_exits_2(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_each_cpu_vendor_checks_against_its_own_golden_files(tmp_path):
    """Float kernels differ between vendors (fingerprint/golden.py): the root's files are those
    of the vendor its VENDOR file names, another vendor's are in a subdirectory."""
    root = tmp_path / "fingerprints"
    root.mkdir()
    assert golden_dir(root, "AuthenticAMD") == root  # no VENDOR file: one set for every CPU
    (root / "VENDOR").write_text("GenuineIntel\n")
    assert golden_dir(root, "GenuineIntel") == root
    assert golden_dir(root, "AuthenticAMD") == root / "AuthenticAMD"
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\n")
    assert cpu_vendor(str(cpuinfo)) == "AuthenticAMD"
    shipped = GOLDEN.parent if GOLDEN.name != "fingerprints" else GOLDEN
    assert (shipped / "VENDOR").read_text().strip() == "GenuineIntel"
    for vendor_dir in (shipped, *(p for p in shipped.iterdir() if p.is_dir())):
        assert {p.stem for p in vendor_dir.glob("*.json")} == set(golden_configs()), vendor_dir
