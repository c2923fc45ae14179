"""Tiny, randomly initialised VLMs saved as real Hugging Face directories (no download).

Each builder writes ``config.json``, ``model.safetensors``, the processor, a byte-level BPE
tokenizer trained locally with ``tokenizers`` and a chat template, so that
``AutoModelForImageTextToText.from_pretrained(dir)`` and ``AutoProcessor.from_pretrained(dir)``
load it like any hub checkpoint. The demo and the tests use these.

Two more are shape-faithful stand-ins for the shipped GPU configs' models: their processors carry
the published settings of ``facebook/Perception-LM-8B`` and ``google/paligemma2-3b-pt-224`` and
their vision towers take the same image sizes and patches (so an image becomes as many tokens as
with the real model), but towers and language models are 64/128 wide and 2 layers deep. Nine
family stand-ins built alike (Qwen-VL, LLaVA-NeXT, Mllama, Gemma 3, ...) are in ``family_standins``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import (
    AutoModelForImageTextToText,
    CLIPImageProcessor,
    CLIPVisionConfig,
    Gemma2Config,
    GemmaConfig,
    LlamaConfig,
    LlavaConfig,
    LlavaProcessor,
    PaliGemmaConfig,
    PaliGemmaProcessor,
    PerceptionLMConfig,
    PerceptionLMImageProcessor,
    PerceptionLMProcessor,
    PerceptionLMVideoProcessor,
    PreTrainedTokenizerFast,
    SiglipImageProcessor,
    SiglipVisionConfig,
    TimmWrapperConfig,
)
from transformers.image_utils import PILImageResampling

BOS, EOS, PAD = "<bos>", "<eos>", "<pad>"
ROLE_TOKENS = ("<|user|>", "<|assistant|>")
VOCAB_SIZE = 768
IMAGE_SIZE = 32
PATCH = 8
TEXT = {
    "hidden_size": 128,
    "intermediate_size": 256,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
}
VISION = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
}


def chat_template(image_token: str) -> str:
    """A Jinja chat template: ``<|user|>`` images then text, ``<|assistant|>`` answer ``<eos>``."""
    return (
        "{%- for message in messages -%}"
        "{{ '<|' + message['role'] + '|>' }}"
        "{%- if message['content'] is string -%}{{ message['content'] }}"
        "{%- else -%}{%- for item in message['content'] -%}"
        "{%- if item['type'] == 'image' -%}{{ '" + image_token + "' }}"
        "{%- elif item['type'] == 'text' -%}{{ item['text'] }}{%- endif -%}"
        "{%- endfor -%}{%- endif -%}"
        "{%- if message['role'] == 'assistant' -%}{{ '" + EOS + "' }}{%- endif -%}"
        "{%- endfor -%}"
        "{%- if add_generation_prompt -%}{{ '<|assistant|>' }}{%- endif -%}"
    )


def build_tokenizer(
    corpus: Iterable[str],
    image_tokens: dict[str, str],
    specials: Sequence[str] = ROLE_TOKENS,
    bos: str = BOS,
    eos: str = EOS,
    pad: str = PAD,
    add_bos: bool = False,
) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE on ``corpus`` (any text still encodes, byte by byte).

    ``image_tokens`` maps attribute names to tokens, e.g. ``{"image_token": "<image>"}``; they
    become special tokens and ``tokenizer.image_token`` / ``tokenizer.image_token_id``.
    ``specials``: further special tokens (role headers, end-of-turn tokens); ``bos``, ``eos``,
    ``pad``: the family's own; ``add_bos``: encoding puts ``bos`` first, as Mistral's tokenizer does.
    """
    tokens = list(dict.fromkeys([pad, bos, eos, *specials, *image_tokens.values()]))
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=tokens,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer=trainer)
    if add_bos:
        tok.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A $B", special_tokens=[(bos, tok.token_to_id(bos))]
        )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=bos,
        eos_token=eos,
        pad_token=pad,
        extra_special_tokens=dict(image_tokens),
    )


