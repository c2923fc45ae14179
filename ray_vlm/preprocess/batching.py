"""Examples -> padded training batches, grouped by length so little compute goes to padding.

``length_grouped(examples, batch_size, group_batches)`` reads ``batch_size * group_batches``
examples at a time (a *window*: ``windows``), sorts them by ``num_tokens``, cuts them into batches
and yields those in an order drawn from the window's number (``window_batches``: the same window
always gives the same batches, so a resumed run can rebuild it; ``group_batches=1`` keeps stream
order). ``collate(examples, pad_id, pixels)`` pads on the right:

- ``input_ids``, ``labels`` (``IGNORE`` on padding), ``attention_mask``, ``token_type_ids``:
  int64 ``[B, L]`` with ``L`` the longest example of the batch;
- ``pixel_values``: float32 ``[num_tiles, C, H, W]``, the tiles of the batch's images in order
  (the order their image tokens appear in ``input_ids``; one tile per image for untiled
  processors), finished by ``pixels`` (the encoder's ``PixelNormalizer``: uint8 -> rescaled and
  normalised as the processor does); ``[num_tiles, 1, C, H, W]`` when ``pixels.tiled``: a
  tiling model (Perception LM) flattens its ``[images, tiles]`` axes, and images whose tile
  counts differ cannot share a ``tiles`` axis, so each tile stands in its own row.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import torch

from ray_vlm.preprocess.encode import IGNORE
from ray_vlm.preprocess.pixels import PixelNormalizer

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


def _pad(rows: list[np.ndarray], value: int, length: int) -> torch.Tensor:
    out = np.full((len(rows), length), value, dtype=np.int64)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return torch.from_numpy(out)


def collate(
    examples: list[Example], pad_id: int, pixels: PixelNormalizer
) -> dict[str, torch.Tensor]:
    """Pad a list of encoded examples into model-ready tensors (shapes in the module docstring)."""
    length = max(int(e["num_tokens"]) for e in examples)
    ids = [np.asarray(e["input_ids"]) for e in examples]
    mask = [np.ones(len(r), dtype=np.int64) for r in ids]
    images = np.concatenate([pixels(np.asarray(e["pixel_values"])) for e in examples])
    if pixels.tiled:
        images = images[:, None]
    return {
        "input_ids": _pad(ids, pad_id, length),
        "labels": _pad([np.asarray(e["labels"]) for e in examples], IGNORE, length),
        "attention_mask": _pad(mask, 0, length),
        "token_type_ids": _pad([np.asarray(e["token_type_ids"]) for e in examples], 0, length),
        "pixel_values": torch.from_numpy(images),
    }
