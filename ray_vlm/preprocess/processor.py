"""The model's own processor (chat template, image processing, tokenizer), with the run's settings.

``load_processor(path, processor_kwargs)`` loads ``AutoProcessor`` and overrides its saved
settings with ``processor_kwargs`` (``model.processor_kwargs`` in a fine-tune config,
``processor_kwargs`` in a serve config): e.g. Perception LM's ``{"max_num_tiles": 1,
"vision_input_type": "vanilla"}``, the one-tile input of PLM's fine-tuning recipe. The settings
stay with the processor: ``save_pretrained`` writes them, so a checkpoint's ``hf/`` and an export
carry them. ``AutoProcessor`` ignores a key it does not know; here that is an error.

``image_token_settings(processor)``: the image processor's settings that decide how many tokens an
image becomes (tiling, resolution caps), named in the ``too_long`` hint.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from transformers import AutoProcessor, ProcessorMixin

from ray_vlm.config import UserError

PARTS = ("image_processor", "video_processor", "tokenizer")
"""Sub-processors whose settings ``processor_kwargs`` may set, besides the processor's own."""
TOKEN_COUNT_SETTINGS = (
    "vision_input_type",  # Perception LM: thumb+tile or vanilla (one tile)
    "max_num_tiles",  # Perception LM
    "do_image_splitting",  # Idefics3, SmolVLM
    "max_image_tiles",  # Mllama
    "max_pixels",  # Qwen2-VL, Qwen2.5-VL
)


class ProcessorSettingError(UserError):
    """A ``processor_kwargs`` key that no part of the processor has."""


def load_processor(path: str, processor_kwargs: Mapping[str, Any] | None = None) -> ProcessorMixin:
    """``AutoProcessor`` of a hub id or a local Hugging Face directory, ``processor_kwargs``
    overriding its saved settings; ``ProcessorSettingError`` for a key it does not have."""
    kwargs = dict(processor_kwargs or {})
    processor = AutoProcessor.from_pretrained(path, **kwargs)
    parts = [processor, *(getattr(processor, p) for p in PARTS if hasattr(processor, p))]
    unknown = [k for k in kwargs if not any(hasattr(part, k) for part in parts)]
    if unknown:
        names = ", ".join(type(p).__name__ for p in parts)
        raise ProcessorSettingError(
            f"processor_kwargs: {', '.join(map(repr, unknown))} is not a setting of {path}'s "
            f"processor ({names}); check the name against its processor_config.json"
        )
    return processor


def image_token_settings(processor: ProcessorMixin) -> dict[str, Any]:
    """The image processor's settings (of ``TOKEN_COUNT_SETTINGS``) it has, with their values."""
    image_processor = getattr(processor, "image_processor", None)
    return {
        k: getattr(image_processor, k)
        for k in TOKEN_COUNT_SETTINGS
        if getattr(image_processor, k, None) is not None
    }
