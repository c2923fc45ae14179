"""Load a VLM and its processor from a hub id or a local Hugging Face directory."""

from __future__ import annotations

import torch
from transformers import AutoModelForImageTextToText, AutoProcessor, PreTrainedModel, ProcessorMixin


def load_processor(path: str) -> ProcessorMixin:
    """The model's own ``AutoProcessor`` (chat template, image processing, tokenizer)."""
    return AutoProcessor.from_pretrained(path)


def load_model(path: str, dtype: torch.dtype = torch.float32) -> PreTrainedModel:
    """``AutoModelForImageTextToText`` weights from ``path`` (hub id or local directory)."""
    return AutoModelForImageTextToText.from_pretrained(path, dtype=dtype)
