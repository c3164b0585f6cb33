"""metrics.jsonl on resume: records after the checkpoint go, a half-written last line (the run
was killed while writing it) is dropped with a note in log.txt, the file is replaced atomically."""

from __future__ import annotations

import errno
import json

import pytest
from trainer_fakes import tiny_config

from heartgrid.trainer import logger as logger_module
from heartgrid.trainer.logger import METRICS_FILE, RunLogger, read_metrics


def records(epochs: int) -> str:
    return "".join(
        json.dumps({"metric/epoch": e, "metric/agent_step": 32 * e, "overview/reward": e / 10}) + "\n"
        for e in range(1, epochs + 1)
    )


def test_resume_drops_a_half_written_last_line_and_notes_it(tmp_path, monkeypatch):
    (tmp_path / METRICS_FILE).write_text(records(3) + '{"metric/epoch": 4, "metric/agent_st')
    replaced = []
    original = logger_module.replace_file_atomically
    monkeypatch.setattr(logger_module, "replace_file_atomically",
                        lambda path, data: (replaced.append(path), original(path, data)))

    run_logger = RunLogger(tmp_path, tiny_config(), resume_epoch=2)
    run_logger.log_metrics({"metric/epoch": 3, "metric/agent_step": 96, "overview/reward": 0.5})
    run_logger.close()

    assert replaced == [tmp_path / METRICS_FILE]
    assert [(r["metric/epoch"], r["overview/reward"]) for r in read_metrics(tmp_path)] == [
        (1, 0.1), (2, 0.2), (3, 0.5)]
    log = (tmp_path / "log.txt").read_text()
    assert f"warning: {tmp_path / METRICS_FILE} ended in a half-written line" in log
    assert "metric/agent_st" in log
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp")] == []


def test_resume_without_a_bad_line_notes_nothing(tmp_path):
    (tmp_path / METRICS_FILE).write_text(records(3))
    RunLogger(tmp_path, tiny_config(), resume_epoch=3).close()
    assert [r["metric/epoch"] for r in read_metrics(tmp_path)] == [1, 2, 3]
    assert "warning" not in (tmp_path / "log.txt").read_text()


def test_a_bad_line_before_the_last_is_an_error_naming_it(tmp_path):
    lines = records(3).splitlines()
    lines[1] = lines[1][:10]
    (tmp_path / METRICS_FILE).write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"metrics\.jsonl, line 2: not a JSON record"):
        RunLogger(tmp_path, tiny_config(), resume_epoch=3)
    assert (tmp_path / METRICS_FILE).read_text().count("\n") == 3  # left as it was


def test_read_metrics_of_a_run_still_writing_leaves_the_partial_line_out(tmp_path):
    (tmp_path / METRICS_FILE).write_text(records(2) + '{"metric/epoch": 3')
    assert [r["metric/epoch"] for r in read_metrics(tmp_path)] == [1, 2]


def test_a_disk_that_fills_when_the_logs_are_closed_names_the_file(tmp_path):
    """Closing flushes what is buffered; its error says which file, as a write's does."""
    logger = RunLogger(tmp_path, tiny_config())

    class Full:
        def close(self):
            raise OSError(errno.ENOSPC, "No space left on device")

    logger.metrics_file.close()
    logger.metrics_file = Full()
    with pytest.raises(OSError) as error:
        logger.close()
    assert error.value.filename == str(tmp_path / METRICS_FILE)
