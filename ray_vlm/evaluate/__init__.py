"""Stage 7 of the flow: scoring gathered predictions (CIDEr-D, BLEU-4, ROUGE-L, VQA, exact match).

Every metric takes ``predictions: list[str]`` and ``references: list[list[str]]`` (one list per
prediction) and scores the whole gathered set at once; ``*_per_sample`` variants give the
per-sample scores whose mean is the corpus score (except BLEU-4, a corpus statistic).
``ray_vlm.evaluate.hf_metric.metric_module_path(name)`` gives the Hugging Face ``evaluate``
module folders (kept out of this import: it loads ``datasets``).
"""

from ray_vlm.evaluate.cider import cider, cider_per_sample, cider_scores_tokenized
from ray_vlm.evaluate.exact import exact_match, exact_match_per_sample
from ray_vlm.evaluate.ptb_tokenize import ptb_tokenize
from ray_vlm.evaluate.text_metrics import bleu4, rouge_l, rouge_l_per_sample
from ray_vlm.evaluate.vqa import (
    vqa_accuracy,
    vqa_accuracy_per_sample,
    vqa_rad_per_sample,
    vqa_rad_scores,
)
from ray_vlm.evaluate.vqa_normalize import normalize_answer

__all__ = [
    "bleu4",
    "cider",
    "cider_per_sample",
    "cider_scores_tokenized",
    "exact_match",
    "exact_match_per_sample",
    "normalize_answer",
    "ptb_tokenize",
    "rouge_l",
    "rouge_l_per_sample",
    "vqa_accuracy",
    "vqa_accuracy_per_sample",
    "vqa_rad_per_sample",
    "vqa_rad_scores",
]
