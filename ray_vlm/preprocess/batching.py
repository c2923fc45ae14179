"""Examples -> padded training batches, grouped by length so little compute goes to padding.

``length_grouped(examples, batch_size, group_batches)`` reads ``batch_size * group_batches``
examples at a time (a *window*: ``windows``), sorts them by ``num_tokens``, cuts them into batches
and yields those in an order drawn from the window's number (``window_batches``: the same window
always gives the same batches, so a resumed run can rebuild it; ``group_batches=1`` keeps stream
order). ``collate(examples, encoder)`` pads on the right:

- ``input_ids``, ``labels`` (``IGNORE`` on padding), ``attention_mask``: int64 ``[B, L]`` with
  ``L`` the longest example of the batch;
- every other model input by its kind in the processor's layout (``layouts.py``): per-token keys
  ``[B, L, ...]``, image rows concatenated in batch order (the order their image tokens appear in
  ``input_ids``), per-sample values stacked; other axes padded to the batch's longest with 0;
  ``pixel_values`` finished by ``encoder.pixels`` (``PixelNormalizer``: uint8 -> rescaled
  and normalised as the processor does) before padding, so padding stays 0 as the processor's;
  Perception LM's tiles ``[tiles, 1, C, H, W]`` (``Layout.tile_stacks``).
"""

from __future__ import annotations

import random
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ray_vlm.preprocess.encode import IGNORE, Encoder
from ray_vlm.preprocess.layouts import IMAGE
from ray_vlm.records import ASSISTANT, USER, Record, Turn

Example = dict[str, Any]


def windows(examples: Iterable[Example], size: int) -> Iterator[list[Example]]:
    """Consecutive lists of ``size`` examples; a short last one is kept."""
    window: list[Example] = []
    for example in examples:
        window.append(example)
        if len(window) == size:
            yield window
            window = []
    if window:
        yield window


def window_batches(
    window: list[Example], batch_size: int, sort: bool, seed: int, number: int
) -> list[list[Example]]:
    """The batches of one window: sorted by length and in an order drawn from ``(seed, number)``
    when ``sort``, else in stream order."""
    if sort:
        window = sorted(window, key=lambda e: int(e["num_tokens"]))
    batches = [window[i : i + batch_size] for i in range(0, len(window), batch_size)]
    if sort:
        random.Random(seed * 1_000_003 + number).shuffle(batches)
    return batches


def length_grouped(
    examples: Iterable[Example], batch_size: int, group_batches: int, seed: int = 0
) -> Iterator[list[Example]]:
    """Batches of ``batch_size`` examples of similar length; a short last batch is kept."""
    for number, window in enumerate(windows(examples, batch_size * group_batches)):
        yield from window_batches(window, batch_size, group_batches > 1, seed, number)


def padding_share(batches: Iterable[list[Example]]) -> float:
    """Fraction of token slots in padded batches that are padding."""
    real = padded = 0
    for batch in batches:
        lengths = [int(e["num_tokens"]) for e in batch]
        real += sum(lengths)
        padded += max(lengths) * len(lengths)
    return 1 - real / padded if padded else 0.0


def _joined(arrays: list[np.ndarray], stack: bool, value: int) -> np.ndarray:
    """``arrays`` stacked on a new first axis (``stack``) or concatenated on their first, every
    other axis padded at its end to the longest, with ``value``."""
    arrays = [a[None] if stack else a for a in arrays]
    shape = np.max([a.shape for a in arrays], axis=0)
    shape[0] = sum(a.shape[0] for a in arrays)
    out = np.full(shape, value, dtype=np.result_type(*arrays))
    row = 0
    for a in arrays:
        out[(slice(row, row + a.shape[0]), *(slice(0, n) for n in a.shape[1:]))] = a
        row += a.shape[0]
    return out


def collate(examples: list[Example], encoder: Encoder) -> dict[str, torch.Tensor]:
    """Pad a list of examples ``encoder`` made into model-ready tensors (shapes in the module
    docstring)."""
    layout, pad_id = encoder.layout, encoder.tokenizer.pad_token_id
    ids = [np.asarray(e["input_ids"]) for e in examples]
    out = {
        "input_ids": _joined(ids, True, pad_id),
        "labels": _joined([np.asarray(e["labels"]) for e in examples], True, IGNORE),
        "attention_mask": _joined([np.ones(len(r), dtype=np.int64) for r in ids], True, 0),
    }
    for key in encoder.input_keys:  # every example carries them all (``Encoder.encode``)
        kind = layout.keys[key]
        arrays = [np.asarray(e[key]) for e in examples]
        if key == "pixel_values":
            arrays = [encoder.pixels(a) for a in arrays]
        out[key] = _joined(arrays, kind != IMAGE, 0)
        if key == "pixel_values" and layout.tile_stacks:
            out[key] = out[key][:, None]
    return {key: torch.from_numpy(value) for key, value in out.items()}


def dummy_image_example(encoder: Encoder) -> dict[str, Any]:
    """An encoded example with one black image and no supervised tokens: what training appends
    to a micro-batch without images (``train.batches``: the ZeRO-3 trap). ``EncodeError``
    (``too_long``) when one image and a one-word exchange do not fit ``max_seq_len``."""
    with tempfile.TemporaryDirectory() as tmp:
        image = Path(tmp) / "dummy.png"
        Image.new("RGB", (32, 32)).save(image)
        record = Record("dummy", "dummy", (str(image),), (Turn(USER, "x"), Turn(ASSISTANT, "x")))
        ex = encoder.encode(record)
    return {**ex.row(record), "labels": np.full_like(ex.labels, IGNORE)}
