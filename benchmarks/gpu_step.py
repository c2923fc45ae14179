"""PaliGemma-2 3B on one GPU (attention only, 224 px, batch 8): our training loop's samples/s and
MFU vs a bare PyTorch loop on the same batches.

Run on the GPU machine (no Ray, no network needed), from the repository root, once the wheels
``make test-gpu`` installs are in: ``PYTHONPATH=. python3 benchmarks/gpu_step.py [--steps N]``
(``PYTHONPATH=. python3 benchmarks/suite.py run gpu_step`` records it in ``results.jsonl``).
Without CUDA only ``--smoke`` runs.

Model: the architecture of ``google/paligemma2-3b-pt-224`` at random init (nothing downloaded),
saved in bfloat16 (the run loads it in fp32): SigLIP So400m/14 at 224 px (``SIGLIP_SO400M``: 256 image
tokens, no pooling head) and Gemma-2 2B (``GEMMA2_2B``; soft-capping, sliding window, RoPE and
norms are ``Gemma2Config``'s defaults, which are Gemma-2 2B's), tied embedding: 3.03 B parameters.
The values are those of transformers' ``models/paligemma/convert_paligemma2_weights_to_hf.py``
(``VARIANT_CONFIGS["2b"]``, its ``vision_config``, text ``vocab_size`` 257,152). Processor and
tokenizer are ``ray_vlm.demo.tiny_models.build_paligemma2_224_standin``'s (the hub processor's
settings; a small BPE vocabulary, so the token ids stay below it), the records the demo's
PaliGemma-layout shape captions (``ray_vlm.demo.assets``). ``--smoke``: the stand-in's widths and
vocabulary, one layer per tower, 56-px images (16 image tokens), ``WARMUP`` + 2 steps, on CPU.

Settings: ``configs/finetune/paligemma_prescription.yaml`` as shipped (attention only, frozen
weights held in float16 and computed in float32, precision fp32, ZeRO 0, SGD lr 0.01 without
clipping, gradient checkpointing, batch 8), with no lr warm-up, no validation, no checkpoint but
the one the loop always writes after its last step (not timed), ``data.preprocess_workers=0``.

- ``samples_per_s``: ``torchrun --standalone --nproc-per-node 1 -m ray_vlm.train.local_run``;
  its ``metrics.jsonl`` over the steps after ``WARMUP`` (each step ends synchronised: the loop
  reads its all-reduced loss). Its records are read and encoded in the training process, within
  the step's time (the torchrun path has no preprocessing actors);
- ``bare_samples_per_s``: this process, the same ``load_model``, gradient checkpointing,
  ``apply_trainable`` and ``torch.optim.SGD``, ``model(**batch).loss.backward()``, as many steps,
  on batches of the same records encoded beforehand by the run's encoder and ``collate``
  (``common.training.bare_samples_per_s``, CUDA synchronised at both ends of the timed steps).

MFU = model FLOPs per sample x samples/s / peak FLOP/s. Per sample, with T its tokens (attention
mask), T_v the image tokens, matmul parameters N_v (vision tower), N_p (projector), N_lm (language
model layers + ``lm_head``; the embedding lookup costs nothing), N_attn (the trainable attention),
L / L_v layers and d / d_v the attention width (heads x head_dim):

- forward: 2·N_v·T_v + 2·N_p·T_v + 2·N_lm·T + 4·L_v·T_v²·d_v + 4·L·T²·d (QKᵀ and PV);
- backward: activation gradients through the whole language model (its first layer's attention
  trains) 2·N_lm·T + 8·L·T²·d, weight gradients of the trainable attention only 2·N_attn·T; none
  through the frozen vision tower and projector;
- gradient checkpointing's recomputed forward is not counted (model FLOPs, not hardware FLOPs).

Peak: the run's matmuls are fp32 without TF32: nothing in ray_vlm sets
``torch.backends.cuda.matmul.allow_tf32`` or ``set_float32_matmul_precision``, and torch's default
is full fp32 ("highest"; cuDNN convolutions, here only SigLIP's patch embedding, may use TF32).
So the peak is the FP32 (CUDA core) rate of NVIDIA's datasheets (``FP32_PEAKS``): H100 SXM and H200
67 TFLOPS (66.9 = 16,896 cores x 2 x 1.98 GHz, the H100 whitepaper's table), H100 PCIe 51, H100 NVL
and H200 NVL 60. For reference, the SXM parts' dense tensor-core peaks: TF32 494.7, BF16 989.4
TFLOPS (989 and 1,979 "with sparsity" on the datasheets). Other GPUs and the CPU: measured, the best
of 5 fp32 square matmuls (``measured_peak``) with the threads the runs get.

Target: ratio >= 0.9, MFU reported. Prints one JSON line at the end (``"smoke": true`` with
``--smoke``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from common.training import (  # noqa: E402
    WARMUP,
    bare_samples_per_s,
    encoded_batches,
    steady_samples_per_s,
    synchronize,
)
from transformers import AutoConfig, AutoModelForImageTextToText, PaliGemmaConfig  # noqa: E402

from ray_vlm.config import FinetuneConfig, load_config  # noqa: E402
from ray_vlm.demo.assets import make_demo_assets  # noqa: E402
from ray_vlm.model import load_model, load_processor  # noqa: E402
from ray_vlm.preprocess.chunk_records import run_encoder  # noqa: E402
from ray_vlm.records import load_registry, resolve_spec  # noqa: E402
from ray_vlm.train.deepspeed_config import run_dtype  # noqa: E402
from ray_vlm.train.metrics import read_metrics  # noqa: E402
from ray_vlm.train.trainable import apply_trainable  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs/finetune/paligemma_prescription.yaml"
STANDIN = "paligemma2_224_standin"
DATASET = "demo_paligemma_train"
BATCH = 8  # the shipped config's batch_size
CPU_THREADS = 1  # as train_throughput: OpenMP threads spin against other work on 2 shared cores
SIGLIP_SO400M = {"hidden_size": 1152, "intermediate_size": 4304, "num_hidden_layers": 27,
                 "num_attention_heads": 16, "patch_size": 14}  # fmt: skip
GEMMA2_2B = {"vocab_size": 257152, "hidden_size": 2304, "intermediate_size": 9216,
             "num_hidden_layers": 26, "num_attention_heads": 8, "num_key_value_heads": 4,
             "head_dim": 256, "query_pre_attn_scalar": 256}  # fmt: skip
SMOKE = {"num_hidden_layers": 1}  # on the stand-in's widths and vocabulary
FP32_PEAKS = (("H100 PCIe", 51e12), ("H100 NVL", 60e12), ("H200 NVL", 60e12),
              ("H100", 66.9e12), ("H200", 66.9e12))  # fmt: skip
"""``torch.cuda.get_device_name()`` fragment -> dense FP32 FLOP/s; the first that matches."""


def paligemma2_config(standin: Path, image_size: int, smoke: bool) -> PaliGemmaConfig:
    """PaliGemma-2 3B pt-224's architecture (``smoke``: the stand-in's, one layer per tower) seeing
    ``image_size``-px images, with the stand-in's token ids."""
    base = AutoConfig.from_pretrained(standin)
    vision = {**base.vision_config.to_dict(), "image_size": image_size, "vision_use_head": False}
    vision.update(SMOKE if smoke else SIGLIP_SO400M)
    text = {**base.text_config.to_dict(), **(SMOKE if smoke else GEMMA2_2B)}
    del text["layer_types"]  # the stand-in's two; made anew for the layer count
    return PaliGemmaConfig(
        vision_config=vision,
        text_config=text,
        image_token_id=base.image_token_id,
        projection_dim=text["hidden_size"],
    )


