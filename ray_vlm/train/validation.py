"""Validation during training: the loss over the answer tokens of held-out records (``eval``).

``Validation(cfg, plan, session, processor)`` is built by every rank at setup, before
its training pipeline starts. The plan is every record of ``eval.datamix`` once (``run_start``);
rank ``r`` takes its positions ``r, r + world, ...`` (``DataOrder.fresh(n, world).sequence(r)``),
reads them once through ``session.rows`` (the preprocessing training uses: same processor,
``data.max_seq_len``, ``data.bad_records``) and keeps them, sorted by length and collated into
batches of ``batch_size`` (the set is small: each rank holds its share in memory). None of these
records is trained on: ``preflight.check_validation`` refuses a validation source whose annotation
file ``data.datamix`` reads.

``due(step)``: every ``eval.every`` steps and at the last step (``eval.every = 0``: only the last).
``run(engine, step)``: ``engine.eval()``, under ``torch.no_grad()`` the summed answer-token loss of
every batch (``loss.summed_token_loss``), ``engine.train()``; ``[loss sum, answer tokens, examples]``
all-reduced on the engine's device (NCCL takes CUDA tensors only). Returns the metrics row
``{"step", "val_loss", "val_examples", "val_tokens"}`` (``val_loss`` = summed loss / answer tokens
of all ranks, the training loss's definition; ``val_tokens`` counts those answer tokens), or
``None`` when the records hold no answer token.

ZeRO-3 gathers every parameter collectively, so every rank runs the same number of forward passes
through the same modules: a rank with fewer batches (an uneven share, rejected records) runs the
dummy image example of ``batches.py`` (labels all ``IGNORE``, no loss) until all ranks are done,
and a batch without images gets that example appended, as in training.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
import torch.distributed as dist
from deepspeed import DeepSpeedEngine
from transformers import ProcessorMixin

from ray_vlm.config import FinetuneConfig
from ray_vlm.device import to_device
from ray_vlm.preprocess.stream_plan import Chunk, pieces
from ray_vlm.train.batches import Inputs, ModelInputs
from ray_vlm.train.data_order import DataOrder
from ray_vlm.train.loss import answer_tokens, summed_token_loss
from ray_vlm.train.session import Session


class Validation:
    def __init__(
        self,
        cfg: FinetuneConfig,
        plan: Iterable[Chunk],
        session: Session,
        processor: ProcessorMixin,
    ) -> None:
        self.cfg = cfg
        self.inputs = ModelInputs(processor, cfg.data.max_seq_len)
        plan = list(plan)
        order = DataOrder.fresh(sum(c.limit for c in plan), session.world)
        rows = sorted(
            session.rows(pieces(plan, order.sequence(session.rank))),
            key=lambda row: int(row["num_tokens"]),
        )
        size = cfg.batch_size
        self.batches = [self._batch(rows[i : i + size]) for i in range(0, len(rows), size)]
        """``(inputs, examples)`` per batch, on the CPU."""
        self.filler = self._batch([])
        """The dummy example alone: what a rank out of batches runs."""

    def _batch(self, examples: list[dict[str, Any]]) -> tuple[Inputs, int]:
        return self.inputs(examples), len(examples)

    def due(self, step: int) -> bool:
        every = self.cfg.eval.every
        return step == self.cfg.steps or (every > 0 and step % every == 0)

    def run(self, engine: DeepSpeedEngine, step: int) -> dict | None:
        """The validation metrics row at ``step`` (every rank calls this; every rank gets it)."""
        device = engine.device
        count = torch.tensor([len(self.batches)], dtype=torch.int64, device=device)
        dist.all_reduce(count, op=dist.ReduceOp.MAX)
        totals = torch.zeros(3, dtype=torch.float64, device=device)
        engine.eval()
        try:
            with torch.no_grad():
                for k in range(int(count)):
                    inputs, examples = self.batches[k] if k < len(self.batches) else self.filler
                    inputs = to_device(inputs, device)
                    labels = inputs.pop("labels")
                    totals[0] += summed_token_loss(engine(**inputs).logits, labels).double()
                    totals[1] += answer_tokens(labels)
                    totals[2] += examples
        finally:
            engine.train()
        dist.all_reduce(totals)
        loss_sum, tokens, examples = totals.tolist()
        if tokens == 0:
            return None
        return {
            "step": step,
            "val_loss": loss_sum / tokens,
            "val_examples": int(examples),
            "val_tokens": int(tokens),
        }
