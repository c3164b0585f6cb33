"""The terminal display: what it shows, and that it keeps the last episode metrics."""

from __future__ import annotations

import io

from rich.console import Console

from heartgrid.trainer.display import PlainDisplay, RichDisplay, format_duration, time_left

RECORD = {
    "metric/agent_step": 4096, "metric/epoch": 2, "metric/total_time": 75.0, "overview/sps": 1024.0,
    "overview/reward": 1.25, "env_agent/heart.get": 0.5, "losses/policy_loss": -0.01,
}


def test_format_duration_and_time_left():
    assert format_duration(75) == "1:15"
    assert format_duration(3725) == "1:02:05"
    assert time_left(RECORD, total_timesteps=8192) == 4.0
    assert time_left({**RECORD, "overview/sps": 0.0}, 8192) == float("inf")


def test_plain_display_prints_one_line_per_record():
    out = io.StringIO()
    display = PlainDisplay("run", 8192, stream=out)
    display.update(RECORD)
    display.message("stopping")
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("epoch 2  steps 4,096/8,192  sps 1,024")
    assert "hearts / agent / episode 0.5" in lines[0] and "left 0:04" in lines[0]
    assert lines[1] == "stopping"


def test_rich_display_shows_progress_and_keeps_the_last_episode_metrics():
    console = Console(file=io.StringIO(), width=100, force_terminal=False)
    display = RichDisplay("myrun", 8192, console=console)
    display.update(RECORD)
    later = {k: v for k, v in RECORD.items() if not k.startswith(("overview/reward", "env_agent/"))}
    display.update({**later, "metric/epoch": 3, "metric/agent_step": 6144})
    display.close()
    text = console.file.getvalue()
    assert "HeartGrid · myrun" in text and "agent steps 6,144 / 8,192" in text
    final = text[text.rindex("epoch 3"):]
    assert "hearts / agent / episode" in final and "0.5" in final and "1.25" in final


def test_rich_display_puts_the_progress_bar_on_its_own_line_at_80_columns():
    console = Console(file=io.StringIO(), width=80, force_terminal=False, record=True)
    display = RichDisplay("myrun", 8192, console=console)
    display.update(RECORD)
    lines = display.render()
    console.print(lines)
    text = console.export_text()
    sps_lines = [line for line in text.splitlines() if line.startswith("SPS")]
    assert sps_lines and all(any(ch.isdigit() for ch in line) for line in sps_lines)
    display.close()
