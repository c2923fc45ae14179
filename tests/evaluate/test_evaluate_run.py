"""``evaluate`` end to end: a split streamed through real Serve replicas of two tiny models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from ray_vlm.config import load_config
from ray_vlm.config.eval_schema import EvalConfig
from ray_vlm.evaluate.cider import cider
from ray_vlm.evaluate.run import evaluate, format_metrics
from ray_vlm.evaluate.session import EvalSession
from ray_vlm.serve import serve_running

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("ray_local")]


@pytest.fixture(scope="module")
def split(demo_assets: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A registry with a 6-line caption split: 4 good records (two share an image, so it has two
    references), one whose image does not decode, one line that is not JSON."""
    folder = tmp_path_factory.mktemp("split")
    images = sorted((demo_assets / "data/plm/shapes/images").glob("test_*.png"))[:3]
    (folder / "broken.png").write_bytes(b"\x89PNG not really")

    def line(image: str, caption: str) -> str:
        turns = [
            {"from": "human", "value": "Describe the image."},
            {"from": "gpt", "value": caption},
        ]
        return json.dumps({"image": image, "conversations": turns})

    lines = [
        line(str(images[0]), "a red circle on the left"),
        line(str(images[1]), "a blue square on the top"),
        line(str(images[0]), "a circle on the left"),
        line(str(images[2]), "a green triangle on the right"),
        line(str(folder / "broken.png"), "a white circle on the top"),
        "{not json",
    ]
    (folder / "test.jsonl").write_text("\n".join(lines) + "\n")
    registry = folder / "datasets.yaml"
    entry = {"annotation": str(folder / "test.jsonl"), "root_dir": "/"}
    registry.write_text(yaml.safe_dump({"tiny_test": entry}))
    return registry


@pytest.fixture(scope="module")
def result(split: Path, demo_assets: Path, tmp_path_factory: pytest.TempPathFactory):
    models = demo_assets / "models"
    cfg = load_config(
        EvalConfig,
        [f"ckpt={models / 'llava'}", f"compare={models / 'perception_lm'}", "data=tiny_test",
         f"datasets_yaml={split}", "task=caption", "max_new_tokens=8", "batch_size=2",
         f"out_dir={tmp_path_factory.mktemp('eval')}", "serve.replicas.num_cpus=0.5"],
    )  # fmt: skip
    return evaluate(cfg)


def test_metrics_count_every_sample_failure_and_invalid_record(result) -> None:
    for label in ("model", "compare"):
        m = result.metrics[label]
        assert (m["samples"], m["failed"], m["invalid_records"]) == (4, 1, 1), m
        assert m["task"] == "caption" and {"cider", "bleu4", "rouge_l"} <= set(m)
    assert "cider" in format_metrics(result)


def test_predictions_file_gathers_references_and_scores_once(result) -> None:
    rows = [json.loads(x) for x in (result.out_dir / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 4
    assert sorted(len(r["references"]) for r in rows) == [1, 1, 1, 2]
    (broken,) = [r for r in rows if r["images"][0].endswith("broken.png")]
    assert "cannot be decoded" in broken["model"]["error"] and broken["model"]["prediction"] == ""
    for label in ("model", "compare"):
        predictions = [r[label]["prediction"] for r in rows]
        corpus = cider(predictions, [r["references"] for r in rows])
        assert result.metrics[label]["cider"] == pytest.approx(corpus)
        per_sample = [r[label]["score"] for r in rows]
        assert sum(per_sample) / len(per_sample) == pytest.approx(corpus)
    saved = json.loads((result.out_dir / "metrics.json").read_text())
    assert saved == result.metrics


def test_report_shows_each_image_worst_first(result) -> None:
    page = result.report.read_text()
    assert page.count("<img ") == 3  # the broken image is named, not drawn
    assert "cannot be decoded" in page and "perception_lm" in page


def test_a_session_starts_each_model_once_and_times_every_stage(
    split: Path, demo_assets: Path, tmp_path: Path
) -> None:
    models = demo_assets / "models"
    cfg = load_config(
        EvalConfig,
        [f"ckpt={models / 'llava'}", f"compare={models / 'perception_lm'}", "data=tiny_test",
         f"datasets_yaml={split}", "task=caption", "max_new_tokens=8",
         f"out_dir={tmp_path}", "serve.replicas.num_cpus=0.5"],
    )  # fmt: skip
    with EvalSession() as session:
        first = evaluate(cfg, session)
        again = evaluate(cfg, session)
    assert not serve_running()  # the session started Serve, and stopped it
    for label in ("model", "compare"):
        started, reused = first.metrics[label]["timing"], again.metrics[label]["timing"]
        assert started["start_s"] > 0 and reused["start_s"] == 0
        for timing in (started, reused):
            assert timing["generate_s"] > 0 and timing["score_s"] >= 0
            assert timing["records_per_s"] == pytest.approx(5 / timing["generate_s"])  # 5 parsed
        assert again.metrics[label]["cider"] == first.metrics[label]["cider"]
    assert "Time per stage" in again.report.read_text()
    assert "generate_s" in format_metrics(again)
