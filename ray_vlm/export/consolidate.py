"""DeepSpeed state of one checkpoint (ZeRO stage 0-3) -> a Hugging Face directory anyone can load.

``consolidate(step_dir, out=None)`` reads a step dir (see ``layout``) and writes ``out`` (default
``<step_dir>/consolidated/``, where PLM's ``consolidate.py`` writes too): safetensors weights
(``model.safetensors``, or shards of ``export.max_shard_size`` + index), ``config.json``,
``generation_config.json`` and the processor files, so that plain
``AutoModelForImageTextToText.from_pretrained(out)`` / ``AutoProcessor.from_pretrained(out)`` load
it with no ray_vlm import. Weights are in ``export.dtype`` (``auto``: bf16 for a bf16 run, else
the base model's dtype); a LoRA run is merged into the base weights.

Memory stays about one weight however large the model: the names and shapes come from a ``meta``
model (``weight_plan``), each weight is assembled from the ranks' memory-mapped shards
(``train.zero_files``), merged with its adapter, cast and appended to its file
(``safetensors_out``). ``out`` is written in a private folder beside it and renamed into place
(``publish``): two processes consolidating the same checkpoint both succeed and leave one
complete export.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from transformers import AutoConfig, PretrainedConfig

from ray_vlm.config import CONFIG_FILE, FinetuneConfig, load_config
from ray_vlm.config.schema import DistributedConfig, ExportConfig
from ray_vlm.export.layout import CONSOLIDATED_DIR, EXPORT_COMPLETE, ExportError, is_step_dir
from ray_vlm.export.publish import publish, staging
from ray_vlm.export.safetensors_out import write_sharded
from ray_vlm.export.weight_plan import ExportPlan, export_plan
from ray_vlm.model import TORCH_DTYPES
from ray_vlm.train.deepspeed_config import run_dtype
from ray_vlm.train.run_state import DS_TAG, HF_DIR
from ray_vlm.train.zero_files import ZeroWeights

SHOWN_KEYS = 5  # keys listed in an error message


def export_dtype(
    export: ExportConfig, dist: DistributedConfig, config: PretrainedConfig
) -> torch.dtype:
    """``export.dtype``; ``auto``: bf16 when the run trained in bf16, else the base model's."""
    if export.dtype != "auto":
        return TORCH_DTYPES[export.dtype]
    if run_dtype(dist) == torch.bfloat16:
        return torch.bfloat16
    dtype = getattr(config, "dtype", None) or torch.float32
    return getattr(torch, dtype) if isinstance(dtype, str) else dtype


def _open(step_dir: Path, plan: ExportPlan) -> ZeroWeights:
    try:
        weights = ZeroWeights(step_dir / DS_TAG)
    except FileNotFoundError:
        raise ExportError(
            f"{step_dir / DS_TAG}: no DeepSpeed state (zero_pp_rank_* or mp_rank_00_* files)"
        ) from None
    have = set(weights.names())
    for kind, keys in (("missing", plan.expected - have), ("unexpected", have - plan.expected)):
        if keys:
            raise ExportError(
                f"{step_dir}: {len(keys)} {kind} weights ({', '.join(sorted(keys)[:SHOWN_KEYS])}); "
                f"{step_dir / CONFIG_FILE} or {step_dir / HF_DIR} does not match the DeepSpeed state"
            )
    return weights


class _Weights:
    """``produce(name)`` for ``write_sharded``: one export weight, merged and cast; notes the
    checkpoint tensors that are empty or all zero (DeepSpeed #3841: ZeRO-3 saves can hold them;
    no real weight matrix is all zero, except LoRA's ``lora_B``, which starts at zero)."""

    def __init__(self, weights: ZeroWeights, plan: ExportPlan) -> None:
        self.weights, self.plan = weights, plan
        self.empty: list[str] = []

    def _read(self, name: str) -> torch.Tensor:
        tensor = self.weights.read(name)
        if tensor.numel() == 0 or (tensor.dim() >= 2 and "lora_B" not in name and not tensor.any()):
            self.empty.append(name)
        return tensor

    def __call__(self, name: str) -> torch.Tensor:
        source = self.plan.sources[name]
        tensor = self._read(source.name)
        if source.lora is not None:
            lora = source.lora
            delta = self._read(lora.b).float() @ self._read(lora.a).float()
            tensor = tensor.float() + delta * lora.scaling
        return tensor.to(self.plan.specs[name].dtype)


def consolidate(
    step_dir: str | Path,
    out: str | Path | None = None,
    export: ExportConfig | None = None,
    replace: bool = True,
) -> Path:
    """Write the Hugging Face directory of checkpoint ``step_dir``; returns its path.

    ``export`` overrides the checkpoint's ``export`` settings. An existing ``out`` is replaced,
    or with ``replace=False`` kept when it is complete (then this call's result is dropped).
    """
    step_dir = Path(step_dir)
    if not is_step_dir(step_dir):
        raise ExportError(
            f"{step_dir}: not a complete checkpoint step dir (needs every rank's "
            f"train_state_*.json, {CONFIG_FILE}, {HF_DIR}/config.json)"
        )
    out = Path(out) if out else step_dir / CONSOLIDATED_DIR
    cfg = load_config(FinetuneConfig, [f"config={step_dir / CONFIG_FILE}"])
    export = export or cfg.export
    config = AutoConfig.from_pretrained(step_dir / HF_DIR)
    dtype = export_dtype(export, cfg.distributed, config)
    plan = export_plan(config, cfg.model, dtype)
    produce = _Weights(_open(step_dir, plan), plan)

    with staging(out) as tmp:
        shutil.copytree(step_dir / HF_DIR, tmp, dirs_exist_ok=True)  # processor, generation config
        write_sharded(tmp, plan.specs, produce, export.max_shard_size)
        if produce.empty:
            raise ExportError(
                f"{step_dir}: {len(produce.empty)} weights are empty or all zero "
                f"({', '.join(produce.empty[:SHOWN_KEYS])}); the checkpoint was not saved from "
                "every rank with engine.save_checkpoint"
            )
        config.dtype = dtype
        config.architectures = [plan.architecture]
        config.save_pretrained(tmp)
        if cfg.model.attn_implementation != "auto":  # plain from_pretrained takes the same kernel
            saved = json.loads((tmp / "config.json").read_text())
            saved["attn_implementation"] = cfg.model.attn_implementation
            (tmp / "config.json").write_text(json.dumps(saved, indent=2) + "\n")
        (tmp / EXPORT_COMPLETE).write_text(f"{step_dir}\n")
        publish(tmp, out, replace, complete=EXPORT_COMPLETE)
    return out
