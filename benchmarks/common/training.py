"""What the training benchmarks share: batches as training makes them and steady-state samples/s.

Not a benchmark (``benchmarks/common/`` holds what scripts share); imported by
``train_throughput.py`` and ``gpu_step.py`` as ``from common.training import ...`` (a script's
folder is first on ``sys.path``). Imports no Ray: ``gpu_step.py`` runs where Ray is not installed.

Both rates leave out the first ``WARMUP`` steps (model load, allocator and kernel warm-up, the
pipeline filling).
"""

from __future__ import annotations

import time

import torch

from ray_vlm.device import to_device
from ray_vlm.preprocess.batching import collate, length_grouped
from ray_vlm.preprocess.encode import Encoder
from ray_vlm.records import DatasetSpec, read_records

WARMUP = 3

Inputs = dict[str, torch.Tensor]


def encoded_batches(encoder: Encoder, spec: DatasetSpec, size: int, count: int) -> list[Inputs]:
    """``count`` full batches of ``size`` records of ``spec`` (cycled), encoded by ``encoder`` and
    padded by ``preprocess.batching.collate``, as the training pipeline makes them (CPU tensors)."""
    examples = [encoder.encode(record).row(record) for record in read_records(spec)]
    batches = [b for b in length_grouped(examples, size, 1) if len(b) == size]
    return [collate(batches[i % len(batches)], encoder) for i in range(count)]


def synchronize(device: torch.device) -> None:
    """Wait for ``device``'s queued work (a no-op on CPU): before reading a clock."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bare_samples_per_s(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    batches: list[Inputs],
    clip: float = 0.0,
) -> float:
    """Samples/s of a plain loop over ``batches`` (each moved to the model's device in the step):
    forward with labels, ``loss.backward()``, clipping of the trainable gradients when ``clip``,
    ``optimizer.step()``; timed from the end of step ``WARMUP`` (CUDA synchronised) to the end."""
    model.train()
    device = next(model.parameters()).device
    trainable = [p for p in model.parameters() if p.requires_grad]
    started = 0.0
    for i, inputs in enumerate(batches):
        if i == WARMUP:
            synchronize(device)
            started = time.perf_counter()
        model(**to_device(inputs, device)).loss.backward()
        if clip:
            torch.nn.utils.clip_grad_norm_(trainable, clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    synchronize(device)
    samples = sum(len(b["input_ids"]) for b in batches[WARMUP:])
    return samples / (time.perf_counter() - started)


def steady_samples_per_s(metrics: list[dict]) -> float:
    """A run's samples/s over its steps after ``WARMUP``, from its ``metrics.jsonl`` rows logged
    every step (``logging.freq=1``) with the same number of samples each: the harmonic mean of
    their ``samples_per_s`` (total samples over total seconds)."""
    rows = [m for m in metrics if m["step"] > WARMUP and "samples_per_s" in m]
    return len(rows) / sum(1 / m["samples_per_s"] for m in rows)
