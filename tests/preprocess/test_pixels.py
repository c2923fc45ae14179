"""uint8 pixel transport: the encoder's deferred pixels, finished, equal the processor's own."""

from __future__ import annotations

from itertools import islice
from pathlib import Path

import numpy as np
import pytest
from transformers import CLIPImageProcessor

from ray_vlm.preprocess.encode import Encoder
from ray_vlm.preprocess.pixels import PixelNormalizer
from ray_vlm.preprocess.processor import load_processor
from ray_vlm.records import load_image, load_registry, read_records, resolve_spec


@pytest.mark.parametrize(
    ("arch", "dataset"),
    [("llava", "demo_vqa"), ("perception_lm", "demo_captions"),
     ("paligemma", "demo_paligemma_train")],
)  # fmt: skip
def test_finished_pixels_equal_the_processors_own(demo_assets: Path, arch: str, dataset: str):
    processor = load_processor(str(demo_assets / "models" / arch))
    encoder = Encoder(processor, max_seq_len=512)
    assert encoder.pixels.deferred
    spec = resolve_spec(dataset, load_registry(demo_assets / "datasets.yaml")[dataset])
    for record in islice(read_records(spec), 3):
        travelling = encoder.encode(record).inputs["pixel_values"]
        assert travelling.dtype == np.uint8 and travelling.shape[0] == 1
        images = [load_image(p) for p in record.images]
        own = processor.image_processor(images=images, return_tensors="np")["pixel_values"]
        finished = encoder.pixels(travelling)
        assert finished.dtype == np.float32
        np.testing.assert_allclose(finished, own.reshape(finished.shape), atol=1e-5)


class _IgnoresSwitches(CLIPImageProcessor):
    """An image processor that always rescales and normalises, whatever it is asked."""

    def preprocess(self, images, **kwargs):
        kwargs.pop("do_rescale", None)
        kwargs.pop("do_normalize", None)
        return super().preprocess(images, **kwargs)


class _Holder:
    def __init__(self, image_processor) -> None:
        self.image_processor = image_processor


def test_pixels_stay_float_when_the_processor_cannot_defer() -> None:
    size = {"shortest_edge": 16}
    normalizer = PixelNormalizer.of(_Holder(_IgnoresSwitches(size=size, crop_size=16)))
    assert not normalizer.deferred and normalizer.processor_kwargs == {}
    pixels = np.full((1, 3, 16, 16), -0.5, np.float32)
    assert normalizer.travelling(pixels).dtype == np.float32
    assert normalizer(pixels) is pixels  # already finished: passed through


def test_a_processor_that_neither_rescales_nor_normalises_ships_raw_bytes() -> None:
    plain = CLIPImageProcessor(
        size={"shortest_edge": 16}, crop_size=16, do_rescale=False, do_normalize=False
    )
    normalizer = PixelNormalizer.of(_Holder(plain))
    assert normalizer == PixelNormalizer(True, 1.0, (), ())
    raw = np.arange(12, dtype=np.uint8).reshape(1, 3, 2, 2)
    np.testing.assert_array_equal(normalizer(raw), raw.astype(np.float32))
