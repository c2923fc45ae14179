"""Stage 3 of the flow: loading VLMs and running them."""

from ray_vlm.model.generation import (
    Generation,
    SamplingParams,
    encode_prompts,
    generate,
    generate_encoded,
)
from ray_vlm.model.load import TORCH_DTYPES, load_for_inference, load_model, load_processor

__all__ = [
    "TORCH_DTYPES",
    "Generation",
    "SamplingParams",
    "encode_prompts",
    "generate",
    "generate_encoded",
    "load_for_inference",
    "load_model",
    "load_processor",
]
