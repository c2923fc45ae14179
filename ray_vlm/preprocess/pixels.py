"""How images travel from the preprocessing actors to the model: uint8 tiles, finished in batches.

The model's image processor resizes, crops and tiles in the preprocessing actors (the costly part).
Its last two steps, ``x * rescale_factor`` and ``(x - mean) / std`` per channel, are deferred to
``PixelNormalizer`` in ``batching.collate``, so an image crosses Ray's object store, Arrow blocks
and the training worker's queue in a quarter of the bytes (a 336-px CLIP image: 339 KB, not 1.35
MB). ``PixelNormalizer.of(processor)`` checks once, on a probe image, that normalising the
deferred output reproduces the processor's own; when it cannot (an image processor without
``do_rescale``/``do_normalize`` switches, or one that does more after them) ``deferred`` is False
and pixels travel as the float32 the processor made.

Tiles: most processors make one ``[C, H, W]`` array per image. Tiling ones (Perception LM) make a
``[num_tiles, C, H, W]`` stack per image whose count depends on the image (thumb+tile: a thumbnail
plus as many 448-px tiles as its aspect ratio takes, up to ``max_num_tiles``) and the model
flattens images and tiles into one axis. Either way an example travels as the ``[num_tiles, C, H,
W]`` tiles of its images in order (an untiled image is one tile), and ``tiled`` tells ``collate``
to hand the model the tile axis it expects.
"""

from __future__ import annotations

from collections.abc import Sequence
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
    tiled: bool = False
    """The processor gives each image a stack of tiles, ``pixel_values`` ``[images, tiles, C, H,
    W]`` (Perception LM); else one ``[C, H, W]`` array per image."""
    tile_shape: tuple[int, ...] = ()
    """``(C, H, W)`` of one tile (an image of an untiled processor)."""

    @classmethod
    def of(cls, processor: Any) -> PixelNormalizer:
        """The normaliser for ``processor``'s image processor, checked on a probe image."""
        ip = processor.image_processor
        probe = Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 48, 3), np.uint8))
        made = np.asarray(ip(images=[probe], return_tensors="np")["pixel_values"])
        layout = {"tiled": made.ndim == 5, "tile_shape": made.shape[-3:]}
        scale = float(ip.rescale_factor) if getattr(ip, "do_rescale", False) else 1.0
        normalize = getattr(ip, "do_normalize", False)
        mean = tuple(np.atleast_1d(ip.image_mean).tolist()) if normalize else ()
        std = tuple(np.atleast_1d(ip.image_std).tolist()) if normalize else ()
        candidate = cls(True, scale, mean, std, **layout)
        try:
            raw = ip(images=[probe], return_tensors="np", **DEFER)["pixel_values"]
        except (TypeError, ValueError):
            return cls(False, **layout)
        raw = np.asarray(raw)
        if (
            raw.size == 0
            or raw.min() < 0
            or raw.max() > 255
            or not np.array_equal(raw, raw.round())
        ):
            return cls(False, **layout)
        finished = candidate(raw.astype(np.uint8))
        return candidate if np.allclose(finished, made, atol=1e-4) else cls(False, **layout)

    @property
    def processor_kwargs(self) -> dict[str, bool]:
        """Keyword arguments for the processor call whose ``pixel_values`` ``pack`` takes."""
        return dict(DEFER) if self.deferred else {}

    @property
    def dtype(self) -> type[np.generic]:
        """The dtype pixels travel in."""
        return np.uint8 if self.deferred else np.float32

    def pack(self, pixels: Sequence[Any]) -> np.ndarray:
        """A processor's ``pixel_values`` (called with ``processor_kwargs``; an array or a list
        with one entry per image, as ``return_tensors=None`` gives when tile counts differ) ->
        the travelling tiles ``[num_tiles, C, H, W]`` of those images in order."""
        tiles = [np.asarray(p).reshape(-1, *self.tile_shape) for p in pixels]
        if not tiles:
            return np.zeros((0, *self.tile_shape), dtype=self.dtype)
        return np.concatenate(tiles).astype(self.dtype, copy=False)

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        """Travelling pixels ``[N, ..., C, H, W]`` -> float32 as the processor returns them."""
        if pixels.dtype != np.uint8:
            return pixels.astype(np.float32, copy=False)
        out = pixels.astype(np.float32) * np.float32(self.scale)
        if self.mean:
            out -= np.asarray(self.mean, np.float32).reshape(-1, 1, 1)
            out /= np.asarray(self.std, np.float32).reshape(-1, 1, 1)
        return out
