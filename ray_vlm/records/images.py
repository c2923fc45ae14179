"""Opening record images: one place that decodes, converts to RGB, and explains failures.

An image path may be a URI (``s3://bucket/images/0.png``; ``ray_vlm.storage``): its bytes are read
through the storage filesystem, so the Ray Data workers read images where the data lives.
"""

from __future__ import annotations

import io

from PIL import Image, UnidentifiedImageError

from ray_vlm.storage import Location, is_uri


def _open(path: str) -> Image.Image:
    if not is_uri(path):
        return Image.open(path)
    try:
        return Image.open(io.BytesIO(Location.of(path).read_bytes()))
    except FileNotFoundError:
        raise
    except OSError as err:  # pyarrow's "path does not exist" is an OSError too
        if not Location.of(path).exists():
            raise FileNotFoundError(path) from None
        raise ValueError(f"image '{path}' cannot be read ({err})") from None


def load_image(path: str, max_pixels: int | None = None) -> Image.Image:
    """Decode ``path`` fully into an RGB image; raise ``ValueError`` saying why it cannot be used
    (missing, undecodable, or over ``max_pixels`` pixels, checked before any pixel is decoded;
    Pillow's own decompression-bomb limit, 2 x ``Image.MAX_IMAGE_PIXELS``, holds either way)."""
    try:
        with _open(path) as im:
            if max_pixels is not None and im.width * im.height > max_pixels:
                raise ValueError(
                    f"image '{path}' has {im.width}x{im.height} = {im.width * im.height:,} pixels, "
                    f"over data.max_image_pixels={max_pixels:,} (downscale it or raise the bound)"
                )
            im.load()
            return im.convert("RGB")
    except FileNotFoundError:
        raise ValueError(f"image '{path}' does not exist") from None
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError) as err:
        raise ValueError(f"image '{path}' cannot be decoded ({err})") from None
