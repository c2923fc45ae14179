"""Official VQA accuracy, answers normalised on both sides: ``{"vqa_accuracy": float}``."""

import evaluate

from ray_vlm.evaluate.hf_metric import metric_info
from ray_vlm.evaluate.vqa import vqa_accuracy


class VqaAccuracy(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return metric_info(__doc__)

    def _compute(self, predictions: list[str], references: list[list[str]]) -> dict:
        return {"vqa_accuracy": vqa_accuracy(predictions, references)}
