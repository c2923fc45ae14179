"""The training loss: the mean cross-entropy over every answer token of the global batch.

A step's global batch is ``batch_size`` examples x ``grad_acc_steps`` micro-batches x every
data-parallel rank. Its loss is ``sum of -log p(answer token) / N``, N the number of answer tokens
in the whole global batch, so every answer token weighs the same whichever rank or micro-batch it
lands in, and a one-word answer weighs one token, not as much as a whole caption. A mean of
per-micro-batch means instead over-weights the tokens of micro-batches with few of them (short
answers); transformers fixed the same defect with ``num_items_in_batch``.

Each micro-batch backpropagates ``summed_token_loss(...) * backward_scale(N, world)``: DeepSpeed
averages gradients over ranks (dividing by ``world``) and is told not to divide by the
accumulation steps, so the gradients add up to those of the global mean.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ray_vlm.preprocess.encode import IGNORE


def answer_tokens(labels: torch.Tensor) -> int:
    """Answer tokens of a batch: labels ``[B, L]``, position ``t`` is predicted at ``t - 1``."""
    return int((labels[:, 1:] != IGNORE).sum())


def summed_token_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Sum of the cross-entropy of every answer token (float32 scalar).

    ``logits`` ``[B, L, V]`` (any float dtype; only the answer positions are upcast),
    ``labels`` ``[B, L]`` with ``IGNORE`` off the answers.
    """
    targets = labels[:, 1:]
    keep = targets != IGNORE
    picked = logits[:, :-1][keep].float()
    return F.cross_entropy(picked, targets[keep], reduction="sum")


def backward_scale(global_tokens: int, world_size: int) -> float:
    """Factor on a rank's summed loss so DeepSpeed's rank-averaged gradients are those of the
    global token mean (a global batch without answer tokens contributes nothing)."""
    return world_size / max(1, global_tokens)
