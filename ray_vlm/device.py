"""Where tensors live: the one place that picks a device and moves batches onto it.

Training puts every batch and every collective's tensor on its DeepSpeed engine's device (NCCL,
which Ray Train picks for GPU workers, takes CUDA tensors only; gloo takes CPU tensors). Inference
(``generate``, Serve replicas, evaluation) runs on this process's GPU when it has one.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch


def inference_device() -> torch.device:
    """This process's first visible GPU, else the CPU (Ray gives each replica its own GPUs)."""
    return torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu")


def inference_dtype(dtype: str = "auto") -> torch.dtype:
    """``auto``: bfloat16 on a GPU, float32 on the CPU; else the named torch dtype."""
    if dtype == "auto":
        return torch.bfloat16 if inference_device().type == "cuda" else torch.float32
    return getattr(torch, dtype)


def to_device(batch: Mapping[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """Every tensor of ``batch`` on ``device``. Host tensors bound for a GPU are first put in
    page-locked (pinned) memory, from which a ``non_blocking`` copy is truly asynchronous: the host
    queues it and goes on launching the step's kernels (from pageable memory the copy would hold
    the host until done). Pinned buffers come from torch's caching host allocator, so after the
    first steps pinning costs one host copy of the batch."""
    pin = device.type == "cuda"
    return {
        key: (value.pin_memory() if pin and value.device.type == "cpu" else value).to(
            device, non_blocking=True
        )
        for key, value in batch.items()
    }
