"""``ray-vlm make-demo-assets``: demo data in both guides' layouts, tiny models, a registry.

Layout under ``out``::

    data/plm/shapes/                     PLM layout (as the radiology guide writes it)
        train.jsonl test.jsonl           captions:  "Describe the image." -> "a red circle on the left"
        vqa_train.jsonl vqa_test.jsonl   questions: "What colour is the shape?" -> "red",
                                         question_type colour / shape / position
        images/train_000000.png ...
    data/paligemma/Shapes/               PaliGemma guide layout
        Training/images/0.png  Training/training_labels.json   {"prefix": "", "suffix": ..., "image": "0.png"}
        Validation/...  Testing/...
    models/llava  models/paligemma  models/perception_lm      Hugging Face directories
    models/perception_lm_8b_standin  models/paligemma2_224_standin
                                         shape-faithful stand-ins of the GPU configs' models
    models/qwen2_5_vl ...                only when named: the family stand-ins (FAMILY_BUILDERS:
                                         Qwen2/2.5/3-VL, LLaVA-NeXT/OneVision, Mllama, Gemma 3,
                                         SmolVLM, InternVL)
    datasets.yaml                        registry of every split above (absolute paths)
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import yaml

from ray_vlm.demo.family_standins import FAMILY_BUILDERS
from ray_vlm.demo.shapes import CAPTION_PROMPT, QUESTIONS, corpus, draw, random_shape
from ray_vlm.demo.tiny_models import BUILDERS

MODEL_BUILDERS = {**BUILDERS, **FAMILY_BUILDERS}  # every model ``make_demo_assets`` can build
DEFAULT_MODELS = tuple(BUILDERS)  # built when none are named (the demo's five)

PLM_DIR = "data/plm/shapes"
PALIGEMMA_DIR = "data/paligemma/Shapes"
PALIGEMMA_SPLITS = {
    "Training": "demo_paligemma_train",
    "Validation": "demo_paligemma_val",
    "Testing": "demo_paligemma_test",
}
DEFAULT_COUNTS = {"train": 1000, "test": 100}


def demo_registry(root: str) -> dict[str, dict[str, str]]:
    """Registry entries for the demo data under ``root`` (PLM ``configs/datasets.yaml`` layout)."""
    plm = f"{root}/{PLM_DIR}"
    entries = {
        "demo_captions": {"annotation": f"{plm}/train.jsonl", "root_dir": f"{plm}/images"},
        "demo_captions_test": {"annotation": f"{plm}/test.jsonl", "root_dir": f"{plm}/images"},
        "demo_vqa": {"annotation": f"{plm}/vqa_train.jsonl", "root_dir": f"{plm}/images"},
        "demo_vqa_test": {"annotation": f"{plm}/vqa_test.jsonl", "root_dir": f"{plm}/images"},
    }
    for folder, name in PALIGEMMA_SPLITS.items():
        base = f"{root}/{PALIGEMMA_DIR}/{folder}"
        entries[name] = {
            "annotation": f"{base}/{folder.lower()}_labels.json",
            "root_dir": f"{base}/images",
            "format": "paligemma",
        }
    return entries


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def write_plm_data(root: Path, counts: dict[str, int], rng: random.Random) -> None:
    """Caption and VQA splits in the PLM layout; VQA asks all three questions of each image, each
    record with its ``question_type`` (``colour``, ``shape``, ``position``)."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    for split, n in counts.items():
        captions, vqa = [], []
        for i in range(n):
            shape, name = random_shape(rng), f"{split}_{i:06d}.png"
            draw(shape, rng).save(root / "images" / name)
            captions.append(_conversation(name, CAPTION_PROMPT, shape.caption))
            vqa += [
                {**_conversation(name, q, shape.answer(kind)), "question_type": kind}
                for kind, q in QUESTIONS.items()
            ]
        _write_jsonl(root / f"{split}.jsonl", captions)
        _write_jsonl(root / f"vqa_{split}.jsonl", vqa)


def _conversation(image: str, question: str, answer: str) -> dict:
    return {
        "image": image,
        "conversations": [
            {"from": "human", "value": question},
            {"from": "assistant", "value": answer},
        ],
    }


def write_paligemma_data(root: Path, counts: dict[str, int], rng: random.Random) -> None:
    """Training/Validation/Testing folders with ``images/`` and ``<split>_labels.json``."""
    sizes = {"Training": counts["train"], "Validation": counts["test"], "Testing": counts["test"]}
    for folder, n in sizes.items():
        (root / folder / "images").mkdir(parents=True, exist_ok=True)
        rows = []
        for i in range(n):
            shape = random_shape(rng)
            draw(shape, rng).save(root / folder / "images" / f"{i}.png")
            rows.append({"prefix": "", "suffix": shape.caption, "image": f"{i}.png"})
        _write_jsonl(root / folder / f"{folder.lower()}_labels.json", rows)


def make_demo_assets(
    out: str | Path,
    counts: dict[str, int] | None = None,
    models: tuple[str, ...] = DEFAULT_MODELS,
    seed: int = 0,
) -> Path:
    """Write the demo data, tiny models and ``datasets.yaml`` under ``out``; return ``out``.

    ``models``: names in ``MODEL_BUILDERS``, each built under ``out/models/<name>``."""
    out = Path(out).resolve()
    counts = counts or DEFAULT_COUNTS
    rng = random.Random(seed)
    write_plm_data(out / PLM_DIR, counts, rng)
    write_paligemma_data(out / PALIGEMMA_DIR, counts, rng)
    for name in models:
        MODEL_BUILDERS[name](out / "models" / name, corpus(), seed=seed)
    (out / "datasets.yaml").write_text(yaml.safe_dump(demo_registry(str(out)), sort_keys=False))
    return out
