"""VQA-RAD: ``{"closed_accuracy", "open_recall", "n_closed", "n_open"}`` (see ``vqa_rad_scores``)."""

import evaluate

from ray_vlm.evaluate.hf_metric import metric_info
from ray_vlm.evaluate.vqa import vqa_rad_scores


class VqaRad(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return metric_info(__doc__)

    def _compute(self, predictions: list[str], references: list[list[str]]) -> dict:
        return vqa_rad_scores(predictions, references)
