"""The training recipe every Ray Train worker runs: setup, then optimizer steps, saving as it goes.

``train_loop({"cfg": FinetuneConfig, "plan_offset": int})`` is the ``TorchTrainer``'s
``train_loop_per_worker`` (``plan_offset``: examples the driver already cut from the front of the
data plan, see ``run_state.py``). Per worker:

1. setup: load the model from ``checkpoint.init_ckpt_path`` in the run's precision (under ZeRO-3
   partitioned while it is built, rank 0 reading the weights: ``model.load_model``), choose what trains
   (``train.trainable.apply_trainable``), restore from ``ray.train.get_checkpoint()`` when Ray
   hands one over (a restarted worker group or a re-run on the same ``dump_dir``), wrap it in a
   DeepSpeed engine (ZeRO stage, AdamW, clipping: ``deepspeed_config.py``; warm-up + cosine lr:
   ``schedule.py``), and position the data stream past what was consumed;
2. each step: ``grad_acc_steps`` micro-batches of ``batch_size`` examples, moved to the engine's
   device; one all-reduce of their answer-token count, then per micro-batch forward,
   ``engine.backward`` of its summed answer-token loss scaled to the global mean (``loss.py``),
   ``engine.step``; one all-reduce of ``[loss sum, answer tokens, examples, tokens]`` for the logs
   and the data position (collectives on the engine's device: NCCL takes CUDA tensors only);
3. every ``logging.freq`` steps rank 0 writes metrics; every ``checkpoint.dump.every`` steps and at
   the last step every rank saves its part of a checkpoint (``checkpoint.py``).
"""

from __future__ import annotations

import contextlib
import inspect
import time
from pathlib import Path

import deepspeed
import ray.train
import torch
import torch.distributed as dist

from ray_vlm.config import FinetuneConfig
from ray_vlm.device import to_device
from ray_vlm.model import load_model, load_processor
from ray_vlm.train.batches import MicroBatch, MicroBatches
from ray_vlm.train.checkpoint import (
    checkpoint_state,
    load_consolidated,
    load_engine_state,
    save_checkpoint,
    saved_zero_stage,
)
from ray_vlm.train.deepspeed_config import deepspeed_config, run_dtype
from ray_vlm.train.grad_norm import GradNorm
from ray_vlm.train.host_memory import setup_allocations
from ray_vlm.train.loss import backward_scale, summed_token_loss
from ray_vlm.train.metrics import RunLog
from ray_vlm.train.run_state import TrainState, skip_rows
from ray_vlm.train.schedule import scheduler_factory
from ray_vlm.train.tracking import Trackers
from ray_vlm.train.trainable import apply_trainable, trainable_report


def train_loop(config: dict) -> None:
    Recipe(config["cfg"], config["plan_offset"]).train()


