"""Shape-faithful tiny stand-ins of nine VLM families, and their registry ``FAMILY_BUILDERS``.

This module holds LLaVA-NeXT, Mllama (Llama 3.2 Vision), Gemma 3 and SmolVLM; the ChatML families
(Qwen2-VL, Qwen2.5-VL, Qwen3-VL, InternVL3, LLaVA-OneVision) are in ``chatml_standins``, the chat
templates in ``standin_templates``. Each has its family's real processor with a named checkpoint's
published image settings, a chat template of the real one's structure, the real checkpoint's end
tokens in ``generation_config.eos_token_id``, and a vision tower of the real patch and image sizes
(so an image becomes as many tokens as with the real model), 2 layers of width 64; language
models are 2 layers of width 128 (Mllama's: 2 self-attention and 1 cross-attention layer).
``make_demo_assets`` builds them only when named.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from transformers import (
    CLIPVisionConfig,
    Gemma3Config,
    Gemma3ImageProcessor,
    Gemma3Processor,
    Gemma3TextConfig,
    LlamaConfig,
    LlavaNextConfig,
    LlavaNextImageProcessor,
    LlavaNextProcessor,
    MistralConfig,
    MllamaConfig,
    MllamaImageProcessor,
    MllamaProcessor,
    MllamaTextConfig,
    MllamaVisionConfig,
    SiglipVisionConfig,
    SmolVLMConfig,
    SmolVLMImageProcessor,
    SmolVLMProcessor,
    SmolVLMVideoProcessor,
    SmolVLMVisionConfig,
)
from transformers.image_utils import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, PILImageResampling

from ray_vlm.demo.chatml_standins import (
    HALF,
    build_internvl,
    build_llava_onevision,
    build_qwen2_5_vl,
    build_qwen2_vl,
    build_qwen3_vl,
)
from ray_vlm.demo.standin_templates import (
    GEMMA3_TEMPLATE,
    MISTRAL_TEMPLATE,
    MLLAMA_TEMPLATE,
    SMOLVLM_TEMPLATE,
)
from ray_vlm.demo.tiny_models import VISION, _save, _text_config, build_tokenizer


def build_llava_next(out: Path, corpus: Iterable[str], seed: int = 0) -> Path:
    """``llava-hf/llava-v1.6-mistral-7b-hf``'s shapes: CLIP-336 base view + anyres tiles on the
    pinpoints [336,672] [672,336] [672,672] [1008,336] [336,1008] (``pixel_values``
    ``[batch, 1 + tiles, 3, 336, 336]``, ``image_sizes`` ``[images, 2]``), 576 tokens a view (24x24
    patches of 14 px, CLS dropped), unpadded, a newline token a row. The checkpoint publishes no
    smaller setting: a 384x384 image takes the 2x2 grid, 2,928 tokens (over 1,500, kept as real).
    CLIP tower (2 layers, width 64, features from layer -2) and a Mistral language model."""
    tokenizer = build_tokenizer(
        corpus,
        {"image_token": "<image>"},
        specials=(),
        bos="<s>",
        eos="</s>",
        pad="<unk>",
        add_bos=True,
    )
    image_processor = LlavaNextImageProcessor(
        size={"shortest_edge": 336},
        crop_size={"height": 336, "width": 336},
        image_grid_pinpoints=[[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]],
        resample=PILImageResampling.BICUBIC,
    )
    processor = LlavaNextProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=14,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=MISTRAL_TEMPLATE,
    )
    config = LlavaNextConfig(
        vision_config=CLIPVisionConfig(image_size=336, patch_size=14, **VISION),
        text_config=_text_config(MistralConfig, tokenizer, 32768, num_key_value_heads=2),
        image_token_index=tokenizer.image_token_id,
        image_grid_pinpoints=image_processor.image_grid_pinpoints,
        vision_feature_select_strategy="default",
        vision_feature_layer=-2,
        image_seq_length=576,
    )
    return _save(config, processor, tokenizer, out, seed, eos_tokens=("</s>",))


LLAMA3_TOKENS = ("<|start_header_id|>", "<|end_header_id|>", "<|eom_id|>", "<|end_of_text|>")


def build_mllama(out: Path, corpus: Iterable[str], seed: int = 0) -> Path:
    """``meta-llama/Llama-3.2-11B-Vision-Instruct``'s shapes: 560-px tiles, at most 4, the 8 tile
    aspect ratios 1x1..4x1, CLIP mean/std, bilinear; one ``<|image|>`` token an image in the text;
    ``pixel_values`` ``[batch, images, 4, 3, 560, 560]`` (tiles padded to 4),
    ``aspect_ratio_ids`` / ``aspect_ratio_mask`` ``[batch, images(, 4)]``,
    ``cross_attention_mask`` ``[batch, tokens, images, 4]``. The vision encoder (40x40 patches + CLS
    a tile, 2 local + 1 global layer of width 64, 2 intermediate layers concatenated) feeds a Llama
    of 2 self-attention layers around 1 cross-attention layer, as the real one interleaves them."""
    tokenizer = build_tokenizer(
        corpus,
        {"image_token": "<|image|>"},
        specials=(*LLAMA3_TOKENS, "<|python_tag|>"),
        bos="<|begin_of_text|>",
        eos="<|eot_id|>",
        pad="<|finetune_right_pad_id|>",
    )
    image_processor = MllamaImageProcessor(
        size={"height": 560, "width": 560},
        max_image_tiles=4,
        image_mean=OPENAI_CLIP_MEAN,
        image_std=OPENAI_CLIP_STD,
        resample=PILImageResampling.BILINEAR,
    )
    processor = MllamaProcessor(image_processor, tokenizer, chat_template=MLLAMA_TEMPLATE)
    vision = MllamaVisionConfig(
        hidden_size=VISION["hidden_size"],
        intermediate_size=VISION["intermediate_size"],
        attention_heads=VISION["num_attention_heads"],
        num_hidden_layers=2,
        num_global_layers=1,
        intermediate_layers_indices=[0, 1],
        vision_output_dim=3 * VISION["hidden_size"],
        image_size=560,
        patch_size=14,
        max_num_tiles=4,
    )
    text = _text_config(MllamaTextConfig, tokenizer, 131072, num_key_value_heads=2)
    text.num_hidden_layers, text.cross_attention_layers = 3, [1]
    config = MllamaConfig(
        vision_config=vision, text_config=text, image_token_index=tokenizer.image_token_id
    )
    ends = ("<|end_of_text|>", "<|eom_id|>", "<|eot_id|>")
    return _save(config, processor, tokenizer, out, seed, eos_tokens=ends)


def build_gemma3(out: Path, corpus: Iterable[str], seed: int = 0) -> Path:
    """``google/gemma-3-4b-it``'s shapes: 896x896, bilinear, mean/std 0.5, no pan-and-scan; each
    ``<start_of_image>`` becomes ``\\n\\n<start_of_image>`` + 256 ``<image_soft_token>`` +
    ``<end_of_image>\\n\\n`` (64x64 patches of 14 px avg-pooled 4x4); ``pixel_values``
    ``[images, 3, 896, 896]``, ``token_type_ids`` 1 on image tokens. SigLIP tower (2 layers, width
    64) and a Gemma 3 language model of one sliding-window (1024) and one global layer; generation
    ends on ``<eos>`` or ``<end_of_turn>``."""
    tokenizer = build_tokenizer(
        corpus,
        {
            "boi_token": "<start_of_image>",
            "eoi_token": "<end_of_image>",
            "image_token": "<image_soft_token>",
        },
        specials=("<start_of_turn>", "<end_of_turn>"),
    )
    image_processor = Gemma3ImageProcessor(
        size={"height": 896, "width": 896},
        resample=PILImageResampling.BILINEAR,
        image_mean=HALF,
        image_std=HALF,
        do_pan_and_scan=False,
    )
    processor = Gemma3Processor(
        image_processor, tokenizer, chat_template=GEMMA3_TEMPLATE, image_seq_length=256
    )
    text = _text_config(
        Gemma3TextConfig, tokenizer, 131072, num_key_value_heads=1, head_dim=32,
        sliding_window=1024, layer_types=["sliding_attention", "full_attention"],
    )  # fmt: skip
    config = Gemma3Config(
        vision_config=SiglipVisionConfig(image_size=896, patch_size=14, **VISION),
        text_config=text,
        mm_tokens_per_image=256,
        boi_token_index=tokenizer.boi_token_id,
        eoi_token_index=tokenizer.eoi_token_id,
        image_token_index=tokenizer.image_token_id,
    )
    return _save(config, processor, tokenizer, out, seed, eos_tokens=("<eos>", "<end_of_turn>"))


GRID_TOKENS = tuple(f"<row_{r}_col_{c}>" for r in range(1, 7) for c in range(1, 7))


def build_smolvlm(out: Path, corpus: Iterable[str], seed: int = 0) -> Path:
    """``HuggingFaceTB/SmolVLM-256M-Instruct``'s shapes, with SmolVLM's processor: longest edge
    resized to 2048, split into 512-px crops (up to 4x4) + a global view, Lanczos, mean/std 0.5,
    64 ``<image>`` a crop (32x32 patches of 16 px, pixel shuffle 4) framed by
    ``<fake_token_around_image>`` and ``<row_r_col_c>`` / ``<global-img>`` (a 384x384 image:
    17 x 64 tokens); ``pixel_values`` ``[batch, crops, 3, 512, 512]``, ``pixel_attention_mask``
    ``[batch, crops, 512, 512]``. The Idefics3 architecture (SigLIP tower of 2 layers, width 64;
    a Llama) as SmolVLM's model class; generation ends on ``<end_of_utterance>`` or ``<|im_end|>``."""
    image_tokens = {
        "image_token": "<image>",
        "fake_image_token": "<fake_token_around_image>",
        "global_image_token": "<global-img>",
        "end_of_utterance_token": "<end_of_utterance>",
    }
    tokenizer = build_tokenizer(
        corpus,
        image_tokens,
        specials=("<|endoftext|>", *GRID_TOKENS),
        bos="<|im_start|>",
        eos="<end_of_utterance>",
        pad="<|im_end|>",
    )
    image_processor = SmolVLMImageProcessor(
        size={"longest_edge": 2048},
        max_image_size={"longest_edge": 512},
        resample=PILImageResampling.LANCZOS,
        do_image_splitting=True,
    )
    processor = SmolVLMProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=SmolVLMVideoProcessor(),
        image_seq_len=64,
        chat_template=SMOLVLM_TEMPLATE,
    )
    config = SmolVLMConfig(
        vision_config=SmolVLMVisionConfig(image_size=512, patch_size=16, **VISION),
        text_config=_text_config(LlamaConfig, tokenizer, 8192, num_key_value_heads=2),
        scale_factor=4,
        image_token_id=tokenizer.image_token_id,
    )
    ends = ("<end_of_utterance>", "<|im_end|>")
    return _save(config, processor, tokenizer, out, seed, eos_tokens=ends)


FAMILY_BUILDERS: dict[str, Callable[..., Path]] = {
    "qwen2_vl": build_qwen2_vl,
    "qwen2_5_vl": build_qwen2_5_vl,
    "qwen3_vl": build_qwen3_vl,
    "llava_next": build_llava_next,
    "llava_onevision": build_llava_onevision,
    "mllama": build_mllama,
    "gemma3": build_gemma3,
    "smolvlm": build_smolvlm,
    "internvl": build_internvl,
}
