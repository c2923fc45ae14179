"""Ray Data preprocessing throughput vs a plain single-process loop, and padding share (issue 3).

Run: ``.venv/bin/python benchmarks/data_throughput.py [--quick] [--records N] [--repeats K]``.

Setup, all in a temp dir: ``N`` PLM-format caption records on 384x384 PNGs (gradient + noise,
~340 KB each, as photos are) with long-tailed answer lengths (3..300 words), and a LLaVA processor
as a CLIP-336 model has (resize/crop to 336 px, 14 px patches: 576 image tokens per record) with
the demo's locally trained tokenizer and chat template.

Measured on the same records with the same processor, ``K`` times (default 3); the comparison
with the median ratio is reported, all ratios under ``ratios``:
- ``loop``: ``read_records`` + ``Encoder.encode`` per record, one process, one torch thread; it
  runs half of the records before the pipeline and half after, so a drifting machine load (other
  jobs) weighs on both alike. Both make the same uint8 pixels (``preprocess/pixels.py``: the
  processor's rescale and normalisation happen later, when training batches are built);
- ``ray``: ``build_dataset`` over ``plan_each_once`` (the training pipeline), consumed with
  ``iter_batches`` on the driver, block by block as they stream in (numpy, every column).

Timing is steady state for both: the loop's clock runs after the processor is loaded and one
record encoded; the pipeline's clock starts when its first block reaches the driver (actor
start-up, processor loads and that block excluded) and counts the rows of the later blocks.
``*_incl_startup`` keys give both with start-up included (the pipeline from the ``build_dataset``
call, the loop from loading the processor).

Priority: Ray starts its worker processes (the preprocessing actors here, Ray Train workers in
training) at a lower CPU priority (nice 15 by default). After starting Ray, this process lowers
its own priority to theirs, so that the loop and the actors compete for the CPU with other jobs on
this machine on equal terms; on an idle machine that changes nothing.

Torch threads: Ray gives each ``num_cpus=1`` actor ``OMP_NUM_THREADS=1``; the loop gets the same
(one torch thread), since two threads were measured several times *slower* on this 2-core machine
whenever anything else ran on it (OpenMP threads spinning against other processes).

Padding share: the pipeline's ``num_tokens`` in stream order, batched with ``length_grouped``
(``batch_size`` and ``data.length_group_batches`` from ``FinetuneConfig`` defaults) vs stream
order (``group_batches=1``). Prints one JSON line at the end. ``--smoke``: the same code at toy
size (160 records, one comparison).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import ray  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from transformers import CLIPImageProcessor, LlavaProcessor  # noqa: E402

from ray_vlm.config import DataConfig, FinetuneConfig  # noqa: E402
from ray_vlm.demo.tiny_models import build_tokenizer, chat_template  # noqa: E402
from ray_vlm.preprocess.batching import length_grouped, padding_share  # noqa: E402
from ray_vlm.preprocess.encode import Encoder  # noqa: E402
from ray_vlm.preprocess.pipeline import build_dataset  # noqa: E402
from ray_vlm.preprocess.processor import load_processor  # noqa: E402
from ray_vlm.preprocess.ray_runtime import ensure_ray  # noqa: E402
from ray_vlm.preprocess.stream_plan import plan_each_once  # noqa: E402
from ray_vlm.records import BadRecord, DatamixEntry, DatasetSpec, read_records, resolve_spec  # noqa: E402

IMAGE_SIDE = 384
CLIP_SIDE, CLIP_PATCH = 336, 14
DISTINCT_IMAGES = 64  # records cycle over these (decoding cost is per record either way)
MAX_SEQ_LEN = 1024  # 576 image tokens + the longest answer fit: nothing is truncated
VOCABULARY = (
    "the a an of on in with and left right upper lower small large round oval dark bright "
    "shadow mass lesion opacity margin border tissue lung heart rib bone chest view image "
    "shows normal mild severe no evidence of effusion consolidation fracture nodule"
)
WORDS = VOCABULARY.split()
PROMPTS = ("Describe the image.", "Write a detailed report of this radiograph.", "Caption this.")


def make_images(folder: Path, rng: np.random.Generator) -> list[str]:
    folder.mkdir(parents=True)
    y, x = np.mgrid[0:IMAGE_SIDE, 0:IMAGE_SIDE]
    names = []
    for i in range(DISTINCT_IMAGES):
        gradient = (x * rng.uniform(0.2, 0.7) + y * rng.uniform(0.2, 0.7)) % 256
        pixels = np.stack([gradient] * 3, -1) + rng.normal(0, 12, (IMAGE_SIDE, IMAGE_SIDE, 3))
        names.append(f"{i:04d}.png")
        Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(folder / names[-1])
    return names


def make_records(root: Path, n: int, seed: int = 0) -> DatasetSpec:
    """``root/train.jsonl`` (PLM conversations) + ``root/images``; answers of 3..300 words."""
    rng = np.random.default_rng(seed)
    names = make_images(root / "images", rng)
    lengths = np.clip(rng.lognormal(np.log(40), 0.9, n), 3, 300).astype(int)
    with (root / "train.jsonl").open("w") as f:
        for i, k in enumerate(lengths):
            answer = " ".join(rng.choice(WORDS, k))
            turns = [
                {"from": "human", "value": PROMPTS[i % len(PROMPTS)]},
                {"from": "assistant", "value": answer},
            ]
            f.write(json.dumps({"image": names[i % len(names)], "conversations": turns}) + "\n")
    return resolve_spec("bench", DatasetSpec(annotation=str(root / "train.jsonl")))


def make_processor(out: Path) -> str:
    """A LLaVA processor sized like a CLIP-336 model (576 image tokens), saved to ``out``."""
    tokenizer = build_tokenizer([" ".join(WORDS), *PROMPTS], {"image_token": "<image>"})
    processor = LlavaProcessor(
        image_processor=CLIPImageProcessor(
            size={"shortest_edge": CLIP_SIDE}, crop_size={"height": CLIP_SIDE, "width": CLIP_SIDE}
        ),
        tokenizer=tokenizer,
        patch_size=CLIP_PATCH,
        vision_feature_select_strategy="default",
        chat_template=chat_template("<image>"),
        num_additional_image_tokens=1,
    )
    processor.save_pretrained(out)
    return str(out)


@ray.remote(num_cpus=0)
def worker_niceness() -> int:
    return os.nice(0)


def start_loop(spec: DatasetSpec, processor_dir: str) -> tuple[Encoder, Iterator, float]:
    """The loop's encoder (one record encoded to warm it), its record stream, start-up seconds."""
    torch.set_num_threads(1)
    start = time.perf_counter()
    encoder = Encoder(load_processor(processor_dir), MAX_SEQ_LEN)
    encoder.encode(next(r for r in read_records(spec, False) if not isinstance(r, BadRecord)))
    return encoder, read_records(spec, verify_images=False), time.perf_counter() - start


