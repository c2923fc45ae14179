"""The runs export tests consolidate: each tiny architecture, every kind of trained set, ZeRO 0-3."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ray_vlm.config import FinetuneConfig, load_config
from tests.export.batches import demo_batch
from tests.export.checkpoints import Batch, Job, write_checkpoints


@dataclass(frozen=True)
class Run:
    arch: str
    trainable: str = "full"
    frozen_dtype: str = "float32"
    zero_stage: int = 3
    attn: str = "auto"


RUNS = {
    "llava_full": Run("llava"),
    "paligemma_full": Run("paligemma"),
    "perception_lm_freeze_vision": Run("perception_lm", "freeze_vision"),
    "llava_lora": Run("llava", "lora"),
    "paligemma_attention_bf16": Run("paligemma", "attention_only", "bfloat16"),
    "perception_lm_zero2": Run("perception_lm", zero_stage=2),
    "llava_zero0": Run("llava", zero_stage=0, attn="eager"),
}
PROBE_OFFSET = 20  # probe records come after the training ones
WORKERS = 2


def probe_batch(assets: Path, arch: str) -> Batch:
    return demo_batch(assets, arch, n=3, offset=PROBE_OFFSET)


def train_runs(assets: Path, root: Path) -> dict[str, Path]:
    """Run name -> step dir, after 2 steps at lr 1e-2 (so every trained weight moves)."""
    jobs = []
    for name, run in RUNS.items():
        cfg = load_config(
            FinetuneConfig,
            [
                f"dump_dir={root / name}",
                f"name={name}",
                f"checkpoint.init_ckpt_path={assets / 'models' / run.arch}",
                f"model.trainable={run.trainable}",
                f"model.frozen_dtype={run.frozen_dtype}",
                f"distributed.zero_stage={run.zero_stage}",
                f"model.attn_implementation={run.attn}",
                f"distributed.num_workers={WORKERS}",
                "steps=2",
                "batch_size=2",
                "optim.lr=1e-2",
            ],
        )
        batches = [demo_batch(assets, run.arch, n=2, offset=2 * r) for r in range(WORKERS)]
        jobs.append(Job(cfg, batches, probe_batch(assets, run.arch)))
    return dict(zip(RUNS, write_checkpoints(jobs, root / "ray"), strict=True))
