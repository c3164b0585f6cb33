"""`heartgrid plot` on runs with nothing to plot: exit 2 with the path and what is wrong, never
a blank chart. A half-written last line (a run still writing) is left out, not an error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from heartgrid.tools.cli import main

PNG = b"\x89PNG\r\n\x1a\n"


def record(epoch: int, **metrics: float) -> str:
    return json.dumps({"metric/agent_step": 256 * epoch, "metric/epoch": epoch, **metrics}) + "\n"


def curve_record(epoch: int) -> str:
    return record(epoch, **{"env_agent/heart.get": 0.1 * epoch, "overview/reward": 0.5 * epoch})


def run_with(tmp_path: Path, name: str, text: str | None) -> Path:
    """A run directory whose metrics.jsonl holds `text` (None: no metrics.jsonl at all)."""
    run_dir = tmp_path / name
    run_dir.mkdir()
    if text is not None:
        (run_dir / "metrics.jsonl").write_text(text)
    return run_dir


def plot(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str]:
    code = main(["plot", *argv])
    return code, capsys.readouterr().err.strip()


def test_a_missing_run_directory_or_metrics_file_is_named(tmp_path: Path, capsys) -> None:
    missing = tmp_path / "nope"
    assert plot(capsys, str(missing)) == (2, f"heartgrid plot: error: {missing}: no such run directory")
    bare = run_with(tmp_path, "bare", None)
    code, err = plot(capsys, str(bare))
    assert code == 2 and f"{bare} has no metrics.jsonl" in err


@pytest.mark.parametrize("text", ["", "\n", '{"metric/agent_step": 25'], ids=["empty", "blank", "half-written"])
def test_a_run_without_records_has_none_yet(tmp_path: Path, capsys, text: str) -> None:
    run_dir = run_with(tmp_path, "new", text)
    code, err = plot(capsys, str(run_dir))
    assert code == 2 and err == f"heartgrid plot: error: {run_dir / 'metrics.jsonl'}: no records yet (the run logs one per epoch)"
    assert not (run_dir / "learning_curves.png").exists()


def test_a_damaged_file_names_the_file_and_line(tmp_path: Path, capsys) -> None:
    run_dir = run_with(tmp_path, "damaged", curve_record(1) + '{"metric/agent_st\n' + curve_record(2))
    code, err = plot(capsys, str(run_dir))
    assert code == 2 and f"{run_dir / 'metrics.jsonl'}, line 2: not a JSON record" in err
    run_dir = run_with(tmp_path, "not_records", curve_record(1) + "[1, 2]\n" + curve_record(2))
    code, err = plot(capsys, str(run_dir))
    assert code == 2 and f"{run_dir / 'metrics.jsonl'}, line 2: not a metrics record" in err


def test_records_without_the_plotted_metrics_say_which_are_missing(tmp_path: Path, capsys) -> None:
    run_dir = run_with(tmp_path, "early", record(1, **{"losses/value": 1.0}) + record(2))
    code, err = plot(capsys, str(run_dir))
    assert code == 2
    assert f"{run_dir / 'metrics.jsonl'}: none of its 2 records has env_agent/heart.get or overview/reward" in err
    only_reward = run_with(tmp_path, "no_hearts", record(1, **{"overview/reward": 1.0}))
    code, err = plot(capsys, str(only_reward))
    assert code == 2 and "none of its 1 records has env_agent/heart.get;" in err


def test_a_half_written_last_line_is_left_out(tmp_path: Path, capsys) -> None:
    run_dir = run_with(tmp_path, "writing", curve_record(1) + curve_record(2) + '{"metric/agent_step": 76')
    assert main(["plot", str(run_dir)]) == 0
    assert capsys.readouterr().out.strip() == str(run_dir / "learning_curves.png")
    assert (run_dir / "learning_curves.png").read_bytes()[:8] == PNG


def test_one_bad_run_of_several_is_an_error_naming_it(tmp_path: Path, capsys) -> None:
    good = run_with(tmp_path, "good", curve_record(1) + curve_record(2))
    empty = run_with(tmp_path, "empty", "")
    out = tmp_path / "both.png"
    code, err = plot(capsys, str(good), str(empty), "--out", str(out))
    assert code == 2 and f"{empty / 'metrics.jsonl'}: no records yet" in err
    assert not out.exists()


def test_out_gets_png_when_it_has_no_suffix_and_refuses_other_formats(tmp_path: Path, capsys) -> None:
    """matplotlib would write `curves.png` for `--out curves` while the command printed `curves`,
    and fail with a traceback for `--out curves.txt`."""
    run_dir = run_with(tmp_path, "r", "".join(curve_record(e) for e in range(1, 4)))
    assert main(["plot", str(run_dir), "--out", str(tmp_path / "curves")]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "curves.png")
    assert (tmp_path / "curves.png").read_bytes()[:8] == PNG
    code, err = plot(capsys, str(run_dir), "--out", str(tmp_path / "curves.txt"))
    # The formats are matplotlib's (some depend on Pillow's build), .png among them.
    assert code == 2 and err.startswith(f"heartgrid plot: error: --out {tmp_path / 'curves.txt'}: matplotlib writes ")
    assert " png, " in err and err.endswith(", not .txt")
    assert main(["plot", str(run_dir), "--out", str(tmp_path / "curves.svg")]) == 0
    (tmp_path / "file").write_text("x")
    code, err = plot(capsys, str(run_dir), "--out", str(tmp_path / "file" / "c.png"))
    assert code == 2 and "is a file, not a directory" in err
