"""One record -> model inputs, with the model's own processor, loss only on answer tokens.

``Encoder(processor, max_seq_len, max_image_pixels).encode(record)`` returns an ``Example`` (numpy
arrays):

- ``input_ids``  int64 ``[T]``: the rendered conversation, image tokens expanded by the processor;
- ``labels``     int64 ``[T]``: ``input_ids`` on assistant answer tokens (and the end-of-turn token
  the template puts after each answer), ``IGNORE`` (-100) everywhere else;
- ``inputs``: every other model input the processor made for the record, in the example form of
  its kind in the processor's layout (``layouts.py``): ``pixel_values`` of any layout,
  ``token_type_ids`` (Gemma 3's image tokens, PaliGemma's prefix), ``image_grid_thw``,
  ``image_sizes``, ``pixel_attention_mask``, Mllama's aspect ratios and cross-attention mask.
  ``pixel_values`` of channel-first layouts travel as uint8, resized and cropped by the processor,
  to be rescaled and normalised by ``encoder.pixels`` (``batching.collate`` does it); float32 as
  the processor made them when ``encoder.pixels.deferred`` is False. A text-only record carries
  the image keys with no images (``[0, ...]``), so every example of a processor has the same keys
  (``encoder.input_keys``);
- ``num_images``: the record's image count.

``example.row(record)`` is the flat row the Ray Data pipeline streams (``ROW_COLUMNS`` and the
input keys), the form ``batching.collate`` and the training workers take.

Truncation (``T > max_seq_len``) never cuts image tokens: the text tail is cut (with the per-token
inputs), and a record whose image tokens and prompt alone do not fit is rejected with
``EncodeError(kind="too_long")``; when the processor has settings that decide an image's token
count (Perception LM's ``max_num_tiles``, ``processor.image_token_settings``) the message names
them and ``model.processor_kwargs``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image
from transformers import ProcessorMixin

from ray_vlm.preprocess.layouts import (
    TEXT_KEYS,
    TOKEN,
    LayoutError,
    check_keys,
    layout_for,
    layout_listed,
)
from ray_vlm.preprocess.pixels import PixelNormalizer
from ray_vlm.preprocess.processor import image_token_settings
from ray_vlm.preprocess.prompt import chat_messages, prompt_style
from ray_vlm.records import ASSISTANT, USER, Record, Turn, load_image

IGNORE = -100
ROW_COLUMNS = (
    "input_ids", "labels", "num_tokens", "num_images", "dataset", "source", "position", "truncated",
)  # fmt: skip
"""The columns of every row; the processor's model inputs (``Encoder.input_keys``) follow."""
PROBE = (Turn(USER, "What is it?"), Turn(ASSISTANT, "a shape"))


