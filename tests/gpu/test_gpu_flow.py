"""The whole flow on CUDA, NCCL and bf16, on the tiny demo models (``make test-gpu``).

Without Ray (plain ``torch.distributed`` via ``torchrun``: the GPU machine may have torch,
transformers and DeepSpeed only): ZeRO-3 training on every GPU (2 processes with 2 GPUs, else 1)
with ZeRO-3 loading, a resume, ZeRO-2, consolidation and generation on the GPU. With Ray
installed, the same on Ray Train workers with GPUs, then one Serve replica on the GPU and an
evaluation through it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ray_vlm.export.consolidate import consolidate
from ray_vlm.export.generate_one import generate_one
from ray_vlm.model import SamplingParams
from ray_vlm.train.metrics import read_metrics
from ray_vlm.train.run_state import latest_state
from tests.conftest import REPO

WORKERS = min(2, torch.cuda.device_count())


def _args(assets: Path, dump_dir: Path, *overrides: str) -> list[str]:
    return [
        f"dump_dir={dump_dir}",
        f"checkpoint.init_ckpt_path={assets / 'models/llava'}",
        f"distributed.deepspeed_config={REPO / 'configs/deepspeed/zero3.json'}",
        f"data.datasets_yaml={assets / 'datasets.yaml'}",
        "data.datamix=demo_captions:1,demo_vqa:1",
        "batch_size=4", "checkpoint.dump.every=4", "logging.freq=1", "optim.lr=1e-3",
        *overrides,
    ]  # fmt: skip


def _torchrun(args: list[str]) -> None:
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(WORKERS),
               "-m", "ray_vlm.train.local_run", *args]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def _trained(dump_dir: Path, steps: int) -> None:
    rows = read_metrics(dump_dir)
    assert [r["step"] for r in rows] == list(range(1, steps + 1))
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in rows)
    assert rows[-1]["loss"] < rows[0]["loss"]
    assert latest_state(dump_dir).step == steps


def test_without_ray_zero3_resume_zero2_consolidate_generate(demo_assets: Path, tmp_path: Path):
    zero3 = tmp_path / "zero3"
    _torchrun(_args(demo_assets, zero3, "steps=8"))
    _trained(zero3, 8)
    _torchrun(_args(demo_assets, zero3, "steps=12"))
    assert "resumed from step 8" in (zero3 / "train.log").read_text()
    _trained(zero3, 12)
    zero2 = tmp_path / "zero2"
    _torchrun(_args(demo_assets, zero2, "steps=8", "distributed.zero_stage=2"))
    _trained(zero2, 8)
    export = consolidate(zero3 / "checkpoints" / f"{12:010d}", tmp_path / "export")
    config = json.loads((export / "config.json").read_text())
    assert config["dtype"] == "bfloat16"  # a bf16 run exports bf16
    image = next((demo_assets / "data/plm/shapes/images").glob("test_*.png"))
    answer = generate_one(str(export), str(image), "Describe the image.", SamplingParams(8))
    assert answer.completion_tokens > 0


def test_on_ray_train_serve_and_evaluate(demo_assets: Path, tmp_path: Path) -> None:
    pytest.importorskip("ray")
    from ray_vlm.config import FinetuneConfig, load_config
    from ray_vlm.config.eval_schema import EvalConfig
    from ray_vlm.evaluate.run import evaluate
    from ray_vlm.train.trainer import train

    cfg = load_config(
        FinetuneConfig,
        _args(demo_assets, tmp_path / "run", "steps=8", "distributed.use_gpu=true",
              f"distributed.num_workers={WORKERS}", "data.preprocess_workers=2"),
    )  # fmt: skip
    result = train(cfg)
    _trained(tmp_path / "run", 8)
    scored = evaluate(
        load_config(
            EvalConfig,
            [
                f"ckpt={result.checkpoint}",
                "data=demo_vqa_test",
                "task=vqa",
                f"datasets_yaml={demo_assets / 'datasets.yaml'}",
                f"out_dir={tmp_path / 'eval'}",
                "serve.replicas.num_gpus=1",
                "serve.replicas.min_replicas=1",
                "serve.replicas.max_replicas=1",
            ],
        )  # fmt: skip
    )
    assert (tmp_path / "eval" / "metrics.json").is_file()
    assert scored is not None
