"""One record -> model inputs, with the model's own processor, loss only on answer tokens.

``Encoder(processor, max_seq_len).encode(record)`` returns an ``Example`` (numpy arrays):

- ``input_ids``  int64 ``[T]``: the rendered conversation, image tokens expanded by the processor;
- ``labels``     int64 ``[T]``: ``input_ids`` on assistant answer tokens (and the end-of-turn token
  the template puts after each answer), ``IGNORE`` (-100) everywhere else;
- ``token_type_ids`` int64 ``[T]``: PaliGemma's prefix (0) / suffix (1) marks; zeros for chat models;
- ``pixel_values`` ``[num_tiles, C, H, W]``: the tiles of the record's images in order (one per
  image for untiled processors; a per-image count for tiling ones such as Perception LM's
  thumb+tile, see ``pixels.py``; ``[0, C, H, W]`` for text-only): uint8, resized and cropped by
  the processor, to be rescaled and normalised by ``encoder.pixels`` (``batching.collate`` does
  it); float32 as the processor made them when ``encoder.pixels.deferred`` is False;
- ``num_images``: the record's image count.

``example.row(record)`` is the flat row the Ray Data pipeline streams (``ROW_COLUMNS``), the form
``batching.collate`` and the training workers take.

Truncation (``T > max_seq_len``) never cuts image tokens: the text tail is cut, and a record whose
image tokens and prompt alone do not fit is rejected with ``EncodeError(kind="too_long")``; when
the processor has settings that decide an image's token count (Perception LM's ``max_num_tiles``,
``processor.image_token_settings``) the message names them and ``model.processor_kwargs``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from transformers import ProcessorMixin

from ray_vlm.preprocess.pixels import PixelNormalizer
from ray_vlm.preprocess.processor import image_token_settings
from ray_vlm.preprocess.prompt import chat_messages, prompt_style
from ray_vlm.records import ASSISTANT, Record, load_image

IGNORE = -100
ROW_COLUMNS = (
    "input_ids", "labels", "token_type_ids", "pixel_values",
    "num_tokens", "num_images", "dataset", "source", "position", "truncated",
)  # fmt: skip


class EncodeError(ValueError):
    """A record that cannot become a training example; ``kind`` is a ``RecordReport`` kind."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind


@dataclass
class Example:
    input_ids: np.ndarray
    labels: np.ndarray
    token_type_ids: np.ndarray
    pixel_values: np.ndarray
    num_images: int
    truncated: bool

    def row(self, record: Record) -> dict[str, Any]:
        """The example as a pipeline row (``ROW_COLUMNS``), tagged with ``record``'s origin."""
        return {
            "input_ids": self.input_ids,
            "labels": self.labels,
            "token_type_ids": self.token_type_ids,
            "pixel_values": self.pixel_values,
            "num_tokens": len(self.input_ids),
            "num_images": self.num_images,
            "dataset": record.dataset,
            "source": record.source,
            "position": record.position,
            "truncated": self.truncated,
        }


def _find(haystack: np.ndarray, needle: np.ndarray, start: int) -> int:
    """First index ``>= start`` where ``needle`` occurs in ``haystack``, or -1."""
    for pos in np.flatnonzero(haystack[start:] == needle[0]) + start:
        if np.array_equal(haystack[pos : pos + len(needle)], needle):
            return int(pos)
    return -1


