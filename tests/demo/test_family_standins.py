"""The nine family stand-ins load with the Auto classes, train on one record and generate.

One record: a 384x384 PNG, a question and its answer rendered with the processor's chat template;
the processor's whole output goes to the model (``labels=input_ids``) and to ``generate``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image, ImageDraw
from transformers import AutoModelForImageTextToText, AutoProcessor

from ray_vlm.demo.assets import make_demo_assets
from ray_vlm.demo.family_standins import FAMILY_BUILDERS

QUESTION, ANSWER = "What colour is the shape?", "red"


@pytest.fixture(scope="module")
def family_assets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("families")
    counts = {"train": 1, "test": 1}
    return make_demo_assets(out, counts=counts, models=tuple(FAMILY_BUILDERS))


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Image.Image:
    path = tmp_path_factory.mktemp("image") / "shape.png"
    im = Image.new("RGB", (384, 384))
    ImageDraw.Draw(im).ellipse((40, 150, 140, 250), fill=(230, 40, 40))
    im.save(path)
    return Image.open(path).convert("RGB")


def _messages(answer: bool) -> list[dict]:
    user = {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": QUESTION}]}
    reply = {"role": "assistant", "content": [{"type": "text", "text": ANSWER}]}
    return [user, reply] if answer else [user]


@pytest.mark.parametrize("family", list(FAMILY_BUILDERS))
def test_family_trains_and_generates(family_assets: Path, image: Image.Image, family: str):
    path = family_assets / "models" / family
    processor = AutoProcessor.from_pretrained(path)
    model = AutoModelForImageTextToText.from_pretrained(path)
    prompt = processor.apply_chat_template(
        _messages(False), add_generation_prompt=True, tokenize=False
    )
    full = processor.apply_chat_template(_messages(True), tokenize=False)
    assert full.startswith(prompt)  # renders incrementally
    ends = processor.tokenizer.convert_ids_to_tokens(model.generation_config.eos_token_id)
    assert full[len(prompt) :].lstrip().removeprefix(ANSWER).startswith(tuple(ends))

    inputs = processor(images=[image], text=full, return_tensors="pt")
    with torch.no_grad():
        assert torch.isfinite(model(**inputs, labels=inputs["input_ids"]).loss)
        asked = processor(images=[image], text=prompt, return_tensors="pt")
        out = model.generate(**asked, max_new_tokens=3)
    assert out.shape[1] > asked["input_ids"].shape[1]
