"""A rank's micro-batches: the dummy image, and an exact continuation from any saved position."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ray_vlm.config import DataConfig, FinetuneConfig
from ray_vlm.model import load_model, load_processor
from ray_vlm.preprocess.batching import collate
from ray_vlm.preprocess.encode import IGNORE, Encoder
from ray_vlm.records import ASSISTANT, USER, Record, Turn
from ray_vlm.train.batches import DataExhaustedError, MicroBatches
from ray_vlm.train.data_order import RankPosition


def _row(encoder: Encoder, n: int, question: str, answer: str, images: tuple[str, ...]) -> dict:
    turns = (Turn(USER, question), Turn(ASSISTANT, answer))
    record = Record("t", f"t:{n}", images, turns, position=n)
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
        _row(encoder, 0, "What is 2+2?", "4", ()),
        _row(encoder, 1, "Say hello.", "hello", ()),
        _row(encoder, 2, "Describe the image.", "a red circle on the left", (image,)),
        _row(
            encoder, 3, "Describe the image.", "a blue square on the top in a long answer", (image,)
        ),
    ]


def _cfg(batch_size: int = 2, **data) -> FinetuneConfig:
    return FinetuneConfig(
        batch_size=batch_size, data=DataConfig(**{"group_by_length": False, **data})
    )


def _batches(
    rows: list[dict],
    processor,
    cfg: FinetuneConfig | None = None,
    start: RankPosition | None = None,
) -> MicroBatches:
    """One rank of a one-rank run: a row's index in its sequence is its position."""
    cfg = cfg or _cfg()
    return MicroBatches(iter(rows), cfg, processor, start or RankPosition(), int)


def test_a_batch_without_images_gets_a_dummy_image_that_adds_no_loss(rows, llava) -> None:
    model, processor = llava
    batch = next(_batches(rows, processor))
    inputs = batch.inputs
    assert (batch.examples, batch.tokens) == (2, rows[0]["num_tokens"] + rows[1]["num_tokens"])
    assert batch.ids == ("t:0", "t:1")
    assert inputs["input_ids"].shape[0] == 3 and inputs["pixel_values"].shape[0] == 1
    assert (inputs["labels"][2] == IGNORE).all()
    plain = collate(rows[:2], Encoder(processor, 512))
    del plain["pixel_values"]
    with torch.no_grad():
        assert model(**inputs).loss.item() == pytest.approx(model(**plain).loss.item(), rel=1e-5)


def _stream(batches: MicroBatches, n: int) -> list[tuple[tuple[str, ...], RankPosition]]:
    return [(next(batches).ids, batches.position) for _ in range(n)]


def test_a_resume_from_any_batch_continues_exactly_where_the_run_stood(rows, llava) -> None:
    grouped = _cfg(batch_size=1, group_by_length=True, length_group_batches=2)
    whole = _stream(_batches(rows, llava[1], grouped), 4)
    assert sorted(ids for ids, _ in whole) == [(f"t:{i}",) for i in range(4)]
    for cut in range(1, 4):
        position = whole[cut - 1][1]
        resumed = _batches(rows[position.next_index :], llava[1], grouped, position)
        assert _stream(resumed, 4 - cut) == whole[cut:]
    with pytest.raises(DataExhaustedError, match="check-data"):
        next(_batches(rows[whole[-1][1].next_index :], llava[1], grouped, whole[-1][1]))
