"""Files that hold a run's state survive a crash mid-write: they are written whole (temporary file
+ rename locally, one put in a bucket); a cut-off last line of ``metrics.jsonl`` is dropped on
resume; a damaged ``data_plan.json`` ends the resume in one line."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ray_vlm.config import FinetuneConfig, UserError, load_config
from ray_vlm.storage import Location
from ray_vlm.train.data_plan import PLAN_FILE, data_start
from ray_vlm.train.metrics import METRICS, RunLog, read_metrics


def test_a_crash_mid_write_leaves_the_old_file_whole(tmp_path: Path, monkeypatch) -> None:
    target = Location.of(tmp_path / "data_plan.json")
    target.write_text('{"old": true}')

    def crash(*_args) -> None:
        raise OSError("No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="No space left"):
        target.write_text('{"new": true, "chunks": [...]}')
    assert target.read_text() == '{"old": true}'
    assert [p.name for p in tmp_path.iterdir()] == ["data_plan.json"]  # no temporary file left


def test_a_cut_off_last_metrics_line_is_dropped_and_rewritten_on_resume(tmp_path, capsys) -> None:
    rows = [{"step": s, "loss": 1.0 / s} for s in (1, 2, 3)]
    (tmp_path / METRICS).write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"step": 4, "lo')
    assert read_metrics(tmp_path) == rows
    assert "last line is cut off" in capsys.readouterr().err
    RunLog(tmp_path, resumed_step=3)
    assert (tmp_path / METRICS).read_text() == "".join(json.dumps(r) + "\n" for r in rows)


def test_a_damaged_data_plan_ends_the_resume_in_one_line(tmp_path: Path) -> None:
    cfg = load_config(FinetuneConfig, [f"dump_dir={tmp_path}"])
    (tmp_path / PLAN_FILE).write_text('{"datamix": "demo_captions:1", "chunks": [{"sp')
    with pytest.raises(
        UserError, match=r"data_plan.json is damaged \(.*\), so the run cannot resume"
    ):
        data_start(cfg, [], None)
