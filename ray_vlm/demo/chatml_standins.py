"""Shape-faithful tiny stand-ins of the ChatML families: Qwen2-VL, Qwen2.5-VL, Qwen3-VL, InternVL3
and LLaVA-OneVision (their chat templates frame turns with ``<|im_start|>`` / ``<|im_end|>``).

Each has its family's real processor with a named checkpoint's published image settings and a
vision tower of the real patch and image sizes (so an image becomes as many tokens as with the
real model), 2 layers of width 64, and a 2-layer language model of width 128 (4 heads of 32).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from transformers import (
    GotOcr2ImageProcessor,
    InternVLConfig,
    InternVLProcessor,
    InternVLVideoProcessor,
    InternVLVisionConfig,
    LlavaOnevisionConfig,
    LlavaOnevisionImageProcessor,
    LlavaOnevisionProcessor,
    LlavaOnevisionVideoProcessor,
    Qwen2_5_VLConfig,
    Qwen2_5_VLProcessor,
    Qwen2_5_VLTextConfig,
    Qwen2Config,
    Qwen2VLConfig,
    Qwen2VLImageProcessor,
    Qwen2VLProcessor,
    Qwen2VLTextConfig,
    Qwen2VLVideoProcessor,
    Qwen3VLConfig,
    Qwen3VLProcessor,
    Qwen3VLTextConfig,
    Qwen3VLVideoProcessor,
    SiglipVisionConfig,
)

from ray_vlm.demo.standin_templates import ONEVISION_TEMPLATE, chatml_template
from ray_vlm.demo.tiny_models import TEXT, VISION, _save, _text_config, build_tokenizer

IM_START, IM_END, ENDOFTEXT = "<|im_start|>", "<|im_end|>", "<|endoftext|>"
QWEN_IMAGE = "<|vision_start|><|image_pad|><|vision_end|>"
QWEN_TOKENS = {
    "image_token": "<|image_pad|>",
    "video_token": "<|video_pad|>",
    "vision_start_token": "<|vision_start|>",
    "vision_end_token": "<|vision_end|>",
}
QWEN_SYSTEM = "You are a helpful assistant."  # Qwen2-VL's and Qwen2.5-VL's default system turn
QWEN_EOS = (IM_END, ENDOFTEXT)  # generation_config.eos_token_id [151645, 151643]
# Qwen2-VL / Qwen2.5-VL preprocessor_config.json: 56*56 to 28*28*16384 pixels, CLIP mean/std.
QWEN2_PIXELS = {"min_pixels": 3136, "max_pixels": 12845056, "patch_size": 14}
HALF = [0.5, 0.5, 0.5]


def _chatml_tokenizer(corpus: Iterable[str], image_tokens: dict[str, str]):
    """Qwen's special tokens: ``<|im_start|>``, EOS ``<|im_end|>``, BOS and pad ``<|endoftext|>``."""
    return build_tokenizer(
        corpus, image_tokens, specials=(IM_START, IM_END), bos=ENDOFTEXT, eos=IM_END, pad=ENDOFTEXT
    )


def _qwen_ids(tokenizer) -> dict[str, int]:
    return {
        "image_token_id": tokenizer.image_token_id,
        "video_token_id": tokenizer.video_token_id,
        "vision_start_token_id": tokenizer.vision_start_token_id,
        "vision_end_token_id": tokenizer.vision_end_token_id,
    }


def _mrope(section: list[int], theta: float, **extra) -> dict:
    """M-RoPE: the 16 rotary frequencies of a 32-wide head split over (time, height, width)."""
    return {"rope_type": "default", "rope_theta": theta, "mrope_section": section, **extra}


def _qwen_vision(patch_size: int, **extra) -> dict:
    """A Qwen2.5-VL / Qwen3-VL vision tower at stand-in size (2 layers, width 64, 4 heads) that
    projects to the language model's width; ``extra``: the family's own settings."""
    return {
        "depth": 2,
        "hidden_size": VISION["hidden_size"],
        "intermediate_size": VISION["intermediate_size"],
        "num_heads": 4,
        "out_hidden_size": TEXT["hidden_size"],
        "patch_size": patch_size,
        **extra,
    }


