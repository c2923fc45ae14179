"""The Ray Data pipeline on a real local cluster: labels, truncation, datamix, bad-record policies."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import ray

from ray_vlm.config import DataConfig
from ray_vlm.preprocess.encode import IGNORE
from ray_vlm.preprocess.pipeline import build_dataset
from ray_vlm.preprocess.processor import load_processor
from ray_vlm.preprocess.stream_plan import plan_each_once, plan_weighted
from ray_vlm.records import DatamixEntry, load_registry, read_records, resolve_spec
from tests.preprocess.helpers import qa, source, write_plm

pytestmark = pytest.mark.usefixtures("ray_local")


def _rows(plan, model_dir: Path, **data) -> tuple[list[dict], object]:
    ds, report = build_dataset(
        plan, str(model_dir), DataConfig(**{"preprocess_workers": 1, **data})
    )
    return ds.take_all(), report


@pytest.mark.parametrize(
    ("arch", "dataset", "image_token"),
    [("llava", "demo_vqa", "<image>"), ("perception_lm", "demo_captions", "<|image|>"),
     ("paligemma", "demo_paligemma_train", "<image>")],
)  # fmt: skip
def test_labels_cover_only_the_answer(
    demo_assets: Path, arch: str, dataset: str, image_token: str
) -> None:
    model_dir = demo_assets / "models" / arch
    spec = resolve_spec(dataset, load_registry(demo_assets / "datasets.yaml")[dataset])
    first_chunk = plan_each_once([source(spec)])[:1]
    rows, _ = _rows(first_chunk, model_dir)
    tokenizer = load_processor(str(model_dir)).tokenizer
    answers = {r.source: r.answer for r in read_records(spec)}
    assert len(rows) == first_chunk[0].limit
    for row in rows:
        ids, labels = row["input_ids"], row["labels"]
        assert np.array_equal(labels[labels != IGNORE], ids[labels != IGNORE])
        assert (
            tokenizer.decode(ids[labels != IGNORE]) == answers[row["source"]] + tokenizer.eos_token
        )
        assert (ids == tokenizer.convert_tokens_to_ids(image_token)).sum() > 0
        assert row["pixel_values"].shape[0] == 1 == row["num_images"]
        assert row["pixel_values"].dtype == np.uint8  # finished in collate (test_pixels.py)


def test_multi_turn_and_text_only_records(tmp_path: Path, demo_assets: Path) -> None:
    multi = qa("What is it?", "a red square")
    multi["conversations"] += [
        {"from": "human", "value": "Which colour?"},
        {"from": "gpt", "value": "red"},
    ]
    spec = write_plm(tmp_path / "mix", [multi, qa("2+2?", "4", image=None)], {"a.png": None})
    rows, _ = _rows(plan_each_once([source(spec)]), demo_assets / "models/llava")
    tokenizer = load_processor(str(demo_assets / "models/llava")).tokenizer
    by_images = {r["num_images"]: r for r in rows}
    labelled = by_images[1]["input_ids"][by_images[1]["labels"] != IGNORE]
    assert tokenizer.decode(labelled) == "a red square<eos>red<eos>"
    assert by_images[0]["pixel_values"].shape == (0, 3, 32, 32)  # text-only keeps the image shape


def test_truncation_never_cuts_image_tokens(tmp_path: Path, demo_assets: Path) -> None:
    long_answer = " ".join(["a red circle on the left"] * 20)
    spec = write_plm(
        tmp_path / "long",
        [qa("Describe the image.", long_answer), qa("Describe the image. " * 10, "short")],
        {"a.png": None},
    )
    rows, report = _rows(
        plan_each_once([source(spec)]), demo_assets / "models/llava", max_seq_len=40
    )
    assert len(rows) == 1 and rows[0]["truncated"] and rows[0]["num_tokens"] == 40
    image_id = load_processor(str(demo_assets / "models/llava")).tokenizer.convert_tokens_to_ids(
        "<image>"
    )
    assert (rows[0]["input_ids"] == image_id).sum() == 16  # all 16 image tokens survive
    counts = ray.get(report.counts.remote())["long"]
    assert counts == {"truncated": 1, "too_long": 1}
    (too_long,) = ray.get(report.items.remote())
    assert (
        too_long["source"].endswith("train.jsonl:2") and "data.max_seq_len=40" in too_long["reason"]
    )


def test_datamix_weights_hold_in_the_stream(tmp_path: Path, demo_assets: Path) -> None:
    small = write_plm(tmp_path / "small", [qa("q", f"a{i}") for i in range(50)], {"a.png": None})
    large = write_plm(tmp_path / "large", [qa("q", f"b{i}") for i in range(300)], {"a.png": None})
    mix = [(DatamixEntry("small", 1, 0.25), small), (DatamixEntry("large", 3, 0.75), large)]
    plan = plan_weighted(mix, total=800, seed=0)
    ds, _ = build_dataset(plan, str(demo_assets / "models/llava"), DataConfig(preprocess_workers=1))
    names = [r["dataset"] for r in ds.select_columns(["dataset"]).iter_rows()]
    assert len(names) == 800
    share = Counter(names)["small"] / len(names)
    assert abs(share - 0.25) < 0.02  # the small source is cycled ~4 times to keep its weight
    # Mixed throughout, not appended at the end. Ray Data does not keep block order (for
    # throughput), so this allows a chunk or two of drift; the plan itself holds the mix much
    # tighter (test_stream_plan.py).
    first_half = Counter(names[:400])["small"] / 400
    assert 0.1 < first_half < 0.4


BAD_ROWS = [
    qa("q", "good"),
    "{oops",
    {"image": "a.png"},
    qa("q", "x", image="gone.png"),
    qa("q", "x", image="bad.png"),
]


def test_skip_policy_counts_and_lists_every_bad_record(tmp_path: Path, demo_assets: Path) -> None:
    spec = write_plm(tmp_path / "bad", BAD_ROWS, {"a.png": None, "bad.png": b"not an image"})
    rows, report = _rows(plan_each_once([source(spec)]), demo_assets / "models/llava")
    assert len(rows) == 1
    items = sorted(ray.get(report.items.remote()), key=lambda i: i["source"])
    assert [(i["source"].rsplit(":", 1)[1], i["kind"]) for i in items] == [
        ("2", "invalid"), ("3", "invalid"), ("4", "invalid"), ("5", "image")
    ]  # fmt: skip


def test_fail_policy_stops_at_the_first_bad_record(tmp_path: Path, demo_assets: Path) -> None:
    spec = write_plm(tmp_path / "bad", BAD_ROWS, {"a.png": None, "bad.png": b"not an image"})
    with pytest.raises(Exception, match=r"train\.jsonl:2: not valid JSON.*bad_records=fail"):
        _rows(plan_each_once([source(spec)]), demo_assets / "models/llava", bad_records="fail")
