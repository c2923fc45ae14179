"""The DeepSpeed engine of a run, restored from a checkpoint when there is one.

On the world size and ZeRO stage the checkpoint was saved with, ``engine.load_checkpoint`` brings
back weights, optimizer and scheduler. ZeRO shards cannot be re-split (DeepSpeed #5405), so on
another world size or stage the consolidated fp32 weights are loaded into the model before
``deepspeed.initialize`` and the optimizer starts fresh; the lr schedule continues.
"""

from __future__ import annotations

from pathlib import Path

import deepspeed

from ray_vlm.config import FinetuneConfig
from ray_vlm.train.checkpoint import (
    checkpoint_state,
    load_consolidated,
    load_engine_state,
    saved_zero_stage,
)
from ray_vlm.train.run_state import TrainState
from ray_vlm.train.schedule import scheduler_factory


def build_engine(
    model, ds_config: dict, cfg: FinetuneConfig, world: int, folder: Path | None
) -> tuple[deepspeed.DeepSpeedEngine, TrainState | None, list[str]]:
    """The engine on ``ds_config`` (the dict the model was loaded with), restored from checkpoint
    ``folder`` if given; returns it, the checkpoint's state and notes for ``train.log``."""
    notes: list[str] = []
    state = checkpoint_state(folder) if folder else None
    stage = cfg.distributed.zero_stage
    saved = (state.world_size, saved_zero_stage(folder)) if state else None
    reshard = saved is not None and saved != (world, stage)
    if reshard:
        load_consolidated(model, folder)
    engine, *_ = deepspeed.initialize(
        model=model,
        model_parameters=[p for p in model.parameters() if p.requires_grad],
        config=ds_config,
        lr_scheduler=scheduler_factory(cfg.optim, cfg.steps),
    )
    if state is not None and not reshard:
        load_engine_state(engine, folder)
    if state is not None:
        notes.append(f"resumed from step {state.step} ({state.samples} examples consumed)")
    if reshard:
        # LambdaLR recomputes the lr from its position; the optimizer moments are lost.
        engine.lr_scheduler.last_epoch = state.step - 1
        engine.lr_scheduler.step()
        notes.append(
            f"WARNING: the checkpoint was saved by {saved[0]} workers with ZeRO stage {saved[1]}, "
            f"this run has {world} with stage {stage}: ZeRO shards cannot be re-split, so "
            "the consolidated fp32 weights were loaded and the optimizer state starts fresh "
            "(the lr schedule continues)"
        )
    engine.train()
    return engine, state, notes
