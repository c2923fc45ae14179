"""Exactly once on Ray Train (real Ray, DeepSpeed ZeRO-3 on gloo, 2 workers, the tiny demo LLaVA).

Three runs of one command, ``logging.record_ids`` on, checkpoints every 15 steps (in the middle
of a length-grouping window): uninterrupted; with a training worker SIGKILLed after the step-15
checkpoint (Ray Train restarts the group from it); with the driver SIGKILLed after that checkpoint
and the command run again. The records each step trained on, rank by rank, are the same in all
three: none missing, none twice, in the uninterrupted order.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import ray

from ray_vlm.config import FinetuneConfig, config_to_yaml, load_config
from ray_vlm.train.record_ids import step_ids
from ray_vlm.train.run_state import RAY_SNAPSHOT
from ray_vlm.train.trainer import train
from tests.conftest import REPO
from tests.train.test_train_run import _raylet_children

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("ray_local")]

STEPS = 30  # checkpoints at 15 and 30: a kill after 15 lands with 15 steps (~5 s) still to run
MIDDLE = STEPS // 2  # odd: the checkpoint stands in the middle of a 2-batch window


def _cfg(assets: Path, dump_dir: Path) -> FinetuneConfig:
    return load_config(
        FinetuneConfig,
        [
            f"dump_dir={dump_dir}",
            f"checkpoint.init_ckpt_path={assets / 'models/llava'}",
            f"distributed.deepspeed_config={REPO / 'configs/deepspeed/zero3.json'}",
            f"data.datasets_yaml={assets / 'datasets.yaml'}",
            "data.datamix=demo_captions:1,demo_vqa:1",
            "data.preprocess_workers=1",
            "batch_size=4", "data.length_group_batches=2", f"steps={STEPS}",
            f"checkpoint.dump.every={MIDDLE}", "checkpoint.dump.keep=0",
            "logging.record_ids=true", "logging.freq=1",
        ],
    )  # fmt: skip


def _registered(dump_dir: Path, step: int) -> bool:
    """Whether Ray Train registered checkpoint ``step`` (what a restart resumes from); its files
    are all there a moment before."""
    snapshot = dump_dir / "checkpoints" / RAY_SNAPSHOT
    try:
        latest = json.loads(snapshot.read_text()).get("latest_checkpoint_result") or {}
    except (OSError, ValueError):  # not written yet, or being written
        return False
    return int(latest.get("checkpoint_dir_name", "0")) >= step


def _wait_for_checkpoint(dump_dir: Path, step: int, alive=lambda: True) -> None:
    deadline = time.time() + 600
    while not _registered(dump_dir, step):
        assert alive() and time.time() < deadline, f"checkpoint {step} of {dump_dir} not registered"
        time.sleep(0.05)


def _is_new_worker(proc: psutil.Process, since: float) -> bool:
    try:
        return proc.create_time() > since and "RayTrainWorker" in " ".join(proc.cmdline())
    except psutil.Error:  # gone meanwhile
        return False


def _ids(dump_dir: Path) -> dict:
    ids = step_ids(dump_dir)
    assert sorted(ids) == list(range(1, STEPS + 1))
    return ids


@pytest.fixture(scope="module")
def uninterrupted(demo_assets: Path, tmp_path_factory) -> dict:
    dump_dir = tmp_path_factory.mktemp("once") / "whole"
    train(_cfg(demo_assets, dump_dir))
    return _ids(dump_dir)


def test_a_killed_worker_costs_no_record_and_repeats_none(
    demo_assets: Path, uninterrupted: dict, tmp_path: Path
) -> None:
    import threading

    killed = []

    def kill() -> None:
        workers: list = []
        while not workers:  # this run's, found before the checkpoint: looking is slow
            time.sleep(0.2)
            workers = [p for p in _raylet_children() if _is_new_worker(p, started)]
        _wait_for_checkpoint(tmp_path / "run", MIDDLE)
        os.kill(workers[0].pid, signal.SIGKILL)
        killed.append(workers[0].pid)

    started = time.time()
    killer = threading.Thread(target=kill)
    killer.start()
    train(_cfg(demo_assets, tmp_path / "run"))
    killer.join()
    assert killed
    assert "resumed from step" in (tmp_path / "run" / "train.log").read_text()
    assert _ids(tmp_path / "run") == uninterrupted


def test_a_killed_driver_then_the_same_command_costs_no_record_and_repeats_none(
    demo_assets: Path, uninterrupted: dict, tmp_path: Path
) -> None:
    cfg = _cfg(demo_assets, tmp_path / "run")
    (tmp_path / "run.yaml").write_text(config_to_yaml(cfg))
    script = (
        "from ray_vlm.config import FinetuneConfig, load_config\n"
        "from ray_vlm.train.trainer import train\n"
        f"train(load_config(FinetuneConfig, ['config={tmp_path / 'run.yaml'}']))\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "RAY_ADDRESS": ray.get_runtime_context().gcs_address,
    }
    with open(tmp_path / "driver.log", "w") as log:
        driver = subprocess.Popen([sys.executable, "-c", script], env=env, stdout=log, stderr=log)
        _wait_for_checkpoint(tmp_path / "run", MIDDLE, alive=lambda: driver.poll() is None)
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    train(cfg)
    assert "resumed from step" in (tmp_path / "run" / "train.log").read_text()
    assert _ids(tmp_path / "run") == uninterrupted
