"""A tiny Fuyu (``adept/fuyu-8b``'s family): a real transformers VLM family ray_vlm does not
support, for the tests that it is refused before Ray starts. Test support only: not in
``MODEL_BUILDERS``, so the product never builds or advertises it.

``FuyuProcessor`` returns the image as ``image_patches`` (flattened 8x8 patches, the legacy
output that transformers still gives by default), a key no ray_vlm layout carries, so
``Encoder``'s probe raises ``LayoutError``. The processor is otherwise made usable: the
tokenizer has the tokens it looks up (``|SPEAKER|``, ``|NEWLINE|``, ``<s>``, the answer start
``<0x04>``) and a chat template, so the refusal is about the layout, not a missing template.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from transformers import FuyuConfig, FuyuImageProcessor, FuyuProcessor, PersimmonConfig

from ray_vlm.demo.tiny_models import (
    IMAGE_SIZE,
    PATCH,
    ROLE_TOKENS,
    _save,
    _text_config,
    build_tokenizer,
    chat_template,
)

FUYU_TOKENS = {"image_token": "|SPEAKER|", "image_newline_token": "|NEWLINE|"}
FUYU_SPECIALS = (*ROLE_TOKENS, "<s>", "<0x00>", "<0x01>", "<0x02>", "<0x03>", "<0x04>")
"""``<s>`` ends each image's expansion; ``<0x00>``-``<0x04>``: box, point and answer markers."""


def build_fuyu(out: Path, corpus: Iterable[str], seed: int = 0) -> Path:
    """Fuyu: images resized to fit 32x32, cut into 8x8 patches, each patch a ``|SPEAKER|`` token
    (``|NEWLINE|`` after each row) embedded by one linear layer; a 2-layer Persimmon language
    model of width 128. The chat template renders no image token: FuyuProcessor puts it first."""
    tokenizer = build_tokenizer(corpus, FUYU_TOKENS, specials=FUYU_SPECIALS)
    image_processor = FuyuImageProcessor(
        size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
        patch_size={"height": PATCH, "width": PATCH},
    )
    processor = FuyuProcessor(image_processor=image_processor, tokenizer=tokenizer)
    processor.chat_template = chat_template("")
    config = FuyuConfig(
        text_config=_text_config(PersimmonConfig, tokenizer, partial_rotary_factor=0.5),
        image_size=IMAGE_SIZE,
        patch_size=PATCH,
        image_token_id=tokenizer.convert_tokens_to_ids(FUYU_TOKENS["image_token"]),
    )
    return _save(config, processor, tokenizer, out, seed)
