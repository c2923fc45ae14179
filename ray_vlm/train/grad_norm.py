"""The global gradient norm (before clipping) of every optimizer step, at every ZeRO stage and
precision.

DeepSpeed 0.19's ``engine.get_global_grad_norm()`` is the norm its wrapping optimizer computed
(``_take_model_step`` copies ``optimizer._global_grad_norm``): ZeRO 1/2 (``stage_1_and_2``) and 3
(``stage3``), bf16 with ZeRO-1 (``BF16_Optimizer``) and fp16/bf16 without ZeRO (``FP16_Optimizer``)
all keep one. With ZeRO-0 in fp32 the engine steps the bare torch optimizer
(``_do_optimizer_sanity_check`` picks no wrapper), which has none, and its fp32 clipping
(``clip_fp32_gradients``) discards the norm it computes. There ``GradNorm`` computes it: under
ZeRO-0 the last micro-batch's ``engine.backward`` all-reduces the gradients over the ranks
(``allreduce_gradients`` at the accumulation boundary), so every rank holds the same averaged
gradients and the norm of this rank's ``.grad`` tensors before ``engine.step`` is the global one.
"""

from __future__ import annotations

import deepspeed
import torch


class GradNorm:
    """Call ``before_step()`` before every ``engine.step()``; ``value()`` is the norm of the last
    optimizer step (NaN before the first)."""

    def __init__(self, engine: deepspeed.DeepSpeedEngine) -> None:
        self.engine = engine
        self.own = engine.zero_optimization_stage() == 0 and not hasattr(
            engine.optimizer, "_global_grad_norm"
        )
        self._norm: float | None = None

    def before_step(self) -> None:
        """Where DeepSpeed keeps no norm, the 2-norm of the replicated gradients at the
        accumulation boundary (after their all-reduce, before clipping and the update)."""
        if not (self.own and self.engine.is_gradient_accumulation_boundary()):
            return
        grads = [p.grad for p in self.engine.module.parameters() if p.grad is not None]
        norms = [torch.linalg.vector_norm(g.detach(), dtype=torch.float32) for g in grads]
        self._norm = float(torch.linalg.vector_norm(torch.stack(norms))) if norms else 0.0

    def value(self) -> float:
        norm = self._norm if self.own else self.engine.get_global_grad_norm()
        return float("nan") if norm is None else float(norm)
