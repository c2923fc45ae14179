"""The DeepSpeed config dict of a run: the base JSON (``distributed.deepspeed_config``) with every
value the ``FinetuneConfig`` owns written over it.

Set from the run config: batch sizes (``train_micro_batch_size_per_gpu = batch_size``,
``gradient_accumulation_steps``, ``train_batch_size`` = their product x world size), the optimizer
(``optim.*``: ``torch.optim.AdamW(fused=True)``, one kernel per step on CPU and GPU, unless the
optimizer is offloaded, then DeepSpeed's CPU Adam;
or ``torch.optim.SGD``), ``gradient_clipping``, precision and the ZeRO stage with its offload switches.
Left to the base JSON: bucket sizes, prefetching and other ZeRO tuning, as numbers: the same dict
builds the model inside ``deepspeed.zero.Init`` (ZeRO-3 loading, ``ray_vlm.model.load_model``) and
goes to ``deepspeed.initialize``, and neither fills in Hugging Face's ``"auto"`` placeholders. The
learning-rate schedule is not here: it is a scheduler passed to ``deepspeed.initialize``
(``schedule.py``).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import torch

from ray_vlm.config import ConfigError, FinetuneConfig
from ray_vlm.config.schema import DistributedConfig

PRECISION_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_precision(precision: str, use_gpu: bool) -> str:
    """``auto`` is bf16 on GPU and fp32 on CPU; anything else is taken as given."""
    if precision == "auto":
        return "bf16" if use_gpu else "fp32"
    return precision


def run_dtype(dist: DistributedConfig) -> torch.dtype:
    """The dtype the model is loaded and trained in: bf16/fp16 in DeepSpeed's half-precision modes
    (fp32 master weights live in the optimizer), else float32."""
    return PRECISION_DTYPES[resolve_precision(dist.precision, dist.use_gpu)]


def _reject_auto(node: dict[str, Any], path: str, prefix: str = "") -> None:
    for key, value in node.items():
        if isinstance(value, dict):
            _reject_auto(value, path, f"{prefix}{key}.")
        elif value == "auto":
            raise ConfigError(
                f"{path}: '{prefix}{key}' is \"auto\", which only the Hugging Face Trainer fills in; "
                "give a number (configs/deepspeed/zero3.json has examples)"
            )


def load_base(path: str) -> dict[str, Any]:
    file = Path(path)
    if not file.is_file():
        raise ConfigError(
            f"key 'distributed.deepspeed_config': '{path}' does not exist "
            "(use one of configs/deepspeed/*.json)"
        )
    try:
        return json.loads(file.read_text())
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path}: not valid JSON ({err.msg} at line {err.lineno})") from None


def deepspeed_config(cfg: FinetuneConfig, world_size: int) -> dict[str, Any]:
    """The config dict for ``deepspeed.initialize`` on ``world_size`` workers."""
    dist = cfg.distributed
    ds = copy.deepcopy(load_base(dist.deepspeed_config))
    zero = ds.setdefault("zero_optimization", {})
    zero["stage"] = dist.zero_stage
    if dist.offload_optimizer:
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": dist.use_gpu}
    if dist.offload_params:
        if dist.zero_stage != 3:
            raise ConfigError("key 'distributed.offload_params': needs distributed.zero_stage=3")
        zero["offload_param"] = {"device": "cpu", "pin_memory": dist.use_gpu}
    cpu_adam = "offload_optimizer" in zero
    precision = resolve_precision(dist.precision, dist.use_gpu)
    ds.update(
        train_micro_batch_size_per_gpu=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_acc_steps,
        train_batch_size=cfg.batch_size * cfg.grad_acc_steps * world_size,
        gradient_clipping=cfg.optim.clip,
        bf16={"enabled": precision == "bf16"},
        fp16={"enabled": precision == "fp16"},
        optimizer=_optimizer(cfg, cpu_adam),
    )
    if cfg.optim.name == "sgd":
        ds["zero_allow_untested_optimizer"] = True  # torch.optim.SGD: DeepSpeed runs it as is
    _reject_auto(ds, dist.deepspeed_config)
    return ds


def _optimizer(cfg: FinetuneConfig, cpu_adam: bool) -> dict[str, Any]:
    optim = cfg.optim
    if optim.name == "sgd":
        return {"type": "SGD", "params": {"lr": optim.lr, "weight_decay": optim.weight_decay}}
    params = {
        "lr": optim.lr,
        "betas": [optim.beta1, optim.beta2],
        "eps": optim.eps,
        "weight_decay": optim.weight_decay,
        "torch_adam": not cpu_adam,
    }
    if not cpu_adam:
        params["fused"] = True
    return {"type": "AdamW", "params": params}
