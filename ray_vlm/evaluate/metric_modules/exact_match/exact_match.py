"""Exact match after strip / lower-case / whitespace collapse: ``{"exact_match": float}``."""

import evaluate

from ray_vlm.evaluate.exact import exact_match
from ray_vlm.evaluate.hf_metric import metric_info


class ExactMatch(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return metric_info(__doc__)

    def _compute(self, predictions: list[str], references: list[list[str]]) -> dict:
        return {"exact_match": exact_match(predictions, references)}
