"""The training recipe every worker runs: setup, then optimizer steps, saving as it goes.

``Recipe(cfg, data, session)`` runs on a Ray Train worker (``ray_session.train_loop``) or on a
``torchrun`` process without Ray (``local_session``); ``data`` is the driver's ``DataStart``
(plan, ``DataOrder``, rank positions), ``session`` the runner's ``Session``. Per worker:

1. setup: load the model from ``checkpoint.init_ckpt_path`` in the run's precision (under ZeRO-3
   partitioned while it is built, rank 0 reading the weights: ``model.load_model``), choose what
   trains (``train.trainable.apply_trainable``), build the DeepSpeed engine (ZeRO stage, AdamW,
   clipping: ``deepspeed_config.py``; warm-up + cosine lr: ``schedule.py``) restored from the
   session's checkpoint if there is one (``engine.py``), and open this rank's rows exactly where
   that checkpoint stood (``data_order.py``, ``batches.py``);
2. each step: ``grad_acc_steps`` micro-batches of ``batch_size`` examples, moved to the engine's
   device; one all-reduce of their answer-token count, then per micro-batch forward,
   ``engine.backward`` of its summed answer-token loss scaled to the global mean (``loss.py``),
   ``engine.step``; one all-reduce of ``[loss sum, answer tokens, examples, tokens]`` for the logs
   (collectives on the engine's device: NCCL takes CUDA tensors only);
3. every ``logging.freq`` steps rank 0 writes metrics; when ``eval.datamix`` is set, every
   ``eval.every`` steps and at the last step all ranks compute the validation loss
   (``validation.py``) and rank 0 logs it; every ``checkpoint.dump.every`` steps and at the last
   step every rank saves its part of a checkpoint with its data position (``checkpoint.py``).
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
import torch.distributed as dist

from ray_vlm.config import FinetuneConfig
from ray_vlm.device import to_device
from ray_vlm.model import load_model, load_processor
from ray_vlm.preprocess.stream_plan import pieces
from ray_vlm.train.batches import MicroBatch, MicroBatches
from ray_vlm.train.checkpoint import save_checkpoint
from ray_vlm.train.data_order import DataOrder, RankPosition
from ray_vlm.train.data_plan import DataStart
from ray_vlm.train.deepspeed_config import deepspeed_config, run_dtype
from ray_vlm.train.engine import build_engine
from ray_vlm.train.grad_norm import GradNorm
from ray_vlm.train.host_memory import setup_allocations
from ray_vlm.train.loss import backward_scale, summed_token_loss
from ray_vlm.train.metrics import RunLog
from ray_vlm.train.run_state import TrainState, data_position
from ray_vlm.train.session import Session
from ray_vlm.train.tracking import Trackers
from ray_vlm.train.trainable import apply_trainable, trainable_report
from ray_vlm.train.validation import Validation


def _start_position(
    data: DataStart, folder: Path | None, state: TrainState | None, rank: int, world: int
) -> tuple[DataOrder, RankPosition]:
    """Where this rank's data starts: the position in the checkpoint it restored when that was
    saved on this world size (also after a restart the driver did not see), else the driver's
    (a fresh run, or untrained positions dealt anew to another world size)."""
    if folder is not None and state is not None and state.world_size == world:
        order, positions = data_position(folder)
        return order.extended(data.order.end), positions[rank]
    return data.order, data.positions[rank]


class Recipe:
    def __init__(self, cfg: FinetuneConfig, data: DataStart, session: Session) -> None:
        self.cfg = cfg
        self.session = session
        self.rank, self.world = session.rank, session.world
        torch.manual_seed(cfg.seed)
        processor = load_processor(cfg.checkpoint.init_ckpt_path, cfg.model.processor_kwargs)
        ds_config = deepspeed_config(cfg, self.world)
        zero3 = ds_config if cfg.distributed.zero_stage == 3 else None
        with setup_allocations(), session.restored() as folder:
            model = load_model(
                cfg.checkpoint.init_ckpt_path,
                run_dtype(cfg.distributed),
                zero3,
                cfg.model.attn_implementation,
            )
            self.base = (model.config, model.generation_config, processor)
            if cfg.model.gradient_checkpointing:
                model.gradient_checkpointing_enable({"use_reentrant": False})
            model = apply_trainable(model, cfg.model)
            report = trainable_report(model)
            self.engine, state, notes = build_engine(model, ds_config, cfg, self.world, folder)
            self.order, start = _start_position(data, folder, state, self.rank, self.world)
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
        self.validation = (  # before the training pipeline: its rows are read once, up front
            Validation(cfg, data.validation, session, processor) if data.validation else None
        )
        rows = session.rows(pieces(data.plan, self.order.sequence(self.rank, start.next_index)))
        self.batches = MicroBatches(
            rows,
            cfg,
            processor,
            start,
            lambda position: self.order.index(self.rank, position),
        )

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
            if self.validation is not None and self.validation.due(self.step):
                started += self._validate()  # not counted in the training rates
            if (every > 0 and self.step % every == 0) or self.step == cfg.steps:
                state = TrainState(
                    self.step, self.samples, self.world, self.rank, cfg.seed, self.batches.position
                )
                save_checkpoint(self.engine, state, self.order, cfg, self.base, self.session, row)
        self.batches.close()
        if self.log is not None:
            self.log.close()

    def _validate(self) -> float:
        """Validation at this step, logged by rank 0; returns the seconds it took."""
        began = time.perf_counter()
        row = self.validation.run(self.engine, self.step)
        if self.log is not None:
            self.log.validation(self.step, row, self.cfg.steps)
        return time.perf_counter() - began

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
