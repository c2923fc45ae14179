from __future__ import annotations

import json
from pathlib import Path

from ray_vlm.records import BadRecord, load_registry, read_records, resolve_spec


def test_demo_assets_layouts_and_registry(demo_assets: Path) -> None:
    plm = demo_assets / "data/plm/shapes"
    assert {p.name for p in plm.iterdir()} >= {
        "train.jsonl",
        "test.jsonl",
        "vqa_train.jsonl",
        "vqa_test.jsonl",
        "images",
    }
    for split in ("Training", "Validation", "Testing"):
        assert (
            demo_assets / f"data/paligemma/Shapes/{split}/{split.lower()}_labels.json"
        ).is_file()
        assert (demo_assets / f"data/paligemma/Shapes/{split}/images/0.png").is_file()
    for model in ("llava", "paligemma", "perception_lm"):
        files = {p.name for p in (demo_assets / "models" / model).iterdir()}
        assert {
            "config.json",
            "model.safetensors",
            "tokenizer.json",
            "processor_config.json",
        } <= files
    registry = load_registry(demo_assets / "datasets.yaml")
    counts = {}
    for name, spec in registry.items():
        records = list(read_records(resolve_spec(name, spec)))
        assert not [r for r in records if isinstance(r, BadRecord)]
        counts[name] = len(records)
    assert (
        counts["demo_captions"] == 40
        and counts["demo_vqa"] == 120
        and counts["demo_paligemma_test"] == 10
    )


def test_captions_describe_the_drawn_shape(demo_assets: Path) -> None:
    """The caption is learnable: its colour word matches the image's dominant non-black colour."""
    from PIL import Image

    from ray_vlm.demo.shapes import COLOURS

    for line in (demo_assets / "data/plm/shapes/test.jsonl").read_text().splitlines():
        row = json.loads(line)
        image = Image.open(demo_assets / "data/plm/shapes/images" / row["image"])
        colours = [c for _, c in image.getcolors() if c != (0, 0, 0)]
        colour = row["conversations"][1]["value"].split()[1]
        assert COLOURS[colour] in colours


def test_vqa_records_carry_their_question_type(demo_assets: Path) -> None:
    """Each VQA record's ``question_type`` names the kind its answer is (colour, shape, position)."""
    from ray_vlm.demo.shapes import COLOURS, POSITIONS, SHAPES

    kinds = {"colour": set(COLOURS), "shape": set(SHAPES), "position": set(POSITIONS)}
    spec = resolve_spec(
        "demo_vqa_test", load_registry(demo_assets / "datasets.yaml")["demo_vqa_test"]
    )
    records = list(read_records(spec))
    assert [r.question_type for r in records[:3]] == ["colour", "shape", "position"]
    assert all(r.answer in kinds[r.question_type] for r in records)
