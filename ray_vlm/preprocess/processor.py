"""The model's own processor (chat template, image processing, tokenizer)."""

from __future__ import annotations

from transformers import AutoProcessor, ProcessorMixin


def load_processor(path: str) -> ProcessorMixin:
    """``AutoProcessor`` of a hub id or a local Hugging Face directory."""
    return AutoProcessor.from_pretrained(path)
