"""How images travel from the preprocessing actors to the model: uint8 tiles, finished in batches.

The model's image processor resizes, crops and tiles in the preprocessing actors (the costly part).
Its last two steps, ``x * rescale_factor`` and ``(x - mean) / std`` per channel, are deferred to
``PixelNormalizer`` in ``batching.collate``, so an image crosses Ray's object store, Arrow blocks
and the training worker's queue in a quarter of the bytes (a 336-px CLIP image: 339 KB, not 1.35
MB). ``PixelNormalizer.of(processor)`` checks once, on a probe image, that normalising the
deferred output reproduces the processor's own; when it cannot (an image processor without
``do_rescale``/``do_normalize`` switches, or one that does more after them) ``deferred`` is False
and pixels travel as the float32 the processor made.

Only ``pixel_values`` ending in ``[C, H, W]`` without padding of the processor's (images, tiles:
``layouts.Layout.chw_pixels``; not Qwen-VL's flattened patches nor anyres patches) can be deferred;
the check also fails, and pixels stay float32, where the processor pads with zero tiles (Mllama),
which normalising would not keep zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

DEFER = {"do_rescale": False, "do_normalize": False}


@dataclass(frozen=True)
class PixelNormalizer:
    deferred: bool
    """Pixels travel as uint8 and this object finishes them; else float32, already finished."""
    scale: float = 1.0
    mean: tuple[float, ...] = ()
    """Per channel (or one value for all); empty when the processor does not normalise."""
    std: tuple[float, ...] = ()

    @classmethod
    def of(cls, processor: Any, chw: bool = True) -> PixelNormalizer:
        """The normaliser for ``processor``'s image processor, checked on a probe image; never
        deferred unless its ``pixel_values`` end in ``[C, H, W]`` (``chw``)."""
        if not chw:
            return cls(False)
        ip = processor.image_processor
        probe = Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 48, 3), np.uint8))
        made = np.asarray(ip(images=[probe], return_tensors="np")["pixel_values"])
        scale = float(ip.rescale_factor) if getattr(ip, "do_rescale", False) else 1.0
        normalize = getattr(ip, "do_normalize", False)
        mean = tuple(np.atleast_1d(ip.image_mean).tolist()) if normalize else ()
        std = tuple(np.atleast_1d(ip.image_std).tolist()) if normalize else ()
        candidate = cls(True, scale, mean, std)
        try:
            raw = ip(images=[probe], return_tensors="np", **DEFER)["pixel_values"]
        except (TypeError, ValueError):
            return cls(False)
        raw = np.asarray(raw)
        if (
            raw.size == 0
            or raw.min() < 0
            or raw.max() > 255
            or not np.array_equal(raw, raw.round())
        ):
            return cls(False)
        finished = candidate(raw.astype(np.uint8))
        return candidate if np.allclose(finished, made, atol=1e-4) else cls(False)

    @property
    def processor_kwargs(self) -> dict[str, bool]:
        """Keyword arguments for the processor calls whose ``pixel_values`` travel."""
        return dict(DEFER) if self.deferred else {}

    @property
    def dtype(self) -> type[np.generic]:
        """The dtype pixels travel in."""
        return np.uint8 if self.deferred else np.float32

    def travelling(self, pixels: np.ndarray) -> np.ndarray:
        """A processor's ``pixel_values`` (called with ``processor_kwargs``) in the travel dtype."""
        return pixels.astype(self.dtype, copy=False)

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        """Travelling pixels ``[N, ..., C, H, W]`` -> float32 as the processor returns them."""
        if pixels.dtype != np.uint8:
            return pixels.astype(np.float32, copy=False)
        out = pixels.astype(np.float32) * np.float32(self.scale)
        if self.mean:
            out -= np.asarray(self.mean, np.float32).reshape(-1, 1, 1)
            out /= np.asarray(self.std, np.float32).reshape(-1, 1, 1)
        return out
