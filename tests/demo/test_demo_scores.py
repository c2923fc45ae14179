"""The demo's before/after table: each primary metric, then VQA accuracy per question type or the
share of exactly right captions."""

from __future__ import annotations

import json
from pathlib import Path

from ray_vlm.demo.run import _score_rows
from ray_vlm.evaluate.run import EvalResult


def test_vqa_rows_give_each_question_type_before_and_after(tmp_path: Path) -> None:
    def metrics(overall: float, colour: float, shape: float) -> dict:
        by_type = {
            "colour": {"vqa_accuracy": colour, "count": 2},
            "shape": {"vqa_accuracy": shape, "count": 2},
        }
        return {"task": "vqa", "vqa_accuracy": overall, "per_question_type": by_type}

    result = EvalResult(
        {"model": metrics(0.75, 1.0, 0.5), "compare": metrics(0.0, 0.0, 0.0)}, tmp_path
    )
    rows = _score_rows("vqa", result)
    assert [r[:3] for r in rows] == [
        ("vqa_accuracy (demo_vqa_test)", 0.0, 0.75),
        ("  colour questions (n=2)", 0.0, 1.0),
        ("  shape questions (n=2)", 0.0, 0.5),
    ]
    assert rows[0][3] == f"report: {tmp_path / 'report.html'}"
    predictions = [
        {"references": ["a red square"], "compare": {"prediction": "a"},
         "model": {"prediction": "a red square"}},
        {"references": ["a blue disc", "blue disc"], "compare": {"prediction": "blue disc"},
         "model": {"prediction": "blue disc"}},
        {"references": ["a green star"], "compare": {"prediction": ""},
         "model": {"prediction": "a green stars"}},
        {"references": ["a grey star"], "compare": {"prediction": "a"},
         "model": {"prediction": "a grey star"}},
    ]  # fmt: skip
    lines = [json.dumps(row) for row in predictions]
    (tmp_path / "predictions.jsonl").write_text("\n".join(lines) + "\n")
    caption = EvalResult(
        {"model": {"cider": 2.0, "samples": 4}, "compare": {"cider": 0.1, "samples": 4}}, tmp_path
    )
    assert [r[:3] for r in _score_rows("caption", caption)] == [
        ("cider (demo_captions_test)", 0.1, 2.0),
        ("  exact captions (n=4)", 0.25, 0.75),
    ]