class Recipe:
    def __init__(self, cfg: FinetuneConfig, plan_offset: int) -> None:
        ctx = ray.train.get_context()
        self.cfg = cfg
        self.rank, self.world = ctx.get_world_rank(), ctx.get_world_size()
        torch.manual_seed(cfg.seed)
        processor = load_processor(cfg.checkpoint.init_ckpt_path, cfg.model.processor_kwargs)
        ds_config = deepspeed_config(cfg, self.world)
        zero3 = ds_config if cfg.distributed.zero_stage == 3 else None
        with setup_allocations():
            model = load_model(cfg.checkpoint.init_ckpt_path, run_dtype(cfg.distributed), zero3)
            self.base = (model.config, model.generation_config, processor)
            token_types = "token_type_ids" in inspect.signature(model.forward).parameters
            if cfg.model.gradient_checkpointing:
                model.gradient_checkpointing_enable({"use_reentrant": False})
            model = apply_trainable(model, cfg.model)
            report = trainable_report(model)
            self.engine, state, notes = self._engine(model, ds_config)
        self.grad_norm = GradNorm(self.engine)
        self.step = state.step if state else 0
        self.samples = state.samples if state else 0
        self.log = (
            RunLog(cfg.dump_dir, self.step, Trackers(cfg, self.step)) if self.rank == 0 else None
        )
        self._note(f"[{cfg.name}] {self.world} workers, {_setup(cfg)}")
        for name, trainable, total in report:
            self._note(f"  {name}: {trainable:,} of {total:,} parameters train")
        for note in notes:
            self._note(note)
        skip = skip_rows(self.samples, plan_offset, self.world)
        shard = ray.train.get_dataset_shard("train")
        self.batches = MicroBatches(shard, cfg, processor, skip, token_types)

    def _engine(
        self, model, ds_config: dict
    ) -> tuple[deepspeed.DeepSpeedEngine, TrainState | None, list[str]]:
        """The DeepSpeed engine on ``ds_config`` (the dict the model was loaded with), restored
        from Ray's checkpoint when there is one."""
        checkpoint = ray.train.get_checkpoint()
        notes: list[str] = []
        opened = checkpoint.as_directory() if checkpoint else contextlib.nullcontext(None)
        with opened as folder:
            state = checkpoint_state(Path(folder)) if folder else None
            stage = self.cfg.distributed.zero_stage
            saved = (state.world_size, saved_zero_stage(Path(folder))) if state else None
            reshard = saved is not None and saved != (self.world, stage)
            if reshard:
                load_consolidated(model, Path(folder))
            engine, *_ = deepspeed.initialize(
                model=model,
                model_parameters=[p for p in model.parameters() if p.requires_grad],
                config=ds_config,
                lr_scheduler=scheduler_factory(self.cfg.optim, self.cfg.steps),
            )
            if state is not None and not reshard:
                load_engine_state(engine, Path(folder))
        if state is not None:
            notes.append(f"resumed from step {state.step} ({state.samples} examples consumed)")
        if reshard:
            # LambdaLR recomputes the lr from its position; the optimizer moments are lost.
            engine.lr_scheduler.last_epoch = state.step - 1
            engine.lr_scheduler.step()
            notes.append(
                f"WARNING: the checkpoint was saved by {saved[0]} workers with ZeRO stage {saved[1]}, "
                f"this run has {self.world} with stage {stage}: ZeRO shards cannot be re-split, so "
                "the consolidated fp32 weights were loaded and the optimizer state starts fresh "
                "(the lr schedule continues)"
            )
        engine.train()
        return engine, state, notes

    def _note(self, text: str) -> None:
        if self.log is not None:
            self.log.note(text)

    def train_step(self) -> tuple[torch.Tensor, list[MicroBatch]]:
        """One optimizer step; returns this rank's ``[summed answer-token loss, answer tokens,
        examples, tokens]`` (float64, on the engine's device) and its micro-batches."""
        device = self.engine.device
        micro = [next(self.batches) for _ in range(self.cfg.grad_acc_steps)]
        counts = [[m.answer_tokens, m.examples, m.tokens] for m in micro]
        totals = torch.tensor([[0.0, *c] for c in counts], dtype=torch.float64).sum(0).to(device)
        global_tokens = totals[1].clone()
        dist.all_reduce(global_tokens)
        scale = backward_scale(int(global_tokens), self.world)
        for batch in micro:
            inputs = to_device(batch.inputs, device)
            labels = inputs.pop("labels")
            summed = summed_token_loss(self.engine(**inputs).logits, labels)
            self.engine.backward(summed * scale, scale_wrt_gas=False)
            self.grad_norm.before_step()
            self.engine.step()
            totals[0] += summed.detach().double()
        return totals, micro

    def train(self) -> None:
        cfg = self.cfg
        every = cfg.checkpoint.dump.every
        window = torch.zeros(2, dtype=torch.float64)
        started = time.perf_counter()
        while self.step < cfg.steps:
            lr = self.engine.get_lr()[0]  # the lr of this step (DeepSpeed moves it on in step())
            totals, micro = self.train_step()
            dist.all_reduce(totals)
            loss_sum, answer_tokens, examples, tokens = totals.tolist()
            self.step += 1
            self.samples += int(examples)
            window += torch.tensor([examples, tokens], dtype=torch.float64)
            row = {
                "step": self.step,
                "loss": loss_sum / max(1.0, answer_tokens),
                "lr": lr,
                "grad_norm": self.grad_norm.value(),
            }
            if cfg.logging.record_ids:
                self._log_record_ids([m.ids for m in micro])
            if self.step % cfg.logging.freq == 0 or self.step == cfg.steps:
                elapsed = time.perf_counter() - started
                rates = {"samples_per_s": window[0] / elapsed, "tokens_per_s": window[1] / elapsed}
                if self.log is not None:
                    self.log.metrics({**row, **{k: float(v) for k, v in rates.items()}}, cfg.steps)
                window.zero_()
                started = time.perf_counter()
            if (every > 0 and self.step % every == 0) or self.step == cfg.steps:
                state = TrainState(self.step, self.samples, self.world, self.rank, cfg.seed)
                save_checkpoint(self.engine, state, cfg, self.base, row)
        if self.log is not None:
            self.log.close()

    def _log_record_ids(self, ids: list[tuple[str, ...]]) -> None:
        """Rank 0 writes which records every rank's micro-batches of this step held."""
        gathered: list[list[tuple[str, ...]] | None] = [None] * self.world
        dist.all_gather_object(gathered, ids)
        if self.log is not None:
            self.log.record_ids(self.step, gathered)


def _setup(cfg: FinetuneConfig) -> str:
    """The run's distributed setup in words, for the top of ``train.log``."""
    switches = {
        "optimizer offloaded to CPU": cfg.distributed.offload_optimizer,
        "parameters offloaded to CPU": cfg.distributed.offload_params,
        "gradient checkpointing": cfg.model.gradient_checkpointing,
    }
    return ", ".join(
        [f"ZeRO stage {cfg.distributed.zero_stage}"] + [k for k, on in switches.items() if on]
    )
