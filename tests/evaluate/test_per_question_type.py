"""VQA accuracy broken down by question type (as VQAv2 reports it per answer type): in scoring,
the CLI table and the HTML report."""

from __future__ import annotations

from pathlib import Path

import pytest

from ray_vlm.evaluate.html_report import write_report
from ray_vlm.evaluate.run import EvalResult, format_metrics
from ray_vlm.evaluate.scoring import gather_samples, score_samples


def _row(line: int, question: str, answer: str, prediction: str, qtype: str) -> dict:
    return {
        "id": f"vqa.jsonl:{line}", "images": [f"/img{line}.png"], "question": question,
        "question_type": qtype, "reference": answer, "prediction": prediction, "error": "",
    }  # fmt: skip


ROWS = [
    _row(1, "What colour is the shape?", "red", "red", "colour"),
    _row(2, "What shape is it?", "circle", "square", "shape"),
    _row(3, "What colour is the shape?", "blue", "green", "colour"),
    _row(4, "Where is the shape?", "left", "left", "position"),
    _row(5, "What colour is the shape?", "white", "white", "colour"),
    _row(6, "What colour is the shape?", "red", "red", "colour"),
]


def test_accuracy_and_count_per_type_in_file_order() -> None:
    samples = gather_samples(list(reversed(ROWS)))
    assert [s.question_type for s in samples[:3]] == ["colour", "shape", "colour"]
    metrics = score_samples("vqa", samples)
    assert metrics["vqa_accuracy"] == pytest.approx(4 / 6)
    assert metrics["per_question_type"] == {
        "colour": {"vqa_accuracy": pytest.approx(3 / 4), "count": 4},
        "shape": {"vqa_accuracy": 0.0, "count": 1},
        "position": {"vqa_accuracy": 1.0, "count": 1},
    }
    assert list(metrics["per_question_type"]) == ["colour", "shape", "position"]


def test_untyped_samples_form_their_own_group_and_no_types_no_breakdown() -> None:
    rows = [{**ROWS[0], "question_type": ""}, ROWS[1]]
    by_type = score_samples("vqa", gather_samples(rows))["per_question_type"]
    assert by_type == {
        "(none)": {"vqa_accuracy": 1.0, "count": 1},
        "shape": {"vqa_accuracy": 0.0, "count": 1},
    }
    untyped = [{**r, "question_type": ""} for r in ROWS]
    assert "per_question_type" not in score_samples("vqa", gather_samples(untyped))


def test_table_and_report_show_each_type_for_both_models(tmp_path: Path) -> None:
    after, before = gather_samples(ROWS), gather_samples([{**r, "prediction": "red"} for r in ROWS])
    metrics = {
        "model": {"ckpt": "after", "task": "vqa", **score_samples("vqa", after)},
        "compare": {"ckpt": "before", "task": "vqa", **score_samples("vqa", before)},
    }
    assert metrics["compare"]["per_question_type"]["colour"]["vqa_accuracy"] == pytest.approx(0.5)
    table = format_metrics(EvalResult(metrics, tmp_path))
    line = next(x for x in table.splitlines() if x.startswith("vqa_accuracy [colour] (n=4)"))
    assert line.split()[-2:] == ["0.7500", "0.5000"]
    assert "per_question_type" not in table
    page = write_report(tmp_path / "r.html", "vqa", metrics, {"model": after, "compare": before})
    text = page.read_text()
    assert "vqa_accuracy per question type" in text
    colour_row = text[text.index("<tr><th>colour</th>") :].split("</tr>")[0]
    assert [c.split(">")[-1] for c in colour_row.split("</td>")[:-1]] == ["4", "0.7500", "0.5000"]
