"""What a generation replica receives: one conversation with its decoded images and sampling
(HTTP requests, batched dynamically), or a whole batch of records naming their images."""

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


@dataclass(frozen=True)
class RecordPrompt:
    """One record of a batch evaluation: its image paths (local, shared FS or ``s3://``; read
    by the replica, through ``ray_vlm.storage``) and its conversation up to the question."""

    image_paths: tuple[str, ...]
    turns: tuple[Turn, ...]


@dataclass(frozen=True)
class RecordBatch:
    """A batch of records sent whole to one replica (in-cluster callers only: HTTP requests
    never name files); every record is answered with ``params``."""

    records: tuple[RecordPrompt, ...]
    params: SamplingParams
