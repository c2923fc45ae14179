"""``make demo`` / ``ray-vlm demo``: every stage that exists, on the demo assets, on a local Ray
cluster started here. Prints what each stage did.

Stages: demo assets -> ``check-data`` on the demo datamix -> the untrained tiny models of every
architecture answer on a fresh image -> the Serve endpoint answers one real HTTP request.
"""

from __future__ import annotations

import random
from pathlib import Path

import ray

from ray_vlm.config import FinetuneConfig, load_config
from ray_vlm.demo.assets import make_demo_assets
from ray_vlm.demo.shapes import CAPTION_PROMPT, draw, random_shape
from ray_vlm.demo.tiny_models import BUILDERS
from ray_vlm.preprocess.check_data import check_data, format_check
from ray_vlm.preprocess.ray_runtime import ensure_ray
from ray_vlm.serve import serve_and_ask


@ray.remote
def _generate(model_dir: str, image_path: str, question: str) -> str:
    from PIL import Image

    from ray_vlm.model import SamplingParams, generate, load_model, load_processor

    model, processor = load_model(model_dir), load_processor(model_dir)
    image = Image.open(image_path).convert("RGB")
    requests = [([image], question)]
    return generate(model, processor, requests, SamplingParams(max_new_tokens=12))[0].text


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


def run_demo(out: str | Path, config: str | Path) -> None:
    out = Path(out).resolve()
    assets = out / "assets"
    if not (assets / "datasets.yaml").is_file():
        print(f"[demo] writing demo assets to {assets}")
        make_demo_assets(assets)
    cfg = demo_config(config, assets, out)
    ensure_ray()
    print(f"[demo] local Ray cluster: {ray.cluster_resources().get('CPU', 0):.0f} logical CPUs")

    print(f"[demo] check-data: datamix {cfg.data.datamix}")
    print(format_check(check_data(cfg)))

    rng = random.Random(123)
    shape = random_shape(rng)
    image = out / "demo_image.png"
    draw(shape, rng).save(image)
    print(f"[demo] model: untrained tiny models describe {image.name} (truth: '{shape.caption}')")
    refs = {
        n: _generate.remote(str(assets / "models" / n), str(image), CAPTION_PROMPT)
        for n in BUILDERS
    }
    for name, ref in refs.items():
        print(f"  {name:14s} -> {ray.get(ref)!r}")

    model_dir = cfg.checkpoint.init_ckpt_path
    print(f"[demo] serve: OpenAI-compatible endpoint on {Path(model_dir).name}, one HTTP request")
    answer = serve_and_ask(model_dir, image, CAPTION_PROMPT)
    print(f"  POST {answer['url']}/chat/completions -> {answer['answer']!r} ({answer['usage']})")
    print(f"[demo] done; assets and outputs in {out}")
