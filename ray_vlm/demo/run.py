"""``make demo`` / ``ray-vlm demo``: the whole mission on the embedded default, on a local Ray
cluster started here, printing what each stage did.

demo assets -> ``check-data`` -> DeepSpeed ZeRO-3 fine-tune on Ray Train workers -> consolidate
to a Hugging Face directory -> ``generate`` before/after -> the Serve endpoint answers one HTTP
request -> ``evaluate`` base vs fine-tuned (CIDEr on captions, VQA accuracy) through Serve.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import ray
from transformers.utils import logging as hf_logging

from ray_vlm.config import FinetuneConfig, load_config
from ray_vlm.config.eval_schema import EvalConfig
from ray_vlm.demo.assets import make_demo_assets
from ray_vlm.demo.shapes import CAPTION_PROMPT, QUESTIONS, draw, random_shape
from ray_vlm.evaluate.exact import exact_match
from ray_vlm.evaluate.run import EvalResult, evaluate
from ray_vlm.evaluate.session import EvalSession
from ray_vlm.export.finetune import train_and_export
from ray_vlm.export.generate_one import generate_one
from ray_vlm.model import SamplingParams
from ray_vlm.preprocess.check_data import check_data, format_check
from ray_vlm.preprocess.ray_runtime import ensure_ray
from ray_vlm.preprocess.resources import train_demand
from ray_vlm.serve import serve_and_ask

EVALUATIONS = {"caption": "demo_captions_test", "vqa": "demo_vqa_test"}
PRIMARY = {"caption": "cider", "vqa": "vqa_accuracy"}


def demo_config(config: str | Path, assets: Path, out: Path) -> FinetuneConfig:
    """The demo fine-tune config, pointed at the assets written under ``out``."""
    return load_config(
        FinetuneConfig,
        [
            f"config={config}",
            f"data.datasets_yaml={assets / 'datasets.yaml'}",
            f"checkpoint.init_ckpt_path={assets / 'models' / 'llava'}",
            f"dump_dir={out / 'runs' / 'finetune'}",
        ],
    )


def _stage(name: str) -> float:
    print(f"\n[demo] {name}", flush=True)
    return time.perf_counter()


def _answers(model_dir: str, image: Path) -> list[str]:
    params = SamplingParams(max_new_tokens=16)
    questions = [CAPTION_PROMPT, *QUESTIONS.values()]
    return [generate_one(model_dir, str(image), q, params).text for q in questions]


def _evaluate(
    task: str, after: str, before: str, cfg: FinetuneConfig, out: Path, session: EvalSession
) -> EvalResult:
    overrides = [
        f"ckpt={after}", f"compare={before}", f"data={EVALUATIONS[task]}", f"task={task}",
        f"datasets_yaml={cfg.data.datasets_yaml}", f"out_dir={out / 'eval' / task}",
        "max_new_tokens=16",
    ]  # fmt: skip
    return evaluate(load_config(EvalConfig, overrides), session)


def _exact_share(result: EvalResult, label: str) -> float:
    """The share of samples whose prediction equals one of its references (``exact_match``)."""
    lines = (result.out_dir / "predictions.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    return exact_match([r[label]["prediction"] for r in rows], [r["references"] for r in rows])


def _score_rows(task: str, result: EvalResult) -> list[tuple[str, float, float, str]]:
    """``(name, before, after, report)``: the task's primary metric, then the captions exactly
    right, or the metric per question type (the VQA split's colour / shape / position)."""
    metric = PRIMARY[task]
    before, after = result.metrics["compare"], result.metrics["model"]
    rows = [(f"{metric} ({EVALUATIONS[task]})", before[metric], after[metric],
             f"report: {result.report}")]  # fmt: skip
    if task == "caption":
        exact = [_exact_share(result, label) for label in ("compare", "model")]
        rows.append((f"  exact captions (n={after['samples']})", *exact, ""))
    for qtype, entry in after.get("per_question_type", {}).items():
        name = f"  {qtype} questions (n={entry['count']})"
        rows.append((name, before["per_question_type"][qtype][metric], entry[metric], ""))
    return rows


def run_demo(out: str | Path, config: str | Path) -> None:
    start = time.perf_counter()
    hf_logging.disable_progress_bar()  # one bar per model load would bury the demo's output
    out = Path(out).resolve()
    assets = out / "assets"
    if not (assets / "datasets.yaml").is_file():
        _stage(f"writing demo assets to {assets}")
        make_demo_assets(assets)
    cfg = demo_config(config, assets, out)
    base = cfg.checkpoint.init_ckpt_path
    ensure_ray(train_demand(cfg).cpus)  # the largest stage: its local cluster holds it all at once
    print(f"[demo] local Ray cluster: {ray.cluster_resources().get('CPU', 0):.0f} logical CPUs")

    _stage(f"check-data: datamix {cfg.data.datamix}")
    print(format_check(check_data(cfg)))

    workers, stage = cfg.distributed.num_workers, cfg.distributed.zero_stage
    _stage(f"train: ZeRO-{stage} on {workers} Ray Train workers, {cfg.steps} steps")
    trained = train_and_export(cfg)
    losses = [m["loss"] for m in trained.result.metrics if "loss" in m]  # not validation rows
    print(f"  loss {losses[0]:.3f} -> {losses[-1]:.3f}; checkpoints in {trained.result.dump_dir}")
    print(f"  consolidated Hugging Face model: {trained.hf_dir}")

    rng = random.Random(123)
    shape = random_shape(rng)
    image = out / "demo_image.png"
    draw(shape, rng).save(image)
    _stage(f"generate on a fresh image {image.name} (truth: '{shape.caption}')")
    questions = [CAPTION_PROMPT, *QUESTIONS.values()]
    for q, b, a in zip(
        questions, _answers(base, image), _answers(str(trained.hf_dir), image), strict=True
    ):
        print(f"  {q:28s} before: {b!r:34s} after: {a!r}")

    _stage("serve: OpenAI-compatible endpoint on the fine-tuned model, one HTTP request")
    answer = serve_and_ask(trained.hf_dir, image, CAPTION_PROMPT)
    print(f"  POST {answer['url']}/chat/completions -> {answer['answer']!r} ({answer['usage']})")

    _stage("evaluate: base (before) vs fine-tuned (after) through Serve replicas")
    rows = []
    with EvalSession() as session:  # each model's replicas start once, for both tasks
        for task in EVALUATIONS:
            result = _evaluate(task, str(trained.hf_dir), base, cfg, out, session)
            rows += _score_rows(task, result)
    print(f"  {'metric':34s} {'before':>8s} {'after':>8s}")
    for name, before, after, report in rows:
        print(f"  {name:34s} {before:8.3f} {after:8.3f}   {report}".rstrip())
    print(f"\n[demo] done in {time.perf_counter() - start:.0f} s; outputs in {out}")
