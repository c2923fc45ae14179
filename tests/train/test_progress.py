"""The driver follows ``train.log``: a tqdm bar of steps, every other line printed above it."""

from __future__ import annotations

import time
from pathlib import Path

from ray_vlm.storage import Location
from ray_vlm.train.metrics import TRAIN_LOG, RunLog
from ray_vlm.train.progress import follow


def test_progress_lines_move_the_bar_and_other_lines_are_printed(tmp_path: Path, capsys) -> None:
    log = RunLog(tmp_path, resumed_step=2)
    with follow(Location.of(tmp_path) / "train.log", steps=4, done=2):
        log.note("resumed from step 2")
        capsys.readouterr()  # RunLog prints its own lines too (a worker's stdout)
        row = {"step": 3, "loss": 0.5, "lr": 1e-3, "grad_norm": 1.0}
        log.metrics({**row, "samples_per_s": 1.0, "tokens_per_s": 10.0}, steps=4)
        capsys.readouterr()
        time.sleep(1.5)
    out = capsys.readouterr()
    assert "resumed from step 2" in out.out + out.err
    assert "3/4" in out.err and "loss=0.5000" in out.err
    assert "step 3/4  loss" not in out.out + out.err


def test_run_log_lines_name_no_credentials(tmp_path: Path, capsys) -> None:
    """``train.log`` and stdout name where checkpoints go, masked as every dump is."""
    RunLog(tmp_path, resumed_step=0).note("step 2: checkpoint s3://AKIAKEY:se/cret@bucket/run/c")
    assert "s3://***@bucket/run/c" in (tmp_path / TRAIN_LOG).read_text()
    assert "cret" not in capsys.readouterr().out + (tmp_path / TRAIN_LOG).read_text()