def paligemma2_3b(
    standin: Path, out: Path, image_size: int, smoke: bool, device: torch.device
) -> Path:
    """``paligemma2_config``'s model at random init in bfloat16 with the stand-in's processor (image
    size and image-token count made to match), saved under ``out``."""
    config = paligemma2_config(standin, image_size, smoke)
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForImageTextToText.from_config(config, dtype=torch.bfloat16)
    model.save_pretrained(out)
    del model
    torch.cuda.empty_cache()  # for the torchrun process (a no-op without CUDA)
    processor = load_processor(str(standin))
    tokens = config.text_config.num_image_tokens
    processor.image_processor.size = {"height": image_size, "width": image_size}
    processor.image_processor.image_seq_length = processor.image_seq_length = tokens
    processor.save_pretrained(out)
    return out


def run_args(tmp: Path, assets: Path, model_dir: Path, steps: int) -> list[str]:
    """The shipped PaliGemma config, made to run ``steps`` steps (``WARMUP`` of them untimed) on
    the demo records, logging every step."""
    return [
        f"config={CONFIG}", f"dump_dir={tmp / 'run'}", f"checkpoint.init_ckpt_path={model_dir}",
        f"data.datasets_yaml={assets / 'datasets.yaml'}", f"data.datamix={DATASET}:1",
        "data.preprocess_workers=0", "eval.datamix=''", f"steps={steps}", "optim.warmup=0",
        "logging.freq=1", "checkpoint.dump.every=0",
    ]  # fmt: skip


