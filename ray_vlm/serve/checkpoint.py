"""The one place the server loads a model: any checkpoint form ``resolve_model_dir`` accepts."""

from __future__ import annotations

from typing import Any

from transformers import PreTrainedModel, ProcessorMixin

from ray_vlm.export import resolve_model_dir
from ray_vlm.model import load_for_inference, load_processor


def load_for_serving(
    ckpt: str, dtype: str, processor_kwargs: dict[str, Any] | None = None
) -> tuple[PreTrainedModel, ProcessorMixin]:
    """Model (in eval mode, on the replica's GPU if it has one) and processor from ``ckpt``: an
    exported Hugging Face directory, a checkpoint step dir, a run's ``dump_dir`` or a hub id.

    ``dtype`` is ``auto`` (bfloat16 on GPU, float32 on CPU) or a key of ``TORCH_DTYPES``;
    ``processor_kwargs`` override the processor's saved settings (``ServeConfig.processor_kwargs``).
    """
    path = resolve_model_dir(ckpt)
    return load_for_inference(path, dtype), load_processor(path, processor_kwargs)