class Encoder:
    """Encodes records for one processor; holds it and its pixel layout. Not thread-safe."""

    def __init__(self, processor: ProcessorMixin, max_seq_len: int) -> None:
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.max_seq_len = max_seq_len
        self.style = prompt_style(processor)
        self.image_token_id = self.tokenizer.convert_tokens_to_ids(processor.image_token)
        self.pixels = PixelNormalizer.of(processor)
        self.token_settings = image_token_settings(processor)

    def encode(self, record: Record) -> Example:
        try:
            images = [load_image(p) for p in record.images]
        except ValueError as err:
            raise EncodeError("image", str(err)) from None
        if self.style == "prefix_suffix":
            ids, labels, types, pixels = self._prefix_suffix(record, images)
        else:
            ids, labels, types, pixels = self._chat(record, images)
        truncated = len(ids) > self.max_seq_len
        if truncated:
            self._check_truncatable(ids, labels)
            ids, labels, types = (a[: self.max_seq_len] for a in (ids, labels, types))
        return Example(ids, labels, types, pixels, len(images), truncated)

    def _pixels(self, inputs, images: list) -> np.ndarray:
        return self.pixels.pack(inputs["pixel_values"] if images else [])

    def _chat(self, record: Record, images: list) -> tuple[np.ndarray, ...]:
        turns = list(record.turns)
        render = self.processor.apply_chat_template
        full = render(chat_messages(turns, len(images)), tokenize=False)
        # return_tensors=None: a tiling processor's images may have different tile counts.
        inputs = self.processor(
            images=images or None, text=full, return_tensors=None, **self.pixels.processor_kwargs
        )
        ids = np.asarray(inputs["input_ids"][0], dtype=np.int64)
        labels = np.full_like(ids, IGNORE)
        cursor = 0
        for k, turn in enumerate(turns):
            if turn.role != ASSISTANT:
                continue
            before = render(
                chat_messages(turns[:k], len(images)), add_generation_prompt=True, tokenize=False
            )
            through = render(chat_messages(turns[: k + 1], len(images)), tokenize=False)
            if not through.startswith(before):
                raise EncodeError(
                    "invalid", "the chat template does not render turns incrementally"
                )
            target = np.asarray(
                self.tokenizer(through[len(before) :], add_special_tokens=False)["input_ids"]
            )
            pos = _find(ids, target, cursor)
            if pos < 0:
                raise EncodeError(
                    "invalid", f"answer {k // 2 + 1} not found in the tokenized conversation"
                )
            labels[pos : pos + len(target)] = target
            cursor = pos + len(target)
        return ids, labels, np.zeros_like(ids), self._pixels(inputs, images)

    def _prefix_suffix(self, record: Record, images: list) -> tuple[np.ndarray, ...]:
        if not images:
            raise EncodeError("invalid", "PaliGemma-style models need an image in every record")
        prefix = self.processor.image_token * len(images) + record.prompt
        inputs = self.processor(
            images=[images],
            text=[prefix],
            suffix=[record.answer],
            return_tensors=None,
            **self.pixels.processor_kwargs,
        )
        ids = np.asarray(inputs["input_ids"][0], dtype=np.int64)
        labels = np.asarray(inputs["labels"][0], dtype=np.int64)
        types = np.asarray(inputs["token_type_ids"][0], dtype=np.int64)
        return ids, labels, types, self._pixels(inputs, images)

    def _check_truncatable(self, ids: np.ndarray, labels: np.ndarray) -> None:
        image_end = int(np.flatnonzero(ids == self.image_token_id).max(initial=-1)) + 1
        first_label = int(np.flatnonzero(labels != IGNORE).min(initial=len(ids)))
        needed = max(image_end, first_label) + 1
        if needed > self.max_seq_len:
            image_tokens = int((ids == self.image_token_id).sum())
            raise EncodeError(
                "too_long",
                f"image tokens ({image_tokens}) and prompt need {needed} tokens but "
                f"data.max_seq_len={self.max_seq_len}; raise data.max_seq_len"
                + self._shorten_hint(),
            )

    def _shorten_hint(self) -> str:
        if not self.token_settings:
            return " or shorten the prompt"
        now = ", ".join(f"{k}={v}" for k, v in self.token_settings.items())
        return (
            ", shorten the prompt or give each image fewer tokens with model.processor_kwargs "
            f"(this processor has {now})"
        )


def encode_records(
    encoder: Encoder, records: Iterable[Record]
) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Rows (``Example.row``) of the records that encode, and a report item
    ``{dataset, source, reason, kind}`` for each one rejected or truncated."""
    rows, notes = [], []
    for record in records:
        try:
            ex = encoder.encode(record)
        except EncodeError as err:
            notes.append({"dataset": record.dataset, "source": record.source,
                          "reason": str(err), "kind": err.kind})  # fmt: skip
            continue
        if ex.truncated:
            notes.append({"dataset": record.dataset, "source": record.source, "kind": "truncated",
                          "reason": f"text cut to data.max_seq_len={encoder.max_seq_len} tokens"})  # fmt: skip
        rows.append(ex.row(record))
    return rows, notes
