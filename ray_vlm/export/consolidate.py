"""DeepSpeed state of one checkpoint (ZeRO stage 0-3) -> a Hugging Face directory anyone can load.

``consolidate(step_dir, out=None)`` reads a step dir (see ``layout``) and writes ``out`` (default
``<step_dir>/consolidated/``, where PLM's ``consolidate.py`` writes too): ``model.safetensors``,
``config.json``, ``generation_config.json`` and the processor files, so that plain
``AutoModelForImageTextToText.from_pretrained(out)`` / ``AutoProcessor.from_pretrained(out)``
load it with no ray_vlm import. A LoRA run is merged into the base weights. Weights are saved in
the ``dtype`` of the base model's config (float32 when it names none). ``out`` appears whole or
not at all: it is written beside itself and renamed into place.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import torch
from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint
from peft import get_peft_model
from transformers import AutoConfig, AutoModelForImageTextToText, GenerationConfig
from transformers.initialization import no_init_weights

from ray_vlm.config import FinetuneConfig, load_config
from ray_vlm.export.layout import CONFIG_FILE, CONSOLIDATED_DIR, ExportError, is_step_dir
from ray_vlm.train.run_state import DS_TAG, HF_DIR
from ray_vlm.train.trainable import lora_config

SHOWN_KEYS = 5  # keys listed in an error message


def _check_not_empty(state: dict[str, torch.Tensor], step_dir: Path) -> None:
    """DeepSpeed #3841: ZeRO-3 saves can hold empty or zeroed weights. No real weight matrix is
    all zero, except LoRA's ``lora_B``, which starts at zero by design."""
    bad = [
        k
        for k, t in state.items()
        if t.numel() == 0 or (t.dim() >= 2 and "lora_B" not in k and not t.any())
    ]
    if bad:
        raise ExportError(
            f"{step_dir}: {len(bad)} weights are empty or all zero ({', '.join(bad[:SHOWN_KEYS])}); "
            "the checkpoint was not saved from every rank with engine.save_checkpoint"
        )


def _read_state(step_dir: Path) -> dict[str, torch.Tensor]:
    """Full-size float32 weights (frozen ones in the dtype training held them in)."""
    ds = step_dir / DS_TAG
    if any(ds.glob("zero_pp_rank_*_optim_states.pt")):  # ZeRO stage 1-3: shards of every rank
        return get_fp32_state_dict_from_zero_checkpoint(str(step_dir), tag=DS_TAG)
    whole = ds / "mp_rank_00_model_states.pt"  # stage 0: rank 0 saved every weight
    if not whole.is_file():
        raise ExportError(f"{ds}: no DeepSpeed state (zero_pp_rank_* or mp_rank_00_* files)")
    return torch.load(whole, map_location="cpu", weights_only=False)["module"]


def _load_strict(model: torch.nn.Module, state: dict[str, torch.Tensor], step_dir: Path) -> None:
    result = model.load_state_dict(state, strict=False)
    for kind, keys in (("missing", result.missing_keys), ("unexpected", result.unexpected_keys)):
        if keys:
            raise ExportError(
                f"{step_dir}: {len(keys)} {kind} weights ({', '.join(keys[:SHOWN_KEYS])}); "
                f"{step_dir / CONFIG_FILE} or {step_dir / HF_DIR} does not match the DeepSpeed state"
            )


def _save_dtype(config) -> torch.dtype:
    dtype = getattr(config, "dtype", None) or torch.float32
    return getattr(torch, dtype) if isinstance(dtype, str) else dtype


def consolidate(step_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write the Hugging Face directory of checkpoint ``step_dir``; returns its path."""
    step_dir = Path(step_dir)
    if not is_step_dir(step_dir):
        raise ExportError(
            f"{step_dir}: not a complete checkpoint step dir (needs every rank's "
            f"train_state_*.json, {CONFIG_FILE}, {HF_DIR}/config.json)"
        )
    out = Path(out) if out else step_dir / CONSOLIDATED_DIR
    cfg = load_config(FinetuneConfig, [f"config={step_dir / CONFIG_FILE}"])
    state = _read_state(step_dir)
    _check_not_empty(state, step_dir)

    config = AutoConfig.from_pretrained(step_dir / HF_DIR)
    with no_init_weights():  # every weight is loaded below (strictly); this skips tying too
        model = AutoModelForImageTextToText.from_config(config, dtype=torch.float32)
    model.tie_weights()
    if cfg.model.trainable == "lora":
        model = get_peft_model(model, lora_config(model, cfg.model.lora))
    _load_strict(model, state, step_dir)
    if cfg.model.trainable == "lora":
        model = model.merge_and_unload()
    model.generation_config = GenerationConfig.from_pretrained(step_dir / HF_DIR)
    model.to(_save_dtype(config))

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    try:
        shutil.copytree(step_dir / HF_DIR, tmp, dirs_exist_ok=True)  # processor files
        model.save_pretrained(tmp)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out
