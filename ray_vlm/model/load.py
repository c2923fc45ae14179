"""Load a VLM and its processor from a hub id or a local Hugging Face directory."""

from __future__ import annotations

from typing import Any

import torch
from transformers import AutoModelForImageTextToText, PreTrainedModel

from ray_vlm.device import inference_device, inference_dtype
from ray_vlm.preprocess.processor import load_processor

__all__ = ["TORCH_DTYPES", "load_for_inference", "load_model", "load_processor"]

TORCH_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
"""Config dtype names -> torch dtypes."""


def load_model(
    path: str,
    dtype: torch.dtype = torch.float32,
    zero3_config: dict[str, Any] | None = None,
    attn_implementation: str = "auto",
    device: torch.device | None = None,
) -> PreTrainedModel:
    """``AutoModelForImageTextToText`` weights from ``path`` (hub id or local directory) in ``dtype``,
    with ``attn_implementation`` for every sub-model (``auto``: transformers' choice for each);
    with ``device``, each weight goes from its file straight there (no whole copy in host memory).

    With ``zero3_config`` (the DeepSpeed config dict of a ZeRO stage 3 run, concrete values only,
    the same dict later given to ``deepspeed.initialize``), every rank of an initialised
    ``torch.distributed`` group calls this together: transformers builds the model inside
    ``deepspeed.zero.Init`` (each parameter is partitioned as it is created), global rank 0 reads
    the weights and they are scattered one module at a time, the other ranks read only shapes.
    Every parameter comes back a ZeRO-3 placeholder: ``p.numel() == 0``, ``p.ds_numel`` the full
    size, ``p.ds_tensor`` this rank's part; so no rank ever holds the whole model.
    """
    kwargs: dict[str, Any] = {"dtype": dtype}
    if attn_implementation != "auto":
        kwargs["attn_implementation"] = attn_implementation
    if device is not None:
        kwargs["device_map"] = device
    if zero3_config is None:
        return AutoModelForImageTextToText.from_pretrained(path, **kwargs)
    import deepspeed  # imported here: DeepSpeed and accelerate only where ZeRO-3 loading runs
    from transformers.integrations.deepspeed import HfDeepSpeedConfig, unset_hf_deepspeed_config

    deepspeed.init_distributed()  # zero.Init needs DeepSpeed's view of the process group
    # transformers keeps only a weak reference to this object: it must live while loading.
    hf_zero3 = HfDeepSpeedConfig(zero3_config)
    if not hf_zero3.is_zero3():
        raise ValueError("load_model: zero3_config is not a ZeRO stage 3 DeepSpeed config")
    try:
        return AutoModelForImageTextToText.from_pretrained(path, **kwargs)
    finally:
        unset_hf_deepspeed_config()
        del hf_zero3


def load_for_inference(path: str, dtype: str = "auto") -> PreTrainedModel:
    """``path``'s model for generation, in eval mode: on this process's GPU when it has one, in
    bf16 there (``device.inference_dtype``: ``auto``), loaded straight onto it."""
    return load_model(path, inference_dtype(dtype), device=inference_device()).eval()
