"""Stage 3 of the flow: loading VLMs and running them."""

from ray_vlm.model.generation import Generation, SamplingParams, generate
from ray_vlm.model.load import load_model, load_processor

__all__ = ["Generation", "SamplingParams", "generate", "load_model", "load_processor"]
