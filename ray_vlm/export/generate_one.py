"""The PLM guide's ``generate.py``: one image and one question against any form of checkpoint.

``generate_one(ckpt, image_path, question, params, processor_kwargs)`` resolves ``ckpt`` (hub id,
exported directory, checkpoint step dir or run ``dump_dir``; see ``resolve``), loads the model and
its processor (``processor_kwargs`` overriding the processor's saved settings, e.g. Perception LM's
``max_num_tiles`` for a hub id), and returns the ``Generation`` of ``ray_vlm.model.generate``.
"""

from __future__ import annotations

from typing import Any

from ray_vlm.export.layout import ExportError
from ray_vlm.export.resolve import resolve_model_dir
from ray_vlm.model import Generation, SamplingParams, generate, load_for_inference, load_processor
from ray_vlm.records import load_image


def generate_one(
    ckpt: str,
    image_path: str,
    question: str,
    params: SamplingParams,
    processor_kwargs: dict[str, Any] | None = None,
) -> Generation:
    """Answer ``question`` about the image at ``image_path`` with the model ``ckpt`` names."""
    try:
        image = load_image(image_path)
    except ValueError as err:
        raise ExportError(f"--media_path: {err}") from None
    path = resolve_model_dir(ckpt)
    processor = load_processor(path, processor_kwargs)
    model = load_for_inference(path)
    return generate(model, processor, [([image], question)], params)[0]
