"""What trains: ``requires_grad`` per ``model.trainable``, frozen parameters in ``model.frozen_dtype``.

``apply_trainable(model, cfg)`` works on any ``AutoModelForImageTextToText``. Its parts are found
the way transformers finds them: the vision tower is ``model.get_encoder(modality="image")``, the
language model ``model.get_decoder()``. Modes (``ModelConfig.trainable``):

- ``full``: every parameter;
- ``freeze_vision``: all but the vision tower (projector, language model, ``lm_head`` train);
- ``attention_only``: the language model's ``self_attn.{q,k,v,o}_proj`` weights (and biases),
  the PaliGemma guide's ``llm/layers/attn/`` choice;
- ``regex``: names (as ``model.named_parameters()`` gives them) matching any of
  ``trainable_patterns`` with ``re.search``; a pattern matching nothing is a ``ConfigError``;
- ``lora``: peft LoRA adapters on the language model's ``lora.target_modules`` (never on the
  vision tower); returns the ``PeftModel``, whose base weights are all frozen.

Frozen parameters are stored in ``frozen_dtype`` and compute in float32, as the PaliGemma guide
stores f16 and computes in f32: a module whose own parameters are all frozen gets them cast, and
its ``forward`` runs on float32 copies of them, made as it starts and dropped when nothing needs
them any more (autograd keeps those an input gradient needs until the backward pass; with
gradient checkpointing, one layer's). Every activation and gradient stays float32: no fp16
underflow without loss scaling, no overflow of Gemma's activations. The ``forward`` is wrapped
rather than hooked so that the copies are made inside every hook (ZeRO-3 gathers a module's
parameters in a pre-forward hook and releases them in a forward hook). This is for float32 runs;
in bf16/fp16 runs every weight is already in half precision and nothing is cast.

The model may come partitioned by ZeRO-3 (``ray_vlm.model.load_model`` with a ZeRO-3 config):
names and ``requires_grad`` work as usual, a cast converts this rank's partition (``p.ds_tensor``;
``p.data`` is an empty placeholder), counts use ``p.ds_numel``. LoRA adapters are created whole in
the base weights' dtype; ``deepspeed.initialize`` partitions them (from rank 0's values).
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.utils._pytree import tree_map
from transformers import PreTrainedModel

from ray_vlm.config import ConfigError
from ray_vlm.config.schema import LoraConfig, ModelConfig
from ray_vlm.model import TORCH_DTYPES

if TYPE_CHECKING:  # peft is imported where LoRA is used: the GPU checks' machine has none
    from peft import LoraConfig as PeftLoraConfig

ATTENTION = re.compile(r"(^|\.)self_attn\.[qkvo]_proj\.")
WRAPPERS = ("base_model", "model")  # name segments of wrappers (peft, the inner ``model``)


def _param_names(model: nn.Module, part: nn.Module) -> list[str]:
    """Names in ``model`` of the parameters of its sub-module ``part``."""
    ids = {id(p) for p in part.parameters()}
    return [n for n, p in model.named_parameters() if id(p) in ids]


def _part(model: PreTrainedModel, which: str) -> nn.Module:
    part = model.get_encoder(modality="image") if which == "vision" else model.get_decoder()
    if part is model or part is getattr(model, "model", None):
        raise ConfigError(
            f"model.trainable: cannot find the {which} part of {type(model).__name__} "
            "(get_encoder/get_decoder); use model.trainable=regex with model.trainable_patterns"
        )
    return part


def trainable_names(model: PreTrainedModel, cfg: ModelConfig) -> set[str]:
    """Names of the parameters that train under ``cfg.trainable`` (not for ``lora``)."""
    names = [n for n, _ in model.named_parameters()]
    if cfg.trainable == "full":
        return set(names)
    if cfg.trainable == "freeze_vision":
        return set(names) - set(_param_names(model, _part(model, "vision")))
    if cfg.trainable == "attention_only":
        chosen = {n for n in _param_names(model, _part(model, "language")) if ATTENTION.search(n)}
        if not chosen:
            raise ConfigError(
                f"model.trainable=attention_only: {type(model).__name__} has no "
                "self_attn.{q,k,v,o}_proj parameters; use model.trainable=regex"
            )
        return chosen
    if cfg.trainable == "regex":
        chosen: set[str] = set()
        for pattern in cfg.trainable_patterns:
            hits = {n for n in names if re.search(pattern, n)}
            if not hits:
                raise ConfigError(
                    f"model.trainable_patterns: '{pattern}' matches no parameter name "
                    f"(e.g. {names[0]}, {names[-1]})"
                )
            chosen |= hits
        return chosen
    raise ConfigError(f"model.trainable={cfg.trainable}: has no parameter-name rule")


def lora_config(model: PreTrainedModel, cfg: LoraConfig) -> PeftLoraConfig:
    """peft config with adapters on the language model's modules named in ``cfg.target_modules``
    (listed by full name, so same-named modules of the vision tower stay untouched)."""
    from peft import LoraConfig as PeftLoraConfig

    language = _part(model, "language")
    inside = {id(m) for m in language.modules()}
    full_names: list[str] = []
    for target in cfg.target_modules:
        hits = [
            name
            for name, module in model.named_modules()
            if id(module) in inside and name.rsplit(".", 1)[-1] == target
        ]
        if not hits:
            raise ConfigError(
                f"model.lora.target_modules: no module named '{target}' in the language model"
            )
        full_names += hits
    return PeftLoraConfig(
        r=cfg.r, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout, target_modules=full_names
    )


def _to_float32(tree):
    def cast(x):
        return x.float() if isinstance(x, torch.Tensor) and x.is_floating_point() else x

    return tree_map(cast, tree)


def _owners(module: nn.Module) -> list[nn.Module]:
    """The modules whose parameters ``module.forward`` reads: its own, and, for
    ``nn.MultiheadAttention``, ``out_proj``'s, which it reads without calling ``out_proj``."""
    return list(module.modules()) if isinstance(module, nn.MultiheadAttention) else [module]


