"""How each family's processor output travels and is batched: one small adapter per layout.

A processor called on one record returns ``input_ids`` (and ``attention_mask``) plus the keys its
model needs for images. Every such key is one of three kinds, which decides how an example carries
it and how ``batching.collate`` joins a batch's examples (every axis but the joined one is padded
to the batch's longest, ``0`` as padding; Idefics3, Mllama and LLaVA-NeXT drop zero padding):

- ``TOKEN``: one value per token, ``[T, ...]`` in an example -> ``[B, L, ...]``, right-padded
  (``token_type_ids``: Gemma 3's image tokens, PaliGemma's prefix; ``mm_token_type_ids``;
  Mllama's ``cross_attention_mask`` ``[T, images, tiles]``);
- ``IMAGE``: rows for the example's images, ``[n, ...]`` -> concatenated ``[sum n, ...]`` in batch
  order (LLaVA's ``[images, C, H, W]``, Qwen-VL's flattened patches ``[patches, C*2*p*p]`` and
  ``image_grid_thw`` ``[images, 3]``, LLaVA-NeXT's anyres ``[images, patches, C, H, W]`` and
  ``image_sizes``);
- ``SAMPLE``: one value per example, stacked -> ``[B, ...]`` (Idefics3 / SmolVLM ``pixel_values``
  ``[images, C, H, W]`` and ``pixel_attention_mask``; Mllama ``[images, tiles, C, H, W]``,
  ``aspect_ratio_ids``, ``aspect_ratio_mask``; OneVision's ``batch_num_images``).

The layout is chosen from the processor's class (``layout_for``), never from the keys an output
happens to hold; ``check_keys`` refuses a processor output with a key its layout does not place,
so a family whose inputs would be dropped stops before training, not inside a Ray task.
A processor class not listed gets ``tiles`` (LLaVA's layout) when its output fits it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ray_vlm.config import UserError

TOKEN, IMAGE, SAMPLE = "token", "image", "sample"
TEXT_KEYS = ("input_ids", "attention_mask", "labels")
"""Keys every layout handles itself: the encoder rebuilds labels, collate the attention mask."""


class LayoutError(UserError):
    """A processor whose output ray_vlm cannot batch for its model."""


@dataclass(frozen=True)
class Layout:
    name: str
    keys: Mapping[str, str]
    """Model input key -> ``TOKEN`` / ``IMAGE`` / ``SAMPLE`` (besides ``TEXT_KEYS``)."""
    tile_stacks: bool = False
    """Perception LM: each image is a stack of tiles whose count depends on the image, so the
    processor is called with ``return_tensors=None``; an example carries its images' tiles as
    ``[tiles, C, H, W]`` and the batch is ``[tiles, 1, C, H, W]`` (the model flattens images and
    tiles into one axis, and stacks of different counts cannot share a tiles axis)."""
    chw_pixels: bool = True
    """``pixel_values`` ends in ``[C, H, W]`` and holds no padding of the processor's, so it may
    travel as uint8 (``pixels.py``); Qwen's flattened patches and anyres patches do not."""

    @property
    def return_tensors(self) -> str | None:
        """What to ask the processor for when encoding one record."""
        return None if self.tile_stacks else "np"

    def example_arrays(self, inputs: Mapping[str, Any], num_tokens: int) -> dict[str, np.ndarray]:
        """The model input arrays of one record's processor output (a batch of one), each in its
        kind's example form; ``check_keys`` has passed on this processor."""
        out = {}
        for key, kind in self.keys.items():
            if key not in inputs:
                continue
            value = inputs[key]
            if kind == IMAGE and self.tile_stacks:
                out[key] = np.concatenate([np.asarray(v) for v in value]) if len(value) else None
            elif kind == IMAGE:
                out[key] = np.asarray(value)
            else:  # TOKEN, SAMPLE: the batch axis of one record goes
                out[key] = np.asarray(value[0])
            if kind == TOKEN and out[key].shape[0] != num_tokens:
                raise LayoutError(
                    f"{key} has {out[key].shape[0]} rows for {num_tokens} tokens: not per token"
                )
        return {k: v for k, v in out.items() if v is not None}


LAYOUTS: dict[str, Layout] = {
    layout.name: layout
    for layout in (
        Layout("tiles", {"pixel_values": IMAGE, "token_type_ids": TOKEN}),
        Layout("tile_stacks", {"pixel_values": IMAGE}, tile_stacks=True),
        # Qwen-VL: its M-RoPE positions come from these, image_grid_thw and the attention mask.
        Layout(
            "patches",
            {"pixel_values": IMAGE, "image_grid_thw": IMAGE, "mm_token_type_ids": TOKEN},
            chw_pixels=False,
        ),
        # The model unpads each image's patches by its image_sizes. Float pixels: the processor
        # zero-pads the patches of a record's images to one count, which deferred normalising
        # would not keep zero.
        Layout(
            "anyres",
            {"pixel_values": IMAGE, "image_sizes": IMAGE, "batch_num_images": SAMPLE},
            chw_pixels=False,
        ),
        Layout("image_splits", {"pixel_values": SAMPLE, "pixel_attention_mask": SAMPLE}),
        Layout(
            "cross_attention_tiles",
            {
                "pixel_values": SAMPLE,
                "aspect_ratio_ids": SAMPLE,
                "aspect_ratio_mask": SAMPLE,
                "cross_attention_mask": TOKEN,
            },
        ),
    )
}
PROCESSOR_LAYOUTS = {
    "LlavaProcessor": "tiles",
    "PaliGemmaProcessor": "tiles",
    "Gemma3Processor": "tiles",
    "InternVLProcessor": "tiles",
    "PerceptionLMProcessor": "tile_stacks",
    "Qwen2VLProcessor": "patches",
    "Qwen2_5_VLProcessor": "patches",
    "Qwen3VLProcessor": "patches",
    "LlavaNextProcessor": "anyres",
    "LlavaOnevisionProcessor": "anyres",
    "Idefics3Processor": "image_splits",
    "SmolVLMProcessor": "image_splits",
    "MllamaProcessor": "cross_attention_tiles",
}


def layout_for(processor: Any) -> Layout:
    """The layout of ``processor``'s class (``tiles`` for a class not listed)."""
    return LAYOUTS[PROCESSOR_LAYOUTS.get(type(processor).__name__, "tiles")]


def layout_listed(processor: Any) -> bool:
    """Whether ``processor``'s class has a layout of its own (else it gets ``tiles``)."""
    return type(processor).__name__ in PROCESSOR_LAYOUTS


def check_keys(layout: Layout, processor: Any, keys: list[str]) -> None:
    """``LayoutError`` when the processor returned a key ``layout`` does not place."""
    unplaced = [k for k in keys if k not in TEXT_KEYS and k not in layout.keys]
    if unplaced:
        name = type(processor).__name__
        listed = layout_listed(processor)
        raise LayoutError(
            f"{name} returns {', '.join(unplaced)}, which ray_vlm's {layout.name!r} layout "
            + (
                "does not carry to the model"
                if listed
                else "(for processors it does not know) "
                "does not carry: this model family is not supported for training yet"
            )  # fmt: skip
        )