class EncodeError(ValueError):
    """A record that cannot become a training example; ``kind`` is a ``RecordReport`` kind."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind

    def __reduce__(self):  # raised in a Ray task, it must unpickle where it is caught
        return EncodeError, (self.kind, str(self))


@dataclass
class Example:
    input_ids: np.ndarray
    labels: np.ndarray
    inputs: dict[str, np.ndarray]
    num_images: int
    truncated: bool

    def row(self, record: Record) -> dict[str, Any]:
        """The example as a pipeline row (``ROW_COLUMNS`` + inputs), tagged with its origin."""
        return {
            "input_ids": self.input_ids,
            "labels": self.labels,
            "num_tokens": len(self.input_ids),
            "num_images": self.num_images,
            "dataset": record.dataset,
            "source": record.source,
            "position": record.position,
            "truncated": self.truncated,
            **self.inputs,
        }


def _one_line(err: Exception) -> str:
    return " ".join(f"{type(err).__name__}: {err}".split())


def _find(haystack: np.ndarray, needle: np.ndarray, start: int) -> int:
    """First index ``>= start`` where ``needle`` occurs in ``haystack``, or -1."""
    for pos in np.flatnonzero(haystack[start:] == needle[0]) + start:
        if np.array_equal(haystack[pos : pos + len(needle)], needle):
            return int(pos)
    return -1


class Encoder:
    """Encodes records for one processor; holds it, its layout and its pixel transport. Built on a
    probe record with one image: ``LayoutError`` when the processor fails on it (its error in one
    line) or its output has a key its layout does not carry to the model. Not thread-safe."""

    def __init__(
        self, processor: ProcessorMixin, max_seq_len: int, max_image_pixels: int | None = None
    ) -> None:
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.max_seq_len = max_seq_len
        self.max_image_pixels = max_image_pixels
        """``data.max_image_pixels``: a record with a larger image is a bad record (``image``)."""
        self.style = prompt_style(processor)
        self.image_token_id = self.tokenizer.convert_tokens_to_ids(processor.image_token)
        self.image_token_ids = np.asarray(
            [i for i in getattr(processor, "image_token_ids", ()) if i is not None]
            or [self.image_token_id]
        )
        """The tokens an image expands to (Gemma 3: its soft tokens, not the ``<start_of_image>``
        placeholder that ``processor.image_token`` names)."""
        self.layout = layout_for(processor)
        if not layout_listed(processor):  # an unknown family: what it declares must fit first
            check_keys(self.layout, processor, list(processor.model_input_names))
        if self.style == "chat" and not getattr(processor, "chat_template", None):
            raise LayoutError(
                f"{type(processor).__name__} has no chat template, so conversations cannot be "
                "rendered for it; fine-tune an instruct checkpoint or save a chat_template with "
                "its processor"
            )
        self.token_settings = image_token_settings(processor)
        probe = Image.new("RGB", (48, 40))
        try:
            self.pixels = PixelNormalizer.of(processor, self.layout.chw_pixels)
            ids, _, raw = self._processed(PROBE, [probe])
        except LayoutError:
            raise
        except Exception as err:  # the processor's own failure, of any type: one line, no traceback
            raise LayoutError(
                f"{type(processor).__name__} fails on a probe record (one 48x40 image, one question "
                f"and answer), so ray_vlm cannot encode records with it: {_one_line(err)}"
            ) from err
        check_keys(self.layout, processor, list(raw))
        self._empty = {
            key: value[:0] if value.ndim else np.zeros_like(value)
            for key, value in self._arrays(raw, len(ids)).items()
        }
        """Each input of a record without images: no rows (a count: 0; a per-token key: no token,
        its other axes), for the keys a text-only output lacks."""

    @property
    def input_keys(self) -> tuple[str, ...]:
        """The model inputs every example carries besides ``input_ids`` and ``labels``."""
        return tuple(self._empty)

    def encode(self, record: Record) -> Example:
        try:
            images = [load_image(p, self.max_image_pixels) for p in record.images]
        except ValueError as err:
            raise EncodeError("image", str(err)) from None
        if self.style == "prefix_suffix" and not images:
            raise EncodeError("invalid", "PaliGemma-style models need an image in every record")
        try:
            ids, labels, raw = self._processed(record.turns, images)
            inputs = self._arrays(raw, len(ids))
        except EncodeError:
            raise
        except Exception as err:  # the processor's own, of any type: a reported record
            raise EncodeError("invalid", f"the processor fails on it: {_one_line(err)}") from None
        unplaced = set(raw) - set(TEXT_KEYS) - set(self._empty)
        if unplaced:
            raise EncodeError("invalid", f"the processor returned {', '.join(sorted(unplaced))} "
                              "for it, which its probe record did not have")  # fmt: skip
        for key, empty in self._empty.items():
            if key not in inputs and self.layout.keys[key] == TOKEN:
                inputs[key] = np.zeros((len(ids), *empty.shape[1:]), empty.dtype)
            elif key not in inputs:
                inputs[key] = empty
        truncated = len(ids) > self.max_seq_len
        if truncated:
            self._check_truncatable(ids, labels)
            ids, labels = ids[: self.max_seq_len], labels[: self.max_seq_len]
            for key in inputs:
                if self.layout.keys[key] == TOKEN:
                    inputs[key] = inputs[key][: self.max_seq_len]
        return Example(ids, labels, inputs, len(images), truncated)

    def _arrays(self, raw: Mapping[str, Any], num_tokens: int) -> dict[str, np.ndarray]:
        """The processor's model inputs in their example form, pixels in the travel dtype."""
        inputs = self.layout.example_arrays(raw, num_tokens)
        if "pixel_values" in inputs:
            inputs["pixel_values"] = self.pixels.travelling(inputs["pixel_values"])
        return inputs

    def _processed(
        self, turns: tuple[Turn, ...], images: list
    ) -> tuple[np.ndarray, np.ndarray, Mapping[str, Any]]:
        """``input_ids``, ``labels`` and the processor's whole output for one record."""
        if self.style == "prefix_suffix":
            return self._prefix_suffix(turns, images)
        return self._chat(turns, images)

    def _call(self, images: list, **kwargs: Any) -> Mapping[str, Any]:
        """The processor on one record: its images as the one sample's list (a processor that
        counts images per sample, as LLaVA-OneVision does for multi-image records, sees them so)."""
        return self.processor(
            images=[images] if images else None,
            return_tensors=self.layout.return_tensors,
            **self.pixels.processor_kwargs,
            **kwargs,
        )

    def _chat(self, turns: tuple[Turn, ...], images: list) -> tuple[np.ndarray, np.ndarray, Any]:
        turns = list(turns)
        render = self.processor.apply_chat_template
        full = render(chat_messages(turns, len(images)), tokenize=False)
        inputs = self._call(images, text=full)
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
        return ids, labels, inputs

    def _prefix_suffix(
        self, turns: tuple[Turn, ...], images: list
    ) -> tuple[np.ndarray, np.ndarray, Any]:
        prompt, answer = turns[0].text, turns[-1].text  # PaliGemma has no turns: prefix, suffix
        inputs = self._call(
            images, text=[self.processor.image_token * len(images) + prompt], suffix=[answer]
        )
        ids = np.asarray(inputs["input_ids"][0], dtype=np.int64)
        return ids, np.asarray(inputs["labels"][0], dtype=np.int64), inputs

    def _check_truncatable(self, ids: np.ndarray, labels: np.ndarray) -> None:
        image_end = int(np.flatnonzero(np.isin(ids, self.image_token_ids)).max(initial=-1)) + 1
        first_label = int(np.flatnonzero(labels != IGNORE).min(initial=len(ids)))
        needed = max(image_end, first_label) + 1
        if needed > self.max_seq_len:
            image_tokens = int(np.isin(ids, self.image_token_ids).sum())
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