def _compute_in_float32(module: nn.Module) -> None:
    """Run ``module.forward`` on float32 copies of the half-precision parameters it reads, and on
    float32 inputs (model code casts them to a child's dtype: SigLIP's patches). Each parameter is
    read by key, as the forward would (ZeRO-3 gathers a parameter read outside its module's own
    forward then). An embedding looks up in its storage dtype and hands out float32: the same
    values, no copy of the table."""
    forward = module.forward

    def embed(*args, **kwargs):
        return forward(*args, **kwargs).float()

    def run(*args, **kwargs):
        stored, copies = [], {}
        for owner in _owners(module):
            for name in list(owner._parameters):
                p = owner._parameters[name]
                if p is not None and p.is_floating_point() and p.dtype != torch.float32:
                    stored.append((owner, name, p))
                    if id(p) not in copies:  # a weight tied to another: one copy
                        copies[id(p)] = p.float()
                    owner._parameters[name] = copies[id(p)]
        try:
            return forward(*_to_float32(args), **_to_float32(kwargs))
        finally:
            for owner, name, p in stored:
                owner._parameters[name] = p

    module.forward = embed if isinstance(module, nn.Embedding) else run


def _cast(p: nn.Parameter, dtype: torch.dtype) -> None:
    if hasattr(p, "ds_tensor"):  # ZeRO-3: the values are this rank's partition
        p.ds_tensor.data = p.ds_tensor.data.to(dtype)
    p.data = p.data.to(dtype)  # ZeRO-3: the empty placeholder, whose dtype DeepSpeed gathers into


def _hold_frozen_in(model: nn.Module, dtype: torch.dtype) -> None:
    if dtype == torch.float32 or model.dtype != torch.float32:
        return
    for module in model.modules():
        own = list(module.parameters(recurse=False))
        if not own or any(p.requires_grad for p in own):
            continue
        for p in own:
            if p.is_floating_point():
                _cast(p, dtype)
        _compute_in_float32(module)


def apply_trainable(model: PreTrainedModel, cfg: ModelConfig) -> PreTrainedModel:
    """Set ``requires_grad`` per ``cfg.trainable`` (``lora``: wrap with ``get_peft_model``), cast
    frozen parameters to ``cfg.frozen_dtype``; returns the model to train."""
    if cfg.trainable == "lora":
        from peft import get_peft_model

        model = get_peft_model(model, lora_config(model, cfg.lora), autocast_adapter_dtype=False)
    else:
        keep = trainable_names(model, cfg)
        for name, p in model.named_parameters():
            p.requires_grad_(name in keep)
    _hold_frozen_in(model, TORCH_DTYPES[cfg.frozen_dtype])
    return model


def _top_level(name: str) -> str:
    parts = name.split(".")
    return next((p for p in parts[:-1] if p not in WRAPPERS), parts[0])


def trainable_report(model: nn.Module) -> list[tuple[str, int, int]]:
    """``(module, trainable params, total params)`` per top-level part (``vision_tower``,
    ``multi_modal_projector``, ``language_model``, ``lm_head`` ...), in model order."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for name, p in model.named_parameters():
        n = p.ds_numel if hasattr(p, "ds_numel") else p.numel()
        row = counts[_top_level(name)]
        row[0] += n if p.requires_grad else 0
        row[1] += n
    return [(part, t, total) for part, (t, total) in counts.items()]
