"""Save and restore a run's checkpoint from inside a training worker (layout: ``run_state.py``).

Saving follows Ray's DeepSpeed pattern: every rank writes its part into a local temporary folder
(``engine.save_checkpoint`` writes each rank's ZeRO shards, so weights are never empty under ZeRO-3)
and hands it to its ``Session``'s ``report``: on Ray Train, ``ray.train.report(checkpoint=...,
checkpoint_dir_name=<step>)``, which merges all ranks' files into ``<dump_dir>/checkpoints/<step>/``
and registers the checkpoint only once every rank has reported: a crash mid-save leaves an
unregistered folder that no resume uses.

Restoring: on the same world size and ZeRO stage, ``engine.load_checkpoint`` (weights, optimizer,
scheduler). ZeRO shards cannot be loaded on another world size (DeepSpeed #5405) or stage; then the
consolidated fp32 weights are loaded into the model before ``deepspeed.initialize`` and the
optimizer starts fresh. One weight at a time (``zero_files.ZeroWeights``): into a model built
partitioned by ZeRO-3, rank 0 reads each weight and DeepSpeed scatters it.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import deepspeed
import torch
import torch.distributed as dist
from deepspeed import DeepSpeedEngine
from transformers import PretrainedConfig, ProcessorMixin

from ray_vlm.config import CONFIG_FILE, FinetuneConfig, load_config, save_config
from ray_vlm.train.data_order import DataOrder
from ray_vlm.train.run_state import (
    DATA_ORDER,
    DS_TAG,
    HF_DIR,
    TrainState,
    read_state,
    step_dir_name,
)
from ray_vlm.train.session import Session
from ray_vlm.train.zero_files import ZeroWeights


def save_checkpoint(
    engine: DeepSpeedEngine,
    state: TrainState,
    order: DataOrder,
    cfg: FinetuneConfig,
    base: tuple[PretrainedConfig, object, ProcessorMixin],
    session: Session,
    metrics: dict,
) -> None:
    """Every rank: write this rank's part of checkpoint ``state.step`` and report it.

    ``order`` is the ``DataOrder`` the ranks' ``state.position`` refer to; ``base`` is the base
    model's ``(config, generation_config, processor)``; rank 0 saves both (``data_order.json``,
    ``hf/``) so that resuming and consolidation need nothing but the checkpoint folder.
    """
    tmp = Path(tempfile.mkdtemp(prefix="ray_vlm_ckpt_"))
    try:
        engine.save_checkpoint(str(tmp), tag=DS_TAG)
        state.save(tmp)
        if state.rank == 0:
            save_config(cfg, tmp / CONFIG_FILE)
            (tmp / DATA_ORDER).write_text(json.dumps(order.to_dict()))
            model_config, generation_config, processor = base
            model_config.save_pretrained(tmp / HF_DIR)
            if generation_config is not None:
                generation_config.save_pretrained(tmp / HF_DIR)
            processor.save_pretrained(tmp / HF_DIR)
        session.report(metrics, tmp, step_dir_name(state.step))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def checkpoint_state(folder: Path) -> TrainState:
    state = read_state(folder)
    if state is None:
        raise RuntimeError(f"{folder}: checkpoint without every rank's train_state_*.json")
    return state


def saved_zero_stage(folder: Path) -> int:
    """The ZeRO stage of the run that saved checkpoint ``folder`` (from its resolved config)."""
    saved = load_config(FinetuneConfig, [f"config={folder / 'config.yaml'}"])
    return saved.distributed.zero_stage


def load_consolidated(model: torch.nn.Module, folder: Path) -> None:
    """Load the fp32 weights of a ZeRO checkpoint of any world size and stage into ``model`` before
    ``deepspeed.initialize`` (a ``PeftModel`` too); every name must match.

    Every rank calls this. A parameter partitioned by ZeRO-3 (``ds_id``) is gathered, rank 0 copies
    the checkpoint's value in and DeepSpeed scatters it (``GatheredParameters(modifier_rank=0)``):
    one full weight at a time, read on rank 0 only. Other tensors (ZeRO 0-2 models, buffers, LoRA
    adapters not yet partitioned) are copied on every rank.
    """
    weights = ZeroWeights(folder / DS_TAG)
    targets, names = model.state_dict(keep_vars=True), set(weights.names())
    missing, unexpected = targets.keys() - names, names - targets.keys()
    if missing or unexpected:
        raise RuntimeError(
            f"{folder / DS_TAG}: does not match the model: missing {sorted(missing)[:5]}, "
            f"unexpected {sorted(unexpected)[:5]}"
        )
    done: set[int] = set()
    for name, target in targets.items():
        if id(target) in done:  # tied weights: one tensor under several names
            continue
        done.add(id(target))
        with torch.no_grad():
            if not hasattr(target, "ds_id"):
                target.copy_(weights.read(name))
                continue
            with deepspeed.zero.GatheredParameters([target], modifier_rank=0):
                if dist.get_rank() == 0:
                    target.copy_(weights.read(name))


def load_engine_state(engine: DeepSpeedEngine, folder: Path) -> None:
    """Weights, optimizer and scheduler of a checkpoint saved on the current world size."""
    path, _ = engine.load_checkpoint(str(folder), tag=DS_TAG)
    if path is None:
        raise RuntimeError(f"{folder}/{DS_TAG}: DeepSpeed found no checkpoint to load")
