"""All three tiny architectures load through the Auto classes and generate on a demo image."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from transformers import AutoModelForImageTextToText, AutoProcessor

from ray_vlm.model import SamplingParams, generate, load_model, load_processor

ARCHS = {
    "llava": "LlavaForConditionalGeneration",
    "paligemma": "PaliGemmaForConditionalGeneration",
    "perception_lm": "PerceptionLMForConditionalGeneration",
}


@pytest.mark.parametrize("arch", list(ARCHS))
def test_loads_and_generates(demo_assets: Path, arch: str) -> None:
    path = str(demo_assets / "models" / arch)
    model = AutoModelForImageTextToText.from_pretrained(path)
    assert type(model).__name__ == ARCHS[arch]
    assert type(AutoProcessor.from_pretrained(path)).__name__ == ARCHS[arch].replace(
        "ForConditionalGeneration", "Processor"
    )
    image = Image.open(next((demo_assets / "data/plm/shapes/images").glob("test_*.png")))
    model, processor = load_model(path), load_processor(path)
    out = generate(
        model,
        processor,
        [([image], "Describe the image."), ([image], "What shape is it?")],
        SamplingParams(max_new_tokens=5),
    )
    assert len(out) == 2
    for g in out:
        assert isinstance(g.text, str) and 1 <= g.completion_tokens <= 5 and g.prompt_tokens > 16
