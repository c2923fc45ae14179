"""A rank's micro-batches: its encoded rows -> length-grouped, padded model inputs, exactly once.

``MicroBatches(rows, cfg, processor, start, index_of)`` reads the rank's rows (its
sequence of the run's ``DataOrder`` from ``start.next_index`` on, each row carrying its plan
``position``), cuts them into windows of ``batch_size x data.length_group_batches`` examples
(``data.group_by_length``), sorts each window by length into batches in an order drawn from the
window's number, pads them with ``preprocess.batching.collate``. After a resume the first window
is the one the checkpoint stood in: rebuilt from the same rows, its batches already trained
(``start.done``) are skipped. ``position`` is where the rank stands after the last batch handed
out (what a checkpoint saves). ``next()`` returns a ``MicroBatch``: the model's keyword arguments
(``batching.collate``'s CPU tensors: every input the processor made), the real examples' count,
tokens, answer tokens and record ids. A rank whose rows run out raises ``DataExhaustedError``
(the plan holds a margin for rejected records; see ``data_plan``).

ZeRO-3 trap: a rank whose micro-batch holds no image would skip the vision tower, while ranks with
images gather its parameters; the collectives would no longer match and every rank would hang.
So a micro-batch without images gets one dummy example appended: a black image with a one-word
exchange, all labels ``IGNORE``. Every rank then runs the same modules each step; the dummy adds
nothing to the loss.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from transformers import ProcessorMixin

from ray_vlm.config import FinetuneConfig
from ray_vlm.preprocess.batching import collate, dummy_image_example, window_batches, windows
from ray_vlm.preprocess.encode import Encoder
from ray_vlm.train.data_order import RankPosition
from ray_vlm.train.loss import answer_tokens

Inputs = dict[str, torch.Tensor]


class DataExhaustedError(RuntimeError):
    """A rank trained on every record of its share of the plan before the run's last step."""


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


class ModelInputs:
    """Examples (encoded rows) -> one padded batch of model keyword arguments (``collate``'s CPU
    tensors, ``labels`` included), the dummy image example appended when no example has an image
    (the ZeRO-3 trap above; ``[]`` gives the dummy alone)."""

    def __init__(self, processor: ProcessorMixin, max_seq_len: int) -> None:
        self.encoder = Encoder(processor, max_seq_len)
        self.dummy = dummy_image_example(self.encoder)

    def __call__(self, examples: list[dict[str, Any]]) -> Inputs:
        if not any(int(e["num_images"]) for e in examples):
            examples = [*examples, self.dummy]
        return collate(examples, self.encoder)


class MicroBatches:
    def __init__(
        self,
        rows: Iterable[dict[str, Any]],
        cfg: FinetuneConfig,
        processor: ProcessorMixin,
        start: RankPosition,
        index_of: Callable[[int], int],
    ) -> None:
        self.cfg = cfg
        self.inputs = ModelInputs(processor, cfg.data.max_seq_len)
        self.position = start
        self._index_of = index_of
        self._rows = iter(rows)
        self._batches = self._stream(self._rows, start)

    def __iter__(self) -> MicroBatches:
        return self

    def __next__(self) -> MicroBatch:
        return next(self._batches)

    def close(self) -> None:
        """Stop reading rows: a Ray Data stream shuts its execution down, which withdraws its
        requests to the cluster's autoscaler (left behind, they keep nodes up for minutes)."""
        self._batches.close()
        close = getattr(self._rows, "close", None)
        if close is not None:
            close()

    def _stream(self, rows: Iterable[dict[str, Any]], start: RankPosition) -> Iterator[MicroBatch]:
        data = self.cfg.data
        size = self.cfg.batch_size * (data.length_group_batches if data.group_by_length else 1)
        trained = set(start.done)
        for number, window in enumerate(windows(rows, size), start=start.window):
            first = self._index_of(int(window[0]["position"]))
            after = self._index_of(int(window[-1]["position"])) + 1
            batches = window_batches(
                window, self.cfg.batch_size, data.group_by_length, self.cfg.seed, number
            )
            done: list[int] = []
            for k, examples in enumerate(batches):
                positions = [int(e["position"]) for e in examples]
                done += positions
                last = k == len(batches) - 1
                self.position = (
                    RankPosition(after, number + 1)
                    if last
                    else RankPosition(first, number, tuple(done))
                )
                if trained.issuperset(positions):
                    continue  # a rebuilt window: this batch trained before the checkpoint
                yield self._micro_batch(examples)
            trained = set()
        raise DataExhaustedError(
            f"a training worker used up its share of the data plan at index "
            f"{self.position.next_index}: more records of data.datamix={data.datamix!r} were "
            "rejected than the plan allows for; run `ray-vlm check-data` with the same config"
        )

    def _micro_batch(self, examples: list[dict[str, Any]]) -> MicroBatch:
        tokens = sum(int(e["num_tokens"]) for e in examples)
        ids = tuple(str(e["source"]) for e in examples)
        inputs = self.inputs(examples)
        return MicroBatch(inputs, len(examples), tokens, answer_tokens(inputs["labels"]), ids)
