"""Learning-rate schedule: linear warm-up to ``optim.lr``, then cosine decay to
``optim.lr * optim.lr_min_ratio`` at the last step (PLM's ``cosine`` scheduler).

``warmup_cosine(optim, steps)`` returns the multiplier of ``optim.lr`` for an optimizer step
(0-based: the multiplier used by step ``s + 1``); ``scheduler_factory`` turns it into the callable
``deepspeed.initialize(lr_scheduler=...)`` expects (optimizer -> ``LambdaLR``). DeepSpeed steps the
scheduler once per optimizer step and saves its position in the checkpoint.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from ray_vlm.config.schema import OptimConfig


def warmup_cosine(optim: OptimConfig, steps: int, step: int) -> float:
    """Multiplier of the peak lr at 0-based optimizer step ``step`` of a ``steps``-step run."""
    if step < optim.warmup:
        return (step + 1) / optim.warmup
    progress = min(1.0, (step - optim.warmup) / max(1, steps - optim.warmup))
    cosine = 0.5 * (1 + math.cos(math.pi * progress))
    return optim.lr_min_ratio + (1 - optim.lr_min_ratio) * cosine


def _make(optim: OptimConfig, steps: int, optimizer: Optimizer) -> LambdaLR:
    return LambdaLR(optimizer, partial(warmup_cosine, optim, steps))


def scheduler_factory(optim: OptimConfig, steps: int) -> Callable[[Optimizer], LambdaLR]:
    """``optimizer -> LambdaLR`` following ``warmup_cosine``."""
    return partial(_make, optim, steps)