def ours(args: list[str], dump_dir: str, cpu: bool) -> float:
    """Samples/s of ``ray_vlm.train.local_run args`` (writing to ``dump_dir``) under ``torchrun``,
    one process."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO),
           os.environ.get("PYTHONPATH")]))}  # fmt: skip
    if cpu:
        env["OMP_NUM_THREADS"] = str(CPU_THREADS)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc-per-node", "1", "-m", "ray_vlm.train.local_run", *args]  # fmt: skip
    subprocess.run(command, env=env, cwd=REPO, check=True)
    return steady_samples_per_s(read_metrics(dump_dir))


def bare_model(cfg: FinetuneConfig, device: torch.device) -> torch.nn.Module:
    """The model as the recipe sets it up (``ray_vlm.train.loop.Recipe``), on ``device``."""
    model = load_model(
        cfg.checkpoint.init_ckpt_path, run_dtype(cfg.distributed), None,
        cfg.model.attn_implementation,
    )  # fmt: skip
    if cfg.model.gradient_checkpointing:
        model.gradient_checkpointing_enable({"use_reentrant": False})
    return apply_trainable(model, cfg.model).to(device)


def _numel(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def flops_per_sample(model: torch.nn.Module, batches: list[dict[str, torch.Tensor]]) -> float:
    """Model FLOPs of one training sample, the mean over ``batches``' samples (module docstring)."""
    inner, vision, text = model.model, model.config.vision_config, model.config.text_config
    lm = inner.language_model
    n_v, n_p = _numel(inner.vision_tower), _numel(inner.multi_modal_projector)
    n_lm = _numel(lm) - lm.get_input_embeddings().weight.numel() + model.lm_head.weight.numel()
    n_attn = sum(p.numel() for p in model.parameters() if p.requires_grad)
    t_v = (vision.image_size // vision.patch_size) ** 2
    layers, d = text.num_hidden_layers, text.num_attention_heads * text.head_dim
    vision_fwd = 2 * (n_v + n_p) * t_v + 4 * vision.num_hidden_layers * t_v**2 * vision.hidden_size
    tokens = torch.cat([b["attention_mask"].sum(1) for b in batches]).double()
    lm_fwd = 2 * n_lm * tokens + 4 * layers * tokens**2 * d
    lm_bwd = 2 * n_lm * tokens + 8 * layers * tokens**2 * d + 2 * n_attn * tokens
    return float((vision_fwd + lm_fwd + lm_bwd).mean())


def measured_peak(device: torch.device) -> float:
    """FLOP/s of the best of 5 fp32 square matmuls (8,192 on a GPU, 2,048 on the CPU)."""
    n = 8192 if device.type == "cuda" else 2048
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    best = float("inf")
    for _ in range(5):
        synchronize(device)
        started = time.perf_counter()
        a @ b
        synchronize(device)
        best = min(best, time.perf_counter() - started)
    return 2 * n**3 / best


def peak(device: torch.device) -> tuple[str, float, str]:
    """(device name, fp32 peak FLOP/s, where the peak comes from)."""
    if device.type != "cuda":
        return "cpu", measured_peak(device), f"measured, {CPU_THREADS} thread(s)"
    name = torch.cuda.get_device_name(device)
    sheet = next((flops for part, flops in FP32_PEAKS if part in name), None)
    if sheet is None:
        return name, measured_peak(device), "measured"
    return name, sheet, "NVIDIA datasheet, FP32"


def _sig(x: float) -> float:
    return float(f"{x:.3g}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=WARMUP + 20, help="timed steps + WARMUP")
    parser.add_argument("--smoke", action="store_true", help="toy size on CPU: 56 px, 5 steps")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not (args.smoke or device.type == "cuda"):
        parser.error("the full size needs a CUDA GPU (the `make test-gpu` machine); try --smoke")
    if args.smoke:
        args.steps = WARMUP + 2
    if device.type == "cpu":
        torch.set_num_threads(CPU_THREADS)
    image_size = 56 if args.smoke else 224
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        assets = make_demo_assets(
            tmp / "assets", counts={"train": args.steps * BATCH, "test": 2}, models=(STANDIN,)
        )
        model_dir = paligemma2_3b(
            assets / "models" / STANDIN, tmp / "model", image_size, args.smoke, device
        )
        run = run_args(tmp, assets, model_dir, args.steps)
        cfg = load_config(FinetuneConfig, run)
        ours_rate = ours(run, cfg.dump_dir, device.type == "cpu")
        spec = resolve_spec(DATASET, load_registry(assets / "datasets.yaml")[DATASET])
        batches = encoded_batches(run_encoder(cfg), spec, BATCH, args.steps)
        model = bare_model(cfg, device)
        o = cfg.optim
        optimizer = torch.optim.SGD(
            [p for p in model.parameters() if p.requires_grad], lr=o.lr, weight_decay=o.weight_decay
        )
        bare_rate = bare_samples_per_s(model, optimizer, batches, o.clip)
        flops = flops_per_sample(model, batches)
        name, peak_flops, source = peak(device)
        result = {
            "device": name,
            "params": _numel(model),
            "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
            "batch_size": BATCH,
            "image_size": image_size,
            "timed_steps": args.steps - WARMUP,
            "tflop_per_sample": _sig(flops / 1e12),
            "samples_per_s": _sig(ours_rate),
            "bare_samples_per_s": _sig(bare_rate),
            "ratio": round(ours_rate / bare_rate, 3),
            "mfu": _sig(ours_rate * flops / peak_flops),
            "bare_mfu": _sig(bare_rate * flops / peak_flops),
            "peak_tflops": _sig(peak_flops / 1e12),
            "peak_source": source,
        }
        if args.smoke:
            result["smoke"] = True
        print(json.dumps(result))


if __name__ == "__main__":
    main()