def build_qwen2_vl(out: Path, corpus: Iterable[str], seed: int = 0) -> Path:
    """``Qwen/Qwen2-VL-2B-Instruct``'s shapes: min_pixels 3136, max_pixels 12845056, 14-px patches,
    temporal patch 2, 2x2 merge (a 384x384 image: 392x392, 28x28 patches, 196 tokens);
    ``pixel_values`` ``[patches, 3*2*14*14]``, ``image_grid_thw`` ``[images, 3]``,
    ``mm_token_type_ids`` ``[batch, seq]`` (M-RoPE needs it: the forward raises without it).
    Qwen2-VL's ViT (2 layers, width 64) and a Qwen2 language model, M-RoPE sections [4, 6, 6]."""
    tokenizer = _chatml_tokenizer(corpus, QWEN_TOKENS)
    processor = Qwen2VLProcessor(
        image_processor=Qwen2VLImageProcessor(**QWEN2_PIXELS),
        video_processor=Qwen2VLVideoProcessor(),
        tokenizer=tokenizer,
        chat_template=chatml_template(QWEN_IMAGE, QWEN_SYSTEM),
    )
    vision = {"depth": 2, "embed_dim": 64, "mlp_ratio": 2, "num_heads": 4, "patch_size": 14}
    config = Qwen2VLConfig(
        vision_config={**vision, "hidden_size": TEXT["hidden_size"]},
        text_config=_text_config(
            Qwen2VLTextConfig, tokenizer, 32768, num_key_value_heads=2,
            rope_parameters=_mrope([4, 6, 6], 1e6),
        ),
        **_qwen_ids(tokenizer),
    )  # fmt: skip
    return _save(config, processor, tokenizer, out, seed, eos_tokens=QWEN_EOS)


def build_qwen2_5_vl(out: Path, corpus: Iterable[str], seed: int = 0) -> Path:
    """``Qwen/Qwen2.5-VL-3B-Instruct``'s shapes: min_pixels 3136, max_pixels 12845056, 14-px
    patches, temporal patch 2, 2x2 merge (384x384: 196 tokens), ``pixel_values``
    ``[patches, 1176]``, ``image_grid_thw`` ``[images, 3]``, ``mm_token_type_ids`` (without it the
    forward silently falls back to 1-D positions); its windowed ViT (window 112 px, the last of
    the 2 layers full attention, as every 8th of the real 32) and a Qwen2 language model with
    M-RoPE sections [4, 6, 6]."""
    tokenizer = _chatml_tokenizer(corpus, QWEN_TOKENS)
    processor = Qwen2_5_VLProcessor(
        image_processor=Qwen2VLImageProcessor(**QWEN2_PIXELS),
        video_processor=Qwen2VLVideoProcessor(),
        tokenizer=tokenizer,
        chat_template=chatml_template(QWEN_IMAGE, QWEN_SYSTEM),
    )
    vision = _qwen_vision(14, window_size=112, fullatt_block_indexes=[1])
    config = Qwen2_5_VLConfig(
        vision_config=vision,
        text_config=_text_config(
            Qwen2_5_VLTextConfig, tokenizer, 32768, num_key_value_heads=2,
            rope_parameters=_mrope([4, 6, 6], 1e6),
        ),
        **_qwen_ids(tokenizer),
    )  # fmt: skip
    return _save(config, processor, tokenizer, out, seed, eos_tokens=QWEN_EOS)


def build_qwen3_vl(out: Path, corpus: Iterable[str], seed: int = 0) -> Path:
    """``Qwen/Qwen3-VL-2B-Instruct``'s shapes: size shortest_edge 65536 / longest_edge 16777216
    pixels, 16-px patches, temporal patch 2, 2x2 merge, mean/std 0.5 (384x384: 24x24 patches,
    144 tokens), ``pixel_values`` ``[patches, 3*2*16*16]``, ``mm_token_type_ids`` required as for
    Qwen2-VL; its ViT (learned 48x48 position grid, deepstack features from layer 0 of 2) and a
    Qwen3 language model with interleaved M-RoPE sections [6, 5, 5]. No default system turn, as
    in Qwen3-VL's template."""
    tokenizer = _chatml_tokenizer(corpus, QWEN_TOKENS)
    pixels = {"size": {"shortest_edge": 65536, "longest_edge": 16777216}, "patch_size": 16}
    processor = Qwen3VLProcessor(
        image_processor=Qwen2VLImageProcessor(**pixels, image_mean=HALF, image_std=HALF),
        video_processor=Qwen3VLVideoProcessor(),
        tokenizer=tokenizer,
        chat_template=chatml_template(QWEN_IMAGE),
    )
    vision = _qwen_vision(16, num_position_embeddings=2304, deepstack_visual_indexes=[0])
    config = Qwen3VLConfig(
        vision_config=vision,
        text_config=_text_config(
            Qwen3VLTextConfig, tokenizer, 32768, num_key_value_heads=2, head_dim=32,
            rope_parameters=_mrope([6, 5, 5], 5e6, mrope_interleaved=True),
        ),
        **_qwen_ids(tokenizer),
    )  # fmt: skip
    return _save(config, processor, tokenizer, out, seed, eos_tokens=QWEN_EOS)


