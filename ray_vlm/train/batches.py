"""A worker's micro-batches: its Ray Data shard -> length-grouped, padded model inputs, forever.

``MicroBatches(shard, cfg, processor, skip)`` iterates the shard (``ray.train.get_dataset_shard``),
skipping the first ``skip`` rows (the data position of a resumed run), groups rows by length
(``data.group_by_length``), pads them with ``preprocess.batching.collate`` and starts a new pass
over the shard when it runs out. ``next()`` returns ``(inputs, num_examples, num_tokens)``: the
model's keyword arguments (``batching.collate``'s tensors; ``token_type_ids`` only for models whose
``forward`` takes them) and the count of real examples and tokens in it.

ZeRO-3 trap: a rank whose micro-batch holds no image would skip the vision tower, while ranks with
images gather its parameters; the collectives would no longer match and every rank would hang.
So a micro-batch without images gets one dummy example appended: a black image with a one-word
exchange, all labels ``IGNORE``. Every rank then runs the same modules each step; the dummy adds
nothing to the loss.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from transformers import ProcessorMixin

from ray_vlm.config import FinetuneConfig
from ray_vlm.preprocess.batching import collate, length_grouped
from ray_vlm.preprocess.encode import IGNORE, Encoder
from ray_vlm.preprocess.pixels import PixelNormalizer
from ray_vlm.records import ASSISTANT, USER, Record, Turn

Inputs = dict[str, torch.Tensor]


def dummy_image_example(processor: ProcessorMixin, max_seq_len: int) -> dict[str, Any]:
    """An encoded example with one black image and no supervised tokens."""
    with tempfile.TemporaryDirectory() as tmp:
        image = Path(tmp) / "dummy.png"
        Image.new("RGB", (32, 32)).save(image)
        record = Record("dummy", "dummy", (str(image),), (Turn(USER, "x"), Turn(ASSISTANT, "x")))
        ex = Encoder(processor, max_seq_len).encode(record)
    return {
        "input_ids": ex.input_ids,
        "labels": np.full_like(ex.labels, IGNORE),
        "token_type_ids": ex.token_type_ids,
        "pixel_values": ex.pixel_values,
        "num_tokens": len(ex.input_ids),
        "num_images": ex.num_images,
    }


class MicroBatches:
    def __init__(
        self,
        shard,
        cfg: FinetuneConfig,
        processor: ProcessorMixin,
        skip: int,
        token_types: bool,
    ) -> None:
        self.shard = shard
        self.cfg = cfg
        self.pad_id = processor.tokenizer.pad_token_id
        self.pixels = PixelNormalizer.of(processor)
        self.dummy = dummy_image_example(processor, cfg.data.max_seq_len)
        self.skip = skip
        self.token_types = token_types
        self._batches = self._forever()

    def __iter__(self) -> MicroBatches:
        return self

    def __next__(self) -> tuple[Inputs, int, int]:
        return next(self._batches)

    def _rows(self) -> Iterator[dict[str, Any]]:
        seen = 0
        for row in self.shard.iter_rows():
            seen += 1
            if self.skip:
                self.skip -= 1
                continue
            yield row
        if seen == 0:
            raise RuntimeError(
                f"no usable training records in data.datamix={self.cfg.data.datamix!r}: "
                "run `ray-vlm check-data` with the same config to see why"
            )

    def _forever(self) -> Iterator[tuple[Inputs, int, int]]:
        group = self.cfg.data.length_group_batches if self.cfg.data.group_by_length else 1
        epoch = 0
        while True:
            rows = self._rows()
            for examples in length_grouped(rows, self.cfg.batch_size, group, self.cfg.seed + epoch):
                n_tokens = sum(int(e["num_tokens"]) for e in examples)
                n_examples = len(examples)
                if not any(int(e["num_images"]) for e in examples):
                    examples = [*examples, self.dummy]
                inputs = collate(examples, self.pad_id, self.pixels)
                if not self.token_types:
                    del inputs["token_type_ids"]
                yield inputs, n_examples, n_tokens
            epoch += 1
