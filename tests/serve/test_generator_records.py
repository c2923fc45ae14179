"""``VLMGenerator.generate_records`` run in-process (no Serve): however many record batches wait
at a replica, at most ``INPUTS_HELD`` hold model inputs at once, and each is answered whole."""

from __future__ import annotations

import asyncio
from pathlib import Path

from ray_vlm.config.serve_schema import ServeConfig
from ray_vlm.model import Generation, SamplingParams
from ray_vlm.preprocess import question_turns
from ray_vlm.serve.generator import INPUTS_HELD, VLMGenerator
from ray_vlm.serve.request import RecordBatch, RecordPrompt


def test_waiting_batches_hold_no_model_inputs(demo_assets: Path) -> None:
    replica = VLMGenerator.func_or_class(ServeConfig(ckpt=str(demo_assets / "models/llava")))
    images = sorted((demo_assets / "data/plm/shapes/images").glob("*.png"))[:12]
    turns = tuple(question_turns("What colour is the shape?"))
    batches = [
        RecordBatch(
            tuple(RecordPrompt((str(p),), turns) for p in images[i : i + 3]),
            SamplingParams(max_new_tokens=2),
        )
        for i in range(0, len(images), 3)
    ]
    held, most = 0, 0
    read_and_encode = replica._read_and_encode

    def counted(batch: RecordBatch):
        nonlocal held, most
        held += 1
        most = max(most, held)
        return read_and_encode(batch)

    replica._read_and_encode = counted

    async def answer(batch: RecordBatch) -> list:
        nonlocal held
        results = await replica.generate_records(batch)
        held -= 1  # before any waiting batch can start: the event loop has not run yet
        return results

    async def all_batches() -> list[list]:
        return await asyncio.gather(*(answer(b) for b in batches))

    answers = asyncio.run(all_batches())
    assert most == INPUTS_HELD
    assert [len(a) for a in answers] == [3, 3, 3, 3]
    assert all(isinstance(g, Generation) for a in answers for g in a)