def build_internvl(out: Path, corpus: Iterable[str], seed: int = 0) -> Path:
    """``OpenGVLab/InternVL3-1B-hf``'s shapes: GotOcr2 image processor as published (448-px
    tiles, ImageNet mean/std, bicubic, 1-12 tiles, crop_to_patches false), under InternVLProcessor,
    whose call default crop_to_patches=True tiles as the real model is used: the best grid of
    1-12 tiles, plus a thumbnail when over one (384x384: 1 tile; 300x500: 6 + 1). ``<img>`` + 256
    ``<IMG_CONTEXT>`` a tile + ``</img>`` (32x32 patches of 14 px, pixel-shuffled 0.5);
    ``pixel_values`` ``[tiles, 3, 448, 448]``; batches pad on the left. InternViT (2 layers, width
    64) and a Qwen2 language model; generation ends on ``<|im_end|>``."""
    image_tokens = {
        "start_image_token": "<img>",
        "end_image_token": "</img>",
        "context_image_token": "<IMG_CONTEXT>",
        "video_token": "<video>",
    }
    tokenizer = _chatml_tokenizer(corpus, image_tokens)
    image_processor = GotOcr2ImageProcessor(
        size={"height": 448, "width": 448},
        image_mean=[0.485, 0.456, 0.406],
        image_std=[0.229, 0.224, 0.225],
        crop_to_patches=False,
        min_patches=1,
        max_patches=12,
    )
    processor = InternVLProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=InternVLVideoProcessor(),
        image_seq_length=256,
        chat_template=chatml_template("<IMG_CONTEXT>\\n"),
    )
    config = InternVLConfig(
        vision_config=InternVLVisionConfig(image_size=448, patch_size=14, **VISION),
        text_config=_text_config(Qwen2Config, tokenizer, 32768, num_key_value_heads=2),
        image_token_id=tokenizer.context_image_token_id,
        image_seq_length=256,
        downsample_ratio=0.5,
    )
    return _save(config, processor, tokenizer, out, seed, eos_tokens=(IM_END,))


def build_llava_onevision(out: Path, corpus: Iterable[str], seed: int = 0) -> Path:
    """``llava-hf/llava-onevision-qwen2-0.5b-ov-hf``'s shapes: 384-px base image + anyres tiles on
    the 36 grid pinpoints 384..2304 (``pixel_values`` ``[batch, 1 + tiles, 3, 384, 384]``,
    ``image_sizes`` ``[images, 2]``), mean/std 0.5, 729 tokens a 384-px view (27x27 patches of 14
    px, every SigLIP feature kept: ``full``), anyres_max_9, a newline token a row. SigLIP tower (2
    layers, width 64) and a Qwen2 language model. A 384x384 image: 1,485 tokens, 300x500: 2,017;
    in a record of several images each is its base view only (``batch_num_images``)."""
    tokenizer = _chatml_tokenizer(corpus, {"image_token": "<image>", "video_token": "<video>"})
    image_processor = LlavaOnevisionImageProcessor(image_mean=HALF, image_std=HALF)
    pinpoints = image_processor.image_grid_pinpoints  # [384 a, 384 b] for a, b in 1..6
    processor = LlavaOnevisionProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=LlavaOnevisionVideoProcessor(image_mean=HALF, image_std=HALF),
        num_image_tokens=729,
        vision_feature_select_strategy="full",
        vision_aspect_ratio="anyres_max_9",
        chat_template=ONEVISION_TEMPLATE,
    )
    config = LlavaOnevisionConfig(
        vision_config=SiglipVisionConfig(image_size=384, patch_size=14, **VISION),
        text_config=_text_config(Qwen2Config, tokenizer, 32768, num_key_value_heads=2),
        image_token_index=tokenizer.image_token_id,
        video_token_index=tokenizer.video_token_id,
        image_grid_pinpoints=pinpoints,
        vision_feature_select_strategy="full",
        vision_feature_layer=-1,
        vision_aspect_ratio="anyres_max_9",
    )
    return _save(config, processor, tokenizer, out, seed, eos_tokens=QWEN_EOS)
