"""Corpus BLEU-4 (nltk) and mean ROUGE-L F1 (rouge-score) on PTB tokens: ``{"bleu4", "rouge_l"}``."""

import evaluate

from ray_vlm.evaluate.hf_metric import metric_info
from ray_vlm.evaluate.text_metrics import bleu4, rouge_l


class CaptionText(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return metric_info(__doc__)

    def _compute(self, predictions: list[str], references: list[list[str]]) -> dict:
        return {
            "bleu4": bleu4(predictions, references),
            "rouge_l": rouge_l(predictions, references),
        }
