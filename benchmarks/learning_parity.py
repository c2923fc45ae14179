"""Does ``train(cfg)`` learn what a bare PyTorch loop learns from the same examples?

Run: ``.venv/bin/python benchmarks/learning_parity.py [--steps N] [--config PATH] [--model M]``.

Setup, in a temp dir: the demo assets (1,000 shapes images, captions and VQA questions) and the
demo's fine-tune config (``configs/finetune/demo.yaml``: the tiny LLaVA, the mixed captions + VQA
datamix, its global batch, AdamW, warm-up + cosine schedule, clipping), cut to ``--steps``, fp32.
``--model``: another model ``make-demo-assets`` builds in place of the demo LLaVA, e.g.
``qwen2_5_vl`` (the Qwen2.5-VL stand-in: its processor, 196 image tokens per demo image).

- ``ours``: ``train(cfg)`` on 2 Ray Train workers with DeepSpeed ZeRO-3, the data streamed by the
  Ray Data pipeline, ``logging.record_ids`` on: every step's record ids are written.
- ``bare``: one process, the same initial weights, and for each step exactly the records ``ours``
  trained on in that step (read back from ``record_ids.jsonl``) as one batch that the model's
  processor makes by itself (``processor(images=..., text=..., padding=True)``, not ray_vlm's
  encoder and collate, so that a layout or masking mistake cannot hide on both sides), labels on
  the tokens after the rendered prompt (the answer and what the template ends it with); the loss is the mean cross-entropy over the batch's answer tokens; then
  ``clip_grad_norm_``, ``torch.optim.AdamW(fused=True)`` with the config's hyper-parameters and a
  ``LambdaLR`` on the same warm-up + cosine multiplier.

Each side's loss is averaged over consecutive 10-step windows; ``max_rel_loss_diff`` is the
largest ``|ours - bare| / bare`` over the windows. Target: ``<= 0.02`` over ``>= 200`` steps.
Prints both curves (window means), then one JSON line. ``--smoke``: the same code at toy size
(4 steps).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from torch.optim.lr_scheduler import LambdaLR  # noqa: E402

from ray_vlm.config import FinetuneConfig, load_config  # noqa: E402
from ray_vlm.demo.assets import make_demo_assets  # noqa: E402
from ray_vlm.model import load_model, load_processor  # noqa: E402
from ray_vlm.preprocess.encode import IGNORE  # noqa: E402
from ray_vlm.preprocess.prompt import chat_messages  # noqa: E402
from ray_vlm.records import Record, load_image  # noqa: E402
from ray_vlm.train.loss import answer_tokens, summed_token_loss  # noqa: E402
from ray_vlm.train.record_ids import records_by_id, step_ids  # noqa: E402
from ray_vlm.train.schedule import warmup_cosine  # noqa: E402
from ray_vlm.train.trainer import train  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
WINDOW = 10


def run_config(
    config: Path, assets: Path, model: str, dump_dir: Path, steps: int
) -> FinetuneConfig:
    return load_config(
        FinetuneConfig,
        [
            f"config={config}",
            f"data.datasets_yaml={assets / 'datasets.yaml'}",
            f"checkpoint.init_ckpt_path={assets / 'models' / model}",
            f"distributed.deepspeed_config={REPO / 'configs/deepspeed/zero3.json'}",
            f"dump_dir={dump_dir}",
            f"steps={steps}",
            "checkpoint.dump.every=0",
            "distributed.num_workers=2",
            "distributed.zero_stage=3",
            "distributed.precision=fp32",
            "logging.freq=1",
            "logging.record_ids=true",
        ],
    )


def processor_batch(processor, records: list[Record]) -> dict[str, torch.Tensor]:
    """The processor's own right-padded batch of single-turn ``records``, labels on the tokens
    after each rendered prompt."""
    render = processor.apply_chat_template
    images = [[load_image(p) for p in r.images] for r in records]
    full = [render(chat_messages(r.turns, len(r.images)), tokenize=False) for r in records]
    batch = processor(images=images, text=full, padding=True, padding_side="right", return_tensors="pt")  # fmt: skip
    labels = torch.full_like(batch["input_ids"], IGNORE)
    for i, (r, imgs) in enumerate(zip(records, images, strict=True)):
        prompt = render(chat_messages(r.turns[:1], len(imgs)), add_generation_prompt=True, tokenize=False)  # fmt: skip
        start = processor(images=[imgs], text=[prompt], return_tensors="pt")["input_ids"].shape[1]
        end = int(batch["attention_mask"][i].sum())
        labels[i, start:end] = batch["input_ids"][i, start:end]
    return {**batch, "labels": labels}


def bare_losses(cfg: FinetuneConfig, ids: dict[int, list]) -> list[float]:
    """The bare loop over the records ``ours`` trained on, step by step."""
    torch.manual_seed(cfg.seed)
    processor = load_processor(cfg.checkpoint.init_ckpt_path)
    model = load_model(cfg.checkpoint.init_ckpt_path).train()
    records = records_by_id(cfg)
    o = cfg.optim
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        params,
        lr=o.lr,
        betas=(o.beta1, o.beta2),
        eps=o.eps,
        weight_decay=o.weight_decay,
        fused=True,
    )
    schedule = LambdaLR(optimizer, lambda step: warmup_cosine(o, cfg.steps, step))
    losses = []
    for step in range(1, cfg.steps + 1):
        step_records = [records[i] for rank in ids[step] for micro in rank for i in micro]
        inputs = processor_batch(processor, step_records)
        labels = inputs.pop("labels")
        loss = summed_token_loss(model(**inputs).logits, labels) / max(1, answer_tokens(labels))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if o.clip > 0:
            torch.nn.utils.clip_grad_norm_(params, o.clip)
        optimizer.step()
        schedule.step()
        losses.append(float(loss.detach()))
    return losses


def windows(values: list[float]) -> list[float]:
    return [
        sum(values[i : i + WINDOW]) / len(values[i : i + WINDOW])
        for i in range(0, len(values), WINDOW)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--config", type=Path, default=REPO / "configs/finetune/demo.yaml")
    parser.add_argument(
        "--model", default="llava", help="a make-demo-assets model, e.g. qwen2_5_vl"
    )
    parser.add_argument("--smoke", action="store_true", help="toy size: 4 steps")
    args = parser.parse_args()
    if args.smoke:
        args.steps = 4
    with tempfile.TemporaryDirectory(prefix="learning_parity_") as tmp:
        assets = make_demo_assets(Path(tmp) / "assets", models=(args.model,))
        cfg = run_config(args.config, assets, args.model, Path(tmp) / "run", args.steps)
        ours = [m["loss"] for m in train(cfg).metrics if "loss" in m]
        bare = bare_losses(cfg, step_ids(Path(cfg.dump_dir)))
    ours_w, bare_w = windows(ours), windows(bare)
    print(f"{'steps':>12s} {'ours':>10s} {'bare':>10s} {'rel diff':>9s}")
    rel = [abs(a - b) / b for a, b in zip(ours_w, bare_w, strict=True)]
    for i, (a, b, r) in enumerate(zip(ours_w, bare_w, rel, strict=True)):
        print(
            f"{i * WINDOW + 1:5d}-{min(len(ours), (i + 1) * WINDOW):<6d} {a:10.4f} {b:10.4f} {r:9.4f}"
        )
    result = {
        "model": args.model,
        "steps": len(ours),
        "max_rel_loss_diff": round(max(rel), 5),
        "final_loss_ours": round(ours_w[-1], 5),
        "final_loss_bare": round(bare_w[-1], 5),
        "first_loss_ours": round(ours[0], 5),
        "first_loss_bare": round(bare[0], 5),
        "datamix": cfg.data.datamix,
        "global_batch": cfg.batch_size * cfg.grad_acc_steps * cfg.distributed.num_workers,
    }
    if args.smoke:
        result["smoke"] = True
    print(json.dumps(result))


if __name__ == "__main__":
    main()
