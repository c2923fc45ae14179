"""CIDEr-D as pycocoevalcap computes it (PTB tokenisation in pure Python): ``{"cider": float}``."""

import evaluate

from ray_vlm.evaluate.cider import cider
from ray_vlm.evaluate.hf_metric import metric_info


class Cider(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return metric_info(__doc__)

    def _compute(self, predictions: list[str], references: list[list[str]]) -> dict:
        return {"cider": cider(predictions, references)}
