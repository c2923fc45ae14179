"""Save and restore a run's checkpoint from inside a Ray Train worker (layout: ``run_state.py``).

Saving follows Ray's DeepSpeed pattern: every rank writes its part into a local temporary folder
(``engine.save_checkpoint`` writes each rank's ZeRO shards, so weights are never empty under ZeRO-3)
and hands it to ``ray.train.report(checkpoint=..., checkpoint_dir_name=<step>)``, which merges all
ranks' files into ``<dump_dir>/checkpoints/<step>/`` and registers the checkpoint only once every
rank has reported: a crash mid-save leaves an unregistered folder that no resume uses.

Restoring: on the same world size and ZeRO stage, ``engine.load_checkpoint`` (weights, optimizer,
scheduler). ZeRO shards cannot be loaded on another world size (DeepSpeed #5405) or stage; then the
consolidated fp32 weights are loaded into the model before ``deepspeed.initialize`` and the
optimizer starts fresh.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import ray.train
from deepspeed import DeepSpeedEngine
from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint
from ray.train import Checkpoint
from transformers import PretrainedConfig, ProcessorMixin

from ray_vlm.config import FinetuneConfig, load_config, save_config
from ray_vlm.train.run_state import DS_TAG, HF_DIR, TrainState, read_state, step_dir_name


def save_checkpoint(
    engine: DeepSpeedEngine,
    state: TrainState,
    cfg: FinetuneConfig,
    base: tuple[PretrainedConfig, object, ProcessorMixin],
    metrics: dict,
) -> None:
    """Every rank: write this rank's part of checkpoint ``state.step`` and report it to Ray.

    ``base`` is the base model's ``(config, generation_config, processor)``, saved by rank 0 into
    ``hf/`` so that consolidation needs nothing but the checkpoint folder.
    """
    tmp = Path(tempfile.mkdtemp(prefix="ray_vlm_ckpt_"))
    try:
        engine.save_checkpoint(str(tmp), tag=DS_TAG)
        state.save(tmp)
        if state.rank == 0:
            save_config(cfg, tmp / "config.yaml")
            model_config, generation_config, processor = base
            model_config.save_pretrained(tmp / HF_DIR)
            if generation_config is not None:
                generation_config.save_pretrained(tmp / HF_DIR)
            processor.save_pretrained(tmp / HF_DIR)
        ray.train.report(
            metrics,
            checkpoint=Checkpoint.from_directory(str(tmp)),
            checkpoint_dir_name=step_dir_name(state.step),
        )
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


def load_consolidated(model, folder: Path) -> None:
    """Load the fp32 weights of a ZeRO checkpoint of any world size into a plain (pre-DeepSpeed)
    ``model`` (or ``PeftModel``); every key must match."""
    state_dict = get_fp32_state_dict_from_zero_checkpoint(str(folder), tag=DS_TAG)
    model.load_state_dict(state_dict, strict=True)


def load_engine_state(engine: DeepSpeedEngine, folder: Path) -> None:
    """Weights, optimizer and scheduler of a checkpoint saved on the current world size."""
    path, _ = engine.load_checkpoint(str(folder), tag=DS_TAG)
    if path is None:
        raise RuntimeError(f"{folder}/{DS_TAG}: DeepSpeed found no checkpoint to load")
