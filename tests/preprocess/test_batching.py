from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch

from ray_vlm.preprocess.batching import collate, length_grouped, padding_share
from ray_vlm.preprocess.encode import IGNORE
from ray_vlm.preprocess.layouts import LAYOUTS
from ray_vlm.preprocess.pixels import PixelNormalizer


def _encoder(layout: str, *input_keys: str) -> SimpleNamespace:
    """What ``collate`` reads of an ``Encoder``: its layout, input keys, pad id (0) and pixel
    transport (float32)."""
    tokenizer = SimpleNamespace(pad_token_id=0)
    return SimpleNamespace(
        layout=LAYOUTS[layout],
        input_keys=input_keys or ("pixel_values",),
        tokenizer=tokenizer,
        pixels=PixelNormalizer(False),
    )


def _example(n: int, images: int, tiles: int | None = None) -> dict:
    ids = np.arange(1, n + 1)
    return {
        "input_ids": ids,
        "labels": np.where(ids > n - 2, ids, IGNORE),
        "token_type_ids": np.zeros(n, dtype=np.int64),
        "pixel_values": np.ones((images if tiles is None else tiles, 3, 4, 4), dtype=np.float32),
        "num_tokens": n,
        "num_images": images,
    }


def test_length_grouping_cuts_padding_and_keeps_every_example() -> None:
    rng = np.random.default_rng(0)
    examples = [_example(int(n), 1) for n in rng.integers(5, 200, size=256)]
    naive = list(length_grouped(examples, batch_size=8, group_batches=1))
    grouped = list(length_grouped(examples, batch_size=8, group_batches=16))
    assert sorted(id(e) for b in grouped for e in b) == sorted(id(e) for e in examples)
    assert padding_share(grouped) < 0.1 < padding_share(naive)


def test_collate_pads_right_and_concatenates_images() -> None:
    batch = collate(
        [_example(3, 1), _example(5, 0), _example(2, 2)],
        _encoder("tiles", "pixel_values", "token_type_ids"),
    )
    assert (
        batch["input_ids"].shape == batch["labels"].shape == batch["attention_mask"].shape == (3, 5)
    )
    assert batch["input_ids"][0].tolist() == [1, 2, 3, 0, 0]
    assert batch["labels"][0].tolist() == [IGNORE, 2, 3, IGNORE, IGNORE]
    assert batch["attention_mask"].sum(1).tolist() == [3, 5, 2]
    assert batch["token_type_ids"].shape == (3, 5)
    assert batch["pixel_values"].shape == (3, 3, 4, 4)


def test_collate_gives_tiling_models_every_tile_in_order() -> None:
    """Perception LM thumb+tile: images of 3 and 2 tiles, then a text-only example."""
    examples = [_example(4, 1, tiles=3), _example(5, 1, tiles=2), _example(2, 0)]
    examples[0]["pixel_values"] *= np.arange(3, dtype=np.float32).reshape(3, 1, 1, 1)
    examples[1]["pixel_values"] *= np.arange(3, 5, dtype=np.float32).reshape(2, 1, 1, 1)
    batch = collate(examples, _encoder("tile_stacks"))
    assert batch["pixel_values"].shape == (5, 1, 3, 4, 4)
    assert batch["pixel_values"][:, 0, 0, 0, 0].tolist() == [0, 1, 2, 3, 4]


def test_per_sample_inputs_stack_with_their_image_axis_zero_padded() -> None:
    """Idefics3 / SmolVLM: ``[images, C, H, W]`` per example -> ``[B, max images, C, H, W]``."""
    examples = [_example(3, 2), _example(4, 1), _example(2, 0)]
    for e in examples:
        e["pixel_attention_mask"] = np.ones((e["num_images"], 4, 4), dtype=bool)
    batch = collate(examples, _encoder("image_splits", "pixel_values", "pixel_attention_mask"))
    assert batch["pixel_values"].shape == (3, 2, 3, 4, 4)
    assert batch["pixel_values"].sum((2, 3, 4)).tolist() == [[48, 48], [48, 0], [0, 0]]
    assert batch["pixel_attention_mask"].dtype == torch.bool
    assert batch["pixel_attention_mask"].sum((2, 3)).tolist() == [[16, 16], [16, 0], [0, 0]]


def test_image_rows_concatenate_with_inner_axes_padded() -> None:
    """LLaVA-NeXT anyres: images of 3 and 5 patches -> ``[2, 5, C, H, W]``, ``image_sizes`` rows."""
    examples = [_example(3, 1), _example(4, 1)]
    examples[0]["pixel_values"] = np.ones((1, 3, 3, 4, 4), np.float32)
    examples[1]["pixel_values"] = np.ones((1, 5, 3, 4, 4), np.float32)
    for e, size in zip(examples, ([32, 48], [64, 64]), strict=True):
        e["image_sizes"] = np.array([size])
    batch = collate(examples, _encoder("anyres", "pixel_values", "image_sizes"))
    assert batch["pixel_values"].shape == (2, 5, 3, 4, 4)
    assert batch["pixel_values"].sum((2, 3, 4)).tolist() == [[48] * 3 + [0] * 2, [48] * 5]
    assert batch["image_sizes"].tolist() == [[32, 48], [64, 64]]