def loop_part(encoder: Encoder, records: Iterator, limit: int) -> tuple[int, float]:
    """Parse and encode the next ``limit`` records: ``(encoded, seconds)``."""
    start, n = time.perf_counter(), 0
    for record in itertools.islice(records, limit):
        if not isinstance(record, BadRecord):
            encoder.encode(record)
            n += 1
    return n, time.perf_counter() - start


def run_ray(spec: DatasetSpec, processor_dir: str, cfg: DataConfig) -> dict:
    """The pipeline consumed block by block on the driver; ``num_tokens`` in stream order.

    Steady state: from the arrival of the first block, counting the rows of the later blocks.
    """
    start = time.perf_counter()
    plan = plan_each_once([(DatamixEntry("bench", 1, 1), spec)])
    dataset, _ = build_dataset(plan, processor_dir, cfg)
    lengths: list[int] = []
    first, first_rows = 0.0, 0
    for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
        if not lengths:
            first, first_rows = time.perf_counter(), len(batch["num_tokens"])
        lengths += batch["num_tokens"].tolist()
    end = time.perf_counter()
    return {
        "samples_per_s": (len(lengths) - first_rows) / (end - first),
        "incl_startup": len(lengths) / (end - start),
        "lengths": lengths,
    }


def measure(spec: DatasetSpec, processor_dir: str, cfg: DataConfig, n: int) -> dict:
    """One comparison: half the loop, the pipeline, the other half of the loop."""
    encoder, records, loop_startup = start_loop(spec, processor_dir)
    n1, s1 = loop_part(encoder, records, n // 2)
    ray_run = run_ray(spec, processor_dir, cfg)
    n2, s2 = loop_part(encoder, records, n)
    loop_n, loop_s = n1 + n2, s1 + s2
    if len(ray_run["lengths"]) != loop_n:
        raise SystemExit(f"pipeline gave {len(ray_run['lengths'])} rows, the loop {loop_n}")
    return {
        **ray_run,
        "loop_samples_per_s": loop_n / loop_s,
        "loop_incl_startup": loop_n / (loop_s + loop_startup),
        "ratio": ray_run["samples_per_s"] / (loop_n / loop_s),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="400 records instead of 1600")
    parser.add_argument("--records", type=int, default=0, help="override the record count")
    parser.add_argument("--repeats", type=int, default=3, help="comparisons; the median is kept")
    parser.add_argument("--smoke", action="store_true", help="toy size: 160 records, 1 comparison")
    args = parser.parse_args()
    if args.smoke:
        args.records, args.repeats = 160, 1
    n = args.records or (400 if args.quick else 1600)
    cfg = FinetuneConfig(data=DataConfig(max_seq_len=MAX_SEQ_LEN))

    with tempfile.TemporaryDirectory(prefix="ray_vlm_bench_data_") as tmp:
        spec = make_records(Path(tmp) / "data", n)
        processor_dir = make_processor(Path(tmp) / "processor")
        ensure_ray()
        niceness = ray.get(worker_niceness.remote())
        os.nice(niceness - os.nice(0))
        load_before = os.getloadavg()[0]
        runs = [measure(spec, processor_dir, cfg.data, n) for _ in range(args.repeats)]
        load_after = os.getloadavg()[0]

    run = sorted(runs, key=lambda r: r["ratio"])[len(runs) // 2]
    examples = [{"num_tokens": t} for t in run["lengths"]]
    grouped = padding_share(length_grouped(examples, cfg.batch_size, cfg.data.length_group_batches))
    naive = padding_share(length_grouped(examples, cfg.batch_size, 1))
    result = {
        "ray_samples_per_s": round(run["samples_per_s"], 1),
        "loop_samples_per_s": round(run["loop_samples_per_s"], 1),
        "ratio": round(run["ratio"], 3),
        "padding_share": round(grouped, 4),
        "padding_share_naive": round(naive, 4),
        "ray_samples_per_s_incl_startup": round(run["incl_startup"], 1),
        "loop_samples_per_s_incl_startup": round(run["loop_incl_startup"], 1),
        "ratios": [round(r["ratio"], 3) for r in runs],
        "records": len(run["lengths"]),
        "batch_size": cfg.batch_size,
        "length_group_batches": cfg.data.length_group_batches,
        "preprocess_workers": cfg.data.preprocess_workers,
        "preprocess_batch_size": cfg.data.preprocess_batch_size,
        "timing": "steady state (start-up excluded from both); *_incl_startup include it",
        "niceness": niceness,
        "load_avg_1m_before": round(load_before, 2),
        "load_avg_1m_after": round(load_after, 2),
    }
    if args.smoke:
        result["smoke"] = True
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
