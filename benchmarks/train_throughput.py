"""``ray-vlm train`` (Ray Train + DeepSpeed ZeRO-3) throughput vs a bare PyTorch loop; ZeRO-3 memory.

Run: ``.venv/bin/python benchmarks/train_throughput.py [--steps N] [--zero-stage S] [--image-size PX]``.

Setup, in a temp dir: the demo assets (shapes captions) and a ~31M-parameter LLaVA, random init,
built from the demo LLaVA's tokenizer with a bigger config (Llama text model hidden 512, 8 layers;
CLIP tower hidden 256, 4 layers, 14-px patches), so that compute, not Python, dominates a step.
Images are 224 px by default: 256 image tokens per example, the sequence length of a LLaVA-1.5
style fine-tune. ``--image-size 56`` (16 image tokens) shows the worst case for ZeRO-3, whose
per-step cost (gathering and re-partitioning every parameter, a flat optimizer step) is fixed
while the compute shrinks with the sequence.

Measured, same model, data, batch size (``BATCH``) and number of steps:

- ``bare``: one process, ``torch.optim.AdamW(fused=True)``, gradient clipping, the same collated
  batches (encoded beforehand, in memory), ``torch.set_num_threads(CPUS)``, and the malloc
  thresholds the Ray workers get (``ray_vlm/train/host_memory.py``); half the steps before the Ray
  run and half after, so a drifting machine load weighs on both alike. ``CPUS = 1``: Ray gives a
  worker of one CPU ``OMP_NUM_THREADS=1``; two torch threads were measured ~10x *slower* than one
  on this 2-core machine while other jobs ran (OpenMP threads spinning against other processes);
- ``ray_ds``: ``train(cfg)`` with 1 worker of ``CPUS`` CPUs, ZeRO-3, fp32, data streamed by the
  Ray Data pipeline; samples/s from its ``metrics.jsonl`` over the steps after ``WARMUP`` (pipeline
  and worker start-up excluded, as the bare loop's model load and first steps are).

``zero3_rank_bytes_ratio``: bytes of parameters + optimizer state (fp32 partition, Adam moments)
that one rank holds in a 2-worker run over those of a 1-worker run (both ZeRO-3; the 1-worker
figure from the timed run), read from each rank's ZeRO shard files. ``--zero-stage 0`` runs the
throughput comparison with ZeRO off (to separate the cost of ZeRO-3 from that of Ray Train +
DeepSpeed).
Targets: ``ratio >= 0.8``, ``zero3_rank_bytes_ratio <= 0.55``.
Prints one JSON line at the end. ``--smoke``: the same runs at toy size (5 steps, 56 px, one layer
per tower).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import tempfile
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from common.training import WARMUP, bare_samples_per_s, encoded_batches, steady_samples_per_s  # noqa: E402
from transformers import AutoConfig, AutoModelForImageTextToText  # noqa: E402

from ray_vlm.config import FinetuneConfig, load_config  # noqa: E402
from ray_vlm.demo.assets import make_demo_assets  # noqa: E402
from ray_vlm.model import load_model, load_processor  # noqa: E402
from ray_vlm.preprocess.encode import Encoder  # noqa: E402
from ray_vlm.preprocess.ray_runtime import ensure_ray  # noqa: E402
from ray_vlm.records import load_registry, resolve_spec  # noqa: E402
from ray_vlm.train.host_memory import CPU_WORKER_MALLOC_ENV  # noqa: E402
from ray_vlm.train.trainer import train  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
BATCH = 8
CPUS = 1
TEXT = {"hidden_size": 512, "intermediate_size": 1536, "num_hidden_layers": 8,
        "num_attention_heads": 8, "num_key_value_heads": 8}  # fmt: skip
VISION = {"hidden_size": 256, "intermediate_size": 1024, "num_hidden_layers": 4,
          "num_attention_heads": 4, "patch_size": 14}  # fmt: skip


def big_llava(
    demo_llava: Path, out: Path, image_size: int, smoke: bool = False
) -> tuple[Path, int]:
    """The demo LLaVA's tokenizer with a ~31M-parameter random-init model seeing ``image_size``-px
    images in 14-px patches (``smoke``: one layer per tower, ~5M); returns (dir, params)."""
    depth = {"num_hidden_layers": 1} if smoke else {}
    config = AutoConfig.from_pretrained(demo_llava)
    config.text_config.update({**TEXT, **depth})
    config.text_config.head_dim = TEXT["hidden_size"] // TEXT["num_attention_heads"]
    config.vision_config.update({**VISION, "image_size": image_size, **depth})
    torch.manual_seed(0)
    model = AutoModelForImageTextToText.from_config(config)
    model.save_pretrained(out)
    processor = load_processor(str(demo_llava))
    processor.patch_size = VISION["patch_size"]
    processor.image_processor.size = {"shortest_edge": image_size}
    processor.image_processor.crop_size = {"height": image_size, "width": image_size}
    processor.save_pretrained(out)
    return out, sum(p.numel() for p in model.parameters())


def keep_freed_memory_like_the_workers() -> None:
    """Give this process the malloc thresholds Ray Train's CPU workers get (``host_memory.py``);
    glibc read the environment at start-up, so they are set with ``mallopt``."""
    libc = ctypes.CDLL("libc.so.6")
    for option, key in ((-3, "MALLOC_MMAP_THRESHOLD_"), (-1, "MALLOC_TRIM_THRESHOLD_")):
        libc.mallopt(option, int(CPU_WORKER_MALLOC_ENV[key]))


def bare_loop(
    model_dir: Path, batches: list[dict[str, torch.Tensor]], cfg: FinetuneConfig
) -> float:
    """Samples/s of a plain AdamW loop over ``batches`` (the first ``WARMUP`` not timed)."""
    torch.set_num_threads(CPUS)
    keep_freed_memory_like_the_workers()
    model = load_model(str(model_dir)).train()
    o = cfg.optim
    optimizer = torch.optim.AdamW(
        model.parameters(),
        lr=o.lr,
        betas=(o.beta1, o.beta2),
        eps=o.eps,
        weight_decay=o.weight_decay,
        fused=True,
    )
    return bare_samples_per_s(model, optimizer, batches, o.clip)


def run_cfg(tmp: Path, assets: Path, model_dir: Path, name: str, *overrides: str) -> FinetuneConfig:
    return load_config(
        FinetuneConfig,
        [
            f"dump_dir={tmp / name}",
            f"checkpoint.init_ckpt_path={model_dir}",
            f"distributed.deepspeed_config={REPO / 'configs/deepspeed/zero3.json'}",
            f"data.datasets_yaml={assets / 'datasets.yaml'}",
            "data.datamix=demo_captions:1",
            "data.group_by_length=false",
            f"batch_size={BATCH}",
            "logging.freq=1",
            "checkpoint.dump.every=0",
            *overrides,
        ],
    )


def rank_bytes(step_dir: Path, rank: int) -> int:
    """Bytes of the fp32 parameter partition, master copy and Adam moments of one rank."""
    path = step_dir / f"ds/zero_pp_rank_{rank}_mp_rank_00_optim_states.pt"
    optim = torch.load(path, map_location="cpu", weights_only=False)["optimizer_state_dict"]
    master = sum(t.numel() * t.element_size() for t in optim["fp32_flat_groups"])
    moments = sum(
        t.numel() * t.element_size()
        for state in optim["optimizer_state_dict"]["state"].values()
        for t in state.values()
        if t.numel() > 1
    )
    return 2 * master + moments  # the parameter partition has the master's size in fp32


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=24, help="timed steps + WARMUP")
    parser.add_argument(
        "--zero-stage", type=int, default=3, help="ZeRO stage of the 1-worker throughput run"
    )
    parser.add_argument(
        "--image-size", type=int, default=224, help="pixels; 14-px patches, so 256 image tokens"
    )
    parser.add_argument("--smoke", action="store_true", help="toy size: 5 steps, 56-px images")
    args = parser.parse_args()
    if args.smoke:
        args.steps, args.image_size = WARMUP + 2, 56
    ensure_ray(4)  # first: the cluster starts while this process builds the model and data
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        assets = make_demo_assets(
            tmp / "assets",
            counts={"train": 40 if args.smoke else 200, "test": 4},
            models=("llava",),
        )
        model_dir, params = big_llava(
            assets / "models/llava",
            tmp / "big_llava",
            args.image_size,
            args.smoke,
        )
        cfg = run_cfg(tmp, assets, model_dir, "one", f"steps={args.steps}",
                      "distributed.num_workers=1", f"distributed.cpus_per_worker={CPUS}",
                      f"distributed.zero_stage={args.zero_stage}")  # fmt: skip
        spec = resolve_spec(
            "demo_captions", load_registry(assets / "datasets.yaml")["demo_captions"]
        )
        encoder = Encoder(load_processor(str(model_dir)), cfg.data.max_seq_len)
        batches = encoded_batches(encoder, spec, BATCH, args.steps)
        half = WARMUP + (args.steps - WARMUP) // 2
        bare_before = bare_loop(model_dir, batches[:half], cfg)
        timed = train(cfg)
        ray_ds = steady_samples_per_s(timed.metrics)
        bare_after = bare_loop(model_dir, batches[: WARMUP + args.steps - half], cfg)
        bare = (bare_before + bare_after) / 2
        two = train(run_cfg(tmp, assets, model_dir, "two", "steps=2", "distributed.num_workers=2"))
        if args.zero_stage != 3:  # the timed run's shards are not ZeRO-3's: one more run for them
            timed = train(
                run_cfg(tmp, assets, model_dir, "one_z3", "steps=2", "distributed.num_workers=1")
            )
        one_bytes = rank_bytes(timed.checkpoint, 0)
        two_bytes = max(rank_bytes(two.checkpoint, r) for r in (0, 1))
        result = {
            "params": params,
            "batch_size": BATCH,
            "image_size": args.image_size,
            "timed_steps": args.steps - WARMUP,
            "zero_stage": args.zero_stage,
            "ray_ds_samples_per_s": round(ray_ds, 2),
            "bare_samples_per_s": round(bare, 2),
            "bare_before_after": [round(bare_before, 2), round(bare_after, 2)],
            "ratio": round(ray_ds / bare, 3),
            "rank_bytes_1_worker": one_bytes,
            "rank_bytes_2_workers": two_bytes,
            "zero3_rank_bytes_ratio": round(two_bytes / one_bytes, 3),
        }
        if args.smoke:
            result["smoke"] = True
        print(json.dumps(result))


if __name__ == "__main__":
    main()
