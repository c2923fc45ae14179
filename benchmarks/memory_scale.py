"""Host memory of ZeRO-3 loading and of consolidation, against the model's size; new path vs old.

Run: ``.venv/bin/python benchmarks/memory_scale.py [--layers N] [--hidden H] [--trainable MODE]``.

Setup, in ``--work`` (default a temp dir): a random-init LLaVA of 1.1 B parameters by default
(the demo LLaVA's tokenizer and CLIP tower, a Llama text model of hidden 2048, 22 layers, vocab
32,000), saved in bf16 with ``save_pretrained`` like a hub checkpoint. ``--layers 2 --hidden 512``
(~40 M) is for trying the script out; ``--skip-old`` skips the old path, which needs ~16 GB of
RAM at the default size (each rank holds the model in fp32).

1. ``load``: 2 Ray Train workers on CPU, ZeRO-3, bf16 (``distributed.precision=bf16``, the shipped
   GPU configs' precision), ``model.trainable=lora``. Each worker resets its peak RSS
   (``/proc/self/clear_refs``), then does what a training worker does up to its first step: load
   the model, ``apply_trainable``, ``deepspeed.initialize`` with the run's DeepSpeed config; its
   peak RSS (``VmHWM``) over that window is the figure. New path, as ``train/loop.py`` does it:
   ``ray_vlm.model.load_model`` with the ZeRO-3 config (partitioned while built, rank 0 reads),
   under ``host_memory.setup_allocations``. Old path (measured here, no longer in the package):
   every rank ``from_pretrained`` in float32, then the same steps. The new run saves its
   checkpoint (``ray_vlm.train.checkpoint.save_checkpoint``); workers get the CPU training
   workers' malloc settings (``host_memory.CPU_WORKER_MALLOC_ENV``).
   On CPU a worker's partitions and optimizer state are host memory too (on GPU they are device
   memory): LoRA keeps the optimizer's share negligible so the figure is the loading's.
   ``--trainable full`` adds AdamW's fp32 master weights and two moments (3x the rank's fp32
   partition, created by ``deepspeed.initialize``), whichever path loads.
2. ``consolidate``: peak RSS (the child's own ``VmHWM`` at exit; ``ru_maxrss`` would count this
   driver's memory, inherited at ``fork``) of ``ray-vlm consolidate`` on that checkpoint (bf16 export, the ``auto`` dtype of a bf16 run), and of the old route in a
   child process: ``get_fp32_state_dict_from_zero_checkpoint``, an fp32 model,
   ``load_state_dict``, peft's ``merge_and_unload``, ``.to(bf16).save_pretrained``.

``load_rss_ratio_nonzero_rank``: peak RSS of rank 1 / the model's fp32 bytes (``params x 4``);
``consolidate_rss_ratio``: peak RSS / bytes of safetensors written; ``*_old``: the old path.
Every figure includes the process's fixed cost (Python, torch, Ray, DeepSpeed: ~1 GB in a Ray
Train worker, measured before loading: ``peak_rss_gb.*_before``), so they fall as the model grows
(PLM-8B: 39 GB in fp32); ``*_above_start`` ratios leave it out. Targets: ``<= 0.6`` and ``<= 1.3``.
Prints one JSON line at the end. ``--smoke``: the same code at toy size (1 layer, hidden 128).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import deepspeed  # noqa: E402
import ray.train  # noqa: E402
import torch  # noqa: E402
from ray.train import RunConfig, ScalingConfig  # noqa: E402
from ray.train.torch import TorchTrainer  # noqa: E402
from transformers import AutoConfig, AutoModelForImageTextToText  # noqa: E402

from ray_vlm.config import FinetuneConfig, load_config  # noqa: E402
from ray_vlm.demo.assets import make_demo_assets  # noqa: E402
from ray_vlm.model import load_model, load_processor  # noqa: E402
from ray_vlm.preprocess.ray_runtime import ensure_ray  # noqa: E402
from ray_vlm.train.checkpoint import save_checkpoint  # noqa: E402
from ray_vlm.train.data_order import DataOrder  # noqa: E402
from ray_vlm.train.deepspeed_config import deepspeed_config, run_dtype  # noqa: E402
from ray_vlm.train.host_memory import CPU_WORKER_MALLOC_ENV, setup_allocations  # noqa: E402
from ray_vlm.train.ray_session import RaySession  # noqa: E402
from ray_vlm.train.run_state import CHECKPOINTS, TrainState, step_dir_name  # noqa: E402
from ray_vlm.train.trainable import apply_trainable  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
WORKERS = 2
GB = 1 << 30

# The consolidation this change replaced (ray_vlm/export/consolidate.py before it), in a child.
OLD_CONSOLIDATE = """
import sys, torch
from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint
from peft import get_peft_model
from transformers import AutoConfig, AutoModelForImageTextToText
from transformers.initialization import no_init_weights
from ray_vlm.config import FinetuneConfig, load_config
from ray_vlm.train.trainable import lora_config
step, out, dtype = sys.argv[1], sys.argv[2], getattr(torch, sys.argv[3])
cfg = load_config(FinetuneConfig, [f"config={step}/config.yaml"])
state = get_fp32_state_dict_from_zero_checkpoint(step, tag="ds")
with no_init_weights():
    model = AutoModelForImageTextToText.from_config(AutoConfig.from_pretrained(f"{step}/hf"))
