"""The one place the server loads a model (swap in raw-checkpoint loading here)."""

from __future__ import annotations

import torch
from transformers import PreTrainedModel, ProcessorMixin

from ray_vlm.model import load_model, load_processor

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def load_for_serving(ckpt: str, dtype: str) -> tuple[PreTrainedModel, ProcessorMixin]:
    """Model (in eval mode, on the replica's GPU if it has one) and processor from ``ckpt``.

    ``dtype`` is ``auto`` (bfloat16 on GPU, float32 on CPU) or a key of ``DTYPES``.
    """
    cuda = torch.cuda.is_available()
    if dtype == "auto":
        dtype = "bfloat16" if cuda else "float32"
    model = load_model(ckpt, dtype=DTYPES[dtype]).to("cuda" if cuda else "cpu").eval()
    return model, load_processor(ckpt)
