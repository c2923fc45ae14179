"""Opening record images: one place that decodes, converts to RGB, and explains failures."""

from __future__ import annotations

from PIL import Image, UnidentifiedImageError


def load_image(path: str) -> Image.Image:
    """Decode ``path`` fully into an RGB image; raise ``ValueError`` saying why it cannot be used."""
    try:
        with Image.open(path) as im:
            im.load()
            return im.convert("RGB")
    except FileNotFoundError:
        raise ValueError(f"image '{path}' does not exist") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise ValueError(f"image '{path}' cannot be decoded ({err})") from None
