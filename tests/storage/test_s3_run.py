"""A whole run on S3 (moto on loopback): the datamix read from the bucket, ``dump_dir`` in the
bucket, a training worker killed after the first checkpoint, a second ``train`` resuming from the
bucket, ``ray-vlm consolidate --ckpt s3://...`` and ``evaluate`` on a split stored in the bucket.

The module runs its own local Ray cluster, started after the AWS variables are set (``conftest``),
so its workers reach the bucket the standard way (``AWS_ENDPOINT_URL``, keys in the environment).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import ray
import torch
from safetensors.torch import load_file
from transformers import AutoModelForImageTextToText

from ray_vlm.config import FinetuneConfig, load_config
from ray_vlm.config.eval_schema import EvalConfig
from ray_vlm.evaluate.run import evaluate
from ray_vlm.export import resolve_model_dir
from ray_vlm.export.consolidate import consolidate
from ray_vlm.export.finetune import FinetuneOutput, train_and_export
from ray_vlm.export.layout import CONSOLIDATED_DIR, EXPORT_COMPLETE
from ray_vlm.preprocess.check_data import check_data
from ray_vlm.preprocess.ray_runtime import ensure_ray
from ray_vlm.storage import Location
from ray_vlm.train.run_state import read_state
from tests.conftest import LOCAL_TEST_CPUS, REPO
from tests.storage.conftest import S3

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster(s3: S3) -> Iterator[None]:
    """A local Ray cluster whose processes carry the AWS variables; the previous one is back after."""
    was_connected = ray.is_initialized()
    ray.shutdown()
    ensure_ray(min_cpus=LOCAL_TEST_CPUS)
    yield
    ray.shutdown()
    if was_connected:
        ensure_ray(min_cpus=LOCAL_TEST_CPUS)


def _cfg(s3: S3, registry: str, assets: Path, *overrides: str) -> FinetuneConfig:
    return load_config(
        FinetuneConfig,
        [
            f"dump_dir={s3.uri('runs/a')}",
            f"data.datasets_yaml={registry}",
            "data.datamix=demo_captions:1,demo_vqa:1",
            f"checkpoint.init_ckpt_path={assets / 'models/llava'}",
            f"distributed.deepspeed_config={REPO / 'configs/deepspeed/zero3.json'}",
            "data.preprocess_workers=0",  # ranks encode their own records (actors: elsewhere)
            "batch_size=4",
            "checkpoint.dump.every=2",
            "checkpoint.dump.keep=0",
            "logging.freq=1",
            *overrides,
        ],
    )


def _registered(checkpoints: Location) -> bool:
    """Whether Ray Train has registered a checkpoint (its snapshot in the bucket names one)."""
    snapshot = checkpoints / "checkpoint_manager_snapshot.json"
    registered = rf'"checkpoint_dir_name":\s*"{2:010d}"'
    return snapshot.is_file() and re.search(registered, snapshot.read_text()) is not None


def _kill_a_worker_after(checkpoints: Location, killed: list[int]) -> None:
    """Once Ray Train has registered the first checkpoint, SIGKILL one training worker."""
    deadline = time.time() + 600
    while time.time() < deadline and not _registered(checkpoints):
        time.sleep(0.1)
    raylet = ray._private.worker._global_node.all_processes["raylet"][0].process.pid
    for proc in psutil.Process(raylet).children(recursive=True):
        if "RayTrainWorker" in " ".join(proc.cmdline()):
            os.kill(proc.pid, signal.SIGKILL)
            killed.append(proc.pid)
            return


@pytest.fixture(scope="module")
def run(cluster, s3: S3, s3_registry: str, demo_assets: Path) -> tuple[FinetuneOutput, list[int]]:
    cfg = _cfg(s3, s3_registry, demo_assets, "steps=6")
    killed: list[int] = []
    checkpoints = Location.of(cfg.dump_dir) / "checkpoints"
    killer = threading.Thread(target=_kill_a_worker_after, args=(checkpoints, killed))
    killer.start()
    out = train_and_export(cfg)
    killer.join()
    return out, killed


def test_check_data_reads_the_bucket(cluster, s3: S3, s3_registry: str, demo_assets) -> None:
    check = check_data(_cfg(s3, s3_registry, demo_assets))
    assert check.invalid == 0 and check.sources["demo_captions"].valid == 40
    assert check.sources["demo_vqa"].valid > 0


def test_a_run_in_the_bucket_survives_a_killed_worker(run, s3: S3) -> None:
    out, killed = run
    assert killed, "no training worker was found to kill"
    dump_dir = Location.of(s3.uri("runs/a"))
    assert out.result.dump_dir == dump_dir and out.result.step == 6
    for name in ("config.yaml", "metrics.jsonl", "train.log", "loss.png"):
        assert (dump_dir / name).is_file(), name
    assert [m["step"] for m in out.result.metrics] == list(range(1, 7))  # each logged once
    log = (dump_dir / "train.log").read_text()
    assert re.findall(r"resumed from step (\d+)", log) in (["2"], ["4"])  # from the bucket
    for step in (2, 4, 6):
        state = read_state(dump_dir / "checkpoints" / f"{step:010d}")
        assert state is not None and (state.step, state.world_size) == (step, 2)
    assert out.hf_dir == dump_dir / "checkpoints" / f"{6:010d}" / "consolidated"
    assert (out.hf_dir / "model.safetensors").is_file()


def test_a_second_train_on_the_uri_resumes(run, s3: S3, s3_registry, demo_assets) -> None:
    again = train_and_export(_cfg(s3, s3_registry, demo_assets, "steps=8"))
    assert again.result.step == 8
    log = (again.result.dump_dir / "train.log").read_text()
    assert re.findall(r"resumed from step (\d+)", log)[-1] == "6"
    assert [m["step"] for m in again.result.metrics] == list(range(1, 9))


def test_consolidate_cli_on_a_bucket_checkpoint(run, s3: S3, tmp_path: Path) -> None:
    """Downloads model states and master weights, not optimizer moments, and exports what a whole
    download would."""
    step = s3.uri(f"runs/a/checkpoints/{6:010d}")
    out = s3.uri("exports/a")
    env = {**os.environ, "RAY_VLM_CACHE": str(tmp_path / "cache")}
    done = subprocess.run(
        [sys.executable, "-m", "ray_vlm.cli", "consolidate", "--ckpt", step, "--out", out],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == out
    local = resolve_model_dir(out)  # downloaded into the local cache
    assert Path(local).is_dir() and (Location.of(out) / "model.safetensors").is_file()
    AutoModelForImageTextToText.from_pretrained(local)
    optim = list((tmp_path / "cache").glob(f"*/{6:010d}/ds/*optim_states.pt"))
    assert len(optim) == 2  # the master weights only: Adam's moments never left the bucket
    assert all(f.stat().st_blocks * 512 < f.stat().st_size / 2 for f in optim)
    whole = Location.of(step).download(tmp_path / "whole", skip=(CONSOLIDATED_DIR,))
    reference = load_file(consolidate(whole, tmp_path / "reference") / "model.safetensors")
    exported = load_file(Path(local) / "model.safetensors")
    assert reference.keys() == exported.keys()
    assert all(torch.equal(reference[k], exported[k]) for k in reference)


def test_an_export_cut_off_mid_upload_is_written_again_not_served(
    run, s3: S3, tmp_path: Path, monkeypatch
) -> None:
    """An upload of ``consolidated/`` that stopped midway (its weights cut, its marker not yet
    there) is never loaded: serving the step dir writes the export again, marker last."""
    monkeypatch.setenv("RAY_VLM_CACHE", str(tmp_path / "cache"))
    step = Location.of(s3.uri(f"runs/a/checkpoints/{6:010d}"))
    export = step / CONSOLIDATED_DIR
    resolve_model_dir(step.uri)  # a complete export first
    weights = export / "model.safetensors"
    whole = weights.read_bytes()
    weights.write_bytes(whole[: len(whole) // 2])
    (export / EXPORT_COMPLETE).delete()
    local = resolve_model_dir(step.uri)
    assert (export / EXPORT_COMPLETE).is_file() and weights.read_bytes() == whole
    AutoModelForImageTextToText.from_pretrained(local)


def test_evaluate_a_bucket_run_on_a_split_in_the_bucket(
    run, s3: S3, s3_registry: str, tmp_path: Path
) -> None:
    cfg = load_config(
        EvalConfig,
        [
            f"ckpt={s3.uri('runs/a')}",
            "data=demo_captions_test",
            f"datasets_yaml={s3_registry}",
            "task=caption",
            f"out_dir={tmp_path / 'eval'}",
            "max_new_tokens=8",
        ],
    )
    result = evaluate(cfg)
    metrics = result.metrics["model"]
    assert metrics["samples"] == 10 and metrics["failed"] == 0, metrics
    assert result.report.is_file()
