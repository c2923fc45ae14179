"""What a generation replica receives: one conversation with its decoded images and sampling."""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image

from ray_vlm.model import SamplingParams
from ray_vlm.records import Turn


@dataclass(frozen=True, eq=False)
class GenerationRequest:
    """``images``: RGB images, shown before the first user turn's text (as in training).
    ``turns``: alternating ``user``/``assistant`` turns ending with a ``user`` turn.
    ``params``: sampling; requests with equal ``params`` share one ``model.generate`` call."""

    images: tuple[Image.Image, ...]
    turns: tuple[Turn, ...]
    params: SamplingParams