def _text_config(
    cls: type, tokenizer: PreTrainedTokenizerFast, context: int = 512, **extra
) -> object:
    return cls(
        vocab_size=len(tokenizer),
        max_position_embeddings=context,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **TEXT,
        **extra,
    )


def _save(
    model_config: object,
    processor: object,
    tokenizer: PreTrainedTokenizerFast,
    out: Path,
    seed: int,
    eos_tokens: Sequence[str] = (),
) -> Path:
    """Save a model seeded with ``seed`` and its processor; generation ends on ``eos_tokens``, or EOS."""
    torch.manual_seed(seed)
    model = AutoModelForImageTextToText.from_config(model_config)
    gen = model.generation_config
    gen.bos_token_id, gen.eos_token_id, gen.pad_token_id = (
        tokenizer.bos_token_id,
        tokenizer.convert_tokens_to_ids(list(eos_tokens)) or tokenizer.eos_token_id,
        tokenizer.pad_token_id,
    )
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


def build_llava(out: Path, corpus: Iterable[str], seed: int = 0) -> Path:
    """LLaVA: 2-layer CLIP tower (CLS + 16 patches, CLS dropped) + 2-layer Llama."""
    tokenizer = build_tokenizer(corpus, {"image_token": "<image>"})
    image_processor = CLIPImageProcessor(
        size={"shortest_edge": IMAGE_SIZE}, crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}
    )
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=PATCH,
        vision_feature_select_strategy="default",
        chat_template=chat_template("<image>"),
        num_additional_image_tokens=1,  # CLIP's CLS token
    )
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(image_size=IMAGE_SIZE, patch_size=PATCH, **VISION),
        text_config=_text_config(LlamaConfig, tokenizer, num_key_value_heads=2),
        image_token_id=tokenizer.image_token_id,
        vision_feature_select_strategy="default",
        vision_feature_layer=-1,
    )
    return _save(config, processor, tokenizer, out, seed)


