"""The ``evaluate`` modules load from a local folder offline and give the plain functions' numbers."""

from __future__ import annotations

import evaluate
import pytest

from ray_vlm.evaluate import bleu4, cider, exact_match, rouge_l, vqa_accuracy, vqa_rad_scores
from ray_vlm.evaluate.hf_metric import metric_module_path
from tests.evaluate.test_cider import CAPTIONS

PREDICTIONS = [p for p, _ in CAPTIONS]
REFERENCES = [r for _, r in CAPTIONS]
VQA_PREDICTIONS = ["Two", "yes", "left lung"]
VQA_ANSWERS = [["2", "two", "3"], ["no"], ["left lung"]]

CASES = [
    ("cider", PREDICTIONS, REFERENCES, {"cider": cider(PREDICTIONS, REFERENCES)}),
    (
        "caption_text",
        PREDICTIONS,
        REFERENCES,
        {"bleu4": bleu4(PREDICTIONS, REFERENCES), "rouge_l": rouge_l(PREDICTIONS, REFERENCES)},
    ),
    (
        "vqa_accuracy",
        VQA_PREDICTIONS,
        VQA_ANSWERS,
        {"vqa_accuracy": vqa_accuracy(VQA_PREDICTIONS, VQA_ANSWERS)},
    ),
    ("vqa_rad", VQA_PREDICTIONS, VQA_ANSWERS, vqa_rad_scores(VQA_PREDICTIONS, VQA_ANSWERS)),
    (
        "exact_match",
        ["Aceta ", "x"],
        [["aceta"], ["y"]],
        {"exact_match": exact_match(["Aceta ", "x"], [["aceta"], ["y"]])},
    ),
]


@pytest.mark.parametrize(("name", "predictions", "references", "expected"), CASES)
def test_module_loads_offline_and_matches(name, predictions, references, expected) -> None:
    metric = evaluate.load(metric_module_path(name))  # HF_HUB_OFFLINE=1 is set in conftest
    assert metric.compute(predictions=predictions, references=references) == expected


def test_unknown_module_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="known: .*'cider'"):
        metric_module_path("ciderr")
