"""Batch evaluation at the speed of the model: a plain single-process loop vs ``evaluate()``.

Run: ``.venv/bin/python benchmarks/eval_throughput.py [--large-records N] [--runs R] [--smoke]``.

Setup, in a temp dir: the demo assets and two models, each scored on a VQA split with greedy
decoding and ``MAX_NEW_TOKENS`` new tokens at most (a one-word answer and its end token, as the
fine-tuned demo model answers):

- ``small``: the demo LLaVA (32-px images, 16 image tokens; a ~1-ms model: overhead-bound) on the
  demo's VQA test split (300 questions) read ``--small-repeat`` (10) times over: 3,000 records,
  so that the steady state lasts seconds. Read once, the split is ten batches of 32 that the
  replica answers in about half a second: four of them are in flight before the first answer
  comes back, so "steady" there measures the pipeline filling and draining and the host's
  jitter, not a sustained rate. The single pass is measured too (``small_once``) and reported
  beside it;
- ``large``: the ~31M-parameter LLaVA of ``train_throughput.py`` at ``--large-image-size`` (224)
  px (256 image tokens; compute-bound) on the first ``--large-records`` (1,000) questions of the
  demo's VQA train split.

Measured, same model, records and CPU budget (the model runs on one torch thread):

- ``plain``: one process, ``torch.set_num_threads(1)``: records read in file order, images
  decoded, batches of ``BATCH`` through ``processor`` + ``model.generate`` (``ray_vlm.model.generate``).
  Steady state: the records after the first batch over the time after it; end to end: model load
  included.
- ``ours``: ``evaluate(cfg)`` on a local Ray cluster already started (as on a running cluster): one
  generation replica of one CPU (one torch thread), its defaults otherwise (batches of 32, two in
  flight). Steady state: ``timing.steady_records_per_s`` (records after the first batch's, from its
  arrival to the last); end to end: the whole ``evaluate()`` call (Serve and replica start, the
  stream, scoring, report). Ray's own processes use the machine's second core.

Predictions must be identical (same text for every record). ``--runs R`` repeats the measurement
and reports the median of each ratio. Targets: ``ratio_steady_small >= 0.5``,
``ratio_steady_large >= 0.8``, ``ratio_end_to_end_large >= 0.6``. Prints one JSON line at the end.
``--smoke``: the same code at toy size (the test split read once; 40 large-model records, 56 px,
one layer per tower).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
import yaml  # noqa: E402

from ray_vlm.config import load_config  # noqa: E402
from ray_vlm.config.eval_schema import EvalConfig  # noqa: E402
from ray_vlm.demo.assets import make_demo_assets  # noqa: E402
from ray_vlm.evaluate.run import evaluate  # noqa: E402
from ray_vlm.model import SamplingParams, generate, load_model, load_processor  # noqa: E402
from ray_vlm.preprocess.ray_runtime import ensure_ray  # noqa: E402
from ray_vlm.records import Record, load_image, load_registry, read_records, resolve_spec  # noqa: E402, E501

sys.path.insert(0, str(Path(__file__).parent))
from train_throughput import big_llava  # noqa: E402

BATCH = 32
MAX_NEW_TOKENS = 3


def split_registry(assets: Path, folder: Path, large_records: int, small_repeat: int) -> Path:
    """The demo registry plus ``vqa_large``, the first ``large_records`` training questions, and
    ``vqa_small``, the VQA test split ``small_repeat`` times over."""
    registry = yaml.safe_load((assets / "datasets.yaml").read_text())
    train = Path(registry["demo_vqa"]["annotation"]).read_text().splitlines()[:large_records]
    test = Path(registry["demo_vqa_test"]["annotation"]).read_text().splitlines()
    for name, lines in (("vqa_large", train), ("vqa_small", test * small_repeat)):
        (folder / f"{name}.jsonl").write_text("\n".join(lines) + "\n")
        registry[name] = {**registry["demo_vqa"], "annotation": str(folder / f"{name}.jsonl")}
    path = folder / "datasets.yaml"
    path.write_text(yaml.safe_dump(registry))
    return path


def split_records(registry: Path, name: str) -> list[Record]:
    spec = resolve_spec(name, load_registry(registry)[name])
    return [r for r in read_records(spec, verify_images=False) if isinstance(r, Record)]


def plain_loop(model_dir: Path, records: list[Record]) -> tuple[dict[str, str], float, float]:
    """``(prediction per (image, question), steady records/s, end-to-end records/s)``."""
    torch.set_num_threads(1)
    start = time.perf_counter()
    model, processor = load_model(str(model_dir), "float32"), load_processor(str(model_dir))
    params = SamplingParams(max_new_tokens=MAX_NEW_TOKENS)
    predictions, after_first = {}, 0.0
    for i in range(0, len(records), BATCH):
        batch = records[i : i + BATCH]
        requests = [([load_image(p) for p in r.images], list(r.turns[:-1])) for r in batch]
        for record, answer in zip(batch, generate(model, processor, requests, params), strict=True):
            predictions[(record.images[0], record.prompt)] = answer.text
        if i == 0:
            after_first = time.perf_counter()
    end = time.perf_counter()
    steady = (len(records) - min(BATCH, len(records))) / (end - after_first)
    return predictions, steady, len(records) / (end - start)


def ours(model_dir: Path, registry: Path, split: str, out: Path) -> tuple[dict, float, float]:
    """``(prediction per (image, question), steady records/s, seconds end to end)``."""
    cfg = load_config(
        EvalConfig,
        [f"ckpt={model_dir}", f"data={split}", "task=vqa", f"datasets_yaml={registry}",
         f"out_dir={out}", f"max_new_tokens={MAX_NEW_TOKENS}", "serve.replicas.num_cpus=1"],
    )  # fmt: skip
    start = time.perf_counter()
    result = evaluate(cfg)
    seconds = time.perf_counter() - start
    rows = [json.loads(x) for x in (out / "predictions.jsonl").read_text().splitlines()]
    predictions = {(r["images"][0], r["question"]): r["model"]["prediction"] for r in rows}
    return predictions, result.metrics["model"]["timing"]["steady_records_per_s"], seconds


def measure(name: str, model_dir: Path, registry: Path, split: str, tmp: Path) -> dict:
    records = split_records(registry, split)
    expected, plain_steady, plain_e2e = plain_loop(model_dir, records)
    got, ours_steady, ours_seconds = ours(model_dir, registry, split, tmp / f"eval_{name}")
    ours_e2e = len(records) / ours_seconds  # records: a repeated record is one sample, one row
    mismatches = sum(got.get(key) != text for key, text in expected.items())
    row = {
        "records": len(records), "plain_steady": plain_steady, "ours_steady": ours_steady,
        "plain_end_to_end": plain_e2e, "ours_end_to_end": ours_e2e,
        "ratio_steady": ours_steady / plain_steady, "ratio_end_to_end": ours_e2e / plain_e2e,
        "mismatches": mismatches,
    }  # fmt: skip
    print(name, json.dumps({k: round(v, 3) for k, v in row.items()}), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--large-records", type=int, default=1000)
    parser.add_argument("--small-repeat", type=int, default=10)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--large-image-size", type=int, default=224, help="px, 14-px patches")
    parser.add_argument("--smoke", action="store_true", help="toy size: 1 pass, 40 large at 56 px")
    args = parser.parse_args()
    if args.smoke:  # two large batches: the steady rate needs records after the first
        args.large_records, args.large_image_size, args.small_repeat, args.runs = 40, 56, 1, 1
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        assets = make_demo_assets(tmp / "assets", models=("llava",))
        registry = split_registry(assets, tmp, args.large_records, args.small_repeat)
        large, params = big_llava(
            assets / "models/llava",
            tmp / "big_llava",
            args.large_image_size,
            args.smoke,
        )
        print(f"large model: {params / 1e6:.1f}M parameters", flush=True)
        ensure_ray(2)
        runs = []
        for _ in range(args.runs):
            small = measure("small", assets / "models/llava", registry, "vqa_small", tmp)
            big = measure("large", large, registry, "vqa_large", tmp)
            once = measure("small_once", assets / "models/llava", registry, "demo_vqa_test", tmp)
            runs.append((small, big, once))

    def median(which: int, key: str) -> float:
        return statistics.median(run[which][key] for run in runs)

    small, big, once = runs[-1]
    result = {
        "runs": args.runs,
        "records_small": small["records"],
        "records_large": big["records"],
        "records_small_once": once["records"],
        "ratio_steady_small": round(median(0, "ratio_steady"), 3),
        "ratio_end_to_end_small": round(median(0, "ratio_end_to_end"), 3),
        "ratio_steady_large": round(median(1, "ratio_steady"), 3),
        "ratio_end_to_end_large": round(median(1, "ratio_end_to_end"), 3),
        "ratio_steady_small_once": round(median(2, "ratio_steady"), 3),
        "plain_steady_small": round(median(0, "plain_steady"), 1),
        "ours_steady_small": round(median(0, "ours_steady"), 1),
        "plain_steady_large": round(median(1, "plain_steady"), 1),
        "ours_steady_large": round(median(1, "ours_steady"), 1),
        "identical_predictions": all(r["mismatches"] == 0 for run in runs for r in run),
        "mismatches": max(r["mismatches"] for run in runs for r in run),
    }
    if args.smoke:
        result["smoke"] = True
    print(json.dumps(result))


if __name__ == "__main__":
    main()
