"""Which checkpoint weights make each weight of an export, worked out on a ``meta`` model.

``export_plan(config, model_cfg, dtype)`` builds the model of ``config`` on the meta device (shapes only,
no memory) and returns an ``ExportPlan``:

- ``specs``: every tensor the export holds, named and shaped as ``save_pretrained`` writes them
  (tied copies dropped, transformers' checkpoint renaming applied), as meta tensors in ``dtype``
  (floating-point ones; others keep theirs);
- ``sources``: for each, the checkpoint name it is read from (the name in the trained module's
  ``state_dict``); a LoRA-adapted weight also names its ``lora_A``/``lora_B`` and the scaling
  merged into it, ``W + (B @ A) * scaling`` (what peft's ``merge_and_unload`` computes);
- ``expected``: every name the checkpoint must hold (the adapters included).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import AutoModelForImageTextToText, PretrainedConfig
from transformers.core_model_loading import revert_weight_conversion
from transformers.initialization import meta_device_safe_creation_ops
from transformers.modeling_utils import remove_tied_weights_from_state_dict

from ray_vlm.config.schema import ModelConfig
from ray_vlm.export.layout import ExportError
from ray_vlm.train.trainable import lora_config

PEFT_PREFIX = "base_model.model."  # where a PeftModel's state_dict puts the wrapped model's names


@dataclass(frozen=True)
class Lora:
    a: str
    b: str
    scaling: float


@dataclass(frozen=True)
class Source:
    name: str
    """Checkpoint name of the weight."""
    lora: Lora | None = None
    """The adapter merged into it, if any."""


@dataclass(frozen=True)
class ExportPlan:
    specs: dict[str, torch.Tensor]
    sources: dict[str, Source]
    expected: set[str]
    architecture: str
    """Class name of the model (``config.json``'s ``architectures``)."""


def _saved_names(model) -> dict[str, str]:
    """Export name -> ``state_dict`` name, as ``save_pretrained`` maps them."""
    kept = remove_tied_weights_from_state_dict(model.state_dict(), model)
    name_of = {id(t): name for name, t in kept.items()}
    saved = revert_weight_conversion(model, kept)  # renamings hand the same tensor objects back
    if any(id(t) not in name_of for t in saved.values()):
        raise ExportError(
            f"{type(model).__name__}: transformers fuses or splits its weights when saving; "
            "consolidation only renames them (use DeepSpeed's zero_to_fp32 and save_pretrained)"
        )
    return {out: name_of[id(t)] for out, t in saved.items()}


def _lora_sources(model, saved: dict[str, str], cfg: ModelConfig) -> tuple[dict, set[str]]:
    from peft import get_peft_model  # here: the GPU checks' machine has no peft (and no LoRA run)
    from peft.tuners.lora import LoraLayer

    peft = get_peft_model(model, lora_config(model, cfg.lora), autocast_adapter_dtype=False)
    adapted = {
        name.removeprefix(PEFT_PREFIX): (name, module.scaling["default"])
        for name, module in peft.named_modules()
        if isinstance(module, LoraLayer)
    }
    sources = {}
    for out, name in saved.items():
        owner, _, leaf = name.rpartition(".")
        if owner not in adapted:
            sources[out] = Source(PEFT_PREFIX + name)
            continue
        wrapped, scaling = adapted[owner]
        lora = None
        if leaf == "weight":
            lora = Lora(
                f"{wrapped}.lora_A.default.weight", f"{wrapped}.lora_B.default.weight", scaling
            )
        sources[out] = Source(f"{wrapped}.base_layer.{leaf}", lora)
    return sources, set(peft.state_dict())


def export_plan(config: PretrainedConfig, cfg: ModelConfig, dtype: torch.dtype) -> ExportPlan:
    """The plan for a checkpoint of the model ``config`` trained with ``cfg`` (LoRA or not)."""
    with torch.device("meta"), meta_device_safe_creation_ops():
        model = AutoModelForImageTextToText.from_config(config)
    model.tie_weights()
    architecture = type(model).__name__
    state = model.state_dict()
    saved = _saved_names(model)
    specs = {
        out: state[name].to(dtype) if state[name].is_floating_point() else state[name]
        for out, name in saved.items()
    }
    if cfg.trainable == "lora":
        sources, expected = _lora_sources(model, saved, cfg)
    else:
        sources, expected = {out: Source(name) for out, name in saved.items()}, set(state)
    return ExportPlan(specs, sources, expected, architecture)
