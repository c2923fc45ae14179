"""Real DeepSpeed checkpoints in the agreed layout (``ray_vlm.train.run_state``), for export tests.

``write_checkpoints(jobs, storage)`` runs, for each ``Job(cfg, batches, probe)``, ``cfg.steps``
DeepSpeed steps (ZeRO stage ``cfg.distributed.zero_stage``) on ``cfg.distributed.num_workers``
Ray Train workers (CPU, gloo), worker ``r`` training on ``batches[r]``. The model is loaded as
training loads it: under ZeRO-3 partitioned while it is built (``load_model`` with the DeepSpeed
config), so what trains (``apply_trainable``: modes, LoRA, ``frozen_dtype``) is set on ZeRO-3
placeholders. Every rank saves its
shards with ``engine.save_checkpoint(step_dir, tag="ds")`` and its ``TrainState``; rank 0 writes
``hf/``, ``config.yaml`` and ``engine_logits.pt``: the engine's logits on ``probe`` after
training. The jobs share one ``TorchTrainer`` (one engine after the other) to pay Ray Train's
start-up once. To be replaced by ``ray_vlm.train``'s real trainer.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import deepspeed
import ray.train
import torch
from ray.train import RunConfig, ScalingConfig
from ray.train.torch import TorchTrainer
from transformers import AutoConfig, GenerationConfig

from ray_vlm.config import CONFIG_FILE, FinetuneConfig, save_config
from ray_vlm.model import load_model, load_processor
from ray_vlm.train.run_state import CHECKPOINTS, DS_TAG, HF_DIR, TrainState, step_dir_name
from ray_vlm.train.trainable import apply_trainable

ENGINE_LOGITS = "engine_logits.pt"
Batch = dict[str, torch.Tensor]


@dataclass
class Job:
    cfg: FinetuneConfig
    batches: list[Batch]
    """One per worker."""
    probe: Batch
    """Logits on this batch are saved after training."""

    @property
    def step_dir(self) -> Path:
        return Path(self.cfg.dump_dir) / CHECKPOINTS / step_dir_name(self.cfg.steps)


def _ds_config(cfg: FinetuneConfig) -> dict:
    return {
        "train_micro_batch_size_per_gpu": cfg.batch_size,
        "gradient_accumulation_steps": 1,
        "gradient_clipping": cfg.optim.clip,
        "zero_optimization": {"stage": cfg.distributed.zero_stage},
        "zero_allow_untested_optimizer": True,
    }


def _save_hf_files(init: str, hf: Path) -> None:
    AutoConfig.from_pretrained(init).save_pretrained(hf)
    GenerationConfig.from_pretrained(init).save_pretrained(hf)
    load_processor(init).save_pretrained(hf)


def _train_and_save(job: Job, rank: int, workers: int) -> None:
    cfg = job.cfg
    torch.manual_seed(cfg.seed)
    init = cfg.checkpoint.init_ckpt_path
    ds_config = _ds_config(cfg)
    zero3 = ds_config if cfg.distributed.zero_stage == 3 else None
    model = load_model(init, zero3_config=zero3, attn_implementation=cfg.model.attn_implementation)
    model = apply_trainable(model, cfg.model)
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=cfg.optim.lr
    )
    engine, *_ = deepspeed.initialize(model=model, optimizer=optimizer, config=ds_config)
    for _ in range(cfg.steps):
        engine.backward(engine(**job.batches[rank]).loss)
        engine.step()
    engine.eval()
    with torch.no_grad():
        logits = engine(**job.probe).logits  # a ZeRO-3 forward: every rank takes part

    step_dir = job.step_dir
    engine.save_checkpoint(str(step_dir), tag=DS_TAG)
    if rank == 0:
        _save_hf_files(init, step_dir / HF_DIR)
        save_config(cfg, step_dir / CONFIG_FILE)
        torch.save(logits, step_dir / ENGINE_LOGITS)
    samples = cfg.steps * cfg.batch_size * workers
    TrainState(cfg.steps, samples, workers, rank, cfg.seed).save(step_dir)


def _run_jobs(loop: dict) -> None:
    context = ray.train.get_context()
    for job in loop["jobs"]:
        _train_and_save(job, context.get_world_rank(), context.get_world_size())


def write_checkpoints(jobs: list[Job], storage: Path) -> list[Path]:
    """Train and save every job (Ray Train's own files go to ``storage``); returns the step dirs."""
    workers = jobs[0].cfg.distributed.num_workers
    assert all(len(j.batches) == j.cfg.distributed.num_workers == workers for j in jobs)
    trainer = TorchTrainer(
        _run_jobs,
        train_loop_config={"jobs": jobs},
        scaling_config=ScalingConfig(num_workers=workers),
        run_config=RunConfig(storage_path=str(storage), name="export_checkpoints"),
    )
    trainer.fit()
    return [j.step_dir for j in jobs]
