"""Load a VLM and its processor from a hub id or a local Hugging Face directory."""

from __future__ import annotations

import torch
from transformers import AutoModelForImageTextToText, PreTrainedModel

from ray_vlm.preprocess.processor import load_processor

__all__ = ["TORCH_DTYPES", "load_model", "load_processor"]

TORCH_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
"""Config dtype names -> torch dtypes."""


def load_model(path: str, dtype: torch.dtype = torch.float32) -> PreTrainedModel:
    """``AutoModelForImageTextToText`` weights from ``path`` (hub id or local directory)."""
    return AutoModelForImageTextToText.from_pretrained(path, dtype=dtype)