def build_paligemma(out: Path, corpus: Iterable[str], seed: int = 0) -> Path:
    """PaliGemma: 2-layer SigLIP tower (16 patches) + 2-layer Gemma; prefix/suffix processor."""
    tokenizer = build_tokenizer(corpus, {"image_token": "<image>"})
    image_processor = SiglipImageProcessor(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})
    image_processor.image_seq_length = (IMAGE_SIZE // PATCH) ** 2
    processor = PaliGemmaProcessor(image_processor=image_processor, tokenizer=tokenizer)
    config = PaliGemmaConfig(
        vision_config=SiglipVisionConfig(image_size=IMAGE_SIZE, patch_size=PATCH, **VISION),
        text_config=_text_config(GemmaConfig, tokenizer, num_key_value_heads=1, head_dim=32),
        image_token_id=tokenizer.image_token_id,
        projection_dim=TEXT["hidden_size"],
    )
    config.vision_config.projection_dim = TEXT["hidden_size"]
    return _save(config, processor, tokenizer, out, seed)


def build_perception_lm(out: Path, corpus: Iterable[str], seed: int = 0) -> Path:
    """Perception LM: 2-layer PE-core ViT via timm (16 patches of 16 px on 64 px) + 2-layer Llama."""
    tokenizer = build_tokenizer(corpus, {"image_token": "<|image|>", "video_token": "<|video|>"})
    tile = 64
    processor = PerceptionLMProcessor(
        video_processor=PerceptionLMVideoProcessor(),
        image_processor=PerceptionLMImageProcessor(
            tile_size=tile, max_num_tiles=1, vision_input_type="vanilla"
        ),
        tokenizer=tokenizer,
        patch_size=16,
        pooling_ratio=1,
        chat_template=chat_template("<|image|>"),
    )
    vision = TimmWrapperConfig(
        architecture="vit_pe_core_tiny_patch16_384",
        model_args={"img_size": tile, "embed_dim": 64, "depth": 2, "num_heads": 4},
    )
    config = PerceptionLMConfig(
        vision_config=vision,
        text_config=_text_config(LlamaConfig, tokenizer, num_key_value_heads=2),
        image_token_id=tokenizer.image_token_id,
        video_token_id=tokenizer.video_token_id,
        projector_pooling_ratio=1,
    )
    return _save(config, processor, tokenizer, out, seed)


def build_perception_lm_8b_standin(out: Path, corpus: Iterable[str], seed: int = 0) -> Path:
    """``facebook/Perception-LM-8B``'s shapes: its processor settings (448-px tiles, thumb+tile,
    up to 36 tiles; 14-px patches pooled 2x2: 256 tokens a tile) and its tower's architecture
    (PE gigantic, 448 px, no CLS token) at width 64, depth 2; a tiny Llama with PLM's context."""
    tokenizer = build_tokenizer(corpus, {"image_token": "<|image|>", "video_token": "<|video|>"})
    tile, half = 448, [0.5, 0.5, 0.5]
    processor = PerceptionLMProcessor(
        video_processor=PerceptionLMVideoProcessor(size={"height": tile, "width": tile}),
        image_processor=PerceptionLMImageProcessor(
            tile_size=tile,
            max_num_tiles=36,
            vision_input_type="thumb+tile",
            size={"height": tile, "width": tile},
            image_mean=half,
            image_std=half,
        ),
        tokenizer=tokenizer,
        patch_size=14,
        pooling_ratio=2,
        chat_template=chat_template("<|image|>"),
    )
    vision = TimmWrapperConfig(
        architecture="vit_pe_core_gigantic_patch14_448",
        model_args={
            "img_size": (tile, tile),
            "ref_feat_shape": (tile // 14, tile // 14),
            "global_pool": "",
            "embed_dim": 64,
            "depth": 2,
            "num_heads": 4,
        },
    )
    config = PerceptionLMConfig(
        vision_config=vision,
        text_config=_text_config(LlamaConfig, tokenizer, context=11520, num_key_value_heads=2),
        vision_use_cls_token=False,
        projector_pooling_ratio=2,
        image_token_id=tokenizer.image_token_id,
        video_token_id=tokenizer.video_token_id,
    )
    return _save(config, processor, tokenizer, out, seed)


def build_paligemma2_224_standin(out: Path, corpus: Iterable[str], seed: int = 0) -> Path:
    """``google/paligemma2-3b-pt-224``'s shapes: its processor settings (224 px, bicubic, mean and
    std 0.5, 256 image tokens) and a SigLIP tower of 14-px patches at 224 px (16 x 16 = 256
    patches), width 64, depth 2; a 2-layer Gemma 2 (PaliGemma 2's language model)."""
    tokenizer = build_tokenizer(corpus, {"image_token": "<image>"})
    size, patch = 224, 14
    image_processor = SiglipImageProcessor(
        size={"height": size, "width": size},
        resample=PILImageResampling.BICUBIC,
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
    )
    image_processor.image_seq_length = (size // patch) ** 2
    processor = PaliGemmaProcessor(image_processor=image_processor, tokenizer=tokenizer)
    config = PaliGemmaConfig(
        vision_config=SiglipVisionConfig(image_size=size, patch_size=patch, **VISION),
        text_config=_text_config(
            Gemma2Config, tokenizer, context=8192, num_key_value_heads=1, head_dim=32
        ),
        image_token_id=tokenizer.image_token_id,
        projection_dim=TEXT["hidden_size"],
    )
    config.vision_config.projection_dim = TEXT["hidden_size"]
    return _save(config, processor, tokenizer, out, seed)


BUILDERS: dict[str, Callable[..., Path]] = {
    "llava": build_llava,
    "paligemma": build_paligemma,
    "perception_lm": build_perception_lm,
    "perception_lm_8b_standin": build_perception_lm_8b_standin,
    "paligemma2_224_standin": build_paligemma2_224_standin,
}
