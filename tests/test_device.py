"""``ray_vlm.device``: batches reach their device whole; bound for a GPU, from pinned memory."""

from __future__ import annotations

import pytest
import torch

from ray_vlm.device import to_device


def _batch() -> dict[str, torch.Tensor]:
    return {"input_ids": torch.arange(6).view(2, 3), "pixel_values": torch.rand(2, 3, 4, 4)}


def test_on_the_cpu_tensors_stay_as_they_are() -> None:
    batch = _batch()
    moved = to_device(batch, torch.device("cpu"))
    assert all(moved[k] is batch[k] for k in batch)  # no copy, no pinning (there is no GPU)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_to_a_gpu_the_copy_is_asynchronous_and_exact() -> None:
    batch = _batch()
    moved = to_device(batch, torch.device("cuda", 0))
    torch.cuda.synchronize()
    assert all(moved[k].is_cuda and torch.equal(moved[k].cpu(), batch[k]) for k in batch)
    assert not batch["pixel_values"].is_pinned()  # the caller's tensor is left as it was
