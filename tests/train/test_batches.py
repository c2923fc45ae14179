"""A worker's micro-batches from a real Ray Data iterator: dummy image, skipping, new passes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import ray
import torch

from ray_vlm.config import DataConfig, FinetuneConfig
from ray_vlm.model import load_model, load_processor
from ray_vlm.preprocess.batching import collate
from ray_vlm.preprocess.encode import IGNORE, Encoder
from ray_vlm.preprocess.pixels import PixelNormalizer
from ray_vlm.records import ASSISTANT, USER, Record, Turn
from ray_vlm.train.batches import MicroBatches

pytestmark = pytest.mark.usefixtures("ray_local")


def _row(encoder: Encoder, question: str, answer: str, images: tuple[str, ...]) -> dict:
    record = Record("t", "t:1", images, (Turn(USER, question), Turn(ASSISTANT, answer)))
    return encoder.encode(record).row(record)


@pytest.fixture(scope="module")
def llava(demo_assets: Path):
    path = str(demo_assets / "models/llava")
    return load_model(path).eval(), load_processor(path)


@pytest.fixture(scope="module")
def rows(llava, demo_assets: Path) -> list[dict]:
    encoder = Encoder(llava[1], 512)
    image = str(next((demo_assets / "data/plm/shapes/images").glob("*.png")))
    return [
        _row(encoder, "What is 2+2?", "4", ()),
        _row(encoder, "Say hello.", "hello", ()),
        _row(encoder, "Describe the image.", "a red circle on the left", (image,)),
        _row(encoder, "Describe the image.", "a blue square on the top", (image,)),
    ]


def _batches(rows: list[dict], processor, skip: int = 0) -> MicroBatches:
    cfg = FinetuneConfig(batch_size=2, data=DataConfig(group_by_length=False))
    shard = ray.data.from_items(rows, override_num_blocks=1).iterator()
    return MicroBatches(shard, cfg, processor, skip, token_types=False)


def test_a_batch_without_images_gets_a_dummy_image_that_adds_no_loss(rows, llava) -> None:
    model, processor = llava
    batch = next(_batches(rows, processor))
    inputs = batch.inputs
    assert (batch.examples, batch.tokens) == (2, rows[0]["num_tokens"] + rows[1]["num_tokens"])
    assert batch.ids == ("t:1", "t:1")
    assert inputs["input_ids"].shape[0] == 3 and inputs["pixel_values"].shape[0] == 1
    assert (inputs["labels"][2] == IGNORE).all()
    assert "token_type_ids" not in inputs
    plain = collate(rows[:2], processor.tokenizer.pad_token_id, PixelNormalizer.of(processor))
    del plain["token_type_ids"], plain["pixel_values"]
    with torch.no_grad():
        assert model(**inputs).loss.item() == pytest.approx(model(**plain).loss.item(), rel=1e-5)


def test_skips_rows_and_starts_a_new_pass_when_the_shard_ends(rows, llava) -> None:
    batches = _batches(rows, llava[1], skip=2)
    first = next(batches)  # rows 2 and 3: images, no dummy
    assert first.examples == 2 and first.inputs["input_ids"].shape[0] == 2
    ids = first.inputs["input_ids"]
    assert np.array_equal(ids[0, : rows[2]["num_tokens"]], rows[2]["input_ids"])
    again = next(batches).inputs  # a new pass starts at row 0, skipping nothing
    assert np.array_equal(again["input_ids"][0, : rows[0]["num_tokens"]], rows[0]["input_ids"])
