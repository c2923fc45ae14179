"""``make demo`` / ``ray-vlm demo``: every stage that exists, on the demo assets, on a local Ray
cluster started here. Prints what each stage did."""

from __future__ import annotations

import random
from pathlib import Path

import ray

from ray_vlm.demo.assets import make_demo_assets
from ray_vlm.demo.shapes import CAPTION_PROMPT, draw, random_shape
from ray_vlm.demo.tiny_models import BUILDERS
from ray_vlm.records import BadRecord, load_registry, read_records, resolve_spec


@ray.remote
def _count_records(name: str, spec) -> tuple[str, int, list[str]]:
    resolved = resolve_spec(name, spec)
    bad = [str(r) for r in read_records(resolved) if isinstance(r, BadRecord)]
    total = sum(1 for _ in read_records(resolved, verify_images=False))
    return name, total, bad


@ray.remote
def _generate(model_dir: str, image_path: str, question: str) -> str:
    from PIL import Image

    from ray_vlm.model import SamplingParams, generate, load_model, load_processor

    model, processor = load_model(model_dir), load_processor(model_dir)
    image = Image.open(image_path).convert("RGB")
    return generate(model, processor, [([image], question)], SamplingParams(max_new_tokens=12))[
        0
    ].text


def run_demo(out: str | Path) -> None:
    out = Path(out).resolve()
    assets = out / "assets"
    if not (assets / "datasets.yaml").is_file():
        print(f"[demo] writing demo assets to {assets}")
        make_demo_assets(assets)
    ray.init(include_dashboard=False, log_to_driver=False)
    try:
        print(f"[demo] local Ray cluster: {ray.cluster_resources().get('CPU', 0):.0f} CPUs")
        registry = load_registry(assets / "datasets.yaml")
        print("[demo] records stage: reading every registered dataset")
        for name, total, bad in ray.get([_count_records.remote(n, s) for n, s in registry.items()]):
            print(f"  {name:24s} {total:5d} records, {len(bad)} invalid")
            for line in bad[:5]:
                print(f"    {line}")
        rng = random.Random(123)
        shape = random_shape(rng)
        image = out / "demo_image.png"
        draw(shape, rng).save(image)
        print(
            f"[demo] model stage: untrained tiny models describe {image.name} (truth: '{shape.caption}')"
        )
        refs = {
            n: _generate.remote(str(assets / "models" / n), str(image), CAPTION_PROMPT)
            for n in BUILDERS
        }
        for name, ref in refs.items():
            print(f"  {name:14s} -> {ray.get(ref)!r}")
    finally:
        ray.shutdown()
    print(f"[demo] done; assets and outputs in {out}")
