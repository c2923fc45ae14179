"""The recipe without Ray: ``torchrun -m ray_vlm.train.local_run`` on CPU (gloo, real DeepSpeed
ZeRO-3, 2 processes), the path the GPU checks take on a machine without Ray.

Killed (torchrun and every worker, SIGKILL) after a checkpoint saved in the middle of a length-grouping window
and run again, it trains on exactly the records, step by step and rank by rank, an uninterrupted
run trains on, and ends with the same loss.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from ray_vlm.train.metrics import read_metrics
from ray_vlm.train.record_ids import step_ids
from ray_vlm.train.run_state import latest_state, read_state
from tests.conftest import REPO

STEPS = 12
WITHOUT_RAY = (
    "ray_vlm.train.local_run", "ray_vlm.export.consolidate", "ray_vlm.export.generate_one",
    "ray_vlm.demo.assets",
)  # fmt: skip


def test_what_the_gpu_checks_run_without_ray_imports_no_ray() -> None:
    code = f"import sys, {', '.join(WITHOUT_RAY)}; assert 'ray' not in sys.modules, 'ray'"
    subprocess.run(
        [sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONPATH": str(REPO)}
    )


def _command(assets: Path, dump_dir: Path) -> list[str]:
    return [
        sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
        "--master-port", str(29500 + os.getpid() % 1000),
        "-m", "ray_vlm.train.local_run",
        f"dump_dir={dump_dir}",
        f"checkpoint.init_ckpt_path={assets / 'models/llava'}",
        f"distributed.deepspeed_config={REPO / 'configs/deepspeed/zero3.json'}",
        f"data.datasets_yaml={assets / 'datasets.yaml'}",
        "data.datamix=demo_captions:1,demo_vqa:1",
        "batch_size=2", "data.length_group_batches=2", f"steps={STEPS}",
        "checkpoint.dump.every=3", "checkpoint.dump.keep=0",
        "logging.record_ids=true", "logging.freq=1", "optim.lr=1e-3",
    ]  # fmt: skip


def _run(assets: Path, dump_dir: Path, kill_after: int | None = None) -> int:
    """The run's exit status; a failed run's traceback is printed last (pytest shows it)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    errors = (dump_dir.parent / f"{dump_dir.name}_stderr_{time.time_ns()}.txt").open("w+")
    proc = subprocess.Popen(_command(assets, dump_dir), env=env, stderr=errors)
    if kill_after is not None:
        step_dir = dump_dir / "checkpoints" / f"{kill_after:010d}"
        while proc.poll() is None and read_state(step_dir) is None:
            time.sleep(0.05)
        # torchrun starts each worker in its own session: kill the whole tree
        workers = psutil.Process(proc.pid).children(True)
        for process in [psutil.Process(proc.pid), *workers]:
            process.kill()
        psutil.wait_procs(workers, timeout=60)  # none may still write when the next run starts
    code = proc.wait(timeout=600)
    if code > 0:
        errors.seek(0)
        lines = [line for line in errors if "Warning" not in line and "return func" not in line]
        print("".join(lines[-60:]))
    errors.close()
    return code


@pytest.fixture(scope="module")
def uninterrupted(demo_assets: Path, tmp_path_factory) -> Path:
    dump_dir = tmp_path_factory.mktemp("local") / "whole"
    assert _run(demo_assets, dump_dir) == 0
    return dump_dir


@pytest.mark.slow
def test_a_run_without_ray_trains_and_checkpoints(uninterrupted: Path) -> None:
    rows = read_metrics(uninterrupted)
    assert [r["step"] for r in rows] == list(range(1, STEPS + 1))
    assert rows[-1]["loss"] < rows[0]["loss"]
    assert latest_state(uninterrupted).step == STEPS
    assert (uninterrupted / "loss.png").is_file()
    ids = step_ids(uninterrupted)
    assert all([len(r[0]) for r in ranks] == [2, 2] for ranks in ids.values())


@pytest.mark.slow
def test_killed_and_run_again_it_trains_on_exactly_what_an_uninterrupted_run_does(
    demo_assets: Path, uninterrupted: Path, tmp_path: Path
) -> None:
    dump_dir = tmp_path / "killed"
    assert _run(demo_assets, dump_dir, kill_after=3) == -signal.SIGKILL
    resumed_from = latest_state(dump_dir).step
    assert 3 <= resumed_from < STEPS
    assert _run(demo_assets, dump_dir) == 0
    assert step_ids(dump_dir) == step_ids(uninterrupted)
    assert f"resumed from step {resumed_from}" in (dump_dir / "train.log").read_text()
    final, whole = read_metrics(dump_dir)[-1], read_metrics(uninterrupted)[-1]
    assert final["loss"] == pytest.approx(whole["loss"], rel=1e-4)