model.tie_weights()
if cfg.model.trainable == "lora":
    model = get_peft_model(model, lora_config(model, cfg.model.lora))
model.load_state_dict(state, strict=True)
if cfg.model.trainable == "lora":
    model = model.merge_and_unload()
model.to(dtype).save_pretrained(out)
"""
NEW_CONSOLIDATE = "import sys; from ray_vlm.cli import main; sys.exit(main(sys.argv[1:]))"
# Prefixed to a child's code: its first argument names a file that gets its peak RSS at exit.
PEAK_AT_EXIT = """
import atexit, re, sys
from pathlib import Path
_report = sys.argv.pop(1)
def _peak():
    status = Path("/proc/self/status").read_text()
    Path(_report).write_text(re.search(r"VmHWM:\\s+(\\d+) kB", status).group(1))
atexit.register(_peak)
"""


def build_model(work: Path, hidden: int, layers: int) -> tuple[Path, int]:
    """A random-init LLaVA saved in bf16 like a hub checkpoint; returns (dir, parameters)."""
    demo = make_demo_assets(work / "assets", counts={"train": 1, "test": 1}, models=("llava",))
    out = work / f"llava_h{hidden}_l{layers}"
    config = AutoConfig.from_pretrained(demo / "models" / "llava")
    heads = hidden // 128
    config.text_config.update(
        {"hidden_size": hidden, "intermediate_size": hidden * 8 // 3, "num_hidden_layers": layers,
         "num_attention_heads": heads, "num_key_value_heads": max(1, heads // 3),
         "head_dim": 128, "vocab_size": 32000}
    )  # fmt: skip
    if not (out / "config.json").is_file():
        torch.manual_seed(0)
        model = AutoModelForImageTextToText.from_config(config, dtype=torch.bfloat16)
        model.save_pretrained(out)
        load_processor(str(demo / "models" / "llava")).save_pretrained(out)
        del model
    with torch.device("meta"):
        params = sum(
            p.numel() for p in AutoModelForImageTextToText.from_config(config).parameters()
        )
    return out, params


def _peak_rss_reset() -> None:
    Path("/proc/self/clear_refs").write_text("5")


def _peak_rss() -> int:
    status = Path("/proc/self/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) * 1024


def _current_rss() -> int:
    status = Path("/proc/self/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) * 1024


def _load(path: str, cfg: FinetuneConfig, ds_config: dict):
    """The model as each path loads it on every rank (new: ``load_model`` of the package)."""
    init = cfg.checkpoint.init_ckpt_path
    if path == "new":
        return load_model(init, run_dtype(cfg.distributed), ds_config)
    return AutoModelForImageTextToText.from_pretrained(init, dtype=torch.float32)


def _setup(path: str):
    return setup_allocations() if path == "new" else contextlib.nullcontext()


def _worker(loop: dict) -> None:
    """Load, choose what trains, build the engine; write this rank's peak RSS (and save).
    (Kept apart from ``_load``: cloudpickle would otherwise pickle ``torch.distributed.config``.)"""
    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    cfg: FinetuneConfig = loop["cfg"]
    ds_config = deepspeed_config(cfg, world)
    _peak_rss_reset()
    before = _current_rss()
    with _setup(loop["path"]):
        model = _load(loop["path"], cfg, ds_config)
        loaded = _peak_rss()
        base = (
            model.config,
            model.generation_config,
            load_processor(cfg.checkpoint.init_ckpt_path),
        )
        model = apply_trainable(model, cfg.model)
        engine, *_ = deepspeed.initialize(
            model=model,
            model_parameters=[p for p in model.parameters() if p.requires_grad],
            config=ds_config,
        )
    row = {"before": before, "loaded": loaded, "engine": _peak_rss()}
    (Path(loop["out"]) / f"{loop['path']}_rank{rank}.json").write_text(json.dumps(row))
    if loop["path"] == "new":
        state = TrainState(0, 0, world, rank, cfg.seed)
        order = DataOrder.fresh(0, world)
        save_checkpoint(engine, state, order, cfg, base, RaySession(cfg, None), {})


def measure_load(cfg: FinetuneConfig, path: str, out: Path) -> list[dict]:
    TorchTrainer(
        _worker,
        train_loop_config={"cfg": cfg, "path": path, "out": str(out)},
        scaling_config=ScalingConfig(num_workers=WORKERS),
        run_config=RunConfig(
            storage_path=cfg.dump_dir,
            name=CHECKPOINTS if path == "new" else f"ray_{path}",
            worker_runtime_env={"env_vars": dict(CPU_WORKER_MALLOC_ENV)},
        ),
    ).fit()
    return [json.loads((out / f"{path}_rank{r}.json").read_text()) for r in range(WORKERS)]


def measure_consolidate(code: str, args: list[str], out: Path) -> tuple[int, int]:
    """(peak RSS of a child running ``code`` with ``args``, bytes of safetensors it wrote)."""
    report = out.parent / f"{out.name}.peak_kb"
    path = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    argv = [sys.executable, "-c", PEAK_AT_EXIT + code, str(report), *args]
    subprocess.run(argv, env={**os.environ, "PYTHONPATH": path}, check=True)
    written = sum(f.stat().st_size for f in out.glob("*.safetensors"))
    return int(report.read_text()) * 1024, written


def figures(rows: list[dict], peak: int, written: int, fp32_bytes: int, suffix: str) -> dict:
    """The ratios of one path (``suffix``: ``""`` new, ``"_old"``)."""
    rank0, rank1 = rows
    return {
        f"load_rss_ratio_nonzero_rank{suffix}": round(rank1["engine"] / fp32_bytes, 3),
        f"load_rss_ratio_rank0{suffix}": round(rank0["engine"] / fp32_bytes, 3),
        f"load_rss_ratio_nonzero_rank_above_start{suffix}": round(
            (rank1["engine"] - rank1["before"]) / fp32_bytes, 3
        ),
        f"consolidate_rss_ratio{suffix}": round(peak / written, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=2048)
    parser.add_argument("--layers", type=int, default=22)
    parser.add_argument("--trainable", default="lora", choices=["lora", "full"])
    parser.add_argument("--skip-old", action="store_true", help="measure the new path only")
    parser.add_argument("--work", type=Path, default=None, help="kept (the model is reused)")
    parser.add_argument("--smoke", action="store_true", help="toy size: 1 layer, hidden 128")
    args = parser.parse_args()
    if args.smoke:
        args.layers, args.hidden = 1, 128
    work = args.work or Path(tempfile.mkdtemp(prefix="ray_vlm_memory_"))
    work.mkdir(parents=True, exist_ok=True)
    model_dir, params = build_model(work, args.hidden, args.layers)
    run = work / f"run_{model_dir.name}_{args.trainable}"
    outs = {"new": work / f"export_new_{run.name}", "old": work / f"export_old_{run.name}"}
    for stale in (run, *outs.values()):
        shutil.rmtree(stale, ignore_errors=True)
    cfg = load_config(
        FinetuneConfig,
        [
            f"dump_dir={run}",
            f"checkpoint.init_ckpt_path={model_dir}",
            f"distributed.deepspeed_config={REPO / 'configs/deepspeed/zero3.json'}",
            f"distributed.num_workers={WORKERS}",
            "distributed.zero_stage=3",
            "distributed.precision=bf16",
            f"model.trainable={args.trainable}",
            "batch_size=1",
        ],
    )
    ensure_ray()
    paths = ("new",) if args.skip_old else ("new", "old")
    rows = {path: measure_load(cfg, path, work) for path in paths}  # "new" saves the checkpoint
    step = str(run / CHECKPOINTS / step_dir_name(0))
    children = {
        "new": (NEW_CONSOLIDATE, ["consolidate", "--ckpt", step, "--out", str(outs["new"])]),
        "old": (OLD_CONSOLIDATE, [step, str(outs["old"]), "bfloat16"]),
    }
    consolidated = {path: measure_consolidate(*children[path], outs[path]) for path in paths}

    fp32_bytes = params * 4
    result = {"params": params, "setup": f"{WORKERS} CPU workers, ZeRO-3, bf16, {args.trainable}"}
    for path in paths:
        suffix = "" if path == "new" else "_old"
        result.update(figures(rows[path], *consolidated[path], fp32_bytes, suffix))
    result["fp32_model_gb"] = round(fp32_bytes / GB, 2)
    result["written_gb"] = round(consolidated["new"][1] / GB, 2)
    result["peak_rss_gb"] = {
        **{f"{path}_rank{r}_{k}": round(row[k] / GB, 2)
           for path in paths for r, row in enumerate(rows[path])
           for k in ("before", "loaded", "engine")},
        **{f"consolidate_{path}": round(consolidated[path][0] / GB, 2) for path in paths},
    }  # fmt: skip
    if args.smoke:
        result["smoke"] = True
    print(json.dumps(result))


if __name__ == "__main__":
    main()
