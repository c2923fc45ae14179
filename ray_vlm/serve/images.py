"""Request images: ``data:image/<type>;base64,<payload>`` URLs only, decoded under size limits.

The server never fetches ``http(s)://`` URLs and never opens ``file://`` or plain paths: a
request cannot make it read its own files or reach other hosts.
"""

from __future__ import annotations

import base64
import binascii
import io

from PIL import Image, UnidentifiedImageError

from ray_vlm.serve.errors import RequestError

DATA_URL_HINT = "send images inline as data:image/png;base64,... (the server fetches no URLs)"


def decode_image_url(url: str, max_bytes: int, max_pixels: int, param: str) -> Image.Image:
    """Decode a base64 data URL into an RGB image.

    Raises ``RequestError`` (HTTP 400, ``param`` names the message part) when the URL is not an
    inline image, the payload is not base64, the bytes are over ``max_bytes``, the image is over
    ``max_pixels`` (checked from its header, before decoding) or it is not a decodable image.
    """
    header, sep, payload = url.partition(",")
    if not url.startswith("data:") or not sep:
        raise RequestError(
            400, f"unsupported image URL: {DATA_URL_HINT}", param, "invalid_image_url"
        )
    mime = header[len("data:") :].split(";", 1)[0].lower()
    if not mime.startswith("image/") or not header.endswith(";base64"):
        raise RequestError(
            400, f"image URL is not a base64 image ('{header}'): {DATA_URL_HINT}", param
        )
    if len(payload) > (max_bytes + 2) // 3 * 4:  # base64 length of max_bytes, before decoding
        raise _too_large(max_bytes, param)
    try:
        raw = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise RequestError(400, "image data is not valid base64", param, "invalid_base64") from None
    if len(raw) > max_bytes:
        raise _too_large(max_bytes, param)
    try:
        with Image.open(io.BytesIO(raw)) as im:
            if im.width * im.height > max_pixels:
                raise RequestError(
                    400,
                    f"image is {im.width}x{im.height} pixels, over the limit of {max_pixels}",
                    param,
                    "image_too_large",
                )
            im.load()
            return im.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as err:
        raise RequestError(
            400, f"image data is not a decodable image ({err})", param, "invalid_image"
        ) from None


def _too_large(max_bytes: int, param: str) -> RequestError:
    return RequestError(
        400, f"image is over the limit of {max_bytes} bytes", param, "image_too_large"
    )
