"""A worker's micro-batches: its Ray Data shard -> length-grouped, padded model inputs, forever.

``MicroBatches(shard, cfg, processor, skip)`` iterates the shard (``ray.train.get_dataset_shard``),
skipping the first ``skip`` rows (the data position of a resumed run), groups rows by length
(``data.group_by_length``), pads them with ``preprocess.batching.collate`` and starts a new pass
over the shard when it runs out. ``next()`` returns a ``MicroBatch``: the model's keyword arguments
(``batching.collate``'s CPU tensors; ``token_type_ids`` only for models whose ``forward`` takes
them), the real examples' count, tokens, answer tokens and record ids.

ZeRO-3 trap: a rank whose micro-batch holds no image would skip the vision tower, while ranks with
images gather its parameters; the collectives would no longer match and every rank would hang.
So a micro-batch without images gets one dummy example appended: a black image with a one-word
exchange, all labels ``IGNORE``. Every rank then runs the same modules each step; the dummy adds
nothing to the loss.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
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
from ray_vlm.train.loss import answer_tokens

Inputs = dict[str, torch.Tensor]


@dataclass(frozen=True)
class MicroBatch:
    inputs: Inputs
    """Model keyword arguments, ``labels`` included (``IGNORE`` off the answers)."""
    examples: int
    """Real examples (the dummy image example is not counted)."""
    tokens: int
    """Unpadded tokens of the real examples."""
    answer_tokens: int
    """Tokens the loss counts (``loss.answer_tokens``)."""
    ids: tuple[str, ...]
    """The real examples' record ids (``file:line``), in batch order."""


def dummy_image_example(processor: ProcessorMixin, max_seq_len: int) -> dict[str, Any]:
    """An encoded example with one black image and no supervised tokens."""
    with tempfile.TemporaryDirectory() as tmp:
        image = Path(tmp) / "dummy.png"
        Image.new("RGB", (32, 32)).save(image)
        record = Record("dummy", "dummy", (str(image),), (Turn(USER, "x"), Turn(ASSISTANT, "x")))
        ex = Encoder(processor, max_seq_len).encode(record)
    return {**ex.row(record), "labels": np.full_like(ex.labels, IGNORE)}


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

    def __next__(self) -> MicroBatch:
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

    def _forever(self) -> Iterator[MicroBatch]:
        group = self.cfg.data.length_group_batches if self.cfg.data.group_by_length else 1
        epoch = 0
        while True:
            rows = self._rows()
            for examples in length_grouped(rows, self.cfg.batch_size, group, self.cfg.seed + epoch):
                tokens = sum(int(e["num_tokens"]) for e in examples)
                ids = tuple(str(e["source"]) for e in examples)
                real = len(examples)
                if not any(int(e["num_images"]) for e in examples):
                    examples = [*examples, self.dummy]
                inputs = collate(examples, self.pad_id, self.pixels)
                if not self.token_types:
                    del inputs["token_type_ids"]
                yield MicroBatch(inputs, real, tokens, answer_tokens(inputs["labels"]), ids)
            epoch += 1
